#include "common/time/backoff.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

namespace common::time {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// A random source that always returns `r`.
Backoff::RandomSource Fixed(double r) {
  return [r] { return r; };
}

// Returns the values of `values` in turn, then repeats the last.
Backoff::RandomSource Sequence(std::vector<double> values) {
  return [values, i = size_t{0}]() mutable {
    const double r = values[i];
    if (i + 1 < values.size()) ++i;
    return r;
  };
}

std::vector<nanoseconds> Take(Backoff& b, int n) {
  std::vector<nanoseconds> out;
  for (int i = 0; i < n; ++i) out.push_back(b.Next());
  return out;
}

TEST_CASE("Backoff without jitter doubles from initial up to max", "[unit][time][backoff]") {
  // r = 0.5 puts the jitter factor at exactly 1.
  Backoff b({.initial = 100ms, .max = 30s, .multiplier = 2.0, .jitter = 0.25}, Fixed(0.5));
  CHECK(Take(b, 11) == std::vector<nanoseconds>{100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, 6400ms,
                                                12800ms, 25600ms, 30s, 30s});
  CHECK(b.attempts() == 11);
}

TEST_CASE("Backoff jitter stays within the fraction of the base", "[unit][time][backoff]") {
  // jitter 0.25: factor = 1 + 0.25 * (2r - 1), i.e. 0.75 at r = 0 and 1.125 at r = 0.75.
  Backoff b({.initial = 1s, .max = 10s, .multiplier = 2.0, .jitter = 0.25},
            Sequence({0.0, 0.75, 0.25, 0.0, 0.75}));
  CHECK(Take(b, 5) == std::vector<nanoseconds>{750ms, 2250ms, 3500ms, 6s, 10s});
  // The last base is 10s (capped); 10s * 1.125 is clamped to max.
}

TEST_CASE("Backoff never exceeds max, even with the largest jitter", "[unit][time][backoff]") {
  const double almost_one = std::nextafter(1.0, 0.0);
  Backoff b({.initial = 600ms, .max = 1s, .multiplier = 3.0, .jitter = 1.0}, Fixed(almost_one));
  CHECK(b.Next() == 1s);  // 600ms * ~2 clamped.
  CHECK(b.Next() == 1s);
  Backoff low({.initial = 600ms, .max = 1s, .multiplier = 3.0, .jitter = 1.0}, Fixed(0.0));
  CHECK(low.Next() == 0ns);  // jitter 1 at r = 0 reaches zero, never below.
}

TEST_CASE("Backoff is overflow-safe after many attempts", "[unit][time][backoff]") {
  SECTION("max is the largest duration") {
    Backoff b({.initial = 1ns, .max = nanoseconds::max(), .multiplier = 10.0, .jitter = 0.0},
              Fixed(0.5));
    nanoseconds last{};
    for (int i = 0; i < 100000; ++i) {
      const nanoseconds d = b.Next();
      REQUIRE(d >= last);  // Monotonic without jitter.
      REQUIRE(d <= nanoseconds::max());
      last = d;
    }
    CHECK(last == nanoseconds::max());
  }
  SECTION("with jitter and a huge multiplier") {
    std::mt19937_64 engine(7);
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    Backoff b({.initial = 1s, .max = 1h, .multiplier = 1e300, .jitter = 0.5},
              [&] { return dist(engine); });
    CHECK(b.Next() >= 500ms);
    for (int i = 0; i < 10000; ++i) {
      const nanoseconds d = b.Next();
      REQUIRE(d >= 30min);
      REQUIRE(d <= 1h);
    }
  }
  SECTION("attempts counts every call") {
    Backoff b({.initial = 1ms, .max = 1s}, Fixed(0.5));
    for (int i = 0; i < 1000; ++i) (void)b.Next();
    CHECK(b.attempts() == 1000);
  }
}

TEST_CASE("Backoff delays match their bounds for a seeded random source", "[unit][time][backoff]") {
  const Backoff::Options options{.initial = 10ms, .max = 5s, .multiplier = 1.5, .jitter = 0.2};
  std::mt19937_64 engine(42);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  Backoff b(options, [&] { return dist(engine); });
  double base = 10e6;  // ns
  for (int i = 0; i < 200; ++i) {
    const double d = static_cast<double>(b.Next().count());
    INFO("attempt " << i << " base " << base << " delay " << d);
    REQUIRE(d >= std::floor(base * 0.8) - 1);
    REQUIRE(d <= std::min(base * 1.2, 5e9));
    base = std::min(base * 1.5, 5e9);
  }
}

TEST_CASE("Backoff Reset starts over from initial", "[unit][time][backoff]") {
  Backoff b({.initial = 100ms, .max = 10s, .multiplier = 2.0, .jitter = 0.0}, Fixed(0.9));
  (void)Take(b, 5);
  CHECK(b.attempts() == 5);
  b.Reset();
  CHECK(b.attempts() == 0);
  CHECK(b.Next() == 100ms);
  CHECK(b.Next() == 200ms);
}

TEST_CASE("Backoff clamps out-of-range random values", "[unit][time][backoff]") {
  Backoff b({.initial = 1s, .max = 100s, .multiplier = 1.0, .jitter = 0.5},
            Sequence({-3.0, std::numeric_limits<double>::quiet_NaN(), 7.0, 1.0}));
  CHECK(b.Next() == 500ms);   // -3 -> 0
  CHECK(b.Next() == 500ms);   // NaN -> 0
  CHECK(b.Next() == 1500ms);  // 7 -> 1
  CHECK(b.Next() == 1500ms);
}

TEST_CASE("Backoff with the default random source respects its bounds", "[unit][time][backoff]") {
  Backoff b({.initial = 1s, .max = 1s, .multiplier = 2.0, .jitter = 0.5});
  for (int i = 0; i < 1000; ++i) {
    const nanoseconds d = b.Next();
    REQUIRE(d >= 500ms);
    REQUIRE(d <= 1s);
  }
}

TEST_CASE("Backoff Validate names the bad field; the constructor clamps", "[unit][time][backoff]") {
  CHECK(Backoff::Validate({}).ok());
  CHECK(Backoff::Validate({.initial = 1s, .max = 1s, .multiplier = 1.0, .jitter = 1.0}).ok());

  auto [options, fragment] = GENERATE(table<Backoff::Options, std::string>({
      {{.initial = 0s}, "initial delay must be positive, got 0ns"},
      {{.initial = -1s}, "initial delay must be positive"},
      {{.initial = 2s, .max = 1s}, "max delay 1000000000ns is below the initial delay"},
      {{.multiplier = 0.5}, "multiplier must be a finite number >= 1, got 0.5"},
      {{.multiplier = std::numeric_limits<double>::infinity()}, "multiplier"},
      {{.jitter = -0.1}, "jitter must be in [0, 1], got -0.1"},
      {{.jitter = 1.5}, "jitter must be in [0, 1], got 1.5"},
      {{.jitter = std::numeric_limits<double>::quiet_NaN()}, "jitter must be in [0, 1]"},
  }));
  const Status status = Backoff::Validate(options);
  INFO(status.ToString());
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(status.message().find(fragment) != std::string::npos);

  const Backoff clamped(options, Fixed(0.5));
  const Backoff::Options& o = clamped.options();
  CHECK(o.initial >= 0ns);
  CHECK(o.max >= o.initial);
  CHECK(o.multiplier >= 1.0);
  CHECK(std::isfinite(o.multiplier));
  CHECK(o.jitter >= 0.0);
  CHECK(o.jitter <= 1.0);
}

TEST_CASE("Backoff clamping gives predictable delays", "[unit][time][backoff]") {
  Backoff b({.initial = -5s, .max = -10s, .multiplier = 0.0, .jitter = 3.0}, Fixed(0.0));
  CHECK(b.options().initial == 0ns);
  CHECK(b.options().max == 0ns);
  CHECK(b.options().multiplier == 1.0);
  CHECK(b.options().jitter == 1.0);
  CHECK(b.Next() == 0ns);

  Backoff flat({.initial = 2s, .max = 1s, .multiplier = 2.0, .jitter = 0.0}, Fixed(0.5));
  CHECK(flat.options().max == 2s);
  CHECK(Take(flat, 3) == std::vector<nanoseconds>{2s, 2s, 2s});
}

}  // namespace
}  // namespace common::time
