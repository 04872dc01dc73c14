#include "agent/partition_cache.h"

namespace agent {

void PassCachedPartitions::BeginPass() {
  std::lock_guard lock(mu_);
  listed_.clear();
  ++generation_;
}

void PassCachedPartitions::Forget(std::string_view drive) {
  std::lock_guard lock(mu_);
  if (auto it = listed_.find(drive); it != listed_.end()) listed_.erase(it);
  ++generation_;
}

void PassCachedPartitions::Keep(std::string_view drive, uint64_t generation, Kept kept) {
  std::lock_guard lock(mu_);
  // Kept only when nothing was forgotten meanwhile (a change may have raced the read).
  if (generation == generation_) listed_.insert_or_assign(std::string(drive), std::move(kept));
}

common::Result<std::vector<sys::PartitionInfo>> PassCachedPartitions::List(std::string_view drive) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (auto it = listed_.find(drive); it != listed_.end()) return it->second.partitions;
    generation = generation_;
  }
  auto listed = inner_.List(drive);
  if (listed.ok()) Keep(drive, generation, {*listed, std::nullopt});
  return listed;
}

common::Result<sys::DriveTable> PassCachedPartitions::ReadTable(std::string_view drive) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (auto it = listed_.find(drive); it != listed_.end() && it->second.free) {
      return sys::DriveTable{it->second.partitions, *it->second.free};
    }
    generation = generation_;
  }
  auto table = inner_.ReadTable(drive);
  if (table.ok()) Keep(drive, generation, {table->partitions, table->free});
  return table;
}

common::Result<sys::FreeSpace> PassCachedPartitions::GetFreeSpace(std::string_view drive) {
  ASSIGN_OR_RETURN(auto table, ReadTable(drive));
  return std::move(table.free);
}

common::Status PassCachedPartitions::EnsureGpt(std::string_view drive) {
  Forget(drive);
  common::Status s = inner_.EnsureGpt(drive);
  Forget(drive);
  return s;
}

common::Result<sys::PartitionInfo> PassCachedPartitions::Ensure(std::string_view drive,
                                                                const sys::PartitionSpec& spec) {
  Forget(drive);
  auto r = inner_.Ensure(drive, spec);
  Forget(drive);
  return r;
}

common::Result<sys::PartitionInfo> PassCachedPartitions::Grow(std::string_view drive,
                                                              const sys::MemberRef& member,
                                                              uint64_t new_size_bytes) {
  Forget(drive);
  auto r = inner_.Grow(drive, member, new_size_bytes);
  Forget(drive);
  return r;
}

common::Status PassCachedPartitions::Delete(std::string_view drive, const sys::MemberRef& member) {
  Forget(drive);
  common::Status s = inner_.Delete(drive, member);
  Forget(drive);
  return s;
}

}  // namespace agent
