#include "agent/sys/linux/nvmet.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "agent/sys/linux/nvme_md_fs.h"

namespace agent::sys {
namespace {

namespace fs = fsutil;

template <typename T>
bool ParseInt(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

LinuxNvmetTarget::LinuxNvmetTarget(std::string root) : root_(std::move(root)) {}

std::string LinuxNvmetTarget::PortDir(uint16_t id) const {
  return fmt::format("{}/ports/{}", root_, id);
}

std::string LinuxNvmetTarget::SubsysDir(std::string_view nqn) const {
  return fmt::format("{}/subsystems/{}", root_, nqn);
}

common::Status LinuxNvmetTarget::EnsurePort(const NvmetPortSpec& spec) {
  std::string what = fmt::format("nvmet port {}", spec.id);
  if (spec.id == 0 || spec.address.empty() || spec.service.empty()) {
    return common::InvalidArgumentError("{}: id, address and service are required", what);
  }
  const std::string dir = PortDir(spec.id);
  if (fs::Exists(dir)) {
    auto current = ReadPort(spec.id);
    if (current.ok() && current->spec == spec) return common::OkStatus();
    if (current.ok() && !current->subsystems.empty()) {
      return common::FailedPreconditionError(
          "{}: exists with other settings ({} {}:{}) and {} linked subsystem(s)", what,
          NvmeTransportName(current->spec.transport), current->spec.address, current->spec.service,
          current->subsystems.size());
    }
  } else {
    RETURN_IF_ERROR(fs::EnsureDir(dir).WithContext(what));
  }
  std::string adrfam = spec.address.find(':') != std::string::npos ? "ipv6" : "ipv4";
  RETURN_IF_ERROR(
      fs::WriteAttr(dir + "/addr_trtype", NvmeTransportName(spec.transport)).WithContext(what));
  RETURN_IF_ERROR(fs::WriteAttr(dir + "/addr_adrfam", adrfam).WithContext(what));
  RETURN_IF_ERROR(fs::WriteAttr(dir + "/addr_traddr", spec.address).WithContext(what));
  RETURN_IF_ERROR(fs::WriteAttr(dir + "/addr_trsvcid", spec.service).WithContext(what));
  return common::OkStatus();
}

common::Status LinuxNvmetTarget::RemovePort(uint16_t port_id) {
  std::string what = fmt::format("removing nvmet port {}", port_id);
  const std::string dir = PortDir(port_id);
  if (!fs::Exists(dir)) return common::OkStatus();
  auto linked = fs::ListDir(dir + "/subsystems");
  if (linked.ok()) {
    for (const auto& nqn : *linked) {
      RETURN_IF_ERROR(fs::RemoveLink(dir + "/subsystems/" + nqn).WithContext(what));
    }
  }
  return fs::RemoveDir(dir).WithContext(what);
}

common::Status LinuxNvmetTarget::EnsureSubsystem(
    std::string_view nqn, std::string_view serial,
    const std::vector<std::string>& allowed_host_nqns) {
  std::string what = fmt::format("nvmet subsystem {}", nqn);
  RETURN_IF_ERROR(ValidateNqn(nqn));
  if (serial.empty() || serial.size() > 20) {
    return common::InvalidArgumentError("{}: serial \"{}\" must have 1 to 20 characters", what,
                                        serial);
  }
  for (const auto& host : allowed_host_nqns) RETURN_IF_ERROR(ValidateNqn(host).WithContext(what));
  const std::string dir = SubsysDir(nqn);
  RETURN_IF_ERROR(fs::EnsureDir(dir).WithContext(what));
  if (fs::ReadAttrOr(dir + "/attr_allow_any_host", "") != "0") {
    RETURN_IF_ERROR(fs::WriteAttr(dir + "/attr_allow_any_host", "0").WithContext(what));
  }
  if (fs::ReadAttrOr(dir + "/attr_serial", "") != serial) {
    common::Status s = fs::WriteAttr(dir + "/attr_serial", serial);
    if (!s.ok()) {
      return common::FailedPreconditionError("{}: setting serial {}: {}", what, serial,
                                             s.message());
    }
  }
  return SetAllowedHosts(nqn, allowed_host_nqns);
}

common::Status LinuxNvmetTarget::SetAllowedHosts(std::string_view nqn,
                                                 const std::vector<std::string>& host_nqns) {
  std::string what = fmt::format("setting allowed hosts of nvmet subsystem {}", nqn);
  const std::string dir = SubsysDir(nqn);
  if (!fs::Exists(dir)) return common::NotFoundError("{}: no such subsystem", what);
  std::set<std::string> want(host_nqns.begin(), host_nqns.end());
  for (const auto& host : want) RETURN_IF_ERROR(ValidateNqn(host).WithContext(what));
  ASSIGN_OR_RETURN(auto have, fs::ListDir(dir + "/allowed_hosts"));
  // Remove first: a shrinking list must never be wider than both old and new ones.
  for (const auto& host : have) {
    if (!want.count(host)) {
      RETURN_IF_ERROR(fs::RemoveLink(dir + "/allowed_hosts/" + host).WithContext(what));
    }
  }
  for (const auto& host : want) {
    std::string host_dir = root_ + "/hosts/" + host;
    RETURN_IF_ERROR(fs::EnsureDir(host_dir).WithContext(what));
    RETURN_IF_ERROR(fs::EnsureSymlink(host_dir, dir + "/allowed_hosts/" + host).WithContext(what));
  }
  return common::OkStatus();
}

common::Status LinuxNvmetTarget::EnsureNamespace(std::string_view nqn,
                                                 const NvmetNamespaceSpec& spec) {
  std::string what = fmt::format("nvmet namespace {} of {}", spec.nsid, nqn);
  RETURN_IF_ERROR(ValidateNamespaceSpec(what, spec));
  const std::string subsys = SubsysDir(nqn);
  if (!fs::Exists(subsys)) return common::NotFoundError("{}: no such subsystem", what);
  const std::string dir = fmt::format("{}/namespaces/{}", subsys, spec.nsid);
  NvmetNamespaceSpec want = spec;
  want.device_uuid = LowerUuid(spec.device_uuid);
  const std::string& uuid = want.device_uuid;
  RETURN_IF_ERROR(fs::EnsureDir(dir).WithContext(what));
  bool enabled = fs::ReadAttrOr(dir + "/enable", "0") == "1";
  bool same = fs::ReadAttrOr(dir + "/device_path", "") == spec.device_path &&
              LowerUuid(fs::ReadAttrOr(dir + "/device_uuid", "")) == uuid;
  RETURN_IF_ERROR(CheckNamespaceReplace(what, enabled, same, want));
  if (enabled && spec.enabled) {
    // The backing partition may have grown (expansion): nvmet compares the size and, when it
    // changed, tells the connected hosts (namespace-changed event), which then rescan. Cheap
    // when nothing changed; absent before Linux 5.9.
    const std::string revalidate = dir + "/revalidate_size";
    if (!fs::Exists(revalidate)) return common::OkStatus();
    return fs::WriteAttr(revalidate, "1").WithContext(what + ": revalidating its size");
  }
  if (enabled && !spec.enabled) return fs::WriteAttr(dir + "/enable", "0").WithContext(what);
  if (!same) {
    RETURN_IF_ERROR(fs::WriteAttr(dir + "/device_path", spec.device_path).WithContext(what));
    RETURN_IF_ERROR(fs::WriteAttr(dir + "/device_uuid", uuid).WithContext(what));
    RETURN_IF_ERROR(fs::WriteAttr(dir + "/device_nguid", uuid).WithContext(what));
  }
  if (spec.enabled) return fs::WriteAttr(dir + "/enable", "1").WithContext(what);
  return common::OkStatus();
}

common::Status LinuxNvmetTarget::RemoveNamespace(std::string_view nqn, uint32_t nsid) {
  std::string what = fmt::format("removing nvmet namespace {} of {}", nsid, nqn);
  const std::string dir = fmt::format("{}/namespaces/{}", SubsysDir(nqn), nsid);
  if (!fs::Exists(dir)) return common::OkStatus();
  if (fs::ReadAttrOr(dir + "/enable", "0") == "1") {
    RETURN_IF_ERROR(fs::WriteAttr(dir + "/enable", "0").WithContext(what));
  }
  return fs::RemoveDir(dir).WithContext(what);
}

common::Status LinuxNvmetTarget::RemoveSubsystem(std::string_view nqn) {
  std::string what = fmt::format("removing nvmet subsystem {}", nqn);
  const std::string dir = SubsysDir(nqn);
  if (!fs::Exists(dir)) return common::OkStatus();
  // Unlink from ports first so no host reaches a half-removed subsystem.
  auto ports = fs::ListDir(root_ + "/ports");
  if (ports.ok()) {
    for (const auto& port : *ports) {
      RETURN_IF_ERROR(fs::RemoveLink(fmt::format("{}/ports/{}/subsystems/{}", root_, port, nqn))
                          .WithContext(what));
    }
  }
  auto namespaces = fs::ListDir(dir + "/namespaces");
  if (namespaces.ok()) {
    for (const auto& ns : *namespaces) {
      uint32_t nsid = 0;
      if (!ParseInt(ns, nsid)) continue;
      RETURN_IF_ERROR(RemoveNamespace(nqn, nsid).WithContext(what));
    }
  }
  auto hosts = fs::ListDir(dir + "/allowed_hosts");
  if (hosts.ok()) {
    for (const auto& host : *hosts) {
      RETURN_IF_ERROR(fs::RemoveLink(dir + "/allowed_hosts/" + host).WithContext(what));
    }
  }
  return fs::RemoveDir(dir).WithContext(what);
}

common::Status LinuxNvmetTarget::LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) {
  std::string what = fmt::format("linking nvmet subsystem {} to port {}", nqn, port_id);
  const std::string subsys = SubsysDir(nqn);
  const std::string port = PortDir(port_id);
  if (!fs::Exists(subsys)) return common::NotFoundError("{}: no such subsystem", what);
  if (!fs::Exists(port)) return common::NotFoundError("{}: no such port", what);
  return fs::EnsureSymlink(subsys, fmt::format("{}/subsystems/{}", port, nqn)).WithContext(what);
}

common::Status LinuxNvmetTarget::UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) {
  return fs::RemoveLink(fmt::format("{}/subsystems/{}", PortDir(port_id), nqn))
      .WithContext(fmt::format("unlinking nvmet subsystem {} from port {}", nqn, port_id));
}

common::Result<NvmetPortInfo> LinuxNvmetTarget::ReadPort(uint16_t id) {
  std::string what = fmt::format("reading nvmet port {}", id);
  const std::string dir = PortDir(id);
  NvmetPortInfo info;
  info.spec.id = id;
  std::string trtype = fs::ReadAttrOr(dir + "/addr_trtype", "");
  auto transport = ParseNvmeTransport(trtype);
  // A port without a transport yet (just created) reads as tcp with an empty address.
  if (transport.ok()) info.spec.transport = *transport;
  ASSIGN_OR_RETURN(info.spec.address, fs::ReadAttr(dir + "/addr_traddr"));
  ASSIGN_OR_RETURN(info.spec.service, fs::ReadAttr(dir + "/addr_trsvcid"));
  auto linked = fs::ListDir(dir + "/subsystems");
  if (linked.ok()) info.subsystems = std::move(linked).value();
  return info;
}

common::Result<std::vector<NvmetPortInfo>> LinuxNvmetTarget::ListPorts() {
  std::vector<NvmetPortInfo> out;
  auto names = fs::ListDir(root_ + "/ports");
  if (!names.ok()) return names.status().WithContext("listing nvmet ports");
  for (const auto& name : *names) {
    uint16_t id = 0;
    if (!ParseInt(name, id)) continue;
    ASSIGN_OR_RETURN(auto info, ReadPort(id));
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.spec.id < b.spec.id; });
  return out;
}

common::Result<NvmetSubsystemInfo> LinuxNvmetTarget::GetSubsystem(std::string_view nqn) {
  std::string what = fmt::format("reading nvmet subsystem {}", nqn);
  const std::string dir = SubsysDir(nqn);
  if (!fs::Exists(dir)) return common::NotFoundError("{}: no such subsystem", what);
  NvmetSubsystemInfo info;
  info.nqn = std::string(nqn);
  info.serial = fs::ReadAttrOr(dir + "/attr_serial", "");
  info.allow_any_host = fs::ReadAttrOr(dir + "/attr_allow_any_host", "0") == "1";
  auto hosts = fs::ListDir(dir + "/allowed_hosts");
  if (hosts.ok()) info.allowed_hosts = std::move(hosts).value();
  auto namespaces = fs::ListDir(dir + "/namespaces");
  if (namespaces.ok()) {
    for (const auto& ns : *namespaces) {
      NvmetNamespaceSpec spec;
      if (!ParseInt(ns, spec.nsid)) continue;
      std::string ns_dir = dir + "/namespaces/" + ns;
      spec.device_path = fs::ReadAttrOr(ns_dir + "/device_path", "");
      spec.device_uuid = LowerUuid(fs::ReadAttrOr(ns_dir + "/device_uuid", ""));
      spec.enabled = fs::ReadAttrOr(ns_dir + "/enable", "0") == "1";
      info.namespaces.push_back(std::move(spec));
    }
    std::sort(info.namespaces.begin(), info.namespaces.end(),
              [](const auto& a, const auto& b) { return a.nsid < b.nsid; });
  }
  auto ports = fs::ListDir(root_ + "/ports");
  if (ports.ok()) {
    for (const auto& port : *ports) {
      uint16_t id = 0;
      if (!ParseInt(port, id)) continue;
      if (fs::Exists(fmt::format("{}/subsystems/{}", PortDir(id), nqn))) info.ports.push_back(id);
    }
    std::sort(info.ports.begin(), info.ports.end());
  }
  return info;
}

common::Result<std::vector<NvmetSubsystemInfo>> LinuxNvmetTarget::ListSubsystems() {
  std::vector<NvmetSubsystemInfo> out;
  auto names = fs::ListDir(root_ + "/subsystems");
  if (!names.ok()) return names.status().WithContext("listing nvmet subsystems");
  for (const auto& name : *names) {
    ASSIGN_OR_RETURN(auto info, GetSubsystem(name));
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace agent::sys
