// A fixture for controller tests against the in-process Kubernetes API test server
// (tools/apiserver): nodes, drives and volumes created through the real client, and a simulated
// agent (fake_agents.h) that writes volume status through the status subresource.
//
// Thread contract: single-threaded test helper.
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/api/v1alpha1/codec.h"
#include "common/kube/client.h"
#include "common/kube/http_transport.h"
#include "operator/testing/builders.h"
#include "operator/testing/fake_agents.h"
#include "tools/apiserver/test_apiserver.h"

namespace meshstor_operator::testing {

class ApiFixture {
 public:
  // `keep_alive`: how long the server keeps idle connections; Stop() may wait that long. With 0
  // a client may reuse a connection the server just closed and see a transient Unavailable.
  explicit ApiFixture(std::chrono::seconds keep_alive = std::chrono::seconds(1)) {
    auto server = tools::apiserver::TestApiServer::Start(
        {.crd_dir = std::string(MESHSTOR_SOURCE_DIR) + "/crds",
         .bookmark_interval = std::chrono::milliseconds(200),
         .keep_alive_timeout = keep_alive});
    INFO(server.status().ToString());
    REQUIRE(server.ok());
    server_ = std::move(server).value();
    common::kube::RestConfig config;
    config.server = server_->url();
    auto transport = common::kube::HttpTransport::Create(config);
    REQUIRE(transport.ok());
    transport_ = std::move(transport).value();
    client_ = std::make_unique<common::kube::Client>(*transport_, std::chrono::seconds(10));
  }

  common::kube::Client& client() { return *client_; }
  tools::apiserver::TestApiServer& server() { return *server_; }

  void AddNode(const std::string& name, std::chrono::system_clock::time_point now, int drives = 1,
               int64_t free = 100 * 1024 * v1::kMiB) {
    auto n = client_->Create(common::kube::Nodes(), "",
                             fmt::format(R"({{"apiVersion":"v1","kind":"Node",)"
                                         R"("metadata":{{"name":"{}"}}}})",
                                         name));
    REQUIRE(n.ok());
    for (int d = 0; d < drives; ++d) {
      auto drive = Drive(name, "nvme" + std::to_string(d) + "n1", free, 4096, now);
      auto created = client_->Create(common::kube::MeshStorNodeDevices(), "",
                                     v1::EncodeMeshStorNodeDevice(drive));
      INFO(created.status().ToString());
      REQUIRE(created.ok());
      auto stored = v1::DecodeMeshStorNodeDevice(*created);
      REQUIRE(stored.ok());
      stored->status = drive.status;
      auto st =
          client_->UpdateStatus(common::kube::MeshStorNodeDevices(), {"", drive.metadata.name},
                                v1::EncodeMeshStorNodeDevice(*stored));
      INFO(st.status().ToString());
      REQUIRE(st.ok());
    }
  }

  // Heartbeat: every drive of nodes not in `down` reports updatedAt = now.
  void Heartbeat(std::chrono::system_clock::time_point now, const std::set<std::string>& down) {
    auto list = client_->ListAll(common::kube::MeshStorNodeDevices(), "");
    REQUIRE(list.ok());
    for (const auto& json : list->items) {
      auto d = v1::DecodeMeshStorNodeDevice(json);
      REQUIRE(d.ok());
      if (down.count(d->spec.node_name)) continue;
      d->status.updated_at = std::chrono::time_point_cast<std::chrono::seconds>(now);
      REQUIRE(client_
                  ->UpdateStatus(common::kube::MeshStorNodeDevices(), {"", d->metadata.name},
                                 v1::EncodeMeshStorNodeDevice(*d))
                  .ok());
    }
  }

  void CreateVolume(const v1::MeshStorVolume& v) {
    auto created =
        client_->Create(common::kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(v));
    INFO(created.status().ToString());
    REQUIRE(created.ok());
  }

  // NotFound → nullopt.
  std::optional<v1::MeshStorVolume> GetVolume(const std::string& name) {
    auto got = client_->Get(common::kube::MeshStorVolumes(), {"", name});
    if (!got.ok() && got.status().code() == common::StatusCode::kNotFound) return std::nullopt;
    INFO(got.status().ToString());
    REQUIRE(got.ok());
    auto v = v1::DecodeMeshStorVolume(*got);
    REQUIRE(v.ok());
    return *v;
  }

  // Edits the spec (as csi-shim would) with a conditional PUT.
  void EditSpec(const std::string& name, const std::function<void(v1::MeshStorVolumeSpec&)>& f) {
    for (int i = 0; i < 5; ++i) {
      auto v = GetVolume(name);
      REQUIRE(v);
      f(v->spec);
      auto r = client_->Update(common::kube::MeshStorVolumes(), {"", name},
                               v1::EncodeMeshStorVolume(*v));
      if (r.ok()) return;
      REQUIRE(r.status().code() == common::StatusCode::kAborted);
    }
    FAIL("could not edit spec");
  }

  // One agent step on the stored volume; true when it wrote (false also on a conflict with a
  // concurrent writer).
  bool StepAgentsOnServer(const std::string& name, const AgentWorld& w) {
    auto v = GetVolume(name);
    if (!v) return false;
    if (!StepAgents(*v, w)) return false;
    auto r = client_->UpdateStatus(common::kube::MeshStorVolumes(), {"", name},
                                   v1::EncodeMeshStorVolume(*v));
    // A concurrent operator write wins; the agent simply tries again on its next step.
    if (!r.ok() && r.status().code() == common::StatusCode::kAborted) return false;
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return true;
  }

 private:
  std::unique_ptr<tools::apiserver::TestApiServer> server_;
  std::unique_ptr<common::kube::HttpTransport> transport_;
  std::unique_ptr<common::kube::Client> client_;
};

}  // namespace meshstor_operator::testing
