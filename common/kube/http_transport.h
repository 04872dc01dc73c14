// HttpTransport: the real Transport, HTTP/1.1 over cpp-httplib with OpenSSL, built from a
// RestConfig (kubeconfig.h).
//
// TLS: the server certificate is verified against the config's CA (or the system trust store
// when the config has none), including its host name or IP address (or tls_server_name, which
// is also sent as SNI), unless insecure_skip_tls_verify is set. A client certificate and key are
// presented when configured. TLS 1.2 is the minimum.
//
// Auth: "Authorization: Bearer <token>". A token_file is re-read at most every
// Options::token_refresh_interval, and at once after a 401, in which case the request is sent
// again once if the token changed (bound service-account tokens rotate). The last token read
// successfully wins over a failed re-read, and a token_file wins over bearer_token.
//
// Connections: unary requests reuse a small pool of keep-alive connections (one request per
// connection at a time); a GET that fails on a reused connection before any response arrived is
// retried once on a new one. Every stream gets its own connection. SIGPIPE is blocked on the
// calling thread while a request runs, so a peer that closes early cannot kill the process.
//
// Thread contract: Do() and Stream() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/kube/kubeconfig.h"
#include "common/kube/transport.h"
#include "common/status/status.h"
#include "common/time/clock.h"

namespace common::kube {

class HttpTransport final : public Transport {
 public:
  struct Options {
    // Sent as User-Agent; empty: "meshstor/<version>".
    std::string user_agent;
    // Times the token-file refresh; nullptr: time::RealClock::Get(). Must outlive the transport.
    time::Clock* clock = nullptr;
    std::chrono::seconds token_refresh_interval{60};
    // Idle keep-alive connections kept for reuse, and how long one may stay idle.
    size_t max_idle_connections = 4;
    std::chrono::seconds idle_connection_timeout{30};
  };

  // Validates `config` and loads its certificates and token. InvalidArgument for a bad server
  // URL, unparsable PEM, a key that does not match its certificate, or insecure_skip_tls_verify
  // together with a CA; the token file's read error when it cannot be read and there is no
  // bearer_token. Does not connect.
  static Result<std::unique_ptr<HttpTransport>> Create(const RestConfig& config, Options options);
  static Result<std::unique_ptr<HttpTransport>> Create(const RestConfig& config);

  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;
  ~HttpTransport() override;

  // See Transport. Errors name the server ("https://10.0.0.1:6443"): Unavailable for refused,
  // reset or TLS-failed connections (with the certificate verification error, if any),
  // DeadlineExceeded for timeouts.
  Result<HttpResponse> Do(const HttpRequest& request) override;
  Result<int> Stream(const HttpRequest& request,
                     const std::function<bool(std::string_view)>& on_data,
                     std::string* error_body) override;

  // The server's base URL, e.g. "https://10.0.0.1:6443" (with its path prefix, if any).
  const std::string& server() const;

 private:
  struct Impl;
  explicit HttpTransport(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query component: everything but RFC 3986 unreserved characters
// (A-Z a-z 0-9 - . _ ~). Exposed for tests.
std::string EscapeQueryComponent(std::string_view s);

// Percent-encodes a path: keeps '/', unreserved characters and the sub-delimiters, ':' and '@'
// that RFC 3986 allows in a segment; encodes everything else, '%' included. Exposed for tests.
std::string EscapePath(std::string_view s);

}  // namespace common::kube
