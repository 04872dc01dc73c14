#include "common/api/v1alpha1/codec.h"

#include "common/api/json.h"
#include "common/api/meta_codec.h"
#include "common/api/v1alpha1/validation.h"

namespace common::api::v1alpha1 {
namespace {

using json::FieldReader;
using json::JsonWriter;
using json::Presence;

constexpr std::string_view kPhases =
    "New, Requested, Syncing, Synced, Expanding, Replacing, Deleting";
constexpr std::string_view kPartitionStates =
    "Requested, Created, Spare, Syncing, Synced, Faulty, Missing, Replacing, Deleting";

// The schema's bounds, checked again on decode so a bad object from any source (an old server,
// a hand edit, a test double) is reported instead of acted on: the spec values with the
// validators of validation.h, the other bounded integers here.
Status CheckRange(FieldReader& r, const char* key, int64_t v, int64_t min, int64_t max) {
  if (v < min || v > max) {
    return InvalidArgumentError("{}: {} is out of range [{}, {}]", json::JoinPath(r.path(), key), v,
                                min, max);
  }
  return OkStatus();
}

Status DecodeVolumeSpec(FieldReader& r, MeshStorVolumeSpec* s) {
  RETURN_IF_ERROR(r.Int64("capacityBytes", &s->capacity_bytes, Presence::kRequired));
  RETURN_IF_ERROR(r.Int32("replicaCount", &s->replica_count, Presence::kRequired));
  RETURN_IF_ERROR(r.Int32("stripeWidth", &s->stripe_width, Presence::kRequired));
  RETURN_IF_ERROR(r.Int32("memberMissingTimeout", &s->member_missing_timeout, Presence::kRequired));
  RETURN_IF_ERROR(r.Int32("sectorSize", &s->sector_size, Presence::kRequired));
  RETURN_IF_ERROR(
      ValidateCapacityBytes(s->capacity_bytes, json::JoinPath(r.path(), "capacityBytes")));
  RETURN_IF_ERROR(ValidateReplicaCount(s->replica_count, json::JoinPath(r.path(), "replicaCount")));
  RETURN_IF_ERROR(ValidateStripeWidth(s->stripe_width, json::JoinPath(r.path(), "stripeWidth")));
  RETURN_IF_ERROR(ValidateMemberMissingTimeout(s->member_missing_timeout,
                                               json::JoinPath(r.path(), "memberMissingTimeout")));
  RETURN_IF_ERROR(ValidateSectorSize(s->sector_size, json::JoinPath(r.path(), "sectorSize")));
  RETURN_IF_ERROR(r.String("consumerNode", &s->consumer_node));
  RETURN_IF_ERROR(r.String("stagingPath", &s->staging_path));
  RETURN_IF_ERROR(
      r.ObjectArray("publishTargets", &s->publish_targets, [&](FieldReader& t) -> Status {
        PublishTarget target;
        RETURN_IF_ERROR(t.String("path", &target.path, Presence::kRequired));
        RETURN_IF_ERROR(t.Bool("readOnly", &target.read_only));
        s->publish_targets.push_back(std::move(target));
        return OkStatus();
      }));
  RETURN_IF_ERROR(r.ObjectArray("members", &s->members, [&](FieldReader& m) -> Status {
    Member member;
    RETURN_IF_ERROR(m.Int32("index", &member.index, Presence::kRequired));
    RETURN_IF_ERROR(m.String("node", &member.node, Presence::kRequired));
    RETURN_IF_ERROR(m.String("drive", &member.drive, Presence::kRequired));
    RETURN_IF_ERROR(m.Int64("sizeBytes", &member.size_bytes, Presence::kRequired));
    RETURN_IF_ERROR(m.Int32("namespaceID", &member.namespace_id, Presence::kRequired));
    RETURN_IF_ERROR(
        CheckRange(m, "namespaceID", member.namespace_id, kMinNamespaceId, kMaxNamespaceId));
    RETURN_IF_ERROR(
        m.Enum("role", &member.role, &ParseMemberRole, "local, remote", Presence::kRequired));
    RETURN_IF_ERROR(
        m.Enum("state", &member.state, &ParseMemberState, "present, retired", Presence::kRequired));
    RETURN_IF_ERROR(m.OptionalInt32("slot", &member.slot));
    RETURN_IF_ERROR(m.OptionalInt32("replaces", &member.replaces));
    s->members.push_back(std::move(member));
    return OkStatus();
  }));
  RETURN_IF_ERROR(r.StringList("fencedNodes", &s->fenced_nodes));
  return r.OptionalTime("formattedAt", &s->formatted_at);
}

void EncodeVolumeSpec(JsonWriter& w, const MeshStorVolumeSpec& s) {
  w.StartObject();
  json::WriteInt64(w, "capacityBytes", s.capacity_bytes);
  json::WriteInt64(w, "replicaCount", s.replica_count);
  json::WriteInt64(w, "stripeWidth", s.stripe_width);
  json::WriteInt64(w, "memberMissingTimeout", s.member_missing_timeout);
  json::WriteInt64(w, "sectorSize", s.sector_size);
  json::WriteStringIfNotEmpty(w, "consumerNode", s.consumer_node);
  json::WriteStringIfNotEmpty(w, "stagingPath", s.staging_path);
  if (!s.publish_targets.empty()) {
    w.Key("publishTargets");
    w.StartArray();
    for (const auto& t : s.publish_targets) {
      w.StartObject();
      json::WriteString(w, "path", t.path);
      if (t.read_only) {
        w.Key("readOnly");
        w.Bool(true);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  if (!s.members.empty()) {
    w.Key("members");
    w.StartArray();
    for (const auto& m : s.members) {
      w.StartObject();
      json::WriteInt64(w, "index", m.index);
      json::WriteString(w, "node", m.node);
      json::WriteString(w, "drive", m.drive);
      json::WriteInt64(w, "sizeBytes", m.size_bytes);
      json::WriteInt64(w, "namespaceID", m.namespace_id);
      json::WriteString(w, "role", Name(m.role));
      json::WriteString(w, "state", Name(m.state));
      json::WriteOptional(w, "slot", m.slot);
      json::WriteOptional(w, "replaces", m.replaces);
      w.EndObject();
    }
    w.EndArray();
  }
  json::WriteOptional(w, "formattedAt", s.formatted_at);
  json::WriteStringListIfNotEmpty(w, "fencedNodes", s.fenced_nodes);
  w.EndObject();
}

Status DecodeVolumeStatus(FieldReader& r, MeshStorVolumeStatus* s) {
  RETURN_IF_ERROR(r.OptionalInt64("observedGeneration", &s->observed_generation));
  if (r.Has("phase")) {
    VolumePhase phase = VolumePhase::kNew;
    RETURN_IF_ERROR(r.Enum("phase", &phase, &ParseVolumePhase, kPhases));
    s->phase = phase;
  }
  RETURN_IF_ERROR(r.String("nodeName", &s->node_name));
  RETURN_IF_ERROR(r.String("mdState", &s->md_state));
  RETURN_IF_ERROR(r.String("ready", &s->ready));
  RETURN_IF_ERROR(r.OptionalInt32("totalDevices", &s->total_devices));
  RETURN_IF_ERROR(r.OptionalInt32("activeDevices", &s->active_devices));
  RETURN_IF_ERROR(r.OptionalInt32("failedDevices", &s->failed_devices));
  RETURN_IF_ERROR(r.OptionalInt32("downDevices", &s->down_devices));
  RETURN_IF_ERROR(r.OptionalInt32("degradedDevices", &s->degraded_devices));
  RETURN_IF_ERROR(r.String("syncPercentage", &s->sync_percentage));
  RETURN_IF_ERROR(r.ObjectArray("partitions", &s->partitions, [&](FieldReader& p) -> Status {
    PartitionStatus part;
    RETURN_IF_ERROR(p.Int32("index", &part.index, Presence::kRequired));
    RETURN_IF_ERROR(p.String("nodeID", &part.node_id, Presence::kRequired));
    RETURN_IF_ERROR(p.String("drive", &part.drive));
    RETURN_IF_ERROR(p.String("partitionUUID", &part.partition_uuid));
    RETURN_IF_ERROR(p.OptionalInt32("nvmeofNamespaceID", &part.nvmeof_namespace_id));
    if (part.nvmeof_namespace_id) {
      RETURN_IF_ERROR(CheckRange(p, "nvmeofNamespaceID", *part.nvmeof_namespace_id, kMinNamespaceId,
                                 kMaxNamespaceId));
    }
    RETURN_IF_ERROR(
        p.Enum("state", &part.state, &ParsePartitionState, kPartitionStates, Presence::kRequired));
    RETURN_IF_ERROR(p.OptionalInt64("sizeBytes", &part.size_bytes));
    RETURN_IF_ERROR(p.OptionalTime("updatedAt", &part.updated_at));
    RETURN_IF_ERROR(p.OptionalTime("missingSince", &part.missing_since));
    RETURN_IF_ERROR(p.String("message", &part.message));
    RETURN_IF_ERROR(p.StringList("fencedNodes", &part.fenced_nodes));
    RETURN_IF_ERROR(p.OptionalInt64("mdEvents", &part.md_events));
    RETURN_IF_ERROR(p.OptionalInt64("leftAtEvents", &part.left_at_events));
    if (part.md_events) {
      RETURN_IF_ERROR(CheckRange(p, "mdEvents", *part.md_events, 0, INT64_MAX));
    }
    if (part.left_at_events) {
      RETURN_IF_ERROR(CheckRange(p, "leftAtEvents", *part.left_at_events, 0, INT64_MAX));
    }
    s->partitions.push_back(std::move(part));
    return OkStatus();
  }));
  RETURN_IF_ERROR(r.String("stagedPath", &s->staged_path));
  RETURN_IF_ERROR(r.OptionalInt64("filesystemBytes", &s->filesystem_bytes));
  RETURN_IF_ERROR(r.StringList("publishedTargets", &s->published_targets));
  s->fenced_consumer.reset();
  if (r.Has("fencedConsumer")) {
    FencedConsumer f;
    RETURN_IF_ERROR(r.Object("fencedConsumer", [&](FieldReader& o) -> Status {
      RETURN_IF_ERROR(o.String("node", &f.node, Presence::kRequired));
      return o.OptionalTime("at", &f.at);
    }));
    s->fenced_consumer = std::move(f);
  }
  s->in_sync.reset();
  RETURN_IF_ERROR(r.Object("inSync", [&](FieldReader& i) -> Status {
    InSyncRecord rec;
    RETURN_IF_ERROR(i.Int32List("members", &rec.members));
    for (size_t n = 0; n < rec.members.size(); ++n) {
      if (rec.members[n] < 0) {
        return InvalidArgumentError("{}[{}]: member index {} is negative",
                                    json::JoinPath(i.path(), "members"), n, rec.members[n]);
      }
    }
    RETURN_IF_ERROR(i.String("node", &rec.node));
    RETURN_IF_ERROR(i.OptionalTime("recordedAt", &rec.recorded_at));
    RETURN_IF_ERROR(i.OptionalInt64("events", &rec.events));
    s->in_sync = std::move(rec);
    return OkStatus();
  }));
  s->forced_start.reset();
  RETURN_IF_ERROR(r.Object("forcedStart", [&](FieldReader& f) -> Status {
    ForcedStart fs;
    RETURN_IF_ERROR(f.String("token", &fs.token, Presence::kRequired));
    RETURN_IF_ERROR(f.OptionalTime("at", &fs.at));
    RETURN_IF_ERROR(f.String("node", &fs.node));
    RETURN_IF_ERROR(f.Int32List("fromMembers", &fs.from_members));
    RETURN_IF_ERROR(f.Int32List("missingMembers", &fs.missing_members));
    RETURN_IF_ERROR(f.OptionalTime("lossWindowSince", &fs.loss_window_since));
    RETURN_IF_ERROR(f.Int32List("divergedMembers", &fs.diverged_members));
    s->forced_start = std::move(fs);
    return OkStatus();
  }));
  RETURN_IF_ERROR(r.String("startBlocked", &s->start_blocked));
  return r.ObjectArray("conditions", &s->conditions, [&](FieldReader& c) -> Status {
    Condition cond;
    RETURN_IF_ERROR(json::DecodeCondition(c, &cond));
    s->conditions.push_back(std::move(cond));
    return OkStatus();
  });
}

void EncodeVolumeStatus(JsonWriter& w, const MeshStorVolumeStatus& s) {
  w.StartObject();
  json::WriteOptional(w, "observedGeneration", s.observed_generation);
  if (s.phase) json::WriteString(w, "phase", Name(*s.phase));
  json::WriteStringIfNotEmpty(w, "nodeName", s.node_name);
  json::WriteStringIfNotEmpty(w, "mdState", s.md_state);
  json::WriteStringIfNotEmpty(w, "ready", s.ready);
  json::WriteOptional(w, "totalDevices", s.total_devices);
  json::WriteOptional(w, "activeDevices", s.active_devices);
  json::WriteOptional(w, "failedDevices", s.failed_devices);
  json::WriteOptional(w, "downDevices", s.down_devices);
  json::WriteOptional(w, "degradedDevices", s.degraded_devices);
  json::WriteStringIfNotEmpty(w, "syncPercentage", s.sync_percentage);
  if (!s.partitions.empty()) {
    w.Key("partitions");
    w.StartArray();
    for (const auto& p : s.partitions) {
      w.StartObject();
      json::WriteInt64(w, "index", p.index);
      json::WriteString(w, "nodeID", p.node_id);
      json::WriteStringIfNotEmpty(w, "drive", p.drive);
      json::WriteStringIfNotEmpty(w, "partitionUUID", p.partition_uuid);
      json::WriteOptional(w, "nvmeofNamespaceID", p.nvmeof_namespace_id);
      json::WriteString(w, "state", Name(p.state));
      json::WriteOptional(w, "sizeBytes", p.size_bytes);
      json::WriteOptional(w, "updatedAt", p.updated_at);
      json::WriteOptional(w, "missingSince", p.missing_since);
      json::WriteStringIfNotEmpty(w, "message", p.message);
      json::WriteStringListIfNotEmpty(w, "fencedNodes", p.fenced_nodes);
      json::WriteOptional(w, "mdEvents", p.md_events);
      json::WriteOptional(w, "leftAtEvents", p.left_at_events);
      w.EndObject();
    }
    w.EndArray();
  }
  json::WriteStringIfNotEmpty(w, "stagedPath", s.staged_path);
  json::WriteOptional(w, "filesystemBytes", s.filesystem_bytes);
  json::WriteStringListIfNotEmpty(w, "publishedTargets", s.published_targets);
  if (s.fenced_consumer) {
    w.Key("fencedConsumer");
    w.StartObject();
    json::WriteString(w, "node", s.fenced_consumer->node);
    json::WriteOptional(w, "at", s.fenced_consumer->at);
    w.EndObject();
  }
  if (s.in_sync) {
    w.Key("inSync");
    w.StartObject();
    json::WriteInt32List(w, "members", s.in_sync->members);
    json::WriteStringIfNotEmpty(w, "node", s.in_sync->node);
    json::WriteOptional(w, "recordedAt", s.in_sync->recorded_at);
    json::WriteOptional(w, "events", s.in_sync->events);
    w.EndObject();
  }
  if (s.forced_start) {
    const ForcedStart& f = *s.forced_start;
    w.Key("forcedStart");
    w.StartObject();
    json::WriteString(w, "token", f.token);
    json::WriteOptional(w, "at", f.at);
    json::WriteStringIfNotEmpty(w, "node", f.node);
    json::WriteInt32List(w, "fromMembers", f.from_members);
    json::WriteInt32List(w, "missingMembers", f.missing_members);
    json::WriteOptional(w, "lossWindowSince", f.loss_window_since);
    json::WriteInt32List(w, "divergedMembers", f.diverged_members);
    w.EndObject();
  }
  json::WriteStringIfNotEmpty(w, "startBlocked", s.start_blocked);
  if (!s.conditions.empty()) {
    w.Key("conditions");
    w.StartArray();
    for (const auto& c : s.conditions) json::EncodeCondition(w, c);
    w.EndArray();
  }
  w.EndObject();
}

bool IsEmpty(const MeshStorVolumeStatus& s) { return s == MeshStorVolumeStatus{}; }
bool IsEmpty(const MeshStorNodeDeviceStatus& s) { return s == MeshStorNodeDeviceStatus{}; }

Status DecodeNodeDeviceStatus(FieldReader& r, MeshStorNodeDeviceStatus* s) {
  RETURN_IF_ERROR(r.String("devicePath", &s->device_path));
  RETURN_IF_ERROR(r.String("model", &s->model));
  RETURN_IF_ERROR(r.String("serial", &s->serial));
  RETURN_IF_ERROR(r.OptionalInt64("sizeBytes", &s->size_bytes));
  RETURN_IF_ERROR(r.OptionalInt32("sectorSize", &s->sector_size));
  RETURN_IF_ERROR(r.OptionalInt32("queueCount", &s->queue_count));
  RETURN_IF_ERROR(r.OptionalInt64("biggestFreeExtentBytes", &s->biggest_free_extent_bytes));
  RETURN_IF_ERROR(r.OptionalInt32("localPartitions", &s->local_partitions));
  RETURN_IF_ERROR(r.OptionalInt32("remotePartitions", &s->remote_partitions));
  RETURN_IF_ERROR(r.OptionalInt32("unknownPartitions", &s->unknown_partitions));
  RETURN_IF_ERROR(r.String("hostNQN", &s->host_nqn));
  RETURN_IF_ERROR(
      r.ObjectArray("transportAddresses", &s->transport_addresses, [&](FieldReader& a) -> Status {
        TransportAddress addr;
        RETURN_IF_ERROR(a.Enum("transport", &addr.transport, &ParseTransport, "tcp, rdma",
                               Presence::kRequired));
        RETURN_IF_ERROR(a.String("address", &addr.address, Presence::kRequired));
        RETURN_IF_ERROR(a.Int32("port", &addr.port, Presence::kRequired));
        RETURN_IF_ERROR(CheckRange(a, "port", addr.port, 1, 65535));
        s->transport_addresses.push_back(std::move(addr));
        return OkStatus();
      }));
  return r.OptionalTime("updatedAt", &s->updated_at);
}

void EncodeNodeDeviceStatus(JsonWriter& w, const MeshStorNodeDeviceStatus& s) {
  w.StartObject();
  json::WriteStringIfNotEmpty(w, "devicePath", s.device_path);
  json::WriteStringIfNotEmpty(w, "model", s.model);
  json::WriteStringIfNotEmpty(w, "serial", s.serial);
  json::WriteOptional(w, "sizeBytes", s.size_bytes);
  json::WriteOptional(w, "sectorSize", s.sector_size);
  json::WriteOptional(w, "queueCount", s.queue_count);
  json::WriteOptional(w, "biggestFreeExtentBytes", s.biggest_free_extent_bytes);
  json::WriteOptional(w, "localPartitions", s.local_partitions);
  json::WriteOptional(w, "remotePartitions", s.remote_partitions);
  json::WriteOptional(w, "unknownPartitions", s.unknown_partitions);
  json::WriteStringIfNotEmpty(w, "hostNQN", s.host_nqn);
  if (!s.transport_addresses.empty()) {
    w.Key("transportAddresses");
    w.StartArray();
    for (const auto& a : s.transport_addresses) {
      w.StartObject();
      json::WriteString(w, "transport", Name(a.transport));
      json::WriteString(w, "address", a.address);
      json::WriteInt64(w, "port", a.port);
      w.EndObject();
    }
    w.EndArray();
  }
  json::WriteOptional(w, "updatedAt", s.updated_at);
  w.EndObject();
}

template <typename Object, typename DecodeSpec, typename DecodeStatus>
Result<Object> DecodeObject(std::string_view text, std::string_view kind, DecodeSpec decode_spec,
                            DecodeStatus decode_status) {
  json::ScratchDocument scratch;
  rapidjson::Document& doc = scratch.doc();
  RETURN_IF_ERROR(json::ParseObject(text, doc, kind));
  FieldReader root(doc, "");
  Object out;
  Status s = [&]() -> Status {
    RETURN_IF_ERROR(json::CheckTypeMeta(root, kApiVersion, kind));
    RETURN_IF_ERROR(root.Object(
        "metadata", [&](FieldReader& m) { return json::DecodeObjectMeta(m, &out.metadata); },
        Presence::kRequired));
    RETURN_IF_ERROR(root.Object(
        "spec", [&](FieldReader& r) { return decode_spec(r, &out.spec); }, Presence::kRequired));
    return root.Object("status", [&](FieldReader& r) { return decode_status(r, &out.status); });
  }();
  if (!s.ok()) {
    const std::string& name = out.metadata.name;
    return s.WithContext(name.empty() ? std::string(kind) : fmt::format("{} {}", kind, name));
  }
  return out;
}

template <typename Object, typename EncodeSpec, typename EncodeStatus>
std::string EncodeObject(const Object& o, std::string_view kind, EncodeSpec encode_spec,
                         EncodeStatus encode_status) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  json::WriteString(w, "apiVersion", kApiVersion);
  json::WriteString(w, "kind", kind);
  w.Key("metadata");
  json::EncodeObjectMeta(w, o.metadata);
  w.Key("spec");
  encode_spec(w, o.spec);
  if (!IsEmpty(o.status)) {
    w.Key("status");
    encode_status(w, o.status);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

Result<MeshStorVolume> DecodeMeshStorVolume(std::string_view json) {
  return DecodeObject<MeshStorVolume>(json, kVolumeKind, DecodeVolumeSpec, DecodeVolumeStatus);
}

std::string EncodeMeshStorVolume(const MeshStorVolume& v) {
  return EncodeObject(v, kVolumeKind, EncodeVolumeSpec, EncodeVolumeStatus);
}

Result<MeshStorNodeDevice> DecodeMeshStorNodeDevice(std::string_view json) {
  auto decode_spec = [](FieldReader& r, MeshStorNodeDeviceSpec* s) -> Status {
    RETURN_IF_ERROR(r.String("nodeName", &s->node_name, Presence::kRequired));
    return r.String("device", &s->device, Presence::kRequired);
  };
  return DecodeObject<MeshStorNodeDevice>(json, kNodeDeviceKind, decode_spec,
                                          DecodeNodeDeviceStatus);
}

std::string EncodeMeshStorNodeDevice(const MeshStorNodeDevice& d) {
  auto encode_spec = [](JsonWriter& w, const MeshStorNodeDeviceSpec& s) {
    w.StartObject();
    json::WriteString(w, "nodeName", s.node_name);
    json::WriteString(w, "device", s.device);
    w.EndObject();
  };
  return EncodeObject(d, kNodeDeviceKind, encode_spec, EncodeNodeDeviceStatus);
}

}  // namespace common::api::v1alpha1
