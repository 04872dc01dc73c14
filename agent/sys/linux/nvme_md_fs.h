// Small file-system helpers shared by the configfs/sysfs code of linux/nvmet, linux/nvme_host
// and linux/md. Every call retries EINTR and maps errno through common::ErrnoToStatus with the
// path in the message.
//
// Thread contract: stateless functions, safe for concurrent use.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status/status.h"

namespace agent::sys::fsutil {

// Reads a whole sysfs or configfs attribute; trailing newlines, spaces and NULs are stripped.
// One read() when the value is shorter than 4 KiB (why that is safe: nvme_md_fs.cc), so it is
// for attribute files only: regular files, pipes and procfs go through ReadFile.
common::Result<std::string> ReadAttr(const std::string& path);
// Like ReadAttr, but an absent file reads as `fallback`.
std::string ReadAttrOr(const std::string& path, std::string fallback);
// Reads a small file (up to 1 MiB) to EOF, stripped like ReadAttr: for regular files.
common::Result<std::string> ReadFile(const std::string& path);
// Writes `value` to an existing attribute file (no O_CREAT, no O_TRUNC, as sysfs/configfs want).
common::Status WriteAttr(const std::string& path, std::string_view value);
// mkdir; OK if it already exists.
common::Status EnsureDir(const std::string& path);
// rmdir; OK if it does not exist.
common::Status RemoveDir(const std::string& path);
// symlink(target, link); OK if `link` exists.
common::Status EnsureSymlink(const std::string& target, const std::string& link);
// unlink; OK if it does not exist.
common::Status RemoveLink(const std::string& path);
// The entry names of a directory (without "." and ".."), sorted. NotFound if it is absent; an
// error (ENOTDIR) if it is not a directory.
common::Result<std::vector<std::string>> ListDir(const std::string& path);
bool Exists(const std::string& path);
// The last path component of the symlink's target, or of `path` if it is not a link or is
// absent (a vanished device is still named by its path).
common::Result<std::string> ResolvedBaseName(const std::string& path);

// A directory held open (O_PATH) to read attributes under it with openat(): the kernel walks
// its path once, not once per attribute (a sysfs path such as /sys/block/md127/md/level
// crosses the /sys/block/md127 symlink on every walk), and every attribute comes from the same
// directory even if its path names another one meanwhile (an array stopped and another
// started under the same kernel name: the old directory's entries are gone, not replaced).
// Names are relative ("md/level"); Read and ReadOr follow ReadAttr's rules.
class AttrDir {
 public:
  // NotFound when absent.
  static common::Result<AttrDir> Open(std::string path);
  AttrDir(AttrDir&& other) noexcept;
  AttrDir& operator=(AttrDir&& other) noexcept;
  AttrDir(const AttrDir&) = delete;
  AttrDir& operator=(const AttrDir&) = delete;
  ~AttrDir();

  const std::string& path() const { return path_; }
  common::Result<std::string> Read(std::string_view name) const;
  std::string ReadOr(std::string_view name, std::string fallback) const;
  // ListDir of a subdirectory ("md"), through openat().
  common::Result<std::vector<std::string>> List(std::string_view name) const;

 private:
  AttrDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// Test-only: records the files ReadAttr, ReadFile and AttrDir open on this thread, and the
// read() calls they issue, while it lives (what a read of the kernel's state costs in system
// calls). Without one, the readers pay a null check of a thread-local pointer.
class ScopedAttrTrace {
 public:
  ScopedAttrTrace();
  ~ScopedAttrTrace();
  ScopedAttrTrace(const ScopedAttrTrace&) = delete;
  ScopedAttrTrace& operator=(const ScopedAttrTrace&) = delete;

  // Every file opened (or tried), in order, repeats included; one under an AttrDir as
  // "<its path>/<name>".
  std::vector<std::string> opened;
  int reads = 0;  // read() calls
  int walks = 0;  // files and directories opened by their whole path

 private:
  ScopedAttrTrace* outer_;  // the trace this one shadows, restored when it ends
};

}  // namespace agent::sys::fsutil
