// The command line of meshstor-csi-client: one CSI call per invocation.
//
//   meshstor-csi-client --endpoint unix:///run/csi/controller.sock [--retry] [--timeout 300s]
//                       <call> [--flag value | --flag=value | --switch]... [--param key=value]...
//
// Parsing is separate from the gRPC code so that it can be tested without a server.
//
// Thread contract: plain functions and values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace csi_client {

struct Args {
  std::string endpoint;  // unix:///path
  std::string call;      // e.g. "create-volume"
  // Keep retrying the retryable codes (Unavailable, DeadlineExceeded, Aborted,
  // ResourceExhausted) until `timeout`, as kubelet and the sidecars do.
  bool retry = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  std::map<std::string, std::string> flags;   // --volume-id x → {"volume-id", "x"}
  std::set<std::string> switches;             // --readonly
  std::map<std::string, std::string> params;  // --param replicaCount=2
};

// The calls, with the flags each one requires and the ones it accepts.
struct CallSpec {
  std::string name;
  std::vector<std::string> required;
  std::vector<std::string> optional;
  std::vector<std::string> switches;
  bool params = false;  // accepts --param key=value
};
const std::vector<CallSpec>& Calls();

// InvalidArgument naming the offending argument: unknown call or flag, a missing value or
// required flag, a malformed --param, a bad --timeout.
common::Result<Args> ParseArgs(const std::vector<std::string>& argv);

// "512Mi", "1Gi", "1073741824", "2G" (powers of 1000) → bytes. InvalidArgument otherwise.
common::Result<int64_t> ParseBytes(std::string_view text);

// The process exit code for a gRPC status code: 0 for OK, 10 + code otherwise (so a script can
// assert e.g. NotFound = 15, AlreadyExists = 16, InvalidArgument = 13).
int ExitCodeFor(int grpc_code);
// "NotFound", "Unavailable", ... (the canonical code names); "Code(N)" for others.
std::string CodeName(int grpc_code);

std::string Usage();

}  // namespace csi_client
