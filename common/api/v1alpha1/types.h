// C++ types of the csi.meshstor.io/v1alpha1 API (crds/*.yaml is the schema's source of truth).
// Plain structs with no JSON dependency; codecs are in codec.h. Field comments name the single
// writer of each field (docs/design.md §3.3).
//
// Thread contract: value types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/meta.h"
#include "common/api/v1alpha1/geometry.h"

namespace common::api::v1alpha1 {

inline constexpr std::string_view kGroup = "csi.meshstor.io";
inline constexpr std::string_view kVersion = "v1alpha1";
inline constexpr std::string_view kApiVersion = "csi.meshstor.io/v1alpha1";
inline constexpr std::string_view kVolumeKind = "MeshStorVolume";
inline constexpr std::string_view kVolumePlural = "meshstorvolumes";
inline constexpr std::string_view kNodeDeviceKind = "MeshStorNodeDevice";
inline constexpr std::string_view kNodeDevicePlural = "meshstornodedevices";

// Bounds of the spec values a volume's creator chooses; crds/meshstorvolumes.yaml states the same
// (validation_test checks), validation.h checks them.
inline constexpr int64_t kMinCapacityBytes = 512 * kMiB;
inline constexpr int32_t kMinReplicaCount = 1;
inline constexpr int32_t kMaxReplicaCount = 16;
inline constexpr int32_t kMinStripeWidth = 1;
inline constexpr int32_t kMaxStripeWidth = 16;
inline constexpr int32_t kMinMemberMissingTimeoutSeconds = 60;
inline constexpr std::array<int32_t, 2> kSectorSizes = {512, 4096};
// The most members spec.members holds (its maxItems), so the most RAID slots an array may have.
inline constexpr int32_t kMaxArraySlots = 64;
// A filesystem this close to its array's size counts as grown to it (XFS may leave a tail too
// small for an allocation group); the agent grows it when it is further behind.
inline constexpr int64_t kFilesystemSlackBytes = 16 * kMiB;
inline constexpr int32_t kMinNamespaceId = 1;
inline constexpr int32_t kMaxNamespaceId = 8192;

enum class VolumePhase { kNew, kRequested, kSyncing, kSynced, kExpanding, kReplacing, kDeleting };
enum class PartitionState {
  kRequested,
  kCreated,
  kSpare,
  kSyncing,
  kSynced,
  kFaulty,
  kMissing,
  kReplacing,
  kDeleting,
};
enum class MemberRole { kLocal, kRemote };
enum class MemberState { kPresent, kRetired };
enum class Transport { kTcp, kRdma };

// Wire names ("Synced", "local", "tcp", ...) and their parsers; parsers return nullopt for an
// unknown name so the caller can report it with its field path.
std::string_view Name(VolumePhase v);
std::string_view Name(PartitionState v);
std::string_view Name(MemberRole v);
std::string_view Name(MemberState v);
std::string_view Name(Transport v);
std::optional<VolumePhase> ParseVolumePhase(std::string_view s);
std::optional<PartitionState> ParsePartitionState(std::string_view s);
std::optional<MemberRole> ParseMemberRole(std::string_view s);
std::optional<MemberState> ParseMemberState(std::string_view s);
std::optional<Transport> ParseTransport(std::string_view s);

struct PublishTarget {
  std::string path;
  bool read_only = false;

  bool operator==(const PublishTarget&) const = default;
};

// One member instruction (operator-written).
struct Member {
  int32_t index = 0;  // stable; the partition UUID derives from volume name + index
  std::string node;
  std::string drive;  // device name on that node, e.g. "nvme0n1"
  int64_t size_bytes = 0;
  int32_t namespace_id = 0;  // NVMe-oF NSID, unique per exporting node, 1..8192
  MemberRole role = MemberRole::kRemote;
  MemberState state = MemberState::kPresent;
  std::optional<int32_t> slot;      // RAID slot (mirror position)
  std::optional<int32_t> replaces;  // index of the member this one replaces

  bool operator==(const Member&) const = default;
};

struct MeshStorVolumeSpec {
  int64_t capacity_bytes = 0;          // csi-shim; MiB multiple, ≥ 512 MiB, only grows
  int32_t replica_count = 0;           // csi-shim
  int32_t stripe_width = 0;            // csi-shim, immutable
  int32_t member_missing_timeout = 0;  // csi-shim, seconds, ≥ 60
  int32_t sector_size = 0;             // csi-shim, 512 or 4096, immutable
  std::string consumer_node;           // node csi-shim
  // node csi-shim: where the consumer mounts the filesystem (kubelet's staging_target_path);
  // empty: the agent's own staging directory.
  std::string staging_path;
  std::vector<PublishTarget> publish_targets;  // node csi-shim
  std::vector<Member> members;                 // operator
  std::optional<Time> formatted_at;            // consumer agent, set once
  // operator: nodes that must no longer reach any member of this volume (a dead consumer,
  // docs/design.md "Failover"). Every exporter drops their host NQNs and connections.
  std::vector<std::string> fenced_nodes;

  bool operator==(const MeshStorVolumeSpec&) const = default;
};

// One member as observed by the agent of its node.
struct PartitionStatus {
  int32_t index = 0;
  std::string node_id;
  std::string drive;
  std::string partition_uuid;
  std::optional<int32_t> nvmeof_namespace_id;
  PartitionState state = PartitionState::kRequested;
  std::optional<int64_t> size_bytes;
  std::optional<Time> updated_at;
  std::optional<Time> missing_since;
  std::string message;
  // The exporter agent: the spec.fencedNodes it has cut off from this partition (confirmed
  // after applying).
  std::vector<std::string> fenced_nodes;
  // The consumer agent: the MD event count in this member's own superblock, as last read (at a
  // start, and whenever the in-sync set changes) (docs/design.md §6.1).
  std::optional<int64_t> md_events;
  // The consumer agent: the array's MD event count in the in-sync record that first left this
  // member out (its exit), an upper bound of the count its own copy can carry unless it was run
  // elsewhere afterwards; cleared once it is a working member of the array again.
  std::optional<int64_t> left_at_events;

  bool operator==(const PartitionStatus&) const = default;
};

// The consumer node the operator declared dead and fenced (every reachable exporter confirmed).
struct FencedConsumer {
  std::string node;
  std::optional<Time> at;

  bool operator==(const FencedConsumer&) const = default;
};

// The members that hold every acknowledged write: MD's in-sync set of the running array, as
// recorded by the consumer agent (docs/design.md §6.1). An array starts only when every member
// listed here is present (or by force).
struct InSyncRecord {
  std::vector<int32_t> members;     // member indexes, ascending
  std::string node;                 // the consumer node that recorded it
  std::optional<Time> recorded_at;  // when `members` last changed
  std::optional<int64_t> events;    // MD's event count of the array then

  bool operator==(const InSyncRecord&) const = default;
};

// A start the administrator forced (annotation kForceStartAnnotation) although members of the
// last in-sync set were missing: what may have been lost.
struct ForcedStart {
  std::string token;  // the annotation's value that was honoured
  std::optional<Time> at;
  std::string node;
  std::vector<int32_t> from_members;     // the array was started from these
  std::vector<int32_t> missing_members;  // in-sync members not among them
  // The recordedAt of the in-sync set that listed the missing members: acknowledged writes
  // since then may exist only on them.
  std::optional<Time> loss_window_since;
  // Members whose copy diverged from the running array (missing at this or an earlier forced
  // start and not rebuilt since): they rejoin only by a full rebuild, never a bitmap re-add.
  // A member leaves the list once it is in sync again.
  std::vector<int32_t> diverged_members;

  bool operator==(const ForcedStart&) const = default;
};

// Annotation on a MeshStorVolume: any non-empty value asks the consumer agent to start the array
// from the best present copy although members of the last in-sync set are missing; honoured once
// per distinct value (status.forcedStart.token).
inline constexpr std::string_view kForceStartAnnotation = "csi.meshstor.io/force-start";

struct MeshStorVolumeStatus {
  std::optional<int64_t> observed_generation;  // operator
  std::optional<VolumePhase> phase;            // operator
  std::string node_name;                       // consumer agent
  std::string md_state;                        // consumer agent
  std::string ready;                           // operator: "active/total"
  std::optional<int32_t> total_devices;        // consumer agent
  std::optional<int32_t> active_devices;       // consumer agent
  std::optional<int32_t> failed_devices;       // consumer agent
  std::optional<int32_t> down_devices;         // consumer agent
  std::optional<int32_t> degraded_devices;     // operator
  std::string sync_percentage;                 // consumer agent, e.g. "45.2%"
  std::vector<PartitionStatus> partitions;     // agent of each member's node
  std::string staged_path;                     // consumer agent
  // consumer agent: size of the filesystem on the array (XFS superblock), once mounted; within
  // kFilesystemSlackBytes of spec.capacityBytes once an expansion reached the filesystem.
  std::optional<int64_t> filesystem_bytes;
  std::vector<std::string> published_targets;  // consumer agent
  std::vector<Condition> conditions;           // operator
  // operator: set once spec.consumerNode was fenced and every reachable exporter confirmed;
  // the CSI shim lets another node take the volume over while it names spec.consumerNode.
  std::optional<FencedConsumer> fenced_consumer;
  std::optional<InSyncRecord> in_sync;      // consumer agent
  std::optional<ForcedStart> forced_start;  // consumer agent
  // consumer agent: why the array may not start (the in-sync members it waits for); empty when
  // not blocked.
  std::string start_blocked;

  bool operator==(const MeshStorVolumeStatus&) const = default;
};

struct MeshStorVolume {
  ObjectMeta metadata;
  MeshStorVolumeSpec spec;
  MeshStorVolumeStatus status;

  bool operator==(const MeshStorVolume&) const = default;
};

struct TransportAddress {
  Transport transport = Transport::kTcp;
  std::string address;
  int32_t port = 0;

  bool operator==(const TransportAddress&) const = default;
};

struct MeshStorNodeDeviceSpec {
  std::string node_name;  // immutable
  std::string device;     // immutable, e.g. "nvme0n1"

  bool operator==(const MeshStorNodeDeviceSpec&) const = default;
};

// Everything here is written by the agent of spec.nodeName.
struct MeshStorNodeDeviceStatus {
  std::string device_path;
  std::string model;
  std::string serial;
  std::optional<int64_t> size_bytes;
  std::optional<int32_t> sector_size;
  std::optional<int32_t> queue_count;
  std::optional<int64_t> biggest_free_extent_bytes;
  std::optional<int32_t> local_partitions;
  std::optional<int32_t> remote_partitions;
  std::optional<int32_t> unknown_partitions;
  std::string host_nqn;
  std::vector<TransportAddress> transport_addresses;
  std::optional<Time> updated_at;

  bool operator==(const MeshStorNodeDeviceStatus&) const = default;
};

struct MeshStorNodeDevice {
  ObjectMeta metadata;
  MeshStorNodeDeviceSpec spec;
  MeshStorNodeDeviceStatus status;

  bool operator==(const MeshStorNodeDevice&) const = default;
};

// "<node>-<device>", the object name of a drive.
std::string NodeDeviceName(std::string_view node, std::string_view device);

}  // namespace common::api::v1alpha1
