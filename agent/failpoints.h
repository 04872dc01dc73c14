// Failpoints: deterministic agent crashes at a named kernel step, for the fault suite (fault case
// 6 of issue 14, e2e/lab `faults --case agent-kill-steps`, docs/faults.md). The agent reads
//   MESHSTOR_FAILPOINTS_ENABLED=1                      the safety switch, and
//   MESHSTOR_CRASH_AT=<step>[:before|after][,...]      where to die,
// and then SIGKILLs itself right before the first call of a named step (default), or right after
// the first call of it that succeeded. Without the switch MESHSTOR_CRASH_AT is ignored (the agent
// logs that it was); with the switch, a bad MESHSTOR_CRASH_AT stops the agent at start-up.
//
// Every step is one state-changing call of the kernel layer (agent/sys), named in kSteps below;
// the hook is in one place, FailpointKernel, a decorator of the node's whole NodeKernel. Steps
// that "ensure" something (nvmet-export, mount, ...) are called on every pass, also when
// nothing changes: such a failpoint fires on the first pass that reaches the call, so arm it
// just before driving the volume into that step.
//
// Thread contract: FailpointKernel is safe for concurrent use (a failpoint fires once).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/volume.h"
#include "common/status/status.h"

namespace agent {

inline constexpr std::string_view kFailpointsEnabledEnv = "MESHSTOR_FAILPOINTS_ENABLED";
inline constexpr std::string_view kCrashAtEnv = "MESHSTOR_CRASH_AT";

// Every step a failpoint may name, with the kernel call it stands for.
struct FailpointStep {
  std::string_view name;
  std::string_view call;
};
inline constexpr FailpointStep kSteps[] = {
    {"partition-table", "Partitions::EnsureGpt"},
    {"partition-create", "Partitions::Ensure"},
    {"partition-zero", "Partitions::Zero"},
    {"partition-grow", "Partitions::Grow"},
    {"partition-delete", "Partitions::Delete"},
    {"nvmet-port", "NvmetTarget::EnsurePort"},
    {"nvmet-port-remove", "NvmetTarget::RemovePort"},
    {"nvmet-subsystem", "NvmetTarget::EnsureSubsystem"},
    {"nvmet-allowed-hosts", "NvmetTarget::SetAllowedHosts"},
    {"nvmet-export", "NvmetTarget::EnsureNamespace"},
    {"nvmet-unexport", "NvmetTarget::RemoveNamespace"},
    {"nvmet-subsystem-remove", "NvmetTarget::RemoveSubsystem"},
    {"nvmet-link", "NvmetTarget::LinkSubsystemToPort"},
    {"nvmet-unlink", "NvmetTarget::UnlinkSubsystemFromPort"},
    {"nvme-connect", "NvmeHost::Connect"},
    {"nvme-disconnect", "NvmeHost::Disconnect"},
    {"md-create", "Md::Create"},
    {"md-assemble", "Md::Assemble"},
    {"md-add", "Md::Add"},
    {"md-re-add", "Md::ReAdd"},
    {"md-replace", "Md::Replace"},
    {"md-fail", "Md::Fail"},
    {"md-remove", "Md::Remove"},
    {"md-grow", "Md::Grow"},
    {"md-stop", "Md::Stop"},
    {"md-zero-superblock", "Md::ZeroSuperblock"},
    {"mkfs", "Filesystem::EnsureXfs"},
    {"xfs-grow", "Filesystem::GrowXfs"},
    {"mount", "Filesystem::Mount"},
    {"bind-mount", "Filesystem::BindMount"},
    {"unmount", "Filesystem::Unmount"},
};

enum class FailpointPhase { kBefore, kAfter };
std::string_view Name(FailpointPhase phase);  // "before", "after"

struct Failpoint {
  std::string step;  // one of kSteps
  FailpointPhase phase = FailpointPhase::kBefore;

  bool operator==(const Failpoint&) const = default;
};
std::string Describe(const Failpoint& f);  // "md-create:before"

// Parses MESHSTOR_CRASH_AT: comma-separated "<step>[:before|after]" (blanks around entries are
// ignored; an empty text is no failpoint). InvalidArgument naming the entry for an empty entry,
// an unknown step (listing the known ones), an unknown phase, or a failpoint named twice.
common::Result<std::vector<Failpoint>> ParseFailpoints(std::string_view text);

// The failpoints the environment arms, read through `getenv` (std::getenv in the agent).
// MESHSTOR_FAILPOINTS_ENABLED must be exactly "1" to arm anything ("0" or unset: off; anything
// else is an InvalidArgument error). When off, the result is empty and `*ignored` (if given) says
// that a set MESHSTOR_CRASH_AT was ignored ("" otherwise). When on, ParseFailpoints' errors.
common::Result<std::vector<Failpoint>> FailpointsFromEnvironment(
    const std::function<const char*(const char*)>& getenv, std::string* ignored = nullptr);

// What a fired failpoint does: in the agent, KillSelf; in tests, anything observable.
using FailpointAction = std::function<void(const Failpoint&)>;
// Writes "meshstor-agent: failpoint <step>:<phase> fired: SIGKILL" to stderr and SIGKILLs the
// process. Never returns.
[[noreturn]] void KillSelf(const Failpoint& f);

// A NodeKernel whose calls go to `inner`; a call of an armed step runs `action` before it (phase
// before) or after it returned OK (phase after), once per failpoint. When the action returns (in
// tests), the call goes on as if nothing happened. Reads and unnamed calls pass straight through.
class FailpointKernel {
 public:
  FailpointKernel(NodeKernel inner, std::vector<Failpoint> armed, FailpointAction action);
  ~FailpointKernel();
  FailpointKernel(const FailpointKernel&) = delete;
  FailpointKernel& operator=(const FailpointKernel&) = delete;

  NodeKernel Kernel();
  // The failpoints that fired so far, in order.
  std::vector<Failpoint> fired() const;

  // The hook of the decorators: runs the action of an armed, not yet fired failpoint.
  void Hit(std::string_view step, FailpointPhase phase);

 private:
  class Partitions;
  class Filesystem;
  class Nvmet;
  class Host;
  class Md;

  NodeKernel inner_;
  FailpointAction action_;
  mutable std::mutex mu_;
  std::vector<Failpoint> armed_;  // not fired yet
  std::vector<Failpoint> fired_;
  std::unique_ptr<sys::Partitions> partitions_;
  std::unique_ptr<sys::Filesystem> fs_;
  std::unique_ptr<sys::NvmetTarget> nvmet_;
  std::unique_ptr<sys::NvmeHost> host_;
  std::unique_ptr<sys::Md> md_;
};

}  // namespace agent
