#include "agent/sys/fake/md.h"

#include <algorithm>

#include <fmt/ranges.h>

namespace agent::sys {
namespace {

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool IsKeyword(std::string_view device) { return device == "failed" || device == "detached"; }

}  // namespace

void FakeMd::AddLocalDevice(const std::string& path) {
  std::lock_guard lock(mu_);
  local_.insert(path);
}

void FakeMd::RemoveLocalDevice(const std::string& path) {
  std::lock_guard lock(mu_);
  local_.erase(path);
}

void FakeMd::SetRemoteDevicePresence(std::function<bool(std::string_view)> present) {
  std::lock_guard lock(mu_);
  remote_present_ = std::move(present);
}

void FakeMd::SetInstantSync(bool instant) {
  std::lock_guard lock(mu_);
  instant_sync_ = instant;
}

void FakeMd::FinishSync(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = arrays_.find(name);
  if (it != arrays_.end()) FinishSyncLocked(it->second);
}

void FakeMd::SetInUse(std::string_view name, bool in_use) {
  std::lock_guard lock(mu_);
  auto it = arrays_.find(name);
  if (it != arrays_.end()) it->second.in_use = in_use;
}

void FakeMd::SetSuperblockEvents(const std::string& device, uint64_t events) {
  std::lock_guard lock(mu_);
  (*superblocks_)[KeyLocked(device)].sb.events = events;
}

std::optional<uint64_t> FakeMd::SuperblockEvents(const std::string& device) {
  std::lock_guard lock(mu_);
  auto it = superblocks_->find(KeyLocked(device));
  if (it == superblocks_->end()) return std::nullopt;
  return it->second.sb.events;
}

void FakeMd::PowerOff() {
  std::lock_guard lock(mu_);
  arrays_.clear();
}

void FakeMd::SetDeviceSizes(std::function<uint64_t(std::string_view)> size_of) {
  std::lock_guard lock(mu_);
  size_of_ = std::move(size_of);
}

uint64_t FakeMd::SizeLocked(const Array& a) const {
  if (!size_of_) return 0;
  uint64_t smallest = 0;
  for (const auto& m : a.members) {
    if (m.faulty || m.slot < 0) continue;
    uint64_t s = size_of_(m.device);
    if (s == 0) continue;
    smallest = smallest == 0 ? s : std::min(smallest, s);
  }
  if (smallest <= kMdDataOffsetBytes) return 0;
  uint64_t stripes = a.level == MdLevel::kRaid10 ? static_cast<uint64_t>(a.raid_disks / 2) : 1;
  return (smallest - kMdDataOffsetBytes) * stripes;
}

void FakeMd::ShareSuperblocks(std::shared_ptr<SuperblockStore> store,
                              std::function<std::string(std::string_view)> key_of) {
  std::lock_guard lock(mu_);
  superblocks_ = std::move(store);
  key_of_ = std::move(key_of);
}

void FakeMd::FailCall(std::string method, int nth, common::Status status) {
  std::lock_guard lock(mu_);
  faults_.FailCall(std::move(method), nth, std::move(status));
}

bool FakeMd::PresentLocked(std::string_view device) const {
  if (local_.count(device)) return true;
  return remote_present_ && remote_present_(device);
}

bool FakeMd::InAnyArrayLocked(std::string_view device) const {
  for (const auto& [name, a] : arrays_) {
    for (const auto& m : a.members) {
      if (m.device == device) return true;
    }
  }
  return false;
}

void FakeMd::WriteSuperblockLocked(const Array& a, const Member& m) {
  Superblock sb;
  sb.sb = MdSuperblock{a.uuid, a.name, 0, a.level == MdLevel::kRaid1 ? "raid1" : "raid10"};
  sb.slot = m.slot;
  sb.raid_disks = a.raid_disks;
  sb.level = a.level;
  (*superblocks_)[KeyLocked(m.device)] = sb;
}

void FakeMd::BumpLocked(Array& a) {
  ++a.events;
  for (const auto& m : a.members) {
    if (m.faulty) continue;
    auto& sb = (*superblocks_)[KeyLocked(m.device)];
    sb.sb.events = a.events;
    sb.slot = m.slot;
  }
}

void FakeMd::RefreshLocked() {
  for (auto& [name, a] : arrays_) {
    bool changed = false;
    for (auto& m : a.members) {
      if (m.faulty || PresentLocked(m.device)) continue;
      m.faulty = true;
      m.in_sync = false;
      m.slot = -1;
      changed = true;
    }
    if (changed) BumpLocked(a);
  }
}

common::Result<FakeMd::Array*> FakeMd::FindLocked(std::string_view name) {
  RefreshLocked();
  auto it = arrays_.find(name);
  if (it == arrays_.end()) return common::NotFoundError("MD array {}: not running", name);
  return &it->second;
}

FakeMd::Member* FakeMd::MemberLocked(Array& a, std::string_view device) {
  for (auto& m : a.members) {
    if (m.device == device) return &m;
  }
  return nullptr;
}

int FakeMd::FreeSlotLocked(const Array& a, int preferred) const {
  auto used = [&a](int slot) {
    return std::any_of(a.members.begin(), a.members.end(), [slot](const Member& m) {
      return !m.faulty && !m.replacement && m.slot == slot;
    });
  };
  if (preferred >= 0 && preferred < a.raid_disks && !used(preferred)) return preferred;
  for (int slot = 0; slot < a.raid_disks; ++slot) {
    if (!used(slot)) return slot;
  }
  return -1;
}

// RAID1: another in-sync member exists; RAID10 near-2: the mirror partner slot is in sync.
bool FakeMd::PairAliveWithoutLocked(const Array& a, const Member& gone) const {
  for (const auto& m : a.members) {
    if (&m == &gone || m.faulty || !m.in_sync || m.slot < 0) continue;
    if (a.level == MdLevel::kRaid1 || m.slot / 2 == gone.slot / 2) return true;
  }
  return false;
}

void FakeMd::FinishSyncLocked(Array& a) {
  a.resync = false;
  for (auto& m : a.members) {
    if (m.faulty) continue;
    if (m.replacement) {
      for (auto& old : a.members) {
        if (old.want_replacement && old.slot == m.slot) {
          old.faulty = true;
          old.in_sync = false;
          old.want_replacement = false;
          old.slot = -1;
        }
      }
      m.replacement = false;
    }
    if (m.slot >= 0) m.in_sync = true;
  }
  BumpLocked(a);
}

MdArrayState FakeMd::DescribeLocked(const Array& a) const {
  MdArrayState s;
  s.name = a.name;
  s.device = fmt::format("/dev/md{}", a.minor);
  s.uuid = a.uuid;
  s.level = a.level == MdLevel::kRaid1 ? "raid1" : "raid10";
  s.raid_disks = a.raid_disks;
  s.size_bytes = a.size;
  s.array_state = "clean";
  int good = 0;
  bool recovering = false;
  for (const auto& m : a.members) {
    if (m.faulty) continue;
    if (m.slot >= 0 && m.in_sync && !m.replacement) ++good;
    if (m.slot >= 0 && !m.in_sync) recovering = true;
  }
  s.degraded = a.raid_disks - good;
  s.sync_speed_max_kib = a.sync_speed_max_kib;
  s.sync_action = a.resync ? "resync" : (recovering ? "recover" : "idle");
  if (s.sync_action != "idle") s.sync_total_sectors = 2048;
  for (const auto& m : a.members) {
    MdMemberState ms;
    ms.kernel_name = BaseName(m.device);
    ms.slot = m.slot;
    ms.faulty = m.faulty;
    ms.in_sync = m.in_sync;
    ms.write_mostly = m.write_mostly;
    ms.failfast = m.failfast;
    ms.replacement = m.replacement;
    ms.want_replacement = m.want_replacement;
    ms.spare = !m.faulty && m.slot < 0;
    std::vector<std::string> flags;
    if (m.faulty) flags.push_back("faulty");
    if (m.in_sync) flags.push_back("in_sync");
    if (m.write_mostly) flags.push_back("write_mostly");
    if (ms.spare) flags.push_back("spare");
    if (m.failfast) flags.push_back("failfast");
    if (m.want_replacement) flags.push_back("want_replacement");
    if (m.replacement) flags.push_back("replacement");
    ms.raw_state = fmt::format("{}", fmt::join(flags, ","));
    s.members.push_back(std::move(ms));
  }
  std::sort(s.members.begin(), s.members.end(),
            [](const auto& x, const auto& y) { return x.kernel_name < y.kernel_name; });
  return s;
}

common::Status FakeMd::Create(const MdCreateSpec& spec) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Create"));
  std::string what = fmt::format("creating MD array {}", spec.name);
  RETURN_IF_ERROR(ValidateMdCreateSpec(spec));
  RefreshLocked();
  auto it = arrays_.find(spec.name);
  if (it != arrays_.end()) {
    if (!spec.uuid.empty() && it->second.uuid != spec.uuid) {
      return common::AlreadyExistsError("{}: already running with UUID {}", what, it->second.uuid);
    }
    return common::OkStatus();
  }
  for (const auto& m : spec.members) {
    if (m.device == kMdMissing) continue;
    if (!PresentLocked(m.device)) {
      return common::InternalError("{}: mdadm: cannot open {}: No such file or directory", what,
                                   m.device);
    }
    if (InAnyArrayLocked(m.device)) {
      return common::InternalError("{}: mdadm: cannot open {}: Device or resource busy", what,
                                   m.device);
    }
  }
  Array a;
  a.name = spec.name;
  a.uuid = spec.uuid.empty() ? fmt::format("fa4e{:04x}:00000000:00000000:00000000", next_uuid_++)
                             : spec.uuid;
  a.level = spec.level;
  a.raid_disks = static_cast<int>(spec.members.size());
  a.minor = next_minor_--;
  int slot = 0;
  int real = 0;
  for (const auto& spec_member : spec.members) {
    int this_slot = slot++;
    if (spec_member.device == kMdMissing) continue;
    ++real;
    Member m;
    m.device = spec_member.device;
    m.slot = this_slot;
    m.in_sync = true;
    m.write_mostly = spec_member.write_mostly;
    m.failfast = spec.failfast;
    a.members.push_back(m);
    Superblock sb;
    sb.sb = MdSuperblock{a.uuid, a.name, 0, a.level == MdLevel::kRaid1 ? "raid1" : "raid10"};
    sb.slot = this_slot;
    sb.raid_disks = a.raid_disks;
    sb.level = a.level;
    (*superblocks_)[KeyLocked(m.device)] = sb;
  }
  // A fresh array with redundancy resyncs unless its members are known to be zeroed.
  a.resync = !spec.members_zeroed && real > 1 && !instant_sync_;
  BumpLocked(a);
  a.size = SizeLocked(a);
  arrays_[a.name] = std::move(a);
  return common::OkStatus();
}

common::Status FakeMd::Assemble(const MdAssembleSpec& spec) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Assemble"));
  std::string what = fmt::format("assembling MD array {}", spec.name);
  RETURN_IF_ERROR(ValidateMdName(spec.name));
  if (spec.uuid.empty() || spec.members.empty()) {
    return common::InvalidArgumentError("{}: the UUID and at least one member are required", what);
  }
  RefreshLocked();
  auto it = arrays_.find(spec.name);
  if (it != arrays_.end()) {
    if (it->second.uuid != spec.uuid) {
      return common::AlreadyExistsError("{}: running with UUID {}, not {}", what, it->second.uuid,
                                        spec.uuid);
    }
    return common::OkStatus();
  }
  std::vector<std::pair<std::string, Superblock>> found;
  uint64_t max_events = 0;
  for (const auto& m : spec.members) {
    if (m.device == kMdMissing || !PresentLocked(m.device) || InAnyArrayLocked(m.device)) continue;
    auto sit = superblocks_->find(KeyLocked(m.device));
    if (sit == superblocks_->end() || sit->second.sb.array_uuid != spec.uuid) continue;
    found.push_back({m.device, sit->second});
    max_events = std::max(max_events, sit->second.sb.events);
  }
  if (found.empty()) {
    return common::InternalError("{}: mdadm: no devices found for {}", what, spec.uuid);
  }
  Array a;
  a.name = spec.name;
  a.uuid = spec.uuid;
  a.level = found.front().second.level;
  a.raid_disks = found.front().second.raid_disks;
  a.events = max_events;
  for (const auto& [device, sb] : found) {
    // Members that missed events are stale: mdadm leaves them out (they come back by re-add).
    if (sb.sb.events != max_events || sb.slot < 0) continue;
    Member m;
    m.device = device;
    m.slot = sb.slot;
    m.in_sync = true;
    m.failfast = true;
    for (const auto& want : spec.members) {
      if (want.device == device) m.write_mostly = want.write_mostly;
    }
    a.members.push_back(m);
  }
  int good = static_cast<int>(a.members.size());
  bool startable = true;
  if (a.level == MdLevel::kRaid10) {
    for (int pair = 0; pair < a.raid_disks / 2; ++pair) {
      bool any = std::any_of(a.members.begin(), a.members.end(),
                             [pair](const Member& m) { return m.slot / 2 == pair; });
      startable = startable && any;
    }
  }
  if (!startable) {
    return common::FailedPreconditionError("{}: not enough members to start the array", what);
  }
  if (good < a.raid_disks && !spec.allow_degraded) {
    return common::FailedPreconditionError("{} (not started degraded): {} of {} members present",
                                           what, good, a.raid_disks);
  }
  a.minor = next_minor_--;
  a.size = SizeLocked(a);
  arrays_[a.name] = std::move(a);
  return common::OkStatus();
}

common::Status FakeMd::Add(std::string_view name, const MdMember& member) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Add"));
  std::string what = fmt::format("adding {} to MD array {}", member.device, name);
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  if (Member* m = MemberLocked(*a, member.device)) {
    if (!m->faulty) return common::OkStatus();
    return common::FailedPreconditionError("{}: it is a faulty member; remove it first", what);
  }
  if (!PresentLocked(member.device)) {
    return common::InternalError("{}: mdadm: cannot open {}", what, member.device);
  }
  if (InAnyArrayLocked(member.device)) {
    return common::InternalError("{}: mdadm: {} is busy", what, member.device);
  }
  Member m;
  m.device = member.device;
  m.write_mostly = member.write_mostly;
  m.failfast = true;
  m.slot = FreeSlotLocked(*a, -1);  // -1: a spare
  a->members.push_back(m);
  WriteSuperblockLocked(*a, m);
  BumpLocked(*a);
  if (instant_sync_) FinishSyncLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::ReAdd(std::string_view name, std::string_view device) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("ReAdd"));
  std::string what = fmt::format("re-adding {} to MD array {}", device, name);
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  if (Member* m = MemberLocked(*a, device); m != nullptr && !m->faulty) return common::OkStatus();
  a->members.erase(std::remove_if(a->members.begin(), a->members.end(),
                                  [](const Member& m) { return m.faulty; }),
                   a->members.end());
  if (!PresentLocked(device)) {
    return common::NotFoundError("{}: no such device", what);
  }
  auto sit = superblocks_->find(KeyLocked(device));
  if (sit == superblocks_->end()) return common::NotFoundError("{}: no MD superblock", what);
  Superblock& sb = sit->second;
  if (sb.sb.array_uuid != a->uuid) {
    return common::FailedPreconditionError("{}: its superblock belongs to array {} ({}), not {}",
                                           what, sb.sb.array_uuid, sb.sb.name, a->uuid);
  }
  if (sb.sb.events > a->events) {
    return common::FailedPreconditionError(
        "{}: its event count {} is ahead of the array's {}: it diverged (written elsewhere); "
        "it needs a full rebuild, not a re-add",
        what, sb.sb.events, a->events);
  }
  int slot = FreeSlotLocked(*a, sb.slot);
  if (slot < 0) {
    return common::FailedPreconditionError("{}: mdadm: --re-add for {} to {} is not possible", what,
                                           device, name);
  }
  Member m;
  m.device = std::string(device);
  m.slot = slot;
  m.failfast = true;
  a->members.push_back(m);
  BumpLocked(*a);
  if (instant_sync_) FinishSyncLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::Replace(std::string_view name, std::string_view old_device,
                               const MdMember& new_member) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Replace"));
  std::string what =
      fmt::format("replacing {} with {} in MD array {}", old_device, new_member.device, name);
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  Member* spare = MemberLocked(*a, new_member.device);
  if (spare != nullptr && spare->faulty) {
    return common::FailedPreconditionError("{}: the new member is faulty", what);
  }
  if (spare != nullptr && (spare->slot >= 0 || spare->replacement)) return common::OkStatus();
  Member* old = MemberLocked(*a, old_device);
  if (old == nullptr) return common::NotFoundError("{}: {} is not a member", what, old_device);
  if (old->faulty || old->slot < 0) {
    return common::FailedPreconditionError("{}: {} is not an active member", what, old_device);
  }
  if (spare != nullptr) {  // a plain spare of this array: mdadm --replace --with, no --add
    old->want_replacement = true;
    spare->slot = old->slot;
    spare->replacement = true;
    WriteSuperblockLocked(*a, *spare);
    BumpLocked(*a);
    if (instant_sync_) FinishSyncLocked(*a);
    return common::OkStatus();
  }
  if (!PresentLocked(new_member.device) || InAnyArrayLocked(new_member.device)) {
    return common::InternalError("{}: mdadm: cannot use {}", what, new_member.device);
  }
  old->want_replacement = true;
  Member m;
  m.device = new_member.device;
  m.write_mostly = new_member.write_mostly;
  m.failfast = true;
  m.slot = old->slot;
  m.replacement = true;
  a->members.push_back(m);
  WriteSuperblockLocked(*a, m);
  BumpLocked(*a);
  if (instant_sync_) FinishSyncLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::Fail(std::string_view name, std::string_view device) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Fail"));
  std::string what = fmt::format("failing {} in MD array {}", device, name);
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  // "detached" members were already failed by RefreshLocked (their device is gone).
  if (IsKeyword(device)) return common::OkStatus();
  Member* m = MemberLocked(*a, device);
  if (m == nullptr || m->faulty) return common::OkStatus();
  if (m->in_sync && m->slot >= 0 && !PairAliveWithoutLocked(*a, *m)) {
    return common::FailedPreconditionError(
        "{}: mdadm: set device faulty failed: Device or resource busy (last in-sync copy)", what);
  }
  m->faulty = true;
  m->in_sync = false;
  m->slot = -1;
  BumpLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::Remove(std::string_view name, std::string_view device) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Remove"));
  std::string what = fmt::format("removing {} from MD array {}", device, name);
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  auto& ms = a->members;
  if (device == "failed" || device == "detached") {
    bool detached = device == "detached";
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const Member& m) {
                              return m.faulty && (!detached || !PresentLocked(m.device));
                            }),
             ms.end());
    BumpLocked(*a);
    return common::OkStatus();
  }
  Member* m = MemberLocked(*a, device);
  if (m == nullptr) return common::OkStatus();
  if (!m->faulty && m->slot >= 0) {
    return common::FailedPreconditionError("{}: it is an active member; fail it first", what);
  }
  ms.erase(std::remove_if(ms.begin(), ms.end(),
                          [device](const Member& x) { return x.device == device; }),
           ms.end());
  BumpLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("SetSyncSpeedLimit"));
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  a->sync_speed_max_kib = max_kib_per_s;
  return common::OkStatus();
}

common::Status FakeMd::Grow(std::string_view name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Grow"));
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  a->size = std::max(a->size, SizeLocked(*a));
  BumpLocked(*a);
  return common::OkStatus();
}

common::Status FakeMd::Stop(std::string_view name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Stop"));
  auto it = arrays_.find(name);
  if (it == arrays_.end()) return common::OkStatus();
  if (it->second.in_use) {
    return common::FailedPreconditionError(
        "stopping MD array {}: mdadm: Cannot get exclusive access (in use)", name);
  }
  BumpLocked(it->second);
  arrays_.erase(it);
  return common::OkStatus();
}

common::Result<MdArrayState> FakeMd::GetArray(std::string_view name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("GetArray"));
  ASSIGN_OR_RETURN(Array * a, FindLocked(name));
  return DescribeLocked(*a);
}

common::Result<std::vector<MdArrayState>> FakeMd::ListArrays() {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("ListArrays"));
  RefreshLocked();
  std::vector<MdArrayState> out;
  for (const auto& [name, a] : arrays_) out.push_back(DescribeLocked(a));
  return out;
}

common::Result<std::vector<std::string>> FakeMd::ListArrayNames() {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("ListArrayNames"));
  RefreshLocked();
  std::vector<std::string> out;
  for (const auto& [name, a] : arrays_) out.push_back(name);
  return out;
}

common::Result<MdSuperblock> FakeMd::Examine(std::string_view device) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("Examine"));
  std::string what = fmt::format("examining MD superblock of {}", device);
  if (!PresentLocked(device)) return common::NotFoundError("{}: no such device", what);
  auto it = superblocks_->find(KeyLocked(device));
  if (it == superblocks_->end()) return common::NotFoundError("{}: no MD superblock", what);
  return it->second.sb;
}

common::Status FakeMd::ZeroSuperblock(std::string_view device, std::string_view expected_uuid) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(faults_.Check("ZeroSuperblock"));
  std::string what = fmt::format("erasing the MD superblock of {}", device);
  RefreshLocked();
  if (!PresentLocked(device)) return common::NotFoundError("{}: no such device", what);
  auto it = superblocks_->find(KeyLocked(device));
  if (it == superblocks_->end()) return common::OkStatus();
  if (it->second.sb.array_uuid != expected_uuid) {
    return common::FailedPreconditionError("{}: it belongs to array {} ({}), not {}; not erasing",
                                           what, it->second.sb.array_uuid, it->second.sb.name,
                                           expected_uuid);
  }
  if (InAnyArrayLocked(device)) {
    return common::FailedPreconditionError("{}: it is a member of a running array; not erasing",
                                           what);
  }
  superblocks_->erase(it);
  return common::OkStatus();
}

}  // namespace agent::sys
