#include "agent/partition_cache.h"

#include <catch2/catch.hpp>

#include "agent/sim/sim_node.h"

namespace agent {
namespace {

bool Has(const std::vector<sys::PartitionInfo>& parts, const sys::MemberRef& ref) {
  for (const auto& p : parts) {
    if (p.member && *p.member == ref) return true;
  }
  return false;
}

// One simulated node with one drive, its partition layer behind the cache.
struct OneDrive {
  sim::SimCluster cluster;
  sim::SimNode& node = cluster.AddNode("a");
  PassCachedPartitions cache{node.partitions};
  const std::string drive = "/dev/nvme0n1";
  OneDrive() { node.AddDrive("nvme0n1", 4ull << 30); }
  int Calls(const char* method) { return node.block.CallCount(method); }
};

TEST_CASE("PassCachedPartitions reads a drive's table once per pass and again after a change",
          "[unit][agent][partitions]") {
  OneDrive f;
  PassCachedPartitions& cache = f.cache;
  const std::string& drive = f.drive;
  auto reads = [&] { return f.Calls("Partitions.List"); };
  const sys::MemberRef ref{"pvc-1", 0};

  // Whether a List through the cache read the drive's table (the inner layer's own reads inside
  // Ensure, Grow or Delete do not count here).
  auto list_reads = [&](std::vector<sys::PartitionInfo>* out = nullptr) {
    const int before = reads();
    auto listed = cache.List(drive);
    REQUIRE(listed.ok());
    if (out != nullptr) *out = *listed;
    return reads() - before;
  };

  CHECK(list_reads() == 1);
  CHECK(list_reads() == 0);

  // A change made through the cache is seen at once.
  REQUIRE(cache.Ensure(drive, {ref, 64ull << 20, std::nullopt}).ok());
  std::vector<sys::PartitionInfo> parts;
  CHECK(list_reads(&parts) == 1);
  CHECK(Has(parts, ref));
  CHECK(list_reads() == 0);

  // A new pass reads again (another tool may have changed the table in between).
  cache.BeginPass();
  CHECK(list_reads() == 1);
  CHECK(list_reads() == 0);

  REQUIRE(cache.Grow(drive, ref, 128ull << 20).ok());
  CHECK(list_reads(&parts) == 1);
  for (const auto& p : parts) {
    if (p.member && *p.member == ref) CHECK(p.size_bytes == 128ull << 20);
  }
  REQUIRE(cache.Delete(drive, ref).ok());
  CHECK(list_reads(&parts) == 1);
  CHECK_FALSE(Has(parts, ref));
}

TEST_CASE("PassCachedPartitions reads a drive's partitions and free space once per pass",
          "[unit][agent][partitions]") {
  // The pass's inventory asks for both, the owner's steps for the partitions again.
  OneDrive f;
  PassCachedPartitions& cache = f.cache;
  const std::string& drive = f.drive;
  auto reads = [&] { return f.Calls("Partitions.List") + f.Calls("Partitions.GetFreeSpace"); };
  REQUIRE(cache.Ensure(drive, {{"pvc-1", 0}, 64ull << 20, std::nullopt}).ok());
  cache.BeginPass();
  int before = reads();
  auto table = cache.ReadTable(drive);
  REQUIRE(table.ok());
  CHECK(reads() - before == 2);  // the fake's ReadTable is List and GetFreeSpace
  REQUIRE(table->partitions.size() == 1);
  CHECK(table->free.biggest_bytes == f.node.partitions.GetFreeSpace(drive)->biggest_bytes);
  before = reads();
  REQUIRE(cache.List(drive).ok());
  auto free = cache.GetFreeSpace(drive);
  REQUIRE(free.ok());
  CHECK(free->biggest_bytes == table->free.biggest_bytes);
  REQUIRE(cache.ReadTable(drive).ok());
  CHECK(reads() == before);

  // A listing without the free space (List first) is completed by one read.
  cache.BeginPass();
  REQUIRE(cache.List(drive).ok());
  before = reads();
  REQUIRE(cache.GetFreeSpace(drive).ok());
  REQUIRE(cache.GetFreeSpace(drive).ok());
  CHECK(reads() - before == 2);

  // A change forgets both: the free space shrinks with a new partition.
  const uint64_t biggest = cache.GetFreeSpace(drive)->biggest_bytes;
  REQUIRE(cache.Ensure(drive, {{"pvc-2", 0}, 64ull << 20, std::nullopt}).ok());
  auto after = cache.ReadTable(drive);
  REQUIRE(after.ok());
  CHECK(after->partitions.size() == 2);
  CHECK(after->free.biggest_bytes == biggest - (64ull << 20));
}

TEST_CASE("PassCachedPartitions does not keep a failed listing", "[unit][agent][partitions]") {
  OneDrive f;
  f.node.block.FailNthCall("Partitions.List", 1, common::UnavailableError("injected"));
  CHECK_FALSE(f.cache.List(f.drive).ok());
  CHECK(f.cache.List(f.drive).ok());
  CHECK(f.Calls("Partitions.List") == 2);
}

}  // namespace
}  // namespace agent
