#include "agent/sys/contract/nvme_host_contract.h"

#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

namespace agent::sys::contract {
namespace {

constexpr const char* kUuid = "5a1e0000-0000-4000-8000-0000000000a1";

struct Exported {
  std::string nqn;
  NvmeConnectSpec spec;
};

// Exports env.device as nsid 1 of a fresh subsystem, allowed for this host only.
Exported Export(const NvmeHostContractEnv& env, std::string_view what) {
  auto identity = env.host->GetHostIdentity();
  REQUIRE(identity.ok());
  Exported e;
  e.nqn = fmt::format("nqn.2026-11.io.meshstor.test:{}:{}", env.tag, what);
  REQUIRE(
      env.target->EnsurePort({env.port_id, NvmeTransport::kTcp, env.address, env.service}).ok());
  REQUIRE(env.target->EnsureSubsystem(e.nqn, SubsystemSerial(e.nqn), {identity->host_nqn}).ok());
  REQUIRE(env.target->EnsureNamespace(e.nqn, {1, env.device, kUuid, true}).ok());
  REQUIRE(env.target->LinkSubsystemToPort(e.nqn, env.port_id).ok());
  e.spec.transport = NvmeTransport::kTcp;
  e.spec.address = env.address;
  e.spec.service = env.service;
  e.spec.subsys_nqn = e.nqn;
  e.spec.host_nqn = identity->host_nqn;
  e.spec.host_id = identity->host_id;
  return e;
}

void Unexport(const NvmeHostContractEnv& env, const Exported& e) {
  CHECK(env.target->RemoveSubsystem(e.nqn).ok());
  CHECK(env.target->RemovePort(env.port_id).ok());
}

std::vector<NvmeController> ControllersOf(NvmeHost& host, const std::string& nqn) {
  std::vector<NvmeController> out;
  auto all = host.ListControllers();
  if (!all.ok()) return out;
  for (const auto& c : *all) {
    if (c.subsys_nqn == nqn) out.push_back(c);
  }
  return out;
}

void DisconnectAll(NvmeHost& host, const std::string& nqn) {
  for (const auto& c : ControllersOf(host, nqn)) CHECK(host.Disconnect(c.name).ok());
}

}  // namespace

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

void NvmeHostContractConnectFindDisconnect(const NvmeHostContractEnv& env) {
  NvmeHost& host = *env.host;
  Exported e = Export(env, "connect");
  auto c = host.Connect(e.spec);
  REQUIRE(c.ok());
  CHECK(c->subsys_nqn == e.nqn);
  CHECK(c->traddr == env.address);
  CHECK(c->trsvcid == env.service);
  CHECK(c->transport == "tcp");
  CHECK(c->host_nqn == e.spec.host_nqn);
  CHECK(c->name == fmt::format("nvme{}", c->instance));
  CHECK(c->created);

  auto again = host.Connect(e.spec);  // idempotent: the same controller
  REQUIRE(again.ok());
  CHECK(again->name == c->name);
  CHECK_FALSE(again->created);
  CHECK(ControllersOf(host, e.nqn).size() == 1);

  CHECK(WaitFor(
      [&] {
        auto list = ControllersOf(host, e.nqn);
        return list.size() == 1 && list[0].state == NvmeControllerState::kLive;
      },
      env.patience));

  std::string device;
  CHECK(WaitFor(
      [&] {
        auto d = host.FindNamespaceDevice(e.nqn, {1, ""});
        if (d.ok()) device = *d;
        return d.ok();
      },
      env.patience));
  CHECK(device.rfind("/dev/nvme", 0) == 0);
  CHECK(device.find('c', 5) == std::string::npos);  // never a hidden per-path node
  auto by_uuid = host.FindNamespaceDevice(e.nqn, {std::nullopt, kUuid});
  REQUIRE(by_uuid.ok());
  CHECK(*by_uuid == device);
  CHECK(host.FindNamespaceDevice(e.nqn, {2, ""}).status().code() == common::StatusCode::kNotFound);
  CHECK(host.FindNamespaceDevice(e.nqn, {std::nullopt, ""}).status().code() ==
        common::StatusCode::kInvalidArgument);
  CHECK(host.SubsystemOfDevice(device).value_or("") == e.nqn);
  CHECK(host.SubsystemOfDevice(device + "p1").status().code() == common::StatusCode::kNotFound);
  CHECK(host.SubsystemOfDevice("/dev/md127").status().code() == common::StatusCode::kNotFound);

  REQUIRE(host.Disconnect(c->name).ok());
  CHECK(WaitFor([&] { return ControllersOf(host, e.nqn).empty(); }, env.patience));
  CHECK(WaitFor([&] { return !host.SubsystemOfDevice(device).ok(); }, env.patience));
  CHECK(host.SubsystemOfDevice(device).status().code() == common::StatusCode::kNotFound);
  CHECK(host.Disconnect(c->name).ok());  // idempotent
  CHECK(host.FindNamespaceDevice(e.nqn, {1, ""}).status().code() == common::StatusCode::kNotFound);
  CHECK(host.Disconnect("sda").code() == common::StatusCode::kInvalidArgument);
  Unexport(env, e);
}

void NvmeHostContractAclRefused(const NvmeHostContractEnv& env) {
  NvmeHost& host = *env.host;
  Exported e = Export(env, "acl");
  NvmeConnectSpec intruder = e.spec;
  intruder.host_nqn = fmt::format("nqn.2026-11.io.meshstor.test:{}:intruder", env.tag);
  auto c = host.Connect(intruder);
  CHECK_FALSE(c.ok());
  CHECK(ControllersOf(host, e.nqn).empty());
  CHECK(host.FindNamespaceDevice(e.nqn, {1, ""}).status().code() == common::StatusCode::kNotFound);

  // Fencing to this host: now it may.
  REQUIRE(env.target->SetAllowedHosts(e.nqn, {intruder.host_nqn}).ok());
  auto allowed = host.Connect(intruder);
  REQUIRE(allowed.ok());
  DisconnectAll(host, e.nqn);
  CHECK(WaitFor([&] { return ControllersOf(host, e.nqn).empty(); }, env.patience));
  Unexport(env, e);
}

void NvmeHostContractTargetLoss(const NvmeHostContractEnv& env) {
  NvmeHost& host = *env.host;
  Exported e = Export(env, "loss");
  e.spec.ctrl_loss_tmo_s = 3;
  e.spec.fast_io_fail_tmo_s = 1;
  e.spec.reconnect_delay_s = 1;
  REQUIRE(host.Connect(e.spec).ok());
  REQUIRE(WaitFor([&] { return host.FindNamespaceDevice(e.nqn, {1, ""}).ok(); }, env.patience));

  REQUIRE(env.target->UnlinkSubsystemFromPort(e.nqn, env.port_id).ok());
  CHECK(WaitFor(
      [&] {
        auto list = ControllersOf(host, e.nqn);
        return list.empty() || list[0].state != NvmeControllerState::kLive;
      },
      env.patience));
  // After ctrl_loss_tmo the kernel deletes the controller and its namespace; the fake drops
  // the namespace at once.
  CHECK(WaitFor([&] { return !host.FindNamespaceDevice(e.nqn, {1, ""}).ok(); }, env.patience));

  REQUIRE(env.target->LinkSubsystemToPort(e.nqn, env.port_id).ok());
  CHECK(WaitFor([&] { return host.Connect(e.spec).ok(); }, env.patience));
  CHECK(WaitFor(
      [&] {
        return host.FindNamespaceDevice(e.nqn, {std::nullopt, kUuid}).ok();
      },
      env.patience));
  DisconnectAll(host, e.nqn);
  CHECK(WaitFor([&] { return ControllersOf(host, e.nqn).empty(); }, env.patience));
  Unexport(env, e);
}

void NvmeHostContractIdentity(const NvmeHostContractEnv& env) {
  auto a = env.host->GetHostIdentity();
  auto b = env.host->GetHostIdentity();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(ValidateNqn(a->host_nqn).ok());
  CHECK_FALSE(a->host_id.empty());
  CHECK(a->host_nqn == b->host_nqn);
  CHECK(a->host_id == b->host_id);
}

}  // namespace agent::sys::contract
