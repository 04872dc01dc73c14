#include "operator/fencing.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/time/clock.h"
#include "operator/cluster_view.h"
#include "operator/members.h"
#include "operator/status.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;
using common::api::ConditionStatus;
using std::chrono::seconds;

// Through the view of the inventory's drives and Nodes (cluster_view.h): a lookup by name, not a
// scan of every Node and drive of the cluster, on every pass of a volume with a consumer.
const common::api::Node* FindNode(const ClusterView& view, const std::string& name) {
  const uint32_t i = view.Find(name);
  return i == ClusterView::kNone ? nullptr : view.nodes()[i].object;
}

// The newest heartbeat of the node's agent (its drives' status.updatedAt).
std::optional<common::api::Time> LastReport(const ClusterView& view, const std::string& node) {
  const uint32_t i = view.Find(node);
  return i == ClusterView::kNone ? std::nullopt : view.LastReport(i);
}

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

NodeLiveness Liveness(const Inventory& inv, const std::string& node, const Limits& limits) {
  NodeLiveness out;
  const std::shared_ptr<const ClusterView> view = ClusterView::Of(inv);
  const common::api::Node* n = FindNode(*view, node);
  if (n == nullptr) return out;
  for (const auto& t : n->taints) {
    if (t.key == common::api::kOutOfServiceTaint) {
      out.dead = true;
      out.why = fmt::format("node {} has the {} taint", node, common::api::kOutOfServiceTaint);
      return out;
    }
  }
  const common::api::Condition* ready = common::api::FindCondition(n->conditions, "Ready");
  const auto last = LastReport(*view, node);
  const bool reporting = last && inv.now <= *last + inv.staleness;
  if (ready != nullptr && ready->status == ConditionStatus::kTrue) {
    out.healthy = reporting;
    return out;
  }
  if (ready == nullptr || limits.consumer_dead_after <= seconds(0)) return out;
  // NotReady (False) or Unknown: dead once its agent has also been silent long enough.
  const auto silent_since = last ? *last : ready->last_transition_time;
  const auto dead_at = silent_since + limits.consumer_dead_after;
  if (inv.now >= dead_at) {
    out.dead = true;
    out.why = fmt::format(
        "node {} is {} (Ready={}) and its agent has not reported since {} (more than {}s)", node,
        ready->status == ConditionStatus::kFalse ? "NotReady" : "unreachable",
        common::api::ConditionStatusName(ready->status), common::time::FormatRfc3339(silent_since),
        limits.consumer_dead_after.count());
  } else {
    out.dead_in = std::chrono::ceil<seconds>(dead_at - inv.now) + seconds(1);
  }
  return out;
}

std::optional<Decision> DecideFencing(const v1::MeshStorVolume& v, const Inventory& inv,
                                      const Limits& limits, std::optional<seconds>* check_after) {
  const std::string& consumer = v.spec.consumer_node;
  if (!consumer.empty() && !Contains(v.spec.fenced_nodes, consumer)) {
    NodeLiveness l = Liveness(inv, consumer, limits);
    if (l.dead) {
      v1::MeshStorVolume next = v;
      next.spec.fenced_nodes.push_back(consumer);
      std::sort(next.spec.fenced_nodes.begin(), next.spec.fenced_nodes.end());
      Decision d;
      d.write = Decision::Write::kSpec;
      d.object = std::move(next);
      d.events.push_back(
          {"Warning", "FencingConsumer",
           fmt::format("Consumer node {} is dead ({}); fencing it from every member before "
                       "another node may take the volume over",
                       consumer, l.why)});
      return d;
    }
    if (l.dead_in) *check_after = l.dead_in;
  }
  for (const std::string& node : v.spec.fenced_nodes) {
    if (node == consumer) continue;  // a consumer nobody took over stays fenced
    if (!Liveness(inv, node, limits).healthy) continue;
    v1::MeshStorVolume next = v;
    auto& f = next.spec.fenced_nodes;
    f.erase(std::remove(f.begin(), f.end(), node), f.end());
    Decision d;
    d.write = Decision::Write::kSpec;
    d.object = std::move(next);
    d.events.push_back(
        {"Normal", "Unfenced",
         fmt::format("Node {} is healthy again (Ready, agent reporting, no {} taint) and not the "
                     "consumer; lifted its fence",
                     node, common::api::kOutOfServiceTaint)});
    return d;
  }
  return std::nullopt;
}

std::vector<std::string> UnconfirmedExporters(const v1::MeshStorVolume& v, const Inventory& inv,
                                              const Limits& limits, const std::string& fenced) {
  const std::shared_ptr<const ClusterView> view = ClusterView::Of(inv);
  std::vector<std::string> out;
  for (const v1::Member* m : Present(v)) {
    if (m->node == fenced || Contains(out, m->node)) continue;
    const v1::PartitionStatus* p = PartitionOf(v, *m);
    if (p == nullptr || Contains(p->fenced_nodes, fenced)) continue;
    if (FindNode(*view, m->node) == nullptr || Liveness(inv, m->node, limits).dead) continue;
    out.push_back(m->node);
  }
  return out;
}

void ApplyFencingStatus(const v1::MeshStorVolume& v, const Inventory& inv, const Limits& limits,
                        v1::MeshStorVolumeStatus* s, Decision* d) {
  const std::string& consumer = v.spec.consumer_node;
  if (s->fenced_consumer && !Contains(v.spec.fenced_nodes, s->fenced_consumer->node)) {
    s->fenced_consumer.reset();  // un-fenced: the record has served its purpose
  }
  if (consumer.empty() || !Contains(v.spec.fenced_nodes, consumer)) {
    if (s->fenced_consumer) {
      common::api::SetCondition(
          s->conditions,
          MakeCondition(
              v, inv, kConditionConsumerFenced, ConditionStatus::kFalse, "TakenOver",
              fmt::format("the fenced consumer {} was replaced by {}", s->fenced_consumer->node,
                          consumer.empty() ? std::string("(none yet)") : consumer)));
    } else {
      auto& c = s->conditions;
      c.erase(std::remove_if(c.begin(), c.end(),
                             [](const common::api::Condition& x) {
                               return x.type == kConditionConsumerFenced;
                             }),
              c.end());
    }
    return;
  }
  const std::vector<std::string> waiting = UnconfirmedExporters(v, inv, limits, consumer);
  if (!waiting.empty()) {
    common::api::SetCondition(
        s->conditions,
        MakeCondition(v, inv, kConditionConsumerFenced, ConditionStatus::kFalse,
                      "WaitingForExporters",
                      fmt::format("fencing consumer {}: waiting for the exporters on {} to "
                                  "confirm; the volume cannot move until they do",
                                  consumer, Join(waiting))));
    if (!d->requeue_after || *d->requeue_after > limits.retry_interval) {
      d->requeue_after = limits.retry_interval;
    }
    return;
  }
  if (!s->fenced_consumer || s->fenced_consumer->node != consumer) {
    s->fenced_consumer =
        v1::FencedConsumer{consumer, std::chrono::time_point_cast<seconds>(inv.now)};
    d->events.push_back({"Warning", "ConsumerFenced",
                         fmt::format("Consumer node {} is fenced: every reachable exporter "
                                     "confirmed; another node may now stage the volume",
                                     consumer)});
  }
  if (s->node_name == consumer) {
    d->events.push_back(
        {"Warning", "ConsumerStatusCleared",
         fmt::format("Cleared the consumer status of fenced node {} (array {} staged at \"{}\"); "
                     "its agent could never clear it",
                     consumer, s->md_state.empty() ? "state unknown" : s->md_state,
                     s->staged_path)});
    s->node_name.clear();
    s->md_state.clear();
    s->total_devices.reset();
    s->active_devices.reset();
    s->failed_devices.reset();
    s->down_devices.reset();
    s->sync_percentage.clear();
    s->staged_path.clear();
    s->filesystem_bytes.reset();
    s->published_targets.clear();
  }
  common::api::SetCondition(
      s->conditions,
      MakeCondition(v, inv, kConditionConsumerFenced, ConditionStatus::kTrue, "Fenced",
                    fmt::format("consumer {} was declared dead and every reachable exporter cut "
                                "it off; stage the volume on another node to take it over",
                                consumer)));
}

}  // namespace meshstor_operator
