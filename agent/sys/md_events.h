// MdEventSource: notice of MD events (a member marked faulty, removed or added, an array started
// or stopped, a resync finished) so the consumer records a member's exit from the array within
// moments, not only on the periodic pass (docs/design.md §6.1). The kernel notifies every poller
// of /proc/mdstat with POLLPRI on each md event (md_new_event); member state changes send no
// uevent. A notice is a hint: the agent still re-checks every 10 s.
//
// Thread contract: Wait() is called from one thread; Interrupt() may be called from any thread.
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
};

}  // namespace agent::sys
