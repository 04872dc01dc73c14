#include "agent/sys/linux/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "agent/sys/linux/unique_fd.h"

namespace agent::sys {
namespace {

using Clock = std::chrono::steady_clock;

common::Status Errno(int err, std::string_view what) { return common::ErrnoToStatus(err, what); }

// Frees posix_spawn attribute objects on every path.
struct SpawnAttrs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool actions_ok = false;
  bool attr_ok = false;
  ~SpawnAttrs() {
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
    if (attr_ok) posix_spawnattr_destroy(&attr);
  }
};

int SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return errno;
  if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
  return 0;
}

// Kills and reaps a spawned child unless released; used on early-error paths.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int st = 0;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
};

// Reads what is available from `fd` into `out` (up to `cap` bytes kept). Returns false at EOF or
// on a read error, so the caller stops polling the descriptor.
bool DrainSome(int fd, std::string& out, size_t cap) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      size_t keep = out.size() < cap ? std::min(static_cast<size_t>(n), cap - out.size()) : 0;
      out.append(buf, keep);
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    return false;
  }
}

}  // namespace

common::Result<ExecResult> LinuxExec::Run(const ExecRequest& request) {
  if (request.path.empty() || request.path.front() != '/') {
    return common::InvalidArgumentError("program path must be absolute, got \"{}\"", request.path);
  }
  if (request.timeout.count() <= 0) {
    return common::InvalidArgumentError("timeout for {} must be positive", request.path);
  }

  // stdout and stderr: pipes; the parent ends are non-blocking, the child ends are dup2'ed onto
  // 1 and 2 (dup2 clears O_CLOEXEC on the copy only).
  int out_fds[2];
  int err_fds[2];
  if (pipe2(out_fds, O_CLOEXEC) < 0) return Errno(errno, "pipe2 for stdout");
  UniqueFd out_r(out_fds[0]), out_w(out_fds[1]);
  if (pipe2(err_fds, O_CLOEXEC) < 0) return Errno(errno, "pipe2 for stderr");
  UniqueFd err_r(err_fds[0]), err_w(err_fds[1]);
  // stdin: /dev/null, or a socket so that writing after the child exited gives EPIPE with
  // MSG_NOSIGNAL instead of a process-wide SIGPIPE.
  UniqueFd in_parent, in_child;
  if (request.stdin_data.empty()) {
    in_child = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_child.valid()) return Errno(errno, "opening /dev/null");
  } else {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
      return Errno(errno, "socketpair for stdin");
    }
    in_parent = UniqueFd(sv[0]);
    in_child = UniqueFd(sv[1]);
    shutdown(in_child.get(), SHUT_WR);
    if (int e = SetNonBlocking(in_parent.get()); e != 0) return Errno(e, "fcntl O_NONBLOCK");
  }
  if (int e = SetNonBlocking(out_r.get()); e != 0) return Errno(e, "fcntl O_NONBLOCK");
  if (int e = SetNonBlocking(err_r.get()); e != 0) return Errno(e, "fcntl O_NONBLOCK");

  SpawnAttrs sa;
  if (int e = posix_spawn_file_actions_init(&sa.actions); e != 0) return Errno(e, "spawn init");
  sa.actions_ok = true;
  if (int e = posix_spawnattr_init(&sa.attr); e != 0) return Errno(e, "spawnattr init");
  sa.attr_ok = true;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  for (int e : {posix_spawn_file_actions_adddup2(&sa.actions, in_child.get(), 0),
                posix_spawn_file_actions_adddup2(&sa.actions, out_w.get(), 1),
                posix_spawn_file_actions_adddup2(&sa.actions, err_w.get(), 2),
                posix_spawn_file_actions_addclosefrom_np(&sa.actions, 3),
                posix_spawnattr_setsigdefault(&sa.attr, &all),
                posix_spawnattr_setsigmask(&sa.attr, &none), posix_spawnattr_setpgroup(&sa.attr, 0),
                posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                                       POSIX_SPAWN_SETPGROUP)}) {
    if (e != 0) return Errno(e, "preparing posix_spawn");
  }

  std::vector<char*> argv;
  argv.reserve(request.args.size() + 2);
  argv.push_back(const_cast<char*>(request.path.c_str()));
  for (const std::string& a : request.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char env_lc[] = "LC_ALL=C";
  char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_lc, env_path, nullptr};

  pid_t pid = -1;
  int e = posix_spawn(&pid, request.path.c_str(), &sa.actions, &sa.attr, argv.data(), envp);
  if (e != 0) return Errno(e, fmt::format("starting {}", request.path));
  ChildGuard guard(pid);
  in_child.reset();
  out_w.reset();
  err_w.reset();

  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return Errno(errno, fmt::format("pidfd_open for {}", request.path));

  ExecResult result;
  size_t in_off = 0;
  bool exited = false;
  bool sent_term = false, sent_kill = false;
  const Clock::time_point deadline = Clock::now() + request.timeout;
  Clock::time_point kill_at{}, give_up_at{};
  int status = 0;

  while (!exited || out_r.valid() || err_r.valid()) {
    Clock::time_point now = Clock::now();
    if (!sent_term && now >= deadline) {
      result.timed_out = true;
      sent_term = true;
      kill(-pid, SIGTERM);
      kill_at = now + options_.kill_grace;
    }
    if (sent_term && !sent_kill && now >= kill_at) {
      sent_kill = true;
      kill(-pid, SIGKILL);
      // Descendants that left the process group may keep the pipes open; stop waiting for them
      // a little after the child itself is gone.
      give_up_at = now + std::chrono::seconds(1);
    }
    if (sent_kill && exited && now >= give_up_at) break;

    Clock::time_point next = !sent_term ? deadline : !sent_kill ? kill_at : give_up_at;
    if (exited) next = std::min(next, give_up_at);
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    pollfd fds[4];
    int n = 0;
    int in_i = -1, out_i = -1, err_i = -1, pid_i = -1;
    if (in_parent.valid()) fds[in_i = n++] = {in_parent.get(), POLLOUT, 0};
    if (out_r.valid()) fds[out_i = n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[err_i = n++] = {err_r.get(), POLLIN, 0};
    if (!exited) fds[pid_i = n++] = {pidfd.get(), POLLIN, 0};
    int rc = poll(fds, n, static_cast<int>(std::clamp<long long>(wait_ms, 0, 1000 * 60)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, fmt::format("poll while running {}", request.path));
    }
    if (in_i >= 0 && fds[in_i].revents != 0) {
      while (in_off < request.stdin_data.size()) {
        ssize_t w = send(in_parent.get(), request.stdin_data.data() + in_off,
                         request.stdin_data.size() - in_off, MSG_NOSIGNAL);
        if (w > 0) {
          in_off += static_cast<size_t>(w);
        } else if (w < 0 && errno == EINTR) {
          continue;
        } else {
          break;
        }
      }
      if (in_off >= request.stdin_data.size() || !(fds[in_i].revents & POLLOUT) ||
          (errno != EAGAIN && errno != EWOULDBLOCK)) {
        in_parent.reset();  // all written, or the child stopped reading
      }
    }
    if (out_i >= 0 && fds[out_i].revents != 0 &&
        !DrainSome(out_r.get(), result.stdout_text, options_.max_output_bytes)) {
      out_r.reset();
    }
    if (err_i >= 0 && fds[err_i].revents != 0 &&
        !DrainSome(err_r.get(), result.stderr_text, options_.max_output_bytes)) {
      err_r.reset();
    }
    if (pid_i >= 0 && fds[pid_i].revents != 0) {
      pid_t w;
      while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
      }
      if (w < 0) return Errno(errno, fmt::format("waitpid for {}", request.path));
      guard.Release();
      exited = true;
      if (in_parent.valid()) in_parent.reset();
      if (!sent_kill) {
        // Whatever the child left running in its group must not outlive it holding our pipes.
        give_up_at = Clock::now() + std::chrono::seconds(1);
      }
    }
    if (exited && !sent_kill && Clock::now() >= give_up_at && (out_r.valid() || err_r.valid())) {
      kill(-pid, SIGKILL);
      sent_kill = true;
      give_up_at = Clock::now() + std::chrono::milliseconds(200);
    }
  }

  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = -1;
  }
  return result;
}

}  // namespace agent::sys
