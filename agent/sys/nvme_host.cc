#include "agent/sys/nvme_host.h"

#include <cctype>
#include <cerrno>
#include <string>

namespace agent::sys {

std::string_view NvmeControllerStateName(NvmeControllerState state) {
  switch (state) {
    case NvmeControllerState::kNew:
      return "new";
    case NvmeControllerState::kLive:
      return "live";
    case NvmeControllerState::kConnecting:
      return "connecting";
    case NvmeControllerState::kResetting:
      return "resetting";
    case NvmeControllerState::kDeleting:
      return "deleting";
    case NvmeControllerState::kDead:
      return "dead";
    case NvmeControllerState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

NvmeControllerState ParseNvmeControllerState(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text == "live") return NvmeControllerState::kLive;
  if (text == "connecting") return NvmeControllerState::kConnecting;
  if (text == "resetting") return NvmeControllerState::kResetting;
  if (text == "deleting" || text == "deleting (no IO)") return NvmeControllerState::kDeleting;
  if (text == "new") return NvmeControllerState::kNew;
  if (text == "dead") return NvmeControllerState::kDead;
  return NvmeControllerState::kUnknown;
}

bool IsTargetUnreachable(const common::Status& connect_error) {
  if (connect_error.ok()) return false;
  for (int e : {ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ECONNREFUSED}) {
    if (connect_error.detail() == std::to_string(e)) return true;
  }
  return false;
}

common::Result<NvmeHostIdentity> HostIdentityFromMachineId(std::string_view machine_id) {
  while (!machine_id.empty() && std::isspace(static_cast<unsigned char>(machine_id.back()))) {
    machine_id.remove_suffix(1);
  }
  if (machine_id.size() != 32) {
    return common::InvalidArgumentError("machine id \"{}\": want 32 hex digits", machine_id);
  }
  std::string hex;
  for (char c : machine_id) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return common::InvalidArgumentError("machine id \"{}\": want 32 hex digits", machine_id);
    }
    hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  NvmeHostIdentity id;
  id.host_id = fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                           hex.substr(16, 4), hex.substr(20, 12));
  id.host_nqn = "nqn.2014-08.org.nvmexpress:uuid:" + id.host_id;
  return id;
}

}  // namespace agent::sys
