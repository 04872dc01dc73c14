#include "common/log/log.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace common::log {
namespace {

using std::chrono::system_clock;

// 2026-11-22T10:00:00.123Z
const system_clock::time_point kFixedTime =
    system_clock::time_point(std::chrono::seconds(1795341600)) + std::chrono::milliseconds(123);

// Captures lines written to a Sink with a fixed time.
struct Capture {
  explicit Capture(int verbosity = 0)
      : sink([this](std::string_view line) { lines.emplace_back(line); }, verbosity,
             [] { return kFixedTime; }) {}

  std::vector<std::string> lines;
  Sink sink;
};

// Parses one line as strict JSON (and strict UTF-8), failing the test when it is not.
rapidjson::Document Parse(const std::string& line) {
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.data(), line.size());
  INFO(line);
  INFO(rapidjson::GetParseError_En(doc.GetParseError()));
  REQUIRE(!doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

std::vector<std::string> Keys(const rapidjson::Document& doc) {
  std::vector<std::string> keys;
  for (const auto& m : doc.GetObject()) keys.emplace_back(m.name.GetString());
  return keys;
}

std::string Str(const rapidjson::Document& doc, const char* key) {
  REQUIRE(doc.HasMember(key));
  REQUIRE(doc[key].IsString());
  return std::string(doc[key].GetString(), doc[key].GetStringLength());
}

TEST_CASE("Info writes ts, level, msg, then bound and call-site fields in order", "[unit][log]") {
  Capture c;
  Logger log =
      Logger(c.sink).WithValues({{"controller", "volume"}, {"name", std::string("ns/vol-1")}});
  log.Info("Created Volume", {{"node", "n1"},
                              {"size", int64_t{5}},
                              {"free", uint64_t{18446744073709551615u}},
                              {"ratio", 0.25},
                              {"ready", true},
                              {"count", -3}});
  REQUIRE(c.lines.size() == 1);
  auto doc = Parse(c.lines[0]);
  CHECK(Keys(doc) == std::vector<std::string>{"ts", "level", "msg", "controller", "name", "node",
                                              "size", "free", "ratio", "ready", "count"});
  CHECK(Str(doc, "ts") == "2026-11-22T10:00:00.123Z");
  CHECK(Str(doc, "level") == "info");
  CHECK(Str(doc, "msg") == "Created Volume");
  CHECK(Str(doc, "controller") == "volume");
  CHECK(Str(doc, "name") == "ns/vol-1");
  CHECK(Str(doc, "node") == "n1");
  CHECK(doc["size"].IsInt64());
  CHECK(doc["size"].GetInt64() == 5);
  CHECK(doc["free"].IsUint64());
  CHECK(doc["free"].GetUint64() == std::numeric_limits<uint64_t>::max());
  CHECK(doc["ratio"].GetDouble() == 0.25);
  CHECK(doc["ready"].IsTrue());
  CHECK(doc["count"].GetInt() == -3);
  CHECK_FALSE(doc.HasMember("v"));
}

TEST_CASE("Error writes the Status under \"error\" whatever the verbosity", "[unit][log]") {
  Capture c(/*verbosity=*/0);
  Logger log = Logger(c.sink).WithValues({{"reconcileID", "abc"}});
  const Status status = NotFoundError("device {} is gone", "/dev/nbd3");
  log.V(3).Error(status, "Could not mount Volume", {{"attempt", 2}});
  REQUIRE(c.lines.size() == 1);
  auto doc = Parse(c.lines[0]);
  CHECK(Keys(doc) ==
        std::vector<std::string>{"ts", "level", "msg", "error", "reconcileID", "attempt"});
  CHECK(Str(doc, "level") == "error");
  CHECK(Str(doc, "msg") == "Could not mount Volume");
  CHECK(Str(doc, "error") == "NOT_FOUND: device /dev/nbd3 is gone");
  CHECK(Str(doc, "error") == status.ToString());
  CHECK(doc["attempt"].GetInt() == 2);
}

TEST_CASE("A Status is a value like any other", "[unit][log]") {
  Capture c;
  Logger(c.sink).Info("Retried", {{"last", AbortedError("conflict")}, {"ok", OkStatus()}});
  auto doc = Parse(c.lines.at(0));
  CHECK(Str(doc, "last") == "ABORTED: conflict");
  CHECK(Str(doc, "ok") == "OK");
}

TEST_CASE("V(n) lines are written only when verbosity is at least n", "[unit][log]") {
  Capture c(/*verbosity=*/2);
  Logger log(c.sink);
  CHECK(log.Enabled());
  CHECK(log.V(2).Enabled());
  CHECK_FALSE(log.V(3).Enabled());

  log.V(1).Info("one");
  log.V(2).Info("two");
  log.V(3).Info("three");
  log.V(5).Info("five");
  log.Info("info");
  REQUIRE(c.lines.size() == 3);
  auto one = Parse(c.lines[0]);
  CHECK(Str(one, "msg") == "one");
  CHECK(Str(one, "level") == "debug");
  CHECK(one["v"].GetInt() == 1);
  CHECK(Keys(one) == std::vector<std::string>{"ts", "level", "msg", "v"});
  auto two = Parse(c.lines[1]);
  CHECK(Str(two, "msg") == "two");
  CHECK(two["v"].GetInt() == 2);
  auto info = Parse(c.lines[2]);
  CHECK(Str(info, "level") == "info");
  CHECK_FALSE(info.HasMember("v"));

  SECTION("levels add up and V(0) adds nothing") {
    c.lines.clear();
    log.V(1).V(1).Info("sum");
    log.V(1).V(2).Info("too deep");
    log.V(0).Info("zero");
    log.V(-4).Info("negative");
    REQUIRE(c.lines.size() == 3);
    CHECK(Parse(c.lines[0])["v"].GetInt() == 2);
    CHECK(Str(Parse(c.lines[1]), "level") == "info");
    CHECK(Str(Parse(c.lines[2]), "level") == "info");
  }

  SECTION("SetVerbosity applies to existing loggers") {
    c.lines.clear();
    Logger deep = log.V(4);
    deep.Info("hidden");
    c.sink.SetVerbosity(5);
    CHECK(c.sink.verbosity() == 5);
    deep.Info("shown");
    c.sink.SetVerbosity(-1);
    CHECK(c.sink.verbosity() == 0);
    deep.Info("hidden again");
    log.Info("info still shown");
    REQUIRE(c.lines.size() == 2);
    CHECK(Str(Parse(c.lines[0]), "msg") == "shown");
    CHECK(Str(Parse(c.lines[1]), "msg") == "info still shown");
  }
}

TEST_CASE("WithValues returns a new Logger and leaves the original unchanged", "[unit][log]") {
  Capture c;
  Logger base = Logger(c.sink).WithValues({{"controller", "node"}});
  Logger child = base.WithValues({{"name", "n1"}});
  Logger grandchild = child.WithValues({{"step", 3}});
  base.Info("base");
  child.Info("child");
  grandchild.V(0).Info("grandchild");
  REQUIRE(c.lines.size() == 3);
  CHECK(Keys(Parse(c.lines[0])) == std::vector<std::string>{"ts", "level", "msg", "controller"});
  CHECK(Keys(Parse(c.lines[1])) ==
        std::vector<std::string>{"ts", "level", "msg", "controller", "name"});
  CHECK(Keys(Parse(c.lines[2])) ==
        std::vector<std::string>{"ts", "level", "msg", "controller", "name", "step"});
}

TEST_CASE("Strings are escaped so that every line is valid JSON", "[unit][log]") {
  Capture c;
  Logger log(c.sink);

  SECTION("quotes, backslashes and control characters round-trip") {
    const std::string tricky = std::string("say \"hi\"\\ \n\r\t\b\f end ") + '\x01' + '\x1f' +
                               std::string(1, '\0') + "\x7f/";
    log.Info(tricky, {{"key \"q\"", tricky}});
    const std::string& line = c.lines.at(0);
    CHECK(line.find("\\u0001") != std::string::npos);
    CHECK(line.find("\\u001f") != std::string::npos);
    CHECK(line.find("\\u0000") != std::string::npos);
    CHECK(line.find("\\\"hi\\\"") != std::string::npos);
    auto doc = Parse(line);
    CHECK(Str(doc, "msg") == tricky);
    CHECK(Str(doc, "key \"q\"") == tricky);
  }

  SECTION("valid UTF-8 is kept as it is") {
    const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
    log.Info(text);
    CHECK(c.lines.at(0).find(text) != std::string::npos);
    CHECK(Str(Parse(c.lines.at(0)), "msg") == text);
  }

  SECTION("invalid UTF-8 becomes U+FFFD") {
    // Which bytes make one U+FFFD is common/text's (the full table is in utf8_test.cc); here
    // one case per path of AppendJsonString: a single invalid byte, an invalid prefix of several
    // bytes, one cut by the end of the string, and a valid sequence before an invalid one.
    const std::string fffd = "\xEF\xBF\xBD";
    auto [input, expected] = GENERATE_COPY(table<std::string, std::string>({
        {"a\xFF"
         "b",
         "a" + fffd + "b"},  // never valid
        {"\xE2\x82"
         "x",
         fffd + "x"},                                         // truncated, then ASCII
        {"end\xE2\x82", "end" + fffd},                        // truncated at the end
        {"\xF0\x9F\x98\x80\xFE", "\xF0\x9F\x98\x80" + fffd},  // valid then invalid
    }));
    c.lines.clear();
    log.Info("m", {{"text", input}});
    INFO(expected);
    CHECK(Str(Parse(c.lines.at(0)), "text") == expected);
  }

  SECTION("invalid UTF-8 in the message and in a key becomes U+FFFD too") {
    const std::string fffd = "\xEF\xBF\xBD";
    log.Info("m\xFF", {{"k\xC0", 1}});
    auto doc = Parse(c.lines.at(0));
    CHECK(Str(doc, "msg") == "m" + fffd);
    CHECK(doc.HasMember(("k" + fffd).c_str()));
  }
}

TEST_CASE("Numbers that JSON cannot represent become strings", "[unit][log]") {
  CHECK(Value(std::numeric_limits<double>::quiet_NaN()).json() == "\"NaN\"");
  CHECK(Value(std::numeric_limits<double>::infinity()).json() == "\"+Inf\"");
  CHECK(Value(-std::numeric_limits<double>::infinity()).json() == "\"-Inf\"");
  CHECK(Value(0.1).json() == "0.1");
  CHECK(Value(1.5f).json() == "1.5");
  CHECK(Value(int8_t{-128}).json() == "-128");
  CHECK(Value(std::numeric_limits<int64_t>::min()).json() == "-9223372036854775808");
  CHECK(Value(static_cast<const char*>(nullptr)).json() == "null");
  CHECK(Value(false).json() == "false");

  Capture c;
  Logger(c.sink).Info("m", {{"big", 1e300}, {"small", -2.5e-300}});
  auto doc = Parse(c.lines.at(0));
  CHECK(doc["big"].GetDouble() == 1e300);
  CHECK(doc["small"].GetDouble() == -2.5e-300);
}

TEST_CASE("FormatTimestamp writes RFC 3339 UTC with milliseconds", "[unit][log]") {
  using std::chrono::milliseconds;
  CHECK(FormatTimestamp(system_clock::time_point()) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatTimestamp(kFixedTime) == "2026-11-22T10:00:00.123Z");
  // Rounded down, also before the epoch.
  CHECK(FormatTimestamp(system_clock::time_point(std::chrono::microseconds(-1))) ==
        "1969-12-31T23:59:59.999Z");
  CHECK(FormatTimestamp(system_clock::time_point(std::chrono::microseconds(1999))) ==
        "1970-01-01T00:00:00.001Z");
  // 2024-02-29T23:59:59.5Z, a leap day.
  CHECK(FormatTimestamp(system_clock::time_point(milliseconds(1709251199500))) ==
        "2024-02-29T23:59:59.500Z");
}

TEST_CASE("A Sink stamps lines with the system clock by default", "[unit][log]") {
  std::vector<std::string> lines;
  Sink sink([&lines](std::string_view line) { lines.emplace_back(line); });
  CHECK(sink.verbosity() == 0);
  const std::string before = FormatTimestamp(system_clock::now());
  Logger(sink).Info("Stamped");
  const std::string after = FormatTimestamp(system_clock::now());
  REQUIRE(lines.size() == 1);
  const std::string ts = Str(Parse(lines[0]), "ts");
  // Same fixed-width format, so string order is time order.
  CHECK(ts >= before);
  CHECK(ts <= after);
}

TEST_CASE("Lines from concurrent writers never interleave", "[unit][log]") {
  constexpr int kThreads = 8;
  constexpr int kLinesPerThread = 200;
  // Not synchronized on purpose: the Sink must serialize calls. The line is copied in two
  // pieces so that unserialized calls would tear lines.
  std::string out;
  Sink sink(
      [&out](std::string_view line) {
        const size_t half = line.size() / 2;
        out.append(line.substr(0, half));
        std::this_thread::yield();
        out.append(line.substr(half));
      },
      /*verbosity=*/1);
  Logger root = Logger(sink).WithValues({{"padding", std::string(200, 'x')}});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&root, t] {
      Logger log = root.WithValues({{"thread", t}});
      for (int i = 0; i < kLinesPerThread; ++i) {
        if (i % 2 == 0) {
          log.Info("Wrote line", {{"i", i}});
        } else {
          log.V(1).Info("Wrote line", {{"i", i}});
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  std::set<std::pair<int, int>> seen;
  size_t start = 0;
  while (start < out.size()) {
    const size_t end = out.find('\n', start);
    REQUIRE(end != std::string::npos);
    auto doc = Parse(out.substr(start, end - start + 1));
    CHECK(Str(doc, "padding").size() == 200);
    seen.emplace(doc["thread"].GetInt(), doc["i"].GetInt());
    start = end + 1;
  }
  CHECK(seen.size() == static_cast<size_t>(kThreads * kLinesPerThread));
}

TEST_CASE("Root logs to the process-wide stderr Sink", "[unit][log]") {
  // Only observable property without writing to stderr: it shares StderrSink's verbosity.
  const int saved = StderrSink().verbosity();
  StderrSink().SetVerbosity(0);
  CHECK_FALSE(Root().V(1).Enabled());
  StderrSink().SetVerbosity(1);
  CHECK(Root().V(1).Enabled());
  StderrSink().SetVerbosity(saved);
}

}  // namespace
}  // namespace common::log
