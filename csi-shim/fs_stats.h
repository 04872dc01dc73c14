// FsStats: the one operating-system call of the shim, the usage of a mounted filesystem (for
// NodeGetVolumeStats), behind an interface so that tests can fake it.
//
// Thread contract: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <string>

#include "common/status/status.h"

namespace csi_shim {

struct FsUsage {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;  // to unprivileged users
  int64_t used_bytes = 0;
  int64_t total_inodes = 0;
  int64_t free_inodes = 0;
  int64_t used_inodes = 0;
};

class FsStats {
 public:
  virtual ~FsStats() = default;
  // Usage of the filesystem holding `path`. NotFound when the path does not exist; other errno
  // mappings as common::ErrnoToStatus.
  virtual common::Result<FsUsage> Usage(const std::string& path) = 0;
};

// statvfs(3).
class StatvfsFsStats final : public FsStats {
 public:
  common::Result<FsUsage> Usage(const std::string& path) override;
};

}  // namespace csi_shim
