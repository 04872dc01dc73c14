#include "agent/sys/fake/md_events.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace agent::sys {
namespace {

// eventfd signalling: Signal makes it readable, Clear makes it not.
void Signal(int fd) {
  uint64_t one = 1;
  ssize_t n = ::write(fd, &one, sizeof(one));
  (void)n;  // EAGAIN: the counter is full, i.e. readable anyway
}
void Clear(int fd) {
  uint64_t value;
  ssize_t n = ::read(fd, &value, sizeof(value));
  (void)n;  // EAGAIN: not readable
}

}  // namespace

FakeMdEventSource::FakeMdEventSource() : ready_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

FakeMdEventSource::~FakeMdEventSource() {
  if (ready_ >= 0) ::close(ready_);
}

void FakeMdEventSource::Notify() {
  {
    std::lock_guard lock(mu_);
    pending_ = true;
    Signal(ready_);
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
  Clear(ready_);
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
