// Agent: the node agent's control loop. It watches MeshStorVolume and MeshStorNodeDevice
// objects (informers), and runs one pass — inventory, every volume that involves this node,
// node-wide garbage collection — whenever a watched object, a kernel uevent or an MD event
// (/proc/mdstat POLLPRI: a member failed, was removed or added) says something changed, and at
// least every `resync` (10 s). Passes run one at a time on one thread: the
// kernel layer's subsystems, controllers and arrays are shared between volumes.
//
// Every write is a status (or, for formattedAt, spec) update of a freshly read object guarded
// by its resourceVersion, retried on conflict, carrying only the fields this agent owns
// (ApplyOutcome). Nothing is kept between passes except what the kernel and the API hold.
//
// Thread contract: Start/Stop from one thread; Pass() may be called directly (tests) when the
// loop is not running; metrics are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/inventory.h"
#include "agent/sys/md_events.h"
#include "agent/sys/uevents.h"
#include "agent/volume.h"
#include "common/api/v1alpha1/types.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/log/repeats.h"
#include "common/metrics/metrics.h"
#include "common/time/clock.h"

namespace agent {

struct AgentConfig {
  AgentSettings settings;
  std::chrono::milliseconds resync{std::chrono::seconds(10)};
  std::chrono::seconds inventory_refresh{30};
  bool simulated = false;  // in-memory kernel layer: marked in logs and metrics
  // Held during each pass when set: agents of one simulated cluster take turns.
  std::mutex* pass_mutex = nullptr;
};

// The agent's metric families, registered once per process. Every series carries the agent's
// node (label "node"), so the agents of a simulated cluster, which share one process and one
// /metrics, each keep their own series.
struct AgentMetrics {
  // AlreadyExists when the registry has them already.
  static common::Result<std::unique_ptr<AgentMetrics>> Register(common::metrics::Registry& registry,
                                                                bool simulated);

  common::metrics::CounterFamily* passes = nullptr;          // {node}
  common::metrics::CounterFamily* step_errors = nullptr;     // {node}
  common::metrics::HistogramFamily* pass_seconds = nullptr;  // {node}
  common::metrics::GaugeFamily* array_degraded = nullptr;    // {node, volume}
  common::metrics::GaugeFamily* array_sync_ratio = nullptr;  // {node, volume}
  common::metrics::GaugeFamily* array_io = nullptr;          // {node, volume, direction, unit}
  common::metrics::GaugeFamily* partitions = nullptr;        // {node, class}
  common::metrics::GaugeFamily* controllers = nullptr;       // {node, state}
  common::metrics::GaugeFamily* drive_size = nullptr;        // {node, drive}
  common::metrics::GaugeFamily* drive_free = nullptr;        // {node, drive}
};

class Agent {
 public:
  // `client`, the kernel layer, `uevents` (may be null), `clock`, `metrics` (may be null) and
  // `md_events` (may be null) must outlive the agent.
  Agent(common::kube::Client& client, NodeKernel kernel, sys::UeventSource* uevents,
        AgentConfig config, common::time::Clock& clock, AgentMetrics* metrics,
        sys::MdEventSource* md_events = nullptr);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Starts the informers; the loop starts once they have synced (Run waits for it).
  common::Status Start();
  // Waits up to `timeout` for the informers' first list.
  bool WaitForSync(std::chrono::milliseconds timeout);
  // Starts the loop, the uevent thread and the MD event thread (after WaitForSync).
  void Run();
  void Stop();
  // Asks for a pass as soon as possible (coalesced).
  void Wake();

  // Asks the loop to end without waiting for it; a pass that has not begun will not. Stop() waits.
  // With many agents in one process (--simulate), ask all of them first, then Stop() each.
  void RequestStop();

  // One pass. Returns the first error of the pass (the pass goes on after errors).
  common::Status Pass();

  int64_t passes() const { return passes_.load(); }

 private:
  // Applies what a pass observed to the volume's status (and formattedAt), starting from the
  // informer's copy; re-reads the object only after a conflict.
  common::Status WriteOutcome(const common::api::v1alpha1::MeshStorVolume& cached,
                              const VolumeOutcome& outcome);
  Peers PeersFromDevices(const std::vector<common::api::v1alpha1::MeshStorNodeDevice>& devices);
  void Loop();
  void UeventLoop();
  void MdEventLoop();
  void UpdateMetrics(const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes,
                     const std::vector<DriveSnapshot>& drives);
  // Size and biggest free extent of each local drive (only after the drives were listed).
  void UpdateDriveMetrics(const std::vector<DriveSnapshot>& drives);

  common::kube::Client& client_;
  NodeKernel kernel_;
  sys::UeventSource* uevents_;
  sys::MdEventSource* md_events_;
  AgentConfig config_;
  common::time::Clock& clock_;
  VolumeReconciler reconciler_;
  Inventory inventory_;
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorVolume>> volumes_;
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>> devices_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;      // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread loop_;
  std::thread uevent_thread_;
  std::thread md_event_thread_;
  std::atomic<int64_t> passes_{0};

  AgentMetrics* metrics_;
  // This agent's series with a volume or state label, as last exposed: removed when they go.
  std::set<std::string> array_volumes_;
  static constexpr std::chrono::seconds kRepeatedErrorInterval{300};
  std::mutex repeats_mu_;
  common::log::RepeatFilter repeated_errors_{kRepeatedErrorInterval};  // guarded by repeats_mu_
  std::set<std::string> controller_states_;
  std::set<std::string> drive_names_;
};

}  // namespace agent
