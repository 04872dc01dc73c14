#include "agent/nvmet_cache.h"

#include <random>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/sys/fake/nvmet.h"
#include "agent/testing/counting_nvmet.h"

namespace agent {
namespace {

using common::StatusCode;
using testing::CountingNvmet;

std::string Describe(const std::vector<sys::NvmetSubsystemInfo>& subsystems) {
  std::string out;
  for (const auto& s : subsystems) {
    out += fmt::format("{} serial={} any={} hosts=[{}] ports=[{}]\n", s.nqn, s.serial,
                       s.allow_any_host, fmt::join(s.allowed_hosts, ","), fmt::join(s.ports, ","));
    for (const auto& ns : s.namespaces) {
      out += fmt::format("  ns {} {} {} {}\n", ns.nsid, ns.device_path, ns.device_uuid, ns.enabled);
    }
  }
  return out;
}

constexpr const char* kHostA = "nqn.2014-08.org.nvmexpress:uuid:aaaa";
constexpr const char* kHostC = "nqn.2014-08.org.nvmexpress:uuid:cccc";
constexpr const char* kToA = "nqn.2026-11.io.meshstor:b:a";
constexpr const char* kToC = "nqn.2026-11.io.meshstor:b:c";

TEST_CASE("PassCachedNvmet lists the subsystems once per pass, however many exports it makes",
          "[unit][agent][nvmet]") {
  sys::FakeFabric fabric;
  sys::FakeNvmetTarget target(fabric, "b");
  CountingNvmet counting(target);
  PassCachedNvmet cache(counting);
  constexpr int kMembers = 12;
  auto device = [](int i) { return fmt::format("/dev/disk/by-partuuid/p{}", i); };
  auto uuid = [](int i) { return fmt::format("5a1e0000-0000-4000-8000-{:012}", i); };
  for (int i = 1; i <= kMembers; ++i) target.AddBlockDevice(device(i));

  // What an exporter's pass does per member: fence (look for the partition in every other
  // subsystem), then ensure the export to the consumer.
  auto pass = [&] {
    cache.BeginPass();
    for (int i = 1; i <= kMembers; ++i) {
      auto listed = cache.ListSubsystems();
      REQUIRE(listed.ok());
      for (const auto& s : *listed) {
        for (const auto& ns : s.namespaces) {
          if (s.nqn != kToA && ns.device_path == device(i)) {
            REQUIRE(cache.RemoveNamespace(s.nqn, ns.nsid).ok());
          }
        }
      }
      REQUIRE(cache.EnsurePort({1, sys::NvmeTransport::kTcp, "10.77.0.2", "4420"}).ok());
      REQUIRE(cache.EnsureSubsystem(kToA, "serial-a", {kHostA}).ok());
      REQUIRE(cache.SetAllowedHosts(kToA, {kHostA}).ok());
      REQUIRE(cache
                  .EnsureNamespace(kToA, {static_cast<uint32_t>(i), device(i), uuid(i),
                                          /*enabled=*/true})
                  .ok());
      REQUIRE(cache.LinkSubsystemToPort(kToA, 1).ok());
    }
  };
  // Member 3 is still exported to c (the volume's consumer moved to a): fenced in the pass.
  REQUIRE(target.EnsureSubsystem(kToC, "serial-c", {kHostC}).ok());
  REQUIRE(target.EnsureNamespace(kToC, {3, device(3), uuid(3), true}).ok());
  pass();
  CHECK(counting.listings == 1);  // 12 before: one per member
  auto listed = target.ListSubsystems();
  REQUIRE(listed.ok());
  CHECK(Describe(*cache.ListSubsystems()) == Describe(*listed));
  CHECK(target.GetSubsystem(kToC)->namespaces.empty());
  REQUIRE(target.GetSubsystem(kToA).ok());
  CHECK(target.GetSubsystem(kToA)->namespaces.size() == kMembers);

  // The next pass reads again: another tool may have changed nvmet between passes.
  REQUIRE(target.EnsureNamespace(kToC, {3, device(3), uuid(3), true}).ok());
  int changes = counting.changes;
  pass();
  CHECK(counting.listings == 2);
  CHECK(target.GetSubsystem(kToC)->namespaces.empty());
  // What reached the target: the fence, the port once and each namespace (for its size). The
  // subsystem, its host and its port link were already there (5 changes per member before).
  CHECK(counting.changes - changes == 1 + 1 + kMembers);
  changes = counting.changes;
  pass();
  CHECK(counting.changes - changes == 1 + kMembers);
}

TEST_CASE("PassCachedNvmet sets up again only what the kept listing does not show",
          "[unit][agent][nvmet]") {
  sys::FakeFabric fabric;
  sys::FakeNvmetTarget target(fabric, "b");
  CountingNvmet counting(target);
  PassCachedNvmet cache(counting);
  const sys::NvmetPortSpec port{1, sys::NvmeTransport::kTcp, "10.77.0.2", "4420"};
  auto export_a = [&] {
    REQUIRE(cache.ListSubsystems().ok());  // the fencing check
    REQUIRE(cache.EnsurePort(port).ok());
    REQUIRE(cache.EnsureSubsystem(kToA, "serial-a", {kHostA}).ok());
    REQUIRE(cache.SetAllowedHosts(kToA, {kHostA}).ok());
    REQUIRE(cache.LinkSubsystemToPort(kToA, 1).ok());
  };
  cache.BeginPass();
  export_a();
  // Nothing was there: the port, the subsystem with its host, the link. SetAllowedHosts found
  // the host EnsureSubsystem had just set.
  CHECK(counting.changes == 3);
  // Another tool changes nvmet between passes: the host is gone, and the port link.
  REQUIRE(target.SetAllowedHosts(kToA, {}).ok());
  REQUIRE(target.UnlinkSubsystemFromPort(kToA, 1).ok());
  cache.BeginPass();
  counting.changes = 0;
  export_a();
  CHECK(counting.changes == 3);  // the port once per pass, the host and the link
  auto a = target.GetSubsystem(kToA);
  REQUIRE(a.ok());
  CHECK(a->allowed_hosts == std::vector<std::string>{kHostA});
  CHECK(a->ports == std::vector<uint16_t>{1});
  // Within the pass: nothing again, unless the ask differs from what is there.
  counting.changes = 0;
  export_a();
  CHECK(counting.changes == 0);
  REQUIRE(cache.SetAllowedHosts(kToA, {kHostA, kHostC}).ok());
  REQUIRE(cache.EnsureSubsystem(kToA, "serial-b", {kHostA, kHostC}).ok());  // the serial differs
  REQUIRE(cache.EnsurePort({2, sys::NvmeTransport::kTcp, "10.77.0.2", "4421"}).ok());
  CHECK(counting.changes == 3);
  CHECK(target.GetSubsystem(kToA)->allowed_hosts.size() == 2);
  CHECK(target.GetSubsystem(kToA)->serial == "serial-b");
  // An answered call still refuses a bad host NQN.
  CHECK(cache.SetAllowedHosts(kToA, {kHostA, kHostC, "not an nqn"}).code() ==
        StatusCode::kInvalidArgument);
  // A port that was removed is set up again.
  REQUIRE(cache.RemovePort(2).ok());
  counting.changes = 0;
  REQUIRE(cache.EnsurePort({2, sys::NvmeTransport::kTcp, "10.77.0.2", "4421"}).ok());
  CHECK(counting.changes == 1);
}

TEST_CASE("PassCachedNvmet forgets the listing when a change fails", "[unit][agent][nvmet]") {
  sys::FakeFabric fabric;
  sys::FakeNvmetTarget target(fabric, "b");
  CountingNvmet counting(target);
  PassCachedNvmet cache(counting);
  REQUIRE(cache.EnsureSubsystem(kToA, "serial-a", {kHostA}).ok());
  REQUIRE(cache.ListSubsystems().ok());
  CHECK(counting.listings == 1);
  // Enabling on a missing device fails after the namespace was written (disabled): the kept
  // listing must not be trusted.
  auto s =
      cache.EnsureNamespace(kToA, {1, "/dev/absent", "5a1e0000-0000-4000-8000-000000000001", true});
  CHECK(s.code() == StatusCode::kNotFound);
  auto after = cache.ListSubsystems();
  REQUIRE(after.ok());
  CHECK(counting.listings == 2);
  REQUIRE(after->size() == 1);
  REQUIRE((*after)[0].namespaces.size() == 1);
  CHECK_FALSE((*after)[0].namespaces[0].enabled);
  // GetSubsystem from the kept listing; an absent one is NotFound without reading.
  CHECK(cache.GetSubsystem(kToC).status().code() == StatusCode::kNotFound);
  CHECK(cache.GetSubsystem(kToA).ok());
  CHECK(counting.listings == 2);
}

TEST_CASE("PassCachedNvmet's listing stays what the layer below shows, change after change",
          "[unit][agent][nvmet]") {
  // Random changes through the cache, some failing; after each, the kept listing must equal a
  // fresh read of the fake target, and so must GetSubsystem.
  sys::FakeFabric fabric;
  sys::FakeNvmetTarget target(fabric, "b");
  PassCachedNvmet cache(target);
  const std::vector<std::string> nqns = {kToA, kToC, "nqn.2026-11.io.meshstor:b:d"};
  const std::vector<std::string> hosts = {kHostA, kHostC};
  const std::vector<std::string> devices = {"/dev/p1", "/dev/p2", "/dev/p3", "/dev/absent"};
  for (int i = 0; i < 3; ++i) target.AddBlockDevice(devices[i]);
  std::mt19937 rng(16);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  for (int step = 0; step < 3000; ++step) {
    const std::string& nqn = nqns[pick(nqns.size())];
    std::vector<std::string> some;
    for (const auto& h : hosts) {
      if (pick(2)) some.push_back(h);
    }
    const uint16_t port = static_cast<uint16_t>(1 + pick(2));
    const uint32_t nsid = static_cast<uint32_t>(1 + pick(3));
    std::string op;
    switch (pick(12)) {
      case 0:
        op = "BeginPass";
        cache.BeginPass();
        break;
      case 1:
        op = "EnsurePort";
        (void)cache.EnsurePort(
            {port, sys::NvmeTransport::kTcp, "10.77.0.2", pick(4) ? "4420" : "4421"});
        break;
      case 2:
        op = "RemovePort";
        (void)cache.RemovePort(port);
        break;
      case 3:
        op = "EnsureSubsystem";
        (void)cache.EnsureSubsystem(nqn, pick(2) ? "serial-1" : "serial-2", some);
        break;
      case 4:
        op = "SetAllowedHosts";
        (void)cache.SetAllowedHosts(nqn, some);
        break;
      case 5:
      case 6: {
        op = "EnsureNamespace";
        const size_t d = pick(devices.size());
        (void)cache.EnsureNamespace(
            nqn, {nsid, devices[d],
                  fmt::format("5A1E0000-0000-4000-8000-{:012}", d + (pick(5) == 0 ? 10 : 0)),
                  pick(4) != 0});
        break;
      }
      case 7:
        op = "RemoveNamespace";
        (void)cache.RemoveNamespace(nqn, nsid);
        break;
      case 8:
        op = "RemoveSubsystem";
        if (pick(3) == 0) (void)cache.RemoveSubsystem(nqn);
        break;
      case 9:
        op = "LinkSubsystemToPort";
        (void)cache.LinkSubsystemToPort(nqn, port);
        break;
      case 10:
        op = "UnlinkSubsystemFromPort";
        (void)cache.UnlinkSubsystemFromPort(nqn, port);
        break;
      default:
        op = "ListSubsystems";
        break;
    }
    auto kept = cache.ListSubsystems();
    auto fresh = target.ListSubsystems();
    REQUIRE(kept.ok());
    REQUIRE(fresh.ok());
    INFO("step " << step << " " << op << " " << nqn);
    REQUIRE(Describe(*kept) == Describe(*fresh));
    for (const auto& n : nqns) {
      auto a = cache.GetSubsystem(n);
      auto b = target.GetSubsystem(n);
      REQUIRE(a.ok() == b.ok());
      if (a.ok()) REQUIRE(Describe({*a}) == Describe({*b}));
    }
  }
}

}  // namespace
}  // namespace agent
