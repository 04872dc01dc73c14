#include "agent/sys/fake/drives.h"

#include <algorithm>
#include <cerrno>
#include <mutex>

namespace agent::sys {

common::Result<std::vector<DriveInfo>> FakeDrives::List() {
  RETURN_IF_ERROR(model_.Hit("Drives.List"));
  std::lock_guard lock(model_.mu_);
  std::vector<DriveInfo> out;
  for (const auto& [path, d] : model_.drives_) {
    if (IsNvmeNamespaceName(d.info.name) && !d.info.remote()) out.push_back(d.info);
  }
  std::sort(out.begin(), out.end(),
            [](const DriveInfo& a, const DriveInfo& b) { return a.name < b.name; });
  return out;
}

common::Result<DriveInfo> FakeDrives::Get(std::string_view name) {
  RETURN_IF_ERROR(model_.Hit("Drives.Get"));
  if (name.starts_with("/dev/")) name.remove_prefix(5);
  if (!IsNvmeNamespaceName(name)) {
    return common::InvalidArgumentError("\"{}\" is not an NVMe namespace name (nvme<X>n<Y>)", name);
  }
  std::lock_guard lock(model_.mu_);
  for (const auto& [path, d] : model_.drives_) {
    if (d.info.name == name) return d.info;
  }
  return common::NotFoundError("no NVMe drive {}", name);
}

}  // namespace agent::sys
