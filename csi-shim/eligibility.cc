#include "csi-shim/eligibility.h"

#include <algorithm>
#include <functional>
#include <map>

#include "common/api/v1alpha1/geometry.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;

// Per node, the biggest free extents of the drives that match the sector size, largest first.
std::map<std::string, std::vector<int64_t>> ExtentsByNode(
    const std::vector<v1::MeshStorNodeDevice>& devices, int32_t sector_size) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& d : devices) {
    if (d.spec.node_name.empty() || d.status.sector_size != sector_size ||
        !d.status.biggest_free_extent_bytes.has_value()) {
      continue;
    }
    out[d.spec.node_name].push_back(*d.status.biggest_free_extent_bytes);
  }
  for (auto& [node, extents] : out) std::sort(extents.begin(), extents.end(), std::greater<>());
  return out;
}

}  // namespace

std::vector<std::string> QualifyingNodes(const std::vector<v1::MeshStorNodeDevice>& devices,
                                         const VolumeParameters& params,
                                         int64_t member_size_bytes) {
  std::vector<std::string> out;
  const size_t width = static_cast<size_t>(std::max(params.stripe_width, 1));
  for (const auto& [node, extents] : ExtentsByNode(devices, params.sector_size)) {
    // Sorted largest first: the width-th largest extent decides.
    if (extents.size() >= width && extents[width - 1] >= member_size_bytes) out.push_back(node);
  }
  return out;
}

int64_t MaxVolumeCapacity(const std::vector<v1::MeshStorNodeDevice>& devices,
                          const VolumeParameters& params) {
  const size_t width = static_cast<size_t>(std::max(params.stripe_width, 1));
  const size_t replicas = static_cast<size_t>(std::max(params.replica_count, 1));
  std::vector<int64_t> per_node;  // the biggest capacity each node could hold a copy of
  for (const auto& [node, extents] : ExtentsByNode(devices, params.sector_size)) {
    if (extents.size() >= width) {
      per_node.push_back(v1::MaxCapacityForExtent(extents[width - 1], params.stripe_width));
    }
  }
  if (per_node.size() < replicas) return 0;
  std::sort(per_node.begin(), per_node.end(), std::greater<>());
  return per_node[replicas - 1];
}

}  // namespace csi_shim
