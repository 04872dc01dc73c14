// CountingNvmet: an NvmetTarget that passes every call to another one and counts the subsystem
// listings (ListSubsystems, GetSubsystem) and the changes (every other method but ListPorts)
// that reach it.
//
// Thread contract: test-only; calls from one thread at a time.
#pragma once

#include <atomic>

#include "agent/sys/nvmet.h"

namespace agent::testing {

class CountingNvmet final : public sys::NvmetTarget {
 public:
  explicit CountingNvmet(sys::NvmetTarget& inner) : inner_(inner) {}
  std::atomic<int> listings{0};
  std::atomic<int> changes{0};

  common::Status EnsurePort(const sys::NvmetPortSpec& s) override {
    ++changes;
    return inner_.EnsurePort(s);
  }
  common::Status RemovePort(uint16_t id) override {
    ++changes;
    return inner_.RemovePort(id);
  }
  common::Status EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                 const std::vector<std::string>& hosts) override {
    ++changes;
    return inner_.EnsureSubsystem(nqn, serial, hosts);
  }
  common::Status SetAllowedHosts(std::string_view nqn,
                                 const std::vector<std::string>& hosts) override {
    ++changes;
    return inner_.SetAllowedHosts(nqn, hosts);
  }
  common::Status EnsureNamespace(std::string_view nqn,
                                 const sys::NvmetNamespaceSpec& spec) override {
    ++changes;
    return inner_.EnsureNamespace(nqn, spec);
  }
  common::Status RemoveNamespace(std::string_view nqn, uint32_t nsid) override {
    ++changes;
    return inner_.RemoveNamespace(nqn, nsid);
  }
  common::Status RemoveSubsystem(std::string_view nqn) override {
    ++changes;
    return inner_.RemoveSubsystem(nqn);
  }
  common::Status LinkSubsystemToPort(std::string_view nqn, uint16_t port) override {
    ++changes;
    return inner_.LinkSubsystemToPort(nqn, port);
  }
  common::Status UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port) override {
    ++changes;
    return inner_.UnlinkSubsystemFromPort(nqn, port);
  }
  common::Result<std::vector<sys::NvmetPortInfo>> ListPorts() override {
    return inner_.ListPorts();
  }
  common::Result<std::vector<sys::NvmetSubsystemInfo>> ListSubsystems() override {
    ++listings;
    return inner_.ListSubsystems();
  }
  common::Result<sys::NvmetSubsystemInfo> GetSubsystem(std::string_view nqn) override {
    ++listings;
    return inner_.GetSubsystem(nqn);
  }

 private:
  sys::NvmetTarget& inner_;
};

}  // namespace agent::testing
