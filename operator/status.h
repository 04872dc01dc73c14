// The operator-owned part of a MeshStorVolume's status (docs/design.md §5): phase, counters and
// the Ready, Degraded, Placeable and Resized conditions, computed from the volume and what this
// pass observed; and the events a status change is announced with.
//
// Thread contract: free functions without shared state.
#pragma once

#include <optional>
#include <string>

#include "common/api/meta.h"
#include "common/api/v1alpha1/types.h"
#include "operator/placement.h"
#include "operator/reconcile.h"

namespace meshstor_operator {

// What the spec steps of a pass observed that the status reports.
struct StatusInputs {
  std::optional<std::string> placement_error;  // Placeable=False with this message
  std::string throttled;                       // a replacement waits for a rebuild cap
};

// A condition of `type` for the volume's generation, transitioning at inv.now.
common::api::Condition MakeCondition(const common::api::v1alpha1::MeshStorVolume& v,
                                     const Inventory& inv, const char* type,
                                     common::api::ConditionStatus status, std::string reason,
                                     std::string message);

// The operator-owned part of the status, computed from this pass's observations.
common::api::v1alpha1::MeshStorVolumeStatus ComputeStatus(
    const common::api::v1alpha1::MeshStorVolume& v, const Inventory& inv, const StatusInputs& in);

// Events for a phase change and for each condition whose status or reason changed; with a phase
// change, the Normal condition changes are folded into its one PhaseChanged Event.
void PhaseEvents(const common::api::v1alpha1::MeshStorVolume& v,
                 const common::api::v1alpha1::MeshStorVolumeStatus& next, Decision* d);

}  // namespace meshstor_operator
