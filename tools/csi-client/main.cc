// meshstor-csi-client: makes one CSI v1 call on a CSI endpoint and prints the response as one
// line of JSON, acting as the external-provisioner / external-resizer (controller calls) or
// kubelet (node calls) would. The lab drives a whole volume life cycle with it through the
// shim's sockets only; it also serves for poking at a deployed driver.
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "common/proto/csi.grpc.pb.h"
#include "tools/csi-client/args.h"

namespace {

using csi_client::Args;
namespace v1 = csi::v1;

// What a call needs: the three stubs and the parsed command line.
struct Ctx {
  const Args& args;
  v1::Identity::Stub& identity;
  v1::Controller::Stub& controller;
  v1::Node::Stub& node;
};

std::string Flag(const Args& a, const std::string& name, std::string fallback = {}) {
  auto it = a.flags.find(name);
  return it == a.flags.end() ? fallback : it->second;
}

// Sizes were validated by the caller before any RPC (see Validate).
int64_t Bytes(const Args& a, const std::string& name) {
  auto b = csi_client::ParseBytes(Flag(a, name, "0"));
  return b.ok() ? *b : 0;
}

common::Status Validate(const Args& a) {
  for (const char* name : {"capacity", "limit"}) {
    if (!a.flags.count(name)) continue;
    if (auto b = csi_client::ParseBytes(a.flags.at(name)); !b.ok()) {
      return common::InvalidArgumentError("--{}: {}", name, b.status().message());
    }
  }
  if (a.flags.count("access-mode")) {
    v1::VolumeCapability::AccessMode::Mode mode;
    if (!v1::VolumeCapability::AccessMode::Mode_Parse(a.flags.at("access-mode"), &mode)) {
      return common::InvalidArgumentError("--access-mode: unknown mode \"{}\"",
                                          a.flags.at("access-mode"));
    }
  }
  return common::OkStatus();
}

v1::VolumeCapability Capability(const Args& a) {
  v1::VolumeCapability cap;
  cap.mutable_mount()->set_fs_type(Flag(a, "fs-type", "xfs"));
  v1::VolumeCapability::AccessMode::Mode mode =
      v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER;
  v1::VolumeCapability::AccessMode::Mode_Parse(Flag(a, "access-mode", "SINGLE_NODE_WRITER"), &mode);
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

template <typename Response>
std::string ToJson(const Response& r) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(r, &out, options);
  return out;
}

// One RPC: builds its request, calls, prints the response. Returns the gRPC status.
using Call = std::function<grpc::Status(const Ctx&, grpc::ClientContext&, std::string* json)>;

template <typename Request, typename Response, typename Stub>
grpc::Status Invoke(Stub& stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    grpc::ClientContext& ctx, const Request& req, std::string* json) {
  Response resp;
  grpc::Status s = (stub.*method)(&ctx, req, &resp);
  if (s.ok()) *json = ToJson(resp);
  return s;
}

Call CallFor(const std::string& name) {
  using C = grpc::ClientContext;
  if (name == "plugin-info") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.identity, &v1::Identity::Stub::GetPluginInfo, ctx, v1::GetPluginInfoRequest(),
                    j);
    };
  }
  if (name == "plugin-capabilities") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.identity, &v1::Identity::Stub::GetPluginCapabilities, ctx,
                    v1::GetPluginCapabilitiesRequest(), j);
    };
  }
  if (name == "probe") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.identity, &v1::Identity::Stub::Probe, ctx, v1::ProbeRequest(), j);
    };
  }
  if (name == "controller-capabilities") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.controller, &v1::Controller::Stub::ControllerGetCapabilities, ctx,
                    v1::ControllerGetCapabilitiesRequest(), j);
    };
  }
  if (name == "create-volume") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::CreateVolumeRequest req;
      req.set_name(Flag(c.args, "name"));
      req.mutable_capacity_range()->set_required_bytes(Bytes(c.args, "capacity"));
      if (c.args.flags.count("limit")) {
        req.mutable_capacity_range()->set_limit_bytes(Bytes(c.args, "limit"));
      }
      *req.add_volume_capabilities() = Capability(c.args);
      for (const auto& [k, v] : c.args.params) (*req.mutable_parameters())[k] = v;
      return Invoke(c.controller, &v1::Controller::Stub::CreateVolume, ctx, req, j);
    };
  }
  if (name == "delete-volume") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::DeleteVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      return Invoke(c.controller, &v1::Controller::Stub::DeleteVolume, ctx, req, j);
    };
  }
  if (name == "validate-capabilities") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::ValidateVolumeCapabilitiesRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      *req.add_volume_capabilities() = Capability(c.args);
      for (const auto& [k, v] : c.args.params) (*req.mutable_parameters())[k] = v;
      return Invoke(c.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, ctx, req, j);
    };
  }
  if (name == "get-capacity") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::GetCapacityRequest req;
      *req.add_volume_capabilities() = Capability(c.args);
      for (const auto& [k, v] : c.args.params) (*req.mutable_parameters())[k] = v;
      return Invoke(c.controller, &v1::Controller::Stub::GetCapacity, ctx, req, j);
    };
  }
  if (name == "controller-expand") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::ControllerExpandVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.mutable_capacity_range()->set_required_bytes(Bytes(c.args, "capacity"));
      *req.mutable_volume_capability() = Capability(c.args);
      return Invoke(c.controller, &v1::Controller::Stub::ControllerExpandVolume, ctx, req, j);
    };
  }
  if (name == "node-info") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.node, &v1::Node::Stub::NodeGetInfo, ctx, v1::NodeGetInfoRequest(), j);
    };
  }
  if (name == "node-capabilities") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      return Invoke(c.node, &v1::Node::Stub::NodeGetCapabilities, ctx,
                    v1::NodeGetCapabilitiesRequest(), j);
    };
  }
  if (name == "node-stage") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodeStageVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_staging_target_path(Flag(c.args, "staging-path"));
      *req.mutable_volume_capability() = Capability(c.args);
      return Invoke(c.node, &v1::Node::Stub::NodeStageVolume, ctx, req, j);
    };
  }
  if (name == "node-unstage") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodeUnstageVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_staging_target_path(Flag(c.args, "staging-path"));
      return Invoke(c.node, &v1::Node::Stub::NodeUnstageVolume, ctx, req, j);
    };
  }
  if (name == "node-publish") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodePublishVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_staging_target_path(Flag(c.args, "staging-path"));
      req.set_target_path(Flag(c.args, "target"));
      req.set_readonly(c.args.switches.count("readonly") > 0);
      *req.mutable_volume_capability() = Capability(c.args);
      return Invoke(c.node, &v1::Node::Stub::NodePublishVolume, ctx, req, j);
    };
  }
  if (name == "node-unpublish") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodeUnpublishVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_target_path(Flag(c.args, "target"));
      return Invoke(c.node, &v1::Node::Stub::NodeUnpublishVolume, ctx, req, j);
    };
  }
  if (name == "node-expand") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodeExpandVolumeRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_volume_path(Flag(c.args, "volume-path"));
      req.set_staging_target_path(Flag(c.args, "staging-path"));
      req.mutable_capacity_range()->set_required_bytes(Bytes(c.args, "capacity"));
      *req.mutable_volume_capability() = Capability(c.args);
      return Invoke(c.node, &v1::Node::Stub::NodeExpandVolume, ctx, req, j);
    };
  }
  if (name == "node-stats") {
    return [](const Ctx& c, C& ctx, std::string* j) {
      v1::NodeGetVolumeStatsRequest req;
      req.set_volume_id(Flag(c.args, "volume-id"));
      req.set_volume_path(Flag(c.args, "volume-path"));
      req.set_staging_target_path(Flag(c.args, "staging-path"));
      return Invoke(c.node, &v1::Node::Stub::NodeGetVolumeStats, ctx, req, j);
    };
  }
  return nullptr;
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED || code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> raw(argv + 1, argv + argc);
  if (raw.empty() || raw[0] == "--help" || raw[0] == "-h") {
    std::fputs(csi_client::Usage().c_str(), raw.empty() ? stderr : stdout);
    return raw.empty() ? 2 : 0;
  }
  auto args = csi_client::ParseArgs(raw);
  common::Status valid = args.ok() ? Validate(*args) : args.status();
  if (!valid.ok()) {
    std::fprintf(stderr, "meshstor-csi-client: %s\n%s", valid.message().c_str(),
                 csi_client::Usage().c_str());
    return 2;
  }
  auto channel = grpc::CreateChannel(args->endpoint, grpc::InsecureChannelCredentials());
  auto identity = v1::Identity::NewStub(channel);
  auto controller = v1::Controller::NewStub(channel);
  auto node = v1::Node::NewStub(channel);
  const Ctx ctx{*args, *identity, *controller, *node};
  const Call call = CallFor(args->call);

  const auto deadline = std::chrono::system_clock::now() + args->timeout;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    context.set_wait_for_ready(args->retry);  // a shim still starting is not an error then
    std::string json;
    grpc::Status s = call(ctx, context, &json);
    if (s.ok()) {
      std::printf("%s\n", json.c_str());
      return 0;
    }
    const bool again = args->retry && Retryable(s.error_code()) &&
                       std::chrono::system_clock::now() + std::chrono::seconds(1) < deadline;
    std::fprintf(stderr, "%s%s: %s\n", again ? "retrying after " : "",
                 csi_client::CodeName(static_cast<int>(s.error_code())).c_str(),
                 s.error_message().c_str());
    if (!again) return csi_client::ExitCodeFor(static_cast<int>(s.error_code()));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}
