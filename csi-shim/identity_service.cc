#include "csi-shim/identity_service.h"

#include <utility>

namespace csi_shim {

IdentityService::IdentityService(VolumeClient& volumes, ServiceOptions options)
    : volumes_(volumes), options_(std::move(options)) {}

grpc::Status IdentityService::GetPluginInfo(grpc::ServerContext* /*context*/,
                                            const csi::v1::GetPluginInfoRequest* /*req*/,
                                            csi::v1::GetPluginInfoResponse* resp) {
  return RunCall("GetPluginInfo", "", false, [&] {
    resp->set_name(options_.driver_name);
    resp->set_vendor_version(options_.version);
    return common::OkStatus();
  });
}

grpc::Status IdentityService::GetPluginCapabilities(
    grpc::ServerContext* /*context*/, const csi::v1::GetPluginCapabilitiesRequest* /*req*/,
    csi::v1::GetPluginCapabilitiesResponse* resp) {
  return RunCall("GetPluginCapabilities", "", false, [&] {
    resp->add_capabilities()->mutable_service()->set_type(
        csi::v1::PluginCapability::Service::CONTROLLER_SERVICE);
    resp->add_capabilities()->mutable_volume_expansion()->set_type(
        csi::v1::PluginCapability::VolumeExpansion::ONLINE);
    return common::OkStatus();
  });
}

grpc::Status IdentityService::Probe(grpc::ServerContext* /*context*/,
                                    const csi::v1::ProbeRequest* /*req*/,
                                    csi::v1::ProbeResponse* resp) {
  return RunCall("Probe", "", false, [&] {
    common::Status api = volumes_.Ping();
    if (!api.ok()) {
      common::log::Root().V(1).Info("Reported not ready", {{"error", api}});
    }
    resp->mutable_ready()->set_value(api.ok());
    return common::OkStatus();
  });
}

}  // namespace csi_shim
