#include "common/log/repeats.h"

namespace common::log {

RepeatFilter::Verdict RepeatFilter::Check(const std::string& message, TimePoint now) {
  auto it = seen_.find(message);
  if (it == seen_.end() || now - it->second.last_seen >= interval_) {
    seen_[message] = Seen{now, now, 0};
    return {true, 0};
  }
  Seen& s = it->second;
  s.last_seen = now;
  if (now - s.logged_at < interval_) {
    ++s.suppressed;
    return {false, 0};
  }
  Verdict v{true, s.suppressed};
  s.logged_at = now;
  s.suppressed = 0;
  return v;
}

void RepeatFilter::Prune(TimePoint now) {
  std::erase_if(seen_, [&](const auto& kv) { return now - kv.second.last_seen >= interval_; });
}

}  // namespace common::log
