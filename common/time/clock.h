// Clock: the one source of time for code that waits, retries or stamps objects, so that tests
// can replace it with FakeClock (common/time/fake_clock.h) and never sleep.
//
// A Clock has two time lines: Now() is wall-clock time (for timestamps written to Kubernetes
// objects and logs) and SteadyNow() is monotonic time (for deadlines, timeouts and intervals).
// Waiting is always on the steady time line. Code that blocks does so through WaitUntil() /
// WaitFor(), which a FakeClock releases when a test advances its time.
//
// This header also holds the RFC 3339 helpers used for Kubernetes timestamps.
//
// Thread contract: every Clock method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status/status.h"

namespace common::time {

class Clock {
 public:
  virtual ~Clock() = default;

  // Wall-clock time; may jump (NTP, SetTime on a fake). Use for timestamps only.
  virtual std::chrono::system_clock::time_point Now() const = 0;

  // Monotonic time; never goes backwards. Use for deadlines and intervals.
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;

  // Blocks until `ready()` is true or SteadyNow() reaches `deadline`, like
  // std::condition_variable::wait_until with a predicate, and returns the last value of
  // `ready()` (so false means the deadline passed first).
  //
  // REQUIRES: `lock` owns the mutex that guards the state `ready` reads; whoever changes that
  // state does so under the same mutex and then notifies `cv`. `ready` is called with the lock
  // held and must not call into this Clock's waiting methods. Returns with the lock held.
  // `cv` and the mutex must stay alive until this call returns. A deadline in the past checks
  // `ready()` once and returns.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         std::chrono::steady_clock::time_point deadline,
                         const std::function<bool()>& ready) = 0;

  // WaitUntil(lock, cv, SteadyNow() + timeout, ready). A negative timeout acts as zero.
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
               std::chrono::steady_clock::duration timeout, const std::function<bool()>& ready);

  // Blocks the calling thread for `duration` of this clock's steady time; returns at once when
  // it is zero or negative. Not interruptible: code that must stop early waits on its own
  // condition with WaitFor.
  void SleepFor(std::chrono::steady_clock::duration duration);
};

// The clocks of the operating system. Stateless; use RealClock::Get() or an instance of your own.
class RealClock final : public Clock {
 public:
  // The process-wide instance. Never destroyed.
  static RealClock& Get();

  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::chrono::steady_clock::time_point deadline,
                 const std::function<bool()>& ready) override;
};

// Formats `t` as RFC 3339 in UTC with whole seconds, rounded down: "2026-11-22T10:00:00Z", the
// form of Kubernetes' metav1.Time (creationTimestamp, lastTransitionTime).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// Formats `t` as RFC 3339 in UTC with microseconds, rounded down:
// "2026-11-22T10:00:00.123456Z", the form of metav1.MicroTime (Lease renewTime, Event time).
std::string FormatRfc3339Micro(std::chrono::system_clock::time_point t);

// Parses an RFC 3339 timestamp "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)". 'T' and 'Z'
// may be lower case, as RFC 3339 allows. Fractions beyond nanoseconds are truncated. Leap
// seconds (:60) are not accepted. InvalidArgument, naming the text and what is wrong, for
// malformed input, impossible dates (2026-02-30) and times outside what system_clock holds
// (years 1678 to 2261).
Result<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

}  // namespace common::time
