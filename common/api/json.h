// JSON decoding and encoding helpers shared by the API codecs (meta_codec, v1alpha1/codec).
// A codec file: RapidJSON appears here and in codec .cc files only, never in type headers.
//
// FieldReader walks one JSON object and records the path of every field it reads, so a
// malformed or wrong-typed field yields InvalidArgument naming it, e.g.
// `spec.members[1].namespaceID: expected an integer, got a string`. A JSON null counts as absent,
// as in Kubernetes. Unknown fields are ignored (the API server prunes them for our CRDs).
//
// Thread contract: a FieldReader is used by one thread; it borrows the value it reads.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/api/meta.h"
#include "common/status/status.h"

namespace common::api::json {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// A Document to parse into whose values and strings come first from a 32 KiB buffer that the
// calling thread keeps and reuses (a 3.3 KiB volume's document takes 5.8 KiB), instead of
// RapidJSON's default: a new 64 KiB heap chunk per document. A long-running process that decodes
// every object of a watch stream then no longer interleaves a 64 KiB chunk per event with the
// long-lived allocations made meanwhile (in the operator at 10000 volumes the holes this left were
// ~1 MiB of its heap). A thread has two such buffers (a watch event's document stays alive while
// its object is decoded); a document that outgrows its buffer, or a third nested one, takes heap
// chunks as before.
//
// Thread contract: used on one thread; documents of a thread end in the reverse order of their
// creation (they are local variables).
class ScratchDocument {
 public:
  ScratchDocument();
  ~ScratchDocument();
  ScratchDocument(const ScratchDocument&) = delete;
  ScratchDocument& operator=(const ScratchDocument&) = delete;

  rapidjson::Document& doc() { return doc_; }
  // True when this document's first chunk is the thread's buffer (for tests).
  bool borrowed() const { return borrowed_; }

 private:
  char* buffer_;  // the thread's buffer, or null
  const bool borrowed_;
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;  // after pool_: destroyed first
};

// Parses JSON text into `doc` (iteratively, so deep nesting cannot overflow the stack).
// InvalidArgument with the byte offset on malformed text; the root must be an object.
Status ParseObject(std::string_view text, rapidjson::Document& doc, std::string_view what);

// "a string", "an integer", ... for error messages.
std::string_view TypeName(const rapidjson::Value& v);

// Joins a parent path and a key: ("spec", "x") → "spec.x", ("", "x") → "x".
std::string JoinPath(std::string_view parent, std::string_view key);

enum class Presence { kOptional, kRequired };

class FieldReader {
 public:
  // REQUIRES: object.IsObject(); `object` must outlive this reader.
  FieldReader(const rapidjson::Value& object, std::string path);

  const std::string& path() const { return path_; }
  bool Has(const char* key) const;  // present and not null

  Status String(const char* key, std::string* out, Presence p = Presence::kOptional);
  Status Bool(const char* key, bool* out, Presence p = Presence::kOptional);
  Status Int64(const char* key, int64_t* out, Presence p = Presence::kOptional);
  Status Int32(const char* key, int32_t* out, Presence p = Presence::kOptional);
  Status OptionalInt64(const char* key, std::optional<int64_t>* out);
  Status OptionalInt32(const char* key, std::optional<int32_t>* out);
  Status Time(const char* key, api::Time* out, Presence p = Presence::kOptional);
  Status OptionalTime(const char* key, std::optional<api::Time>* out);
  Status StringMap(const char* key, std::map<std::string, std::string>* out);
  Status StringList(const char* key, std::vector<std::string>* out);
  Status Int32List(const char* key, std::vector<int32_t>* out);

  // Reads a string and maps it through `parse`; an unknown value names the allowed ones.
  template <typename E>
  Status Enum(const char* key, E* out, std::optional<E> (*parse)(std::string_view),
              std::string_view allowed, Presence p = Presence::kOptional) {
    std::string s;
    RETURN_IF_ERROR(String(key, &s, p));
    if (!Has(key)) return OkStatus();
    std::optional<E> v = parse(s);
    if (!v) {
      return InvalidArgumentError("{}: unsupported value \"{}\" (allowed: {})",
                                  JoinPath(path_, key), s, allowed);
    }
    *out = *v;
    return OkStatus();
  }

  // Calls `fn` with a reader for the nested object.
  Status Object(const char* key, const std::function<Status(FieldReader&)>& fn,
                Presence p = Presence::kOptional);

  // Calls `fn` with a reader for each element of an array of objects.
  Status ObjectArray(const char* key, const std::function<Status(FieldReader&)>& fn);
  // Same, clearing `out` first and reserving one element per array item, so the decoded vector
  // holds no spare capacity (informer caches keep decoded objects for their whole life).
  template <typename T>
  Status ObjectArray(const char* key, std::vector<T>* out,
                     const std::function<Status(FieldReader&)>& fn) {
    out->clear();
    out->reserve(ArraySize(key));
    return ObjectArray(key, fn);
  }
  // Items of the array at `key`; 0 when absent or not an array.
  size_t ArraySize(const char* key) const;

 private:
  // Returns the member or nullptr when absent/null; error when required and absent.
  Result<const rapidjson::Value*> Find(const char* key, Presence p) const;
  Status WrongType(const char* key, const rapidjson::Value& v, std::string_view want) const;

  const rapidjson::Value& object_;
  std::string path_;
};

// RFC 3339, whole seconds, UTC: "2026-11-22T10:00:00Z".
std::string FormatTime(api::Time t);
// Accepts "Z" or ±hh:mm offsets and fractional seconds (truncated to whole seconds).
Result<api::Time> ParseTime(std::string_view s);

// Writer helpers: each writes "key": value.
void WriteString(JsonWriter& w, const char* key, std::string_view v);
void WriteStringIfNotEmpty(JsonWriter& w, const char* key, std::string_view v);
void WriteInt64(JsonWriter& w, const char* key, int64_t v);
void WriteTime(JsonWriter& w, const char* key, api::Time t);
template <typename T>
void WriteOptional(JsonWriter& w, const char* key, const std::optional<T>& v) {
  if (!v) return;
  if constexpr (std::is_same_v<T, api::Time>) {
    WriteTime(w, key, *v);
  } else {
    WriteInt64(w, key, static_cast<int64_t>(*v));
  }
}
void WriteStringMapIfNotEmpty(JsonWriter& w, const char* key,
                              const std::map<std::string, std::string>& m);
void WriteStringListIfNotEmpty(JsonWriter& w, const char* key, const std::vector<std::string>& v);
// Writes the list even when empty ("key": []).
void WriteInt32List(JsonWriter& w, const char* key, const std::vector<int32_t>& v);

}  // namespace common::api::json
