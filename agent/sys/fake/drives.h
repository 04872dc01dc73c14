// FakeDrives: Drives over a BlockModel (drives added with BlockModel::AddDrive), with the same
// inventory rules as the Linux one. Fault points: "Drives.List", "Drives.Get".
//
// Thread contract: safe for concurrent use.
#pragma once

#include "agent/sys/drives.h"
#include "agent/sys/fake/block_model.h"

namespace agent::sys {

class FakeDrives : public Drives {
 public:
  // `model` must outlive this object.
  explicit FakeDrives(BlockModel& model) : model_(model) {}

  common::Result<std::vector<DriveInfo>> List() override;
  common::Result<DriveInfo> Get(std::string_view name) override;

 private:
  BlockModel& model_;
};

}  // namespace agent::sys
