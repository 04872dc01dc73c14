// The CSI Identity service, served in both modes: the plugin's name and version, its
// capabilities (controller service, online expansion; no topology), and Probe, which reports
// ready only while the Kubernetes API answers.
//
// Thread contract: safe for concurrent calls. `volumes` must outlive the service.
#pragma once

#include "common/proto/csi.grpc.pb.h"
#include "csi-shim/service_util.h"
#include "csi-shim/volume_client.h"

namespace csi_shim {

class IdentityService final : public csi::v1::Identity::Service {
 public:
  IdentityService(VolumeClient& volumes, ServiceOptions options);

  grpc::Status GetPluginInfo(grpc::ServerContext* context, const csi::v1::GetPluginInfoRequest* req,
                             csi::v1::GetPluginInfoResponse* resp) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext* context,
                                     const csi::v1::GetPluginCapabilitiesRequest* req,
                                     csi::v1::GetPluginCapabilitiesResponse* resp) override;
  grpc::Status Probe(grpc::ServerContext* context, const csi::v1::ProbeRequest* req,
                     csi::v1::ProbeResponse* resp) override;

 private:
  VolumeClient& volumes_;
  const ServiceOptions options_;
};

}  // namespace csi_shim
