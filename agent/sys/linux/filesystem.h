// LinuxFilesystem: Filesystem with mount(2)/umount2(2), /proc/self/mountinfo, statvfs(3),
// libblkid for the signature check, and mkfs.xfs / xfs_growfs through Exec.
//
// A mount at a target counts as "the same" when it is the same block device (major:minor of
// the device node), or, for a source that is not a device node (tmpfs and the like), the same
// source string. A bind mount is the same when the target's root is the source's inode.
//
// The mount table is parsed again only when it changed: the kernel marks an open
// /proc/<pid>/mountinfo with POLLPRI after every mount or unmount in its mount namespace, so a
// poll that shows no such event means the last parse is still the table (checked before each
// use; the event is taken before parsing, so a change during a parse shows at the next check).
// A consumer looks up its staging and publish mounts and each filesystem's size for every staged
// volume on every pass: O(volumes x mounts) parsing per pass before. A mountinfo path that is
// not a proc file (tests) is parsed every time.
//
// Thread contract: safe for concurrent use; `exec` must outlive this object.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
  ~LinuxFilesystem() override;

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

  // How many times the mount table was parsed (tests).
  int64_t mount_table_parses() const;

 private:
  common::Result<std::vector<MountEntry>> ParseMountTable();

  Exec& exec_;
  Options options_;
  mutable std::mutex mounts_mu_;
  int watch_fd_ = -1;  // options_.mountinfo, open while it is a proc file that can be polled
  bool watch_tried_ = false;
  std::optional<std::vector<MountEntry>> mounts_;  // the last parse, while watch_fd_ is open
  int64_t parses_ = 0;
};

}  // namespace agent::sys
