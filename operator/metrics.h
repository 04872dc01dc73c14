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

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/compress/shared_name.h"
#include "common/compress/slab_pool.h"
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

  // Follows one volume (an informer event: `volume` is its newest version, null once it is
  // deleted). Keeps only what the gauges need of it (~0.2 KiB), not the object.
  void VolumeChanged(const std::string& name, const common::api::v1alpha1::MeshStorVolume* volume);

  // Recomputes the gauges over every volume from what VolumeChanged kept (O(volumes): the runner
  // calls it on a timer, not per change). True when a gauge depends on `now` (a member missing),
  // so a later refresh changes it even if no volume changes. The per-volume gauges (sync ratio,
  // missing timeout) are rendered from the kept summaries at each scrape.
  bool Refresh(std::chrono::system_clock::time_point now);

  // Follows one MeshStorNodeDevice change (an informer event: `new_obj` null on deletion) and
  // sets meshstor_operator_agent_last_report_timestamp_seconds of its node to the newest
  // status.updatedAt among the node's drives; a node without drives loses its series.
  void NodeDeviceChanged(const common::api::v1alpha1::MeshStorNodeDevice* old_obj,
                         const common::api::v1alpha1::MeshStorNodeDevice* new_obj);

 private:
  // What the gauges need of one volume (32 bytes).
  struct VolumeSummary {
    static constexpr int kNoPhase = -1;
    int8_t phase = kNoPhase;  // v1::VolumePhase
    bool degraded = false;
    bool waiting = false;  // status.startBlocked
    // Present members by reported partition state (v1::PartitionState), the last: unreported.
    std::array<uint8_t, 10> states{};
    int32_t missing_timeout = 0;
    double sync_ratio = -1;  // < 0: none
  };
  // A present member Missing or Faulty: index, node, since when.
  using MissingMember = std::tuple<int, std::string, std::chrono::system_clock::time_point>;
  // The summaries by volume name. Shared with the registry's callbacks, which may outlive this
  // object.
  struct Summaries {
    std::mutex mu;
    // Names (interned, shared with the informer's cache) and nodes in the slab pool: made by the
    // volume watch thread, they would otherwise lie among its short-lived allocations
    // (compress/slab_pool.h).
    std::map<common::compress::SharedName, VolumeSummary, common::compress::NameLess,
             common::compress::SlabAllocator<
                 std::pair<const common::compress::SharedName, VolumeSummary>>>
        volumes;  // guarded by mu
    // Only volumes with a member Missing or Faulty, usually none.
    std::map<std::string, std::vector<MissingMember>, std::less<>> missing;  // guarded by mu
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
  const std::shared_ptr<Summaries> summaries_ = std::make_shared<Summaries>();
  // Drive object name → (node, status.updatedAt).
  std::map<std::string, std::pair<std::string, std::optional<common::api::Time>>>
      drives_;  // guarded by mu_
};

}  // namespace meshstor_operator
