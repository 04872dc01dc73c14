#include "tools/csi-client/args.h"

#include <catch2/catch.hpp>

namespace csi_client {
namespace {

using common::StatusCode;

TEST_CASE("csi-client: a call with its flags, switches and parameters", "[unit][csi-client]") {
  auto a = ParseArgs({"--endpoint", "unix:///run/csi/node.sock", "--retry", "--timeout=90s",
                      "node-publish", "--volume-id", "pvc-1", "--staging-path=/stage", "--target",
                      "/pods/p1", "--readonly"});
  REQUIRE(a.ok());
  CHECK(a->endpoint == "unix:///run/csi/node.sock");
  CHECK(a->call == "node-publish");
  CHECK(a->retry);
  CHECK(a->timeout == std::chrono::seconds(90));
  CHECK(a->flags == std::map<std::string, std::string>{{"volume-id", "pvc-1"},
                                                       {"staging-path", "/stage"},
                                                       {"target", "/pods/p1"}});
  CHECK(a->switches == std::set<std::string>{"readonly"});

  auto c =
      ParseArgs({"--endpoint", "unix:///c.sock", "create-volume", "--name", "pvc-2", "--capacity",
                 "512Mi", "--param", "replicaCount=2", "--param", "memberMissingTimeout=60"});
  REQUIRE(c.ok());
  CHECK(c->params ==
        std::map<std::string, std::string>{{"replicaCount", "2"}, {"memberMissingTimeout", "60"}});
  CHECK_FALSE(c->retry);
  CHECK(c->timeout == std::chrono::seconds(300));
}

TEST_CASE("csi-client: bad command lines name what is wrong", "[unit][csi-client]") {
  auto message = [](const std::vector<std::string>& argv) {
    auto a = ParseArgs(argv);
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == StatusCode::kInvalidArgument);
    return a.status().message();
  };
  CHECK(message({"--endpoint", "unix:///x", "frobnicate"}) == "unknown call \"frobnicate\"");
  CHECK(message({"--endpoint", "unix:///x"}) == "no call given");
  CHECK(message({"probe"}) == "--endpoint is required");
  CHECK(message({"--endpoint", "unix:///x", "node-stage", "--volume-id", "v"}) ==
        "node-stage needs --staging-path");
  CHECK(message({"--endpoint", "unix:///x", "probe", "--volume-id", "v"}) ==
        "unknown flag --volume-id for probe");
  CHECK(message({"--endpoint", "unix:///x", "delete-volume", "--volume-id"}) ==
        "--volume-id: missing value");
  CHECK(message({"--endpoint", "unix:///x", "delete-volume", "--volume-id", "v", "--param",
                 "a=b"}) == "--param is not accepted by delete-volume");
  CHECK(message({"--endpoint", "unix:///x", "create-volume", "--name", "n", "--capacity", "1",
                 "--param", "=b"}) == "--param: expected key=value, got \"=b\"");
  CHECK(message({"--endpoint", "unix:///x", "--timeout", "soon", "probe"}).find("--timeout") == 0);
  CHECK(message({"--endpoint", "unix:///x", "probe", "extra"}) == "unexpected argument \"extra\"");
  CHECK(message({"--endpoint", "unix:///x", "--retry=yes", "probe"}) == "--retry takes no value");
}

TEST_CASE("csi-client: sizes and exit codes", "[unit][csi-client]") {
  CHECK(*ParseBytes("512Mi") == 512LL << 20);
  CHECK(*ParseBytes("1Gi") == 1LL << 30);
  CHECK(*ParseBytes("2G") == 2'000'000'000LL);
  CHECK(*ParseBytes("4096") == 4096);
  for (const char* bad : {"", "Mi", "-1", "1.5Gi", "12XB", "99999999999Ti"}) {
    INFO(bad);
    CHECK(ParseBytes(bad).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(ExitCodeFor(0) == 0);
  CHECK(ExitCodeFor(5) == 15);  // NotFound
  CHECK(ExitCodeFor(6) == 16);  // AlreadyExists
  CHECK(CodeName(5) == "NotFound");
  CHECK(CodeName(14) == "Unavailable");
  CHECK(CodeName(99) == "Code(99)");
}

}  // namespace
}  // namespace csi_client
