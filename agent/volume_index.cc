#include "agent/volume_index.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;

// The nodes a volume names in the fields a pass acts on; Involves and InvolvedNodes both read
// them here, so they cannot disagree. `f` returns true to stop.
template <typename F>
bool AnyNamedNode(const v1::MeshStorVolume& v, F&& f) {
  if (f(v.spec.consumer_node) || f(v.status.node_name)) return true;
  // A fenced node tears down whatever of the volume it still runs, even once nothing else names
  // it (the operator cleared its consumer fields).
  for (const auto& n : v.spec.fenced_nodes) {
    if (f(n)) return true;
  }
  for (const auto& m : v.spec.members) {
    if (f(m.node)) return true;
  }
  for (const auto& p : v.status.partitions) {
    if (f(p.node_id)) return true;
  }
  return false;
}

}  // namespace

bool Involves(const v1::MeshStorVolume& v, std::string_view node) {
  return AnyNamedNode(v, [&](const std::string& n) { return n == node; });
}

std::vector<std::string> InvolvedNodes(const v1::MeshStorVolume& v) {
  std::vector<std::string> nodes;
  AnyNamedNode(v, [&](const std::string& n) {
    if (!n.empty()) nodes.push_back(n);
    return false;
  });
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

VolumeIndex::VolumeIndex(Informer& informer) : informer_(informer) {
  informer_.AddHandler([this](const Informer::Change& change) { Apply(change); });
}

std::vector<VolumeIndex::Ptr> VolumeIndex::VolumesOf(std::string_view node) const {
  std::lock_guard lock(mu_);
  std::vector<Ptr> out;
  auto it = by_node_.find(node);
  if (it == by_node_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& [key, v] : it->second) out.push_back(v);
  return out;
}

void VolumeIndex::Subscribe(const std::string& node, std::function<void()> on_change) {
  std::lock_guard lock(mu_);
  subscribers_[node].push_back(std::move(on_change));
}

void VolumeIndex::Apply(const Informer::Change& change) {
  // A volume that no longer decodes (new_obj null with decode_error) leaves the index as it
  // leaves Informer::List().
  std::vector<std::string> now;
  if (change.new_obj) now = InvolvedNodes(*change.new_obj);
  std::vector<std::function<void()>> to_tell;
  {
    std::lock_guard lock(mu_);
    std::vector<std::string> before;
    if (auto it = nodes_of_.find(change.key); it != nodes_of_.end()) {
      before = std::move(it->second);
      nodes_of_.erase(it);
    }
    for (const auto& n : before) {
      if (std::binary_search(now.begin(), now.end(), n)) continue;
      auto filed = by_node_.find(n);
      if (filed == by_node_.end()) continue;
      filed->second.erase(change.key);
      if (filed->second.empty()) by_node_.erase(filed);
    }
    for (const auto& n : now) by_node_[n][change.key] = change.new_obj;
    std::vector<std::string> touched;
    std::set_union(before.begin(), before.end(), now.begin(), now.end(),
                   std::back_inserter(touched));
    if (!now.empty()) nodes_of_.emplace(change.key, std::move(now));
    for (const auto& n : touched) {
      auto s = subscribers_.find(n);
      if (s == subscribers_.end()) continue;
      to_tell.insert(to_tell.end(), s->second.begin(), s->second.end());
    }
  }
  // Outside the lock: a subscriber may read the index (or post a pass that does).
  for (const auto& f : to_tell) f();
}

}  // namespace agent
