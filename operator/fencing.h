// Failover from a dead consumer (docs/design.md §5.1): the operator declares a consumer node
// dead, fences it from every member of the volume (spec.fencedNodes, confirmed by each exporter
// in status.partitions[].fencedNodes) and only then records status.fencedConsumer and clears the
// dead node's consumer fields, which lets the CSI shim stage the volume on another node.
//
// A node is dead when it carries the out-of-service taint (Kubernetes' non-graceful node
// shutdown: an administrator asserts the node is off), or, only when Limits::consumer_dead_after
// is set, when its Ready condition is False or Unknown and its agent has not reported (newest
// MeshStorNodeDevice status.updatedAt) for longer than that. A fenced node is un-fenced only when
// it is healthy again (no out-of-service taint, Ready=True, agent reporting within the staleness)
// and it is not spec.consumerNode: a dead consumer that nobody took over stays fenced.
//
// Thread contract: free functions without shared state.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "operator/placement.h"
#include "operator/reconcile.h"

namespace meshstor_operator {

inline constexpr char kConditionConsumerFenced[] = "ConsumerFenced";

struct NodeLiveness {
  bool dead = false;     // fence it (consumer) / it need not confirm (exporter)
  bool healthy = false;  // may be un-fenced
  std::string why;       // why it is dead, for events and conditions
  // Not dead yet but will be at this delay if nothing changes (timeout rule only).
  std::optional<std::chrono::seconds> dead_in;
};

// What the inventory says of `node`. A node without a Node object is neither dead nor healthy
// (an exporter there need not confirm: see FencingConfirmed).
NodeLiveness Liveness(const Inventory& inv, const std::string& node, const Limits& limits);

// The spec step: adds a dead spec.consumerNode to spec.fencedNodes, or removes a fenced node
// that is healthy again and not the consumer. nullopt when nothing is due; `*check_after` then
// says when the timeout rule may declare the consumer dead.
std::optional<Decision> DecideFencing(const common::api::v1alpha1::MeshStorVolume& v,
                                      const Inventory& inv, const Limits& limits,
                                      std::optional<std::chrono::seconds>* check_after);

// Nodes of present members (other than `fenced`) whose exporter has not yet confirmed fencing
// `fenced` in status.partitions[].fencedNodes. Members on dead nodes, or on nodes without a Node
// object, need not confirm (their agent applies fencing before it exports anything on start);
// nor do members without a status entry (nothing exported yet).
std::vector<std::string> UnconfirmedExporters(const common::api::v1alpha1::MeshStorVolume& v,
                                              const Inventory& inv, const Limits& limits,
                                              const std::string& fenced);

// The status part: once every exporter confirmed fencing the consumer, status.fencedConsumer is
// set and the dead consumer's fields (nodeName, mdState, device counts, syncPercentage,
// stagedPath, filesystemBytes, publishedTargets) are cleared; the ConsumerFenced condition and
// events say so (`d` receives events and a retry delay while waiting). fencedConsumer is dropped
// once its node is no longer fenced.
void ApplyFencingStatus(const common::api::v1alpha1::MeshStorVolume& v, const Inventory& inv,
                        const Limits& limits, common::api::v1alpha1::MeshStorVolumeStatus* s,
                        Decision* d);

}  // namespace meshstor_operator
