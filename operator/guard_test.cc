// The operator's side of the stale-member guard (docs/design.md §6.1): an array that waits for an
// in-sync member is Ready=False WaitingForInSyncMember with the agent's reason, an Event and the
// meshstor_operator_volumes_waiting_for_member gauge; a forced start is a ForcedStart condition
// and one Event per start.
#include <catch2/catch.hpp>

#include "common/time/clock.h"
#include "operator/metrics.h"
#include "operator/reconcile.h"
#include "operator/testing/world.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;

int CountEvents(const World& w, const std::string& reason, const std::string& type) {
  int n = 0;
  for (const auto& d : w.history) {
    for (const auto& e : d.events) n += e.reason == reason && e.type == type ? 1 : 0;
  }
  return n;
}

World SyncedWorld() {
  World w(Cluster(3));
  auto v = Volume("pvc-1");
  v.spec.consumer_node = "node-a";
  w.Put(v);
  w.Converge("pvc-1");
  REQUIRE(ConditionIs(w.Get("pvc-1"), kConditionReady) == ConditionStatus::kTrue);
  return w;
}

const char* kBlocked =
    "not starting the array: member 1 on node node-b was in sync at 2026-11-21T09:40:12Z and may "
    "hold acknowledged writes the others lack; it is unreachable from the consumer";

TEST_CASE("A start blocked on an in-sync member is Ready=False WaitingForInSyncMember",
          "[unit][reconcile][guard]") {
  World w = SyncedWorld();
  // The consumer rebooted while member 1's node was away: the agent reports why it waits.
  auto& v = w.Get("pvc-1");
  v.status.node_name.clear();
  v.status.staged_path.clear();
  v.status.start_blocked = kBlocked;
  w.OperatorSettle("pvc-1");
  const auto& got = w.Get("pvc-1");
  CHECK(ConditionIs(got, kConditionReady) == ConditionStatus::kFalse);
  CHECK(ConditionReason(got, kConditionReady) == kReasonWaitingForInSyncMember);
  const auto* ready = common::api::FindCondition(got.status.conditions, kConditionReady);
  REQUIRE(ready != nullptr);
  CHECK(ready->message == kBlocked);
  CHECK(CountEvents(w, kReasonWaitingForInSyncMember, "Warning") == 1);
  // Settled: no second Event while it keeps waiting.
  w.OperatorSettle("pvc-1");
  CHECK(CountEvents(w, kReasonWaitingForInSyncMember, "Warning") == 1);

  // The member returned: the array runs again and the condition follows.
  auto& back = w.Get("pvc-1");
  back.status.start_blocked.clear();
  back.status.node_name = "node-a";
  back.status.staged_path = "/var/lib/meshstor/staging/pvc-1";
  w.OperatorSettle("pvc-1");
  CHECK(ConditionIs(w.Get("pvc-1"), kConditionReady) == ConditionStatus::kTrue);
}

TEST_CASE("A forced start is a ForcedStart condition with the loss window and one Event per start",
          "[unit][reconcile][guard]") {
  World w = SyncedWorld();
  CHECK(common::api::FindCondition(w.Get("pvc-1").status.conditions, kConditionForcedStart) ==
        nullptr);
  auto force = [&](const std::string& token) {
    v1::ForcedStart f;
    f.token = token;
    f.at = std::chrono::time_point_cast<std::chrono::seconds>(T0());
    f.node = "node-a";
    f.from_members = {0};
    f.missing_members = {1};
    f.diverged_members = {1};
    f.loss_window_since =
        std::chrono::time_point_cast<std::chrono::seconds>(T0()) - std::chrono::seconds(600);
    w.Get("pvc-1").status.forced_start = f;
    w.OperatorSettle("pvc-1");
  };
  force("first");
  const auto* c =
      common::api::FindCondition(w.Get("pvc-1").status.conditions, kConditionForcedStart);
  REQUIRE(c != nullptr);
  CHECK(c->status == ConditionStatus::kTrue);
  CHECK(c->message.find("csi.meshstor.io/force-start=first") != std::string::npos);
  CHECK(c->message.find("in-sync member(s) 1 were missing") != std::string::npos);
  CHECK(c->message.find("since " + common::time::FormatRfc3339(T0() - std::chrono::seconds(600))) !=
        std::string::npos);
  CHECK(CountEvents(w, "ForcedStart", "Warning") == 1);
  w.OperatorSettle("pvc-1");
  CHECK(CountEvents(w, "ForcedStart", "Warning") == 1);
  force("second");
  CHECK(CountEvents(w, "ForcedStart", "Warning") == 2);
}

TEST_CASE("meshstor_operator_volumes_waiting_for_member counts blocked volumes",
          "[unit][metrics][guard]") {
  common::metrics::Registry registry;
  auto m = OperatorMetrics::Create(registry);
  REQUIRE(m.ok());
  auto a = Volume("a");
  a.status.start_blocked = kBlocked;
  auto b = Volume("b");
  (*m)->VolumeChanged("a", &a);
  (*m)->VolumeChanged("b", &b);
  (*m)->Refresh(T0());
  CHECK_THAT(registry.Expose(),
             Catch::Contains("meshstor_operator_volumes_waiting_for_member 1\n"));
  a.status.start_blocked.clear();
  (*m)->VolumeChanged("a", &a);
  (*m)->Refresh(T0());
  CHECK_THAT(registry.Expose(),
             Catch::Contains("meshstor_operator_volumes_waiting_for_member 0\n"));
}

}  // namespace
}  // namespace meshstor_operator
