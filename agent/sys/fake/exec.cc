#include "agent/sys/fake/exec.h"

#include <cerrno>

namespace agent::sys {

void FakeExec::SetResult(const std::string& path, ExecResult result) {
  std::lock_guard lock(mu_);
  by_path_[path] = std::move(result);
}

void FakeExec::SetResult(const std::string& path, const std::vector<std::string>& args,
                         ExecResult result) {
  std::lock_guard lock(mu_);
  by_args_[{path, args}] = std::move(result);
}

void FakeExec::SetHandler(const std::string& path, Handler handler) {
  std::lock_guard lock(mu_);
  handlers_[path] = std::move(handler);
}

void FakeExec::FailNthCall(int n, common::Status status) {
  std::lock_guard lock(mu_);
  failures_[n] = std::move(status);
}

std::vector<ExecRequest> FakeExec::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::vector<ExecRequest> FakeExec::CallsTo(const std::string& path) const {
  std::lock_guard lock(mu_);
  std::vector<ExecRequest> out;
  for (const ExecRequest& r : calls_) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

common::Result<ExecResult> FakeExec::Run(const ExecRequest& request) {
  Handler handler;
  {
    std::lock_guard lock(mu_);
    calls_.push_back(request);
    if (request.path.empty() || request.path.front() != '/') {
      return common::InvalidArgumentError("program path must be absolute, got \"{}\"",
                                          request.path);
    }
    if (auto f = failures_.find(static_cast<int>(calls_.size())); f != failures_.end()) {
      return f->second;
    }
    if (auto h = handlers_.find(request.path); h != handlers_.end()) {
      handler = h->second;
    } else if (auto a = by_args_.find({request.path, request.args}); a != by_args_.end()) {
      return a->second;
    } else if (auto p = by_path_.find(request.path); p != by_path_.end()) {
      return p->second;
    } else {
      return common::ErrnoToStatus(ENOENT, "starting " + request.path);
    }
  }
  return handler(request);  // outside the lock: a handler may call back into the fake
}

ExecResult FakeExec::Ok(std::string stdout_text) {
  ExecResult r;
  r.exit_code = 0;
  r.stdout_text = std::move(stdout_text);
  return r;
}

ExecResult FakeExec::Exit(int code, std::string stderr_text) {
  ExecResult r;
  r.exit_code = code;
  r.stderr_text = std::move(stderr_text);
  return r;
}

}  // namespace agent::sys
