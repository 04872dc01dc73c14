// Test fixtures of the agent's unit tests: `World` (three simulated nodes a, b, c, each with one
// 4 GiB drive, whose agents run passes over a volume object held by the test), MakeMember, and
// `ApiFixture` (the in-process API test server and a client on it).
//
// Thread contract: test-only; one test thread.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/sim/sim_node.h"
#include "agent/volume.h"
#include "common/api/v1alpha1/codec.h"
#include "common/kube/client.h"
#include "common/kube/http_transport.h"
#include "common/kube/resource.h"
#include "common/time/fake_clock.h"
#include "tools/apiserver/test_apiserver.h"

namespace agent::testing {

inline constexpr uint64_t kGiB = 1ull << 30;

// A member of 513 MiB on drive nvme0n1 (slot = index unless given).
inline common::api::v1alpha1::Member MakeMember(int32_t index, std::string node,
                                                common::api::v1alpha1::MemberRole role,
                                                int32_t nsid, int32_t slot = -1) {
  common::api::v1alpha1::Member m;
  m.index = index;
  m.node = std::move(node);
  m.drive = "nvme0n1";
  m.size_bytes = 513 * common::api::v1alpha1::kMiB;
  m.namespace_id = nsid;
  m.role = role;
  m.slot = slot >= 0 ? slot : index;
  return m;
}

// RAID1 "pvc-1" of 512 MiB: member 0 local on the consumer A, member 1 remote on B; C holds no
// member.
inline common::api::v1alpha1::MeshStorVolume Raid1Volume() {
  namespace v1 = common::api::v1alpha1;
  v1::MeshStorVolume v;
  v.metadata.name = "pvc-1";
  v.spec.capacity_bytes = 512 * v1::kMiB;
  v.spec.replica_count = 2;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  v.spec.consumer_node = "a";
  v.spec.members = {MakeMember(0, "a", v1::MemberRole::kLocal, 1, 0),
                    MakeMember(1, "b", v1::MemberRole::kRemote, 1, 1)};
  return v;
}

struct World {
  sim::SimCluster cluster;
  common::time::FakeClock clock;
  Peers peers;
  std::set<std::string> down;  // powered off: their agents do not run
  // Kernels used instead of the node's own (a crashing agent).
  std::map<std::string, NodeKernel> kernel_override;
  std::vector<common::Status> errors;
  std::vector<std::string> notices;
  // The simulated block layer keeps a filesystem per node's device, not on the members: when
  // set, an array assembled on another node from formatted members gets its XFS there after
  // the pass (the agent mounts it on its next pass; that pass's "holds no filesystem" error is
  // the simulation's, not ours, and is dropped). Only for arrays named `shared_fs_array`.
  std::string shared_fs_array;

  World() {
    for (const char* n : {"a", "b", "c"}) cluster.AddNode(n).AddDrive("nvme0n1", 4 * kGiB);
    peers = cluster.PeersView();
  }
  AgentSettings Settings(const std::string& node) {
    AgentSettings s;
    s.node = node;
    s.address = peers.at(node).address;
    s.staging_root = "/var/lib/meshstor/staging";
    return s;
  }

  // One pass of every running node's agent, each a fresh reconciler (as after a restart).
  void Pass(common::api::v1alpha1::MeshStorVolume& v) { PassOn(v, {"a", "b", "c"}); }
  // One pass of the running agents of `nodes` only (the others are down or not looked at).
  void PassOn(common::api::v1alpha1::MeshStorVolume& v, std::initializer_list<const char*> nodes) {
    for (const char* n : nodes) {
      if (down.count(n)) continue;
      auto o = kernel_override.find(n);
      VolumeReconciler r(o != kernel_override.end() ? o->second : cluster.node(n).Kernel(),
                         Settings(n), clock);
      VolumeOutcome out = r.Reconcile(v, peers);
      ApplyOutcome(out, n, v.status);
      if (out.set_formatted_at && !v.spec.formatted_at) v.spec.formatted_at = out.set_formatted_at;
      if (!shared_fs_array.empty()) {
        auto array = cluster.node(n).md.GetArray(shared_fs_array);
        if (v.spec.formatted_at && array.ok()) {
          (void)cluster.node(n).fs.EnsureXfs(array->device, {});
        }
        std::erase_if(out.errors, [](const common::Status& e) {
          return e.message().find("holds no filesystem") != std::string::npos;
        });
      }
      errors.insert(errors.end(), out.errors.begin(), out.errors.end());
      notices.insert(notices.end(), out.notices.begin(), out.notices.end());
    }
  }
  void Passes(common::api::v1alpha1::MeshStorVolume& v, int n) {
    for (int i = 0; i < n; ++i) Pass(v);
  }
  const common::api::v1alpha1::PartitionStatus* Part(const common::api::v1alpha1::MeshStorVolume& v,
                                                     int32_t index) {
    for (const auto& p : v.status.partitions) {
      if (p.index == index) return &p;
    }
    return nullptr;
  }
  std::string ErrorText() const {
    std::string s;
    for (const auto& e : errors) s += e.ToString() + "\n";
    return s;
  }
};

// The in-process API test server (CRDs from crds/, bookmarks every 200 ms) and a client on it.
struct ApiFixture {
  std::unique_ptr<tools::apiserver::TestApiServer> server;
  std::unique_ptr<common::kube::HttpTransport> transport;
  std::unique_ptr<common::kube::Client> client;
  ApiFixture() {
    auto s = tools::apiserver::TestApiServer::Start(
        {.crd_dir = (std::filesystem::path(MESHSTOR_SOURCE_DIR) / "crds").string(),
         .bookmark_interval = std::chrono::milliseconds(200)});
    REQUIRE(s.ok());
    server = std::move(s).value();
    common::kube::RestConfig config;
    config.server = server->url();
    auto t = common::kube::HttpTransport::Create(config);
    REQUIRE(t.ok());
    transport = std::move(t).value();
    client = std::make_unique<common::kube::Client>(*transport, std::chrono::seconds(10));
  }
  common::Result<common::api::v1alpha1::MeshStorVolume> Volume(const std::string& name) {
    ASSIGN_OR_RETURN(auto raw, client->Get(common::kube::MeshStorVolumes(), {"", name}));
    return common::api::v1alpha1::DecodeMeshStorVolume(raw);
  }
};

}  // namespace agent::testing
