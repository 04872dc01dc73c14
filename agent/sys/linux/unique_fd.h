// UniqueFd: owns one file descriptor and closes it once.
//
// Thread contract: a value type; not shared between threads.
#pragma once

#include <unistd.h>

#include <utility>

namespace agent::sys {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);  // close(2) is not retried on EINTR on Linux
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace agent::sys
