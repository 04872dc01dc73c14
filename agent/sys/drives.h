// Drives: the local NVMe drives of this node, as the kernel reports them in sysfs.
//
// Inventory rules: only NVMe namespace block devices named nvme<X>n<Y> count. Hidden per-path
// multipath nodes (nvme<X>c<Y>n<Z>) and partitions are skipped, and so are namespaces imported
// over a fabric (device/transport other than "pcie": tcp, rdma, fc, loop), which are other
// nodes' partitions reaching us through NVMe-oF, not drives of this node.
// The free space of a drive comes from its partition table: Partitions::GetFreeSpace.
//
// Thread contract: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace agent::sys {

struct DriveInfo {
  std::string name;         // "nvme0n1"
  std::string device_path;  // "/dev/nvme0n1"
  std::string model;        // trimmed
  std::string serial;       // trimmed
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 0;  // 512 or 4096
  uint32_t hw_queues = 0;           // blk-mq hardware queues
  std::string transport;            // "pcie", "tcp", "rdma", ... as sysfs says
  bool remote() const { return transport != "pcie"; }
  friend bool operator==(const DriveInfo&, const DriveInfo&) = default;
};

class Drives {
 public:
  virtual ~Drives() = default;

  // The local NVMe drives, sorted by name. A drive whose attributes cannot be read is an error
  // naming it (it is never silently dropped).
  virtual common::Result<std::vector<DriveInfo>> List() = 0;

  // One drive by name ("nvme0n1") or device path ("/dev/nvme0n1"), remote ones included.
  // NotFound when no such NVMe namespace exists; InvalidArgument for a name that is not one.
  virtual common::Result<DriveInfo> Get(std::string_view name) = 0;
};

}  // namespace agent::sys

namespace agent::sys {
// True for "nvme<X>n<Y>": an NVMe namespace head, not a hidden path node "nvme<X>c<Y>n<Z>" and
// not a partition "nvme<X>n<Y>p<Z>".
bool IsNvmeNamespaceName(std::string_view name);
}  // namespace agent::sys
