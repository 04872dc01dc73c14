// Filesystem: XFS creation and growth, mounts, and usage statistics for the consumer node.
//
// Safety (docs/design.md §6 rule 1): FormatXfs never writes over a signature. Mount state is read
// from the kernel each time (/proc/self/mountinfo), never remembered.
//
// Thread contract: implementations are safe for concurrent use; concurrent changes to the same
// target are the caller's to serialize.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace agent::sys {

// One line of /proc/self/mountinfo, unescaped (LinuxFilesystem reads it with libmount).
struct MountEntry {
  uint32_t mount_id = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string root;           // path inside the filesystem that is mounted ("/" normally)
  std::string target;         // mount point
  std::string mount_options;  // per-mount options ("rw,noatime")
  std::string fstype;         // "xfs", "tmpfs"
  std::string source;         // "/dev/md127", "tmpfs"
  std::string super_options;  // per-superblock options
  bool read_only() const;     // "ro" among the per-mount options
  bool HasOption(std::string_view option) const;  // among the per-mount options
};

struct MountOptions {
  bool read_only = false;
  bool noatime = true;
  std::string data;  // filesystem-specific options, passed as they are ("" for none)
};

struct FsStats {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // to an unprivileged user
  uint64_t used_bytes = 0;
  uint64_t total_inodes = 0;
  uint64_t free_inodes = 0;
  uint64_t used_inodes = 0;
};

struct XfsOptions {
  // 512 or 4096; 0: the device's logical block size. 4096 gives "-s size=4096".
  uint32_t sector_size = 0;
  std::string label;  // at most 12 characters; "" for none
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  // Formats `device` with XFS (discard skipped: the device was zeroed) only when it carries no
  // signature. Returns true when it formatted now, false when the device already holds XFS
  // (nothing written); FailedPrecondition naming any other signature.
  virtual common::Result<bool> EnsureXfs(std::string_view device, const XfsOptions& options) = 0;

  // Idempotent: mounts `device` (fstype e.g. "xfs") at the existing directory `target`. OK when
  // that device is already mounted there; FailedPrecondition when something else is.
  virtual common::Status Mount(std::string_view device, std::string_view target,
                               std::string_view fstype, const MountOptions& options) = 0;

  // Idempotent: bind-mounts the directory `source` at the existing `target`, read-only if asked
  // (bind, then remount with MS_RDONLY). OK when `source` is already bound there with the same
  // read-only state; FailedPrecondition when something else is mounted at `target`.
  virtual common::Status BindMount(std::string_view source, std::string_view target,
                                   bool read_only) = 0;

  // Idempotent: unmounts `target`; OK when nothing is mounted there or it does not exist.
  // FailedPrecondition when it is busy.
  virtual common::Status Unmount(std::string_view target) = 0;

  // Creates directory `path` and its missing parents (mode 0750). OK when it exists;
  // FailedPrecondition when something that is not a directory is in the way.
  virtual common::Status EnsureDirectory(std::string_view path) = 0;
  // Removes the empty directory `path` (a mount point we created; never recursive). OK when it
  // does not exist; FailedPrecondition when something is mounted there, it is not empty or it is
  // not a directory.
  virtual common::Status RemoveMountPoint(std::string_view path) = 0;

  // The topmost mount at `target`, or nullopt when none.
  virtual common::Result<std::optional<MountEntry>> GetMount(std::string_view target) = 0;
  // Every mount of this mount namespace.
  virtual common::Result<std::vector<MountEntry>> ListMounts() = 0;

  // Grows the XFS mounted at `target` to the size of its device (xfs_growfs -d).
  virtual common::Status GrowXfs(std::string_view target) = 0;

  // The size of the XFS data section on `device` (data blocks × block size): as the mounted
  // filesystem knows it (current right after an online growth), else from the superblock.
  // FailedPrecondition when `device` holds no XFS.
  virtual common::Result<uint64_t> XfsSizeBytes(std::string_view device) = 0;

  // Usage of the filesystem holding `path` (statvfs), for NodeGetVolumeStats.
  virtual common::Result<FsStats> Stats(std::string_view path) = 0;
};

}  // namespace agent::sys
