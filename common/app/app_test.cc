#include "common/app/app.h"

#include <catch2/catch.hpp>

namespace common::app {
namespace {

TEST_CASE("Listen addresses parse host and port", "[unit][app]") {
  auto a = ParseListenAddress(":8080");
  REQUIRE(a.ok());
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 8080);
  auto b = ParseListenAddress("127.0.0.1:0");
  REQUIRE(b.ok());
  CHECK(b->host == "127.0.0.1");
  CHECK(b->port == 0);
  auto c = ParseListenAddress("[::1]:9090");
  REQUIRE(c.ok());
  CHECK(c->host == "::1");
  CHECK(c->port == 9090);
}

TEST_CASE("Bad listen addresses name the text", "[unit][app]") {
  for (const char* bad : {"8080", "host:", "host:http", "host:65536", "::1:80", "h:-1"}) {
    auto r = ParseListenAddress(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find(bad) != std::string::npos);
  }
}

}  // namespace
}  // namespace common::app
