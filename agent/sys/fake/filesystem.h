// FakeFilesystem: Filesystem over a BlockModel. Devices and directories must exist in the model
// (AddDevice/AddDrive/partitions, AddDirectory). EnsureXfs records an "xfs" signature with the
// device's size; Mount/BindMount/Unmount keep a mount table with per-mount options; Stats
// reports the XFS size and BlockModel::SetFsUsedBytes for the device mounted at or above the
// path. A non-device source (e.g. "tmpfs") is accepted for a pseudo filesystem. Fault points:
// "Filesystem.EnsureXfs", ".Mount", ".BindMount", ".Unmount", ".GetMount", ".ListMounts",
// ".GrowXfs", ".Stats".
//
// Thread contract: safe for concurrent use.
#pragma once

#include "agent/sys/fake/block_model.h"
#include "agent/sys/filesystem.h"

namespace agent::sys {

class FakeFilesystem : public Filesystem {
 public:
  // `model` must outlive this object.
  explicit FakeFilesystem(BlockModel& model) : model_(model) {}

  common::Result<bool> EnsureXfs(std::string_view device, const XfsOptions& options) override;
  common::Status Mount(std::string_view device, std::string_view target, std::string_view fstype,
                       const MountOptions& options) override;
  common::Status BindMount(std::string_view source, std::string_view target,
                           bool read_only) override;
  common::Status EnsureDirectory(std::string_view path) override;
  common::Status RemoveMountPoint(std::string_view path) override;
  common::Result<uint64_t> XfsSizeBytes(std::string_view device) override;
  common::Status Unmount(std::string_view target) override;
  common::Result<std::optional<MountEntry>> GetMount(std::string_view target) override;
  common::Result<std::vector<MountEntry>> ListMounts() override;
  common::Status GrowXfs(std::string_view target) override;
  common::Result<FsStats> Stats(std::string_view path) override;

 private:
  BlockModel& model_;
};

}  // namespace agent::sys
