#include "operator/status.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "common/api/v1alpha1/geometry.h"
#include "common/time/clock.h"
#include "operator/members.h"

namespace meshstor_operator {

namespace v1 = common::api::v1alpha1;
using common::api::Condition;
using common::api::ConditionStatus;
using std::chrono::seconds;

namespace {

std::string JoinInts(const std::vector<int32_t>& v) {
  std::string out;
  for (int32_t i : v) out += (out.empty() ? "" : ", ") + std::to_string(i);
  return out;
}

}  // namespace

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
  } else if (!v.status.start_blocked.empty() && !v.spec.consumer_node.empty() &&
             v.status.node_name != v.spec.consumer_node) {
    // The consumer may not start the array: a member that may hold acknowledged writes the
    // others lack is missing (docs/design.md §6.1).
    common::api::SetCondition(s.conditions,
                              MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse,
                                            kReasonWaitingForInSyncMember, v.status.start_blocked));
  } else if (!v.spec.consumer_node.empty() && v.status.node_name == v.spec.consumer_node &&
             !v.status.staged_path.empty() && all_stripes) {
    common::api::SetCondition(
        s.conditions, MakeCondition(v, inv, kConditionReady, ConditionStatus::kTrue, "Staged",
                                    fmt::format("array on {} staged at {}", v.status.node_name,
                                                v.status.staged_path)));
  } else if (!v.spec.consumer_node.empty() &&
             std::find(v.spec.fenced_nodes.begin(), v.spec.fenced_nodes.end(),
                       v.spec.consumer_node) != v.spec.fenced_nodes.end()) {
    common::api::SetCondition(
        s.conditions,
        MakeCondition(v, inv, kConditionReady, ConditionStatus::kFalse, "ConsumerFenced",
                      fmt::format("consumer {} was declared dead and is fenced; the volume runs "
                                  "again once it is staged on another node",
                                  v.spec.consumer_node)));
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

  if (const auto& f = v.status.forced_start) {
    common::api::SetCondition(
        s.conditions,
        MakeCondition(
            v, inv, kConditionForcedStart, ConditionStatus::kTrue, "ForcedStart",
            fmt::format(
                "started by force ({}={}) on node {} at {} from member(s) {}; in-sync member(s) "
                "{} were missing: acknowledged writes since {} may be lost; missing members "
                "rejoin only by a full rebuild",
                v1::kForceStartAnnotation, f->token, f->node.empty() ? "?" : f->node,
                f->at ? common::time::FormatRfc3339(*f->at) : "?", JoinInts(f->from_members),
                f->missing_members.empty() ? "none" : JoinInts(f->missing_members),
                f->loss_window_since ? common::time::FormatRfc3339(*f->loss_window_since)
                                     : "an unrecorded time")));
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
  std::vector<EventNote> changes;
  for (const char* type : {kConditionReady, kConditionDegraded, kConditionPlaceable,
                           kConditionResized, kConditionForcedStart}) {
    const Condition* before = common::api::FindCondition(v.status.conditions, type);
    const Condition* after = common::api::FindCondition(next.conditions, type);
    if (after == nullptr) continue;
    // A forced start is announced once per start (its message names the token).
    const bool forced = std::string(type) == kConditionForcedStart;
    if (before != nullptr && before->status == after->status && before->reason == after->reason &&
        (!forced || before->message == after->message)) {
      continue;
    }
    bool warning =
        forced ||
        (std::string(type) == kConditionDegraded && after->status == ConditionStatus::kTrue) ||
        (std::string(type) != kConditionDegraded && after->status == ConditionStatus::kFalse &&
         after->reason != "NotPlaced" && after->reason != "NotStaged" &&
         after->reason != "Expanding");
    changes.push_back(
        {warning ? "Warning" : "Normal", after->reason,
         fmt::format("{}={}: {}", type, common::api::ConditionStatusName(after->status),
                     after->message)});
  }
  if (next.phase != v.status.phase && next.phase) {
    // One Event for the phase change and the Normal condition changes that came with it (they
    // used to be an Event each: ~8 per volume on its way to Synced); Warnings stay on their own.
    std::string note =
        fmt::format("Phase {} -> {}", v.status.phase ? v1::Name(*v.status.phase) : "none",
                    v1::Name(*next.phase));
    for (const EventNote& c : changes) {
      if (c.type == "Normal") note += fmt::format("; {} ({})", c.note, c.reason);
    }
    d->events.push_back({"Normal", "PhaseChanged", std::move(note)});
    std::erase_if(changes, [](const EventNote& c) { return c.type == "Normal"; });
  }
  for (EventNote& c : changes) d->events.push_back(std::move(c));
}

}  // namespace meshstor_operator
