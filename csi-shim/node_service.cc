#include "csi-shim/node_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "csi-shim/parameters.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;
using common::InvalidArgumentError;
using common::Result;
using common::Status;
using common::StatusCode;
using RpcType = csi::v1::NodeServiceCapability::RPC;

constexpr size_t kMaxPublishTargets = 64;  // the CRD's maxItems

// Both IDs and paths are required by every node call that takes them.
Status RequireField(const std::string& value, std::string_view field) {
  if (value.empty()) return InvalidArgumentError("{} is missing", field);
  return common::OkStatus();
}

// An ID that cannot name a MeshStorVolume names none.
Status RequireKnownId(const std::string& volume_id) {
  RETURN_IF_ERROR(RequireField(volume_id, "volume_id"));
  if (!ValidateVolumeName(volume_id, "volume_id").ok()) {
    return common::NotFoundError("volume {} does not exist", volume_id);
  }
  return common::OkStatus();
}

// Whether `node` has the volume staged, as its agent reports.
bool StagedOn(const v1::MeshStorVolume& v, const std::string& node) {
  return v.status.node_name == node && !v.status.staged_path.empty();
}

// "Ready is False (Placing: no node has space)", for waits that are still waiting.
std::string ReadyText(const v1::MeshStorVolume& v) {
  const auto* ready = common::api::FindCondition(v.status.conditions, std::string(kConditionReady));
  if (ready == nullptr) return "no Ready condition yet";
  return fmt::format("Ready is {} ({}: {})", common::api::ConditionStatusName(ready->status),
                     ready->reason, ready->message);
}

bool Fenced(const v1::MeshStorVolume& v, const std::string& node) {
  const auto& f = v.spec.fenced_nodes;
  return std::find(f.begin(), f.end(), node) != f.end();
}

// The operator declared `node` dead, fenced it and every reachable exporter confirmed
// (docs/design.md §5.1): its stale status no longer holds the volume.
bool FencedConsumer(const v1::MeshStorVolume& v, const std::string& node) {
  return Fenced(v, node) && v.status.fenced_consumer && v.status.fenced_consumer->node == node;
}

bool IsPublished(const v1::MeshStorVolume& v, const std::string& path) {
  const auto& targets = v.status.published_targets;
  return std::find(targets.begin(), targets.end(), path) != targets.end();
}

}  // namespace

NodeService::NodeService(VolumeClient& volumes, VolumeLocks& locks, FsStats& fs_stats,
                         ServiceOptions options)
    : volumes_(volumes), locks_(locks), fs_stats_(fs_stats), options_(std::move(options)) {}

Status NodeService::Wait(const grpc::ServerContext& context, const std::string& volume_id,
                         const VolumeClient::Check& done) {
  auto deadline = WaitDeadline(context, volumes_.clock(), options_.wait_timeout);
  return volumes_.WaitFor(volume_id, done, deadline, [&] { return context.IsCancelled(); })
      .status();
}

grpc::Status NodeService::NodeStageVolume(grpc::ServerContext* context,
                                          const csi::v1::NodeStageVolumeRequest* req,
                                          csi::v1::NodeStageVolumeResponse* /*resp*/) {
  return RunCall("NodeStageVolume", req->volume_id(), true,
                 [&] { return DoStage(*context, *req); });
}

Status NodeService::DoStage(const grpc::ServerContext& context,
                            const csi::v1::NodeStageVolumeRequest& req) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.staging_target_path(), "staging_target_path"));
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability is missing");
  RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "NodeStageVolume"));
  const std::string& me = options_.node_name;
  const std::string& path = req.staging_target_path();
  auto take_over = [&](v1::MeshStorVolume& v) -> Result<bool> {
    if (v.metadata.deletion_timestamp.has_value()) {
      return common::FailedPreconditionError("volume {} is being deleted", req.volume_id());
    }
    const std::string& consumer = v.spec.consumer_node;
    if (Fenced(v, me)) {
      return common::FailedPreconditionError(
          "volume {} is fenced from node {} (spec.fencedNodes: the node was declared dead); stage "
          "it on another node, or, once this node is healthy and nothing else uses the volume, "
          "remove {} from spec.fencedNodes",
          req.volume_id(), me, me);
    }
    if (consumer == me) {
      if (v.spec.staging_path == path) return false;
      if (!v.spec.staging_path.empty() && StagedOn(v, me)) {
        return common::FailedPreconditionError(
            "volume {} is already staged on this node at {}, not at {}", req.volume_id(),
            v.spec.staging_path, path);
      }
      v.spec.staging_path = path;
      return true;
    }
    if (!consumer.empty() && Fenced(v, consumer) && !FencedConsumer(v, consumer)) {
      return common::UnavailableError(
          "volume {} is being taken from node {}, which was declared dead: waiting for every "
          "exporter to confirm that it cut {} off",
          req.volume_id(), consumer, consumer);
    }
    if (!consumer.empty() && StagedOn(v, consumer) && !FencedConsumer(v, consumer)) {
      return common::FailedPreconditionError(
          "volume {} is still staged on node {}; it must be unstaged there first (if that node "
          "is dead, taint it node.kubernetes.io/out-of-service so the operator fences it and the "
          "volume can move)",
          req.volume_id(), consumer);
    }
    // Empty, a node that no longer holds it, or a fenced dead consumer (take-over): move here.
    // The write carries the resourceVersion read, so it cannot race the operator lifting the
    // fence (spec.fencedNodes is in the same object).
    // A dead consumer's publish targets are its pods' paths, not ours.
    if (!consumer.empty() && FencedConsumer(v, consumer)) v.spec.publish_targets.clear();
    v.spec.consumer_node = me;
    v.spec.staging_path = path;
    return true;
  };
  RETURN_IF_ERROR(volumes_.Modify(req.volume_id(), take_over).status());
  return Wait(context, req.volume_id(), [&](const v1::MeshStorVolume& v) -> Status {
    if (v.spec.consumer_node != me) {
      return common::FailedPreconditionError("volume {} was taken over by node {}", req.volume_id(),
                                             v.spec.consumer_node);
    }
    const auto* ready =
        common::api::FindCondition(v.status.conditions, std::string(kConditionReady));
    if (StagedOn(v, me) && v.status.staged_path == path && ready != nullptr &&
        ready->status == common::api::ConditionStatus::kTrue) {
      return common::OkStatus();
    }
    return common::UnavailableError("waiting for the agent to stage it on {} at {}: {}", me, path,
                                    ReadyText(v));
  });
}

grpc::Status NodeService::NodeUnstageVolume(grpc::ServerContext* context,
                                            const csi::v1::NodeUnstageVolumeRequest* req,
                                            csi::v1::NodeUnstageVolumeResponse* /*resp*/) {
  return RunCall("NodeUnstageVolume", req->volume_id(), true,
                 [&] { return DoUnstage(*context, *req); });
}

Status NodeService::DoUnstage(const grpc::ServerContext& context,
                              const csi::v1::NodeUnstageVolumeRequest& req) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.staging_target_path(), "staging_target_path"));
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "NodeUnstageVolume"));
  const std::string& me = options_.node_name;
  RETURN_IF_ERROR(volumes_
                      .Modify(req.volume_id(),
                              [&](v1::MeshStorVolume& v) -> Result<bool> {
                                if (v.spec.consumer_node != me) return false;
                                v.spec.consumer_node.clear();
                                v.spec.staging_path.clear();
                                return true;
                              })
                      .status());
  return Wait(context, req.volume_id(), [&](const v1::MeshStorVolume& v) -> Status {
    if (!StagedOn(v, me)) return common::OkStatus();
    return common::UnavailableError("waiting for the agent to unstage it from {} (staged at {})",
                                    me, v.status.staged_path);
  });
}

grpc::Status NodeService::NodePublishVolume(grpc::ServerContext* context,
                                            const csi::v1::NodePublishVolumeRequest* req,
                                            csi::v1::NodePublishVolumeResponse* /*resp*/) {
  return RunCall("NodePublishVolume", req->volume_id(), true,
                 [&] { return DoPublish(*context, *req); });
}

Status NodeService::DoPublish(const grpc::ServerContext& context,
                              const csi::v1::NodePublishVolumeRequest& req) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.staging_target_path(), "staging_target_path"));
  RETURN_IF_ERROR(RequireField(req.target_path(), "target_path"));
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability is missing");
  RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "NodePublishVolume"));
  const std::string& me = options_.node_name;
  const std::string& path = req.target_path();
  RETURN_IF_ERROR(volumes_
                      .Modify(req.volume_id(),
                              [&](v1::MeshStorVolume& v) -> Result<bool> {
                                if (v.spec.consumer_node != me) {
                                  return common::FailedPreconditionError(
                                      "volume {} is not staged on node {} (consumer: \"{}\")",
                                      req.volume_id(), me, v.spec.consumer_node);
                                }
                                auto& targets = v.spec.publish_targets;
                                auto it =
                                    std::find_if(targets.begin(), targets.end(),
                                                 [&](const auto& t) { return t.path == path; });
                                if (it != targets.end()) {
                                  if (it->read_only == req.readonly()) return false;
                                  return common::AlreadyExistsError(
                                      "volume {} is already published at {} with readonly={}",
                                      req.volume_id(), path, it->read_only);
                                }
                                if (targets.size() >= kMaxPublishTargets) {
                                  return common::ResourceExhaustedError(
                                      "volume {} already has {} publish targets", req.volume_id(),
                                      targets.size());
                                }
                                targets.push_back({.path = path, .read_only = req.readonly()});
                                return true;
                              })
                      .status());
  return Wait(context, req.volume_id(), [&](const v1::MeshStorVolume& v) -> Status {
    if (v.spec.consumer_node != me) {
      return common::FailedPreconditionError("volume {} was taken over by node {}", req.volume_id(),
                                             v.spec.consumer_node);
    }
    if (v.status.node_name == me && IsPublished(v, path)) return common::OkStatus();
    return common::UnavailableError("waiting for the agent to publish it at {}", path);
  });
}

grpc::Status NodeService::NodeUnpublishVolume(grpc::ServerContext* context,
                                              const csi::v1::NodeUnpublishVolumeRequest* req,
                                              csi::v1::NodeUnpublishVolumeResponse* /*resp*/) {
  return RunCall("NodeUnpublishVolume", req->volume_id(), true,
                 [&] { return DoUnpublish(*context, *req); });
}

Status NodeService::DoUnpublish(const grpc::ServerContext& context,
                                const csi::v1::NodeUnpublishVolumeRequest& req) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.target_path(), "target_path"));
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "NodeUnpublishVolume"));
  const std::string& me = options_.node_name;
  const std::string& path = req.target_path();
  RETURN_IF_ERROR(volumes_
                      .Modify(req.volume_id(),
                              [&](v1::MeshStorVolume& v) -> Result<bool> {
                                auto& targets = v.spec.publish_targets;
                                auto removed = std::erase_if(
                                    targets, [&](const auto& t) { return t.path == path; });
                                return removed > 0;
                              })
                      .status());
  return Wait(context, req.volume_id(), [&](const v1::MeshStorVolume& v) -> Status {
    if (v.status.node_name != me || !IsPublished(v, path)) return common::OkStatus();
    return common::UnavailableError("waiting for the agent to unpublish it from {}", path);
  });
}

grpc::Status NodeService::NodeExpandVolume(grpc::ServerContext* context,
                                           const csi::v1::NodeExpandVolumeRequest* req,
                                           csi::v1::NodeExpandVolumeResponse* resp) {
  return RunCall("NodeExpandVolume", req->volume_id(), true,
                 [&] { return DoExpand(*context, *req, resp); });
}

Status NodeService::DoExpand(const grpc::ServerContext& context,
                             const csi::v1::NodeExpandVolumeRequest& req,
                             csi::v1::NodeExpandVolumeResponse* resp) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.volume_path(), "volume_path"));
  if (req.has_volume_capability()) {
    RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  }
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "NodeExpandVolume"));
  const std::string& me = options_.node_name;
  const int64_t required = req.capacity_range().required_bytes();
  const int64_t limit = req.capacity_range().limit_bytes();
  int64_t capacity = 0;
  RETURN_IF_ERROR(Wait(context, req.volume_id(), [&](const v1::MeshStorVolume& v) -> Status {
    if (v.spec.consumer_node != me) {
      return common::FailedPreconditionError("volume {} is not staged on node {}", req.volume_id(),
                                             me);
    }
    if (v.spec.capacity_bytes < required) {
      return common::FailedPreconditionError(
          "volume {} has capacity {} bytes, below required_bytes {}: expand it through the "
          "controller first",
          req.volume_id(), v.spec.capacity_bytes, required);
    }
    if (limit > 0 && v.spec.capacity_bytes > limit) {
      return common::OutOfRangeError("volume {} has capacity {} bytes, above limit_bytes {}",
                                     req.volume_id(), v.spec.capacity_bytes, limit);
    }
    bool observed = v.status.observed_generation.value_or(0) >= v.metadata.generation;
    if (!observed || v.status.phase == v1::VolumePhase::kExpanding) {
      return common::UnavailableError("waiting for the expansion to {} bytes to finish",
                                      v.spec.capacity_bytes);
    }
    // The members and the array grew; the agent grows the filesystem last. kubelet takes OK as
    // "the filesystem has the new size".
    if (v.status.node_name != me || !v.status.filesystem_bytes ||
        *v.status.filesystem_bytes + v1::kFilesystemSlackBytes < v.spec.capacity_bytes) {
      return common::UnavailableError(
          "waiting for the agent on {} to grow the filesystem to {} bytes (now {})", me,
          v.spec.capacity_bytes,
          v.status.filesystem_bytes ? std::to_string(*v.status.filesystem_bytes) : "unknown");
    }
    capacity = v.spec.capacity_bytes;
    return common::OkStatus();
  }));
  resp->set_capacity_bytes(capacity);
  return common::OkStatus();
}

grpc::Status NodeService::NodeGetVolumeStats(grpc::ServerContext* /*context*/,
                                             const csi::v1::NodeGetVolumeStatsRequest* req,
                                             csi::v1::NodeGetVolumeStatsResponse* resp) {
  return RunCall("NodeGetVolumeStats", req->volume_id(), false,
                 [&] { return DoStats(*req, resp); });
}

Status NodeService::DoStats(const csi::v1::NodeGetVolumeStatsRequest& req,
                            csi::v1::NodeGetVolumeStatsResponse* resp) {
  RETURN_IF_ERROR(RequireField(req.volume_id(), "volume_id"));
  RETURN_IF_ERROR(RequireField(req.volume_path(), "volume_path"));
  RETURN_IF_ERROR(RequireKnownId(req.volume_id()));
  ASSIGN_OR_RETURN(auto volume, volumes_.Get(req.volume_id()));
  auto usage = fs_stats_.Usage(req.volume_path());
  if (!usage.ok()) {
    if (usage.status().code() == StatusCode::kNotFound) {
      return common::NotFoundError("volume_path {} does not exist", req.volume_path());
    }
    return usage.status();
  }
  auto* bytes = resp->add_usage();
  bytes->set_unit(csi::v1::VolumeUsage::BYTES);
  bytes->set_total(usage->total_bytes);
  bytes->set_available(usage->available_bytes);
  bytes->set_used(usage->used_bytes);
  auto* inodes = resp->add_usage();
  inodes->set_unit(csi::v1::VolumeUsage::INODES);
  inodes->set_total(usage->total_inodes);
  inodes->set_available(usage->free_inodes);
  inodes->set_used(usage->used_inodes);

  auto* condition = resp->mutable_volume_condition();
  const auto* degraded =
      common::api::FindCondition(volume.status.conditions, std::string(kConditionDegraded));
  if (degraded != nullptr && degraded->status == common::api::ConditionStatus::kTrue) {
    condition->set_abnormal(true);
    condition->set_message(
        fmt::format("volume is degraded ({}: {})", degraded->reason, degraded->message));
  } else {
    condition->set_abnormal(false);
    condition->set_message("volume is healthy");
  }
  return common::OkStatus();
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext* /*context*/,
                                      const csi::v1::NodeGetInfoRequest* /*req*/,
                                      csi::v1::NodeGetInfoResponse* resp) {
  return RunCall("NodeGetInfo", "", false, [&] {
    resp->set_node_id(options_.node_name);
    resp->set_max_volumes_per_node(options_.max_volumes_per_node);
    return common::OkStatus();
  });
}

grpc::Status NodeService::NodeGetCapabilities(grpc::ServerContext* /*context*/,
                                              const csi::v1::NodeGetCapabilitiesRequest* /*req*/,
                                              csi::v1::NodeGetCapabilitiesResponse* resp) {
  return RunCall("NodeGetCapabilities", "", false, [&] {
    for (auto type : {RpcType::STAGE_UNSTAGE_VOLUME, RpcType::EXPAND_VOLUME,
                      RpcType::GET_VOLUME_STATS, RpcType::VOLUME_CONDITION}) {
      resp->add_capabilities()->mutable_rpc()->set_type(type);
    }
    return common::OkStatus();
  });
}

}  // namespace csi_shim
