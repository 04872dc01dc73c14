// LinuxFilesystem: Filesystem with mount(2)/umount2(2), /proc/self/mountinfo, statvfs(3),
// libblkid for the signature check, and mkfs.xfs / xfs_growfs through Exec.
//
// A mount at a target counts as "the same" when it is the same block device (major:minor of
// the device node), or, for a source that is not a device node (tmpfs and the like), the same
// source string. A bind mount is the same when the target's root is the source's inode.
//
// Thread contract: safe for concurrent use; `exec` must outlive this object.
#pragma once

#include <string>

#include "agent/sys/exec.h"
#include "agent/sys/filesystem.h"

namespace agent::sys {

class LinuxFilesystem : public Filesystem {
 public:
  struct Options {
    std::string mkfs_xfs = "/usr/sbin/mkfs.xfs";
    std::string xfs_growfs = "/usr/sbin/xfs_growfs";
    std::string mountinfo = "/proc/self/mountinfo";
    std::chrono::milliseconds mkfs_timeout{std::chrono::minutes(10)};
  };
  explicit LinuxFilesystem(Exec& exec) : LinuxFilesystem(exec, Options{}) {}
  LinuxFilesystem(Exec& exec, Options options) : exec_(exec), options_(std::move(options)) {}

  common::Result<bool> EnsureXfs(std::string_view device, const XfsOptions& options) override;
  common::Status Mount(std::string_view device, std::string_view target, std::string_view fstype,
                       const MountOptions& options) override;
  common::Status BindMount(std::string_view source, std::string_view target,
                           bool read_only) override;
  common::Status EnsureDirectory(std::string_view path) override;
  common::Status RemoveMountPoint(std::string_view path) override;
  common::Result<uint64_t> XfsSizeBytes(std::string_view device) override;
  common::Status Unmount(std::string_view target) override;
  common::Result<std::optional<MountEntry>> GetMount(std::string_view target) override;
  common::Result<std::vector<MountEntry>> ListMounts() override;
  common::Status GrowXfs(std::string_view target) override;
  common::Result<FsStats> Stats(std::string_view path) override;

 private:
  Exec& exec_;
  Options options_;
};

}  // namespace agent::sys
