// Integration test of the operator's controller runner (informers, work queue, worker, events,
// metrics) against the in-process API test server, with a simulated agent per node acting on
// spec.members and writing status. Goes through create, degrade, recover, replace, relocate,
// expand and delete, checking the Prometheus exposition along the way.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/metrics/metrics.h"
#include "common/time/clock.h"
#include "common/time/fake_clock.h"
#include "operator/controller.h"
#include "operator/metrics.h"
#include "operator/testing/api_fixture.h"

namespace e2e {
namespace {

namespace v1 = common::api::v1alpha1;
namespace op = meshstor_operator;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls `pred` in real time; integration tests wait for real threads and a real server.
bool Eventually(const std::function<bool()>& pred, milliseconds timeout = seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

// Simulated agents: every 20 ms, one step for every volume (op::testing::StepAgents), written
// through the status subresource; conflicts are simply retried on the next round.
class Agents {
 public:
  explicit Agents(op::testing::ApiFixture& api) : api_(api) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Agents() {
    stop_ = true;
    thread_.join();
  }
  void SetDown(std::set<std::string> down, seconds missing_for = seconds(0)) {
    std::lock_guard<std::mutex> lock(mu_);
    world_.down_nodes = std::move(down);
    world_.missing_for = missing_for;
  }

 private:
  void Loop() {
    while (!stop_) {
      op::testing::AgentWorld w;
      {
        std::lock_guard<std::mutex> lock(mu_);
        w = world_;
      }
      w.now = std::chrono::system_clock::now();
      auto list = api_.client().ListAll(common::kube::MeshStorVolumes(), "");
      if (list.ok()) {
        for (const auto& json : list->items) {
          auto v = v1::DecodeMeshStorVolume(json);
          if (!v.ok() || !op::testing::StepAgents(*v, w)) continue;
          (void)api_.client().UpdateStatus(common::kube::MeshStorVolumes(), {"", v->metadata.name},
                                           v1::EncodeMeshStorVolume(*v));  // conflicts retry
        }
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  op::testing::ApiFixture& api_;
  std::mutex mu_;
  op::testing::AgentWorld world_;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The value of one sample line ("name{labels} value") in an exposition, or -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      return std::stod(text.substr(pos + series.size() + 1));
    }
    ++pos;
  }
  return -1;
}

TEST_CASE("Operator drives volumes through their lifecycle", "[integration][operator]") {
  op::testing::ApiFixture api(seconds(2));  // errors are counted: keep connections alive
  const auto now = std::chrono::system_clock::now();
  for (const char* n : {"node-a", "node-b", "node-c", "node-d"}) api.AddNode(n, now);
  common::metrics::Registry registry;
  auto metrics = op::OperatorMetrics::Create(registry);
  REQUIRE(metrics.ok());
  common::kube::EventRecorder recorder(
      api.client(), common::time::RealClock::Get(),
      {.reporting_controller = "csi.meshstor.io/operator", .reporting_instance = "it"});
  op::ControllerRunner::Options options;
  op::ControllerRunner runner(api.client(), common::time::RealClock::Get(), &recorder,
                              metrics->get(), options);
  REQUIRE(runner.Start().ok());
  Agents agents(api);

  auto volume = [&] { return api.GetVolume("pvc-1"); };
  auto metric = [&](const std::string& series) { return Sample(registry.Expose(), series); };

  // Create.
  auto vol = op::testing::Volume("pvc-1");
  vol.spec.consumer_node = "node-a";
  vol.spec.member_missing_timeout = 60;
  api.CreateVolume(vol);
  REQUIRE(Eventually([&] {
    auto v = volume();
    return v && v->status.phase == v1::VolumePhase::kSynced &&
           op::testing::ConditionIs(*v, op::kConditionReady) == common::api::ConditionStatus::kTrue;
  }));
  REQUIRE(Eventually([&] { return metric("meshstor_operator_volumes{phase=\"Synced\"}") == 1; }));
  CHECK(metric("meshstor_operator_members{state=\"Synced\"}") == 2);
  CHECK(metric("meshstor_operator_degraded_volumes") == 0);
  const std::string peer = volume()->spec.members[1].node;

  // Degrade, then recover within the timeout: no replacement.
  agents.SetDown({peer});
  REQUIRE(Eventually([&] {
    auto v = volume();
    return v && op::testing::ConditionIs(*v, op::kConditionDegraded) ==
                    common::api::ConditionStatus::kTrue;
  }));
  REQUIRE(Eventually([&] { return metric("meshstor_operator_degraded_volumes") == 1; }));
  CHECK(metric(fmt::format("meshstor_operator_member_missing_seconds{{volume=\"pvc-1\","
                           "index=\"1\",node=\"{}\"}}",
                           peer)) >= 0);
  agents.SetDown({});
  REQUIRE(Eventually([&] {
    auto v = volume();
    return v && v->status.phase == v1::VolumePhase::kSynced &&
           op::testing::ConditionIs(*v, op::kConditionDegraded) ==
               common::api::ConditionStatus::kFalse;
  }));
  CHECK(volume()->spec.members.size() == 2);
  CHECK(metric("meshstor_operator_replacements_total") == 0);

  // Replace: the peer has been gone longer than memberMissingTimeout.
  agents.SetDown({peer}, seconds(61));
  REQUIRE(Eventually([&] {
    auto v = volume();
    if (!v || v->status.phase != v1::VolumePhase::kSynced || v->spec.members.size() != 3) {
      return false;
    }
    return v->spec.members[1].state == v1::MemberState::kRetired;
  }));
  auto replaced = volume();
  CHECK(replaced->spec.members[2].replaces == 1);
  CHECK(replaced->spec.members[2].node != peer);
  // The counter moves right after the write the server already shows.
  CHECK(Eventually([&] { return metric("meshstor_operator_replacements_total") == 1; }));
  agents.SetDown({});

  // Relocate to a node that holds no member.
  std::string target;
  for (const char* n : {"node-b", "node-c", "node-d"}) {
    if (n != replaced->spec.members[2].node) target = n;
  }
  api.EditSpec("pvc-1", [&](v1::MeshStorVolumeSpec& s) { s.consumer_node = target; });
  REQUIRE(Eventually([&] {
    auto v = volume();
    if (!v || v->status.phase != v1::VolumePhase::kSynced || v->status.node_name != target) {
      return false;
    }
    int present = 0;
    for (const auto& m : v->spec.members) {
      if (m.state == v1::MemberState::kPresent) ++present;
    }
    return present == 2;
  }));
  // The counter moves right after the write the server already shows.
  CHECK(Eventually([&] { return metric("meshstor_operator_relocations_total") == 1; }));

  // Expand.
  api.EditSpec("pvc-1", [](v1::MeshStorVolumeSpec& s) { s.capacity_bytes = 2048 * v1::kMiB; });
  REQUIRE(Eventually([&] {
    auto v = volume();
    if (!v || v->status.phase != v1::VolumePhase::kSynced) return false;
    for (const auto& m : v->spec.members) {
      if (m.state == v1::MemberState::kPresent && m.size_bytes != 2049 * v1::kMiB) return false;
    }
    return op::testing::ConditionReason(*v, op::kConditionResized) == "CapacityReached";
  }));
  // The counter moves right after the write the server already shows.
  CHECK(Eventually([&] { return metric("meshstor_operator_expansions_total") == 1; }));

  // Delete.
  REQUIRE(api.client().Delete(common::kube::MeshStorVolumes(), {"", "pvc-1"}).ok());
  REQUIRE(Eventually([&] { return !volume().has_value(); }));
  REQUIRE(Eventually([&] { return metric("meshstor_operator_volumes{phase=\"Synced\"}") == 0; }));
  CHECK(metric("meshstor_operator_reconcile_errors_total") == 0);
  CHECK(metric("meshstor_operator_reconcile_duration_seconds_count") > 0);
  runner.Stop();
  recorder.Stop();
  CHECK(recorder.sent() > 0);
}

TEST_CASE("The runner requeues a missing member exactly at its replacement deadline",
          "[integration][operator]") {
  // Informer and queue retries wait on the fake clock: keep connections alive so that no
  // transient transport error needs one.
  op::testing::ApiFixture api(seconds(2));
  common::time::FakeClock clock;
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  op::ControllerRunner runner(api.client(), clock, nullptr, nullptr, {});
  REQUIRE(runner.Start().ok());
  auto vol = op::testing::Volume("pvc-1");
  vol.spec.consumer_node = "node-a";
  vol.spec.member_missing_timeout = 60;
  api.CreateVolume(vol);
  op::testing::AgentWorld agents;
  auto step_until = [&](const std::function<bool(const v1::MeshStorVolume&)>& done) {
    return Eventually([&] {
      agents.now = clock.Now();
      (void)api.StepAgentsOnServer("pvc-1", agents);
      auto v = api.GetVolume("pvc-1");
      return v && done(*v);
    });
  };
  REQUIRE(step_until(
      [](const v1::MeshStorVolume& v) { return v.status.phase == v1::VolumePhase::kSynced; }));
  const std::string peer = api.GetVolume("pvc-1")->spec.members[1].node;
  agents.down_nodes = {peer};
  REQUIRE(step_until([](const v1::MeshStorVolume& v) {
    return op::testing::ConditionIs(v, op::kConditionDegraded) ==
           common::api::ConditionStatus::kTrue;
  }));
  // The only timer due before the informers' resync is the replacement deadline.
  REQUIRE(
      Eventually([&] { return clock.NextDeadlineForTest() == clock.SteadyNow() + seconds(60); }));
  clock.Advance(seconds(59));
  CHECK(clock.NextDeadlineForTest() == clock.SteadyNow() + seconds(1));
  CHECK(api.GetVolume("pvc-1")->spec.members.size() == 2);
  clock.Advance(seconds(1));
  REQUIRE(Eventually([&] { return api.GetVolume("pvc-1")->spec.members.size() == 3; }));
  auto v = api.GetVolume("pvc-1");
  CHECK(v->spec.members[2].replaces == 1);
  runner.Stop();
}

}  // namespace
}  // namespace e2e
