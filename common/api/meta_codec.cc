#include "common/api/meta_codec.h"

namespace common::api::json {

std::optional<ConditionStatus> ParseConditionStatus(std::string_view s) {
  if (s == "True") return ConditionStatus::kTrue;
  if (s == "False") return ConditionStatus::kFalse;
  if (s == "Unknown") return ConditionStatus::kUnknown;
  return std::nullopt;
}

namespace {}  // namespace

Status DecodeObjectMeta(FieldReader& r, ObjectMeta* out) {
  RETURN_IF_ERROR(r.String("name", &out->name));
  RETURN_IF_ERROR(r.String("generateName", &out->generate_name));
  RETURN_IF_ERROR(r.String("namespace", &out->namespace_));
  RETURN_IF_ERROR(r.String("uid", &out->uid));
  RETURN_IF_ERROR(r.String("resourceVersion", &out->resource_version));
  RETURN_IF_ERROR(r.Int64("generation", &out->generation));
  RETURN_IF_ERROR(r.OptionalTime("creationTimestamp", &out->creation_timestamp));
  RETURN_IF_ERROR(r.OptionalTime("deletionTimestamp", &out->deletion_timestamp));
  RETURN_IF_ERROR(
      r.OptionalInt64("deletionGracePeriodSeconds", &out->deletion_grace_period_seconds));
  RETURN_IF_ERROR(r.StringMap("labels", &out->labels));
  RETURN_IF_ERROR(r.StringMap("annotations", &out->annotations));
  RETURN_IF_ERROR(r.StringList("finalizers", &out->finalizers));
  return r.ObjectArray("ownerReferences", &out->owner_references, [&](FieldReader& o) -> Status {
    OwnerReference ref;
    RETURN_IF_ERROR(o.String("apiVersion", &ref.api_version, Presence::kRequired));
    RETURN_IF_ERROR(o.String("kind", &ref.kind, Presence::kRequired));
    RETURN_IF_ERROR(o.String("name", &ref.name, Presence::kRequired));
    RETURN_IF_ERROR(o.String("uid", &ref.uid, Presence::kRequired));
    RETURN_IF_ERROR(o.Bool("controller", &ref.controller));
    RETURN_IF_ERROR(o.Bool("blockOwnerDeletion", &ref.block_owner_deletion));
    out->owner_references.push_back(std::move(ref));
    return OkStatus();
  });
}

void EncodeObjectMeta(JsonWriter& w, const ObjectMeta& m) {
  w.StartObject();
  WriteStringIfNotEmpty(w, "name", m.name);
  WriteStringIfNotEmpty(w, "generateName", m.generate_name);
  WriteStringIfNotEmpty(w, "namespace", m.namespace_);
  WriteStringIfNotEmpty(w, "uid", m.uid);
  WriteStringIfNotEmpty(w, "resourceVersion", m.resource_version);
  if (m.generation != 0) WriteInt64(w, "generation", m.generation);
  WriteOptional(w, "creationTimestamp", m.creation_timestamp);
  WriteOptional(w, "deletionTimestamp", m.deletion_timestamp);
  WriteOptional(w, "deletionGracePeriodSeconds", m.deletion_grace_period_seconds);
  WriteStringMapIfNotEmpty(w, "labels", m.labels);
  WriteStringMapIfNotEmpty(w, "annotations", m.annotations);
  WriteStringListIfNotEmpty(w, "finalizers", m.finalizers);
  if (!m.owner_references.empty()) {
    w.Key("ownerReferences");
    w.StartArray();
    for (const auto& ref : m.owner_references) {
      w.StartObject();
      WriteString(w, "apiVersion", ref.api_version);
      WriteString(w, "kind", ref.kind);
      WriteString(w, "name", ref.name);
      WriteString(w, "uid", ref.uid);
      if (ref.controller) {
        w.Key("controller");
        w.Bool(true);
      }
      if (ref.block_owner_deletion) {
        w.Key("blockOwnerDeletion");
        w.Bool(true);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

Status DecodeCondition(FieldReader& r, Condition* out) {
  RETURN_IF_ERROR(r.String("type", &out->type, Presence::kRequired));
  RETURN_IF_ERROR(r.Enum("status", &out->status, &ParseConditionStatus, "True, False, Unknown",
                         Presence::kRequired));
  RETURN_IF_ERROR(r.Int64("observedGeneration", &out->observed_generation));
  RETURN_IF_ERROR(r.Time("lastTransitionTime", &out->last_transition_time, Presence::kRequired));
  RETURN_IF_ERROR(r.String("reason", &out->reason, Presence::kRequired));
  // Kubernetes requires the key but accepts "", which our encoder omits: read it as optional.
  return r.String("message", &out->message);
}

void EncodeCondition(JsonWriter& w, const Condition& c) {
  w.StartObject();
  WriteString(w, "type", c.type);
  WriteString(w, "status", ConditionStatusName(c.status));
  if (c.observed_generation != 0) WriteInt64(w, "observedGeneration", c.observed_generation);
  WriteTime(w, "lastTransitionTime", c.last_transition_time);
  WriteString(w, "reason", c.reason);
  WriteString(w, "message", c.message);
  w.EndObject();
}

Status CheckTypeMeta(FieldReader& r, std::string_view api_version, std::string_view kind) {
  std::string got_version, got_kind;
  RETURN_IF_ERROR(r.String("apiVersion", &got_version));
  RETURN_IF_ERROR(r.String("kind", &got_kind));
  if (!got_version.empty() && got_version != api_version) {
    return InvalidArgumentError("apiVersion: expected \"{}\", got \"{}\"", api_version,
                                got_version);
  }
  if (!got_kind.empty() && got_kind != kind) {
    return InvalidArgumentError("kind: expected \"{}\", got \"{}\"", kind, got_kind);
  }
  return OkStatus();
}

}  // namespace common::api::json

namespace common::api {

Result<ObjectMeta> DecodeObjectMetaOnly(std::string_view object_json) {
  json::ScratchDocument scratch;
  rapidjson::Document& doc = scratch.doc();
  RETURN_IF_ERROR(json::ParseObject(object_json, doc, "object"));
  json::FieldReader root(doc, "");
  ObjectMeta meta;
  RETURN_IF_ERROR(root.Object(
      "metadata", [&](json::FieldReader& m) { return json::DecodeObjectMeta(m, &meta); },
      json::Presence::kRequired));
  return meta;
}

}  // namespace common::api
