// meshstor-agent: the per-node DaemonSet that carries out the member instructions of
// MeshStorVolume on its node. This main only wires options and the runtime (Kubernetes client,
// /metrics, /healthz, /readyz); drive inventory and the reconcilers arrive with the agent issue.
#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/log/log.h"

int main(int argc, char** argv) {
  using common::log::Root;
  common::app::CommonOptions common_options;
  common_options.metrics_address = ":9810";
  std::string node_name;

  common::config::Config config("meshstor-agent",
                                "Runs the MeshStor node agent (drives, exports, arrays, mounts)");
  common::app::AddCommonOptions(config, &common_options);
  config.AddString("node-name", &node_name,
                   "Kubernetes name of this node (from the downward API: MESHSTOR_NODE_NAME)");
  if (int code = common::app::LoadOrExit(config, common_options, argc, argv); code >= 0) {
    return code;
  }
  if (node_name.empty()) {
    std::fprintf(stderr, "flag --node-name (or MESHSTOR_NODE_NAME) is required\n");
    return 2;
  }

  common::app::BlockTerminationSignals();
  auto runtime =
      common::app::Runtime::Start("agent", common_options, common::kube::MeshStorNodeDevices());
  if (!runtime.ok()) {
    Root().Error(runtime.status(), "Could not start");
    return 1;
  }
  Root().Info("Started agent", {{"node", node_name}});
  int sig = common::app::WaitForTerminationSignal();
  Root().Info("Stopping", {{"signal", sig}});
  return 0;
}
