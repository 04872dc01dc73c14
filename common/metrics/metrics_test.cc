#include "common/metrics/metrics.h"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace common::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Unwraps a Result in a test, failing the test with the status when it holds an error.
template <typename T>
T Must(Result<T> result) {
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return std::move(result).value();
}

TEST_CASE("Registry renders every kind of metric in the text format 0.0.4", "[unit][metrics]") {
  Registry registry;
  CounterFamily* errors = Must(registry.AddCounter("meshstor_reconcile_errors_total",
                                                   "Reconcile passes that failed", {"controller"}));
  errors->WithLabels({"volume"}).Inc();
  errors->WithLabels({"volume"}).Inc();
  REQUIRE(Must(errors->GetWithLabels({"node"}))->Add(0.5).ok());

  Gauge* up = Must(registry.AddGauge("meshstor_up", "Line one\nback\\slash \"quoted\""));
  up->Set(1);

  GaugeFamily* sizes =
      Must(registry.AddGauge("meshstor_volume_bytes", "Volume size", {"volume", "pool"}));
  sizes->WithLabels({"a\"b\\c\nd", "fast"}).Set(1e16);
  sizes->WithLabels({"", "slow"}).Set(0.1);

  HistogramFamily* latency = Must(
      registry.AddHistogram("meshstor_op_seconds", "Operation latency", {0.5, 1, 2.5}, {"op"}));
  Histogram& mount = latency->WithLabels({"mount"});
  for (double v : {0.25, 0.5, 2.0, 7.0}) mount.Observe(v);

  // A family with labels but no series yet is left out entirely.
  REQUIRE(registry.AddCounter("meshstor_unused_total", "Never used", {"x"}).ok());

  REQUIRE(registry.AddCallbackGauge("meshstor_a_callback", "Computed", [] { return -kInf; }).ok());

  CHECK(registry.Expose() ==
        "# HELP meshstor_a_callback Computed\n"
        "# TYPE meshstor_a_callback gauge\n"
        "meshstor_a_callback -Inf\n"
        "# HELP meshstor_op_seconds Operation latency\n"
        "# TYPE meshstor_op_seconds histogram\n"
        "meshstor_op_seconds_bucket{op=\"mount\",le=\"0.5\"} 2\n"
        "meshstor_op_seconds_bucket{op=\"mount\",le=\"1\"} 2\n"
        "meshstor_op_seconds_bucket{op=\"mount\",le=\"2.5\"} 3\n"
        "meshstor_op_seconds_bucket{op=\"mount\",le=\"+Inf\"} 4\n"
        "meshstor_op_seconds_sum{op=\"mount\"} 9.75\n"
        "meshstor_op_seconds_count{op=\"mount\"} 4\n"
        "# HELP meshstor_reconcile_errors_total Reconcile passes that failed\n"
        "# TYPE meshstor_reconcile_errors_total counter\n"
        "meshstor_reconcile_errors_total{controller=\"node\"} 0.5\n"
        "meshstor_reconcile_errors_total{controller=\"volume\"} 2\n"
        "# HELP meshstor_up Line one\\nback\\\\slash \"quoted\"\n"
        "# TYPE meshstor_up gauge\n"
        "meshstor_up 1\n"
        "# HELP meshstor_volume_bytes Volume size\n"
        "# TYPE meshstor_volume_bytes gauge\n"
        "meshstor_volume_bytes{volume=\"\",pool=\"slow\"} 0.1\n"
        "meshstor_volume_bytes{volume=\"a\\\"b\\\\c\\nd\",pool=\"fast\"} 10000000000000000\n");
}

TEST_CASE("Unlabelled metrics are exposed at zero as soon as they are registered",
          "[unit][metrics]") {
  Registry registry;
  REQUIRE(registry.AddCounter("c_total", "C").ok());
  REQUIRE(registry.AddGauge("g", "G").ok());
  REQUIRE(registry.AddHistogram("h", "H", {1}).ok());
  CHECK(registry.Expose() ==
        "# HELP c_total C\n# TYPE c_total counter\nc_total 0\n"
        "# HELP g G\n# TYPE g gauge\ng 0\n"
        "# HELP h H\n# TYPE h histogram\n"
        "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST_CASE("Sample values are formatted as Prometheus parses them", "[unit][metrics]") {
  auto [value, text] = GENERATE(table<double, std::string>({
      {0, "0"},
      {-0.0, "0"},
      {1, "1"},
      {-3, "-3"},
      {0.1, "0.1"},
      {2.5, "2.5"},
      {1e-7, "1e-07"},
      {123456789012.5, "123456789012.5"},
      {1e15, "1000000000000000"},
      {1e18, "1000000000000000000"},
      {9007199254740993.0, "9007199254740992"},  // the double nearest to 2^53 + 1
      {1e21, "1e+21"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {kInf, "+Inf"},
      {-kInf, "-Inf"},
      {kNaN, "NaN"},
  }));
  Registry registry;
  Must(registry.AddGauge("g", "G"))->Set(value);
  CHECK(registry.Expose() == "# HELP g G\n# TYPE g gauge\ng " + text + "\n");
}

TEST_CASE("Histogram bucket bounds are rendered with the same formatting", "[unit][metrics]") {
  Registry registry;
  REQUIRE(registry.AddHistogram("h", "H", {-1, 0.005, 1e21, kInf}).ok());
  CHECK(registry.Expose() ==
        "# HELP h H\n# TYPE h histogram\n"
        "h_bucket{le=\"-1\"} 0\nh_bucket{le=\"0.005\"} 0\nh_bucket{le=\"1e+21\"} 0\n"
        "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST_CASE("Counter rejects negative and NaN increments and keeps its value", "[unit][metrics]") {
  Registry registry;
  Counter* counter = Must(registry.AddCounter("c_total", "C"));
  counter->Inc();
  REQUIRE(counter->Add(2.5).ok());
  CHECK(counter->Value() == 3.5);

  Status negative = counter->Add(-1);
  CHECK(negative.code() == StatusCode::kInvalidArgument);
  CHECK(negative.message() == "a counter cannot be increased by -1");
  CHECK(counter->Add(kNaN).code() == StatusCode::kInvalidArgument);
  CHECK(counter->Value() == 3.5);

  REQUIRE(counter->Add(0).ok());
  CHECK(counter->Value() == 3.5);
  REQUIRE(counter->Add(kInf).ok());
  CHECK(counter->Value() == kInf);
}

TEST_CASE("Gauge goes up and down", "[unit][metrics]") {
  Registry registry;
  Gauge* gauge = Must(registry.AddGauge("g", "G"));
  gauge->Set(10);
  gauge->Inc();
  gauge->Dec();
  gauge->Dec();
  gauge->Add(-2.5);
  CHECK(gauge->Value() == 6.5);
  gauge->Set(-4);
  CHECK(gauge->Value() == -4);
}

TEST_CASE("Histogram counts each observation in the first bucket whose bound is >= it",
          "[unit][metrics]") {
  Registry registry;
  Histogram* h = Must(registry.AddHistogram("h", "H", {1, 2, 4}));
  CHECK(h->upper_bounds() == std::vector<double>{1, 2, 4});
  for (double v : {-5.0, 1.0, 1.5, 2.0, 4.0, 4.5, 100.0}) h->Observe(v);
  h->Observe(kNaN);  // dropped

  Histogram::Snapshot s = h->Read();
  CHECK(s.cumulative_counts == std::vector<std::uint64_t>{2, 4, 5, 7});
  CHECK(s.count == 7);
  CHECK(s.sum == 108);

  SECTION("infinite observations land in the outer buckets") {
    h->Observe(kInf);
    h->Observe(-kInf);
    s = h->Read();
    CHECK(s.cumulative_counts == std::vector<std::uint64_t>{3, 5, 6, 9});
    CHECK(std::isnan(s.sum));  // +Inf + -Inf
  }
}

TEST_CASE("A histogram without finite bounds has only the +Inf bucket", "[unit][metrics]") {
  Registry registry;
  Histogram* h = Must(registry.AddHistogram("h", "H", {}));
  h->Observe(3);
  CHECK(registry.Expose() ==
        "# HELP h H\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 3\nh_count 1\n");
}

TEST_CASE("Removing a label set hides its series and keeps pointers valid", "[unit][metrics]") {
  Registry registry;
  GaugeFamily* family = Must(registry.AddGauge("volume_bytes", "V", {"volume"}));
  Gauge& a = family->WithLabels({"a"});
  a.Set(1);
  family->WithLabels({"b"}).Set(2);

  REQUIRE(family->Remove({"a"}).ok());
  CHECK(registry.Expose() ==
        "# HELP volume_bytes V\n# TYPE volume_bytes gauge\n"
        "volume_bytes{volume=\"b\"} 2\n");
  // The retired series can still be written, invisibly.
  a.Set(5);
  CHECK(a.Value() == 5);
  // Removing again, or removing what never existed, is fine.
  CHECK(family->Remove({"a"}).ok());
  CHECK(family->Remove({"never"}).ok());
  CHECK(family->Remove({"a", "b"}).code() == StatusCode::kInvalidArgument);

  // The same labels later start a fresh series.
  Gauge& again = family->WithLabels({"a"});
  CHECK(&again != &a);
  CHECK(again.Value() == 0);

  family->RemoveAll();
  CHECK(registry.Expose().empty());
}

TEST_CASE("RemoveIf removes the series it is asked to, as Remove does", "[unit][metrics]") {
  Registry registry;
  GaugeFamily* family = Must(registry.AddGauge("volume_bytes", "V", {"volume"}));
  Gauge& a = family->WithLabels({"a"});
  family->WithLabels({"b"}).Set(2);
  family->WithLabels({"c"}).Set(3);
  std::vector<LabelValues> seen;
  family->RemoveIf([&](const LabelValues& l) {
    seen.push_back(l);
    return l[0] != "b";
  });
  CHECK(seen == std::vector<LabelValues>{{"a"}, {"b"}, {"c"}});
  CHECK(registry.Expose() ==
        "# HELP volume_bytes V\n# TYPE volume_bytes gauge\n"
        "volume_bytes{volume=\"b\"} 2\n");
  a.Set(5);  // retired, still writable
  CHECK(family->WithLabels({"a"}).Value() == 0);
}

TEST_CASE("Label values that are not UTF-8 are repaired so the scrape stays valid",
          "[unit][metrics]") {
  Registry registry;
  CounterFamily* family = Must(registry.AddCounter("c_total", "Bad \xff help", {"v"}));
  family->WithLabels({"ok\xc3\xa9"}).Inc();    // é, valid
  family->WithLabels({"x\xffy"}).Inc();        // stray byte
  family->WithLabels({"x\xffy"}).Inc();        // same series
  family->WithLabels({"\xed\xa0\x80"}).Inc();  // a UTF-16 surrogate: invalid
  CHECK(registry.Expose() ==
        "# HELP c_total Bad \xef\xbf\xbd help\n# TYPE c_total counter\n"
        "c_total{v=\"ok\xc3\xa9\"} 1\n"
        "c_total{v=\"x\xef\xbf\xbdy\"} 2\n"
        "c_total{v=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n");
  CHECK(Must(family->GetWithLabels({"x\xffy"}))->Value() == 2);
}

TEST_CASE("Callback gauges are computed at each scrape", "[unit][metrics]") {
  Registry registry;
  Gauge* source = Must(registry.AddGauge("source", "S"));
  // The callback reads another metric of the same registry: no lock is held while it runs.
  REQUIRE(registry.AddCallbackGauge("derived", "D", [source] { return source->Value() * 2; }).ok());
  REQUIRE(registry
              .AddCallbackGauge("broken", "B",
                                []() -> double { throw std::runtime_error("cannot read"); })
              .ok());
  source->Set(21);
  CHECK(registry.Expose() ==
        "# HELP broken B\n# TYPE broken gauge\nbroken NaN\n"
        "# HELP derived D\n# TYPE derived gauge\nderived 42\n"
        "# HELP source S\n# TYPE source gauge\nsource 21\n");
  source->Set(1);
  CHECK(registry.Expose().find("derived 2\n") != std::string::npos);
}

TEST_CASE("Callback gauge families are computed, sorted and repaired at each scrape",
          "[unit][metrics]") {
  Registry registry;
  auto samples = std::make_shared<Registry::GaugeSamples>();
  REQUIRE(
      registry
          .AddCallbackGaugeFamily("volume_ratio", "R", {"volume"}, [samples] { return *samples; })
          .ok());
  // No series: the family is left out, as a GaugeFamily without series is.
  CHECK(registry.Expose().empty());
  *samples = {{{"pvc-b"}, 0.5}, {{"pvc-a"}, 1}, {{"bad\xff"}, 2}, {{"pvc-b"}, 0.25}};
  CHECK(registry.Expose() ==
        "# HELP volume_ratio R\n# TYPE volume_ratio gauge\n"
        "volume_ratio{volume=\"bad\xef\xbf\xbd\"} 2\n"
        "volume_ratio{volume=\"pvc-a\"} 1\n"
        "volume_ratio{volume=\"pvc-b\"} 0.25\n");
  // The next scrape sees what the callback returns then; nothing else is kept.
  *samples = {{{"pvc-c"}, 3}};
  CHECK(registry.Expose() ==
        "# HELP volume_ratio R\n# TYPE volume_ratio gauge\nvolume_ratio{volume=\"pvc-c\"} 3\n");
  // A pair with the wrong number of label values leaves the family out of the scrape.
  *samples = {{{"pvc-c", "extra"}, 3}};
  CHECK(registry.Expose().empty());
  REQUIRE(registry
              .AddCallbackGaugeFamily(
                  "broken_family", "B", {"volume"},
                  []() -> Registry::GaugeSamples { throw std::runtime_error("cannot read"); })
              .ok());
  CHECK(registry.Expose().empty());
  CHECK(registry
            .AddCallbackGaugeFamily("volume_ratio", "again", {"volume"},
                                    [] { return Registry::GaugeSamples{}; })
            .code() == StatusCode::kAlreadyExists);
  CHECK(registry
            .AddCallbackGaugeFamily("x", "bad label", {"__x"},
                                    [] { return Registry::GaugeSamples{}; })
            .code() == StatusCode::kInvalidArgument);
  CHECK(registry.AddCallbackGaugeFamily("y", "empty", {"volume"}, nullptr).code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Invalid metric names are rejected", "[unit][metrics]") {
  const std::string name = GENERATE("", "1abc", "a-b", "a b", "a.b", "é", "abc\n");
  Registry registry;
  Result<Counter*> counter = registry.AddCounter(name, "H");
  CHECK(counter.status().code() == StatusCode::kInvalidArgument);
  CHECK(counter.status().message() == "metric name \"" + name +
                                          "\" is not valid: it must match "
                                          "[a-zA-Z_:][a-zA-Z0-9_:]*");
  CHECK(registry.AddGauge(name, "H", {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(registry.AddHistogram(name, "H", {1}).status().code() == StatusCode::kInvalidArgument);
  CHECK(registry.AddCallbackGauge(name, "H", [] { return 1.0; }).code() ==
        StatusCode::kInvalidArgument);
  CHECK(registry.Expose().empty());
}

TEST_CASE("Valid metric and label names are accepted", "[unit][metrics]") {
  Registry registry;
  CHECK(registry.AddCounter("a", "H").ok());
  CHECK(registry.AddCounter("_a1", "H").ok());
  CHECK(registry.AddCounter(":ns:a_b:total", "H", {"_x", "a1", "A_B", "_"}).ok());
  // "le" is reserved only in histograms.
  CHECK(registry.AddGauge("g", "H", {"le"}).ok());
}

TEST_CASE("Invalid label names are rejected", "[unit][metrics]") {
  const std::string label = GENERATE("", "1a", "a-b", "a:b", "__reserved", "a b");
  Registry registry;
  Result<CounterFamily*> family = registry.AddCounter("c_total", "H", {"ok", label});
  CHECK(family.status().code() == StatusCode::kInvalidArgument);
  CHECK(family.status().message() == "metric c_total: label name \"" + label +
                                         "\" is not valid: it must match "
                                         "[a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\"");
  // Nothing was registered, so the name is still free.
  CHECK(registry.AddCounter("c_total", "H", {"ok"}).ok());
}

TEST_CASE("Repeated label names and a histogram label named le are rejected", "[unit][metrics]") {
  Registry registry;
  Result<GaugeFamily*> repeated = registry.AddGauge("g", "H", {"a", "b", "a"});
  CHECK(repeated.status().code() == StatusCode::kInvalidArgument);
  CHECK(repeated.status().message() == "metric g: label name \"a\" is repeated");

  Result<HistogramFamily*> le = registry.AddHistogram("h", "H", {1}, {"op", "le"});
  CHECK(le.status().code() == StatusCode::kInvalidArgument);
  CHECK(le.status().message() ==
        "metric h: label name \"le\" is reserved for the buckets of a histogram");
}

TEST_CASE("A metric name can be registered only once", "[unit][metrics]") {
  Registry registry;
  REQUIRE(registry.AddCounter("x", "First").ok());
  Result<Counter*> again = registry.AddCounter("x", "Second");
  CHECK(again.status().code() == StatusCode::kAlreadyExists);
  CHECK(again.status().message() == "metric x is already registered");
  CHECK(registry.AddGauge("x", "G", {"a"}).status().code() == StatusCode::kAlreadyExists);
  CHECK(registry.AddHistogram("x", "H", {1}).status().code() == StatusCode::kAlreadyExists);
  CHECK(registry.AddCallbackGauge("x", "C", [] { return 0.0; }).code() ==
        StatusCode::kAlreadyExists);
  CHECK(registry.Expose() == "# HELP x First\n# TYPE x counter\nx 0\n");
}

TEST_CASE("Histogram sample names may not clash with other families", "[unit][metrics]") {
  Registry registry;
  SECTION("a histogram after a metric named like one of its samples") {
    REQUIRE(registry.AddCounter("op_count", "C").ok());
    Result<Histogram*> h = registry.AddHistogram("op", "H", {1});
    CHECK(h.status().code() == StatusCode::kAlreadyExists);
    CHECK(h.status().message() ==
          "metric op would expose samples named op_count, which is already taken");
  }
  SECTION("a metric after a histogram whose sample it would shadow") {
    REQUIRE(registry.AddHistogram("op", "H", {1}).ok());
    Result<Gauge*> g = registry.AddGauge("op_sum", "G");
    CHECK(g.status().code() == StatusCode::kAlreadyExists);
    CHECK(g.status().message() ==
          "metric op_sum clashes with a sample name of a registered histogram");
    CHECK(registry.AddCallbackGauge("op_bucket", "G", [] { return 0.0; }).code() ==
          StatusCode::kAlreadyExists);
    // Names that merely share the prefix are fine.
    CHECK(registry.AddGauge("op_sums", "G").ok());
  }
}

TEST_CASE("Histogram bounds must be finite and strictly increasing", "[unit][metrics]") {
  Registry registry;
  auto error = [&](std::vector<double> bounds) {
    return registry.AddHistogram("h", "H", std::move(bounds), {"op"}).status();
  };
  CHECK(error({1, 1}).message() ==
        "histogram h: bucket bounds must be strictly increasing, but 1 at index 1 follows 1");
  CHECK(error({2, 1}).code() == StatusCode::kInvalidArgument);
  CHECK(error({1, kNaN, 3}).message() ==
        "histogram h: bucket bound nan at index 1 is not finite (only a last +Inf is allowed)");
  CHECK(error({-kInf, 1}).code() == StatusCode::kInvalidArgument);
  CHECK(error({1, kInf, 3}).code() == StatusCode::kInvalidArgument);
  CHECK(error({1, kInf, kInf}).code() == StatusCode::kInvalidArgument);
  // After all these failures the name is still free.
  HistogramFamily* h = Must(registry.AddHistogram("h", "H", {1, 2, kInf}, {"op"}));
  CHECK(h->WithLabels({"x"}).upper_bounds() == std::vector<double>{1, 2});
}

TEST_CASE("Label values must match the label names in number", "[unit][metrics]") {
  Registry registry;
  CounterFamily* family = Must(registry.AddCounter("c_total", "C", {"a", "b"}));
  Result<Counter*> few = family->GetWithLabels({"x"});
  CHECK(few.status().code() == StatusCode::kInvalidArgument);
  CHECK(few.status().message() ==
        "metric c_total has 2 label name(s) but 1 label value(s) were given");
  CHECK(family->GetWithLabels({"x", "y", "z"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(family->GetWithLabels({}).status().code() == StatusCode::kInvalidArgument);
  CHECK(registry.Expose().empty());

  Counter* unlabelled = Must(registry.AddCounter("u_total", "U"));
  CounterFamily* zero = Must(registry.AddCounter("z_total", "Z", {}));
  CHECK(zero->GetWithLabels({"x"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Must(zero->GetWithLabels({})) == &zero->WithLabels({}));
  CHECK(unlabelled->Value() == 0);
}

TEST_CASE("The same label values always give the same series", "[unit][metrics]") {
  Registry registry;
  HistogramFamily* family = Must(registry.AddHistogram("h", "H", DefaultBuckets(), {"op"}));
  CHECK(&family->WithLabels({"a"}) == &family->WithLabels({"a"}));
  CHECK(&family->WithLabels({"a"}) != &family->WithLabels({"b"}));
  CHECK(family->name() == "h");
  CHECK(family->help() == "H");
  CHECK(family->label_names() == std::vector<std::string>{"op"});
}

TEST_CASE("Bucket helpers build bounds and reject bad parameters", "[unit][metrics]") {
  CHECK(DefaultBuckets() ==
        std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  CHECK(Must(ExponentialBuckets(0.001, 10, 4)).size() == 4);
  CHECK(Must(ExponentialBuckets(1, 2, 5)) == std::vector<double>{1, 2, 4, 8, 16});
  CHECK(Must(LinearBuckets(-1, 0.5, 4)) == std::vector<double>{-1, -0.5, 0, 0.5});

  CHECK(ExponentialBuckets(0, 2, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(ExponentialBuckets(1, 1, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(ExponentialBuckets(1, 2, 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(ExponentialBuckets(kNaN, 2, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(ExponentialBuckets(1e300, 1e10, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(LinearBuckets(0, 0, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(LinearBuckets(0, -1, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(LinearBuckets(kInf, 1, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(LinearBuckets(0, 1, -1).status().code() == StatusCode::kInvalidArgument);
  // A width too small to change the bound would repeat it.
  CHECK(LinearBuckets(1e20, 1, 2).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Concurrent updates are all counted", "[unit][metrics]") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  Registry registry;
  CounterFamily* counters = Must(registry.AddCounter("ops_total", "Ops", {"volume"}));
  HistogramFamily* latency = Must(registry.AddHistogram("op_seconds", "Latency", {1, 2}, {}));
  Gauge* inflight = Must(registry.AddGauge("inflight", "In flight"));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Histogram& h = latency->WithLabels({});
      for (int i = 0; i < kPerThread; ++i) {
        // Look the series up each time, so the family map is contended too.
        counters->WithLabels({"shared"}).Inc();
        counters->WithLabels({"own-" + std::to_string(t)}).Inc();
        h.Observe(static_cast<double>(i % 3));  // 0, 1, 2
        inflight->Inc();
        inflight->Dec();
        if (i % 1000 == 0) (void)registry.Expose();  // scrapes race with the updates
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  CHECK(Must(counters->GetWithLabels({"shared"}))->Value() == kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(Must(counters->GetWithLabels({"own-" + std::to_string(t)}))->Value() == kPerThread);
  }
  Histogram::Snapshot s = latency->WithLabels({}).Read();
  CHECK(s.count == static_cast<std::uint64_t>(kThreads * kPerThread));
  // Per thread, i % 3 is 0 or 1 (bucket le="1") 13334 times and 2 (bucket le="2") 6666 times.
  CHECK(s.cumulative_counts ==
        std::vector<std::uint64_t>{13334 * kThreads, 20000 * kThreads, 20000 * kThreads});
  CHECK(s.sum == 19999.0 * kThreads);
  CHECK(inflight->Value() == 0);
  CHECK(registry.Expose().find("ops_total{volume=\"shared\"} 160000\n") != std::string::npos);
}

}  // namespace
}  // namespace common::metrics
