#include "agent/sys/fake/uevents.h"

namespace agent::sys {

void FakeUeventSource::Push(Uevent event) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(event));
    ready_.Signal();
  }
  cv_.notify_all();
}

common::Status FakeUeventSource::PushRaw(std::string_view datagram) {
  ASSIGN_OR_RETURN(auto event, ParseUevent(datagram));
  Push(std::move(event));
  return common::OkStatus();
}

void FakeUeventSource::FailNext(common::Status status) {
  std::lock_guard lock(mu_);
  fail_next_ = std::move(status);
}

void FakeUeventSource::Interrupt() {
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

common::Result<std::optional<Uevent>> FakeUeventSource::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!fail_next_.ok()) {
    common::Status s = std::move(fail_next_);
    fail_next_ = common::OkStatus();
    return s;
  }
  cv_.wait_for(lock, timeout, [this] { return interrupted_ || !queue_.empty(); });
  if (interrupted_) {
    interrupted_ = false;
    return std::optional<Uevent>();
  }
  if (queue_.empty()) return std::optional<Uevent>();
  Uevent event = std::move(queue_.front());
  queue_.pop_front();
  if (queue_.empty()) ready_.Clear();
  return std::optional<Uevent>(std::move(event));
}

}  // namespace agent::sys
