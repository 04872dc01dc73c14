// Prometheus metrics of the operator (docs/design.md §9), registered on the runtime's registry:
// volumes by phase, members by state, degraded volumes, volumes whose array waits for an in-sync
// member (status.startBlocked), seconds each member has been missing (to
// alert before the replacement timeout) and each volume's memberMissingTimeout, sync ratio,
// replacement/relocation/expansion counters, reconcile durations and errors, placement failures
// and durations (the decision of a pass that placed members, in-process, without API writes),
// API write latency and, per node, when its agent last reported (the newest status.updatedAt of
// the node's MeshStorNodeDevices). The leader gauge is registered by main.
//
// Thread contract: every method is thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace meshstor_operator {

// Upper bounds (seconds) of the placement histograms: fine around the 1 ms target (issue 16), so
// a p99 near it can be read, then coarse up to 1 s.
std::vector<double> PlacementBuckets();

// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
std::chrono::nanoseconds ThreadCpuTime();

class OperatorMetrics {
  struct Private {};

 public:
  // Use Create().
  explicit OperatorMetrics(Private) {}

  // Registers every family; AlreadyExists/InvalidArgument from the registry.
  static common::Result<std::unique_ptr<OperatorMetrics>> Create(
      common::metrics::Registry& registry);

  void ReconcileDone(std::chrono::duration<double> took, bool failed);
  // One decision that ran placement (members placed, or placement failed): how long Decide took.
  // `cpu`: the CPU time the deciding thread used meanwhile (CLOCK_THREAD_CPUTIME_ID), so time
  // spent preempted on a loaded machine shows as the difference between the two histograms.
  void PlacementDone(std::chrono::duration<double> took, std::chrono::duration<double> cpu) {
    placement_duration_->Observe(took.count());
    placement_cpu_->Observe(cpu.count());
  }
  void PlacementFailed() { placement_failures_->Inc(); }
  void ReplacementStarted() { replacements_->Inc(); }
  void RelocationStarted() { relocations_->Inc(); }
  void ExpansionStarted() { expansions_->Inc(); }
  void ApiRequest(const std::string& verb, std::chrono::duration<double> took);

  // Recomputes the per-volume gauges from the whole set of volumes (O(volumes): the runner calls
  // it on a timer, not per pass). True when a gauge depends on `now` (a member missing), so a
  // later refresh changes it even if no volume changes.
  // The per-volume gauges are rendered from `volumes` at each scrape until the next Refresh.
  bool Refresh(std::vector<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>> volumes,
               std::chrono::system_clock::time_point now);

  // Follows one MeshStorNodeDevice change (an informer event: `new_obj` null on deletion) and
  // sets meshstor_operator_agent_last_report_timestamp_seconds of its node to the newest
  // status.updatedAt among the node's drives; a node without drives loses its series.
  void NodeDeviceChanged(const common::api::v1alpha1::MeshStorNodeDevice* old_obj,
                         const common::api::v1alpha1::MeshStorNodeDevice* new_obj);

 private:
  using VolumeList = std::vector<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>>;
  // The volumes of the last Refresh: meshstor_operator_volume_sync_ratio and
  // meshstor_operator_member_missing_timeout_seconds (one series per volume) are rendered from
  // them at each scrape instead of being kept as series (~0.4 KiB per volume). Shared with the
  // registry's callbacks, which may outlive this object.
  struct LastVolumes {
    std::mutex mu;
    std::shared_ptr<const VolumeList> volumes = std::make_shared<const VolumeList>();  // by mu

    std::shared_ptr<const VolumeList> Get() {
      std::lock_guard<std::mutex> lock(mu);
      return volumes;
    }
  };

  common::metrics::GaugeFamily* volumes_by_phase_ = nullptr;
  common::metrics::GaugeFamily* members_by_state_ = nullptr;
  common::metrics::Gauge* degraded_volumes_ = nullptr;
  common::metrics::Gauge* waiting_for_member_ = nullptr;
  common::metrics::GaugeFamily* missing_seconds_ = nullptr;
  common::metrics::GaugeFamily* agent_last_report_ = nullptr;
  common::metrics::Counter* replacements_ = nullptr;
  common::metrics::Counter* relocations_ = nullptr;
  common::metrics::Counter* expansions_ = nullptr;
  common::metrics::Counter* placement_failures_ = nullptr;
  common::metrics::Counter* reconcile_errors_ = nullptr;
  common::metrics::Histogram* reconcile_duration_ = nullptr;
  common::metrics::Histogram* placement_duration_ = nullptr;
  common::metrics::Histogram* placement_cpu_ = nullptr;
  common::metrics::HistogramFamily* api_latency_ = nullptr;

  std::mutex mu_;
  const std::shared_ptr<LastVolumes> last_volumes_ = std::make_shared<LastVolumes>();
  // Drive object name → (node, status.updatedAt).
  std::map<std::string, std::pair<std::string, std::optional<common::api::Time>>>
      drives_;  // guarded by mu_
};

}  // namespace meshstor_operator
