// EventRecorder: posts events.k8s.io/v1 Events about our objects, as client-go's recorder does,
// without ever blocking the caller or storming the API server.
//
// Record() only queues; a background thread sends. An event equal to one sent in the last
// 10 minutes (same object, type, reason, action and note) becomes a series: the existing Event's
// series.count and lastObservedTime are patched instead of creating a new object. At most
// `max_series` series are remembered (the least recently continued is forgotten first, as
// client-go's correlator keeps an LRU of 4096): an event of a forgotten series creates a new
// Event, which is correct, only less aggregated. The queue is
// bounded; when full, events are dropped and counted (dropped()). Send failures are logged at
// V(1) and dropped: events are best-effort, as in Kubernetes.
//
// Thread contract: Record() is safe from any thread. Stop() drains what is queued (bounded by
// each request's timeout) and joins.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/api/core.h"
#include "common/compress/shared_name.h"
#include "common/compress/slab_pool.h"
#include "common/kube/client.h"
#include "common/time/clock.h"

namespace common::kube {

class EventRecorder {
 public:
  struct Options {
    std::string reporting_controller;  // e.g. "csi.meshstor.io/operator"
    std::string reporting_instance;    // e.g. the pod name
    // Events about cluster-scoped objects go to this namespace.
    std::string default_namespace = "default";
    size_t max_queue = 1000;
    std::chrono::minutes series_window{10};
    // Series remembered at once. Unbounded, a burst of 10000 volumes' Events (all distinct:
    // each names its volume) kept ~0.7 KiB per Event for 10 minutes, ~17 MiB in the operator.
    size_t max_series = 4096;
  };

  // `client` and `clock` must outlive the recorder. Starts the sender thread.
  EventRecorder(Client& client, time::Clock& clock, Options options);
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;
  ~EventRecorder();

  // Queues an event about `regarding`. `type` is "Normal" or "Warning"; `reason` CamelCase;
  // `note` is truncated to 1 KiB.
  void Record(const api::ObjectReference& regarding, std::string type, std::string reason,
              std::string action, std::string note);

  void Stop();
  uint64_t dropped() const;
  uint64_t sent() const;
  // Series entries looked at to drop the expired ones, since start (for tests: sending an event
  // costs O(1) amortized, not a scan of every series of the last 10 minutes).
  uint64_t series_examined() const { return series_examined_.load(); }
  // Series remembered now (for tests).
  size_t series_size() const { return series_size_.load(); }

 private:
  struct Pending {
    api::ObjectReference regarding;
    std::string type, reason, action, note;
    std::chrono::system_clock::time_point time;
  };
  // A series' identity: two independent 64-bit hashes of (object, type, reason, action, note),
  // 16 bytes instead of the key itself (the note alone may be 1 KiB). Two keys share both
  // hashes with a probability of about 2^-128: the cost would be one Event counted on another.
  struct SeriesKey {
    uint64_t fnv;
    uint64_t std;
    auto operator<=>(const SeriesKey&) const = default;
  };
  // The series are kept for series_window (10 minutes), one per volume and reason: long-lived
  // small entries. They live in the slab pool, and the Event's name ("<object>.<hex>") is kept
  // as the object's interned name and the number, not as a string of its own. As strings they
  // were allocated from whichever arena the sender thread's cache handed back (often the
  // volume watch's), and ~3000 of them there kept ~2.5 MiB of free heap from being returned.
  using SeriesOrder = std::list<SeriesKey, compress::SlabAllocator<SeriesKey>>;
  struct SeriesState {
    compress::SharedName ns;      // the Event's namespace
    compress::SharedName object;  // the Event's name is "<object>.<suffix in hex>"
    uint64_t suffix = 0;
    int32_t count = 1;
    std::chrono::steady_clock::time_point last;
    SeriesOrder::iterator order;  // its key in series_order_

    std::string EventName() const;
  };

  void Loop();
  void Send(const Pending& p);

  Client& client_;
  time::Clock& clock_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  uint64_t dropped_ = 0;
  uint64_t sent_ = 0;
  // Touched only by the sender thread: the series by key, and their keys from the least to the
  // most recently continued, so expired ones are dropped from the front.
  std::map<SeriesKey, SeriesState, std::less<>,
           compress::SlabAllocator<std::pair<const SeriesKey, SeriesState>>>
      series_;
  SeriesOrder series_order_;
  std::atomic<uint64_t> series_examined_{0};
  std::atomic<size_t> series_size_{0};
  std::thread thread_;
};

}  // namespace common::kube
