// The consumer side of a volume: the members' devices, the MD array, XFS and the mounts.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/volume.h"
#include "agent/volume_internal.h"
#include "common/api/v1alpha1/geometry.h"
#include "common/time/clock.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using common::StatusCode;
using volume_internal::Fail;
using volume_internal::FindPartition;
using volume_internal::Reported;

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

const sys::MdMemberState* ArrayMember(const sys::MdArrayState& a, std::string_view device) {
  const std::string kname = BaseName(device);
  for (const auto& m : a.members) {
    if (m.kernel_name == kname) return &m;
  }
  return nullptr;
}

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string JoinIndexes(const std::vector<int32_t>& v) {
  return fmt::format("{}", fmt::join(v, ", "));
}

std::string TimeText(const std::optional<common::api::Time>& t) {
  if (!t) return "an unrecorded time";
  return common::time::FormatRfc3339(*t);
}

}  // namespace

// Members' devices on the consumer, by index; nullopt while unreachable.
struct VolumeReconciler::MemberDevice {
  const v1::Member* member = nullptr;
  std::optional<std::string> device;
};

common::Result<std::optional<std::string>> VolumeReconciler::MemberDevicePath(
    const v1::MeshStorVolume& v, const v1::Member& m, const Peers& peers, bool connect,
    bool* scanning) {
  const sys::MemberRef ref{v.metadata.name, static_cast<uint32_t>(m.index)};
  if (m.node == settings_.node) {
    ASSIGN_OR_RETURN(auto parts, k_.partitions->List("/dev/" + m.drive));
    ASSIGN_OR_RETURN(auto found, sys::FindMember(parts, ref, "/dev/" + m.drive));
    if (!found) return std::optional<std::string>();
    return std::optional<std::string>(found->device_path);
  }
  ASSIGN_OR_RETURN(std::string nqn, sys::SubsystemNqn(m.node, settings_.node));
  const sys::NvmeNamespaceSelector selector{static_cast<uint32_t>(m.namespace_id),
                                            sys::PartitionUuid(ref)};
  auto device = k_.host->FindNamespaceDevice(nqn, selector);
  if (device.ok()) return std::optional<std::string>(*device);
  if (!connect) return std::optional<std::string>();
  auto peer = peers.find(m.node);
  if (peer == peers.end() || peer->second.address.empty()) {
    return common::UnavailableError("node {} has not published its NVMe/TCP address", m.node);
  }
  ASSIGN_OR_RETURN(auto identity, k_.host->GetHostIdentity());
  sys::NvmeConnectSpec spec;
  spec.address = peer->second.address;
  spec.service = peer->second.service;
  spec.subsys_nqn = nqn;
  spec.host_nqn = identity.host_nqn;
  spec.host_id = identity.host_id;
  auto controller = k_.host->Connect(spec);
  if (!controller.ok()) return std::optional<std::string>();  // unreachable: reported Missing
  device = k_.host->FindNamespaceDevice(nqn, selector);
  if (device.ok()) return std::optional<std::string>(*device);
  // A new controller's namespaces show up after the kernel's scan; their uevents wake the next
  // pass. An existing controller without the namespace: it is not exported to us (Missing).
  if (scanning != nullptr) *scanning = controller->created;
  return std::optional<std::string>();
}

// The state one consumer pass shares between its steps.
struct VolumeReconciler::ConsumerPass {
  const v1::MeshStorVolume& v;
  const Peers& peers;
  VolumeOutcome& out;
  const std::string name;       // the MD array's name
  const std::string uuid;       // the MD array's UUID
  const std::string what;       // context of every error of this pass
  const common::api::Time now;  // when the pass ran
  const std::string staged;     // where the volume is staged on this node
  ConsumerReport rep;
  std::vector<MemberDevice> devices;  // present members, in spec order
  bool all_available = true;          // every present member's device is reachable
  bool missing_past_grace = true;     // every unreachable member is past assemble_grace
  sys::MdArrayState array;            // MD's view, once the array runs
  // Members whose copy diverged at a forced start: they rejoin only by a full rebuild.
  std::set<int32_t> diverged;

  // Ends the pass early, reporting what it observed so far. Always false.
  bool Halt() {
    out.consumer = rep;
    return false;
  }
};

VolumeReconciler::ConsumerPass VolumeReconciler::MakeConsumerPass(const v1::MeshStorVolume& v,
                                                                  const Peers& peers,
                                                                  VolumeOutcome& out,
                                                                  common::api::Time now) const {
  return ConsumerPass{v,
                      peers,
                      out,
                      sys::MdArrayName(v.metadata.name),
                      sys::MdArrayUuid(v.metadata.name),
                      fmt::format("volume {} on consumer {}", v.metadata.name, settings_.node),
                      now,
                      ConsumerStagingPath(settings_, v)};
}

void VolumeReconciler::ReconcileConsumer(const v1::MeshStorVolume& v, const Peers& peers,
                                         VolumeOutcome& out) {
  ConsumerPass pass =
      MakeConsumerPass(v, peers, out, std::chrono::floor<std::chrono::seconds>(clock_.Now()));
  if (v.status.forced_start) {
    pass.diverged.insert(v.status.forced_start->diverged_members.begin(),
                         v.status.forced_start->diverged_members.end());
  }
  if (!ConsumesHere(v)) return EnsureTornDown(pass);
  CollectMembers(pass);
  if (!EnsureArray(pass)) return;
  ConvergeMembership(pass);
  // XFS exactly once, then the staging mount and the publish targets.
  EnsureFormatted(pass);
  if (EnsureStaged(pass)) {
    EnsureGrown(pass);
    EnsurePublished(pass);
  }
  EnsureUnpublished(pass);
  EnsureOldStagingUnmounted(pass);
  ReportArray(pass);
}

bool VolumeReconciler::ConsumesHere(const v1::MeshStorVolume& v) const {
  const bool deleting =
      v.metadata.deletion_timestamp.has_value() || v.status.phase == v1::VolumePhase::kDeleting;
  // A fenced node (declared dead, docs/design.md §5.1) never runs the array again: whatever of
  // it is still here is torn down, even while the volume still names it as the consumer.
  return v.spec.consumer_node == settings_.node && !deleting && !IsFenced(v, settings_.node);
}

void VolumeReconciler::EnsureTornDown(ConsumerPass& pass) {
  auto running = k_.md->GetArray(pass.name);
  bool ours_in_status = pass.v.status.node_name == settings_.node;
  if (running.ok() || ours_in_status) {
    if (auto s = TearDownConsumer(pass.v, pass.out); !s.ok()) {
      Fail(pass.out, s.WithContext(pass.what));
    }
  }
  // Nobody consumes the volume: a start that waited for an in-sync member waits no more (a new
  // consumer reports its own reason).
  if (!pass.v.status.start_blocked.empty() && !ConsumesHere(pass.v) &&
      (pass.v.spec.consumer_node.empty() || pass.v.metadata.deletion_timestamp)) {
    if (!pass.out.consumer) pass.out.consumer = ConsumerReport{};
    pass.out.consumer->start_blocked = "";
  }
}

void VolumeReconciler::CollectMembers(ConsumerPass& pass) {
  const v1::MeshStorVolume& v = pass.v;
  for (const v1::Member& m : v.spec.members) {
    if (m.state != v1::MemberState::kPresent) continue;
    MemberDevice d{&m, std::nullopt};
    bool scanning = false;
    if (Reported(v, m)) {
      auto path = MemberDevicePath(v, m, pass.peers, /*connect=*/true, &scanning);
      if (path.ok()) {
        d.device = *path;
      } else {
        Fail(pass.out, path.status().WithContext(pass.what));
      }
    }
    if (!d.device) {
      pass.all_available = false;
      if (!Reported(v, m)) {
        pass.missing_past_grace = false;  // not created yet: wait for its owner
      } else if (scanning) {
        // Connected just now, not listed yet: neither Missing nor a reason to start without it.
        pass.missing_past_grace = false;
      } else {
        const v1::PartitionStatus* ps = FindPartition(v.status, m.index);
        MemberObservation o;
        o.state = v1::PartitionState::kMissing;
        o.missing_since = ps && ps->missing_since ? *ps->missing_since : pass.now;
        o.message = "unreachable from the consumer";
        if (pass.now - *o.missing_since < settings_.assemble_grace) {
          pass.missing_past_grace = false;
        }
        pass.rep.members[m.index] = o;
      }
    }
    pass.devices.push_back(d);
  }
}

bool VolumeReconciler::EnsureArray(ConsumerPass& pass) {
  auto array = k_.md->GetArray(pass.name);
  if (array.ok()) {
    pass.array = std::move(*array);
    return true;
  }
  if (array.status().code() != StatusCode::kNotFound) {
    Fail(pass.out, array.status().WithContext(pass.what));
    return false;
  }
  if (pass.devices.empty()) {
    return pass.Halt();  // staged before the operator placed any member: nothing to do yet
  }
  if (!StartArray(pass)) return false;
  auto started = k_.md->GetArray(pass.name);
  if (!started.ok()) {
    Fail(pass.out, started.status().WithContext(pass.what));
    return pass.Halt();
  }
  pass.array = std::move(*started);
  return true;
}

// A reachable member whose superblock carries this array.
struct VolumeReconciler::Carrier {
  const MemberDevice* d = nullptr;
  uint64_t events = 0;  // its superblock's MD event count
  sys::MdMember md() const { return {*d->device, d->member->role == v1::MemberRole::kRemote}; }
};

// Not running: assemble from members that carry this array, or create a new one. Once the volume
// has an in-sync record, only under the stale-member rule (StartGuarded).
bool VolumeReconciler::StartArray(ConsumerPass& pass) {
  std::vector<Carrier> carriers;
  bool foreign = false;
  for (const auto& d : pass.devices) {
    if (!d.device) continue;
    auto sb = k_.md->Examine(*d.device);
    if (sb.ok() && sb->array_uuid == pass.uuid) {
      carriers.push_back({&d, sb->events});
      pass.rep.member_events[d.member->index] = static_cast<int64_t>(sb->events);
    } else if (sb.ok()) {
      foreign = true;
      pass.rep.members[d.member->index] = {v1::PartitionState::kFaulty, std::nullopt,
                                           "carries MD array " + sb->array_uuid + ", not this one"};
    } else if (sb.status().code() != StatusCode::kNotFound) {
      Fail(pass.out, sb.status().WithContext(pass.what));
    }
  }
  pass.rep.start_blocked = "";
  if (pass.v.status.in_sync) return StartGuarded(pass, carriers);
  // No in-sync record yet (a volume from before the guard): as before, once; the running array
  // then records its in-sync set.
  if (carriers.empty()) return CreateArray(pass, foreign);
  std::vector<sys::MdMember> members;
  for (const auto& c : carriers) members.push_back(c.md());
  return AssembleArray(pass, members);
}

bool VolumeReconciler::StartGuarded(ConsumerPass& pass, const std::vector<Carrier>& carriers) {
  const v1::MeshStorVolume& v = pass.v;
  const v1::InSyncRecord& rec = *v.status.in_sync;
  // The in-sync members the spec still holds (a retired member left the array, and its
  // replacement was in sync before it was retired).
  std::vector<int32_t> required;
  for (int32_t index : rec.members) {
    for (const v1::Member& m : v.spec.members) {
      if (m.index == index && m.state == v1::MemberState::kPresent) required.push_back(index);
    }
  }
  std::vector<Carrier> from;
  std::vector<std::string> waiting;
  for (int32_t index : required) {
    auto c = std::find_if(carriers.begin(), carriers.end(),
                          [&](const Carrier& k) { return k.d->member->index == index; });
    // Every member in sync when the record was made carried at least the array's count then
    // (less one: MD steps back a clean/dirty transition); a lower count is an older copy than
    // the one that was in sync (restored, or not the copy the record saw).
    if (c != carriers.end() && rec.events &&
        c->events + sys::kMdEventMargin < static_cast<uint64_t>(*rec.events)) {
      waiting.push_back(fmt::format(
          "member {} on node {} was in sync at {} with MD event count {}, but the copy present "
          "carries only {}: it is an older copy and may lack acknowledged writes",
          index, c->d->member->node, TimeText(rec.recorded_at), *rec.events, c->events));
      continue;
    }
    if (c != carriers.end()) {
      from.push_back(*c);
      continue;
    }
    const MemberDevice* d = nullptr;
    for (const auto& dev : pass.devices) {
      if (dev.member->index == index) d = &dev;
    }
    std::string why = d == nullptr || !d->device
                          ? "is unreachable from the consumer"
                          : "is reachable but its superblock does not carry the array";
    waiting.push_back(fmt::format(
        "member {} on node {} was in sync at {} and may hold acknowledged writes the others "
        "lack; it {}",
        index, d != nullptr ? d->member->node : std::string("?"), TimeText(rec.recorded_at), why));
  }
  if (required.empty()) {
    waiting.push_back(fmt::format("every member of the last in-sync set ({}) is retired",
                                  JoinIndexes(rec.members)));
  }
  if (waiting.empty()) {
    // Every member that may hold the newest acknowledged writes is here: MD takes the freshest
    // by event count among them; members outside the set rejoin afterwards (ConvergeMembership).
    std::vector<sys::MdMember> members;
    for (const auto& c : from) members.push_back(c.md());
    return AssembleArray(pass, members, /*allow_degraded=*/true);
  }
  auto annotation = v.metadata.annotations.find(std::string(v1::kForceStartAnnotation));
  const std::string token = annotation == v.metadata.annotations.end() ? "" : annotation->second;
  if (!token.empty() && (!v.status.forced_start || v.status.forced_start->token != token)) {
    if (!carriers.empty()) return ForceStart(pass, carriers, required, token);
    waiting.push_back(fmt::format("a forced start ({}={}) waits for any member carrying array {}",
                                  v1::kForceStartAnnotation, token, pass.uuid));
  }
  pass.rep.start_blocked = fmt::format(
      "not starting the array: {}. Set annotation {} to a new value to start from the best "
      "present copy, losing the writes acknowledged since {} that only the missing members hold",
      fmt::join(waiting, "; "), v1::kForceStartAnnotation, TimeText(rec.recorded_at));
  pass.out.retry_soon = true;
  return pass.Halt();
}

// The administrator's force: the present copy with the highest MD event count is the best one
// left (the members that diverged at an earlier force only when nothing else is here).
bool VolumeReconciler::ForceStart(ConsumerPass& pass, const std::vector<Carrier>& carriers,
                                  const std::vector<int32_t>& required, const std::string& token) {
  std::vector<Carrier> candidates;
  for (const auto& c : carriers) {
    if (!pass.diverged.count(c.d->member->index)) candidates.push_back(c);
  }
  if (candidates.empty()) candidates = carriers;
  uint64_t best = 0;
  for (const auto& c : candidates) best = std::max(best, c.events);
  std::vector<sys::MdMember> members;
  v1::ForcedStart record;
  record.token = token;
  record.at = pass.now;
  record.node = settings_.node;
  for (const auto& c : candidates) {
    if (c.events != best) continue;
    members.push_back(c.md());
    record.from_members.push_back(c.d->member->index);
  }
  std::sort(record.from_members.begin(), record.from_members.end());
  for (int32_t index : required) {
    if (!Contains(record.from_members, index)) record.missing_members.push_back(index);
  }
  record.loss_window_since = pass.v.status.in_sync->recorded_at;
  std::set<int32_t> diverged = pass.diverged;
  diverged.insert(record.missing_members.begin(), record.missing_members.end());
  for (int32_t index : record.from_members) diverged.erase(index);
  record.diverged_members.assign(diverged.begin(), diverged.end());
  if (!AssembleArray(pass, members, /*allow_degraded=*/true, /*forced=*/true)) return false;
  pass.diverged = diverged;
  pass.out.notices.push_back(fmt::format(
      "{}: started by force ({}={}) from member(s) {} (MD event count {}); in-sync member(s) {} "
      "were missing: acknowledged writes since {} may be lost; they rejoin only by a full "
      "rebuild",
      pass.what, v1::kForceStartAnnotation, token, JoinIndexes(record.from_members), best,
      JoinIndexes(record.missing_members), TimeText(record.loss_window_since)));
  pass.rep.forced_start = std::move(record);
  return true;
}

bool VolumeReconciler::CreateArray(ConsumerPass& pass, bool foreign) {
  const v1::MeshStorVolume& v = pass.v;
  if (v.spec.formatted_at) {
    Fail(pass.out, common::FailedPreconditionError(
                       "{}: formatted already, but no reachable member carries array {}: not "
                       "creating a new, empty array",
                       pass.what, pass.uuid));
    return pass.Halt();
  }
  if (!pass.all_available || foreign) {
    pass.out.retry_soon = true;
    return pass.Halt();
  }
  const int32_t slots = v1::SlotCount(v.spec);
  sys::MdCreateSpec spec;
  spec.name = pass.name;
  spec.uuid = pass.uuid;
  spec.level = v.spec.stripe_width > 1 ? sys::MdLevel::kRaid10 : sys::MdLevel::kRaid1;
  spec.members.assign(static_cast<size_t>(slots), {std::string(sys::kMdMissing), false});
  spec.members_zeroed = true;  // every member was zeroed by its owner and never used
  spec.bitmap_chunk_kib = sys::MdBitmapChunkKib(
      static_cast<uint64_t>(v1::MemberSizeBytes(v.spec) - v1::kMdDataOffsetBytes));
  int32_t next = 0;
  for (const auto& d : pass.devices) {
    int32_t slot = d.member->slot.value_or(next);
    next = std::max(next, slot) + 1;
    if (slot < 0 || slot >= slots) {
      Fail(pass.out, common::InvalidArgumentError("{}: member {} has slot {} outside 0..{}",
                                                  pass.what, d.member->index, slot, slots - 1));
      return pass.Halt();
    }
    spec.members[static_cast<size_t>(slot)] = {*d.device,
                                               d.member->role == v1::MemberRole::kRemote};
  }
  if (auto s = k_.md->Create(spec); !s.ok()) {
    Fail(pass.out, s.WithContext(pass.what));
    return pass.Halt();
  }
  return true;
}

bool VolumeReconciler::AssembleArray(ConsumerPass& pass, const std::vector<sys::MdMember>& carriers,
                                     bool allow_degraded, bool forced) {
  if (!forced && !pass.all_available && !pass.missing_past_grace) {
    pass.out.retry_soon = true;  // give unreachable members the grace period first
    return pass.Halt();
  }
  sys::MdAssembleSpec spec{pass.name, pass.uuid, carriers,
                           /*allow_degraded=*/allow_degraded || !pass.all_available};
  if (auto s = k_.md->Assemble(spec); !s.ok()) {
    Fail(pass.out, s.WithContext(pass.what));
    return pass.Halt();
  }
  return true;
}

void VolumeReconciler::ConvergeMembership(ConsumerPass& pass) {
  bool changed = false;
  if (EnsureMembersAdded(pass)) changed = true;
  if (EnsureRetiredRemoved(pass)) changed = true;
  if (EnsureFaultyRemoved(pass)) changed = true;
  if (changed) {
    auto again = k_.md->GetArray(pass.name);
    if (again.ok()) pass.array = std::move(*again);
  }
}

// Running: bring back or add every reachable member that is not in the array.
bool VolumeReconciler::EnsureMembersAdded(ConsumerPass& pass) {
  bool changed = false;
  for (const auto& d : pass.devices) {
    if (!d.device) continue;
    const sys::MdMemberState* in = ArrayMember(pass.array, *d.device);
    if (in != nullptr && sys::IsPlainSpare(*in) && d.member->replaces) {
      // A replacement that joined as a plain spare (the member it replaces was re-added in
      // the same pass, or the agent died between the add and the replace) would stay idle.
      auto resumed = ResumeReplacement(pass, d);
      if (!resumed.ok()) Fail(pass.out, resumed.status().WithContext(pass.what));
      if (resumed.ok() && *resumed) changed = true;
      continue;
    }
    if (in != nullptr && !in->faulty) continue;
    if (in != nullptr && in->faulty) {
      // A member that failed but whose device is back: take it out, re-add it below next pass.
      if (auto s = k_.md->Remove(pass.name, *d.device); !s.ok()) {
        Fail(pass.out, s.WithContext(pass.what));
      }
      changed = true;
      continue;
    }
    if (auto s = JoinArray(pass, d); !s.ok()) {
      // Reachable but it cannot rejoin (e.g. the exporter's drive died under a live NVMe/TCP
      // path: every write to it fails). Reported Faulty so that the operator replaces it after
      // memberMissingTimeout; otherwise its last state (Synced) would stand. Retried each pass.
      pass.rep.members[d.member->index] = {v1::PartitionState::kFaulty, std::nullopt,
                                           "cannot rejoin the array: " + s.message()};
      Fail(pass.out, s.WithContext(pass.what));
    }
    changed = true;
  }
  return changed;
}

// The device of the member `d` replaces while it is an in-sync member of the array that nothing
// replaces yet; nullopt otherwise.
std::optional<std::string> VolumeReconciler::ReplacedDevice(ConsumerPass& pass,
                                                            const MemberDevice& d) {
  if (!d.member->replaces) return std::nullopt;
  for (const v1::Member& old : pass.v.spec.members) {
    if (old.index != *d.member->replaces) continue;
    auto path = MemberDevicePath(pass.v, old, pass.peers, /*connect=*/false);
    if (!path.ok() || !*path) return std::nullopt;
    const sys::MdMemberState* om = ArrayMember(pass.array, **path);
    if (om == nullptr || om->faulty) return std::nullopt;
    return **path;
  }
  return std::nullopt;
}

common::Result<bool> VolumeReconciler::ResumeReplacement(ConsumerPass& pass,
                                                         const MemberDevice& d) {
  // Only while the array is whole: a degraded array takes the spare into its free slot itself.
  if (pass.array.degraded > 0) return false;
  auto old_device = ReplacedDevice(pass, d);
  if (!old_device) return false;
  const sys::MdMemberState* om = ArrayMember(pass.array, *old_device);
  if (om == nullptr || !om->in_sync || om->want_replacement) return false;
  RETURN_IF_ERROR(k_.md->Replace(pass.name, *old_device,
                                 {*d.device, d.member->role == v1::MemberRole::kRemote}));
  return true;
}

common::Status VolumeReconciler::JoinArray(ConsumerPass& pass, const MemberDevice& d) {
  sys::MdMember member{*d.device, d.member->role == v1::MemberRole::kRemote};
  auto sb = k_.md->Examine(*d.device);
  if (!sb.ok() && sb.status().code() == StatusCode::kNotFound) {
    // A new member: full sync. A replacement of a member still in service is a hot replace
    // (redundancy kept while it copies); otherwise it fills a free slot.
    std::optional<std::string> old_device = ReplacedDevice(pass, d);
    return old_device ? k_.md->Replace(pass.name, *old_device, member)
                      : k_.md->Add(pass.name, member);
  }
  if (sb.ok() && sb->array_uuid == pass.uuid && pass.diverged.count(d.member->index)) {
    // Missing at a forced start: its copy holds writes the running array never saw (or lacks
    // some it did not write over): a bitmap catch-up would leave the mirrors different.
    const auto& forced = pass.rep.forced_start ? pass.rep.forced_start : pass.v.status.forced_start;
    return AddAsNewMember(
        pass.array, *d.device, member,
        fmt::format("its copy diverged: it was missing when the array was started by force at {}",
                    TimeText(forced ? forced->at : std::nullopt)),
        pass.rep.members[d.member->index], pass.out);
  }
  const v1::PartitionStatus* ps = FindPartition(pass.v.status, d.member->index);
  if (sb.ok() && sb->array_uuid == pass.uuid && ps != nullptr && ps->left_at_events &&
      sb->events > static_cast<uint64_t>(*ps->left_at_events)) {
    // Its copy counted past the array's count at its recorded exit: an array was run from it
    // elsewhere after it left, so it holds writes this array never saw (docs/design.md §6.1).
    // MD's own test (not ahead of the array's count) misses that whenever this array counted
    // further; a bitmap catch-up would leave the mirrors different.
    return AddAsNewMember(
        pass.array, *d.device, member,
        fmt::format("its copy diverged: its MD event count {} is above {}, the array's when its "
                    "exit was recorded, so it was written after it left the array",
                    sb->events, *ps->left_at_events),
        pass.rep.members[d.member->index], pass.out);
  }
  if (sb.ok() && sb->array_uuid == pass.uuid) {
    // Bitmap catch-up (the array it left is the same lineage: no forced start since); refused
    // when it diverged otherwise.
    common::Status s = k_.md->ReAdd(pass.name, *d.device);
    if (s.code() == StatusCode::kFailedPrecondition) {
      s = AddAsNewMember(pass.array, *d.device, member, s.message(),
                         pass.rep.members[d.member->index], pass.out);
    }
    return s;
  }
  if (sb.ok()) {
    pass.rep.members[d.member->index] = {v1::PartitionState::kFaulty, std::nullopt,
                                         "carries MD array " + sb->array_uuid + ", not this one"};
    return common::OkStatus();
  }
  return sb.status();
}

// Retired members leave the array once it has another in-sync copy.
bool VolumeReconciler::EnsureRetiredRemoved(ConsumerPass& pass) {
  bool changed = false;
  for (const v1::Member& m : pass.v.spec.members) {
    if (m.state != v1::MemberState::kRetired) continue;
    auto path = MemberDevicePath(pass.v, m, pass.peers, /*connect=*/false);
    if (!path.ok() || !*path) continue;
    const sys::MdMemberState* in = ArrayMember(pass.array, **path);
    if (in == nullptr) continue;
    int in_sync_others = 0;
    for (const auto& am : pass.array.members) {
      if (am.in_sync && !am.faulty && am.kernel_name != in->kernel_name) ++in_sync_others;
    }
    if (in_sync_others == 0) {
      Fail(pass.out, common::FailedPreconditionError(
                         "{}: member {} is retired but is the last in-sync copy; keeping it",
                         pass.what, m.index));
      continue;
    }
    if (auto s = k_.md->Fail(pass.name, **path); !s.ok()) {
      Fail(pass.out, s.WithContext(pass.what));
    }
    if (auto s = k_.md->Remove(pass.name, **path); !s.ok()) {
      Fail(pass.out, s.WithContext(pass.what));
    }
    changed = true;
  }
  return changed;
}

// Faulty members whose device is gone.
bool VolumeReconciler::EnsureFaultyRemoved(ConsumerPass& pass) {
  for (const auto& am : pass.array.members) {
    if (am.faulty) {
      if (auto s = k_.md->Remove(pass.name, "failed"); !s.ok()) {
        Fail(pass.out, s.WithContext(pass.what));
      }
      return true;
    }
  }
  return false;
}

void VolumeReconciler::EnsureFormatted(ConsumerPass& pass) {
  if (pass.v.spec.formatted_at) return;
  sys::XfsOptions xfs;
  xfs.sector_size = static_cast<uint32_t>(pass.v.spec.sector_size);
  auto formatted = k_.fs->EnsureXfs(pass.array.device, xfs);
  if (!formatted.ok()) {
    Fail(pass.out, formatted.status().WithContext(pass.what));
  } else {
    pass.out.set_formatted_at = pass.now;
  }
}

bool VolumeReconciler::EnsureStaged(ConsumerPass& pass) {
  if (!pass.v.spec.formatted_at && !pass.out.set_formatted_at) return false;
  common::Status s = CheckMountPath(settings_, pass.staged, "spec.stagingPath");
  common::Result<std::optional<sys::MountEntry>> mounted = std::optional<sys::MountEntry>();
  if (s.ok()) {
    mounted = k_.fs->GetMount(pass.staged);
    s = mounted.status();
  }
  if (s.ok() && !*mounted) {
    s = k_.fs->EnsureDirectory(pass.staged);
    if (s.ok()) s = k_.fs->Mount(pass.array.device, pass.staged, "xfs", {});
  }
  if (!s.ok()) {
    Fail(pass.out, s.WithContext(pass.what));
    return false;
  }
  pass.rep.staged_path = pass.staged;
  return true;
}

void VolumeReconciler::EnsureGrown(ConsumerPass& pass) {
  if (auto fs = GrowIfNeeded(pass.v, pass.array, pass.staged); fs.ok()) {
    pass.rep.filesystem_bytes = static_cast<int64_t>(*fs);
  } else {
    Fail(pass.out, fs.status().WithContext(pass.what));
  }
}

void VolumeReconciler::EnsurePublished(ConsumerPass& pass) {
  for (const auto& t : pass.v.spec.publish_targets) {
    common::Status b = CheckMountPath(settings_, t.path, "publish target");
    if (b.ok()) b = k_.fs->EnsureDirectory(t.path);
    if (b.ok()) b = k_.fs->BindMount(pass.staged, t.path, t.read_only);
    if (b.ok()) {
      pass.rep.published_targets.push_back(t.path);
    } else {
      Fail(pass.out, b.WithContext(fmt::format("{}: publishing at {}", pass.what, t.path)));
    }
  }
}

void VolumeReconciler::EnsureUnpublished(ConsumerPass& pass) {
  const v1::MeshStorVolume& v = pass.v;
  for (const auto& t : v.status.published_targets) {
    bool wanted = std::any_of(v.spec.publish_targets.begin(), v.spec.publish_targets.end(),
                              [&](const v1::PublishTarget& p) { return p.path == t; });
    if (wanted) continue;
    // The target directory is ours (NodePublishVolume created it): gone with the mount.
    common::Status s = k_.fs->Unmount(t);
    if (s.ok()) s = k_.fs->RemoveMountPoint(t);
    if (!s.ok()) {
      Fail(pass.out, s.WithContext(fmt::format("{}: unpublishing {}", pass.what, t)));
      pass.rep.published_targets.push_back(t);  // still published
    }
  }
}

// A staging path the volume no longer names (moved by the shim, or an older agent's own
// directory): unmounted once nothing is bound from it.
void VolumeReconciler::EnsureOldStagingUnmounted(ConsumerPass& pass) {
  const v1::MeshStorVolume& v = pass.v;
  if (!v.status.staged_path.empty() && v.status.staged_path != pass.staged &&
      v.status.node_name == settings_.node && pass.rep.published_targets.empty()) {
    auto old = k_.fs->GetMount(v.status.staged_path);
    if (old.ok() && *old) {
      if (auto s = k_.fs->Unmount(v.status.staged_path); !s.ok()) {
        Fail(pass.out,
             s.WithContext(fmt::format("{}: unmounting the old staging path", pass.what)));
      }
    }
  }
}

// Report what MD says.
void VolumeReconciler::ReportArray(ConsumerPass& pass) {
  const v1::MeshStorVolume& v = pass.v;
  const sys::MdArrayState& a = pass.array;
  ConsumerReport& rep = pass.rep;
  rep.assembled = true;
  int active = 0, failed = 0;
  for (const auto& am : a.members) {
    if (am.faulty) {
      ++failed;
    } else if (am.in_sync) {
      ++active;
    }
  }
  const bool syncing = a.sync_action != "idle" && !a.sync_action.empty() && a.sync_total_sectors;
  rep.md_state = a.degraded > 0 ? (syncing ? "recovering" : "degraded")
                                : (syncing ? "resyncing" : a.array_state);
  rep.total_devices = a.raid_disks;
  rep.active_devices = active;
  rep.failed_devices = failed;
  // Slots no member fills, minus the permanent placeholder of a single copy.
  int placeholders = v.spec.replica_count == 1 ? std::max(v.spec.stripe_width, 1) : 0;
  rep.down_devices =
      std::max(0, a.raid_disks - static_cast<int>(a.members.size()) + failed - placeholders);
  if (syncing) {
    rep.sync_percentage = fmt::format("{:.1f}%", 100.0 * static_cast<double>(a.sync_done_sectors) /
                                                     static_cast<double>(a.sync_total_sectors));
  } else {
    rep.sync_percentage = "100%";
  }
  for (const auto& d : pass.devices) {
    if (!d.device || rep.members.count(d.member->index)) continue;
    const sys::MdMemberState* in = ArrayMember(a, *d.device);
    if (in == nullptr) continue;  // not added yet: the owner's state stands
    MemberObservation o;
    o.state = in->faulty              ? v1::PartitionState::kFaulty
              : in->in_sync           ? v1::PartitionState::kSynced
              : in->spare && !syncing ? v1::PartitionState::kSpare
                                      : v1::PartitionState::kSyncing;
    rep.members[d.member->index] = o;
  }
  RecordInSync(pass);
  rep.start_blocked = "";
  pass.out.consumer = std::move(rep);
}

std::optional<VolumeOutcome> VolumeReconciler::ObserveInSync(const v1::MeshStorVolume& v,
                                                             const Peers& peers) {
  if (!ConsumesHere(v)) return std::nullopt;
  VolumeOutcome out;
  out.observed_at = std::chrono::floor<std::chrono::seconds>(clock_.Now());
  ConsumerPass pass = MakeConsumerPass(v, peers, out, out.observed_at);
  auto array = k_.md->GetArray(pass.name);
  if (!array.ok()) return std::nullopt;
  pass.array = std::move(*array);
  for (const v1::Member& m : v.spec.members) {
    if (m.state != v1::MemberState::kPresent || !Reported(v, m)) continue;
    auto path = MemberDevicePath(v, m, peers, /*connect=*/false);
    pass.devices.push_back({&m, path.ok() ? *path : std::nullopt});
  }
  RecordInSync(pass);
  if (!pass.rep.in_sync || (v.status.in_sync && v.status.in_sync->members == *pass.rep.in_sync)) {
    return std::nullopt;
  }
  out.consumer = std::move(pass.rep);
  return out;
}

// status.inSync follows MD's in-sync members of the running array: shrunk as soon as MD fails or
// removes one, grown once one is fully in sync. A member in sync in MD but unreachable by its
// path here is left out: every member recorded holds every acknowledged write, which is what
// the start rule needs. Nothing is recorded while no member maps (the previous record stands).
void VolumeReconciler::RecordInSync(ConsumerPass& pass) {
  std::vector<int32_t> in_sync;
  const std::string* first_device = nullptr;
  for (const auto& d : pass.devices) {
    if (!d.device) continue;
    const sys::MdMemberState* in = ArrayMember(pass.array, *d.device);
    if (in == nullptr || in->faulty || !in->in_sync) continue;
    in_sync.push_back(d.member->index);
    if (first_device == nullptr) first_device = &*d.device;
  }
  if (in_sync.empty()) return;
  std::sort(in_sync.begin(), in_sync.end());
  const auto& recorded = pass.v.status.in_sync;
  bool unread = false;  // an in-sync member without a reported count (new, or an older agent's)
  for (int32_t index : in_sync) {
    const v1::PartitionStatus* p = FindPartition(pass.v.status, index);
    if (p == nullptr || !p->md_events) unread = true;
  }
  if (!recorded || recorded->members != in_sync || unread) {
    // Each in-sync member's own count (they carry the same, give or take MD's clean/dirty step);
    // the first one's is the array's count for the record.
    for (const auto& d : pass.devices) {
      if (!d.device || !Contains(in_sync, d.member->index)) continue;
      auto sb = k_.md->Examine(*d.device);
      if (!sb.ok()) continue;
      pass.rep.member_events[d.member->index] = static_cast<int64_t>(sb->events);
      if (&*d.device == first_device) {
        pass.rep.in_sync_events = static_cast<int64_t>(sb->events);
      }
    }
  }
  pass.rep.in_sync = std::move(in_sync);
}

common::Status VolumeReconciler::CapRebuilds(const std::vector<v1::MeshStorVolume>& volumes,
                                             const ArrayReader& read) {
  constexpr uint64_t kMinKibPerSecond = 1024;
  std::vector<sys::MdArrayState> arrays;
  for (const auto& v : volumes) {
    if (v.spec.consumer_node != settings_.node) continue;
    const std::string name = sys::MdArrayName(v.metadata.name);
    auto a = read ? read(name) : k_.md->GetArray(name);
    if (!a.ok()) continue;
    a->name = name;
    arrays.push_back(std::move(*a));
  }
  auto rebuilding = [](const sys::MdArrayState& a) {
    return !a.sync_action.empty() && a.sync_action != "idle";
  };
  const auto busy = static_cast<uint64_t>(std::count_if(arrays.begin(), arrays.end(), rebuilding));
  common::Status first;
  for (const auto& a : arrays) {
    uint64_t want = 0;
    if (settings_.rebuild_kib_per_s > 0 && rebuilding(a)) {
      want = std::max(kMinKibPerSecond, settings_.rebuild_kib_per_s / busy);
    }
    if (a.sync_speed_max_kib == want) continue;
    if (auto s = k_.md->SetSyncSpeedLimit(a.name, want); !s.ok() && first.ok()) first = s;
  }
  return first;
}

// A member of this array that cannot be re-added (its event count ran ahead: written elsewhere,
// or mdadm finds no bitmap way back) rejoins as a new member with a full resync from the running
// array, which is the copy the volume is served from (docs/design.md §6 rule 2). Its superblock is
// erased first (mdadm will not --add a device that claims a role in the array); Md refuses to
// erase another array's superblock or that of a device in use. Without an in-sync member to
// resync from, nothing is erased: it is reported Faulty and left alone.
common::Status VolumeReconciler::AddAsNewMember(const sys::MdArrayState& array,
                                                const std::string& device,
                                                const sys::MdMember& member,
                                                const std::string& refusal,
                                                MemberObservation& observed, VolumeOutcome& out) {
  const bool source = std::any_of(array.members.begin(), array.members.end(),
                                  [](const auto& m) { return m.in_sync && !m.faulty; });
  if (!source) {
    observed = {v1::PartitionState::kFaulty, std::nullopt,
                "not re-added (" + refusal + ") and no in-sync member to rebuild it from"};
    return common::OkStatus();
  }
  RETURN_IF_ERROR(k_.md->ZeroSuperblock(device, array.uuid));
  RETURN_IF_ERROR(k_.md->Add(array.name, member));
  observed = {v1::PartitionState::kSyncing, std::nullopt,
              "not re-added (" + refusal +
                  "): its old contents were discarded; rebuilding it as "
                  "a new member (full resync)"};
  out.notices.push_back(fmt::format("MD array {}: {} {}", array.name, device, observed.message));
  return common::OkStatus();
}

// Expansion on the consumer (RAID1): once every member's partition has grown to its spec size,
// the array grows to them (--grow --size=max) and XFS to the array, online. Both steps are
// idempotent and checked against what the kernel reports, so a crash between them is healed by
// the next pass.
common::Result<uint64_t> VolumeReconciler::GrowIfNeeded(const v1::MeshStorVolume& v,
                                                        sys::MdArrayState& array,
                                                        const std::string& staged) {
  if (v.spec.stripe_width == 1 && array.size_bytes < static_cast<uint64_t>(v.spec.capacity_bytes)) {
    for (const v1::Member& m : v.spec.members) {
      if (m.state != v1::MemberState::kPresent) continue;
      const v1::PartitionStatus* p = FindPartition(v.status, m.index);
      if (p == nullptr || !p->size_bytes || *p->size_bytes < m.size_bytes) {
        return k_.fs->XfsSizeBytes(array.device);  // not every member has grown yet
      }
    }
    RETURN_IF_ERROR(k_.md->Grow(sys::MdArrayName(v.metadata.name)));
    ASSIGN_OR_RETURN(array, k_.md->GetArray(sys::MdArrayName(v.metadata.name)));
  }
  ASSIGN_OR_RETURN(uint64_t fs_bytes, k_.fs->XfsSizeBytes(array.device));
  if (fs_bytes + static_cast<uint64_t>(v1::kFilesystemSlackBytes) >= array.size_bytes) {
    return fs_bytes;
  }
  RETURN_IF_ERROR(k_.fs->GrowXfs(staged));
  return k_.fs->XfsSizeBytes(array.device);
}

common::Status VolumeReconciler::TearDownConsumer(const v1::MeshStorVolume& v, VolumeOutcome& out) {
  std::set<std::string> targets(v.status.published_targets.begin(),
                                v.status.published_targets.end());
  for (const auto& t : v.spec.publish_targets) targets.insert(t.path);
  for (const auto& t : targets) {
    auto m = k_.fs->GetMount(t);
    if (m.ok() && *m) RETURN_IF_ERROR(k_.fs->Unmount(t));
    // Our mount point; a directory someone else filled stays (and does not block the teardown).
    if (CheckMountPath(settings_, t, "publish target").ok()) (void)k_.fs->RemoveMountPoint(t);
  }
  // Where it is staged now (status) and where it would be (spec or the agent's own directory).
  std::set<std::string> staged{ConsumerStagingPath(settings_, v),
                               StagingPath(settings_, v.metadata.name)};
  if (!v.status.staged_path.empty() && v.status.node_name == settings_.node) {
    staged.insert(v.status.staged_path);
  }
  for (const auto& path : staged) {
    auto m = k_.fs->GetMount(path);
    if (!m.ok()) return m.status();
    if (*m) RETURN_IF_ERROR(k_.fs->Unmount(path));
  }
  // Mounts of the array the volume no longer names — a fenced consumer's fields were cleared by
  // the operator and its publish targets dropped by the take-over (docs/design.md §5.1) — are
  // found by their source device, newest first, below the directories we mount in only.
  if (auto array = k_.md->GetArray(sys::MdArrayName(v.metadata.name));
      array.ok() && !array->device.empty()) {
    ASSIGN_OR_RETURN(std::vector<sys::MountEntry> mounts, k_.fs->ListMounts());
    std::sort(mounts.begin(), mounts.end(),
              [](const auto& a, const auto& b) { return a.mount_id > b.mount_id; });
    for (const auto& m : mounts) {
      if (m.source != array->device || !CheckMountPath(settings_, m.target, "mount").ok()) {
        continue;
      }
      RETURN_IF_ERROR(k_.fs->Unmount(m.target));
    }
  }
  RETURN_IF_ERROR(k_.md->Stop(sys::MdArrayName(v.metadata.name)));
  ConsumerReport rep;
  rep.torn_down = true;
  out.consumer = rep;
  return common::OkStatus();
}

}  // namespace agent
