// Unit tests of the interfaces' helpers: member naming and UUIDs, geometry decisions,
// RunChecked, and the fault injection of the fakes.
#include <catch2/catch.hpp>

#include "agent/sys/exec.h"
#include "agent/sys/fake/block_model.h"
#include "agent/sys/fake/exec.h"
#include "agent/sys/fake/partitions.h"
#include "agent/sys/filesystem.h"
#include "agent/sys/partitions.h"

namespace agent::sys {
namespace {

TEST_CASE("UuidV5 matches the RFC 4122 reference", "[unit][agent][sys]") {
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
  CHECK(UuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org") ==
        "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

TEST_CASE("Partition names round-trip and fit in a GPT name", "[unit][agent][sys]") {
  MemberRef pvc{"pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca427", 999};
  common::Result<std::string> name = PartitionName(pvc);
  REQUIRE(name.ok());
  CHECK(name->starts_with("ms1p:"));
  CHECK(name->size() <= 36);
  CHECK(ParsePartitionName(*name) == pvc);

  MemberRef plain{"vol-a.b", 3};
  REQUIRE(PartitionName(plain).ok());
  CHECK(*PartitionName(plain) == "ms1n:vol-a.b:3");
  CHECK(ParsePartitionName("ms1n:vol-a.b:3") == plain);

  // Deterministic and distinct.
  CHECK(PartitionUuid(pvc) == PartitionUuid(pvc));
  CHECK(PartitionUuid(pvc) != PartitionUuid(MemberRef{pvc.volume, 998}));
  CHECK(PartitionUuid(pvc).size() == 36);
  CHECK(PartitionUuid(pvc)[14] == '5');

  // Not encodable.
  CHECK(PartitionName({"pvc-1B4E28BA-2FA1-11D2-883F-0016D3CCA427x", 0}).status().code() ==
        common::StatusCode::kInvalidArgument);
  CHECK(PartitionName({"Upper", 0}).status().code() == common::StatusCode::kInvalidArgument);
  CHECK(PartitionName({"a-volume-name-that-is-far-too-long-for-gpt", 0}).status().code() ==
        common::StatusCode::kInvalidArgument);
  CHECK(PartitionName({"v", 1000}).status().code() == common::StatusCode::kInvalidArgument);
  CHECK_FALSE(PartitionName({"", 0}).ok());

  // Not ours, or not canonical.
  for (const char* s : {"", "data", "ms1n:", "ms1n:vol:", "ms1n:vol:01", "ms1n:vol:1000",
                        "ms1n:Vol:1", "ms1p:short:1", "ms1n:vol:x", "ms2n:vol:1", "ms1n::1"}) {
    INFO(s);
    CHECK_FALSE(ParsePartitionName(s).has_value());
  }
}

TEST_CASE("ClassifyPartition needs both the name and the GUID", "[unit][agent][sys]") {
  MemberRef m{"vol", 1};
  PartitionInfo p;
  p.name = *PartitionName(m);
  p.uuid = PartitionUuid(m);
  ClassifyPartition(p);
  CHECK(p.member == m);
  p.uuid = "00000000-0000-0000-0000-000000000001";
  ClassifyPartition(p);
  CHECK_FALSE(p.ours());
}

TEST_CASE("Partition device paths", "[unit][agent][sys]") {
  CHECK(PartitionDevicePath("/dev/nvme0n1", 3) == "/dev/nvme0n1p3");
  CHECK(PartitionDevicePath("/dev/loop7", 1) == "/dev/loop7p1");
  CHECK(PartitionDevicePath("/dev/vda", 2) == "/dev/vda2");
}

TEST_CASE("Geometry: blank drive extent and alignment", "[unit][agent][sys]") {
  std::optional<FreeExtent> e = BlankDriveExtent(64 * kMiB, 512);
  REQUIRE(e);
  CHECK(*e == FreeExtent{kMiB, 62 * kMiB});  // the backup GPT takes part of the last MiB
  CHECK_FALSE(BlankDriveExtent(kMiB, 512));
  FreeSpace f = AlignFreeSpace({{34 * 512, kMiB}, {5 * kMiB + 7, 3 * kMiB}, {9 * kMiB, 10}});
  REQUIRE(f.extents.size() == 1);
  CHECK(f.extents[0] == FreeExtent{6 * kMiB, 2 * kMiB});
  CHECK(f.biggest_bytes == 2 * kMiB);
}

TEST_CASE("RunChecked reports timeouts, signals and exit codes", "[unit][agent][sys]") {
  FakeExec exec;
  ExecResult killed;
  killed.signal = 9;
  exec.SetResult("/bin/killed", killed);
  exec.SetResult("/bin/long", {"--verbose"}, FakeExec::Exit(1, std::string(5000, 'x') + "END"));
  exec.SetResult("/bin/long", FakeExec::Ok("fine"));
  common::Result<ExecResult> r = RunChecked(exec, {"/bin/killed", {}});
  CHECK(r.status().code() == common::StatusCode::kInternal);
  CHECK_THAT(r.status().message(), Catch::Contains("signal 9"));
  r = RunChecked(exec, {"/bin/long", {"--verbose"}});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("END"));
  CHECK(r.status().message().size() < 2300);  // stderr tail is capped
  REQUIRE(RunChecked(exec, {"/bin/long", {}}).ok());
  exec.FailNthCall(4, common::UnavailableError("injected"));
  r = RunChecked(exec, {"/bin/long", {}});
  CHECK(r.status().code() == common::StatusCode::kUnavailable);
  CHECK(exec.CallsTo("/bin/long").size() == 3);
  CHECK(RunChecked(exec, {"/bin/missing", {}}).status().code() == common::StatusCode::kNotFound);
}

TEST_CASE("BlockModel fails the n-th call of a method", "[unit][agent][sys]") {
  BlockModel model;
  DriveInfo d;
  d.name = "nvme0n1";
  d.size_bytes = 64 * kMiB;
  d.logical_block_size = 512;
  d.transport = "pcie";
  model.AddDrive(d);
  FakePartitions parts(model);
  model.FailNthCall("Partitions.Ensure", 2, common::ErrnoToStatus(EIO, "writing GPT"));
  MemberRef m{"vol", 0};
  REQUIRE(parts.Ensure("/dev/nvme0n1", {m, 4 * kMiB, std::nullopt}).ok());
  common::Result<PartitionInfo> failed = parts.Ensure("/dev/nvme0n1", {m, 4 * kMiB, std::nullopt});
  CHECK(failed.status().code() == common::StatusCode::kInternal);
  REQUIRE(parts.Ensure("/dev/nvme0n1", {m, 4 * kMiB, std::nullopt}).ok());
  CHECK(model.CallCount("Partitions.Ensure") == 3);
  // The model is observable: the partition exists once, as a device too.
  std::optional<FakeDriveState> state = model.Drive("/dev/nvme0n1");
  REQUIRE(state);
  CHECK(state->partitions.size() == 1);
  CHECK(model.HasDevice("/dev/nvme0n1p1"));
}

}  // namespace
}  // namespace agent::sys
