// The consumer side of a volume: the members' devices, the MD array, XFS and the mounts.
#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/format.h>

#include "agent/volume.h"
#include "agent/volume_internal.h"
#include "common/api/v1alpha1/geometry.h"

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

}  // namespace

// Members' devices on the consumer, by index; nullopt while unreachable.
struct VolumeReconciler::MemberDevice {
  const v1::Member* member = nullptr;
  std::optional<std::string> device;
};

common::Result<std::optional<std::string>> VolumeReconciler::MemberDevicePath(
    const v1::MeshStorVolume& v, const v1::Member& m, const Peers& peers, bool connect) {
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
  return std::optional<std::string>();
}

void VolumeReconciler::ReconcileConsumer(const v1::MeshStorVolume& v, const Peers& peers,
                                         VolumeOutcome& out) {
  const bool deleting =
      v.metadata.deletion_timestamp.has_value() || v.status.phase == v1::VolumePhase::kDeleting;
  const bool here = v.spec.consumer_node == settings_.node && !deleting;
  const std::string name = sys::MdArrayName(v.metadata.name);
  const std::string uuid = sys::MdArrayUuid(v.metadata.name);
  const std::string what = fmt::format("volume {} on consumer {}", v.metadata.name, settings_.node);
  const auto now = std::chrono::floor<std::chrono::seconds>(clock_.Now());

  if (!here) {
    auto running = k_.md->GetArray(name);
    bool ours_in_status = v.status.node_name == settings_.node;
    if (running.ok() || ours_in_status) {
      if (auto s = TearDownConsumer(v, out); !s.ok()) Fail(out, s.WithContext(what));
    }
    return;
  }

  ConsumerReport rep;
  std::vector<MemberDevice> devices;
  bool all_available = true;
  bool missing_past_grace = true;
  for (const v1::Member& m : v.spec.members) {
    if (m.state != v1::MemberState::kPresent) continue;
    MemberDevice d{&m, std::nullopt};
    if (Reported(v, m)) {
      auto path = MemberDevicePath(v, m, peers, /*connect=*/true);
      if (path.ok()) {
        d.device = *path;
      } else {
        Fail(out, path.status().WithContext(what));
      }
    }
    if (!d.device) {
      all_available = false;
      if (!Reported(v, m)) {
        missing_past_grace = false;  // not created yet: wait for its owner
      } else {
        const v1::PartitionStatus* ps = FindPartition(v.status, m.index);
        MemberObservation o;
        o.state = v1::PartitionState::kMissing;
        o.missing_since = ps && ps->missing_since ? *ps->missing_since : now;
        o.message = "unreachable from the consumer";
        if (now - *o.missing_since < settings_.assemble_grace) missing_past_grace = false;
        rep.members[m.index] = o;
      }
    }
    devices.push_back(d);
  }

  auto array = k_.md->GetArray(name);
  if (!array.ok() && array.status().code() != StatusCode::kNotFound) {
    return Fail(out, array.status().WithContext(what));
  }
  if (!array.ok() && devices.empty()) {
    out.consumer = rep;  // staged before the operator placed any member: nothing to do yet
    return;
  }
  if (!array.ok()) {
    // Not running: assemble from members that carry this array, or create a new one.
    std::vector<sys::MdMember> carriers;
    bool foreign = false;
    for (const auto& d : devices) {
      if (!d.device) continue;
      auto sb = k_.md->Examine(*d.device);
      if (sb.ok() && sb->array_uuid == uuid) {
        carriers.push_back({*d.device, d.member->role == v1::MemberRole::kRemote});
      } else if (sb.ok()) {
        foreign = true;
        rep.members[d.member->index] = {v1::PartitionState::kFaulty, std::nullopt,
                                        "carries MD array " + sb->array_uuid + ", not this one"};
      } else if (sb.status().code() != StatusCode::kNotFound) {
        Fail(out, sb.status().WithContext(what));
      }
    }
    if (carriers.empty()) {
      if (v.spec.formatted_at) {
        Fail(out, common::FailedPreconditionError(
                      "{}: formatted already, but no reachable member carries array {}: not "
                      "creating a new, empty array",
                      what, uuid));
        out.consumer = rep;
        return;
      }
      if (!all_available || foreign) {
        out.retry_soon = true;
        out.consumer = rep;
        return;
      }
      const int32_t slots = v1::SlotCount(v.spec);
      sys::MdCreateSpec spec;
      spec.name = name;
      spec.uuid = uuid;
      spec.level = v.spec.stripe_width > 1 ? sys::MdLevel::kRaid10 : sys::MdLevel::kRaid1;
      spec.members.assign(static_cast<size_t>(slots), {std::string(sys::kMdMissing), false});
      spec.members_zeroed = true;  // every member was zeroed by its owner and never used
      int32_t next = 0;
      for (const auto& d : devices) {
        int32_t slot = d.member->slot.value_or(next);
        next = std::max(next, slot) + 1;
        if (slot < 0 || slot >= slots) {
          Fail(out, common::InvalidArgumentError("{}: member {} has slot {} outside 0..{}", what,
                                                 d.member->index, slot, slots - 1));
          out.consumer = rep;
          return;
        }
        spec.members[static_cast<size_t>(slot)] = {*d.device,
                                                   d.member->role == v1::MemberRole::kRemote};
      }
      if (auto s = k_.md->Create(spec); !s.ok()) {
        Fail(out, s.WithContext(what));
        out.consumer = rep;
        return;
      }
    } else {
      if (!all_available && !missing_past_grace) {
        out.retry_soon = true;  // give unreachable members the grace period first
        out.consumer = rep;
        return;
      }
      sys::MdAssembleSpec spec{name, uuid, carriers, /*allow_degraded=*/!all_available};
      if (auto s = k_.md->Assemble(spec); !s.ok()) {
        Fail(out, s.WithContext(what));
        out.consumer = rep;
        return;
      }
    }
    array = k_.md->GetArray(name);
    if (!array.ok()) {
      Fail(out, array.status().WithContext(what));
      out.consumer = rep;
      return;
    }
  }

  // Running: bring back or add every reachable member that is not in the array.
  bool changed = false;
  for (const auto& d : devices) {
    if (!d.device) continue;
    const sys::MdMemberState* in = ArrayMember(*array, *d.device);
    if (in != nullptr && !in->faulty) continue;
    if (in != nullptr && in->faulty) {
      // A member that failed but whose device is back: take it out, re-add it below next pass.
      if (auto s = k_.md->Remove(name, *d.device); !s.ok()) Fail(out, s.WithContext(what));
      changed = true;
      continue;
    }
    sys::MdMember member{*d.device, d.member->role == v1::MemberRole::kRemote};
    auto sb = k_.md->Examine(*d.device);
    common::Status s;
    if (!sb.ok() && sb.status().code() == StatusCode::kNotFound) {
      // A new member: full sync. A replacement of a member still in service is a hot replace
      // (redundancy kept while it copies); otherwise it fills a free slot.
      std::optional<std::string> old_device;
      if (d.member->replaces) {
        for (const v1::Member& old : v.spec.members) {
          if (old.index != *d.member->replaces) continue;
          auto path = MemberDevicePath(v, old, peers, /*connect=*/false);
          if (path.ok() && *path) {
            const sys::MdMemberState* om = ArrayMember(*array, **path);
            if (om != nullptr && !om->faulty) old_device = **path;
          }
        }
      }
      s = old_device ? k_.md->Replace(name, *old_device, member) : k_.md->Add(name, member);
    } else if (sb.ok() && sb->array_uuid == uuid) {
      s = k_.md->ReAdd(name, *d.device);  // bitmap catch-up; refused when it diverged
      if (s.code() == StatusCode::kFailedPrecondition) {
        s = AddAsNewMember(*array, *d.device, member, s.message(), rep.members[d.member->index],
                           out);
      }
    } else if (sb.ok()) {
      rep.members[d.member->index] = {v1::PartitionState::kFaulty, std::nullopt,
                                      "carries MD array " + sb->array_uuid + ", not this one"};
    } else {
      s = sb.status();
    }
    if (!s.ok()) Fail(out, s.WithContext(what));
    changed = true;
  }
  // Retired members leave the array once it has another in-sync copy.
  for (const v1::Member& m : v.spec.members) {
    if (m.state != v1::MemberState::kRetired) continue;
    auto path = MemberDevicePath(v, m, peers, /*connect=*/false);
    if (!path.ok() || !*path) continue;
    const sys::MdMemberState* in = ArrayMember(*array, **path);
    if (in == nullptr) continue;
    int in_sync_others = 0;
    for (const auto& am : array->members) {
      if (am.in_sync && !am.faulty && am.kernel_name != in->kernel_name) ++in_sync_others;
    }
    if (in_sync_others == 0) {
      Fail(out,
           common::FailedPreconditionError(
               "{}: member {} is retired but is the last in-sync copy; keeping it", what, m.index));
      continue;
    }
    if (auto s = k_.md->Fail(name, **path); !s.ok()) Fail(out, s.WithContext(what));
    if (auto s = k_.md->Remove(name, **path); !s.ok()) Fail(out, s.WithContext(what));
    changed = true;
  }
  // Faulty members whose device is gone.
  for (const auto& am : array->members) {
    if (am.faulty) {
      if (auto s = k_.md->Remove(name, "failed"); !s.ok()) Fail(out, s.WithContext(what));
      changed = true;
      break;
    }
  }
  if (changed) {
    auto again = k_.md->GetArray(name);
    if (again.ok()) array = std::move(again);
  }

  // XFS exactly once, then the staging mount and the publish targets.
  const std::string staged = ConsumerStagingPath(settings_, v);
  if (!v.spec.formatted_at) {
    sys::XfsOptions xfs;
    xfs.sector_size = static_cast<uint32_t>(v.spec.sector_size);
    auto formatted = k_.fs->EnsureXfs(array->device, xfs);
    if (!formatted.ok()) {
      Fail(out, formatted.status().WithContext(what));
    } else {
      out.set_formatted_at = now;
    }
  }
  if (v.spec.formatted_at || out.set_formatted_at) {
    common::Status s = CheckMountPath(settings_, staged, "spec.stagingPath");
    common::Result<std::optional<sys::MountEntry>> mounted = std::optional<sys::MountEntry>();
    if (s.ok()) {
      mounted = k_.fs->GetMount(staged);
      s = mounted.status();
    }
    if (s.ok() && !*mounted) {
      s = k_.fs->EnsureDirectory(staged);
      if (s.ok()) s = k_.fs->Mount(array->device, staged, "xfs", {});
    }
    if (s.ok()) {
      rep.staged_path = staged;
      if (auto fs = GrowIfNeeded(v, *array, staged); fs.ok()) {
        rep.filesystem_bytes = static_cast<int64_t>(*fs);
      } else {
        Fail(out, fs.status().WithContext(what));
      }
      for (const auto& t : v.spec.publish_targets) {
        common::Status b = CheckMountPath(settings_, t.path, "publish target");
        if (b.ok()) b = k_.fs->EnsureDirectory(t.path);
        if (b.ok()) b = k_.fs->BindMount(staged, t.path, t.read_only);
        if (b.ok()) {
          rep.published_targets.push_back(t.path);
        } else {
          Fail(out, b.WithContext(fmt::format("{}: publishing at {}", what, t.path)));
        }
      }
    } else {
      Fail(out, s.WithContext(what));
    }
  }
  for (const auto& t : v.status.published_targets) {
    bool wanted = std::any_of(v.spec.publish_targets.begin(), v.spec.publish_targets.end(),
                              [&](const v1::PublishTarget& p) { return p.path == t; });
    if (wanted) continue;
    // The target directory is ours (NodePublishVolume created it): gone with the mount.
    common::Status s = k_.fs->Unmount(t);
    if (s.ok()) s = k_.fs->RemoveMountPoint(t);
    if (!s.ok()) {
      Fail(out, s.WithContext(fmt::format("{}: unpublishing {}", what, t)));
      rep.published_targets.push_back(t);  // still published
    }
  }
  // A staging path the volume no longer names (moved by the shim, or an older agent's own
  // directory): unmounted once nothing is bound from it.
  if (!v.status.staged_path.empty() && v.status.staged_path != staged &&
      v.status.node_name == settings_.node && rep.published_targets.empty()) {
    auto old = k_.fs->GetMount(v.status.staged_path);
    if (old.ok() && *old) {
      if (auto s = k_.fs->Unmount(v.status.staged_path); !s.ok()) {
        Fail(out, s.WithContext(fmt::format("{}: unmounting the old staging path", what)));
      }
    }
  }

  // Report what MD says.
  const sys::MdArrayState& a = *array;
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
  for (const auto& d : devices) {
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
  out.consumer = std::move(rep);
}

common::Status VolumeReconciler::CapRebuilds(const std::vector<v1::MeshStorVolume>& volumes) {
  constexpr uint64_t kMinKibPerSecond = 1024;
  std::vector<sys::MdArrayState> arrays;
  for (const auto& v : volumes) {
    if (v.spec.consumer_node != settings_.node) continue;
    const std::string name = sys::MdArrayName(v.metadata.name);
    auto a = k_.md->GetArray(name);
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
  RETURN_IF_ERROR(k_.md->Stop(sys::MdArrayName(v.metadata.name)));
  ConsumerReport rep;
  rep.torn_down = true;
  out.consumer = rep;
  return common::OkStatus();
}

}  // namespace agent
