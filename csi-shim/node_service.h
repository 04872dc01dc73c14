// The CSI Node service (node mode, beside the agent). Stateless: each call edits this node's
// intent in the MeshStorVolume named by the volume ID and waits, bounded, until the agent reports
// the result in the volume's status. The shim never mounts anything itself.
//
// - NodeStageVolume sets spec.consumerNode to this node (when empty, already this node, or a node
//   that no longer has it staged) and waits for Ready=True with status.nodeName = this node and a
//   status.stagedPath. Another node still holding it staged: FailedPrecondition.
// - NodeUnstageVolume clears spec.consumerNode and waits until this node no longer has it staged.
// - NodePublishVolume adds {target_path, readonly} to spec.publishTargets (the volume must be
//   staged here: FailedPrecondition otherwise; the same path with the other readonly value:
//   AlreadyExists) and waits for the path in status.publishedTargets; NodeUnpublishVolume removes
//   it and waits for it to leave status.publishedTargets.
// - NodeExpandVolume waits until the operator observed the current spec and the volume left phase
//   Expanding (the agent grows MD and XFS online).
// - NodeGetVolumeStats reads bytes and inodes of the path through FsStats; the volume condition is
//   abnormal while the volume is Degraded.
// A wait that runs out answers DeadlineExceeded, which kubelet retries; the retry finds the edit
// already made. Every call is idempotent.
//
// Thread contract: safe for concurrent calls; a second concurrent call on one volume is Aborted.
// Dependencies must outlive the service.
#pragma once

#include "common/proto/csi.grpc.pb.h"
#include "csi-shim/fs_stats.h"
#include "csi-shim/service_util.h"
#include "csi-shim/volume_client.h"
#include "csi-shim/volume_locks.h"

namespace csi_shim {

class NodeService final : public csi::v1::Node::Service {
 public:
  // REQUIRES: options.node_name is not empty.
  NodeService(VolumeClient& volumes, VolumeLocks& locks, FsStats& fs_stats, ServiceOptions options);

  grpc::Status NodeStageVolume(grpc::ServerContext* context,
                               const csi::v1::NodeStageVolumeRequest* req,
                               csi::v1::NodeStageVolumeResponse* resp) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext* context,
                                 const csi::v1::NodeUnstageVolumeRequest* req,
                                 csi::v1::NodeUnstageVolumeResponse* resp) override;
  grpc::Status NodePublishVolume(grpc::ServerContext* context,
                                 const csi::v1::NodePublishVolumeRequest* req,
                                 csi::v1::NodePublishVolumeResponse* resp) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext* context,
                                   const csi::v1::NodeUnpublishVolumeRequest* req,
                                   csi::v1::NodeUnpublishVolumeResponse* resp) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext* context,
                                const csi::v1::NodeExpandVolumeRequest* req,
                                csi::v1::NodeExpandVolumeResponse* resp) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext* context,
                                  const csi::v1::NodeGetVolumeStatsRequest* req,
                                  csi::v1::NodeGetVolumeStatsResponse* resp) override;
  grpc::Status NodeGetInfo(grpc::ServerContext* context, const csi::v1::NodeGetInfoRequest* req,
                           csi::v1::NodeGetInfoResponse* resp) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext* context,
                                   const csi::v1::NodeGetCapabilitiesRequest* req,
                                   csi::v1::NodeGetCapabilitiesResponse* resp) override;

 private:
  common::Status DoStage(const grpc::ServerContext& context,
                         const csi::v1::NodeStageVolumeRequest& req);
  common::Status DoUnstage(const grpc::ServerContext& context,
                           const csi::v1::NodeUnstageVolumeRequest& req);
  common::Status DoPublish(const grpc::ServerContext& context,
                           const csi::v1::NodePublishVolumeRequest& req);
  common::Status DoUnpublish(const grpc::ServerContext& context,
                             const csi::v1::NodeUnpublishVolumeRequest& req);
  common::Status DoExpand(const grpc::ServerContext& context,
                          const csi::v1::NodeExpandVolumeRequest& req,
                          csi::v1::NodeExpandVolumeResponse* resp);
  common::Status DoStats(const csi::v1::NodeGetVolumeStatsRequest& req,
                         csi::v1::NodeGetVolumeStatsResponse* resp);

  // Waits, bounded by the options and the caller's deadline, until `done` holds for the volume.
  common::Status Wait(const grpc::ServerContext& context, const std::string& volume_id,
                      const VolumeClient::Check& done);

  VolumeClient& volumes_;
  VolumeLocks& locks_;
  FsStats& fs_stats_;
  const ServiceOptions options_;
};

}  // namespace csi_shim
