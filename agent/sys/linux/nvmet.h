// LinuxNvmetTarget: NvmetTarget on the kernel's nvmet configfs tree.
//
// The configfs root is injectable so unit tests can run against a directory tree laid out the
// way the kernel populates it (attribute files and the namespaces/, allowed_hosts/ and
// subsystems/ sub-directories that the kernel creates on mkdir).
//
// Thread contract: safe for concurrent use (no state besides the root path).
#pragma once

#include <string>

#include "agent/sys/nvmet.h"

namespace agent::sys {

inline constexpr std::string_view kNvmetConfigfsRoot = "/sys/kernel/config/nvmet";

class LinuxNvmetTarget final : public NvmetTarget {
 public:
  explicit LinuxNvmetTarget(std::string root = std::string(kNvmetConfigfsRoot));

  common::Status EnsurePort(const NvmetPortSpec& spec) override;
  common::Status RemovePort(uint16_t port_id) override;
  common::Status EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                 const std::vector<std::string>& allowed_host_nqns) override;
  common::Status SetAllowedHosts(std::string_view nqn,
                                 const std::vector<std::string>& host_nqns) override;
  common::Status EnsureNamespace(std::string_view nqn, const NvmetNamespaceSpec& spec) override;
  common::Status RemoveNamespace(std::string_view nqn, uint32_t nsid) override;
  common::Status RemoveSubsystem(std::string_view nqn) override;
  common::Status LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) override;
  common::Status UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) override;
  common::Result<std::vector<NvmetPortInfo>> ListPorts() override;
  common::Result<std::vector<NvmetSubsystemInfo>> ListSubsystems() override;
  common::Result<NvmetSubsystemInfo> GetSubsystem(std::string_view nqn) override;

 private:
  std::string PortDir(uint16_t id) const;
  std::string SubsysDir(std::string_view nqn) const;
  common::Result<NvmetPortInfo> ReadPort(uint16_t id);

  std::string root_;
};

}  // namespace agent::sys
