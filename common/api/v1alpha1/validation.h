// What a MeshStorVolume spec may hold: the bounds of each value (one validator for the codec, the
// shim's StorageClass parameters and the operator), and the rules on changes to existing objects
// that a schema on one object cannot express (the CRDs state them as x-kubernetes-validations
// transition rules; the API server enforces them, the operator and the API test server check
// them too, with the same messages).
//
// Thread contract: free functions without shared state.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace common::api::v1alpha1 {

// InvalidArgument naming the field when `updated` changes what may not change:
// spec.sectorSize and spec.stripeWidth (immutable), spec.capacityBytes (cannot shrink),
// spec.formattedAt (set once).
Status ValidateVolumeUpdate(const MeshStorVolumeSpec& old_spec, const MeshStorVolumeSpec& updated);

// spec.nodeName and spec.device are immutable.
Status ValidateNodeDeviceUpdate(const MeshStorNodeDeviceSpec& old_spec,
                                const MeshStorNodeDeviceSpec& updated);

// --- What a volume may be: the one validator of spec values and StorageClass parameters -------
// The bounds are the named constants of types.h, which crds/meshstorvolumes.yaml states as its
// schema (validation_test checks that they agree). The codec checks decoded specs with them, the
// shim its StorageClass parameters, and the operator the array shape. Each error names `field`
// (e.g. "spec.replicaCount" or "parameter replicaCount") and the rule.

// A MiB multiple of at least kMinCapacityBytes.
Status ValidateCapacityBytes(int64_t capacity_bytes, std::string_view field);
// kMinReplicaCount..kMaxReplicaCount.
Status ValidateReplicaCount(int32_t replica_count, std::string_view field);
// kMinStripeWidth..kMaxStripeWidth.
Status ValidateStripeWidth(int32_t stripe_width, std::string_view field);
// At least kMinMemberMissingTimeoutSeconds.
Status ValidateMemberMissingTimeout(int32_t seconds, std::string_view field);
// One of kSectorSizes.
Status ValidateSectorSize(int32_t sector_size, std::string_view field);
// The array's slots (SlotCount: max(replicaCount, 2) × stripeWidth) fit kMaxArraySlots, the
// most members spec.members holds. A rule across two fields the schema does not state; `what`
// names the fields, e.g. "spec.replicaCount × spec.stripeWidth".
Status ValidateArraySlots(int32_t replica_count, int32_t stripe_width, std::string_view what);

}  // namespace common::api::v1alpha1
