// The CSI Controller service (controller mode, beside the operator). Stateless: each call reads
// or edits the MeshStorVolume named by the CSI volume name/ID and answers from it.
//
// - CreateVolume validates the request and the StorageClass parameters, refuses
// (FailedPrecondition)
//   when fewer nodes than replicaCount have the drives for it, creates the volume (phase New) and
//   returns without waiting: placement happens when a node stages it. Idempotent by name; an
//   existing volume with other parameters or a capacity outside the range is AlreadyExists.
// - DeleteVolume deletes the volume and returns once the API server accepted the deletion. The
//   operator's finalizer then drives the teardown and the object disappears when every node
//   confirmed; a CreateVolume for the same name meanwhile gets Aborted (retryable). Not waiting
//   keeps the provisioner's call short, and a teardown that hangs stays visible on the object.
// - ControllerExpandVolume raises spec.capacityBytes; nodes finish the expansion online
//   (node_expansion_required).
// - GetCapacity answers from the drive inventory: the largest volume with the given parameters
//   that enough nodes could hold.
// ControllerPublish/Unpublish and ListVolumes are not served (UNIMPLEMENTED).
//
// Thread contract: safe for concurrent calls; calls on one volume are serialized by VolumeLocks
// (a second concurrent call is Aborted). Dependencies must outlive the service.
#pragma once

#include "common/proto/csi.grpc.pb.h"
#include "csi-shim/service_util.h"
#include "csi-shim/volume_client.h"
#include "csi-shim/volume_locks.h"

namespace csi_shim {

class ControllerService final : public csi::v1::Controller::Service {
 public:
  ControllerService(VolumeClient& volumes, VolumeLocks& locks);

  grpc::Status CreateVolume(grpc::ServerContext* context, const csi::v1::CreateVolumeRequest* req,
                            csi::v1::CreateVolumeResponse* resp) override;
  grpc::Status DeleteVolume(grpc::ServerContext* context, const csi::v1::DeleteVolumeRequest* req,
                            csi::v1::DeleteVolumeResponse* resp) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext* context,
                                      const csi::v1::ControllerExpandVolumeRequest* req,
                                      csi::v1::ControllerExpandVolumeResponse* resp) override;
  grpc::Status GetCapacity(grpc::ServerContext* context, const csi::v1::GetCapacityRequest* req,
                           csi::v1::GetCapacityResponse* resp) override;
  grpc::Status ValidateVolumeCapabilities(
      grpc::ServerContext* context, const csi::v1::ValidateVolumeCapabilitiesRequest* req,
      csi::v1::ValidateVolumeCapabilitiesResponse* resp) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext* context,
                                         const csi::v1::ControllerGetCapabilitiesRequest* req,
                                         csi::v1::ControllerGetCapabilitiesResponse* resp) override;

 private:
  common::Status DoCreate(const csi::v1::CreateVolumeRequest& req,
                          csi::v1::CreateVolumeResponse* resp);
  common::Status DoDelete(const csi::v1::DeleteVolumeRequest& req);
  common::Status DoExpand(const csi::v1::ControllerExpandVolumeRequest& req,
                          csi::v1::ControllerExpandVolumeResponse* resp);
  common::Status DoGetCapacity(const csi::v1::GetCapacityRequest& req,
                               csi::v1::GetCapacityResponse* resp);
  common::Status DoValidate(const csi::v1::ValidateVolumeCapabilitiesRequest& req,
                            csi::v1::ValidateVolumeCapabilitiesResponse* resp);

  VolumeClient& volumes_;
  VolumeLocks& locks_;
};

}  // namespace csi_shim
