// Exec: runs a program we cannot avoid (mdadm, mkfs.xfs, xfs_growfs, nvme-cli) without a shell.
//
// The program is given by absolute path with an argv vector; it runs with a clean environment
// (LC_ALL=C, PATH=/usr/sbin:/usr/bin:/sbin:/bin), stdin from /dev/null, stdout and stderr
// captured (drained together so pipes cannot deadlock), every other descriptor closed, and
// killed with SIGTERM then SIGKILL when the timeout passes. The child is always reaped.
//
// Thread contract: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status/status.h"

namespace agent::sys {

struct ExecRequest {
  std::string path;               // absolute path of the program
  std::vector<std::string> args;  // argv[1..]
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::string stdin_data;  // written to the child's stdin, then closed; empty: /dev/null
};

struct ExecResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the terminating signal, 0 if it exited
  bool timed_out = false;
  std::string stdout_text;
  std::string stderr_text;
};

class Exec {
 public:
  virtual ~Exec() = default;

  // Runs the program to completion. Returns the result whatever the exit code; an error Status
  // only when it could not be started (NotFound for a missing program, PermissionDenied, ...).
  virtual common::Result<ExecResult> Run(const ExecRequest& request) = 0;
};

// Runs `request` and turns anything but exit code 0 into an error naming the program, its exit
// code or signal (or timeout) and the end of its stderr (at most 2 KiB): Internal for a
// non-zero exit, DeadlineExceeded for a timeout.
common::Result<ExecResult> RunChecked(Exec& exec, const ExecRequest& request);

}  // namespace agent::sys
