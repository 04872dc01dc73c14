#include "agent/sys/linux/uevents.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace agent::sys {

common::Result<std::unique_ptr<LinuxUeventListener>> LinuxUeventListener::Open(
    std::set<std::string> subsystems) {
  int sock =
      ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
  if (sock < 0) return common::ErrnoToStatus(errno, "opening the uevent netlink socket");
  int size = 4 << 20;
  // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to what the limit allows.
  if (::setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    (void)::setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  int on = 1;
  (void)::setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = 1;  // kernel uevents (udev re-broadcasts on group 2)
  if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(sock);
    return common::ErrnoToStatus(e, "binding the uevent netlink socket");
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int e = errno;
    ::close(sock);
    return common::ErrnoToStatus(e, "creating the uevent wake-up eventfd");
  }
  return std::unique_ptr<LinuxUeventListener>(
      new LinuxUeventListener(sock, wake, std::move(subsystems)));
}

LinuxUeventListener::LinuxUeventListener(int sock, int wake, std::set<std::string> subsystems)
    : sock_(sock), wake_(wake), subsystems_(std::move(subsystems)) {}

LinuxUeventListener::~LinuxUeventListener() {
  ::close(sock_);
  ::close(wake_);
}

void LinuxUeventListener::Interrupt() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_, &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending
}

common::Result<std::optional<Uevent>> LinuxUeventListener::Next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd fds[2] = {{sock_, POLLIN, 0}, {wake_, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return common::ErrnoToStatus(errno, "waiting for uevents");
    if (fds[1].revents & POLLIN) {
      uint64_t value;
      ssize_t r = ::read(wake_, &value, sizeof(value));
      (void)r;
      return std::optional<Uevent>();
    }
    if (n == 0) return std::optional<Uevent>();
    if (!(fds[0].revents & POLLIN)) continue;

    sockaddr_nl from{};
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t len = ::recvmsg(sock_, &msg, MSG_DONTWAIT);
    if (len < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // ENOBUFS: the kernel dropped events; the agent's periodic re-check catches up.
      if (errno == ENOBUFS) continue;
      return common::ErrnoToStatus(errno, "receiving a uevent");
    }
    if (from.nl_pid != 0 || (msg.msg_flags & MSG_TRUNC)) continue;  // not from the kernel
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg != nullptr && cmsg->cmsg_type == SCM_CREDENTIALS) {
      const auto* cred = reinterpret_cast<const ucred*>(CMSG_DATA(cmsg));
      if (cred->uid != 0) continue;
    }
    auto event = ParseUevent(std::string_view(buf.data(), static_cast<size_t>(len)));
    if (!event.ok()) continue;  // malformed or not a kernel event: ignore it
    if (!subsystems_.empty() && !subsystems_.count(event->subsystem)) continue;
    return std::optional<Uevent>(std::move(event).value());
  }
}

}  // namespace agent::sys
