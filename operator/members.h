// Reading a volume's members and what the agents reported of them: helpers shared by the
// reconcile steps (reconcile.cc) and the status computation (status.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/api/v1alpha1/geometry.h"
#include "common/api/v1alpha1/types.h"

namespace meshstor_operator {

// The status entry of `m`, when its node has reported it.
inline const common::api::v1alpha1::PartitionStatus* PartitionOf(
    const common::api::v1alpha1::MeshStorVolume& v, const common::api::v1alpha1::Member& m) {
  for (const common::api::v1alpha1::PartitionStatus& p : v.status.partitions) {
    if (p.index == m.index && p.node_id == m.node) return &p;
  }
  return nullptr;
}

inline bool IsSynced(const common::api::v1alpha1::MeshStorVolume& v,
                     const common::api::v1alpha1::Member& m) {
  const common::api::v1alpha1::PartitionStatus* p = PartitionOf(v, m);
  return p != nullptr && p->state == common::api::v1alpha1::PartitionState::kSynced;
}

inline bool IsLost(const common::api::v1alpha1::PartitionStatus* p) {
  return p != nullptr && (p->state == common::api::v1alpha1::PartitionState::kMissing ||
                          p->state == common::api::v1alpha1::PartitionState::kFaulty);
}

inline std::vector<const common::api::v1alpha1::Member*> Present(
    const common::api::v1alpha1::MeshStorVolume& v) {
  std::vector<const common::api::v1alpha1::Member*> out;
  for (const common::api::v1alpha1::Member& m : v.spec.members) {
    if (m.state == common::api::v1alpha1::MemberState::kPresent) out.push_back(&m);
  }
  return out;
}

inline int32_t StripeOf(const common::api::v1alpha1::MeshStorVolumeSpec& spec,
                        const common::api::v1alpha1::Member& m) {
  return common::api::v1alpha1::StripeOfSlot(spec.replica_count, m.slot.value_or(0));
}

// "a, b, c": lists in events and conditions.
inline std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  return s;
}

}  // namespace meshstor_operator
