#include "common/log/repeats.h"

#include <catch2/catch.hpp>

namespace common::log {
namespace {

using std::chrono::seconds;

TEST_CASE("RepeatFilter logs a message once per interval, counting what it held back",
          "[unit][log]") {
  RepeatFilter f(seconds(300));
  const RepeatFilter::TimePoint t0{};
  CHECK(f.Check("drive gone", t0).log);
  CHECK_FALSE(f.Check("drive gone", t0 + seconds(10)).log);
  CHECK_FALSE(f.Check("drive gone", t0 + seconds(20)).log);
  CHECK(f.Check("other error", t0 + seconds(20)).log);  // each message on its own
  auto v = f.Check("drive gone", t0 + seconds(300));
  CHECK(v.log);
  CHECK(v.suppressed == 2);
  v = f.Check("drive gone", t0 + seconds(310));
  CHECK_FALSE(v.log);
}

TEST_CASE("RepeatFilter treats a message absent for an interval as new, and prunes it",
          "[unit][log]") {
  RepeatFilter f(seconds(60));
  const RepeatFilter::TimePoint t0{};
  CHECK(f.Check("a", t0).log);
  CHECK_FALSE(f.Check("a", t0 + seconds(30)).log);
  auto v = f.Check("a", t0 + seconds(95));  // gone for 65 s: new again, nothing held back
  CHECK(v.log);
  CHECK(v.suppressed == 0);
  CHECK(f.Check("b", t0 + seconds(100)).log);
  f.Prune(t0 + seconds(156));  // "a" last seen at 95, "b" at 100
  CHECK(f.size() == 1);
  f.Prune(t0 + seconds(160));
  CHECK(f.size() == 0);
}

}  // namespace
}  // namespace common::log
