// Failpoints (agent/failpoints.h): MESHSTOR_CRASH_AT parsing, the safety switch, and the hook of
// FailpointKernel on simulated nodes with an action that records instead of SIGKILLing.
#include "agent/failpoints.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/sim/sim_node.h"
#include "agent/testing/world.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using testing::MakeMember;
using testing::Raid1Volume;

std::function<const char*(const char*)> Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST_CASE("MESHSTOR_CRASH_AT: steps, phases, defaults", "[unit][agent][failpoints]") {
  auto none = ParseFailpoints("");
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(ParseFailpoints("  ")->empty());

  auto one = ParseFailpoints("md-create");
  REQUIRE(one.ok());
  CHECK(*one == std::vector<Failpoint>{{"md-create", FailpointPhase::kBefore}});

  auto many = ParseFailpoints("md-re-add:after, nvmet-unexport:before ,partition-delete:after");
  REQUIRE(many.ok());
  CHECK(*many == std::vector<Failpoint>{{"md-re-add", FailpointPhase::kAfter},
                                        {"nvmet-unexport", FailpointPhase::kBefore},
                                        {"partition-delete", FailpointPhase::kAfter}});
  CHECK(Describe((*many)[0]) == "md-re-add:after");
  // The same step in both phases is two failpoints.
  CHECK(ParseFailpoints("md-grow:before,md-grow:after")->size() == 2);
  // Every step of the table parses.
  for (const auto& s : kSteps) {
    INFO(s.name);
    CHECK(ParseFailpoints(std::string(s.name) + ":after").ok());
  }
}

TEST_CASE("MESHSTOR_CRASH_AT: bad input is refused, naming the entry",
          "[unit][agent][failpoints]") {
  auto unknown = ParseFailpoints("md-create,md-creat:after");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == common::StatusCode::kInvalidArgument);
  CHECK_THAT(unknown.status().message(), Catch::Contains("entry 2") &&
                                             Catch::Contains("unknown step \"md-creat\"") &&
                                             Catch::Contains("known steps: partition-table"));

  auto phase = ParseFailpoints("md-grow:during");
  REQUIRE_FALSE(phase.ok());
  CHECK_THAT(phase.status().message(),
             Catch::Contains("phase \"during\"") && Catch::Contains("\"before\" or \"after\""));

  auto empty = ParseFailpoints("md-grow,,md-stop");
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(empty.status().message(), Catch::Contains("entry 2 is empty"));
  CHECK_FALSE(ParseFailpoints("md-grow,").ok());
  CHECK_FALSE(ParseFailpoints(":after").ok());

  auto twice = ParseFailpoints("md-stop, md-stop:before");
  REQUIRE_FALSE(twice.ok());
  CHECK_THAT(twice.status().message(), Catch::Contains("md-stop:before a second time"));
}

TEST_CASE("Failpoints are armed only with the safety switch", "[unit][agent][failpoints]") {
  std::string ignored;
  SECTION("no switch: MESHSTOR_CRASH_AT is ignored, and said to be") {
    auto fp = FailpointsFromEnvironment(Env({{"MESHSTOR_CRASH_AT", "md-create"}}), &ignored);
    REQUIRE(fp.ok());
    CHECK(fp->empty());
    CHECK_THAT(ignored, Catch::Contains("MESHSTOR_CRASH_AT=\"md-create\" ignored"));
  }
  SECTION("switch 0: off, even with a bad MESHSTOR_CRASH_AT") {
    auto fp = FailpointsFromEnvironment(
        Env({{"MESHSTOR_FAILPOINTS_ENABLED", "0"}, {"MESHSTOR_CRASH_AT", "nonsense"}}), &ignored);
    REQUIRE(fp.ok());
    CHECK(fp->empty());
    CHECK_FALSE(ignored.empty());
  }
  SECTION("nothing set: off, nothing to say") {
    auto fp = FailpointsFromEnvironment(Env({}), &ignored);
    REQUIRE(fp.ok());
    CHECK(fp->empty());
    CHECK(ignored.empty());
  }
  SECTION("switch 1: armed") {
    auto fp = FailpointsFromEnvironment(
        Env({{"MESHSTOR_FAILPOINTS_ENABLED", "1"}, {"MESHSTOR_CRASH_AT", "md-add:after"}}),
        &ignored);
    REQUIRE(fp.ok());
    CHECK(*fp == std::vector<Failpoint>{{"md-add", FailpointPhase::kAfter}});
    CHECK(ignored.empty());
  }
  SECTION("switch 1 and a bad MESHSTOR_CRASH_AT: an error") {
    auto fp = FailpointsFromEnvironment(
        Env({{"MESHSTOR_FAILPOINTS_ENABLED", "1"}, {"MESHSTOR_CRASH_AT", "md-add:later"}}));
    REQUIRE_FALSE(fp.ok());
    CHECK_THAT(fp.status().message(), Catch::Contains("phase \"later\""));
  }
  SECTION("a switch value other than 0 or 1: an error naming it") {
    auto fp = FailpointsFromEnvironment(
        Env({{"MESHSTOR_FAILPOINTS_ENABLED", "yes"}, {"MESHSTOR_CRASH_AT", "md-add"}}));
    REQUIRE_FALSE(fp.ok());
    CHECK_THAT(fp.status().message(), Catch::Contains("MESHSTOR_FAILPOINTS_ENABLED=\"yes\""));
  }
}

// What the kernel looked like when a failpoint fired.
struct Firing {
  Failpoint at;
  bool array_running = false;
  bool partition_present = false;
};

TEST_CASE("A failpoint fires once, before or after its kernel step, and nowhere else",
          "[unit][agent][failpoints]") {
  testing::World w;
  const std::string array = sys::MdArrayName("pvc-1");
  std::vector<Firing> firings;
  auto record = [&](const std::string& node) {
    return [&, node](const Failpoint& f) {
      Firing x{f};
      x.array_running = w.cluster.node(node).md.GetArray(array).ok();
      auto parts = w.cluster.node(node).partitions.List("/dev/nvme0n1");
      x.partition_present = parts.ok() && !parts->empty();
      firings.push_back(x);
    };
  };
  v1::MeshStorVolume v = Raid1Volume();

  SECTION("md-create before: the array does not exist yet") {
    FailpointKernel fk(
        w.cluster.node("a").Kernel(),
        {{"md-create", FailpointPhase::kBefore}, {"md-stop", FailpointPhase::kBefore}},
        record("a"));
    w.kernel_override["a"] = fk.Kernel();
    w.Passes(v, 3);
    REQUIRE(firings.size() == 1);
    CHECK(firings[0].at == Failpoint{"md-create", FailpointPhase::kBefore});
    CHECK_FALSE(firings[0].array_running);
    // The action returned (as in a test): the call went on and the volume converged.
    CHECK(w.cluster.node("a").md.GetArray(array).ok());
    CHECK(fk.fired() == std::vector<Failpoint>{{"md-create", FailpointPhase::kBefore}});
    // md-stop fires only at the teardown.
    v.spec.consumer_node.clear();
    w.Passes(v, 2);
    REQUIRE(firings.size() == 2);
    CHECK(firings[1].at == Failpoint{"md-stop", FailpointPhase::kBefore});
    CHECK(firings[1].array_running);
    CHECK_FALSE(w.cluster.node("a").md.GetArray(array).ok());
  }
  SECTION("md-create after: the array exists") {
    FailpointKernel fk(w.cluster.node("a").Kernel(), {{"md-create", FailpointPhase::kAfter}},
                       record("a"));
    w.kernel_override["a"] = fk.Kernel();
    w.Passes(v, 3);
    REQUIRE(firings.size() == 1);
    CHECK(firings[0].array_running);
  }
  SECTION("an exporter's partition-create, before and after") {
    FailpointKernel fk(w.cluster.node("b").Kernel(),
                       {{"partition-create", FailpointPhase::kBefore},
                        {"partition-create", FailpointPhase::kAfter}},
                       record("b"));
    w.kernel_override["b"] = fk.Kernel();
    w.Passes(v, 3);
    REQUIRE(firings.size() == 2);
    CHECK(firings[0].at.phase == FailpointPhase::kBefore);
    CHECK_FALSE(firings[0].partition_present);
    CHECK(firings[1].at.phase == FailpointPhase::kAfter);
    CHECK(firings[1].partition_present);
  }
  SECTION("after fires only when the step succeeded") {
    w.cluster.SetOnline("b", false);  // A's connect to B fails
    FailpointKernel fk(w.cluster.node("a").Kernel(), {{"nvme-connect", FailpointPhase::kAfter}},
                       record("a"));
    w.kernel_override["a"] = fk.Kernel();
    w.Passes(v, 2);
    CHECK(firings.empty());
    w.cluster.SetOnline("b", true);
    w.Passes(v, 2);
    REQUIRE(firings.size() == 1);
    CHECK(firings[0].at == Failpoint{"nvme-connect", FailpointPhase::kAfter});
  }
  SECTION("steps that are not armed pass straight through") {
    FailpointKernel fk(w.cluster.node("a").Kernel(), {{"md-grow", FailpointPhase::kBefore}},
                       record("a"));
    w.kernel_override["a"] = fk.Kernel();
    w.Passes(v, 3);
    CHECK(firings.empty());
    CHECK(w.cluster.node("a").md.GetArray(array).ok());
    CHECK(v.status.staged_path != "");
  }
}

TEST_CASE("KillSelf reports the failpoint on stderr and dies of SIGKILL",
          "[unit][agent][failpoints]") {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    KillSelf({"md-create", FailpointPhase::kAfter});
  }
  ::close(pipe_fds[1]);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) err.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(err == "meshstor-agent: failpoint md-create:after fired: SIGKILL\n");
}

}  // namespace
}  // namespace agent
