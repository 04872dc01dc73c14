#include "common/kube/workqueue.h"

#include <algorithm>

namespace common::kube {

WorkQueue::WorkQueue(time::Clock& clock) : WorkQueue(clock, Options{}) {}

WorkQueue::WorkQueue(time::Clock& clock, Options options) : clock_(clock), options_(options) {}

WorkQueue::~WorkQueue() { ShutDown(); }

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_) return;
  if (!dirty_.insert(key).second) return;  // already waiting to be processed
  if (processing_.count(key)) return;      // queued again by Done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (delayed_.erase(key)) ++delayed_changes_;  // an immediate add supersedes a pending delay
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::steady_clock::duration delay) {
  if (delay <= std::chrono::steady_clock::duration::zero()) {
    Add(key);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  auto ready_at = clock_.SteadyNow() + delay;
  auto [it, inserted] = delayed_.emplace(key, ready_at);
  if (!inserted) it->second = std::min(it->second, ready_at);
  ++delayed_changes_;
  // Wake a waiting Get() so it re-computes its deadline.
  cv_.notify_all();
}

std::chrono::steady_clock::duration WorkQueue::BackoffFor(int failures) const {
  // base·2^failures without overflow: stop doubling once past the cap.
  std::chrono::steady_clock::duration d = options_.base_delay;
  for (int i = 0; i < failures && d < options_.max_delay; ++i) d *= 2;
  return std::min<std::chrono::steady_clock::duration>(d, options_.max_delay);
}

void WorkQueue::AddRateLimited(const std::string& key) {
  int failures;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures = failures_[key]++;
  }
  AddAfter(key, BackoffFor(failures));
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_.SteadyNow();
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->second <= now) {
      std::string key = it->first;
      it = delayed_.erase(it);
      ++delayed_changes_;
      AddLocked(key);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDueLocked();
    if (!queue_.empty()) break;
    if (delayed_.empty()) {
      cv_.wait(lock, [&] { return shutting_down_ || !queue_.empty() || !delayed_.empty(); });
      continue;
    }
    auto next = std::min_element(delayed_.begin(), delayed_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    auto deadline = next->second;
    uint64_t changes = delayed_changes_;
    clock_.WaitUntil(lock, cv_, deadline, [&] {
      return shutting_down_ || !queue_.empty() || delayed_changes_ != changes;
    });
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

bool WorkQueue::IsShuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t WorkQueue::DelayedLenForTest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

}  // namespace common::kube
