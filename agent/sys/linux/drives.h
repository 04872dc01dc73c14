// LinuxDrives: Drives from sysfs. The sysfs root ("/sys") and the /dev prefix are injectable so
// unit tests can point it at a fake tree.
//
// Per namespace <d>: size = /sys/block/<d>/size × 512; logical block size =
// queue/logical_block_size; hardware queues = the number of mq/<n> directories (for a native
// multipath head, which has no mq/, those of its first path node nvme<X>c<C>n<Y>); model and
// serial = device/{model,serial} trimmed; transport = device/transport (for a multipath head,
// whose device/ is the subsystem, that of its first controller device/nvme<C>/transport).
// List() reads the transport of each namespace first and nothing else of an imported one
// (NVMe-oF: not a drive of this node): a consumer imports one namespace per remote member, and
// reading each fully, multipath queue search included, made every pass O(namespaces^2).
//
// Thread contract: stateless; safe for concurrent use.
#pragma once

#include <string>

#include "agent/sys/drives.h"

namespace agent::sys {

class LinuxDrives : public Drives {
 public:
  explicit LinuxDrives(std::string sysfs_root = "/sys", std::string dev_root = "/dev")
      : sysfs_root_(std::move(sysfs_root)), dev_root_(std::move(dev_root)) {}

  common::Result<std::vector<DriveInfo>> List() override;
  common::Result<DriveInfo> Get(std::string_view name) override;

 private:
  common::Result<DriveInfo> Read(const std::string& name);
  // device/transport of namespace `name`, or its first controller's (multipath head).
  common::Result<std::string> Transport(const std::string& name);

  std::string sysfs_root_;
  std::string dev_root_;
};

}  // namespace agent::sys
