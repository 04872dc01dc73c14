// LinuxExec: the Exec seam on Linux, with posix_spawn.
//
// The child gets: the absolute program path (no PATH search, no shell), argv, the environment
// LC_ALL=C and PATH=/usr/sbin:/usr/bin:/sbin:/bin only, stdin from /dev/null (or a socket fed
// with ExecRequest::stdin_data), stdout and stderr on pipes, every descriptor >= 3 closed, default
// signal dispositions, an empty signal mask, and its own process group, so a timeout can signal
// it and everything it started. Output is drained together with poll(2); the child's exit is
// watched through a pidfd. On timeout the group gets SIGTERM, then SIGKILL after `kill_grace`.
// The child is always reaped, whatever happens.
//
// posix_spawn cannot set PR_SET_PDEATHSIG; if the agent dies, a running child keeps running
// until it ends by itself (the programs we run are bounded).
//
// Thread contract: safe for concurrent use; every descriptor is created with O_CLOEXEC, so a
// concurrent spawn never inherits another call's pipes.
#pragma once

#include <chrono>
#include <cstddef>

#include "agent/sys/exec.h"

namespace agent::sys {

class LinuxExec : public Exec {
 public:
  struct Options {
    std::chrono::milliseconds kill_grace{std::chrono::seconds(5)};
    // Output beyond this many bytes per stream is read and discarded.
    size_t max_output_bytes = 16u << 20;
  };
  LinuxExec() : LinuxExec(Options{}) {}
  explicit LinuxExec(Options options) : options_(options) {}

  common::Result<ExecResult> Run(const ExecRequest& request) override;

 private:
  Options options_;
};

}  // namespace agent::sys
