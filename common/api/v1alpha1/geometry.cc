#include "common/api/v1alpha1/geometry.h"

#include "common/api/v1alpha1/types.h"

namespace common::api::v1alpha1 {

int32_t Copies(const MeshStorVolumeSpec& spec) { return Copies(spec.replica_count); }

int32_t SlotCount(const MeshStorVolumeSpec& spec) {
  return SlotCount(spec.replica_count, spec.stripe_width);
}

int64_t MemberSizeBytes(const MeshStorVolumeSpec& spec) {
  return MemberSizeBytes(spec.capacity_bytes, spec.stripe_width);
}

}  // namespace common::api::v1alpha1
