// The stale-member guard (docs/design.md §6.1) on simulated nodes: the in-sync record, the start
// rule, the forced start and the full rebuild of a member that diverged, including the
// reproduction of issue 14 (the consumer dies after a remote leg dropped out; the pod moves to a
// third node while only the stale copy is reachable).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/sim/sim_node.h"
#include "agent/testing/world.h"
#include "agent/volume.h"
#include "common/time/clock.h"
#include "common/time/fake_clock.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using std::chrono::seconds;
using v1::PartitionState;

using testing::kGiB;
using testing::MakeMember;
using testing::Raid1Volume;
const std::string kArray = sys::MdArrayName("pvc-1");

// The shared fixture, with the XFS of an array assembled elsewhere and power cuts.
struct World : testing::World {
  World() { shared_fs_array = kArray; }
  // The node loses power: its target stops answering, its arrays and mounts are gone without a
  // superblock write, and its agent stops.
  void PowerOff(const std::string& n) {
    cluster.SetOnline(n, false);
    cluster.ExpireControllers();
    auto mounts = cluster.node(n).fs.ListMounts();
    REQUIRE(mounts.ok());
    for (auto it = mounts->rbegin(); it != mounts->rend(); ++it) {
      REQUIRE(cluster.node(n).fs.Unmount(it->target).ok());
    }
    cluster.node(n).fake_md.PowerOff();
    down.insert(n);
  }
  void PowerOn(const std::string& n) {
    cluster.SetOnline(n, true);
    down.erase(n);
  }
  // A remote node drops out of the consumer's array (power loss) and stays away.
  void LoseRemote(v1::MeshStorVolume& v, const std::string& n) {
    PowerOff(n);
    Passes(v, 2);
  }
  // The device path of a member's partition on its own node.
  std::string LocalDevice(const std::string& n, int32_t index) {
    auto parts = cluster.node(n).partitions.List("/dev/nvme0n1");
    REQUIRE(parts.ok());
    auto found = sys::FindMember(*parts, {"pvc-1", static_cast<uint32_t>(index)}, "/dev/nvme0n1");
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    return (*found)->device_path;
  }
  bool Running(const std::string& n) { return cluster.node(n).md.GetArray(kArray).ok(); }
};

std::vector<int32_t> InSync(const v1::MeshStorVolume& v) {
  return v.status.in_sync ? v.status.in_sync->members : std::vector<int32_t>{};
}

// The pod moves: as the operator's relocation does, every member off the new consumer is remote.
void MoveConsumer(v1::MeshStorVolume& v, const std::string& node) {
  v.spec.consumer_node = node;
  for (auto& m : v.spec.members) {
    m.role = m.node == node ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
  }
}

common::api::Time Now(World& w) { return std::chrono::floor<seconds>(w.clock.Now()); }

TEST_CASE(
    "The in-sync set is recorded at creation, shrunk when MD drops a member, grown only "
    "once it is fully in sync",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
  REQUIRE(v.status.in_sync.has_value());
  CHECK(v.status.in_sync->node == "a");
  const auto created_at = v.status.in_sync->recorded_at;
  CHECK(created_at == Now(w));
  CHECK(v.status.in_sync->events.has_value());
  CHECK(v.status.start_blocked.empty());

  // Passes that change nothing leave the record (and its time) alone.
  w.clock.Advance(seconds(30));
  w.Passes(v, 2);
  CHECK(v.status.in_sync->recorded_at == created_at);

  // B drops out: the very next consumer pass records its exit.
  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  w.Pass(v);
  CHECK(InSync(v) == std::vector<int32_t>{0});
  const auto shrunk_at = Now(w);
  CHECK(v.status.in_sync->recorded_at == shrunk_at);

  // B returns and is caught up: recovering is not in sync; the set grows once it finished.
  w.cluster.node("a").fake_md.SetInstantSync(false);
  w.cluster.SetOnline("b", true);
  w.clock.Advance(seconds(30));
  w.Passes(v, 2);
  CHECK(w.Part(v, 1)->state == PartitionState::kSyncing);
  CHECK(InSync(v) == std::vector<int32_t>{0});
  CHECK(v.status.in_sync->recorded_at == shrunk_at);
  w.cluster.node("a").fake_md.FinishSync(kArray);
  w.Pass(v);
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
  CHECK(v.status.in_sync->recorded_at == Now(w));
}

TEST_CASE("After an MD event the exit is recorded without waiting on unreachable members",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  VolumeReconciler a(w.cluster.node("a").Kernel(), w.Settings("a"), w.clock);
  CHECK_FALSE(a.ObserveInSync(v, w.peers).has_value());  // unchanged: nothing to write
  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  auto out = a.ObserveInSync(v, w.peers);
  REQUIRE(out.has_value());
  CHECK(out->errors.empty());
  ApplyOutcome(*out, "a", v.status);
  CHECK(InSync(v) == std::vector<int32_t>{0});
  CHECK(v.status.in_sync->recorded_at == Now(w));
  // Only the record: the consumer's other fields wait for the full pass.
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  VolumeReconciler b(w.cluster.node("b").Kernel(), w.Settings("b"), w.clock);
  CHECK_FALSE(b.ObserveInSync(v, w.peers).has_value());  // not the consumer
}

TEST_CASE("Issue 14: the fresh member missing and the stale one present, the array waits",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  // B drops out; A goes on writing (and records B's exit); then A dies.
  w.LoseRemote(v, "b");
  REQUIRE(InSync(v) == std::vector<int32_t>{0});
  const auto left_at = v.status.in_sync->recorded_at;
  w.clock.Advance(seconds(60));
  w.PowerOff("a");
  // B is back; the pod moves to C.
  w.PowerOn("b");
  const std::string b_dev = w.LocalDevice("b", 1);
  const auto b_events = w.cluster.node("b").fake_md.SuperblockEvents(b_dev);
  REQUIRE(b_events.has_value());
  MoveConsumer(v, "c");
  w.errors.clear();
  w.Passes(v, 3);
  // Long past the assemble grace, still waiting: B's copy lacks what A acknowledged.
  w.clock.Advance(seconds(600));
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK_FALSE(w.Running("c"));
  CHECK(v.status.node_name != "c");
  const std::string& why = v.status.start_blocked;
  CHECK(why.find("member 0 on node a was in sync at " + common::time::FormatRfc3339(*left_at) +
                 " and may hold acknowledged writes the others lack") != std::string::npos);
  CHECK(why.find("unreachable") != std::string::npos);
  CHECK(why.find("csi.meshstor.io/force-start") != std::string::npos);
  // Nothing touched B's copy.
  CHECK(w.cluster.node("b").fake_md.SuperblockEvents(b_dev) == b_events);

  // A returns: the array starts from the whole in-sync set, A's copy; B is caught up.
  w.PowerOn("a");
  w.Passes(v, 3);
  INFO(w.ErrorText());
  INFO("startBlocked: " << v.status.start_blocked);
  INFO("member 0: " << w.Part(v, 0)->message);
  CHECK(w.Running("c"));
  CHECK(v.status.node_name == "c");
  CHECK(v.status.start_blocked.empty());
  CHECK_FALSE(v.status.forced_start.has_value());
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
}

TEST_CASE(
    "Issue 14: force starts from the best present copy, records the loss window, and the "
    "fresher member that returns is fully rebuilt, never re-added",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.LoseRemote(v, "b");
  const auto left_at = v.status.in_sync->recorded_at;
  w.PowerOff("a");
  w.PowerOn("b");
  MoveConsumer(v, "c");
  w.Passes(v, 2);
  REQUIRE_FALSE(w.Running("c"));
  REQUIRE_FALSE(v.status.start_blocked.empty());

  w.clock.Advance(seconds(120));
  v.metadata.annotations[std::string(v1::kForceStartAnnotation)] = "take-b";
  w.errors.clear();
  w.Pass(v);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  REQUIRE(w.Running("c"));
  REQUIRE(v.status.forced_start.has_value());
  const v1::ForcedStart& f = *v.status.forced_start;
  CHECK(f.token == "take-b");
  CHECK(f.node == "c");
  CHECK(f.at == Now(w));
  CHECK(f.from_members == std::vector<int32_t>{1});
  CHECK(f.missing_members == std::vector<int32_t>{0});
  CHECK(f.diverged_members == std::vector<int32_t>{0});
  CHECK(f.loss_window_since == left_at);
  CHECK(v.status.start_blocked.empty());
  CHECK(InSync(v) == std::vector<int32_t>{1});
  bool noticed = std::any_of(w.notices.begin(), w.notices.end(), [](const std::string& n) {
    return n.find("started by force") != std::string::npos;
  });
  CHECK(noticed);
  w.Passes(v, 2);
  CHECK(v.status.node_name == "c");

  // A returns with a lower event count than the forced array's (it kept counting): MD would take
  // it back by bitmap. It must be rebuilt in full instead.
  const std::string a_dev = w.LocalDevice("a", 0);
  w.cluster.node("a").fake_md.SetSuperblockEvents(a_dev, 1);
  w.cluster.node("c").fake_md.FailCall("ReAdd", 1,
                                       common::InternalError("a bitmap re-add was attempted"));
  w.cluster.node("c").fake_md.SetInstantSync(false);
  w.PowerOn("a");
  w.errors.clear();
  w.Pass(v);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.Part(v, 0)->state == PartitionState::kSyncing);
  CHECK(w.Part(v, 0)->message.find("diverged") != std::string::npos);
  CHECK(w.Part(v, 0)->message.find("full resync") != std::string::npos);
  auto array = w.cluster.node("c").md.GetArray(kArray);
  REQUIRE(array.ok());
  CHECK(array->sync_action == "recover");
  // Rebuilt and in sync: one lineage again, the member leaves the diverged list.
  w.cluster.node("c").fake_md.FinishSync(kArray);
  w.Passes(v, 2);
  CHECK(w.Part(v, 0)->state == PartitionState::kSynced);
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
  REQUIRE(v.status.forced_start.has_value());
  CHECK(v.status.forced_start->diverged_members.empty());
  CHECK(v.status.forced_start->missing_members == std::vector<int32_t>{0});  // the record stays
}

TEST_CASE("A force token is honoured once", "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.LoseRemote(v, "b");
  w.PowerOff("a");
  w.PowerOn("b");
  MoveConsumer(v, "c");
  v.metadata.annotations[std::string(v1::kForceStartAnnotation)] = "once";
  w.Passes(v, 2);
  REQUIRE(w.Running("c"));
  REQUIRE(v.status.forced_start.has_value());
  CHECK(v.status.forced_start->token == "once");
  // C loses power too; with the same annotation value, the next start is not forced again.
  const auto forced_at = v.status.forced_start->at;
  w.PowerOff("c");
  w.clock.Advance(seconds(60));
  w.PowerOn("c");
  w.Passes(v, 3);
  // In sync was {1} (B): present, so C starts without a force.
  CHECK(w.Running("c"));
  CHECK(v.status.forced_start->at == forced_at);
  // B is lost while the array is down: blocked, and the old token does not force.
  w.PowerOff("c");
  w.PowerOff("b");
  w.PowerOn("c");
  w.clock.Advance(seconds(600));
  w.Passes(v, 3);
  CHECK_FALSE(w.Running("c"));
  CHECK(v.status.start_blocked.find("member 1 on node b") != std::string::npos);
  CHECK(v.status.forced_start->at == forced_at);
}

TEST_CASE(
    "A member whose exit was recorded does not block: degraded start after the grace, "
    "bitmap catch-up when it returns",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.LoseRemote(v, "b");
  REQUIRE(InSync(v) == std::vector<int32_t>{0});
  // The consumer reboots while B is still away.
  w.PowerOff("a");
  w.PowerOn("a");
  w.cluster.SetOnline("b", false);
  w.Pass(v);
  CHECK_FALSE(w.Running("a"));  // within the grace: waits for B
  CHECK(v.status.start_blocked.empty());
  w.clock.Advance(seconds(30));
  w.Pass(v);
  INFO(w.ErrorText());
  REQUIRE(w.Running("a"));
  CHECK(v.status.md_state == "degraded");
  // B returns into the same lineage: a bitmap re-add, not a rebuild.
  w.PowerOn("b");
  w.errors.clear();
  w.Passes(v, 2);
  CHECK(w.errors.empty());
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(w.Part(v, 1)->message.find("diverged") == std::string::npos);
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
}

TEST_CASE("The consumer's own reboot waits for an in-sync remote member (the window closed)",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  REQUIRE(InSync(v) == std::vector<int32_t>{0, 1});
  // A dies before it could record that B dropped out (or while both were in sync): B may hold
  // writes A lacks as far as the record can tell, so A does not start without it.
  w.PowerOff("b");
  w.PowerOff("a");
  w.PowerOn("a");
  w.clock.Advance(seconds(600));
  w.Passes(v, 3);
  CHECK_FALSE(w.Running("a"));
  CHECK(v.status.start_blocked.find("member 1 on node b was in sync") != std::string::npos);
  // B back: both present, MD takes the freshest.
  w.PowerOn("b");
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.Running("a"));
  CHECK(v.status.start_blocked.empty());
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
}

TEST_CASE("An in-sync member that is reachable without the array's superblock blocks the start",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.PowerOff("a");
  w.PowerOn("a");
  // B's superblock is gone (someone erased it): it cannot prove it holds the writes either.
  REQUIRE(
      w.cluster.node("b").md.ZeroSuperblock(w.LocalDevice("b", 1), sys::MdArrayUuid("pvc-1")).ok());
  w.clock.Advance(seconds(600));
  w.Passes(v, 2);
  CHECK_FALSE(w.Running("a"));
  CHECK(v.status.start_blocked.find("member 1 on node b") != std::string::npos);
  CHECK(v.status.start_blocked.find("does not carry the array") != std::string::npos);
}

TEST_CASE("A volume without an in-sync record starts as before once, then records it",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.LoseRemote(v, "b");
  w.PowerOff("a");
  w.PowerOn("b");
  v.status.in_sync.reset();  // as written by an agent from before the guard
  MoveConsumer(v, "c");
  w.Pass(v);
  w.clock.Advance(seconds(30));  // past the assemble grace for A's member
  w.Passes(v, 2);
  CHECK(w.Running("c"));
  CHECK(InSync(v) == std::vector<int32_t>{1});
  CHECK(v.status.in_sync->node == "c");
}

TEST_CASE("startBlocked is cleared when no node consumes the volume any more",
          "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.PowerOff("b");
  w.PowerOff("a");
  w.PowerOn("a");
  w.Passes(v, 2);
  REQUIRE_FALSE(v.status.start_blocked.empty());
  v.spec.consumer_node.clear();
  w.Passes(v, 1);
  CHECK(v.status.start_blocked.empty());
}

TEST_CASE(
    "Per-member MD event counts are reported; a member's recorded exit bounds its count until it "
    "is a working member again",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  REQUIRE(v.status.in_sync.has_value());
  const std::string a_dev = w.LocalDevice("a", 0);
  const std::string b_dev = w.LocalDevice("b", 1);
  // Each member's own superblock count, as the consumer read it when the set was recorded.
  REQUIRE(w.Part(v, 0)->md_events.has_value());
  REQUIRE(w.Part(v, 1)->md_events.has_value());
  CHECK(*w.Part(v, 0)->md_events == v.status.in_sync->events);
  CHECK(*w.Part(v, 1)->md_events ==
        static_cast<int64_t>(*w.cluster.node("b").fake_md.SuperblockEvents(b_dev)));
  CHECK_FALSE(w.Part(v, 0)->left_at_events.has_value());
  CHECK_FALSE(w.Part(v, 1)->left_at_events.has_value());

  // B drops out: the record that leaves it out bounds the count its copy can carry.
  w.LoseRemote(v, "b");
  REQUIRE(InSync(v) == std::vector<int32_t>{0});
  REQUIRE(w.Part(v, 1)->left_at_events.has_value());
  CHECK(w.Part(v, 1)->left_at_events == v.status.in_sync->events);
  CHECK(static_cast<int64_t>(*w.cluster.node("b").fake_md.SuperblockEvents(b_dev)) <=
        *w.Part(v, 1)->left_at_events);
  CHECK(*w.Part(v, 0)->md_events ==
        static_cast<int64_t>(*w.cluster.node("a").fake_md.SuperblockEvents(a_dev)));
  CHECK_FALSE(w.Part(v, 0)->left_at_events.has_value());
  // Further exits of others do not move it (the first record that left it out counts).
  const auto bound = w.Part(v, 1)->left_at_events;
  w.Passes(v, 2);
  CHECK(w.Part(v, 1)->left_at_events == bound);

  // B returns with its own copy (within the bound): a bitmap re-add, and the bound is gone.
  w.cluster.node("a").fake_md.SetInstantSync(false);
  w.PowerOn("b");
  w.errors.clear();
  w.Pass(v);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 1)->state == PartitionState::kSyncing);
  CHECK(w.Part(v, 1)->message.find("diverged") == std::string::npos);
  CHECK_FALSE(w.Part(v, 1)->left_at_events.has_value());
  w.cluster.node("a").fake_md.FinishSync(kArray);
  w.Passes(v, 2);
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
  CHECK(*w.Part(v, 1)->md_events ==
        static_cast<int64_t>(*w.cluster.node("b").fake_md.SuperblockEvents(b_dev)));
}

TEST_CASE(
    "A returning member whose count ran past its recorded exit was written elsewhere, so it is "
    "rebuilt in full although MD would re-add it",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.LoseRemote(v, "b");
  REQUIRE(w.Part(v, 1)->left_at_events.has_value());
  const auto bound = static_cast<uint64_t>(*w.Part(v, 1)->left_at_events);
  // The running array counts on (here: growths) ...
  for (int i = 0; i < 3; ++i) REQUIRE(w.cluster.node("a").md.Grow(kArray).ok());
  // ... and an array was run from B's copy on its own after it left (one event past its exit):
  // still below the running array's count, so MD's test (not ahead of the array) would take it
  // back by bitmap.
  const std::string b_dev = w.LocalDevice("b", 1);
  w.cluster.node("b").fake_md.SetSuperblockEvents(b_dev, bound + 1);
  w.cluster.node("a").fake_md.FailCall("ReAdd", 1,
                                       common::InternalError("a bitmap re-add was attempted"));
  w.cluster.node("a").fake_md.SetInstantSync(false);
  w.PowerOn("b");
  w.errors.clear();
  w.Pass(v);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.Part(v, 1)->state == PartitionState::kSyncing);
  const std::string& why = w.Part(v, 1)->message;
  CHECK(why.find(fmt::format("its MD event count {} is above {}", bound + 1, bound)) !=
        std::string::npos);
  CHECK(why.find("full resync") != std::string::npos);
  auto array = w.cluster.node("a").md.GetArray(kArray);
  REQUIRE(array.ok());
  CHECK(array->sync_action == "recover");
  w.cluster.node("a").fake_md.FinishSync(kArray);
  w.Passes(v, 2);
  CHECK(InSync(v) == std::vector<int32_t>{0, 1});
  CHECK_FALSE(w.Part(v, 1)->left_at_events.has_value());
}

TEST_CASE(
    "A recorded in-sync member present with a count below the record's is an older copy, and the "
    "start waits for it",
    "[unit][agent][volume][guard]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  // A record with a count of some height: B out and back.
  w.LoseRemote(v, "b");
  w.PowerOn("b");
  w.Passes(v, 3);
  REQUIRE(InSync(v) == std::vector<int32_t>{0, 1});
  REQUIRE(v.status.in_sync->events.has_value());
  const auto recorded = static_cast<uint64_t>(*v.status.in_sync->events);
  REQUIRE(recorded >= 2);
  // The consumer A dies and comes back; the pod moves to C. Both members are reachable.
  w.PowerOff("a");
  w.PowerOn("a");
  MoveConsumer(v, "c");
  const std::string b_dev = w.LocalDevice("b", 1);

  SECTION("below the record by more than MD's clean/dirty step: blocked, naming the counts") {
    w.cluster.node("b").fake_md.SetSuperblockEvents(b_dev, recorded - 2);
    w.errors.clear();
    w.Passes(v, 3);
    w.clock.Advance(seconds(600));
    w.Passes(v, 2);
    INFO(w.ErrorText());
    CHECK_FALSE(w.Running("c"));
    const std::string& why = v.status.start_blocked;
    CHECK(why.find(fmt::format("member 1 on node b was in sync at {} with MD event count {}, but "
                               "the copy present carries only {}",
                               common::time::FormatRfc3339(*v.status.in_sync->recorded_at),
                               recorded, recorded - 2)) != std::string::npos);
    CHECK(why.find("older copy") != std::string::npos);
    // The counts the consumer read are in the status for the administrator.
    CHECK(w.Part(v, 1)->md_events == static_cast<int64_t>(recorded - 2));
    REQUIRE(w.Part(v, 0)->md_events.has_value());
    CHECK(*w.Part(v, 0)->md_events >= static_cast<int64_t>(recorded));
  }
  SECTION("one below the record (MD's clean/dirty step): it starts") {
    w.cluster.node("b").fake_md.SetSuperblockEvents(b_dev, recorded - 1);
    w.errors.clear();
    w.Passes(v, 3);
    INFO(w.ErrorText());
    INFO("startBlocked: " << v.status.start_blocked);
    CHECK(w.Running("c"));
    CHECK(v.status.start_blocked.empty());
  }
}

}  // namespace
}  // namespace agent
