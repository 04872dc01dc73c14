#include "common/text/strings.h"

#include <catch2/catch.hpp>

namespace common::text {
namespace {

TEST_CASE("TrimSpace drops ASCII whitespace at both ends only", "[unit][text]") {
  CHECK(TrimSpace(" \t token\r\n") == "token");
  CHECK(TrimSpace("a b") == "a b");
  CHECK(TrimSpace("\f\v") == "");
  CHECK(TrimSpace("") == "");
  CHECK(TrimSpace("x") == "x");
  CHECK(TrimSpace("\xC2\xA0x") == "\xC2\xA0x");  // non-ASCII space is data
}

}  // namespace
}  // namespace common::text
