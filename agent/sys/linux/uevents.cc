#include "agent/sys/linux/uevents.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

namespace agent::sys {
namespace {

common::Status NlError(int nl_error, const char* what) {
  return common::Status(common::StatusCode::kInternal,
                        fmt::format("{}: {}", what, nl_geterror(nl_error)));
}

}  // namespace

common::Result<std::unique_ptr<LinuxUeventListener>> LinuxUeventListener::Open(
    std::set<std::string> subsystems) {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return common::InternalError("allocating a uevent netlink socket");
  auto fail = [sock](common::Status s) {
    nl_socket_free(sock);
    return s;
  };
  // Uevents are not request/response: no sequence checks, no acks.
  nl_socket_disable_seq_check(sock);
  nl_socket_disable_auto_ack(sock);
  if (int err = nl_connect(sock, NETLINK_KOBJECT_UEVENT); err < 0) {
    return fail(NlError(err, "opening the uevent netlink socket"));
  }
  // Kernel uevents are multicast group 1 (udev re-broadcasts on group 2).
  if (int err = nl_socket_add_membership(sock, 1); err < 0) {
    return fail(NlError(err, "joining the kernel uevent group"));
  }
  if (int err = nl_socket_set_nonblocking(sock); err < 0) {
    return fail(NlError(err, "making the uevent socket non-blocking"));
  }
  // Credentials tell kernel datagrams (uid 0, port 0) from forged ones; peeking sizes the
  // receive buffer to the datagram, so a big event is never truncated.
  if (int err = nl_socket_set_passcred(sock, 1); err < 0) {
    return fail(NlError(err, "asking for uevent sender credentials"));
  }
  nl_socket_enable_msg_peek(sock);
  int fd = nl_socket_get_fd(sock);
  int size = 4 << 20;
  // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to what the limit allows.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    (void)nl_socket_set_buffer_size(sock, size, 0);
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    return fail(common::ErrnoToStatus(errno, "creating the uevent wake-up eventfd"));
  }
  return std::unique_ptr<LinuxUeventListener>(
      new LinuxUeventListener(sock, wake, std::move(subsystems)));
}

LinuxUeventListener::LinuxUeventListener(nl_sock* sock, int wake, std::set<std::string> subsystems)
    : sock_(sock), wake_(wake), subsystems_(std::move(subsystems)) {}

LinuxUeventListener::~LinuxUeventListener() {
  nl_socket_free(sock_);  // closes the socket
  ::close(wake_);
}

void LinuxUeventListener::Interrupt() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_, &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending
}

int LinuxUeventListener::ReadyFd() const { return nl_socket_get_fd(sock_); }

common::Result<std::optional<Uevent>> LinuxUeventListener::Next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const int fd = nl_socket_get_fd(sock_);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_, POLLIN, 0}};
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
    unsigned char* buf = nullptr;
    ucred* cred = nullptr;
    int len = nl_recv(sock_, &from, &buf, &cred);
    std::unique_ptr<unsigned char, decltype(&std::free)> buf_owner(buf, &std::free);
    std::unique_ptr<ucred, decltype(&std::free)> cred_owner(cred, &std::free);
    if (len == 0 || len == -NLE_AGAIN || len == -NLE_INTR) continue;
    // NLE_NOMEM is ENOBUFS: the kernel dropped events; the agent's periodic re-check catches up.
    if (len == -NLE_NOMEM) continue;
    if (len < 0) return NlError(-len, "receiving a uevent");
    if (from.nl_pid != 0) continue;                   // not from the kernel
    if (cred != nullptr && cred->uid != 0) continue;  // not from root
    auto event =
        ParseUevent(std::string_view(reinterpret_cast<const char*>(buf), static_cast<size_t>(len)));
    if (!event.ok()) continue;  // malformed or not a kernel event: ignore it
    if (!subsystems_.empty() && !subsystems_.count(event->subsystem)) continue;
    return std::optional<Uevent>(std::move(event).value());
  }
}

}  // namespace agent::sys
