#include "operator/placement.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "common/text/hash.h"
#include "operator/volume_index.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

// Bytes that members assigned to (node, drive) but not yet reported by its agent will take: the
// drive's reported free extent does not show them yet.
std::map<std::pair<std::string, std::string>, int64_t> PendingReservations(
    const Inventory& inventory) {
  std::map<std::pair<std::string, std::string>, int64_t> out;
  for (const auto& vol : inventory.volumes) {
    for (const v1::Member& m : vol->spec.members) {
      if (m.state != v1::MemberState::kPresent) continue;
      bool reported = std::any_of(
          vol->status.partitions.begin(), vol->status.partitions.end(),
          [&](const v1::PartitionStatus& p) { return p.index == m.index && p.node_id == m.node; });
      if (!reported) out[{m.node, m.drive}] += m.size_bytes;
    }
  }
  return out;
}

bool NodeSchedulable(const common::api::Node& node, std::string* why) {
  if (node.unschedulable) {
    *why = "unschedulable";
    return false;
  }
  const common::api::Condition* ready = common::api::FindCondition(node.conditions, "Ready");
  if (ready != nullptr && ready->status != common::api::ConditionStatus::kTrue) {
    *why = "not Ready";
    return false;
  }
  return true;
}

bool HasRdma(const v1::MeshStorNodeDevice& d) {
  return std::any_of(
      d.status.transport_addresses.begin(), d.status.transport_addresses.end(),
      [](const v1::TransportAddress& a) { return a.transport == v1::Transport::kRdma; });
}

struct Candidate {
  std::string node;
  std::vector<std::pair<int64_t, std::string>> drives;  // (usable free, device), best first
  bool rdma = false;
  int64_t free = 0;  // sum over the chosen drives
};

}  // namespace

uint64_t StableHash(const std::string& volume, const std::string& node) {
  return common::text::Fnv1a64(node, common::text::Fnv1a64("/", common::text::Fnv1a64(volume)));
}

std::map<std::string, int> MemberCounts(const Inventory& inventory) {
  std::map<std::string, int> out;
  for (const auto& vol : inventory.volumes) {
    for (const v1::Member& m : vol->spec.members) {
      if (m.state == v1::MemberState::kPresent) ++out[m.node];
    }
  }
  return out;
}

std::set<int32_t> UsedNamespaceIds(const Inventory& inventory, const std::string& node) {
  if (inventory.index != nullptr) return inventory.index->UsedNamespaceIds(node);
  std::set<int32_t> used;
  for (const auto& vol : inventory.volumes) {
    for (const v1::Member& m : vol->spec.members) {
      if (m.node == node) used.insert(m.namespace_id);
    }
    for (const v1::PartitionStatus& p : vol->status.partitions) {
      if (p.node_id == node && p.nvmeof_namespace_id) used.insert(*p.nvmeof_namespace_id);
    }
  }
  return used;
}

common::Result<int32_t> AllocateNamespaceId(const std::set<int32_t>& used) {
  for (int32_t id = v1::kMinNamespaceId; id <= v1::kMaxNamespaceId; ++id) {
    if (!used.count(id)) return id;
  }
  return common::ResourceExhaustedError("every NVMe-oF namespace ID ({}..{}) is in use on the node",
                                        v1::kMinNamespaceId, v1::kMaxNamespaceId);
}

common::Result<std::vector<NodePlacement>> Place(const PlacementRequest& request,
                                                 const Inventory& inventory) {
  if (request.node_count < 1) {
    return common::InvalidArgumentError("placement needs at least one node, got {}",
                                        request.node_count);
  }
  if (request.drives_per_node < 1) {
    return common::InvalidArgumentError("placement needs at least one drive per node, got {}",
                                        request.drives_per_node);
  }
  if (request.member_size_bytes <= 0) {
    return common::InvalidArgumentError("member size must be positive, got {}",
                                        request.member_size_bytes);
  }
  // Without an index: one scan of every volume for both terms.
  const auto pending = inventory.index != nullptr
                           ? std::map<std::pair<std::string, std::string>, int64_t>()
                           : PendingReservations(inventory);
  const auto member_counts =
      inventory.index != nullptr ? std::map<std::string, int>() : MemberCounts(inventory);
  auto pending_bytes = [&](const std::string& node, const std::string& drive) -> int64_t {
    if (inventory.index != nullptr) return inventory.index->PendingBytes(node, drive);
    auto it = pending.find({node, drive});
    return it == pending.end() ? 0 : it->second;
  };
  auto members_on = [&](const std::string& node) {
    if (inventory.index != nullptr) return inventory.index->MemberCount(node);
    auto it = member_counts.find(node);
    return it == member_counts.end() ? 0 : it->second;
  };

  std::map<std::string, const common::api::Node*> nodes;
  for (const auto& n : inventory.nodes) nodes[n->metadata.name] = n.get();

  // Per node: the drives that fit, and why nodes were rejected.
  std::map<std::string, Candidate> by_node;
  std::map<std::string, std::string> rejected;  // node → reason
  std::set<std::string> consumer_rdma_nodes;
  bool consumer_rdma = false;
  for (const auto& d : inventory.devices) {
    const std::string& node = d->spec.node_name;
    if (d->spec.node_name == request.consumer_node && HasRdma(*d)) consumer_rdma = true;
    Candidate& c = by_node[node];
    c.node = node;
    if (HasRdma(*d)) c.rdma = true;
    if (d->status.sector_size != request.sector_size) continue;
    if (!d->status.updated_at || inventory.now - *d->status.updated_at > inventory.staleness) {
      continue;
    }
    int64_t free =
        d->status.biggest_free_extent_bytes.value_or(0) - pending_bytes(node, d->spec.device);
    if (free < request.member_size_bytes) continue;
    c.drives.emplace_back(free, d->spec.device);
  }

  std::vector<Candidate> eligible;
  for (auto& [name, c] : by_node) {
    std::string why;
    if (request.exclude_nodes.count(name)) {
      why = "already holds a member";
    } else if (!nodes.count(name)) {
      why = "no Node object";
    } else if (!NodeSchedulable(*nodes[name], &why)) {
      // why set
    } else if (static_cast<int32_t>(c.drives.size()) < request.drives_per_node) {
      why = fmt::format("{} of {} drives fresh, {}-byte sectors and {} bytes free", c.drives.size(),
                        request.drives_per_node, request.sector_size, request.member_size_bytes);
    }
    if (!why.empty()) {
      rejected[name] = why;
      continue;
    }
    std::sort(c.drives.begin(), c.drives.end(), [](const auto& a, const auto& b) {
      return std::tie(b.first, a.second) < std::tie(a.first, b.second);  // most free, then name
    });
    c.drives.resize(request.drives_per_node);
    c.free = 0;
    for (const auto& [free, dev] : c.drives) c.free += free;
    eligible.push_back(c);
  }

  // The score of each candidate, computed once (not per comparison); only the best node_count
  // are needed, and the node name makes the order total, so a partial sort gives the same head.
  using Key = std::tuple<int, int, int64_t, int, uint64_t, const std::string*>;
  std::vector<std::pair<Key, size_t>> order;
  order.reserve(eligible.size());
  for (size_t i = 0; i < eligible.size(); ++i) {
    const Candidate& c = eligible[i];
    order.emplace_back(
        Key(c.node == request.consumer_node ? 0 : 1, consumer_rdma && c.rdma ? 0 : 1, -c.free,
            members_on(c.node), StableHash(request.volume, c.node), &c.node),
        i);
  }
  auto better = [](const std::pair<Key, size_t>& a, const std::pair<Key, size_t>& b) {
    const auto& [a0, a1, a2, a3, a4, a5] = a.first;
    const auto& [b0, b1, b2, b3, b4, b5] = b.first;
    return std::tie(a0, a1, a2, a3, a4, *a5) < std::tie(b0, b1, b2, b3, b4, *b5);
  };
  const size_t head = std::min(order.size(), static_cast<size_t>(request.node_count));
  std::partial_sort(order.begin(), order.begin() + head, order.end(), better);
  std::vector<Candidate> best;
  best.reserve(head);
  for (size_t i = 0; i < head; ++i) best.push_back(std::move(eligible[order[i].second]));
  const size_t qualified = eligible.size();
  eligible = std::move(best);

  auto reasons = [&] {
    std::string s;
    for (const auto& [name, why] : rejected) {
      s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", name, why);
    }
    return s;
  };
  if (!request.consumer_node.empty() &&
      (eligible.empty() || eligible.front().node != request.consumer_node)) {
    auto it = rejected.find(request.consumer_node);
    return common::FailedPreconditionError(
        "consumer node {} cannot hold a member: {}", request.consumer_node,
        it == rejected.end() ? std::string("no MeshStorNodeDevice reported") : it->second);
  }
  if (static_cast<int32_t>(qualified) < request.node_count) {
    return common::FailedPreconditionError(
        "not enough nodes: {} needed, {} qualified ({} drive(s) of {} bytes with {}-byte sectors "
        "each){}{}",
        request.node_count, qualified, request.drives_per_node, request.member_size_bytes,
        request.sector_size, rejected.empty() ? "" : "; rejected: ", reasons());
  }
  std::vector<NodePlacement> out;
  for (int32_t i = 0; i < request.node_count; ++i) {
    NodePlacement p{eligible[i].node, {}};
    for (const auto& [free, dev] : eligible[i].drives) p.drives.push_back(dev);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace meshstor_operator
