#include "common/time/clock.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/time/fake_clock.h"

namespace common::time {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

// 2026-11-22T10:00:00Z
const system_clock::time_point kDefaultWall(std::chrono::seconds(1795341600));

TEST_CASE("RealClock reads the system clocks", "[unit][time]") {
  RealClock& clock = RealClock::Get();
  CHECK(&clock == &RealClock::Get());
  const auto wall_before = system_clock::now();
  const auto steady_before = std::chrono::steady_clock::now();
  const auto wall = clock.Now();
  const auto steady = clock.SteadyNow();
  CHECK(wall >= wall_before);
  CHECK(wall <= system_clock::now());
  CHECK(steady >= steady_before);
  CHECK(steady <= std::chrono::steady_clock::now());
}

TEST_CASE("RealClock waits for the predicate or the deadline", "[unit][time]") {
  RealClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;

  SECTION("a true predicate returns at once") {
    std::unique_lock<std::mutex> lock(mu);
    CHECK(clock.WaitFor(lock, cv, 1h, [] { return true; }));
    CHECK(lock.owns_lock());
  }
  SECTION("the deadline ends the wait (real-clock smoke test, 5 ms)") {
    std::unique_lock<std::mutex> lock(mu);
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(clock.WaitFor(lock, cv, 5ms, [&] { return ready; }));
    CHECK(std::chrono::steady_clock::now() - start >= 5ms);
    CHECK(lock.owns_lock());
  }
  SECTION("a notification with the predicate true ends the wait") {
    std::thread notifier([&] {
      std::lock_guard<std::mutex> lock(mu);
      ready = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    CHECK(clock.WaitFor(lock, cv, 1h, [&] { return ready; }));
    lock.unlock();
    notifier.join();
  }
  SECTION("a deadline in the past and a huge timeout do not overflow") {
    std::unique_lock<std::mutex> lock(mu);
    CHECK_FALSE(clock.WaitUntil(lock, cv, std::chrono::steady_clock::time_point::min(),
                                [&] { return ready; }));
    CHECK_FALSE(clock.WaitFor(lock, cv, -1h, [&] { return ready; }));
    ready = true;
    CHECK(
        clock.WaitFor(lock, cv, std::chrono::steady_clock::duration::max(), [&] { return ready; }));
  }
  SECTION("SleepFor with zero or negative time returns at once") {
    clock.SleepFor(0s);
    clock.SleepFor(-1h);
  }
}

TEST_CASE("FakeClock time moves only when told", "[unit][time]") {
  FakeClock clock;
  CHECK(clock.Now() == kDefaultWall);
  const auto steady = clock.SteadyNow();
  CHECK(steady.time_since_epoch() > 0s);
  CHECK(clock.SteadyNow() == steady);

  clock.Advance(90s);
  CHECK(clock.Now() == kDefaultWall + 90s);
  CHECK(clock.SteadyNow() == steady + 90s);

  clock.Advance(-10s);  // Ignored: time never goes backwards through Advance.
  CHECK(clock.SteadyNow() == steady + 90s);

  clock.SetTime(kDefaultWall - 1h);  // A wall-clock step moves only the wall time.
  CHECK(clock.Now() == kDefaultWall - 1h);
  CHECK(clock.SteadyNow() == steady + 90s);

  FakeClock at_epoch{system_clock::time_point()};
  CHECK(at_epoch.Now() == system_clock::time_point());
  at_epoch.SetTime(system_clock::time_point(-1h));
  at_epoch.Advance(2h);
  CHECK(at_epoch.Now() == system_clock::time_point(1h));
}

TEST_CASE("FakeClock releases a sleeper only when its time has come", "[unit][time]") {
  FakeClock clock;
  std::atomic<bool> done{false};
  std::thread sleeper([&] {
    clock.SleepFor(5s);
    done = true;
  });
  REQUIRE(clock.AwaitWaitersForTest(1));
  CHECK(clock.NextDeadlineForTest() == clock.SteadyNow() + 5s);

  clock.Advance(4999ms);
  CHECK_FALSE(done);
  CHECK(clock.WaitersForTest() == 1);

  clock.Advance(1ms);
  // Advance returns only after the woken waiter has left WaitUntil.
  CHECK(clock.WaitersForTest() == 0);
  sleeper.join();
  CHECK(done);
  CHECK(clock.NextDeadlineForTest() == std::chrono::steady_clock::time_point::max());
}

TEST_CASE("FakeClock waiters wake on their predicate without time passing", "[unit][time]") {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitFor(lock, cv, 10s, [&] { return ready; });
  });
  REQUIRE(clock.AwaitWaitersForTest(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  CHECK(result);
  CHECK(clock.WaitersForTest() == 0);

  SECTION("notifications with the predicate still false keep waiting") {
    ready = false;
    std::thread second([&] {
      std::unique_lock<std::mutex> lock(mu);
      result = clock.WaitFor(lock, cv, 10s, [&] { return ready; });
    });
    REQUIRE(clock.AwaitWaitersForTest(1));
    cv.notify_all();
    cv.notify_all();
    CHECK(clock.WaitersForTest() == 1);
    clock.Advance(10s);
    second.join();
    CHECK_FALSE(result);
  }
}

TEST_CASE("FakeClock wakes waiters in deadline order", "[unit][time]") {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> woken;  // Guarded by mu.
  std::vector<std::thread> threads;
  for (int seconds : {3, 1, 2}) {
    threads.emplace_back([&, seconds] {
      std::unique_lock<std::mutex> lock(mu);
      // Catch2 assertions are not thread-safe: record, check on the main thread.
      const bool r = clock.WaitFor(lock, cv, std::chrono::seconds(seconds), [] { return false; });
      woken.push_back(r ? -seconds : seconds);
    });
  }
  REQUIRE(clock.AwaitWaitersForTest(3));
  const auto start = clock.SteadyNow();
  CHECK(clock.NextDeadlineForTest() == start + 1s);

  clock.Advance(1500ms);
  CHECK(clock.WaitersForTest() == 2);
  CHECK(clock.NextDeadlineForTest() == start + 2s);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(woken == std::vector<int>{1});
  }
  clock.Advance(1s);
  CHECK(clock.WaitersForTest() == 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(woken == std::vector<int>{1, 2});
  }
  clock.Advance(1s);
  CHECK(clock.WaitersForTest() == 0);
  for (auto& t : threads) t.join();
  CHECK(woken == std::vector<int>{1, 2, 3});
}

TEST_CASE("FakeClock WaitUntil with a deadline already reached does not block", "[unit][time]") {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  CHECK_FALSE(clock.WaitUntil(lock, cv, clock.SteadyNow(), [] { return false; }));
  CHECK(clock.WaitUntil(lock, cv, clock.SteadyNow() - 1s, [] { return true; }));
  CHECK_FALSE(clock.WaitFor(lock, cv, -5s, [] { return false; }));
  // A predicate that reads the clock is evaluated without the clock's lock held.
  CHECK(clock.WaitFor(lock, cv, 0s, [&] { return clock.SteadyNow().time_since_epoch() > 0s; }));
  CHECK(lock.owns_lock());
  CHECK(clock.WaitersForTest() == 0);
  clock.SleepFor(0s);
}

TEST_CASE("FakeClock never loses a wake-up", "[unit][time]") {
  // AwaitWaitersForTest returns as soon as the waiter registers, which may be before it waits
  // on its condition variable; Advance must still wake it.
  FakeClock clock;
  for (int i = 0; i < 200; ++i) {
    std::thread sleeper([&] { clock.SleepFor(1s); });
    REQUIRE(clock.AwaitWaitersForTest(1));
    clock.Advance(1s);
    CHECK(clock.WaitersForTest() == 0);
    sleeper.join();
  }
}

TEST_CASE("FakeClock AwaitWaitersForTest gives up after its timeout", "[unit][time]") {
  FakeClock clock;
  CHECK(clock.AwaitWaitersForTest(0, 0ms));
  CHECK_FALSE(clock.AwaitWaitersForTest(1, 1ms));
}

TEST_CASE("FormatRfc3339 writes whole seconds in UTC, rounded down", "[unit][time]") {
  CHECK(FormatRfc3339(system_clock::time_point()) == "1970-01-01T00:00:00Z");
  CHECK(FormatRfc3339(kDefaultWall) == "2026-11-22T10:00:00Z");
  CHECK(FormatRfc3339(kDefaultWall + 999ms) == "2026-11-22T10:00:00Z");
  CHECK(FormatRfc3339(system_clock::time_point(-1ns)) == "1969-12-31T23:59:59Z");
  CHECK(FormatRfc3339(system_clock::time_point(std::chrono::seconds(951782400))) ==
        "2000-02-29T00:00:00Z");
  CHECK(FormatRfc3339Micro(kDefaultWall + 123456789ns) == "2026-11-22T10:00:00.123456Z");
  CHECK(FormatRfc3339Micro(system_clock::time_point(-1ns)) == "1969-12-31T23:59:59.999999Z");
  CHECK(FormatRfc3339Micro(kDefaultWall) == "2026-11-22T10:00:00.000000Z");
}

TEST_CASE("ParseRfc3339 accepts Z, fractions and offsets", "[unit][time]") {
  auto [text, expected] = GENERATE(table<std::string, system_clock::time_point>({
      {"2026-11-22T10:00:00Z", kDefaultWall},
      {"2026-11-22t10:00:00z", kDefaultWall},
      {"2026-11-22T10:00:00.5Z", kDefaultWall + 500ms},
      {"2026-11-22T10:00:00.123456789Z", kDefaultWall + 123456789ns},
      {"2026-11-22T10:00:00.1234567899999Z", kDefaultWall + 123456789ns},
      {"2026-11-22T10:00:00.000001Z", kDefaultWall + 1us},
      {"2026-11-22T15:30:00+05:30", kDefaultWall},
      {"2026-11-22T02:00:00-08:00", kDefaultWall},
      {"2026-11-22T10:00:00+00:00", kDefaultWall},
      {"2026-11-22T10:00:00-00:00", kDefaultWall},
      {"2026-11-23T09:59:00+23:59", kDefaultWall},
      {"1970-01-01T00:00:00Z", system_clock::time_point()},
      {"1969-12-31T23:59:59.5Z", system_clock::time_point(-500ms)},
      {"2024-02-29T00:00:00Z", system_clock::time_point(std::chrono::seconds(1709164800))},
      {"2000-02-29T00:00:00Z", system_clock::time_point(std::chrono::seconds(951782400))},
  }));
  INFO(text);
  auto parsed = ParseRfc3339(text);
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  CHECK(*parsed == expected);
}

TEST_CASE("ParseRfc3339 round-trips FormatRfc3339 and FormatRfc3339Micro", "[unit][time]") {
  for (auto t : {system_clock::time_point(), kDefaultWall, kDefaultWall + 123456us,
                 system_clock::time_point(-86401s), system_clock::time_point(4102444800s)}) {
    auto seconds = ParseRfc3339(FormatRfc3339(t));
    REQUIRE(seconds.ok());
    CHECK(*seconds == std::chrono::floor<std::chrono::seconds>(t));
    auto micros = ParseRfc3339(FormatRfc3339Micro(t));
    REQUIRE(micros.ok());
    CHECK(*micros == std::chrono::floor<std::chrono::microseconds>(t));
  }
}

TEST_CASE("ParseRfc3339 rejects malformed timestamps, naming the text", "[unit][time]") {
  auto [text, reason] = GENERATE(table<std::string, std::string>({
      {"", "expected a date"},
      {"2026-11-22", "expected 'T'"},
      {"2026-11-22 10:00:00Z", "expected 'T'"},
      {"2026-1-22T10:00:00Z", "expected a date"},
      {"26-11-22T10:00:00Z", "expected a date"},
      {"2026-11-22T10:00Z", "expected a time"},
      {"2026-11-22T10:00:00", "expected 'Z' or a UTC offset"},
      {"2026-11-22T10:00:00.Z", "expected digits after '.'"},
      {"2026-11-22T10:00:00+0530", "expected a UTC offset"},
      {"2026-11-22T10:00:00+5:30", "expected a UTC offset"},
      {"2026-11-22T10:00:00+24:00", "UTC offset out of range"},
      {"2026-11-22T10:00:00+05:60", "UTC offset out of range"},
      {"2026-11-22T10:00:00Zjunk", "unexpected text at offset 20"},
      {"2026-11-22T10:00:00Z ", "unexpected text at offset 20"},
      {"2026-00-10T10:00:00Z", "month 0 is out of range"},
      {"2026-13-10T10:00:00Z", "month 13 is out of range"},
      {"2026-02-29T10:00:00Z", "day 29 does not exist in 2026-02"},
      {"2026-04-31T10:00:00Z", "day 31 does not exist in 2026-04"},
      {"2026-04-00T10:00:00Z", "day 0 does not exist"},
      {"2026-11-22T24:00:00Z", "hour 24 is out of range"},
      {"2026-11-22T10:60:00Z", "minute 60 is out of range"},
      {"2026-11-22T10:00:60Z", "second 60 is out of range"},
      {"9999-12-31T23:59:59Z", "outside the range of representable times"},
      {"1000-01-01T00:00:00Z", "outside the range of representable times"},
      {"\xFF\x01", "expected a date"},
  }));
  auto parsed = ParseRfc3339(text);
  REQUIRE_FALSE(parsed.ok());
  const Status status = parsed.status();
  CHECK(status.code() == StatusCode::kInvalidArgument);
  const std::string& message = status.message();
  INFO(message);
  CHECK(message.find(reason) != std::string::npos);
  CHECK(message.find("invalid RFC 3339 timestamp") != std::string::npos);
  if (text == "2026-11-22T10:00:00") {
    CHECK(message.find("\"2026-11-22T10:00:00\"") != std::string::npos);
  }
  if (text == "\xFF\x01") CHECK(message.find("\\x01") != std::string::npos);
}

}  // namespace
}  // namespace common::time
