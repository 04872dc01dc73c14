#include "operator/reconcile.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "operator/testing/world.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;
using std::chrono::seconds;

std::set<std::string> PresentNodes(const v1::MeshStorVolume& v) {
  std::set<std::string> out;
  for (const auto* m : PresentMembers(v)) out.insert(m->node);
  return out;
}

const v1::Member* MemberAt(const v1::MeshStorVolume& v, int32_t index) {
  for (const auto& m : v.spec.members) {
    if (m.index == index) return &m;
  }
  return nullptr;
}

bool HasEvent(const World& w, const std::string& reason) {
  for (const auto& d : w.history) {
    for (const auto& e : d.events) {
      if (e.reason == reason) return true;
    }
  }
  return false;
}

// A volume converged to Synced on node-a (consumer) and node-b.
World SyncedWorld(int nodes = 4, v1::MeshStorVolume v = Volume("pvc-1")) {
  World w(Cluster(nodes));
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  return w;
}

TEST_CASE("A phase change is one Event, with the Normal condition changes it brought",
          "[unit][reconcile]") {
  World w = SyncedWorld();
  int events = 0;
  for (const auto& d : w.history) {
    bool phase = false;
    int normal = 0;
    for (const auto& e : d.events) {
      ++events;
      phase = phase || e.reason == "PhaseChanged";
      normal += e.type == "Normal" ? 1 : 0;
    }
    if (phase) CHECK(normal == 1);
  }
  // Placed, then one per phase (Requested, Syncing, Synced).
  CHECK(events <= 4);
  CHECK_FALSE(HasEvent(w, "Staged"));
  bool staged_in_note = false;
  for (const auto& d : w.history) {
    for (const auto& e : d.events) {
      staged_in_note = staged_in_note || e.note.find("Ready=True") != std::string::npos;
    }
  }
  CHECK(staged_in_note);
}

TEST_CASE("A new volume waits for its consumer, then goes New → Synced", "[unit][reconcile]") {
  World w(Cluster(3));
  w.Put(Volume("pvc-1"));
  w.Converge("pvc-1");
  auto& v = w.Get("pvc-1");
  CHECK(v.status.phase == v1::VolumePhase::kNew);
  CHECK(v.metadata.finalizers == std::vector<std::string>{kFinalizer});
  CHECK(v.spec.members.empty());
  CHECK(ConditionReason(v, kConditionPlaceable) == "WaitingForConsumer");

  v.spec.consumer_node = "node-b";
  ++v.metadata.generation;
  // First pass places, then the status follows each agent step.
  REQUIRE(w.Pass("pvc-1").write == Decision::Write::kSpec);
  auto& placed = w.Get("pvc-1");
  REQUIRE(placed.spec.members.size() == 2);
  CHECK(placed.spec.members[0].node == "node-b");
  CHECK(placed.spec.members[0].role == v1::MemberRole::kLocal);
  CHECK(placed.spec.members[1].role == v1::MemberRole::kRemote);
  CHECK(placed.spec.members[0].slot == 0);
  CHECK(placed.spec.members[1].slot == 1);
  CHECK(placed.spec.members[0].size_bytes == 1025 * v1::kMiB);
  REQUIRE(w.Pass("pvc-1").write == Decision::Write::kStatus);
  CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kRequested);
  StepAgents(w.Get("pvc-1"), w.agents);  // partitions Created
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kSyncing);
  w.Converge("pvc-1");
  auto& done = w.Get("pvc-1");
  CHECK(done.status.phase == v1::VolumePhase::kSynced);
  CHECK(done.status.ready == "2/2");
  CHECK(done.status.degraded_devices == 0);
  CHECK(ConditionIs(done, kConditionReady) == ConditionStatus::kTrue);
  CHECK(ConditionIs(done, kConditionDegraded) == ConditionStatus::kFalse);
  CHECK(ConditionIs(done, kConditionPlaceable) == ConditionStatus::kTrue);
  for (const auto& c : done.status.conditions) {
    CHECK(c.observed_generation == done.metadata.generation);
  }
  CHECK(done.status.observed_generation == done.metadata.generation);
  CHECK(HasEvent(w, "Placed"));
  CHECK(HasEvent(w, "PhaseChanged"));
  // Level-triggered and idempotent: nothing more to do.
  CHECK(w.Pass("pvc-1").write == Decision::Write::kNone);
}

TEST_CASE("Not enough nodes is a Placeable=False condition with the count", "[unit][reconcile]") {
  World w(Cluster(2));
  auto v = Volume("pvc-1", 3);
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.OperatorSettle("pvc-1");
  auto& got = w.Get("pvc-1");
  CHECK(got.spec.members.empty());
  CHECK(ConditionIs(got, kConditionPlaceable) == ConditionStatus::kFalse);
  CHECK(ConditionReason(got, kConditionPlaceable) == "NotEnoughNodes");
  CHECK_THAT(common::api::FindCondition(got.status.conditions, kConditionPlaceable)->message,
             Catch::Contains("3 needed, 2 qualified"));
  Decision again = Decide(got, w.Snapshot(), w.limits);
  CHECK(again.write == Decision::Write::kNone);
  CHECK(again.placement_failed);
  CHECK(again.requeue_after == seconds(30));

  // A third node joins: the next pass places.
  w.base().nodes.push_back(std::make_shared<const common::api::Node>(NodeObj("node-c")));
  w.base().devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(
      Drive("node-c", "nvme0n1", 100 * 1024 * v1::kMiB)));
  w.Converge("pvc-1");
  CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kSynced);
  CHECK(ConditionIs(w.Get("pvc-1"), kConditionPlaceable) == ConditionStatus::kTrue);
}

TEST_CASE("Invalid spec contents give a clear condition and no retry", "[unit][reconcile]") {
  auto v = Volume("pvc-1");
  v.spec.consumer_node = "node-a";
  std::string field;
  // Single values out of bounds never get here: the decoder refuses them (codec_test).
  SECTION("more array slots than spec.members can hold") {
    v.spec.replica_count = 16;
    v.spec.stripe_width = 5;
    field = "spec.replicaCount × spec.stripeWidth: 80 array slots";
  }
  SECTION("duplicate member namespace IDs on a node") {
    v.spec.members.push_back({0,
                              "node-a",
                              "nvme0n1",
                              1025 * v1::kMiB,
                              3,
                              v1::MemberRole::kLocal,
                              v1::MemberState::kPresent,
                              0,
                              {}});
    v.spec.members.push_back({1,
                              "node-a",
                              "nvme1n1",
                              1025 * v1::kMiB,
                              3,
                              v1::MemberRole::kLocal,
                              v1::MemberState::kPresent,
                              1,
                              {}});
    field = "namespaceID";
  }
  SECTION("slot outside the array") {
    v.spec.members.push_back({0,
                              "node-a",
                              "nvme0n1",
                              1025 * v1::kMiB,
                              3,
                              v1::MemberRole::kLocal,
                              v1::MemberState::kPresent,
                              9,
                              {}});
    field = "slot";
  }
  World w(Cluster(3));
  w.Put(v);
  REQUIRE(w.Pass("pvc-1").write == Decision::Write::kStatus);
  auto& got = w.Get("pvc-1");
  CHECK(ConditionIs(got, kConditionReady) == ConditionStatus::kFalse);
  CHECK(ConditionReason(got, kConditionReady) == "InvalidSpec");
  CHECK_THAT(common::api::FindCondition(got.status.conditions, kConditionReady)->message,
             Catch::Contains(field));
  CHECK(got.metadata.finalizers.empty());
  Decision again = w.Pass("pvc-1");
  CHECK(again.write == Decision::Write::kNone);
  CHECK_FALSE(again.requeue_after);
  CHECK(HasEvent(w, "InvalidSpec"));
}

TEST_CASE("A missing member is replaced only after memberMissingTimeout", "[unit][reconcile]") {
  World w = SyncedWorld();
  const std::string peer = MemberAt(w.Get("pvc-1"), 1)->node;
  w.agents.down_nodes = {peer};
  w.Converge("pvc-1");
  auto& v = w.Get("pvc-1");
  CHECK(ConditionIs(v, kConditionDegraded) == ConditionStatus::kTrue);
  CHECK(v.status.degraded_devices == 1);
  Decision d = Decide(v, w.Snapshot(), w.limits);
  CHECK(d.requeue_after == seconds(900));  // exactly the deadline

  w.Advance(seconds(899));
  d = w.Pass("pvc-1");
  CHECK(d.write == Decision::Write::kNone);
  CHECK(d.requeue_after == seconds(1));
  CHECK(PresentMembers(w.Get("pvc-1")).size() == 2);

  w.Advance(seconds(2));  // timeout + 1 s
  d = w.Pass("pvc-1");
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(d.replacements_started == 1);
  auto& r = w.Get("pvc-1");
  REQUIRE(PresentMembers(r).size() == 3);
  const v1::Member* repl = MemberAt(r, 2);
  REQUIRE(repl != nullptr);
  CHECK(repl->replaces == 1);
  CHECK(repl->slot == MemberAt(r, 1)->slot);
  CHECK(repl->node != "node-a");
  CHECK(repl->node != peer);
  CHECK(repl->role == v1::MemberRole::kRemote);
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kReplacing);

  w.Converge("pvc-1");
  auto& done = w.Get("pvc-1");
  CHECK(MemberAt(done, 1)->state == v1::MemberState::kRetired);
  CHECK(PresentNodes(done) == std::set<std::string>{"node-a", repl->node});
  CHECK(done.status.phase == v1::VolumePhase::kSynced);
  CHECK(ConditionIs(done, kConditionDegraded) == ConditionStatus::kFalse);
  CHECK(HasEvent(w, "Replacing"));
  CHECK(HasEvent(w, "Retired"));
}

TEST_CASE("A member whose node went silent before its first report is replaced",
          "[unit][reconcile]") {
  World w(Cluster(4));
  v1::MeshStorVolume v = Volume("pvc-1");
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.OperatorSettle("pvc-1");  // placed; no agent has acted yet
  const v1::Member* placed = MemberAt(w.Get("pvc-1"), 1);
  REQUIRE(placed != nullptr);
  const std::string peer = placed->node;
  w.agents.down_nodes = {peer};  // its agent dies before creating the partition
  w.Converge("pvc-1");
  REQUIRE(PresentMembers(w.Get("pvc-1")).size() == 2);

  // Lost since its drive's last heartbeat once that is stale; replaced memberMissingTimeout
  // (900 s) after that heartbeat, not before.
  Decision d = Decide(w.Get("pvc-1"), w.Snapshot(), w.limits);
  CHECK(d.write == Decision::Write::kNone);
  REQUIRE(d.requeue_after.has_value());
  CHECK(*d.requeue_after <= w.limits.agent_staleness + seconds(1));
  w.Advance(w.limits.agent_staleness + seconds(1));
  d = w.Pass("pvc-1");
  CHECK(d.write == Decision::Write::kNone);
  CHECK(d.requeue_after == seconds(900) - w.limits.agent_staleness - seconds(1));
  w.Advance(seconds(900) - w.limits.agent_staleness - seconds(2));
  CHECK(w.Pass("pvc-1").write == Decision::Write::kNone);
  CHECK(PresentMembers(w.Get("pvc-1")).size() == 2);

  w.Advance(seconds(2));
  d = w.Pass("pvc-1");
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(d.replacements_started == 1);
  const v1::Member* repl = MemberAt(w.Get("pvc-1"), 2);
  REQUIRE(repl != nullptr);
  CHECK(repl->replaces == 1);
  CHECK(repl->node != peer);
  w.Converge("pvc-1");
  auto& done = w.Get("pvc-1");
  CHECK(MemberAt(done, 1)->state == v1::MemberState::kRetired);
  CHECK(PresentNodes(done) == std::set<std::string>{"node-a", repl->node});
  CHECK(done.status.phase == v1::VolumePhase::kSynced);
}

TEST_CASE("A member not reported yet by a live agent is left alone", "[unit][reconcile]") {
  World w(Cluster(4));
  v1::MeshStorVolume v = Volume("pvc-1");
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.OperatorSettle("pvc-1");
  w.Advance(w.limits.agent_staleness + seconds(3600));  // slow, but its agent heartbeats
  CHECK(w.Pass("pvc-1").write == Decision::Write::kNone);
  CHECK(PresentMembers(w.Get("pvc-1")).size() == 2);
}

TEST_CASE("A replacement lost before it synced is replaced once, not twice", "[unit][reconcile]") {
  World w = SyncedWorld(5);
  const std::string peer = MemberAt(w.Get("pvc-1"), 1)->node;
  w.agents.down_nodes = {peer};
  w.Converge("pvc-1");
  w.Advance(seconds(901));
  w.OperatorSettle("pvc-1");
  const v1::Member* r1 = MemberAt(w.Get("pvc-1"), 2);
  REQUIRE(r1 != nullptr);
  const std::string r1_node = r1->node;
  // The first replacement's node dies too, before the rebuild finished.
  StepAgents(w.Get("pvc-1"), w.agents);  // member 2 Created
  REQUIRE(w.Get("pvc-1").status.partitions.size() == 3);
  w.agents.down_nodes = {peer, r1_node};
  w.Converge("pvc-1");
  REQUIRE(PresentMembers(w.Get("pvc-1")).size() == 3);
  w.Advance(seconds(901));
  w.Converge("pvc-1");
  auto& v = w.Get("pvc-1");
  CHECK(PresentMembers(v).size() == 2);
  CHECK(v.spec.members.size() == 4);  // exactly one more replacement
  CHECK(MemberAt(v, 1)->state == v1::MemberState::kRetired);
  CHECK(MemberAt(v, 2)->state == v1::MemberState::kRetired);
  REQUIRE(MemberAt(v, 3) != nullptr);
  CHECK(MemberAt(v, 3)->replaces == 2);
  CHECK(v.status.phase == v1::VolumePhase::kSynced);
  // Much later, nothing else happens.
  w.Advance(seconds(5000));
  w.Converge("pvc-1");
  CHECK(w.Get("pvc-1").spec.members.size() == 4);
}

TEST_CASE("A member that comes back within the timeout is not replaced", "[unit][reconcile]") {
  World w = SyncedWorld();
  w.agents.down_nodes = {MemberAt(w.Get("pvc-1"), 1)->node};
  w.Converge("pvc-1");
  CHECK(ConditionIs(w.Get("pvc-1"), kConditionDegraded) == ConditionStatus::kTrue);
  w.Advance(seconds(600));
  w.agents.down_nodes.clear();
  w.Converge("pvc-1");
  w.Advance(seconds(600));
  w.Converge("pvc-1");
  auto& v = w.Get("pvc-1");
  CHECK(v.spec.members.size() == 2);
  CHECK(v.status.phase == v1::VolumePhase::kSynced);
  CHECK(ConditionIs(v, kConditionDegraded) == ConditionStatus::kFalse);
}

TEST_CASE("Rebuild caps limit concurrent replacements", "[unit][reconcile]") {
  World w(Cluster(6));
  for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) {
    auto v = Volume(name);
    v.spec.consumer_node = "node-a";
    w.Put(v);
    w.Converge(name);
  }
  // Every volume has its second member on some node; take that node down for all three.
  std::set<std::string> down;
  for (const auto& [n, v] : w.volumes) down.insert(MemberAt(v, 1)->node);
  w.agents.down_nodes = down;
  for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) w.Converge(name);
  w.Advance(seconds(901));

  int replaced = 0;
  SECTION("cluster-wide cap") {
    w.limits.max_rebuilds_cluster = 2;
    for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) {
      Decision d = w.Pass(name);
      replaced += d.replacements_started;
      w.OperatorSettle(name);
    }
    CHECK(replaced == 2);
    int throttled = 0;
    for (const auto& [n, v] : w.volumes) {
      if (ConditionReason(v, kConditionDegraded) == "RebuildThrottled") ++throttled;
    }
    CHECK(throttled == 1);
  }
  SECTION("per-node cap spreads rebuilds") {
    w.limits.max_rebuilds_per_node = 1;
    std::set<std::string> targets;
    for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) {
      replaced += w.Pass(name).replacements_started;
      const auto* m = MemberAt(w.Get(name), 2);
      if (m) targets.insert(m->node);
    }
    CHECK(replaced >= 2);
    CHECK(static_cast<int>(targets.size()) == replaced);
  }
  // Once rebuilds finish, every volume converges with its replacement.
  w.limits = Limits{};
  for (int round = 0; round < 3; ++round) {
    for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) w.Converge(name);
  }
  for (const auto& [n, v] : w.volumes) {
    CHECK(v.status.phase == v1::VolumePhase::kSynced);
    CHECK(PresentMembers(v).size() == 2);
  }
}

TEST_CASE("The last good copy of a stripe is never retired", "[unit][reconcile]") {
  World w(Cluster(4, 2));
  auto v = Volume("pvc-1", 2, 2);
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  auto& got = w.Get("pvc-1");
  REQUIRE(got.status.phase == v1::VolumePhase::kSynced);
  // A corrupt instruction: member 4 claims to replace member 0 (stripe 0) but sits in stripe 1.
  v1::MeshStorVolume bad = got;
  const v1::Member* m0 = MemberAt(bad, 0);
  REQUIRE(m0->slot == 0);
  bad.spec.members.push_back({4, "node-c", "nvme0n1", m0->size_bytes, 9, v1::MemberRole::kRemote,
                              v1::MemberState::kPresent, 3, 0});
  // Stripe 0's other copy (slot 1) is lost, so member 0 is the last good copy of stripe 0.
  for (auto& p : bad.status.partitions) {
    const v1::Member* m = MemberAt(bad, p.index);
    if (m->slot == 1) p.state = v1::PartitionState::kFaulty;
  }
  bad.status.partitions.push_back({4, "node-c", "nvme0n1", "", 9, v1::PartitionState::kSynced});
  for (int pass = 0; pass < 5; ++pass) {
    Decision d = Decide(bad, w.Snapshot(), w.limits);
    if (d.write == Decision::Write::kNone) break;
    CHECK(MemberAt(d.object, 0)->state == v1::MemberState::kPresent);
    if (d.write == Decision::Write::kSpec) bad.spec = d.object.spec;
    if (d.write == Decision::Write::kStatus) bad.status = d.object.status;
  }
  CHECK(MemberAt(bad, 0)->state == v1::MemberState::kPresent);
  // Control: with stripe 0's mirror healthy, member 0 is not the last copy and is retired.
  v1::MeshStorVolume ok = bad;
  for (auto& p : ok.status.partitions) p.state = v1::PartitionState::kSynced;
  Decision d = Decide(ok, w.Snapshot(), w.limits);
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(MemberAt(d.object, 0)->state == v1::MemberState::kRetired);
}

TEST_CASE("Relocation fences, adds a local member, then retires the surplus", "[unit][reconcile]") {
  World w = SyncedWorld(4);
  auto& v = w.Get("pvc-1");
  const std::string peer = MemberAt(v, 1)->node;
  std::string target = peer == "node-c" ? "node-d" : "node-c";
  v.spec.consumer_node = target;
  ++v.metadata.generation;
  // Step 1: roles follow the new consumer before anything else.
  Decision d = w.Pass("pvc-1");
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(MemberAt(w.Get("pvc-1"), 0)->role == v1::MemberRole::kRemote);
  CHECK(PresentMembers(w.Get("pvc-1")).size() == 2);
  // Step 2: a local member on the new consumer takes the old consumer's slot.
  d = w.Pass("pvc-1");
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(d.relocations_started == 1);
  const v1::Member* local = MemberAt(w.Get("pvc-1"), 2);
  REQUIRE(local != nullptr);
  CHECK(local->node == target);
  CHECK(local->role == v1::MemberRole::kLocal);
  CHECK(local->replaces == 0);
  CHECK(local->slot == 0);
  w.Converge("pvc-1");
  auto& done = w.Get("pvc-1");
  CHECK(PresentNodes(done) == std::set<std::string>{peer, target});
  CHECK(MemberAt(done, 0)->state == v1::MemberState::kRetired);
  CHECK(done.status.phase == v1::VolumePhase::kSynced);
  CHECK(done.status.node_name == target);
  CHECK(ConditionIs(done, kConditionReady) == ConditionStatus::kTrue);
}

TEST_CASE("Relocation to a node without a usable drive keeps the volume as it is",
          "[unit][reconcile]") {
  World w = SyncedWorld(3);
  auto before = w.Get("pvc-1").spec.members;
  w.base().nodes.push_back(std::make_shared<const common::api::Node>(NodeObj("node-x")));
  auto& v = w.Get("pvc-1");
  v.spec.consumer_node = "node-x";
  ++v.metadata.generation;
  w.Converge("pvc-1");
  auto& got = w.Get("pvc-1");
  CHECK(PresentMembers(got).size() == 2);
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(got.spec.members[i].state == v1::MemberState::kPresent);
    CHECK(got.spec.members[i].role == v1::MemberRole::kRemote);  // fenced from the old consumer
  }
  CHECK(ConditionIs(got, kConditionPlaceable) == ConditionStatus::kFalse);
  CHECK_THAT(common::api::FindCondition(got.status.conditions, kConditionPlaceable)->message,
             Catch::Contains("consumer node node-x"));
  CHECK(ConditionIs(got, kConditionReady) == ConditionStatus::kFalse);
  Decision d = Decide(got, w.Snapshot(), w.limits);
  CHECK(d.placement_failed);
  CHECK(d.requeue_after == seconds(30));
}

TEST_CASE("Relocation of a single copy uses the placeholder slot", "[unit][reconcile]") {
  World w = SyncedWorld(3, Volume("pvc-1", 1));
  auto& v = w.Get("pvc-1");
  REQUIRE(PresentMembers(v).size() == 1);
  CHECK(v.status.ready == "1/2");  // member + placeholder
  v.spec.consumer_node = "node-b";
  ++v.metadata.generation;
  w.OperatorSettle("pvc-1");
  const v1::Member* local = MemberAt(w.Get("pvc-1"), 1);
  REQUIRE(local != nullptr);
  CHECK(local->node == "node-b");
  CHECK(local->slot == 1);  // the placeholder
  CHECK(local->replaces == 0);
  // The old member stays until the new one is Synced.
  CHECK(MemberAt(w.Get("pvc-1"), 0)->state == v1::MemberState::kPresent);
  w.Converge("pvc-1");
  CHECK(PresentNodes(w.Get("pvc-1")) == std::set<std::string>{"node-b"});
  CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kSynced);
}

TEST_CASE("Relocation of a single-copy RAID10 fills the mirror placeholders", "[unit][reconcile]") {
  World w(Cluster(3, 2));
  auto v = Volume("pvc-1", 1, 2);
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  REQUIRE(w.Get("pvc-1").status.phase == v1::VolumePhase::kSynced);
  CHECK(w.Get("pvc-1").status.ready == "2/4");
  w.Get("pvc-1").spec.consumer_node = "node-c";
  w.Converge("pvc-1");
  auto& got = w.Get("pvc-1");
  std::map<int32_t, std::string> slots;
  for (const auto* m : PresentMembers(got)) slots[*m->slot] = m->node;
  CHECK(slots == std::map<int32_t, std::string>{{1, "node-c"}, {3, "node-c"}});
  CHECK(got.spec.members.size() == 4);
  CHECK(MemberAt(got, 2)->replaces == 0);
  CHECK(MemberAt(got, 3)->replaces == 1);
  CHECK(got.status.phase == v1::VolumePhase::kSynced);
  CHECK(ConditionIs(got, kConditionReady) == ConditionStatus::kTrue);
}

TEST_CASE("Expansion grows RAID1 members and refuses RAID10", "[unit][reconcile]") {
  SECTION("RAID1") {
    World w = SyncedWorld();
    auto& v = w.Get("pvc-1");
    v.spec.capacity_bytes = 2048 * v1::kMiB;
    ++v.metadata.generation;
    Decision d = w.Pass("pvc-1");
    REQUIRE(d.write == Decision::Write::kSpec);
    CHECK(d.expansions_started == 1);
    for (const auto* m : PresentMembers(w.Get("pvc-1"))) CHECK(m->size_bytes == 2049 * v1::kMiB);
    w.Converge("pvc-1");
    CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kSynced);
    CHECK(ConditionReason(w.Get("pvc-1"), kConditionResized) == "CapacityReached");
  }
  SECTION("RAID10") {
    World w(Cluster(3, 2));
    auto v = Volume("pvc-1", 2, 2);
    v.spec.consumer_node = "node-a";
    w.Put(v);
    w.Converge("pvc-1");
    auto& got = w.Get("pvc-1");
    got.spec.capacity_bytes = 2048 * v1::kMiB;
    ++got.metadata.generation;
    auto before = got.spec.members;
    w.Converge("pvc-1");
    CHECK(w.Get("pvc-1").spec.members == before);
    CHECK(ConditionIs(w.Get("pvc-1"), kConditionResized) == ConditionStatus::kFalse);
    CHECK(ConditionReason(w.Get("pvc-1"), kConditionResized) == "RAID10ExpansionUnsupported");
  }
}

TEST_CASE("RAID10 placement lays copies out as near-2 mirror pairs", "[unit][reconcile]") {
  World w(Cluster(3, 2));
  auto v = Volume("pvc-1", 2, 2);
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  auto& got = w.Get("pvc-1");
  REQUIRE(got.spec.members.size() == 4);
  std::map<int32_t, std::string> slot_node;
  std::map<std::string, std::set<std::string>> drives;
  for (const auto& m : got.spec.members) {
    slot_node[*m.slot] = m.node;
    drives[m.node].insert(m.drive);
    CHECK(m.size_bytes == 513 * v1::kMiB);
  }
  CHECK(slot_node[0] == "node-a");
  CHECK(slot_node[2] == "node-a");
  CHECK(slot_node[1] == slot_node[3]);
  CHECK(slot_node[1] != "node-a");
  for (const auto& [n, d] : drives) CHECK(d.size() == 2);
  CHECK(got.status.phase == v1::VolumePhase::kSynced);
  CHECK(got.status.ready == "4/4");
}

TEST_CASE("Namespace IDs stay unique per node across volumes", "[unit][reconcile]") {
  World w(Cluster(2));
  for (const char* name : {"pvc-1", "pvc-2", "pvc-3"}) {
    auto v = Volume(name);
    v.spec.consumer_node = "node-a";
    w.Put(v);
    w.OperatorSettle(name);  // members written, not yet reported by agents
  }
  std::map<std::string, std::set<int32_t>> ids;
  int members = 0;
  for (const auto& [n, v] : w.volumes) {
    for (const auto& m : v.spec.members) {
      ids[m.node].insert(m.namespace_id);
      ++members;
    }
  }
  CHECK(members == 6);
  CHECK(ids["node-a"] == std::set<int32_t>{1, 2, 3});
  CHECK(ids["node-b"] == std::set<int32_t>{1, 2, 3});
}

TEST_CASE("Deletion retires members and removes the finalizer after teardown",
          "[unit][reconcile]") {
  World w = SyncedWorld();
  w.Get("pvc-1").metadata.deletion_timestamp = std::chrono::time_point_cast<seconds>(w.agents.now);
  SECTION("every node confirms") {
    REQUIRE(w.Pass("pvc-1").write == Decision::Write::kSpec);
    for (const auto& m : w.Get("pvc-1").spec.members) {
      CHECK(m.state == v1::MemberState::kRetired);
    }
    REQUIRE(w.Pass("pvc-1").write == Decision::Write::kStatus);
    CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kDeleting);
    CHECK(w.Pass("pvc-1").write == Decision::Write::kNone);  // waiting for the agents
    CHECK(w.Exists("pvc-1"));
    w.Converge("pvc-1");
    CHECK_FALSE(w.Exists("pvc-1"));
    CHECK(HasEvent(w, "TeardownComplete"));
  }
  SECTION("a node that is down holds the finalizer") {
    w.agents.down_nodes = {MemberAt(w.Get("pvc-1"), 1)->node};
    w.Converge("pvc-1");
    REQUIRE(w.Exists("pvc-1"));
    CHECK(w.Get("pvc-1").status.phase == v1::VolumePhase::kDeleting);
    CHECK(w.Get("pvc-1").metadata.finalizers == std::vector<std::string>{kFinalizer});
    SECTION("the node comes back") {
      w.agents.down_nodes.clear();
      w.Converge("pvc-1");
      CHECK_FALSE(w.Exists("pvc-1"));
    }
    SECTION("the node is removed from the cluster") {
      auto& nodes = w.base().nodes;
      const std::string gone = *w.agents.down_nodes.begin();
      nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                                 [&](const auto& n) { return n->metadata.name == gone; }),
                  nodes.end());
      w.Converge("pvc-1");
      CHECK_FALSE(w.Exists("pvc-1"));
    }
  }
}

TEST_CASE("Member size covers capacity per stripe plus metadata", "[unit][reconcile]") {
  auto v = Volume("x", 2, 1, 5120 * v1::kMiB);
  CHECK(v1::MemberSizeBytes(v.spec) == 5121 * v1::kMiB);
  v.spec.stripe_width = 2;
  v.spec.capacity_bytes = 512 * v1::kMiB;
  CHECK(v1::MemberSizeBytes(v.spec) == 257 * v1::kMiB);
  v.spec.stripe_width = 3;
  v.spec.capacity_bytes = 1024 * v1::kMiB;
  CHECK(v1::MemberSizeBytes(v.spec) == 343 * v1::kMiB);  // 341.33 → 342 + 1
  CHECK(v1::SlotCount(v.spec) == 6);
  v.spec.replica_count = 1;
  CHECK(v1::SlotCount(v.spec) == 6);  // placeholders keep two copies
}

}  // namespace
}  // namespace meshstor_operator
