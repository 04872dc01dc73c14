// The owner side of a volume: this node's members (partition, zeroing, growth, export, fence).
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "agent/volume.h"
#include "agent/volume_internal.h"
#include "common/log/log.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using volume_internal::Fail;
using volume_internal::FindPartition;
using volume_internal::IsOurSubsystem;
using volume_internal::kExportPort;
using volume_internal::Reported;

}  // namespace

void VolumeReconciler::ReconcileOwnedMember(const v1::MeshStorVolume& v, const v1::Member& m,
                                            const Peers& peers, VolumeOutcome& out) {
  const sys::MemberRef ref{v.metadata.name, static_cast<uint32_t>(m.index)};
  const std::string drive = "/dev/" + m.drive;
  const std::string what = fmt::format("member {} of {} on {}", m.index, v.metadata.name, drive);
  const auto now = std::chrono::floor<std::chrono::seconds>(clock_.Now());

  auto parts = k_.partitions->List(drive);
  if (!parts.ok()) return Fail(out, parts.status().WithContext(what));
  auto found = sys::FindMember(*parts, ref, drive);
  if (!found.ok()) return Fail(out, found.status().WithContext(what));

  OwnerReport r;
  r.partition.index = m.index;
  r.partition.node_id = settings_.node;
  r.partition.drive = m.drive;
  r.partition.updated_at = now;

  if (m.state == v1::MemberState::kRetired) {
    if (*found) {
      if (auto s = Unexport((*found)->device_path); !s.ok()) return Fail(out, s.WithContext(what));
      if (auto s = k_.partitions->Delete(drive, ref); !s.ok()) {
        return Fail(out, s.WithContext(what));
      }
    }
    r.remove = FindPartition(v.status, m.index) != nullptr;
    if (r.remove) out.owner.push_back(r);
    return;
  }

  sys::PartitionInfo p;
  if (!*found) {
    auto created =
        k_.partitions->Ensure(drive, {ref, static_cast<uint64_t>(m.size_bytes), std::nullopt});
    if (!created.ok()) return Fail(out, created.status().WithContext(what));
    // Stale bytes of an earlier user of this extent may look like a signature: zero them.
    auto zeroed = k_.partitions->Zero(drive, ref, /*allow_signature=*/true);
    if (!zeroed.ok()) return Fail(out, zeroed.status().WithContext(what));
    p = *created;
    r.zeroed_now = true;
  } else {
    p = **found;
    if (!Reported(v, m)) {
      // Created by an earlier pass that stopped before reporting it: zero it again unless it
      // already holds this volume's data (an MD superblock of this volume's array), which a
      // lost status must never cost. A superblock of any other array is stale: zero over it.
      auto sb = k_.md->Examine(p.device_path);
      bool ours = sb.ok() && sb->array_uuid == sys::MdArrayUuid(v.metadata.name);
      if (!ours) {
        auto zeroed = k_.partitions->Zero(drive, ref, /*allow_signature=*/true);
        if (!zeroed.ok()) return Fail(out, zeroed.status().WithContext(what));
        r.zeroed_now = true;
      }
    }
    if (p.size_bytes < static_cast<uint64_t>(m.size_bytes)) {
      auto grown = k_.partitions->Grow(drive, ref, static_cast<uint64_t>(m.size_bytes));
      if (!grown.ok()) return Fail(out, grown.status().WithContext(what));
      p = *grown;
    }
  }
  r.partition.partition_uuid = p.uuid;
  r.partition.size_bytes = static_cast<int64_t>(p.size_bytes);
  // Fencing before any export (docs/design.md §5.1): the fenced nodes lose this partition, and
  // their connections once nothing else is exported to them; confirmed in the report.
  if (auto s = Fence(v, p); !s.ok()) {
    out.retry_soon = true;
    return Fail(out, s.WithContext(what));
  }
  r.partition.fenced_nodes = v.spec.fenced_nodes;
  std::sort(r.partition.fenced_nodes.begin(), r.partition.fenced_nodes.end());
  const bool exported = m.role == v1::MemberRole::kRemote && !v.spec.consumer_node.empty() &&
                        v.spec.consumer_node != settings_.node &&
                        !v.metadata.deletion_timestamp.has_value() &&
                        !IsFenced(v, v.spec.consumer_node);
  if (exported) {
    r.partition.nvmeof_namespace_id = m.namespace_id;
    if (auto s = Export(v, m, p, peers); !s.ok()) {
      Fail(out, s.WithContext(what));
      out.retry_soon = true;
    }
  } else if (auto s = Unexport(p.device_path); !s.ok()) {
    Fail(out, s.WithContext(what));
  }
  out.owner.push_back(std::move(r));
}

common::Status VolumeReconciler::Export(const v1::MeshStorVolume& v, const v1::Member& m,
                                        const sys::PartitionInfo& p, const Peers& peers) {
  const std::string& consumer = v.spec.consumer_node;
  auto peer = peers.find(consumer);
  if (peer == peers.end() || peer->second.host_nqn.empty()) {
    return common::UnavailableError("consumer {} has not published its host NQN yet", consumer);
  }
  if (settings_.address.empty()) {
    return common::FailedPreconditionError("this node has no NVMe/TCP address (--address)");
  }
  if (m.namespace_id < v1::kMinNamespaceId || m.namespace_id > v1::kMaxNamespaceId) {
    return common::InvalidArgumentError("namespaceID {} is outside {}..{}", m.namespace_id,
                                        v1::kMinNamespaceId, v1::kMaxNamespaceId);
  }
  for (const std::string& fenced : v.spec.fenced_nodes) {
    auto f = peers.find(fenced);
    if (f != peers.end() && f->second.host_nqn == peer->second.host_nqn) {
      return common::FailedPreconditionError(
          "consumer {} has the host NQN {} of fenced node {}; refusing to export to it (give "
          "every node its own /etc/nvme/hostnqn)",
          consumer, peer->second.host_nqn, fenced);
    }
  }
  // The array of this volume still runs here (this node was its consumer): its member must not
  // be offered to another consumer before it is stopped (the teardown runs first, volume.cc).
  if (k_.md->GetArray(sys::MdArrayName(v.metadata.name)).ok()) {
    return common::FailedPreconditionError(
        "the array of {} still runs on this node; exporting its member to {} after it is stopped",
        v.metadata.name, consumer);
  }
  ASSIGN_OR_RETURN(std::string nqn, sys::SubsystemNqn(settings_.node, consumer));
  // Fence first: the partition leaves every other consumer's subsystem before it is offered to
  // this one (docs/design.md §6 rule 2).
  RETURN_IF_ERROR(Unexport(p.device_path, /*except_nqn=*/nqn));
  RETURN_IF_ERROR(k_.nvmet->EnsurePort(
      {kExportPort, sys::NvmeTransport::kTcp, settings_.address, settings_.service}));
  RETURN_IF_ERROR(
      k_.nvmet->EnsureSubsystem(nqn, sys::SubsystemSerial(nqn), {peer->second.host_nqn}));
  RETURN_IF_ERROR(k_.nvmet->SetAllowedHosts(nqn, {peer->second.host_nqn}));
  RETURN_IF_ERROR(k_.nvmet->EnsureNamespace(
      nqn, {static_cast<uint32_t>(m.namespace_id), p.device_path, p.uuid, /*enabled=*/true}));
  return k_.nvmet->LinkSubsystemToPort(nqn, kExportPort);
}

bool VolumeReconciler::IsFenced(const v1::MeshStorVolume& v, std::string_view node) {
  return std::find(v.spec.fenced_nodes.begin(), v.spec.fenced_nodes.end(), node) !=
         v.spec.fenced_nodes.end();
}

common::Status VolumeReconciler::Fence(const v1::MeshStorVolume& v, const sys::PartitionInfo& p) {
  for (const std::string& node : v.spec.fenced_nodes) {
    if (node == settings_.node) continue;  // this node stands down as a consumer instead
    ASSIGN_OR_RETURN(std::string nqn, sys::SubsystemNqn(settings_.node, node));
    auto sub = k_.nvmet->GetSubsystem(nqn);
    if (!sub.ok() && sub.status().code() == common::StatusCode::kNotFound) continue;
    if (!sub.ok()) return sub.status().WithContext("fencing node " + node);
    // The partition leaves the fenced node's subsystem: nvmet waits for the I/O in flight, and
    // the node's later commands to it fail.
    for (const auto& ns : sub->namespaces) {
      if (ns.device_path == p.device_path) {
        RETURN_IF_ERROR(k_.nvmet->RemoveNamespace(nqn, ns.nsid).WithContext("fencing " + node));
      }
    }
    ASSIGN_OR_RETURN(sub, k_.nvmet->GetSubsystem(nqn));
    // Volumes not fenced from that node keep their exports (and its connections); once nothing
    // is left, its connections are dropped (unlinking from the port deletes every controller:
    // nvmet has no per-host kick) and its host NQN leaves allowed_hosts, so it cannot return.
    if (!sub->namespaces.empty()) continue;
    for (uint16_t port : sub->ports) {
      RETURN_IF_ERROR(k_.nvmet->UnlinkSubsystemFromPort(nqn, port).WithContext("fencing " + node));
    }
    if (!sub->allowed_hosts.empty()) {
      RETURN_IF_ERROR(k_.nvmet->SetAllowedHosts(nqn, {}).WithContext("fencing " + node));
    }
  }
  return common::OkStatus();
}

common::Status VolumeReconciler::Unexport(const std::string& partition_device,
                                          std::string_view except_nqn) {
  ASSIGN_OR_RETURN(auto subsystems, k_.nvmet->ListSubsystems());
  for (const auto& s : subsystems) {
    if (s.nqn == except_nqn || !IsOurSubsystem(s.nqn)) continue;
    for (const auto& ns : s.namespaces) {
      if (ns.device_path == partition_device) {
        RETURN_IF_ERROR(k_.nvmet->RemoveNamespace(s.nqn, ns.nsid));
        common::log::Root().Info("Removed an export of this node's partition",
                                 {{"node", settings_.node},
                                  {"subsystem", s.nqn},
                                  {"nsid", ns.nsid},
                                  {"device", partition_device}});
      }
    }
  }
  return common::OkStatus();
}

}  // namespace agent
