// Prometheus metrics of the operator (docs/design.md §9), registered on the runtime's registry:
// volumes by phase, members by state, degraded volumes, seconds each member has been missing (to
// alert before the replacement timeout), sync ratio, replacement/relocation/expansion counters,
// reconcile durations and errors, placement failures and API write latency. The leader gauge is
// registered by main.
//
// Thread contract: every method is thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace meshstor_operator {

class OperatorMetrics {
  struct Private {};

 public:
  // Use Create().
  explicit OperatorMetrics(Private) {}

  // Registers every family; AlreadyExists/InvalidArgument from the registry.
  static common::Result<std::unique_ptr<OperatorMetrics>> Create(
      common::metrics::Registry& registry);

  void ReconcileDone(std::chrono::duration<double> took, bool failed);
  void PlacementFailed() { placement_failures_->Inc(); }
  void ReplacementStarted() { replacements_->Inc(); }
  void RelocationStarted() { relocations_->Inc(); }
  void ExpansionStarted() { expansions_->Inc(); }
  void ApiRequest(const std::string& verb, std::chrono::duration<double> took);

  // Recomputes the per-volume gauges from the whole set of volumes.
  void Refresh(
      const std::vector<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>>& volumes,
      std::chrono::system_clock::time_point now);

 private:
  common::metrics::GaugeFamily* volumes_by_phase_ = nullptr;
  common::metrics::GaugeFamily* members_by_state_ = nullptr;
  common::metrics::Gauge* degraded_volumes_ = nullptr;
  common::metrics::GaugeFamily* missing_seconds_ = nullptr;
  common::metrics::GaugeFamily* sync_ratio_ = nullptr;
  common::metrics::Counter* replacements_ = nullptr;
  common::metrics::Counter* relocations_ = nullptr;
  common::metrics::Counter* expansions_ = nullptr;
  common::metrics::Counter* placement_failures_ = nullptr;
  common::metrics::Counter* reconcile_errors_ = nullptr;
  common::metrics::Histogram* reconcile_duration_ = nullptr;
  common::metrics::HistogramFamily* api_latency_ = nullptr;

  std::mutex mu_;
  std::set<common::metrics::LabelValues> missing_series_;  // guarded by mu_
  std::set<common::metrics::LabelValues> sync_series_;     // guarded by mu_
};

}  // namespace meshstor_operator
