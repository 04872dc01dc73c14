// JSON codecs for ObjectMeta and Condition (see json.h for the error conventions).
#pragma once

#include "common/api/json.h"
#include "common/api/meta.h"

namespace common::api::json {

Status DecodeObjectMeta(FieldReader& r, ObjectMeta* out);
void EncodeObjectMeta(JsonWriter& w, const ObjectMeta& m);  // writes the value, not the key

// "True", "False", "Unknown"; nullopt for anything else.
std::optional<ConditionStatus> ParseConditionStatus(std::string_view s);

Status DecodeCondition(FieldReader& r, Condition* out);
void EncodeCondition(JsonWriter& w, const Condition& c);

// Checks apiVersion and kind when present; a different one is InvalidArgument.
Status CheckTypeMeta(FieldReader& r, std::string_view api_version, std::string_view kind);

}  // namespace common::api::json

namespace common::api {

// Reads only metadata from an object's JSON (any kind): for caches that must key and version
// objects even when the rest does not decode.
Result<ObjectMeta> DecodeObjectMetaOnly(std::string_view object_json);

}  // namespace common::api
