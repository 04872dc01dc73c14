#include "common/log/log.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "common/text/utf8.h"

namespace common::log {
namespace {

void AppendTwoDigits(std::string& out, unsigned value) {
  out.push_back(static_cast<char>('0' + value / 10));
  out.push_back(static_cast<char>('0' + value % 10));
}

// Writes all of `data` to `fd`, retrying short writes and EINTR; gives up on other errors
// (there is nowhere left to report them).
void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t invalid = 0;
      const size_t length = text::Utf8SequenceLength(s.substr(i), &invalid);
      if (length == 0) {
        out.append(text::kReplacementCharacter);
        i += invalid;
      } else {
        out.append(s.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  using std::chrono::days;
  using std::chrono::milliseconds;
  const auto ms = std::chrono::floor<milliseconds>(t);
  const auto day = std::chrono::floor<days>(ms);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss<milliseconds> hms(ms - day);
  std::string out;
  out.reserve(24);
  fmt::format_to(std::back_inserter(out), "{:04}-", static_cast<int>(ymd.year()));
  AppendTwoDigits(out, static_cast<unsigned>(ymd.month()));
  out.push_back('-');
  AppendTwoDigits(out, static_cast<unsigned>(ymd.day()));
  out.push_back('T');
  AppendTwoDigits(out, static_cast<unsigned>(hms.hours().count()));
  out.push_back(':');
  AppendTwoDigits(out, static_cast<unsigned>(hms.minutes().count()));
  out.push_back(':');
  AppendTwoDigits(out, static_cast<unsigned>(hms.seconds().count()));
  fmt::format_to(std::back_inserter(out), ".{:03}Z", hms.subseconds().count());
  return out;
}

Value::Value(std::string_view s) { AppendJsonString(json_, s); }

Value::Value(const std::string& s) : Value(std::string_view(s)) {}

Value::Value(const char* s) {
  if (s == nullptr) {
    json_ = "null";
  } else {
    AppendJsonString(json_, s);
  }
}

Value::Value(bool b) : json_(b ? "true" : "false") {}

Value::Value(double d) {
  // JSON has no NaN or infinities; zap and Prometheus spell them as strings like these.
  if (std::isnan(d)) {
    json_ = "\"NaN\"";
  } else if (std::isinf(d)) {
    json_ = d > 0 ? "\"+Inf\"" : "\"-Inf\"";
  } else {
    json_ = fmt::format("{}", d);  // Shortest text that reads back as the same double.
  }
}

Value::Value(const Status& status) { AppendJsonString(json_, status.ToString()); }

Sink::Sink(WriteFn write, int verbosity, NowFn now)
    : write_(std::move(write)),
      now_(now ? std::move(now) : [] { return std::chrono::system_clock::now(); }),
      verbosity_(verbosity < 0 ? 0 : verbosity) {}

void Sink::SetVerbosity(int verbosity) {
  verbosity_.store(verbosity < 0 ? 0 : verbosity, std::memory_order_relaxed);
}

void Sink::Write(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  write_(line);
}

std::chrono::system_clock::time_point Sink::Now() const { return now_(); }

Sink& StderrSink() {
  // Never destroyed: threads may still log while static destructors run.
  static Sink* const kSink = new Sink([](std::string_view line) { WriteAll(STDERR_FILENO, line); });
  return *kSink;
}

Logger::Logger(Sink& sink) : sink_(&sink) {}

Logger::Logger(Sink* sink, std::shared_ptr<const std::string> bound, int level)
    : sink_(sink), bound_(std::move(bound)), level_(level) {}

Logger Logger::WithValues(std::initializer_list<Field> fields) const {
  if (fields.size() == 0) return *this;
  std::string bound = bound_ ? *bound_ : std::string();
  for (const Field& f : fields) {
    bound.push_back(',');
    AppendJsonString(bound, f.key);
    bound.push_back(':');
    bound.append(f.value.json());
  }
  return Logger(sink_, std::make_shared<const std::string>(std::move(bound)), level_);
}

Logger Logger::V(int level) const {
  return Logger(sink_, bound_, level > 0 ? level_ + level : level_);
}

bool Logger::Enabled() const { return level_ <= sink_->verbosity(); }

void Logger::Info(std::string_view msg, std::initializer_list<Field> fields) const {
  if (!Enabled()) return;
  Emit(level_ > 0 ? "debug" : "info", level_, msg, nullptr, fields);
}

void Logger::Error(const Status& status, std::string_view msg,
                   std::initializer_list<Field> fields) const {
  Emit("error", 0, msg, &status, fields);
}

void Logger::Emit(std::string_view level_name, int v, std::string_view msg, const Status* status,
                  std::initializer_list<Field> fields) const {
  std::string line;
  line.reserve(128 + msg.size() + (bound_ ? bound_->size() : 0));
  line.append(R"({"ts":")");
  line.append(FormatTimestamp(sink_->Now()));
  line.append(R"(","level":")");
  line.append(level_name);
  line.append(R"(","msg":)");
  AppendJsonString(line, msg);
  if (v > 0) fmt::format_to(std::back_inserter(line), R"(,"v":{})", v);
  if (status != nullptr) {
    line.append(R"(,"error":)");
    AppendJsonString(line, status->ToString());
  }
  if (bound_) line.append(*bound_);
  for (const Field& f : fields) {
    line.push_back(',');
    AppendJsonString(line, f.key);
    line.push_back(':');
    line.append(f.value.json());
  }
  line.append("}\n");
  sink_->Write(line);
}

Logger Root() { return Logger(StderrSink()); }

}  // namespace common::log
