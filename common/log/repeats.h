// RepeatFilter: a long-running loop that retries a failing step every pass would log the same
// error every pass. The filter lets the first occurrence of each message through, then at most one
// per interval, saying how many identical ones were held back in between.
//
// Thread contract: not thread-safe; one filter per loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace common::log {

class RepeatFilter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RepeatFilter(std::chrono::seconds interval) : interval_(interval) {}

  struct Verdict {
    bool log = false;
    int64_t suppressed = 0;  // identical messages held back since the last one logged
  };

  // Whether to log `message` now. A message not seen for a whole interval counts as new again.
  Verdict Check(const std::string& message, TimePoint now);

  // Forgets messages not seen for an interval (call once per pass; bounds the memory).
  void Prune(TimePoint now);

  size_t size() const { return seen_.size(); }

 private:
  struct Seen {
    TimePoint logged_at;
    TimePoint last_seen;
    int64_t suppressed = 0;
  };
  std::chrono::seconds interval_;
  std::map<std::string, Seen> seen_;
};

}  // namespace common::log
