// The Exec contract: one suite, run against FakeExec and LinuxExec (both in agent_tests; the
// Linux one only needs /bin/sh).
//
// An Env provides:
//   Exec& exec();
//   ExecRequest Script(std::string out, std::string err, int exit_code);  // prints, exits
//   ExecRequest Sleeper(std::chrono::milliseconds timeout);  // runs longer than `timeout`
//   ExecRequest Cat(std::string input);                       // echoes its stdin to stdout
#pragma once

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "agent/sys/exec.h"

namespace agent::sys::contract {

template <class Env>
void ExecContract(Env& env) {
  SECTION("captures stdout, stderr and the exit code") {
    common::Result<ExecResult> r = env.exec().Run(env.Script("hello out", "hello err", 3));
    REQUIRE(r.ok());
    CHECK(r->exit_code == 3);
    CHECK(r->signal == 0);
    CHECK_FALSE(r->timed_out);
    CHECK(r->stdout_text == "hello out");
    CHECK(r->stderr_text == "hello err");
  }
  SECTION("a missing program is NotFound") {
    ExecRequest req;
    req.path = "/nonexistent/meshstor-no-such-program";
    common::Result<ExecResult> r = env.exec().Run(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == common::StatusCode::kNotFound);
  }
  SECTION("a relative path is InvalidArgument") {
    ExecRequest req;
    req.path = "mkfs.xfs";
    common::Result<ExecResult> r = env.exec().Run(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == common::StatusCode::kInvalidArgument);
  }
  SECTION("a timeout kills the program and says so") {
    common::Result<ExecResult> r = env.exec().Run(env.Sleeper(std::chrono::milliseconds(200)));
    REQUIRE(r.ok());
    CHECK(r->timed_out);
    CHECK(r->exit_code == -1);
    CHECK(r->signal != 0);
    common::Result<ExecResult> checked =
        RunChecked(env.exec(), env.Sleeper(std::chrono::milliseconds(200)));
    REQUIRE_FALSE(checked.ok());
    CHECK(checked.status().code() == common::StatusCode::kDeadlineExceeded);
  }
  SECTION("stdin data reaches the program") {
    common::Result<ExecResult> r = env.exec().Run(env.Cat("line one\nline two\n"));
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK(r->stdout_text == "line one\nline two\n");
  }
  SECTION("RunChecked turns a non-zero exit into Internal with the stderr tail") {
    common::Result<ExecResult> ok = RunChecked(env.exec(), env.Script("fine", "", 0));
    REQUIRE(ok.ok());
    CHECK(ok->stdout_text == "fine");
    common::Result<ExecResult> bad = RunChecked(env.exec(), env.Script("", "disk on fire\n", 2));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == common::StatusCode::kInternal);
    CHECK_THAT(bad.status().message(),
               Catch::Contains("code 2") && Catch::Contains("disk on fire"));
  }
}

}  // namespace agent::sys::contract
