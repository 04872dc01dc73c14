// What every MeshStor binary's main() shares: the standard options (metrics address, verbosity,
// kubeconfig), the health/metrics server, and waiting for SIGTERM/SIGINT. main() stays wiring.
//
// Thread contract: BlockTerminationSignals() must run in main() before any thread starts, so
// that every thread inherits the blocked mask and only WaitForTerminationSignal() receives them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/status/status.h"

namespace common::app {

struct ListenAddress {
  std::string host;  // "0.0.0.0" when the address was ":port"
  uint16_t port = 0;
};

// Parses "host:port", ":port" or "[v6addr]:port". InvalidArgument naming the text otherwise.
Result<ListenAddress> ParseListenAddress(std::string_view text);

// Options every binary has.
struct CommonOptions {
  std::string metrics_address = ":8080";
  int64_t verbosity = 0;
  std::string kubeconfig;  // empty: $KUBECONFIG, in-cluster, then ~/.kube/config
};

// Declares metrics-address, v and kubeconfig on `config`, bound to `options`.
void AddCommonOptions(config::Config& config, CommonOptions* options);

// Loads `config` from argv; prints help (exit code 0) or the error (exit code 2) to stderr and
// returns the exit code, or returns -1 when the program should go on. Sets log verbosity.
int LoadOrExit(config::Config& config, const CommonOptions& options, int argc,
               const char* const* argv);

// Blocks SIGTERM and SIGINT for this thread and every thread started after it.
void BlockTerminationSignals();
// Waits for SIGTERM or SIGINT and returns its number. REQUIRES: BlockTerminationSignals().
int WaitForTerminationSignal();

}  // namespace common::app
