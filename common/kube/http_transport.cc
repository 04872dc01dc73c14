#include "common/kube/http_transport.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/text/strings.h"

#ifndef MESHSTOR_VERSION
#define MESHSTOR_VERSION "dev"
#endif

namespace common::kube {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Non-2xx bodies of streams are kept up to this size (they are metav1.Status objects).
constexpr size_t kMaxStreamErrorBody = 256 << 10;
// How often a cancelled stream's watchdog shuts its socket down again until the request ends
// (a shutdown before the socket is open does nothing).
constexpr milliseconds kCancelRetryInterval{50};
// A token file larger than this is not a token.
constexpr size_t kMaxTokenFileSize = 64 << 10;

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Drains this thread's OpenSSL error queue into one line.
std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

// Encrypted PEM keys are not supported; without this callback OpenSSL would prompt on the tty.
int NoPassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return 0; }

Result<BioPtr> MemBio(std::string_view data, std::string_view what) {
  if (data.size() > static_cast<size_t>(INT_MAX))
    return InvalidArgumentError("{}: too large", what);
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return InternalError("{}: BIO_new_mem_buf failed", what);
  return bio;
}

// Every certificate of a PEM bundle, in order. InvalidArgument when there is none or one is
// malformed.
Result<std::vector<X509Ptr>> ParseCertificates(std::string_view pem, std::string_view what) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem, what));
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, &NoPassword, nullptr)) {
    certs.emplace_back(cert);
  }
  // Reading stops with "no start line" at the end of the data; any other error is real.
  const unsigned long err = ERR_peek_last_error();
  if (err != 0 &&
      !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
    return InvalidArgumentError("{}: malformed PEM certificate: {}", what, DrainOpenSslErrors());
  }
  ERR_clear_error();
  if (certs.empty()) return InvalidArgumentError("{}: no PEM certificate found", what);
  return certs;
}

Result<EvpPkeyPtr> ParsePrivateKey(std::string_view pem, std::string_view what) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem, what));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassword, nullptr));
  if (!key) {
    return InvalidArgumentError(
        "{}: no usable PEM private key (encrypted keys are not "
        "supported): {}",
        what, DrainOpenSslErrors());
  }
  return key;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool IEquals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

struct ServerUrl {
  bool https = true;
  std::string host;  // without IPv6 brackets
  int port = 0;
  std::string host_header;  // the authority as written: "host:port", "[::1]:6443"
  std::string base_path;    // "" or "/prefix" without a trailing slash
  std::string display;      // "https://host:port/prefix"
};

Result<ServerUrl> ParseServerUrl(std::string_view server, bool default_https) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("server URL \"{}\": {}", server, why);
  };
  ServerUrl url;
  std::string_view rest = server;
  const size_t scheme_end = rest.find("://");
  if (scheme_end == std::string_view::npos) {
    url.https = default_https;
  } else {
    std::string_view scheme = rest.substr(0, scheme_end);
    if (IEquals(scheme, "https")) {
      url.https = true;
    } else if (IEquals(scheme, "http")) {
      url.https = false;
    } else {
      return bad("the scheme must be http or https");
    }
    rest.remove_prefix(scheme_end + 3);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not allowed");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (!IsIpLiteral(url.host)) return bad("invalid IPv6 address");
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos) {
        return bad("an IPv6 address must be in brackets");
      }
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
      url.host = std::string(authority.substr(0, colon));
    } else {
      url.host = std::string(authority);
    }
  }
  if (url.host.empty()) return bad("no host");
  if (port_text.empty()) {
    url.port = url.https ? 443 : 80;
  } else {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return bad("invalid port");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return bad("invalid port");
    url.port = port;
  }
  url.host_header = std::string(authority);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.base_path = EscapePath(path);
  url.display = fmt::format("{}://{}{}", url.https ? "https" : "http", authority, url.base_path);
  return url;
}

// Blocks SIGPIPE on the calling thread for its lifetime. A write to a connection the peer has
// closed raises SIGPIPE on the writing thread; blocked, it stays pending and is discarded here
// before the old mask comes back, so it can neither kill the process nor reach a handler.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    was_blocked_ = sigismember(&old_, SIGPIPE) == 1;
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;
  ~ScopedSigpipeBlock() {
    if (was_blocked_) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      const struct timespec zero = {0, 0};
      while (sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool was_blocked_ = false;
};

// Per-connection TLS data, reachable from OpenSSL callbacks through the SSL_CTX's app data.
// Each SSL_CTX belongs to one connection, which one thread uses at a time.
struct TlsState {
  std::string sni;  // server name to send; empty: none (IP literals, as Go does)
  long verify_error = X509_V_OK;
};

TlsState* StateOf(const SSL* ssl) {
  return static_cast<TlsState*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

// cpp-httplib sets SNI to the host it connects to; this replaces it, right before the
// ClientHello is written, by tls_server_name, or by nothing for an IP address.
void TlsInfoCallback(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  TlsState* state = StateOf(ssl);
  if (state == nullptr) return;
  SSL* mutable_ssl = const_cast<SSL*>(ssl);  // the callback only gets a const SSL*
  // SSL_set_tlsext_host_name(), spelled out: the macro's cast does not compile in C++.
  void* name = state->sni.empty() ? nullptr : const_cast<char*>(state->sni.c_str());
  SSL_ctrl(mutable_ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name);
}

// Records the first verification error of a handshake for the error message.
int TlsVerifyCallback(int preverify_ok, X509_STORE_CTX* store_ctx) {
  if (preverify_ok == 1) return 1;
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl != nullptr) {
    TlsState* state = StateOf(ssl);
    if (state != nullptr && state->verify_error == X509_V_OK) {
      state->verify_error = X509_STORE_CTX_get_error(store_ctx);
    }
  }
  return preverify_ok;
}

// One HTTP(S) client with at most one connection. `tls` is declared first so that it outlives
// the client, whose SSL_CTX points at it.
struct Connection {
  std::unique_ptr<TlsState> tls;
  std::unique_ptr<httplib::ClientImpl> client;
  SteadyClock::time_point idle_since;
};

void SetTimeouts(httplib::ClientImpl& client, milliseconds connect, milliseconds read,
                 milliseconds write) {
  auto split = [](milliseconds d, time_t* sec, time_t* usec) {
    if (d < milliseconds(1)) d = milliseconds(1);
    *sec = static_cast<time_t>(d.count() / 1000);
    *usec = static_cast<time_t>((d.count() % 1000) * 1000);
  };
  time_t sec;
  time_t usec;
  split(connect, &sec, &usec);
  client.set_connection_timeout(sec, usec);
  split(read, &sec, &usec);
  client.set_read_timeout(sec, usec);
  split(write, &sec, &usec);
  client.set_write_timeout(sec, usec);
}

// A token goes into a header line: no control characters (which could end the line).
bool IsValidToken(std::string_view token) {
  return std::none_of(token.begin(), token.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) return ErrnoToStatus(errno, fmt::format("reading token file {}", path));
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && data.size() <= kMaxTokenFileSize) {
    data.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return ErrnoToStatus(err, fmt::format("reading token file {}", path));
  if (data.size() > kMaxTokenFileSize) {
    return InvalidArgumentError("token file {} is larger than {} bytes", path, kMaxTokenFileSize);
  }
  std::string token(text::TrimSpace(data));
  if (token.empty()) return InvalidArgumentError("token file {} is empty", path);
  if (!IsValidToken(token)) {
    return InvalidArgumentError("token file {} holds control characters", path);
  }
  return token;
}

// The bearer token: static, or read from a file that is re-read when stale or after a 401.
class TokenSource {
 public:
  TokenSource(std::string static_token, std::string file, time::Clock& clock,
              std::chrono::seconds interval)
      : static_token_(text::TrimSpace(static_token)),
        file_(std::move(file)),
        clock_(clock),
        interval_(interval) {}

  // Reads the file once. Its error only when there is no static token to fall back on.
  Status Init() {
    if (file_.empty()) return OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    Status s = ReadLocked();
    return s.ok() || !static_token_.empty() ? OkStatus() : s;
  }

  // The token to send now; empty for none.
  std::string Get() {
    if (file_.empty()) return static_token_;
    std::lock_guard<std::mutex> lock(mu_);
    if (clock_.SteadyNow() - last_read_ >= interval_) (void)ReadLocked();  // keeps the old token
    return CurrentLocked();
  }

  // After a 401 for `used`: re-reads the file now and returns the new token if it differs.
  std::optional<std::string> RefreshAfterUnauthorized(const std::string& used) {
    if (file_.empty()) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu_);
    (void)ReadLocked();  // on failure the old token stays
    std::string current = CurrentLocked();
    if (current == used) return std::nullopt;
    return current;
  }

 private:
  Status ReadLocked() {
    last_read_ = clock_.SteadyNow();
    Result<std::string> token = ReadTokenFile(file_);
    if (!token.ok()) return token.status();
    cached_ = std::move(*token);
    return OkStatus();
  }
  std::string CurrentLocked() const { return cached_.empty() ? static_token_ : cached_; }

  const std::string static_token_;
  const std::string file_;
  time::Clock& clock_;
  const std::chrono::seconds interval_;
  std::mutex mu_;
  std::string cached_;                   // Guarded by mu_: last token read from file_.
  SteadyClock::time_point last_read_{};  // Guarded by mu_: time of the last read attempt.
};

bool IsReplayable(std::string_view method) { return method == "GET" || method == "HEAD"; }

}  // namespace

std::string EscapeQueryComponent(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string EscapePath(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static constexpr std::string_view kAllowed = "-._~!$&'()*+,;=:@/";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
        kAllowed.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

struct HttpTransport::Impl {
  Impl(ServerUrl server_url, const RestConfig& config, const Options& opts, time::Clock& clk)
      : url(std::move(server_url)),
        options(opts),
        clock(clk),
        tokens(config.bearer_token, config.token_file, clk, opts.token_refresh_interval) {}

  // Builds a client for one connection (not yet connected).
  Result<std::unique_ptr<Connection>> NewConnection(bool keep_alive) const;
  // An idle pooled connection, or nullptr.
  std::unique_ptr<Connection> TakeIdle();
  void ReturnIdle(std::unique_ptr<Connection> conn);
  void DropIdle();

  // Request line target: base path, escaped path and query.
  std::string Target(const HttpRequest& request) const;
  httplib::Headers Headers(const HttpRequest& request, const std::string& token,
                           bool accept_gzip) const;
  // Turns a failed exchange into a Status naming the server.
  Status Failure(httplib::Error error, const Connection& conn, bool timed_out, milliseconds timeout,
                 const std::string& openssl_errors) const;

  Result<HttpResponse> DoOnce(const HttpRequest& request, const std::string& token);
  Result<int> StreamOnce(const HttpRequest& request, const std::string& token,
                         const std::function<bool(std::string_view)>& on_data,
                         std::string* error_body);

  const ServerUrl url;
  const Options options;
  time::Clock& clock;
  std::string user_agent;
  bool insecure = false;
  std::string verify_name;  // host name or IP the server certificate must match
  std::string sni;
  X509StorePtr ca_store;  // https and verifying: the trust anchors
  X509Ptr client_cert;
  std::vector<X509Ptr> client_chain;  // intermediates after the leaf
  EvpPkeyPtr client_key;
  TokenSource tokens;

  std::mutex pool_mu;
  std::vector<std::unique_ptr<Connection>> idle;  // Guarded by pool_mu.
};

Result<std::unique_ptr<Connection>> HttpTransport::Impl::NewConnection(bool keep_alive) const {
  auto conn = std::make_unique<Connection>();
  if (!url.https) {
    conn->client = std::make_unique<httplib::ClientImpl>(url.host, url.port);
  } else {
    ERR_clear_error();
    auto ssl = std::make_unique<httplib::SSLClient>(url.host, url.port, client_cert.get(),
                                                    client_key.get());
    if (!ssl->is_valid()) {
      return InternalError("creating a TLS context for {}: {}", url.display, DrainOpenSslErrors());
    }
    SSL_CTX* ctx = ssl->ssl_context();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    for (const X509Ptr& cert : client_chain) {
      if (SSL_CTX_add1_chain_cert(ctx, cert.get()) != 1) {
        return InternalError("adding the client certificate chain for {}: {}", url.display,
                             DrainOpenSslErrors());
      }
    }
    conn->tls = std::make_unique<TlsState>();
    conn->tls->sni = sni;
    SSL_CTX_set_app_data(ctx, conn->tls.get());
    SSL_CTX_set_info_callback(ctx, &TlsInfoCallback);
    // cpp-httplib's own verification would add the system trust store to ours and match host
    // names itself; OpenSSL does both properly during the handshake, configured here.
    ssl->enable_server_certificate_verification(false);
    if (insecure) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
      X509_STORE_up_ref(ca_store.get());
      ssl->set_ca_cert_store(ca_store.get());  // the SSL_CTX takes this reference
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &TlsVerifyCallback);
      X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      const int ok = IsIpLiteral(verify_name)
                         ? X509_VERIFY_PARAM_set1_ip_asc(param, verify_name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, verify_name.c_str(), 0);
      if (ok != 1) {
        return InternalError("setting the expected server name {}: {}", verify_name,
                             DrainOpenSslErrors());
      }
    }
    conn->client = std::move(ssl);
  }
  conn->client->set_keep_alive(keep_alive);
  conn->client->set_url_encode(false);  // Target() escapes
  conn->client->set_follow_location(false);
  conn->client->set_tcp_nodelay(true);  // headers and body go out in separate writes
  return conn;
}

// An idle HTTP/1.1 connection has nothing to read. Anything readable (a TLS close_notify, the
// FIN) or a hang-up means the server is closing it; cpp-httplib's own check counts pending bytes
// as "alive", which would send the next request into a closing connection.
bool IdleConnectionUsable(const httplib::ClientImpl& client) {
  if (client.is_socket_open() == 0) return true;  // connects afresh
  struct pollfd p = {client.socket(), POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

std::unique_ptr<Connection> HttpTransport::Impl::TakeIdle() {
  std::vector<std::unique_ptr<Connection>> stale;  // closed outside the lock
  std::unique_ptr<Connection> usable;
  {
    std::lock_guard<std::mutex> lock(pool_mu);
    const auto now = SteadyClock::now();
    while (!idle.empty() && usable == nullptr) {
      std::unique_ptr<Connection> conn = std::move(idle.back());
      idle.pop_back();
      // Too old: the server or a proxy may be closing it right now.
      if (now - conn->idle_since < options.idle_connection_timeout &&
          IdleConnectionUsable(*conn->client)) {
        usable = std::move(conn);
      } else {
        stale.push_back(std::move(conn));
      }
    }
  }
  return usable;
}

void HttpTransport::Impl::DropIdle() {
  std::vector<std::unique_ptr<Connection>> dropped;  // closed outside the lock
  std::lock_guard<std::mutex> lock(pool_mu);
  dropped.swap(idle);
}

void HttpTransport::Impl::ReturnIdle(std::unique_ptr<Connection> conn) {
  conn->idle_since = SteadyClock::now();
  std::lock_guard<std::mutex> lock(pool_mu);
  if (idle.size() < options.max_idle_connections) idle.push_back(std::move(conn));
}

std::string HttpTransport::Impl::Target(const HttpRequest& request) const {
  std::string target = url.base_path;
  if (request.path.empty() || request.path.front() != '/') target += '/';
  target += EscapePath(request.path);
  char sep = '?';
  for (const auto& [key, value] : request.query) {
    target += sep;
    target += EscapeQueryComponent(key);
    target += '=';
    target += EscapeQueryComponent(value);
    sep = '&';
  }
  return target;
}

httplib::Headers HttpTransport::Impl::Headers(const HttpRequest& request, const std::string& token,
                                              bool accept_gzip) const {
  httplib::Headers headers;
  headers.emplace("Host", url.host_header);
  headers.emplace("Accept", "application/json");
  headers.emplace("User-Agent", user_agent);
  if (accept_gzip) headers.emplace("Accept-Encoding", "gzip");
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  if (!request.body.empty()) {
    headers.emplace("Content-Type",
                    request.content_type.empty() ? "application/json" : request.content_type);
  }
  return headers;
}

Status HttpTransport::Impl::Failure(httplib::Error error, const Connection& conn, bool timed_out,
                                    milliseconds timeout, const std::string& openssl_errors) const {
  const std::string tls_detail = [&]() -> std::string {
    if (conn.tls && conn.tls->verify_error != X509_V_OK) {
      return fmt::format(": certificate verification failed: {}",
                         X509_verify_cert_error_string(conn.tls->verify_error));
    }
    return openssl_errors.empty() ? "" : ": " + openssl_errors;
  }();
  switch (error) {
    case httplib::Error::Connection:
      return UnavailableError(
          "cannot connect to {} (connection refused, unreachable or name "
          "not resolved)",
          url.display);
    case httplib::Error::ConnectionTimeout:
      return DeadlineExceededError("connecting to {}: timed out after {} ms", url.display,
                                   timeout.count());
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLServerVerification:
    case httplib::Error::SSLLoadingCerts:
      return UnavailableError("TLS handshake with {} failed{}", url.display, tls_detail);
    case httplib::Error::Read:
    case httplib::Error::Canceled:
      if (timed_out) {
        return DeadlineExceededError("{}: no response within {} ms", url.display, timeout.count());
      }
      return UnavailableError("{}: connection closed or reset while reading the response{}",
                              url.display, tls_detail);
    case httplib::Error::Write:
      return UnavailableError("{}: connection closed or reset while sending the request{}",
                              url.display, tls_detail);
    default:
      return UnavailableError("{}: request failed: {}", url.display, httplib::to_string(error));
  }
}

Result<HttpResponse> HttpTransport::Impl::DoOnce(const HttpRequest& request,
                                                 const std::string& token) {
  const milliseconds timeout = std::max(request.timeout, milliseconds(1));
  for (int attempt = 0;; ++attempt) {
    // A repeat goes out on a new connection: the pooled ones are as old as the one that failed.
    std::unique_ptr<Connection> conn = attempt == 0 ? TakeIdle() : nullptr;
    const bool reused = conn != nullptr && conn->client->is_socket_open() != 0;
    if (conn == nullptr) {
      ASSIGN_OR_RETURN(conn, NewConnection(/*keep_alive=*/true));
    }
    SetTimeouts(*conn->client, timeout, timeout, timeout);

    httplib::Request req;
    req.method = request.method;
    req.path = Target(request);
    req.headers = Headers(request, token, /*accept_gzip=*/true);
    req.body = request.body;

    const auto deadline = SteadyClock::now() + timeout;
    auto last_activity = SteadyClock::now();
    bool got_headers = false;
    bool past_deadline = false;
    HttpResponse out;
    req.response_handler = [&](const httplib::Response&) {
      got_headers = true;
      last_activity = SteadyClock::now();
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      last_activity = SteadyClock::now();
      if (last_activity > deadline) {
        past_deadline = true;  // a server dribbling bytes must not stretch the bound
        return false;
      }
      out.body.append(data, n);
      return true;
    };

    if (conn->tls) conn->tls->verify_error = X509_V_OK;
    ERR_clear_error();
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    if (conn->client->send(req, res, error)) {
      out.status = res.status;
      ReturnIdle(std::move(conn));
      return out;
    }
    const std::string openssl_errors = DrainOpenSslErrors();
    // cpp-httplib reports a read timeout as a plain read error; tell them apart by the time
    // since the last byte (the read timeout is `timeout`).
    const bool timed_out =
        past_deadline || (error == httplib::Error::Read &&
                          SteadyClock::now() - last_activity >= timeout - milliseconds(20));
    // A kept-alive connection the server closed just as we sent: safe to repeat a GET. A
    // timeout is not that: repeating it would stretch the caller's bound.
    if (attempt == 0 && reused && !got_headers && !timed_out && IsReplayable(request.method) &&
        (error == httplib::Error::Read || error == httplib::Error::Write)) {
      DropIdle();  // the server (or a proxy) is likely closing its other idle connections too
      continue;
    }
    return Failure(error, *conn, timed_out, timeout, openssl_errors);
  }
}

Result<int> HttpTransport::Impl::StreamOnce(const HttpRequest& request, const std::string& token,
                                            const std::function<bool(std::string_view)>& on_data,
                                            std::string* error_body) {
  if (request.cancel.stop_requested()) {
    return Status(StatusCode::kCancelled, fmt::format("stream from {} cancelled", url.display));
  }
  const milliseconds timeout = std::max(request.timeout, milliseconds(1));
  const milliseconds idle_timeout =
      request.stream_idle_timeout > milliseconds(0) ? request.stream_idle_timeout : timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, NewConnection(/*keep_alive=*/false));
  SetTimeouts(*conn->client, timeout, idle_timeout, timeout);

  httplib::Request req;
  req.method = "GET";
  req.path = Target(request);
  req.headers = Headers(request, token, /*accept_gzip=*/false);

  std::atomic<bool> cancelled{false};
  bool caller_stopped = false;
  int status = 0;
  auto last_activity = SteadyClock::now();
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    last_activity = SteadyClock::now();
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    last_activity = SteadyClock::now();
    if (request.cancel.stop_requested()) {
      cancelled = true;
      return false;
    }
    if (status >= 200 && status < 300) {
      if (!on_data(std::string_view(data, n))) {
        caller_stopped = true;
        return false;
      }
      return true;
    }
    if (error_body != nullptr && error_body->size() < kMaxStreamErrorBody) {
      error_body->append(data, std::min(n, kMaxStreamErrorBody - error_body->size()));
    }
    return true;
  };

  // While the request runs, a watchdog sleeps until a stop is requested on request.cancel (a
  // stop callback wakes it; nothing polls) and then shuts the socket down, which ends a read
  // that is blocked waiting for data.
  std::mutex watchdog_mu;
  std::condition_variable watchdog_cv;
  bool done = false;  // Guarded by watchdog_mu.
  std::thread watchdog;
  auto wake_watchdog = [&] {
    std::lock_guard<std::mutex> lock(watchdog_mu);
    watchdog_cv.notify_all();
  };
  std::optional<std::stop_callback<decltype(wake_watchdog)>> on_cancel;
  if (request.cancel.stop_possible()) {
    httplib::ClientImpl* client = conn->client.get();
    watchdog = std::thread([&, client] {
      ScopedSigpipeBlock sigpipe;
      std::unique_lock<std::mutex> lock(watchdog_mu);
      watchdog_cv.wait(lock, [&] { return done || request.cancel.stop_requested(); });
      while (!done) {
        cancelled = true;
        lock.unlock();
        client->stop();  // thread-safe: only shuts the socket down while a request is in flight
        lock.lock();
        watchdog_cv.wait_for(lock, kCancelRetryInterval, [&] { return done; });
      }
    });
    on_cancel.emplace(request.cancel, wake_watchdog);
  }

  if (conn->tls) conn->tls->verify_error = X509_V_OK;
  ERR_clear_error();
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool ok = conn->client->send(req, res, error);
  const std::string openssl_errors = ok ? std::string() : DrainOpenSslErrors();
  if (watchdog.joinable()) {
    {
      std::lock_guard<std::mutex> lock(watchdog_mu);
      done = true;
    }
    watchdog_cv.notify_all();
    watchdog.join();
  }

  if (ok || caller_stopped) return status;
  if (cancelled) {
    return Status(StatusCode::kCancelled, fmt::format("stream from {} cancelled", url.display));
  }
  const bool timed_out = error == httplib::Error::Read &&
                         SteadyClock::now() - last_activity >= idle_timeout - milliseconds(20);
  return Failure(error, *conn, timed_out, idle_timeout, openssl_errors);
}

HttpTransport::HttpTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpTransport::~HttpTransport() = default;

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const RestConfig& config) {
  return Create(config, Options());
}

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const RestConfig& config,
                                                             Options options) {
  if (config.server.empty()) return InvalidArgumentError("no server in the Kubernetes config");
  const bool has_tls_config =
      !config.ca_pem.empty() || !config.client_cert_pem.empty() || config.insecure_skip_tls_verify;
  ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(config.server, has_tls_config));
  if (config.insecure_skip_tls_verify && !config.ca_pem.empty()) {
    return InvalidArgumentError(
        "{}: insecure-skip-tls-verify cannot be combined with a certificate authority",
        url.display);
  }
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return InvalidArgumentError("{}: a client certificate and a client key must be given together",
                                url.display);
  }
  if (!IsValidToken(text::TrimSpace(config.bearer_token))) {
    return InvalidArgumentError("the bearer token holds control characters");
  }
  time::Clock& clock = options.clock != nullptr ? *options.clock : time::RealClock::Get();
  auto impl = std::make_unique<Impl>(url, config, options, clock);
  impl->user_agent =
      options.user_agent.empty() ? std::string("meshstor/" MESHSTOR_VERSION) : options.user_agent;
  impl->insecure = config.insecure_skip_tls_verify;
  impl->verify_name = config.tls_server_name.empty() ? url.host : config.tls_server_name;
  impl->sni = IsIpLiteral(impl->verify_name) ? std::string() : impl->verify_name;

  if (url.https && !impl->insecure) {
    impl->ca_store.reset(X509_STORE_new());
    if (!impl->ca_store) return InternalError("X509_STORE_new failed");
    if (config.ca_pem.empty()) {
      if (X509_STORE_set_default_paths(impl->ca_store.get()) != 1) {
        return InternalError("loading the system trust store: {}", DrainOpenSslErrors());
      }
    } else {
      ASSIGN_OR_RETURN(std::vector<X509Ptr> cas,
                       ParseCertificates(config.ca_pem, "certificate authority"));
      for (const X509Ptr& ca : cas) {
        if (X509_STORE_add_cert(impl->ca_store.get(), ca.get()) != 1) {
          return InvalidArgumentError("certificate authority: {}", DrainOpenSslErrors());
        }
      }
      // Like Go, trust any certificate of the CA bundle as an anchor, even an intermediate.
      X509_STORE_set_flags(impl->ca_store.get(), X509_V_FLAG_PARTIAL_CHAIN);
    }
  }
  if (url.https && !config.client_cert_pem.empty()) {
    ASSIGN_OR_RETURN(std::vector<X509Ptr> chain,
                     ParseCertificates(config.client_cert_pem, "client certificate"));
    ASSIGN_OR_RETURN(impl->client_key, ParsePrivateKey(config.client_key_pem, "client key"));
    if (X509_check_private_key(chain.front().get(), impl->client_key.get()) != 1) {
      ERR_clear_error();
      return InvalidArgumentError("the client key does not match the client certificate");
    }
    impl->client_cert = std::move(chain.front());
    for (size_t i = 1; i < chain.size(); ++i) impl->client_chain.push_back(std::move(chain[i]));
  }
  RETURN_IF_ERROR(impl->tokens.Init());
  return std::unique_ptr<HttpTransport>(new HttpTransport(std::move(impl)));
}

const std::string& HttpTransport::server() const { return impl_->url.display; }

Result<HttpResponse> HttpTransport::Do(const HttpRequest& request) {
  ScopedSigpipeBlock sigpipe;
  std::string token = impl_->tokens.Get();
  ASSIGN_OR_RETURN(HttpResponse response, impl_->DoOnce(request, token));
  if (response.status == 401) {
    // The token may have rotated since it was last read: re-read it and try once more.
    if (std::optional<std::string> fresh = impl_->tokens.RefreshAfterUnauthorized(token)) {
      return impl_->DoOnce(request, *fresh);
    }
  }
  return response;
}

Result<int> HttpTransport::Stream(const HttpRequest& request,
                                  const std::function<bool(std::string_view)>& on_data,
                                  std::string* error_body) {
  ScopedSigpipeBlock sigpipe;
  std::string token = impl_->tokens.Get();
  if (error_body != nullptr) error_body->clear();
  ASSIGN_OR_RETURN(int status, impl_->StreamOnce(request, token, on_data, error_body));
  if (status == 401) {
    if (std::optional<std::string> fresh = impl_->tokens.RefreshAfterUnauthorized(token)) {
      if (error_body != nullptr) error_body->clear();
      return impl_->StreamOnce(request, *fresh, on_data, error_body);
    }
  }
  return status;
}

}  // namespace common::kube
