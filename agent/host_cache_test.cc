#include "agent/host_cache.h"

#include <cerrno>
#include <map>
#include <string>

#include <catch2/catch.hpp>

namespace agent {
namespace {

using common::StatusCode;

// A host whose connects answer per address as scripted, counting the attempts.
class ScriptedHost final : public sys::NvmeHost {
 public:
  common::Result<sys::NvmeController> Connect(const sys::NvmeConnectSpec& spec) override {
    ++connects[spec.address];
    auto it = answers.find(spec.address);
    if (it != answers.end()) return it->second;
    sys::NvmeController c;
    c.name = "nvme1";
    c.subsys_nqn = spec.subsys_nqn;
    c.traddr = spec.address;
    return c;
  }
  common::Status Disconnect(std::string_view) override { return common::OkStatus(); }
  common::Result<std::vector<sys::NvmeController>> ListControllers() override {
    return std::vector<sys::NvmeController>{};
  }
  common::Result<std::string> FindNamespaceDevice(std::string_view,
                                                  const sys::NvmeNamespaceSelector&) override {
    return common::NotFoundError("none");
  }
  common::Result<std::string> SubsystemOfDevice(std::string_view) override {
    return common::NotFoundError("none");
  }
  common::Result<sys::NvmeHostIdentity> GetHostIdentity() override {
    return sys::NvmeHostIdentity{"nqn.2014-08.org.nvmexpress:uuid:a", "a"};
  }

  std::map<std::string, common::Status> answers;  // address -> error
  std::map<std::string, int> connects;            // address -> attempts
};

sys::NvmeConnectSpec To(const std::string& address, const std::string& subsystem) {
  sys::NvmeConnectSpec spec;
  spec.address = address;
  spec.subsys_nqn = "nqn.2026-11.io.meshstor:" + subsystem + ":a";
  spec.host_nqn = "nqn.2014-08.org.nvmexpress:uuid:a";
  return spec;
}

common::Status Unanswered(int err) {
  return common::Status(StatusCode::kUnavailable, "connecting: no answer", std::to_string(err));
}

TEST_CASE("An address that did not answer is not tried again until a pass retries it",
          "[unit][agent][nvme]") {
  ScriptedHost inner;
  inner.answers["10.0.0.3"] = Unanswered(ETIMEDOUT);
  PassCachedNvmeHost host(inner);
  host.BeginPass();
  // Three volumes with a member on the dead node: one socket timeout, not three.
  for (const char* volume : {"c", "c2", "c3"}) {
    auto c = host.Connect(To("10.0.0.3", volume));
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kUnavailable);
    CHECK(sys::IsTargetUnreachable(c.status()));
  }
  CHECK(inner.connects["10.0.0.3"] == 1);
  auto again = host.Connect(To("10.0.0.3", "c4"));
  CHECK(again.status().message().find("c4") != std::string::npos);
  CHECK(again.status().message().find("not tried") != std::string::npos);
  // Another address is tried as usual.
  CHECK(host.Connect(To("10.0.0.2", "b")).ok());
  CHECK(inner.connects["10.0.0.2"] == 1);

  // A pass woken by kernel events alone (the uevents of that failed connect) does not try again.
  host.BeginPass(/*retry_unanswered=*/false);
  CHECK_FALSE(host.Connect(To("10.0.0.3", "c")).ok());
  CHECK(inner.connects["10.0.0.3"] == 1);
  // The next timer or API pass tries again: a node that came back is connected to at once.
  host.BeginPass();
  inner.answers.erase("10.0.0.3");
  CHECK(host.Connect(To("10.0.0.3", "c")).ok());
  CHECK(inner.connects["10.0.0.3"] == 2);
}

TEST_CASE("A target that answered and refused one subsystem is still asked for the others",
          "[unit][agent][nvme]") {
  ScriptedHost inner;
  // The kernel's refusal of a subsystem that is not exported (or of a host not allowed): EIO.
  inner.answers["10.0.0.2"] =
      common::Status(StatusCode::kInternal, "connecting: refused", std::to_string(EIO));
  PassCachedNvmeHost host(inner);
  host.BeginPass();
  CHECK_FALSE(host.Connect(To("10.0.0.2", "b")).ok());
  CHECK_FALSE(host.Connect(To("10.0.0.2", "b2")).ok());
  CHECK(inner.connects["10.0.0.2"] == 2);
  // A refused port (nothing listens: ECONNREFUSED) is the address not answering.
  inner.answers["10.0.0.4"] = Unanswered(ECONNREFUSED);
  CHECK_FALSE(host.Connect(To("10.0.0.4", "d")).ok());
  CHECK_FALSE(host.Connect(To("10.0.0.4", "d2")).ok());
  CHECK(inner.connects["10.0.0.4"] == 1);
  // The same address on another service is another target: asked.
  auto other = To("10.0.0.4", "d");
  other.service = "4421";
  CHECK_FALSE(host.Connect(other).ok());
  CHECK(inner.connects["10.0.0.4"] == 2);
}

TEST_CASE("IsTargetUnreachable: only the socket errors of an address that did not answer",
          "[unit][agent][nvme]") {
  for (int e : {ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ECONNREFUSED}) {
    CHECK(sys::IsTargetUnreachable(Unanswered(e)));
  }
  CHECK_FALSE(sys::IsTargetUnreachable(common::OkStatus()));
  CHECK_FALSE(sys::IsTargetUnreachable(Unanswered(EIO)));
  CHECK_FALSE(sys::IsTargetUnreachable(common::UnavailableError("no detail")));
}

}  // namespace
}  // namespace agent
