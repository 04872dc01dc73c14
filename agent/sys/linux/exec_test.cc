// LinuxExec behaviour beyond the shared Exec contract: big outputs on both pipes, the clean
// environment, closed descriptors, and killing what the program started. Needs only /bin/sh.
#include "agent/sys/linux/exec.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <catch2/catch.hpp>

namespace agent::sys {
namespace {

ExecRequest Sh(std::string script) { return ExecRequest{"/bin/sh", {"-c", std::move(script)}}; }

TEST_CASE("LinuxExec drains large stdout and stderr together", "[unit][agent][sys]") {
  LinuxExec exec;
  // 1 MiB on each stream, interleaved: a reader of one pipe at a time would deadlock.
  common::Result<ExecResult> r = exec.Run(
      Sh("i=0; while [ $i -lt 64 ]; do head -c 16384 /dev/zero; head -c 16384 /dev/zero >&2; "
         "i=$((i+1)); done"));
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->stdout_text.size() == 1u << 20);
  CHECK(r->stderr_text.size() == 1u << 20);
}

TEST_CASE("LinuxExec gives a clean environment and closes other descriptors",
          "[unit][agent][sys]") {
  setenv("MESHSTOR_SECRET_FOR_TEST", "x", 1);
  int leak = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leak >= 3);
  LinuxExec exec;
  common::Result<ExecResult> r = exec.Run(Sh("env | sort; ls /proc/self/fd | wc -l"));
  close(leak);
  unsetenv("MESHSTOR_SECRET_FOR_TEST");
  REQUIRE(r.ok());
  CHECK_THAT(r->stdout_text, Catch::Contains("LC_ALL=C"));
  CHECK_THAT(r->stdout_text, Catch::Contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
  CHECK_THAT(r->stdout_text, !Catch::Contains("MESHSTOR_SECRET_FOR_TEST"));
  // ls sees 0, 1, 2 and its own directory descriptor.
  CHECK_THAT(r->stdout_text, Catch::EndsWith("4\n"));
}

TEST_CASE("LinuxExec kills the whole process group on timeout", "[unit][agent][sys]") {
  LinuxExec exec(LinuxExec::Options{std::chrono::milliseconds(300), 1u << 20});
  ExecRequest req = Sh("trap '' TERM; (sleep 30) & sleep 30");  // ignores SIGTERM
  req.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  common::Result<ExecResult> r = exec.Run(req);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(r->signal == 9);
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("LinuxExec returns when a background child keeps the pipes open", "[unit][agent][sys]") {
  LinuxExec exec(LinuxExec::Options{std::chrono::milliseconds(300), 1u << 20});
  ExecRequest req = Sh("sleep 30 & echo started");
  auto start = std::chrono::steady_clock::now();
  common::Result<ExecResult> r = exec.Run(req);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->stdout_text == "started\n");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

}  // namespace
}  // namespace agent::sys
