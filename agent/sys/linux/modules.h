// Kernel modules the agent needs, loaded at start with modprobe (kmod honours softdeps).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "agent/sys/exec.h"
#include "common/status/status.h"

namespace agent::sys {

// nvmet + nvmet-tcp (exports), nvme-tcp (imports), md_mod + raid1 + raid10 (arrays).
std::vector<std::string> RequiredKernelModules();

// Loads every module in `names` that is not yet present under `sys_module_dir`
// (/sys/module/<name>: loaded or built in), running `modprobe_path <name>`. OK when all are
// present afterwards; otherwise FailedPrecondition naming every module the kernel lacks and
// what modprobe said, so the agent refuses to start with one clear message.
common::Status EnsureKernelModules(Exec& exec, const std::vector<std::string>& names,
                                   std::string_view sys_module_dir = "/sys/module",
                                   std::string_view modprobe_path = "/usr/sbin/modprobe");

}  // namespace agent::sys
