#include "common/api/json.h"

#include <string>
#include <thread>

#include <catch2/catch.hpp>

namespace common::api::json {
namespace {

std::string BigObject(int fields) {
  std::string s = "{";
  for (int i = 0; i < fields; ++i) {
    s += (i ? "," : "") + std::string("\"field") + std::to_string(i) + "\":\"" +
         std::string(40, 'v') + "\"";
  }
  return s + "}";
}

TEST_CASE("ScratchDocument lends each thread two buffers, nested, then uses the heap",
          "[unit][api]") {
  {
    ScratchDocument outer;
    CHECK(outer.borrowed());
    {
      ScratchDocument inner;
      CHECK(inner.borrowed());
      ScratchDocument third;
      CHECK_FALSE(third.borrowed());
      REQUIRE(ParseObject(R"({"a":1})", third.doc(), "third").ok());
      CHECK(third.doc()["a"].GetInt() == 1);
    }
    // The inner buffer is free again; another thread has buffers of its own.
    ScratchDocument again;
    CHECK(again.borrowed());
    bool other_borrowed = false;
    std::thread([&] {
      ScratchDocument d;
      other_borrowed = d.borrowed();
    }).join();
    CHECK(other_borrowed);
  }
  ScratchDocument after;
  CHECK(after.borrowed());
}

TEST_CASE(
    "A ScratchDocument holds documents larger than its buffer, and values do not leak "
    "into the next one",
    "[unit][api]") {
  const std::string big = BigObject(3000);  // ~150 KiB of text, more values than 64 KiB hold
  for (int round = 0; round < 3; ++round) {
    ScratchDocument d;
    REQUIRE(d.borrowed());
    REQUIRE(ParseObject(big, d.doc(), "big").ok());
    CHECK(d.doc().MemberCount() == 3000);
    CHECK(d.doc()["field2999"].GetString() == std::string(40, 'v'));
    ScratchDocument small;
    REQUIRE(ParseObject(R"({"only":"one"})", small.doc(), "small").ok());
    CHECK(small.doc().MemberCount() == 1);
    CHECK(d.doc()["field0"].GetString() == std::string(40, 'v'));  // untouched by the other
  }
}

}  // namespace
}  // namespace common::api::json
