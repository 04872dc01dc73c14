// The agent's per-volume work on its node (docs/design.md §2, §5, §6), one level-triggered pass at
// a time: each pass reads the kernel (through agent/sys) and the volume, takes the steps that are
// due, and reports what it observed. Nothing is remembered between passes except what the
// kernel and the volume's status hold, so a pass after a crash (kill -9 at any step) finds what
// exists and continues: no second zeroing of a used partition, no second mkfs, no lost mount.
//
// Owner side, for each member on this node:
//   present: create the partition (deterministic name and UUID) and zero it, grow it to
//     sizeBytes, export it (remote role) to the consumer's host NQN only — one subsystem per
//     (this node, consumer) pair — and withdraw it from any other consumer's subsystem (fence);
//   retired: unexport and delete it, then drop its status entry (the operator's confirmation).
//   Reported: the partition's uuid, size, namespace ID; state Created once zeroed (the consumer
//   writes the MD-derived states afterwards).
// Consumer side, when spec.consumerNode is this node:
//   connect the remote members, create the array (new volume: every member freshly zeroed) or
//   assemble it (existing: never a member of another array), re-add a returning member (bitmap
//   catch-up; a diverged one rejoins as a new member with a full resync), add replacement members,
//   remove retired ones, format XFS exactly once (spec.formattedAt), mount at the staging path,
//   bind-mount every publish target, grow array and filesystem when members grew; tear it all
//   down in order when this node stops being the consumer or the volume is deleted.
//   Reported: nodeName, mdState, device counts, syncPercentage, stagedPath, publishedTargets and
//   the state of every member as MD sees it (Missing with missingSince while unreachable).
// The stale-member guard (docs/design.md §6.1): the consumer records MD's in-sync set of the
// running array in status.inSync (shrunk as soon as MD fails or removes a member: an MD event
// wakes the pass; grown once a member is fully in sync). An array that is not running starts
// only from members that provably hold every acknowledged write: every member of status.inSync
// must be present (reachable, carrying the array's UUID), and the array is assembled from them
// alone (MD takes the freshest by event count); otherwise it waits, with the reason in
// status.startBlocked, until they return or an administrator forces a start (annotation
// csi.meshstor.io/force-start, once per value) from the present copy with the highest event
// count, recorded in status.forcedStart. Members missing at a forced start diverged: they rejoin
// only by a full rebuild, never a bitmap re-add.
//
// Thread contract: one VolumeReconciler per node; Reconcile calls for one volume are serialized
// by the caller (the work queue); calls for different volumes may not run concurrently either
// (the kernel layer's subsystems and controllers are shared between volumes).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/sys/drives.h"
#include "agent/sys/filesystem.h"
#include "agent/sys/md.h"
#include "agent/sys/nvme_host.h"
#include "agent/sys/nvmet.h"
#include "agent/sys/partitions.h"
#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"
#include "common/time/clock.h"

namespace agent {

// The kernel layer of one node. Not owned.
struct NodeKernel {
  sys::Drives* drives = nullptr;
  sys::Partitions* partitions = nullptr;
  sys::Filesystem* fs = nullptr;
  sys::NvmetTarget* nvmet = nullptr;
  sys::NvmeHost* host = nullptr;
  sys::Md* md = nullptr;
};

// What the agent knows of another node, from its MeshStorNodeDevice objects.
struct Peer {
  std::string host_nqn;
  std::string address;  // NVMe/TCP address of its nvmet port
  std::string service = "4420";
};
using Peers = std::map<std::string, Peer, std::less<>>;

struct AgentSettings {
  std::string node;              // this node's Kubernetes name
  std::string address;           // this node's NVMe/TCP address (nvmet port)
  std::string service = "4420";  // NVMe/TCP service
  std::string staging_root = "/var/lib/meshstor/staging";
  // kubelet's root directory: the staging and publish paths the CSI shim puts in the volume
  // (spec.stagingPath, spec.publishTargets) must lie below it or below staging_root.
  std::string kubelet_root = "/var/lib/kubelet";
  // A member unreachable this long (by its missingSince) no longer blocks assembling the array
  // degraded; before that, the consumer waits for it.
  std::chrono::seconds assemble_grace{10};
  // Resync/recovery bandwidth of this node as a consumer, shared by the arrays rebuilding here
  // (each gets an equal part, at least 1 MiB/s); 0: the kernel's own limits.
  uint64_t rebuild_kib_per_s = 0;
};

// The agent's own staging mount point of a volume, used when spec.stagingPath is empty.
std::string StagingPath(const AgentSettings& settings, std::string_view volume);

// Where the consumer mounts the volume: spec.stagingPath (kubelet's staging_target_path), or the
// agent's own staging directory when the shim set none.
std::string ConsumerStagingPath(const AgentSettings& settings,
                                const common::api::v1alpha1::MeshStorVolume& v);

// A path from the volume (staging path, publish target) the agent may mount at: absolute,
// normalized (no empty, "." or ".." component) and strictly below settings.kubelet_root or
// settings.staging_root. InvalidArgument naming `what` and the rule otherwise.
common::Status CheckMountPath(const AgentSettings& settings, std::string_view path,
                              std::string_view what);

// What one pass observed and decided, applied to the newest copy of the volume's status (again
// after a write conflict): the agent owns only these fields (docs/design.md §3.3).
struct OwnerReport {
  common::api::v1alpha1::PartitionStatus partition;  // index, node, drive, uuid, nsid, size
  bool zeroed_now = false;  // the partition was (re)created and zeroed in this pass
  bool remove = false;      // retired and gone: drop the entry
};

struct MemberObservation {
  common::api::v1alpha1::PartitionState state = common::api::v1alpha1::PartitionState::kMissing;
  std::optional<common::api::Time> missing_since;
  std::string message;
};

struct ConsumerReport {
  bool torn_down = false;  // nothing of the volume is assembled here: clear the consumer fields
  bool assembled = false;  // the array runs here: the fields below are MD's view
  std::string md_state;
  std::optional<int32_t> total_devices, active_devices, failed_devices, down_devices;
  std::string sync_percentage;
  std::string staged_path;
  std::optional<int64_t> filesystem_bytes;  // XFS size, once mounted
  std::vector<std::string> published_targets;
  std::map<int32_t, MemberObservation> members;  // by member index
  // MD's in-sync members of the running array (ascending indexes) for status.inSync; nullopt
  // leaves the record as it is. Never empty.
  std::optional<std::vector<int32_t>> in_sync;
  std::optional<int64_t> in_sync_events;  // the array's MD event count, when read
  // MD event counts read from members' own superblocks in this pass, by member index
  // (status.partitions[].mdEvents).
  std::map<int32_t, int64_t> member_events;
  // status.startBlocked: the reason the array may not start ("" clears it); nullopt leaves it.
  std::optional<std::string> start_blocked;
  // A start forced in this pass (status.forcedStart replaces the previous one).
  std::optional<common::api::v1alpha1::ForcedStart> forced_start;
};

struct VolumeOutcome {
  common::api::Time observed_at;  // when the pass ran (updatedAt of changed entries)
  std::vector<OwnerReport> owner;
  std::optional<ConsumerReport> consumer;
  std::optional<common::api::Time> set_formatted_at;  // spec write, set once
  std::vector<common::Status> errors;  // steps that failed this pass (retried next pass)
  std::vector<std::string> notices;    // decisions that discarded data, for the log
  bool retry_soon = false;             // waiting on something that changes by itself
};

// Applies the agent's part of `outcome` for `node` to `status`. Returns true when it changed.
bool ApplyOutcome(const VolumeOutcome& outcome, std::string_view node,
                  common::api::v1alpha1::MeshStorVolumeStatus& status);

class VolumeReconciler {
 public:
  VolumeReconciler(NodeKernel kernel, AgentSettings settings, const common::time::Clock& clock);

  // One pass over `volume` for this node. Never throws; failures are in outcome.errors.
  VolumeOutcome Reconcile(const common::api::v1alpha1::MeshStorVolume& volume, const Peers& peers);

  // The fast path after an MD event, run before the full passes: when this node consumes `volume`
  // and MD's in-sync set of its running array differs from status.inSync, an outcome that
  // records only that (members resolved without connecting anything, so an unreachable member
  // cannot delay it); nullopt otherwise.
  std::optional<VolumeOutcome> ObserveInSync(const common::api::v1alpha1::MeshStorVolume& volume,
                                             const Peers& peers);

  // Node-wide clean-up that no single volume can decide: namespaces exported by this node that
  // no present member of `volumes` needs (and subsystems and the port left empty), and NVMe-oF
  // controllers to subsystems this node consumes from no more. A controller whose subsystem has
  // a namespace in a running array of this node is kept, whatever `volumes` says: every path
  // that ends an import stops the array or removes the member first, so only a wrong or
  // incomplete `volumes` (or an array that outlived its volume) gets there, and a disconnect
  // would fail a leg. The rest is still collected; then FailedPrecondition names what was kept.
  common::Status CollectGarbage(const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes);

  // Reads an array's state (by MD array name).
  using ArrayReader = std::function<common::Result<sys::MdArrayState>(std::string_view)>;
  // Node-wide: shares rebuild_kib_per_s among the arrays of `volumes` consumed here that are
  // resyncing or recovering (md sync_speed_max), and returns idle ones to the system limit.
  // `read` reads each array (empty: Md::GetArray).
  common::Status CapRebuilds(const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes,
                             const ArrayReader& read = nullptr);

  const AgentSettings& settings() const { return settings_; }

 private:
  struct MemberDevice;
  struct ConsumerPass;
  // The state of a consumer pass over `v` at `now` (ReconcileConsumer, ObserveInSync).
  ConsumerPass MakeConsumerPass(const common::api::v1alpha1::MeshStorVolume& v, const Peers& peers,
                                VolumeOutcome& out, common::api::Time now) const;

  void ReconcileOwnedMember(const common::api::v1alpha1::MeshStorVolume& v,
                            const common::api::v1alpha1::Member& m, const Peers& peers,
                            VolumeOutcome& out);
  common::Status Export(const common::api::v1alpha1::MeshStorVolume& v,
                        const common::api::v1alpha1::Member& m, const sys::PartitionInfo& p,
                        const Peers& peers);
  // This volume's spec.fencedNodes names `node`.
  static bool IsFenced(const common::api::v1alpha1::MeshStorVolume& v, std::string_view node);
  // Cuts every node in spec.fencedNodes (but this one) off the partition: it leaves the node's
  // subsystem; a subsystem left without namespaces is unlinked from its ports (dropping the
  // node's controllers) and allows no host any more. Idempotent; runs before any export.
  common::Status Fence(const common::api::v1alpha1::MeshStorVolume& v, const sys::PartitionInfo& p);
  // The subsystems with a namespace in a running array of this node, each with the array and
  // member that holds it ("/dev/md127 (nvme1n2)"): CollectGarbage's guard.
  common::Result<std::map<std::string, std::string>> SubsystemsUnderArrays();
  // Withdraws the partition from every subsystem of ours but `except_nqn`.
  common::Status Unexport(const std::string& partition_device, std::string_view except_nqn = {});
  common::Status AddAsNewMember(const sys::MdArrayState& array, const std::string& device,
                                const sys::MdMember& member, const std::string& refusal,
                                MemberObservation& observed, VolumeOutcome& out);

  // The consumer side, as the ordered steps below (volume_consumer.cc). Each step reads the
  // kernel and does only what is still missing; one that returns false ends the pass.
  void ReconcileConsumer(const common::api::v1alpha1::MeshStorVolume& v, const Peers& peers,
                         VolumeOutcome& out);
  // This node is spec.consumerNode, not fenced (spec.fencedNodes), and the volume is not being
  // deleted.
  bool ConsumesHere(const common::api::v1alpha1::MeshStorVolume& v) const;
  // Not the consumer (any more): whatever of the volume is still assembled here is torn down.
  void EnsureTornDown(ConsumerPass& pass);
  // Reaches each present member's device (local partition or NVMe-oF), or reports it Missing.
  void CollectMembers(ConsumerPass& pass);
  // The array runs: found running, or started by StartArray. False ends the pass.
  bool EnsureArray(ConsumerPass& pass);
  // Assembles the array from the members that carry it, or creates it when none does.
  bool StartArray(ConsumerPass& pass);
  // A new array on freshly zeroed members, only while the volume was never formatted.
  bool CreateArray(ConsumerPass& pass, bool foreign);
  // Assembles from `carriers` once the unreachable are past assemble_grace (at once when
  // `forced`); degraded then, or whenever `allow_degraded` (the in-sync set is present).
  bool AssembleArray(ConsumerPass& pass, const std::vector<sys::MdMember>& carriers,
                     bool allow_degraded = false, bool forced = false);
  struct Carrier;
  // The stale-member rule: assembles from the members of status.inSync when all are present;
  // otherwise forces a start (new force-start token) or reports why it waits.
  bool StartGuarded(ConsumerPass& pass, const std::vector<Carrier>& carriers);
  // A forced start from the carriers with the highest MD event count; records it.
  bool ForceStart(ConsumerPass& pass, const std::vector<Carrier>& carriers,
                  const std::vector<int32_t>& required, const std::string& token);
  // MD's membership follows spec.members: add/re-add, drop retired, drop faulty; re-read it.
  void ConvergeMembership(ConsumerPass& pass);
  // Every reachable member not in the array joins (or leaves, when faulty). True if changed.
  bool EnsureMembersAdded(ConsumerPass& pass);
  // One member not in the array joins: add, hot replace, re-add or add as new.
  common::Status JoinArray(ConsumerPass& pass, const MemberDevice& d);
  std::optional<std::string> ReplacedDevice(ConsumerPass& pass, const MemberDevice& d);
  common::Result<bool> ResumeReplacement(ConsumerPass& pass, const MemberDevice& d);
  // Retired members leave the array, never the last in-sync copy. True if changed.
  bool EnsureRetiredRemoved(ConsumerPass& pass);
  // A faulty member whose device is gone leaves the array. True if changed.
  bool EnsureFaultyRemoved(ConsumerPass& pass);
  // XFS on the array exactly once (sets spec.formattedAt).
  void EnsureFormatted(ConsumerPass& pass);
  // Mounted at the staging path once formatted. True when staged.
  bool EnsureStaged(ConsumerPass& pass);
  // Array and filesystem grown to the members (GrowIfNeeded); reports the filesystem's size.
  void EnsureGrown(ConsumerPass& pass);
  // Every spec.publishTargets path bind-mounted from the staging path.
  void EnsurePublished(ConsumerPass& pass);
  // Targets published before but no longer in the spec are unmounted and removed.
  void EnsureUnpublished(ConsumerPass& pass);
  // A staging path the volume no longer names is unmounted once nothing is bound from it.
  void EnsureOldStagingUnmounted(ConsumerPass& pass);
  // Reports MD's view: state, device counts, sync percentage, each member's state, the in-sync
  // set.
  void ReportArray(ConsumerPass& pass);
  // MD's in-sync members for status.inSync.
  void RecordInSync(ConsumerPass& pass);
  common::Status TearDownConsumer(const common::api::v1alpha1::MeshStorVolume& v,
                                  VolumeOutcome& out);
  // Grows the array and then XFS when the members have grown; returns the filesystem's size.
  common::Result<uint64_t> GrowIfNeeded(const common::api::v1alpha1::MeshStorVolume& v,
                                        sys::MdArrayState& array, const std::string& staged);
  // The block device of member `m` on this node: its partition, or the imported namespace
  // (connecting first when `connect`); nullopt while there is none. `scanning` (optional) is set
  // when this call made the connection and the kernel has not listed the namespace yet.
  common::Result<std::optional<std::string>> MemberDevicePath(
      const common::api::v1alpha1::MeshStorVolume& v, const common::api::v1alpha1::Member& m,
      const Peers& peers, bool connect, bool* scanning = nullptr);

  NodeKernel k_;
  AgentSettings settings_;
  const common::time::Clock& clock_;
};

}  // namespace agent
