#include "common/time/clock.h"

#include <cstdint>
#include <iterator>

#include <fmt/format.h>

namespace common::time {
namespace {

using std::chrono::system_clock;

// `now + d` without overflowing: saturates at time_point::max().
std::chrono::steady_clock::time_point SaturatingAdd(std::chrono::steady_clock::time_point now,
                                                    std::chrono::steady_clock::duration d) {
  if (d <= std::chrono::steady_clock::duration::zero()) return now;
  if (d > std::chrono::steady_clock::time_point::max() - now) {
    return std::chrono::steady_clock::time_point::max();
  }
  return now + d;
}

// Writes "YYYY-MM-DDTHH:MM:SS" for the second that contains `t` (rounded down) and returns the
// time past that second.
template <typename Duration>
Duration AppendDateTime(std::string& out, std::chrono::time_point<system_clock, Duration> t) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss<Duration> hms(t - day);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                 static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                 static_cast<unsigned>(ymd.day()), hms.hours().count(), hms.minutes().count(),
                 hms.seconds().count());
  return hms.subseconds();
}

// A cursor over the text being parsed.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ == text_.size(); }

  // Reads exactly `n` decimal digits.
  bool Digits(int n, int* value) {
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') return false;
      v = v * 10 + (text_[pos_++] - '0');
    }
    *value = v;
    return true;
  }

  // Consumes `c` (or `alt`) if it is next.
  bool Consume(char c, char alt = '\0') {
    if (pos_ < text_.size() && (text_[pos_] == c || (alt != '\0' && text_[pos_] == alt))) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool PeekDigit() const { return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; }

  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  size_t pos() const { return pos_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

bool Clock::WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    std::chrono::steady_clock::duration timeout,
                    const std::function<bool()>& ready) {
  return WaitUntil(lock, cv, SaturatingAdd(SteadyNow(), timeout), ready);
}

void Clock::SleepFor(std::chrono::steady_clock::duration duration) {
  if (duration <= std::chrono::steady_clock::duration::zero()) return;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  // Nobody else can see `cv`, so only the deadline ends the wait.
  (void)WaitFor(lock, cv, duration, [] { return false; });  // False means the time passed.
}

RealClock& RealClock::Get() {
  static RealClock* const kClock = new RealClock();  // Never destroyed.
  return *kClock;
}

std::chrono::system_clock::time_point RealClock::Now() const {
  return std::chrono::system_clock::now();
}

std::chrono::steady_clock::time_point RealClock::SteadyNow() const {
  return std::chrono::steady_clock::now();
}

bool RealClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          std::chrono::steady_clock::time_point deadline,
                          const std::function<bool()>& ready) {
  return cv.wait_until(lock, deadline, ready);
}

std::string FormatRfc3339(system_clock::time_point t) {
  std::string out;
  out.reserve(20);
  AppendDateTime(out, std::chrono::floor<std::chrono::seconds>(t));
  out.push_back('Z');
  return out;
}

std::string FormatRfc3339Micro(system_clock::time_point t) {
  std::string out;
  out.reserve(27);
  const auto micros = AppendDateTime(out, std::chrono::floor<std::chrono::microseconds>(t));
  fmt::format_to(std::back_inserter(out), ".{:06}Z", micros.count());
  return out;
}

Result<system_clock::time_point> ParseRfc3339(std::string_view text) {
  const auto error = [text](std::string_view what) {
    return InvalidArgumentError("invalid RFC 3339 timestamp {:?}: {}", text, what);
  };
  Scanner s(text);
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!s.Digits(4, &year) || !s.Consume('-') || !s.Digits(2, &month) || !s.Consume('-') ||
      !s.Digits(2, &day)) {
    return error("expected a date YYYY-MM-DD");
  }
  if (!s.Consume('T', 't')) return error("expected 'T' after the date");
  if (!s.Digits(2, &hour) || !s.Consume(':') || !s.Digits(2, &minute) || !s.Consume(':') ||
      !s.Digits(2, &second)) {
    return error("expected a time HH:MM:SS after 'T'");
  }
  int64_t nanos = 0;
  if (s.Consume('.')) {
    if (!s.PeekDigit()) return error("expected digits after '.'");
    int digits = 0;
    while (s.PeekDigit()) {
      int d = 0;
      (void)s.Digits(1, &d);                   // Cannot fail: PeekDigit() is true.
      if (digits < 9) nanos = nanos * 10 + d;  // Digits past nanoseconds are truncated.
      ++digits;
    }
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_seconds = 0;
  if (s.Consume('Z', 'z')) {
    // UTC.
  } else if (s.Peek() == '+' || s.Peek() == '-') {
    const int sign = s.Peek() == '-' ? -1 : 1;
    (void)s.Consume(s.Peek());  // Cannot fail: the sign was just seen.
    int offset_hours = 0;
    int offset_minutes = 0;
    if (!s.Digits(2, &offset_hours) || !s.Consume(':') || !s.Digits(2, &offset_minutes)) {
      return error("expected a UTC offset +hh:mm or -hh:mm");
    }
    if (offset_hours > 23 || offset_minutes > 59) return error("UTC offset out of range");
    offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return error("expected 'Z' or a UTC offset after the time");
  }
  if (!s.AtEnd()) return error(fmt::format("unexpected text at offset {}", s.pos()));

  if (month < 1 || month > 12) return error(fmt::format("month {} is out of range", month));
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (day < 1 || !ymd.ok()) {
    return error(fmt::format("day {} does not exist in {:04}-{:02}", day, year, month));
  }
  if (hour > 23) return error(fmt::format("hour {} is out of range", hour));
  if (minute > 59) return error(fmt::format("minute {} is out of range", minute));
  if (second > 59) return error(fmt::format("second {} is out of range", second));

  const int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  const int64_t seconds =
      days * 86400 + int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_seconds;
  // One second of margin on each side keeps seconds * 1e9 + nanos inside the duration's range.
  constexpr int64_t kMaxSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::max()).count() - 1;
  constexpr int64_t kMinSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::min()).count() + 1;
  if (seconds > kMaxSeconds || seconds < kMinSeconds) {
    return error("outside the range of representable times");
  }
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos)));
}

}  // namespace common::time
