#include "agent/md_cache.h"

#include <catch2/catch.hpp>

#include "agent/sys/fake/md.h"
#include "agent/testing/counting_md.h"

namespace agent {
namespace {

using common::StatusCode;
using sys::FakeMd;
using sys::MdArrayUuid;
using sys::MdLevel;
using testing::CountingMd;

// Two running RAID1 arrays, v and w, behind a counting layer and the cache.
struct TwoArrays {
  FakeMd md;
  CountingMd counting{md};
  PassCachedMd cache{counting};

  TwoArrays() {
    md.SetInstantSync(false);
    for (auto d : {"/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e"}) md.AddLocalDevice(d);
    REQUIRE(md.Create({"v", MdLevel::kRaid1, {{"/dev/a"}, {"/dev/b"}}, MdArrayUuid("v")}).ok());
    REQUIRE(md.Create({"w", MdLevel::kRaid1, {{"/dev/c"}, {"/dev/d"}}, MdArrayUuid("w")}).ok());
    md.FinishSync("v");
    md.FinishSync("w");
  }
};

TEST_CASE("PassCachedMd reads through for decisions and reuses the pass's read for reports",
          "[unit][agent][md]") {
  TwoArrays t;
  t.cache.BeginPass();
  REQUIRE(t.cache.GetArray("v").ok());
  REQUIRE(t.cache.GetArray("v").ok());
  CHECK(t.counting.reads == 2);  // GetArray always reads the kernel
  auto last = t.cache.LastRead("v");
  REQUIRE(last.ok());
  CHECK(t.counting.reads == 2);
  CHECK(last->sync_action == "idle");
  CHECK(last->members.size() == 2);
  // An array this pass did not read is read.
  REQUIRE(t.cache.LastRead("w").ok());
  CHECK(t.counting.reads == 3);
  REQUIRE(t.cache.LastRead("w").ok());
  CHECK(t.counting.reads == 3);
  // A new pass forgets everything.
  t.cache.BeginPass();
  REQUIRE(t.cache.LastRead("v").ok());
  CHECK(t.counting.reads == 4);
}

TEST_CASE("PassCachedMd forgets an array that a change went through for", "[unit][agent][md]") {
  TwoArrays t;
  t.cache.BeginPass();
  REQUIRE(t.cache.GetArray("v").ok());
  REQUIRE(t.cache.GetArray("w").ok());
  // Adding a spare to v: LastRead shows it (a stale copy would not), w stays kept.
  REQUIRE(t.cache.Add("v", {"/dev/e"}).ok());
  const int reads = t.counting.reads;
  auto v = t.cache.LastRead("v");
  REQUIRE(v.ok());
  CHECK(v->members.size() == 3);
  CHECK(t.counting.reads == reads + 1);
  REQUIRE(t.cache.LastRead("w").ok());
  CHECK(t.counting.reads == reads + 1);

  // Every kind of change forgets the array it names, also when it fails.
  auto forgets = [&](const char* what, auto change) {
    INFO(what);
    REQUIRE(t.cache.GetArray("v").ok());
    const int before = t.counting.reads;
    (void)change();
    REQUIRE(t.cache.LastRead("v").ok());
    CHECK(t.counting.reads == before + 1);
  };
  forgets("SetSyncSpeedLimit", [&] { return t.cache.SetSyncSpeedLimit("v", 2048); });
  forgets("Fail", [&] { return t.cache.Fail("v", "/dev/e"); });
  forgets("Remove", [&] { return t.cache.Remove("v", "/dev/e"); });
  forgets("ReAdd", [&] { return t.cache.ReAdd("v", "/dev/e"); });
  forgets("Replace", [&] { return t.cache.Replace("v", "/dev/b", {"/dev/e", true}); });
  forgets("Grow", [&] { return t.cache.Grow("v"); });
  forgets("Create", [&] {
    return t.cache.Create({"v", MdLevel::kRaid1, {{"/dev/a"}, {"/dev/b"}}, MdArrayUuid("v")});
  });
  forgets("Assemble", [&] {
    return t.cache.Assemble({"v", MdArrayUuid("v"), {{"/dev/a"}, {"/dev/b"}}, false});
  });
  forgets("ZeroSuperblock (any array)",
          [&] { return t.cache.ZeroSuperblock("/dev/nothing", MdArrayUuid("v")); });
  // Stopped: LastRead reads again and finds it gone.
  REQUIRE(t.cache.GetArray("w").ok());
  REQUIRE(t.cache.Stop("w").ok());
  CHECK(t.cache.LastRead("w").status().code() == StatusCode::kNotFound);
}

TEST_CASE("PassCachedMd keeps no failed read", "[unit][agent][md]") {
  TwoArrays t;
  t.cache.BeginPass();
  REQUIRE(t.cache.GetArray("v").ok());
  // The array stops behind the cache's back (another tool): a read that fails drops the kept
  // state, so a report does not show an array that is gone.
  REQUIRE(t.md.Stop("v").ok());
  CHECK(t.cache.GetArray("v").status().code() == StatusCode::kNotFound);
  const int reads = t.counting.reads;
  CHECK(t.cache.LastRead("v").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 1);
}

}  // namespace
}  // namespace agent
