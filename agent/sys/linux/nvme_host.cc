#include "agent/sys/linux/nvme_host.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "agent/sys/linux/nvme_md_fs.h"

namespace agent::sys {
namespace {

namespace fs = fsutil;

bool ParseIntStrict(std::string_view s, int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// "nvme12" → 12; -1 for anything else (nvme-fabrics, nvme-subsys0, nvme0n1, …).
int ControllerInstance(std::string_view name) {
  if (name.substr(0, 4) != "nvme" || name.size() == 4) return -1;
  int n = -1;
  return ParseIntStrict(name.substr(4), n) ? n : -1;
}

// "nvme<N>n<M>": a namespace head node; not "nvme<N>c<C>n<M>" (hidden per-path node) and not
// a partition ("nvme0n1p1").
bool IsHeadNamespaceName(const std::string& name) {
  if (name.rfind("nvme", 0) != 0) return false;
  size_t i = 4, digits = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i, ++digits;
  if (digits == 0 || i >= name.size() || name[i] != 'n') return false;
  ++i;
  digits = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i, ++digits;
  return digits > 0 && i == name.size();
}

}  // namespace

common::Result<std::string> BuildFabricsOptions(const NvmeConnectSpec& spec,
                                                bool with_fast_io_fail_tmo) {
  std::string what =
      fmt::format("connect options for {} at {}:{}", spec.subsys_nqn, spec.address, spec.service);
  if (spec.address.empty() || spec.service.empty()) {
    return common::InvalidArgumentError("{}: address and service are required", what);
  }
  RETURN_IF_ERROR(ValidateNqn(spec.subsys_nqn).WithContext(what));
  RETURN_IF_ERROR(ValidateNqn(spec.host_nqn).WithContext(what));
  for (std::string_view v : {std::string_view(spec.address), std::string_view(spec.service),
                             std::string_view(spec.subsys_nqn), std::string_view(spec.host_nqn),
                             std::string_view(spec.host_id)}) {
    if (v.find_first_of(",=\n") != std::string_view::npos) {
      return common::InvalidArgumentError("{}: value \"{}\" contains ',', '=' or a newline", what,
                                          v);
    }
  }
  if (spec.keep_alive_tmo_s <= 0 || spec.ctrl_loss_tmo_s < -1 || spec.reconnect_delay_s <= 0 ||
      spec.fast_io_fail_tmo_s < -1) {
    return common::InvalidArgumentError(
        "{}: keep_alive_tmo and reconnect_delay must be > 0, ctrl_loss_tmo and "
        "fast_io_fail_tmo >= -1",
        what);
  }
  std::string out = fmt::format("transport={},traddr={},trsvcid={},nqn={},hostnqn={}",
                                NvmeTransportName(spec.transport), spec.address, spec.service,
                                spec.subsys_nqn, spec.host_nqn);
  if (!spec.host_id.empty()) out += ",hostid=" + spec.host_id;
  out += fmt::format(",keep_alive_tmo={},ctrl_loss_tmo={},reconnect_delay={}",
                     spec.keep_alive_tmo_s, spec.ctrl_loss_tmo_s, spec.reconnect_delay_s);
  if (with_fast_io_fail_tmo) out += fmt::format(",fast_io_fail_tmo={}", spec.fast_io_fail_tmo_s);
  return out;
}

common::Result<int> ParseFabricsResponse(std::string_view response) {
  while (!response.empty() && (response.back() == '\n' || response.back() == '\0')) {
    response.remove_suffix(1);
  }
  size_t pos = 0;
  while (pos <= response.size()) {
    size_t end = response.find(',', pos);
    std::string_view field = response.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (field.substr(0, 9) == "instance=") {
      int n = -1;
      if (ParseIntStrict(field.substr(9), n) && n >= 0) return n;
      break;
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return common::InternalError("/dev/nvme-fabrics answered \"{}\", want instance=N,cntlid=M",
                               response);
}

void ParseControllerAddress(std::string_view address, std::string* traddr, std::string* trsvcid) {
  size_t pos = 0;
  while (pos < address.size()) {
    size_t end = address.find(',', pos);
    std::string_view field = address.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (field.substr(0, 7) == "traddr=") *traddr = std::string(field.substr(7));
    if (field.substr(0, 8) == "trsvcid=") *trsvcid = std::string(field.substr(8));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
}

LinuxNvmeHost::LinuxNvmeHost(LinuxNvmeHostPaths paths) : paths_(std::move(paths)) {}

common::Result<NvmeController> LinuxNvmeHost::ReadController(const std::string& name) {
  const std::string dir = paths_.sys_class_nvme + "/" + name;
  if (!fs::Exists(dir)) return common::NotFoundError("NVMe controller {}: not present", name);
  NvmeController c;
  c.name = name;
  c.instance = ControllerInstance(name);
  c.state = ParseNvmeControllerState(fs::ReadAttrOr(dir + "/state", ""));
  c.transport = fs::ReadAttrOr(dir + "/transport", "");
  ParseControllerAddress(fs::ReadAttrOr(dir + "/address", ""), &c.traddr, &c.trsvcid);
  c.subsys_nqn = fs::ReadAttrOr(dir + "/subsysnqn", "");
  c.host_nqn = fs::ReadAttrOr(dir + "/hostnqn", "");
  return c;
}

common::Result<std::vector<NvmeController>> LinuxNvmeHost::ListControllers() {
  std::vector<NvmeController> out;
  auto names = fs::ListDir(paths_.sys_class_nvme);
  if (!names.ok()) {
    // No nvme driver loaded: no controllers.
    if (names.status().code() == common::StatusCode::kNotFound) return out;
    return names.status().WithContext("listing NVMe controllers");
  }
  for (const auto& name : *names) {
    if (ControllerInstance(name) < 0) continue;
    auto c = ReadController(name);
    if (c.ok()) out.push_back(std::move(c).value());  // a controller may vanish meanwhile
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.instance < b.instance; });
  return out;
}

common::Status LinuxNvmeHost::EnsureFastIoFail(const std::string& name, int seconds) {
  const std::string path = paths_.sys_class_nvme + "/" + name + "/fast_io_fail_tmo";
  std::string want = seconds < 0 ? "off" : std::to_string(seconds);
  if (fs::ReadAttrOr(path, "") == want) return common::OkStatus();
  return fs::WriteAttr(path, want)
      .WithContext(fmt::format("setting fast_io_fail_tmo of NVMe controller {}", name));
}

common::Result<std::string> LinuxNvmeHost::WriteFabrics(const std::string& options) {
  int fd;
  do {
    fd = ::open(paths_.fabrics_device.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return common::ErrnoToStatus(
        errno, fmt::format("opening {} (is nvme-fabrics loaded?)", paths_.fabrics_device));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ssize_t n;
  do {
    n = ::write(fd, options.data(), options.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return common::ErrnoToStatus(errno, "connecting");
  char buf[256];
  do {
    n = ::read(fd, buf, sizeof(buf) - 1);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return common::ErrnoToStatus(errno, "reading the connect answer");
  return std::string(buf, static_cast<size_t>(n));
}

common::Result<NvmeController> LinuxNvmeHost::Connect(const NvmeConnectSpec& spec) {
  std::string what = fmt::format("connecting to NVMe-oF subsystem {} at {} {}:{}", spec.subsys_nqn,
                                 NvmeTransportName(spec.transport), spec.address, spec.service);
  ASSIGN_OR_RETURN(std::string options, BuildFabricsOptions(spec, true));
  ASSIGN_OR_RETURN(auto existing, ListControllers());
  for (const auto& c : existing) {
    if (c.subsys_nqn == spec.subsys_nqn && c.traddr == spec.address && c.trsvcid == spec.service &&
        c.transport == NvmeTransportName(spec.transport) && c.host_nqn == spec.host_nqn &&
        c.state != NvmeControllerState::kDeleting && c.state != NvmeControllerState::kDead) {
      RETURN_IF_ERROR(EnsureFastIoFail(c.name, spec.fast_io_fail_tmo_s).WithContext(what));
      return c;
    }
  }
  bool option_accepted = true;
  auto answer = WriteFabrics(options);
  if (!answer.ok() && answer.status().code() == common::StatusCode::kInvalidArgument) {
    // Older kernels reject fast_io_fail_tmo in the option string; set it through sysfs.
    ASSIGN_OR_RETURN(std::string without, BuildFabricsOptions(spec, false));
    answer = WriteFabrics(without);
    option_accepted = false;
  }
  if (!answer.ok()) return answer.status().WithContext(what);
  ASSIGN_OR_RETURN(int instance, ParseFabricsResponse(*answer));
  std::string name = fmt::format("nvme{}", instance);
  if (!option_accepted) {
    RETURN_IF_ERROR(EnsureFastIoFail(name, spec.fast_io_fail_tmo_s).WithContext(what));
  }
  auto c = ReadController(name);
  if (!c.ok()) return c.status().WithContext(what);
  c->created = true;
  return c;
}

common::Status LinuxNvmeHost::Disconnect(std::string_view controller_name) {
  std::string name(controller_name);
  if (ControllerInstance(name) < 0) {
    return common::InvalidArgumentError("disconnecting NVMe controller \"{}\": not nvme<N>", name);
  }
  const std::string path = paths_.sys_class_nvme + "/" + name + "/delete_controller";
  if (!fs::Exists(path)) return common::OkStatus();
  common::Status s = fs::WriteAttr(path, "1");
  // It may have been deleted between the check and the write.
  if (!s.ok() && s.code() == common::StatusCode::kNotFound) return common::OkStatus();
  return s.WithContext("disconnecting NVMe controller " + name);
}

std::string LinuxNvmeHost::NoteKey(std::string_view subsys_nqn,
                                   const NvmeNamespaceSelector& selector) {
  // The nsid when there is one (a uuid, if also given, is checked on the device); else the uuid.
  return selector.nsid ? fmt::format("{}\nnsid {}", subsys_nqn, *selector.nsid)
                       : fmt::format("{}\nuuid {}", subsys_nqn, selector.uuid);
}

bool LinuxNvmeHost::NamespaceMatches(const std::string& name, std::string_view subsys_nqn,
                                     const NvmeNamespaceSelector& selector) {
  const std::string dir = paths_.sys_block + "/" + name;
  if (fs::ReadAttrOr(dir + "/device/subsysnqn", "") != subsys_nqn) return false;
  if (selector.nsid) {
    int nsid = -1;
    if (!ParseIntStrict(fs::ReadAttrOr(dir + "/nsid", ""), nsid) ||
        static_cast<uint32_t>(nsid) != *selector.nsid) {
      return false;
    }
  }
  return selector.uuid.empty() || fs::ReadAttrOr(dir + "/uuid", "") == selector.uuid;
}

common::Result<std::string> LinuxNvmeHost::FindNamespaceDevice(
    std::string_view subsys_nqn, const NvmeNamespaceSelector& selector) {
  std::string what = fmt::format("finding namespace of {}", subsys_nqn);
  if (!selector.nsid && selector.uuid.empty()) {
    return common::InvalidArgumentError("{}: give an nsid or a namespace uuid", what);
  }
  NvmeNamespaceSelector want = selector;
  for (char& ch : want.uuid) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::string key = NoteKey(subsys_nqn, want);
  std::string noted;
  {
    std::lock_guard lock(mu_);
    if (auto it = noted_.find(key); it != noted_.end()) noted = it->second;
  }
  if (!noted.empty() && NamespaceMatches(noted, subsys_nqn, want)) return paths_.dev + "/" + noted;

  auto names = fs::ListDir(paths_.sys_block);
  if (!names.ok()) return names.status().WithContext(what);
  std::map<std::string, std::string, std::less<>> seen;  // every head namespace passed
  std::string found;
  for (const auto& name : *names) {
    if (!IsHeadNamespaceName(name)) continue;
    const std::string dir = paths_.sys_block + "/" + name;
    const std::string nqn = fs::ReadAttrOr(dir + "/device/subsysnqn", "");
    if (nqn.empty()) continue;
    int nsid = -1;
    const bool has_nsid = ParseIntStrict(fs::ReadAttrOr(dir + "/nsid", ""), nsid) && nsid > 0;
    const std::string uuid = fs::ReadAttrOr(dir + "/uuid", "");
    if (has_nsid) seen.emplace(NoteKey(nqn, {static_cast<uint32_t>(nsid), ""}), name);
    if (!uuid.empty()) seen.emplace(NoteKey(nqn, {std::nullopt, uuid}), name);
    if (!found.empty() || nqn != subsys_nqn) continue;
    if (want.nsid && (!has_nsid || static_cast<uint32_t>(nsid) != *want.nsid)) continue;
    if (!want.uuid.empty() && uuid != want.uuid) continue;
    found = name;
  }
  {
    std::lock_guard lock(mu_);
    ++namespace_scans_;
    noted_ = std::move(seen);  // what the kernel shows now; the old notes may name gone devices
  }
  if (!found.empty()) return paths_.dev + "/" + found;
  std::string which = want.nsid ? fmt::format("nsid {}", *want.nsid) : std::string();
  if (!want.uuid.empty()) which += (which.empty() ? "uuid " : " uuid ") + selector.uuid;
  return common::NotFoundError("{}: no block device for {}", what, which);
}

common::Result<std::string> LinuxNvmeHost::SubsystemOfDevice(std::string_view device) {
  const std::string prefix = paths_.dev + "/";
  const std::string name(device.substr(device.rfind(prefix, 0) == 0 ? prefix.size() : 0));
  if (!IsHeadNamespaceName(name)) {
    return common::NotFoundError("{} is not an NVMe namespace head device", device);
  }
  // The head's device is its subsystem (nvme-subsysN) with native multipath, its controller
  // without; both carry subsysnqn.
  auto nqn = fs::ReadAttr(paths_.sys_block + "/" + name + "/device/subsysnqn");
  if (!nqn.ok())
    return nqn.status().WithContext(fmt::format("finding the subsystem of {}", device));
  if (nqn->empty()) return common::NotFoundError("{}: the kernel shows no subsystem NQN", device);
  return nqn;
}

int64_t LinuxNvmeHost::namespace_scans() const {
  std::lock_guard lock(mu_);
  return namespace_scans_;
}

common::Result<NvmeHostIdentity> LinuxNvmeHost::GetHostIdentity() {
  // Regular files, not attributes: ReadFile reads them to EOF.
  auto nqn = fs::ReadFile(paths_.etc_nvme + "/hostnqn");
  auto id = fs::ReadFile(paths_.etc_nvme + "/hostid");
  if (nqn.ok() && !nqn->empty() && id.ok() && !id->empty()) {
    RETURN_IF_ERROR(ValidateNqn(*nqn).WithContext(paths_.etc_nvme + "/hostnqn"));
    return NvmeHostIdentity{*nqn, *id};
  }
  auto machine = fs::ReadFile(paths_.machine_id);
  if (!machine.ok()) {
    return machine.status().WithContext(
        fmt::format("no {}/hostnqn and hostid, and no machine id", paths_.etc_nvme));
  }
  ASSIGN_OR_RETURN(auto derived, HostIdentityFromMachineId(*machine));
  // Keep a configured NQN or ID when only one of the two files exists.
  if (nqn.ok() && !nqn->empty()) derived.host_nqn = *nqn;
  if (id.ok() && !id->empty()) derived.host_id = *id;
  return derived;
}

}  // namespace agent::sys
