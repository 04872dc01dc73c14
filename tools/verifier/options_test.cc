#include "tools/verifier/options.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace verifier {
namespace {

std::string Error(const std::vector<std::string>& args) {
  auto o = ParseOptions(args);
  return o.ok() ? "" : o.status().message();
}

TEST_CASE("ParseOptions: write with every flag", "[verifier]") {
  auto o = ParseOptions({"write", "--file", "/v/f", "--run", "9", "--slots", "256", "--count",
                         "100", "--ack-url", "http://10.77.0.254:8080/ack/9", "--ack-interval-ms",
                         "50", "--fsync", "--pause-ms", "5"});
  REQUIRE(o.ok());
  CHECK(o->mode == Mode::kWrite);
  CHECK(o->file == "/v/f");
  CHECK(o->run_id == 9);
  CHECK(o->slots == 256);
  CHECK(o->count == 100);
  CHECK(o->ack_url == "http://10.77.0.254:8080/ack/9");
  CHECK(o->ack_interval_ms == 50);
  CHECK(o->fsync);
  CHECK(o->pause_ms == 5);
}

TEST_CASE("ParseOptions: verify needs the host's acknowledged count", "[verifier]") {
  auto o = ParseOptions({"verify", "--file", "f", "--run", "1", "--slots", "4", "--acked", "0"});
  REQUIRE(o.ok());
  CHECK(o->acked == 0);
  CHECK(Error({"verify", "--file", "f", "--run", "1", "--slots", "4"}).find("--acked") == 0);
}

TEST_CASE("ParseOptions: bad input names what was wrong", "[verifier]") {
  CHECK(Error({}) == "missing mode: write or verify");
  CHECK(Error({"read"}) == "unknown mode \"read\": write or verify");
  CHECK(Error({"write", "--run", "1", "--slots", "4"}) == "--file is required");
  CHECK(Error({"write", "--file", "f", "--slots", "4"}) == "--run is required");
  CHECK(Error({"write", "--file", "f", "--run", "1"}).find("--slots") == 0);
  CHECK(Error({"write", "--file", "f", "--run", "x1", "--slots", "4"}) ==
        "--run: \"x1\" is not a non-negative integer");
  CHECK(Error({"write", "--file", "f", "--run", "1", "--slots", "-4"}) ==
        "--slots: \"-4\" is not a non-negative integer");
  CHECK(Error({"write", "--file", "f", "--run", "1", "--slots", "4", "--acked", "3"}) ==
        "unknown flag --acked for mode write");
  CHECK(Error({"write", "--file"}) == "--file: missing value (or unknown flag)");
  CHECK(Error({"write", "--file", "f", "--run", "1", "--slots", "4", "--ack-interval-ms", "0"}) ==
        "--ack-interval-ms must be at least 1");
}

}  // namespace
}  // namespace verifier
