#include "operator/cluster_view.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <mutex>

#include "common/text/hash.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

ClusterView::NodeState StateOf(const common::api::Node& node) {
  if (node.unschedulable) return ClusterView::NodeState::kUnschedulable;
  const common::api::Condition* ready = common::api::FindCondition(node.conditions, "Ready");
  if (ready != nullptr && ready->status != common::api::ConditionStatus::kTrue) {
    return ClusterView::NodeState::kNotReady;
  }
  return ClusterView::NodeState::kSchedulable;
}

bool HasRdma(const v1::MeshStorNodeDevice& d) {
  return std::any_of(
      d.status.transport_addresses.begin(), d.status.transport_addresses.end(),
      [](const v1::TransportAddress& a) { return a.transport == v1::Transport::kRdma; });
}

// The facts of drive `d`; its node and names are left as they are.
void ReadFacts(const v1::MeshStorNodeDevice& d, ClusterView::Drive* out) {
  out->updated_at = d.status.updated_at;
  out->free = d.status.biggest_free_extent_bytes.value_or(0);
  out->sector_size = d.status.sector_size;
  out->rdma = HasRdma(d);
}

size_t SlotOf(std::string_view name, size_t mask) { return common::text::Fnv1a64(name) & mask; }

// The last view built from shared lists, for the next pass (ClusterView::Of). Not const: when
// no pass holds it any more, the next snapshot's changes are written into it.
struct Cache {
  std::mutex mu;
  std::shared_ptr<ClusterView> last;  // guarded by mu
};

}  // namespace

bool ClusterView::SameList(const std::weak_ptr<const Inventory::DeviceList>& known,
                           const std::shared_ptr<const Inventory::DeviceList>& list) {
  // The same control block: a list allocated later cannot have it while `known` refers to it.
  return !known.owner_before(list) && !list.owner_before(known) && !known.expired();
}

bool ClusterView::Unchanged(size_t i,
                            const common::api::v1alpha1::MeshStorNodeDevice& drive) const {
  if (i >= drive_version_.size() || drive_version_[i].empty() ||
      drive.metadata.resource_version != drive_version_[i]) {
    return false;
  }
  const Drive& d = drives_[drive_at_[i]];
  return drive.spec.node_name == name(nodes_[d.node]) && drive.spec.device == device(d);
}

std::shared_ptr<const ClusterView> ClusterView::Of(const Inventory& inventory) {
  if (!inventory.shared_devices || !inventory.shared_nodes) {
    return Build(inventory.Devices(), inventory.Nodes(), nullptr);
  }
  static Cache* const cache = new Cache();  // never destroyed: no order of destruction at exit
  std::lock_guard<std::mutex> lock(cache->mu);
  const Inventory::DeviceList& devices = *inventory.shared_devices;
  const Inventory::NodeList& nodes = *inventory.shared_nodes;
  std::shared_ptr<ClusterView>& last = cache->last;
  if (last != nullptr && SameList(last->device_list_, inventory.shared_devices) &&
      last->node_list_ == inventory.shared_nodes) {
    return last;
  }
  std::vector<uint32_t> changed_drives, changed_nodes;
  if (last != nullptr && Changes(*last, devices, nodes, &changed_drives, &changed_nodes)) {
    // Only objects replaced under the same names. When no pass holds the view (every holder got
    // it from `last` under the lock, so a count of 1 cannot grow meanwhile), it is changed in
    // place; the fence orders this after the last holder's reads (its release of the count).
    if (last.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);
    } else {
      last = Copy(*last);
    }
    last->Patch(devices, nodes, changed_drives, changed_nodes);
  } else {
    last = Build(devices, nodes, last.get());
  }
  last->device_list_ = inventory.shared_devices;
  last->node_list_ = inventory.shared_nodes;
  return last;
}

std::shared_ptr<ClusterView> ClusterView::Build(const Inventory::DeviceList& devices,
                                                const Inventory::NodeList& nodes,
                                                const ClusterView* previous) {
  auto view = std::make_shared<ClusterView>(Private{});
  // Facts of each drive of the list, and its node's name and its device name: views into the
  // objects, or into `previous` for an object it already read (both outlive this call).
  struct Listed {
    std::string_view node;
    std::string_view device;
    Drive drive;
  };
  std::vector<Listed> listed(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    if (previous != nullptr && previous->Unchanged(i, *devices[i])) {
      const Drive& d = previous->drives_[previous->drive_at_[i]];
      listed[i] = {previous->name(previous->nodes_[d.node]), previous->device(d), d};
      continue;
    }
    listed[i].node = devices[i]->spec.node_name;
    listed[i].device = devices[i]->spec.device;
    ReadFacts(*devices[i], &listed[i].drive);
  }

  // Every name, each once: the nodes with drives in the order first listed (drives of one node
  // are usually adjacent, so most need no lookup), then the Node objects' names.
  std::vector<std::string_view> names;
  names.reserve(devices.size() + nodes.size());
  const size_t mask = std::bit_ceil(std::max<size_t>(2 * (devices.size() + nodes.size()), 16)) - 1;
  view->slots_.assign(mask + 1, kNone);
  auto find_or_add = [&](std::string_view name) {
    for (size_t i = SlotOf(name, mask);; i = (i + 1) & mask) {
      uint32_t& slot = view->slots_[i];
      if (slot == kNone) {
        slot = static_cast<uint32_t>(names.size());
        names.push_back(name);
        return slot;
      }
      if (names[slot] == name) return slot;
    }
  };
  std::vector<uint32_t> node_of_drive(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    node_of_drive[i] = i > 0 && listed[i].node == listed[i - 1].node ? node_of_drive[i - 1]
                                                                     : find_or_add(listed[i].node);
  }
  const size_t with_drives = names.size();
  const Inventory::NodeList* previous_nodes =
      previous != nullptr ? previous->node_list_.get() : nullptr;
  view->node_of_object_.resize(nodes.size());
  view->state_of_object_.resize(nodes.size());
  for (size_t j = 0; j < nodes.size(); ++j) {
    std::string_view name;
    if (previous_nodes != nullptr && j < previous_nodes->size() &&
        (*previous_nodes)[j] == nodes[j]) {
      name = previous->name(previous->nodes_[previous->node_of_object_[j]]);
      view->state_of_object_[j] = previous->state_of_object_[j];
    } else {
      name = nodes[j]->metadata.name;
      view->state_of_object_[j] = StateOf(*nodes[j]);
    }
    view->node_of_object_[j] = find_or_add(name);
  }

  // The names buffer, then the nodes and their drives, grouped by node in list order.
  size_t bytes = 0;
  for (std::string_view n : names) bytes += n.size();
  for (const Listed& l : listed) bytes += l.device.size();
  view->names_.reserve(bytes);
  view->nodes_.resize(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    view->nodes_[k].name_offset = static_cast<uint32_t>(view->names_.size());
    view->nodes_[k].name_size = static_cast<uint32_t>(names[k].size());
    view->names_.append(names[k]);
  }
  for (size_t j = 0; j < nodes.size(); ++j) {
    Node& n = view->nodes_[view->node_of_object_[j]];
    if (n.object == nullptr) n.object = nodes[j].get();
    n.state = view->state_of_object_[j];  // the last wins
  }
  for (uint32_t k : node_of_drive) ++view->nodes_[k].drive_count;
  uint32_t first = 0;
  for (Node& n : view->nodes_) {
    n.first_drive = first;
    first += n.drive_count;
    n.drive_count = 0;
  }
  view->drives_.resize(devices.size());
  view->drive_at_.resize(devices.size());
  view->drive_version_.resize(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    Node& n = view->nodes_[node_of_drive[i]];
    const uint32_t at = n.first_drive + n.drive_count++;
    Drive& d = view->drives_[at];
    d = listed[i].drive;
    d.node = node_of_drive[i];
    d.device_offset = static_cast<uint32_t>(view->names_.size());
    d.device_size = static_cast<uint32_t>(listed[i].device.size());
    view->names_.append(listed[i].device);
    n.rdma = n.rdma || d.rdma;
    view->drive_at_[i] = at;
    view->drive_version_[i] = devices[i]->metadata.resource_version;
  }
  view->names_with_drives_.reserve(with_drives);
  for (size_t k = 0; k < with_drives; ++k) {
    view->names_with_drives_.push_back(view->name(view->nodes_[k]));
  }
  return view;
}

bool ClusterView::Changes(const ClusterView& view, const Inventory::DeviceList& devices,
                          const Inventory::NodeList& nodes, std::vector<uint32_t>* changed_drives,
                          std::vector<uint32_t>* changed_nodes) {
  const Inventory::NodeList& old_nodes = *view.node_list_;
  if (devices.size() != view.drive_version_.size() || nodes.size() != old_nodes.size()) {
    return false;
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (view.Unchanged(i, *devices[i])) continue;
    const Drive& d = view.drives_[view.drive_at_[i]];
    if (devices[i]->spec.node_name != view.name(view.nodes_[d.node]) ||
        devices[i]->spec.device != view.device(d)) {
      return false;
    }
    changed_drives->push_back(static_cast<uint32_t>(i));
  }
  for (size_t j = 0; j < nodes.size(); ++j) {
    if (nodes[j] == old_nodes[j]) continue;
    if (nodes[j]->metadata.name != view.name(view.nodes_[view.node_of_object_[j]])) return false;
    changed_nodes->push_back(static_cast<uint32_t>(j));
  }
  return true;
}

std::shared_ptr<ClusterView> ClusterView::Copy(const ClusterView& view) {
  auto copy = std::make_shared<ClusterView>(Private{});
  copy->device_list_ = view.device_list_;
  copy->node_list_ = view.node_list_;
  copy->nodes_ = view.nodes_;
  copy->drives_ = view.drives_;
  copy->names_ = view.names_;
  copy->slots_ = view.slots_;
  copy->drive_at_ = view.drive_at_;
  copy->drive_version_ = view.drive_version_;
  copy->node_of_object_ = view.node_of_object_;
  copy->state_of_object_ = view.state_of_object_;
  copy->names_with_drives_.reserve(view.names_with_drives_.size());
  for (size_t k = 0; k < view.names_with_drives_.size(); ++k) {
    copy->names_with_drives_.push_back(copy->name(copy->nodes_[k]));
  }
  return copy;
}

void ClusterView::Patch(const Inventory::DeviceList& devices, const Inventory::NodeList& nodes,
                        const std::vector<uint32_t>& changed_drives,
                        const std::vector<uint32_t>& changed_nodes) {
  for (uint32_t i : changed_drives) {
    Drive& d = drives_[drive_at_[i]];
    ReadFacts(*devices[i], &d);
    drive_version_[i] = devices[i]->metadata.resource_version;
    Node& n = nodes_[d.node];
    n.rdma = std::any_of(drives_.begin() + n.first_drive,
                         drives_.begin() + n.first_drive + n.drive_count,
                         [](const Drive& x) { return x.rdma; });
  }
  if (changed_nodes.empty()) return;
  for (uint32_t j : changed_nodes) state_of_object_[j] = StateOf(*nodes[j]);
  for (Node& n : nodes_) {
    n.object = nullptr;
    n.state = NodeState::kNoObject;
  }
  for (size_t j = 0; j < nodes.size(); ++j) {
    Node& n = nodes_[node_of_object_[j]];
    if (n.object == nullptr) n.object = nodes[j].get();
    n.state = state_of_object_[j];  // the last wins
  }
}

uint32_t ClusterView::Find(std::string_view node) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = SlotOf(node, mask);; i = (i + 1) & mask) {
    if (slots_[i] == kNone || name(nodes_[slots_[i]]) == node) return slots_[i];
  }
}

std::optional<common::api::Time> ClusterView::LastReport(uint32_t i) const {
  std::optional<common::api::Time> newest;
  const Node& n = nodes_[i];
  for (uint32_t k = n.first_drive; k < n.first_drive + n.drive_count; ++k) {
    const std::optional<common::api::Time>& at = drives_[k].updated_at;
    if (at && (!newest || *at > *newest)) newest = at;
  }
  return newest;
}

}  // namespace meshstor_operator
