#include "agent/sys/linux/nvme_md_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

namespace agent::sys::fsutil {
namespace {

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

thread_local ScopedAttrTrace* g_trace = nullptr;

// Reads the open file `fd` (named `path` in errors); `attribute` stops at the first short
// read (see ReadAttr).
common::Result<std::string> ReadFd(int fd, const std::string& path, bool attribute) {
  FdCloser closer{fd};
  std::string out;
  char buf[4096];
  for (;;) {
    if (g_trace != nullptr) ++g_trace->reads;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return common::ErrnoToStatus(errno, "reading " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (attribute && static_cast<size_t>(n) < sizeof(buf)) break;
    if (out.size() > (1u << 20)) break;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\0')) {
    out.pop_back();
  }
  return out;
}

// openat(2) (relative to `dirfd`, or to the working directory for AT_FDCWD, as open(2)), retrying
// EINTR; -1 with errno set on failure.
int OpenRetrying(int dirfd, const char* name, int flags) {
  int fd;
  do {
    fd = ::openat(dirfd, name, flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

common::Result<std::string> ReadWhole(const std::string& path, bool attribute) {
  if (g_trace != nullptr) {
    g_trace->opened.push_back(path);
    ++g_trace->walks;
  }
  int fd = OpenRetrying(AT_FDCWD, path.c_str(), O_RDONLY);
  if (fd < 0) return common::ErrnoToStatus(errno, "opening " + path);
  return ReadFd(fd, path, attribute);
}

// The entry names of the directory open as `fd` (named `path` in errors), which it closes:
// the one listing behind ListDir and AttrDir::List. getdents64(2) directly: fdopendir would add an
// fstat and two fcntl calls (F_GETFL, F_SETFD) to every listing.
common::Result<std::vector<std::string>> ListOpenDir(int fd, const std::string& path) {
  FdCloser closer{fd};
  std::vector<std::string> names;
  alignas(dirent64) char buf[8192];
  for (;;) {
    ssize_t n = ::getdents64(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return common::ErrnoToStatus(errno, "listing " + path);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const dirent64*>(buf + off);
      std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      off += e->d_reclen;
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

ScopedAttrTrace::ScopedAttrTrace() : outer_(g_trace) { g_trace = this; }
ScopedAttrTrace::~ScopedAttrTrace() { g_trace = outer_; }

// A sysfs or configfs attribute's value is produced whole, at most a page, when the file is
// first read, and every read() returns min(asked, what is left) of it:
//  - sysfs (kernfs): a show() attribute is a seq_file whose single record is the show()
//    output; seq_read_iter copies as much of it as the caller asked for, and a preallocated
//    attribute's sysfs_kf_read returns min(count, show() length) the same way.
//  - configfs: configfs_read_iter fills its page once with show() and copies
//    min(count, remaining).
// So a read() that returns less than its buffer has returned the rest of the value, and the
// read() that would see EOF is skipped: one open, one read, one close per attribute. A value
// of 4096 bytes or more (pages are larger than 4 KiB on some architectures) fills the buffer
// and is read on to EOF as before. This does not hold for regular files on every filesystem
// (network and FUSE filesystems may return short reads), pipes, or procfs seq_files that
// emit record by record (/proc/self/mountinfo can return fewer bytes than asked with more to
// come): those go through ReadFile, which reads to EOF.
common::Result<std::string> ReadAttr(const std::string& path) { return ReadWhole(path, true); }

std::string ReadAttrOr(const std::string& path, std::string fallback) {
  auto r = ReadAttr(path);
  return r.ok() ? std::move(r).value() : std::move(fallback);
}

common::Result<std::string> ReadFile(const std::string& path) { return ReadWhole(path, false); }

common::Status WriteAttr(const std::string& path, std::string_view value) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return common::ErrnoToStatus(errno, "opening " + path + " for writing");
  FdCloser closer{fd};
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return common::ErrnoToStatus(errno, fmt::format("writing \"{}\" to {}", value, path));
  }
  if (static_cast<size_t>(n) != value.size()) {
    return common::InternalError("short write of \"{}\" to {}", value, path);
  }
  return common::OkStatus();
}

common::Status EnsureDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return common::OkStatus();
  return common::ErrnoToStatus(errno, "creating directory " + path);
}

common::Status RemoveDir(const std::string& path) {
  if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return common::OkStatus();
  return common::ErrnoToStatus(errno, "removing directory " + path);
}

common::Status EnsureSymlink(const std::string& target, const std::string& link) {
  if (::symlink(target.c_str(), link.c_str()) == 0 || errno == EEXIST) return common::OkStatus();
  return common::ErrnoToStatus(errno, fmt::format("linking {} to {}", link, target));
}

common::Status RemoveLink(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return common::OkStatus();
  return common::ErrnoToStatus(errno, "removing link " + path);
}

common::Result<std::vector<std::string>> ListDir(const std::string& path) {
  if (g_trace != nullptr) ++g_trace->walks;
  int fd = OpenRetrying(AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return common::ErrnoToStatus(errno, "listing " + path);
  return ListOpenDir(fd, path);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

common::Result<std::string> ResolvedBaseName(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  std::string target;
  if (n >= 0) {
    target.assign(buf, static_cast<size_t>(n));
  } else if (errno == EINVAL || errno == ENOENT) {
    target = path;  // not a symlink, or absent: its own name
  } else {
    return common::ErrnoToStatus(errno, "reading link " + path);
  }
  while (!target.empty() && target.back() == '/') target.pop_back();
  size_t slash = target.rfind('/');
  return slash == std::string::npos ? target : target.substr(slash + 1);
}

common::Result<AttrDir> AttrDir::Open(std::string path) {
  if (g_trace != nullptr) ++g_trace->walks;
  int fd = OpenRetrying(AT_FDCWD, path.c_str(), O_PATH | O_DIRECTORY);
  if (fd < 0) return common::ErrnoToStatus(errno, "opening " + path);
  return AttrDir(std::move(path), fd);
}

AttrDir::AttrDir(AttrDir&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

AttrDir& AttrDir::operator=(AttrDir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AttrDir::~AttrDir() {
  if (fd_ >= 0) ::close(fd_);
}

common::Result<std::string> AttrDir::Read(std::string_view name) const {
  std::string path = path_ + "/" + std::string(name);
  if (g_trace != nullptr) g_trace->opened.push_back(path);
  int fd = OpenRetrying(fd_, std::string(name).c_str(), O_RDONLY);
  if (fd < 0) return common::ErrnoToStatus(errno, "opening " + path);
  return ReadFd(fd, path, /*attribute=*/true);
}

std::string AttrDir::ReadOr(std::string_view name, std::string fallback) const {
  auto r = Read(name);
  return r.ok() ? std::move(r).value() : std::move(fallback);
}

common::Result<std::vector<std::string>> AttrDir::List(std::string_view name) const {
  std::string path = path_ + "/" + std::string(name);
  int fd = OpenRetrying(fd_, std::string(name).c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return common::ErrnoToStatus(errno, "listing " + path);
  return ListOpenDir(fd, path);
}

}  // namespace agent::sys::fsutil
