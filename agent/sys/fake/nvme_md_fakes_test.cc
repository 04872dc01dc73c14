// Fake-specific behaviour beyond the contracts: the fake cluster (target loss reaches MD),
// divergence refusal, failure injection, sync progress, and the fake uevent source.
#include <memory>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/sys/fake/md.h"
#include "agent/sys/fake/md_events.h"
#include "agent/sys/fake/nvme_host.h"
#include "agent/sys/fake/nvmet.h"
#include "agent/sys/fake/uevents.h"

namespace agent::sys {
namespace {

using common::StatusCode;

const NvmeHostIdentity kHostA{
    "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001",
    "aaaaaaaa-0000-4000-8000-000000000001"};
constexpr const char* kUuid = "5a1e0000-0000-4000-8000-0000000000b1";

// Node B exports /dev/vdb1 to node A, A connects and builds RAID1(local, remote).
struct Cluster {
  FakeFabric fabric;
  FakeNvmetTarget target_b{fabric, "b"};
  FakeNvmeHost host_a{fabric, "a", kHostA};
  FakeMd md_a;
  std::string nqn = SubsystemNqn("b", "a").value();
  NvmeConnectSpec spec;
  std::string remote;

  Cluster() {
    target_b.AddBlockDevice("/dev/vdb1");
    REQUIRE(target_b.EnsurePort({1, NvmeTransport::kTcp, "10.77.0.2", "4420"}).ok());
    REQUIRE(target_b.EnsureSubsystem(nqn, SubsystemSerial(nqn), {kHostA.host_nqn}).ok());
    REQUIRE(target_b.EnsureNamespace(nqn, {1, "/dev/vdb1", kUuid, true}).ok());
    REQUIRE(target_b.LinkSubsystemToPort(nqn, 1).ok());
    spec = {NvmeTransport::kTcp, "10.77.0.2", "4420", nqn, kHostA.host_nqn, kHostA.host_id};
    REQUIRE(host_a.Connect(spec).ok());
    remote = host_a.FindNamespaceDevice(nqn, {1, ""}).value();
    md_a.AddLocalDevice("/dev/vda1");
    md_a.SetRemoteDevicePresence(
        [this](std::string_view path) { return fabric.HostDeviceExists("a", path); });
    MdCreateSpec create{
        "vol", MdLevel::kRaid1, {{"/dev/vda1"}, {remote, true}}, MdArrayUuid("vol")};
    REQUIRE(md_a.Create(create).ok());
  }
};

TEST_CASE("Fake fabric: resolving a host's device looks at the target it reaches, not all",
          "[unit][agent][nvme]") {
  Cluster c;
  // 200 more targets with a port each, as in a simulated cluster of 200 nodes; their names sort
  // before "b", so a scan in name order meets them all before the one it looks for.
  std::vector<std::unique_ptr<FakeNvmetTarget>> others;
  for (int i = 0; i < 200; ++i) {
    others.push_back(std::make_unique<FakeNvmetTarget>(c.fabric, fmt::format("a{:03}", i)));
    REQUIRE(others.back()
                ->EnsurePort({1, NvmeTransport::kTcp, fmt::format("10.78.0.{}", i), "4420"})
                .ok());
  }
  const uint64_t before = c.fabric.targets_examined();
  CHECK(c.fabric.HostDeviceExists("a", c.remote));
  CHECK_FALSE(c.fabric.HostDeviceExists("a", c.remote + "0"));
  CHECK_FALSE(c.fabric.HostDeviceExists("a", "/dev/vda1"));
  CHECK(c.remote == "/dev/nvme0n1");
  for (const char* other : {"/dev/nvme00n1", "/dev/nvme0n01", "/dev/nvme0n", "/dev/nvmen1",
                            "/dev/nvme-0n1", "/dev/nvme0n1p1", "/dev/nvme0c0n1"}) {
    CHECK_FALSE(c.fabric.HostDeviceExists("a", other));
    CHECK_FALSE(c.fabric.BackingOf("a", other));
  }
  auto backing = c.fabric.BackingOf("a", c.remote);
  REQUIRE(backing);
  CHECK(*backing == std::pair<std::string, std::string>{"b", "/dev/vdb1"});
  CHECK_FALSE(c.fabric.BackingOf("a", "/dev/vda1"));
  auto ctrls = c.host_a.ListControllers();
  REQUIRE(ctrls.ok());
  REQUIRE(ctrls->size() == 1);
  CHECK((*ctrls)[0].state == NvmeControllerState::kLive);
  REQUIRE(c.md_a.GetArray("vol").ok());  // asks the fabric whether the remote member is there
  // A scan of every target looked at 201 for each of these; the index looks at "b" only.
  CHECK(c.fabric.targets_examined() - before <= 5);

  // The index follows the ports: without b's port the device is gone, with it back it returns.
  REQUIRE(c.target_b.RemovePort(1).ok());
  CHECK_FALSE(c.fabric.HostDeviceExists("a", c.remote));
  REQUIRE(c.target_b.EnsurePort({1, NvmeTransport::kTcp, "10.77.0.2", "4420"}).ok());
  REQUIRE(c.target_b.LinkSubsystemToPort(c.nqn, 1).ok());
  CHECK(c.fabric.HostDeviceExists("a", c.remote));
  // A port moved elsewhere no longer answers at its old address.
  REQUIRE(c.target_b.UnlinkSubsystemFromPort(c.nqn, 1).ok());
  REQUIRE(c.target_b.EnsurePort({1, NvmeTransport::kTcp, "10.77.0.9", "4420"}).ok());
  REQUIRE(c.target_b.LinkSubsystemToPort(c.nqn, 1).ok());
  CHECK_FALSE(c.fabric.HostDeviceExists("a", c.remote));
  CHECK(c.fabric.BackingOf("a", c.remote) == std::nullopt);
}

TEST_CASE("Fake cluster: a vanished target fails the MD member; re-add after return",
          "[unit][agent][md][nvme]") {
  Cluster c;
  c.fabric.SetTargetOnline("b", false);
  auto ctrls = c.host_a.ListControllers();
  REQUIRE(ctrls.ok());
  REQUIRE(ctrls->size() == 1);
  CHECK((*ctrls)[0].state == NvmeControllerState::kConnecting);
  CHECK(c.host_a.FindNamespaceDevice(c.nqn, {1, ""}).status().code() == StatusCode::kNotFound);
  auto a = c.md_a.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->degraded == 1);
  CHECK(a->members.size() == 2);
  CHECK(std::any_of(a->members.begin(), a->members.end(),
                    [](const MdMemberState& m) { return m.faulty; }));
  // Re-add fails while the device is gone.
  CHECK_FALSE(c.md_a.ReAdd("vol", c.remote).ok());

  c.fabric.SetTargetOnline("b", true);
  ctrls = c.host_a.ListControllers();
  REQUIRE(ctrls.ok());
  CHECK((*ctrls)[0].state == NvmeControllerState::kLive);
  auto dev = c.host_a.FindNamespaceDevice(c.nqn, {std::nullopt, kUuid});
  REQUIRE(dev.ok());
  CHECK(*dev == c.remote);  // stable identity: same device node
  REQUIRE(c.md_a.ReAdd("vol", c.remote).ok());
  a = c.md_a.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->degraded == 0);
  CHECK(a->members.size() == 2);
}

TEST_CASE("Fake cluster: a lost controller expires and a new connect is needed",
          "[unit][agent][nvme]") {
  Cluster c;
  REQUIRE(c.target_b.UnlinkSubsystemFromPort(c.nqn, 1).ok());
  c.fabric.ExpireDisconnectedControllers("a");
  CHECK(c.host_a.ListControllers()->empty());
  // Unreachable: connect fails. The target answered (its port is up): not the address.
  auto refused = c.host_a.Connect(c.spec);
  CHECK(refused.status().code() == StatusCode::kUnavailable);
  CHECK_FALSE(IsTargetUnreachable(refused.status()));
  // A target that is down does not answer at all, as the kernel's socket timeout.
  c.fabric.SetTargetOnline("b", false);
  CHECK(IsTargetUnreachable(c.host_a.Connect(c.spec).status()));
  c.fabric.SetTargetOnline("b", true);
  REQUIRE(c.target_b.LinkSubsystemToPort(c.nqn, 1).ok());
  auto ctrl = c.host_a.Connect(c.spec);
  REQUIRE(ctrl.ok());
  CHECK(ctrl->instance == 1);  // a new instance, as the kernel would pick
}

TEST_CASE("Fake ACL change does not cut an existing controller", "[unit][agent][nvme]") {
  Cluster c;
  REQUIRE(c.target_b.SetAllowedHosts(c.nqn, {"nqn.2014-08.org.nvmexpress:uuid:other"}).ok());
  CHECK(c.host_a.FindNamespaceDevice(c.nqn, {1, ""}).ok());
  // Fencing is done by removing the namespace from the old consumer's subsystem.
  REQUIRE(c.target_b.RemoveNamespace(c.nqn, 1).ok());
  CHECK_FALSE(c.host_a.FindNamespaceDevice(c.nqn, {1, ""}).ok());
  CHECK(c.md_a.GetArray("vol")->degraded == 1);
}

TEST_CASE("FakeMd refuses to re-add a member whose events ran ahead", "[unit][agent][md]") {
  Cluster c;
  REQUIRE(c.md_a.Fail("vol", c.remote).ok());
  REQUIRE(c.md_a.Remove("vol", "failed").ok());
  auto array_sb = c.md_a.Examine("/dev/vda1");
  REQUIRE(array_sb.ok());
  c.md_a.SetSuperblockEvents(c.remote, array_sb->events + 10);
  auto s = c.md_a.ReAdd("vol", c.remote);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message().find("diverged") != std::string::npos);
  c.md_a.SetSuperblockEvents(c.remote, array_sb->events - 1);
  CHECK(c.md_a.ReAdd("vol", c.remote).ok());
}

TEST_CASE("FakeMd never fails the last in-sync copy", "[unit][agent][md]") {
  Cluster c;
  REQUIRE(c.md_a.Fail("vol", c.remote).ok());
  CHECK(c.md_a.Fail("vol", "/dev/vda1").code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("FakeMd sync runs until finished when not instant", "[unit][agent][md]") {
  FakeMd md;
  md.SetInstantSync(false);
  for (auto d : {"/dev/a", "/dev/b", "/dev/c"}) md.AddLocalDevice(d);
  REQUIRE(md.Create({"v", MdLevel::kRaid1, {{"/dev/a"}, {"/dev/b"}}, MdArrayUuid("v")}).ok());
  auto a = md.GetArray("v");
  REQUIRE(a.ok());
  CHECK(a->sync_action == "resync");
  md.FinishSync("v");
  CHECK(md.GetArray("v")->sync_action == "idle");
  REQUIRE(md.Replace("v", "/dev/b", {"/dev/c", true}).ok());
  a = md.GetArray("v");
  REQUIRE(a.ok());
  CHECK(a->members.size() == 3);
  CHECK(a->degraded == 0);
  md.FinishSync("v");
  a = md.GetArray("v");
  REQUIRE(a.ok());
  for (const auto& m : a->members) {
    if (m.kernel_name == "b") CHECK(m.faulty);
    if (m.kernel_name == "c") CHECK((m.in_sync && m.write_mostly && m.slot == 1));
  }
  md.SetInUse("v", true);
  CHECK(md.Stop("v").code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("Fakes fail the n-th call on request", "[unit][agent][md][nvme]") {
  Cluster c;
  c.md_a.FailCall("GetArray", 2, common::UnavailableError("injected"));
  CHECK(c.md_a.GetArray("vol").ok());
  CHECK(c.md_a.GetArray("vol").status().code() == StatusCode::kUnavailable);
  CHECK(c.md_a.GetArray("vol").ok());
  c.host_a.FailCall("Connect", 1, common::InternalError("injected"));
  CHECK_FALSE(c.host_a.Connect(c.spec).ok());
  CHECK(c.host_a.Connect(c.spec).ok());
  c.target_b.FailCall("EnsureNamespace", 1, common::InternalError("injected"));
  CHECK_FALSE(c.target_b.EnsureNamespace(c.nqn, {1, "/dev/vdb1", kUuid, true}).ok());
  CHECK(c.target_b.EnsureNamespace(c.nqn, {1, "/dev/vdb1", kUuid, true}).ok());
}

TEST_CASE("FakeNvmetTarget refuses to enable a namespace on a missing device",
          "[unit][agent][nvmet]") {
  Cluster c;
  auto s = c.target_b.EnsureNamespace(c.nqn, {2, "/dev/absent", kUuid, true});
  CHECK(s.code() == StatusCode::kNotFound);
  auto info = c.target_b.GetSubsystem(c.nqn);
  REQUIRE(info.ok());
  REQUIRE(info->namespaces.size() == 2);
  CHECK_FALSE(info->namespaces[1].enabled);
}

TEST_CASE("FakeUeventSource delivers pushed events in order", "[unit][agent][uevents]") {
  FakeUeventSource source;
  auto none = source.Next(std::chrono::milliseconds(0));
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  Uevent e;
  e.action = "remove";
  e.subsystem = "block";
  e.devname = "nvme0n1";
  source.Push(e);
  std::string raw("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=nvme\0", 60);
  REQUIRE(source.PushRaw(raw).ok());
  CHECK_FALSE(source.PushRaw("garbage").ok());
  auto first = source.Next(std::chrono::milliseconds(0));
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->devname == "nvme0n1");
  auto second = source.Next(std::chrono::milliseconds(0));
  REQUIRE(second.ok());
  REQUIRE(second->has_value());
  CHECK((*second)->subsystem == "nvme");
  source.Interrupt();
  auto interrupted = source.Next(std::chrono::hours(1));
  REQUIRE(interrupted.ok());
  CHECK_FALSE(interrupted->has_value());
  source.FailNext(common::InternalError("broken"));
  CHECK_FALSE(source.Next(std::chrono::milliseconds(0)).ok());
}

}  // namespace
}  // namespace agent::sys

namespace agent::sys {
namespace {

TEST_CASE("Fake md event source: notices coalesce, Interrupt and failures", "[unit][agent][md]") {
  FakeMdEventSource events;
  auto none = events.Wait(std::chrono::milliseconds(0));
  REQUIRE(none.ok());
  CHECK_FALSE(*none);
  events.Notify();
  events.Notify();  // two events before a Wait: one wake-up, as with POLLPRI
  auto one = events.Wait(std::chrono::hours(1));
  REQUIRE(one.ok());
  CHECK(*one);
  auto again = events.Wait(std::chrono::milliseconds(0));
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  events.Interrupt();
  auto woken = events.Wait(std::chrono::hours(1));
  REQUIRE(woken.ok());
  CHECK_FALSE(*woken);
  events.FailNext(common::InternalError("mdstat vanished"));
  auto failed = events.Wait(std::chrono::hours(1));
  CHECK(failed.status().code() == common::StatusCode::kInternal);
  CHECK(events.waits() == 5);
}

}  // namespace
}  // namespace agent::sys
