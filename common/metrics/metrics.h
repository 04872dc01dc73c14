// Prometheus metrics: counters, gauges and histograms, grouped in labelled families and held by a
// Registry that renders them in the Prometheus text exposition format, version 0.0.4.
//
//   common::metrics::Registry registry;
//   ASSIGN_OR_RETURN(common::metrics::CounterFamily * errors,
//                    registry.AddCounter("meshstor_reconcile_errors_total",
//                                        "Reconcile passes that failed", {"controller"}));
//   errors->WithLabels({"volume"}).Inc();
//   ASSIGN_OR_RETURN(common::metrics::Gauge * queue_depth,
//                    registry.AddGauge("meshstor_workqueue_depth", "Keys waiting in the queue"));
//   queue_depth->Set(3);
//   std::string text = registry.Expose();  // served on GET /metrics
//
// Registration (Registry::Add*) is a startup path: it validates names, labels and buckets and
// returns an error Status, so a binary can refuse to start with a clear message.
//
// Thread contract: every method of every class in this file may be called from any thread at any
// time. Updating a series (Inc, Add, Set, Observe) is lock-free: the values are atomics. Looking a
// series up by its label values takes a mutex of its family; Expose() takes each family's mutex in
// turn and never holds the registry's mutex while rendering or while running callbacks.
//
// Lifetime: the Registry owns every family and every series. A pointer or reference returned by
// a Registry or Family method stays valid until the Registry is destroyed, even after the series
// is removed from its family (see Family::Remove).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status/status.h"

namespace common::metrics {

// The values of a family's labels, in the order of its label names.
using LabelValues = std::vector<std::string>;

class Registry;
template <typename M>
class Family;

namespace metrics_internal {

// What the Registry renders; implemented by Family<M> and by callback gauges.
class Collectable {
 public:
  virtual ~Collectable() = default;

 private:
  friend class ::common::metrics::Registry;
  // Appends this family's HELP, TYPE and sample lines to `out`. Nothing when it has no series.
  virtual void AppendTo(std::string* out) const = 0;
};

// Lets only the Registry construct families, while the constructor stays usable by make_unique.
class FamilyKey {
 private:
  friend class ::common::metrics::Registry;
  FamilyKey() = default;
};

// Lets only a Family construct histograms (whose bounds the Registry has checked).
class SeriesKey {
 private:
  template <typename M>
  friend class ::common::metrics::Family;
  SeriesKey() = default;
};

}  // namespace metrics_internal

// A value that only goes up (it restarts at zero with the process).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds 1.
  void Inc();

  // Adds `delta`. Returns InvalidArgument, leaving the counter unchanged, when `delta` is negative
  // or NaN (a counter never decreases, and a NaN would stay forever). +Inf is accepted.
  Status Add(double delta);

  double Value() const;

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Any double, including NaN and infinities, is accepted.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value);
  // Adds 1.
  void Inc();
  // Subtracts 1.
  void Dec();
  // Adds `delta`, which may be negative.
  void Add(double delta);

  double Value() const;

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted in buckets of fixed upper bounds. Created only by a Registry, which checks
// the bounds.
class Histogram {
 public:
  // A consistent copy of the histogram's state.
  struct Snapshot {
    // cumulative_counts[i] counts observations <= upper_bounds()[i]; the extra last element
    // counts every observation (the "+Inf" bucket) and equals `count`.
    std::vector<std::uint64_t> cumulative_counts;
    double sum = 0.0;
    std::uint64_t count = 0;
  };

  // Used by Family only (the key cannot be made elsewhere). `upper_bounds` is valid (checked).
  Histogram(metrics_internal::SeriesKey key,
            std::shared_ptr<const std::vector<double>> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` in the first bucket whose upper bound is >= value and adds it to the sum. NaN
  // is dropped (it would turn the sum into NaN for the rest of the process).
  void Observe(double value);

  // The finite upper bounds, strictly increasing; the implicit "+Inf" bucket is not listed.
  const std::vector<double>& upper_bounds() const { return *upper_bounds_; }

  // The bucket counts are read one by one while observations may still arrive, so `sum` may miss
  // or include an observation that the counts do not; `count` always equals the "+Inf" bucket.
  Snapshot Read() const;

 private:
  std::shared_ptr<const std::vector<double>> upper_bounds_;
  // Non-cumulative: counts_[i] for bucket i, counts_.back() for values above every bound.
  std::vector<std::atomic<std::uint64_t>> counts_;
  std::atomic<double> sum_{0.0};
};

// All series of one metric name, one series per distinct set of label values. M is Counter,
// Gauge or Histogram. Series are created on first use, starting at zero, and rendered sorted by
// their label values.
template <typename M>
class Family final : public metrics_internal::Collectable {
 public:
  // Used by Registry only (the key cannot be made elsewhere).
  Family(metrics_internal::FamilyKey key, std::string name, std::string help,
         std::vector<std::string> label_names,
         std::shared_ptr<const std::vector<double>> upper_bounds);
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;
  ~Family() override;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // The series for `values`, created at zero on first use. Returns InvalidArgument when the number
  // of values differs from the number of label names. Label values may be any string; bytes that
  // are not valid UTF-8 are replaced by U+FFFD (Prometheus rejects a scrape that holds them), so
  // two values that differ only in invalid bytes share a series. The pointer is never null and
  // stays valid for the Registry's lifetime.
  Result<M*> GetWithLabels(const LabelValues& values);

  // As GetWithLabels, for label values whose number is fixed in the calling code:
  // `family.WithLabels({"volume"}).Inc()`. REQUIRES: values.size() == label_names().size();
  // otherwise this is a programming error and the process aborts with a message naming the family
  // (use GetWithLabels when the values come from elsewhere).
  M& WithLabels(const LabelValues& values);

  // Removes the series for `values`, so that it is no longer exposed (for example when the volume
  // it describes is deleted). Idempotent: OK when no such series exists. Returns InvalidArgument
  // when the number of values is wrong. The removed series is retired, not freed, so pointers to
  // it held elsewhere stay valid; updates through them are no longer exposed, and a later
  // GetWithLabels for the same values starts a new series at zero. Each retired series keeps its
  // memory (some tens of bytes plus its label values) until the Registry is destroyed.
  Status Remove(const LabelValues& values);

  // Removes every series, as Remove does for each.
  void RemoveAll();

  // Removes, as Remove does, every series whose (sanitized) label values `drop` returns true for.
  // For callers that recompute a family from scratch: they need not keep their own copy of every
  // label set they exposed to find the ones to remove. `drop` runs with the family locked and
  // must not use it.
  void RemoveIf(const std::function<bool(const LabelValues&)>& drop);

 private:
  void AppendTo(std::string* out) const override;
  std::unique_ptr<M> NewSeries() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  // Histogram families only; null otherwise.
  const std::shared_ptr<const std::vector<double>> upper_bounds_;

  mutable std::mutex mu_;
  std::map<LabelValues, std::unique_ptr<M>> series_;  // Guarded by mu_.
  std::vector<std::unique_ptr<M>> retired_;           // Guarded by mu_.
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// The upper bounds Prometheus client libraries use by default, in seconds:
// .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> DefaultBuckets();

// `count` bounds: start, start*factor, start*factor^2, ... Returns InvalidArgument unless
// start > 0, factor > 1 and count >= 1, or when the last bound would be infinite.
Result<std::vector<double>> ExponentialBuckets(double start, double factor, int count);

// `count` bounds: start, start+width, start+2*width, ... Returns InvalidArgument unless
// width > 0 and count >= 1, or when a bound is not finite.
Result<std::vector<double>> LinearBuckets(double start, double width, int count);

// Holds metric families and renders them. Not copyable or movable: families point into it.
//
// Every Add* method validates before registering anything, and on error the registry is
// unchanged. Errors:
//   InvalidArgument: the metric name does not match [a-zA-Z_:][a-zA-Z0-9_:]*; a label name does
//     not match [a-zA-Z_][a-zA-Z0-9_]* or starts with "__"; a label name repeats; a histogram
//     uses the reserved label name "le"; histogram bounds are not finite and strictly increasing
//     (a trailing +Inf is accepted and dropped, since that bucket always exists); a callback is
//     empty.
//   AlreadyExists: the name is taken by another family, or one of the sample names the new family
//     renders (name_bucket, name_sum, name_count for a histogram) clashes with another family's.
// HELP text may be any string; bytes that are not valid UTF-8 are replaced by U+FFFD.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // A counter family with the given label names (possibly none).
  Result<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names);
  // An unlabelled counter, exposed at zero from now on.
  Result<Counter*> AddCounter(std::string_view name, std::string_view help);

  // A gauge family with the given label names (possibly none).
  Result<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names);
  // An unlabelled gauge, exposed at zero from now on.
  Result<Gauge*> AddGauge(std::string_view name, std::string_view help);

  // An unlabelled gauge whose value `callback` computes at each Expose(). The callback runs on the
  // scraping thread without any registry lock held (so it may use other metrics); it must be
  // thread-safe and quick. If it throws, the gauge is rendered as NaN for that scrape.
  Status AddCallbackGauge(std::string_view name, std::string_view help,
                          std::function<double()> callback);

  // A labelled gauge family whose series `collect` computes at each Expose(), for series derived
  // from data the caller already holds (one per object of a cache, say): nothing is stored per
  // series between scrapes. `collect` returns (label values, value) pairs; they are rendered as a
  // GaugeFamily's would be (values repaired to UTF-8, sorted by label values; of pairs with the
  // same label values the last one counts), and nothing when it returns none. It runs on the
  // scraping thread without any registry lock held; it must be thread-safe. If it throws, or a
  // pair has the wrong number of label values, the family is left out of that scrape.
  using GaugeSamples = std::vector<std::pair<LabelValues, double>>;
  Status AddCallbackGaugeFamily(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names,
                                std::function<GaugeSamples()> collect);

  // A histogram family with the given bucket upper bounds and label names (possibly none).
  Result<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                        std::vector<double> upper_bounds,
                                        std::vector<std::string> label_names);
  // An unlabelled histogram, exposed with zero counts from now on.
  Result<Histogram*> AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> upper_bounds);

  // Renders every family in the text exposition format 0.0.4, families sorted by name, series
  // sorted by label values: "# HELP" and "# TYPE" once per family, then one line per sample.
  // Families without any series are left out. Served with the content type
  // "text/plain; version=0.0.4; charset=utf-8".
  std::string Expose() const;

 private:
  Status Register(std::string_view name, const std::vector<std::string>& sample_names,
                  std::unique_ptr<metrics_internal::Collectable> family);
  template <typename M>
  Result<Family<M>*> AddFamily(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names,
                               std::shared_ptr<const std::vector<double>> upper_bounds);

  mutable std::mutex mu_;
  // Keyed by family name, so Expose() renders in name order. Families are never removed.
  std::map<std::string, std::unique_ptr<metrics_internal::Collectable>, std::less<>>
      families_;                                    // Guarded by mu_.
  std::set<std::string, std::less<>> taken_names_;  // Guarded by mu_.
};

}  // namespace common::metrics
