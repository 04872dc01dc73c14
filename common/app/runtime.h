// Runtime: the pieces every MeshStor binary runs — a Kubernetes client from the kubeconfig
// options, a metrics registry with meshstor_build_info, and the /metrics, /healthz, /readyz
// server whose readiness check is "the API server answers a list of <probe type>" (which also
// proves the CRDs are installed and RBAC allows reading them).
//
// Thread contract: created and destroyed on the main thread; registry() and client() are
// thread-safe objects.
#pragma once

#include <memory>
#include <string>

#include "common/app/app.h"
#include "common/http/health_server.h"
#include "common/kube/client.h"
#include "common/kube/http_transport.h"
#include "common/metrics/metrics.h"

namespace common::app {

class Runtime {
 public:
  // Connects nothing yet (the client connects per request) but fails on an unusable kubeconfig
  // or a metrics address that cannot be bound, naming which.
  static Result<std::unique_ptr<Runtime>> Start(std::string component, const CommonOptions& options,
                                                const kube::ResourceType& probe_type);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  metrics::Registry& registry() { return *registry_; }
  kube::Client& client() { return *client_; }
  http::HealthServer& health() { return *health_; }
  const std::string& server_url() const { return server_url_; }

 private:
  Runtime() = default;

  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<kube::HttpTransport> transport_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<http::HealthServer> health_;
  std::string server_url_;
};

}  // namespace common::app
