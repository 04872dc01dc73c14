// What the three CSI services share: their options, the translation of Status to gRPC, checking a
// VolumeCapability against what MeshStor serves (mount, XFS, single-node writer), the bound of a
// call's wait, and the one log line per call.
//
// Thread contract: free functions and value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "common/log/log.h"
#include "common/proto/csi.pb.h"
#include "common/status/status.h"
#include "common/time/clock.h"

namespace csi_shim {

inline constexpr std::string_view kDriverName = "io.meshstor.csi.mesh";
// Condition types the operator writes on a MeshStorVolume.
inline constexpr std::string_view kConditionReady = "Ready";
inline constexpr std::string_view kConditionDegraded = "Degraded";

struct ServiceOptions {
  std::string driver_name{kDriverName};
  std::string version;    // GetPluginInfo's vendor_version
  std::string node_name;  // node mode: this node (NodeGetInfo's node_id, the consumer we set)
  // Longest a call waits for the answer in a volume's status before it returns a retryable
  // error (also cut short by the caller's gRPC deadline).
  std::chrono::milliseconds wait_timeout{std::chrono::seconds(60)};
  int64_t max_volumes_per_node = 0;  // NodeGetInfo; 0: no limit reported
};

// The Status as a grpc::Status with the same code and message.
grpc::Status ToGrpc(const common::Status& status);

// OK when MeshStor serves `capability`: mount access with fs_type "xfs" or empty, no mount
// flags, access mode SINGLE_NODE_WRITER. InvalidArgument naming `field` and the rule otherwise.
common::Status ValidateCapability(const csi::v1::VolumeCapability& capability,
                                  std::string_view field);

// When a call must stop waiting: `wait_timeout` from now on `clock`, or a little before the
// caller's gRPC deadline when that comes first, so the caller gets our answer rather than its
// own timeout.
std::chrono::steady_clock::time_point WaitDeadline(const grpc::ServerContext& context,
                                                   const common::time::Clock& clock,
                                                   std::chrono::milliseconds wait_timeout);

// Runs one CSI call: logs its method, volume ID, outcome and duration (mutating calls at Info,
// queries at V(2); server-side failures at Error) and returns the body's Status as gRPC.
grpc::Status RunCall(std::string_view method, std::string_view volume_id, bool mutating,
                     const std::function<common::Status()>& body);

}  // namespace csi_shim
