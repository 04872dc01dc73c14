// PassCachedPartitions: the agent's partition layer with each drive's listing read once per
// pass.
//
// A pass asks for the partitions of a drive once or more for every volume with a member on it
// (owner, consumer, garbage collection, inventory), and the Linux implementation reads and
// parses the whole GPT with libfdisk each time: O(volumes x partitions) per pass. Between passes
// other tools may change a partition table, so nothing is kept across passes (BeginPass); within
// a pass only this agent changes the tables of its drives, and every call that may change one
// (EnsureGpt, Ensure, Grow, Delete) forgets that drive's listing before and after it. A failed
// listing is not kept. The drive's free space is kept with its partitions when both came from
// one read (ReadTable: the pass's inventory asks for both, and each read opens the table).
// Everything else passes through.
//
// Thread contract: safe for concurrent use (one mutex; the inner layer is called outside it).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/sys/partitions.h"

namespace agent {

class PassCachedPartitions final : public sys::Partitions {
 public:
  // `inner` must outlive this object.
  explicit PassCachedPartitions(sys::Partitions& inner) : inner_(inner) {}

  // Forgets every listing: called when a pass begins.
  void BeginPass();

  common::Result<std::vector<sys::PartitionInfo>> List(std::string_view drive) override;
  // From the pass's ReadTable when there was one, else read.
  common::Result<sys::FreeSpace> GetFreeSpace(std::string_view drive) override;
  common::Result<sys::DriveTable> ReadTable(std::string_view drive) override;
  common::Status EnsureGpt(std::string_view drive) override;
  common::Result<sys::PartitionInfo> Ensure(std::string_view drive,
                                            const sys::PartitionSpec& spec) override;
  common::Result<sys::PartitionInfo> Grow(std::string_view drive, const sys::MemberRef& member,
                                          uint64_t new_size_bytes) override;
  common::Status Delete(std::string_view drive, const sys::MemberRef& member) override;
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view device) override {
    return inner_.ProbeSignature(device);
  }
  common::Result<sys::ZeroMethod> Zero(std::string_view drive, const sys::MemberRef& member,
                                       bool allow_signature) override {
    return inner_.Zero(drive, member, allow_signature);  // the table stays as it is
  }

 private:
  void Forget(std::string_view drive);

  sys::Partitions& inner_;
  std::mutex mu_;
  struct Kept {
    std::vector<sys::PartitionInfo> partitions;
    std::optional<sys::FreeSpace> free;  // when read with the partitions (ReadTable)
  };
  // Keeps what was read when nothing was forgotten since `generation`.
  void Keep(std::string_view drive, uint64_t generation, Kept kept);

  std::map<std::string, Kept, std::less<>> listed_;
  uint64_t generation_ = 0;  // bumped by every BeginPass and Forget
};

}  // namespace agent
