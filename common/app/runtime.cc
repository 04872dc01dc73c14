#include "common/app/runtime.h"

#include "common/kube/kubeconfig.h"
#include "common/log/log.h"

namespace common::app {

Result<std::unique_ptr<Runtime>> Runtime::Start(std::string component, const CommonOptions& options,
                                                const kube::ResourceType& probe_type) {
  std::unique_ptr<Runtime> rt(new Runtime());
  ASSIGN_OR_RETURN(ListenAddress listen, ParseListenAddress(options.metrics_address));
  ASSIGN_OR_RETURN(kube::RestConfig rest, kube::LoadRestConfig(options.kubeconfig));
  rt->server_url_ = rest.server;
  ASSIGN_OR_RETURN(rt->transport_, kube::HttpTransport::Create(rest));
  rt->client_ = std::make_unique<kube::Client>(*rt->transport_);

  rt->registry_ = std::make_unique<metrics::Registry>();
  ASSIGN_OR_RETURN(metrics::GaugeFamily * info,
                   rt->registry_->AddGauge("meshstor_build_info", "MeshStor build; always 1",
                                           {"component", "version"}));
  info->WithLabels({component, MESHSTOR_VERSION}).Set(1);

  rt->health_ = std::make_unique<http::HealthServer>(listen.host, listen.port, *rt->registry_);
  kube::Client* client = rt->client_.get();
  RETURN_IF_ERROR(
      rt->health_->AddReadinessCheck("kubernetes-api", [client, probe_type]() -> Status {
        Result<kube::ListResult> r = client->List(probe_type, "", kube::ListOptions{.limit = 1});
        return r.ok() ? OkStatus() : r.status().WithContext("listing " + probe_type.plural);
      }));
  RETURN_IF_ERROR(rt->health_->Start());
  log::Root().Info("Started health server",
                   {{"component", component},
                    {"address", fmt::format("{}:{}", listen.host, rt->health_->port())},
                    {"apiServer", rest.server}});
  return rt;
}

Runtime::~Runtime() {
  if (health_) health_->Stop();
}

}  // namespace common::app
