#include "agent/sys/fake/md_events.h"

namespace agent::sys {

void FakeMdEventSource::Notify() {
  {
    std::lock_guard lock(mu_);
    pending_ = true;
    ready_.Signal();
  }
  cv_.notify_all();
}

void FakeMdEventSource::FailNext(common::Status status) {
  std::lock_guard lock(mu_);
  fail_next_ = std::move(status);
}

int FakeMdEventSource::waits() const {
  std::lock_guard lock(mu_);
  return waits_;
}

common::Result<bool> FakeMdEventSource::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  ++waits_;
  if (!fail_next_.ok()) return std::exchange(fail_next_, common::OkStatus());
  cv_.wait_for(lock, timeout, [this] { return pending_ || interrupted_; });
  if (interrupted_) {
    interrupted_ = false;
    return false;
  }
  ready_.Clear();
  return std::exchange(pending_, false);
}

void FakeMdEventSource::Interrupt() {
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

}  // namespace agent::sys
