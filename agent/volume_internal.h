// Helpers shared by the parts of VolumeReconciler (volume.cc, volume_owner.cc,
// volume_consumer.cc, volume_gc.cc). Internal to agent/volume*.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/sys/nvmet.h"
#include "agent/volume.h"
#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace agent::volume_internal {

inline const common::api::v1alpha1::PartitionStatus* FindPartition(
    const common::api::v1alpha1::MeshStorVolumeStatus& s, int32_t index) {
  for (const auto& p : s.partitions) {
    if (p.index == index) return &p;
  }
  return nullptr;
}

// The nvmet port this agent exports on (configfs ports/1).
inline constexpr uint16_t kExportPort = 1;

inline bool IsOurSubsystem(std::string_view nqn) {
  return nqn.rfind(std::string(sys::kNqnPrefix) + ":", 0) == 0;
}

// The owner has created, zeroed and reported the member: the consumer may use it.
inline bool Reported(const common::api::v1alpha1::MeshStorVolume& v,
                     const common::api::v1alpha1::Member& m) {
  const common::api::v1alpha1::PartitionStatus* p = FindPartition(v.status, m.index);
  return p != nullptr && !p->partition_uuid.empty() &&
         p->state != common::api::v1alpha1::PartitionState::kRequested;
}

inline void Fail(VolumeOutcome& out, common::Status s) {
  if (!s.ok()) out.errors.push_back(std::move(s));
}

}  // namespace agent::volume_internal
