#include "agent/sys/linux/filesystem.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include <libmount/libmount.h>

#include "agent/sys/linux/partitions.h"
#include "agent/sys/linux/unique_fd.h"

namespace agent::sys {
namespace {

// XFS_IOC_FSGEOMETRY_V1 (linux/fs/xfs/libxfs/xfs_fs.h; no xfslibs-dev needed): the geometry of
// a mounted XFS as the kernel holds it. The request number encodes the struct's size, so a
// layout mistake here fails with ENOTTY instead of reading garbage.
struct XfsGeometryV1 {
  uint32_t blocksize, rtextsize, agblocks, agcount, logblocks, sectsize, inodesize, imaxpct;
  uint64_t datablocks, rtblocks, rtextents, logstart;
  unsigned char uuid[16];
  uint32_t sunit, swidth;
  int32_t version;
  uint32_t flags, logsectsize, rtsectsize, dirblocksize;
};
static_assert(sizeof(XfsGeometryV1) == 112);
constexpr unsigned long kXfsIocFsGeometryV1 = _IOR('X', 100, XfsGeometryV1);

// The canonical form of an existing path (mountinfo shows canonical targets).
common::Result<std::string> Canonical(std::string_view path) {
  std::string p(path);
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf) == nullptr) {
    return common::ErrnoToStatus(errno, fmt::format("resolving {}", path));
  }
  return std::string(buf);
}

}  // namespace

LinuxFilesystem::~LinuxFilesystem() {
  if (watch_fd_ >= 0) ::close(watch_fd_);
}

int64_t LinuxFilesystem::mount_table_parses() const {
  std::lock_guard lock(mounts_mu_);
  return parses_;
}

common::Result<std::vector<MountEntry>> LinuxFilesystem::ListMounts() {
  std::lock_guard lock(mounts_mu_);
  if (!watch_tried_) {
    watch_tried_ = true;
    int fd = ::open(options_.mountinfo.c_str(), O_RDONLY | O_CLOEXEC);
    struct statfs sfs;
    constexpr long kProcSuperMagic = 0x9fa0;
    if (fd >= 0 && ::fstatfs(fd, &sfs) == 0 && static_cast<long>(sfs.f_type) == kProcSuperMagic) {
      watch_fd_ = fd;  // the open sees no event until the table changes after it
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  if (watch_fd_ >= 0) {
    pollfd p{watch_fd_, POLLPRI, 0};
    const int ready = ::poll(&p, 1, 0);
    if (ready < 0 || (p.revents & (POLLPRI | POLLERR | POLLNVAL)) != 0) {
      mounts_.reset();  // changed (or the poll failed): parse again
    }
    if (mounts_) return *mounts_;
  }
  auto parsed = ParseMountTable();
  ++parses_;
  if (parsed.ok() && watch_fd_ >= 0) mounts_ = *parsed;
  return parsed;
}

common::Result<std::vector<MountEntry>> LinuxFilesystem::ParseMountTable() {
  std::unique_ptr<libmnt_table, decltype(&mnt_unref_table)> table(mnt_new_table(),
                                                                  &mnt_unref_table);
  std::unique_ptr<libmnt_iter, decltype(&mnt_free_iter)> iter(mnt_new_iter(MNT_ITER_FORWARD),
                                                              &mnt_free_iter);
  if (!table || !iter) return common::InternalError("libmount: out of memory");
  // A line that does not parse fails the whole listing (it is never skipped).
  int bad_line = 0;
  mnt_table_set_userdata(table.get(), &bad_line);
  mnt_table_set_parser_errcb(table.get(), [](libmnt_table* tb, const char*, int line) {
    *static_cast<int*>(mnt_table_get_userdata(tb)) = line;
    return -EINVAL;
  });
  if (int rc = mnt_table_parse_file(table.get(), options_.mountinfo.c_str()); rc < 0) {
    if (bad_line > 0) {
      return common::InvalidArgumentError("{}: malformed mountinfo line {}", options_.mountinfo,
                                          bad_line);
    }
    return common::ErrnoToStatus(-rc, fmt::format("reading {}", options_.mountinfo));
  }
  auto str = [](const char* s) { return std::string(s != nullptr ? s : ""); };
  std::vector<MountEntry> out;
  libmnt_fs* fs = nullptr;
  while (mnt_table_next_fs(table.get(), iter.get(), &fs) == 0) {
    MountEntry e;
    e.mount_id = static_cast<uint32_t>(mnt_fs_get_id(fs));
    const dev_t dev = mnt_fs_get_devno(fs);
    e.major = major(dev);
    e.minor = minor(dev);
    e.root = str(mnt_fs_get_root(fs));
    e.target = str(mnt_fs_get_target(fs));
    e.mount_options = str(mnt_fs_get_vfs_options(fs));
    e.fstype = str(mnt_fs_get_fstype(fs));
    e.source = str(mnt_fs_get_source(fs));
    e.super_options = str(mnt_fs_get_fs_options(fs));
    out.push_back(std::move(e));
  }
  return out;
}

common::Result<std::optional<MountEntry>> LinuxFilesystem::GetMount(std::string_view target) {
  common::Result<std::string> canon = Canonical(target);
  if (!canon.ok()) {
    if (canon.status().code() == common::StatusCode::kNotFound) {
      return std::optional<MountEntry>();
    }
    return canon.status();
  }
  ASSIGN_OR_RETURN(std::vector<MountEntry> mounts, ListMounts());
  std::optional<MountEntry> top;
  for (MountEntry& m : mounts) {
    if (m.target == *canon) top = std::move(m);  // later lines are mounted on top
  }
  return top;
}

common::Result<bool> LinuxFilesystem::EnsureXfs(std::string_view device,
                                                const XfsOptions& options) {
  ASSIGN_OR_RETURN(std::optional<std::string> sig, ProbeDeviceSignature(device));
  if (sig == "xfs") return false;
  if (sig) {
    return common::FailedPreconditionError("{} carries a {} signature; refusing to format it",
                                           device, *sig);
  }
  uint32_t sector = options.sector_size;
  if (sector == 0) {
    UniqueFd fd(open(std::string(device).c_str(), O_RDONLY | O_CLOEXEC));
    int ssz = 0;
    if (!fd.valid() || ioctl(fd.get(), BLKSSZGET, &ssz) != 0) {
      return common::ErrnoToStatus(errno, fmt::format("reading the sector size of {}", device));
    }
    sector = static_cast<uint32_t>(ssz);
  }
  if (sector != 512 && sector != 4096) {
    return common::InvalidArgumentError("XFS sector size {} for {} must be 512 or 4096", sector,
                                        device);
  }
  if (options.label.size() > 12) {
    return common::InvalidArgumentError("XFS label \"{}\" is longer than 12 characters",
                                        options.label);
  }
  ExecRequest req;
  req.path = options_.mkfs_xfs;
  req.args = {"-K", "-s", fmt::format("size={}", sector)};
  if (!options.label.empty()) {
    req.args.push_back("-L");
    req.args.push_back(options.label);
  }
  req.args.push_back(std::string(device));
  req.timeout = options_.mkfs_timeout;
  common::Result<ExecResult> r = RunChecked(exec_, req);
  if (!r.ok()) return r.status().WithContext(fmt::format("formatting {} with XFS", device));
  return true;
}

common::Status LinuxFilesystem::Mount(std::string_view device, std::string_view target,
                                      std::string_view fstype, const MountOptions& options) {
  const std::string dev(device);
  struct stat dst {};
  bool is_blk = stat(dev.c_str(), &dst) == 0 && S_ISBLK(dst.st_mode);
  ASSIGN_OR_RETURN(std::optional<MountEntry> cur, GetMount(target));
  if (cur) {
    bool same = is_blk ? (cur->major == major(dst.st_rdev) && cur->minor == minor(dst.st_rdev) &&
                          cur->root == "/")
                       : cur->source == device;
    if (same && cur->read_only() == options.read_only) return common::OkStatus();
    return common::FailedPreconditionError(
        "{} ({}) is already mounted at {}{}; refusing to mount {} there", cur->source, cur->fstype,
        target, cur->read_only() ? " read-only" : "", device);
  }
  unsigned long flags = 0;
  if (options.read_only) flags |= MS_RDONLY;
  if (options.noatime) flags |= MS_NOATIME;
  const std::string tgt(target), type(fstype);
  if (mount(dev.c_str(), tgt.c_str(), type.c_str(), flags,
            options.data.empty() ? nullptr : options.data.c_str()) != 0) {
    int err = errno;
    return common::ErrnoToStatus(err,
                                 fmt::format("mounting {} ({}) at {}", device, fstype, target));
  }
  return common::OkStatus();
}

common::Status LinuxFilesystem::BindMount(std::string_view source, std::string_view target,
                                          bool read_only) {
  const std::string src(source), tgt(target);
  struct stat sst {};
  if (stat(src.c_str(), &sst) != 0) {
    return common::ErrnoToStatus(errno, fmt::format("bind source {}", source));
  }
  ASSIGN_OR_RETURN(std::optional<MountEntry> cur, GetMount(target));
  if (cur) {
    struct stat tst {};
    if (stat(tgt.c_str(), &tst) != 0) {
      return common::ErrnoToStatus(errno, fmt::format("bind target {}", target));
    }
    if (tst.st_dev != sst.st_dev || tst.st_ino != sst.st_ino) {
      return common::FailedPreconditionError(
          "{} ({}, root {}) is already mounted at {}; refusing to bind {} there", cur->source,
          cur->fstype, cur->root, target, source);
    }
    if (cur->read_only() == read_only) return common::OkStatus();
  } else {
    if (mount(src.c_str(), tgt.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return common::ErrnoToStatus(errno, fmt::format("bind-mounting {} at {}", source, target));
    }
    if (!read_only) return common::OkStatus();
  }
  // The read-only state of a bind mount is per mount point: change it with a bind remount.
  unsigned long flags = MS_REMOUNT | MS_BIND | (read_only ? MS_RDONLY : 0);
  if (mount(nullptr, tgt.c_str(), nullptr, flags, nullptr) != 0) {
    int err = errno;
    if (!cur) umount2(tgt.c_str(), UMOUNT_NOFOLLOW);  // do not leave a writable bind behind
    return common::ErrnoToStatus(err, fmt::format("remounting the bind of {} at {} {}", source,
                                                  target, read_only ? "read-only" : "read-write"));
  }
  return common::OkStatus();
}

common::Status LinuxFilesystem::Unmount(std::string_view target) {
  const std::string tgt(target);
  for (int i = 0; i < 16; ++i) {  // stacked mounts: take them all off
    ASSIGN_OR_RETURN(std::optional<MountEntry> cur, GetMount(target));
    if (!cur) return common::OkStatus();
    if (umount2(cur->target.c_str(), UMOUNT_NOFOLLOW) != 0) {
      int err = errno;
      if (err == EINVAL || err == ENOENT) return common::OkStatus();  // raced with another
      return common::ErrnoToStatus(err, fmt::format("unmounting {}", target));
    }
  }
  return common::FailedPreconditionError("more than 16 mounts stacked at {}", target);
}

common::Status LinuxFilesystem::GrowXfs(std::string_view target) {
  ASSIGN_OR_RETURN(std::optional<MountEntry> cur, GetMount(target));
  if (!cur || cur->fstype != "xfs") {
    return common::FailedPreconditionError("no XFS is mounted at {}", target);
  }
  ExecRequest req;
  req.path = options_.xfs_growfs;
  req.args = {"-d", cur->target};
  req.timeout = options_.mkfs_timeout;
  common::Result<ExecResult> r = RunChecked(exec_, req);
  if (!r.ok()) return r.status().WithContext(fmt::format("growing the XFS at {}", target));
  return common::OkStatus();
}

common::Result<FsStats> LinuxFilesystem::Stats(std::string_view path) {
  struct statvfs st {};
  if (statvfs(std::string(path).c_str(), &st) != 0) {
    return common::ErrnoToStatus(errno, fmt::format("statvfs {}", path));
  }
  FsStats s;
  const uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
  s.total_bytes = st.f_blocks * unit;
  s.available_bytes = st.f_bavail * unit;
  s.used_bytes = (st.f_blocks - st.f_bfree) * unit;
  s.total_inodes = st.f_files;
  s.free_inodes = st.f_ffree;
  s.used_inodes = st.f_files - st.f_ffree;
  return s;
}

common::Status LinuxFilesystem::EnsureDirectory(std::string_view path) {
  const std::string dir(path);
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
    return common::FailedPreconditionError("creating directory {}: something else is there", dir);
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return common::ErrnoToStatus(ec.value(), fmt::format("creating directory {}", dir));
  if (!std::filesystem::is_directory(dir, ec)) {
    return common::FailedPreconditionError("creating directory {}: not a directory", dir);
  }
  ::chmod(dir.c_str(), 0750);
  return common::OkStatus();
}

common::Status LinuxFilesystem::RemoveMountPoint(std::string_view path) {
  const std::string dir(path);
  ASSIGN_OR_RETURN(auto mounted, GetMount(dir));
  if (mounted) {
    return common::FailedPreconditionError("removing mount point {}: {} is still mounted there",
                                           dir, mounted->source);
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return common::OkStatus();
    return common::ErrnoToStatus(errno, fmt::format("removing mount point {}", dir));
  }
  if (!S_ISDIR(st.st_mode)) {
    return common::FailedPreconditionError("removing mount point {}: not a directory", dir);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    if (errno == ENOTEMPTY || errno == EEXIST || errno == EBUSY) {
      return common::FailedPreconditionError("removing mount point {}: not empty or busy", dir);
    }
    return common::ErrnoToStatus(errno, fmt::format("removing mount point {}", dir));
  }
  return common::OkStatus();
}

common::Result<uint64_t> LinuxFilesystem::XfsSizeBytes(std::string_view device) {
  const std::string dev(device);
  // Mounted: ask the filesystem. The superblock on the device lags behind an online growth
  // until XFS writes it back (tens of seconds), and the device's page cache may be older still.
  struct stat st;
  if (::stat(dev.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    auto mounts = ListMounts();
    if (mounts.ok()) {
      for (const MountEntry& m : *mounts) {
        if (m.fstype != "xfs" || m.major != major(st.st_rdev) || m.minor != minor(st.st_rdev)) {
          continue;
        }
        UniqueFd dir(::open(m.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        XfsGeometryV1 geo{};
        if (dir.get() >= 0 && ::ioctl(dir.get(), kXfsIocFsGeometryV1, &geo) == 0) {
          return uint64_t{geo.blocksize} * geo.datablocks;
        }
      }
    }
  }
  UniqueFd fd(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return common::ErrnoToStatus(errno, fmt::format("opening {}", dev));
  // The primary superblock at offset 0, big-endian: magic "XFSB", sb_blocksize (u32 at 4),
  // sb_dblocks (u64 at 8).
  unsigned char sb[16];
  ssize_t n = ::pread(fd.get(), sb, sizeof(sb), 0);
  if (n != static_cast<ssize_t>(sizeof(sb))) {
    return common::ErrnoToStatus(n < 0 ? errno : EIO, fmt::format("reading {}", dev));
  }
  if (sb[0] != 'X' || sb[1] != 'F' || sb[2] != 'S' || sb[3] != 'B') {
    return common::FailedPreconditionError("{} holds no XFS", dev);
  }
  uint64_t block = 0, blocks = 0;
  for (int i = 4; i < 8; ++i) block = (block << 8) | sb[i];
  for (int i = 8; i < 16; ++i) blocks = (blocks << 8) | sb[i];
  return block * blocks;
}

}  // namespace agent::sys
