// The geometry of a volume's MD array, shared by the shim's admission (csi-shim/eligibility), the
// operator's placement and the agent: units, member size, copies and RAID slots. One definition
// here, so the shim never admits a volume the operator cannot place, nor the operator sizes a
// member the agent's array does not fit.
//
// Thread contract: constants and pure functions.
#pragma once

#include <algorithm>
#include <cstdint>

namespace common::api::v1alpha1 {

struct MeshStorVolumeSpec;

inline constexpr int64_t kMiB = 1024 * 1024;
// Where member data starts on every member (mdadm --data-offset): room for the MD superblock and
// the internal bitmap. Each member partition is this much bigger than its share of the capacity.
inline constexpr int64_t kMdDataOffsetBytes = kMiB;

// Copies of each stripe position: max(replicaCount, 2). A single copy keeps a placeholder mirror
// so the volume can move.
constexpr int32_t Copies(int32_t replica_count) { return std::max(replica_count, 2); }

// RAID slots of the array: Copies × stripeWidth (stripeWidth below 1 counts as 1).
constexpr int32_t SlotCount(int32_t replica_count, int32_t stripe_width) {
  return Copies(replica_count) * std::max(stripe_width, 1);
}

// The slot of copy `copy` of stripe position `stripe`: stripe × Copies + copy (RAID10 near-2
// keeps the copies of one stripe position adjacent).
constexpr int32_t SlotOf(int32_t replica_count, int32_t stripe, int32_t copy) {
  return stripe * Copies(replica_count) + copy;
}

// The stripe position a slot holds a copy of.
constexpr int32_t StripeOfSlot(int32_t replica_count, int32_t slot) {
  return slot / Copies(replica_count);
}

// Bytes of one member partition: the capacity split across `stripe_width` drives, rounded up to
// a whole MiB, plus kMdDataOffsetBytes. Every one of a node's drives that holds a member needs a
// free extent at least this big.
constexpr int64_t MemberSizeBytes(int64_t capacity_bytes, int32_t stripe_width) {
  const int64_t width = std::max(stripe_width, 1);
  const int64_t per_drive = (capacity_bytes + width - 1) / width;
  return (per_drive + kMiB - 1) / kMiB * kMiB + kMdDataOffsetBytes;
}

// The largest capacity (a MiB multiple, 0 when none) whose members fit in free extents of
// `extent_bytes`: MemberSizeBytes(c, w) <= extent_bytes exactly when c <= this.
constexpr int64_t MaxCapacityForExtent(int64_t extent_bytes, int32_t stripe_width) {
  const int64_t data = extent_bytes - kMdDataOffsetBytes;
  if (data < kMiB) return 0;
  return data / kMiB * kMiB * std::max(stripe_width, 1);
}

// The same for a volume's spec.
int32_t Copies(const MeshStorVolumeSpec& spec);
int32_t SlotCount(const MeshStorVolumeSpec& spec);
int64_t MemberSizeBytes(const MeshStorVolumeSpec& spec);

}  // namespace common::api::v1alpha1
