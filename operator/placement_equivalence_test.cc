// Place() against the implementation it replaced: the same inputs give the same nodes, drives,
// order and errors, with and without shared lists, across random clusters and through a series
// of snapshots in which some drives and Nodes change (the view of each is built from the last).
#include <algorithm>
#include <bit>
#include <random>
#include <string_view>
#include <tuple>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/text/hash.h"
#include "operator/cluster_view.h"
#include "operator/placement.h"
#include "operator/testing/builders.h"
#include "operator/volume_index.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders

// ---- Place as of b4e5cfe (before the cluster view), unchanged but for its name ----------------

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

// One node that has drives, while placement looks at it. Names are views into the inventory's
// objects, which outlive the call.
struct Candidate {
  std::string_view node;
  const common::api::Node* node_obj = nullptr;  // the last Node object of that name
  // Its drives that fit: drives[first, first + count) of Place's flat list, best first once the
  // node qualified.
  uint32_t first = 0;
  uint32_t count = 0;
  bool rdma = false;  // any of its drives has an RDMA address (set only when the consumer has)
  int64_t free = 0;   // sum over the chosen drives
};

// Node name → index into the candidates: open addressing in one allocation, sized for at most
// `capacity` names at half load (a std::unordered_map allocated a node per name, and placement
// runs over every node of the cluster for every volume placed).
class NodeSlots {
 public:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  explicit NodeSlots(size_t capacity)
      : mask_(std::bit_ceil(std::max<size_t>(2 * capacity, 16)) - 1), table_(mask_ + 1, kEmpty) {}

  // The index of `name`, or kEmpty.
  uint32_t Find(std::string_view name, const std::vector<Candidate>& by_node) const {
    for (size_t i = Hash(name);; i = (i + 1) & mask_) {
      if (table_[i] == kEmpty || by_node[table_[i]].node == name) return table_[i];
    }
  }
  // The index of `name`, appending a candidate for it when new. REQUIRES: fewer than `capacity`
  // names added.
  uint32_t Insert(std::string_view name, std::vector<Candidate>* by_node) {
    for (size_t i = Hash(name);; i = (i + 1) & mask_) {
      if (table_[i] == kEmpty) {
        table_[i] = static_cast<uint32_t>(by_node->size());
        by_node->push_back(Candidate{name});
        return table_[i];
      }
      if ((*by_node)[table_[i]].node == name) return table_[i];
    }
  }

 private:
  size_t Hash(std::string_view name) const { return common::text::Fnv1a64(name) & mask_; }

  size_t mask_;
  std::vector<uint32_t> table_;
};

common::Result<std::vector<NodePlacement>> OldPlace(const PlacementRequest& request,
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
  // Every node with a drive, in the order first seen; drives of one node are usually adjacent
  // (the informer lists them by object name), so most need no lookup. This runs once per volume
  // placed over every drive and node of the cluster: no tree of strings, no copies, no
  // allocation per node.
  const Inventory::DeviceList& devices = inventory.Devices();
  const size_t device_count = devices.size();
  std::vector<Candidate> by_node;
  by_node.reserve(device_count);
  NodeSlots slots(device_count);
  std::vector<uint32_t> device_slot(device_count);
  for (size_t i = 0; i < device_count; ++i) {
    const std::string_view node = devices[i]->spec.node_name;
    device_slot[i] = i > 0 && devices[i - 1]->spec.node_name == node ? device_slot[i - 1]
                                                                     : slots.Insert(node, &by_node);
  }
  for (const auto& n : inventory.Nodes()) {
    if (uint32_t i = slots.Find(n->metadata.name, by_node); i != NodeSlots::kEmpty) {
      by_node[i].node_obj = n.get();
    }
  }

  // Member counts and reservations of those nodes: from the index in one call, else one scan of
  // every volume.
  std::vector<VolumeIndex::NodeLoad> loads;
  if (inventory.index != nullptr) {
    std::vector<std::string_view> names;
    names.reserve(by_node.size());
    for (const Candidate& c : by_node) names.push_back(c.node);
    loads = inventory.index->Loads(names);
  } else {
    loads.resize(by_node.size());
    for (const auto& vol : inventory.volumes) {
      for (const v1::Member& m : vol->spec.members) {
        const uint32_t i = slots.Find(m.node, by_node);
        if (m.state != v1::MemberState::kPresent || i == NodeSlots::kEmpty) continue;
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

  // Per node: the drives that fit, grouped by node in one flat list (counted first, then
  // placed at each node's offset).
  bool consumer_rdma = false;
  std::vector<int64_t> usable(device_count, -1);  // free bytes of a drive that fits, else -1
  for (size_t i = 0; i < device_count; ++i) {
    const v1::MeshStorNodeDevice& d = *devices[i];
    Candidate& c = by_node[device_slot[i]];
    // Only the consumer's drives here: whether other nodes have RDMA matters only when the
    // consumer has it (below), and reading every drive's addresses is a cache miss each.
    if (d.spec.node_name == request.consumer_node && HasRdma(d)) consumer_rdma = true;
    if (d.status.sector_size != request.sector_size) continue;
    if (!d.status.updated_at || inventory.now - *d.status.updated_at > inventory.staleness) {
      continue;
    }
    int64_t pending = 0;
    for (const auto& [drive, bytes] : loads[device_slot[i]].pending) {
      if (drive == d.spec.device) pending += bytes;
    }
    int64_t free = d.status.biggest_free_extent_bytes.value_or(0) - pending;
    if (free < request.member_size_bytes) continue;
    usable[i] = free;
    ++c.count;
  }
  if (consumer_rdma) {
    for (size_t i = 0; i < device_count; ++i) {
      if (HasRdma(*devices[i])) by_node[device_slot[i]].rdma = true;
    }
  }
  uint32_t offset = 0;
  for (Candidate& c : by_node) {
    c.first = offset;
    offset += c.count;
    c.count = 0;
  }
  std::vector<std::pair<int64_t, std::string_view>> drives(offset);  // (usable free, device)
  for (size_t i = 0; i < device_count; ++i) {
    if (usable[i] < 0) continue;
    Candidate& c = by_node[device_slot[i]];
    drives[c.first + c.count++] = {usable[i], devices[i]->spec.device};
  }

  // Which nodes qualify, and why the others do not (reported in name order, as before).
  std::vector<size_t> eligible;
  eligible.reserve(by_node.size());
  std::vector<std::pair<std::string_view, std::string>> rejected;  // node → reason
  for (size_t i = 0; i < by_node.size(); ++i) {
    Candidate& c = by_node[i];
    std::string why;
    if (!request.exclude_nodes.empty() && request.exclude_nodes.count(std::string(c.node))) {
      why = "already holds a member";
    } else if (c.node_obj == nullptr) {
      why = "no Node object";
    } else if (!NodeSchedulable(*c.node_obj, &why)) {
      // why set
    } else if (static_cast<int32_t>(c.count) < request.drives_per_node) {
      why = fmt::format("{} of {} drives fresh, {}-byte sectors and {} bytes free", c.count,
                        request.drives_per_node, request.sector_size, request.member_size_bytes);
    }
    if (!why.empty()) {
      rejected.emplace_back(c.node, std::move(why));
      continue;
    }
    auto begin = drives.begin() + c.first;
    std::sort(begin, begin + c.count, [](const auto& a, const auto& b) {
      return std::tie(b.first, a.second) < std::tie(a.first, b.second);  // most free, then name
    });
    c.count = static_cast<uint32_t>(request.drives_per_node);
    c.free = 0;
    for (auto it = begin; it != begin + c.count; ++it) c.free += it->first;
    eligible.push_back(i);
  }
  std::sort(rejected.begin(), rejected.end());

  // The score of each candidate, computed once (not per comparison); only the best node_count
  // are needed, and the node name makes the order total, so a partial sort gives the same head.
  using Key = std::tuple<int, int, int64_t, int, uint64_t, const std::string_view*>;
  const uint64_t volume_hash = common::text::Fnv1a64("/", common::text::Fnv1a64(request.volume));
  std::vector<std::pair<Key, size_t>> order;
  order.reserve(eligible.size());
  for (size_t i : eligible) {
    const Candidate& c = by_node[i];
    order.emplace_back(
        Key(c.node == request.consumer_node ? 0 : 1, consumer_rdma && c.rdma ? 0 : 1, -c.free,
            loads[i].members, common::text::Fnv1a64(c.node, volume_hash), &c.node),
        i);
  }
  auto better = [](const std::pair<Key, size_t>& a, const std::pair<Key, size_t>& b) {
    const auto& [a0, a1, a2, a3, a4, a5] = a.first;
    const auto& [b0, b1, b2, b3, b4, b5] = b.first;
    return std::tie(a0, a1, a2, a3, a4, *a5) < std::tie(b0, b1, b2, b3, b4, *b5);
  };
  const size_t head = std::min(order.size(), static_cast<size_t>(request.node_count));
  std::partial_sort(order.begin(), order.begin() + head, order.end(), better);
  const size_t qualified = eligible.size();
  std::vector<const Candidate*> best;
  best.reserve(head);
  for (size_t i = 0; i < head; ++i) best.push_back(&by_node[order[i].second]);

  auto reasons = [&] {
    std::string s;
    for (const auto& [name, why] : rejected) {
      s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", name, why);
    }
    return s;
  };
  if (!request.consumer_node.empty() &&
      (best.empty() || best.front()->node != request.consumer_node)) {
    auto it = std::find_if(rejected.begin(), rejected.end(),
                           [&](const auto& r) { return r.first == request.consumer_node; });
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
    NodePlacement p{std::string(best[i]->node), {}};
    for (uint32_t k = 0; k < best[i]->count; ++k) {
      p.drives.emplace_back(drives[best[i]->first + k].second);
    }
    out.push_back(std::move(p));
  }
  return out;
}

// ---- random clusters --------------------------------------------------------------------------

// Node names that share prefixes and lengths (so hashes and name compares are exercised).
std::string NodeName(int i) {
  return i % 3 == 0 ? fmt::format("n{}", i) : fmt::format("node-{}", i);
}

struct Scenario {
  std::vector<std::shared_ptr<const v1::MeshStorNodeDevice>> devices;
  std::vector<std::shared_ptr<const common::api::Node>> nodes;
  std::vector<std::shared_ptr<const v1::MeshStorVolume>> volumes;
};

class Random {
 public:
  explicit Random(uint32_t seed) : rng_(seed) {}
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  bool OneIn(int n) { return Pick(n) == 0; }

  std::shared_ptr<const v1::MeshStorNodeDevice> Drive(const std::string& node,
                                                      const std::string& device) {
    static constexpr int64_t kFree[] = {0, 1024, 2048, 2048, 4096, 4096, 8192};
    auto drive = testing::Drive(node, device, kFree[Pick(std::size(kFree))] * v1::kMiB,
                                OneIn(6) ? 512 : 4096,
                                T0() - std::chrono::seconds(OneIn(8) ? 600 : Pick(60)));
    if (OneIn(10)) drive.status.updated_at.reset();
    if (OneIn(12)) drive.status.biggest_free_extent_bytes.reset();
    if (OneIn(20)) drive.status.sector_size.reset();
    if (OneIn(4))
      drive.status.transport_addresses.push_back({v1::Transport::kRdma, "10.1.0.1", 4420});
    return std::make_shared<const v1::MeshStorNodeDevice>(std::move(drive));
  }
  std::shared_ptr<const common::api::Node> Node(const std::string& name) {
    common::api::Node n = NodeObj(name, OneIn(10));
    if (!OneIn(5)) {
      common::api::Condition ready;
      ready.type = "Ready";
      ready.status =
          OneIn(8) ? common::api::ConditionStatus::kFalse : common::api::ConditionStatus::kTrue;
      n.conditions.push_back(ready);
    }
    return std::make_shared<const common::api::Node>(std::move(n));
  }
  v1::MeshStorVolume Volume(int i, int nodes) {
    v1::MeshStorVolume v = testing::Volume(fmt::format("vol-{}", i));
    const int members = Pick(4);
    for (int m = 0; m < members; ++m) {
      v1::Member mem;
      mem.index = m;
      mem.node = NodeName(Pick(nodes + 2));
      mem.drive = fmt::format("nvme{}n1", Pick(3));
      mem.size_bytes = (1 + Pick(3)) * 1024 * v1::kMiB;
      mem.namespace_id = 1 + m;
      mem.state = OneIn(4) ? v1::MemberState::kRetired : v1::MemberState::kPresent;
      if (!OneIn(3))
        v.status.partitions.push_back({m, mem.node, mem.drive, "", 1, v1::PartitionState::kSynced});
      v.spec.members.push_back(mem);
    }
    return v;
  }
  Scenario Cluster() {
    Scenario s;
    const int nodes = 1 + Pick(30);
    for (int n = 0; n < nodes; ++n) {
      const std::string name = NodeName(n);
      const int drives = Pick(4);  // a node without drives is not a candidate
      for (int d = 0; d < drives; ++d) s.devices.push_back(Drive(name, fmt::format("nvme{}n1", d)));
      if (!OneIn(10)) s.nodes.push_back(Node(name));
      if (OneIn(20))
        s.nodes.push_back(Node(name));  // a second object of that name: the last counts
    }
    if (OneIn(3)) s.devices.push_back(Drive(NodeName(nodes), "nvme0n1"));  // no Node object
    // The informers list by object name; sometimes another order.
    std::sort(s.devices.begin(), s.devices.end(),
              [](const auto& a, const auto& b) { return a->metadata.name < b->metadata.name; });
    if (OneIn(4)) std::shuffle(s.devices.begin(), s.devices.end(), rng_);
    if (OneIn(4)) std::shuffle(s.nodes.begin(), s.nodes.end(), rng_);
    const int volumes = Pick(12);
    for (int i = 0; i < volumes; ++i) {
      s.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(Volume(i, nodes)));
    }
    return s;
  }
  PlacementRequest Request(const Scenario& s, int i) {
    PlacementRequest r;
    r.volume = fmt::format("pvc-{}", i);
    r.member_size_bytes = (OneIn(3) ? 1024 : 2048) * v1::kMiB + Pick(2);
    r.sector_size = OneIn(8) ? 512 : 4096;
    r.drives_per_node = 1 + Pick(OneIn(3) ? 3 : 1);
    r.node_count = 1 + Pick(4);
    const int nodes = static_cast<int>(s.nodes.size()) + 2;
    if (!OneIn(3)) r.consumer_node = OneIn(10) ? "" : NodeName(Pick(nodes));
    for (int k = Pick(3); k > 0; --k) r.exclude_nodes.insert(NodeName(Pick(nodes)));
    return r;
  }
  // A few of the drives and Nodes replaced by new objects (other facts), one removed or added
  // now and then: what the informers' next lists look like.
  void Change(Scenario& s) {
    for (auto& d : s.devices) {
      if (OneIn(6)) d = Drive(d->spec.node_name, d->spec.device);
    }
    for (auto& n : s.nodes) {
      if (OneIn(8)) n = Node(n->metadata.name);
    }
    if (!s.devices.empty() && OneIn(5)) s.devices.erase(s.devices.begin() + Pick(s.devices.size()));
    if (OneIn(5)) {
      s.devices.insert(s.devices.begin() + Pick(s.devices.size() + 1),
                       Drive(NodeName(Pick(35)), "nvme2n1"));
    }
    if (!s.nodes.empty() && OneIn(8)) s.nodes.erase(s.nodes.begin() + Pick(s.nodes.size()));
  }

 private:
  std::mt19937 rng_;
};

std::string Describe(const common::Result<std::vector<NodePlacement>>& r) {
  if (!r.ok())
    return fmt::format("error {}: {}", static_cast<int>(r.status().code()), r.status().message());
  std::string s;
  for (const NodePlacement& p : *r)
    s += fmt::format("{} ({}); ", p.node, fmt::join(p.drives, ", "));
  return s;
}

Inventory Plain(const Scenario& s, const VolumeIndex* index) {
  Inventory inv;
  inv.now = T0();
  inv.devices = s.devices;
  inv.nodes = s.nodes;
  if (index != nullptr) {
    inv.index = index;
  } else {
    inv.volumes = s.volumes;
  }
  return inv;
}

Inventory Shared(const Scenario& s, const VolumeIndex* index) {
  Inventory inv = Plain(s, index);
  inv.shared_devices = std::make_shared<const Inventory::DeviceList>(s.devices);
  inv.shared_nodes = std::make_shared<const Inventory::NodeList>(s.nodes);
  inv.devices.clear();
  inv.nodes.clear();
  return inv;
}

TEST_CASE("Place gives what the implementation before the cluster view gave", "[unit][placement]") {
  Random random(20261207);
  int placed = 0, failed = 0;
  for (int c = 0; c < 300; ++c) {
    Scenario s = random.Cluster();
    VolumeIndex index;
    for (const auto& v : s.volumes) index.Apply(v->metadata.name, v.get());
    // Through a series of snapshots: each shared view is built from the previous one.
    for (int step = 0; step < 4; ++step) {
      const bool use_index = random.OneIn(2);
      const Inventory plain = Plain(s, use_index ? &index : nullptr);
      const Inventory shared = Shared(s, use_index ? &index : nullptr);
      for (int r = 0; r < 8; ++r) {
        const PlacementRequest req = random.Request(s, r);
        const std::string want = Describe(OldPlace(req, plain));
        INFO("cluster " << c << " step " << step << " request " << r);
        CHECK(Describe(Place(req, plain)) == want);
        CHECK(Describe(Place(req, shared)) == want);
        (want.starts_with("error") ? failed : placed)++;
      }
      random.Change(s);
    }
  }
  // Both outcomes are exercised.
  CHECK(placed > 500);
  CHECK(failed > 500);
}

}  // namespace
}  // namespace meshstor_operator
