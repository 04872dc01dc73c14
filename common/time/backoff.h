// Backoff: jittered exponential delays between retries.
//
// The n-th call of Next() after construction or Reset() (n = 0, 1, ...) returns
//
//   base(n) * (1 + jitter * (2 * r - 1)), clamped to [0, max],
//   where base(n) = min(initial * multiplier^n, max) and r is drawn from the random source,
//
// so each delay lies within ±jitter of its base and never exceeds max. The base stops growing
// once it reaches max, so any number of attempts is safe from overflow. Backoff only computes
// delays; the caller waits them out on its Clock (common/time/clock.h).
//
//   Backoff backoff({.initial = 500ms, .max = 30s});
//   while (!(status = Try()).ok()) clock.SleepFor(backoff.Next());
//
// Thread contract: not thread-safe; each retry loop owns its Backoff. Movable and copyable.
#pragma once

#include <chrono>
#include <functional>

#include "common/status/status.h"

namespace common::time {

class Backoff {
 public:
  struct Options {
    std::chrono::nanoseconds initial = std::chrono::milliseconds(100);  // > 0
    std::chrono::nanoseconds max = std::chrono::seconds(30);            // >= initial
    double multiplier = 2.0;                                            // >= 1
    double jitter = 0.1;                                                // in [0, 1]
  };

  // Returns a number in [0, 1) on each call (values outside are clamped into it). Injected so
  // tests are deterministic.
  using RandomSource = std::function<double()>;

  // OK when `options` satisfies the ranges commented in Options; otherwise InvalidArgument
  // naming the field and the bad value. Use it on options that come from configuration.
  static Status Validate(const Options& options);

  // `random` defaults to a std::mt19937_64 seeded from std::random_device. Options outside
  // their ranges are clamped into them (a negative initial becomes 0, a max below initial
  // becomes initial, a multiplier below 1 or not finite becomes 1, jitter is clamped to [0, 1]
  // with NaN as 0); call Validate() first to reject them instead.
  explicit Backoff(const Options& options, RandomSource random = nullptr);

  // The next delay, in [0, options().max]; advances the attempt count.
  std::chrono::nanoseconds Next();

  // Starts over: the next call of Next() is based on `initial` again. Call it after a success.
  void Reset();

  // Calls of Next() since construction or the last Reset() (saturates at INT_MAX).
  int attempts() const { return attempts_; }

  // The options in use, after clamping.
  const Options& options() const { return options_; }

 private:
  Options options_;
  RandomSource random_;
  double max_ns_;   // options_.max in nanoseconds, as a double.
  double base_ns_;  // base(attempts_) in nanoseconds; never above max_ns_.
  int attempts_ = 0;
};

}  // namespace common::time
