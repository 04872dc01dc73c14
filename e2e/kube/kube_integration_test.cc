// Integration tests of the Kubernetes client stack (transport, client, informer, leader
// election, event recorder) against an API server.
//
// By default each test starts the in-repo API test server (tools/apiserver) with crds/. When
// MESHSTOR_TEST_KUBECONFIG names a kubeconfig, the same tests run against that cluster instead:
// they install crds/ if missing, create their own uniquely named objects and delete them. Tests
// that need fault injection (dropped watches, compaction, injected errors) run only against the
// test server, which is the only place those faults can be caused on demand.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/api/core_codec.h"
#include "common/api/v1alpha1/codec.h"
#include "common/config/yaml_json.h"
#include "common/kube/client.h"
#include "common/kube/event_recorder.h"
#include "common/kube/http_transport.h"
#include "common/kube/informer.h"
#include "common/kube/kubeconfig.h"
#include "common/kube/leader_election.h"
#include "common/time/clock.h"
#include "tools/apiserver/test_apiserver.h"

namespace e2e {
namespace {

namespace fs = std::filesystem;
namespace kube = common::kube;
namespace v1 = common::api::v1alpha1;
using common::StatusCode;
using std::chrono::milliseconds;
using std::chrono::seconds;

const fs::path kRoot = MESHSTOR_SOURCE_DIR;

std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:08x}", rng() & 0xffffffff);
}

// Polls `pred` in real time; integration tests wait for a real server.
bool Eventually(const std::function<bool()>& pred, milliseconds timeout = seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

// One API server (test server or real) and a client to it.
class Cluster {
 public:
  Cluster() {
    const char* kubeconfig = std::getenv("MESHSTOR_TEST_KUBECONFIG");
    kube::RestConfig config;
    if (kubeconfig != nullptr && *kubeconfig != '\0') {
      auto loaded = kube::LoadKubeconfig(kubeconfig);
      INFO(loaded.status().ToString());
      REQUIRE(loaded.ok());
      config = *loaded;
    } else {
      auto server = tools::apiserver::TestApiServer::Start(
          {.crd_dir = (kRoot / "crds").string(), .bookmark_interval = milliseconds(200)});
      INFO(server.status().ToString());
      REQUIRE(server.ok());
      server_ = std::move(server).value();
      config.server = server_->url();
    }
    auto transport = kube::HttpTransport::Create(config);
    INFO(transport.status().ToString());
    REQUIRE(transport.ok());
    transport_ = std::move(transport).value();
    client_ = std::make_unique<kube::Client>(*transport_, seconds(10));
    if (!server_) InstallCrds();
  }

  kube::Client& client() { return *client_; }
  kube::Transport& transport() { return *transport_; }
  // The test server, or nullptr against a real cluster.
  tools::apiserver::TestApiServer* test_server() { return server_.get(); }

 private:
  void InstallCrds() {
    for (const char* file : {"meshstorvolumes.yaml", "meshstornodedevices.yaml"}) {
      auto json = common::config::YamlFileToJson((kRoot / "crds" / file).string());
      REQUIRE(json.ok());
      auto created = client_->Create(kube::CustomResourceDefinitions(), "", *json);
      if (!created.ok()) REQUIRE(created.status().code() == StatusCode::kAlreadyExists);
    }
    REQUIRE(Eventually([&] {
      return client_->List(kube::MeshStorVolumes(), "", {.limit = 1}).ok() &&
             client_->List(kube::MeshStorNodeDevices(), "", {.limit = 1}).ok();
    }));
  }

  std::unique_ptr<tools::apiserver::TestApiServer> server_;
  std::unique_ptr<kube::HttpTransport> transport_;
  std::unique_ptr<kube::Client> client_;
};

v1::MeshStorVolume NewVolume(const std::string& name) {
  v1::MeshStorVolume v;
  v.metadata.name = name;
  v.spec.capacity_bytes = 1024 * v1::kMiB;
  v.spec.replica_count = 2;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  return v;
}

v1::MeshStorVolume Decode(const common::Result<std::string>& json) {
  INFO(json.status().ToString());
  REQUIRE(json.ok());
  auto v = v1::DecodeMeshStorVolume(*json);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return *v;
}

// Deletes the volume at the end of a test, removing finalizers first.
struct VolumeCleanup {
  kube::Client& client;
  std::string name;
  ~VolumeCleanup() {
    (void)client.MergePatch(kube::MeshStorVolumes(), {"", name},
                            R"({"metadata":{"finalizers":null}})");
    (void)client.Delete(kube::MeshStorVolumes(), {"", name});
  }
};

TEST_CASE("CRUD, conflicts, status subresource and finalizers", "[integration][kube]") {
  Cluster cluster;
  kube::Client& c = cluster.client();
  const std::string name = "it-crud-" + RandomSuffix();
  VolumeCleanup cleanup{c, name};

  v1::MeshStorVolume v = NewVolume(name);
  v.metadata.finalizers = {"csi.meshstor.io/teardown"};
  v1::MeshStorVolume created =
      Decode(c.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)));
  CHECK(created.metadata.generation == 1);
  CHECK_FALSE(created.metadata.uid.empty());
  CHECK(created.metadata.creation_timestamp.has_value());

  // Same name again: AlreadyExists.
  auto again = c.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v));
  CHECK(again.status().code() == StatusCode::kAlreadyExists);

  // Spec update bumps generation; a stale resourceVersion is a conflict (Aborted).
  v1::MeshStorVolume edit = created;
  edit.spec.consumer_node = "node-a";
  v1::MeshStorVolume updated =
      Decode(c.Update(kube::MeshStorVolumes(), {"", name}, v1::EncodeMeshStorVolume(edit)));
  CHECK(updated.metadata.generation == 2);
  CHECK(updated.spec.consumer_node == "node-a");
  edit.spec.consumer_node = "node-b";  // still carries the old resourceVersion
  auto stale = c.Update(kube::MeshStorVolumes(), {"", name}, v1::EncodeMeshStorVolume(edit));
  CHECK(stale.status().code() == StatusCode::kAborted);
  CHECK(stale.status().message().find("the object has been modified") != std::string::npos);

  // Status goes through /status only and does not bump generation.
  v1::MeshStorVolume with_status = updated;
  with_status.status.phase = v1::VolumePhase::kRequested;
  with_status.spec.consumer_node = "ignored-by-status";
  v1::MeshStorVolume status_written = Decode(
      c.UpdateStatus(kube::MeshStorVolumes(), {"", name}, v1::EncodeMeshStorVolume(with_status)));
  CHECK(status_written.status.phase == v1::VolumePhase::kRequested);
  CHECK(status_written.spec.consumer_node == "node-a");
  CHECK(status_written.metadata.generation == 2);

  // A merge patch of the main resource ignores status.
  v1::MeshStorVolume patched =
      Decode(c.MergePatch(kube::MeshStorVolumes(), {"", name},
                          R"({"spec":{"capacityBytes":2147483648},"status":{"phase":"Synced"}})"));
  CHECK(patched.spec.capacity_bytes == 2147483648);
  CHECK(patched.status.phase == v1::VolumePhase::kRequested);
  CHECK(patched.metadata.generation == 3);

  // Schema violations are InvalidArgument with the server's message naming the field.
  auto invalid =
      c.MergePatch(kube::MeshStorVolumes(), {"", name}, R"({"spec":{"sectorSize":512}})");
  CHECK(invalid.status().code() == StatusCode::kInvalidArgument);
  CHECK(invalid.status().message().find("sectorSize is immutable") != std::string::npos);
  // More copies would need a reshape of the running array: replicaCount is fixed at creation.
  auto more_copies =
      c.MergePatch(kube::MeshStorVolumes(), {"", name}, R"({"spec":{"replicaCount":3}})");
  CHECK(more_copies.status().code() == StatusCode::kInvalidArgument);
  CHECK(more_copies.status().message().find("replicaCount is immutable") != std::string::npos);

  // Delete with a finalizer: deletionTimestamp set, object stays until the finalizer goes.
  REQUIRE(c.Delete(kube::MeshStorVolumes(), {"", name}).ok());
  v1::MeshStorVolume deleting = Decode(c.Get(kube::MeshStorVolumes(), {"", name}));
  CHECK(deleting.metadata.deletion_timestamp.has_value());
  auto removed =
      c.MergePatch(kube::MeshStorVolumes(), {"", name},
                   fmt::format(R"({{"metadata":{{"resourceVersion":"{}","finalizers":null}}}})",
                               deleting.metadata.resource_version));
  INFO(removed.status().ToString());
  REQUIRE(removed.ok());
  CHECK(Eventually([&] {
    return c.Get(kube::MeshStorVolumes(), {"", name}).status().code() == StatusCode::kNotFound;
  }));
  CHECK(c.Delete(kube::MeshStorVolumes(), {"", name}).code() == StatusCode::kNotFound);
}

TEST_CASE("List pages with limit and continue, and selects by label", "[integration][kube]") {
  Cluster cluster;
  kube::Client& c = cluster.client();
  const std::string run = RandomSuffix();
  std::vector<std::unique_ptr<VolumeCleanup>> cleanups;
  for (int i = 0; i < 7; ++i) {
    std::string name = fmt::format("it-page-{}-{}", run, i);
    cleanups.push_back(std::make_unique<VolumeCleanup>(VolumeCleanup{c, name}));
    v1::MeshStorVolume v = NewVolume(name);
    v.metadata.labels = {{"it-run", run}, {"parity", i % 2 ? "odd" : "even"}};
    REQUIRE(c.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());
  }
  auto first = c.List(kube::MeshStorVolumes(), "", {.label_selector = "it-run=" + run, .limit = 3});
  REQUIRE(first.ok());
  CHECK(first->items.size() == 3);
  CHECK_FALSE(first->continue_token.empty());
  auto all =
      c.ListAll(kube::MeshStorVolumes(), "", {.label_selector = "it-run=" + run, .limit = 3});
  REQUIRE(all.ok());
  CHECK(all->items.size() == 7);
  CHECK(all->continue_token.empty());
  auto odd = c.ListAll(kube::MeshStorVolumes(), "",
                       {.label_selector = fmt::format("it-run={},parity=odd", run)});
  REQUIRE(odd.ok());
  CHECK(odd->items.size() == 3);
  auto bad = c.List(kube::MeshStorVolumes(), "", {.label_selector = "a in (b"});
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
}

using VolumeInformer = kube::Informer<v1::MeshStorVolume>;

std::unique_ptr<VolumeInformer> StartInformer(kube::Client& c, const std::string& selector,
                                              std::vector<std::string>* log, std::mutex* mu) {
  auto inf = std::make_unique<VolumeInformer>(
      c, kube::MeshStorVolumes(),
      [](std::string_view json) { return v1::DecodeMeshStorVolume(json); },
      kube::InformerOptions{.label_selector = selector,
                            .initial_backoff = milliseconds(50),
                            .max_backoff = milliseconds(500)},
      common::time::RealClock::Get());
  inf->AddHandler([log, mu](const VolumeInformer::Change& ch) {
    std::lock_guard<std::mutex> lock(*mu);
    const char* what = !ch.old_obj ? "add" : !ch.new_obj ? "delete" : "update";
    log->push_back(fmt::format("{} {}", what, ch.key.name));
  });
  inf->Start();
  REQUIRE(inf->WaitForSync(seconds(20)));
  return inf;
}

TEST_CASE("Informer follows adds, updates and deletes", "[integration][kube]") {
  Cluster cluster;
  kube::Client& c = cluster.client();
  const std::string run = RandomSuffix();
  const std::string name = "it-inf-" + run;
  VolumeCleanup cleanup{c, name};
  std::mutex mu;
  std::vector<std::string> log;
  auto inf = StartInformer(c, "it-run=" + run, &log, &mu);
  CHECK(inf->List().empty());

  v1::MeshStorVolume v = NewVolume(name);
  v.metadata.labels = {{"it-run", run}};
  REQUIRE(c.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());
  REQUIRE(Eventually([&] { return inf->Get({"", name}).ok(); }));
  REQUIRE(
      c.MergePatch(kube::MeshStorVolumes(), {"", name}, R"({"spec":{"consumerNode":"n1"}})").ok());
  REQUIRE(Eventually([&] {
    auto got = inf->Get({"", name});
    return got.ok() && (*got)->spec.consumer_node == "n1";
  }));
  REQUIRE(c.Delete(kube::MeshStorVolumes(), {"", name}).ok());
  REQUIRE(Eventually([&] {
    return inf->Get({"", name}).status().code() == StatusCode::kNotFound;
  }));
  std::lock_guard<std::mutex> lock(mu);
  CHECK(log == std::vector<std::string>{"add " + name, "update " + name, "delete " + name});
}

TEST_CASE("Informer resumes after dropped watches and relists after 410 Gone",
          "[integration][kube][faults]") {
  Cluster cluster;
  auto* server = cluster.test_server();
  if (server == nullptr) {
    WARN("needs the API test server to drop watches and compact history; skipped");
    return;
  }
  kube::Client& c = cluster.client();
  const std::string run = RandomSuffix();
  std::mutex mu;
  std::vector<std::string> log;
  auto inf = StartInformer(c, "it-run=" + run, &log, &mu);
  auto create = [&](const std::string& name) {
    v1::MeshStorVolume v = NewVolume(name);
    v.metadata.labels = {{"it-run", run}};
    REQUIRE(c.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v)).ok());
  };

  // A dropped connection: the informer re-watches from its resourceVersion, no relist.
  REQUIRE(Eventually([&] { return server->WatchCount() >= 1; }));
  CHECK(server->faults().DropWatches() >= 1);
  create("it-drop-" + run);
  REQUIRE(Eventually([&] { return inf->Get({"", "it-drop-" + run}).ok(); }));
  CHECK(inf->RelistCount() == 0);

  // History compacted while the watch is down, and an object deleted meanwhile: the re-watch
  // gets 410, the informer relists and reports the deletion it missed.
  server->faults().FailNext("GET", "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes", 503, 2);
  server->faults().DropWatches();
  REQUIRE(c.Delete(kube::MeshStorVolumes(), {"", "it-drop-" + run}).ok());
  create("it-gone-" + run);
  server->faults().CompactHistory();
  REQUIRE(Eventually([&] { return inf->Get({"", "it-gone-" + run}).ok(); }));
  CHECK(inf->Get({"", "it-drop-" + run}).status().code() == StatusCode::kNotFound);
  CHECK(inf->RelistCount() >= 1);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(std::count(log.begin(), log.end(), "delete it-drop-" + run) == 1);
  CHECK(std::count(log.begin(), log.end(), "add it-gone-" + run) == 1);
}

TEST_CASE("Injected server errors map to retryable codes and keep the message",
          "[integration][kube][faults]") {
  Cluster cluster;
  auto* server = cluster.test_server();
  if (server == nullptr) {
    WARN("needs the API test server to inject errors; skipped");
    return;
  }
  kube::Client& c = cluster.client();
  server->faults().FailNext("GET", "/apis/csi.meshstor.io", 500, 1);
  server->faults().FailNext("GET", "/apis/csi.meshstor.io", 429, 1, 1);
  auto first = c.List(kube::MeshStorVolumes(), "");
  CHECK(first.status().code() == StatusCode::kUnavailable);
  CHECK(first.status().IsRetryable());
  auto second = c.List(kube::MeshStorVolumes(), "");
  CHECK(second.status().code() == StatusCode::kUnavailable);
  CHECK(c.List(kube::MeshStorVolumes(), "").ok());

  // A slow server is a deadline, not a hang.
  server->faults().Delay("GET", "/apis/csi.meshstor.io", milliseconds(1500), 1);
  kube::Client impatient(cluster.transport(), milliseconds(300));
  // The keep-alive connection from the calls above is reused: a timeout on it must not be
  // mistaken for a stale connection and silently retried.
  auto slow = impatient.List(kube::MeshStorVolumes(), "");
  CHECK(slow.status().code() == StatusCode::kDeadlineExceeded);
}

kube::LeaderElectionConfig Election(const std::string& lease, const std::string& id) {
  return kube::LeaderElectionConfig{.lease_namespace = "default",
                                    .lease_name = lease,
                                    .identity = id,
                                    .lease_duration = milliseconds(3000),
                                    .renew_deadline = milliseconds(2000),
                                    .retry_period = milliseconds(200)};
}

struct Candidate {
  std::unique_ptr<kube::LeaderElector> elector;
  std::thread thread;
  std::atomic<bool> leading{false};
  std::atomic<int> stopped{0};
  common::Status result;

  Candidate(kube::Client& c, const kube::LeaderElectionConfig& config) {
    elector = std::make_unique<kube::LeaderElector>(
        c, common::time::RealClock::Get(), config,
        kube::LeaderCallbacks{.on_started_leading = [this] { leading = true; },
                              .on_stopped_leading =
                                  [this] {
                                    leading = false;
                                    ++stopped;
                                  }});
    thread = std::thread([this] { result = elector->Run(); });
  }
  void Stop() {
    elector->Stop();
    if (thread.joinable()) thread.join();
  }
  ~Candidate() { Stop(); }
};

TEST_CASE("Leader election: one leader, hand-over on release and on expiry",
          "[integration][kube]") {
  Cluster cluster;
  kube::Client& c = cluster.client();
  const std::string lease = "it-lease-" + RandomSuffix();
  struct LeaseCleanup {
    kube::Client& c;
    std::string name;
    ~LeaseCleanup() { (void)c.Delete(kube::Leases(), {"default", name}); }
  } cleanup{c, lease};

  auto a = std::make_unique<Candidate>(c, Election(lease, "candidate-a"));
  REQUIRE(Eventually([&] { return a->leading.load(); }));
  Candidate b(c, Election(lease, "candidate-b"));
  // b sees a as the leader and does not take over while a renews.
  std::this_thread::sleep_for(milliseconds(3500));
  CHECK(a->leading);
  CHECK_FALSE(b.leading);
  CHECK(b.elector->Leader() == "candidate-a");

  // a stops and releases: b takes over well before the lease would have expired.
  auto released_at = std::chrono::steady_clock::now();
  a->Stop();
  CHECK(a->result.ok());
  CHECK(a->stopped == 1);
  REQUIRE(Eventually([&] { return b.leading.load(); }, seconds(10)));
  CHECK(std::chrono::steady_clock::now() - released_at < milliseconds(2500));
  auto held = common::api::DecodeLease(*c.Get(kube::Leases(), {"default", lease}));
  REQUIRE(held.ok());
  CHECK(held->spec.holder_identity == "candidate-b");
  CHECK(held->spec.lease_transitions >= 1);

  // A candidate that dies without releasing (simulated by a lease renewed by a ghost that then
  // goes silent) is replaced once the lease duration has passed on the taker's clock.
  b.Stop();
  auto ghost = common::api::DecodeLease(*c.Get(kube::Leases(), {"default", lease}));
  REQUIRE(ghost.ok());
  ghost->spec.holder_identity = "ghost";
  ghost->spec.lease_duration_seconds = 2;
  ghost->spec.renew_time = std::chrono::system_clock::now();
  REQUIRE(c.Update(kube::Leases(), {"default", lease}, common::api::EncodeLease(*ghost)).ok());
  auto started = std::chrono::steady_clock::now();
  Candidate d(c, Election(lease, "candidate-d"));
  REQUIRE(Eventually([&] { return d.leading.load(); }, seconds(10)));
  CHECK(std::chrono::steady_clock::now() - started >= milliseconds(1900));
}

TEST_CASE("Leader steps down when it cannot renew", "[integration][kube][faults]") {
  Cluster cluster;
  auto* server = cluster.test_server();
  if (server == nullptr) {
    WARN("needs the API test server to fail renewals; skipped");
    return;
  }
  kube::Client& c = cluster.client();
  const std::string lease = "it-lost-" + RandomSuffix();
  Candidate a(c, Election(lease, "candidate-a"));
  REQUIRE(Eventually([&] { return a.leading.load(); }));
  server->faults().FailNext("", "/apis/coordination.k8s.io/v1/namespaces/default/leases/" + lease,
                            500, -1);
  REQUIRE(Eventually([&] { return !a.leading.load(); }, seconds(10)));
  a.thread.join();
  CHECK(a.result.code() == StatusCode::kAborted);
  CHECK(a.stopped == 1);
  server->faults().Clear();
}

TEST_CASE("Event recorder creates events and folds repeats into a series", "[integration][kube]") {
  Cluster cluster;
  kube::Client& c = cluster.client();
  const std::string name = "it-ev-" + RandomSuffix();
  {
    kube::EventRecorder recorder(
        c, common::time::RealClock::Get(),
        {.reporting_controller = "csi.meshstor.io/it", .reporting_instance = "it-0"});
    common::api::ObjectReference ref{
        "csi.meshstor.io/v1alpha1", "MeshStorVolume", "", name, "uid-" + name, ""};
    recorder.Record(ref, "Normal", "PhaseChanged", "Reconcile", "New -> Requested");
    recorder.Record(ref, "Normal", "PhaseChanged", "Reconcile", "New -> Requested");
    recorder.Record(ref, "Warning", "NotEnoughNodes", "Place", "1 of 2 nodes qualify");
    recorder.Stop();
    CHECK(recorder.sent() == 3);
    CHECK(recorder.dropped() == 0);
  }
  auto events = c.ListAll(kube::Events(), "default");
  REQUIRE(events.ok());
  int phase_events = 0, series_count = 0, warnings = 0;
  for (const auto& json : events->items) {
    auto e = common::api::DecodeEvent(json);
    REQUIRE(e.ok());
    if (e->regarding.name != name) continue;
    if (e->reason == "PhaseChanged") {
      ++phase_events;
      series_count = e->series_count;
    }
    if (e->type == "Warning") ++warnings;
    (void)c.Delete(kube::Events(), {"default", e->metadata.name});
  }
  CHECK(phase_events == 1);
  CHECK(series_count == 2);
  CHECK(warnings == 1);
}

}  // namespace
}  // namespace e2e
