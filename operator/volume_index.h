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
// Thread contract: every method is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/api/v1alpha1/types.h"

namespace meshstor_operator {

class VolumeIndex {
 public:
  // Follows one volume: `volume` is its newest version, or null once it is deleted.
  void Apply(const std::string& name, const common::api::v1alpha1::MeshStorVolume* volume);

  // Present members on `node` across all volumes.
  int MemberCount(const std::string& node) const;
  // Bytes of present members assigned to (node, drive) whose agent has not reported them yet.
  int64_t PendingBytes(const std::string& node, const std::string& drive) const;
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
  // metadata.resourceVersion of the version applied last; empty when the volume is not indexed.
  std::string ResourceVersion(const std::string& name) const;
  size_t size() const;

 private:
  struct Contribution {
    std::map<std::string, int> members;                              // node → present
    std::map<std::pair<std::string, std::string>, int64_t> pending;  // (node, drive) → bytes
    std::map<std::string, std::multiset<int32_t>> namespace_ids;     // node → IDs
    std::map<std::string, int> rebuilds;                             // node → count
    std::set<std::string> nodes;  // members' nodes, consumer, fenced nodes
    bool waiting = false;         // for placement
    std::string resource_version;
  };
  static Contribution Of(const common::api::v1alpha1::MeshStorVolume& v);
  void Add(const std::string& name, const Contribution& c, int sign);  // mu_ held

  mutable std::mutex mu_;
  std::map<std::string, Contribution> volumes_;                     // guarded by mu_
  std::map<std::string, int> members_;                              // guarded by mu_
  std::map<std::pair<std::string, std::string>, int64_t> pending_;  // guarded by mu_
  std::map<std::string, std::map<int32_t, int>> namespace_ids_;     // guarded by mu_
  std::map<std::string, int> rebuilds_;                             // guarded by mu_
  std::map<std::string, std::set<std::string>> by_node_;  // node → volumes; guarded by mu_
  std::set<std::string> waiting_;                         // guarded by mu_
};

}  // namespace meshstor_operator
