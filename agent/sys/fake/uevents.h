// FakeUeventSource: a UeventSource that tests feed with Push() (parsed events or raw kernel
// datagrams).
//
// Thread contract: safe for concurrent use; Next() blocks up to its timeout for a Push(). ReadyFd()
// is an eventfd that each Push() makes readable (cleared when the queue is emptied).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include "agent/sys/fake/event_fd.h"
#include "agent/sys/uevents.h"

namespace agent::sys {

class FakeUeventSource final : public UeventSource {
 public:
  FakeUeventSource() = default;
  ~FakeUeventSource() override = default;
  FakeUeventSource(const FakeUeventSource&) = delete;
  FakeUeventSource& operator=(const FakeUeventSource&) = delete;

  void Push(Uevent event);
  // Parses a raw datagram (see ParseUevent) and queues it; the parse error otherwise.
  common::Status PushRaw(std::string_view datagram);
  // Makes the next Next() fail with `status`.
  void FailNext(common::Status status);

  common::Result<std::optional<Uevent>> Next(std::chrono::milliseconds timeout) override;
  void Interrupt() override;
  int ReadyFd() const override { return ready_.fd(); }

 private:
  EventFd ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Uevent> queue_;
  bool interrupted_ = false;
  common::Status fail_next_;
};

}  // namespace agent::sys
