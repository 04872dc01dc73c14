// The CSI services driven through a real gRPC client over a unix socket, against the in-process
// Kubernetes API test server. A simulated agent/operator (SimulatedNode) writes the status the
// node calls wait for, so the bounded waits are exercised in both directions; waits are kept
// short through the service options.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "common/api/v1alpha1/codec.h"
#include "common/api/v1alpha1/geometry.h"
#include "common/api/v1alpha1/volume_id.h"
#include "common/kube/client.h"
#include "common/kube/http_transport.h"
#include "common/kube/resource.h"
#include "common/proto/csi.grpc.pb.h"
#include "common/time/clock.h"
#include "csi-shim/parameters.h"
#include "csi-shim/server.h"
#include "tools/apiserver/test_apiserver.h"

namespace csi_shim {
namespace {

namespace fs = std::filesystem;
namespace kube = common::kube;
namespace v1 = common::api::v1alpha1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Mode = csi::v1::VolumeCapability::AccessMode;
constexpr int64_t kMiB = v1::kMiB;
constexpr int64_t kGiB = 1024 * kMiB;

const fs::path kRoot = MESHSTOR_SOURCE_DIR;

// CSI names in the external-provisioner's form are their own volume IDs.
const std::string kVol1 = "pvc-00000000-0000-4000-8000-000000000001";
const std::string kVol2 = "pvc-00000000-0000-4000-8000-000000000002";
const std::string kVolBad = "pvc-00000000-0000-4000-8000-0000000000ba";
const std::string kVolRaid10 = "pvc-00000000-0000-4000-8000-000000000010";

bool Eventually(const std::function<bool()>& pred, milliseconds timeout = seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred();
}

class FakeFsStats final : public FsStats {
 public:
  common::Result<FsUsage> Usage(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = usage_.find(path);
    if (it == usage_.end()) return common::NotFoundError("statvfs {}: no such file", path);
    return it->second;
  }
  void Set(const std::string& path, FsUsage usage) {
    std::lock_guard<std::mutex> lock(mu_);
    usage_[path] = usage;
  }

 private:
  std::mutex mu_;
  std::map<std::string, FsUsage> usage_;
};

// Plays operator and agents: for every volume, reports it staged on its consumer node (Ready,
// nodeName, stagedPath), its publish targets as published, and the current generation as
// observed. Paused, it writes nothing, so calls wait.
class SimulatedNode {
 public:
  explicit SimulatedNode(kube::Client& client) : client_(client) {
    thread_ = std::thread([this] { Run(); });
  }
  ~SimulatedNode() {
    stop_ = true;
    thread_.join();
  }
  void set_enabled(bool enabled) { enabled_ = enabled; }
  void set_degraded(bool degraded) { degraded_ = degraded; }
  void set_expanding(bool expanding) { expanding_ = expanding; }
  // The filesystem stays at its old size while set (the agent has not grown it yet).
  void set_filesystem_lagging(bool lagging) { filesystem_lagging_ = lagging; }

 private:
  void Run() {
    while (!stop_) {
      if (enabled_) Pass();
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  void Pass() {
    auto list = client_.List(kube::MeshStorVolumes(), "");
    if (!list.ok()) return;
    for (const auto& item : list->items) {
      auto v = v1::DecodeMeshStorVolume(item);
      if (!v.ok()) continue;
      v1::MeshStorVolumeStatus s = v->status;
      const bool consumed = !v->spec.consumer_node.empty();
      s.observed_generation = v->metadata.generation;
      s.phase = expanding_ ? v1::VolumePhase::kExpanding
                           : (consumed ? v1::VolumePhase::kSynced : v1::VolumePhase::kNew);
      s.node_name = v->spec.consumer_node;
      s.staged_path = consumed ? v->spec.staging_path : "";
      if (!consumed) {
        s.filesystem_bytes.reset();
      } else if (!filesystem_lagging_ || !s.filesystem_bytes) {
        s.filesystem_bytes = v->spec.capacity_bytes;
      }
      s.published_targets.clear();
      if (consumed) {
        for (const auto& t : v->spec.publish_targets) s.published_targets.push_back(t.path);
      }
      auto now = std::chrono::floor<seconds>(std::chrono::system_clock::now());
      common::api::SetCondition(s.conditions,
                                {.type = "Ready",
                                 .status = consumed ? common::api::ConditionStatus::kTrue
                                                    : common::api::ConditionStatus::kFalse,
                                 .observed_generation = v->metadata.generation,
                                 .last_transition_time = now,
                                 .reason = consumed ? "Staged" : "NotConsumed",
                                 .message = consumed ? "mounted" : "no consumer"});
      common::api::SetCondition(
          s.conditions, {.type = "Degraded",
                         .status = degraded_ ? common::api::ConditionStatus::kTrue
                                             : common::api::ConditionStatus::kFalse,
                         .observed_generation = v->metadata.generation,
                         .last_transition_time = now,
                         .reason = degraded_ ? "MemberMissing" : "AllActive",
                         .message = degraded_ ? "member 1 is missing" : "all members active"});
      if (s == v->status) continue;
      v->status = s;
      // A conflict is fine: the next pass sees the newer object.
      (void)client_.UpdateStatus(kube::MeshStorVolumes(),
                                 {.namespace_ = "", .name = v->metadata.name},
                                 v1::EncodeMeshStorVolume(*v));
    }
  }

  kube::Client& client_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> enabled_{true};
  std::atomic<bool> degraded_{false};
  std::atomic<bool> expanding_{false};
  std::atomic<bool> filesystem_lagging_{false};
  std::thread thread_;
};

struct HarnessOptions {
  milliseconds wait_timeout{5000};
  bool agent_enabled = true;
};

// API test server, the shim (controller + node "node-a" on one socket, node "node-b" on another)
// and gRPC stubs to both.
class Harness {
 public:
  explicit Harness(HarnessOptions options = {}) {
    auto server = tools::apiserver::TestApiServer::Start({.crd_dir = (kRoot / "crds").string()});
    INFO(server.status().ToString());
    REQUIRE(server.ok());
    api_ = std::move(server).value();
    auto transport = kube::HttpTransport::Create({.server = api_->url()});
    REQUIRE(transport.ok());
    transport_ = std::move(transport).value();
    client_ = std::make_unique<kube::Client>(*transport_, seconds(2));
    volumes_ =
        std::make_unique<VolumeClient>(*client_, common::time::RealClock::Get(),
                                       VolumeClient::Options{.poll_interval = milliseconds(10)});
    char tmpl[] = "/tmp/csi-shim-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    ServiceOptions services{.version = "9.9.9",
                            .node_name = "node-a",
                            .wait_timeout = options.wait_timeout,
                            .max_volumes_per_node = 7};
    auto a = CsiServer::Start({.endpoint = "unix://" + (dir_ / "a.sock").string(),
                               .controller = true,
                               .node = true,
                               .services = services},
                              *volumes_, fs_stats_);
    INFO(a.status().ToString());
    REQUIRE(a.ok());
    server_a_ = std::move(a).value();
    services.node_name = "node-b";
    auto b = CsiServer::Start(
        {.endpoint = "unix:" + (dir_ / "b.sock").string(), .node = true, .services = services},
        *volumes_, fs_stats_);
    REQUIRE(b.ok());
    server_b_ = std::move(b).value();
    auto channel_a =
        grpc::CreateChannel("unix:" + server_a_->socket_path(), grpc::InsecureChannelCredentials());
    auto channel_b =
        grpc::CreateChannel("unix:" + server_b_->socket_path(), grpc::InsecureChannelCredentials());
    identity = csi::v1::Identity::NewStub(channel_a);
    controller = csi::v1::Controller::NewStub(channel_a);
    node = csi::v1::Node::NewStub(channel_a);
    node_b = csi::v1::Node::NewStub(channel_b);
    agent_ = std::make_unique<SimulatedNode>(*client_);
    agent_->set_enabled(options.agent_enabled);
  }

  ~Harness() {
    agent_.reset();
    server_a_.reset();
    server_b_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  kube::Client& client() { return *client_; }
  tools::apiserver::TestApiServer& api() { return *api_; }
  SimulatedNode& agent() { return *agent_; }
  FakeFsStats& fs_stats() { return fs_stats_; }
  const fs::path& dir() const { return dir_; }
  VolumeClient& volumes() { return *volumes_; }

  v1::MeshStorVolume Get(const std::string& name) {
    auto v = volumes_->Get(name);
    INFO(v.status().ToString());
    REQUIRE(v.ok());
    return *v;
  }

  // A drive on `node_name` with `free` bytes in its biggest free extent.
  void AddDrive(const std::string& node_name, const std::string& dev, int64_t free,
                int32_t sector = 4096) {
    v1::MeshStorNodeDevice d;
    d.metadata.name = v1::NodeDeviceName(node_name, dev);
    d.spec.node_name = node_name;
    d.spec.device = dev;
    auto created =
        client_->Create(kube::MeshStorNodeDevices(), "", v1::EncodeMeshStorNodeDevice(d));
    INFO(created.status().ToString());
    REQUIRE(created.ok());
    auto stored = v1::DecodeMeshStorNodeDevice(*created);
    REQUIRE(stored.ok());
    stored->status.sector_size = sector;
    stored->status.biggest_free_extent_bytes = free;
    stored->status.size_bytes = free;
    auto updated = client_->UpdateStatus(kube::MeshStorNodeDevices(),
                                         {.namespace_ = "", .name = d.metadata.name},
                                         v1::EncodeMeshStorNodeDevice(*stored));
    INFO(updated.status().ToString());
    REQUIRE(updated.ok());
  }

  // Three nodes with one 100 GiB drive each.
  void AddThreeNodes() {
    for (const char* n : {"node-a", "node-b", "node-c"}) AddDrive(n, "nvme0n1", 100 * kGiB);
  }

  std::unique_ptr<csi::v1::Identity::Stub> identity;
  std::unique_ptr<csi::v1::Controller::Stub> controller;
  std::unique_ptr<csi::v1::Node::Stub> node;    // node-a (same socket as the controller)
  std::unique_ptr<csi::v1::Node::Stub> node_b;  // node-b

 private:
  std::unique_ptr<tools::apiserver::TestApiServer> api_;
  std::unique_ptr<kube::HttpTransport> transport_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<VolumeClient> volumes_;
  FakeFsStats fs_stats_;
  fs::path dir_;
  std::unique_ptr<CsiServer> server_a_;
  std::unique_ptr<CsiServer> server_b_;
  std::unique_ptr<SimulatedNode> agent_;
};

// Calls one unary method with a fresh context (10 s deadline) and returns the status.
template <typename Stub, typename Req, typename Resp>
grpc::Status Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  return (stub.*method)(&ctx, req, resp);
}

csi::v1::VolumeCapability MountCap(std::string fs = "xfs",
                                   Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
  csi::v1::VolumeCapability cap;
  cap.mutable_mount()->set_fs_type(std::move(fs));
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

csi::v1::CreateVolumeRequest CreateReq(const std::string& name, int64_t required = kGiB) {
  csi::v1::CreateVolumeRequest req;
  req.set_name(name);
  req.mutable_capacity_range()->set_required_bytes(required);
  *req.add_volume_capabilities() = MountCap();
  (*req.mutable_parameters())["replicaCount"] = "2";
  (*req.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "data";
  return req;
}

grpc::Status Create(Harness& h, const csi::v1::CreateVolumeRequest& req,
                    csi::v1::CreateVolumeResponse* resp = nullptr) {
  csi::v1::CreateVolumeResponse ignored;
  return Call(*h.controller, &csi::v1::Controller::Stub::CreateVolume, req, resp ? resp : &ignored);
}

csi::v1::NodeStageVolumeRequest StageReq(const std::string& id) {
  csi::v1::NodeStageVolumeRequest req;
  req.set_volume_id(id);
  req.set_staging_target_path("/var/lib/kubelet/plugins/kubernetes.io/csi/staging/" + id);
  *req.mutable_volume_capability() = MountCap();
  return req;
}

csi::v1::NodeUnstageVolumeRequest UnstageReq(const std::string& id) {
  csi::v1::NodeUnstageVolumeRequest req;
  req.set_volume_id(id);
  req.set_staging_target_path("/var/lib/kubelet/plugins/kubernetes.io/csi/staging/" + id);
  return req;
}

csi::v1::NodePublishVolumeRequest PublishReq(const std::string& id, const std::string& target,
                                             bool readonly = false) {
  csi::v1::NodePublishVolumeRequest req;
  req.set_volume_id(id);
  req.set_staging_target_path("/var/lib/kubelet/plugins/kubernetes.io/csi/staging/" + id);
  req.set_target_path(target);
  req.set_readonly(readonly);
  *req.mutable_volume_capability() = MountCap();
  return req;
}

csi::v1::NodeUnpublishVolumeRequest UnpublishReq(const std::string& id, const std::string& target) {
  csi::v1::NodeUnpublishVolumeRequest req;
  req.set_volume_id(id);
  req.set_target_path(target);
  return req;
}

grpc::Status Stage(csi::v1::Node::Stub& node, const csi::v1::NodeStageVolumeRequest& req) {
  csi::v1::NodeStageVolumeResponse resp;
  return Call(node, &csi::v1::Node::Stub::NodeStageVolume, req, &resp);
}
grpc::Status Unstage(csi::v1::Node::Stub& node, const csi::v1::NodeUnstageVolumeRequest& req) {
  csi::v1::NodeUnstageVolumeResponse resp;
  return Call(node, &csi::v1::Node::Stub::NodeUnstageVolume, req, &resp);
}
grpc::Status Publish(csi::v1::Node::Stub& node, const csi::v1::NodePublishVolumeRequest& req) {
  csi::v1::NodePublishVolumeResponse resp;
  return Call(node, &csi::v1::Node::Stub::NodePublishVolume, req, &resp);
}
grpc::Status Unpublish(csi::v1::Node::Stub& node, const csi::v1::NodeUnpublishVolumeRequest& req) {
  csi::v1::NodeUnpublishVolumeResponse resp;
  return Call(node, &csi::v1::Node::Stub::NodeUnpublishVolume, req, &resp);
}

#define CHECK_CODE(expr, want)                                       \
  do {                                                               \
    grpc::Status check_code_status = (expr);                         \
    INFO("message: " << check_code_status.error_message());          \
    CHECK(check_code_status.error_code() == grpc::StatusCode::want); \
  } while (0)

TEST_CASE("Identity reports name, version, capabilities and API readiness", "[unit][csi]") {
  Harness h;
  csi::v1::GetPluginInfoResponse info;
  CHECK_CODE(Call(*h.identity, &csi::v1::Identity::Stub::GetPluginInfo, {}, &info), OK);
  CHECK(info.name() == "io.meshstor.csi.mesh");
  CHECK(info.vendor_version() == "9.9.9");

  csi::v1::GetPluginCapabilitiesResponse caps;
  CHECK_CODE(Call(*h.identity, &csi::v1::Identity::Stub::GetPluginCapabilities, {}, &caps), OK);
  REQUIRE(caps.capabilities_size() == 2);
  CHECK(caps.capabilities(0).service().type() ==
        csi::v1::PluginCapability::Service::CONTROLLER_SERVICE);
  CHECK(caps.capabilities(1).volume_expansion().type() ==
        csi::v1::PluginCapability::VolumeExpansion::ONLINE);

  csi::v1::ProbeResponse probe;
  CHECK_CODE(Call(*h.identity, &csi::v1::Identity::Stub::Probe, {}, &probe), OK);
  CHECK(probe.has_ready());
  CHECK(probe.ready().value());

  int rule = h.api().faults().FailNext("GET", "/apis/csi.meshstor.io", 503, -1);
  probe.Clear();
  CHECK_CODE(Call(*h.identity, &csi::v1::Identity::Stub::Probe, {}, &probe), OK);
  CHECK(probe.has_ready());
  CHECK_FALSE(probe.ready().value());
  h.api().faults().Remove(rule);
  CHECK_CODE(Call(*h.identity, &csi::v1::Identity::Stub::Probe, {}, &probe), OK);
  CHECK(probe.ready().value());
}

TEST_CASE("Controller and node report their capabilities and node info", "[unit][csi]") {
  Harness h;
  using CRpc = csi::v1::ControllerServiceCapability::RPC;
  csi::v1::ControllerGetCapabilitiesResponse ccaps;
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerGetCapabilities, {}, &ccaps),
             OK);
  std::set<int> ctypes;
  for (const auto& c : ccaps.capabilities()) ctypes.insert(c.rpc().type());
  CHECK(ctypes ==
        std::set<int>{CRpc::CREATE_DELETE_VOLUME, CRpc::GET_CAPACITY, CRpc::EXPAND_VOLUME});

  using NRpc = csi::v1::NodeServiceCapability::RPC;
  csi::v1::NodeGetCapabilitiesResponse ncaps;
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetCapabilities, {}, &ncaps), OK);
  std::set<int> ntypes;
  for (const auto& c : ncaps.capabilities()) ntypes.insert(c.rpc().type());
  CHECK(ntypes == std::set<int>{NRpc::STAGE_UNSTAGE_VOLUME, NRpc::EXPAND_VOLUME,
                                NRpc::GET_VOLUME_STATS, NRpc::VOLUME_CONDITION});

  csi::v1::NodeGetInfoResponse info;
  CHECK_CODE(Call(*h.node_b, &csi::v1::Node::Stub::NodeGetInfo, {}, &info), OK);
  CHECK(info.node_id() == "node-b");
  CHECK(info.max_volumes_per_node() == 7);
  CHECK_FALSE(info.has_accessible_topology());

  // Not served: answered UNIMPLEMENTED by gRPC.
  csi::v1::ControllerPublishVolumeResponse pub;
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerPublishVolume, {}, &pub),
             UNIMPLEMENTED);
  csi::v1::ListVolumesResponse list;
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ListVolumes, {}, &list),
             UNIMPLEMENTED);
}

TEST_CASE("CreateVolume creates the MeshStorVolume and is idempotent by name", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  auto req = CreateReq(kVol1, 1000 * kMiB + 1);
  (*req.mutable_parameters())["memberMissingTimeout"] = "120";
  csi::v1::CreateVolumeResponse resp;
  CHECK_CODE(Create(h, req, &resp), OK);
  CHECK(resp.volume().volume_id() == kVol1);
  CHECK(resp.volume().capacity_bytes() == 1001 * kMiB);
  auto v = h.Get(kVol1);
  CHECK(v.spec.capacity_bytes == 1001 * kMiB);
  CHECK(v.spec.replica_count == 2);
  CHECK(v.spec.stripe_width == 1);
  CHECK(v.spec.member_missing_timeout == 120);
  CHECK(v.spec.sector_size == 4096);
  CHECK(v.spec.consumer_node.empty());

  SECTION("the same request again returns the same volume") {
    csi::v1::CreateVolumeResponse again;
    CHECK_CODE(Create(h, req, &again), OK);
    CHECK(again.volume().volume_id() == kVol1);
    CHECK(again.volume().capacity_bytes() == 1001 * kMiB);
    CHECK(h.Get(kVol1).metadata.generation == v.metadata.generation);
  }
  SECTION("a compatible capacity range is accepted") {
    auto smaller = req;
    smaller.mutable_capacity_range()->set_required_bytes(600 * kMiB);
    CHECK_CODE(Create(h, smaller), OK);
  }
  SECTION("a different size is AlreadyExists") {
    auto bigger = req;
    bigger.mutable_capacity_range()->set_required_bytes(2 * kGiB);
    CHECK_CODE(Create(h, bigger), ALREADY_EXISTS);
  }
  SECTION("different parameters are AlreadyExists") {
    auto other = req;
    (*other.mutable_parameters())["replicaCount"] = "3";
    CHECK_CODE(Create(h, other), ALREADY_EXISTS);
  }
  SECTION("a volume being deleted is Aborted (retryable)") {
    // A finalizer keeps the object while "the operator" tears it down.
    h.agent().set_enabled(false);
    std::this_thread::sleep_for(milliseconds(50));
    auto fresh = h.Get(kVol1);
    fresh.metadata.finalizers.push_back("csi.meshstor.io/teardown");
    REQUIRE(h.client()
                .Update(kube::MeshStorVolumes(), {.namespace_ = "", .name = kVol1},
                        v1::EncodeMeshStorVolume(fresh))
                .ok());
    csi::v1::DeleteVolumeRequest del;
    del.set_volume_id(kVol1);
    csi::v1::DeleteVolumeResponse del_resp;
    CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::DeleteVolume, del, &del_resp), OK);
    CHECK_CODE(Create(h, req), ABORTED);
  }
}

TEST_CASE("CreateVolume applies the minimum size and the limit", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  csi::v1::CreateVolumeResponse resp;
  auto req = CreateReq("pvc-small", 0);
  req.clear_capacity_range();
  CHECK_CODE(Create(h, req, &resp), OK);
  CHECK(resp.volume().capacity_bytes() == 512 * kMiB);
  auto limited = CreateReq("pvc-limited", 1);
  limited.mutable_capacity_range()->set_limit_bytes(256 * kMiB);
  CHECK_CODE(Create(h, limited), OUT_OF_RANGE);
  auto inverted = CreateReq("pvc-inverted", 2 * kGiB);
  inverted.mutable_capacity_range()->set_limit_bytes(kGiB);
  CHECK_CODE(Create(h, inverted), INVALID_ARGUMENT);
}

TEST_CASE("CreateVolume rejects what the caller got wrong with InvalidArgument", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  auto bad = CreateReq(kVolBad);
  std::string expect;
  SECTION("missing name") {
    bad.clear_name();
    expect = "name is missing";
  }
  SECTION("name longer than CSI allows") {
    bad.set_name(std::string(129, 'n'));
    expect = "name: 129 bytes is longer than the 128 bytes CSI allows";
  }
  SECTION("missing capabilities") {
    bad.clear_volume_capabilities();
    expect = "volume_capabilities is missing";
  }
  SECTION("block access") {
    bad.mutable_volume_capabilities(0)->mutable_block();
    expect = "block access is not supported";
  }
  SECTION("another file system") {
    *bad.mutable_volume_capabilities(0) = MountCap("ext4");
    expect = "\"ext4\" is not supported";
  }
  SECTION("multi-node access") {
    *bad.mutable_volume_capabilities(0) = MountCap("xfs", Mode::MULTI_NODE_MULTI_WRITER);
    expect = "MULTI_NODE_MULTI_WRITER is not supported";
  }
  SECTION("missing access mode") {
    bad.mutable_volume_capabilities(0)->clear_access_mode();
    expect = "access_mode is missing";
  }
  SECTION("unknown parameter") {
    (*bad.mutable_parameters())["fsType"] = "xfs";
    expect = "unknown parameter \"fsType\"";
  }
  SECTION("invalid parameter") {
    (*bad.mutable_parameters())["sectorSize"] = "1024";
    expect = "parameter sectorSize: 1024 is not a supported sector size";
  }
  SECTION("content source") {
    bad.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("s");
    expect = "volume_content_source is not supported";
  }
  grpc::Status s = Create(h, bad);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains(expect));
  CHECK_FALSE(h.volumes().Get(kVolBad).ok());
}

// Random CSI names of 1..128 bytes of valid UTF-8: upper and lower case, digits, dots, spaces,
// other punctuation and 2-, 3- and 4-byte characters. Seeded, so a failure repeats.
std::vector<std::string> RandomCsiNames(size_t count) {
  static const std::vector<std::string> kPieces = {"A", "Z", "a",  "z",  "0",  "9",
                                                   ".", " ", "-",  "_",  "/",  ":",
                                                   "é", "ß", "デ", "ー", "タ", "🙂"};
  std::mt19937 rng(20261206);
  std::vector<std::string> names = {std::string(128, 'N'), "My Volume", "pvc-ABC", "a.b.c",
                                    "PVC-00000000-0000-4000-8000-000000000001"};
  while (names.size() < count) {
    const size_t want = std::uniform_int_distribution<size_t>(1, 128)(rng);
    std::string name;
    for (;;) {
      const std::string& piece = kPieces[rng() % kPieces.size()];
      if (name.size() + piece.size() > want) break;
      name += piece;
    }
    if (name.empty()) name = "x";
    names.push_back(std::move(name));
  }
  std::string exact;  // exactly 128 bytes, ending in a 4-byte character
  while (exact.size() + 3 <= 124) exact += "デ";
  exact += std::string(124 - exact.size(), 'a');
  names.push_back(exact + "🙂");
  return names;
}

TEST_CASE("CreateVolume takes any CSI name, maps it to a volume ID and stages it", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  std::set<std::string> ids;
  for (const std::string& name : RandomCsiNames(24)) {
    INFO("CSI name: \"" << name << "\" (" << name.size() << " bytes)");
    REQUIRE(name.size() <= 128);
    csi::v1::CreateVolumeResponse resp;
    CHECK_CODE(Create(h, CreateReq(name), &resp), OK);
    const std::string id = resp.volume().volume_id();
    CHECK(id == v1::VolumeIdForCsiName(name).value());
    CHECK(id.size() <= v1::kMaxVolumeIdBytes);
    CHECK(ValidateVolumeName(id, "volume_id").ok());
    CHECK(ids.insert(id).second);
    auto v = h.Get(id);
    CHECK(v1::CsiNameOf(v) == name);
    // Idempotent by name: the same request finds the same volume.
    csi::v1::CreateVolumeResponse again;
    CHECK_CODE(Create(h, CreateReq(name), &again), OK);
    CHECK(again.volume().volume_id() == id);
    CHECK(h.Get(id).metadata.generation == v.metadata.generation);
    // The ID is what the node calls get; the simulated agents stage it.
    CHECK_CODE(Stage(*h.node, StageReq(id)), OK);
    CHECK(h.Get(id).status.staged_path ==
          "/var/lib/kubelet/plugins/kubernetes.io/csi/staging/" + id);
    CHECK_CODE(Unstage(*h.node, UnstageReq(id)), OK);
  }
}

TEST_CASE("CreateVolume refuses a volume ID taken by another CSI name", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  const std::string id = v1::VolumeIdForCsiName("Data Volume").value();
  v1::MeshStorVolume other;
  other.metadata.name = id;
  other.spec = {.capacity_bytes = kGiB,
                .replica_count = 2,
                .stripe_width = 1,
                .member_missing_timeout = 900,
                .sector_size = 4096};
  SECTION("created for another name (a hash collision)") {
    other.metadata.annotations[std::string(v1::kCsiNameAnnotation)] = "Other Volume";
  }
  SECTION("created without a CSI name") {}
  REQUIRE(h.volumes().Create(other).ok());
  grpc::Status s = Create(h, CreateReq("Data Volume"));
  CHECK(s.error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK_THAT(s.error_message(), Catch::Contains("volume ID " + id + " of name \"Data Volume\""));
  CHECK_THAT(s.error_message(), Catch::Contains("collide"));
}

TEST_CASE("CreateVolume is FailedPrecondition when too few nodes qualify", "[unit][csi]") {
  Harness h;
  h.AddDrive("node-a", "nvme0n1", 100 * kGiB);
  h.AddDrive("node-b", "nvme0n1", 100 * kGiB, 512);  // wrong sector size
  h.AddDrive("node-c", "nvme0n1", 512 * kMiB);       // too small
  grpc::Status s = Create(h, CreateReq(kVol1, kGiB));
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("only 1 node(s) qualify"));
  CHECK(h.volumes().Get(kVol1).status().code() == common::StatusCode::kNotFound);
  // One copy fits.
  auto single = CreateReq(kVol2, kGiB);
  (*single.mutable_parameters())["replicaCount"] = "1";
  CHECK_CODE(Create(h, single), OK);
}

TEST_CASE("CreateVolume admits a volume exactly when its members fit, MD offset included",
          "[unit][csi]") {
  Harness h;
  const int64_t member = v1::MemberSizeBytes(kGiB, 1);  // 1 GiB + 1 MiB
  SECTION("a free extent of exactly the member size") {
    for (const char* n : {"node-a", "node-b"}) h.AddDrive(n, "nvme0n1", member);
    CHECK_CODE(Create(h, CreateReq(kVol1, kGiB)), OK);
  }
  SECTION("one MiB less") {
    for (const char* n : {"node-a", "node-b"}) h.AddDrive(n, "nvme0n1", member - kMiB);
    grpc::Status s = Create(h, CreateReq(kVol1, kGiB));
    CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK_THAT(s.error_message(), Catch::Contains("at least " + std::to_string(member) + " bytes"));
  }
}

TEST_CASE("DeleteVolume deletes and is idempotent", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  csi::v1::DeleteVolumeRequest req;
  csi::v1::DeleteVolumeResponse resp;
  req.set_volume_id(kVol1);
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::DeleteVolume, req, &resp), OK);
  CHECK(h.volumes().Get(kVol1).status().code() == common::StatusCode::kNotFound);
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::DeleteVolume, req, &resp), OK);
  req.set_volume_id("Not_A_Name");
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::DeleteVolume, req, &resp), OK);
  req.clear_volume_id();
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::DeleteVolume, req, &resp),
             INVALID_ARGUMENT);
}

TEST_CASE("ControllerExpandVolume raises the capacity and is idempotent", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1, kGiB)).ok());
  csi::v1::ControllerExpandVolumeRequest req;
  csi::v1::ControllerExpandVolumeResponse resp;
  req.set_volume_id(kVol1);
  req.mutable_capacity_range()->set_required_bytes(2 * kGiB + 1);
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             OK);
  CHECK(resp.capacity_bytes() == 2 * kGiB + kMiB);
  CHECK(resp.node_expansion_required());
  CHECK(h.Get(kVol1).spec.capacity_bytes == 2 * kGiB + kMiB);
  auto generation = h.Get(kVol1).metadata.generation;
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             OK);
  CHECK(h.Get(kVol1).metadata.generation == generation);
  // Smaller than now: nothing shrinks, the current size is the answer.
  req.mutable_capacity_range()->set_required_bytes(kGiB);
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             OK);
  CHECK(resp.capacity_bytes() == 2 * kGiB + kMiB);

  req.set_volume_id("pvc-missing");
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             NOT_FOUND);
  req.clear_volume_id();
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             INVALID_ARGUMENT);
  req.set_volume_id(kVol1);
  req.clear_capacity_range();
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             INVALID_ARGUMENT);

  auto raid10 = CreateReq(kVolRaid10, kGiB);
  (*raid10.mutable_parameters())["stripeWidth"] = "2";
  (*raid10.mutable_parameters())["replicaCount"] = "1";
  h.AddDrive("node-a", "nvme1n1", 100 * kGiB);
  REQUIRE(Create(h, raid10).ok());
  req.set_volume_id(kVolRaid10);
  req.mutable_capacity_range()->set_required_bytes(4 * kGiB);
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, req, &resp),
             FAILED_PRECONDITION);
}

TEST_CASE("GetCapacity answers from the drive inventory", "[unit][csi]") {
  Harness h;
  h.AddDrive("node-a", "nvme0n1", 10 * kGiB);
  h.AddDrive("node-b", "nvme0n1", 4 * kGiB);
  h.AddDrive("node-c", "nvme0n1", 50 * kGiB, 512);
  csi::v1::GetCapacityRequest req;
  csi::v1::GetCapacityResponse resp;
  *req.add_volume_capabilities() = MountCap();
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::GetCapacity, req, &resp), OK);
  // A member holds its share plus the MD data offset (1 MiB).
  CHECK(resp.available_capacity() == 4 * kGiB - kMiB);
  CHECK(resp.maximum_volume_size().value() == 4 * kGiB - kMiB);
  CHECK(resp.minimum_volume_size().value() == 512 * kMiB);
  (*req.mutable_parameters())["sectorSize"] = "512";
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::GetCapacity, req, &resp), OK);
  CHECK(resp.available_capacity() == 0);  // one 512-byte node, two copies
  (*req.mutable_parameters())["replicaCount"] = "1";
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::GetCapacity, req, &resp), OK);
  CHECK(resp.available_capacity() == 50 * kGiB - kMiB);
  (*req.mutable_parameters())["replicaCount"] = "zero";
  CHECK_CODE(Call(*h.controller, &csi::v1::Controller::Stub::GetCapacity, req, &resp),
             INVALID_ARGUMENT);
}

TEST_CASE("ValidateVolumeCapabilities confirms only what is served", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  csi::v1::ValidateVolumeCapabilitiesRequest req;
  csi::v1::ValidateVolumeCapabilitiesResponse resp;
  req.set_volume_id(kVol1);
  *req.add_volume_capabilities() = MountCap("");
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ValidateVolumeCapabilities, req, &resp), OK);
  CHECK(resp.has_confirmed());
  CHECK(resp.confirmed().volume_capabilities_size() == 1);

  *req.add_volume_capabilities() = MountCap("xfs", Mode::MULTI_NODE_READER_ONLY);
  resp.Clear();
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ValidateVolumeCapabilities, req, &resp), OK);
  CHECK_FALSE(resp.has_confirmed());
  CHECK_THAT(resp.message(), Catch::Contains("MULTI_NODE_READER_ONLY"));

  req.clear_volume_capabilities();
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ValidateVolumeCapabilities, req, &resp),
      INVALID_ARGUMENT);
  *req.add_volume_capabilities() = MountCap();
  req.set_volume_id("pvc-missing");
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ValidateVolumeCapabilities, req, &resp),
      NOT_FOUND);
  req.clear_volume_id();
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ValidateVolumeCapabilities, req, &resp),
      INVALID_ARGUMENT);
}

TEST_CASE("Node calls stage, publish, expand, report and tear down idempotently", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1, kGiB)).ok());

  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);
  auto v = h.Get(kVol1);
  const std::string staging = "/var/lib/kubelet/plugins/kubernetes.io/csi/staging/" + kVol1;
  CHECK(v.spec.consumer_node == "node-a");
  CHECK(v.spec.staging_path == staging);  // the agent mounts at kubelet's staging path
  CHECK(v.status.staged_path == staging);
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);
  auto elsewhere = StageReq(kVol1);
  elsewhere.set_staging_target_path("/var/lib/kubelet/plugins/other/globalmount");
  CHECK_CODE(Stage(*h.node, elsewhere), FAILED_PRECONDITION);  // staged once per node

  const std::string rw = "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pvc-1/mount";
  const std::string ro = "/var/lib/kubelet/pods/p2/volumes/kubernetes.io~csi/pvc-1/mount";
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, rw)), OK);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, rw)), OK);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, ro, true)), OK);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, rw, true)), ALREADY_EXISTS);
  v = h.Get(kVol1);
  REQUIRE(v.spec.publish_targets.size() == 2);
  CHECK(v.spec.publish_targets[0] == v1::PublishTarget{.path = rw, .read_only = false});
  CHECK(v.spec.publish_targets[1] == v1::PublishTarget{.path = ro, .read_only = true});
  CHECK(v.status.published_targets == std::vector<std::string>{rw, ro});

  // Stats, healthy then degraded.
  h.fs_stats().Set(rw, {.total_bytes = kGiB,
                        .available_bytes = 700 * kMiB,
                        .used_bytes = 300 * kMiB,
                        .total_inodes = 1000,
                        .free_inodes = 990,
                        .used_inodes = 10});
  csi::v1::NodeGetVolumeStatsRequest stats_req;
  csi::v1::NodeGetVolumeStatsResponse stats;
  stats_req.set_volume_id(kVol1);
  stats_req.set_volume_path(rw);
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats), OK);
  REQUIRE(stats.usage_size() == 2);
  CHECK(stats.usage(0).unit() == csi::v1::VolumeUsage::BYTES);
  CHECK(stats.usage(0).total() == kGiB);
  CHECK(stats.usage(0).available() == 700 * kMiB);
  CHECK(stats.usage(0).used() == 300 * kMiB);
  CHECK(stats.usage(1).unit() == csi::v1::VolumeUsage::INODES);
  CHECK(stats.usage(1).total() == 1000);
  CHECK(stats.usage(1).available() == 990);
  CHECK(stats.usage(1).used() == 10);
  CHECK_FALSE(stats.volume_condition().abnormal());
  h.agent().set_degraded(true);
  REQUIRE(Eventually([&] {
    stats.Clear();
    return Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats).ok() &&
           stats.volume_condition().abnormal();
  }));
  CHECK_THAT(stats.volume_condition().message(), Catch::Contains("member 1 is missing"));
  stats_req.set_volume_path("/no/such/path");
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats), NOT_FOUND);

  // Expansion: controller first, then the node waits for the operator to finish.
  csi::v1::ControllerExpandVolumeRequest cexp;
  csi::v1::ControllerExpandVolumeResponse cexp_resp;
  cexp.set_volume_id(kVol1);
  cexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  REQUIRE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, cexp, &cexp_resp)
              .ok());
  csi::v1::NodeExpandVolumeRequest nexp;
  csi::v1::NodeExpandVolumeResponse nexp_resp;
  nexp.set_volume_id(kVol1);
  nexp.set_volume_path(rw);
  nexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp), OK);
  CHECK(nexp_resp.capacity_bytes() == 2 * kGiB);
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp), OK);
  nexp.mutable_capacity_range()->set_required_bytes(3 * kGiB);  // controller never raised it
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp),
             FAILED_PRECONDITION);

  // Tear down, each step twice.
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, rw)), OK);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, rw)), OK);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, ro)), OK);
  v = h.Get(kVol1);
  CHECK(v.spec.publish_targets.empty());
  CHECK(v.status.published_targets.empty());
  CHECK_CODE(Unstage(*h.node, UnstageReq(kVol1)), OK);
  CHECK_CODE(Unstage(*h.node, UnstageReq(kVol1)), OK);
  v = h.Get(kVol1);
  CHECK(v.spec.consumer_node.empty());
  CHECK(v.spec.staging_path.empty());
  CHECK(v.status.staged_path.empty());
}

TEST_CASE("Node calls wait bounded and answer a retryable code", "[unit][csi]") {
  Harness h({.wait_timeout = milliseconds(300), .agent_enabled = false});
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  auto start = std::chrono::steady_clock::now();
  grpc::Status s = Stage(*h.node, StageReq(kVol1));
  CHECK(std::chrono::steady_clock::now() - start < seconds(5));
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK_THAT(s.error_message(), Catch::Contains("no Ready condition yet"));
  CHECK(h.Get(kVol1).spec.consumer_node == "node-a");  // the edit stays for the retry

  h.agent().set_enabled(true);
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);

  h.agent().set_enabled(false);
  const std::string target = "/var/lib/kubelet/pods/p1/mount";
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, target)), DEADLINE_EXCEEDED);
  h.agent().set_enabled(true);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, target)), OK);

  // NodeExpandVolume waits while the volume is Expanding.
  h.agent().set_expanding(true);
  csi::v1::NodeExpandVolumeRequest nexp;
  csi::v1::NodeExpandVolumeResponse nexp_resp;
  nexp.set_volume_id(kVol1);
  nexp.set_volume_path(target);
  REQUIRE(Eventually([&] { return h.Get(kVol1).status.phase == v1::VolumePhase::kExpanding; }));
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp),
             DEADLINE_EXCEEDED);
  h.agent().set_expanding(false);
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp), OK);

  // ... and then until the agent has grown the filesystem (found by lab_csi: kubelet was told
  // the volume had grown while df still showed the old size).
  h.agent().set_filesystem_lagging(true);
  csi::v1::ControllerExpandVolumeRequest cexp;
  csi::v1::ControllerExpandVolumeResponse cexp_resp;
  cexp.set_volume_id(kVol1);
  cexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  REQUIRE(Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, cexp, &cexp_resp)
              .ok());
  nexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  grpc::Status lagging = Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp);
  CHECK(lagging.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK_THAT(lagging.error_message(), Catch::Contains("grow the filesystem"));
  h.agent().set_filesystem_lagging(false);
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp), OK);
  CHECK(nexp_resp.capacity_bytes() == 2 * kGiB);

  h.agent().set_enabled(false);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, target)), DEADLINE_EXCEEDED);
  h.agent().set_enabled(true);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, target)), OK);
  h.agent().set_enabled(false);
  CHECK_CODE(Unstage(*h.node, UnstageReq(kVol1)), DEADLINE_EXCEEDED);
  h.agent().set_enabled(true);
  CHECK_CODE(Unstage(*h.node, UnstageReq(kVol1)), OK);
}

TEST_CASE("A wait ends before the caller's own gRPC deadline", "[unit][csi]") {
  Harness h({.wait_timeout = seconds(30), .agent_enabled = false});
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
  csi::v1::NodeStageVolumeResponse resp;
  auto start = std::chrono::steady_clock::now();
  grpc::Status s = h.node->NodeStageVolume(&ctx, StageReq(kVol1), &resp);
  CHECK(std::chrono::steady_clock::now() - start < seconds(2));
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  // Our answer (what is missing), not the client's own timeout.
  CHECK_THAT(s.error_message(), Catch::Contains("not ready in time"));
}

TEST_CASE("A second call on a busy volume is Aborted", "[unit][csi]") {
  Harness h({.wait_timeout = seconds(5), .agent_enabled = false});
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  grpc::Status first;
  std::thread t([&] { first = Stage(*h.node, StageReq(kVol1)); });
  // The first call has made its edit and is now waiting for the agent.
  REQUIRE(Eventually([&] { return h.Get(kVol1).spec.consumer_node == "node-a"; }));
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), ABORTED);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, "/t")), ABORTED);
  csi::v1::ControllerExpandVolumeRequest cexp;
  csi::v1::ControllerExpandVolumeResponse cexp_resp;
  cexp.set_volume_id(kVol1);
  cexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, cexp, &cexp_resp),
      ABORTED);
  // Other volumes are not held up.
  CHECK_CODE(Create(h, CreateReq(kVol2)), OK);
  h.agent().set_enabled(true);
  t.join();
  CHECK(first.ok());
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);
}

TEST_CASE("Staging on a second node while staged on the first is FailedPrecondition",
          "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);
  grpc::Status s = Stage(*h.node_b, StageReq(kVol1));
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("still staged on node node-a"));
  CHECK(h.Get(kVol1).spec.consumer_node == "node-a");
  // Publishing on node-b needs it staged there.
  CHECK_CODE(Publish(*h.node_b, PublishReq(kVol1, "/t")), FAILED_PRECONDITION);
  // Unstaging on node-b changes nothing on node-a.
  CHECK_CODE(Unstage(*h.node_b, UnstageReq(kVol1)), OK);
  CHECK(h.Get(kVol1).spec.consumer_node == "node-a");
  // Once node-a unstaged it, node-b takes it over.
  CHECK_CODE(Unstage(*h.node, UnstageReq(kVol1)), OK);
  CHECK_CODE(Stage(*h.node_b, StageReq(kVol1)), OK);
  auto v = h.Get(kVol1);
  CHECK(v.spec.consumer_node == "node-b");
  CHECK(v.status.node_name == "node-b");
}

// Writes `edit` of the stored volume (spec, then status when `status` is set).
void EditVolume(Harness& h, const std::string& name, bool status,
                const std::function<void(v1::MeshStorVolume&)>& edit) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    v1::MeshStorVolume v = h.Get(name);
    edit(v);
    const kube::ObjectKey key{.namespace_ = "", .name = name};
    auto r =
        status ? h.client().UpdateStatus(kube::MeshStorVolumes(), key, v1::EncodeMeshStorVolume(v))
               : h.client().Update(kube::MeshStorVolumes(), key, v1::EncodeMeshStorVolume(v));
    if (r.ok()) return;
    INFO(r.status().ToString());
    REQUIRE(r.status().code() ==
            common::StatusCode::kAborted);  // conflict with the simulated agent
  }
  FAIL("could not edit " + name);
}

TEST_CASE("A dead consumer's volume is taken over only once the operator fenced it",
          "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  CHECK_CODE(Stage(*h.node, StageReq(kVol1)), OK);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, "/pod-on-a")), OK);
  // node-a dies: its agent stops, its status still says staged there.
  h.agent().set_enabled(false);
  grpc::Status s = Stage(*h.node_b, StageReq(kVol1));
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("still staged on node node-a"));
  CHECK_THAT(s.error_message(), Catch::Contains("out-of-service"));

  // The operator fences node-a; while the exporters have not confirmed, no take-over.
  EditVolume(h, kVol1, false, [](v1::MeshStorVolume& v) { v.spec.fenced_nodes = {"node-a"}; });
  s = Stage(*h.node_b, StageReq(kVol1));
  CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(s.error_message(), Catch::Contains("waiting for every exporter to confirm"));
  CHECK(h.Get(kVol1).spec.consumer_node == "node-a");
  // A fencedConsumer naming another node does not count either.
  EditVolume(h, kVol1, true, [](v1::MeshStorVolume& v) {
    v.status.fenced_consumer = v1::FencedConsumer{"node-c", std::nullopt};
  });
  CHECK_CODE(Stage(*h.node_b, StageReq(kVol1)), UNAVAILABLE);

  // Confirmed: status.fencedConsumer names the consumer. The stale status still says node-a
  // staged it, and node-b takes over anyway.
  EditVolume(h, kVol1, true, [](v1::MeshStorVolume& v) {
    v.status.fenced_consumer = v1::FencedConsumer{"node-a", std::nullopt};
  });
  REQUIRE(h.Get(kVol1).status.node_name == "node-a");
  REQUIRE_FALSE(h.Get(kVol1).status.staged_path.empty());
  h.agent().set_enabled(true);  // node-b's agent stages it
  CHECK_CODE(Stage(*h.node_b, StageReq(kVol1)), OK);
  auto v = h.Get(kVol1);
  CHECK(v.spec.consumer_node == "node-b");
  CHECK(v.status.node_name == "node-b");
  CHECK(v.spec.publish_targets.empty());  // node-a's pod paths are not node-b's

  // The fenced node itself is refused, with what to do.
  s = Stage(*h.node, StageReq(kVol1));
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(s.error_message(), Catch::Contains("fenced from node node-a"));
  CHECK(h.Get(kVol1).spec.consumer_node == "node-b");
}

TEST_CASE("Node calls answer caller mistakes with exact codes", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());

  auto stage = StageReq(kVol1);
  stage.clear_volume_id();
  CHECK_CODE(Stage(*h.node, stage), INVALID_ARGUMENT);
  stage = StageReq(kVol1);
  stage.clear_staging_target_path();
  CHECK_CODE(Stage(*h.node, stage), INVALID_ARGUMENT);
  stage = StageReq(kVol1);
  stage.clear_volume_capability();
  CHECK_CODE(Stage(*h.node, stage), INVALID_ARGUMENT);
  stage = StageReq(kVol1);
  stage.mutable_volume_capability()->mutable_block();
  CHECK_CODE(Stage(*h.node, stage), INVALID_ARGUMENT);
  CHECK_CODE(Stage(*h.node, StageReq("pvc-missing")), NOT_FOUND);

  auto unstage = UnstageReq(kVol1);
  unstage.clear_volume_id();
  CHECK_CODE(Unstage(*h.node, unstage), INVALID_ARGUMENT);
  unstage = UnstageReq(kVol1);
  unstage.clear_staging_target_path();
  CHECK_CODE(Unstage(*h.node, unstage), INVALID_ARGUMENT);
  CHECK_CODE(Unstage(*h.node, UnstageReq("pvc-missing")), NOT_FOUND);

  auto publish = PublishReq(kVol1, "/t");
  publish.clear_target_path();
  CHECK_CODE(Publish(*h.node, publish), INVALID_ARGUMENT);
  publish = PublishReq(kVol1, "/t");
  publish.clear_volume_id();
  CHECK_CODE(Publish(*h.node, publish), INVALID_ARGUMENT);
  publish = PublishReq(kVol1, "/t");
  publish.clear_staging_target_path();
  CHECK_CODE(Publish(*h.node, publish), INVALID_ARGUMENT);
  publish = PublishReq(kVol1, "/t");
  publish.clear_volume_capability();
  CHECK_CODE(Publish(*h.node, publish), INVALID_ARGUMENT);
  publish = PublishReq(kVol1, "/t");
  *publish.mutable_volume_capability() = MountCap("xfs", Mode::MULTI_NODE_MULTI_WRITER);
  CHECK_CODE(Publish(*h.node, publish), INVALID_ARGUMENT);
  CHECK_CODE(Publish(*h.node, PublishReq("pvc-missing", "/t")), NOT_FOUND);
  CHECK_CODE(Publish(*h.node, PublishReq(kVol1, "/t")), FAILED_PRECONDITION);  // not staged

  auto unpublish = UnpublishReq(kVol1, "/t");
  unpublish.clear_target_path();
  CHECK_CODE(Unpublish(*h.node, unpublish), INVALID_ARGUMENT);
  unpublish = UnpublishReq(kVol1, "/t");
  unpublish.clear_volume_id();
  CHECK_CODE(Unpublish(*h.node, unpublish), INVALID_ARGUMENT);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq("pvc-missing", "/t")), NOT_FOUND);
  CHECK_CODE(Unpublish(*h.node, UnpublishReq(kVol1, "/t")), OK);  // never published: done

  csi::v1::NodeGetVolumeStatsRequest stats_req;
  csi::v1::NodeGetVolumeStatsResponse stats;
  stats_req.set_volume_path("/t");
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats),
             INVALID_ARGUMENT);
  stats_req.set_volume_id(kVol1);
  stats_req.clear_volume_path();
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats),
             INVALID_ARGUMENT);
  stats_req.set_volume_id("pvc-missing");
  stats_req.set_volume_path("/t");
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeGetVolumeStats, stats_req, &stats), NOT_FOUND);

  csi::v1::NodeExpandVolumeRequest nexp;
  csi::v1::NodeExpandVolumeResponse nexp_resp;
  nexp.set_volume_path("/t");
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp),
             INVALID_ARGUMENT);
  nexp.set_volume_id(kVol1);
  nexp.clear_volume_path();
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp),
             INVALID_ARGUMENT);
  nexp.set_volume_id("pvc-missing");
  nexp.set_volume_path("/t");
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp), NOT_FOUND);
  nexp.set_volume_id(kVol1);  // not staged here
  CHECK_CODE(Call(*h.node, &csi::v1::Node::Stub::NodeExpandVolume, nexp, &nexp_resp),
             FAILED_PRECONDITION);
}

TEST_CASE("Spec writes are guarded by resourceVersion and retried on conflict", "[unit][csi]") {
  Harness h;
  h.AddThreeNodes();
  REQUIRE(Create(h, CreateReq(kVol1)).ok());
  // The simulated agent writes status with PUTs under the same path; keep it quiet.
  h.agent().set_enabled(false);
  std::this_thread::sleep_for(milliseconds(50));
  const std::string path = "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/" + kVol1;
  h.api().faults().ClearRequests();
  h.api().faults().FailNext("PUT", path, 409, 2);
  csi::v1::ControllerExpandVolumeRequest cexp;
  csi::v1::ControllerExpandVolumeResponse cexp_resp;
  cexp.set_volume_id(kVol1);
  cexp.mutable_capacity_range()->set_required_bytes(2 * kGiB);
  CHECK_CODE(
      Call(*h.controller, &csi::v1::Controller::Stub::ControllerExpandVolume, cexp, &cexp_resp),
      OK);
  CHECK(h.Get(kVol1).spec.capacity_bytes == 2 * kGiB);
  CHECK(h.api().faults().RequestCount("PUT", path) == 3);

  // A real conflict: the object changes between the shim's read and its write. The volume
  // client re-reads and applies its edit on top, keeping the other writer's change.
  int calls = 0;
  auto result = h.volumes().Modify(kVol1, [&](v1::MeshStorVolume& v) -> common::Result<bool> {
    if (calls++ == 0) {
      auto other = h.Get(kVol1);
      other.spec.member_missing_timeout = 600;
      REQUIRE(h.client()
                  .Update(kube::MeshStorVolumes(), {.namespace_ = "", .name = kVol1},
                          v1::EncodeMeshStorVolume(other))
                  .ok());
    }
    v.spec.publish_targets.push_back({.path = "/x"});
    return true;
  });
  REQUIRE(result.ok());
  CHECK(calls == 2);
  CHECK(result->spec.member_missing_timeout == 600);
  CHECK(result->spec.publish_targets.size() == 1);
}

TEST_CASE("The server replaces a stale socket and refuses other files", "[unit][csi]") {
  char tmpl[] = "/tmp/csi-shim-sock-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path dir = tmpl;
  const std::string path = (dir / "csi.sock").string();
  // A socket file left by a process that died.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  ::close(fd);
  REQUIRE(fs::is_socket(path));

  // No API server is needed to serve Identity's static answers.
  auto transport = kube::HttpTransport::Create({.server = "http://127.0.0.1:1"});
  REQUIRE(transport.ok());
  kube::Client client(**transport, milliseconds(200));
  VolumeClient volumes(client, common::time::RealClock::Get(), {});
  FakeFsStats fs_stats;
  {
    auto server =
        CsiServer::Start({.endpoint = "unix://" + path, .controller = true}, volumes, fs_stats);
    INFO(server.status().ToString());
    REQUIRE(server.ok());
    auto stub = csi::v1::Identity::NewStub(
        grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
    csi::v1::GetPluginInfoResponse info;
    CHECK_CODE(Call(*stub, &csi::v1::Identity::Stub::GetPluginInfo, {}, &info), OK);
    csi::v1::ProbeResponse probe;
    CHECK_CODE(Call(*stub, &csi::v1::Identity::Stub::Probe, {}, &probe), OK);
    CHECK_FALSE(probe.ready().value());  // the API is unreachable
    (*server)->Stop();
  }
  CHECK_FALSE(fs::exists(path));

  { std::ofstream(path) << "not a socket"; }
  auto refused =
      CsiServer::Start({.endpoint = "unix://" + path, .controller = true}, volumes, fs_stats);
  CHECK(refused.status().code() == common::StatusCode::kFailedPrecondition);
  CHECK(CsiServer::Start({.endpoint = "tcp://127.0.0.1:1", .controller = true}, volumes, fs_stats)
            .status()
            .code() == common::StatusCode::kInvalidArgument);
  // A missing directory is created.
  {
    auto nested = CsiServer::Start(
        {.endpoint = "unix://" + (dir / "sub" / "csi.sock").string(), .controller = true}, volumes,
        fs_stats);
    INFO(nested.status().ToString());
    CHECK(nested.ok());
  }
  CHECK(CsiServer::Start({.endpoint = "unix://" + path + "x", .node = true}, volumes, fs_stats)
            .status()
            .code() == common::StatusCode::kInvalidArgument);  // node mode without a node name
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace csi_shim
