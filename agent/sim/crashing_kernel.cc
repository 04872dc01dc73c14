#include "agent/sim/crashing_kernel.h"

#include <fmt/format.h>

namespace agent::sim {

// Forwards a state-changing call once the budget allows it.
#define MESHSTOR_STEP(call)             \
  do {                                  \
    RETURN_IF_ERROR(k_.Step(__func__)); \
    return call;                        \
  } while (0)
// Forwards a read unless crashed.
#define MESHSTOR_READ(call)             \
  do {                                  \
    RETURN_IF_ERROR(k_.Read(__func__)); \
    return call;                        \
  } while (0)

class CrashingKernel::Drives final : public sys::Drives {
 public:
  Drives(CrashingKernel& k, sys::Drives& inner) : k_(k), in_(inner) {}
  common::Result<std::vector<sys::DriveInfo>> List() override { MESHSTOR_READ(in_.List()); }
  common::Result<sys::DriveInfo> Get(std::string_view n) override { MESHSTOR_READ(in_.Get(n)); }

 private:
  CrashingKernel& k_;
  sys::Drives& in_;
};

class CrashingKernel::Partitions final : public sys::Partitions {
 public:
  Partitions(CrashingKernel& k, sys::Partitions& inner) : k_(k), in_(inner) {}
  common::Result<std::vector<sys::PartitionInfo>> List(std::string_view d) override {
    MESHSTOR_READ(in_.List(d));
  }
  common::Result<sys::DriveTable> ReadTable(std::string_view d) override {
    MESHSTOR_READ(in_.ReadTable(d));
  }
  common::Result<sys::FreeSpace> GetFreeSpace(std::string_view d) override {
    MESHSTOR_READ(in_.GetFreeSpace(d));
  }
  common::Status EnsureGpt(std::string_view d) override { MESHSTOR_STEP(in_.EnsureGpt(d)); }
  common::Result<sys::PartitionInfo> Ensure(std::string_view d,
                                            const sys::PartitionSpec& s) override {
    MESHSTOR_STEP(in_.Ensure(d, s));
  }
  common::Result<sys::PartitionInfo> Grow(std::string_view d, const sys::MemberRef& m,
                                          uint64_t size) override {
    MESHSTOR_STEP(in_.Grow(d, m, size));
  }
  common::Status Delete(std::string_view d, const sys::MemberRef& m) override {
    MESHSTOR_STEP(in_.Delete(d, m));
  }
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view d) override {
    MESHSTOR_READ(in_.ProbeSignature(d));
  }
  common::Result<sys::ZeroMethod> Zero(std::string_view d, const sys::MemberRef& m,
                                       bool allow) override {
    MESHSTOR_STEP(in_.Zero(d, m, allow));
  }

 private:
  CrashingKernel& k_;
  sys::Partitions& in_;
};

class CrashingKernel::Filesystem final : public sys::Filesystem {
 public:
  Filesystem(CrashingKernel& k, sys::Filesystem& inner) : k_(k), in_(inner) {}
  common::Result<bool> EnsureXfs(std::string_view d, const sys::XfsOptions& o) override {
    MESHSTOR_STEP(in_.EnsureXfs(d, o));
  }
  common::Status Mount(std::string_view d, std::string_view t, std::string_view f,
                       const sys::MountOptions& o) override {
    MESHSTOR_STEP(in_.Mount(d, t, f, o));
  }
  common::Status BindMount(std::string_view s, std::string_view t, bool ro) override {
    MESHSTOR_STEP(in_.BindMount(s, t, ro));
  }
  common::Status Unmount(std::string_view t) override { MESHSTOR_STEP(in_.Unmount(t)); }
  common::Status RemoveMountPoint(std::string_view p) override {
    MESHSTOR_STEP(in_.RemoveMountPoint(p));
  }
  common::Status EnsureDirectory(std::string_view p) override {
    MESHSTOR_STEP(in_.EnsureDirectory(p));
  }
  common::Result<std::optional<sys::MountEntry>> GetMount(std::string_view t) override {
    MESHSTOR_READ(in_.GetMount(t));
  }
  common::Result<std::vector<sys::MountEntry>> ListMounts() override {
    MESHSTOR_READ(in_.ListMounts());
  }
  common::Status GrowXfs(std::string_view t) override { MESHSTOR_STEP(in_.GrowXfs(t)); }
  common::Result<uint64_t> XfsSizeBytes(std::string_view d) override {
    MESHSTOR_READ(in_.XfsSizeBytes(d));
  }
  common::Result<sys::FsStats> Stats(std::string_view p) override { MESHSTOR_READ(in_.Stats(p)); }

 private:
  CrashingKernel& k_;
  sys::Filesystem& in_;
};

class CrashingKernel::Nvmet final : public sys::NvmetTarget {
 public:
  Nvmet(CrashingKernel& k, sys::NvmetTarget& inner) : k_(k), in_(inner) {}
  common::Status EnsurePort(const sys::NvmetPortSpec& s) override {
    MESHSTOR_STEP(in_.EnsurePort(s));
  }
  common::Status RemovePort(uint16_t id) override { MESHSTOR_STEP(in_.RemovePort(id)); }
  common::Status EnsureSubsystem(std::string_view n, std::string_view s,
                                 const std::vector<std::string>& h) override {
    MESHSTOR_STEP(in_.EnsureSubsystem(n, s, h));
  }
  common::Status SetAllowedHosts(std::string_view n, const std::vector<std::string>& h) override {
    MESHSTOR_STEP(in_.SetAllowedHosts(n, h));
  }
  common::Status EnsureNamespace(std::string_view n, const sys::NvmetNamespaceSpec& s) override {
    MESHSTOR_STEP(in_.EnsureNamespace(n, s));
  }
  common::Status RemoveNamespace(std::string_view n, uint32_t id) override {
    MESHSTOR_STEP(in_.RemoveNamespace(n, id));
  }
  common::Status RemoveSubsystem(std::string_view n) override {
    MESHSTOR_STEP(in_.RemoveSubsystem(n));
  }
  common::Status LinkSubsystemToPort(std::string_view n, uint16_t id) override {
    MESHSTOR_STEP(in_.LinkSubsystemToPort(n, id));
  }
  common::Status UnlinkSubsystemFromPort(std::string_view n, uint16_t id) override {
    MESHSTOR_STEP(in_.UnlinkSubsystemFromPort(n, id));
  }
  common::Result<std::vector<sys::NvmetPortInfo>> ListPorts() override {
    MESHSTOR_READ(in_.ListPorts());
  }
  common::Result<std::vector<sys::NvmetSubsystemInfo>> ListSubsystems() override {
    MESHSTOR_READ(in_.ListSubsystems());
  }
  common::Result<sys::NvmetSubsystemInfo> GetSubsystem(std::string_view n) override {
    MESHSTOR_READ(in_.GetSubsystem(n));
  }

 private:
  CrashingKernel& k_;
  sys::NvmetTarget& in_;
};

class CrashingKernel::Host final : public sys::NvmeHost {
 public:
  Host(CrashingKernel& k, sys::NvmeHost& inner) : k_(k), in_(inner) {}
  common::Result<sys::NvmeController> Connect(const sys::NvmeConnectSpec& s) override {
    MESHSTOR_STEP(in_.Connect(s));
  }
  common::Status Disconnect(std::string_view c) override { MESHSTOR_STEP(in_.Disconnect(c)); }
  common::Result<std::vector<sys::NvmeController>> ListControllers() override {
    MESHSTOR_READ(in_.ListControllers());
  }
  common::Result<std::string> FindNamespaceDevice(std::string_view n,
                                                  const sys::NvmeNamespaceSelector& s) override {
    MESHSTOR_READ(in_.FindNamespaceDevice(n, s));
  }
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override {
    MESHSTOR_READ(in_.SubsystemOfDevice(device));
  }
  common::Result<sys::NvmeHostIdentity> GetHostIdentity() override {
    MESHSTOR_READ(in_.GetHostIdentity());
  }

 private:
  CrashingKernel& k_;
  sys::NvmeHost& in_;
};

class CrashingKernel::Md final : public sys::Md {
 public:
  Md(CrashingKernel& k, sys::Md& inner) : k_(k), in_(inner) {}
  common::Status Create(const sys::MdCreateSpec& s) override { MESHSTOR_STEP(in_.Create(s)); }
  common::Status Assemble(const sys::MdAssembleSpec& s) override { MESHSTOR_STEP(in_.Assemble(s)); }
  common::Status Add(std::string_view n, const sys::MdMember& m) override {
    MESHSTOR_STEP(in_.Add(n, m));
  }
  common::Status ReAdd(std::string_view n, std::string_view d) override {
    MESHSTOR_STEP(in_.ReAdd(n, d));
  }
  common::Status Replace(std::string_view n, std::string_view o, const sys::MdMember& m) override {
    MESHSTOR_STEP(in_.Replace(n, o, m));
  }
  common::Status Fail(std::string_view n, std::string_view d) override {
    MESHSTOR_STEP(in_.Fail(n, d));
  }
  common::Status Remove(std::string_view n, std::string_view d) override {
    MESHSTOR_STEP(in_.Remove(n, d));
  }
  common::Status SetSyncSpeedLimit(std::string_view n, uint64_t kib) override {
    MESHSTOR_STEP(in_.SetSyncSpeedLimit(n, kib));
  }
  common::Status Grow(std::string_view n) override { MESHSTOR_STEP(in_.Grow(n)); }
  common::Status Stop(std::string_view n) override { MESHSTOR_STEP(in_.Stop(n)); }
  common::Result<sys::MdArrayState> GetArray(std::string_view n) override {
    MESHSTOR_READ(in_.GetArray(n));
  }
  common::Result<std::vector<sys::MdArrayState>> ListArrays() override {
    MESHSTOR_READ(in_.ListArrays());
  }
  common::Result<std::vector<std::string>> ListArrayNames() override {
    MESHSTOR_READ(in_.ListArrayNames());
  }
  common::Result<sys::MdSuperblock> Examine(std::string_view d) override {
    MESHSTOR_READ(in_.Examine(d));
  }
  common::Status ZeroSuperblock(std::string_view d, std::string_view uuid) override {
    MESHSTOR_STEP(in_.ZeroSuperblock(d, uuid));
  }

 private:
  CrashingKernel& k_;
  sys::Md& in_;
};

#undef MESHSTOR_STEP
#undef MESHSTOR_READ

CrashingKernel::CrashingKernel(NodeKernel inner, int budget)
    : inner_(inner),
      budget_(budget),
      drives_(std::make_shared<Drives>(*this, *inner.drives)),
      partitions_(std::make_shared<Partitions>(*this, *inner.partitions)),
      fs_(std::make_shared<Filesystem>(*this, *inner.fs)),
      nvmet_(std::make_shared<Nvmet>(*this, *inner.nvmet)),
      host_(std::make_shared<Host>(*this, *inner.host)),
      md_(std::make_shared<Md>(*this, *inner.md)) {}

NodeKernel CrashingKernel::Kernel() {
  return {drives_.get(), partitions_.get(), fs_.get(), nvmet_.get(), host_.get(), md_.get()};
}

common::Status CrashingKernel::Step(const char* what) {
  if (crashed_ || steps_ >= budget_) {
    crashed_ = true;
    return common::UnavailableError("crashed before {} (after {} steps)", what, steps_);
  }
  ++steps_;
  return common::OkStatus();
}

common::Status CrashingKernel::Read(const char* what) {
  if (crashed_) return common::UnavailableError("crashed before {}", what);
  return common::OkStatus();
}

}  // namespace agent::sim
