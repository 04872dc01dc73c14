// The CSI-facing rules on what a volume may be: StorageClass parameters (docs/design.md §4), the
// capacity a CapacityRange asks for, and the names a volume may have. Plain values and Status;
// no gRPC or JSON types, so the rules are tested on their own.
//
// Thread contract: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace csi_shim {

// The StorageClass parameters a volume is made with, defaults filled in.
struct VolumeParameters {
  int32_t replica_count = 2;
  int32_t stripe_width = 1;
  int32_t member_missing_timeout = 900;  // seconds
  int32_t sector_size = 4096;

  bool operator==(const VolumeParameters&) const = default;
};

// Parses StorageClass parameters. Keys starting with "csi.storage.k8s.io/" (added by the
// external-provisioner) are ignored. Values are checked by the spec's validator
// (v1alpha1/validation.h): InvalidArgument naming the parameter and its rule for a bad value or
// an array of too many slots, and naming an unknown parameter.
common::Result<VolumeParameters> ParseParameters(const std::map<std::string, std::string>& params);

// The parameters a volume was created with, read back from its spec.
VolumeParameters ParametersOf(const common::api::v1alpha1::MeshStorVolumeSpec& spec);

// The capacity a volume gets for a CSI CapacityRange (0 = unspecified for either bound):
// `required_bytes` rounded up to a whole MiB, at least 512 MiB. InvalidArgument for negative
// bounds or a limit below the requirement; OutOfRange when the limit does not admit any MiB
// multiple of at least 512 MiB at or above the requirement.
common::Result<int64_t> CapacityForRange(int64_t required_bytes, int64_t limit_bytes);

// Whether an existing capacity satisfies a CapacityRange (0 = unspecified for either bound).
bool CapacityFits(int64_t capacity_bytes, int64_t required_bytes, int64_t limit_bytes);

// A volume ID is a MeshStorVolume name, so it is a DNS-1123 subdomain (lower-case alphanumerics,
// '-' and '.', starting and ending alphanumeric, at most 253 characters); an ID that is not names
// no volume. (CSI names are any string: v1alpha1::VolumeIdForCsiName maps them to IDs.)
// InvalidArgument naming `what` and the rule otherwise.
common::Status ValidateVolumeName(std::string_view name, std::string_view what);

}  // namespace csi_shim
