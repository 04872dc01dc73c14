// The HTTP endpoint every MeshStor binary serves for Prometheus and the kubelet:
//
//   GET /metrics  the registry's metrics, "text/plain; version=0.0.4; charset=utf-8".
//   GET /healthz  liveness: 200 "ok", or 500 naming each failing liveness check.
//   GET /readyz   readiness: 200 "ok", or 503 naming each failing readiness check.
//
// /healthz and /readyz take "?verbose" to list every check as kube-apiserver does:
//
//   [+]informer-sync ok
//   [-]leader-election failed: UNAVAILABLE: lease not acquired
//   readyz check failed
//
// Without "?verbose" a healthy endpoint answers "ok" and a failing one lists only the failing
// checks, with their reasons, in the same format. HEAD is answered like GET. Other paths answer
// 404; other methods on these paths answer 405 with "Allow: GET, HEAD".
//
// Thread contract: every method may be called from any thread. Checks run on the server's worker
// threads, possibly several at once, and must be thread-safe; they should return quickly (the
// kubelet's probe timeout applies). A check that throws counts as failed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace common::http {

// A named health condition; OK means healthy. The message of a non-OK Status is shown to callers
// of /healthz and /readyz.
using HealthCheck = std::function<Status()>;

// Serves /metrics, /healthz and /readyz on one address, on threads of its own.
class HealthServer {
 public:
  // Serves on `host` ("0.0.0.0", "127.0.0.1", "::", or a name) and `port`; port 0 lets the kernel
  // pick a free port, which port() reports after Start(). `registry` must outlive the server.
  // Nothing is bound until Start().
  HealthServer(std::string host, std::uint16_t port, const metrics::Registry& registry);
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;
  // Stops the server (see Stop()).
  ~HealthServer();

  // Registers a check for /healthz. Checks may be added before or after Start(); each request
  // runs every check registered at that time, in registration order. Returns InvalidArgument
  // when `name` is empty or holds a character other than [A-Za-z0-9._:/-] (names appear verbatim
  // in responses), or when `check` is empty; AlreadyExists when a liveness check of that name
  // exists.
  Status AddLivenessCheck(std::string name, HealthCheck check);

  // Registers a check for /readyz, with the same rules as AddLivenessCheck. The two sets of
  // names are separate, so one check may be registered in both.
  Status AddReadinessCheck(std::string name, HealthCheck check);

  // Binds the address and starts serving on a thread of its own; returns once the server
  // accepts connections. Errors: InvalidArgument when the host cannot be resolved;
  // FailedPrecondition when the address is already in use; another code from the failing system
  // call otherwise. Every message names the address. OK and no effect when already running. May
  // be called again after Stop(); with port 0 the new port may differ.
  Status Start();

  // Stops accepting connections, lets requests in progress finish, and joins the server's
  // threads. Idempotent; a no-op when not running. Must not be called from a health check.
  void Stop();

  // The port bound by the last successful Start(): the actual port when constructed with 0.
  // 0 before the first successful Start().
  std::uint16_t port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace common::http
