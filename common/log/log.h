// Structured logging: one JSON object per line (JSON Lines), on stderr by default.
//
// Every line carries, in this order:
//   "ts"    RFC 3339 UTC time with milliseconds ("2026-11-22T10:00:00.123Z"),
//   "level" "info", "error" or "debug" (the last for V(n) lines with n >= 1),
//   "msg"   the message,
//   "v"     the verbosity of a V(n) line with n >= 1 (absent otherwise),
// then "error" for Error lines, the key/value pairs bound with WithValues() in the order they
// were bound, and finally the pairs given at the call site. Keys are written as given: a key
// that repeats a bound key, or a reserved one, is written twice (callers should avoid that).
//
//   common::log::Logger log = common::log::Root().WithValues(
//       {{"controller", "volume"}, {"name", key}});
//   log.Info("Created Volume", {{"node", "n1"}, {"size", int64_t{5}}});
//   log.Error(status, "Could not mount Volume");
//   log.V(2).Info("Requeued Volume", {{"after_ms", 250}});
//
// Messages follow Kubernetes style: capital letter, no final period, past tense, the kind named.
// Strings are escaped so that every line is valid JSON: quotes, backslashes and control
// characters are escaped, and bytes that are not valid UTF-8 become U+FFFD.
//
// Thread contract: Logger and Value are immutable values and may be used from any number of
// threads. A Sink serializes its writes, so lines from concurrent callers never interleave.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "common/status/status.h"

namespace common::log {

// Integer types a Value accepts: all but bool and char (a char is text; pass a string).
template <typename T>
concept LogInteger = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>;

// The value of a key/value pair, already rendered as JSON text. Implicitly constructible, so
// call sites can write {{"size", int64_t{5}}, {"error", status}}: strings (a null const char*
// renders as null), integers, floating point (NaN and infinities, which JSON lacks, as the
// strings "NaN", "+Inf", "-Inf"), bools, and Status (as status.ToString()).
class Value {
 public:
  Value(std::string_view s);    // NOLINT(google-explicit-constructor)
  Value(const std::string& s);  // NOLINT(google-explicit-constructor)
  Value(const char* s);         // NOLINT(google-explicit-constructor)
  Value(bool b);                // NOLINT(google-explicit-constructor)
  Value(double d);              // NOLINT(google-explicit-constructor)
  Value(const Status& status);  // NOLINT(google-explicit-constructor)
  template <LogInteger T>
  Value(T i) : json_(fmt::format("{}", i)) {}  // NOLINT(google-explicit-constructor)

  // The JSON text of the value, e.g. "\"n1\"", "5", "true".
  const std::string& json() const { return json_; }

 private:
  std::string json_;
};

// A key/value pair: {"node", "n1"}.
struct Field {
  std::string_view key;  // Only read during the call that receives the Field.
  Value value;
};

// Receives each complete line: one JSON object followed by '\n'. Calls are serialized by the
// Sink, so the function need not be thread-safe; it must not throw and must not log.
using WriteFn = std::function<void(std::string_view line)>;

// Returns the current wall-clock time; injected so tests can fix "ts".
using NowFn = std::function<std::chrono::system_clock::time_point()>;

// Where lines go, and the verbosity threshold for V(n) lines. Thread-safe. A Sink must outlive
// every Logger that refers to it.
class Sink {
 public:
  // `write` receives every line; `verbosity` is the initial threshold (V(n) lines are written
  // when n <= verbosity); `now` defaults to std::chrono::system_clock::now.
  explicit Sink(WriteFn write, int verbosity = 0, NowFn now = nullptr);
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Sets the threshold for V(n) lines; values below 0 act as 0. Takes effect for lines started
  // after the call. Thread-safe.
  void SetVerbosity(int verbosity);
  int verbosity() const { return verbosity_.load(std::memory_order_relaxed); }

  // Writes one complete line (which must end in '\n') with a single call of the WriteFn, under
  // the Sink's lock. Used by Logger; public for adapters that produce their own lines.
  void Write(std::string_view line);

  std::chrono::system_clock::time_point Now() const;

 private:
  const WriteFn write_;
  const NowFn now_;
  std::atomic<int> verbosity_;
  std::mutex mu_;  // Serializes write_.
};

// The process-wide Sink that writes to file descriptor 2 with one write(2) per line (retrying
// short writes and EINTR; write errors are dropped). Verbosity starts at 0; a program's main()
// sets it from its flags. Never destroyed, so logging during static destruction is safe.
Sink& StderrSink();

// A logger with bound key/value pairs. Cheap to copy (the bound pairs are shared, immutable).
class Logger {
 public:
  // Logs to `sink`, which must outlive this Logger and its copies.
  explicit Logger(Sink& sink);

  // A Logger that adds `fields` after the pairs already bound to this one. Values are rendered
  // now, so the arguments need not outlive the call.
  Logger WithValues(std::initializer_list<Field> fields) const;

  // A Logger whose Info lines are written only when the Sink's verbosity is at least its level.
  // Levels add up as in logr: V(1).V(2) is V(3); V(0) and negative levels add nothing. Error
  // lines ignore the level, as in logr. Levels in use are 1 (more detail on state changes) to
  // 5 (per-item tracing).
  Logger V(int level) const;

  // Whether Info on this Logger would write a line; lets callers skip costly fields.
  bool Enabled() const;

  // Writes an "info" line (or a "debug" line with "v" for V(n >= 1)) if enabled.
  void Info(std::string_view msg, std::initializer_list<Field> fields = {}) const;

  // Writes an "error" line with "error": status.ToString(), whatever the verbosity. Per the
  // project's rule, log an error only where it is finally handled, never and also return it.
  void Error(const Status& status, std::string_view msg,
             std::initializer_list<Field> fields = {}) const;

 private:
  Logger(Sink* sink, std::shared_ptr<const std::string> bound, int level);
  void Emit(std::string_view level_name, int v, std::string_view msg, const Status* status,
            std::initializer_list<Field> fields) const;

  Sink* sink_;  // Not owned; never null.
  // Bound pairs rendered as `,"key":value` JSON text; null when none.
  std::shared_ptr<const std::string> bound_;
  int level_ = 0;
};

// A Logger on StderrSink() with no bound values.
Logger Root();

// Appends `s` to `out` as a JSON string literal (with the quotes), escaping quotes,
// backslashes and control characters and replacing bytes that are not valid UTF-8 with U+FFFD.
void AppendJsonString(std::string& out, std::string_view s);

// RFC 3339 UTC with milliseconds, e.g. "2026-11-22T10:00:00.123Z" (rounded down).
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

}  // namespace common::log
