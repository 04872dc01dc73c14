#include "common/http/health_server.h"

#include <httplib.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/metrics/metrics.h"

namespace common::http {
namespace {

constexpr char kHost[] = "127.0.0.1";

// A server on a kernel-chosen port of the loopback address, started, with a client for it.
struct Fixture {
  Fixture() : server(kHost, 0, registry) {
    REQUIRE(registry.AddCounter("meshstor_test_total", "Test counter").ok());
    Status started = server.Start();
    INFO(started.ToString());
    REQUIRE(started.ok());
    REQUIRE(server.port() != 0);
  }

  httplib::Client Client() const {
    httplib::Client client(kHost, server.port());
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    return client;
  }

  httplib::Result Get(const std::string& path) { return Client().Get(path); }

  metrics::Registry registry;
  HealthServer server;
};

TEST_CASE("GET /metrics serves the registry in the Prometheus text format", "[unit][http]") {
  Fixture f;
  Result<metrics::Gauge*> gauge = f.registry.AddGauge("meshstor_volumes", "Volumes");
  REQUIRE(gauge.ok());
  (*gauge)->Set(3);

  httplib::Result res = f.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(res->body ==
        "# HELP meshstor_test_total Test counter\n# TYPE meshstor_test_total counter\n"
        "meshstor_test_total 0\n"
        "# HELP meshstor_volumes Volumes\n# TYPE meshstor_volumes gauge\nmeshstor_volumes 3\n");

  // Each scrape renders the current values.
  (*gauge)->Set(4);
  res = f.Get("/metrics");
  REQUIRE(res);
  CHECK(res->body.find("meshstor_volumes 4\n") != std::string::npos);
}

TEST_CASE("/healthz answers ok until a liveness check fails", "[unit][http]") {
  Fixture f;
  httplib::Result res = f.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "ok");
  CHECK(res->get_header_value("Content-Type") == "text/plain; charset=utf-8");

  std::atomic<bool> stuck{false};
  REQUIRE(f.server
              .AddLivenessCheck("workers",
                                [&stuck] {
                                  return stuck ? InternalError("worker 2 stuck for {}s", 90)
                                               : OkStatus();
                                })
              .ok());
  REQUIRE(f.server.AddLivenessCheck("ping", [] { return OkStatus(); }).ok());

  res = f.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "ok");

  stuck = true;
  res = f.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 500);
  CHECK(res->body == "[-]workers failed: INTERNAL: worker 2 stuck for 90s\nhealthz check failed\n");

  res = f.Get("/healthz?verbose");
  REQUIRE(res);
  CHECK(res->status == 500);
  CHECK(res->body ==
        "[-]workers failed: INTERNAL: worker 2 stuck for 90s\n[+]ping ok\nhealthz check failed\n");

  // Readiness checks do not affect liveness.
  REQUIRE(f.server.AddReadinessCheck("never", [] { return UnavailableError("no"); }).ok());
  stuck = false;
  res = f.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("/readyz answers 503 naming each failing readiness check", "[unit][http]") {
  Fixture f;
  std::atomic<bool> synced{false};
  REQUIRE(f.server
              .AddReadinessCheck("informer-sync",
                                 [&synced] {
                                   return synced ? OkStatus()
                                                 : UnavailableError("cache not synced\nyet");
                                 })
              .ok());
  REQUIRE(f.server.AddReadinessCheck("ping", [] { return OkStatus(); }).ok());
  REQUIRE(f.server.AddReadinessCheck("throws", []() -> Status { throw std::runtime_error("boom"); })
              .ok());

  httplib::Result res = f.Get("/readyz");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(res->get_header_value("Content-Type") == "text/plain; charset=utf-8");
  // Only failing checks, one line each (the newline in the reason is flattened).
  CHECK(res->body ==
        "[-]informer-sync failed: UNAVAILABLE: cache not synced yet\n"
        "[-]throws failed: INTERNAL: check threw an exception: boom\n"
        "readyz check failed\n");

  SECTION("verbose lists every check") {
    res = f.Get("/readyz?verbose=1");
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->body ==
          "[-]informer-sync failed: UNAVAILABLE: cache not synced yet\n"
          "[+]ping ok\n"
          "[-]throws failed: INTERNAL: check threw an exception: boom\n"
          "readyz check failed\n");
  }
  SECTION("ok once every check passes") {
    synced = true;
    // A fresh server, since "throws" can never pass; checks may be added after Start().
    metrics::Registry registry;
    HealthServer server(kHost, 0, registry);
    REQUIRE(server.Start().ok());
    REQUIRE(server
                .AddReadinessCheck(
                    "informer-sync",
                    [&synced] { return synced ? OkStatus() : UnavailableError("not synced"); })
                .ok());
    httplib::Client client(kHost, server.port());
    res = client.Get("/readyz");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "ok");
    res = client.Get("/readyz?verbose");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "[+]informer-sync ok\nreadyz check passed\n");
  }
}

TEST_CASE("Unknown paths answer 404 and other methods 405", "[unit][http]") {
  Fixture f;
  httplib::Client client = f.Client();
  for (const char* path : {"/", "/metrics/", "/healthz/x", "/livez", "/readyz.txt"}) {
    INFO(path);
    httplib::Result res = client.Get(path);
    REQUIRE(res);
    CHECK(res->status == 404);
    res = client.Post(path, "x", "text/plain");
    REQUIRE(res);
    CHECK(res->status == 404);
  }

  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    INFO(path);
    std::vector<httplib::Result> results;
    results.push_back(client.Post(path, "body", "text/plain"));
    results.push_back(client.Put(path, "body", "text/plain"));
    results.push_back(client.Patch(path, "body", "text/plain"));
    results.push_back(client.Delete(path));
    results.push_back(client.Options(path));
    httplib::Request trace;
    trace.method = "TRACE";
    trace.path = path;
    results.push_back(client.send(trace));
    for (httplib::Result& res : results) {
      REQUIRE(res);
      CHECK(res->status == 405);
      CHECK(res->get_header_value("Allow") == "GET, HEAD");
    }

    httplib::Result head = client.Head(path);
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->body.empty());
  }
}

TEST_CASE("Binding an address in use fails with an error naming it", "[unit][http]") {
  Fixture f;
  metrics::Registry registry;
  HealthServer second(kHost, f.server.port(), registry);
  Status status = second.Start();
  CHECK(status.code() == StatusCode::kFailedPrecondition);
  CHECK(status.message() ==
        fmt::format("binding the health server to 127.0.0.1:{}: address already in use "
                    "(EADDRINUSE)",
                    f.server.port()));
  CHECK(second.port() == 0);
  second.Stop();  // harmless on a server that never started

  // The first server is unaffected.
  httplib::Result res = f.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("An address that does not resolve is an invalid argument", "[unit][http]") {
  metrics::Registry registry;
  HealthServer server("no such host.invalid", 0, registry);
  Status status = server.Start();
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(
      status.message().starts_with("resolving the health server address no such host.invalid:0: "));
}

TEST_CASE("Start and Stop are idempotent and the server can restart", "[unit][http]") {
  metrics::Registry registry;
  HealthServer server(kHost, 0, registry);
  CHECK(server.port() == 0);
  server.Stop();  // before any Start

  REQUIRE(server.Start().ok());
  const std::uint16_t port = server.port();
  REQUIRE(port != 0);
  REQUIRE(server.Start().ok());  // already running: no effect
  CHECK(server.port() == port);
  {
    httplib::Client client(kHost, port);
    httplib::Result res = client.Get("/healthz");
    REQUIRE(res);
    CHECK(res->status == 200);
  }

  server.Stop();
  server.Stop();
  CHECK(server.port() == port);  // the last bound port
  {
    httplib::Client client(kHost, port);
    client.set_connection_timeout(1, 0);
    CHECK_FALSE(client.Get("/healthz"));  // nothing listens any more
  }

  // Restart on the very port it had, as a server constructed with a fixed port would.
  HealthServer fixed(kHost, port, registry);
  REQUIRE(fixed.Start().ok());
  CHECK(fixed.port() == port);
  fixed.Stop();
  REQUIRE(fixed.Start().ok());
  CHECK(fixed.port() == port);
  httplib::Client client(kHost, port);
  httplib::Result res = client.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  // Stopping straight after starting must not hang (the accept loop may have just begun).
  for (int i = 0; i < 20; ++i) {
    fixed.Stop();
    REQUIRE(fixed.Start().ok());
  }
  // The destructor stops the running server.
}

TEST_CASE("Check registration validates names and functions", "[unit][http]") {
  metrics::Registry registry;
  HealthServer server(kHost, 0, registry);
  auto ok = [] { return OkStatus(); };

  Status empty = server.AddReadinessCheck("", ok);
  CHECK(empty.code() == StatusCode::kInvalidArgument);
  CHECK(empty.message() ==
        "readiness check name \"\" is not valid: it must be non-empty and use only "
        "[A-Za-z0-9._:/-]");
  CHECK(server.AddLivenessCheck("has space", ok).code() == StatusCode::kInvalidArgument);
  CHECK(server.AddLivenessCheck("new\nline", ok).code() == StatusCode::kInvalidArgument);
  CHECK(server.AddLivenessCheck("ok-name", nullptr).message() ==
        "liveness check ok-name has no function");

  REQUIRE(server.AddLivenessCheck("etcd/ping:v1.2_x", ok).ok());
  Status again = server.AddLivenessCheck("etcd/ping:v1.2_x", ok);
  CHECK(again.code() == StatusCode::kAlreadyExists);
  CHECK(again.message() == "liveness check etcd/ping:v1.2_x is already registered");
  // Liveness and readiness names are separate.
  CHECK(server.AddReadinessCheck("etcd/ping:v1.2_x", ok).ok());
}

}  // namespace
}  // namespace common::http
