#include "common/text/hash.h"

#include <catch2/catch.hpp>

namespace common::text {
namespace {

TEST_CASE("Fnv1a64 matches the published FNV-1a test vectors", "[unit][text]") {
  static_assert(Fnv1a64("") == kFnv1a64OffsetBasis);
  CHECK(Fnv1a64("") == kFnv1a64OffsetBasis);
  CHECK(Fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(Fnv1a64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("Fnv1a64 chained through its seed hashes the concatenation", "[unit][text]") {
  CHECK(Fnv1a64("bar", Fnv1a64("foo")) == Fnv1a64("foobar"));
  CHECK(Fnv1a64("x", 1) != Fnv1a64("x", 2));
  CHECK(Fnv1a64("\xff") != Fnv1a64("\x7f"));  // bytes above 0x7f are not sign-extended
}

}  // namespace
}  // namespace common::text
