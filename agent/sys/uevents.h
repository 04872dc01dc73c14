// Uevents: kernel device events (NETLINK_KOBJECT_UEVENT) so the agent reacts to a namespace
// appearing or vanishing, a controller changing state, or an MD array changing, instead of
// polling. The agent still re-checks every 10 s: a uevent is a hint, never the only trigger
// (the kernel drops them when the socket buffer is full).
//
// Thread contract: Next() is called from one thread; Interrupt() may be called from any thread.
// ReadyFd() is constant.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status/status.h"

namespace agent::sys {

struct Uevent {
  std::string action;     // "add", "remove", "change", "move", "online", "offline", "bind", ...
  std::string devpath;    // "/devices/virtual/nvme-fabrics/ctl/nvme0"
  std::string subsystem;  // "block", "nvme", "nvme-subsystem", "nvme-fabrics", ...
  std::string devname;    // "nvme0n1" (without /dev/), may be empty
  std::string devtype;    // "disk", "partition", may be empty
  uint64_t seqnum = 0;
  std::map<std::string, std::string> env;  // every KEY=VALUE pair, including the ones above
};

// Parses one kernel uevent datagram: "<action>@<devpath>\0KEY=VALUE\0...". InvalidArgument for
// anything else (including udev's "libudev" monitor messages) or when ACTION, DEVPATH or
// SUBSYSTEM are missing.
common::Result<Uevent> ParseUevent(std::string_view datagram);

class UeventSource {
 public:
  virtual ~UeventSource() = default;

  // Waits up to `timeout` for the next event of a subscribed subsystem. Returns nullopt on
  // timeout or after Interrupt(); an error Status only when the source is broken.
  virtual common::Result<std::optional<Uevent>> Next(std::chrono::milliseconds timeout) = 0;

  // Makes a blocked or the next Next() return nullopt at once.
  virtual void Interrupt() = 0;

  // A descriptor that becomes readable when Next() may have an event, for an event loop: it waits
  // for readability, then calls Next(0) until that returns nullopt. -1: none (Next only). The
  // descriptor stays the source's; it is valid while the source is.
  virtual int ReadyFd() const { return -1; }
};

// Subsystems the agent listens to.
inline const std::set<std::string>& DefaultUeventSubsystems() {
  static const std::set<std::string> kSubsystems = {"block", "nvme", "nvme-subsystem",
                                                    "nvme-fabrics"};
  return kSubsystems;
}

}  // namespace agent::sys
