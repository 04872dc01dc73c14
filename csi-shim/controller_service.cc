#include "csi-shim/controller_service.h"

#include <map>
#include <string>
#include <utility>

#include "common/api/v1alpha1/geometry.h"
#include "common/api/v1alpha1/volume_id.h"
#include "csi-shim/eligibility.h"
#include "csi-shim/parameters.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;
using common::InvalidArgumentError;
using common::Result;
using common::Status;
using common::StatusCode;
using RpcType = csi::v1::ControllerServiceCapability::RPC;

std::map<std::string, std::string> ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

Status ValidateCapabilities(
    const google::protobuf::RepeatedPtrField<csi::v1::VolumeCapability>& caps,
    std::string_view field) {
  if (caps.empty()) return InvalidArgumentError("{} is missing", field);
  for (int i = 0; i < caps.size(); ++i) {
    RETURN_IF_ERROR(ValidateCapability(caps[i], fmt::format("{}[{}]", field, i)));
  }
  return common::OkStatus();
}

// OK when `existing` is what a CreateVolume with these parameters and range would create.
Status CheckCompatible(const v1::MeshStorVolume& existing, const VolumeParameters& params,
                       int64_t required_bytes, int64_t limit_bytes) {
  const std::string& name = existing.metadata.name;
  if (existing.metadata.deletion_timestamp.has_value()) {
    return common::AbortedError("volume {} is being deleted; retry once it is gone", name);
  }
  VolumeParameters have = ParametersOf(existing.spec);
  if (have != params) {
    return common::AlreadyExistsError(
        "volume {} exists with other parameters (replicaCount {}, stripeWidth {}, "
        "memberMissingTimeout {}, sectorSize {})",
        name, have.replica_count, have.stripe_width, have.member_missing_timeout, have.sector_size);
  }
  if (!CapacityFits(existing.spec.capacity_bytes, required_bytes, limit_bytes)) {
    return common::AlreadyExistsError(
        "volume {} exists with capacity {} bytes, outside the requested range (required {}, "
        "limit {})",
        name, existing.spec.capacity_bytes, required_bytes, limit_bytes);
  }
  return common::OkStatus();
}

// OK when `existing` was created for the CSI name `csi_name`. Two names meeting in one volume ID
// (a hash collision) is refused: the other name's volume is never handed out.
Status CheckSameName(const v1::MeshStorVolume& existing, std::string_view csi_name) {
  std::string_view have = v1::CsiNameOf(existing);
  if (have == csi_name) return common::OkStatus();
  return common::AlreadyExistsError(
      "volume ID {} of name \"{}\" is taken by the volume of name \"{}\" (the names' hashes "
      "collide); choose another name",
      existing.metadata.name, csi_name, have);
}

void FillVolume(const v1::MeshStorVolume& volume, csi::v1::Volume* out) {
  out->set_volume_id(volume.metadata.name);
  out->set_capacity_bytes(volume.spec.capacity_bytes);
}

}  // namespace

ControllerService::ControllerService(VolumeClient& volumes, VolumeLocks& locks)
    : volumes_(volumes), locks_(locks) {}

grpc::Status ControllerService::CreateVolume(grpc::ServerContext* /*context*/,
                                             const csi::v1::CreateVolumeRequest* req,
                                             csi::v1::CreateVolumeResponse* resp) {
  return RunCall("CreateVolume", req->name(), true, [&] { return DoCreate(*req, resp); });
}

Status ControllerService::DoCreate(const csi::v1::CreateVolumeRequest& req,
                                   csi::v1::CreateVolumeResponse* resp) {
  ASSIGN_OR_RETURN(const std::string id, v1::VolumeIdForCsiName(req.name(), "name"));
  RETURN_IF_ERROR(ValidateCapabilities(req.volume_capabilities(), "volume_capabilities"));
  if (req.has_volume_content_source()) {
    return InvalidArgumentError("volume_content_source is not supported (no snapshots or clones)");
  }
  if (!req.mutable_parameters().empty()) {
    return InvalidArgumentError("mutable_parameters are not supported");
  }
  ASSIGN_OR_RETURN(VolumeParameters params, ParseParameters(ToMap(req.parameters())));
  const int64_t required = req.capacity_range().required_bytes();
  const int64_t limit = req.capacity_range().limit_bytes();
  ASSIGN_OR_RETURN(int64_t capacity, CapacityForRange(required, limit));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(id, "CreateVolume"));

  auto existing = volumes_.Get(id);
  if (existing.ok()) {
    RETURN_IF_ERROR(CheckSameName(*existing, req.name()));
    RETURN_IF_ERROR(CheckCompatible(*existing, params, required, limit));
    FillVolume(*existing, resp->mutable_volume());
    return common::OkStatus();
  }
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();

  ASSIGN_OR_RETURN(auto devices, volumes_.ListDevices());
  const int64_t member = v1::MemberSizeBytes(capacity, params.stripe_width);
  auto qualifying = QualifyingNodes(devices, params, member);
  if (static_cast<int64_t>(qualifying.size()) < params.replica_count) {
    return common::FailedPreconditionError(
        "only {} node(s) qualify for volume {}, replicaCount {} needs {}: a node qualifies with "
        "at least {} drive(s) of sector size {} each with a free extent of at least {} bytes",
        qualifying.size(), id, params.replica_count, params.replica_count, params.stripe_width,
        params.sector_size, member);
  }

  v1::MeshStorVolume volume;
  volume.metadata.name = id;
  volume.metadata.annotations[std::string(v1::kCsiNameAnnotation)] = req.name();
  volume.spec.capacity_bytes = capacity;
  volume.spec.replica_count = params.replica_count;
  volume.spec.stripe_width = params.stripe_width;
  volume.spec.member_missing_timeout = params.member_missing_timeout;
  volume.spec.sector_size = params.sector_size;
  auto created = volumes_.Create(volume);
  if (!created.ok()) {
    if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
    // Created meanwhile by someone else (another shim): judge it like any existing volume.
    ASSIGN_OR_RETURN(auto other, volumes_.Get(id));
    RETURN_IF_ERROR(CheckSameName(other, req.name()));
    RETURN_IF_ERROR(CheckCompatible(other, params, required, limit));
    created = std::move(other);
  }
  FillVolume(*created, resp->mutable_volume());
  return common::OkStatus();
}

grpc::Status ControllerService::DeleteVolume(grpc::ServerContext* /*context*/,
                                             const csi::v1::DeleteVolumeRequest* req,
                                             csi::v1::DeleteVolumeResponse* /*resp*/) {
  return RunCall("DeleteVolume", req->volume_id(), true, [&] { return DoDelete(*req); });
}

Status ControllerService::DoDelete(const csi::v1::DeleteVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id is missing");
  // An ID that cannot name a volume names none: deleting it succeeds (idempotent).
  if (!ValidateVolumeName(req.volume_id(), "volume_id").ok()) return common::OkStatus();
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "DeleteVolume"));
  return volumes_.Delete(req.volume_id());
}

grpc::Status ControllerService::ControllerExpandVolume(
    grpc::ServerContext* /*context*/, const csi::v1::ControllerExpandVolumeRequest* req,
    csi::v1::ControllerExpandVolumeResponse* resp) {
  return RunCall("ControllerExpandVolume", req->volume_id(), true,
                 [&] { return DoExpand(*req, resp); });
}

Status ControllerService::DoExpand(const csi::v1::ControllerExpandVolumeRequest& req,
                                   csi::v1::ControllerExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id is missing");
  if (!req.has_capacity_range()) return InvalidArgumentError("capacity_range is missing");
  if (req.has_volume_capability()) {
    RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  }
  if (!ValidateVolumeName(req.volume_id(), "volume_id").ok()) {
    return common::NotFoundError("volume {} does not exist", req.volume_id());
  }
  const int64_t required = req.capacity_range().required_bytes();
  const int64_t limit = req.capacity_range().limit_bytes();
  ASSIGN_OR_RETURN(int64_t capacity, CapacityForRange(required, limit));
  ASSIGN_OR_RETURN(auto lock, locks_.TryLock(req.volume_id(), "ControllerExpandVolume"));
  ASSIGN_OR_RETURN(
      auto volume, volumes_.Modify(req.volume_id(), [&](v1::MeshStorVolume& v) -> Result<bool> {
        if (v.metadata.deletion_timestamp.has_value()) {
          return common::FailedPreconditionError("volume {} is being deleted", req.volume_id());
        }
        if (v.spec.capacity_bytes >= capacity) return false;  // already that big: idempotent
        if (v.spec.stripe_width > 1) {
          // Capacity can never shrink again, so refuse here what the operator cannot do yet
          // (docs/design.md §5) rather than leave a request behind that never completes.
          return common::FailedPreconditionError(
              "volume {} has stripeWidth {}: expanding RAID10 volumes is not supported yet",
              req.volume_id(), v.spec.stripe_width);
        }
        v.spec.capacity_bytes = capacity;
        return true;
      }));
  if (limit > 0 && volume.spec.capacity_bytes > limit) {
    return common::OutOfRangeError("volume {} already has {} bytes, above limit_bytes {}",
                                   req.volume_id(), volume.spec.capacity_bytes, limit);
  }
  resp->set_capacity_bytes(volume.spec.capacity_bytes);
  resp->set_node_expansion_required(true);
  return common::OkStatus();
}

grpc::Status ControllerService::GetCapacity(grpc::ServerContext* /*context*/,
                                            const csi::v1::GetCapacityRequest* req,
                                            csi::v1::GetCapacityResponse* resp) {
  return RunCall("GetCapacity", "", false, [&] { return DoGetCapacity(*req, resp); });
}

Status ControllerService::DoGetCapacity(const csi::v1::GetCapacityRequest& req,
                                        csi::v1::GetCapacityResponse* resp) {
  for (int i = 0; i < req.volume_capabilities_size(); ++i) {
    RETURN_IF_ERROR(
        ValidateCapability(req.volume_capabilities(i), fmt::format("volume_capabilities[{}]", i)));
  }
  ASSIGN_OR_RETURN(VolumeParameters params, ParseParameters(ToMap(req.parameters())));
  ASSIGN_OR_RETURN(auto devices, volumes_.ListDevices());
  int64_t max = MaxVolumeCapacity(devices, params);
  if (max < v1::kMinCapacityBytes) max = 0;
  resp->set_available_capacity(max);
  resp->mutable_maximum_volume_size()->set_value(max);
  resp->mutable_minimum_volume_size()->set_value(v1::kMinCapacityBytes);
  return common::OkStatus();
}

grpc::Status ControllerService::ValidateVolumeCapabilities(
    grpc::ServerContext* /*context*/, const csi::v1::ValidateVolumeCapabilitiesRequest* req,
    csi::v1::ValidateVolumeCapabilitiesResponse* resp) {
  return RunCall("ValidateVolumeCapabilities", req->volume_id(), false,
                 [&] { return DoValidate(*req, resp); });
}

Status ControllerService::DoValidate(const csi::v1::ValidateVolumeCapabilitiesRequest& req,
                                     csi::v1::ValidateVolumeCapabilitiesResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id is missing");
  if (req.volume_capabilities().empty()) {
    return InvalidArgumentError("volume_capabilities is missing");
  }
  if (!ValidateVolumeName(req.volume_id(), "volume_id").ok()) {
    return common::NotFoundError("volume {} does not exist", req.volume_id());
  }
  ASSIGN_OR_RETURN(auto volume, volumes_.Get(req.volume_id()));
  // Unsupported capabilities or other parameters are an answer ("not confirmed"), not an error.
  for (int i = 0; i < req.volume_capabilities_size(); ++i) {
    Status s =
        ValidateCapability(req.volume_capabilities(i), fmt::format("volume_capabilities[{}]", i));
    if (!s.ok()) {
      resp->set_message(s.message());
      return common::OkStatus();
    }
  }
  if (!req.parameters().empty()) {
    auto params = ParseParameters(ToMap(req.parameters()));
    if (!params.ok()) {
      resp->set_message(params.status().message());
      return common::OkStatus();
    }
    if (*params != ParametersOf(volume.spec)) {
      resp->set_message(
          fmt::format("volume {} was created with other parameters", req.volume_id()));
      return common::OkStatus();
    }
  }
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_parameters() = req.parameters();
  return common::OkStatus();
}

grpc::Status ControllerService::ControllerGetCapabilities(
    grpc::ServerContext* /*context*/, const csi::v1::ControllerGetCapabilitiesRequest* /*req*/,
    csi::v1::ControllerGetCapabilitiesResponse* resp) {
  return RunCall("ControllerGetCapabilities", "", false, [&] {
    for (auto type :
         {RpcType::CREATE_DELETE_VOLUME, RpcType::GET_CAPACITY, RpcType::EXPAND_VOLUME}) {
      resp->add_capabilities()->mutable_rpc()->set_type(type);
    }
    return common::OkStatus();
  });
}

}  // namespace csi_shim
