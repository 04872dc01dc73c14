#include "csi-shim/fs_stats.h"

#include <sys/statvfs.h>

#include <cerrno>

namespace csi_shim {

common::Result<FsUsage> StatvfsFsStats::Usage(const std::string& path) {
  struct statvfs st {};
  int rc = 0;
  do {
    rc = ::statvfs(path.c_str(), &st);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return common::ErrnoToStatus(errno, "statvfs " + path);
  const auto frsize = static_cast<int64_t>(st.f_frsize);
  FsUsage u;
  u.total_bytes = static_cast<int64_t>(st.f_blocks) * frsize;
  u.available_bytes = static_cast<int64_t>(st.f_bavail) * frsize;
  u.used_bytes = (static_cast<int64_t>(st.f_blocks) - static_cast<int64_t>(st.f_bfree)) * frsize;
  u.total_inodes = static_cast<int64_t>(st.f_files);
  u.free_inodes = static_cast<int64_t>(st.f_ffree);
  u.used_inodes = u.total_inodes - u.free_inodes;
  return u;
}

}  // namespace csi_shim
