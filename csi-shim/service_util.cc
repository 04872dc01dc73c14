#include "csi-shim/service_util.h"

namespace csi_shim {
namespace {

using common::InvalidArgumentError;
using common::Status;
using common::StatusCode;
using Mode = csi::v1::VolumeCapability::AccessMode;

}  // namespace

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status ValidateCapability(const csi::v1::VolumeCapability& capability, std::string_view field) {
  if (!capability.has_access_mode()) {
    return InvalidArgumentError("{}.access_mode is missing", field);
  }
  if (capability.access_mode().mode() != Mode::SINGLE_NODE_WRITER) {
    return InvalidArgumentError("{}.access_mode {} is not supported (only SINGLE_NODE_WRITER)",
                                field, Mode::Mode_Name(capability.access_mode().mode()));
  }
  switch (capability.access_type_case()) {
    case csi::v1::VolumeCapability::kMount: {
      const auto& mount = capability.mount();
      if (!mount.fs_type().empty() && mount.fs_type() != "xfs") {
        return InvalidArgumentError("{}.mount.fs_type \"{}\" is not supported (only xfs)", field,
                                    mount.fs_type());
      }
      if (mount.mount_flags_size() > 0) {
        return InvalidArgumentError(
            "{}.mount.mount_flags are not supported (MeshStor mounts xfs "
            "with its own options)",
            field);
      }
      return common::OkStatus();
    }
    case csi::v1::VolumeCapability::kBlock:
      return InvalidArgumentError("{}: block access is not supported (only mount)", field);
    default:
      return InvalidArgumentError("{}: access type (mount or block) is missing", field);
  }
}

std::chrono::steady_clock::time_point WaitDeadline(const grpc::ServerContext& context,
                                                   const common::time::Clock& clock,
                                                   std::chrono::milliseconds wait_timeout) {
  using std::chrono::milliseconds;
  auto now = clock.SteadyNow();
  auto deadline = now + wait_timeout;
  auto caller = context.deadline();
  auto wall = std::chrono::system_clock::now();
  // gRPC reports "no deadline" as a time far in the future.
  if (caller < wall + wait_timeout) {
    auto remaining = std::chrono::duration_cast<milliseconds>(caller - wall);
    // Keep a tenth of the time (at most a second) to send the answer.
    auto margin = std::min<milliseconds>(remaining / 10, milliseconds(1000));
    auto bound = remaining - margin;
    if (bound < milliseconds(0)) bound = milliseconds(0);
    deadline = std::min(deadline, now + bound);
  }
  return deadline;
}

grpc::Status RunCall(std::string_view method, std::string_view volume_id, bool mutating,
                     const std::function<Status()>& body) {
  auto start = std::chrono::steady_clock::now();
  Status status = body();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  common::log::Logger log = common::log::Root().WithValues(
      {{"method", method}, {"volume_id", volume_id}, {"duration_ms", ms}});
  switch (status.code()) {
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
    case StatusCode::kDataLoss:
      log.Error(status, "Failed CSI call");
      break;
    case StatusCode::kOk:
      (mutating ? log : log.V(2)).Info("Handled CSI call");
      break;
    default:
      (mutating ? log : log.V(2))
          .Info("Refused CSI call",
                {{"code", common::StatusCodeName(status.code())}, {"reason", status.message()}});
      break;
  }
  return ToGrpc(status);
}

}  // namespace csi_shim
