#include "agent/sys/fake/nvme_host.h"

namespace agent::sys {

FakeNvmeHost::FakeNvmeHost(FakeFabric& fabric, std::string node, NvmeHostIdentity identity)
    : fabric_(fabric), node_(std::move(node)), identity_(std::move(identity)) {
  std::lock_guard lock(fabric_.mu_);
  fabric_.hosts_[node_];
}

void FakeNvmeHost::FailCall(std::string method, int nth, common::Status status) {
  std::lock_guard lock(fabric_.mu_);
  fabric_.host_faults_.FailCall(std::move(method), nth, std::move(status));
}

common::Result<NvmeController> FakeNvmeHost::Connect(const NvmeConnectSpec& spec) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("Connect"));
  std::string what = fmt::format("connecting to NVMe-oF subsystem {} at {} {}:{}", spec.subsys_nqn,
                                 NvmeTransportName(spec.transport), spec.address, spec.service);
  if (spec.address.empty() || spec.service.empty()) {
    return common::InvalidArgumentError("{}: address and service are required", what);
  }
  RETURN_IF_ERROR(ValidateNqn(spec.subsys_nqn).WithContext(what));
  RETURN_IF_ERROR(ValidateNqn(spec.host_nqn).WithContext(what));
  if (spec.keep_alive_tmo_s <= 0 || spec.ctrl_loss_tmo_s < -1 || spec.reconnect_delay_s <= 0 ||
      spec.fast_io_fail_tmo_s < -1) {
    return common::InvalidArgumentError("{}: bad timeout", what);
  }
  auto& host = fabric_.hosts_[node_];
  for (const auto& [instance, c] : host.controllers) {
    if (c.spec.subsys_nqn == spec.subsys_nqn && c.spec.address == spec.address &&
        c.spec.service == spec.service && c.spec.transport == spec.transport &&
        c.spec.host_nqn == spec.host_nqn) {
      return fabric_.Describe(c);
    }
  }
  std::string why;
  int unanswered = 0;  // the socket's errno when the address did not answer, as the kernel's
  if (fabric_.Reach(spec, &why, true, &unanswered) == nullptr) {
    return common::Status(common::StatusCode::kUnavailable, fmt::format("{}: {}", what, why),
                          unanswered ? std::to_string(unanswered) : std::string());
  }
  // A new controller instance; namespace devices are named after the subsystem's instance, like
  // the kernel's native-multipath heads (nvme<subsystem>n<nsid>), so a subsystem connected
  // again keeps its device names.
  auto [known, added] = host.subsystem_instances.try_emplace(spec.subsys_nqn, host.next_head);
  if (added) ++host.next_head;
  FakeFabric::Controller c{host.next_instance++, spec, known->second};
  c.scanned = !host.delay_scans;
  host.controllers[c.instance] = c;
  NvmeController out = fabric_.Describe(c);
  out.created = true;
  return out;
}

common::Status FakeNvmeHost::Disconnect(std::string_view controller_name) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("Disconnect"));
  int instance = -1;
  std::string name(controller_name);
  if (name.rfind("nvme", 0) != 0 || name.size() == 4 ||
      name.find_first_not_of("0123456789", 4) != std::string::npos) {
    return common::InvalidArgumentError("disconnecting NVMe controller \"{}\": not nvme<N>", name);
  }
  instance = std::stoi(name.substr(4));
  fabric_.hosts_[node_].controllers.erase(instance);
  return common::OkStatus();
}

common::Result<std::vector<NvmeController>> FakeNvmeHost::ListControllers() {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("ListControllers"));
  std::vector<NvmeController> out;
  for (const auto& [instance, c] : fabric_.hosts_[node_].controllers) {
    out.push_back(fabric_.Describe(c));
  }
  return out;
}

common::Result<std::string> FakeNvmeHost::FindNamespaceDevice(
    std::string_view subsys_nqn, const NvmeNamespaceSelector& selector) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("FindNamespaceDevice"));
  std::string what = fmt::format("finding namespace of {}", subsys_nqn);
  if (!selector.nsid && selector.uuid.empty()) {
    return common::InvalidArgumentError("{}: give an nsid or a namespace uuid", what);
  }
  std::string want_uuid = selector.uuid;
  for (char& ch : want_uuid) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& [instance, c] : fabric_.hosts_[node_].controllers) {
    if (c.spec.subsys_nqn != subsys_nqn || !c.scanned) continue;
    std::string why;
    const FakeFabric::Subsystem* s = fabric_.Reach(c.spec, &why, false);
    if (s == nullptr) continue;
    for (const auto& [nsid, ns] : s->namespaces) {
      if (!ns.enabled) continue;
      if (selector.nsid && *selector.nsid != nsid) continue;
      if (!want_uuid.empty() && ns.device_uuid != want_uuid) continue;
      return FakeFabric::DeviceName(c.head, nsid);
    }
  }
  return common::NotFoundError("{}: no block device for the namespace", what);
}

common::Result<std::string> FakeNvmeHost::SubsystemOfDevice(std::string_view device) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("SubsystemOfDevice"));
  const FakeFabric::Controller* c = fabric_.HostDeviceLocked(node_, device);
  if (c == nullptr)
    return common::NotFoundError("{}: no NVMe namespace device of {}", device, node_);
  return c->spec.subsys_nqn;
}

common::Result<NvmeHostIdentity> FakeNvmeHost::GetHostIdentity() {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.host_faults_.Check("GetHostIdentity"));
  return identity_;
}

}  // namespace agent::sys
