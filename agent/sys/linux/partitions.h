// LinuxPartitions: Partitions with libfdisk (GPT) and libblkid (signatures).
//
// Changes to a partition table hold one mutex of this object for the whole read-modify-write,
// write the table with libfdisk, then tell the kernel about the changed entries only
// (fdisk_reread_changes: BLKPG add/resize/delete, so partitions in use elsewhere on the drive
// stay usable), and wait, bounded, until the kernel's view (sysfs size, /dev node) matches.
// Deleting and zeroing first open the partition with O_EXCL, so a mounted partition or an MD
// member is never touched (EBUSY → FailedPrecondition).
//
// Thread contract: safe for concurrent use within one process. Other processes changing the
// same tables at the same time are not coordinated with (the agent is the only writer).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "agent/sys/partitions.h"

namespace agent::sys {

// The signature libblkid finds on `device` (superblock TYPE, else partition-table PTTYPE), or
// nullopt. Drops the device's clean page cache first so the kernel's own writes (MD, mkfs with
// O_DIRECT) are seen.
common::Result<std::optional<std::string>> ProbeDeviceSignature(std::string_view device);

class LinuxPartitions : public Partitions {
 public:
  struct Options {
    // How long to wait for the kernel's view of a changed partition (/dev node, size).
    std::chrono::milliseconds settle_timeout{std::chrono::seconds(10)};
  };
  LinuxPartitions() : LinuxPartitions(Options{}) {}
  explicit LinuxPartitions(Options options) : options_(options) {}

  common::Result<std::vector<PartitionInfo>> List(std::string_view drive) override;
  common::Result<FreeSpace> GetFreeSpace(std::string_view drive) override;
  common::Result<DriveTable> ReadTable(std::string_view drive) override;
  common::Status EnsureGpt(std::string_view drive) override;
  common::Result<PartitionInfo> Ensure(std::string_view drive, const PartitionSpec& spec) override;
  common::Result<PartitionInfo> Grow(std::string_view drive, const MemberRef& member,
                                     uint64_t new_size_bytes) override;
  common::Status Delete(std::string_view drive, const MemberRef& member) override;
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view device) override;
  common::Result<ZeroMethod> Zero(std::string_view drive, const MemberRef& member,
                                  bool allow_signature) override;

  // Test-only: adds a GPT entry with any name and GUID (creating the GPT on a blank drive), as
  // another tool would, so tests can check that foreign partitions are left alone.
  common::Status AddRawPartitionForTest(std::string_view drive, const std::string& name,
                                        const std::string& uuid, uint64_t start_bytes,
                                        uint64_t size_bytes);
  // Test-only: zeroes the first and last MiB of `drive` (partition tables, most superblocks)
  // and makes the kernel drop its partitions. Only for drives a test may wipe.
  common::Status WipeDriveForTest(std::string_view drive);

 private:
  common::Status EnsureGptLocked(std::string_view drive);
  common::Status WaitForPartition(const PartitionInfo& part);

  Options options_;
  std::mutex mu_;  // serializes partition-table changes
};

}  // namespace agent::sys
