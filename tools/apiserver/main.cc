// meshstor-test-apiserver: the in-repo Kubernetes API test server as a program, for CI, the e2e
// lab and kubectl. Prints the bound URL (or, with --print-port, the port) on stdout once it is
// serving, then serves until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tools/apiserver/test_apiserver.h"

namespace {

constexpr std::string_view kUsage =
    "usage: meshstor-test-apiserver [--address 127.0.0.1] [--port 0|N] [--crd-dir DIR]\n"
    "       [--crd-file FILE]... [--tls-cert PEM --tls-key PEM] [--bookmark-interval-ms 1000]\n"
    "       [--watch-history N] [--print-port]\n"
    "       [--rbac-file FILE]... [--rbac-namespace NS] [--token TOKEN=USER[,GROUP...]]...\n"
    "Serves a Kubernetes-compatible API (CRDs from --crd-dir, namespaces, nodes, configmaps,\n"
    "events, leases) until SIGTERM or SIGINT. Prints the URL on stdout when ready, or only\n"
    "the port number with --print-port. Test hooks: /testing/faults, /testing/drop-watches,\n"
    "/testing/compact, /testing/requests, /testing/state.\n"
    "RBAC (on with --rbac-file): Roles, ClusterRoles and bindings from the files (namespaced\n"
    "ones without a namespace in --rbac-namespace, default \"default\"); --token names the user\n"
    "of a bearer token (system:serviceaccount:NS:NAME gets the ServiceAccount's groups; group\n"
    "system:masters may do anything); other tokens get 401, requests outside the rules 403.\n";

bool ParseNumber(std::string_view text, long long min, long long max, long long* out) {
  try {
    size_t used = 0;
    long long v = std::stoll(std::string(text), &used);
    if (used != text.size() || v < min || v > max) return false;
    *out = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// "USER[,GROUP...]"; a ServiceAccount user (system:serviceaccount:NS:NAME) gets its groups.
std::optional<tools::apiserver::UserInfo> ParseUser(std::string_view text) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t comma = text.find(',', start);
    parts.emplace_back(text.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (parts[0].empty()) return std::nullopt;
  tools::apiserver::UserInfo user{parts[0], {}};
  constexpr std::string_view kSa = "system:serviceaccount:";
  if (parts[0].starts_with(kSa)) {
    std::string_view rest = std::string_view(parts[0]).substr(kSa.size());
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
      return std::nullopt;
    }
    user = tools::apiserver::ServiceAccountUser(rest.substr(0, colon), rest.substr(colon + 1));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty()) return std::nullopt;
    user.groups.push_back(parts[i]);
  }
  return user;
}

int Fail(std::string_view message) {
  fmt::print(stderr, "meshstor-test-apiserver: {}\n{}", message, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  tools::apiserver::TestApiServer::Options options;
  bool print_port = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    long long n = 0;
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    } else if (arg == "--print-port") {
      print_port = true;
    } else if (arg == "--address") {
      if (!value(&options.address)) return Fail("--address needs a value");
    } else if (arg == "--port") {
      if (!value(&v) || !ParseNumber(v, 0, 65535, &n)) return Fail("--port needs 0..65535");
      options.port = static_cast<int>(n);
    } else if (arg == "--crd-dir") {
      if (!value(&options.crd_dir)) return Fail("--crd-dir needs a directory");
    } else if (arg == "--rbac-file") {
      if (!value(&v)) return Fail("--rbac-file needs a file");
      options.rbac_files.push_back(v);
    } else if (arg == "--rbac-namespace") {
      if (!value(&options.rbac_namespace)) return Fail("--rbac-namespace needs a namespace");
    } else if (arg == "--token") {
      if (!value(&v) || v.find('=') == std::string::npos || v.front() == '=') {
        return Fail("--token needs TOKEN=USER[,GROUP...]");
      }
      auto user = ParseUser(v.substr(v.find('=') + 1));
      if (!user) return Fail(fmt::format("--token {}: bad user", v.substr(0, v.find('='))));
      options.tokens.emplace_back(v.substr(0, v.find('=')), *user);
    } else if (arg == "--crd-file") {
      if (!value(&v)) return Fail("--crd-file needs a file");
      options.crd_files.push_back(v);
    } else if (arg == "--tls-cert") {
      if (!value(&options.tls_cert_file)) return Fail("--tls-cert needs a file");
    } else if (arg == "--tls-key") {
      if (!value(&options.tls_key_file)) return Fail("--tls-key needs a file");
    } else if (arg == "--bookmark-interval-ms") {
      if (!value(&v) || !ParseNumber(v, 1, 86400000, &n)) {
        return Fail("--bookmark-interval-ms needs a positive number");
      }
      options.bookmark_interval = std::chrono::milliseconds(n);
    } else if (arg == "--watch-history") {
      if (!value(&v) || !ParseNumber(v, 0, 100000000, &n)) {
        return Fail("--watch-history needs a number");
      }
      options.watch_history_size = static_cast<size_t>(n);
    } else {
      return Fail(fmt::format("unknown argument {}", arg));
    }
  }

  // Block the stop signals in every thread (the server's threads inherit the mask) and wait for
  // them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client closing its connection mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  auto server = tools::apiserver::TestApiServer::Start(options);
  if (!server.ok()) {
    fmt::print(stderr, "meshstor-test-apiserver: {}\n", server.status().ToString());
    return 1;
  }
  if (print_port) {
    fmt::print("{}\n", (*server)->port());
  } else {
    fmt::print("{}\n", (*server)->url());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  (*server)->Stop();
  return 0;
}
