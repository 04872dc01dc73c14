// MdEventSource: notice of MD events (a member marked faulty, removed or added, an array started
// or stopped, a resync finished) so the consumer records a member's exit from the array within
// moments, not only on the periodic pass (docs/design.md §6.1). The kernel notifies every poller
// of /proc/mdstat with POLLPRI on each md event (md_new_event); member state changes send no
// uevent. A notice is a hint: the agent still re-checks every 10 s.
//
// Thread contract: Wait() is called from one thread; Interrupt() may be called from any thread.
// ReadyDescriptor() is constant.
#pragma once

#include <chrono>

#include "common/status/status.h"

namespace agent::sys {

class MdEventSource {
 public:
  virtual ~MdEventSource() = default;

  // Waits up to `timeout` for the next MD event. True when one happened, false on timeout or
  // after Interrupt(); an error Status only when the source is broken.
  virtual common::Result<bool> Wait(std::chrono::milliseconds timeout) = 0;

  // Makes a blocked or the next Wait() return false at once.
  virtual void Interrupt() = 0;

  // How the source's descriptor reports a pending event: readable, or POLLPRI/POLLERR (epoll's
  // EPOLLPRI, Asio's wait_error: /proc/mdstat, which is always readable).
  enum class Readiness { kReadable, kPriority };
  struct Descriptor {
    int fd = -1;  // -1: none (Wait only)
    Readiness readiness = Readiness::kReadable;
  };
  // For an event loop: it waits for `readiness` on the descriptor, then calls Wait(0), which
  // takes the event (and re-arms the source). The descriptor stays the source's.
  virtual Descriptor ReadyDescriptor() const { return {}; }
};

}  // namespace agent::sys
