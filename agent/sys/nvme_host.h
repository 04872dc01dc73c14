// NvmeHost: the importing side of the NVMe-oF data path (nvme-tcp / nvme-rdma host driver).
//
// Connects to a remote nvmet subsystem through /dev/nvme-fabrics with the project's short
// timeouts (docs/design.md §7: short keep-alive, fast_io_fail_tmo=1, ctrl_loss_tmo about 3 s,
// reconnect delay 1 s), lists controllers from /sys/class/nvme, and finds the block device of a
// namespace, always the multipath head node /dev/nvmeXnY, never a hidden per-path nvmeXcYnZ
// (kernel-lab.md pitfall 5).
//
// Thread contract: implementations are safe for concurrent use; callers serialize Connect and
// Disconnect for one (subsystem, address) pair.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sys/nvmet.h"
#include "common/status/status.h"

namespace agent::sys {

struct NvmeConnectSpec {
  NvmeTransport transport = NvmeTransport::kTcp;
  std::string address;           // traddr
  std::string service = "4420";  // trsvcid
  std::string subsys_nqn;
  std::string host_nqn;  // this node's host NQN (NvmeHost::GetHostIdentity)
  std::string host_id;   // this node's host ID (a UUID)
  int keep_alive_tmo_s = 2;
  int ctrl_loss_tmo_s = 3;
  int reconnect_delay_s = 1;
  int fast_io_fail_tmo_s = 1;
};

enum class NvmeControllerState { kNew, kLive, kConnecting, kResetting, kDeleting, kDead, kUnknown };

std::string_view NvmeControllerStateName(NvmeControllerState state);
// Parses /sys/class/nvme/nvmeX/state ("live", "connecting", "resetting", "deleting",
// "deleting (no IO)", "new", "dead"); anything else is kUnknown.
NvmeControllerState ParseNvmeControllerState(std::string_view text);

struct NvmeController {
  std::string name;   // "nvme3"
  int instance = -1;  // 3
  NvmeControllerState state = NvmeControllerState::kUnknown;
  std::string transport;  // "tcp", "rdma", "pcie", "loop"
  std::string traddr;
  std::string trsvcid;
  std::string subsys_nqn;
  std::string host_nqn;
  // Connect only: this call made the controller. Its namespaces' block devices appear once the
  // kernel's scan (asynchronous, after the connect returns) has listed them.
  bool created = false;
};

// A namespace is found by nsid or by its namespace UUID (nvmet device_uuid).
struct NvmeNamespaceSelector {
  std::optional<uint32_t> nsid;
  std::string uuid;  // empty: match on nsid only
};

struct NvmeHostIdentity {
  std::string host_nqn;
  std::string host_id;
};

class NvmeHost {
 public:
  virtual ~NvmeHost() = default;

  // Connects to the subsystem and returns the controller. Idempotent: a controller to the same
  // (transport, address, service, subsystem, host NQN) that is not being deleted is returned as
  // it is (after making sure its fast_io_fail_tmo is set), even while it is reconnecting.
  // InvalidArgument for an empty address, NQN or a bad timeout; the kernel's refusal (target
  // unreachable, host not allowed) comes back as an error naming the subsystem and address. When
  // the address itself did not answer (no route, refused, timed out: IsTargetUnreachable), the
  // error's detail is that errno.
  virtual common::Result<NvmeController> Connect(const NvmeConnectSpec& spec) = 0;

  // Deletes controller `name` ("nvme3"). OK when it does not exist. InvalidArgument for a name
  // that is not nvme<N>.
  virtual common::Status Disconnect(std::string_view controller_name) = 0;

  // Every NVMe controller of this node (fabrics and local), sorted by instance.
  virtual common::Result<std::vector<NvmeController>> ListControllers() = 0;

  // The head block device ("/dev/nvme1n2") of the namespace of subsystem `subsys_nqn` that
  // matches `selector`. NotFound while there is none (not connected yet, namespace not
  // enabled, or gone with its controller). InvalidArgument for an empty selector.
  virtual common::Result<std::string> FindNamespaceDevice(
      std::string_view subsys_nqn, const NvmeNamespaceSelector& selector) = 0;

  // The subsystem NQN of the namespace whose head block device is `device` ("/dev/nvme1n2"), as
  // the kernel shows it now. NotFound when `device` is not an NVMe namespace head (a partition,
  // an MD array, a disk of another kind) or is gone. Garbage collection asks this of a running
  // array's members before it disconnects anything (agent/volume_gc.cc).
  virtual common::Result<std::string> SubsystemOfDevice(std::string_view device) = 0;

  // This node's host NQN and host ID (/etc/nvme/hostnqn and hostid, else derived
  // deterministically from /etc/machine-id).
  virtual common::Result<NvmeHostIdentity> GetHostIdentity() = 0;
};

// True when Connect failed because the target's address did not answer at all (the socket's
// errno in the detail: ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ECONNREFUSED), so that
// no other subsystem at that address can be reached either; false when the target answered and
// refused this subsystem (not exported, host not allowed) or for any other error.
bool IsTargetUnreachable(const common::Status& connect_error);

// The host NQN and host ID derived from a 32-hex-digit machine ID:
// host_id = machine id as a UUID (8-4-4-4-12), host_nqn = "nqn.2014-08.org.nvmexpress:uuid:"
// + host_id. InvalidArgument for a malformed machine ID.
common::Result<NvmeHostIdentity> HostIdentityFromMachineId(std::string_view machine_id);

}  // namespace agent::sys
