// The NvmeHost contract, run with an NvmetTarget the host can reach (fake fabric, or the same
// VM's nvmet over 127.0.0.1). Each function is one scenario of Catch2 assertions; scenarios
// clean up what they create. Waits poll (100 ms) up to a bound, so against the fakes they never
// sleep.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "agent/sys/nvme_host.h"
#include "agent/sys/nvmet.h"

namespace agent::sys::contract {

struct NvmeHostContractEnv {
  NvmetTarget* target = nullptr;
  NvmeHost* host = nullptr;
  std::string device;  // exported by the target
  std::string address = "127.0.0.1";
  std::string service = "4420";
  uint16_t port_id = 4098;
  std::string tag = "contract";
  std::chrono::seconds patience{20};  // bound for waits on the kernel
};

// Polls `done` every 100 ms until it is true or `patience` passed; returns its last value.
bool WaitFor(const std::function<bool()>& done, std::chrono::seconds patience);

// Connect (idempotent), the controller in ListControllers, the namespace device by nsid and
// uuid, Disconnect (idempotent) and the device gone.
void NvmeHostContractConnectFindDisconnect(const NvmeHostContractEnv& env);
// A host NQN that is not in allowed_hosts cannot connect.
void NvmeHostContractAclRefused(const NvmeHostContractEnv& env);
// The target unlinks the port: the controller stops being live and the namespace device goes
// away; relinked, Connect brings the namespace back under the same uuid.
void NvmeHostContractTargetLoss(const NvmeHostContractEnv& env);
// Host identity is well formed and stable.
void NvmeHostContractIdentity(const NvmeHostContractEnv& env);

}  // namespace agent::sys::contract
