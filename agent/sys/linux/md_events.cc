#include "agent/sys/linux/md_events.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace agent::sys {

common::Result<std::unique_ptr<LinuxMdStatWatcher>> LinuxMdStatWatcher::Open(std::string path) {
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return common::ErrnoToStatus(errno, "opening " + path);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return common::ErrnoToStatus(errno, "creating the md event wake-up eventfd");
  }
  std::unique_ptr<LinuxMdStatWatcher> w(
      new LinuxMdStatWatcher(std::move(path), std::move(file), std::move(wake)));
  RETURN_IF_ERROR(w->Rearm());
  return w;
}

common::Status LinuxMdStatWatcher::Rearm() {
  if (::lseek(file_.get(), 0, SEEK_SET) < 0) {
    return common::ErrnoToStatus(errno, "rewinding " + path_);
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(file_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return common::ErrnoToStatus(errno, "reading " + path_);
    if (n == 0) return common::OkStatus();
  }
}

void LinuxMdStatWatcher::Interrupt() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_.get(), &one, sizeof(one));
  (void)n;  // EAGAIN: a wake-up is already pending
}

common::Result<bool> LinuxMdStatWatcher::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A file that never reports POLLPRI (not procfs) is readable at once: then only the wake-up
  // is waited for, so a misconfigured path cannot spin.
  bool watch_file = true;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {watch_file ? file_.get() : -1, POLLPRI, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return common::ErrnoToStatus(errno, "waiting for md events on " + path_);
    if (fds[0].revents & POLLIN) {
      uint64_t value;
      ssize_t r = ::read(wake_.get(), &value, sizeof(value));
      (void)r;
      return false;
    }
    if (n == 0) return false;
    if (fds[1].revents & (POLLPRI | POLLERR)) {
      RETURN_IF_ERROR(Rearm());
      return true;
    }
    watch_file = false;
  }
}

}  // namespace agent::sys
