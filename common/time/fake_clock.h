// FakeClock: a Clock whose time moves only when a test says so.
//
// Code under test blocks in WaitUntil/WaitFor/SleepFor as it would on a RealClock; the test
// waits until the expected number of threads are blocked (AwaitWaitersForTest), then moves time
// with Advance(), which releases every waiter whose deadline has been reached before returning.
//
//   FakeClock clock;
//   std::thread worker([&] { clock.SleepFor(5s); done = true; });
//   REQUIRE(clock.AwaitWaitersForTest(1));
//   clock.Advance(5s);  // returns after the worker has woken up
//   worker.join();
//
// Thread contract: thread-safe. A FakeClock must outlive every thread that waits on it, and no
// thread may be waiting on it when it is destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>

#include "common/time/clock.h"

namespace common::time {

class FakeClock final : public Clock {
 public:
  // Starts at wall time 2026-11-22T10:00:00Z and an arbitrary steady time.
  FakeClock();
  // Starts at the given wall time.
  explicit FakeClock(std::chrono::system_clock::time_point wall_time);
  FakeClock(const FakeClock&) = delete;
  FakeClock& operator=(const FakeClock&) = delete;
  ~FakeClock() override;

  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;

  // Blocks until `ready()` is true (checked whenever `cv` is notified) or the fake steady time
  // reaches `deadline` through Advance(). Same contract as Clock::WaitUntil.
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::chrono::steady_clock::time_point deadline,
                 const std::function<bool()>& ready) override;

  // Moves both the wall and the steady time forward by `d` (negative values act as zero) and
  // wakes every waiter whose deadline is now reached. Returns once each of those waiters has
  // woken up and left WaitUntil, so the test sees their effects. Because those waiters must
  // re-acquire their own mutexes, the caller must not hold any mutex a waiter uses.
  void Advance(std::chrono::steady_clock::duration d);

  // Sets the wall time only, as an NTP step would; the steady time and the waiters are not
  // affected. The wall time may move backwards.
  void SetTime(std::chrono::system_clock::time_point t);

  // The number of threads currently blocked in WaitUntil (including SleepFor and WaitFor).
  size_t WaitersForTest() const;

  // The earliest deadline of a blocked waiter, or steady_clock::time_point::max() when none
  // is blocked. Lets a test advance exactly to the next timer.
  std::chrono::steady_clock::time_point NextDeadlineForTest() const;

  // Blocks (in real time) until at least `count` threads are blocked in WaitUntil; returns
  // false if that did not happen within `timeout` of real time, so a broken test fails instead
  // of hanging.
  bool AwaitWaitersForTest(size_t count,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  // One blocked call of WaitUntil. Lives on the waiting thread's stack; registered in waiters_
  // for exactly as long as that thread is inside WaitUntil.
  struct Waiter {
    std::chrono::steady_clock::time_point deadline;
    std::condition_variable* cv;  // The caller's; alive while registered.
    bool expired = false;         // Set by Advance when the deadline has been reached.
  };

  mutable std::mutex mu_;
  // Notified when a waiter registers or leaves. Guarded by mu_ (waits hold it).
  mutable std::condition_variable changed_;
  std::chrono::system_clock::time_point wall_;    // Guarded by mu_.
  std::chrono::steady_clock::time_point steady_;  // Guarded by mu_.
  std::list<Waiter*> waiters_;                    // Guarded by mu_.
};

}  // namespace common::time
