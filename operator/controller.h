// The MeshStorVolume controller: reads one volume and the cluster from a ClusterSource, asks
// Decide() (reconcile.h) for the next step and performs that single write, guarded by the
// resourceVersion it read (a conflict is retried by the caller). ControllerRunner drives it
// from informers and a work queue while this replica is the leader.
//
// Thread contract: Controller::ReconcileOnce may be called from several threads for different
// volumes; ControllerRunner's Start/Stop are called from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/api/core.h"
#include "common/api/v1alpha1/types.h"
#include "common/kube/client.h"
#include "common/kube/event_recorder.h"
#include "common/kube/informer.h"
#include "common/kube/workqueue.h"
#include "common/status/status.h"
#include "common/time/clock.h"
#include "operator/memory_trim.h"
#include "operator/metrics.h"
#include "operator/placement.h"
#include "operator/reconcile.h"
#include "operator/volume_index.h"

namespace meshstor_operator {

// Where the controller reads the cluster from.
class ClusterSource {
 public:
  virtual ~ClusterSource() = default;
  // NotFound when the volume does not exist; InvalidArgument when its JSON does not decode.
  virtual common::Result<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>> GetVolume(
      const std::string& name) = 0;
  // Every volume, drive and node (Inventory::now and staleness are filled by the caller).
  virtual common::Result<Inventory> Snapshot() = 0;
};

// Reads straight from the API server on every call (no cache lag): for tests and tools.
class ClientSource final : public ClusterSource {
 public:
  // `client` must outlive this source.
  explicit ClientSource(common::kube::Client& client) : client_(client) {}
  common::Result<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>> GetVolume(
      const std::string& name) override;
  common::Result<Inventory> Snapshot() override;

 private:
  common::kube::Client& client_;
};

using VolumeInformer = common::kube::Informer<common::api::v1alpha1::MeshStorVolume>;
// The preset dictionary of the compressed volume cache: the JSON of a typical volume, so what
// every volume repeats (field names, enum values, reasons, the CSI staging path) is not stored
// again in each one. Only compression depends on it: any volume is cached correctly.
std::string VolumeCacheDictionary();
using DeviceInformer = common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>;
using NodeInformer = common::kube::Informer<common::api::Node>;

// Reads the informer caches. The informers must outlive this source. With an `index` (kept
// from the volume informer's events, see ControllerRunner) the snapshot carries it instead of
// a copy of every volume. The drives and Nodes are shared lists (Inventory::shared_devices,
// shared_nodes), built on the first snapshot after one of them changed and handed to every pass
// until the next change.
//
// REQUIRES: constructed before the informers start (it adds a handler to the drive and Node
// informers).
class InformerSource final : public ClusterSource {
 public:
  InformerSource(VolumeInformer& volumes, DeviceInformer& devices, NodeInformer& nodes,
                 const VolumeIndex* index = nullptr);
  common::Result<std::shared_ptr<const common::api::v1alpha1::MeshStorVolume>> GetVolume(
      const std::string& name) override;
  common::Result<Inventory> Snapshot() override;

 private:
  VolumeInformer& volumes_;
  DeviceInformer& devices_;
  NodeInformer& nodes_;
  const VolumeIndex* index_;
  std::mutex mu_;
  // Reset by the informers' handlers (after their cache changed), rebuilt by Snapshot().
  std::shared_ptr<const Inventory::DeviceList> devices_list_;  // guarded by mu_
  std::shared_ptr<const Inventory::NodeList> nodes_list_;      // guarded by mu_
};

class Controller {
 public:
  struct PassResult {
    bool wrote = false;
    Decision::Write write = Decision::Write::kNone;
    std::string written_resource_version;  // of the object after a write
    std::string read_resource_version;     // of the object the pass read
    std::optional<std::chrono::seconds> requeue_after;
  };

  // Every reference must outlive the controller; `events` and `metrics` may be null.
  Controller(common::kube::Client& client, common::time::Clock& clock, ClusterSource& source,
             common::kube::EventRecorder* events, OperatorMetrics* metrics, Limits limits);

  // One pass for volume `name`: at most one write. OK with wrote=false when nothing is due or
  // the volume is gone. Aborted on a resourceVersion conflict (retry), other errors from the
  // API server. An undecodable volume gets Ready=False/InvalidObject with the decode error
  // (written once per generation), a Warning event and a log line, and gives OK.
  common::Result<PassResult> ReconcileOnce(const std::string& name);

  const Limits& limits() const { return limits_; }

 private:
  common::kube::Client& client_;
  common::time::Clock& clock_;
  ClusterSource& source_;
  common::kube::EventRecorder* events_;
  OperatorMetrics* metrics_;
  const Limits limits_;
};

// Informers for volumes, drives and nodes, a work queue and one worker, around a Controller.
// One worker on purpose: placement and namespace IDs read other volumes, so passes are
// serialized and each waits until the cache shows its own previous write.
class ControllerRunner {
 public:
  struct Options {
    Limits limits;
    std::chrono::milliseconds resync_period{std::chrono::minutes(10)};
    std::chrono::milliseconds cache_sync_timeout{std::chrono::seconds(60)};
    // The volume gauges (OperatorMetrics::Refresh) are recomputed at most this often after a
    // volume changed, and at least every `metrics_max_age` while one depends on the time (a
    // member missing).
    std::chrono::milliseconds metrics_refresh_period{std::chrono::seconds(1)};
    std::chrono::milliseconds metrics_max_age{std::chrono::seconds(10)};
    // When set, called on the same timer once volumes stopped changing for `trim_after_quiet`,
    // and at most every `trim_max_interval` while they keep changing (QuietTrimmer): main
    // passes TrimHeap, so the memory a burst freed goes back to the kernel.
    std::function<void()> trim_heap;
    std::chrono::milliseconds trim_after_quiet{std::chrono::seconds(10)};
    std::chrono::milliseconds trim_max_interval{std::chrono::minutes(1)};
  };

  // Every reference must outlive the runner; `events` and `metrics` may be null.
  ControllerRunner(common::kube::Client& client, common::time::Clock& clock,
                   common::kube::EventRecorder* events, OperatorMetrics* metrics, Options options);
  ControllerRunner(const ControllerRunner&) = delete;
  ControllerRunner& operator=(const ControllerRunner&) = delete;
  ~ControllerRunner();

  // Starts the informers, waits (real time) for their first list, then starts the worker.
  // DeadlineExceeded when the caches did not sync in time.
  common::Status Start();
  // Stops the worker and the informers. Idempotent.
  void Stop();

 private:
  void Work();
  // Refreshes the volume gauges on a timer (Options::metrics_refresh_period) and trims the heap
  // after a burst (Options::trim_heap).
  void RefreshMetrics();
  void EnqueueAllVolumes();
  void EnqueueVolumesConcerning(const std::string& node);
  // Waits until the volume index (so the cache too) no longer shows `read_rv` for `name`
  // (bounded).
  void AwaitCache(const std::string& name, const std::string& read_rv);

  common::kube::Client& client_;
  common::time::Clock& clock_;
  OperatorMetrics* metrics_;
  const Options options_;
  VolumeInformer volumes_;
  DeviceInformer devices_;
  NodeInformer nodes_;
  VolumeIndex index_;  // follows volumes_, updated before AwaitCache wakes up
  InformerSource source_;
  Controller controller_;
  common::kube::WorkQueue queue_;
  std::mutex cache_mu_;
  std::condition_variable cache_cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> metrics_dirty_{true};  // a volume changed since the last refresh
  std::unique_ptr<QuietTrimmer> trimmer_;  // set when options_.trim_heap is
  std::thread worker_;
  std::thread metrics_thread_;
  bool started_ = false;
};

}  // namespace meshstor_operator
