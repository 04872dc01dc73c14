#include "operator/volume_index.h"

#include <algorithm>

#include "operator/members.h"
#include "operator/reconcile.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

// Adds `delta` to the value of `key` in a vector of (key, value) pairs sorted by key, and drops
// the entry at zero, so the vector holds only what is in use.
template <typename K, typename V, typename A>
void BumpSorted(std::vector<std::pair<K, V>, A>& vec, const K& key, V delta) {
  auto it = std::lower_bound(vec.begin(), vec.end(), key,
                             [](const std::pair<K, V>& e, const K& k) { return e.first < k; });
  if (it == vec.end() || it->first != key) it = vec.insert(it, {key, V{}});
  it->second += delta;
  if (it->second == V{}) vec.erase(it);
}

// As BumpSorted, for a short vector in no particular order (a node's drives).
template <typename K, typename V, typename A>
void BumpUnsorted(std::vector<std::pair<K, V>, A>& vec, const K& key, V delta) {
  auto it = std::find_if(vec.begin(), vec.end(), [&](const auto& e) { return e.first == key; });
  if (it == vec.end()) {
    vec.emplace_back(key, delta);
    return;
  }
  it->second += delta;
  if (it->second == V{}) vec.erase(it);
}

uint64_t VersionHash(std::string_view rv) { return std::hash<std::string_view>()(rv); }

}  // namespace

VolumeIndex::NodeRef VolumeIndex::NodeOf(const std::string& node) {
  auto [it, added] = nodes_.try_emplace(node);
  if (added) {
    if (free_node_ids_.empty()) {
      it->second.id = static_cast<uint32_t>(node_by_id_.size());
      node_by_id_.push_back(&*it);
    } else {
      it->second.id = free_node_ids_.back();
      free_node_ids_.pop_back();
      node_by_id_[it->second.id] = &*it;
    }
    if (auto r = registered_slots_.find(node); r != registered_slots_.end()) {
      it->second.slot = r->second;
      Sync(&*it);
    }
  }
  return &*it;
}

void VolumeIndex::Sync(const NodeMap::value_type* node) const {
  if (node->second.slot == kNoSlot) return;
  registered_[node->second.slot] = {node, node->second.members, !node->second.pending.empty()};
}

bool VolumeIndex::Register(const std::vector<std::string_view>& nodes) const {
  for (const Registered& r : registered_) {
    if (r.node != nullptr) r.node->second.slot = kNoSlot;
  }
  registered_.clear();
  registered_slots_.clear();
  registered_names_.assign(nodes.begin(), nodes.end());
  for (size_t i = 0; i < registered_names_.size(); ++i) {
    if (!registered_slots_.try_emplace(registered_names_[i], static_cast<uint32_t>(i)).second) {
      registered_slots_.clear();
      registered_names_.clear();
      return false;
    }
  }
  registered_.resize(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto it = nodes_.find(nodes[i]);
    if (it == nodes_.end()) continue;
    it->second.slot = static_cast<uint32_t>(i);
    Sync(&*it);
  }
  return true;
}

void VolumeIndex::Add(const Name* name, const v1::MeshStorVolume& v, Contribution* c) {
  c->resource_version_hash = VersionHash(v.metadata.resource_version);
  auto add = [&](NodeRef node, Contribution::Kind kind, int32_t nsid = 0) {
    c->items.push_back({node->second.id, kind, nsid});
    switch (kind) {
      case Contribution::kMember:
        ++node->second.members;
        Sync(node);
        break;
      case Contribution::kNamespaceId:
        BumpSorted(node->second.namespace_ids, nsid, 1);
        break;
      case Contribution::kConcerns:
        node->second.volumes.push_back(name);
        break;
      case Contribution::kRebuild:
        ++rebuilds_[node->first];
        break;
    }
  };
  // The nodes the volume concerns, each once: members' nodes, the consumer, fenced nodes.
  std::vector<NodeRef> concerns;
  auto concern = [&](NodeRef node) {
    if (std::find(concerns.begin(), concerns.end(), node) == concerns.end()) {
      concerns.push_back(node);
    }
  };
  for (const v1::Member& m : v.spec.members) {
    NodeRef node = NodeOf(m.node);
    concern(node);
    add(node, Contribution::kNamespaceId, m.namespace_id);
    if (m.state != v1::MemberState::kPresent) continue;
    add(node, Contribution::kMember);
    bool reported = std::any_of(
        v.status.partitions.begin(), v.status.partitions.end(),
        [&](const v1::PartitionStatus& p) { return p.index == m.index && p.node_id == m.node; });
    if (!reported) {
      c->pending.push_back({node, m.drive, m.size_bytes});
      BumpUnsorted(node->second.pending, m.drive, m.size_bytes);
      Sync(node);
    }
    if (m.replaces && !IsSynced(v, m)) add(node, Contribution::kRebuild);
  }
  for (const v1::PartitionStatus& p : v.status.partitions) {
    if (p.nvmeof_namespace_id)
      add(NodeOf(p.node_id), Contribution::kNamespaceId, *p.nvmeof_namespace_id);
  }
  if (!v.spec.consumer_node.empty()) concern(NodeOf(v.spec.consumer_node));
  for (const std::string& n : v.spec.fenced_nodes) concern(NodeOf(n));
  for (NodeRef node : concerns) add(node, Contribution::kConcerns);
  c->items.shrink_to_fit();
  c->pending.shrink_to_fit();
  const common::api::Condition* placeable =
      common::api::FindCondition(v.status.conditions, kConditionPlaceable);
  c->waiting = !v.metadata.deletion_timestamp &&
               (!v.spec.consumer_node.empty() || !v.spec.members.empty()) &&
               (placeable == nullptr || placeable->status != common::api::ConditionStatus::kTrue);
  if (c->waiting) waiting_.insert(name);
}

void VolumeIndex::Remove(const Name* name, Contribution* c) {
  std::vector<NodeRef> touched;
  for (const Contribution::Item& item : c->items) {
    NodeRef node = NodeById(item.node);
    NodeTotals& t = node->second;
    switch (item.kind) {
      case Contribution::kMember:
        --t.members;
        Sync(node);
        break;
      case Contribution::kNamespaceId:
        BumpSorted(t.namespace_ids, item.namespace_id, -1);
        break;
      case Contribution::kConcerns:
        t.volumes.erase(std::find(t.volumes.begin(), t.volumes.end(), name));
        break;
      case Contribution::kRebuild:
        if (auto it = rebuilds_.find(node->first); it != rebuilds_.end() && --it->second == 0) {
          rebuilds_.erase(it);
        }
        break;
    }
    touched.push_back(node);
  }
  for (const Contribution::Pending& p : c->pending) {
    BumpUnsorted(p.node->second.pending, p.drive, -p.bytes);
    Sync(p.node);
    touched.push_back(p.node);
  }
  if (c->waiting) waiting_.erase(name);
  *c = Contribution();
  // Every node a contribution refers to keeps a non-empty total while it does (a member adds
  // kConcerns, a reported ID kNamespaceId), so a node left empty is referred to by no one.
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (NodeRef node : touched) {
    if (!node->second.empty()) continue;
    if (node->second.slot != kNoSlot) registered_[node->second.slot] = Registered();
    node_by_id_[node->second.id] = nullptr;
    free_node_ids_.push_back(node->second.id);
    nodes_.erase(node->first);
  }
}

void VolumeIndex::Apply(const std::string& name, const v1::MeshStorVolume* volume) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = volumes_.find(name);
  if (it != volumes_.end()) Remove(&it->first, &it->second);
  if (volume == nullptr) {
    if (it != volumes_.end()) volumes_.erase(it);
    return;
  }
  if (it == volumes_.end()) it = volumes_.try_emplace(Name::Of(name)).first;
  // The key's address is what the per-node lists and waiting_ hold: it stays while the volume
  // is indexed (the entry is updated in place, never re-inserted).
  Add(&it->first, *volume, &it->second);
}

int VolumeIndex::MemberCount(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.members;
}

int64_t VolumeIndex::PendingBytes(const std::string& node, const std::string& drive) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return 0;
  for (const auto& [d, bytes] : it->second.pending) {
    if (d == drive) return bytes;
  }
  return 0;
}

std::vector<VolumeIndex::NodeLoad> VolumeIndex::Loads(
    const std::vector<std::string_view>& nodes) const {
  std::vector<NodeLoad> out(nodes.size());
  std::lock_guard<std::mutex> lock(mu_);
  if ((nodes.size() == registered_names_.size() &&
       std::equal(nodes.begin(), nodes.end(), registered_names_.begin())) ||
      Register(nodes)) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Registered& r = registered_[i];
      out[i].members = r.members;
      if (r.pending)
        out[i].pending.assign(r.node->second.pending.begin(), r.node->second.pending.end());
    }
    return out;
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto it = nodes_.find(nodes[i]);
    if (it == nodes_.end()) continue;
    out[i].members = it->second.members;
    out[i].pending.assign(it->second.pending.begin(), it->second.pending.end());
  }
  return out;
}

std::set<int32_t> VolumeIndex::UsedNamespaceIds(const std::string& node) const {
  std::set<int32_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return out;
  for (const auto& [id, count] : it->second.namespace_ids) out.insert(out.end(), id);
  return out;
}

std::map<std::string, int> VolumeIndex::RebuildsByNode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rebuilds_;
}

std::vector<std::string> VolumeIndex::VolumesConcerning(const std::string& node) const {
  // Sorted and copied under the lock: the pointers are valid only while it is held.
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Name*> names(waiting_.begin(), waiting_.end());
  if (auto it = nodes_.find(node); it != nodes_.end()) {
    names.insert(names.end(), it->second.volumes.begin(), it->second.volumes.end());
  }
  std::sort(names.begin(), names.end(), [](const Name* a, const Name* b) { return *a < *b; });
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const Name* n : names) out.emplace_back(n->view());
  return out;
}

bool VolumeIndex::IsAt(const std::string& name, std::string_view rv) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = volumes_.find(name);
  if (it == volumes_.end()) return rv.empty();
  return !rv.empty() && it->second.resource_version_hash == VersionHash(rv);
}

size_t VolumeIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return volumes_.size();
}

size_t VolumeIndex::node_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.size();
}

}  // namespace meshstor_operator
