// The MeshStorVolume reconcile decision: a pure function from one volume and a snapshot of the
// cluster to the single next write (docs/design.md §5). Level-triggered: nothing is
// remembered between passes, so a new operator instance that reads the same world decides the
// same step, and a crash between two writes is healed by the next pass.
//
// Order of steps in one pass (the first that applies is the write):
//   deletion (retire every member → phase Deleting → remove the finalizer once teardown is
//   confirmed), invalid spec (status only), finalizer, fencing of a dead consumer and
//   un-fencing of healthy nodes (fencing.h), initial placement, member roles and
//   relocation, replacement of members missing longer than memberMissingTimeout (capped),
//   retirement of replaced members once their replacement is Synced, expansion; and when no
//   spec change is due, the status (phase, conditions, counters, and a fenced consumer's
//   take-over: fencing.h), written only when it differs.
//
// Teardown confirmation (deletion): an agent confirms that its part of a retired member is gone
// by removing that member's entry from status.partitions; the consumer agent confirms that the
// array is stopped by clearing status.nodeName. The finalizer is removed when no entry is left
// and nodeName is empty; entries of nodes that no longer exist (Node object deleted) do not hold
// the finalizer, since nothing is left there to tear down.
//
// Thread contract: free functions without shared state.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"
#include "operator/placement.h"

namespace meshstor_operator {

inline constexpr char kFinalizer[] = "csi.meshstor.io/teardown";

// Condition types and reasons the operator writes.
inline constexpr char kConditionReady[] = "Ready";
inline constexpr char kConditionDegraded[] = "Degraded";
inline constexpr char kConditionPlaceable[] = "Placeable";
inline constexpr char kConditionResized[] = "Resized";
// Set once the consumer honoured a forced start (status.forcedStart): what may have been lost.
inline constexpr char kConditionForcedStart[] = "ForcedStart";
inline constexpr char kReasonWaitingForInSyncMember[] = "WaitingForInSyncMember";

struct Limits {
  std::chrono::seconds agent_staleness{120};  // msnd older than this is not placed on
  int max_rebuilds_per_node = 2;              // replacements syncing onto one node
  int max_rebuilds_cluster = 8;               // replacements syncing cluster-wide
  std::chrono::seconds retry_interval{30};    // when waiting on inventory or a cap
  // A consumer node NotReady/Unknown whose agent has been silent this long is declared dead and
  // fenced (fencing.h); 0: only the out-of-service taint declares a node dead.
  std::chrono::seconds consumer_dead_after{0};
};

struct EventNote {
  std::string type;  // Normal or Warning
  std::string reason;
  std::string note;

  bool operator==(const EventNote&) const = default;
};

struct Decision {
  enum class Write { kNone, kSpec, kStatus };
  Write write = Write::kNone;
  // The whole object to write: kSpec → PUT (metadata and spec), kStatus → PUT /status. Carries
  // the resourceVersion that was read, so a stale decision fails with a conflict.
  common::api::v1alpha1::MeshStorVolume object;
  std::vector<EventNote> events;
  // Wall-clock delay after which the volume must be looked at again even if nothing changes
  // (a missing member's replacement deadline, a retry on placement or caps).
  std::optional<std::chrono::seconds> requeue_after;
  // What this write starts, for counters.
  int replacements_started = 0;
  int relocations_started = 0;
  int expansions_started = 0;
  bool placement_failed = false;
};

// InvalidArgument naming the field and the rule when the spec cannot be acted on: the rules the
// decoder cannot check on single values (v1alpha1::ValidateArraySlots; members: unique indexes,
// node and drive set, slots inside the array, namespace IDs unique per node). The decoder has
// checked each value's bounds (v1alpha1/validation.h) before.
common::Status ValidateSpec(const common::api::v1alpha1::MeshStorVolumeSpec& spec);

// The next step for `volume`. `inventory.volumes` holds every volume (including this one, in
// any version) for namespace IDs, spread and the cluster-wide rebuild cap, or `inventory.index`
// summarizes them (volume_index.h).
Decision Decide(const common::api::v1alpha1::MeshStorVolume& volume, const Inventory& inventory,
                const Limits& limits);

}  // namespace meshstor_operator
