// JSON helpers of the test API server: parsing with the limits a real API server applies,
// member access on RapidJSON values, RFC 7386 merge patch, RFC 6902 JSON patch, and the Go
// value formatting that Kubernetes error messages use (%q strings, %v floats).
//
// This is an internal header of tools/apiserver (a JSON server, so RapidJSON is its codec).
// Thread contract: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "common/status/status.h"

namespace tools::apiserver::json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;
using Allocator = rapidjson::Document::AllocatorType;

// Deepest nesting accepted in a request body; deeper input is InvalidArgument.
inline constexpr int kMaxDepth = 256;

// Parses `text` into `doc`. Duplicate object keys keep the last value, as Go's decoder does.
// InvalidArgument naming the byte offset on malformed text or nesting deeper than kMaxDepth.
common::Status Parse(std::string_view text, Document* doc);

// Compact JSON text of `v`.
std::string Serialize(const Value& v);

// Member lookup; nullptr when `obj` is not an object or has no such member.
const Value* Find(const Value& obj, std::string_view key);
Value* FindMutable(Value& obj, std::string_view key);

// The string member `key`, or "" when absent or not a string.
std::string GetString(const Value& obj, std::string_view key);

// Adds or replaces member `key` of `obj`. REQUIRES: obj.IsObject().
void SetMember(Value& obj, std::string_view key, Value&& v, Allocator& a);
void SetString(Value& obj, std::string_view key, std::string_view s, Allocator& a);
// Removes member `key` when present.
void RemoveMember(Value& obj, std::string_view key);
// Member `key` of `obj`, replaced by {} unless it already is an object.
Value& EnsureObject(Value& obj, std::string_view key, Allocator& a);

// Deep equality; object member order does not matter, 1 equals 1.0.
bool Equal(const Value& a, const Value& b);

// Applies an RFC 7386 JSON merge patch to `target` in place.
void MergePatch(Value& target, const Value& patch, Allocator& a);

// Applies an RFC 6902 JSON patch (add, remove, replace, move, copy, test) to `doc` in place;
// all or nothing. InvalidArgument when the patch document itself is malformed (HTTP 400);
// FailedPrecondition when an operation cannot be applied or a test fails (HTTP 422).
common::Status JsonPatch(Value& doc, const Value& ops, Allocator& a);

// Go's %q of a string: "abc" with \" \\ \n \t and \x.. escapes.
std::string GoQuote(std::string_view s);
// Go's %v of a float64 (strconv 'g', shortest digits): exponent form when the decimal exponent
// is < -4 or >= 6, e.g. 1 → "1", 1048576 → "1.048576e+06", 0.5 → "0.5".
std::string GoFloat(double v);
// A JSON value as Kubernetes field errors print it: strings quoted, integers plain, floats as
// GoFloat, bool, null as "null", objects and arrays in Go's %#v shape.
std::string GoValue(const Value& v);
// The JSON type name used in "must be of type" messages: string, integer, number, boolean,
// object, array, null.
std::string_view TypeName(const Value& v);

// Number of Unicode code points of a UTF-8 string (what maxLength counts).
size_t CodePointCount(std::string_view s);

}  // namespace tools::apiserver::json
