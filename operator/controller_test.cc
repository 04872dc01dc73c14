#include "operator/controller.h"

#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "common/api/core_codec.h"
#include "common/metrics/metrics.h"
#include "common/time/fake_clock.h"
#include "operator/fencing.h"
#include "operator/testing/api_fixture.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;
using common::time::FakeClock;
using std::chrono::seconds;

// Runs operator passes (a fresh Controller per pass when `restart_every_pass`, as if the
// operator crashed after every write) and agent steps until neither changes anything.
struct Driver {
  Driver(ApiFixture& a, common::time::Clock& c) : api(a), clock(c) {}

  ApiFixture& api;
  common::time::Clock& clock;
  AgentWorld agents;
  Limits limits;
  OperatorMetrics* metrics = nullptr;
  common::kube::EventRecorder* events = nullptr;
  bool restart_every_pass = false;
  int writes = 0;
  int controllers = 0;

  std::unique_ptr<ClientSource> source;
  std::unique_ptr<Controller> controller;

  Controller& Get() {
    if (!controller || restart_every_pass) {
      source = std::make_unique<ClientSource>(api.client());
      controller =
          std::make_unique<Controller>(api.client(), clock, *source, events, metrics, limits);
      ++controllers;
    }
    return *controller;
  }

  Controller::PassResult Pass(const std::string& name) {
    auto r = Get().ReconcileOnce(name);
    for (int retry = 0;
         retry < 3 && !r.ok() && r.status().code() == common::StatusCode::kUnavailable; ++retry) {
      r = Get().ReconcileOnce(name);  // a transient transport error, as the worker retries
    }
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    if (r->wrote) ++writes;
    return *r;
  }

  int Settle(const std::string& name) {
    int n = 0;
    for (int i = 0; i < 50; ++i) {
      if (!Pass(name).wrote) return n;
      ++n;
    }
    FAIL("operator did not settle");
    return n;
  }

  void Converge(const std::string& name) {
    agents.now = clock.Now();
    for (int i = 0; i < 100; ++i) {
      int n = Settle(name);
      bool agent = api.StepAgentsOnServer(name, agents);
      if (n == 0 && !agent) return;
    }
    FAIL("did not converge");
  }
};

v1::MeshStorVolume Consumed(const std::string& name, const std::string& consumer,
                            int replicas = 2) {
  auto v = Volume(name, replicas);
  v.spec.consumer_node = consumer;
  return v;
}

void CheckNoDuplicates(const v1::MeshStorVolume& v) {
  std::set<int32_t> indexes;
  std::set<std::pair<std::string, int32_t>> nsids;
  std::set<int32_t> slots;
  for (const auto& m : v.spec.members) {
    CHECK(indexes.insert(m.index).second);
    CHECK(nsids.insert({m.node, m.namespace_id}).second);
    if (m.state == v1::MemberState::kPresent && !m.replaces) CHECK(slots.insert(*m.slot).second);
  }
}

TEST_CASE("Controller drives a volume to Synced through the API server", "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  common::metrics::Registry registry;
  auto metrics = OperatorMetrics::Create(registry);
  REQUIRE(metrics.ok());
  common::kube::EventRecorder recorder(
      api.client(), common::time::RealClock::Get(),
      {.reporting_controller = "csi.meshstor.io/operator", .reporting_instance = "test"});
  Driver drv(api, clock);
  drv.metrics = metrics->get();
  drv.events = &recorder;
  api.CreateVolume(Consumed("pvc-1", "node-b"));
  drv.Converge("pvc-1");

  auto v = api.GetVolume("pvc-1");
  REQUIRE(v);
  CHECK(v->metadata.finalizers == std::vector<std::string>{kFinalizer});
  CHECK(v->status.phase == v1::VolumePhase::kSynced);
  CHECK(v->status.ready == "2/2");
  REQUIRE(v->spec.members.size() == 2);
  CHECK(v->spec.members[0].node == "node-b");
  CHECK(ConditionIs(*v, kConditionReady) == ConditionStatus::kTrue);
  for (const auto& c : v->status.conditions) {
    CHECK(c.observed_generation == v->metadata.generation);
  }
  // Nothing left to do.
  CHECK_FALSE(drv.Pass("pvc-1").wrote);

  // Metrics reflect the cluster.
  (*metrics)->VolumeChanged(v->metadata.name, &*v);
  (*metrics)->Refresh(clock.Now());
  const std::string text = registry.Expose();
  CHECK_THAT(text, Catch::Contains("meshstor_operator_volumes{phase=\"Synced\"} 1"));
  CHECK_THAT(text, Catch::Contains("meshstor_operator_members{state=\"Synced\"} 2"));
  CHECK_THAT(text, Catch::Contains("meshstor_operator_degraded_volumes 0"));
  CHECK_THAT(text, Catch::Contains("meshstor_operator_volume_sync_ratio{volume=\"pvc-1\"} 1"));
  CHECK_THAT(text, Catch::Contains("meshstor_operator_reconcile_duration_seconds_count"));
  CHECK_THAT(text, Catch::Contains(
                       "meshstor_operator_api_request_duration_seconds_count{verb=\"update\"}"));
  // One pass placed the members.
  CHECK_THAT(text, Catch::Contains("meshstor_operator_placement_duration_seconds_count 1\n"));
  CHECK_THAT(text, Catch::Contains("meshstor_operator_placement_cpu_seconds_count 1\n"));

  // Events were posted for the transitions.
  recorder.Stop();
  auto events = api.client().ListAll(common::kube::Events(), "default");
  REQUIRE(events.ok());
  std::set<std::string> reasons;
  for (const auto& json : events->items) {
    auto e = common::api::DecodeEvent(json);
    REQUIRE(e.ok());
    CHECK(e->regarding.name == "pvc-1");
    reasons.insert(e->reason);
  }
  CHECK(reasons.count("Placed") == 1);
  CHECK(reasons.count("PhaseChanged") == 1);
}

TEST_CASE("A restart between any two writes converges to the same volume", "[unit][controller]") {
  // Reference: one controller for the whole run.
  v1::MeshStorVolume reference;
  int reference_writes = 0;
  {
    ApiFixture api;
    FakeClock clock;
    for (const char* n : {"node-a", "node-b", "node-c", "node-d"}) api.AddNode(n, clock.Now());
    Driver drv(api, clock);
    api.CreateVolume(Consumed("pvc-1", "node-a", 3));
    drv.Converge("pvc-1");
    reference = *api.GetVolume("pvc-1");
    reference_writes = drv.writes;
  }
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b", "node-c", "node-d"}) api.AddNode(n, clock.Now());
  Driver drv(api, clock);
  drv.restart_every_pass = true;
  api.CreateVolume(Consumed("pvc-1", "node-a", 3));
  drv.Converge("pvc-1");
  auto v = api.GetVolume("pvc-1");
  REQUIRE(v);
  CHECK(drv.controllers > drv.writes);  // a new instance after every write
  CHECK(drv.writes == reference_writes);
  CHECK(v->spec == reference.spec);
  CHECK(v->status.phase == v1::VolumePhase::kSynced);
  CheckNoDuplicates(*v);

  // A crash after a spec write but before the status write: the next instance only writes the
  // status, and adds no member.
  api.EditSpec("pvc-1", [](v1::MeshStorVolumeSpec& s) { s.capacity_bytes *= 2; });
  REQUIRE(drv.Pass("pvc-1").write == Decision::Write::kSpec);
  auto after_spec = api.GetVolume("pvc-1");
  REQUIRE(drv.Pass("pvc-1").write == Decision::Write::kStatus);
  auto after_status = api.GetVolume("pvc-1");
  CHECK(after_status->spec == after_spec->spec);
  CHECK(after_status->status.phase == v1::VolumePhase::kExpanding);
  drv.Converge("pvc-1");
  auto grown = api.GetVolume("pvc-1");
  CHECK(grown->spec.members.size() == 3);
  CHECK(grown->status.phase == v1::VolumePhase::kSynced);
  CheckNoDuplicates(*grown);

  // Relocation and deletion with a restart after every write, too.
  std::string spare;
  std::set<std::string> used;
  for (const auto& m : grown->spec.members) used.insert(m.node);
  for (const char* n : {"node-b", "node-c", "node-d"}) {
    if (!used.count(n)) spare = n;
  }
  REQUIRE_FALSE(spare.empty());
  api.EditSpec("pvc-1", [&](v1::MeshStorVolumeSpec& s) { s.consumer_node = spare; });
  drv.Converge("pvc-1");
  auto moved = api.GetVolume("pvc-1");
  CheckNoDuplicates(*moved);
  int present = 0;
  for (const auto& m : moved->spec.members) {
    if (m.state != v1::MemberState::kPresent) continue;
    ++present;
    CHECK(m.role == (m.node == spare ? v1::MemberRole::kLocal : v1::MemberRole::kRemote));
  }
  CHECK(present == 3);
  CHECK(moved->spec.members.size() == 4);  // exactly one member added, one retired
  CHECK(moved->status.node_name == spare);
  CHECK(moved->status.phase == v1::VolumePhase::kSynced);
  REQUIRE(api.client().Delete(common::kube::MeshStorVolumes(), {"", "pvc-1"}).ok());
  drv.Converge("pvc-1");
  CHECK_FALSE(api.GetVolume("pvc-1"));
}

// Returns the first volume it ever read for each name: a stale cache.
class StaleSource final : public ClusterSource {
 public:
  explicit StaleSource(common::kube::Client& client) : inner_(client) {}
  common::Result<std::shared_ptr<const v1::MeshStorVolume>> GetVolume(
      const std::string& name) override {
    if (!first_) {
      auto got = inner_.GetVolume(name);
      if (!got.ok()) return got.status();
      first_ = *got;
    }
    return first_;
  }
  common::Result<Inventory> Snapshot() override { return inner_.Snapshot(); }

 private:
  ClientSource inner_;
  std::shared_ptr<const v1::MeshStorVolume> first_;
};

TEST_CASE("A decision on a stale object is refused with a conflict and retried",
          "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b"}) api.AddNode(n, clock.Now());
  api.CreateVolume(Consumed("pvc-1", "node-a"));
  StaleSource stale(api.client());
  Controller c(api.client(), clock, stale, nullptr, nullptr, Limits{});
  auto first = c.ReconcileOnce("pvc-1");  // adds the finalizer
  REQUIRE(first.ok());
  REQUIRE(first->wrote);
  auto second = c.ReconcileOnce("pvc-1");  // same stale object: conflict
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == common::StatusCode::kAborted);
  auto v = api.GetVolume("pvc-1");
  CHECK(v->spec.members.empty());  // nothing written blindly
  Driver drv(api, clock);
  drv.Converge("pvc-1");
  CHECK(api.GetVolume("pvc-1")->status.phase == v1::VolumePhase::kSynced);
}

TEST_CASE("Replacement waits for memberMissingTimeout on the injected clock",
          "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  Driver drv(api, clock);
  auto vol = Consumed("pvc-1", "node-a");
  vol.spec.member_missing_timeout = 120;
  api.CreateVolume(vol);
  drv.Converge("pvc-1");
  const std::string peer = api.GetVolume("pvc-1")->spec.members[1].node;
  drv.agents.down_nodes = {peer};
  drv.Converge("pvc-1");
  auto degraded = api.GetVolume("pvc-1");
  CHECK(ConditionIs(*degraded, kConditionDegraded) == ConditionStatus::kTrue);
  CHECK(drv.Pass("pvc-1").requeue_after == seconds(120));

  clock.Advance(seconds(119));
  api.Heartbeat(clock.Now(), drv.agents.down_nodes);
  auto before = drv.Pass("pvc-1");
  CHECK_FALSE(before.wrote);
  CHECK(before.requeue_after == seconds(1));
  CHECK(api.GetVolume("pvc-1")->spec.members.size() == 2);

  clock.Advance(seconds(2));
  api.Heartbeat(clock.Now(), drv.agents.down_nodes);
  auto after = drv.Pass("pvc-1");
  REQUIRE(after.wrote);
  auto replaced = api.GetVolume("pvc-1");
  REQUIRE(replaced->spec.members.size() == 3);
  CHECK(replaced->spec.members[2].replaces == 1);
  drv.Converge("pvc-1");
  auto done = api.GetVolume("pvc-1");
  CHECK(done->status.phase == v1::VolumePhase::kSynced);
  CHECK(done->spec.members[1].state == v1::MemberState::kRetired);
  CheckNoDuplicates(*done);
}

TEST_CASE("Deleting a volume through the API removes it after teardown", "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b"}) api.AddNode(n, clock.Now());
  Driver drv(api, clock);
  api.CreateVolume(Consumed("pvc-1", "node-a"));
  drv.Converge("pvc-1");
  REQUIRE(api.client().Delete(common::kube::MeshStorVolumes(), {"", "pvc-1"}).ok());
  auto deleting = api.GetVolume("pvc-1");
  REQUIRE(deleting);  // held by the finalizer
  REQUIRE(deleting->metadata.deletion_timestamp);
  drv.Settle("pvc-1");
  CHECK(api.GetVolume("pvc-1")->status.phase == v1::VolumePhase::kDeleting);
  drv.Converge("pvc-1");
  CHECK_FALSE(api.GetVolume("pvc-1"));
}

TEST_CASE("Invalid CR contents from the API get a condition, not a crash", "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  api.AddNode("node-a", clock.Now());
  auto v = Consumed("pvc-1", "node-a");
  v.spec.members.push_back({0,
                            "node-a",
                            "nvme0n1",
                            1025 * v1::kMiB,
                            5,
                            v1::MemberRole::kLocal,
                            v1::MemberState::kPresent,
                            7,
                            {}});  // slot 7 of a 2-slot array
  api.CreateVolume(v);
  Driver drv(api, clock);
  CHECK(drv.Settle("pvc-1") == 1);
  auto got = api.GetVolume("pvc-1");
  CHECK(ConditionReason(*got, kConditionReady) == "InvalidSpec");
  CHECK_THAT(common::api::FindCondition(got->status.conditions, kConditionReady)->message,
             Catch::Contains("slot"));
  // Fixed by the user: the next generation reconciles.
  api.EditSpec("pvc-1", [](v1::MeshStorVolumeSpec& s) { s.members[0].slot = 0; });
  drv.Converge("pvc-1");
  auto fixed = api.GetVolume("pvc-1");
  CHECK(ConditionReason(*fixed, kConditionReady) != "InvalidSpec");
  CHECK(fixed->metadata.finalizers == std::vector<std::string>{kFinalizer});
}

// Reports every volume as undecodable, as the informer cache does for JSON that the codec
// rejects.
class UndecodableSource final : public ClusterSource {
 public:
  common::Result<std::shared_ptr<const v1::MeshStorVolume>> GetVolume(const std::string&) override {
    return common::InvalidArgumentError("spec.members[0].role: unknown value \"leader\"");
  }
  common::Result<Inventory> Snapshot() override { return Inventory{}; }
};

TEST_CASE("An undecodable volume gets an InvalidObject condition once", "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  api.CreateVolume(Consumed("pvc-1", "node-a"));
  UndecodableSource source;
  Controller c(api.client(), clock, source, nullptr, nullptr, Limits{});
  auto first = c.ReconcileOnce("pvc-1");
  INFO(first.status().ToString());
  REQUIRE(first.ok());
  CHECK(first->wrote);
  auto v = api.GetVolume("pvc-1");
  CHECK(ConditionIs(*v, kConditionReady) == ConditionStatus::kFalse);
  CHECK(ConditionReason(*v, kConditionReady) == "InvalidObject");
  CHECK_THAT(common::api::FindCondition(v->status.conditions, kConditionReady)->message,
             Catch::Contains("spec.members[0].role"));
  CHECK(v->status.observed_generation == v->metadata.generation);
  auto second = c.ReconcileOnce("pvc-1");
  REQUIRE(second.ok());
  CHECK_FALSE(second->wrote);  // no write loop
  CHECK(api.GetVolume("pvc-1")->metadata.resource_version == v->metadata.resource_version);
}

TEST_CASE("A tainted consumer is fenced through the API server; confirmed, its status is cleared",
          "[unit][controller][fencing]") {
  ApiFixture api;
  FakeClock clock;
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  Driver drv(api, clock);
  api.CreateVolume(Consumed("pvc-1", "node-a"));
  drv.Converge("pvc-1");
  REQUIRE(api.GetVolume("pvc-1")->status.node_name == "node-a");

  // The administrator taints the dead node (kubectl taint ... out-of-service=nodeshutdown).
  auto node = api.client().Get(common::kube::Nodes(), {"", "node-a"});
  REQUIRE(node.ok());
  auto tainted = api.client().Update(
      common::kube::Nodes(), {"", "node-a"},
      R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a","resourceVersion":")" +
          common::api::DecodeNode(*node)->metadata.resource_version +
          R"("},"spec":{"taints":[{"key":"node.kubernetes.io/out-of-service",)"
          R"("value":"nodeshutdown","effect":"NoExecute"}]}})");
  INFO(tainted.status().ToString());
  REQUIRE(tainted.ok());
  drv.Settle("pvc-1");
  auto v = api.GetVolume("pvc-1");
  REQUIRE(v);
  CHECK(v->spec.fenced_nodes == std::vector<std::string>{"node-a"});
  CHECK(v->status.node_name == "node-a");  // not before node-b confirms
  CHECK(ConditionReason(*v, kConditionConsumerFenced) == "WaitingForExporters");

  // node-b's agent confirms (a status write the CRD schema must accept).
  for (auto& p : v->status.partitions) {
    if (p.node_id == "node-b") p.fenced_nodes = {"node-a"};
  }
  auto confirmed = api.client().UpdateStatus(common::kube::MeshStorVolumes(), {"", "pvc-1"},
                                             v1::EncodeMeshStorVolume(*v));
  INFO(confirmed.status().ToString());
  REQUIRE(confirmed.ok());
  drv.Settle("pvc-1");
  v = api.GetVolume("pvc-1");
  REQUIRE(v);
  REQUIRE(v->status.fenced_consumer.has_value());
  CHECK(v->status.fenced_consumer->node == "node-a");
  CHECK(v->status.node_name.empty());
  CHECK(v->status.staged_path.empty());
  CHECK(ConditionIs(*v, kConditionConsumerFenced) == ConditionStatus::kTrue);
}

TEST_CASE("A missing volume is not an error", "[unit][controller]") {
  ApiFixture api;
  FakeClock clock;
  ClientSource source(api.client());
  Controller c(api.client(), clock, source, nullptr, nullptr, Limits{});
  auto r = c.ReconcileOnce("absent");
  REQUIRE(r.ok());
  CHECK_FALSE(r->wrote);
}

// The runner's reconcile count (meshstor_operator_reconcile_duration_seconds_count) once it
// stopped changing for a second: the work queue has drained.
int SettledReconciles(common::metrics::Registry& registry) {
  auto count = [&] {
    const std::string text = registry.Expose();
    const std::string key = "meshstor_operator_reconcile_duration_seconds_count ";
    auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stoi(text.substr(at + key.size()));
  };
  int last = count();
  for (int quiet = 0, i = 0; quiet < 10 && i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int now = count();
    quiet = now == last ? quiet + 1 : 0;
    last = now;
  }
  return last;
}

void SetFree(ApiFixture& api, const std::string& node, int64_t free) {
  const std::string name = v1::NodeDeviceName(node, "nvme0n1");
  auto got = api.client().Get(common::kube::MeshStorNodeDevices(), {"", name});
  REQUIRE(got.ok());
  auto d = v1::DecodeMeshStorNodeDevice(*got);
  REQUIRE(d.ok());
  d->status.biggest_free_extent_bytes = free;
  REQUIRE(api.client()
              .UpdateStatus(common::kube::MeshStorNodeDevices(), {"", name},
                            v1::EncodeMeshStorNodeDevice(*d))
              .ok());
}

TEST_CASE("A drive's free-space change requeues only the volumes it concerns",
          "[unit][controller]") {
  ApiFixture api;
  auto& clock = common::time::RealClock::Get();
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  api.AddNode("node-x", clock.Now(), 1, v1::kMiB);  // too small for any member
  common::metrics::Registry registry;
  auto metrics = OperatorMetrics::Create(registry);
  REQUIRE(metrics.ok());
  ControllerRunner runner(api.client(), clock, nullptr, metrics->get(), {});
  REQUIRE(runner.Start().ok());
  for (int i = 0; i < 6; ++i) api.CreateVolume(Consumed(fmt::format("pvc-{}", i), "node-a"));
  api.CreateVolume(Consumed("pvc-waiting", "node-z"));  // no such node: Placeable=False
  int before = SettledReconciles(registry);
  for (int i = 0; i < 6; ++i) {
    auto v = api.GetVolume(fmt::format("pvc-{}", i));
    REQUIRE(v);
    REQUIRE(v->spec.members.size() == 2);
  }
  auto waiting = api.GetVolume("pvc-waiting");
  REQUIRE(waiting);
  REQUIRE(ConditionIs(*waiting, kConditionPlaceable) == ConditionStatus::kFalse);

  // node-x holds nothing: only the volume waiting for placement is looked at again.
  SetFree(api, "node-x", 2 * v1::kMiB);
  int after = SettledReconciles(registry);
  CHECK(after - before == 1);

  // node-b: the volumes with a member there, and the waiting one.
  int on_b = 0;
  for (int i = 0; i < 6; ++i) {
    auto v = api.GetVolume(fmt::format("pvc-{}", i));
    for (const auto& m : v->spec.members) on_b += m.node == "node-b" ? 1 : 0;
  }
  SetFree(api, "node-b", 90 * 1024 * v1::kMiB);
  CHECK(SettledReconciles(registry) - after == on_b + 1);
  runner.Stop();
}

TEST_CASE("A pass shares the informers' drive and Node lists until one of them changes",
          "[unit][controller]") {
  ApiFixture api;
  auto& clock = common::time::RealClock::Get();
  for (const char* n : {"node-a", "node-b", "node-c"}) api.AddNode(n, clock.Now());
  VolumeInformer volumes(api.client(), common::kube::MeshStorVolumes(), v1::DecodeMeshStorVolume,
                         {}, clock);
  DeviceInformer devices(api.client(), common::kube::MeshStorNodeDevices(),
                         v1::DecodeMeshStorNodeDevice, {}, clock);
  NodeInformer nodes(api.client(), common::kube::Nodes(), common::api::DecodeNode, {}, clock);
  InformerSource source(volumes, devices, nodes);  // before Start: it adds handlers
  for (common::kube::InformerBase* inf :
       std::initializer_list<common::kube::InformerBase*>{&volumes, &devices, &nodes}) {
    inf->Start();
    REQUIRE(inf->WaitForSync(std::chrono::seconds(10)));
  }
  auto a = source.Snapshot();
  auto b = source.Snapshot();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->Devices().size() == 3);
  CHECK(a->Nodes().size() == 3);
  CHECK(a->devices.empty());  // nothing copied
  // The same vectors, not copies of every pointer.
  CHECK(&a->Devices() == &b->Devices());
  CHECK(&a->Nodes() == &b->Nodes());

  SetFree(api, "node-b", 7 * v1::kMiB);
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    auto c = source.Snapshot();
    REQUIRE(c.ok());
    for (const auto& d : c->Devices()) {
      if (d->status.biggest_free_extent_bytes == 7 * v1::kMiB) seen = true;
    }
    if (seen) {
      CHECK(&c->Devices() != &a->Devices());
      CHECK(&c->Nodes() == &a->Nodes());  // no Node changed
      CHECK(c->Devices().size() == 3);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  CHECK(seen);
  // The earlier snapshot still holds the list it was given.
  for (const auto& d : a->Devices()) CHECK(d->status.biggest_free_extent_bytes != 7 * v1::kMiB);
  for (common::kube::InformerBase* inf :
       std::initializer_list<common::kube::InformerBase*>{&volumes, &devices, &nodes}) {
    inf->Stop();
  }
}

// meshstor_operator_member_missing_seconds of pvc-missing's member 1 on node-b; -1 without it.
double MissingSeconds(common::metrics::Registry& registry) {
  const std::string text = registry.Expose();
  const std::string key =
      "meshstor_operator_member_missing_seconds{volume=\"pvc-missing\",index=\"1\","
      "node=\"node-b\"} ";
  auto at = text.find(key);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
}

TEST_CASE("The volume gauges are refreshed on a timer, also while no volume changes",
          "[unit][controller]") {
  ApiFixture api;
  auto& clock = common::time::RealClock::Get();
  for (const char* n : {"node-a", "node-b"}) api.AddNode(n, clock.Now());
  auto v = Consumed("pvc-missing", "node-a");
  v.metadata.finalizers = {kFinalizer};
  for (int i = 0; i < 2; ++i) {
    v1::Member m;
    m.index = i;
    m.node = i == 0 ? "node-a" : "node-b";
    m.drive = "nvme0n1";
    m.size_bytes = v1::MemberSizeBytes(v.spec);
    m.namespace_id = 1;
    m.role = i == 0 ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
    m.slot = i;
    v.spec.members.push_back(m);
  }
  api.CreateVolume(v);
  auto stored = api.GetVolume("pvc-missing");
  REQUIRE(stored);
  const auto since =
      std::chrono::time_point_cast<std::chrono::seconds>(clock.Now() - std::chrono::seconds(100));
  for (int i = 0; i < 2; ++i) {
    v1::PartitionStatus p;
    p.index = i;
    p.node_id = v.spec.members[i].node;
    p.drive = "nvme0n1";
    p.state = i == 0 ? v1::PartitionState::kSynced : v1::PartitionState::kMissing;
    p.updated_at = since;
    if (i == 1) p.missing_since = since;
    stored->status.partitions.push_back(p);
  }
  REQUIRE(api.client()
              .UpdateStatus(common::kube::MeshStorVolumes(), {"", "pvc-missing"},
                            v1::EncodeMeshStorVolume(*stored))
              .ok());
  common::metrics::Registry registry;
  auto metrics = OperatorMetrics::Create(registry);
  REQUIRE(metrics.ok());
  ControllerRunner::Options options;
  options.metrics_refresh_period = std::chrono::milliseconds(100);
  options.metrics_max_age = std::chrono::milliseconds(200);
  ControllerRunner runner(api.client(), clock, nullptr, metrics->get(), options);
  REQUIRE(runner.Start().ok());
  SettledReconciles(registry);  // the replacement is 800 s away: nothing queued after this
  const double first = MissingSeconds(registry);
  CHECK(first >= 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(MissingSeconds(registry) >= first + 1);
  runner.Stop();
}

TEST_CASE("The runner trims the heap once after a burst of volume changes",
          "[unit][controller][memory]") {
  ApiFixture api;
  auto& clock = common::time::RealClock::Get();
  for (const char* n : {"node-a", "node-b"}) api.AddNode(n, clock.Now());
  std::atomic<int> trims{0};
  ControllerRunner::Options options;
  options.metrics_refresh_period = std::chrono::milliseconds(50);
  options.trim_after_quiet = std::chrono::milliseconds(300);
  options.trim_heap = [&] { ++trims; };
  // No metrics: the timer runs for the trim alone.
  ControllerRunner runner(api.client(), clock, nullptr, nullptr, options);
  REQUIRE(runner.Start().ok());
  api.CreateVolume(Consumed("pvc-1", "node-a"));
  for (int i = 0; i < 100 && trims == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(trims == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK(trims == 1);  // nothing changed since
  api.CreateVolume(Consumed("pvc-2", "node-b"));
  for (int i = 0; i < 100 && trims == 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(trims == 2);
  runner.Stop();
}

}  // namespace
}  // namespace meshstor_operator
