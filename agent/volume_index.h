// VolumeIndex: the MeshStorVolumes of an informer's cache filed by node — for each node, the
// volumes that involve it (Involves below) — kept up to date by a handler on the informer. A pass
// reads its own node's few dozen volumes from it instead of walking every volume of the cluster
// (10000 at 1000 nodes, each pass of each of the 1000 simulated nodes), and a change wakes the
// agents of the nodes it concerns without asking every agent whether it does.
//
// One index per informer: the agents of a simulated cluster (--simulate N) share it as they share
// the informer; a real node's agent makes its own on its own informer. Both run the same code.
//
// The index follows the cache: a volume is filed under the nodes its current (cached) object
// involves, so a pass sees exactly the volumes a walk of the cache filtered by Involves would
// (a retired member, or a partition the status still reports here, keeps the volume filed under
// its node). A change is announced to the nodes involved before or after it: a node that stops
// being involved hears of it once, and its pass then collects what is left of it (exports,
// controllers) node-wide, as before the index.
//
// Thread contract: construct it before the informer's Start() (it adds its handler there), and
// keep it and every subscriber alive until the informer was stopped. VolumesOf and Subscribe are
// safe from any thread. Subscribers run on the informer thread, one change at a time, after the
// index took the change (so a pass they start sees it), and must not block (post a pass instead).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/kube/informer.h"
#include "common/kube/resource.h"

namespace agent {

// True when a pass of `node` acts on `v`: the node consumes it, is fenced from it, holds one of
// its members (any state), or holds a partition the status still reports.
bool Involves(const common::api::v1alpha1::MeshStorVolume& v, std::string_view node);

// Every node `v` involves (each once, sorted): `node` is in it exactly when Involves(v, node),
// for any non-empty `node` (an agent's node is never empty).
std::vector<std::string> InvolvedNodes(const common::api::v1alpha1::MeshStorVolume& v);

class VolumeIndex {
 public:
  using Informer = common::kube::Informer<common::api::v1alpha1::MeshStorVolume>;
  using Ptr = Informer::Ptr;

  // Adds the handler to `informer` (REQUIRES: before informer.Start()), which must outlive the
  // index.
  explicit VolumeIndex(Informer& informer);
  VolumeIndex(const VolumeIndex&) = delete;
  VolumeIndex& operator=(const VolumeIndex&) = delete;

  Informer& informer() const { return informer_; }

  // The volumes that involve `node` as the last change taken left them, ordered by key (as
  // Informer::List()).
  std::vector<Ptr> VolumesOf(std::string_view node) const;

  // `on_change` runs for each change (add, update, delete, resync) of a volume that involves
  // `node` before or after it. There is no unsubscribing: see the thread contract.
  void Subscribe(const std::string& node, std::function<void()> on_change);

  // The informer's handler; public so that tests can feed it changes.
  void Apply(const Informer::Change& change);

 private:
  Informer& informer_;
  mutable std::mutex mu_;
  // node -> (volume key -> the volume as last taken). Guarded by mu_.
  std::map<std::string, std::map<common::kube::ObjectKey, Ptr>, std::less<>> by_node_;
  // volume key -> the nodes it is filed under, to unfile it without its previous copy. Guarded by
  // mu_.
  std::map<common::kube::ObjectKey, std::vector<std::string>> nodes_of_;
  // Guarded by mu_.
  std::map<std::string, std::vector<std::function<void()>>, std::less<>> subscribers_;
};

}  // namespace agent
