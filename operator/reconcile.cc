#include "operator/reconcile.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/api/v1alpha1/geometry.h"
#include "common/api/v1alpha1/validation.h"
#include "common/time/clock.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;
using common::api::Condition;
using common::api::ConditionStatus;
using std::chrono::seconds;

bool HasFinalizer(const common::api::ObjectMeta& m) {
  return std::find(m.finalizers.begin(), m.finalizers.end(), kFinalizer) != m.finalizers.end();
}

const v1::PartitionStatus* PartitionOf(const v1::MeshStorVolume& v, const v1::Member& m) {
  for (const v1::PartitionStatus& p : v.status.partitions) {
    if (p.index == m.index && p.node_id == m.node) return &p;
  }
  return nullptr;
}

bool IsSynced(const v1::MeshStorVolume& v, const v1::Member& m) {
  const v1::PartitionStatus* p = PartitionOf(v, m);
  return p != nullptr && p->state == v1::PartitionState::kSynced;
}

bool IsLost(const v1::PartitionStatus* p) {
  return p != nullptr &&
         (p->state == v1::PartitionState::kMissing || p->state == v1::PartitionState::kFaulty);
}

std::vector<const v1::Member*> Present(const v1::MeshStorVolume& v) {
  std::vector<const v1::Member*> out;
  for (const v1::Member& m : v.spec.members) {
    if (m.state == v1::MemberState::kPresent) out.push_back(&m);
  }
  return out;
}

int32_t StripeOf(const v1::MeshStorVolumeSpec& spec, const v1::Member& m) {
  return v1::StripeOfSlot(spec.replica_count, m.slot.value_or(0));
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

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  return s;
}

struct StatusInputs {
  std::optional<std::string> placement_error;  // Placeable=False with this message
  std::string throttled;                       // a replacement waits for a rebuild cap
};

Condition MakeCondition(const v1::MeshStorVolume& v, const Inventory& inv, const char* type,
                        ConditionStatus status, std::string reason, std::string message) {
  Condition c;
  c.type = type;
  c.status = status;
  c.observed_generation = v.metadata.generation;
  c.last_transition_time = std::chrono::time_point_cast<seconds>(inv.now);
  c.reason = std::move(reason);
  c.message = std::move(message);
  return c;
}

// The operator-owned part of the status, computed from this pass's observations.
v1::MeshStorVolumeStatus ComputeStatus(const v1::MeshStorVolume& v, const Inventory& inv,
                                       const StatusInputs& in) {
  v1::MeshStorVolumeStatus s = v.status;
  s.observed_generation = v.metadata.generation;
  const auto present = Present(v);
  const int64_t want_size = v1::MemberSizeBytes(v.spec);

  // Phase.
  bool any_missing_entry = false, any_syncing = false, replacing = false, expanding = false;
  std::vector<std::string> degraded;
  int degraded_count = 0;
  std::set<int32_t> synced_stripes;
  int synced = 0;
  for (const v1::Member* m : present) {
    const v1::PartitionStatus* p = PartitionOf(v, *m);
    if (p == nullptr || p->state == v1::PartitionState::kRequested) {
      any_missing_entry = true;
    } else {
      switch (p->state) {
        case v1::PartitionState::kSynced:
          ++synced;
          synced_stripes.insert(StripeOf(v.spec, *m));
          break;
        case v1::PartitionState::kMissing:
        case v1::PartitionState::kFaulty:
          ++degraded_count;
          degraded.push_back(
              fmt::format("member {} on {} {}", m->index, m->node, v1::Name(p->state)));
          break;
        case v1::PartitionState::kSyncing:
        case v1::PartitionState::kSpare:
        case v1::PartitionState::kReplacing:
          ++degraded_count;
          any_syncing = true;
          degraded.push_back(
              fmt::format("member {} on {} {}", m->index, m->node, v1::Name(p->state)));
          break;
        default:
          any_syncing = true;
      }
    }
    if (m->replaces) {
      for (const v1::Member& old : v.spec.members) {
        if (old.index == *m->replaces && old.state == v1::MemberState::kPresent) replacing = true;
      }
    }
    if (v.spec.stripe_width == 1 &&
        (m->size_bytes < want_size ||
         (p != nullptr && p->size_bytes && *p->size_bytes < m->size_bytes))) {
      expanding = true;
    }
  }
  if (present.empty()) {
    s.phase = v1::VolumePhase::kNew;
  } else if (replacing) {
    s.phase = v1::VolumePhase::kReplacing;
  } else if (expanding) {
    s.phase = v1::VolumePhase::kExpanding;
  } else if (any_missing_entry) {
    s.phase = v1::VolumePhase::kRequested;
  } else if (any_syncing) {
    s.phase = v1::VolumePhase::kSyncing;
  } else {
    s.phase = v1::VolumePhase::kSynced;
  }

  // Counters.
  const int total = v.status.total_devices.value_or(v1::SlotCount(v.spec));
  const int active = v.status.active_devices.value_or(synced);
  s.ready = present.empty() ? "" : fmt::format("{}/{}", active, total);
  s.degraded_devices = present.empty() ? std::nullopt : std::optional<int32_t>(degraded_count);

  // Conditions.
  if (in.placement_error) {
    common::api::SetCondition(s.conditions,
                              MakeCondition(v, inv, kConditionPlaceable, ConditionStatus::kFalse,
                                            "NotEnoughNodes", *in.placement_error));
  } else if (!present.empty()) {
    common::api::SetCondition(
        s.conditions, MakeCondition(v, inv, kConditionPlaceable, ConditionStatus::kTrue, "Placed",
                                    fmt::format("{} members placed", present.size())));
  } else {
    common::api::SetCondition(s.conditions,
                              MakeCondition(v, inv, kConditionPlaceable, ConditionStatus::kUnknown,
                                            "WaitingForConsumer", "no consumer node set yet"));
  }

  const bool all_stripes = static_cast<int32_t>(synced_stripes.size()) >= v.spec.stripe_width;
  if (present.empty()) {
    common::api::SetCondition(
        s.conditions, MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse, "NotPlaced",
                                    "members are not placed yet"));
  } else if (!v.spec.consumer_node.empty() && v.status.node_name == v.spec.consumer_node &&
             !v.status.staged_path.empty() && all_stripes) {
    common::api::SetCondition(
        s.conditions, MakeCondition(v, inv, kConditionReady, ConditionStatus::kTrue, "Staged",
                                    fmt::format("array on {} staged at {}", v.status.node_name,
                                                v.status.staged_path)));
  } else {
    std::string why = !all_stripes ? "no synced copy of every stripe yet"
                      : v.status.node_name != v.spec.consumer_node
                          ? fmt::format("array not assembled on consumer {}", v.spec.consumer_node)
                          : "staging path not reported yet";
    common::api::SetCondition(
        s.conditions,
        MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse, "NotStaged", why));
  }

  if (degraded_count > 0) {
    std::string msg = Join(degraded);
    if (!in.throttled.empty()) msg += "; " + in.throttled;
    common::api::SetCondition(
        s.conditions,
        MakeCondition(v, inv, kConditionDegraded, ConditionStatus::kTrue,
                      in.throttled.empty() ? "MembersNotSynced" : "RebuildThrottled", msg));
  } else {
    common::api::SetCondition(
        s.conditions,
        MakeCondition(
            v, inv, kConditionDegraded, ConditionStatus::kFalse, "AllMembersSynced",
            present.empty() ? "no members" : "no member is missing, faulty or out of sync"));
  }

  bool needs_growth = std::any_of(present.begin(), present.end(),
                                  [&](const v1::Member* m) { return m->size_bytes < want_size; });
  if (needs_growth && v.spec.stripe_width > 1) {
    common::api::SetCondition(
        s.conditions,
        MakeCondition(v, inv, kConditionResized, ConditionStatus::kFalse,
                      "RAID10ExpansionUnsupported",
                      fmt::format("capacityBytes {} needs members of {} bytes, but expanding a "
                                  "RAID10 volume (stripeWidth {}) is not supported yet",
                                  v.spec.capacity_bytes, want_size, v.spec.stripe_width)));
  } else if (expanding) {
    common::api::SetCondition(
        s.conditions, MakeCondition(v, inv, kConditionResized, ConditionStatus::kFalse, "Expanding",
                                    fmt::format("growing members to {} bytes", want_size)));
  } else if (!present.empty()) {
    common::api::SetCondition(
        s.conditions,
        MakeCondition(v, inv, kConditionResized, ConditionStatus::kTrue, "CapacityReached",
                      fmt::format("members hold {} bytes", v.spec.capacity_bytes)));
  }
  return s;
}

void PhaseEvents(const v1::MeshStorVolume& v, const v1::MeshStorVolumeStatus& next, Decision* d) {
  if (next.phase != v.status.phase && next.phase) {
    d->events.push_back(
        {"Normal", "PhaseChanged",
         fmt::format("Phase {} -> {}", v.status.phase ? v1::Name(*v.status.phase) : "none",
                     v1::Name(*next.phase))});
  }
  for (const char* type :
       {kConditionReady, kConditionDegraded, kConditionPlaceable, kConditionResized}) {
    const Condition* before = common::api::FindCondition(v.status.conditions, type);
    const Condition* after = common::api::FindCondition(next.conditions, type);
    if (after == nullptr) continue;
    if (before != nullptr && before->status == after->status && before->reason == after->reason) {
      continue;
    }
    bool warning =
        (std::string(type) == kConditionDegraded && after->status == ConditionStatus::kTrue) ||
        (std::string(type) != kConditionDegraded && after->status == ConditionStatus::kFalse &&
         after->reason != "NotPlaced" && after->reason != "NotStaged" &&
         after->reason != "Expanding");
    d->events.push_back(
        {warning ? "Warning" : "Normal", after->reason,
         fmt::format("{}={}: {}", type, common::api::ConditionStatusName(after->status),
                     after->message)});
  }
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
  for (const auto& d : inv.devices) {
    if (d->spec.node_name != m.node || d->spec.device != m.drive) continue;
    if (!d->status.updated_at) return v.metadata.creation_timestamp;
    const auto stale_at = *d->status.updated_at + inv.staleness;
    if (inv.now > stale_at) return d->status.updated_at;
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
  // Deletion.
  if (v.metadata.deletion_timestamp) {
    if (!HasFinalizer(v.metadata)) return {};
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
    for (const auto& n : inv.nodes) known.insert(n->metadata.name);
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
    return {};  // agents report teardown through status; their writes requeue us
  }

  // Invalid contents: a clear condition, no retry until the spec changes.
  if (common::Status valid = ValidateSpec(v.spec); !valid.ok()) {
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

  if (!HasFinalizer(v.metadata)) {
    v1::MeshStorVolume next = v;
    next.metadata.finalizers.push_back(kFinalizer);
    return SpecWrite(next);
  }

  Decision d;
  StatusInputs in;
  const auto present = Present(v);
  const int64_t size = v1::MemberSizeBytes(v.spec);
  const std::string& consumer = v.spec.consumer_node;

  if (present.empty() && !consumer.empty()) {
    // Initial placement: replicaCount nodes, the consumer first.
    PlacementRequest req{
        v.metadata.name, size, v.spec.sector_size, v.spec.stripe_width, v.spec.replica_count,
        consumer,        {}};
    for (const v1::Member& m : v.spec.members) req.exclude_nodes.insert(m.node);
    req.exclude_nodes.erase(consumer);
    auto placed = Place(req, inv);
    if (!placed.ok()) {
      in.placement_error = placed.status().message();
      d.placement_failed = true;
      MinRequeue(&d, limits.retry_interval);
    } else {
      v1::MeshStorVolume next = v;
      std::vector<std::string> where;
      common::Status st = common::OkStatus();
      for (size_t c = 0; c < placed->size() && st.ok(); ++c) {
        std::vector<std::pair<int32_t, std::optional<int32_t>>> slots;
        for (int32_t s = 0; s < v.spec.stripe_width; ++s) {
          slots.emplace_back(v1::SlotOf(v.spec.replica_count, s, static_cast<int32_t>(c)),
                             std::nullopt);
        }
        st = AddMembers(inv, (*placed)[c], slots, &next);
        where.push_back(fmt::format("{} ({})", (*placed)[c].node, Join((*placed)[c].drives)));
      }
      if (st.ok()) {
        Decision w = SpecWrite(next);
        w.events.push_back({"Normal", "Placed", fmt::format("Placed members on {}", Join(where))});
        return w;
      }
      in.placement_error = st.message();
      d.placement_failed = true;
      MinRequeue(&d, limits.retry_interval);
    }
  } else if (!present.empty()) {
    // Roles follow the consumer; exporters fence to the consumer named in spec.consumerNode.
    {
      v1::MeshStorVolume next = v;
      bool changed = false;
      for (v1::Member& m : next.spec.members) {
        if (m.state != v1::MemberState::kPresent) continue;
        auto role = m.node == consumer ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
        if (m.role != role) {
          m.role = role;
          changed = true;
        }
      }
      if (changed) {
        Decision w = SpecWrite(next);
        w.events.push_back({"Normal", "RolesUpdated",
                            fmt::format("Member roles follow consumer {}",
                                        consumer.empty() ? "(none)" : consumer)});
        return w;
      }
    }

    const auto nodes = PresentNodes(v);
    // Relocation: the consumer has no member yet.
    if (!consumer.empty() && !nodes.count(consumer)) {
      // The surplus copy: the one not Synced, else the one on the node the array was on, else
      // the last node in name order (deterministic).
      std::string surplus;
      for (const v1::Member* m : present) {
        if (!IsSynced(v, *m)) surplus = m->node;
      }
      if (surplus.empty() && nodes.count(v.status.node_name)) surplus = v.status.node_name;
      if (surplus.empty()) surplus = *nodes.rbegin();
      PlacementRequest req{v.metadata.name, size, v.spec.sector_size, v.spec.stripe_width, 1,
                           consumer,        {}};
      auto placed = Place(req, inv);
      if (!placed.ok()) {
        in.placement_error = placed.status().message();
        d.placement_failed = true;
        MinRequeue(&d, limits.retry_interval);
      } else {
        // New local members take the surplus copy's slots, or the free placeholder slots of a
        // single copy, and replace the surplus copy's member of the same stripe position.
        std::set<int32_t> used_slots;
        for (const v1::Member* m : present) {
          if (m->slot) used_slots.insert(*m->slot);
        }
        std::vector<std::pair<int32_t, std::optional<int32_t>>> slots;
        for (int32_t s = 0; s < v.spec.stripe_width; ++s) {
          const v1::Member* old = nullptr;
          for (const v1::Member* m : present) {
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
        common::Status st = AddMembers(inv, placed->front(), slots, &next);
        if (st.ok()) {
          Decision w = SpecWrite(next);
          w.relocations_started = 1;
          w.events.push_back({"Normal", "Relocating",
                              fmt::format("Adding a local member on {} to replace the copy on {}",
                                          consumer, surplus)});
          return w;
        }
        in.placement_error = st.message();
        d.placement_failed = true;
      }
    }

    // Replacement of members missing longer than memberMissingTimeout.
    const auto rebuilds = RebuildsByNode(inv);
    int cluster_rebuilds = 0;
    for (const auto& [node, n] : rebuilds) cluster_rebuilds += n;
    for (const v1::Member* m : present) {
      const v1::PartitionStatus* p = PartitionOf(v, *m);
      std::optional<common::api::Time> since;
      if (p == nullptr) {
        seconds check_after{0};
        since = SilentSince(v, *m, inv, &check_after);
        if (!since && check_after > seconds(0)) MinRequeue(&d, check_after);
        if (!since) continue;
      } else if (IsLost(p)) {
        since = p->missing_since ? p->missing_since : p->updated_at;
      } else {
        continue;
      }
      bool has_replacement = std::any_of(present.begin(), present.end(), [&](const v1::Member* r) {
        return r->replaces && *r->replaces == m->index;
      });
      if (has_replacement) continue;
      // Another member already fills this slot (or is on its way): no second replacement.
      bool slot_served = std::any_of(present.begin(), present.end(), [&](const v1::Member* o) {
        return o->index != m->index && o->slot == m->slot && !IsLost(PartitionOf(v, *o));
      });
      if (slot_served) continue;
      if (!since) continue;
      const auto deadline = *since + seconds(v.spec.member_missing_timeout);
      if (inv.now < deadline) {
        MinRequeue(&d, std::chrono::ceil<seconds>(deadline - inv.now));
        continue;
      }
      if (cluster_rebuilds >= limits.max_rebuilds_cluster) {
        in.throttled = fmt::format(
            "replacement of member {} waits: {} rebuilds running "
            "cluster-wide (cap {})",
            m->index, cluster_rebuilds, limits.max_rebuilds_cluster);
        MinRequeue(&d, limits.retry_interval);
        continue;
      }
      PlacementRequest req{v.metadata.name, size, v.spec.sector_size, 1, 1, "", nodes};
      for (const auto& [node, n] : rebuilds) {
        if (n >= limits.max_rebuilds_per_node) req.exclude_nodes.insert(node);
      }
      auto placed = Place(req, inv);
      if (!placed.ok()) {
        in.placement_error =
            fmt::format("replacing member {}: {}", m->index, placed.status().message());
        d.placement_failed = true;
        MinRequeue(&d, limits.retry_interval);
        continue;
      }
      v1::MeshStorVolume next = v;
      common::Status st = AddMembers(
          inv, placed->front(), {{m->slot.value_or(0), std::optional<int32_t>(m->index)}}, &next);
      if (!st.ok()) {
        in.placement_error = st.message();
        continue;
      }
      Decision w = SpecWrite(next);
      w.replacements_started = 1;
      w.events.push_back(
          {"Warning", "Replacing",
           fmt::format("Member {} on {} {} since {}; replacing it on {}", m->index, m->node,
                       p != nullptr ? v1::Name(p->state)
                                    : std::string_view("never reported (agent silent)"),
                       common::time::FormatRfc3339(*since), placed->front().node)});
      return w;
    }

    // Retire members whose replacement is Synced, and lost members whose slot a Synced member
    // now fills (never the last good copy).
    for (const v1::Member* r : present) {
      if (!IsSynced(v, *r)) continue;
      for (const v1::Member* old : present) {
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

    // Expansion (RAID1 only; RAID10 is refused in the Resized condition).
    if (v.spec.stripe_width == 1 &&
        std::any_of(present.begin(), present.end(),
                    [&](const v1::Member* m) { return m->size_bytes < size; })) {
      v1::MeshStorVolume next = v;
      for (v1::Member& m : next.spec.members) {
        if (m.state == v1::MemberState::kPresent && m.size_bytes < size) m.size_bytes = size;
      }
      Decision w = SpecWrite(next);
      w.expansions_started = 1;
      w.events.push_back({"Normal", "Expanding",
                          fmt::format("Growing members to {} bytes for capacity {}", size,
                                      v.spec.capacity_bytes)});
      return w;
    }
  }

  // No spec step: the status.
  v1::MeshStorVolumeStatus s = ComputeStatus(v, inv, in);
  if (s != v.status) {
    d.write = Decision::Write::kStatus;
    d.object = v;
    d.object.status = s;
    PhaseEvents(v, s, &d);
  }
  return d;
}

}  // namespace meshstor_operator
