#include "agent/sys/contract/nvmet_contract.h"

#include <algorithm>

#include <catch2/catch.hpp>

namespace agent::sys::contract {
namespace {

constexpr const char* kUuid = "5a1e0000-0000-4000-8000-00000000c0de";
constexpr const char* kOtherUuid = "5a1e0000-0000-4000-8000-00000000beef";

std::string Nqn(const NvmetContractEnv& env, std::string_view what) {
  return fmt::format("nqn.2026-11.io.meshstor.test:{}:{}", env.tag, what);
}

}  // namespace

void NvmetContractExportLifecycle(const NvmetContractEnv& env) {
  NvmetTarget& t = *env.target;
  const std::string nqn = Nqn(env, "export");
  const std::string host = Nqn(env, "host-a");
  NvmetPortSpec port{env.port_id, NvmeTransport::kTcp, env.address, env.service};

  REQUIRE(t.EnsurePort(port).ok());
  REQUIRE(t.EnsurePort(port).ok());  // idempotent
  REQUIRE(t.EnsureSubsystem(nqn, SubsystemSerial(nqn), {host}).ok());
  REQUIRE(t.EnsureSubsystem(nqn, SubsystemSerial(nqn), {host}).ok());
  NvmetNamespaceSpec ns{1, env.device, kUuid, true};
  REQUIRE(t.EnsureNamespace(nqn, ns).ok());
  REQUIRE(t.EnsureNamespace(nqn, ns).ok());
  REQUIRE(t.LinkSubsystemToPort(nqn, env.port_id).ok());
  REQUIRE(t.LinkSubsystemToPort(nqn, env.port_id).ok());

  auto info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->nqn == nqn);
  CHECK(info->serial == SubsystemSerial(nqn));
  CHECK_FALSE(info->allow_any_host);
  CHECK(info->allowed_hosts == std::vector<std::string>{host});
  REQUIRE(info->namespaces.size() == 1);
  CHECK(info->namespaces[0] == ns);
  CHECK(info->ports == std::vector<uint16_t>{env.port_id});

  auto ports = t.ListPorts();
  REQUIRE(ports.ok());
  auto pit = std::find_if(ports->begin(), ports->end(),
                          [&](const NvmetPortInfo& p) { return p.spec.id == env.port_id; });
  REQUIRE(pit != ports->end());
  CHECK(pit->spec == port);
  CHECK(std::count(pit->subsystems.begin(), pit->subsystems.end(), nqn) == 1);

  // A linked port cannot change its address.
  NvmetPortSpec moved = port;
  moved.service = "4999";
  CHECK(t.EnsurePort(moved).code() == common::StatusCode::kFailedPrecondition);

  auto all = t.ListSubsystems();
  REQUIRE(all.ok());
  CHECK(std::any_of(all->begin(), all->end(),
                    [&](const NvmetSubsystemInfo& s) { return s.nqn == nqn; }));

  // Disable keeps the namespace, with its identity.
  NvmetNamespaceSpec disabled = ns;
  disabled.enabled = false;
  REQUIRE(t.EnsureNamespace(nqn, disabled).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  REQUIRE(info->namespaces.size() == 1);
  CHECK_FALSE(info->namespaces[0].enabled);
  CHECK(info->namespaces[0].device_uuid == kUuid);
  REQUIRE(t.EnsureNamespace(nqn, ns).ok());

  REQUIRE(t.UnlinkSubsystemFromPort(nqn, env.port_id).ok());
  REQUIRE(t.UnlinkSubsystemFromPort(nqn, env.port_id).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->ports.empty());
  REQUIRE(t.LinkSubsystemToPort(nqn, env.port_id).ok());

  REQUIRE(t.RemoveNamespace(nqn, 1).ok());
  REQUIRE(t.RemoveNamespace(nqn, 1).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->namespaces.empty());

  // RemoveSubsystem unlinks from ports itself.
  REQUIRE(t.EnsureNamespace(nqn, ns).ok());
  REQUIRE(t.RemoveSubsystem(nqn).ok());
  REQUIRE(t.RemoveSubsystem(nqn).ok());
  CHECK(t.GetSubsystem(nqn).status().code() == common::StatusCode::kNotFound);
  ports = t.ListPorts();
  REQUIRE(ports.ok());
  for (const auto& p : *ports) {
    CHECK(std::count(p.subsystems.begin(), p.subsystems.end(), nqn) == 0);
  }
  REQUIRE(t.RemovePort(env.port_id).ok());
  REQUIRE(t.RemovePort(env.port_id).ok());
}

void NvmetContractAllowedHosts(const NvmetContractEnv& env) {
  NvmetTarget& t = *env.target;
  const std::string nqn = Nqn(env, "acl");
  const std::string a = Nqn(env, "host-a"), b = Nqn(env, "host-b"), c = Nqn(env, "host-c");
  REQUIRE(t.EnsureSubsystem(nqn, SubsystemSerial(nqn), {a, b}).ok());
  auto info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->allowed_hosts == std::vector<std::string>{a, b});

  // Fencing: the list is replaced, not merged.
  REQUIRE(t.SetAllowedHosts(nqn, {c}).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->allowed_hosts == std::vector<std::string>{c});
  CHECK_FALSE(info->allow_any_host);

  // EnsureSubsystem converges the list too.
  REQUIRE(t.EnsureSubsystem(nqn, SubsystemSerial(nqn), {a}).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->allowed_hosts == std::vector<std::string>{a});

  REQUIRE(t.SetAllowedHosts(nqn, {}).ok());
  info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  CHECK(info->allowed_hosts.empty());

  CHECK(t.SetAllowedHosts(Nqn(env, "absent"), {a}).code() == common::StatusCode::kNotFound);
  REQUIRE(t.RemoveSubsystem(nqn).ok());
}

void NvmetContractValidation(const NvmetContractEnv& env) {
  NvmetTarget& t = *env.target;
  const std::string nqn = Nqn(env, "rules");
  using common::StatusCode;
  CHECK(t.EnsureSubsystem("not-an-nqn", "0123", {}).code() == StatusCode::kInvalidArgument);
  CHECK(t.EnsureSubsystem(nqn, "", {}).code() == StatusCode::kInvalidArgument);
  CHECK(t.EnsureSubsystem(nqn, "012345678901234567890", {}).code() == StatusCode::kInvalidArgument);
  CHECK(t.EnsureSubsystem(nqn, "0123", {"bad host"}).code() == StatusCode::kInvalidArgument);
  CHECK(t.EnsurePort({0, NvmeTransport::kTcp, env.address, env.service}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.EnsureNamespace(nqn, {1, env.device, kUuid, true}).code() == StatusCode::kNotFound);
  CHECK(t.LinkSubsystemToPort(nqn, env.port_id).code() == StatusCode::kNotFound);

  REQUIRE(t.EnsureSubsystem(nqn, SubsystemSerial(nqn), {}).ok());
  CHECK(t.EnsureNamespace(nqn, {0, env.device, kUuid, true}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.EnsureNamespace(nqn, {1, env.device, "not-a-uuid", true}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.EnsureNamespace(nqn, {1, "", kUuid, true}).code() == StatusCode::kInvalidArgument);
  CHECK(t.LinkSubsystemToPort(nqn, env.port_id).code() == StatusCode::kNotFound);  // no port

  // The identity of a live namespace does not change under a host.
  REQUIRE(t.EnsureNamespace(nqn, {1, env.device, kUuid, true}).ok());
  CHECK(t.EnsureNamespace(nqn, {1, env.device, kOtherUuid, true}).code() ==
        StatusCode::kFailedPrecondition);
  // Disabled, it may be re-pointed.
  REQUIRE(t.EnsureNamespace(nqn, {1, env.device, kUuid, false}).ok());
  REQUIRE(t.EnsureNamespace(nqn, {1, env.device, kOtherUuid, true}).ok());
  auto info = t.GetSubsystem(nqn);
  REQUIRE(info.ok());
  REQUIRE(info->namespaces.size() == 1);
  CHECK(info->namespaces[0].device_uuid == kOtherUuid);
  CHECK(info->namespaces[0].enabled);
  REQUIRE(t.RemoveSubsystem(nqn).ok());
}

}  // namespace agent::sys::contract
