#include "agent/failpoints.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>

#include <fmt/format.h>

namespace agent {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool KnownStep(std::string_view name) {
  return std::any_of(std::begin(kSteps), std::end(kSteps),
                     [&](const FailpointStep& s) { return s.name == name; });
}

std::string KnownSteps() {
  std::string out;
  for (const auto& s : kSteps) {
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

}  // namespace

std::string_view Name(FailpointPhase phase) {
  return phase == FailpointPhase::kBefore ? "before" : "after";
}

std::string Describe(const Failpoint& f) { return fmt::format("{}:{}", f.step, Name(f.phase)); }

common::Result<std::vector<Failpoint>> ParseFailpoints(std::string_view text) {
  std::vector<Failpoint> out;
  if (Trim(text).empty()) return out;
  size_t n = 0;
  for (size_t start = 0; start <= text.size(); ++n) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = Trim(text.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) {
      return common::InvalidArgumentError(
          "{}=\"{}\": entry {} is empty (want <step>[:before|after][,...])", kCrashAtEnv, text,
          n + 1);
    }
    Failpoint f;
    const size_t colon = entry.find(':');
    const std::string_view step = Trim(entry.substr(0, colon));
    if (!KnownStep(step)) {
      return common::InvalidArgumentError(
          "{}: entry {} (\"{}\") names the unknown step \"{}\"; "
          "known steps: {}",
          kCrashAtEnv, n + 1, entry, step, KnownSteps());
    }
    f.step = std::string(step);
    if (colon != std::string_view::npos) {
      const std::string_view phase = Trim(entry.substr(colon + 1));
      if (phase == "before") {
        f.phase = FailpointPhase::kBefore;
      } else if (phase == "after") {
        f.phase = FailpointPhase::kAfter;
      } else {
        return common::InvalidArgumentError(
            "{}: entry {} (\"{}\") has the phase \"{}\"; want \"before\" or \"after\"", kCrashAtEnv,
            n + 1, entry, phase);
      }
    }
    if (std::find(out.begin(), out.end(), f) != out.end()) {
      return common::InvalidArgumentError("{}: entry {} (\"{}\") names {} a second time",
                                          kCrashAtEnv, n + 1, entry, Describe(f));
    }
    out.push_back(std::move(f));
  }
  return out;
}

common::Result<std::vector<Failpoint>> FailpointsFromEnvironment(
    const std::function<const char*(const char*)>& getenv, std::string* ignored) {
  if (ignored != nullptr) ignored->clear();
  const std::string enabled_name(kFailpointsEnabledEnv);
  const std::string crash_at_name(kCrashAtEnv);
  const char* enabled = getenv(enabled_name.c_str());
  const char* crash_at = getenv(crash_at_name.c_str());
  const std::string_view on = enabled == nullptr ? "" : enabled;
  if (on != "" && on != "0" && on != "1") {
    return common::InvalidArgumentError("{}=\"{}\": want 1 (failpoints armed) or 0 (off)",
                                        kFailpointsEnabledEnv, on);
  }
  if (on != "1") {
    if (ignored != nullptr && crash_at != nullptr && *crash_at != '\0') {
      *ignored = fmt::format("{}=\"{}\" ignored: failpoints are off ({} is not 1)", kCrashAtEnv,
                             crash_at, kFailpointsEnabledEnv);
    }
    return std::vector<Failpoint>();
  }
  return ParseFailpoints(crash_at == nullptr ? "" : crash_at);
}

void KillSelf(const Failpoint& f) {
  const std::string line =
      fmt::format("meshstor-agent: failpoint {} fired: SIGKILL\n", Describe(f));
  // write(2) and no buffering: the line is out before the process is.
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

// Runs a state-changing call between the hooks of `step`.
#define MESHSTOR_FAILPOINT(step, call)                     \
  do {                                                     \
    k_.Hit(step, FailpointPhase::kBefore);                 \
    auto result = call;                                    \
    if (result.ok()) k_.Hit(step, FailpointPhase::kAfter); \
    return result;                                         \
  } while (0)

class FailpointKernel::Partitions final : public sys::Partitions {
 public:
  Partitions(FailpointKernel& k, sys::Partitions& inner) : k_(k), in_(inner) {}
  common::Result<std::vector<sys::PartitionInfo>> List(std::string_view d) override {
    return in_.List(d);
  }
  common::Result<sys::DriveTable> ReadTable(std::string_view d) override {
    return in_.ReadTable(d);
  }
  common::Result<sys::FreeSpace> GetFreeSpace(std::string_view d) override {
    return in_.GetFreeSpace(d);
  }
  common::Status EnsureGpt(std::string_view d) override {
    MESHSTOR_FAILPOINT("partition-table", in_.EnsureGpt(d));
  }
  common::Result<sys::PartitionInfo> Ensure(std::string_view d,
                                            const sys::PartitionSpec& s) override {
    MESHSTOR_FAILPOINT("partition-create", in_.Ensure(d, s));
  }
  common::Result<sys::PartitionInfo> Grow(std::string_view d, const sys::MemberRef& m,
                                          uint64_t size) override {
    MESHSTOR_FAILPOINT("partition-grow", in_.Grow(d, m, size));
  }
  common::Status Delete(std::string_view d, const sys::MemberRef& m) override {
    MESHSTOR_FAILPOINT("partition-delete", in_.Delete(d, m));
  }
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view d) override {
    return in_.ProbeSignature(d);
  }
  common::Result<sys::ZeroMethod> Zero(std::string_view d, const sys::MemberRef& m,
                                       bool allow) override {
    MESHSTOR_FAILPOINT("partition-zero", in_.Zero(d, m, allow));
  }

 private:
  FailpointKernel& k_;
  sys::Partitions& in_;
};

class FailpointKernel::Filesystem final : public sys::Filesystem {
 public:
  Filesystem(FailpointKernel& k, sys::Filesystem& inner) : k_(k), in_(inner) {}
  common::Result<bool> EnsureXfs(std::string_view d, const sys::XfsOptions& o) override {
    MESHSTOR_FAILPOINT("mkfs", in_.EnsureXfs(d, o));
  }
  common::Status Mount(std::string_view d, std::string_view t, std::string_view f,
                       const sys::MountOptions& o) override {
    MESHSTOR_FAILPOINT("mount", in_.Mount(d, t, f, o));
  }
  common::Status BindMount(std::string_view s, std::string_view t, bool ro) override {
    MESHSTOR_FAILPOINT("bind-mount", in_.BindMount(s, t, ro));
  }
  common::Status Unmount(std::string_view t) override {
    MESHSTOR_FAILPOINT("unmount", in_.Unmount(t));
  }
  common::Status RemoveMountPoint(std::string_view p) override { return in_.RemoveMountPoint(p); }
  common::Status EnsureDirectory(std::string_view p) override { return in_.EnsureDirectory(p); }
  common::Result<std::optional<sys::MountEntry>> GetMount(std::string_view t) override {
    return in_.GetMount(t);
  }
  common::Result<std::vector<sys::MountEntry>> ListMounts() override { return in_.ListMounts(); }
  common::Status GrowXfs(std::string_view t) override {
    MESHSTOR_FAILPOINT("xfs-grow", in_.GrowXfs(t));
  }
  common::Result<uint64_t> XfsSizeBytes(std::string_view d) override { return in_.XfsSizeBytes(d); }
  common::Result<sys::FsStats> Stats(std::string_view p) override { return in_.Stats(p); }

 private:
  FailpointKernel& k_;
  sys::Filesystem& in_;
};

class FailpointKernel::Nvmet final : public sys::NvmetTarget {
 public:
  Nvmet(FailpointKernel& k, sys::NvmetTarget& inner) : k_(k), in_(inner) {}
  common::Status EnsurePort(const sys::NvmetPortSpec& s) override {
    MESHSTOR_FAILPOINT("nvmet-port", in_.EnsurePort(s));
  }
  common::Status RemovePort(uint16_t id) override {
    MESHSTOR_FAILPOINT("nvmet-port-remove", in_.RemovePort(id));
  }
  common::Status EnsureSubsystem(std::string_view n, std::string_view s,
                                 const std::vector<std::string>& h) override {
    MESHSTOR_FAILPOINT("nvmet-subsystem", in_.EnsureSubsystem(n, s, h));
  }
  common::Status SetAllowedHosts(std::string_view n, const std::vector<std::string>& h) override {
    MESHSTOR_FAILPOINT("nvmet-allowed-hosts", in_.SetAllowedHosts(n, h));
  }
  common::Status EnsureNamespace(std::string_view n, const sys::NvmetNamespaceSpec& s) override {
    MESHSTOR_FAILPOINT("nvmet-export", in_.EnsureNamespace(n, s));
  }
  common::Status RemoveNamespace(std::string_view n, uint32_t id) override {
    MESHSTOR_FAILPOINT("nvmet-unexport", in_.RemoveNamespace(n, id));
  }
  common::Status RemoveSubsystem(std::string_view n) override {
    MESHSTOR_FAILPOINT("nvmet-subsystem-remove", in_.RemoveSubsystem(n));
  }
  common::Status LinkSubsystemToPort(std::string_view n, uint16_t id) override {
    MESHSTOR_FAILPOINT("nvmet-link", in_.LinkSubsystemToPort(n, id));
  }
  common::Status UnlinkSubsystemFromPort(std::string_view n, uint16_t id) override {
    MESHSTOR_FAILPOINT("nvmet-unlink", in_.UnlinkSubsystemFromPort(n, id));
  }
  common::Result<std::vector<sys::NvmetPortInfo>> ListPorts() override { return in_.ListPorts(); }
  common::Result<std::vector<sys::NvmetSubsystemInfo>> ListSubsystems() override {
    return in_.ListSubsystems();
  }
  common::Result<sys::NvmetSubsystemInfo> GetSubsystem(std::string_view n) override {
    return in_.GetSubsystem(n);
  }

 private:
  FailpointKernel& k_;
  sys::NvmetTarget& in_;
};

class FailpointKernel::Host final : public sys::NvmeHost {
 public:
  Host(FailpointKernel& k, sys::NvmeHost& inner) : k_(k), in_(inner) {}
  common::Result<sys::NvmeController> Connect(const sys::NvmeConnectSpec& s) override {
    MESHSTOR_FAILPOINT("nvme-connect", in_.Connect(s));
  }
  common::Status Disconnect(std::string_view c) override {
    MESHSTOR_FAILPOINT("nvme-disconnect", in_.Disconnect(c));
  }
  common::Result<std::vector<sys::NvmeController>> ListControllers() override {
    return in_.ListControllers();
  }
  common::Result<std::string> FindNamespaceDevice(std::string_view n,
                                                  const sys::NvmeNamespaceSelector& s) override {
    return in_.FindNamespaceDevice(n, s);
  }
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override {
    return in_.SubsystemOfDevice(device);
  }
  common::Result<sys::NvmeHostIdentity> GetHostIdentity() override { return in_.GetHostIdentity(); }

 private:
  FailpointKernel& k_;
  sys::NvmeHost& in_;
};

class FailpointKernel::Md final : public sys::Md {
 public:
  Md(FailpointKernel& k, sys::Md& inner) : k_(k), in_(inner) {}
  common::Status Create(const sys::MdCreateSpec& s) override {
    MESHSTOR_FAILPOINT("md-create", in_.Create(s));
  }
  common::Status Assemble(const sys::MdAssembleSpec& s) override {
    MESHSTOR_FAILPOINT("md-assemble", in_.Assemble(s));
  }
  common::Status Add(std::string_view n, const sys::MdMember& m) override {
    MESHSTOR_FAILPOINT("md-add", in_.Add(n, m));
  }
  common::Status ReAdd(std::string_view n, std::string_view d) override {
    MESHSTOR_FAILPOINT("md-re-add", in_.ReAdd(n, d));
  }
  common::Status Replace(std::string_view n, std::string_view o, const sys::MdMember& m) override {
    MESHSTOR_FAILPOINT("md-replace", in_.Replace(n, o, m));
  }
  common::Status Fail(std::string_view n, std::string_view d) override {
    MESHSTOR_FAILPOINT("md-fail", in_.Fail(n, d));
  }
  common::Status Remove(std::string_view n, std::string_view d) override {
    MESHSTOR_FAILPOINT("md-remove", in_.Remove(n, d));
  }
  common::Status SetSyncSpeedLimit(std::string_view n, uint64_t kib) override {
    return in_.SetSyncSpeedLimit(n, kib);
  }
  common::Status Grow(std::string_view n) override { MESHSTOR_FAILPOINT("md-grow", in_.Grow(n)); }
  common::Status Stop(std::string_view n) override { MESHSTOR_FAILPOINT("md-stop", in_.Stop(n)); }
  common::Result<sys::MdArrayState> GetArray(std::string_view n) override {
    return in_.GetArray(n);
  }
  common::Result<std::vector<sys::MdArrayState>> ListArrays() override { return in_.ListArrays(); }
  common::Result<std::vector<std::string>> ListArrayNames() override {
    return in_.ListArrayNames();
  }
  common::Result<sys::MdSuperblock> Examine(std::string_view d) override { return in_.Examine(d); }
  common::Status ZeroSuperblock(std::string_view d, std::string_view uuid) override {
    MESHSTOR_FAILPOINT("md-zero-superblock", in_.ZeroSuperblock(d, uuid));
  }

 private:
  FailpointKernel& k_;
  sys::Md& in_;
};

#undef MESHSTOR_FAILPOINT

FailpointKernel::FailpointKernel(NodeKernel inner, std::vector<Failpoint> armed,
                                 FailpointAction action)
    : inner_(inner),
      action_(std::move(action)),
      armed_(std::move(armed)),
      partitions_(std::make_unique<Partitions>(*this, *inner.partitions)),
      fs_(std::make_unique<Filesystem>(*this, *inner.fs)),
      nvmet_(std::make_unique<Nvmet>(*this, *inner.nvmet)),
      host_(std::make_unique<Host>(*this, *inner.host)),
      md_(std::make_unique<Md>(*this, *inner.md)) {}

FailpointKernel::~FailpointKernel() = default;

NodeKernel FailpointKernel::Kernel() {
  return {inner_.drives, partitions_.get(), fs_.get(), nvmet_.get(), host_.get(), md_.get()};
}

std::vector<Failpoint> FailpointKernel::fired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

void FailpointKernel::Hit(std::string_view step, FailpointPhase phase) {
  Failpoint f;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(armed_.begin(), armed_.end(),
                           [&](const Failpoint& a) { return a.step == step && a.phase == phase; });
    if (it == armed_.end()) return;
    f = *it;
    armed_.erase(it);
    fired_.push_back(f);
  }
  action_(f);
}

}  // namespace agent
