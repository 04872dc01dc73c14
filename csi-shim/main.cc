// meshstor-csi-shim: the CSI v1 endpoint (controller mode beside the operator, node mode beside
// the agent). This main only wires options, the runtime (Kubernetes client, /metrics, /healthz,
// /readyz) and the CSI gRPC server on the unix socket, and stops gracefully on SIGTERM/SIGINT.
#include <chrono>
#include <cstdio>

#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/log/log.h"
#include "common/time/clock.h"
#include "csi-shim/fs_stats.h"
#include "csi-shim/server.h"
#include "csi-shim/volume_client.h"

int main(int argc, char** argv) {
  using common::log::Root;
  common::app::CommonOptions common_options;
  common_options.metrics_address = ":9820";
  std::string mode = "controller";
  std::string endpoint = "unix:///csi/csi.sock";
  std::string node_name;
  std::chrono::milliseconds wait_timeout = std::chrono::seconds(60);
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(250);
  int64_t max_volumes_per_node = 0;

  common::config::Config config(
      "meshstor-csi-shim", "Serves CSI v1 and translates each call into a MeshStorVolume edit");
  common::app::AddCommonOptions(config, &common_options);
  config.AddString("mode", &mode, "CSI services to serve", {"controller", "node"});
  config.AddString("endpoint", &endpoint, "CSI endpoint (unix:///path)");
  config.AddString("node-name", &node_name, "Kubernetes name of this node (node mode)");
  config.AddDuration("wait-timeout", &wait_timeout,
                     "Longest a CSI call waits for its result before answering a retryable error",
                     {.min = std::chrono::milliseconds(100)});
  config.AddDuration("poll-interval", &poll_interval,
                     "How often a waiting CSI call re-reads its MeshStorVolume",
                     {.min = std::chrono::milliseconds(10)});
  config.AddInt64("max-volumes-per-node", &max_volumes_per_node,
                  "Volumes this node may consume, reported to Kubernetes (0: no limit)",
                  {.min = 0});
  if (int code = common::app::LoadOrExit(config, common_options, argc, argv); code >= 0) {
    return code;
  }
  if (auto path = csi_shim::SocketPathOf(endpoint); !path.ok()) {
    std::fprintf(stderr, "flag --endpoint: %s\n", path.status().message().c_str());
    return 2;
  }
  if (mode == "node" && node_name.empty()) {
    std::fprintf(stderr, "flag --node-name (or MESHSTOR_NODE_NAME) is required in node mode\n");
    return 2;
  }

  common::app::BlockTerminationSignals();
  auto runtime =
      common::app::Runtime::Start("csi-shim", common_options, common::kube::MeshStorVolumes());
  if (!runtime.ok()) {
    Root().Error(runtime.status(), "Could not start");
    return 1;
  }
  csi_shim::VolumeClient volumes((*runtime)->client(), common::time::RealClock::Get(),
                                 {.poll_interval = poll_interval});
  csi_shim::StatvfsFsStats fs_stats;
  auto server =
      csi_shim::CsiServer::Start({.endpoint = endpoint,
                                  .controller = mode == "controller",
                                  .node = mode == "node",
                                  .services = {.version = MESHSTOR_VERSION,
                                               .node_name = node_name,
                                               .wait_timeout = wait_timeout,
                                               .max_volumes_per_node = max_volumes_per_node}},
                                 volumes, fs_stats);
  if (!server.ok()) {
    Root().Error(server.status(), "Could not serve CSI", {{"endpoint", endpoint}});
    return 1;
  }
  Root().Info("Started CSI shim", {{"mode", mode}, {"endpoint", endpoint}, {"node", node_name}});
  int sig = common::app::WaitForTerminationSignal();
  Root().Info("Stopping", {{"signal", sig}});
  (*server)->Stop();
  return 0;
}
