// BlockModel: the in-memory block devices, GPT partitions, signatures, filesystems and mounts
// shared by FakeDrives, FakePartitions and FakeFilesystem (and any other fake that needs block
// devices, e.g. an MD fake can AddDevice its arrays).
//
// It models what the contract suites check: drive geometry (1 MiB-aligned GPT usable area the
// way libfdisk lays it out), partition entries, one signature per device, devices in use
// (exclusive open fails), XFS filesystems and their size, directories, and mounts with their
// options. Fault injection: FailNthCall(method, n, status) makes the n-th call of `method` from
// now on (1 = the next one) return `status`; methods are named "Partitions.Ensure",
// "Drives.List", "Filesystem.Mount", ... (see each fake).
//
// Thread contract: safe for concurrent use; every accessor locks the model.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sys/drives.h"
#include "agent/sys/filesystem.h"
#include "agent/sys/partitions.h"
#include "common/status/status.h"

namespace agent::sys {

struct FakePartition {
  uint32_t number = 0;
  std::string name;
  std::string uuid;
  std::string type_uuid;
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;
};

// Anything with a /dev node: a drive, a partition (added by FakePartitions) or another device.
struct FakeDevice {
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  std::optional<std::string> signature;  // "gpt" for a drive with a partition table
  bool in_use = false;                   // mounted, MD member, or held: O_EXCL fails
  bool zeroed = false;                   // set by Partitions::Zero
  uint32_t major = 259, minor = 0;
  // Set when it holds XFS.
  uint64_t fs_size_bytes = 0;
  uint32_t fs_sector_size = 0;
  uint64_t fs_used_bytes = 0;
};

struct FakeDriveState {
  DriveInfo info;
  std::map<uint32_t, FakePartition> partitions;  // by number; meaningful when signature=="gpt"
};

struct FakeMount {
  MountEntry entry;
  std::string device;  // the device path, or "" for a bind or a pseudo filesystem
};

class BlockModel {
 public:
  BlockModel() = default;
  BlockModel(const BlockModel&) = delete;
  BlockModel& operator=(const BlockModel&) = delete;

  // --- Setup -------------------------------------------------------------------------------
  // Adds a drive; device_path defaults to "/dev/" + name. It starts blank (no signature).
  void AddDrive(DriveInfo info);
  // Adds a block device that is not a drive (e.g. "/dev/md127").
  void AddDevice(std::string path, uint64_t size_bytes, uint32_t logical_block_size = 512);
  void RemoveDevice(std::string_view path);
  // Changes a device's size, keeping its contents (a grown array).
  void ResizeDevice(std::string_view path, uint64_t size_bytes);
  // Sets or clears the signature of any device (drive, partition or other).
  void SetSignature(std::string_view path, std::optional<std::string> signature);
  void SetInUse(std::string_view path, bool in_use);
  void SetFsUsedBytes(std::string_view device, uint64_t used);
  // Directories that exist (mount targets must).
  void AddDirectory(std::string path);
  // Adds a GPT entry as another tool would (no checks beyond the drive existing).
  void AddRawPartition(std::string_view drive, FakePartition partition);

  // --- Fault injection ------------------------------------------------------------------------
  void FailNthCall(std::string_view method, int n, common::Status status);
  // Counts a call of `method` and returns the injected failure for it, if any.
  common::Status Hit(std::string_view method);

  // --- Queries -------------------------------------------------------------------------------
  bool HasDevice(std::string_view path) const;
  std::optional<FakeDevice> Device(std::string_view path) const;
  std::optional<FakeDriveState> Drive(std::string_view path) const;
  std::vector<FakeMount> Mounts() const;
  int CallCount(std::string_view method) const;

 private:
  friend class FakeDrives;
  friend class FakePartitions;
  friend class FakeFilesystem;

  mutable std::mutex mu_;
  std::map<std::string, FakeDriveState, std::less<>> drives_;  // by device path; GUARDED_BY(mu_)
  std::map<std::string, FakeDevice, std::less<>> devices_;     // by path; GUARDED_BY(mu_)
  std::set<std::string, std::less<>> directories_;             // GUARDED_BY(mu_)
  std::vector<FakeMount> mounts_;                              // mount order; GUARDED_BY(mu_)
  std::map<std::string, int, std::less<>> calls_;              // GUARDED_BY(mu_)
  std::map<std::string, std::map<int, common::Status>, std::less<>> faults_;  // GUARDED_BY(mu_)
  uint32_t next_minor_ = 0;                                                   // GUARDED_BY(mu_)
};

}  // namespace agent::sys
