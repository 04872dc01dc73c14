// What placement (and fencing's node lookups) read about the drives and Nodes of an Inventory, in
// flat arrays: per node its name, schedulability and drives; per drive its node, device name,
// sector size, free space, heartbeat and RDMA.
//
// Why: placement runs over every drive and Node of the cluster for every volume placed. Read from
// the objects, that is 3000 objects at 1000 nodes, each reached through a pointer and spread over
// the heap with the informers' other objects; in the operator most of those reads were cache
// misses. The view holds the same facts in two arrays and a buffer of names, read in order.
//
// Built once per snapshot: the informers' shared lists (Inventory::shared_devices and
// shared_nodes) are immutable and replaced as a whole when a drive or Node changes, so a view is
// kept for the last pair of lists and reused while a pass hands over the same pair. When one of
// them was replaced, the new view copies what it knew of every object still in the same position
// of the new list (the same object: for a Node, an equal pointer, since the view holds the Node
// list it was built from, so a pointer cannot be a new object at a freed address; for a drive,
// the same name, device and resourceVersion) and reads only the objects that changed.
// When those kept their names (the usual change: a heartbeat, free space, a Node's conditions),
// names, lookup table and grouping stay as they are: the view is changed in place when no pass
// holds it any more (the usual case with one worker), else copied first.
// The cache holds the Node list of its view (fencing reads the Node objects), so the previous
// Node list is released when the next one replaces it, in that pass's Decide. The drive list is
// not held: every heartbeat replaces a drive, and the replaced versions would stay alive until
// the next pass, which an idle operator may not run for hours.
//
// An inventory without shared lists (tests, ClientSource) gets a view of its own, built from
// every object and not kept: slower than the scans placement and fencing made before the view.
//
// Thread contract: a view does not change while anyone but Of()'s cache holds it; Of() is
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/core.h"
#include "common/api/meta.h"
#include "common/api/v1alpha1/types.h"
#include "operator/placement.h"

namespace meshstor_operator {

class ClusterView {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // What NodeSchedulable decides from the Node object.
  enum class NodeState : uint8_t {
    kSchedulable,
    kNoObject,       // no Node object of that name
    kUnschedulable,  // spec.unschedulable
    kNotReady,       // a Ready condition that is not True
  };
  struct Node {
    uint32_t name_offset = 0;  // in the names buffer: name()
    uint32_t name_size = 0;
    // Its drives: drives()[first_drive, first_drive + drive_count), in the order of the inventory's
    // list. Nodes with drives come first in nodes(), in the order their first drive is listed;
    // then the Node objects without drives.
    uint32_t first_drive = 0;
    uint32_t drive_count = 0;
    // The first Node object of that name (fencing reads its taints and Ready condition); the
    // state is the last one's (placement's rule). Listed objects only ever have one per name.
    const common::api::Node* object = nullptr;
    NodeState state = NodeState::kNoObject;
    bool rdma = false;  // any of its drives has an RDMA transport address
  };
  struct Drive {
    std::optional<common::api::Time> updated_at;  // status.updatedAt
    int64_t free = 0;                             // status.biggestFreeExtentBytes, 0 when unset
    uint32_t node = 0;                            // its index in nodes()
    uint32_t device_offset = 0;                   // spec.device in the names buffer: device()
    uint32_t device_size = 0;
    std::optional<int32_t> sector_size;  // status.sectorSize
    bool rdma = false;                   // has an RDMA transport address
  };

  // The view of `inventory`'s drives and Nodes (see above for when it is shared).
  static std::shared_ptr<const ClusterView> Of(const Inventory& inventory);

  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  const std::vector<Node>& nodes() const { return nodes_; }
  // The first nodes_with_drives() entries of nodes() are the nodes that have a drive.
  size_t nodes_with_drives() const { return names_with_drives_.size(); }
  // Their names, in the order of nodes().
  const std::vector<std::string_view>& names_with_drives() const { return names_with_drives_; }
  const std::vector<Drive>& drives() const { return drives_; }
  std::string_view name(const Node& n) const {
    return {names_.data() + n.name_offset, n.name_size};
  }
  std::string_view device(const Drive& d) const {
    return {names_.data() + d.device_offset, d.device_size};
  }
  // The index in nodes() of the node named `node`, or kNone.
  uint32_t Find(std::string_view node) const;
  // The newest status.updatedAt of the drives of node `i` (its agent's last heartbeat).
  std::optional<common::api::Time> LastReport(uint32_t i) const;

 private:
  struct Private {};

 public:
  explicit ClusterView(Private) {}

 private:
  // Whether `devices` and `nodes` differ from the lists `view` was built from only in objects
  // replaced at the same position under the same names (a drive's free space or heartbeat, a
  // Node's conditions); if so, the positions of those objects. Else a length, a position or a
  // name differs, and the view is built anew (Build).
  static bool Changes(const ClusterView& view, const Inventory::DeviceList& devices,
                      const Inventory::NodeList& nodes, std::vector<uint32_t>* changed_drives,
                      std::vector<uint32_t>* changed_nodes);
  static std::shared_ptr<ClusterView> Copy(const ClusterView& view);
  // Whether `list` is the list `known` refers to.
  static bool SameList(const std::weak_ptr<const Inventory::DeviceList>& known,
                       const std::shared_ptr<const Inventory::DeviceList>& list);
  // Whether `drive`, at position `i` of a new device list, is the drive this view read at that
  // position, in the same version (an empty resourceVersion is never taken as unchanged).
  bool Unchanged(size_t i, const common::api::v1alpha1::MeshStorNodeDevice& drive) const;
  // Reads the facts of the objects Changes found.
  void Patch(const Inventory::DeviceList& devices, const Inventory::NodeList& nodes,
             const std::vector<uint32_t>& changed_drives,
             const std::vector<uint32_t>& changed_nodes);
  static std::shared_ptr<ClusterView> Build(const Inventory::DeviceList& devices,
                                            const Inventory::NodeList& nodes,
                                            const ClusterView* previous);

  // The lists the view was built from (shared lists only), which keep their objects alive.
  // The drive list is only identified (weakly): holding it would keep every drive object it
  // replaced alive until the next pass, which may come long after (~1.6 MiB at 2000 drives of an
  // idle operator whose agents heartbeat). Drives are recognised by drive_version_ instead.
  std::weak_ptr<const Inventory::DeviceList> device_list_;
  std::shared_ptr<const Inventory::NodeList> node_list_;
  std::vector<Node> nodes_;
  std::vector<Drive> drives_;
  std::vector<std::string_view> names_with_drives_;
  std::string names_;
  std::vector<uint32_t> slots_;  // open addressing over nodes_ by name: index or kNone
  // For the next view: where each position of the lists went. drive_at_[i] is the index in
  // drives_ of the device list's i-th drive; node_of_object_[j] the index in nodes_ of the Node
  // list's j-th object's name.
  std::vector<uint32_t> drive_at_;
  // metadata.resourceVersion of the device list's i-th drive when it was read: the same name,
  // device and (non-empty) version at the same position is the same drive, unchanged.
  std::vector<std::string> drive_version_;
  std::vector<uint32_t> node_of_object_;
  std::vector<NodeState> state_of_object_;
};

}  // namespace meshstor_operator
