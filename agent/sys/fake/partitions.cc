#include "agent/sys/fake/partitions.h"

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

namespace agent::sys {
namespace {

// All helpers below expect the model's mutex to be held by the caller.

common::Result<FakeDriveState*> FindDrive(
    std::map<std::string, FakeDriveState, std::less<>>& drives, std::string_view drive) {
  auto it = drives.find(drive);
  if (it == drives.end()) return common::ErrnoToStatus(ENOENT, fmt::format("opening {}", drive));
  return &it->second;
}

std::vector<PartitionInfo> ListLocked(const FakeDriveState& d, const FakeDevice& dev) {
  std::vector<PartitionInfo> out;
  if (dev.signature != "gpt") return out;
  for (const auto& [number, p] : d.partitions) {
    PartitionInfo info;
    info.drive = d.info.device_path;
    info.number = number;
    info.device_path = PartitionDevicePath(d.info.device_path, number);
    info.name = p.name;
    info.uuid = p.uuid;
    info.type_uuid = p.type_uuid;
    info.start_bytes = p.start_bytes;
    info.size_bytes = p.size_bytes;
    ClassifyPartition(info);
    out.push_back(std::move(info));
  }
  return out;
}

FreeSpace FreeLocked(const FakeDriveState& d, const FakeDevice& dev) {
  std::optional<FreeExtent> area = BlankDriveExtent(dev.size_bytes, dev.logical_block_size);
  if (!area || (dev.signature && *dev.signature != "gpt")) return FreeSpace{};
  std::vector<FreeExtent> gaps;
  uint64_t pos = area->start_bytes;
  uint64_t end = area->start_bytes + area->size_bytes;
  std::vector<std::pair<uint64_t, uint64_t>> used;
  if (dev.signature == "gpt") {
    for (const auto& [n, p] : d.partitions) used.emplace_back(p.start_bytes, p.size_bytes);
  }
  std::sort(used.begin(), used.end());
  for (auto [start, size] : used) {
    if (start > pos) gaps.push_back({pos, std::min(start, end) - pos});
    pos = std::max(pos, start + size);
  }
  if (end > pos) gaps.push_back({pos, end - pos});
  return AlignFreeSpace(gaps);
}

}  // namespace

common::Result<std::vector<PartitionInfo>> FakePartitions::List(std::string_view drive) {
  RETURN_IF_ERROR(model_.Hit("Partitions.List"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  return ListLocked(*d, model_.devices_[d->info.device_path]);
}

common::Result<FreeSpace> FakePartitions::GetFreeSpace(std::string_view drive) {
  RETURN_IF_ERROR(model_.Hit("Partitions.GetFreeSpace"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  return FreeLocked(*d, model_.devices_[d->info.device_path]);
}

common::Status FakePartitions::EnsureGpt(std::string_view drive) {
  RETURN_IF_ERROR(model_.Hit("Partitions.EnsureGpt"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  FakeDevice& dev = model_.devices_[d->info.device_path];
  if (dev.signature == "gpt") return common::OkStatus();
  if (dev.signature) {
    return common::FailedPreconditionError(
        "{} carries a {} signature; refusing to write a partition table over it", drive,
        *dev.signature);
  }
  if (dev.in_use) return common::ErrnoToStatus(EBUSY, fmt::format("opening {}", drive));
  dev.signature = "gpt";
  d->partitions.clear();
  return common::OkStatus();
}

common::Result<PartitionInfo> FakePartitions::Ensure(std::string_view drive,
                                                     const PartitionSpec& spec) {
  RETURN_IF_ERROR(model_.Hit("Partitions.Ensure"));
  ASSIGN_OR_RETURN(std::string name, PartitionName(spec.member));
  {
    std::lock_guard lock(model_.mu_);
    ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
    FakeDevice& dev = model_.devices_[d->info.device_path];
    if (dev.signature && *dev.signature != "gpt") {
      return common::FailedPreconditionError(
          "{} carries a {} signature; refusing to write a partition table over it", drive,
          *dev.signature);
    }
    std::vector<PartitionInfo> parts = ListLocked(*d, dev);
    ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, spec.member, drive));
    if (existing) {
      RETURN_IF_ERROR(CheckExistingMember(*existing, spec));
      return *existing;
    }
    ASSIGN_OR_RETURN(uint64_t start, PlacePartition(FreeLocked(*d, dev), spec, drive));
    if (!dev.signature && dev.in_use) {
      return common::ErrnoToStatus(EBUSY, fmt::format("opening {}", drive));
    }
    dev.signature = "gpt";
    uint32_t number = 1;
    while (d->partitions.count(number) != 0) ++number;
    if (number > 128) return common::ResourceExhaustedError("no free GPT entry on {}", drive);
    FakePartition p{
        number, name,           PartitionUuid(spec.member), std::string(kLinuxRaidPartitionType),
        start,  spec.size_bytes};
    d->partitions[number] = p;
    FakeDevice pdev;
    pdev.size_bytes = spec.size_bytes;
    pdev.logical_block_size = dev.logical_block_size;
    pdev.minor = model_.next_minor_++;
    model_.devices_[PartitionDevicePath(drive, number)] = pdev;
  }
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, List(drive));
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> created, FindMember(parts, spec.member, drive));
  if (!created) return common::InternalError("partition for {} vanished", name);
  return *created;
}

common::Result<PartitionInfo> FakePartitions::Grow(std::string_view drive, const MemberRef& member,
                                                   uint64_t new_size_bytes) {
  RETURN_IF_ERROR(model_.Hit("Partitions.Grow"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  FakeDevice& dev = model_.devices_[d->info.device_path];
  std::vector<PartitionInfo> parts = ListLocked(*d, dev);
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, member, drive));
  if (!existing) {
    return common::NotFoundError("no partition of member {}/{} on {}", member.volume, member.index,
                                 drive);
  }
  if (new_size_bytes % kAlignment != 0) {
    return common::InvalidArgumentError("new size {} for {} is not a multiple of 1 MiB",
                                        new_size_bytes, existing->device_path);
  }
  if (new_size_bytes == existing->size_bytes) return *existing;
  if (new_size_bytes < existing->size_bytes) {
    return common::FailedPreconditionError("refusing to shrink {} from {} to {} bytes",
                                           existing->device_path, existing->size_bytes,
                                           new_size_bytes);
  }
  RETURN_IF_ERROR(CheckGrowRoom(FreeLocked(*d, dev), *existing, new_size_bytes));
  d->partitions[existing->number].size_bytes = new_size_bytes;
  model_.devices_[existing->device_path].size_bytes = new_size_bytes;
  existing->size_bytes = new_size_bytes;
  return *existing;
}

common::Status FakePartitions::Delete(std::string_view drive, const MemberRef& member) {
  RETURN_IF_ERROR(model_.Hit("Partitions.Delete"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  std::vector<PartitionInfo> parts = ListLocked(*d, model_.devices_[d->info.device_path]);
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, member, drive));
  if (!existing) return common::OkStatus();
  auto dev = model_.devices_.find(existing->device_path);
  if (dev != model_.devices_.end() && dev->second.in_use) {
    return common::ErrnoToStatus(EBUSY, fmt::format("deleting {}", existing->device_path))
        .WithContext("partition is in use");
  }
  d->partitions.erase(existing->number);
  if (dev != model_.devices_.end()) model_.devices_.erase(dev);
  return common::OkStatus();
}

common::Result<std::optional<std::string>> FakePartitions::ProbeSignature(std::string_view device) {
  RETURN_IF_ERROR(model_.Hit("Partitions.ProbeSignature"));
  std::lock_guard lock(model_.mu_);
  auto it = model_.devices_.find(device);
  if (it == model_.devices_.end()) {
    return common::ErrnoToStatus(ENOENT, fmt::format("opening {}", device));
  }
  return it->second.signature;
}

common::Result<ZeroMethod> FakePartitions::Zero(std::string_view drive, const MemberRef& member,
                                                bool allow_signature) {
  RETURN_IF_ERROR(model_.Hit("Partitions.Zero"));
  std::lock_guard lock(model_.mu_);
  ASSIGN_OR_RETURN(FakeDriveState * d, FindDrive(model_.drives_, drive));
  std::vector<PartitionInfo> parts = ListLocked(*d, model_.devices_[d->info.device_path]);
  ASSIGN_OR_RETURN(std::optional<PartitionInfo> existing, FindMember(parts, member, drive));
  if (!existing) {
    return common::NotFoundError("no partition of member {}/{} on {}", member.volume, member.index,
                                 drive);
  }
  FakeDevice& dev = model_.devices_[existing->device_path];
  if (dev.in_use) {
    return common::ErrnoToStatus(EBUSY,
                                 fmt::format("opening {} exclusively", existing->device_path));
  }
  if (dev.signature && !allow_signature) {
    return common::FailedPreconditionError("{} carries a {} signature; refusing to zero it",
                                           existing->device_path, *dev.signature);
  }
  dev.signature.reset();
  dev.fs_size_bytes = 0;
  dev.zeroed = true;
  return ZeroMethod::kWriteZeroes;
}

}  // namespace agent::sys
