#include "agent/sys/fake/filesystem.h"

#include <cerrno>
#include <mutex>

namespace agent::sys {
namespace {

const FakeMount* TopMount(const std::vector<FakeMount>& mounts, std::string_view target) {
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    if (it->entry.target == target) return &*it;
  }
  return nullptr;
}

std::string Options(bool read_only, bool noatime) {
  return std::string(read_only ? "ro" : "rw") + (noatime ? ",noatime" : ",relatime");
}

}  // namespace

common::Result<bool> FakeFilesystem::EnsureXfs(std::string_view device, const XfsOptions& options) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.EnsureXfs"));
  std::lock_guard lock(model_.mu_);
  auto it = model_.devices_.find(device);
  if (it == model_.devices_.end()) {
    return common::ErrnoToStatus(ENOENT, fmt::format("opening {}", device));
  }
  FakeDevice& dev = it->second;
  if (dev.signature == "xfs") return false;
  if (dev.signature) {
    return common::FailedPreconditionError("{} carries a {} signature; refusing to format it",
                                           device, *dev.signature);
  }
  if (dev.in_use) return common::ErrnoToStatus(EBUSY, fmt::format("opening {}", device));
  dev.signature = "xfs";
  dev.fs_size_bytes = dev.size_bytes;
  dev.fs_sector_size = options.sector_size != 0 ? options.sector_size : dev.logical_block_size;
  return true;
}

common::Status FakeFilesystem::Mount(std::string_view device, std::string_view target,
                                     std::string_view fstype, const MountOptions& options) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.Mount"));
  std::lock_guard lock(model_.mu_);
  if (model_.directories_.count(target) == 0) {
    return common::ErrnoToStatus(ENOENT, fmt::format("mount target {}", target));
  }
  auto dev = model_.devices_.find(device);
  bool is_device = dev != model_.devices_.end();
  if (const FakeMount* m = TopMount(model_.mounts_, target)) {
    bool same = is_device ? m->device == device : m->entry.source == device;
    if (same && m->entry.read_only() == options.read_only) return common::OkStatus();
    return common::FailedPreconditionError(
        "{} is already mounted at {}{}; refusing to mount {} there", m->entry.source, target,
        m->entry.read_only() ? " read-only" : "", device);
  }
  if (device.starts_with("/")) {
    if (!is_device) return common::ErrnoToStatus(ENOENT, fmt::format("mounting {}", device));
    if (dev->second.signature != std::string(fstype)) {
      return common::InvalidArgumentError("mounting {} as {}: it holds {}", device, fstype,
                                          dev->second.signature.value_or("no filesystem"));
    }
  }
  FakeMount m;
  m.device = is_device ? std::string(device) : std::string();
  m.entry.mount_id = static_cast<uint32_t>(100 + model_.mounts_.size());
  m.entry.major = is_device ? dev->second.major : 0;
  m.entry.minor = is_device ? dev->second.minor : 0;
  m.entry.root = "/";
  m.entry.target = std::string(target);
  m.entry.mount_options = Options(options.read_only, options.noatime);
  m.entry.fstype = std::string(fstype);
  m.entry.source = std::string(device);
  m.entry.super_options = options.data.empty() ? "rw" : "rw," + options.data;
  if (is_device) dev->second.in_use = true;
  model_.mounts_.push_back(std::move(m));
  return common::OkStatus();
}

common::Status FakeFilesystem::BindMount(std::string_view source, std::string_view target,
                                         bool read_only) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.BindMount"));
  std::lock_guard lock(model_.mu_);
  for (std::string_view p : {source, target}) {
    if (model_.directories_.count(p) == 0) {
      return common::ErrnoToStatus(ENOENT, fmt::format("bind mount of {} at {}", source, target));
    }
  }
  // What `source` is: the mount at it (or the longest mount above it).
  const FakeMount* base = nullptr;
  std::string root = "/";
  for (const FakeMount& m : model_.mounts_) {
    const std::string& t = m.entry.target;
    if (source == t || (source.starts_with(t + "/"))) {
      if (base == nullptr || t.size() >= base->entry.target.size()) {
        base = &m;
        root = source == t ? m.entry.root
                           : (m.entry.root == "/" ? "" : m.entry.root) +
                                 std::string(source.substr(t.size()));
      }
    }
  }
  if (const FakeMount* m = TopMount(model_.mounts_, target)) {
    bool same = base != nullptr && m->entry.major == base->entry.major &&
                m->entry.minor == base->entry.minor && m->entry.root == root &&
                m->entry.source == base->entry.source;
    if (!same) {
      return common::FailedPreconditionError("{} is already mounted at {}; refusing to bind {}",
                                             m->entry.source, target, source);
    }
    for (FakeMount& mm : model_.mounts_) {
      if (&mm == m) mm.entry.mount_options = Options(read_only, mm.entry.HasOption("noatime"));
    }
    return common::OkStatus();
  }
  FakeMount m;
  if (base != nullptr) {
    m = *base;
    m.entry.root = root;
  } else {
    m.entry.source = "rootfs";
    m.entry.fstype = "rootfs";
    m.entry.root = std::string(source);
  }
  m.entry.mount_id = static_cast<uint32_t>(100 + model_.mounts_.size());
  m.entry.target = std::string(target);
  m.entry.mount_options = Options(read_only, m.entry.HasOption("noatime"));
  model_.mounts_.push_back(std::move(m));
  return common::OkStatus();
}

common::Status FakeFilesystem::Unmount(std::string_view target) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.Unmount"));
  std::lock_guard lock(model_.mu_);
  for (size_t i = model_.mounts_.size(); i-- > 0;) {
    if (model_.mounts_[i].entry.target != target) continue;
    // Busy when something is mounted below it.
    for (const FakeMount& other : model_.mounts_) {
      if (other.entry.target.starts_with(std::string(target) + "/")) {
        return common::ErrnoToStatus(EBUSY, fmt::format("unmounting {}", target));
      }
    }
    std::string device = model_.mounts_[i].device;
    model_.mounts_.erase(model_.mounts_.begin() + static_cast<std::ptrdiff_t>(i));
    bool still = false;
    for (const FakeMount& other : model_.mounts_) still = still || other.device == device;
    if (!device.empty() && !still) {
      if (auto d = model_.devices_.find(device); d != model_.devices_.end()) {
        d->second.in_use = false;
      }
    }
  }
  return common::OkStatus();
}

common::Result<std::optional<MountEntry>> FakeFilesystem::GetMount(std::string_view target) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.GetMount"));
  std::lock_guard lock(model_.mu_);
  if (const FakeMount* m = TopMount(model_.mounts_, target)) return std::optional(m->entry);
  return std::optional<MountEntry>();
}

common::Result<std::vector<MountEntry>> FakeFilesystem::ListMounts() {
  RETURN_IF_ERROR(model_.Hit("Filesystem.ListMounts"));
  std::lock_guard lock(model_.mu_);
  std::vector<MountEntry> out;
  for (const FakeMount& m : model_.mounts_) out.push_back(m.entry);
  return out;
}

common::Status FakeFilesystem::GrowXfs(std::string_view target) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.GrowXfs"));
  std::lock_guard lock(model_.mu_);
  const FakeMount* m = TopMount(model_.mounts_, target);
  if (m == nullptr || m->entry.fstype != "xfs" || m->device.empty()) {
    return common::FailedPreconditionError("no XFS is mounted at {}", target);
  }
  FakeDevice& dev = model_.devices_[m->device];
  dev.fs_size_bytes = dev.size_bytes;
  return common::OkStatus();
}

common::Result<FsStats> FakeFilesystem::Stats(std::string_view path) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.Stats"));
  std::lock_guard lock(model_.mu_);
  const FakeMount* best = nullptr;
  for (const FakeMount& m : model_.mounts_) {
    const std::string& t = m.entry.target;
    if ((path == t || path.starts_with(t + "/")) &&
        (best == nullptr || t.size() >= best->entry.target.size())) {
      best = &m;
    }
  }
  if (best == nullptr || best->device.empty()) {
    return common::ErrnoToStatus(ENOENT, fmt::format("statvfs {}", path));
  }
  const FakeDevice& dev = model_.devices_[best->device];
  FsStats s;
  s.total_bytes = dev.fs_size_bytes;
  s.used_bytes = dev.fs_used_bytes;
  s.available_bytes = s.total_bytes - s.used_bytes;
  s.total_inodes = dev.fs_size_bytes / 4096;
  s.used_inodes = 3;
  s.free_inodes = s.total_inodes - s.used_inodes;
  return s;
}

common::Status FakeFilesystem::EnsureDirectory(std::string_view path) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.EnsureDirectory"));
  if (path.empty() || path.front() != '/') {
    return common::InvalidArgumentError("directory \"{}\": not an absolute path", path);
  }
  if (model_.HasDevice(path)) {
    return common::FailedPreconditionError("directory {}: a device is in the way", path);
  }
  // Parents too, as mkdir -p.
  for (size_t pos = path.find('/', 1); pos != std::string_view::npos;
       pos = path.find('/', pos + 1)) {
    model_.AddDirectory(std::string(path.substr(0, pos)));
  }
  model_.AddDirectory(std::string(path));
  return common::OkStatus();
}

common::Status FakeFilesystem::RemoveMountPoint(std::string_view path) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.RemoveMountPoint"));
  std::lock_guard lock(model_.mu_);
  const std::string prefix = std::string(path) + "/";
  for (const FakeMount& m : model_.mounts_) {
    if (m.entry.target == path) {
      return common::FailedPreconditionError("removing mount point {}: {} is still mounted there",
                                             path, m.entry.source);
    }
  }
  if (model_.devices_.contains(std::string(path))) {
    return common::FailedPreconditionError("removing mount point {}: not a directory", path);
  }
  auto it = model_.directories_.find(path);
  if (it == model_.directories_.end()) return common::OkStatus();
  for (const auto& d : model_.directories_) {
    if (d.starts_with(prefix)) {
      return common::FailedPreconditionError("removing mount point {}: not empty or busy", path);
    }
  }
  model_.directories_.erase(it);
  return common::OkStatus();
}

common::Result<uint64_t> FakeFilesystem::XfsSizeBytes(std::string_view device) {
  RETURN_IF_ERROR(model_.Hit("Filesystem.XfsSizeBytes"));
  auto dev = model_.Device(device);
  if (!dev) return common::ErrnoToStatus(ENOENT, fmt::format("opening {}", device));
  if (dev->signature != "xfs") {
    return common::FailedPreconditionError("{} holds no XFS", device);
  }
  return dev->fs_size_bytes;
}

}  // namespace agent::sys
