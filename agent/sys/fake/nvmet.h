// The fake NVMe-oF fabric: one in-process model of several nodes' nvmet targets and NVMe hosts.
//
// FakeFabric owns the whole model. FakeNvmetTarget is node N's NvmetTarget view of it and
// FakeNvmeHost (fake/nvme_host.h) node M's NvmeHost view, so a test builds a fake cluster:
// node B exports a namespace to node A's host NQN and A connects to it. The fabric honours what
// the kernel does: a connect needs an online target with a port at that address, the subsystem
// linked to the port and the host NQN in allowed_hosts; a namespace can be enabled only when
// its device exists on the target node. Tests can take a target offline (SetTargetOnline) or
// cut a port link, and the host's controllers go "connecting" and their namespace devices
// disappear, exactly what an MD array on top sees (see FakeMd's device presence hook).
//
// Thread contract: every method of FakeFabric and of its views is safe for concurrent use (one
// mutex guards the model).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/sys/fake/nvme_md_faults.h"
#include "agent/sys/nvme_host.h"
#include "agent/sys/nvmet.h"

namespace agent::sys {

class FakeFabric {
 public:
  FakeFabric() = default;
  FakeFabric(const FakeFabric&) = delete;
  FakeFabric& operator=(const FakeFabric&) = delete;

  // A block device that exists on `node` (may be exported by nvmet).
  void AddTargetDevice(const std::string& node, const std::string& path);
  // Whole-node loss (false) and return (true) of the target side of `node`.
  void SetTargetOnline(const std::string& node, bool online);
  // True when `path` is a namespace device of a live controller of host `node`.
  bool HostDeviceExists(const std::string& node, std::string_view path);
  // Deletes `node`'s controllers that are not live (ctrl_loss_tmo expired).
  void ExpireDisconnectedControllers(const std::string& node);
  // Like the kernel's scan after a connect: while `delay` is set, a controller `node` connects
  // shows no namespace device until FinishNamespaceScans(node).
  void DelayNamespaceScans(const std::string& node, bool delay);
  void FinishNamespaceScans(const std::string& node);
  // (target node, exported device) behind namespace device `path` of host `node`
  // (while the host has a controller to it, reachable or not); nullopt for anything else.
  std::optional<std::pair<std::string, std::string>> BackingOf(const std::string& node,
                                                               std::string_view path);
  // How many targets' ports and subsystems the fabric has looked at to resolve connections and
  // devices so far (for tests of its cost: a lookup looks at the target it reaches, not all).
  uint64_t targets_examined();

 private:
  friend class FakeNvmetTarget;
  friend class FakeNvmeHost;

  struct Subsystem {
    std::string serial;
    std::set<std::string> hosts;
    std::map<uint32_t, NvmetNamespaceSpec> namespaces;
  };
  struct Port {
    NvmetPortSpec spec;
    std::set<std::string> subsystems;
  };
  struct Target {
    bool online = true;
    std::set<std::string> devices;
    std::map<uint16_t, Port> ports;
    std::map<std::string, Subsystem, std::less<>> subsystems;
  };
  struct Controller {
    int instance = 0;
    NvmeConnectSpec spec;
    int head = 0;         // the subsystem's instance: names the namespace devices
    bool scanned = true;  // its namespace devices exist (DelayNamespaceScans)
  };
  struct Host {
    int next_instance = 0;
    std::map<int, Controller> controllers;
    int next_head = 0;
    std::map<std::string, int> subsystem_instances;  // head instance per subsystem NQN
    bool delay_scans = false;
  };

  // The subsystem `spec` reaches, or nullptr (with the reason) when it is not reachable now.
  // `check_acl` is false for controllers that already exist: like nvmet, the fake checks
  // allowed_hosts when a host connects, and a later change does not cut an existing controller
  // (a reconnect after an outage is not re-checked either, unlike the kernel).
  // `unanswered` (optional): set to the socket's errno (ETIMEDOUT, ECONNREFUSED) when the address
  // itself did not answer, left alone when the target answered and refused.
  const Subsystem* Reach(const NvmeConnectSpec& spec, std::string* why, bool check_acl,
                         int* unanswered = nullptr) const;
  NvmeController Describe(const Controller& c) const;
  // The controller of `node` whose namespace device `path` exists now (HostDeviceExists), or
  // nullptr.
  const Controller* HostDeviceLocked(const std::string& node, std::string_view path) const;
  static std::string DeviceName(int instance, uint32_t nsid);
  // The (head instance, nsid) a namespace device path names (DeviceName's inverse), or nullopt.
  static std::optional<std::pair<int, uint32_t>> ParseDeviceName(std::string_view path);
  // Keeps ports_at_ in step with a target's ports: call with the port's old spec (if any)
  // before changing it and with the new one after.
  void UnindexPortLocked(const std::string& node, const Port& port);
  void IndexPortLocked(const std::string& node, const Port& port);

  std::mutex mu_;
  std::map<std::string, Target> targets_;
  // Every port of every target by the (address, service) it listens on, as (target node, port
  // id) in the order a scan of targets_ and their ports meets them: what a host connects to is
  // found without walking the whole cluster's targets (a simulated cluster has 1000s).
  std::map<std::pair<std::string, std::string>, std::set<std::pair<std::string, uint16_t>>>
      ports_at_;
  std::map<std::string, Host> hosts_;
  mutable uint64_t targets_examined_ = 0;
  FakeFaults target_faults_;
  FakeFaults host_faults_;
};

class FakeNvmetTarget final : public NvmetTarget {
 public:
  // `fabric` must outlive this object.
  FakeNvmetTarget(FakeFabric& fabric, std::string node);

  // Failure injection for this fabric's targets: method names are the NvmetTarget methods.
  void FailCall(std::string method, int nth, common::Status status);
  // Shorthand for fabric.AddTargetDevice(node, path).
  void AddBlockDevice(const std::string& path);

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
  common::Status SetAllowedHostsLocked(FakeFabric::Target& t, std::string_view nqn,
                                       const std::vector<std::string>& host_nqns);
  NvmetSubsystemInfo DescribeLocked(const FakeFabric::Target& t, const std::string& nqn,
                                    const FakeFabric::Subsystem& s) const;

  FakeFabric& fabric_;
  std::string node_;
};

}  // namespace agent::sys
