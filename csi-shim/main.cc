// meshstor-csi-shim: the CSI v1 endpoint (controller mode beside the operator, node mode beside
// the agent). This main only wires options and the runtime (Kubernetes client, /metrics,
// /healthz, /readyz); the CSI services arrive with the CSI issue.
#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/log/log.h"

int main(int argc, char** argv) {
  using common::log::Root;
  common::app::CommonOptions common_options;
  common_options.metrics_address = ":9820";
  std::string mode = "controller";
  std::string endpoint = "unix:///csi/csi.sock";
  std::string node_name;

  common::config::Config config(
      "meshstor-csi-shim", "Serves CSI v1 and translates each call into a MeshStorVolume edit");
  common::app::AddCommonOptions(config, &common_options);
  config.AddString("mode", &mode, "CSI services to serve", {"controller", "node"});
  config.AddString("endpoint", &endpoint, "CSI endpoint (unix:///path)");
  config.AddString("node-name", &node_name, "Kubernetes name of this node (node mode)");
  if (int code = common::app::LoadOrExit(config, common_options, argc, argv); code >= 0) {
    return code;
  }
  if (endpoint.rfind("unix://", 0) != 0) {
    std::fprintf(stderr, "flag --endpoint: \"%s\" is not a unix:// endpoint\n", endpoint.c_str());
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
  Root().Info("Started CSI shim", {{"mode", mode}, {"endpoint", endpoint}});
  int sig = common::app::WaitForTerminationSignal();
  Root().Info("Stopping", {{"signal", sig}});
  return 0;
}
