// Agent against the in-process API test server: three agents on simulated nodes publish their
// drives and bring a volume up from the members the operator would write, by CR alone.
#include "agent/agent.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/sim/sim_node.h"
#include "agent/sys/fake/md_events.h"
#include "agent/sys/fake/uevents.h"
#include "agent/testing/counting_md.h"
#include "agent/testing/counting_nvmet.h"
#include "agent/testing/world.h"
#include "common/api/v1alpha1/codec.h"
#include "common/kube/http_transport.h"
#include "common/kube/informer.h"
#include "common/kube/resource.h"
#include "common/metrics/metrics.h"
#include "common/time/clock.h"
#include "tools/apiserver/test_apiserver.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using std::chrono::milliseconds;
using testing::ApiFixture;
using testing::MakeMember;

TEST_CASE("Agents bring a volume up by CR edits alone", "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  for (const char* n : {"a", "b", "c"}) cluster.AddNode(n).AddDrive("nvme0n1", 4ull << 30);
  const Peers addresses = cluster.PeersView();
  common::metrics::Registry registry;
  auto metrics = AgentMetrics::Register(registry, /*simulated=*/true);
  REQUIRE(metrics.ok());
  std::vector<std::unique_ptr<Agent>> agents;
  for (const char* n : {"a", "b", "c"}) {
    AgentConfig config;
    config.settings.node = n;
    config.settings.address = addresses.at(n).address;
    config.simulated = true;
    agents.push_back(std::make_unique<Agent>(*api.client, cluster.node(n).Kernel(), nullptr, config,
                                             common::time::RealClock::Get(), metrics->get()));
    REQUIRE(agents.back()->Start().ok());
    REQUIRE(agents.back()->WaitForSync(std::chrono::seconds(10)));
  }
  auto passes = [&](auto done) {
    for (int i = 0; i < 100; ++i) {
      for (auto& a : agents) (void)a->Pass();
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  };

  // Inventory: one object per drive, with the node's host NQN and address.
  REQUIRE(passes([&] {
    auto d = api.client->Get(common::kube::MeshStorNodeDevices(), {"", "b-nvme0n1"});
    if (!d.ok()) return false;
    auto nd = v1::DecodeMeshStorNodeDevice(*d);
    return nd.ok() && nd->status.host_nqn == cluster.node("b").host_nqn;
  }));
  auto nd = v1::DecodeMeshStorNodeDevice(
      *api.client->Get(common::kube::MeshStorNodeDevices(), {"", "a-nvme0n1"}));
  REQUIRE(nd.ok());
  CHECK(nd->spec.node_name == "a");
  CHECK(nd->status.size_bytes == int64_t{4} << 30);
  CHECK(nd->status.sector_size == 4096);
  REQUIRE(nd->status.transport_addresses.size() == 1);
  CHECK(nd->status.transport_addresses[0].address == addresses.at("a").address);

  // The operator's instructions: a local member on the consumer and one on B.
  v1::MeshStorVolume v;
  v.metadata.name = "pvc-1";
  v.spec.capacity_bytes = 512 * v1::kMiB;
  v.spec.replica_count = 2;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  v.spec.consumer_node = "a";
  v.spec.publish_targets = {{"/var/lib/kubelet/pods/p1/volume", false}};
  v.spec.members = {MakeMember(0, "a", v1::MemberRole::kLocal, 1),
                    MakeMember(1, "b", v1::MemberRole::kRemote, 1)};
  REQUIRE(
      api.client->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());

  REQUIRE(passes([&] {
    auto got = api.Volume("pvc-1");
    return got.ok() && got->status.node_name == "a" && got->status.published_targets.size() == 1;
  }));
  auto got = api.Volume("pvc-1");
  REQUIRE(got.ok());
  CHECK(got->spec.formatted_at.has_value());
  CHECK(got->status.staged_path == "/var/lib/meshstor/staging/pvc-1");
  CHECK(got->status.active_devices == 2);
  REQUIRE(got->status.partitions.size() == 2);
  for (const auto& p : got->status.partitions) {
    CHECK(p.state == v1::PartitionState::kSynced);
  }
  // Settled: a pass reads the volume from its informer cache; nothing changed, nothing is sent.
  // (Before, every pass of every agent involved GET the volume before deciding.)
  REQUIRE(passes([&] {
    api.server->faults().ClearRequests();
    for (auto& a : agents) (void)a->Pass();
    for (const auto& r : api.server->faults().Requests()) {
      if (r.path.find("/meshstorvolumes/") != std::string::npos) return false;
    }
    return true;
  }));
  api.server->faults().ClearRequests();
  for (int i = 0; i < 3; ++i) {
    for (auto& a : agents) (void)a->Pass();
  }
  for (const auto& r : api.server->faults().Requests()) {
    INFO(r.method << " " << r.path);
    CHECK(r.path.find("/meshstorvolumes/") == std::string::npos);  // a named volume
  }
  // B's inventory counts its partition as a remote member.
  REQUIRE(passes([&] {
    auto raw = api.client->Get(common::kube::MeshStorNodeDevices(), {"", "b-nvme0n1"});
    auto b = raw.ok() ? v1::DecodeMeshStorNodeDevice(*raw) : raw.status();
    return b.ok() && b->status.remote_partitions == 1;
  }));
  const std::string exposed = registry.Expose();
  // One process, three simulated nodes: each keeps its own series.
  CHECK(exposed.find("meshstor_agent_simulated 1") != std::string::npos);
  CHECK(exposed.find("meshstor_agent_partitions{node=\"a\",class=\"local\"} 1") !=
        std::string::npos);
  CHECK(exposed.find("meshstor_agent_partitions{node=\"b\",class=\"remote\"} 1") !=
        std::string::npos);
  CHECK(exposed.find("meshstor_agent_passes_total{node=\"c\"}") != std::string::npos);
  CHECK(exposed.find("meshstor_agent_array_degraded_devices{node=\"a\",volume=\"pvc-1\"} 0") !=
        std::string::npos);
  CHECK(exposed.find("meshstor_agent_array_io{node=\"a\",volume=\"pvc-1\",direction=\"write\","
                     "unit=\"bytes\"}") != std::string::npos);
  CHECK(exposed.find("meshstor_agent_nvmeof_controllers{node=\"a\",state=\"live\"} 1") !=
        std::string::npos);
  // Drive size and biggest free extent, per node and drive: A's drive holds a 512 MiB member.
  auto sample = [&](const std::string& series) {
    auto at = exposed.find(series + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(exposed.substr(at + series.size() + 1));
  };
  CHECK(sample("meshstor_agent_drive_size_bytes{node=\"a\",drive=\"nvme0n1\"}") ==
        static_cast<double>(4ull << 30));
  const double free_a =
      sample("meshstor_agent_drive_free_extent_bytes{node=\"a\",drive=\"nvme0n1\"}");
  const double free_c =
      sample("meshstor_agent_drive_free_extent_bytes{node=\"c\",drive=\"nvme0n1\"}");
  CHECK(free_a > 0);
  CHECK(free_a <= static_cast<double>((4ull << 30) - 512 * v1::kMiB));
  CHECK(free_c > free_a);
  CHECK(free_c <= static_cast<double>(4ull << 30));

  // Unstaged: the consumer tears down and clears its fields.
  got->spec.publish_targets.clear();
  got->spec.consumer_node.clear();
  REQUIRE(
      api.client
          ->Update(common::kube::MeshStorVolumes(), {"", "pvc-1"}, v1::EncodeMeshStorVolume(*got))
          .ok());
  REQUIRE(passes([&] {
    auto g = api.Volume("pvc-1");
    return g.ok() && g->status.node_name.empty() && g->status.staged_path.empty();
  }));
  CHECK(cluster.node("a").fs.ListMounts()->empty());
  // The torn-down array's series are gone; the other nodes' series stay.
  const std::string after = registry.Expose();
  CHECK(after.find("meshstor_agent_array_degraded_devices{node=\"a\"") == std::string::npos);
  CHECK(after.find("meshstor_agent_array_io{node=\"a\"") == std::string::npos);
  CHECK(after.find("meshstor_agent_partitions{node=\"b\",class=\"remote\"} 1") !=
        std::string::npos);
  // Asked to stop, an agent does no further pass (agents queued for a shared pass mutex with
  // --simulate used to run one pass each before their loop could end).
  const int64_t done = agents[0]->passes();
  agents[0]->RequestStop();
  CHECK(agents[0]->Pass().ok());
  CHECK(agents[0]->passes() == done);
  CHECK(agents[1]->Pass().ok());
  CHECK(agents[1]->passes() > 0);
  for (auto& a : agents) a->Stop();
}

bool WaitForPasses(const Agent& agent, int64_t n) {
  for (int i = 0; i < 200 && agent.passes() < n; ++i) std::this_thread::sleep_for(milliseconds(50));
  return agent.passes() >= n;
}

// Node "a" of `cluster`, simulated, with a pass timer so long that only a wake-up starts a pass.
AgentConfig WakeOnlyConfig(sim::SimCluster& cluster) {
  AgentConfig config;
  config.settings.node = "a";
  config.settings.address = cluster.PeersView().at("a").address;
  config.simulated = true;
  config.resync = std::chrono::hours(1);
  return config;
}

TEST_CASE("A pass reads each drive's partition table once, however many volumes it holds",
          "[unit][agent][api]") {
  // With libfdisk a listing reads and parses the whole GPT: once per volume per pass made an
  // idle real agent with 100 volumes busy (docs/benchmarks.md, lab_bench_agent_rss).
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 64ull << 30);
  AgentConfig config;
  config.settings.node = "a";
  config.settings.address = cluster.PeersView().at("a").address;
  config.simulated = true;
  Agent agent(*api.client, cluster.node("a").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  // A single copy on node a (no consumer: the agent creates and reports its partition).
  auto create_volume = [&](const std::string& name, int32_t nsid) {
    v1::MeshStorVolume v;
    v.metadata.name = name;
    v.spec.capacity_bytes = 512 * v1::kMiB;
    v.spec.replica_count = 1;
    v.spec.stripe_width = 1;
    v.spec.member_missing_timeout = 900;
    v.spec.sector_size = 4096;
    v.spec.members = {MakeMember(0, "a", v1::MemberRole::kLocal, nsid)};
    auto created =
        api.client->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v));
    INFO(created.status().ToString());
    REQUIRE(created.ok());
  };
  constexpr int kVolumes = 12;
  for (int i = 0; i < kVolumes; ++i) create_volume(fmt::format("pvc-{}", i), i + 1);
  auto all_created = [&] {
    for (int i = 0; i < kVolumes; ++i) {
      auto got = api.Volume(fmt::format("pvc-{}", i));
      if (!got.ok() || got->status.partitions.size() != 1) return false;
    }
    return true;
  };
  for (int i = 0; i < 100 && !all_created(); ++i) {
    (void)agent.Pass();
    std::this_thread::sleep_for(milliseconds(50));
  }
  REQUIRE(all_created());
  (void)agent.Pass();
  const int before = cluster.node("a").block.CallCount("Partitions.List");
  REQUIRE(agent.Pass().ok());
  CHECK(cluster.node("a").block.CallCount("Partitions.List") - before == 1);
  // A change in the pass is seen by the rest of it: a new volume's partition is created and
  // reported in the pass that first sees it.
  create_volume("pvc-new", kVolumes + 1);
  for (int i = 0; i < 100; ++i) {
    auto got = api.Volume("pvc-new");
    if (got.ok() && got->status.partitions.size() == 1) break;
    (void)agent.Pass();
    std::this_thread::sleep_for(milliseconds(50));
  }
  auto got = api.Volume("pvc-new");
  REQUIRE(got.ok());
  REQUIRE(got->status.partitions.size() == 1);
  CHECK(got->status.partitions[0].state == v1::PartitionState::kCreated);
  agent.Stop();
}

// Six RAID1 volumes consumed on a with members on a and b, all Synced; b's nvmet and both MD
// layers count the calls that reach them. With `a_events`, a's agent has (fake) uevent and MD event
// sources, waited on once a test calls its Run().
// Counts the connects that reach the node's NVMe host layer.
class CountingHost final : public sys::NvmeHost {
 public:
  explicit CountingHost(sys::NvmeHost& inner) : inner_(inner) {}
  common::Result<sys::NvmeController> Connect(const sys::NvmeConnectSpec& spec) override {
    ++connects;
    return inner_.Connect(spec);
  }
  common::Status Disconnect(std::string_view name) override { return inner_.Disconnect(name); }
  common::Result<std::vector<sys::NvmeController>> ListControllers() override {
    return inner_.ListControllers();
  }
  common::Result<std::string> FindNamespaceDevice(
      std::string_view nqn, const sys::NvmeNamespaceSelector& selector) override {
    return inner_.FindNamespaceDevice(nqn, selector);
  }
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override {
    return inner_.SubsystemOfDevice(device);
  }
  common::Result<sys::NvmeHostIdentity> GetHostIdentity() override {
    return inner_.GetHostIdentity();
  }
  std::atomic<int> connects{0};

 private:
  sys::NvmeHost& inner_;
};

struct SixVolumesOnTwoNodes {
  static constexpr int kVolumes = 6;
  sys::FakeUeventSource a_uevents;
  sys::FakeMdEventSource a_md_events;
  ApiFixture api;
  sim::SimCluster cluster;
  common::metrics::Registry registry;
  std::unique_ptr<AgentMetrics> metrics;
  std::optional<testing::CountingNvmet> b_nvmet;
  std::optional<testing::CountingMd> a_md;
  std::optional<testing::CountingMd> b_md;
  std::optional<CountingHost> a_host;
  std::vector<std::unique_ptr<Agent>> agents;  // a, b

  explicit SixVolumesOnTwoNodes(bool a_events = false) {
    for (const char* n : {"a", "b"}) cluster.AddNode(n).AddDrive("nvme0n1", 64ull << 30);
    const Peers addresses = cluster.PeersView();
    auto registered = AgentMetrics::Register(registry, /*simulated=*/true);
    REQUIRE(registered.ok());
    metrics = std::move(*registered);
    NodeKernel a_kernel = cluster.node("a").Kernel();
    a_md.emplace(*a_kernel.md);
    a_kernel.md = &*a_md;
    a_host.emplace(*a_kernel.host);
    a_kernel.host = &*a_host;
    NodeKernel b_kernel = cluster.node("b").Kernel();
    b_nvmet.emplace(*b_kernel.nvmet);
    b_kernel.nvmet = &*b_nvmet;
    b_md.emplace(*b_kernel.md);
    b_kernel.md = &*b_md;
    for (const char* n : {"a", "b"}) {
      AgentConfig config;
      config.settings.node = n;
      config.settings.address = addresses.at(n).address;
      config.simulated = true;
      config.resync = std::chrono::hours(1);  // passes here, from the test
      const bool a = std::string(n) == "a";
      agents.push_back(std::make_unique<Agent>(
          *api.client, a ? a_kernel : b_kernel, a && a_events ? &a_uevents : nullptr, config,
          common::time::RealClock::Get(), metrics.get(), a && a_events ? &a_md_events : nullptr));
      REQUIRE(agents.back()->Start().ok());
      REQUIRE(agents.back()->WaitForSync(std::chrono::seconds(10)));
    }
    for (int i = 0; i < kVolumes; ++i) {
      v1::MeshStorVolume v = testing::Raid1Volume();  // consumer a, members on a and b
      v.metadata.name = fmt::format("pvc-{}", i);
      for (v1::Member& m : v.spec.members) m.namespace_id = i + 1;
      REQUIRE(api.client->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v))
                  .ok());
    }
    for (int i = 0; i < 200 && !AllSynced(); ++i) {
      for (auto& a : agents) (void)a->Pass();
      std::this_thread::sleep_for(milliseconds(50));
    }
    REQUIRE(AllSynced());
    for (auto& a : agents) (void)a->Pass();
  }
  ~SixVolumesOnTwoNodes() {
    for (auto& a : agents) a->Stop();
  }

  bool AllSynced() {
    for (int i = 0; i < kVolumes; ++i) {
      auto got = api.Volume(fmt::format("pvc-{}", i));
      if (!got.ok() || got->status.partitions.size() != 2) return false;
      for (const auto& p : got->status.partitions) {
        if (p.state != v1::PartitionState::kSynced) return false;
      }
    }
    return true;
  }
};

TEST_CASE(
    "An exporter's pass lists its nvmet subsystems and MD arrays once, however many "
    "members it exports",
    "[unit][agent][api]") {
  // Fencing each member before exporting it listed every subsystem and namespace: once per
  // member per pass, O(members^2) configfs reads on an idle exporter (lab_bench_agent_rss).
  SixVolumesOnTwoNodes f;
  const int before = f.b_nvmet->listings, changes = f.b_nvmet->changes;
  const int md_reads = f.b_md->reads, md_listings = f.b_md->listings;
  REQUIRE(f.agents[1]->Pass().ok());
  CHECK(f.b_nvmet->listings - before == 1);  // 6 before: one per exported member
  // Idle: each namespace is ensured (nvmet checks a grown partition's size), and the port once;
  // the subsystem, its host and its port link stand in the listing (5 changes per member before).
  CHECK(f.b_nvmet->changes - changes == f.kVolumes + 1);
  // Whether each volume's array runs here (before exporting its member; for a teardown, as b
  // does not consume it): one read finds the first one absent, then one listing answers (two
  // reads per volume before, each a scan of /sys/block).
  CHECK(f.b_md->reads - md_reads == 1);
  CHECK(f.b_md->listings - md_listings == 1);
  CHECK(f.b_md->changes == 0);
  auto listed = f.b_nvmet->ListSubsystems();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);  // b -> a
  CHECK((*listed)[0].namespaces.size() == f.kVolumes);
}

TEST_CASE("A consumer's idle pass reads each array twice: reports reuse what the pass read",
          "[unit][agent][api]") {
  // ObserveInSync and the reconcile read each array; rebuild caps and metrics read it again,
  // about twenty sysfs attributes each time (lab_bench_agent_rss).
  SixVolumesOnTwoNodes f;
  const int reads = f.a_md->reads, changes = f.a_md->changes;
  REQUIRE(f.agents[0]->Pass().ok());
  CHECK(f.a_md->changes == changes);               // idle: nothing changed
  CHECK(f.a_md->reads - reads == 2 * f.kVolumes);  // 4 per array before
  // The metrics still come from the arrays: every array is exported, none degraded.
  const std::string text = f.registry.Expose();
  for (int i = 0; i < f.kVolumes; ++i) {
    CHECK_THAT(text,
               Catch::Contains(fmt::format(
                   "meshstor_agent_array_degraded_devices{{node=\"a\",volume=\"pvc-{}\"}} 0", i)));
  }
}

// A consumer connects to each member it has no device for. A dead node's address made the kernel
// wait its socket timeout (~3 s) once per volume with a member there, and each failed connect's
// uevents (a controller added and removed) woke the next pass at once: pass after pass blocked
// in connects while the node was down (lab agent-kill).
TEST_CASE("A dead node's address is tried once per timer or API pass, not per volume or uevent",
          "[unit][agent][api]") {
  SixVolumesOnTwoNodes f(/*a_events=*/true);
  Agent& a = *f.agents[0];
  f.cluster.SetOnline("b", false);
  f.cluster.ExpireControllers();  // the kernel gave up on b: a has no controller there now
  const int before = f.a_host->connects;
  REQUIRE(a.Pass().ok() == a.Pass().ok());  // two direct passes, each a retry
  CHECK(f.a_host->connects - before == 2);  // 12 before: one per volume and pass

  a.Run();
  REQUIRE(WaitForPasses(a, 1));
  std::this_thread::sleep_for(milliseconds(500));
  const int after_run = f.a_host->connects;
  const int64_t passes = a.passes();
  f.a_uevents.Push({.action = "remove",
                    .devpath = "/devices/virtual/nvme-fabrics/ctl/nvme9",
                    .subsystem = "nvme"});
  REQUIRE(WaitForPasses(a, passes + 1));
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(f.a_host->connects == after_run);  // a pass woken by a uevent alone does not retry
  a.Wake();                                // the timer's or an API change's pass does
  REQUIRE(WaitForPasses(a, passes + 2));
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(f.a_host->connects == after_run + 1);
}

TEST_CASE("An idle consumer observes the in-sync sets again only after a kernel event",
          "[unit][agent][api]") {
  // ObserveInSync hurries a member's exit into the CR (docs/design.md §6.1); MD takes a member
  // out only with an MD event and a device goes only with a uevent. A pass woken by neither
  // (the API, the timer) reads each array once: in its reconcile, which records the set too.
  SixVolumesOnTwoNodes f(/*a_events=*/true);
  Agent& a = *f.agents[0];
  const int64_t started = a.passes();
  a.Run();
  REQUIRE(WaitForPasses(a, started + 1));          // the first pass observes: no pass did yet
  std::this_thread::sleep_for(milliseconds(500));  // the loop's first events settle
  // The array reads of the one pass that `trigger` causes.
  auto reads_of_pass = [&](const std::function<void()>& trigger) {
    const int64_t before = a.passes();
    const int reads = f.a_md->reads;
    trigger();
    REQUIRE(WaitForPasses(a, before + 1));
    std::this_thread::sleep_for(milliseconds(200));
    CHECK(a.passes() == before + 1);  // idle: no pass wakes another
    return f.a_md->reads - reads;
  };
  CHECK(reads_of_pass([&] { a.Wake(); }) == f.kVolumes);  // 2 per array before
  CHECK(reads_of_pass([&] { f.a_md_events.Notify(); }) == 2 * f.kVolumes);
  CHECK(reads_of_pass([&] { a.Wake(); }) == f.kVolumes);
  CHECK(reads_of_pass([&] {
          f.a_uevents.Push(
              {.action = "remove", .devpath = "/devices/x/nvme1n1", .subsystem = "block"});
        }) == 2 * f.kVolumes);
  // An MD event source that broke cannot tell of exits any more: every pass observes.
  f.a_md_events.FailNext(common::Status(common::StatusCode::kInternal, "poll broke"));
  f.a_md_events.Notify();
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(reads_of_pass([&] { a.Wake(); }) == 2 * f.kVolumes);
  CHECK(reads_of_pass([&] { a.Wake(); }) == 2 * f.kVolumes);
}

TEST_CASE("An MD event wakes the agent's pass at once", "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 4ull << 30);
  sys::FakeMdEventSource md_events;
  AgentConfig config = WakeOnlyConfig(cluster);
  Agent agent(*api.client, cluster.node("a").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr, &md_events);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();
  REQUIRE(WaitForPasses(agent, 1));  // the first pass runs at start
  // Let the wake-ups of the first pass's own writes settle, then an MD event.
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t before = agent.passes();
  md_events.Notify();
  CHECK(WaitForPasses(agent, before + 1));
  agent.Stop();
  CHECK(md_events.waits() >= 1);
}

TEST_CASE("A uevent wakes the agent's pass before the timer, and Stop ends the loop at once",
          "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 4ull << 30);
  sys::FakeUeventSource uevents;
  AgentConfig config = WakeOnlyConfig(cluster);
  Agent agent(*api.client, cluster.node("a").Kernel(), &uevents, config,
              common::time::RealClock::Get(), nullptr);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();
  REQUIRE(WaitForPasses(agent, 1));  // the first pass runs at start
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t before = agent.passes();
  uevents.Push({.action = "add", .devpath = "/devices/x/nvme1n1", .subsystem = "block"});
  CHECK(WaitForPasses(agent, before + 1));
  // The loop took the event (the source is empty again) and does not spin on it.
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(agent.passes() <= before + 2);
  CHECK(!uevents.Next(milliseconds(0)).value().has_value());

  // Stop with the hour-long timer pending: the loop ends at once.
  const auto started = std::chrono::steady_clock::now();
  agent.Stop();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
}

TEST_CASE("Wake-ups before a pass begins make one pass", "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 4ull << 30);
  boost::asio::io_context io;
  AgentConfig config;
  config.settings.node = "a";
  config.settings.address = cluster.PeersView().at("a").address;
  config.simulated = true;
  config.resync = std::chrono::hours(1);
  config.io = &io;
  Agent agent(*api.client, cluster.node("a").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();  // posts the first pass; the io_context does not run yet
  for (int i = 0; i < 100; ++i) agent.Wake();
  io.run_for(milliseconds(1500));
  CHECK(agent.passes() >= 1);
  // Our own inventory write wakes nobody; the hundred wake-ups were folded into the first pass.
  CHECK(agent.passes() <= 2);

  // A wake-up while the loop is idle runs one more pass, before the hour-long timer.
  const int64_t before = agent.passes();
  agent.Wake();
  agent.Wake();
  io.run_for(milliseconds(1000));
  CHECK(agent.passes() == before + 1);

  // Asked to stop, the agent leaves the io_context without work: run() returns at once.
  agent.RequestStop();
  io.restart();
  const auto started = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(10));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  agent.Stop();
}

// Node `node`'s drive nvme0n1 as its agent reports it (status written after the create).
void PutPeerDrive(ApiFixture& api, const std::string& node, const std::string& address) {
  v1::MeshStorNodeDevice nd;
  nd.metadata.name = v1::NodeDeviceName(node, "nvme0n1");
  nd.spec.node_name = node;
  nd.spec.device = "nvme0n1";
  auto created =
      api.client->Create(common::kube::MeshStorNodeDevices(), "", v1::EncodeMeshStorNodeDevice(nd));
  REQUIRE(created.ok());
  auto obj = v1::DecodeMeshStorNodeDevice(*created);
  REQUIRE(obj.ok());
  auto& s = obj->status;
  s.device_path = "/dev/nvme0n1";
  s.size_bytes = int64_t{4} << 30;
  s.sector_size = 4096;
  s.biggest_free_extent_bytes = int64_t{4} << 30;
  s.host_nqn = "nqn.2014-08.org.nvmexpress:uuid:" + node;
  s.transport_addresses = {{v1::Transport::kTcp, address, 4420}};
  s.updated_at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  REQUIRE(api.client
              ->UpdateStatus(common::kube::MeshStorNodeDevices(), {"", nd.metadata.name},
                             v1::EncodeMeshStorNodeDevice(*obj))
              .ok());
}

// Edits the status of an existing drive object as its agent would (fresh copy, status update).
void EditPeerDrive(ApiFixture& api, const std::string& name,
                   const std::function<void(v1::MeshStorNodeDeviceStatus&)>& edit) {
  auto raw = api.client->Get(common::kube::MeshStorNodeDevices(), {"", name});
  REQUIRE(raw.ok());
  auto obj = v1::DecodeMeshStorNodeDevice(*raw);
  REQUIRE(obj.ok());
  edit(obj->status);
  REQUIRE(api.client
              ->UpdateStatus(common::kube::MeshStorNodeDevices(), {"", name},
                             v1::EncodeMeshStorNodeDevice(*obj))
              .ok());
}

// Steady state (issue 16): every agent refreshes its drives' updatedAt at least every 30 s, and
// free space changes with every placement. At 100 nodes that woke each agent ~6 times a second
// for nothing: a pass reads other nodes' drives for their host NQN and address only.
TEST_CASE("Another node's drive heartbeat does not wake the agent; its new address does",
          "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 4ull << 30);
  PutPeerDrive(api, "b", "192.0.2.2");
  AgentConfig config = WakeOnlyConfig(cluster);
  Agent agent(*api.client, cluster.node("a").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();
  REQUIRE(WaitForPasses(agent, 1));
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t before = agent.passes();

  for (int i = 1; i <= 3; ++i) {
    EditPeerDrive(api, "b-nvme0n1", [&](v1::MeshStorNodeDeviceStatus& s) {
      *s.updated_at += std::chrono::seconds(30 * i);
      *s.biggest_free_extent_bytes -= int64_t{1} << 20;
    });
  }
  std::this_thread::sleep_for(milliseconds(800));
  CHECK(agent.passes() == before);

  // What a pass does use: the peer's address (and host NQN).
  EditPeerDrive(api, "b-nvme0n1", [](v1::MeshStorNodeDeviceStatus& s) {
    s.transport_addresses[0].address = "192.0.2.22";
  });
  CHECK(WaitForPasses(agent, before + 1));
  std::this_thread::sleep_for(milliseconds(300));
  const int64_t after_address = agent.passes();
  EditPeerDrive(api, "b-nvme0n1", [](v1::MeshStorNodeDeviceStatus& s) { s.host_nqn += "-new"; });
  CHECK(WaitForPasses(agent, after_address + 1));
  agent.Stop();
}

// A volume change wakes the agents of the nodes it involves only, not every agent of the
// cluster (at 1000 nodes, every status write of every volume woke 1000 agents).
TEST_CASE("A volume that does not involve the node does not wake its agent", "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  cluster.AddNode("a").AddDrive("nvme0n1", 4ull << 30);
  AgentConfig config = WakeOnlyConfig(cluster);
  Agent agent(*api.client, cluster.node("a").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr);
  REQUIRE(agent.Start().ok());
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();
  REQUIRE(WaitForPasses(agent, 1));
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t before = agent.passes();

  v1::MeshStorVolume v = testing::Raid1Volume();
  v.metadata.name = "pvc-elsewhere";
  v.spec.consumer_node = "b";
  v.spec.members = {MakeMember(0, "b", v1::MemberRole::kLocal, 1),
                    MakeMember(1, "c", v1::MemberRole::kRemote, 1)};
  REQUIRE(
      api.client->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());
  std::this_thread::sleep_for(milliseconds(800));
  CHECK(agent.passes() == before);

  // The same volume moving a member to this node wakes it.
  auto got = api.Volume("pvc-elsewhere");
  REQUIRE(got.ok());
  got->spec.members[1] = MakeMember(1, "a", v1::MemberRole::kRemote, 1);
  REQUIRE(api.client
              ->Update(common::kube::MeshStorVolumes(), {"", "pvc-elsewhere"},
                       v1::EncodeMeshStorVolume(*got))
              .ok());
  CHECK(WaitForPasses(agent, before + 1));
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t involved = agent.passes();
  // And moving it away again too (the partition here is to be removed).
  got = api.Volume("pvc-elsewhere");
  REQUIRE(got.ok());
  got->spec.members[1] = MakeMember(1, "c", v1::MemberRole::kRemote, 1);
  REQUIRE(api.client
              ->Update(common::kube::MeshStorVolumes(), {"", "pvc-elsewhere"},
                       v1::EncodeMeshStorVolume(*got))
              .ok());
  CHECK(WaitForPasses(agent, involved + 1));
  agent.Stop();
}

// What `--simulate N` shares among its agents: one informer per resource and the volumes'
// per-node index; Config() is a simulated agent's configuration on them.
struct SharedInformers {
  explicit SharedInformers(common::kube::Client& client)
      : volumes(client, common::kube::MeshStorVolumes(), v1::DecodeMeshStorVolume, {},
                common::time::RealClock::Get()),
        devices(client, common::kube::MeshStorNodeDevices(), v1::DecodeMeshStorNodeDevice, {},
                common::time::RealClock::Get()),
        index(volumes) {}
  AgentConfig Config(const std::string& node, const Peers& addresses) {
    AgentConfig config;
    config.settings.node = node;
    config.settings.address = addresses.at(node).address;
    config.simulated = true;
    config.shared_volumes = &index;
    config.shared_devices = &devices;
    return config;
  }
  common::kube::Informer<v1::MeshStorVolume> volumes;
  common::kube::Informer<v1::MeshStorNodeDevice> devices;
  VolumeIndex index;
};

// --simulate N: the agents of one process share one informer per resource (one list and watch
// each instead of N, one cached copy of each object); each still wakes for its own node only.
TEST_CASE("Agents sharing informers watch once and each wakes for its own volumes",
          "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  for (const char* n : {"a", "b", "c"}) cluster.AddNode(n).AddDrive("nvme0n1", 4ull << 30);
  const Peers addresses = cluster.PeersView();
  SharedInformers shared(*api.client);
  auto& volumes = shared.volumes;
  auto& devices = shared.devices;
  api.server->faults().ClearRequests();
  std::map<std::string, std::unique_ptr<Agent>> agents;
  for (const char* n : {"a", "b", "c"}) {
    AgentConfig config = shared.Config(n, addresses);
    config.resync = std::chrono::hours(1);
    agents[n] = std::make_unique<Agent>(*api.client, cluster.node(n).Kernel(), nullptr, config,
                                        common::time::RealClock::Get(), nullptr);
  }
  volumes.Start();
  devices.Start();
  for (auto& [n, a] : agents) {
    REQUIRE(a->Start().ok());
    REQUIRE(a->WaitForSync(std::chrono::seconds(10)));
    a->Run();
  }
  // Every agent publishes its drive through the shared cache.
  for (int i = 0; i < 100 && devices.List().size() < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  CHECK(devices.List().size() == 3);
  std::this_thread::sleep_for(milliseconds(500));
  auto watches = [&](std::string_view resource) {
    size_t n = 0;
    for (const auto& r : api.server->faults().Requests()) {
      if (r.method == "GET" && r.path.ends_with(resource) &&
          r.query.find("watch=") != std::string::npos) {
        ++n;
      }
    }
    return n;
  };
  CHECK(watches("/meshstorvolumes") == 1);
  CHECK(watches("/meshstornodedevices") == 1);

  // A volume of b and c wakes their agents, not a's.
  std::map<std::string, int64_t> before;
  for (auto& [n, a] : agents) before[n] = a->passes();
  v1::MeshStorVolume v = testing::Raid1Volume();
  v.metadata.name = "pvc-bc";
  v.spec.consumer_node = "b";
  v.spec.members = {MakeMember(0, "b", v1::MemberRole::kLocal, 1),
                    MakeMember(1, "c", v1::MemberRole::kRemote, 1)};
  REQUIRE(
      api.client->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());
  CHECK(WaitForPasses(*agents["b"], before["b"] + 1));
  CHECK(WaitForPasses(*agents["c"], before["c"] + 1));
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(agents["a"]->passes() == before["a"]);

  for (auto& [n, a] : agents) a->Stop();
  volumes.Stop();
  devices.Stop();
}

// A pass looks only at the volumes of its node: what it costs does not grow with the cluster
// (1000 nodes x 10000 volumes: each pass walked all 10000 to find its ~20).
TEST_CASE("A pass reads only the volumes that involve its node", "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  for (const char* n : {"a", "b", "c"}) cluster.AddNode(n).AddDrive("nvme0n1", 16ull << 30);
  const Peers addresses = cluster.PeersView();
  SharedInformers shared(*api.client);
  auto& volumes = shared.volumes;
  auto& devices = shared.devices;
  std::map<std::string, std::unique_ptr<Agent>> agents;
  for (const char* n : {"a", "b", "c"}) {
    AgentConfig config = shared.Config(n, addresses);
    agents[n] = std::make_unique<Agent>(*api.client, cluster.node(n).Kernel(), nullptr, config,
                                        common::time::RealClock::Get(), nullptr);
  }
  // Handlers run in the order they were added: once this one saw a change, the agents' view
  // of it is up to date too. Each change is noted as "name@resourceVersion" or "name@deleted".
  std::mutex seen_mu;
  std::set<std::string> seen;
  volumes.AddHandler([&](const auto& change) {
    std::lock_guard lock(seen_mu);
    seen.insert(change.key.name + "@" +
                (change.new_obj ? change.new_obj->metadata.resource_version : "deleted"));
  });
  auto wait_seen = [&](const std::string& what) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(seen_mu);
        if (seen.count(what)) return true;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  };
  volumes.Start();
  devices.Start();
  REQUIRE(agents["a"]->WaitForSync(std::chrono::seconds(10)));
  auto apply = [&](const v1::MeshStorVolume& v, bool create) {
    auto raw = create ? api.client->Create(common::kube::MeshStorVolumes(), "",
                                           v1::EncodeMeshStorVolume(v))
                      : api.client->Update(common::kube::MeshStorVolumes(), {"", v.metadata.name},
                                           v1::EncodeMeshStorVolume(v));
    REQUIRE(raw.ok());
    auto written = v1::DecodeMeshStorVolume(*raw);
    REQUIRE(written.ok());
    REQUIRE(wait_seen(v.metadata.name + "@" + written->metadata.resource_version));
  };
  // The volumes one pass of `node` reads from the cache (the loop is not running: passes are
  // the test's).
  auto examined = [&](const std::string& node) {
    const int64_t before = agents[node]->volumes_examined();
    (void)agents[node]->Pass();
    return agents[node]->volumes_examined() - before;
  };

  // Ten volumes of b and c, one of a and b.
  for (int i = 0; i < 10; ++i) {
    v1::MeshStorVolume v = testing::Raid1Volume();
    v.metadata.name = "pvc-bc" + std::to_string(i);
    v.spec.consumer_node = "b";
    v.spec.members = {MakeMember(0, "b", v1::MemberRole::kLocal, i + 1),
                      MakeMember(1, "c", v1::MemberRole::kRemote, i + 1)};
    apply(v, true);
  }
  v1::MeshStorVolume ab = testing::Raid1Volume();
  ab.metadata.name = "pvc-ab";
  apply(ab, true);
  CHECK(examined("a") == 1);
  CHECK(examined("b") == 11);
  CHECK(examined("c") == 10);

  // A member moved here: a's passes read that volume too, from the next pass on.
  auto moved = api.Volume("pvc-bc0");
  REQUIRE(moved.ok());
  moved->spec.members[1] = MakeMember(1, "a", v1::MemberRole::kRemote, 1);
  apply(*moved, false);
  CHECK(examined("a") == 2);

  // A deleted volume is read by nobody's pass.
  REQUIRE(api.client->Delete(common::kube::MeshStorVolumes(), {"", "pvc-ab"}).ok());
  REQUIRE(wait_seen("pvc-ab@deleted"));
  CHECK(examined("a") == 1);
  CHECK(examined("b") == 10);

  for (auto& [n, a] : agents) a->Stop();
  volumes.Stop();
  devices.Stop();
}

TEST_CASE("Agents sharing one io_context and pass strand skip queued passes once stopped",
          "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  for (const char* n : {"a", "b", "c"}) cluster.AddNode(n).AddDrive("nvme0n1", 4ull << 30);
  const Peers addresses = cluster.PeersView();
  boost::asio::io_context io;
  const PassStrand strand = boost::asio::make_strand(io);
  std::vector<std::unique_ptr<Agent>> agents;
  for (const char* n : {"a", "b", "c"}) {
    AgentConfig config;
    config.settings.node = n;
    config.settings.address = addresses.at(n).address;
    config.simulated = true;
    config.resync = milliseconds(100);  // the timers are always armed
    config.io = &io;
    config.pass_strand = strand;
    agents.push_back(std::make_unique<Agent>(*api.client, cluster.node(n).Kernel(), nullptr, config,
                                             common::time::RealClock::Get(), nullptr));
    REQUIRE(agents.back()->Start().ok());
    REQUIRE(agents.back()->WaitForSync(std::chrono::seconds(10)));
  }
  for (auto& a : agents) a->Run();  // each posts its first pass on the shared strand
  agents[1]->RequestStop();         // queued, not begun: skipped
  std::thread second([&] { io.run_for(std::chrono::seconds(10)); });
  io.run_for(milliseconds(800));
  CHECK(agents[0]->passes() >= 2);  // the 100 ms timer keeps passing
  CHECK(agents[1]->passes() == 0);
  CHECK(agents[2]->passes() >= 2);

  // Stopping the others ends the shared loop: both threads return promptly (the process exits
  // within 2 s of SIGTERM).
  const auto started = std::chrono::steady_clock::now();
  agents[0]->RequestStop();
  agents[2]->RequestStop();
  second.join();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  const int64_t done = agents[0]->passes() + agents[2]->passes();
  io.restart();
  io.run_for(milliseconds(300));
  CHECK(agents[0]->passes() + agents[2]->passes() == done);
  for (auto& a : agents) a->Stop();
}

// The agent process runs its io_context (threads started in main) before the informers list. A
// pass woken by the drives' list while the volumes were not listed yet saw no volume and
// collected every export and import of the node as garbage: in the lab's agent-kill case each
// restart of an exporter's agent cut the consumer off from its copy, mid-rebuild.
TEST_CASE("No pass runs before Run(): a drive listed before the volumes collects no export",
          "[unit][agent][api]") {
  ApiFixture api;
  sim::SimCluster cluster;
  for (const char* n : {"a", "b"}) cluster.AddNode(n).AddDrive("nvme0n1", 4ull << 30);
  const Peers addresses = cluster.PeersView();
  PutPeerDrive(api, "a", addresses.at("a").address);  // its add wakes b's agent
  // An export of b to a, as an earlier run of b's agent left it.
  auto nqn = sys::SubsystemNqn("b", "a");
  REQUIRE(nqn.ok());
  auto& nvmet = *cluster.node("b").Kernel().nvmet;
  REQUIRE(
      nvmet.EnsureSubsystem(*nqn, sys::SubsystemSerial(*nqn), {"nqn.2014-08.org.nvmexpress:uuid:a"})
          .ok());
  REQUIRE(nvmet
              .EnsureNamespace(*nqn, {1, "/dev/nvme0n1p1", "2b6e3c4a-1d2f-4e5a-8b9c-0d1e2f3a4b5c",
                                      /*enabled=*/false})
              .ok());

  SharedInformers shared(*api.client);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });  // running before any informer lists, as in main
  AgentConfig config = shared.Config("b", addresses);
  config.resync = std::chrono::hours(1);
  config.io = &io;
  Agent agent(*api.client, cluster.node("b").Kernel(), nullptr, config,
              common::time::RealClock::Get(), nullptr);
  shared.devices.Start();  // the drives are listed; the volumes not yet
  REQUIRE(shared.devices.WaitForSync(std::chrono::seconds(10)));
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(agent.passes() == 0);
  auto subsystems = nvmet.ListSubsystems();
  REQUIRE(subsystems.ok());
  CHECK(subsystems->size() == 1);

  shared.volumes.Start();
  REQUIRE(agent.WaitForSync(std::chrono::seconds(10)));
  agent.Run();
  CHECK(WaitForPasses(agent, 1));
  agent.Stop();
  work.reset();
  runner.join();
  shared.volumes.Stop();
  shared.devices.Stop();
}

}  // namespace
}  // namespace agent
