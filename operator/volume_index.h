// Aggregates over every MeshStorVolume that placement and the reconcile steps would otherwise
// recompute by scanning the whole volume cache on every pass (O(volumes) per pass, so
// O(volumes²) work to converge): present members per node (the spread term), bytes that members
// not yet reported will take on each drive, NVMe-oF namespace IDs in use per node, rebuilds in
// flight per node, and which volumes a change of one node's drives or Node object concerns.
//
// Kept up to date from the volume informer's events (Apply). Each volume's contribution is kept
// by name, so an update subtracts exactly what the previous version added; the totals always
// equal a full scan of the volumes applied (placement.h's MemberCounts, UsedNamespaceIds).
//
// Memory: the index is held for every volume of the cluster, so it stores per volume only a
// compact list of what it added (8-byte items naming the per-node totals by a number, held in
// the volume's own entry up to kInlineItems), a hash of its resourceVersion, and per node flat
// vectors rather than trees (one volume adds ~0.2 KiB; with maps of strings it was 1.5 KiB).
//
// Thread contract: every method is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "common/api/v1alpha1/types.h"
#include "common/compress/shared_name.h"
#include "common/compress/slab_pool.h"

namespace meshstor_operator {

class VolumeIndex {
 public:
  // What placement reads about one node.
  struct NodeLoad {
    int members = 0;  // present members on the node
    // (drive, bytes) of present members not yet reported by the node's agent; usually empty.
    std::vector<std::pair<std::string, int64_t>> pending;

    bool operator==(const NodeLoad&) const = default;
  };

  VolumeIndex() = default;
  VolumeIndex(const VolumeIndex&) = delete;
  VolumeIndex& operator=(const VolumeIndex&) = delete;

  // Follows one volume: `volume` is its newest version, or null once it is deleted.
  void Apply(const std::string& name, const common::api::v1alpha1::MeshStorVolume* volume);

  // Present members on `node` across all volumes.
  int MemberCount(const std::string& node) const;
  // Bytes of present members assigned to (node, drive) whose agent has not reported them yet.
  int64_t PendingBytes(const std::string& node, const std::string& drive) const;
  // The load of each of `nodes`, in order, under one lock (placement reads every node of the
  // cluster in one pass; one lookup each instead of one per drive and term). The index keeps the
  // names of the last call and their loads in one array, updated as volumes are applied, so a
  // call for the same names (placement's, until the nodes change) reads that array instead of
  // looking every node up.
  std::vector<NodeLoad> Loads(const std::vector<std::string_view>& nodes) const;
  // Namespace IDs in use on `node`: members of any state, and IDs agents report.
  std::set<int32_t> UsedNamespaceIds(const std::string& node) const;
  // Present members that replace another one and are not Synced yet, by node.
  std::map<std::string, int> RebuildsByNode() const;
  // Volumes that a change of `node` (its drives' free space or sector size, its agent returning,
  // its Node's schedulability, readiness or taints) may let move on: those with a member on the
  // node, consumed on it or fencing it, and every volume waiting for placement (condition
  // Placeable not True, not being deleted, with a consumer or members: without either nothing
  // is placed). Sorted by name.
  std::vector<std::string> VolumesConcerning(const std::string& node) const;
  // True when the version applied last has metadata.resourceVersion `rv` (compared by a 64-bit
  // hash), or when `rv` is empty and the volume is not indexed.
  bool IsAt(const std::string& name, std::string_view rv) const;
  size_t size() const;
  // Nodes with any total (for tests: a node nothing refers to any more is dropped).
  size_t node_count() const;

 private:
  // Everything the index keeps is made by the volume watch thread's handler, among that event's
  // short-lived allocations; in the slab pool it does not pin that thread's arena
  // (compress/slab_pool.h): names, map nodes, and the per-node and per-volume lists (a list
  // past 256 bytes goes to operator new).
  template <class T>
  using Alloc = common::compress::SlabAllocator<T>;
  template <class T>
  using List = std::vector<T, Alloc<T>>;
  // A volume's name as volumes_ keeps it: interned, shared with the informer's cache.
  using Name = common::compress::SharedName;
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  struct NodeTotals {
    int members = 0;
    // Its position in the names of the last Loads call, if there (Loads' cache, hence mutable).
    mutable uint32_t slot = kNoSlot;
    uint32_t id = 0;                                // its position in node_by_id_
    List<std::pair<std::string, int64_t>> pending;  // (drive, bytes)
    List<std::pair<int32_t, int>> namespace_ids;    // (ID, uses), sorted by ID
    List<const Name*> volumes;  // keys of volumes_ concerning the node, any order

    bool empty() const {
      return members == 0 && pending.empty() && namespace_ids.empty() && volumes.empty();
    }
  };
  using NodeMap = std::unordered_map<std::string, NodeTotals, common::compress::NameHash,
                                     common::compress::NameEqual,
                                     Alloc<std::pair<const std::string, NodeTotals>>>;
  using NodeRef = NodeMap::value_type*;  // stable: unordered_map never moves its elements
  // A node of the last Loads call: its totals as Loads returns them.
  struct Registered {
    const NodeMap::value_type* node = nullptr;  // null while the index has nothing for the node
    int members = 0;
    bool pending = false;  // node->second.pending is not empty
  };
  // What one volume added, to take it away again.
  struct Contribution {
    enum Kind : uint8_t { kMember, kNamespaceId, kConcerns, kRebuild };
    struct Item {
      uint32_t node : 30;    // NodeTotals::id
      uint32_t kind : 2;     // Kind
      int32_t namespace_id;  // kNamespaceId
    };
    // A volume with two members adds 7 items: two members, three namespace IDs, two nodes.
    static constexpr size_t kInlineItems = 8;
    struct Pending {
      NodeRef node;
      std::string drive;
      int64_t bytes;
    };
    boost::container::small_vector<Item, kInlineItems, Alloc<Item>> items;
    List<Pending> pending;  // empty once every present member is reported
    uint64_t resource_version_hash = 0;
    bool waiting = false;  // for placement
  };

  // Both with mu_ held. Add computes and adds the contribution of `v` for the volume whose key
  // in volumes_ is `name`; Remove takes a contribution away and drops nodes left empty.
  void Add(const Name* name, const common::api::v1alpha1::MeshStorVolume& v, Contribution* c);
  void Remove(const Name* name, Contribution* c);
  NodeRef NodeOf(const std::string& node);
  NodeRef NodeById(uint32_t id) const { return node_by_id_[id]; }
  // Copies `node`'s totals to its entry in registered_, if it has one. With mu_ held, after
  // every change of its members or pending bytes.
  void Sync(const NodeMap::value_type* node) const;
  // Makes `nodes` the registered names. False (and nothing registered) when a name repeats.
  bool Register(const std::vector<std::string_view>& nodes) const;

  mutable std::mutex mu_;
  std::unordered_map<Name, Contribution, common::compress::NameHash, common::compress::NameEqual,
                     Alloc<std::pair<const Name, Contribution>>>
      volumes_;    // guarded by mu_
  NodeMap nodes_;  // guarded by mu_
  // Every node of nodes_ by its id; null for an id free for reuse (also in free_node_ids_).
  std::vector<NodeRef> node_by_id_;          // guarded by mu_
  std::vector<uint32_t> free_node_ids_;      // guarded by mu_
  std::map<std::string, int> rebuilds_;      // guarded by mu_
  std::unordered_set<const Name*> waiting_;  // keys of volumes_; guarded by mu_
  // The names of the last Loads call and their totals (a cache for Loads, hence mutable), kept
  // by Sync; registered_slots_ holds views into registered_names_. All guarded by mu_.
  mutable std::vector<std::string> registered_names_;
  mutable std::unordered_map<std::string_view, uint32_t> registered_slots_;
  mutable std::vector<Registered> registered_;
};

}  // namespace meshstor_operator
