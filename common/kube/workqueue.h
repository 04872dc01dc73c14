// WorkQueue: the queue of object keys that controllers work from (client-go's rate-limiting
// work queue, with controller-runtime's contract).
//
// - A key is queued at most once: adding a key that is already waiting does nothing.
// - A key is never handed to two workers at once: adding a key while a worker holds it marks it
//   dirty, and it is queued again when that worker calls Done().
// - AddAfter() delays a key on the injected Clock; AddRateLimited() delays it by a per-key
//   exponential backoff (base·2^failures, capped), which Forget() resets.
//
// Thread contract: every method is safe to call from any thread. Get() blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/time/clock.h"

namespace common::kube {

class WorkQueue {
 public:
  struct Options {
    std::chrono::milliseconds base_delay{5};
    std::chrono::milliseconds max_delay{std::chrono::seconds(1000)};
  };

  // `clock` must outlive the queue.
  explicit WorkQueue(time::Clock& clock);
  WorkQueue(time::Clock& clock, Options options);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue();

  // Queues `key` now (no-op if already queued; deferred if being processed).
  void Add(const std::string& key);
  // Queues `key` once `delay` has passed on the clock. An earlier pending delay for the same key
  // wins; a non-positive delay is Add().
  void AddAfter(const std::string& key, std::chrono::steady_clock::duration delay);
  // AddAfter(key, backoff) and counts a failure for the key.
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count (after a success).
  void Forget(const std::string& key);
  // Failures counted for `key` since the last Forget().
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready and hands it out; nullopt once ShutDown() was called.
  // REQUIRES: the caller calls Done(key) when finished with it.
  std::optional<std::string> Get();
  // Ends the processing of `key`; queues it again if it was added meanwhile.
  void Done(const std::string& key);

  // Wakes every Get() with nullopt; later adds are ignored. Idempotent.
  void ShutDown();
  bool IsShuttingDown() const;

  // Keys ready now (not counting delayed or in-process ones).
  size_t Len() const;
  // Keys waiting for a delay to pass.
  size_t DelayedLenForTest() const;

 private:
  void AddLocked(const std::string& key);
  void PromoteDueLocked();
  std::chrono::steady_clock::duration BackoffFor(int failures) const;

  time::Clock& clock_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;     // ready keys, FIFO
  std::set<std::string> dirty_;       // keys that need processing (queued or re-added)
  std::set<std::string> processing_;  // keys held by a worker
  std::map<std::string, std::chrono::steady_clock::time_point> delayed_;  // key → ready time
  std::map<std::string, int> failures_;
  uint64_t delayed_changes_ = 0;  // bumped whenever delayed_ changes, to re-arm a waiting Get()
  bool shutting_down_ = false;
};

}  // namespace common::kube
