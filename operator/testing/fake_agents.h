// A test double for the node agents: acts on spec.members of a volume and writes what the agents
// would observe into its status, one step per member per call, so tests see every
// intermediate state. Nodes listed as down report their members Missing (with missingSince).
//
// Agent contract simulated here (as the operator expects it):
// - a present member gets a status.partitions entry: Created, then Synced (a member replacing
//   another, or joining an assembled array, passes through Syncing);
// - a retired member's entry is removed once its partition is torn down;
// - the consumer agent reports nodeName, stagedPath, mdState and the device counts, and clears
//   nodeName and stagedPath when the volume is deleted and every member is retired.
//
// Thread contract: value helpers.
#pragma once

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include <fmt/format.h>

#include "common/api/v1alpha1/types.h"
#include "operator/placement.h"

namespace meshstor_operator::testing {

struct AgentWorld {
  std::set<std::string> down_nodes;
  std::chrono::system_clock::time_point now;
  // A member that goes Missing reports missingSince this long before `now` (a node that went
  // down earlier than the test noticed).
  std::chrono::seconds missing_for{0};
};

// Advances the agents' view of `v` by one step. Returns true when the status changed.
inline bool StepAgents(common::api::v1alpha1::MeshStorVolume& v, const AgentWorld& w) {
  namespace v1 = common::api::v1alpha1;
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(w.now);
  v1::MeshStorVolumeStatus& s = v.status;
  const v1::MeshStorVolumeStatus before = s;
  const bool consumer_up =
      !v.spec.consumer_node.empty() && !w.down_nodes.count(v.spec.consumer_node);
  bool assembled = !s.node_name.empty();
  for (const v1::Member& m : v.spec.members) {
    auto it = std::find_if(s.partitions.begin(), s.partitions.end(),
                           [&](const v1::PartitionStatus& p) { return p.index == m.index; });
    if (m.state == v1::MemberState::kRetired) {
      if (it != s.partitions.end() && !w.down_nodes.count(m.node)) s.partitions.erase(it);
      continue;
    }
    if (w.down_nodes.count(m.node)) {
      if (it != s.partitions.end() && it->state != v1::PartitionState::kMissing) {
        it->state = v1::PartitionState::kMissing;
        it->missing_since = now - w.missing_for;
        it->updated_at = now;
      }
      continue;
    }
    if (it == s.partitions.end()) {
      v1::PartitionStatus p;
      p.index = m.index;
      p.node_id = m.node;
      p.drive = m.drive;
      // Deterministic, UUID-shaped (the agent derives it from volume name + index).
      const uint64_t hi = StableHash(v.metadata.name, std::to_string(m.index));
      const uint64_t lo = StableHash(std::to_string(m.index), v.metadata.name);
      p.partition_uuid =
          fmt::format("{:08x}-{:04x}-5{:03x}-8{:03x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                      hi & 0xfff, lo >> 52, lo & 0xffffffffffffULL);
      p.nvmeof_namespace_id = m.namespace_id;
      p.state = v1::PartitionState::kCreated;
      p.size_bytes = m.size_bytes;
      p.updated_at = now;
      s.partitions.push_back(p);
      continue;
    }
    if (it->size_bytes != m.size_bytes) it->size_bytes = m.size_bytes;
    if (!consumer_up) continue;
    switch (it->state) {
      case v1::PartitionState::kCreated:
        it->state =
            (assembled || m.replaces) ? v1::PartitionState::kSyncing : v1::PartitionState::kSynced;
        it->updated_at = now;
        break;
      case v1::PartitionState::kMissing:  // came back: bitmap catch-up
        it->state = v1::PartitionState::kSyncing;
        it->missing_since.reset();
        it->updated_at = now;
        break;
      case v1::PartitionState::kSyncing:
        it->state = v1::PartitionState::kSynced;
        it->updated_at = now;
        break;
      default:
        break;
    }
  }
  // Consumer agent: MD-derived status.
  bool any_present = std::any_of(v.spec.members.begin(), v.spec.members.end(), [](const auto& m) {
    return m.state == v1::MemberState::kPresent;
  });
  if (v.metadata.deletion_timestamp && !any_present) {
    s.node_name.clear();
    s.staged_path.clear();
    s.md_state.clear();
  } else if (consumer_up && any_present) {
    int active = 0, down = 0;
    for (const auto& p : s.partitions) {
      if (p.state == v1::PartitionState::kSynced) ++active;
      if (p.state == v1::PartitionState::kMissing) ++down;
    }
    bool has_local = std::any_of(v.spec.members.begin(), v.spec.members.end(), [&](const auto& m) {
      return m.state == v1::MemberState::kPresent && m.node == v.spec.consumer_node;
    });
    if (has_local && active > 0) {
      s.node_name = v.spec.consumer_node;
      s.staged_path = "/var/lib/kubelet/plugins/meshstor/" + v.metadata.name;
      s.md_state = down > 0 ? "degraded" : "clean";
      s.active_devices = active;
      s.down_devices = down;
    }
  }
  return s != before;
}

}  // namespace meshstor_operator::testing
