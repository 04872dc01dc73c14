// Agent: the node agent's control loop. It watches MeshStorVolume and MeshStorNodeDevice
// objects (informers; the volumes filed by node in a VolumeIndex), and runs one pass — inventory,
// every volume that involves this node, node-wide garbage collection — whenever a watched object
// says something changed that a pass of this node uses (a volume that involves it; another node's
// host NQN or address, not its heartbeat), a kernel uevent or an MD event (/proc/mdstat POLLPRI: a
// member failed, was removed or added) says so, and at least every `resync` (10 s). Passes run one
// at a time: the kernel layer's subsystems, controllers and arrays are shared between volumes.
//
// The loop is a Boost.Asio io_context (one per process, AgentConfig::io): each pass is a handler
// on the agent's pass strand, the resync is a steady_timer, the uevent socket and the MD event
// descriptor are waited on as posix::stream_descriptors, and wake-ups (informer handlers, events)
// are posts that coalesce: any number of them before a pass begins make one pass.
//
// Every write is a status (or, for formattedAt, spec) update of a freshly read object guarded
// by its resourceVersion, retried on conflict, carrying only the fields this agent owns
// (ApplyOutcome). Nothing is kept between passes except what the kernel and the API hold.
//
// Thread contract: Start/Run/Stop from one thread; RequestStop and Wake from any thread; Pass()
// may be called directly (tests) when the loop is not running; metrics are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "agent/host_cache.h"
#include "agent/inventory.h"
#include "agent/md_cache.h"
#include "agent/nvmet_cache.h"
#include "agent/partition_cache.h"
#include "agent/sys/md_events.h"
#include "agent/sys/uevents.h"
#include "agent/volume.h"
#include "agent/volume_index.h"
#include "common/api/v1alpha1/types.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/log/repeats.h"
#include "common/metrics/metrics.h"
#include "common/time/clock.h"

namespace agent {

using PassStrand = boost::asio::strand<boost::asio::io_context::executor_type>;

struct AgentConfig {
  AgentSettings settings;
  // Steady time: the resync timer is an Asio steady_timer, not the agent's Clock.
  std::chrono::milliseconds resync{std::chrono::seconds(10)};
  std::chrono::seconds inventory_refresh{30};
  bool simulated = false;  // in-memory kernel layer: marked in logs and metrics
  // The process's event loop, run by the caller (on two threads or more, so that events and
  // signals are served while a pass runs). Null: the agent runs its own on two threads (Run()).
  boost::asio::io_context* io = nullptr;
  // A strand of `io` on which the passes run; agents given the same one take turns (the agents
  // of one simulated cluster share their kernel model). Unset: a strand of the agent's own.
  std::optional<PassStrand> pass_strand;
  // Informers shared by the agents of one process (--simulate N: one list and one watch per
  // resource instead of N, one cached copy of each object instead of N), the volumes' through
  // their index (one for all the agents, on the informer). Both or neither. The caller starts
  // the informers after constructing the agents (each adds its handler or subscription) and
  // stops them after stopping every agent, before destroying any. Null: the agent runs its own.
  VolumeIndex* shared_volumes = nullptr;
  common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>* shared_devices = nullptr;
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

  // Starts the agent's own informers (not shared ones); the loop starts once they have synced
  // (Run waits for it).
  common::Status Start();
  // Waits up to `timeout` for the informers' first list.
  bool WaitForSync(std::chrono::milliseconds timeout);
  // Starts the loop (after WaitForSync): posts the first pass and waits for uevents and MD
  // events; with its own io_context, starts the threads that run it.
  void Run();
  // RequestStop, then waits for the agent's own io_context threads and stops its own informers.
  // With a shared io_context (AgentConfig::io), call it once the io_context's run() returned.
  void Stop();
  // Asks for a pass as soon as possible (coalesced: one pass for every wake-up before it begins).
  // Before Run() it does nothing: the informers' first lists wake the agent while they come in,
  // and a pass must not run on a half-listed cache.
  void Wake();

  // Asks the loop to end without waiting for it; a pass that has not begun will not. It cancels
  // the agent's timer and waits, so a shared io_context runs out of work once every agent on it
  // was asked and the passes under way ended. Stop() waits for the agent's own io_context.
  // With many agents in one process (--simulate), ask all of them first, then Stop() each.
  void RequestStop();

  // One pass. Returns the first error of the pass (the pass goes on after errors).
  common::Status Pass();

  int64_t passes() const { return passes_.load(); }
  // Cached volumes the passes have read to find the ones of this node, summed over every pass:
  // what finding its volumes costs a pass (tests; a node takes part in a few dozen volumes of a
  // cluster's thousands).
  int64_t volumes_examined() const { return volumes_examined_.load(); }

 private:
  // Applies what a pass observed to the volume's status (and formattedAt), starting from the
  // informer's copy; re-reads the object only after a conflict.
  common::Status WriteOutcome(const common::api::v1alpha1::MeshStorVolume& cached,
                              const VolumeOutcome& outcome);
  // The pass handler (on pass_strand_): one pass, then the resync timer again.
  void RunPass();
  // Posts the pass (coalesced); nothing before Run().
  void Post();
  // Waits (on events_strand_) for the uevent / MD descriptor, then takes what is pending.
  void WatchUevents();
  void WatchMdEvents();
  void UpdateMetrics(const std::vector<common::api::v1alpha1::MeshStorVolume>& volumes,
                     const std::vector<DriveSnapshot>& drives);
  // Size and biggest free extent of each local drive (only after the drives were listed).
  void UpdateDriveMetrics(const std::vector<DriveSnapshot>& drives);

  common::kube::Client& client_;
  // The kernel's partition layer with each drive's table read once per pass (BeginPass at the
  // start of Pass); kernel_.partitions points at it.
  std::unique_ptr<PassCachedPartitions> partitions_;
  std::unique_ptr<PassCachedNvmet> nvmet_;    // kernel_.nvmet when the kernel has one
  std::unique_ptr<PassCachedMd> md_;          // kernel_.md when the kernel has one
  std::unique_ptr<PassCachedNvmeHost> host_;  // kernel_.host when the kernel has one
  NodeKernel kernel_;
  sys::UeventSource* uevents_;
  sys::MdEventSource* md_events_;
  AgentConfig config_;
  common::time::Clock& clock_;
  VolumeReconciler reconciler_;
  Inventory inventory_;
  // The informers in use: the shared ones (AgentConfig) or the agent's own (stopped by Stop(),
  // before the index on them goes).
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorVolume>> own_volumes_;
  std::unique_ptr<VolumeIndex> own_volume_index_;
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>> own_devices_;
  VolumeIndex* volumes_ = nullptr;
  common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>* devices_ = nullptr;

  // The loop. own_io_ only without AgentConfig::io; io_ is the one in use.
  std::unique_ptr<boost::asio::io_context> own_io_;
  boost::asio::io_context* io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;  // running own_io_
  PassStrand pass_strand_;
  PassStrand events_strand_;                // the uevent and MD event handlers, one at a time
  boost::asio::steady_timer resync_timer_;  // on pass_strand_
  std::optional<boost::asio::posix::stream_descriptor> uevent_fd_;  // dup of ReadyFd()
  std::optional<boost::asio::posix::stream_descriptor> md_event_fd_;
  std::atomic<bool> wake_pending_{false};  // a pass is posted and has not begun
  // What ObserveInSync reads (MD's arrays, the members' devices) changes only with an MD event or
  // a uevent. kernel_event_: one came since the last pass began (or no pass ran yet). The *_live_
  // flags: the source is waited on; until both are, every pass observes.
  std::atomic<bool> kernel_event_{true};
  std::atomic<bool> uevents_live_{false};
  std::atomic<bool> md_events_live_{false};
  std::atomic<bool> stopping_{false};
  // Set by Run(): passes run only after the informers' first lists (WaitForSync).
  std::atomic<bool> running_{false};
  // Wake() was called since the last pass began (anything but a uevent or MD event, which set
  // kernel_event_ and post the pass themselves).
  std::atomic<bool> other_wake_{false};
  // When a pass last retried the addresses that did not answer (steady clock ticks).
  std::atomic<std::chrono::steady_clock::rep> last_retry_{0};
  std::atomic<int64_t> passes_{0};
  std::atomic<int64_t> volumes_examined_{0};

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
