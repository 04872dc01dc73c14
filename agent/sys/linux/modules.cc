#include "agent/sys/linux/modules.h"

#include <filesystem>

#include <fmt/format.h>

namespace agent::sys {
namespace {

bool Present(std::string_view sys_module_dir, const std::string& name) {
  std::error_code ec;
  return std::filesystem::is_directory(fmt::format("{}/{}", sys_module_dir, name), ec);
}

// The last line modprobe wrote, or what went wrong running it.
std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

std::vector<std::string> RequiredKernelModules() {
  return {"nvmet", "nvmet_tcp", "nvme_tcp", "md_mod", "raid1", "raid10"};
}

common::Status EnsureKernelModules(Exec& exec, const std::vector<std::string>& names,
                                   std::string_view sys_module_dir,
                                   std::string_view modprobe_path) {
  std::vector<std::string> missing;
  for (const auto& name : names) {
    if (Present(sys_module_dir, name)) continue;
    std::string why;
    auto run = exec.Run(
        {.path = std::string(modprobe_path), .args = {name}, .timeout = std::chrono::seconds(30)});
    if (!run.ok()) {
      why = run.status().message();
    } else if (run->exit_code != 0) {
      why = LastLine(run->stderr_text);
      if (why.empty()) why = fmt::format("modprobe exited with {}", run->exit_code);
    }
    if (Present(sys_module_dir, name)) continue;
    if (why.empty()) why = "modprobe succeeded but the module is not loaded";
    missing.push_back(fmt::format("{} ({})", name, why));
  }
  if (missing.empty()) return common::OkStatus();
  return common::FailedPreconditionError(
      "this node's kernel lacks {}: MeshStor needs the modules {} (with /lib/modules of the "
      "running kernel mounted into the agent, or loaded on the host)",
      fmt::join(missing, ", "), fmt::join(names, ", "));
}

}  // namespace agent::sys
