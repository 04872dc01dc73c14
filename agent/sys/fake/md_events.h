// FakeMdEventSource: an MdEventSource that tests trigger with Notify() (FakeMd calls nothing by
// itself; tests notify where the kernel would).
//
// Thread contract: safe for concurrent use; Wait() blocks up to its timeout for a Notify().
// ReadyDescriptor() is an eventfd that each Notify() makes readable (cleared when Wait takes it).
#pragma once

#include <condition_variable>
#include <mutex>

#include "agent/sys/fake/event_fd.h"
#include "agent/sys/md_events.h"

namespace agent::sys {

class FakeMdEventSource final : public MdEventSource {
 public:
  FakeMdEventSource() = default;
  ~FakeMdEventSource() override = default;
  FakeMdEventSource(const FakeMdEventSource&) = delete;
  FakeMdEventSource& operator=(const FakeMdEventSource&) = delete;

  // One MD event: the current or next Wait() returns true (events coalesce, as POLLPRI does).
  void Notify();
  // Makes the next Wait() fail with `status`.
  void FailNext(common::Status status);
  // Wait() calls so far (a test knows the watcher is waiting).
  int waits() const;

  common::Result<bool> Wait(std::chrono::milliseconds timeout) override;
  void Interrupt() override;
  Descriptor ReadyDescriptor() const override { return {ready_.fd(), Readiness::kReadable}; }

 private:
  EventFd ready_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool interrupted_ = false;
  int waits_ = 0;
  common::Status fail_next_;
};

}  // namespace agent::sys
