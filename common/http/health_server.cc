#include "common/http/health_server.h"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <future>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace common::http {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";
// Scrapes and probes are few and short; a small pool is plenty.
constexpr size_t kWorkerThreads = 4;
// Nothing here reads a request body; refuse large ones early.
constexpr size_t kMaxRequestBodyBytes = size_t{64} * 1024;
constexpr time_t kTimeoutSeconds = 5;

struct NamedCheck {
  std::string name;
  HealthCheck check;
};
using CheckList = std::vector<std::shared_ptr<const NamedCheck>>;

bool IsValidCheckName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "host:port", with brackets around an IPv6 literal.
std::string FormatAddress(std::string_view host, int port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// Runs a check, turning an exception into a failure: exceptions do not leave this module.
Status RunCheck(const HealthCheck& check) {
  try {
    return check();
  } catch (const std::exception& e) {
    return InternalError("check threw an exception: {}", e.what());
  } catch (...) {
    return InternalError("check threw a non-standard exception");
  }
}

// A check's reason on one line, so that each check is one line of the response.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

struct CheckReport {
  int http_status;
  std::string body;
};

// Runs `checks` in order and renders them as kube-apiserver does. `endpoint` is "healthz" or
// "readyz"; `failure_status` is the HTTP status when a check fails.
CheckReport RunChecks(std::string_view endpoint, const CheckList& checks, bool verbose,
                      int failure_status) {
  std::string lines;
  bool failed = false;
  for (const std::shared_ptr<const NamedCheck>& check : checks) {
    const Status status = RunCheck(check->check);
    if (status.ok()) {
      if (verbose) fmt::format_to(std::back_inserter(lines), "[+]{} ok\n", check->name);
    } else {
      failed = true;
      fmt::format_to(std::back_inserter(lines), "[-]{} failed: {}\n", check->name,
                     OneLine(status.ToString()));
    }
  }
  if (failed) {
    return {failure_status, fmt::format("{}{} check failed\n", lines, endpoint)};
  }
  if (verbose) return {200, fmt::format("{}{} check passed\n", lines, endpoint)};
  return {200, "ok"};
}

}  // namespace

class HealthServer::Impl {
 public:
  Impl(std::string host, std::uint16_t port, const metrics::Registry& registry)
      : host_(std::move(host)), requested_port_(port), registry_(registry) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { Stop(); }

  Status AddCheck(bool liveness, std::string name, HealthCheck check) {
    const std::string_view kind = liveness ? "liveness" : "readiness";
    if (!IsValidCheckName(name)) {
      return InvalidArgumentError(
          "{} check name \"{}\" is not valid: it must be non-empty and use only [A-Za-z0-9._:/-]",
          kind, name);
    }
    if (!check) return InvalidArgumentError("{} check {} has no function", kind, name);
    std::lock_guard<std::mutex> lock(checks_mu_);
    CheckList& list = liveness ? liveness_ : readiness_;
    for (const auto& existing : list) {
      if (existing->name == name) {
        return AlreadyExistsError("{} check {} is already registered", kind, name);
      }
    }
    list.push_back(
        std::make_shared<const NamedCheck>(NamedCheck{std::move(name), std::move(check)}));
    return OkStatus();
  }

  Status Start() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (server_ != nullptr) return OkStatus();
    const std::string address = FormatAddress(host_, requested_port_);
    RETURN_IF_ERROR(Resolve(address));

    auto server = std::make_unique<httplib::Server>();
    Configure(*server);
    // httplib creates its worker pool at the start of its accept loop, after it has marked itself
    // running; hooking that moment tells Start() when Stop() can no longer race the loop's start.
    auto started = std::make_shared<Signal>();
    server->new_task_queue = [started]() -> httplib::TaskQueue* {
      started->Notify();
      // httplib takes ownership of the returned queue.
      return std::make_unique<httplib::ThreadPool>(kWorkerThreads).release();
    };

    errno = 0;
    int port = requested_port_;
    if (requested_port_ == 0) {
      port = server->bind_to_any_port(host_);
    } else if (!server->bind_to_port(host_, requested_port_)) {
      port = -1;
    }
    if (port <= 0) return BindError(errno, address);

    std::thread listener([srv = server.get(), started] {
      srv->listen_after_bind();
      started->Notify();  // in case the loop never started
    });
    started->Wait();
    if (!server->is_running()) {
      listener.join();
      return InternalError("health server on {} stopped right after it started",
                           FormatAddress(host_, port));
    }
    server_ = std::move(server);
    listener_ = std::move(listener);
    port_.store(static_cast<std::uint16_t>(port), std::memory_order_relaxed);
    return OkStatus();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (server_ == nullptr) return;
    server_->stop();
    listener_.join();
    server_.reset();
  }

  std::uint16_t port() const { return port_.load(std::memory_order_relaxed); }

 private:
  // A one-shot event; Notify() may be called more than once.
  class Signal {
   public:
    void Notify() {
      std::call_once(once_, [this] { promise_.set_value(); });
    }
    void Wait() { future_.wait(); }

   private:
    std::once_flag once_;
    std::promise<void> promise_;
    std::future<void> future_ = promise_.get_future();
  };

  // Resolves the host as httplib will, so a bad name is reported as such rather than as a bind
  // error with a stale errno.
  Status Resolve(const std::string& address) const {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc =
        ::getaddrinfo(host_.c_str(), std::to_string(requested_port_).c_str(), &hints, &result);
    if (rc != 0) {
      return InvalidArgumentError("resolving the health server address {}: {}", address,
                                  ::gai_strerror(rc));
    }
    ::freeaddrinfo(result);
    return OkStatus();
  }

  static Status BindError(int errno_value, const std::string& address) {
    const std::string what = fmt::format("binding the health server to {}", address);
    if (errno_value == 0) {
      return UnavailableError("{}: the address could not be bound", what);
    }
    if (errno_value == EADDRINUSE) {
      // Another process (or server) holds the port: a deployment problem, not a transient one.
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}: address already in use (EADDRINUSE)", what),
                    std::to_string(errno_value));
    }
    return ErrnoToStatus(errno_value, what);
  }

  void Configure(httplib::Server& server) {
    // httplib sets SO_REUSEPORT by default, which would let a second server bind a port that is
    // in use. SO_REUSEADDR alone still allows a restart while old connections sit in TIME_WAIT.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.set_read_timeout(kTimeoutSeconds, 0);
    server.set_write_timeout(kTimeoutSeconds, 0);
    server.set_keep_alive_timeout(kTimeoutSeconds);
    server.set_payload_max_length(kMaxRequestBodyBytes);
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, const std::exception_ptr& error) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {  // NOLINT(bugprone-empty-catch): the default text stays
          }
          res.status = 500;
          res.set_content(fmt::format("internal error: {}\n", OneLine(what)), kTextContentType);
        });

    // One handler for every method and path, so that it alone decides between 200, 404 and 405.
    // Registering it per method makes httplib read (and bound) any request body first.
    const httplib::Server::Handler handler = [this](const httplib::Request& req,
                                                    httplib::Response& res) { Handle(req, res); };
    server.Get(".*", handler);
    server.Post(".*", handler);
    server.Put(".*", handler);
    server.Patch(".*", handler);
    server.Delete(".*", handler);
    server.Options(".*", handler);
    // Methods httplib has no routing table for (TRACE, CONNECT) would otherwise get 400.
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      static constexpr std::string_view kRouted[] = {"GET",   "HEAD",   "POST",   "PUT",
                                                     "PATCH", "DELETE", "OPTIONS"};
      for (std::string_view method : kRouted) {
        if (req.method == method) return httplib::Server::HandlerResponse::Unhandled;
      }
      Handle(req, res);
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  void Handle(const httplib::Request& req, httplib::Response& res) const {
    const std::string& path = req.path;
    const bool is_metrics = path == "/metrics";
    const bool is_healthz = path == "/healthz";
    const bool is_readyz = path == "/readyz";
    if (!is_metrics && !is_healthz && !is_readyz) {
      res.status = 404;
      res.set_content("404 page not found\n", kTextContentType);
      return;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("405 method not allowed\n", kTextContentType);
      return;
    }
    if (is_metrics) {
      res.status = 200;
      res.set_content(registry_.Expose(), kMetricsContentType);
      return;
    }
    const bool verbose = req.has_param("verbose");
    const CheckReport report = is_healthz ? RunChecks("healthz", Checks(liveness_), verbose, 500)
                                          : RunChecks("readyz", Checks(readiness_), verbose, 503);
    res.status = report.http_status;
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(report.body, kTextContentType);
  }

  // A copy of a check list, so checks run without the lock held.
  CheckList Checks(const CheckList& list) const {
    std::lock_guard<std::mutex> lock(checks_mu_);
    return list;
  }

  const std::string host_;
  const std::uint16_t requested_port_;
  const metrics::Registry& registry_;

  mutable std::mutex checks_mu_;
  CheckList liveness_;   // Guarded by checks_mu_.
  CheckList readiness_;  // Guarded by checks_mu_.

  // Serializes Start() and Stop().
  std::mutex lifecycle_mu_;
  std::unique_ptr<httplib::Server> server_;  // Guarded by lifecycle_mu_; null when stopped.
  std::thread listener_;                     // Guarded by lifecycle_mu_.
  std::atomic<std::uint16_t> port_{0};
};

HealthServer::HealthServer(std::string host, std::uint16_t port, const metrics::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(host), port, registry)) {}

HealthServer::~HealthServer() = default;

Status HealthServer::AddLivenessCheck(std::string name, HealthCheck check) {
  return impl_->AddCheck(/*liveness=*/true, std::move(name), std::move(check));
}

Status HealthServer::AddReadinessCheck(std::string name, HealthCheck check) {
  return impl_->AddCheck(/*liveness=*/false, std::move(name), std::move(check));
}

Status HealthServer::Start() { return impl_->Start(); }

void HealthServer::Stop() { impl_->Stop(); }

std::uint16_t HealthServer::port() const { return impl_->port(); }

}  // namespace common::http
