// A non-blocking eventfd the fake event sources signal, so a test's event loop wakes on it as it
// would on the real netlink socket or /proc/mdstat.
#pragma once

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace agent::sys {

class EventFd {
 public:
  EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~EventFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  int fd() const { return fd_; }
  // Makes the descriptor readable.
  void Signal() const {
    uint64_t one = 1;
    ssize_t n = ::write(fd_, &one, sizeof(one));
    (void)n;  // EAGAIN: the counter is full, i.e. readable anyway
  }
  // Makes it not readable.
  void Clear() const {
    uint64_t value;
    ssize_t n = ::read(fd_, &value, sizeof(value));
    (void)n;  // EAGAIN: not readable
  }

 private:
  const int fd_;
};

}  // namespace agent::sys
