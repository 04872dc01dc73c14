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
  CHECK(t.cache.LastRead("v").status().code() == StatusCode::kNotFound);
  // Once more in a pass that has not read it: the read finds it gone.
  t.cache.BeginPass();
  const int reads = t.counting.reads;
  CHECK(t.cache.LastRead("v").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 1);
}

TEST_CASE("PassCachedMd answers for arrays that do not run from one listing per pass",
          "[unit][agent][md]") {
  TwoArrays t;
  t.cache.BeginPass();
  // A running array is read, and lists nothing.
  REQUIRE(t.cache.GetArray("v").ok());
  CHECK(t.counting.reads == 1);
  CHECK(t.counting.listings == 0);
  // The first array that does not run is read, then the running ones are listed; the next ones
  // are answered from that listing.
  for (auto name : {"x", "y", "z", "x"}) {
    INFO(name);
    CHECK(t.cache.GetArray(name).status().code() == StatusCode::kNotFound);
  }
  CHECK(t.counting.reads == 2);
  CHECK(t.counting.listings == 1);
  // A listed array is still read, never answered from the listing.
  REQUIRE(t.cache.GetArray("w").ok());
  CHECK(t.counting.reads == 3);
  auto names = t.cache.ListArrayNames();
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"v", "w"});
  CHECK(t.counting.listings == 1);

  // An array another tool starts during the pass shows in the next pass.
  t.md.AddLocalDevice("/dev/f");
  REQUIRE(t.md.Create({"x", MdLevel::kRaid1, {{"/dev/e"}, {"/dev/f"}}, MdArrayUuid("x")}).ok());
  CHECK(t.cache.GetArray("x").status().code() == StatusCode::kNotFound);
  t.cache.BeginPass();
  REQUIRE(t.cache.GetArray("x").ok());

  // A change through this layer forgets the listing: the array it stopped is read again.
  CHECK(t.cache.GetArray("y").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.listings == 2);
  REQUIRE(t.cache.Stop("x").ok());
  int reads = t.counting.reads;
  CHECK(t.cache.GetArray("x").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 1);
  CHECK(t.counting.listings == 3);
  // So does a change that fails (an in-sync member of a clean array is not removed).
  CHECK_FALSE(t.cache.Remove("v", "/dev/a").ok());
  reads = t.counting.reads;
  CHECK(t.cache.GetArray("y").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 1);

  // A listing that fails is not kept: every name is read until one succeeds.
  t.cache.BeginPass();
  t.md.FailCall("ListArrayNames", 1, common::UnavailableError("sysfs went away"));
  reads = t.counting.reads;
  CHECK(t.cache.GetArray("x").status().code() == StatusCode::kNotFound);
  CHECK(t.cache.GetArray("y").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 2);
  CHECK(t.cache.GetArray("z").status().code() == StatusCode::kNotFound);
  CHECK(t.counting.reads == reads + 2);
}

}  // namespace
}  // namespace agent
