#include "common/app/app.h"

#include <signal.h>

#include <charconv>
#include <cstdio>

#include "common/log/log.h"

namespace common::app {

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("listen address \"{}\": expected host:port or :port", text);
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return InvalidArgumentError("listen address \"{}\": IPv6 hosts must be in brackets", text);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return InvalidArgumentError("listen address \"{}\": port must be a number from 0 to 65535",
                                text);
  }
  return ListenAddress{host.empty() ? "0.0.0.0" : std::string(host), static_cast<uint16_t>(port)};
}

void AddCommonOptions(config::Config& config, CommonOptions* options) {
  config.AddString("metrics-address", &options->metrics_address,
                   "Address of the /metrics, /healthz and /readyz server (host:port, :port)");
  config.AddInt64("v", &options->verbosity, "Log verbosity (0 to 5)", {.min = 0, .max = 5});
  config.AddString("kubeconfig", &options->kubeconfig,
                   "Kubeconfig file; empty: $KUBECONFIG, in-cluster, then ~/.kube/config");
}

int LoadOrExit(config::Config& config, const CommonOptions& options, int argc,
               const char* const* argv) {
  Status s = config.Load(argc, argv);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  if (config.help_requested()) {
    std::fputs(config.HelpText().c_str(), stdout);
    return 0;
  }
  if (Result<ListenAddress> a = ParseListenAddress(options.metrics_address); !a.ok()) {
    std::fprintf(stderr, "flag --metrics-address: %s\n", a.status().message().c_str());
    return 2;
  }
  log::StderrSink().SetVerbosity(static_cast<int>(options.verbosity));
  return -1;
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace common::app
