#include "agent/sys/exec.h"

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace agent::sys {
namespace {

constexpr size_t kStderrTail = 2048;

std::string Tail(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.size() <= kStderrTail) return std::string(text);
  return "..." + std::string(text.substr(text.size() - kStderrTail));
}

}  // namespace

common::Result<ExecResult> RunChecked(Exec& exec, const ExecRequest& request) {
  common::Result<ExecResult> result = exec.Run(request);
  if (!result.ok()) return result.status().WithContext(fmt::format("running {}", request.path));
  const ExecResult& r = *result;
  if (r.timed_out) {
    return common::DeadlineExceededError(
        "{} timed out after {} ms{}: {}", request.path, request.timeout.count(),
        r.signal != 0 ? fmt::format(" (signal {})", r.signal) : std::string(), Tail(r.stderr_text));
  }
  if (r.signal != 0) {
    return common::InternalError("{} was killed by signal {}: {}", request.path, r.signal,
                                 Tail(r.stderr_text));
  }
  if (r.exit_code != 0) {
    return common::InternalError("{} exited with code {}: {}", request.path, r.exit_code,
                                 Tail(r.stderr_text));
  }
  return result;
}

}  // namespace agent::sys
