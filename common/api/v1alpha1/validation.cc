#include "common/api/v1alpha1/validation.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

Status ValidateCapacityBytes(int64_t capacity_bytes, std::string_view field) {
  if (capacity_bytes < kMinCapacityBytes) {
    return InvalidArgumentError("{}: {} is below the minimum {} (512 MiB)", field, capacity_bytes,
                                kMinCapacityBytes);
  }
  if (capacity_bytes % kMiB != 0) {
    return InvalidArgumentError("{}: {} is not a multiple of 1 MiB", field, capacity_bytes);
  }
  return OkStatus();
}

namespace {

Status CheckRange(int64_t v, int64_t min, int64_t max, std::string_view field) {
  if (v < min || v > max) {
    return InvalidArgumentError("{}: {} is out of range {}..{}", field, v, min, max);
  }
  return OkStatus();
}

}  // namespace

Status ValidateReplicaCount(int32_t replica_count, std::string_view field) {
  return CheckRange(replica_count, kMinReplicaCount, kMaxReplicaCount, field);
}

Status ValidateStripeWidth(int32_t stripe_width, std::string_view field) {
  return CheckRange(stripe_width, kMinStripeWidth, kMaxStripeWidth, field);
}

Status ValidateMemberMissingTimeout(int32_t seconds, std::string_view field) {
  if (seconds < kMinMemberMissingTimeoutSeconds) {
    return InvalidArgumentError("{}: {} is below the minimum {} (seconds)", field, seconds,
                                kMinMemberMissingTimeoutSeconds);
  }
  return OkStatus();
}

Status ValidateSectorSize(int32_t sector_size, std::string_view field) {
  for (int32_t allowed : kSectorSizes) {
    if (sector_size == allowed) return OkStatus();
  }
  return InvalidArgumentError("{}: {} is not a supported sector size (allowed: {})", field,
                              sector_size, fmt::join(kSectorSizes, ", "));
}

Status ValidateArraySlots(int32_t replica_count, int32_t stripe_width, std::string_view what) {
  // SlotCount (geometry.h) in 64 bits, so no pair of int32 values overflows.
  const int64_t slots = int64_t{std::max(replica_count, 2)} * std::max(stripe_width, 1);
  if (slots > kMaxArraySlots) {
    return InvalidArgumentError(
        "{}: {} array slots (max(replicaCount, 2) × stripeWidth) exceed the maximum {}", what,
        slots, kMaxArraySlots);
  }
  return OkStatus();
}

}  // namespace common::api::v1alpha1
