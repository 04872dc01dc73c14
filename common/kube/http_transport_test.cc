#include "common/kube/http_transport.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/kube/kubeconfig.h"
#include "common/status/status.h"
#include "common/time/fake_clock.h"

namespace common::kube {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// ---- helpers ----------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "meshstor-kube-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string p = (std::filesystem::path(path_) / name).string();
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A latch a server handler waits on (bounded, so a failing test cannot hang the server's
// shutdown) until the test opens it.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // True if opened within `limit`.
  bool Wait(std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Runs an httplib server on 127.0.0.1 and a free port. Register handlers before Start().
class TestServer {
 public:
  explicit TestServer(std::unique_ptr<httplib::Server> server) : server_(std::move(server)) {}
  TestServer() : TestServer(std::make_unique<httplib::Server>()) {}
  ~TestServer() { Stop(); }

  httplib::Server& operator*() { return *server_; }
  httplib::Server* operator->() { return server_.get(); }

  void Start() {
    server_->set_tcp_nodelay(true);
    port_ = server_->bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    const auto deadline = SteadyClock::now() + 5s;
    while (!server_->is_running() && SteadyClock::now() < deadline) std::this_thread::yield();
    REQUIRE(server_->is_running());
  }
  void Stop() {
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string Url(const char* scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_);
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

std::unique_ptr<HttpTransport> MakeTransport(const RestConfig& config,
                                             HttpTransport::Options options = {}) {
  Result<std::unique_ptr<HttpTransport>> t = HttpTransport::Create(config, std::move(options));
  INFO(t.status().ToString());
  REQUIRE(t.ok());
  return std::move(t).value();
}

RestConfig PlainConfig(const TestServer& server) {
  RestConfig c;
  c.server = server.Url();
  return c;
}

HttpRequest Get(std::string path, std::chrono::milliseconds timeout = 5s) {
  HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.timeout = timeout;
  return r;
}

// ---- certificates generated at test time --------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CertFree {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

PkeyPtr NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key != nullptr);
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by issuer/issuer_key (self-signed when null).
CertPtr MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                 bool is_ca, const std::string& san, const std::string& ext_usage, long serial) {
  CertPtr cert(X509_new());
  REQUIRE(cert != nullptr);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  REQUIRE(X509_set_pubkey(cert.get(), key) == 1);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (is_ca) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    AddExtension(cert.get(), signer, NID_ext_key_usage, ext_usage);
  }
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (!san.empty()) AddExtension(cert.get(), signer, NID_subject_alt_name, san);
  REQUIRE(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509(bio, cert) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// A CA, a server certificate for DNS:kubernetes and IP:127.0.0.1, a client certificate, and an
// unrelated CA.
struct Pki {
  PkeyPtr ca_key = NewKey();
  CertPtr ca = MakeCert(ca_key.get(), "meshstor-test-ca", nullptr, nullptr, true, "", "", 1);
  PkeyPtr server_key = NewKey();
  CertPtr server = MakeCert(server_key.get(), "kube-apiserver", ca.get(), ca_key.get(), false,
                            "DNS:kubernetes,IP:127.0.0.1", "serverAuth", 2);
  PkeyPtr client_key = NewKey();
  CertPtr client = MakeCert(client_key.get(), "meshstor-test-client", ca.get(), ca_key.get(), false,
                            "", "clientAuth", 3);
  PkeyPtr other_ca_key = NewKey();
  CertPtr other_ca = MakeCert(other_ca_key.get(), "other-ca", nullptr, nullptr, true, "", "", 4);
};

const Pki& TestPki() {
  static const Pki* const pki = new Pki();
  return *pki;
}

struct SniRecord {
  std::mutex mu;
  std::vector<std::string> names;  // "" for a ClientHello without SNI
};

int RecordSni(SSL* ssl, int* /*alert*/, void* arg) {
  auto* record = static_cast<SniRecord*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::lock_guard<std::mutex> lock(record->mu);
  record->names.emplace_back(name != nullptr ? name : "");
  return SSL_TLSEXT_ERR_OK;
}

// An HTTPS server with the test PKI that requires a client certificate from the test CA and
// records the SNI of each handshake.
std::unique_ptr<httplib::Server> NewTlsServer(SniRecord* sni) {
  const Pki& pki = TestPki();
  return std::make_unique<httplib::SSLServer>([&pki, sni](SSL_CTX& ctx) {
    if (SSL_CTX_use_certificate(&ctx, pki.server.get()) != 1) return false;
    if (SSL_CTX_use_PrivateKey(&ctx, pki.server_key.get()) != 1) return false;
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, pki.ca.get());
    SSL_CTX_set_cert_store(&ctx, store);
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_callback_ctrl(&ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(&RecordSni));
    SSL_CTX_set_tlsext_servername_arg(&ctx, sni);
    return true;
  });
}

RestConfig TlsConfig(const TestServer& server) {
  const Pki& pki = TestPki();
  RestConfig c;
  c.server = server.Url("https");
  c.ca_pem = CertPem(pki.ca.get());
  c.client_cert_pem = CertPem(pki.client.get());
  c.client_key_pem = KeyPem(pki.client_key.get());
  return c;
}

void ServePeerName(httplib::Server& server) {
  server.Get("/whoami", [](const httplib::Request& req, httplib::Response& res) {
    std::string cn = "none";
    if (req.ssl != nullptr) {
      X509* peer = SSL_get1_peer_certificate(req.ssl);
      if (peer != nullptr) {
        char buf[256];
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
        cn = buf;
        X509_free(peer);
      }
    }
    res.set_content("{\"cn\":\"" + cn + "\"}", "application/json");
  });
}

// ---- plain HTTP
// ----------------------------------------------------------------------------------

TEST_CASE("Escaping keeps unreserved characters and encodes the rest", "[unit][kube]") {
  CHECK(EscapeQueryComponent("app=x,tier!=y z&a/b~_.-") == "app%3Dx%2Ctier%21%3Dy%20z%26a%2Fb~_.-");
  CHECK(EscapeQueryComponent("\xc3\xa9") == "%C3%A9");
  CHECK(EscapePath("/api/v1/namespaces/ns/pods/a b?c#d%") ==
        "/api/v1/namespaces/ns/pods/a%20b%3Fc%23d%25");
  CHECK(EscapePath("/apis/x.io/v1/things:sub@x") == "/apis/x.io/v1/things:sub@x");
}

TEST_CASE("HttpTransport sends the method, escaped path and query, headers and body",
          "[unit][kube]") {
  TestServer server;
  std::mutex mu;
  httplib::Request seen;
  server->Post("/api/v1/namespaces/ns/things",
               [&](const httplib::Request& req, httplib::Response& res) {
                 std::lock_guard<std::mutex> lock(mu);
                 seen = req;
                 res.status = 201;
                 res.set_content("{\"ok\":true}", "application/json");
               });
  server.Start();
  RestConfig config = PlainConfig(server);
  config.bearer_token = "s3cret\n";
  HttpTransport::Options options;
  options.user_agent = "meshstor-test/1";
  auto transport = MakeTransport(config, options);

  HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/namespaces/ns/things";
  request.query = {{"labelSelector", "app=x,tier!=y z"}, {"fieldSelector", "a&b=c"}};
  request.body = "{\"x\":1}";
  request.content_type = "application/merge-patch+json";
  Result<HttpResponse> r = transport->Do(request);
  REQUIRE(r.ok());
  CHECK(r->status == 201);
  CHECK(r->body == "{\"ok\":true}");

  std::lock_guard<std::mutex> lock(mu);
  CHECK(seen.get_param_value("labelSelector") == "app=x,tier!=y z");
  CHECK(seen.get_param_value("fieldSelector") == "a&b=c");
  CHECK(seen.body == "{\"x\":1}");
  CHECK(seen.get_header_value("Content-Type") == "application/merge-patch+json");
  CHECK(seen.get_header_value("Accept") == "application/json");
  CHECK(seen.get_header_value("User-Agent") == "meshstor-test/1");
  CHECK(seen.get_header_value("Authorization") == "Bearer s3cret");
  CHECK(seen.get_header_value("Host") == "127.0.0.1:" + std::to_string(server.port()));
}

TEST_CASE("HttpTransport defaults its User-Agent to meshstor/<version>", "[unit][kube]") {
  TestServer server;
  std::string agent;
  server->Get("/ua", [&](const httplib::Request& req, httplib::Response& res) {
    agent = req.get_header_value("User-Agent");
    res.set_content("{}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  REQUIRE(transport->Do(Get("/ua")).ok());
  CHECK(agent.rfind("meshstor/", 0) == 0);
  CHECK(agent.size() > std::string("meshstor/").size());
}

TEST_CASE("HttpTransport returns every HTTP status as a response", "[unit][kube]") {
  TestServer server;
  server->Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("{\"kind\":\"Status\",\"code\":404}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  Result<HttpResponse> r = transport->Do(Get("/missing"));
  REQUIRE(r.ok());
  CHECK(r->status == 404);
  CHECK(r->body == "{\"kind\":\"Status\",\"code\":404}");
}

TEST_CASE("HttpTransport re-reads the token file after a 401 and retries once", "[unit][kube]") {
  TempDir dir;
  const std::string token_file = dir.Write("token", "old-token\n");
  TestServer server;
  std::atomic<int> requests{0};
  server->Get("/secure", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    if (req.get_header_value("Authorization") != "Bearer new-token") {
      res.status = 401;
      res.set_content("{\"kind\":\"Status\",\"code\":401,\"reason\":\"Unauthorized\"}",
                      "application/json");
      return;
    }
    res.set_content("{}", "application/json");
  });
  server.Start();
  RestConfig config = PlainConfig(server);
  config.token_file = token_file;
  auto transport = MakeTransport(config);

  SECTION("the rotated token is picked up at once") {
    dir.Write("token", "new-token");  // rotated before the periodic re-read is due
    Result<HttpResponse> r = transport->Do(Get("/secure"));
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(requests == 2);
  }
  SECTION("an unchanged token gives the 401 back without a retry") {
    Result<HttpResponse> r = transport->Do(Get("/secure"));
    REQUIRE(r.ok());
    CHECK(r->status == 401);
    CHECK(requests == 1);
  }
  SECTION("streams retry too") {
    dir.Write("token", "new-token");
    std::string body;
    std::string error_body;
    Result<int> s = transport->Stream(
        Get("/secure"),
        [&](std::string_view chunk) {
          body.append(chunk);
          return true;
        },
        &error_body);
    REQUIRE(s.ok());
    CHECK(*s == 200);
    CHECK(body == "{}");
    CHECK(error_body.empty());
  }
}

TEST_CASE("HttpTransport re-reads the token file every refresh interval", "[unit][kube]") {
  TempDir dir;
  const std::string token_file = dir.Write("token", "one");
  TestServer server;
  std::mutex mu;
  std::vector<std::string> tokens;
  server->Get("/t", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    tokens.push_back(req.get_header_value("Authorization"));
    res.set_content("{}", "application/json");
  });
  server.Start();
  time::FakeClock clock;
  RestConfig config = PlainConfig(server);
  config.token_file = token_file;
  config.bearer_token = "fallback";
  HttpTransport::Options options;
  options.clock = &clock;
  options.token_refresh_interval = 60s;
  auto transport = MakeTransport(config, options);

  REQUIRE(transport->Do(Get("/t")).ok());
  dir.Write("token", "two");
  clock.Advance(59s);
  REQUIRE(transport->Do(Get("/t")).ok());
  clock.Advance(1s);
  REQUIRE(transport->Do(Get("/t")).ok());
  // A failed re-read keeps the last good token.
  std::filesystem::remove(token_file);
  clock.Advance(60s);
  REQUIRE(transport->Do(Get("/t")).ok());

  std::lock_guard<std::mutex> lock(mu);
  CHECK(tokens == std::vector<std::string>{"Bearer one", "Bearer one", "Bearer two", "Bearer two"});
}

TEST_CASE("HttpTransport times out with DeadlineExceeded", "[unit][kube]") {
  Gate release;
  TestServer server;
  server->Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    release.Wait();
    res.set_content("{}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  const auto start = SteadyClock::now();
  Result<HttpResponse> r = transport->Do(Get("/slow", 300ms));
  const auto elapsed = SteadyClock::now() - start;
  release.Open();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  CHECK_THAT(r.status().message(), Catch::Contains(server.Url()));
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 3s);
}

TEST_CASE("HttpTransport reports a refused connection as Unavailable", "[unit][kube]") {
  std::string url;
  {
    TestServer closed;
    closed.Start();
    url = closed.Url();
  }  // the port is free again
  RestConfig config;
  config.server = url;
  auto transport = MakeTransport(config);
  Result<HttpResponse> r = transport->Do(Get("/x"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(r.status().message(), Catch::Contains(url));
}

TEST_CASE("HttpTransport is safe for concurrent requests and reuses connections", "[unit][kube]") {
  TestServer server;
  std::atomic<int> served{0};
  server->Get(R"(/n/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    ++served;
    res.set_content("{\"n\":" + req.matches[1].str() + "}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string n = std::to_string(t * 100 + i);
        Result<HttpResponse> r = transport->Do(Get("/n/" + n));
        if (r.ok() && r->status == 200 && r->body == "{\"n\":" + n + "}") ++good;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(good == 100);
  CHECK(served == 100);
}

// A plain HTTP/1.1 server on raw sockets that answers the first request of every connection
// (keep-alive) and, once told to, closes a kept-alive connection when its next request arrives
// without answering: the race of a server closing idle connections as a client reuses them.
class ClosingServer {
 public:
  ClosingServer() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(listener_, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~ClosingServer() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    acceptor_.join();
    for (auto& t : connections_) t.join();
  }
  // Kept-alive connections are closed at their next request from now on.
  void CloseReusedConnections() { closing_ = true; }
  int connections() const { return accepted_; }
  int answered() const { return answered_; }
  RestConfig Config() const {
    RestConfig c;
    c.server = "http://127.0.0.1:" + std::to_string(port_);
    return c;
  }

 private:
  void Accept() {
    while (true) {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string buffer;
    for (int request = 0;; ++request) {
      char chunk[1024];
      while (buffer.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) {
          close(fd);
          return;
        }
        buffer.append(chunk, n);
      }
      buffer.erase(0, buffer.find("\r\n\r\n") + 4);
      if (request > 0 && closing_) break;
      // The first answers wait for a second connection, so the client pools two.
      const auto limit = SteadyClock::now() + 5s;
      while (request == 0 && accepted_ < 2 && SteadyClock::now() < limit) {
        std::this_thread::sleep_for(1ms);
      }
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
          "Connection: keep-alive\r\n\r\n{}";
      if (write(fd, response.data(), response.size()) != static_cast<ssize_t>(response.size())) {
        break;
      }
      ++answered_;
    }
    close(fd);
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> closing_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> answered_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // only the acceptor adds, joined after it ended
};

TEST_CASE("HttpTransport repeats a GET on a new connection when the server closed the pooled ones",
          "[unit][kube]") {
  ClosingServer server;
  auto transport = MakeTransport(server.Config());
  // Two requests at once: two kept-alive connections in the idle pool.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      if (transport->Do(Get("/a")).ok()) ++good;
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(good == 2);
  const int pooled = server.connections();
  REQUIRE(pooled == 2);

  // The server now drops every kept-alive connection as a request arrives on it (it looks
  // alive until then). The GET is repeated once, on a new connection, not on the next pooled
  // one (which the server dropped too).
  server.CloseReusedConnections();
  Result<HttpResponse> r = transport->Do(Get("/b"));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(server.connections() == pooled + 1);
}

TEST_CASE("HttpTransport accepts gzip-compressed responses", "[unit][kube]") {
  std::string big = "{\"items\":[";
  for (int i = 0; i < 5000; ++i) big += (i ? "," : "") + std::string("{\"name\":\"item\"}");
  big += "]}";
  TestServer server;
  std::string accept_encoding;
  server->Get("/big", [&](const httplib::Request& req, httplib::Response& res) {
    accept_encoding = req.get_header_value("Accept-Encoding");
    res.set_content(big, "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  Result<HttpResponse> r = transport->Do(Get("/big"));
  REQUIRE(r.ok());
  CHECK(accept_encoding == "gzip");
  CHECK(r->body == big);
}

// ---- streams
// -------------------------------------------------------------------------------------

TEST_CASE("HttpTransport streams chunks as they arrive", "[unit][kube]") {
  Gate client_saw_first;
  std::atomic<bool> server_saw_ack{false};
  TestServer server;
  server->Get("/watch", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      const std::string first = "{\"n\":1}\n";
      sink.write(first.data(), first.size());
      // The second chunk is only sent once the client has seen the first one.
      server_saw_ack = client_saw_first.Wait();
      const std::string second = "{\"n\":2}\n";
      sink.write(second.data(), second.size());
      sink.done();
      return true;
    });
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  std::string received;
  std::string error_body;
  Result<int> r = transport->Stream(
      Get("/watch"),
      [&](std::string_view chunk) {
        received.append(chunk);
        if (received.find("{\"n\":1}") != std::string::npos) client_saw_first.Open();
        return true;
      },
      &error_body);
  client_saw_first.Open();
  REQUIRE(r.ok());
  CHECK(*r == 200);
  CHECK(server_saw_ack);
  CHECK(received == "{\"n\":1}\n{\"n\":2}\n");
}

// A stream that sends one chunk, then stays silent until the test ends.
struct SilentStream {
  Gate finish;
  TestServer server;
  SilentStream() {
    server->Get("/watch", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/json", [this](size_t, httplib::DataSink& sink) {
        const std::string first = "{\"n\":1}\n";
        sink.write(first.data(), first.size());
        (void)finish.Wait(10s);  // bounded: lets the server shut down if a test fails
        sink.done();
        return true;
      });
    });
    server.Start();
  }
  ~SilentStream() {
    finish.Open();
    server.Stop();
  }
};

TEST_CASE("HttpTransport stops a stream at once when on_data returns false", "[unit][kube]") {
  SilentStream s;
  auto transport = MakeTransport(PlainConfig(s.server));
  const auto start = SteadyClock::now();
  int chunks = 0;
  Result<int> r = transport->Stream(
      Get("/watch"),
      [&](std::string_view) {
        ++chunks;
        return false;
      },
      nullptr);
  CHECK(SteadyClock::now() - start < 2s);
  REQUIRE(r.ok());
  CHECK(*r == 200);
  CHECK(chunks == 1);
}

// Streams /watch (quiet after its first chunk, as SilentStream serves it) until `cancel` stops it;
// opens `got_first` at the first chunk and when the stream ends.
Result<int> CancellableStream(Transport& transport, const std::stop_source& cancel,
                              Gate& got_first) {
  HttpRequest request = Get("/watch");
  request.stream_idle_timeout = 30s;
  request.cancel = cancel.get_token();
  Result<int> r = transport.Stream(
      request,
      [&](std::string_view) {
        got_first.Open();
        return true;
      },
      nullptr);
  got_first.Open();
  return r;
}

TEST_CASE("HttpTransport cancels a silent stream promptly", "[unit][kube]") {
  SilentStream s;
  auto transport = MakeTransport(PlainConfig(s.server));
  std::stop_source cancel;
  Gate got_first;
  std::thread canceller([&] {
    if (got_first.Wait()) cancel.request_stop();
  });
  const auto start = SteadyClock::now();
  Result<int> r = CancellableStream(*transport, cancel, got_first);
  canceller.join();
  CHECK(SteadyClock::now() - start < 3s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCancelled);
}

// Voluntary context switches of every thread of this process so far.
long VoluntarySwitches() {
  rusage usage{};
  REQUIRE(getrusage(RUSAGE_SELF, &usage) == 0);
  return usage.ru_nvcsw;
}

TEST_CASE("HttpTransport's cancel watchdog sleeps while a stream is quiet", "[unit][kube]") {
  // It looked at the cancel flag every 50 ms: 20 wake-ups per second for each watch of every
  // idle binary. One quiet second of a cancellable stream, the whole process: the observer's
  // own sleep and nothing else.
  SilentStream s;
  auto transport = MakeTransport(PlainConfig(s.server));
  std::stop_source cancel;
  Gate got_first;
  long switches = -1;
  std::thread observer([&] {
    if (!got_first.Wait()) return;
    std::this_thread::sleep_for(100ms);  // the stream's first chunk handled
    const long before = VoluntarySwitches();
    std::this_thread::sleep_for(1s);
    switches = VoluntarySwitches() - before;
    cancel.request_stop();
  });
  Result<int> r = CancellableStream(*transport, cancel, got_first);
  observer.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCancelled);
  CHECK(switches >= 0);
  CHECK(switches < 8);  // ~20 when polled
}

TEST_CASE("HttpTransport ends a silent stream after the idle timeout", "[unit][kube]") {
  SilentStream s;
  auto transport = MakeTransport(PlainConfig(s.server));
  HttpRequest request = Get("/watch");
  request.stream_idle_timeout = 300ms;
  const auto start = SteadyClock::now();
  Result<int> r = transport->Stream(
      request, [](std::string_view) { return true; }, nullptr);
  const auto elapsed = SteadyClock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 3s);
}

TEST_CASE("HttpTransport collects the body of a failed stream", "[unit][kube]") {
  TestServer server;
  server->Get("/watch", [](const httplib::Request&, httplib::Response& res) {
    res.status = 403;
    res.set_content("{\"kind\":\"Status\",\"reason\":\"Forbidden\"}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(PlainConfig(server));
  bool called = false;
  std::string error_body = "stale";
  Result<int> r = transport->Stream(
      Get("/watch"),
      [&](std::string_view) {
        called = true;
        return true;
      },
      &error_body);
  REQUIRE(r.ok());
  CHECK(*r == 403);
  CHECK_FALSE(called);
  CHECK(error_body == "{\"kind\":\"Status\",\"reason\":\"Forbidden\"}");
}

// ---- configuration errors -----------------------------------------------------------------------

TEST_CASE("HttpTransport::Create rejects bad configurations", "[unit][kube]") {
  const Pki& pki = TestPki();
  RestConfig config;
  config.server = "https://10.0.0.1:6443";
  StatusCode expected = StatusCode::kInvalidArgument;
  std::string expected_text;
  SECTION("unknown scheme") {
    config.server = "ftp://10.0.0.1";
    expected_text = "scheme";
  }
  SECTION("unbracketed IPv6") {
    config.server = "https://fd00::1:6443";
    expected_text = "brackets";
  }
  SECTION("bad port") {
    config.server = "https://host:99999";
    expected_text = "port";
  }
  SECTION("insecure with a CA") {
    config.insecure_skip_tls_verify = true;
    config.ca_pem = CertPem(pki.ca.get());
    expected_text = "insecure";
  }
  SECTION("certificate without key") {
    config.client_cert_pem = CertPem(pki.client.get());
    expected_text = "together";
  }
  SECTION("garbage CA") {
    config.ca_pem = "not a certificate";
    expected_text = "certificate authority";
  }
  SECTION("key that does not match") {
    config.client_cert_pem = CertPem(pki.client.get());
    config.client_key_pem = KeyPem(pki.server_key.get());
    expected_text = "does not match";
  }
  SECTION("a token that would break the header line") {
    config.bearer_token = "abc\r\nX-Injected: 1";
    expected_text = "control characters";
  }
  SECTION("unreadable token file") {
    config.token_file = "/nonexistent/meshstor/token";
    expected = StatusCode::kNotFound;
    expected_text = "/nonexistent/meshstor/token";
  }
  Result<std::unique_ptr<HttpTransport>> t = HttpTransport::Create(config);
  REQUIRE_FALSE(t.ok());
  CHECK(t.status().code() == expected);
  CHECK_THAT(t.status().message(), Catch::Contains(expected_text));
}

TEST_CASE("HttpTransport::Create parses server URLs", "[unit][kube]") {
  auto server_of = [](const std::string& url, bool tls) {
    RestConfig c;
    c.server = url;
    c.insecure_skip_tls_verify = tls;
    Result<std::unique_ptr<HttpTransport>> t = HttpTransport::Create(c);
    INFO(t.status().ToString());
    REQUIRE(t.ok());
    return (*t)->server();
  };
  CHECK(server_of("https://[fd00::1]:6443/", false) == "https://[fd00::1]:6443");
  CHECK(server_of("http://10.0.0.1:8080/prefix/", false) == "http://10.0.0.1:8080/prefix");
  CHECK(server_of("HTTPS://api.example.com", false) == "https://api.example.com");
  CHECK(server_of("10.0.0.1:6443", true) == "https://10.0.0.1:6443");
  CHECK(server_of("10.0.0.1:8080", false) == "http://10.0.0.1:8080");
}

// ---- TLS
// -----------------------------------------------------------------------------------------

TEST_CASE("HttpTransport verifies the server and presents its client certificate", "[unit][kube]") {
  SniRecord sni;
  TestServer server(NewTlsServer(&sni));
  ServePeerName(*server);
  server.Start();
  RestConfig config = TlsConfig(server);

  SECTION("CA and client certificate: the server sees the client") {
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->body == "{\"cn\":\"meshstor-test-client\"}");
    std::lock_guard<std::mutex> lock(sni.mu);
    REQUIRE_FALSE(sni.names.empty());
    CHECK(sni.names.back().empty());  // no SNI for an IP address, as in Go
  }
  SECTION("a client certificate with its chain works the same") {
    config.client_cert_pem += CertPem(TestPki().ca.get());
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->body == "{\"cn\":\"meshstor-test-client\"}");
  }
  SECTION("tls_server_name is verified and sent as SNI") {
    config.tls_server_name = "kubernetes";
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    std::lock_guard<std::mutex> lock(sni.mu);
    REQUIRE_FALSE(sni.names.empty());
    CHECK(sni.names.back() == "kubernetes");
  }
  SECTION("a wrong CA fails the handshake") {
    config.ca_pem = CertPem(TestPki().other_ca.get());
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(r.status().message(), Catch::Contains("certificate verification failed"));
    CHECK_THAT(r.status().message(), Catch::Contains(server.Url("https")));
  }
  SECTION("a name the certificate does not hold fails") {
    config.tls_server_name = "other.example.com";
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(r.status().message(), Catch::Contains("hostname mismatch"));
  }
  SECTION("a host name the certificate does not hold fails") {
    config.server = "https://localhost:" + std::to_string(server.port());
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnavailable);
  }
  SECTION("insecure-skip-tls-verify accepts an unknown CA") {
    config.ca_pem.clear();
    config.insecure_skip_tls_verify = true;
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->status == 200);
  }
  SECTION("without a client certificate the server refuses") {
    config.client_cert_pem.clear();
    config.client_key_pem.clear();
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnavailable);
  }
  SECTION("without a CA the system trust store does not know the test CA") {
    config.ca_pem.clear();
    auto transport = MakeTransport(config);
    Result<HttpResponse> r = transport->Do(Get("/whoami"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(r.status().message(), Catch::Contains("certificate verification failed"));
  }
}

TEST_CASE("HttpTransport does not send into a kept-alive connection the server closed",
          "[unit][kube]") {
  SniRecord sni;
  TestServer server(NewTlsServer(&sni));
  server->set_keep_alive_timeout(1);
  std::atomic<int> posts{0};
  server->Post("/things", [&](const httplib::Request&, httplib::Response& res) {
    ++posts;
    res.status = 201;
    res.set_content("{}", "application/json");
  });
  server.Start();
  auto transport = MakeTransport(TlsConfig(server));
  HttpRequest post;
  post.method = "POST";
  post.path = "/things";
  post.body = "{}";
  Result<HttpResponse> first = transport->Do(post);
  REQUIRE(first.ok());
  // The server closes the idle connection (with a TLS close_notify) after its keep-alive
  // timeout; a POST is not repeated, so it must go out on a new connection.
  std::this_thread::sleep_for(1500ms);
  Result<HttpResponse> second = transport->Do(post);
  INFO(second.status().ToString());
  REQUIRE(second.ok());
  CHECK(second->status == 201);
  CHECK(posts == 2);
}

TEST_CASE("HttpTransport streams over TLS", "[unit][kube]") {
  SniRecord sni;
  TestServer server(NewTlsServer(&sni));
  server->Get("/watch", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [](size_t, httplib::DataSink& sink) {
      for (int i = 0; i < 3; ++i) {
        const std::string event = "{\"n\":" + std::to_string(i) + "}\n";
        sink.write(event.data(), event.size());
      }
      sink.done();
      return true;
    });
  });
  server.Start();
  auto transport = MakeTransport(TlsConfig(server));
  std::string received;
  Result<int> r = transport->Stream(
      Get("/watch"),
      [&](std::string_view chunk) {
        received.append(chunk);
        return true;
      },
      nullptr);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(*r == 200);
  CHECK(received == "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
}

}  // namespace
}  // namespace common::kube
