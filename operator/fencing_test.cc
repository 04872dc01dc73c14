// Failover from a dead consumer, through Decide (fencing.h): the out-of-service taint (or the
// optional NotReady timeout) fences the consumer, the take-over waits for every reachable
// exporter's confirmation, and a node is un-fenced only once healthy and not the consumer.
#include "operator/fencing.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "operator/testing/world.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;
using std::chrono::seconds;

bool HasEvent(const World& w, const std::string& reason) {
  for (const auto& d : w.history) {
    for (const auto& e : d.events) {
      if (e.reason == reason) return true;
    }
  }
  return false;
}

// Replaces node `name` in the world's inventory: tainted out-of-service or not, Ready or not.
void SetNode(World& w, const std::string& name, bool out_of_service, ConditionStatus ready) {
  common::api::Node n = NodeObj(name);
  if (out_of_service) {
    n.taints.push_back({common::api::kOutOfServiceTaint, "nodeshutdown", "NoExecute"});
  }
  n.conditions.push_back({.type = "Ready",
                          .status = ready,
                          .last_transition_time = std::chrono::time_point_cast<seconds>(T0()),
                          .reason = "KubeletReady"});
  for (auto& p : w.base().nodes) {
    if (p->metadata.name == name) p = std::make_shared<const common::api::Node>(n);
  }
}

// Every node Ready (as a healthy cluster reports).
void AllReady(World& w) {
  std::vector<std::string> names;
  for (const auto& n : w.base().nodes) names.push_back(n->metadata.name);
  for (const auto& n : names) SetNode(w, n, false, ConditionStatus::kTrue);
}

// The exporter on `node` reports that it has cut off `fenced` (what agent/volume_owner.cc does).
void Confirm(World& w, const std::string& node, const std::string& fenced) {
  for (auto& p : w.Get("pvc-1").status.partitions) {
    if (p.node_id == node) p.fenced_nodes = {fenced};
  }
}

World SyncedWorld(int nodes, int replicas = 2) {
  World w(Cluster(nodes));
  AllReady(w);
  auto v = Volume("pvc-1", replicas);
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  REQUIRE(w.Get("pvc-1").status.node_name == "node-a");
  return w;
}

TEST_CASE("A tainted consumer is fenced; its status is cleared only after the exporters confirm",
          "[unit][reconcile][fencing]") {
  World w = SyncedWorld(3);
  w.agents.down_nodes.insert("node-a");
  SetNode(w, "node-a", true, ConditionStatus::kUnknown);

  Decision d = w.Pass("pvc-1");
  REQUIRE(d.write == Decision::Write::kSpec);
  CHECK(w.Get("pvc-1").spec.fenced_nodes == std::vector<std::string>{"node-a"});
  CHECK(HasEvent(w, "FencingConsumer"));

  // Waiting for node-b's exporter: the dead consumer's status stays, nothing is taken over.
  w.OperatorSettle("pvc-1");
  {
    const auto& v = w.Get("pvc-1");
    CHECK_FALSE(v.status.fenced_consumer.has_value());
    CHECK(v.status.node_name == "node-a");
    CHECK_FALSE(v.status.staged_path.empty());
    CHECK(ConditionIs(v, kConditionConsumerFenced) == ConditionStatus::kFalse);
    CHECK(ConditionReason(v, kConditionConsumerFenced) == "WaitingForExporters");
    CHECK_THAT(common::api::FindCondition(v.status.conditions, kConditionConsumerFenced)->message,
               Catch::Contains("node-b"));
    CHECK(Decide(v, w.Snapshot(), w.limits).requeue_after.has_value());
  }
  // A confirmation of another node does not count.
  Confirm(w, "node-b", "node-x");
  w.OperatorSettle("pvc-1");
  CHECK_FALSE(w.Get("pvc-1").status.fenced_consumer.has_value());

  Confirm(w, "node-b", "node-a");
  w.OperatorSettle("pvc-1");
  const auto& v = w.Get("pvc-1");
  REQUIRE(v.status.fenced_consumer.has_value());
  CHECK(v.status.fenced_consumer->node == "node-a");
  CHECK(v.status.fenced_consumer->at == std::chrono::time_point_cast<seconds>(T0()));
  CHECK(v.status.node_name.empty());
  CHECK(v.status.staged_path.empty());
  CHECK(v.status.md_state.empty());
  CHECK_FALSE(v.status.active_devices.has_value());
  CHECK(v.status.published_targets.empty());
  CHECK(ConditionIs(v, kConditionConsumerFenced) == ConditionStatus::kTrue);
  CHECK(ConditionIs(v, kConditionReady) == ConditionStatus::kFalse);
  CHECK(ConditionReason(v, kConditionReady) == "ConsumerFenced");
  CHECK(HasEvent(w, "ConsumerFenced"));
  CHECK(HasEvent(w, "ConsumerStatusCleared"));
  // Level-triggered: nothing more to write.
  CHECK(w.Pass("pvc-1").write == Decision::Write::kNone);
}

TEST_CASE("Exporters on dead nodes need not confirm; a live one without its entry need not either",
          "[unit][reconcile][fencing]") {
  World w = SyncedWorld(3, 3);  // members on node-a (consumer), node-b, node-c
  w.agents.down_nodes = {"node-a", "node-c"};
  SetNode(w, "node-a", true, ConditionStatus::kUnknown);
  SetNode(w, "node-c", true, ConditionStatus::kUnknown);
  w.OperatorSettle("pvc-1");
  auto v = w.Get("pvc-1");
  REQUIRE(v.spec.fenced_nodes == std::vector<std::string>{"node-a"});
  CHECK(UnconfirmedExporters(v, w.Snapshot(), w.limits, "node-a") ==
        std::vector<std::string>{"node-b"});
  Confirm(w, "node-b", "node-a");
  w.OperatorSettle("pvc-1");
  REQUIRE(w.Get("pvc-1").status.fenced_consumer.has_value());
  CHECK(w.Get("pvc-1").status.node_name.empty());

  // node-c comes back Ready (its agent reports): it is not dead any more, so it must confirm.
  v = w.Get("pvc-1");
  w.agents.down_nodes.erase("node-c");
  SetNode(w, "node-c", false, ConditionStatus::kTrue);
  CHECK(UnconfirmedExporters(v, w.Snapshot(), w.limits, "node-a") ==
        std::vector<std::string>{"node-c"});
  // A member never reported (no status entry) has exported nothing yet.
  v.status.partitions.erase(
      std::remove_if(v.status.partitions.begin(), v.status.partitions.end(),
                     [](const v1::PartitionStatus& p) { return p.node_id == "node-c"; }),
      v.status.partitions.end());
  CHECK(UnconfirmedExporters(v, w.Snapshot(), w.limits, "node-a").empty());
}

TEST_CASE("NotReady with a silent agent fences only when the timeout is configured",
          "[unit][reconcile][fencing]") {
  World w = SyncedWorld(3);
  w.agents.down_nodes.insert("node-a");
  SetNode(w, "node-a", false, ConditionStatus::kFalse);
  w.Advance(seconds(3600));
  // Default: off. NotReady alone never fences.
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").spec.fenced_nodes.empty());

  World t = SyncedWorld(3);
  t.limits.consumer_dead_after = seconds(300);
  t.agents.down_nodes.insert("node-a");
  SetNode(t, "node-a", false, ConditionStatus::kUnknown);
  t.Advance(seconds(200));  // the agent's last report was at T0
  Decision d = Decide(t.Get("pvc-1"), t.Snapshot(), t.limits);
  CHECK(d.write != Decision::Write::kSpec);
  REQUIRE(d.requeue_after.has_value());
  CHECK(*d.requeue_after <= seconds(101));
  t.OperatorSettle("pvc-1");
  CHECK(t.Get("pvc-1").spec.fenced_nodes.empty());
  t.Advance(seconds(101));
  REQUIRE(t.Pass("pvc-1").write == Decision::Write::kSpec);
  CHECK(t.Get("pvc-1").spec.fenced_nodes == std::vector<std::string>{"node-a"});
  bool said = false;
  for (const auto& e : t.history.back().events) {
    said |= e.note.find("has not reported since") != std::string::npos;
  }
  CHECK(said);

  // Ready but silent is not dead (the agent alone may have crashed; the node still runs).
  World r = SyncedWorld(3);
  r.limits.consumer_dead_after = seconds(300);
  r.agents.down_nodes.insert("node-a");
  r.Advance(seconds(3600));
  r.OperatorSettle("pvc-1");
  CHECK(r.Get("pvc-1").spec.fenced_nodes.empty());
}

TEST_CASE("A fenced node is un-fenced only when healthy again and not the consumer",
          "[unit][reconcile][fencing]") {
  World w = SyncedWorld(3);
  w.agents.down_nodes.insert("node-a");
  SetNode(w, "node-a", true, ConditionStatus::kUnknown);
  w.OperatorSettle("pvc-1");
  Confirm(w, "node-b", "node-a");
  w.OperatorSettle("pvc-1");
  REQUIRE(w.Get("pvc-1").status.fenced_consumer.has_value());

  // node-a returns healthy while it is still the consumer (nobody took over): it stays fenced.
  w.agents.down_nodes.clear();
  SetNode(w, "node-a", false, ConditionStatus::kTrue);
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").spec.fenced_nodes == std::vector<std::string>{"node-a"});

  // node-c takes over (the shim's write); node-a is down again meanwhile.
  w.agents.down_nodes.insert("node-a");
  SetNode(w, "node-a", true, ConditionStatus::kUnknown);
  w.Get("pvc-1").spec.consumer_node = "node-c";
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").spec.fenced_nodes == std::vector<std::string>{"node-a"});
  // The relocation's new member on node-c replaces the dead node's copy (its stale status still
  // says Synced), never node-b's live one.
  const v1::Member* local = nullptr;
  for (const auto& m : w.Get("pvc-1").spec.members) {
    if (m.node == "node-c") local = &m;
  }
  REQUIRE(local != nullptr);
  REQUIRE(local->replaces.has_value());
  CHECK(w.Get("pvc-1").spec.members[*local->replaces].node == "node-a");
  CHECK(ConditionReason(w.Get("pvc-1"), kConditionConsumerFenced) == "TakenOver");
  // Taint gone but its agent still silent: not healthy yet.
  SetNode(w, "node-a", false, ConditionStatus::kTrue);
  w.Advance(seconds(600));
  w.OperatorSettle("pvc-1");
  CHECK(w.Get("pvc-1").spec.fenced_nodes == std::vector<std::string>{"node-a"});
  // Agent reporting again: the fence is lifted and the record dropped.
  w.agents.down_nodes.clear();
  w.OperatorSettle("pvc-1");
  const auto& v = w.Get("pvc-1");
  CHECK(v.spec.fenced_nodes.empty());
  CHECK_FALSE(v.status.fenced_consumer.has_value());
  CHECK(common::api::FindCondition(v.status.conditions, kConditionConsumerFenced) == nullptr);
  CHECK(HasEvent(w, "Unfenced"));
}

}  // namespace
}  // namespace meshstor_operator
