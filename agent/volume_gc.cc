// Node-wide garbage collection: exports, subsystems, the port and controllers no volume needs.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/volume.h"
#include "agent/volume_internal.h"
#include "common/log/log.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using volume_internal::IsOurSubsystem;
using volume_internal::kExportPort;

}  // namespace

common::Status VolumeReconciler::CollectGarbage(const std::vector<v1::MeshStorVolume>& volumes) {
  std::set<std::pair<std::string, uint32_t>> exports;  // (subsystem, nsid) still needed
  std::set<std::string> imports;                       // subsystems this node consumes from
  for (const auto& v : volumes) {
    const bool deleting = v.metadata.deletion_timestamp.has_value();
    for (const auto& m : v.spec.members) {
      if (m.state != v1::MemberState::kPresent || v.spec.consumer_node.empty()) continue;
      if (m.node == settings_.node && m.role == v1::MemberRole::kRemote && !deleting &&
          v.spec.consumer_node != settings_.node && !IsFenced(v, v.spec.consumer_node)) {
        auto nqn = sys::SubsystemNqn(settings_.node, v.spec.consumer_node);
        if (nqn.ok()) exports.insert({*nqn, static_cast<uint32_t>(m.namespace_id)});
      }
      if (v.spec.consumer_node == settings_.node && m.node != settings_.node &&
          !IsFenced(v, settings_.node)) {
        auto nqn = sys::SubsystemNqn(m.node, settings_.node);
        if (nqn.ok()) imports.insert(*nqn);
      }
    }
  }
  // A removed export cuts a consumer off from a copy: each one is logged with what it held.
  auto log = common::log::Root().WithValues({{"node", settings_.node}});
  ASSIGN_OR_RETURN(auto subsystems, k_.nvmet->ListSubsystems());
  for (const auto& s : subsystems) {
    if (!IsOurSubsystem(s.nqn)) continue;
    size_t left = s.namespaces.size();
    for (const auto& ns : s.namespaces) {
      if (exports.count({s.nqn, ns.nsid})) continue;
      RETURN_IF_ERROR(k_.nvmet->RemoveNamespace(s.nqn, ns.nsid));
      log.Info("Removed an export no volume of this node needs", {{"subsystem", s.nqn},
                                                                  {"nsid", ns.nsid},
                                                                  {"device", ns.device_path},
                                                                  {"volumes", volumes.size()}});
      --left;
    }
    if (left == 0) {
      for (uint16_t port : s.ports) RETURN_IF_ERROR(k_.nvmet->UnlinkSubsystemFromPort(s.nqn, port));
      RETURN_IF_ERROR(k_.nvmet->RemoveSubsystem(s.nqn));
    }
  }
  // Only the port this agent creates (id 1 on its address) is removed when left empty.
  ASSIGN_OR_RETURN(auto ports, k_.nvmet->ListPorts());
  for (const auto& p : ports) {
    if (p.subsystems.empty() && p.spec.id == kExportPort && p.spec.address == settings_.address) {
      RETURN_IF_ERROR(k_.nvmet->RemovePort(p.spec.id));
    }
  }
  ASSIGN_OR_RETURN(auto controllers, k_.host->ListControllers());
  std::optional<std::map<std::string, std::string>> held;  // read only when needed
  std::vector<std::string> kept;
  for (const auto& c : controllers) {
    if (!IsOurSubsystem(c.subsys_nqn) || imports.count(c.subsys_nqn)) continue;
    if (!held) {
      ASSIGN_OR_RETURN(auto found, SubsystemsUnderArrays());
      held = std::move(found);
    }
    if (auto it = held->find(c.subsys_nqn); it != held->end()) {
      kept.push_back(fmt::format("{} to {} (a leg of {})", c.name, c.subsys_nqn, it->second));
      continue;
    }
    RETURN_IF_ERROR(k_.host->Disconnect(c.name));
    log.Info("Disconnected from a target no volume of this node imports from",
             {{"controller", c.name}, {"subsystem", c.subsys_nqn}, {"volumes", volumes.size()}});
  }
  // Reported as the pass's error (logged with its repeats folded, counted in step errors): it
  // means the volume cache and the kernel disagree, or an array outlived its volume.
  if (!kept.empty()) {
    return common::FailedPreconditionError(
        "kept {} connection(s) no volume of this node imports from, a running array still uses "
        "them: {}",
        kept.size(), fmt::join(kept, "; "));
  }
  return common::OkStatus();
}

common::Result<std::map<std::string, std::string>> VolumeReconciler::SubsystemsUnderArrays() {
  std::map<std::string, std::string> out;  // subsystem NQN -> "/dev/md127 (nvme1n2)"
  ASSIGN_OR_RETURN(auto arrays, k_.md->ListArrays());
  for (const auto& a : arrays) {
    for (const auto& m : a.members) {
      auto nqn = k_.host->SubsystemOfDevice("/dev/" + m.kernel_name);
      if (nqn.status().code() == common::StatusCode::kNotFound) continue;  // not an import
      if (!nqn.ok()) return nqn.status().WithContext("checking what the running arrays hold");
      out.emplace(*nqn, fmt::format("{} ({})", a.device, m.kernel_name));
    }
  }
  return out;
}

}  // namespace agent
