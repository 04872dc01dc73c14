#include "common/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "common/text/utf8.h"

namespace common::metrics {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAsciiLetter(c) || c == '_' || c == ':' || (i > 0 && IsAsciiDigit(c));
    if (!ok) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, without the "__" prefix Prometheus reserves for itself.
bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAsciiLetter(c) || c == '_' || (i > 0 && IsAsciiDigit(c));
    if (!ok) return false;
  }
  return true;
}

LabelValues SanitizeLabelValues(const LabelValues& values) {
  LabelValues out = values;
  for (std::string& v : out) {
    if (!text::IsValidUtf8(v)) v = text::SanitizeUtf8(v);
  }
  return out;
}

// Values as Prometheus parses them: "+Inf", "-Inf", "NaN"; integral values below 2^63 in full,
// without an exponent; anything else as the shortest string that reads back to the same double.
void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else if (std::trunc(v) == v && std::fabs(v) < 9223372036854775808.0) {
    fmt::format_to(std::back_inserter(*out), "{}", static_cast<std::int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(*out), "{}", v);
  }
}

void AppendEscapedHelp(std::string_view help, std::string* out) {
  for (const char c : help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void AppendEscapedLabelValue(std::string_view value, std::string* out) {
  for (const char c : value) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void AppendHeader(std::string_view name, std::string_view help, std::string_view type,
                  std::string* out) {
  out->append("# HELP ").append(name).push_back(' ');
  AppendEscapedHelp(help, out);
  out->append("\n# TYPE ").append(name).push_back(' ');
  out->append(type).push_back('\n');
}

// One sample line: name{a="x",b="y",le="0.5"} value. `le` is appended last when non-null.
void AppendSample(std::string_view name, const std::vector<std::string>& label_names,
                  const LabelValues& label_values, const std::string* le, double value,
                  std::string* out) {
  out->append(name);
  if (!label_names.empty() || le != nullptr) {
    out->push_back('{');
    for (size_t i = 0; i < label_names.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->append(label_names[i]).append("=\"");
      AppendEscapedLabelValue(label_values[i], out);
      out->push_back('"');
    }
    if (le != nullptr) {
      if (!label_names.empty()) out->push_back(',');
      out->append("le=\"").append(*le).push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  AppendValue(value, out);
  out->push_back('\n');
}

template <typename M>
constexpr std::string_view TypeName() {
  if constexpr (std::is_same_v<M, Counter>) {
    return "counter";
  } else if constexpr (std::is_same_v<M, Gauge>) {
    return "gauge";
  } else {
    static_assert(std::is_same_v<M, Histogram>);
    return "histogram";
  }
}

Status ValidateMetricName(std::string_view name) {
  if (!IsValidMetricName(name)) {
    return InvalidArgumentError(
        "metric name \"{}\" is not valid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*", name);
  }
  return OkStatus();
}

Status ValidateLabelNames(std::string_view metric, const std::vector<std::string>& label_names,
                          bool is_histogram) {
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      return InvalidArgumentError(
          "metric {}: label name \"{}\" is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]* and "
          "not start with \"__\"",
          metric, label);
    }
    if (is_histogram && label == "le") {
      return InvalidArgumentError(
          "metric {}: label name \"le\" is reserved for the buckets of a histogram", metric);
    }
    if (!seen.insert(label).second) {
      return InvalidArgumentError("metric {}: label name \"{}\" is repeated", metric, label);
    }
  }
  return OkStatus();
}

// Checks the bounds and drops a trailing +Inf.
Result<std::vector<double>> NormalizeBuckets(std::string_view metric, std::vector<double> bounds) {
  if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) {
    bounds.pop_back();
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return InvalidArgumentError(
          "histogram {}: bucket bound {} at index {} is not finite (only a last +Inf is allowed)",
          metric, bounds[i], i);
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return InvalidArgumentError(
          "histogram {}: bucket bounds must be strictly increasing, but {} at index {} follows {}",
          metric, bounds[i], i, bounds[i - 1]);
    }
  }
  return bounds;
}

std::string ArityError(std::string_view metric, size_t want, size_t got) {
  return fmt::format("metric {} has {} label name(s) but {} label value(s) were given", metric,
                     want, got);
}

// An unlabelled gauge whose value is computed at scrape time.
class CallbackGauge final : public metrics_internal::Collectable {
 public:
  CallbackGauge(std::string name, std::string help, std::function<double()> callback)
      : name_(std::move(name)), help_(std::move(help)), callback_(std::move(callback)) {}

 private:
  void AppendTo(std::string* out) const override {
    double value;
    try {
      value = callback_();
    } catch (...) {
      // Exceptions stay inside this module; a failing callback shows as NaN for this scrape.
      value = std::numeric_limits<double>::quiet_NaN();
    }
    AppendHeader(name_, help_, "gauge", out);
    AppendSample(name_, {}, {}, nullptr, value, out);
  }

  const std::string name_;
  const std::string help_;
  const std::function<double()> callback_;
};

// A labelled gauge family whose series are computed at scrape time.
class CallbackGaugeFamily final : public metrics_internal::Collectable {
 public:
  CallbackGaugeFamily(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<Registry::GaugeSamples()> collect)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        collect_(std::move(collect)) {}

 private:
  void AppendTo(std::string* out) const override {
    Registry::GaugeSamples samples;
    try {
      samples = collect_();
    } catch (...) {
      return;  // exceptions stay inside this module; the family is left out of this scrape
    }
    for (auto& [values, value] : samples) {
      if (values.size() != label_names_.size()) return;
      for (std::string& v : values) {
        if (!text::IsValidUtf8(v)) v = text::SanitizeUtf8(v);
      }
    }
    if (samples.empty()) return;
    // Sorted by label values; of equal label values the last pair counts (stable sort, then the
    // last of each run).
    std::stable_sort(samples.begin(), samples.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    AppendHeader(name_, help_, "gauge", out);
    for (size_t i = 0; i < samples.size(); ++i) {
      if (i + 1 < samples.size() && samples[i + 1].first == samples[i].first) continue;
      AppendSample(name_, label_names_, samples[i].first, nullptr, samples[i].second, out);
    }
  }

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::function<Registry::GaugeSamples()> collect_;
};

}  // namespace

// --- Counter, Gauge, Histogram ---

void Counter::Inc() { value_.fetch_add(1.0, std::memory_order_relaxed); }

Status Counter::Add(double delta) {
  if (std::isnan(delta) || delta < 0) {
    return InvalidArgumentError("a counter cannot be increased by {}", delta);
  }
  value_.fetch_add(delta, std::memory_order_relaxed);
  return OkStatus();
}

double Counter::Value() const { return value_.load(std::memory_order_relaxed); }

void Gauge::Set(double value) { value_.store(value, std::memory_order_relaxed); }
void Gauge::Inc() { value_.fetch_add(1.0, std::memory_order_relaxed); }
void Gauge::Dec() { value_.fetch_sub(1.0, std::memory_order_relaxed); }
void Gauge::Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
double Gauge::Value() const { return value_.load(std::memory_order_relaxed); }

Histogram::Histogram(metrics_internal::SeriesKey /*key*/,
                     std::shared_ptr<const std::vector<double>> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_->size() + 1) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const std::vector<double>& bounds = *upper_bounds_;
  // The first bound >= value; bounds.size() (the +Inf bucket) when there is none.
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative_counts.reserve(counts_.size());
  std::uint64_t total = 0;
  for (const auto& count : counts_) {
    total += count.load(std::memory_order_relaxed);
    snapshot.cumulative_counts.push_back(total);
  }
  snapshot.count = total;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

// --- Family ---

template <typename M>
Family<M>::Family(metrics_internal::FamilyKey /*key*/, std::string name, std::string help,
                  std::vector<std::string> label_names,
                  std::shared_ptr<const std::vector<double>> upper_bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      upper_bounds_(std::move(upper_bounds)) {}

template <typename M>
Family<M>::~Family() = default;

template <typename M>
std::unique_ptr<M> Family<M>::NewSeries() const {
  if constexpr (std::is_same_v<M, Histogram>) {
    return std::make_unique<Histogram>(metrics_internal::SeriesKey(), upper_bounds_);
  } else {
    return std::make_unique<M>();
  }
}

template <typename M>
Result<M*> Family<M>::GetWithLabels(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    return InvalidArgumentError("{}", ArityError(name_, label_names_.size(), values.size()));
  }
  LabelValues key = SanitizeLabelValues(values);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(key);
  if (it == series_.end()) {
    it = series_.emplace(std::move(key), NewSeries()).first;
  }
  return it->second.get();
}

template <typename M>
M& Family<M>::WithLabels(const LabelValues& values) {
  Result<M*> series = GetWithLabels(values);
  if (!series.ok()) {
    // A programming error (the arity is fixed in the calling code), like an index out of range.
    fmt::print(stderr, "FATAL: common::metrics::Family::WithLabels: {}\n",
               series.status().message());
    std::abort();
  }
  return **series;
}

template <typename M>
Status Family<M>::Remove(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    return InvalidArgumentError("{}", ArityError(name_, label_names_.size(), values.size()));
  }
  const LabelValues key = SanitizeLabelValues(values);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(key);
  if (it != series_.end()) {
    retired_.push_back(std::move(it->second));
    series_.erase(it);
  }
  return OkStatus();
}

template <typename M>
void Family<M>::RemoveAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [values, series] : series_) retired_.push_back(std::move(series));
  series_.clear();
}

template <typename M>
void Family<M>::RemoveIf(const std::function<bool(const LabelValues&)>& drop) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    if (drop(it->first)) {
      retired_.push_back(std::move(it->second));
      it = series_.erase(it);
    } else {
      ++it;
    }
  }
}

template <typename M>
void Family<M>::AppendTo(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.empty()) return;
  AppendHeader(name_, help_, TypeName<M>(), out);
  for (const auto& [values, series] : series_) {
    if constexpr (std::is_same_v<M, Histogram>) {
      const Histogram::Snapshot snapshot = series->Read();
      const std::string bucket_name = name_ + "_bucket";
      std::string le;
      for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
        le.clear();
        if (i < upper_bounds_->size()) {
          AppendValue((*upper_bounds_)[i], &le);
        } else {
          le = "+Inf";
        }
        AppendSample(bucket_name, label_names_, values, &le,
                     static_cast<double>(snapshot.cumulative_counts[i]), out);
      }
      AppendSample(name_ + "_sum", label_names_, values, nullptr, snapshot.sum, out);
      AppendSample(name_ + "_count", label_names_, values, nullptr,
                   static_cast<double>(snapshot.count), out);
    } else {
      AppendSample(name_, label_names_, values, nullptr, series->Value(), out);
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Buckets ---

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Result<std::vector<double>> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !std::isfinite(start) || !(factor > 1) || !std::isfinite(factor) ||
      count < 1) {
    return InvalidArgumentError(
        "exponential buckets need start > 0, factor > 1 and count >= 1; got start {}, factor {}, "
        "count {}",
        start, factor, count);
  }
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  double bound = start;
  for (int i = 0; i < count; ++i) {
    if (!std::isfinite(bound)) {
      return InvalidArgumentError("exponential bucket {} of {} (start {}, factor {}) overflows", i,
                                  count, start, factor);
    }
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

Result<std::vector<double>> LinearBuckets(double start, double width, int count) {
  if (!std::isfinite(start) || !(width > 0) || !std::isfinite(width) || count < 1) {
    return InvalidArgumentError(
        "linear buckets need a finite start, width > 0 and count >= 1; got start {}, width {}, "
        "count {}",
        start, width, count);
  }
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const double bound = start + width * i;
    if (!std::isfinite(bound) || (!bounds.empty() && !(bounds.back() < bound))) {
      return InvalidArgumentError(
          "linear bucket {} of {} (start {}, width {}) overflows or does not increase", i, count,
          start, width);
    }
    bounds.push_back(bound);
  }
  return bounds;
}

// --- Registry ---

Registry::Registry() = default;
Registry::~Registry() = default;

Status Registry::Register(std::string_view name, const std::vector<std::string>& sample_names,
                          std::unique_ptr<metrics_internal::Collectable> family) {
  std::lock_guard<std::mutex> lock(mu_);
  if (families_.contains(name)) {
    return AlreadyExistsError("metric {} is already registered", name);
  }
  if (taken_names_.contains(name)) {
    return AlreadyExistsError("metric {} clashes with a sample name of a registered histogram",
                              name);
  }
  for (const std::string& sample : sample_names) {
    if (taken_names_.contains(sample)) {
      return AlreadyExistsError("metric {} would expose samples named {}, which is already taken",
                                name, sample);
    }
  }
  taken_names_.emplace(name);
  taken_names_.insert(sample_names.begin(), sample_names.end());
  families_.emplace(std::string(name), std::move(family));
  return OkStatus();
}

template <typename M>
Result<Family<M>*> Registry::AddFamily(std::string_view name, std::string_view help,
                                       std::vector<std::string> label_names,
                                       std::shared_ptr<const std::vector<double>> upper_bounds) {
  constexpr bool kIsHistogram = std::is_same_v<M, Histogram>;
  RETURN_IF_ERROR(ValidateMetricName(name));
  RETURN_IF_ERROR(ValidateLabelNames(name, label_names, kIsHistogram));
  std::vector<std::string> sample_names;
  if constexpr (kIsHistogram) {
    sample_names = {fmt::format("{}_bucket", name), fmt::format("{}_sum", name),
                    fmt::format("{}_count", name)};
  }
  auto family = std::make_unique<Family<M>>(metrics_internal::FamilyKey(), std::string(name),
                                            text::SanitizeUtf8(help), std::move(label_names),
                                            std::move(upper_bounds));
  Family<M>* raw = family.get();
  RETURN_IF_ERROR(Register(name, sample_names, std::move(family)));
  return raw;
}

Result<CounterFamily*> Registry::AddCounter(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names) {
  return AddFamily<Counter>(name, help, std::move(label_names), nullptr);
}

Result<Counter*> Registry::AddCounter(std::string_view name, std::string_view help) {
  ASSIGN_OR_RETURN(CounterFamily * family, AddCounter(name, help, {}));
  return family->GetWithLabels({});
}

Result<GaugeFamily*> Registry::AddGauge(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return AddFamily<Gauge>(name, help, std::move(label_names), nullptr);
}

Result<Gauge*> Registry::AddGauge(std::string_view name, std::string_view help) {
  ASSIGN_OR_RETURN(GaugeFamily * family, AddGauge(name, help, {}));
  return family->GetWithLabels({});
}

Status Registry::AddCallbackGauge(std::string_view name, std::string_view help,
                                  std::function<double()> callback) {
  RETURN_IF_ERROR(ValidateMetricName(name));
  if (!callback) {
    return InvalidArgumentError("metric {}: the callback is empty", name);
  }
  return Register(name, {},
                  std::make_unique<CallbackGauge>(std::string(name), text::SanitizeUtf8(help),
                                                  std::move(callback)));
}

Status Registry::AddCallbackGaugeFamily(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names,
                                        std::function<GaugeSamples()> collect) {
  RETURN_IF_ERROR(ValidateMetricName(name));
  RETURN_IF_ERROR(ValidateLabelNames(name, label_names, /*is_histogram=*/false));
  if (!collect) {
    return InvalidArgumentError("metric {}: the callback is empty", name);
  }
  return Register(
      name, {},
      std::make_unique<CallbackGaugeFamily>(std::string(name), text::SanitizeUtf8(help),
                                            std::move(label_names), std::move(collect)));
}

Result<HistogramFamily*> Registry::AddHistogram(std::string_view name, std::string_view help,
                                                std::vector<double> upper_bounds,
                                                std::vector<std::string> label_names) {
  RETURN_IF_ERROR(ValidateMetricName(name));
  ASSIGN_OR_RETURN(std::vector<double> bounds, NormalizeBuckets(name, std::move(upper_bounds)));
  return AddFamily<Histogram>(name, help, std::move(label_names),
                              std::make_shared<const std::vector<double>>(std::move(bounds)));
}

Result<Histogram*> Registry::AddHistogram(std::string_view name, std::string_view help,
                                          std::vector<double> upper_bounds) {
  ASSIGN_OR_RETURN(HistogramFamily * family, AddHistogram(name, help, std::move(upper_bounds), {}));
  return family->GetWithLabels({});
}

std::string Registry::Expose() const {
  // Families are never removed, so the pointers stay valid after the lock is released; rendering
  // without it lets callbacks use the registry and keeps registration from waiting on a scrape.
  std::vector<const metrics_internal::Collectable*> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::string out;
  for (const metrics_internal::Collectable* family : families) family->AppendTo(&out);
  return out;
}

}  // namespace common::metrics
