#include "operator/volume_index.h"

#include <algorithm>

#include "operator/members.h"
#include "operator/reconcile.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

// Adds `delta` to m[key] and drops the entry at zero, so the maps hold only what is in use.
template <typename Map, typename Key, typename V>
void Bump(Map& m, const Key& key, V delta) {
  auto it = m.try_emplace(key, V{}).first;
  it->second += delta;
  if (it->second == V{}) m.erase(it);
}

}  // namespace

VolumeIndex::Contribution VolumeIndex::Of(const v1::MeshStorVolume& v) {
  Contribution c;
  c.resource_version = v.metadata.resource_version;
  for (const v1::Member& m : v.spec.members) {
    c.nodes.insert(m.node);
    c.namespace_ids[m.node].insert(m.namespace_id);
    if (m.state != v1::MemberState::kPresent) continue;
    ++c.members[m.node];
    bool reported = std::any_of(
        v.status.partitions.begin(), v.status.partitions.end(),
        [&](const v1::PartitionStatus& p) { return p.index == m.index && p.node_id == m.node; });
    if (!reported) c.pending[{m.node, m.drive}] += m.size_bytes;
    if (m.replaces && !IsSynced(v, m)) ++c.rebuilds[m.node];
  }
  for (const v1::PartitionStatus& p : v.status.partitions) {
    if (p.nvmeof_namespace_id) c.namespace_ids[p.node_id].insert(*p.nvmeof_namespace_id);
  }
  if (!v.spec.consumer_node.empty()) c.nodes.insert(v.spec.consumer_node);
  for (const std::string& n : v.spec.fenced_nodes) c.nodes.insert(n);
  const common::api::Condition* placeable =
      common::api::FindCondition(v.status.conditions, kConditionPlaceable);
  c.waiting = !v.metadata.deletion_timestamp &&
              (!v.spec.consumer_node.empty() || !v.spec.members.empty()) &&
              (placeable == nullptr || placeable->status != common::api::ConditionStatus::kTrue);
  return c;
}

void VolumeIndex::Add(const std::string& name, const Contribution& c, int sign) {
  for (const auto& [node, n] : c.members) Bump(members_, node, sign * n);
  for (const auto& [key, bytes] : c.pending) Bump(pending_, key, sign * bytes);
  for (const auto& [node, ids] : c.namespace_ids) {
    auto& per_node = namespace_ids_[node];
    for (int32_t id : ids) Bump(per_node, id, sign);
    if (per_node.empty()) namespace_ids_.erase(node);
  }
  for (const auto& [node, n] : c.rebuilds) Bump(rebuilds_, node, sign * n);
  for (const std::string& node : c.nodes) {
    if (sign > 0) {
      by_node_[node].insert(name);
    } else if (auto it = by_node_.find(node); it != by_node_.end()) {
      it->second.erase(name);
      if (it->second.empty()) by_node_.erase(it);
    }
  }
  if (c.waiting) {
    if (sign > 0) {
      waiting_.insert(name);
    } else {
      waiting_.erase(name);
    }
  }
}

void VolumeIndex::Apply(const std::string& name, const v1::MeshStorVolume* volume) {
  std::optional<Contribution> next;
  if (volume != nullptr) next = Of(*volume);  // outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = volumes_.find(name); it != volumes_.end()) {
    Add(name, it->second, -1);
    volumes_.erase(it);
  }
  if (next) {
    Add(name, *next, +1);
    volumes_.emplace(name, std::move(*next));
  }
}

int VolumeIndex::MemberCount(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = members_.find(node);
  return it == members_.end() ? 0 : it->second;
}

int64_t VolumeIndex::PendingBytes(const std::string& node, const std::string& drive) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find({node, drive});
  return it == pending_.end() ? 0 : it->second;
}

std::set<int32_t> VolumeIndex::UsedNamespaceIds(const std::string& node) const {
  std::set<int32_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = namespace_ids_.find(node);
  if (it == namespace_ids_.end()) return out;
  for (const auto& [id, count] : it->second) out.insert(id);
  return out;
}

std::map<std::string, int> VolumeIndex::RebuildsByNode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rebuilds_;
}

std::vector<std::string> VolumeIndex::VolumesConcerning(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> out = waiting_;
  if (auto it = by_node_.find(node); it != by_node_.end()) {
    out.insert(it->second.begin(), it->second.end());
  }
  return {out.begin(), out.end()};
}

std::string VolumeIndex::ResourceVersion(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = volumes_.find(name);
  return it == volumes_.end() ? std::string() : it->second.resource_version;
}

size_t VolumeIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return volumes_.size();
}

}  // namespace meshstor_operator
