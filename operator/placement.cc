#include "operator/placement.h"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "common/text/hash.h"
#include "operator/cluster_view.h"
#include "operator/volume_index.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

// Why a node that has drives cannot hold a member (the message is formatted only for an error).
enum class Rejection : uint8_t { kNone, kExcluded, kNoObject, kUnschedulable, kNotReady, kDrives };

// One node that has drives, while placement looks at it.
struct Candidate {
  // Its drives that fit: fits[first, first + count) of Place's flat list, best first once the
  // node qualified.
  uint32_t first = 0;
  uint32_t count = 0;
  int64_t free = 0;  // sum over the chosen drives
  Rejection rejection = Rejection::kNone;
};

std::string Reason(const Candidate& c, const PlacementRequest& request) {
  switch (c.rejection) {
    case Rejection::kNone:
      break;
    case Rejection::kExcluded:
      return "already holds a member";
    case Rejection::kNoObject:
      return "no Node object";
    case Rejection::kUnschedulable:
      return "unschedulable";
    case Rejection::kNotReady:
      return "not Ready";
    case Rejection::kDrives:
      return fmt::format("{} of {} drives fresh, {}-byte sectors and {} bytes free", c.count,
                         request.drives_per_node, request.sector_size, request.member_size_bytes);
  }
  return "";
}

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
  // The drives and Nodes as flat arrays, built once per snapshot of them (cluster_view.h): this
  // runs once per volume placed over every drive and node of the cluster.
  const std::shared_ptr<const ClusterView> view = ClusterView::Of(inventory);
  const std::vector<ClusterView::Node>& nodes = view->nodes();
  const size_t node_count = view->nodes_with_drives();  // the candidates: nodes()[0, node_count)

  // Member counts and reservations of those nodes: from the index in one call, else one scan of
  // every volume.
  std::vector<VolumeIndex::NodeLoad> loads;
  if (inventory.index != nullptr) {
    loads = inventory.index->Loads(view->names_with_drives());
  } else {
    loads.resize(node_count);
    for (const auto& vol : inventory.volumes) {
      for (const v1::Member& m : vol->spec.members) {
        const uint32_t i = view->Find(m.node);
        if (m.state != v1::MemberState::kPresent || i >= node_count) continue;
        VolumeIndex::NodeLoad& load = loads[i];
        ++load.members;
        bool reported = std::any_of(vol->status.partitions.begin(), vol->status.partitions.end(),
                                    [&](const v1::PartitionStatus& p) {
                                      return p.index == m.index && p.node_id == m.node;
                                    });
        if (reported) continue;
        auto d = std::find_if(load.pending.begin(), load.pending.end(),
                              [&](const auto& e) { return e.first == m.drive; });
        if (d == load.pending.end()) {
          load.pending.emplace_back(m.drive, m.size_bytes);
        } else {
          d->second += m.size_bytes;
        }
      }
    }
  }

  // Whether other nodes have RDMA matters only when the consumer has it.
  const uint32_t consumer = view->Find(request.consumer_node);
  const bool consumer_rdma = consumer < node_count && nodes[consumer].rdma;

  // Which nodes qualify, with the drives that fit them; why the others do not.
  std::vector<Candidate> by_node(node_count);
  for (const std::string& n : request.exclude_nodes) {
    if (uint32_t i = view->Find(n); i < node_count) by_node[i].rejection = Rejection::kExcluded;
  }
  std::vector<std::pair<int64_t, std::string_view>> fits;  // (usable free, device)
  fits.reserve(view->drives().size());
  std::vector<uint32_t> eligible;
  eligible.reserve(node_count);
  std::vector<uint32_t> rejected;
  for (uint32_t i = 0; i < node_count; ++i) {
    Candidate& c = by_node[i];
    const ClusterView::Node& n = nodes[i];
    if (c.rejection == Rejection::kNone) {
      switch (n.state) {
        case ClusterView::NodeState::kSchedulable:
          break;
        case ClusterView::NodeState::kNoObject:
          c.rejection = Rejection::kNoObject;
          break;
        case ClusterView::NodeState::kUnschedulable:
          c.rejection = Rejection::kUnschedulable;
          break;
        case ClusterView::NodeState::kNotReady:
          c.rejection = Rejection::kNotReady;
          break;
      }
    }
    if (c.rejection != Rejection::kNone) {
      rejected.push_back(i);
      continue;
    }
    // Its drives of the volume's sector size, reporting fresh, with room for a member besides
    // what members assigned to them but not created yet will take.
    c.first = static_cast<uint32_t>(fits.size());
    for (uint32_t k = n.first_drive; k < n.first_drive + n.drive_count; ++k) {
      const ClusterView::Drive& d = view->drives()[k];
      if (d.sector_size != request.sector_size) continue;
      if (!d.updated_at || inventory.now - *d.updated_at > inventory.staleness) continue;
      const std::string_view device = view->device(d);
      int64_t pending = 0;
      for (const auto& [drive, bytes] : loads[i].pending) {
        if (drive == device) pending += bytes;
      }
      const int64_t free = d.free - pending;
      if (free < request.member_size_bytes) continue;
      fits.emplace_back(free, device);
    }
    c.count = static_cast<uint32_t>(fits.size()) - c.first;
    if (static_cast<int32_t>(c.count) < request.drives_per_node) {
      c.rejection = Rejection::kDrives;
      fits.resize(c.first);
      rejected.push_back(i);
      continue;
    }
    auto begin = fits.begin() + c.first;
    std::sort(begin, begin + c.count, [](const auto& a, const auto& b) {
      return std::tie(b.first, a.second) < std::tie(a.first, b.second);  // most free, then name
    });
    c.count = static_cast<uint32_t>(request.drives_per_node);
    c.free = 0;
    for (auto it = begin; it != begin + c.count; ++it) c.free += it->first;
    eligible.push_back(i);
  }

  // The score of each candidate, computed once (not per comparison); only the best node_count
  // are needed, and the node name makes the order total, so a partial sort gives the same head.
  using Key = std::tuple<int, int, int64_t, int, uint64_t, std::string_view>;
  const uint64_t volume_hash = common::text::Fnv1a64("/", common::text::Fnv1a64(request.volume));
  std::vector<std::pair<Key, uint32_t>> order;
  order.reserve(eligible.size());
  for (uint32_t i : eligible) {
    const std::string_view name = view->name(nodes[i]);
    order.emplace_back(
        Key(i == consumer ? 0 : 1, consumer_rdma && nodes[i].rdma ? 0 : 1, -by_node[i].free,
            loads[i].members, common::text::Fnv1a64(name, volume_hash), name),
        i);
  }
  const size_t head = std::min(order.size(), static_cast<size_t>(request.node_count));
  std::partial_sort(order.begin(), order.begin() + head, order.end());
  const size_t qualified = eligible.size();

  if (!request.consumer_node.empty() && (head == 0 || order.front().second != consumer)) {
    return common::FailedPreconditionError(
        "consumer node {} cannot hold a member: {}", request.consumer_node,
        consumer < node_count && by_node[consumer].rejection != Rejection::kNone
            ? Reason(by_node[consumer], request)
            : std::string("no MeshStorNodeDevice reported"));
  }
  if (static_cast<int32_t>(qualified) < request.node_count) {
    // Why the others do not qualify, in name order.
    std::sort(rejected.begin(), rejected.end(),
              [&](uint32_t a, uint32_t b) { return view->name(nodes[a]) < view->name(nodes[b]); });
    std::string reasons;
    for (uint32_t i : rejected) {
      reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", view->name(nodes[i]),
                             Reason(by_node[i], request));
    }
    return common::FailedPreconditionError(
        "not enough nodes: {} needed, {} qualified ({} drive(s) of {} bytes with {}-byte sectors "
        "each){}{}",
        request.node_count, qualified, request.drives_per_node, request.member_size_bytes,
        request.sector_size, rejected.empty() ? "" : "; rejected: ", reasons);
  }
  std::vector<NodePlacement> out;
  out.reserve(head);
  for (size_t i = 0; i < head; ++i) {
    const Candidate& c = by_node[order[i].second];
    NodePlacement p{std::string(view->name(nodes[order[i].second])), {}};
    p.drives.reserve(c.count);
    for (uint32_t k = 0; k < c.count; ++k) p.drives.emplace_back(fits[c.first + k].second);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace meshstor_operator
