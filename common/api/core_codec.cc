#include "common/api/core_codec.h"

#include "common/api/json.h"
#include "common/api/meta_codec.h"
#include "common/time/clock.h"

namespace common::api {
namespace {

using json::FieldReader;
using json::JsonWriter;
using json::Presence;

Status ReadMicroTime(FieldReader& r, const char* key, std::optional<MicroTime>* out) {
  std::string s;
  RETURN_IF_ERROR(r.String(key, &s));
  if (!r.Has(key)) {
    out->reset();
    return OkStatus();
  }
  Result<MicroTime> t = ParseMicroTime(s);
  if (!t.ok()) return t.status().WithContext(json::JoinPath(r.path(), key));
  *out = *t;
  return OkStatus();
}

void WriteMicroTime(JsonWriter& w, const char* key, const std::optional<MicroTime>& t) {
  if (t) json::WriteString(w, key, FormatMicroTime(*t));
}

template <typename T>
Result<T> DecodeWith(std::string_view text, std::string_view kind,
                     const std::function<Status(FieldReader&, T*)>& body) {
  json::ScratchDocument scratch;
  rapidjson::Document& doc = scratch.doc();
  RETURN_IF_ERROR(json::ParseObject(text, doc, kind));
  FieldReader root(doc, "");
  T out;
  RETURN_IF_ERROR(root.Object(
      "metadata", [&](FieldReader& m) { return json::DecodeObjectMeta(m, &out.metadata); },
      Presence::kRequired));
  RETURN_IF_ERROR(body(root, &out));
  return out;
}

}  // namespace

std::string FormatMicroTime(MicroTime t) { return time::FormatRfc3339Micro(t); }

Result<MicroTime> ParseMicroTime(std::string_view s) {
  ASSIGN_OR_RETURN(auto t, time::ParseRfc3339(s));
  return MicroTime(std::chrono::floor<std::chrono::microseconds>(t));
}

Result<Lease> DecodeLease(std::string_view text) {
  return DecodeWith<Lease>(text, "Lease", [](FieldReader& root, Lease* l) {
    return root.Object("spec", [&](FieldReader& s) -> Status {
      RETURN_IF_ERROR(s.String("holderIdentity", &l->spec.holder_identity));
      RETURN_IF_ERROR(s.OptionalInt32("leaseDurationSeconds", &l->spec.lease_duration_seconds));
      RETURN_IF_ERROR(ReadMicroTime(s, "acquireTime", &l->spec.acquire_time));
      RETURN_IF_ERROR(ReadMicroTime(s, "renewTime", &l->spec.renew_time));
      return s.OptionalInt32("leaseTransitions", &l->spec.lease_transitions);
    });
  });
}

std::string EncodeLease(const Lease& lease) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  json::WriteString(w, "apiVersion", "coordination.k8s.io/v1");
  json::WriteString(w, "kind", "Lease");
  w.Key("metadata");
  json::EncodeObjectMeta(w, lease.metadata);
  w.Key("spec");
  w.StartObject();
  // An empty holder is meaningful (released); always send it.
  json::WriteString(w, "holderIdentity", lease.spec.holder_identity);
  json::WriteOptional(w, "leaseDurationSeconds", lease.spec.lease_duration_seconds);
  WriteMicroTime(w, "acquireTime", lease.spec.acquire_time);
  WriteMicroTime(w, "renewTime", lease.spec.renew_time);
  json::WriteOptional(w, "leaseTransitions", lease.spec.lease_transitions);
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<Event> DecodeEvent(std::string_view text) {
  return DecodeWith<Event>(text, "Event", [](FieldReader& r, Event* e) -> Status {
    std::optional<MicroTime> event_time;
    RETURN_IF_ERROR(ReadMicroTime(r, "eventTime", &event_time));
    if (event_time) e->event_time = *event_time;
    RETURN_IF_ERROR(r.String("reportingController", &e->reporting_controller));
    RETURN_IF_ERROR(r.String("reportingInstance", &e->reporting_instance));
    RETURN_IF_ERROR(r.String("action", &e->action));
    RETURN_IF_ERROR(r.String("reason", &e->reason));
    RETURN_IF_ERROR(r.String("note", &e->note));
    RETURN_IF_ERROR(r.String("type", &e->type));
    RETURN_IF_ERROR(r.Object("regarding", [&](FieldReader& o) -> Status {
      RETURN_IF_ERROR(o.String("apiVersion", &e->regarding.api_version));
      RETURN_IF_ERROR(o.String("kind", &e->regarding.kind));
      RETURN_IF_ERROR(o.String("namespace", &e->regarding.namespace_));
      RETURN_IF_ERROR(o.String("name", &e->regarding.name));
      RETURN_IF_ERROR(o.String("uid", &e->regarding.uid));
      return o.String("resourceVersion", &e->regarding.resource_version);
    }));
    return r.Object("series", [&](FieldReader& s) -> Status {
      RETURN_IF_ERROR(s.Int32("count", &e->series_count));
      return ReadMicroTime(s, "lastObservedTime", &e->series_last_observed_time);
    });
  });
}

std::string EncodeEvent(const Event& e) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  json::WriteString(w, "apiVersion", "events.k8s.io/v1");
  json::WriteString(w, "kind", "Event");
  w.Key("metadata");
  json::EncodeObjectMeta(w, e.metadata);
  json::WriteString(w, "eventTime", FormatMicroTime(e.event_time));
  json::WriteStringIfNotEmpty(w, "reportingController", e.reporting_controller);
  json::WriteStringIfNotEmpty(w, "reportingInstance", e.reporting_instance);
  json::WriteStringIfNotEmpty(w, "action", e.action);
  json::WriteStringIfNotEmpty(w, "reason", e.reason);
  json::WriteStringIfNotEmpty(w, "note", e.note);
  json::WriteStringIfNotEmpty(w, "type", e.type);
  w.Key("regarding");
  w.StartObject();
  json::WriteStringIfNotEmpty(w, "apiVersion", e.regarding.api_version);
  json::WriteStringIfNotEmpty(w, "kind", e.regarding.kind);
  json::WriteStringIfNotEmpty(w, "namespace", e.regarding.namespace_);
  json::WriteStringIfNotEmpty(w, "name", e.regarding.name);
  json::WriteStringIfNotEmpty(w, "uid", e.regarding.uid);
  json::WriteStringIfNotEmpty(w, "resourceVersion", e.regarding.resource_version);
  w.EndObject();
  if (e.series_count > 0) {
    w.Key("series");
    w.StartObject();
    json::WriteInt64(w, "count", e.series_count);
    WriteMicroTime(w, "lastObservedTime", e.series_last_observed_time);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<Node> DecodeNode(std::string_view text) {
  return DecodeWith<Node>(text, "Node", [](FieldReader& r, Node* n) -> Status {
    RETURN_IF_ERROR(r.Object("spec", [&](FieldReader& s) -> Status {
      RETURN_IF_ERROR(s.Bool("unschedulable", &n->unschedulable));
      return s.ObjectArray("taints", &n->taints, [&](FieldReader& t) -> Status {
        Taint taint;
        RETURN_IF_ERROR(t.String("key", &taint.key, Presence::kRequired));
        RETURN_IF_ERROR(t.String("value", &taint.value));
        RETURN_IF_ERROR(t.String("effect", &taint.effect));
        n->taints.push_back(std::move(taint));
        return OkStatus();
      });
    }));
    return r.Object("status", [&](FieldReader& s) -> Status {
      RETURN_IF_ERROR(s.ObjectArray("addresses", &n->addresses, [&](FieldReader& a) -> Status {
        NodeAddress addr;
        RETURN_IF_ERROR(a.String("type", &addr.type, Presence::kRequired));
        RETURN_IF_ERROR(a.String("address", &addr.address, Presence::kRequired));
        n->addresses.push_back(std::move(addr));
        return OkStatus();
      }));
      return s.ObjectArray("conditions", &n->conditions, [&](FieldReader& c) -> Status {
        // v1.NodeCondition, not metav1.Condition: only type and status are required; the
        // heartbeat time is not kept.
        Condition cond;
        RETURN_IF_ERROR(c.String("type", &cond.type, Presence::kRequired));
        RETURN_IF_ERROR(c.Enum("status", &cond.status, &json::ParseConditionStatus,
                               "True, False, Unknown", Presence::kRequired));
        RETURN_IF_ERROR(c.Time("lastTransitionTime", &cond.last_transition_time));
        RETURN_IF_ERROR(c.String("reason", &cond.reason));
        RETURN_IF_ERROR(c.String("message", &cond.message));
        n->conditions.push_back(std::move(cond));
        return OkStatus();
      });
    });
  });
}

}  // namespace common::api
