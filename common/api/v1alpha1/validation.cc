#include "common/api/v1alpha1/validation.h"

namespace common::api::v1alpha1 {

Status ValidateVolumeUpdate(const MeshStorVolumeSpec& old_spec, const MeshStorVolumeSpec& updated) {
  if (updated.sector_size != old_spec.sector_size) {
    return InvalidArgumentError("spec.sectorSize: sectorSize is immutable (was {}, got {})",
                                old_spec.sector_size, updated.sector_size);
  }
  if (updated.stripe_width != old_spec.stripe_width) {
    return InvalidArgumentError("spec.stripeWidth: stripeWidth is immutable (was {}, got {})",
                                old_spec.stripe_width, updated.stripe_width);
  }
  if (updated.capacity_bytes < old_spec.capacity_bytes) {
    return InvalidArgumentError("spec.capacityBytes: capacityBytes cannot shrink (was {}, got {})",
                                old_spec.capacity_bytes, updated.capacity_bytes);
  }
  if (old_spec.formatted_at && updated.formatted_at &&
      *old_spec.formatted_at != *updated.formatted_at) {
    return InvalidArgumentError("spec.formattedAt: formattedAt is set once");
  }
  return OkStatus();
}

Status ValidateNodeDeviceUpdate(const MeshStorNodeDeviceSpec& old_spec,
                                const MeshStorNodeDeviceSpec& updated) {
  if (updated.node_name != old_spec.node_name) {
    return InvalidArgumentError("spec.nodeName: nodeName is immutable");
  }
  if (updated.device != old_spec.device) {
    return InvalidArgumentError("spec.device: device is immutable");
  }
  return OkStatus();
}

}  // namespace common::api::v1alpha1
