#include "agent/sys/linux/partitions.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <blkid/blkid.h>
#include <libfdisk/libfdisk.h>

#include "agent/sys/linux/unique_fd.h"

namespace agent::sys {
namespace {

struct FdiskCtxFree {
  void operator()(fdisk_context* c) const { fdisk_unref_context(c); }
};
struct FdiskTableFree {
  void operator()(fdisk_table* t) const { fdisk_unref_table(t); }
};
struct FdiskPartFree {
  void operator()(fdisk_partition* p) const { fdisk_unref_partition(p); }
};
struct FdiskIterFree {
  void operator()(fdisk_iter* i) const { fdisk_free_iter(i); }
};
struct FdiskTypeFree {
  void operator()(fdisk_parttype* t) const { fdisk_unref_parttype(t); }
};
struct BlkidProbeFree {
  void operator()(blkid_struct_probe* p) const { blkid_free_probe(p); }
};
using FdiskCtx = std::unique_ptr<fdisk_context, FdiskCtxFree>;
using FdiskTable = std::unique_ptr<fdisk_table, FdiskTableFree>;
using FdiskPart = std::unique_ptr<fdisk_partition, FdiskPartFree>;
using FdiskIter = std::unique_ptr<fdisk_iter, FdiskIterFree>;
using FdiskType = std::unique_ptr<fdisk_parttype, FdiskTypeFree>;
using BlkidProbe = std::unique_ptr<blkid_struct_probe, BlkidProbeFree>;

common::Status FdiskError(int rc, std::string_view what) {
  // libfdisk returns negative errno values (sometimes -1 without errno).
  int err = rc < -1 ? -rc : (errno != 0 ? errno : EIO);
  return common::ErrnoToStatus(err, what);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

common::Result<FdiskCtx> OpenDrive(std::string_view drive, bool read_only) {
  FdiskCtx ctx(fdisk_new_context());
  if (!ctx) return common::InternalError("fdisk_new_context failed for {}", drive);
  fdisk_disable_dialogs(ctx.get(), 1);
  // A read-only context only lists. Outside list-only mode, assigning a device also probes it
  // with libblkid for every known signature (for collision warnings, which only matter to a new
  // label): 181 system calls per open instead of 81 (51 seeks instead of 6) on a GPT of 15
  // partitions, and an idle pass opens each drive twice.
  if (read_only) fdisk_enable_listonly(ctx.get(), 1);
  std::string path(drive);
  errno = 0;
  int rc = fdisk_assign_device(ctx.get(), path.c_str(), read_only ? 1 : 0);
  if (rc < 0) return FdiskError(rc, fmt::format("opening {} with libfdisk", drive));
  return ctx;
}

bool HasGpt(fdisk_context* ctx) {
  return fdisk_has_label(ctx) && fdisk_is_labeltype(ctx, FDISK_DISKLABEL_GPT);
}

common::Result<std::vector<PartitionInfo>> ListFromContext(fdisk_context* ctx,
                                                           std::string_view drive) {
  std::vector<PartitionInfo> out;
  if (!HasGpt(ctx)) return out;
  fdisk_table* raw = nullptr;
  if (int rc = fdisk_get_partitions(ctx, &raw); rc < 0) {
    return FdiskError(rc, fmt::format("reading the partitions of {}", drive));
  }
  FdiskTable tb(raw);
  FdiskIter itr(fdisk_new_iter(FDISK_ITER_FORWARD));
  const uint64_t ss = fdisk_get_sector_size(ctx);
  fdisk_partition* pa = nullptr;
  while (fdisk_table_next_partition(tb.get(), itr.get(), &pa) == 0) {
    if (!fdisk_partition_is_used(pa)) continue;
    PartitionInfo info;
    info.drive = std::string(drive);
    info.number = static_cast<uint32_t>(fdisk_partition_get_partno(pa) + 1);
    info.device_path = PartitionDevicePath(drive, info.number);
    if (const char* n = fdisk_partition_get_name(pa)) info.name = n;
    if (const char* u = fdisk_partition_get_uuid(pa)) info.uuid = Lower(u);
    if (fdisk_parttype* t = fdisk_partition_get_type(pa)) {
      if (const char* s = fdisk_parttype_get_string(t)) info.type_uuid = Lower(s);
    }
    info.start_bytes = fdisk_partition_get_start(pa) * ss;
    info.size_bytes = fdisk_partition_get_size(pa) * ss;
    ClassifyPartition(info);
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const PartitionInfo& a, const PartitionInfo& b) { return a.number < b.number; });
  return out;
}

common::Result<FreeSpace> FreeFromContext(fdisk_context* ctx, std::string_view drive) {
  if (!HasGpt(ctx)) {
    ASSIGN_OR_RETURN(std::optional<std::string> sig, ProbeDeviceSignature(drive));
    if (sig) return FreeSpace{};
    const uint64_t ss = fdisk_get_sector_size(ctx);
    std::optional<FreeExtent> area =
        BlankDriveExtent(fdisk_get_nsectors(ctx) * ss, static_cast<uint32_t>(ss));
    FreeSpace out;
    if (area) {
      out.extents.push_back(*area);
      out.biggest_bytes = area->size_bytes;
    }
    return out;
  }
  fdisk_table* raw = nullptr;
  if (int rc = fdisk_get_freespaces(ctx, &raw); rc < 0) {
    return FdiskError(rc, fmt::format("reading the free space of {}", drive));
  }
  FdiskTable tb(raw);
  std::vector<FreeExtent> gaps;
  if (tb) {
    FdiskIter itr(fdisk_new_iter(FDISK_ITER_FORWARD));
    const uint64_t ss = fdisk_get_sector_size(ctx);
    fdisk_partition* pa = nullptr;
    while (fdisk_table_next_partition(tb.get(), itr.get(), &pa) == 0) {
      gaps.push_back({fdisk_partition_get_start(pa) * ss, fdisk_partition_get_size(pa) * ss});
    }
  }
  std::sort(gaps.begin(), gaps.end(),
            [](const FreeExtent& a, const FreeExtent& b) { return a.start_bytes < b.start_bytes; });
  return AlignFreeSpace(gaps);
}

// Writes the label and tells the kernel about the entries that differ from `original`.
common::Status WriteAndReread(fdisk_context* ctx, fdisk_table* original, std::string_view drive) {
  errno = 0;
  if (int rc = fdisk_write_disklabel(ctx); rc < 0) {
    return FdiskError(rc, fmt::format("writing the partition table of {}", drive));
  }
  errno = 0;
  int rc =
      original != nullptr ? fdisk_reread_changes(ctx, original) : fdisk_reread_partition_table(ctx);
  if (rc < 0) {
    return FdiskError(rc,
                      fmt::format("telling the kernel about the new partition table of {}", drive));
  }
  errno = 0;
  if (int drc = fdisk_deassign_device(ctx, 0); drc < 0) {  // fsync + close
    return FdiskError(drc, fmt::format("syncing {}", drive));
  }
  return common::OkStatus();
}

common::Result<FdiskTable> SnapshotTable(fdisk_context* ctx, std::string_view drive) {
  fdisk_table* raw = nullptr;
  if (int rc = fdisk_get_partitions(ctx, &raw); rc < 0) {
    return FdiskError(rc, fmt::format("reading the partitions of {}", drive));
  }
  if (raw == nullptr) raw = fdisk_new_table();
  return FdiskTable(raw);
}

// EBUSY when the device is mounted, an MD member or otherwise claimed.
common::Result<UniqueFd> OpenExclusive(const std::string& path, int mode) {
  UniqueFd fd(open(path.c_str(), mode | O_EXCL | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    common::Status s = common::ErrnoToStatus(err, fmt::format("opening {} exclusively", path));
    if (err == EBUSY) s = s.WithContext("in use (mounted, an MD member, or held)");
    return s;
  }
  return fd;
}

std::string SysfsBlockName(std::string_view device) {
  size_t slash = device.rfind('/');
  return std::string(slash == std::string_view::npos ? device : device.substr(slash + 1));
}

std::optional<uint64_t> ReadSysfsU64(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

}  // namespace

common::Result<std::optional<std::string>> ProbeDeviceSignature(std::string_view device) {
  std::string path(device);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return common::ErrnoToStatus(errno, fmt::format("opening {}", device));
  // Clean cached pages may predate writes that bypassed this device's page cache.
  (void)posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);  // advisory; probing works anyway
  BlkidProbe pr(blkid_new_probe());
  if (!pr) return common::InternalError("blkid_new_probe failed for {}", device);
  if (blkid_probe_set_device(pr.get(), fd.get(), 0, 0) != 0) {
    return common::InternalError("libblkid cannot use {}", device);
  }
  blkid_probe_enable_superblocks(pr.get(), 1);
  blkid_probe_set_superblocks_flags(pr.get(), BLKID_SUBLKS_TYPE);
  blkid_probe_enable_partitions(pr.get(), 1);
  int rc = blkid_do_safeprobe(pr.get());
  if (rc == 1) return std::optional<std::string>();
  if (rc == -2) return std::optional<std::string>("ambivalent (several signatures)");
  if (rc < 0) return common::InternalError("libblkid could not probe {}", device);
  const char* value = nullptr;
  if (blkid_probe_lookup_value(pr.get(), "TYPE", &value, nullptr) == 0 && value != nullptr) {
    return std::optional<std::string>(value);
  }
  if (blkid_probe_lookup_value(pr.get(), "PTTYPE", &value, nullptr) == 0 && value != nullptr) {
    return std::optional<std::string>(value);
  }
  return std::optional<std::string>("unknown");
}

common::Result<std::vector<PartitionInfo>> LinuxPartitions::List(std::string_view drive) {
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, true));
  return ListFromContext(ctx.get(), drive);
}

common::Result<FreeSpace> LinuxPartitions::GetFreeSpace(std::string_view drive) {
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, true));
  return FreeFromContext(ctx.get(), drive);
}

common::Result<DriveTable> LinuxPartitions::ReadTable(std::string_view drive) {
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, true));
  ASSIGN_OR_RETURN(auto partitions, ListFromContext(ctx.get(), drive));
  ASSIGN_OR_RETURN(auto free, FreeFromContext(ctx.get(), drive));
  return DriveTable{std::move(partitions), std::move(free)};
}

common::Status LinuxPartitions::EnsureGpt(std::string_view drive) {
  std::lock_guard lock(mu_);
  return EnsureGptLocked(drive);
}

common::Status LinuxPartitions::EnsureGptLocked(std::string_view drive) {
  ASSIGN_OR_RETURN(FdiskCtx ro, OpenDrive(drive, true));
  if (HasGpt(ro.get())) return common::OkStatus();
  ro.reset();
  ASSIGN_OR_RETURN(std::optional<std::string> sig, ProbeDeviceSignature(drive));
  if (sig) {
    return common::FailedPreconditionError(
        "{} carries a {} signature; refusing to write a partition table over it", drive, *sig);
  }
  {
    // A blank drive that is nevertheless claimed (e.g. a whole-disk MD member being assembled).
    ASSIGN_OR_RETURN(UniqueFd excl, OpenExclusive(std::string(drive), O_RDONLY));
  }
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, false));
  errno = 0;
  if (int rc = fdisk_create_disklabel(ctx.get(), "gpt"); rc < 0) {
    return FdiskError(rc, fmt::format("creating a GPT on {}", drive));
  }
  return WriteAndReread(ctx.get(), nullptr, drive).WithContext(fmt::format("new GPT on {}", drive));
}

common::Status LinuxPartitions::WaitForPartition(const PartitionInfo& part) {
  const std::string sys = "/sys/class/block/" + SysfsBlockName(part.device_path) + "/size";
  auto deadline = std::chrono::steady_clock::now() + options_.settle_timeout;
  for (;;) {
    struct stat st {};
    bool node_ok = stat(part.device_path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    std::optional<uint64_t> sectors = ReadSysfsU64(sys);
    if (node_ok && sectors && *sectors * 512 == part.size_bytes) return common::OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return common::UnavailableError(
          "the kernel did not show {} with {} bytes within {} ms (node {}, kernel size {})",
          part.device_path, part.size_bytes, options_.settle_timeout.count(),
          node_ok ? "present" : "missing",
          sectors ? std::to_string(*sectors * 512) : std::string("unknown"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

common::Result<PartitionInfo> LinuxPartitions::Ensure(std::string_view drive,
                                                      const PartitionSpec& spec) {
  ASSIGN_OR_RETURN(std::string name, PartitionName(spec.member));
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureGptLocked(drive));
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, false));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListFromContext(ctx.get(), drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, spec.member, drive));
  if (existing) {
    RETURN_IF_ERROR(CheckExistingMember(*existing, spec));
    ctx.reset();
    RETURN_IF_ERROR(WaitForPartition(*existing));
    return *existing;
  }
  ASSIGN_OR_RETURN(FreeSpace free, FreeFromContext(ctx.get(), drive));
  ASSIGN_OR_RETURN(uint64_t start, PlacePartition(free, spec, drive));
  ASSIGN_OR_RETURN(FdiskTable original, SnapshotTable(ctx.get(), drive));

  const uint64_t ss = fdisk_get_sector_size(ctx.get());
  FdiskPart pa(fdisk_new_partition());
  std::string uuid = PartitionUuid(spec.member);
  fdisk_label* label = fdisk_get_label(ctx.get(), nullptr);
  std::string type_string(kLinuxRaidPartitionType);
  FdiskType type(fdisk_label_get_parttype_from_string(label, type_string.c_str()));
  if (!type) type.reset(fdisk_new_unknown_parttype(0, type_string.c_str()));
  if (!pa || !type || fdisk_partition_set_start(pa.get(), start / ss) != 0 ||
      fdisk_partition_set_size(pa.get(), spec.size_bytes / ss) != 0 ||
      fdisk_partition_partno_follow_default(pa.get(), 1) != 0 ||
      fdisk_partition_set_name(pa.get(), name.c_str()) != 0 ||
      fdisk_partition_set_uuid(pa.get(), uuid.c_str()) != 0 ||
      fdisk_partition_set_type(pa.get(), type.get()) != 0) {
    return common::InternalError("preparing GPT entry {} on {}", name, drive);
  }
  size_t partno = 0;
  errno = 0;
  if (int rc = fdisk_add_partition(ctx.get(), pa.get(), &partno); rc < 0) {
    return FdiskError(rc, fmt::format("adding partition {} at offset {} size {} on {}", name, start,
                                      spec.size_bytes, drive));
  }
  RETURN_IF_ERROR(WriteAndReread(ctx.get(), original.get(), drive));
  ctx.reset();

  ASSIGN_OR_RETURN(std::vector<PartitionInfo> after, List(drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> created, FindMember(after, spec.member, drive));
  if (!created || created->start_bytes != start || created->size_bytes != spec.size_bytes) {
    return common::InternalError("partition {} on {} does not read back as written", name, drive);
  }
  RETURN_IF_ERROR(WaitForPartition(*created));
  return *created;
}

common::Result<PartitionInfo> LinuxPartitions::Grow(std::string_view drive, const MemberRef& member,
                                                    uint64_t new_size_bytes) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, false));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListFromContext(ctx.get(), drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, member, drive));
  if (!existing) {
    return common::NotFoundError("no partition of member {}/{} on {}", member.volume, member.index,
                                 drive);
  }
  if (new_size_bytes % kAlignment != 0) {
    return common::InvalidArgumentError("new size {} for {} is not a multiple of 1 MiB",
                                        new_size_bytes, existing->device_path);
  }
  if (new_size_bytes < existing->size_bytes) {
    return common::FailedPreconditionError("refusing to shrink {} from {} to {} bytes",
                                           existing->device_path, existing->size_bytes,
                                           new_size_bytes);
  }
  if (new_size_bytes > existing->size_bytes) {
    ASSIGN_OR_RETURN(FreeSpace free, FreeFromContext(ctx.get(), drive));
    RETURN_IF_ERROR(CheckGrowRoom(free, *existing, new_size_bytes));
    ASSIGN_OR_RETURN(FdiskTable original, SnapshotTable(ctx.get(), drive));
    const uint64_t ss = fdisk_get_sector_size(ctx.get());
    FdiskPart pa(fdisk_new_partition());
    if (!pa || fdisk_partition_set_size(pa.get(), new_size_bytes / ss) != 0) {
      return common::InternalError("preparing the resize of {}", existing->device_path);
    }
    errno = 0;
    if (int rc = fdisk_set_partition(ctx.get(), existing->number - 1, pa.get()); rc < 0) {
      return FdiskError(
          rc, fmt::format("resizing {} to {} bytes", existing->device_path, new_size_bytes));
    }
    RETURN_IF_ERROR(WriteAndReread(ctx.get(), original.get(), drive));
    existing->size_bytes = new_size_bytes;
  }
  ctx.reset();
  RETURN_IF_ERROR(WaitForPartition(*existing));
  return *existing;
}

common::Status LinuxPartitions::Delete(std::string_view drive, const MemberRef& member) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> before, List(drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> found, FindMember(before, member, drive));
  if (!found) return common::OkStatus();
  {
    // Before libfdisk opens the drive for writing: it claims the whole disk, after which no
    // partition of it can be opened exclusively.
    common::Result<UniqueFd> excl = OpenExclusive(found->device_path, O_RDONLY);
    if (!excl.ok() && excl.status().code() != common::StatusCode::kNotFound) {
      return excl.status().WithContext(fmt::format("deleting {}", found->device_path));
    }
  }
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, false));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListFromContext(ctx.get(), drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, member, drive));
  if (!existing || existing->number != found->number) {
    return common::AbortedError("the partition table of {} changed while deleting {}", drive,
                                found->device_path);
  }
  ASSIGN_OR_RETURN(FdiskTable original, SnapshotTable(ctx.get(), drive));
  errno = 0;
  if (int rc = fdisk_delete_partition(ctx.get(), existing->number - 1); rc < 0) {
    return FdiskError(rc, fmt::format("deleting {}", existing->device_path));
  }
  RETURN_IF_ERROR(WriteAndReread(ctx.get(), original.get(), drive));
  return common::OkStatus();
}

common::Result<std::optional<std::string>> LinuxPartitions::ProbeSignature(
    std::string_view device) {
  return ProbeDeviceSignature(device);
}

common::Result<ZeroMethod> LinuxPartitions::Zero(std::string_view drive, const MemberRef& member,
                                                 bool allow_signature) {
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, List(drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> part, FindMember(parts, member, drive));
  if (!part) {
    return common::NotFoundError("no partition of member {}/{} on {}", member.volume, member.index,
                                 drive);
  }
  const std::string& path = part->device_path;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenExclusive(path, O_RDWR));
  uint64_t size = 0;
  if (ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
    return common::ErrnoToStatus(errno, fmt::format("BLKGETSIZE64 on {}", path));
  }
  if (size != part->size_bytes) {
    return common::FailedPreconditionError(
        "the kernel sees {} with {} bytes but the GPT says {}; refusing to zero it", path, size,
        part->size_bytes);
  }
  if (!allow_signature) {
    ASSIGN_OR_RETURN(std::optional<std::string> sig, ProbeDeviceSignature(path));
    if (sig) {
      return common::FailedPreconditionError("{} carries a {} signature; refusing to zero it", path,
                                             *sig);
    }
  }
  uint64_t range[2] = {0, size};
  if (ioctl(fd.get(), BLKZEROOUT, range) == 0) return ZeroMethod::kWriteZeroes;
  int zero_err = errno;
  if (zero_err != EOPNOTSUPP && zero_err != ENOTTY && zero_err != EINVAL) {
    return common::ErrnoToStatus(zero_err, fmt::format("BLKZEROOUT on {}", path));
  }
  std::string base = SysfsBlockName(drive);
  if (ReadSysfsU64("/sys/block/" + base + "/queue/discard_zeroes_data").value_or(0) == 1) {
    uint64_t drange[2] = {0, size};
    if (ioctl(fd.get(), BLKDISCARD, drange) == 0) return ZeroMethod::kDiscard;
  }
  std::vector<char> zeros(kMiB, 0);
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), size - off));
    ssize_t w = pwrite(fd.get(), zeros.data(), n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return common::ErrnoToStatus(w < 0 ? errno : EIO, fmt::format("writing {}", path));
    off += static_cast<uint64_t>(w);
  }
  if (fdatasync(fd.get()) != 0)
    return common::ErrnoToStatus(errno, fmt::format("syncing {}", path));
  return ZeroMethod::kWrite;
}

common::Status LinuxPartitions::AddRawPartitionForTest(std::string_view drive,
                                                       const std::string& name,
                                                       const std::string& uuid,
                                                       uint64_t start_bytes, uint64_t size_bytes) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureGptLocked(drive));
  ASSIGN_OR_RETURN(FdiskCtx ctx, OpenDrive(drive, false));
  ASSIGN_OR_RETURN(FdiskTable original, SnapshotTable(ctx.get(), drive));
  const uint64_t ss = fdisk_get_sector_size(ctx.get());
  FdiskPart pa(fdisk_new_partition());
  fdisk_label* label = fdisk_get_label(ctx.get(), nullptr);
  FdiskType type(
      fdisk_label_get_parttype_from_string(label, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"));
  if (!pa || !type || fdisk_partition_set_start(pa.get(), start_bytes / ss) != 0 ||
      fdisk_partition_set_size(pa.get(), size_bytes / ss) != 0 ||
      fdisk_partition_partno_follow_default(pa.get(), 1) != 0 ||
      fdisk_partition_set_name(pa.get(), name.c_str()) != 0 ||
      fdisk_partition_set_uuid(pa.get(), uuid.c_str()) != 0 ||
      fdisk_partition_set_type(pa.get(), type.get()) != 0) {
    return common::InternalError("preparing test partition on {}", drive);
  }
  size_t partno = 0;
  errno = 0;
  if (int rc = fdisk_add_partition(ctx.get(), pa.get(), &partno); rc < 0) {
    return FdiskError(rc, fmt::format("adding test partition on {}", drive));
  }
  return WriteAndReread(ctx.get(), original.get(), drive);
}

common::Status LinuxPartitions::WipeDriveForTest(std::string_view drive) {
  std::lock_guard lock(mu_);
  std::string path(drive);
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return common::ErrnoToStatus(errno, fmt::format("opening {}", drive));
  uint64_t size = 0;
  if (ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
    return common::ErrnoToStatus(errno, fmt::format("BLKGETSIZE64 on {}", drive));
  }
  for (uint64_t start : {uint64_t{0}, size > kMiB ? size - kMiB : 0}) {
    uint64_t range[2] = {start, std::min<uint64_t>(kMiB, size)};
    if (ioctl(fd.get(), BLKZEROOUT, range) != 0) {
      return common::ErrnoToStatus(errno, fmt::format("BLKZEROOUT on {}", drive));
    }
  }
  fsync(fd.get());
  if (ioctl(fd.get(), BLKRRPART, nullptr) != 0 && errno != EINVAL) {
    return common::ErrnoToStatus(errno, fmt::format("BLKRRPART on {}", drive));
  }
  return common::OkStatus();
}

}  // namespace agent::sys
