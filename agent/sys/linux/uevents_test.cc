// LinuxUeventListener: opening, timeout and Interrupt (no root needed to join the group).
#include "agent/sys/linux/uevents.h"

#include <catch2/catch.hpp>

namespace agent::sys {
namespace {

TEST_CASE("LinuxUeventListener times out and wakes on Interrupt", "[unit][agent][uevents]") {
  auto listener = LinuxUeventListener::Open();
  if (!listener.ok()) {
    WARN("skipped: cannot open a uevent socket here: " << listener.status().ToString());
    return;
  }
  auto none = (*listener)->Next(std::chrono::milliseconds(0));
  REQUIRE(none.ok());
  (*listener)->Interrupt();
  auto woken = (*listener)->Next(std::chrono::hours(1));
  REQUIRE(woken.ok());
  CHECK_FALSE(woken->has_value());
}

}  // namespace
}  // namespace agent::sys
