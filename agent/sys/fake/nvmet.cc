#include "agent/sys/fake/nvmet.h"

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace agent::sys {

// ---- FakeFabric ----

void FakeFabric::AddTargetDevice(const std::string& node, const std::string& path) {
  std::lock_guard lock(mu_);
  targets_[node].devices.insert(path);
}

void FakeFabric::SetTargetOnline(const std::string& node, bool online) {
  std::lock_guard lock(mu_);
  targets_[node].online = online;
}

std::string FakeFabric::DeviceName(int instance, uint32_t nsid) {
  return fmt::format("/dev/nvme{}n{}", instance, nsid);
}

const FakeFabric::Subsystem* FakeFabric::Reach(const NvmeConnectSpec& spec, std::string* why,
                                               bool check_acl, int* unanswered) const {
  auto at = ports_at_.find({spec.address, spec.service});
  if (at != ports_at_.end()) {
    for (const auto& [node, id] : at->second) {
      ++targets_examined_;
      const Target& target = targets_.at(node);
      const Port& port = target.ports.at(id);
      if (port.spec.transport != spec.transport) continue;
      if (!target.online) {
        *why = "target does not answer";
        if (unanswered) *unanswered = ETIMEDOUT;
        return nullptr;
      }
      auto sit = target.subsystems.find(spec.subsys_nqn);
      if (!port.subsystems.count(spec.subsys_nqn) || sit == target.subsystems.end()) {
        *why = "subsystem not exported on this port (Connect Invalid Data Parameter)";
        return nullptr;
      }
      if (check_acl && !sit->second.hosts.count(spec.host_nqn)) {
        *why = fmt::format("host {} not allowed (Connect Invalid Host)", spec.host_nqn);
        return nullptr;
      }
      return &sit->second;
    }
  }
  *why = "connection refused";
  if (unanswered) *unanswered = ECONNREFUSED;
  return nullptr;
}

uint64_t FakeFabric::targets_examined() {
  std::lock_guard lock(mu_);
  return targets_examined_;
}

void FakeFabric::UnindexPortLocked(const std::string& node, const Port& port) {
  auto at = ports_at_.find({port.spec.address, port.spec.service});
  if (at == ports_at_.end()) return;
  at->second.erase({node, port.spec.id});
  if (at->second.empty()) ports_at_.erase(at);
}

void FakeFabric::IndexPortLocked(const std::string& node, const Port& port) {
  ports_at_[{port.spec.address, port.spec.service}].insert({node, port.spec.id});
}

std::optional<std::pair<int, uint32_t>> FakeFabric::ParseDeviceName(std::string_view path) {
  constexpr std::string_view kPrefix = "/dev/nvme";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  // "<head>n<nsid>", both decimal without sign or leading zeros (DeviceName's spelling).
  auto number = [](std::string_view digits, auto& out) {
    if (digits.empty() || (digits.size() > 1 && digits[0] == '0') ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return false;
    }
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc() && end == digits.data() + digits.size();
  };
  std::string_view rest = path.substr(kPrefix.size());
  size_t n = rest.find('n');
  int head = 0;
  uint32_t nsid = 0;
  if (n == std::string_view::npos || !number(rest.substr(0, n), head) ||
      !number(rest.substr(n + 1), nsid)) {
    return std::nullopt;
  }
  return std::pair{head, nsid};
}

NvmeController FakeFabric::Describe(const Controller& c) const {
  NvmeController out;
  out.name = fmt::format("nvme{}", c.instance);
  out.instance = c.instance;
  std::string why;
  out.state =
      Reach(c.spec, &why, false) ? NvmeControllerState::kLive : NvmeControllerState::kConnecting;
  out.transport = std::string(NvmeTransportName(c.spec.transport));
  out.traddr = c.spec.address;
  out.trsvcid = c.spec.service;
  out.subsys_nqn = c.spec.subsys_nqn;
  out.host_nqn = c.spec.host_nqn;
  return out;
}

bool FakeFabric::HostDeviceExists(const std::string& node, std::string_view path) {
  std::lock_guard lock(mu_);
  return HostDeviceLocked(node, path) != nullptr;
}

const FakeFabric::Controller* FakeFabric::HostDeviceLocked(const std::string& node,
                                                           std::string_view path) const {
  auto hit = hosts_.find(node);
  if (hit == hosts_.end()) return nullptr;
  auto name = ParseDeviceName(path);
  if (!name) return nullptr;
  for (const auto& [instance, c] : hit->second.controllers) {
    if (c.head != name->first || !c.scanned) continue;
    std::string why;
    const Subsystem* s = Reach(c.spec, &why, false);
    if (s == nullptr) continue;
    auto ns = s->namespaces.find(name->second);
    if (ns != s->namespaces.end() && ns->second.enabled) return &c;
  }
  return nullptr;
}

std::optional<std::pair<std::string, std::string>> FakeFabric::BackingOf(const std::string& node,
                                                                         std::string_view path) {
  std::lock_guard lock(mu_);
  auto hit = hosts_.find(node);
  if (hit == hosts_.end()) return std::nullopt;
  auto name = ParseDeviceName(path);
  if (!name) return std::nullopt;
  for (const auto& [instance, c] : hit->second.controllers) {
    if (c.head != name->first) continue;
    auto at = ports_at_.find({c.spec.address, c.spec.service});
    if (at == ports_at_.end()) continue;
    const std::string* previous = nullptr;
    for (const auto& [target_node, id] : at->second) {
      if (previous != nullptr && *previous == target_node) continue;  // one look per target
      previous = &target_node;
      ++targets_examined_;
      const Target& target = targets_.at(target_node);
      auto sit = target.subsystems.find(c.spec.subsys_nqn);
      if (sit == target.subsystems.end()) continue;
      auto ns = sit->second.namespaces.find(name->second);
      if (ns != sit->second.namespaces.end()) return std::pair{target_node, ns->second.device_path};
    }
  }
  return std::nullopt;
}

void FakeFabric::DelayNamespaceScans(const std::string& node, bool delay) {
  std::lock_guard lock(mu_);
  hosts_[node].delay_scans = delay;
}

void FakeFabric::FinishNamespaceScans(const std::string& node) {
  std::lock_guard lock(mu_);
  for (auto& [instance, c] : hosts_[node].controllers) c.scanned = true;
}

void FakeFabric::ExpireDisconnectedControllers(const std::string& node) {
  std::lock_guard lock(mu_);
  auto& controllers = hosts_[node].controllers;
  for (auto it = controllers.begin(); it != controllers.end();) {
    std::string why;
    it = Reach(it->second.spec, &why, false) ? std::next(it) : controllers.erase(it);
  }
}

// ---- FakeNvmetTarget ----

FakeNvmetTarget::FakeNvmetTarget(FakeFabric& fabric, std::string node)
    : fabric_(fabric), node_(std::move(node)) {
  std::lock_guard lock(fabric_.mu_);
  fabric_.targets_[node_];
}

void FakeNvmetTarget::FailCall(std::string method, int nth, common::Status status) {
  std::lock_guard lock(fabric_.mu_);
  fabric_.target_faults_.FailCall(std::move(method), nth, std::move(status));
}

void FakeNvmetTarget::AddBlockDevice(const std::string& path) {
  fabric_.AddTargetDevice(node_, path);
}

common::Status FakeNvmetTarget::EnsurePort(const NvmetPortSpec& spec) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("EnsurePort"));
  std::string what = fmt::format("nvmet port {}", spec.id);
  if (spec.id == 0 || spec.address.empty() || spec.service.empty()) {
    return common::InvalidArgumentError("{}: id, address and service are required", what);
  }
  auto& t = fabric_.targets_[node_];
  auto it = t.ports.find(spec.id);
  if (it != t.ports.end()) {
    if (it->second.spec == spec) return common::OkStatus();
    if (!it->second.subsystems.empty()) {
      return common::FailedPreconditionError(
          "{}: exists with other settings and {} linked subsystem(s)", what,
          it->second.subsystems.size());
    }
  }
  FakeFabric::Port& port = t.ports[spec.id];
  fabric_.UnindexPortLocked(node_, port);
  port.spec = spec;
  fabric_.IndexPortLocked(node_, port);
  return common::OkStatus();
}

common::Status FakeNvmetTarget::RemovePort(uint16_t port_id) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("RemovePort"));
  auto& ports = fabric_.targets_[node_].ports;
  auto it = ports.find(port_id);
  if (it != ports.end()) {
    fabric_.UnindexPortLocked(node_, it->second);
    ports.erase(it);
  }
  return common::OkStatus();
}

common::Status FakeNvmetTarget::EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                                const std::vector<std::string>& hosts) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("EnsureSubsystem"));
  std::string what = fmt::format("nvmet subsystem {}", nqn);
  RETURN_IF_ERROR(ValidateNqn(nqn));
  if (serial.empty() || serial.size() > 20) {
    return common::InvalidArgumentError("{}: serial \"{}\" must have 1 to 20 characters", what,
                                        serial);
  }
  for (const auto& h : hosts) RETURN_IF_ERROR(ValidateNqn(h).WithContext(what));
  auto& t = fabric_.targets_[node_];
  auto& s = t.subsystems[std::string(nqn)];
  s.serial = std::string(serial);
  return SetAllowedHostsLocked(t, nqn, hosts);
}

common::Status FakeNvmetTarget::SetAllowedHostsLocked(FakeFabric::Target& t, std::string_view nqn,
                                                      const std::vector<std::string>& hosts) {
  std::string what = fmt::format("setting allowed hosts of nvmet subsystem {}", nqn);
  auto it = t.subsystems.find(nqn);
  if (it == t.subsystems.end()) return common::NotFoundError("{}: no such subsystem", what);
  for (const auto& h : hosts) RETURN_IF_ERROR(ValidateNqn(h).WithContext(what));
  it->second.hosts = std::set<std::string>(hosts.begin(), hosts.end());
  return common::OkStatus();
}

common::Status FakeNvmetTarget::SetAllowedHosts(std::string_view nqn,
                                                const std::vector<std::string>& hosts) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("SetAllowedHosts"));
  return SetAllowedHostsLocked(fabric_.targets_[node_], nqn, hosts);
}

common::Status FakeNvmetTarget::EnsureNamespace(std::string_view nqn,
                                                const NvmetNamespaceSpec& spec) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("EnsureNamespace"));
  std::string what = fmt::format("nvmet namespace {} of {}", spec.nsid, nqn);
  RETURN_IF_ERROR(ValidateNamespaceSpec(what, spec));
  auto& t = fabric_.targets_[node_];
  auto it = t.subsystems.find(nqn);
  if (it == t.subsystems.end()) return common::NotFoundError("{}: no such subsystem", what);
  NvmetNamespaceSpec want = spec;
  want.device_uuid = LowerUuid(spec.device_uuid);
  auto nit = it->second.namespaces.find(spec.nsid);
  if (nit != it->second.namespaces.end()) {
    RETURN_IF_ERROR(CheckNamespaceReplace(
        what, nit->second.enabled,
        nit->second.device_path == want.device_path && nit->second.device_uuid == want.device_uuid,
        want));
  }
  if (want.enabled && !t.devices.count(want.device_path)) {
    // What the kernel answers when enabling a namespace on a missing device.
    it->second.namespaces[spec.nsid] =
        NvmetNamespaceSpec{want.nsid, want.device_path, want.device_uuid, false};
    return common::NotFoundError("{}: enabling: no such device {}", what, want.device_path);
  }
  it->second.namespaces[spec.nsid] = want;
  return common::OkStatus();
}

common::Status FakeNvmetTarget::RemoveNamespace(std::string_view nqn, uint32_t nsid) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("RemoveNamespace"));
  auto& t = fabric_.targets_[node_];
  auto it = t.subsystems.find(nqn);
  if (it != t.subsystems.end()) it->second.namespaces.erase(nsid);
  return common::OkStatus();
}

common::Status FakeNvmetTarget::RemoveSubsystem(std::string_view nqn) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("RemoveSubsystem"));
  auto& t = fabric_.targets_[node_];
  for (auto& [id, port] : t.ports) port.subsystems.erase(std::string(nqn));
  auto it = t.subsystems.find(nqn);
  if (it != t.subsystems.end()) t.subsystems.erase(it);
  return common::OkStatus();
}

common::Status FakeNvmetTarget::LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("LinkSubsystemToPort"));
  std::string what = fmt::format("linking nvmet subsystem {} to port {}", nqn, port_id);
  auto& t = fabric_.targets_[node_];
  if (!t.subsystems.count(nqn)) return common::NotFoundError("{}: no such subsystem", what);
  auto pit = t.ports.find(port_id);
  if (pit == t.ports.end()) return common::NotFoundError("{}: no such port", what);
  pit->second.subsystems.insert(std::string(nqn));
  return common::OkStatus();
}

common::Status FakeNvmetTarget::UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("UnlinkSubsystemFromPort"));
  auto& t = fabric_.targets_[node_];
  auto pit = t.ports.find(port_id);
  if (pit != t.ports.end()) pit->second.subsystems.erase(std::string(nqn));
  return common::OkStatus();
}

common::Result<std::vector<NvmetPortInfo>> FakeNvmetTarget::ListPorts() {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("ListPorts"));
  std::vector<NvmetPortInfo> out;
  for (const auto& [id, port] : fabric_.targets_[node_].ports) {
    out.push_back({port.spec, {port.subsystems.begin(), port.subsystems.end()}});
  }
  return out;
}

NvmetSubsystemInfo FakeNvmetTarget::DescribeLocked(const FakeFabric::Target& t,
                                                   const std::string& nqn,
                                                   const FakeFabric::Subsystem& s) const {
  NvmetSubsystemInfo info;
  info.nqn = nqn;
  info.serial = s.serial;
  info.allowed_hosts.assign(s.hosts.begin(), s.hosts.end());
  for (const auto& [nsid, ns] : s.namespaces) info.namespaces.push_back(ns);
  for (const auto& [id, port] : t.ports) {
    if (port.subsystems.count(nqn)) info.ports.push_back(id);
  }
  return info;
}

common::Result<std::vector<NvmetSubsystemInfo>> FakeNvmetTarget::ListSubsystems() {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("ListSubsystems"));
  std::vector<NvmetSubsystemInfo> out;
  const auto& t = fabric_.targets_[node_];
  for (const auto& [nqn, s] : t.subsystems) out.push_back(DescribeLocked(t, nqn, s));
  return out;
}

common::Result<NvmetSubsystemInfo> FakeNvmetTarget::GetSubsystem(std::string_view nqn) {
  std::lock_guard lock(fabric_.mu_);
  RETURN_IF_ERROR(fabric_.target_faults_.Check("GetSubsystem"));
  const auto& t = fabric_.targets_[node_];
  auto it = t.subsystems.find(nqn);
  if (it == t.subsystems.end()) {
    return common::NotFoundError("reading nvmet subsystem {}: no such subsystem", nqn);
  }
  return DescribeLocked(t, it->first, it->second);
}

}  // namespace agent::sys
