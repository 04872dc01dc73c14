#include "common/time/backoff.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>

namespace common::time {
namespace {

Backoff::Options Clamp(Backoff::Options o) {
  o.initial = std::max(o.initial, std::chrono::nanoseconds::zero());
  o.max = std::max(o.max, o.initial);
  if (!std::isfinite(o.multiplier) || o.multiplier < 1.0) o.multiplier = 1.0;
  o.jitter = std::isnan(o.jitter) ? 0.0 : std::clamp(o.jitter, 0.0, 1.0);
  return o;
}

Backoff::RandomSource DefaultRandomSource() {
  std::random_device device;
  return [engine = std::mt19937_64(device()), dist = std::uniform_real_distribution<double>(
                                                  0.0, 1.0)]() mutable { return dist(engine); };
}

}  // namespace

Status Backoff::Validate(const Options& options) {
  if (options.initial <= std::chrono::nanoseconds::zero()) {
    return InvalidArgumentError("backoff initial delay must be positive, got {}ns",
                                options.initial.count());
  }
  if (options.max < options.initial) {
    return InvalidArgumentError("backoff max delay {}ns is below the initial delay {}ns",
                                options.max.count(), options.initial.count());
  }
  if (!std::isfinite(options.multiplier) || options.multiplier < 1.0) {
    return InvalidArgumentError("backoff multiplier must be a finite number >= 1, got {}",
                                options.multiplier);
  }
  if (!(options.jitter >= 0.0 && options.jitter <= 1.0)) {
    return InvalidArgumentError("backoff jitter must be in [0, 1], got {}", options.jitter);
  }
  return OkStatus();
}

Backoff::Backoff(const Options& options, RandomSource random)
    : options_(Clamp(options)),
      random_(random ? std::move(random) : DefaultRandomSource()),
      max_ns_(static_cast<double>(options_.max.count())),
      base_ns_(static_cast<double>(options_.initial.count())) {}

std::chrono::nanoseconds Backoff::Next() {
  const double base = base_ns_;
  // min() also absorbs an infinite product, so the base never overflows.
  base_ns_ = std::min(base_ns_ * options_.multiplier, max_ns_);
  if (attempts_ < INT_MAX) ++attempts_;

  double r = random_();
  if (!(r >= 0.0)) r = 0.0;  // Also catches NaN.
  if (r > 1.0) r = 1.0;
  const double delay = base * (1.0 + options_.jitter * (2.0 * r - 1.0));
  if (!(delay > 0.0)) return std::chrono::nanoseconds::zero();
  // The double nearest to max may lie above it; compare before converting back to an integer.
  if (delay >= max_ns_) return options_.max;
  return std::min(std::chrono::nanoseconds(static_cast<int64_t>(delay)), options_.max);
}

void Backoff::Reset() {
  base_ns_ = static_cast<double>(options_.initial.count());
  attempts_ = 0;
}

}  // namespace common::time
