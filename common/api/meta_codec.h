// JSON codecs for ObjectMeta and Condition (see json.h for the error conventions).
#pragma once

#include "common/api/json.h"
#include "common/api/meta.h"

namespace common::api::json {

Status DecodeObjectMeta(FieldReader& r, ObjectMeta* out);
void EncodeObjectMeta(JsonWriter& w, const ObjectMeta& m);  // writes the value, not the key

Status DecodeCondition(FieldReader& r, Condition* out);
void EncodeCondition(JsonWriter& w, const Condition& c);

// Checks apiVersion and kind when present; a different one is InvalidArgument.
Status CheckTypeMeta(FieldReader& r, std::string_view api_version, std::string_view kind);

}  // namespace common::api::json
