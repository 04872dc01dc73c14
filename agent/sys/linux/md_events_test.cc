// LinuxMdStatWatcher: opening, timeout, Interrupt, and no busy loop on a file without POLLPRI.
// The POLLPRI wake-up itself needs the md driver: the lab's md contract covers it.
#include "agent/sys/linux/md_events.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

namespace agent::sys {
namespace {

TEST_CASE("LinuxMdStatWatcher names a missing mdstat", "[unit][agent][md]") {
  auto w = LinuxMdStatWatcher::Open("/nonexistent/mdstat");
  REQUIRE_FALSE(w.ok());
  CHECK(w.status().code() == common::StatusCode::kNotFound);
  CHECK(w.status().message().find("/nonexistent/mdstat") != std::string::npos);
}

TEST_CASE("LinuxMdStatWatcher waits out its timeout on a plain file and wakes on Interrupt",
          "[unit][agent][md]") {
  char path[] = "/tmp/mdstat-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << "Personalities : [raid1]\nunused devices: <none>\n";
  auto w = LinuxMdStatWatcher::Open(path);
  REQUIRE(w.ok());
  // A plain file is always readable but never reports POLLPRI: no event, and no spinning.
  const auto start = std::chrono::steady_clock::now();
  auto none = (*w)->Wait(std::chrono::milliseconds(100));
  REQUIRE(none.ok());
  CHECK_FALSE(*none);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(90));
  (*w)->Interrupt();
  auto woken = (*w)->Wait(std::chrono::hours(1));
  REQUIRE(woken.ok());
  CHECK_FALSE(*woken);
  std::remove(path);
}

TEST_CASE("LinuxMdStatWatcher on the real /proc/mdstat times out without md events",
          "[unit][agent][md]") {
  auto w = LinuxMdStatWatcher::Open();
  if (!w.ok()) {
    WARN("skipped: " << w.status().ToString());
    return;
  }
  auto r = (*w)->Wait(std::chrono::milliseconds(0));
  REQUIRE(r.ok());
}

}  // namespace
}  // namespace agent::sys
