// FakeExec: a scripted Exec for unit tests.
//
// Results are scripted per program path, optionally per exact argument list (an exact match wins
// over a path-only script), or computed by a handler. A program with no script is "not
// installed" and gives NotFound, as the real one does. Every call is recorded; FailNthCall makes
// the n-th call (1-based, counted from construction) return a chosen Status instead.
//
// Thread contract: safe for concurrent use.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agent/sys/exec.h"

namespace agent::sys {

class FakeExec : public Exec {
 public:
  using Handler = std::function<common::Result<ExecResult>(const ExecRequest&)>;

  // Scripts `path` with any arguments.
  void SetResult(const std::string& path, ExecResult result);
  // Scripts `path` with exactly `args`.
  void SetResult(const std::string& path, const std::vector<std::string>& args, ExecResult result);
  // Computes the result of every call of `path` (overrides SetResult scripts for that path).
  void SetHandler(const std::string& path, Handler handler);
  // Makes the n-th call (counted over all programs, 1-based from construction) fail.
  void FailNthCall(int n, common::Status status);

  std::vector<ExecRequest> calls() const;
  // The calls of one program, in order.
  std::vector<ExecRequest> CallsTo(const std::string& path) const;

  common::Result<ExecResult> Run(const ExecRequest& request) override;

  // A successful result with the given output, for scripting.
  static ExecResult Ok(std::string stdout_text = {});
  static ExecResult Exit(int code, std::string stderr_text = {});

 private:
  mutable std::mutex mu_;
  std::map<std::string, ExecResult> by_path_;  // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::vector<std::string>>, ExecResult>
      by_args_;                              // GUARDED_BY(mu_)
  std::map<std::string, Handler> handlers_;  // GUARDED_BY(mu_)
  std::map<int, common::Status> failures_;   // GUARDED_BY(mu_)
  std::vector<ExecRequest> calls_;           // GUARDED_BY(mu_)
};

}  // namespace agent::sys
