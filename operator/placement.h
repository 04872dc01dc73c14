// Placement: which nodes and drives receive the members of a MeshStorVolume (docs/design.md §8),
// and which NVMe-oF namespace IDs they use. Pure functions of their inputs: the same inventory,
// nodes and volumes always give the same answer, so a restarted operator places exactly as before.
//
// Filter: distinct nodes, drives of the volume's sector size, at least `drives_per_node` drives
// with a free extent of at least the member size (minus what members already assigned to the
// drive but not yet created will take), node known and schedulable, agent reporting fresh.
// Score, best first: the consumer node, then nodes that share RDMA with the consumer, then the
// most free space, then the fewest MeshStor members, then a stable hash of (volume, node).
//
// Thread contract: free functions; what Place reads of the drives and Nodes goes through a view
// of them kept for the last snapshot of shared lists (cluster_view.h), which is thread-safe and
// does not change any answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/api/core.h"
#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace meshstor_operator {

class VolumeIndex;  // volume_index.h

// What the placement reads about the cluster.
struct Inventory {
  using DeviceList = std::vector<std::shared_ptr<const common::api::v1alpha1::MeshStorNodeDevice>>;
  using NodeList = std::vector<std::shared_ptr<const common::api::Node>>;
  DeviceList devices;
  NodeList nodes;
  // When set, they stand for `devices` and `nodes`: the informers' shared lists, which a pass
  // holds instead of copying every pointer (InformerSource::Snapshot). Read through Devices()
  // and Nodes().
  std::shared_ptr<const DeviceList> shared_devices;
  std::shared_ptr<const NodeList> shared_nodes;
  const DeviceList& Devices() const { return shared_devices ? *shared_devices : devices; }
  const NodeList& Nodes() const { return shared_nodes ? *shared_nodes : nodes; }
  // Every volume; may stay empty when `index` is set (the index then stands for them).
  std::vector<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>> volumes;
  // When set, member counts, pending reservations, namespace IDs and rebuilds are read from it
  // instead of scanning `volumes` (the controller keeps it from the informer's events).
  const VolumeIndex* index = nullptr;
  std::chrono::system_clock::time_point now;
  // A drive whose status.updatedAt is older than this is not used (its agent may be gone).
  std::chrono::seconds staleness{120};
};

struct PlacementRequest {
  std::string volume;                   // metadata.name, for the tie-break hash
  int64_t member_size_bytes = 0;        // per drive
  int32_t sector_size = 0;              // 512 or 4096
  int32_t drives_per_node = 1;          // distinct drives per chosen node
  int32_t node_count = 0;               // nodes to choose
  std::string consumer_node;            // always chosen when set (and eligible)
  std::set<std::string> exclude_nodes;  // nodes that may not be chosen
};

struct NodePlacement {
  std::string node;
  std::vector<std::string> drives;  // `drives_per_node` distinct drives, best first

  bool operator==(const NodePlacement&) const = default;
};

// Chooses `node_count` nodes, the consumer first. FailedPrecondition when fewer nodes qualify,
// saying how many qualified and why the others did not; also when the consumer node does not
// qualify (it must hold a member). InvalidArgument for a malformed request.
common::Result<std::vector<NodePlacement>> Place(const PlacementRequest& request,
                                                 const Inventory& inventory);

// Namespace IDs in use on `node` (members of every volume exported from that node, any state,
// and IDs agents report in status.partitions), from the index when the inventory has one.
std::set<int32_t> UsedNamespaceIds(const Inventory& inventory, const std::string& node);

// The lowest ID in 1..8192 that is neither in `used` nor taken on the node. ResourceExhausted
// when every ID is taken.
common::Result<int32_t> AllocateNamespaceId(const std::set<int32_t>& used);

// Present MeshStor members per node across all volumes (the spread term of the score), always
// by a full scan of `inventory.volumes`.
std::map<std::string, int> MemberCounts(const Inventory& inventory);

// FNV-1a 64 of "volume/node": the stable tie-break.
uint64_t StableHash(const std::string& volume, const std::string& node);

}  // namespace meshstor_operator
