// The NvmetTarget contract: behaviour every implementation (FakeNvmetTarget, LinuxNvmetTarget)
// must show. Each function is one scenario made of Catch2 assertions; call it from a TEST_CASE
// that built the implementation. Scenarios clean up what they create.
#pragma once

#include <cstdint>
#include <string>

#include "agent/sys/nvmet.h"

namespace agent::sys::contract {

struct NvmetContractEnv {
  NvmetTarget* target = nullptr;
  std::string device;  // a block device that may be exported
  std::string address = "127.0.0.1";
  std::string service = "4420";
  uint16_t port_id = 4097;       // a port id the scenario may own
  std::string tag = "contract";  // makes NQNs unique per run
};

// Port, subsystem, namespace and link life cycle, idempotency, state queries, removal order.
void NvmetContractExportLifecycle(const NvmetContractEnv& env);
// Allowed hosts are replaced, never merged; allow_any_host stays off.
void NvmetContractAllowedHosts(const NvmetContractEnv& env);
// Input validation and the namespace rules (stable uuid, no change under a live namespace).
void NvmetContractValidation(const NvmetContractEnv& env);

}  // namespace agent::sys::contract
