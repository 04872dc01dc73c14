// Drive inventory (docs/design.md §3.2): one MeshStorNodeDevice per local NVMe drive of this node,
// named "<node>-<device>", with model, serial, size, sector size, queue count, the biggest free
// extent, the MeshStor partitions on it classified local / remote / unknown (unknown: ours by
// name, claimed by no present member of a volume: reported, never deleted automatically), and
// the node's NVMe-oF host NQN and transport addresses. Imported NVMe-oF namespaces are not
// drives of this node and are never listed.
//
// Thread contract: BuildNodeDevices is a pure function; Inventory is used from one thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/volume.h"
#include "common/api/v1alpha1/types.h"
#include "common/kube/client.h"
#include "common/time/clock.h"

namespace agent {

struct DriveSnapshot {
  sys::DriveInfo drive;
  std::vector<sys::PartitionInfo> partitions;
  uint64_t biggest_free_bytes = 0;
};

struct PartitionCounts {
  int32_t local = 0, remote = 0, unknown = 0;
};

// Classifies our partitions on `drive` (a device name like "nvme0n1") of `node`.
PartitionCounts ClassifyPartitions(
    std::string_view node, const DriveSnapshot& drive,
    const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes);

// The MeshStorNodeDevice objects this node should have (sorted by name; status.updatedAt = now).
std::vector<common::api::v1alpha1::MeshStorNodeDevice> BuildNodeDevices(
    std::string_view node, const std::vector<DriveSnapshot>& drives,
    const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes, std::string_view host_nqn,
    const std::vector<common::api::v1alpha1::TransportAddress>& addresses, common::api::Time now);

// Reads the drives through the kernel layer. Drives it cannot read are skipped with an error.
common::Result<std::vector<DriveSnapshot>> SnapshotDrives(const NodeKernel& kernel,
                                                          std::vector<common::Status>* errors);

// Keeps this node's MeshStorNodeDevice objects equal to what BuildNodeDevices says: creates
// missing ones, writes the status when it changed or is older than `refresh` (so the operator
// sees the agent alive), and deletes the objects of drives that are gone.
class Inventory {
 public:
  Inventory(common::kube::Client& client, std::string node, std::chrono::seconds refresh);

  // `current`: this node's objects as cached (any node's may be passed; others are ignored).
  common::Status Sync(const std::vector<common::api::v1alpha1::MeshStorNodeDevice>& desired,
                      const std::vector<common::api::v1alpha1::MeshStorNodeDevice>& current);

 private:
  common::kube::Client& client_;
  std::string node_;
  std::chrono::seconds refresh_;
};

}  // namespace agent
