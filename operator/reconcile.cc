#include "operator/reconcile.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/api/v1alpha1/geometry.h"
#include "common/api/v1alpha1/validation.h"
#include "common/time/clock.h"
#include "operator/cluster_view.h"
#include "operator/fencing.h"
#include "operator/members.h"
#include "operator/status.h"
#include "operator/volume_index.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;
using common::api::Condition;
using common::api::ConditionStatus;
using std::chrono::seconds;

bool HasFinalizer(const common::api::ObjectMeta& m) {
  return std::find(m.finalizers.begin(), m.finalizers.end(), kFinalizer) != m.finalizers.end();
}

int32_t NextIndex(const v1::MeshStorVolume& v) {
  int32_t next = 0;
  for (const v1::Member& m : v.spec.members) next = std::max(next, m.index + 1);
  return next;
}

// True when every stripe position keeps a Synced present member without `retiring`.
bool SafeToRetire(const v1::MeshStorVolume& v, const v1::Member& retiring) {
  std::set<int32_t> covered;
  for (const v1::Member* m : Present(v)) {
    if (m->index == retiring.index) continue;
    if (IsSynced(v, *m)) covered.insert(StripeOf(v.spec, *m));
  }
  return static_cast<int32_t>(covered.size()) >= v.spec.stripe_width;
}

// Rebuilds in flight: present members that replace another one and are not Synced yet, by the
// node they sync onto.
std::map<std::string, int> RebuildsByNode(const Inventory& inv) {
  if (inv.index != nullptr) return inv.index->RebuildsByNode();
  std::map<std::string, int> out;
  for (const auto& vol : inv.volumes) {
    for (const v1::Member& m : vol->spec.members) {
      if (m.state == v1::MemberState::kPresent && m.replaces && !IsSynced(*vol, m)) ++out[m.node];
    }
  }
  return out;
}

// Namespace IDs for new members on `node`, avoiding IDs already in use and those handed out in
// this pass.
common::Result<int32_t> NewNamespaceId(const Inventory& inv, const v1::MeshStorVolume& self,
                                       const std::string& node) {
  std::set<int32_t> used = UsedNamespaceIds(inv, node);
  for (const v1::Member& m : self.spec.members) {
    if (m.node == node) used.insert(m.namespace_id);
  }
  return AllocateNamespaceId(used);
}

Decision SpecWrite(const v1::MeshStorVolume& updated) {
  Decision d;
  d.write = Decision::Write::kSpec;
  d.object = updated;
  return d;
}

void MinRequeue(Decision* d, seconds after) {
  if (after < seconds(1)) after = seconds(1);
  if (!d->requeue_after || *d->requeue_after > after) d->requeue_after = after;
}

// Since when a member that its agent never reported is lost: the last heartbeat of its drive,
// once that is older than the agent staleness (the agent died before creating the partition),
// or the volume's creation when the drive's inventory is gone altogether. nullopt while the
// agent is alive; `*check_after` then says when it may have gone stale.
std::optional<common::api::Time> SilentSince(const v1::MeshStorVolume& v, const v1::Member& m,
                                             const Inventory& inv, seconds* check_after) {
  const std::shared_ptr<const ClusterView> view = ClusterView::Of(inv);
  const uint32_t node = view->Find(m.node);
  if (node == ClusterView::kNone) return v.metadata.creation_timestamp;
  const ClusterView::Node& n = view->nodes()[node];
  for (uint32_t k = n.first_drive; k < n.first_drive + n.drive_count; ++k) {
    const ClusterView::Drive& d = view->drives()[k];
    if (view->device(d) != m.drive) continue;
    if (!d.updated_at) return v.metadata.creation_timestamp;
    const auto stale_at = *d.updated_at + inv.staleness;
    if (inv.now > stale_at) return d.updated_at;
    *check_after = std::chrono::ceil<seconds>(stale_at - inv.now) + seconds(1);
    return std::nullopt;
  }
  return v.metadata.creation_timestamp;
}

// Appends `count` new members for copy slots taken from `slots` on `placement`.
common::Status AddMembers(const Inventory& inv, const NodePlacement& placement,
                          const std::vector<std::pair<int32_t, std::optional<int32_t>>>& slots,
                          v1::MeshStorVolume* v) {
  for (size_t i = 0; i < slots.size(); ++i) {
    v1::Member m;
    m.index = NextIndex(*v);
    m.node = placement.node;
    m.drive = placement.drives[i % placement.drives.size()];
    m.size_bytes = v1::MemberSizeBytes(v->spec);
    ASSIGN_OR_RETURN(m.namespace_id, NewNamespaceId(inv, *v, placement.node));
    m.role =
        placement.node == v->spec.consumer_node ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
    m.state = v1::MemberState::kPresent;
    m.slot = slots[i].first;
    m.replaces = slots[i].second;
    v->spec.members.push_back(std::move(m));
  }
  return common::OkStatus();
}

std::set<std::string> PresentNodes(const v1::MeshStorVolume& v) {
  std::set<std::string> out;
  for (const v1::Member* m : Present(v)) out.insert(m->node);
  return out;
}

// ---- the steps of Decide, in order: each returns the write when it decides --------------------

// Deletion: retire every member, then phase Deleting, then remove the finalizer once every node
// confirmed its teardown. Decides every pass of a volume being deleted.
std::optional<Decision> DecideDeletion(const v1::MeshStorVolume& v, const Inventory& inv) {
  if (!v.metadata.deletion_timestamp) return std::nullopt;
  if (!HasFinalizer(v.metadata)) return Decision{};
  const auto present = Present(v);
  if (!present.empty()) {
    v1::MeshStorVolume next = v;
    for (v1::Member& m : next.spec.members) m.state = v1::MemberState::kRetired;
    Decision d = SpecWrite(next);
    d.events.push_back(
        {"Normal", "Deleting", fmt::format("Retired {} members for deletion", present.size())});
    return d;
  }
  if (v.status.phase != v1::VolumePhase::kDeleting) {
    Decision d;
    d.write = Decision::Write::kStatus;
    d.object = v;
    d.object.status.phase = v1::VolumePhase::kDeleting;
    d.object.status.observed_generation = v.metadata.generation;
    common::api::SetCondition(
        d.object.status.conditions,
        MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse, "Deleting",
                      "volume is being deleted; waiting for every node to tear down"));
    PhaseEvents(v, d.object.status, &d);
    return d;
  }
  // A node that no longer exists in the cluster has nothing left to tear down.
  std::set<std::string> known;
  for (const auto& n : inv.Nodes()) known.insert(n->metadata.name);
  const bool partitions_gone =
      std::none_of(v.status.partitions.begin(), v.status.partitions.end(),
                   [&](const v1::PartitionStatus& p) { return known.count(p.node_id) > 0; });
  const bool array_stopped = v.status.node_name.empty() || !known.count(v.status.node_name);
  if (partitions_gone && array_stopped) {
    v1::MeshStorVolume next = v;
    auto& f = next.metadata.finalizers;
    f.erase(std::remove(f.begin(), f.end(), kFinalizer), f.end());
    Decision d = SpecWrite(next);
    d.events.push_back(
        {"Normal", "TeardownComplete", "Every node confirmed teardown (or left the cluster)"});
    return d;
  }
  return Decision{};  // agents report teardown through status; their writes requeue us
}

// Invalid contents: a clear condition, no retry until the spec changes.
std::optional<Decision> RejectInvalidSpec(const v1::MeshStorVolume& v, const Inventory& inv) {
  common::Status valid = ValidateSpec(v.spec);
  if (valid.ok()) return std::nullopt;
  Decision d;
  v1::MeshStorVolumeStatus s = v.status;
  s.observed_generation = v.metadata.generation;
  common::api::SetCondition(
      s.conditions, MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse, "InvalidSpec",
                                  valid.message()));
  common::api::SetCondition(s.conditions,
                            MakeCondition(v, inv, kConditionPlaceable, ConditionStatus::kFalse,
                                          "InvalidSpec", valid.message()));
  if (s != v.status) {
    d.write = Decision::Write::kStatus;
    d.object = v;
    d.object.status = s;
    PhaseEvents(v, s, &d);
  }
  return d;
}

// The teardown finalizer, before anything is placed.
std::optional<Decision> EnsureFinalizer(const v1::MeshStorVolume& v) {
  if (HasFinalizer(v.metadata)) return std::nullopt;
  v1::MeshStorVolume next = v;
  next.metadata.finalizers.push_back(kFinalizer);
  return SpecWrite(next);
}

// What the spec steps of one pass of a valid volume share: the inputs, and what they gather on
// the way for the status write (requeue delays, a placement failure, a throttled replacement).
struct Pass {
  const v1::MeshStorVolume& v;
  const Inventory& inv;
  const Limits& limits;
  const std::vector<const v1::Member*> present;
  const std::set<std::string> nodes;  // nodes holding a present member
  const int64_t size;                 // the member size spec.capacityBytes needs
  Decision d;                         // requeue_after and placement_failed for the status write
  StatusInputs in;
};

// Placement failed for `why`: Placeable=False in the status write, another try after the
// retry interval.
void NotPlaced(Pass& p, std::string why) {
  p.in.placement_error = std::move(why);
  p.d.placement_failed = true;
  MinRequeue(&p.d, p.limits.retry_interval);
}

// Fencing: a dead consumer joins spec.fencedNodes; a healthy node other than the consumer
// leaves it (fencing.h).
std::optional<Decision> Fence(Pass& p) {
  std::optional<seconds> check_after;
  auto d = DecideFencing(p.v, p.inv, p.limits, &check_after);
  if (check_after) MinRequeue(&p.d, *check_after);
  return d;
}

// Initial placement: replicaCount nodes, the consumer first.
std::optional<Decision> PlaceMembers(Pass& p) {
  const v1::MeshStorVolume& v = p.v;
  const std::string& consumer = v.spec.consumer_node;
  if (!p.present.empty() || consumer.empty()) return std::nullopt;
  PlacementRequest req{
      v.metadata.name, p.size, v.spec.sector_size, v.spec.stripe_width, v.spec.replica_count,
      consumer,        {}};
  for (const v1::Member& m : v.spec.members) req.exclude_nodes.insert(m.node);
  req.exclude_nodes.erase(consumer);
  auto placed = Place(req, p.inv);
  if (!placed.ok()) {
    NotPlaced(p, placed.status().message());
    return std::nullopt;
  }
  v1::MeshStorVolume next = v;
  std::vector<std::string> where;
  common::Status st = common::OkStatus();
  for (size_t c = 0; c < placed->size() && st.ok(); ++c) {
    std::vector<std::pair<int32_t, std::optional<int32_t>>> slots;
    for (int32_t s = 0; s < v.spec.stripe_width; ++s) {
      slots.emplace_back(v1::SlotOf(v.spec.replica_count, s, static_cast<int32_t>(c)),
                         std::nullopt);
    }
    st = AddMembers(p.inv, (*placed)[c], slots, &next);
    where.push_back(fmt::format("{} ({})", (*placed)[c].node, Join((*placed)[c].drives)));
  }
  if (st.ok()) {
    Decision w = SpecWrite(next);
    w.events.push_back({"Normal", "Placed", fmt::format("Placed members on {}", Join(where))});
    return w;
  }
  NotPlaced(p, st.message());
  return std::nullopt;
}

// Roles follow the consumer; exporters fence to the consumer named in spec.consumerNode.
std::optional<Decision> FollowConsumer(Pass& p) {
  if (p.present.empty()) return std::nullopt;
  const std::string& consumer = p.v.spec.consumer_node;
  v1::MeshStorVolume next = p.v;
  bool changed = false;
  for (v1::Member& m : next.spec.members) {
    if (m.state != v1::MemberState::kPresent) continue;
    auto role = m.node == consumer ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
    if (m.role != role) {
      m.role = role;
      changed = true;
    }
  }
  if (!changed) return std::nullopt;
  Decision w = SpecWrite(next);
  w.events.push_back(
      {"Normal", "RolesUpdated",
       fmt::format("Member roles follow consumer {}", consumer.empty() ? "(none)" : consumer)});
  return w;
}

// Relocation: the consumer has no member yet.
std::optional<Decision> Relocate(Pass& p) {
  const v1::MeshStorVolume& v = p.v;
  const std::string& consumer = v.spec.consumer_node;
  if (p.present.empty() || consumer.empty() || p.nodes.count(consumer)) return std::nullopt;
  // The surplus copy: the one on a fenced node (a dead consumer, whose stale status may still
  // say Synced), else the one not Synced, else the one on the node the array was on, else the
  // last node in name order (deterministic).
  std::string surplus;
  for (const v1::Member* m : p.present) {
    if (!IsSynced(v, *m)) surplus = m->node;
  }
  for (const v1::Member* m : p.present) {
    const auto& f = v.spec.fenced_nodes;
    if (std::find(f.begin(), f.end(), m->node) != f.end()) surplus = m->node;
  }
  if (surplus.empty() && p.nodes.count(v.status.node_name)) surplus = v.status.node_name;
  if (surplus.empty()) surplus = *p.nodes.rbegin();
  PlacementRequest req{v.metadata.name, p.size, v.spec.sector_size, v.spec.stripe_width, 1,
                       consumer,        {}};
  auto placed = Place(req, p.inv);
  if (!placed.ok()) {
    NotPlaced(p, placed.status().message());
    return std::nullopt;
  }
  // New local members take the surplus copy's slots, or the free placeholder slots of a
  // single copy, and replace the surplus copy's member of the same stripe position.
  std::set<int32_t> used_slots;
  for (const v1::Member* m : p.present) {
    if (m->slot) used_slots.insert(*m->slot);
  }
  std::vector<std::pair<int32_t, std::optional<int32_t>>> slots;
  for (int32_t s = 0; s < v.spec.stripe_width; ++s) {
    const v1::Member* old = nullptr;
    for (const v1::Member* m : p.present) {
      if (m->node == surplus && StripeOf(v.spec, *m) == s) old = m;
    }
    std::optional<int32_t> slot;
    for (int32_t c = 0; c < v1::Copies(v.spec); ++c) {
      if (!used_slots.count(v1::SlotOf(v.spec.replica_count, s, c))) {
        slot = v1::SlotOf(v.spec.replica_count, s, c);
        break;
      }
    }
    if (!slot && old != nullptr) slot = old->slot;
    if (!slot) slot = v1::SlotOf(v.spec.replica_count, s, 0);
    used_slots.insert(*slot);
    slots.emplace_back(*slot, old ? std::optional<int32_t>(old->index) : std::nullopt);
  }
  v1::MeshStorVolume next = v;
  common::Status st = AddMembers(p.inv, placed->front(), slots, &next);
  if (!st.ok()) {
    p.in.placement_error = st.message();
    p.d.placement_failed = true;
    return std::nullopt;
  }
  Decision w = SpecWrite(next);
  w.relocations_started = 1;
  w.events.push_back(
      {"Normal", "Relocating",
       fmt::format("Adding a local member on {} to replace the copy on {}", consumer, surplus)});
  return w;
}

// Replacement of members missing longer than memberMissingTimeout (capped per node and
// cluster-wide).
std::optional<Decision> ReplaceMissing(Pass& p) {
  const v1::MeshStorVolume& v = p.v;
  if (p.present.empty()) return std::nullopt;
  const auto rebuilds = RebuildsByNode(p.inv);
  int cluster_rebuilds = 0;
  for (const auto& [node, n] : rebuilds) cluster_rebuilds += n;
  for (const v1::Member* m : p.present) {
    const v1::PartitionStatus* ps = PartitionOf(v, *m);
    std::optional<common::api::Time> since;
    if (ps == nullptr) {
      seconds check_after{0};
      since = SilentSince(v, *m, p.inv, &check_after);
      if (!since && check_after > seconds(0)) MinRequeue(&p.d, check_after);
      if (!since) continue;
    } else if (IsLost(ps)) {
      since = ps->missing_since ? ps->missing_since : ps->updated_at;
    } else {
      continue;
    }
    bool has_replacement =
        std::any_of(p.present.begin(), p.present.end(),
                    [&](const v1::Member* r) { return r->replaces && *r->replaces == m->index; });
    if (has_replacement) continue;
    // Another member already fills this slot (or is on its way): no second replacement.
    bool slot_served = std::any_of(p.present.begin(), p.present.end(), [&](const v1::Member* o) {
      return o->index != m->index && o->slot == m->slot && !IsLost(PartitionOf(v, *o));
    });
    if (slot_served) continue;
    if (!since) continue;
    const auto deadline = *since + seconds(v.spec.member_missing_timeout);
    if (p.inv.now < deadline) {
      MinRequeue(&p.d, std::chrono::ceil<seconds>(deadline - p.inv.now));
      continue;
    }
    if (cluster_rebuilds >= p.limits.max_rebuilds_cluster) {
      p.in.throttled = fmt::format(
          "replacement of member {} waits: {} rebuilds running "
          "cluster-wide (cap {})",
          m->index, cluster_rebuilds, p.limits.max_rebuilds_cluster);
      MinRequeue(&p.d, p.limits.retry_interval);
      continue;
    }
    PlacementRequest req{v.metadata.name, p.size, v.spec.sector_size, 1, 1, "", p.nodes};
    for (const auto& [node, n] : rebuilds) {
      if (n >= p.limits.max_rebuilds_per_node) req.exclude_nodes.insert(node);
    }
    auto placed = Place(req, p.inv);
    if (!placed.ok()) {
      NotPlaced(p, fmt::format("replacing member {}: {}", m->index, placed.status().message()));
      continue;
    }
    v1::MeshStorVolume next = v;
    common::Status st = AddMembers(
        p.inv, placed->front(), {{m->slot.value_or(0), std::optional<int32_t>(m->index)}}, &next);
    if (!st.ok()) {
      p.in.placement_error = st.message();
      continue;
    }
    Decision w = SpecWrite(next);
    w.replacements_started = 1;
    w.events.push_back(
        {"Warning", "Replacing",
         fmt::format("Member {} on {} {} since {}; replacing it on {}", m->index, m->node,
                     ps != nullptr ? v1::Name(ps->state)
                                   : std::string_view("never reported (agent silent)"),
                     common::time::FormatRfc3339(*since), placed->front().node)});
    return w;
  }
  return std::nullopt;
}

// Retire members whose replacement is Synced, and lost members whose slot a Synced member
// now fills (never the last good copy).
std::optional<Decision> RetireReplaced(Pass& p) {
  const v1::MeshStorVolume& v = p.v;
  for (const v1::Member* r : p.present) {
    if (!IsSynced(v, *r)) continue;
    for (const v1::Member* old : p.present) {
      if (old->index == r->index) continue;
      const bool replaced = r->replaces && *r->replaces == old->index;
      const bool superseded = old->slot == r->slot && IsLost(PartitionOf(v, *old));
      if (!replaced && !superseded) continue;
      if (!SafeToRetire(v, *old)) continue;
      v1::MeshStorVolume next = v;
      for (v1::Member& m : next.spec.members) {
        if (m.index == old->index) m.state = v1::MemberState::kRetired;
      }
      Decision w = SpecWrite(next);
      w.events.push_back({"Normal", "Retired",
                          fmt::format("Retired member {} on {}: member {} on {} is Synced",
                                      old->index, old->node, r->index, r->node)});
      return w;
    }
  }
  return std::nullopt;
}

// Expansion (RAID1 only; RAID10 is refused in the Resized condition).
std::optional<Decision> Expand(Pass& p) {
  const v1::MeshStorVolume& v = p.v;
  if (v.spec.stripe_width != 1 ||
      std::none_of(p.present.begin(), p.present.end(),
                   [&](const v1::Member* m) { return m->size_bytes < p.size; })) {
    return std::nullopt;
  }
  v1::MeshStorVolume next = v;
  for (v1::Member& m : next.spec.members) {
    if (m.state == v1::MemberState::kPresent && m.size_bytes < p.size) m.size_bytes = p.size;
  }
  Decision w = SpecWrite(next);
  w.expansions_started = 1;
  w.events.push_back(
      {"Normal", "Expanding",
       fmt::format("Growing members to {} bytes for capacity {}", p.size, v.spec.capacity_bytes)});
  return w;
}

// No spec step: the status, written only when it differs.
Decision WriteStatus(Pass& p) {
  Decision d = std::move(p.d);
  // A fenced consumer's fields are cleared before the rest of the status is computed from them.
  v1::MeshStorVolume view = p.v;
  ApplyFencingStatus(p.v, p.inv, p.limits, &view.status, &d);
  v1::MeshStorVolumeStatus s = ComputeStatus(view, p.inv, p.in);
  if (s != p.v.status) {
    d.write = Decision::Write::kStatus;
    d.object = p.v;
    d.object.status = s;
    PhaseEvents(p.v, s, &d);
  }
  return d;
}

}  // namespace

common::Status ValidateSpec(const v1::MeshStorVolumeSpec& spec) {
  // Each value's bounds are checked when the object is decoded (the informer never hands over a
  // spec outside them); what is left are the rules across fields and members.
  RETURN_IF_ERROR(v1::ValidateArraySlots(spec.replica_count, spec.stripe_width,
                                         "spec.replicaCount × spec.stripeWidth"));
  std::set<int32_t> indexes;
  std::map<std::string, std::set<int32_t>> nsids;
  for (const v1::Member& m : spec.members) {
    if (!indexes.insert(m.index).second) {
      return common::InvalidArgumentError("spec.members: index {} appears twice", m.index);
    }
    if (m.node.empty() || m.drive.empty()) {
      return common::InvalidArgumentError("spec.members[{}]: node and drive are required", m.index);
    }
    if (m.slot && *m.slot >= v1::SlotCount(spec)) {
      return common::InvalidArgumentError("spec.members[{}].slot: {} is outside 0..{}", m.index,
                                          *m.slot, v1::SlotCount(spec) - 1);
    }
    if (m.state == v1::MemberState::kPresent && !nsids[m.node].insert(m.namespace_id).second) {
      return common::InvalidArgumentError(
          "spec.members[{}].namespaceID: {} is used twice on node {}", m.index, m.namespace_id,
          m.node);
    }
  }
  return common::OkStatus();
}

Decision Decide(const v1::MeshStorVolume& v, const Inventory& inv, const Limits& limits) {
  // Before any spec step: deletion, an invalid spec (status only), the finalizer.
  if (auto d = DecideDeletion(v, inv)) return *std::move(d);
  if (auto d = RejectInvalidSpec(v, inv)) return *std::move(d);
  if (auto d = EnsureFinalizer(v)) return *std::move(d);
  // The spec steps, in order: the first that decides is the write.
  using Step = std::optional<Decision> (*)(Pass&);
  static constexpr Step kSteps[] = {&Fence,          &PlaceMembers,   &FollowConsumer, &Relocate,
                                    &ReplaceMissing, &RetireReplaced, &Expand};
  Pass pass{v, inv, limits, Present(v), PresentNodes(v), v1::MemberSizeBytes(v.spec)};
  for (Step step : kSteps) {
    if (auto d = step(pass)) return *std::move(d);
  }
  return WriteStatus(pass);
}

}  // namespace meshstor_operator
