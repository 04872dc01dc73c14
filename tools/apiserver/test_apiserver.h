// TestApiServer: an in-process Kubernetes API server for tests and CI, standing in for
// kube-apiserver on everything MeshStor's code uses. Clients must not be able to tell the
// difference on those paths: same URLs, verbs, status codes, metav1.Status error bodies, JSON
// shapes, resourceVersion/generation/finalizer semantics, CRD schema validation and watch
// streams (see store.h and schema.h for the details, README.md for the differences).
//
// Served: CRDs (loaded at start from a directory and created through
// /apis/apiextensions.k8s.io/v1/customresourcedefinitions), core v1 namespaces, nodes,
// configmaps and events, coordination.k8s.io/v1 leases, events.k8s.io/v1 events, discovery
// (/api, /apis, ...), /version and health endpoints. Plain HTTP, or HTTPS with a given
// certificate and key. Test hooks live under /testing/ and in FaultInjector.
//
// Usage:
//   ASSIGN_OR_RETURN(auto server, TestApiServer::Start({.crd_dir = "crds"}));
//   httplib::Client client(server->url());
//   server->faults().FailNext("GET", "/apis/csi.meshstor.io", 500);
//
// Thread contract: all methods are safe to call from any thread. Every request is served on its
// own thread, so watches never block other requests. Stop() (or the destructor) ends all watch
// streams cleanly, waits for in-flight requests and joins every thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"
#include "tools/apiserver/rbac.h"

namespace tools::apiserver {

class Store;

// One served request, for assertions on what a client sent.
struct RequestRecord {
  std::string method;
  std::string path;
  std::string query;  // raw query string, without '?'
  int status = 0;     // HTTP status sent (200 for a watch that started streaming)
};

// A fault: requests matching `method` ("" = any) and `path_prefix` ("" = any) are delayed by
// `delay`, then, when `status` is non-zero, answered with that HTTP status and a metav1.Status
// body (reason as kube-apiserver uses for the code; Retry-After and details.retryAfterSeconds
// when `retry_after_seconds` > 0) instead of being served.
struct FaultRule {
  int id = 0;  // assigned by FaultInjector::Add
  std::string method;
  std::string path_prefix;
  int status = 0;
  int times = 1;  // matching requests affected; -1: until removed
  int retry_after_seconds = 0;
  std::chrono::milliseconds delay{0};
  std::string message;  // "" = a default message naming the fault
};

// Fault injection and request accounting of one TestApiServer. Paths under /testing/ are never
// faulted or logged.
//
// Thread contract: safe for concurrent use.
class FaultInjector {
 public:
  static constexpr size_t kDefaultRequestLogSize = 100000;

  // Storage must outlive this object (both are owned by TestApiServer). The request log keeps
  // the newest `request_log_size` requests (at least 1).
  explicit FaultInjector(Store& store, size_t request_log_size = kDefaultRequestLogSize);
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Answers the next `times` matching requests with HTTP `status`. Returns the rule id.
  int FailNext(std::string method, std::string path_prefix, int status, int times = 1,
               int retry_after_seconds = 0);
  // Delays matching requests by `delay` (`times` = -1: until removed). Returns the rule id.
  int Delay(std::string method, std::string path_prefix, std::chrono::milliseconds delay,
            int times = -1);
  // Adds a rule; rules are checked in the order they were added and the first one that matches
  // and still has uses applies. Returns its id.
  int Add(FaultRule rule);
  void Remove(int id);
  void Clear();
  std::vector<FaultRule> Rules() const;

  // Ends every open watch stream abruptly: the connection closes without a final event or the
  // terminating chunk, as when kube-apiserver or a proxy dies. Returns how many were open.
  size_t DropWatches();
  // Drops the retained watch history, so a watch or continue token from an older
  // resourceVersion gets 410 Expired. Returns the current resourceVersion.
  int64_t CompactHistory();

  // Requests served so far (oldest first; at most the last `request_log_size`).
  std::vector<RequestRecord> Requests() const;
  // How many logged requests have this method ("" = any) and a path starting with the prefix.
  size_t RequestCount(std::string_view method, std::string_view path_prefix) const;
  void ClearRequests();

  // Used by the server for each request: the delay and failure to apply.
  struct Decision {
    std::chrono::milliseconds delay{0};
    int status = 0;
    int retry_after_seconds = 0;
    std::string message;
  };
  Decision Match(std::string_view method, std::string_view path);
  void Record(RequestRecord record);

 private:
  Store& store_;
  mutable std::mutex mu_;
  const size_t request_log_size_;
  std::vector<FaultRule> rules_;  // guarded by mu_
  int next_id_ = 1;               // guarded by mu_
  // A bounded ring: Record() drops the oldest in O(1) once full.
  std::deque<RequestRecord> requests_;  // guarded by mu_
};

class TestApiServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    int port = 0;  // 0: any free port
    // Every *.yaml, *.yml and *.json file directly in this directory (not below it) except
    // kustomization.yaml must hold CustomResourceDefinitions; they are created at start.
    // "" = none.
    std::string crd_dir;
    std::vector<std::string> crd_files;  // more CRD files to create at start
    // Both set: serve HTTPS with this PEM certificate chain and key; both empty: plain HTTP.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::chrono::milliseconds bookmark_interval{1000};  // BOOKMARK period of watches
    size_t watch_history_size = 10000;  // write events kept for watches from an old RV
    // Idle keep-alive connections are closed after this long; Stop() may wait this long for
    // clients that keep a connection open.
    std::chrono::seconds keep_alive_timeout{2};
    // Requests kept in the request log (FaultInjector::Requests, GET /testing/requests).
    size_t request_log_size = FaultInjector::kDefaultRequestLogSize;
    // RBAC (rbac.h), on when rbac_files is not empty: Roles, ClusterRoles and their bindings
    // from these files (namespaced ones without a namespace land in rbac_namespace), and the
    // users of the bearer tokens. Requests without a known token get 401, resource requests
    // outside the user's rules 403. Off: every request is allowed, whatever its token.
    std::vector<std::string> rbac_files;
    std::string rbac_namespace = "default";
    std::vector<std::pair<std::string, UserInfo>> tokens;
  };

  // Starts serving on a background thread and returns once the port is bound.
  // InvalidArgument for a bad option, an unreadable or invalid CRD file, or TLS files that do
  // not load; Unavailable when the address cannot be bound.
  static common::Result<std::unique_ptr<TestApiServer>> Start(Options options);

  ~TestApiServer();
  TestApiServer(const TestApiServer&) = delete;
  TestApiServer& operator=(const TestApiServer&) = delete;

  // "http://127.0.0.1:PORT" or "https://...".
  std::string url() const;
  int port() const;

  // Ends all watch streams, stops accepting, waits for in-flight requests. Idempotent.
  void Stop();

  FaultInjector& faults();

  // The current global resourceVersion.
  int64_t ResourceVersion() const;
  // Number of open watch streams.
  size_t WatchCount() const;

  // Creates every CustomResourceDefinition in a YAML or JSON file, as `kubectl create -f`
  // would. InvalidArgument naming the file on read, parse or validation errors.
  common::Status InstallCrdFile(const std::string& path);

 private:
  struct Impl;
  explicit TestApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tools::apiserver
