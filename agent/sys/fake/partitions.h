// FakePartitions: Partitions over a BlockModel, with the same decisions as the Linux one
// (shared helpers in partitions.h) and the geometry libfdisk uses. Fault points:
// "Partitions.List", ".GetFreeSpace", ".EnsureGpt", ".Ensure", ".Grow", ".Delete",
// ".ProbeSignature", ".Zero".
//
// Thread contract: safe for concurrent use (the model locks).
#pragma once

#include "agent/sys/fake/block_model.h"
#include "agent/sys/partitions.h"

namespace agent::sys {

class FakePartitions : public Partitions {
 public:
  // `model` must outlive this object.
  explicit FakePartitions(BlockModel& model) : model_(model) {}

  common::Result<std::vector<PartitionInfo>> List(std::string_view drive) override;
  common::Result<FreeSpace> GetFreeSpace(std::string_view drive) override;
  common::Status EnsureGpt(std::string_view drive) override;
  common::Result<PartitionInfo> Ensure(std::string_view drive, const PartitionSpec& spec) override;
  common::Result<PartitionInfo> Grow(std::string_view drive, const MemberRef& member,
                                     uint64_t new_size_bytes) override;
  common::Status Delete(std::string_view drive, const MemberRef& member) override;
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view device) override;
  common::Result<ZeroMethod> Zero(std::string_view drive, const MemberRef& member,
                                  bool allow_signature) override;

 private:
  BlockModel& model_;
};

}  // namespace agent::sys
