// LinuxUeventListener: UeventSource on a NETLINK_KOBJECT_UEVENT socket (kernel multicast
// group 1), opened and read through libnl. Only datagrams sent by the kernel (netlink port 0, uid
// 0) are accepted; events of other subsystems are dropped. The receive buffer is enlarged so that
// bursts (a controller and all its namespaces) fit; the agent's periodic re-check covers anything
// lost anyway.
//
// Thread contract: Next() from one thread; Interrupt() from any thread (an eventfd wakes Next).
#pragma once

#include <memory>
#include <set>
#include <string>

#include "agent/sys/uevents.h"

struct nl_sock;  // libnl

namespace agent::sys {

class LinuxUeventListener final : public UeventSource {
 public:
  // Opens and binds the socket. PermissionDenied or Internal with the errno when it cannot.
  static common::Result<std::unique_ptr<LinuxUeventListener>> Open(
      std::set<std::string> subsystems = DefaultUeventSubsystems());
  ~LinuxUeventListener() override;
  LinuxUeventListener(const LinuxUeventListener&) = delete;
  LinuxUeventListener& operator=(const LinuxUeventListener&) = delete;

  common::Result<std::optional<Uevent>> Next(std::chrono::milliseconds timeout) override;
  void Interrupt() override;
  int ReadyFd() const override;  // the netlink socket

 private:
  LinuxUeventListener(nl_sock* sock, int wake, std::set<std::string> subsystems);

  nl_sock* sock_;
  int wake_;
  std::set<std::string> subsystems_;
};

}  // namespace agent::sys
