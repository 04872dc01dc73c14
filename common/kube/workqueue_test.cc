#include "common/kube/workqueue.h"

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/time/fake_clock.h"

namespace common::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("WorkQueue hands out each key once, in order, without duplicates", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  q.Add("b");
  q.Add("a");
  CHECK(q.Len() == 2);
  CHECK(q.Get() == "a");
  CHECK(q.Get() == "b");
  CHECK(q.Len() == 0);
}

TEST_CASE("WorkQueue never gives a key to two workers at once", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  auto first = q.Get();
  REQUIRE(first == "a");
  // Added while processing: held back until Done.
  q.Add("a");
  q.Add("a");
  CHECK(q.Len() == 0);
  q.Done("a");
  CHECK(q.Len() == 1);
  CHECK(q.Get() == "a");
  q.Done("a");
  CHECK(q.Len() == 0);
}

// Waits (real time, bounded) until a worker blocks with exactly this deadline.
bool AwaitDeadline(time::FakeClock& clock, std::chrono::steady_clock::time_point deadline) {
  for (int i = 0; i < 10000; ++i) {
    if (clock.WaitersForTest() == 1 && clock.NextDeadlineForTest() == deadline) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

TEST_CASE("WorkQueue delays keys on the injected clock", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock);
  const auto start = clock.SteadyNow();
  q.AddAfter("late", seconds(10));
  q.AddAfter("later", seconds(20));
  CHECK(q.Len() == 0);
  CHECK(q.DelayedLenForTest() == 2);

  std::atomic<int> got{0};
  std::vector<std::string> keys;
  std::thread worker([&] {
    for (int i = 0; i < 2; ++i) {
      auto k = q.Get();
      if (!k) return;
      keys.push_back(*k);
      q.Done(*k);
      ++got;
    }
  });
  REQUIRE(AwaitDeadline(clock, start + seconds(10)));
  clock.Advance(seconds(9));
  CHECK(got == 0);
  clock.Advance(seconds(1));
  // "late" is due; the worker takes it and waits again for "later".
  REQUIRE(AwaitDeadline(clock, start + seconds(20)));
  CHECK(got == 1);
  // An earlier AddAfter for a delayed key wins and re-arms the waiting worker.
  q.AddAfter("later", seconds(1));
  REQUIRE(AwaitDeadline(clock, start + seconds(11)));
  clock.Advance(seconds(1));
  worker.join();
  CHECK(keys == std::vector<std::string>{"late", "later"});
}

TEST_CASE("WorkQueue backs off per key and Forget resets it", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock, WorkQueue::Options{milliseconds(5), milliseconds(40)});
  // Requeues "k" rate-limited and returns the delay a worker had to wait for it.
  auto requeue_delay = [&]() -> std::chrono::steady_clock::duration {
    q.AddRateLimited("k");
    std::optional<std::string> k;
    std::thread worker([&] { k = q.Get(); });
    REQUIRE(clock.AwaitWaitersForTest(1));
    auto delay = clock.NextDeadlineForTest() - clock.SteadyNow();
    clock.Advance(delay);
    worker.join();
    REQUIRE(k == "k");
    q.Done("k");
    return delay;
  };
  CHECK(requeue_delay() == milliseconds(5));
  CHECK(requeue_delay() == milliseconds(10));
  CHECK(requeue_delay() == milliseconds(20));
  CHECK(requeue_delay() == milliseconds(40));
  CHECK(requeue_delay() == milliseconds(40));  // capped
  CHECK(q.NumRequeues("k") == 5);
  q.Forget("k");
  CHECK(q.NumRequeues("k") == 0);
  CHECK(requeue_delay() == milliseconds(5));
}

TEST_CASE("WorkQueue ShutDown wakes blocked workers and ignores later adds", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock);
  std::optional<std::string> result = "unset";
  std::thread worker([&] { result = q.Get(); });
  q.ShutDown();
  worker.join();
  CHECK_FALSE(result.has_value());
  q.Add("x");
  CHECK(q.Len() == 0);
  CHECK(q.IsShuttingDown());
}

TEST_CASE("WorkQueue with many workers processes every key exactly once per add", "[unit][kube]") {
  time::FakeClock clock;
  WorkQueue q(clock);
  std::atomic<int> in_flight_a{0};
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.Get()) {
        if (*k == "a" && in_flight_a.fetch_add(1) != 0) overlap = true;
        std::this_thread::yield();
        if (*k == "a") in_flight_a.fetch_sub(1);
        ++processed;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    q.Add("a");
    q.Add("k" + std::to_string(i % 10));
  }
  // Wait until the queue drains, then stop.
  while (q.Len() > 0) std::this_thread::yield();
  q.ShutDown();
  for (auto& t : workers) t.join();
  CHECK_FALSE(overlap);
  CHECK(processed >= 11);
}

}  // namespace
}  // namespace common::kube
