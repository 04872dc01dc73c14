// Test builders for the operator's unit tests: drives, nodes and volumes as their writers
// (agents, csi-shim) would publish them.
//
// Thread contract: value helpers.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/api/core.h"
#include "common/api/v1alpha1/types.h"
#include "operator/placement.h"

namespace meshstor_operator::testing {

namespace v1 = common::api::v1alpha1;

// 2026-11-22T10:00:00Z, the FakeClock's start.
inline std::chrono::system_clock::time_point T0() {
  return std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + std::chrono::hours(10);
}

inline v1::MeshStorNodeDevice Drive(const std::string& node, const std::string& dev,
                                    int64_t free_bytes, int32_t sector = 4096,
                                    std::chrono::system_clock::time_point updated = T0()) {
  v1::MeshStorNodeDevice d;
  d.metadata.name = v1::NodeDeviceName(node, dev);
  d.spec.node_name = node;
  d.spec.device = dev;
  d.status.device_path = "/dev/" + dev;
  d.status.size_bytes = free_bytes + 100 * v1::kMiB;
  d.status.sector_size = sector;
  d.status.biggest_free_extent_bytes = free_bytes;
  d.status.host_nqn = "nqn.2014-08.org.nvmexpress:uuid:" + node;
  d.status.transport_addresses.push_back({v1::Transport::kTcp, "10.0.0.1", 4420});
  d.status.updated_at = std::chrono::time_point_cast<std::chrono::seconds>(updated);
  return d;
}

inline common::api::Node NodeObj(const std::string& name, bool unschedulable = false) {
  common::api::Node n;
  n.metadata.name = name;
  n.unschedulable = unschedulable;
  return n;
}

inline v1::MeshStorVolume Volume(const std::string& name, int32_t replicas = 2, int32_t stripe = 1,
                                 int64_t capacity = 1024 * v1::kMiB) {
  v1::MeshStorVolume v;
  v.metadata.name = name;
  v.metadata.generation = 1;
  v.spec.capacity_bytes = capacity;
  v.spec.replica_count = replicas;
  v.spec.stripe_width = stripe;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  return v;
}

// An inventory of `nodes` schedulable nodes ("node-a", "node-b", ...) with `drives` drives each
// ("nvme0n1", ...) of `free` free bytes.
inline Inventory Cluster(int nodes, int drives = 1, int64_t free = 100 * 1024 * v1::kMiB) {
  Inventory inv;
  inv.now = T0();
  for (int n = 0; n < nodes; ++n) {
    std::string node = std::string("node-") + static_cast<char>('a' + n);
    inv.nodes.push_back(std::make_shared<const common::api::Node>(NodeObj(node)));
    for (int d = 0; d < drives; ++d) {
      inv.devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(
          Drive(node, "nvme" + std::to_string(d) + "n1", free)));
    }
  }
  return inv;
}

inline std::vector<const v1::Member*> PresentMembers(const v1::MeshStorVolume& v) {
  std::vector<const v1::Member*> out;
  for (const auto& m : v.spec.members) {
    if (m.state == v1::MemberState::kPresent) out.push_back(&m);
  }
  return out;
}

inline std::string ConditionReason(const v1::MeshStorVolume& v, const std::string& type) {
  const auto* c = common::api::FindCondition(v.status.conditions, type);
  return c == nullptr ? "" : c->reason;
}

inline common::api::ConditionStatus ConditionIs(const v1::MeshStorVolume& v,
                                                const std::string& type) {
  const auto* c = common::api::FindCondition(v.status.conditions, type);
  return c == nullptr ? common::api::ConditionStatus::kUnknown : c->status;
}

}  // namespace meshstor_operator::testing
