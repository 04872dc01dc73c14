// Which nodes could hold a member of a volume, judged from the drive inventory the agents publish
// (MeshStorNodeDevice). The shim uses it to refuse a CreateVolume that can never be placed
// (FailedPrecondition saying how many nodes qualify) and to answer GetCapacity. The operator's
// placement (docs/design.md §8) stays the authority; this is the same filter on drives only (sector
// size, at least stripeWidth drives with a big enough free extent), without node schedulability,
// with the same member size (v1alpha1::MemberSizeBytes, MD data offset included).
//
// Thread contract: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "csi-shim/parameters.h"

namespace csi_shim {

// Nodes, sorted by name, that have at least `params.stripe_width` drives reporting
// `params.sector_size` and a biggest free extent of at least `member_size_bytes`. Drives without
// a reported sector size or free extent do not count.
std::vector<std::string> QualifyingNodes(
    const std::vector<common::api::v1alpha1::MeshStorNodeDevice>& devices,
    const VolumeParameters& params, int64_t member_size_bytes);

// The largest capacity (a MiB multiple; 0 when none) a volume with `params` could have so that
// at least `params.replica_count` nodes qualify for members of v1alpha1::MemberSizeBytes.
int64_t MaxVolumeCapacity(const std::vector<common::api::v1alpha1::MeshStorNodeDevice>& devices,
                          const VolumeParameters& params);

}  // namespace csi_shim
