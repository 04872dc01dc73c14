// The Partitions contract: run against FakePartitions (agent_tests) and LinuxPartitions on loop
// devices or spare drives (agent_sys_lab_tests, root).
//
// An Env provides:
//   Partitions& partitions();
//   // A blank drive (no signature) of about `size_bytes` with `sector_size`-byte sectors, or
//   // "" when this environment cannot make one (e.g. 4096-byte sectors on a spare drive).
//   std::string NewDrive(uint64_t size_bytes, uint32_t sector_size);
//   void PutSignature(const std::string& device);   // writes a swap signature
//   common::Status AddForeignPartition(const std::string& drive, const std::string& name,
//                                      const std::string& uuid, uint64_t start, uint64_t size);
//   void SetBusy(const std::string& device, bool busy);  // holds an exclusive open
#pragma once

#include <catch2/catch.hpp>

#include "agent/sys/partitions.h"

namespace agent::sys::contract {

template <class Env>
void PartitionsContract(Env& env) {
  using common::StatusCode;
  Partitions& p = env.partitions();
  const MemberRef vol0{"pvc-0b6a4a1c-6e52-4f4f-9a51-3c7f1fcd2a10", 0};
  const MemberRef vol1{"pvc-0b6a4a1c-6e52-4f4f-9a51-3c7f1fcd2a10", 1};
  const MemberRef other{"vol-other", 7};
  const std::string drive = env.NewDrive(64 * kMiB, 512);
  REQUIRE_FALSE(drive.empty());

  SECTION("a blank drive has one free extent, aligned, and no partitions") {
    common::Result<FreeSpace> free = p.GetFreeSpace(drive);
    REQUIRE(free.ok());
    REQUIRE(free->extents.size() == 1);
    CHECK(free->extents[0].start_bytes == kMiB);
    CHECK(free->extents[0].size_bytes % kMiB == 0);
    CHECK(free->biggest_bytes == free->extents[0].size_bytes);
    common::Result<std::vector<PartitionInfo>> list = p.List(drive);
    REQUIRE(list.ok());
    CHECK(list->empty());
    common::Result<std::optional<std::string>> sig = p.ProbeSignature(drive);
    REQUIRE(sig.ok());
    CHECK_FALSE(sig->has_value());
  }
  SECTION("Ensure creates the GPT and a deterministic partition, idempotently") {
    common::Result<PartitionInfo> made = p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(made.ok());
    CHECK(made->ours());
    CHECK(made->member == vol0);
    CHECK(made->name == PartitionName(vol0).value());
    CHECK(made->uuid == PartitionUuid(vol0));
    CHECK(made->type_uuid == kLinuxRaidPartitionType);
    CHECK(made->start_bytes == kMiB);
    CHECK(made->size_bytes == 8 * kMiB);
    CHECK(made->device_path == PartitionDevicePath(drive, made->number));
    common::Result<std::optional<std::string>> drive_sig = p.ProbeSignature(drive);
    REQUIRE(drive_sig.ok());
    CHECK(drive_sig->value_or("") == "gpt");
    common::Result<std::optional<std::string>> part_sig = p.ProbeSignature(made->device_path);
    REQUIRE(part_sig.ok());

    common::Result<PartitionInfo> again = p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(again.ok());
    CHECK(again->number == made->number);
    CHECK(again->start_bytes == made->start_bytes);
    common::Result<std::vector<PartitionInfo>> list = p.List(drive);
    REQUIRE(list.ok());
    REQUIRE(list->size() == 1);
    CHECK((*list)[0].ours());

    common::Result<PartitionInfo> resized = p.Ensure(drive, {vol0, 16 * kMiB, std::nullopt});
    REQUIRE_FALSE(resized.ok());
    CHECK(resized.status().code() == StatusCode::kFailedPrecondition);

    common::Result<FreeSpace> free = p.GetFreeSpace(drive);
    REQUIRE(free.ok());
    REQUIRE_FALSE(free->extents.empty());
    CHECK(free->extents[0].start_bytes == 9 * kMiB);
    // Both from one read of the table.
    common::Result<DriveTable> table = p.ReadTable(drive);
    REQUIRE(table.ok());
    REQUIRE(table->partitions.size() == 1);
    CHECK(table->partitions[0].uuid == (*list)[0].uuid);
    CHECK(table->free.biggest_bytes == free->biggest_bytes);
    REQUIRE(table->free.extents.size() == free->extents.size());
    CHECK(table->free.extents[0].start_bytes == 9 * kMiB);
  }
  SECTION("placement: a given start, the first fitting extent, and errors") {
    common::Result<PartitionInfo> at = p.Ensure(drive, {vol1, 4 * kMiB, 20 * kMiB});
    REQUIRE(at.ok());
    CHECK(at->start_bytes == 20 * kMiB);
    common::Result<PartitionInfo> first = p.Ensure(drive, {vol0, 4 * kMiB, std::nullopt});
    REQUIRE(first.ok());
    CHECK(first->start_bytes == kMiB);
    common::Result<FreeSpace> free = p.GetFreeSpace(drive);
    REQUIRE(free.ok());
    REQUIRE(free->extents.size() == 2);
    CHECK(free->extents[0] == FreeExtent{5 * kMiB, 15 * kMiB});
    CHECK(free->extents[1].start_bytes == 24 * kMiB);

    CHECK(p.Ensure(drive, {other, 1024 * kMiB, std::nullopt}).status().code() ==
          StatusCode::kResourceExhausted);
    CHECK(p.Ensure(drive, {other, kMiB + 512, std::nullopt}).status().code() ==
          StatusCode::kInvalidArgument);
    CHECK(p.Ensure(drive, {other, kMiB, 2 * kMiB}).status().code() ==
          StatusCode::kResourceExhausted);  // inside vol0's partition
    CHECK(p.Ensure(drive, {MemberRef{"Bad_Name", 0}, kMiB, std::nullopt}).status().code() ==
          StatusCode::kInvalidArgument);
  }
  SECTION("a drive with a signature is never partitioned") {
    env.PutSignature(drive);
    CHECK(p.EnsureGpt(drive).code() == StatusCode::kFailedPrecondition);
    CHECK(p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt}).status().code() ==
          StatusCode::kFailedPrecondition);
    common::Result<FreeSpace> free = p.GetFreeSpace(drive);
    REQUIRE(free.ok());
    CHECK(free->extents.empty());
    common::Result<std::optional<std::string>> sig = p.ProbeSignature(drive);
    REQUIRE(sig.ok());
    CHECK(sig->value_or("") == "swap");
  }
  SECTION("foreign partitions are listed as not ours and never touched") {
    // Our name with a GUID that is not ours, and a plain foreign partition.
    REQUIRE(env.AddForeignPartition(drive, PartitionName(vol0).value(),
                                    "0fc63daf-8483-4772-8e79-3d69d8477de4", 10 * kMiB, 4 * kMiB)
                .ok());
    REQUIRE(env.AddForeignPartition(drive, "data", "5f0e5a3b-1d1e-4a8e-9a4e-2f4b1c2d3e4f",
                                    30 * kMiB, 4 * kMiB)
                .ok());
    common::Result<std::vector<PartitionInfo>> list = p.List(drive);
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK_FALSE((*list)[0].ours());
    CHECK_FALSE((*list)[1].ours());
    common::Status del = p.Delete(drive, vol0);
    CHECK(del.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(del.message(), Catch::Contains("not created by MeshStor"));
    CHECK(p.Ensure(drive, {vol0, 4 * kMiB, std::nullopt}).status().code() ==
          StatusCode::kFailedPrecondition);
    CHECK(p.Zero(drive, vol0, true).status().code() == StatusCode::kFailedPrecondition);
    CHECK(p.Grow(drive, vol0, 8 * kMiB).status().code() == StatusCode::kFailedPrecondition);
    CHECK(p.Delete(drive, vol1).ok());  // absent: nothing to do
    list = p.List(drive);
    REQUIRE(list.ok());
    CHECK(list->size() == 2);
    // Ours can live beside foreign ones, in the free space between them.
    common::Result<PartitionInfo> mine = p.Ensure(drive, {vol1, 8 * kMiB, std::nullopt});
    REQUIRE(mine.ok());
    CHECK(mine->start_bytes == kMiB);
    common::Result<PartitionInfo> mine2 = p.Ensure(drive, {other, 8 * kMiB, std::nullopt});
    REQUIRE(mine2.ok());
    CHECK(mine2->start_bytes == 14 * kMiB);
  }
  SECTION("Delete removes only ours, idempotently, and refuses a busy partition") {
    common::Result<PartitionInfo> made = p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(made.ok());
    env.SetBusy(made->device_path, true);
    CHECK(p.Delete(drive, vol0).code() == StatusCode::kFailedPrecondition);
    env.SetBusy(made->device_path, false);
    common::Status deleted = p.Delete(drive, vol0);
    INFO(deleted.ToString());
    REQUIRE(deleted.ok());
    REQUIRE(p.Delete(drive, vol0).ok());
    common::Result<std::vector<PartitionInfo>> list = p.List(drive);
    REQUIRE(list.ok());
    CHECK(list->empty());
    common::Result<FreeSpace> free = p.GetFreeSpace(drive);
    REQUIRE(free.ok());
    REQUIRE(free->extents.size() == 1);
    CHECK(free->extents[0].start_bytes == kMiB);
  }
  SECTION("Grow extends in place only into free space, and never shrinks") {
    REQUIRE(p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt}).ok());
    common::Result<PartitionInfo> grown = p.Grow(drive, vol0, 16 * kMiB);
    REQUIRE(grown.ok());
    CHECK(grown->size_bytes == 16 * kMiB);
    CHECK(grown->start_bytes == kMiB);
    REQUIRE(p.Grow(drive, vol0, 16 * kMiB).ok());
    CHECK(p.Grow(drive, vol0, 8 * kMiB).status().code() == StatusCode::kFailedPrecondition);
    REQUIRE(p.Ensure(drive, {vol1, 4 * kMiB, std::nullopt}).ok());  // right after vol0
    CHECK(p.Grow(drive, vol0, 24 * kMiB).status().code() == StatusCode::kResourceExhausted);
    CHECK(p.Grow(drive, other, 24 * kMiB).status().code() == StatusCode::kNotFound);
    common::Result<std::vector<PartitionInfo>> list = p.List(drive);
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].size_bytes == 16 * kMiB);
  }
  SECTION("the table changes while another partition of the drive is in use") {
    common::Result<PartitionInfo> a = p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(a.ok());
    env.SetBusy(a->device_path, true);  // e.g. an MD member of a running array
    common::Result<PartitionInfo> b = p.Ensure(drive, {vol1, 8 * kMiB, 20 * kMiB});
    INFO(b.status().ToString());
    REQUIRE(b.ok());
    common::Result<PartitionInfo> grown = p.Grow(drive, vol0, 12 * kMiB);  // online growth
    INFO(grown.status().ToString());
    REQUIRE(grown.ok());
    CHECK(grown->size_bytes == 12 * kMiB);
    common::Status deleted = p.Delete(drive, vol1);
    INFO(deleted.ToString());
    REQUIRE(deleted.ok());
    env.SetBusy(a->device_path, false);
  }
  SECTION("Zero refuses signatures unless allowed, and busy partitions") {
    common::Result<PartitionInfo> made = p.Ensure(drive, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(made.ok());
    env.PutSignature(made->device_path);
    common::Result<std::optional<std::string>> sig = p.ProbeSignature(made->device_path);
    REQUIRE(sig.ok());
    CHECK(sig->value_or("") == "swap");
    common::Result<ZeroMethod> refused = p.Zero(drive, vol0, false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(refused.status().message(), Catch::Contains("swap"));
    env.SetBusy(made->device_path, true);
    CHECK(p.Zero(drive, vol0, true).status().code() == StatusCode::kFailedPrecondition);
    env.SetBusy(made->device_path, false);
    REQUIRE(p.Zero(drive, vol0, true).ok());
    sig = p.ProbeSignature(made->device_path);
    REQUIRE(sig.ok());
    CHECK_FALSE(sig->has_value());
    REQUIRE(p.Zero(drive, vol0, false).ok());
    CHECK(p.Zero(drive, vol1, false).status().code() == StatusCode::kNotFound);
  }
  SECTION("4096-byte sectors keep the same 1 MiB geometry") {
    const std::string big = env.NewDrive(64 * kMiB, 4096);
    if (big.empty()) {
      WARN("this environment cannot make a drive with 4096-byte sectors");
      return;
    }
    common::Result<PartitionInfo> made = p.Ensure(big, {vol0, 8 * kMiB, std::nullopt});
    REQUIRE(made.ok());
    CHECK(made->start_bytes == kMiB);
    CHECK(made->size_bytes == 8 * kMiB);
    REQUIRE(p.Grow(big, vol0, 12 * kMiB).ok());
    common::Status deleted = p.Delete(big, vol0);
    INFO(deleted.ToString());
    REQUIRE(deleted.ok());
  }
}

}  // namespace agent::sys::contract
