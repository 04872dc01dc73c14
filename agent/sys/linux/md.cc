#include "agent/sys/linux/md.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "agent/sys/linux/nvme_md_fs.h"

namespace agent::sys {
namespace {

namespace fs = fsutil;

bool ParseU64(std::string_view s, uint64_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string Tail(const std::string& text, size_t max = 2048) {
  std::string t = text.size() > max ? text.substr(text.size() - max) : text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// "host:name" → "name".
std::string StripHomehost(const std::string& name) {
  size_t colon = name.rfind(':');
  return colon == std::string::npos ? name : name.substr(colon + 1);
}

bool IsKeyword(std::string_view device) { return device == "failed" || device == "detached"; }

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

std::map<std::string, std::string> ParseMdadmExport(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string value(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      value = value.substr(1, value.size() - 2);
    }
    out[std::string(line.substr(0, eq))] = std::move(value);
  }
  return out;
}

common::Result<std::vector<std::string>> MdadmCreateArgs(const MdCreateSpec& spec,
                                                         const std::string& dev_root) {
  RETURN_IF_ERROR(ValidateMdCreateSpec(spec));
  std::vector<std::string> args = {"--create", dev_root + "/md/" + spec.name, "--run"};
  if (spec.level == MdLevel::kRaid1) {
    args.push_back("--level=1");
  } else {
    args.push_back("--level=10");
    args.push_back("--layout=n2");
    args.push_back(fmt::format("--chunk={}", spec.chunk_kib == 0 ? 64 : spec.chunk_kib));
  }
  args.push_back(fmt::format("--raid-devices={}", spec.members.size()));
  args.push_back("--metadata=1.2");
  args.push_back("--bitmap=internal");
  if (spec.bitmap_chunk_kib != 0) {
    args.push_back(fmt::format("--bitmap-chunk={}K", spec.bitmap_chunk_kib));
  }
  args.push_back(fmt::format("--data-offset={}K", kMdDataOffsetBytes >> 10));
  args.push_back("--name=" + spec.name);
  args.push_back("--homehost=<none>");  // store the bare name: no host-bound auto-assembly
  if (!spec.uuid.empty()) args.push_back("--uuid=" + spec.uuid);
  if (spec.members_zeroed) args.push_back("--assume-clean");
  if (spec.failfast) args.push_back("--failfast");
  for (const auto& m : spec.members) args.push_back(m.device);
  return args;
}

LinuxMd::LinuxMd(Exec& exec, LinuxMdPaths paths) : exec_(exec), paths_(std::move(paths)) {
  if (paths_.mdadm.empty()) {
    paths_.mdadm = fs::Exists("/sbin/mdadm") ? "/sbin/mdadm" : "/usr/sbin/mdadm";
  }
}

common::Result<ExecResult> LinuxMd::Mdadm(std::vector<std::string> args, const std::string& what) {
  ExecRequest request;
  request.path = paths_.mdadm;
  request.args = std::move(args);
  request.timeout = std::chrono::seconds(120);
  auto result = exec_.Run(request);
  if (!result.ok()) return result.status().WithContext(what);
  if (result->timed_out) {
    return common::DeadlineExceededError("{}: mdadm timed out: {}", what,
                                         Tail(result->stderr_text));
  }
  if (result->exit_code != 0) {
    common::Status s(common::StatusCode::kInternal,
                     fmt::format("{}: mdadm {} failed (exit {}, signal {}): {}", what,
                                 request.args.empty() ? "" : request.args.front(),
                                 result->exit_code, result->signal, Tail(result->stderr_text)),
                     std::to_string(result->exit_code));
    return s;
  }
  return result;
}

common::Result<std::string> LinuxMd::ResolveKernelName(std::string_view name) {
  ASSIGN_OR_RETURN(auto found, Resolve(name));
  return std::move(found.kernel_name);
}

common::Result<LinuxMd::Resolved> LinuxMd::Resolve(std::string_view name) {
  RETURN_IF_ERROR(ValidateMdName(name));
  // The array's md/array_state and identity as read here, when it is `name` and running.
  // Its attributes are read through one open directory (fs::AttrDir), as ReadArray's are.
  auto match = [&](const std::string& kname) -> std::optional<Resolved> {
    auto dir = fs::AttrDir::Open(paths_.sys_block + "/" + kname);
    if (!dir.ok()) return std::nullopt;
    std::string state = dir->ReadOr("md/array_state", "");
    if (state.empty() || state == "clear") return std::nullopt;
    auto id = ReadIdentity(*dir, kname);
    if (!id.ok() || id->name != name) return std::nullopt;
    return Resolved{std::move(dir).value(), kname, std::move(state), std::move(id).value()};
  };
  const std::string link = fmt::format("{}/md/{}", paths_.dev, name);
  if (fs::Exists(link)) {
    auto kname = fs::ResolvedBaseName(link);
    if (kname.ok()) {
      if (auto found = match(*kname)) return std::move(*found);
    }
  }
  auto entries = fs::ListDir(paths_.sys_block);
  if (!entries.ok()) return entries.status().WithContext("listing MD arrays");
  for (const auto& kname : *entries) {
    if (kname.rfind("md", 0) != 0) continue;
    if (auto found = match(kname)) return std::move(*found);
  }
  return common::NotFoundError("MD array {}: not running", name);
}

common::Result<MdArrayState> LinuxMd::ReadArray(const std::string& kernel_name) {
  ASSIGN_OR_RETURN(auto dir, fs::AttrDir::Open(paths_.sys_block + "/" + kernel_name));
  return ReadArray(dir, kernel_name, std::nullopt, std::nullopt);
}

common::Result<MdArrayState> LinuxMd::ReadArray(const fs::AttrDir& dir,
                                                const std::string& kernel_name,
                                                std::optional<std::string> array_state,
                                                std::optional<Identity> identity) {
  MdArrayState a;
  a.device = paths_.dev + "/" + kernel_name;
  if (array_state) {
    a.array_state = std::move(*array_state);
  } else {
    ASSIGN_OR_RETURN(a.array_state, dir.Read("md/array_state"));
  }
  a.level = dir.ReadOr("md/level", "");
  uint64_t n = 0;
  if (ParseU64(dir.ReadOr("size", "0"), n)) {
    a.size_bytes = n * 512;
  }
  {
    // Documentation/block/stat.rst: reads, merges, sectors read, ticks, writes, merges,
    // sectors written, ... (sectors of 512 bytes).
    std::istringstream stat(dir.ReadOr("stat", ""));
    uint64_t f[7] = {};
    for (auto& v : f) stat >> v;
    if (stat) {
      a.reads = f[0];
      a.read_bytes = f[2] * 512;
      a.writes = f[4];
      a.write_bytes = f[6] * 512;
    }
  }
  if (ParseU64(dir.ReadOr("md/raid_disks", "0"), n)) a.raid_disks = static_cast<int>(n);
  if (ParseU64(dir.ReadOr("md/degraded", "0"), n)) a.degraded = static_cast<int>(n);
  a.sync_action = dir.ReadOr("md/sync_action", "");
  {
    // "50000 (local)" when set for this array, "200000 (system)" when the global limit applies.
    std::istringstream speed(dir.ReadOr("md/sync_speed_max", ""));
    uint64_t kib = 0;
    std::string scope;
    if (speed >> kib >> scope && scope == "(local)") a.sync_speed_max_kib = kib;
  }
  std::string completed = dir.ReadOr("md/sync_completed", "none");
  size_t slash = completed.find('/');
  if (slash != std::string::npos) {
    std::string done = completed.substr(0, slash), total = completed.substr(slash + 1);
    done.erase(std::remove(done.begin(), done.end(), ' '), done.end());
    total.erase(std::remove(total.begin(), total.end(), ' '), total.end());
    if (!ParseU64(done, a.sync_done_sectors) || !ParseU64(total, a.sync_total_sectors)) {
      a.sync_done_sectors = a.sync_total_sectors = 0;
    }
  }
  ASSIGN_OR_RETURN(auto entries, dir.List("md"));
  for (const auto& entry : entries) {
    if (entry.rfind("dev-", 0) != 0) continue;
    MdMemberState m;
    m.kernel_name = entry.substr(4);
    m.raw_state = dir.ReadOr("md/" + entry + "/state", "");
    std::string slot = dir.ReadOr("md/" + entry + "/slot", "none");
    if (ParseU64(slot, n)) m.slot = static_cast<int>(n);
    size_t pos = 0;
    while (pos <= m.raw_state.size()) {
      size_t end = m.raw_state.find(',', pos);
      std::string flag = m.raw_state.substr(pos, end == std::string::npos ? end : end - pos);
      if (flag == "faulty") m.faulty = true;
      if (flag == "in_sync") m.in_sync = true;
      if (flag == "write_mostly") m.write_mostly = true;
      if (flag == "spare") m.spare = true;
      if (flag == "failfast") m.failfast = true;
      if (flag == "replacement") m.replacement = true;
      if (flag == "want_replacement") m.want_replacement = true;
      if (end == std::string::npos) break;
      pos = end + 1;
    }
    a.members.push_back(std::move(m));
  }
  if (!identity) {
    if (auto id = ReadIdentity(dir, kernel_name); id.ok()) identity = std::move(id).value();
  }
  if (identity) {
    a.uuid = std::move(identity->uuid);
    a.name = std::move(identity->name);
  }
  return a;
}

common::Result<LinuxMd::Identity> LinuxMd::ReadIdentity(const fs::AttrDir& dir,
                                                        const std::string& kernel_name) {
  const std::string kernel_uuid = dir.ReadOr("md/uuid", "");
  if (!kernel_uuid.empty()) {
    std::lock_guard lock(identities_mu_);
    auto it = identities_.find(kernel_name);
    if (it != identities_.end() && it->second.first == kernel_uuid) return it->second.second;
  }
  ASSIGN_OR_RETURN(auto detail, Mdadm({"--detail", "--export", paths_.dev + "/" + kernel_name},
                                      "reading MD array " + kernel_name));
  auto kv = ParseMdadmExport(detail.stdout_text);
  Identity id{kv["MD_UUID"], StripHomehost(kv["MD_NAME"])};
  if (!kernel_uuid.empty() && !id.uuid.empty()) {
    std::lock_guard lock(identities_mu_);
    identities_[kernel_name] = {kernel_uuid, id};
  }
  return id;
}

common::Result<MdArrayState> LinuxMd::GetArray(std::string_view name) {
  // Resolve read the array's md/array_state and md/uuid to find it; ReadArray takes them
  // rather than reading them again, so this call reads each attribute once.
  ASSIGN_OR_RETURN(auto found, Resolve(name));
  ASSIGN_OR_RETURN(auto array, ReadArray(found.dir, found.kernel_name, std::move(found.array_state),
                                         std::move(found.identity)));
  array.name = std::string(name);
  return array;
}

common::Status LinuxMd::ForEachRunning(const RunningVisitor& visit) {
  auto entries = fs::ListDir(paths_.sys_block);
  if (!entries.ok()) return entries.status().WithContext("listing MD arrays");
  for (const auto& kname : *entries) {
    if (kname.rfind("md", 0) != 0) continue;
    auto dir = fs::AttrDir::Open(paths_.sys_block + "/" + kname);
    if (!dir.ok()) continue;  // gone since the listing
    std::string state = dir->ReadOr("md/array_state", "");
    if (state.empty() || state == "clear") continue;
    RETURN_IF_ERROR(visit(*dir, kname, std::move(state)));
  }
  return common::OkStatus();
}

common::Result<std::vector<MdArrayState>> LinuxMd::ListArrays() {
  std::vector<MdArrayState> out;
  RETURN_IF_ERROR(
      ForEachRunning([&](const fs::AttrDir& dir, const std::string& kname, std::string state) {
        auto array = ReadArray(dir, kname, std::move(state), std::nullopt);
        if (array.ok()) out.push_back(std::move(array).value());
        return common::OkStatus();
      }));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

common::Result<std::vector<std::string>> LinuxMd::ListArrayNames() {
  // The arrays Resolve would match, named by their identity; one that cannot be named fails it.
  std::vector<std::string> names;
  RETURN_IF_ERROR(
      ForEachRunning([&](const fs::AttrDir& dir, const std::string& kname, std::string) {
        ASSIGN_OR_RETURN(auto id, ReadIdentity(dir, kname));
        names.push_back(std::move(id.name));
        return common::OkStatus();
      }));
  std::sort(names.begin(), names.end());
  return names;
}

const MdMemberState* LinuxMd::FindMember(const MdArrayState& array, const std::string& device,
                                         std::string* kernel_name) {
  auto kname = fs::ResolvedBaseName(device);
  *kernel_name = kname.ok() ? *kname : device;
  for (const auto& m : array.members) {
    if (m.kernel_name == *kernel_name) return &m;
  }
  return nullptr;
}

common::Status LinuxMd::Create(const MdCreateSpec& spec) {
  std::string what = fmt::format("creating MD array {}", spec.name);
  ASSIGN_OR_RETURN(auto args, MdadmCreateArgs(spec, paths_.dev));
  auto existing = GetArray(spec.name);
  if (existing.ok()) {
    if (!spec.uuid.empty() && existing->uuid != spec.uuid) {
      return common::AlreadyExistsError("{}: already running with UUID {}", what, existing->uuid);
    }
  } else {
    if (existing.status().code() != common::StatusCode::kNotFound) return existing.status();
    auto run = Mdadm(std::move(args), what);
    if (!run.ok()) return run.status();
  }
  // mdadm --create cannot clear write-mostly between members, so set it through sysfs.
  ASSIGN_OR_RETURN(std::string kname, ResolveKernelName(spec.name));
  for (const auto& m : spec.members) {
    if (!m.write_mostly || m.device == kMdMissing) continue;
    RETURN_IF_ERROR(SetWriteMostly(paths_.dev + "/" + kname, m.device, what));
  }
  return common::OkStatus();
}

common::Status LinuxMd::Assemble(const MdAssembleSpec& spec) {
  std::string what = fmt::format("assembling MD array {}", spec.name);
  RETURN_IF_ERROR(ValidateMdName(spec.name));
  if (spec.uuid.empty() || spec.members.empty()) {
    return common::InvalidArgumentError("{}: the UUID and at least one member are required", what);
  }
  auto existing = GetArray(spec.name);
  if (existing.ok()) {
    if (existing->uuid != spec.uuid) {
      return common::AlreadyExistsError("{}: running with UUID {}, not {}", what, existing->uuid,
                                        spec.uuid);
    }
    if (existing->array_state != "inactive") return common::OkStatus();
  }
  std::vector<std::string> args = {"--assemble", paths_.dev + "/md/" + spec.name, "--config=none",
                                   "--uuid=" + spec.uuid};
  if (spec.allow_degraded) args.push_back("--run");
  for (const auto& m : spec.members) {
    if (m.device == kMdMissing) continue;
    args.push_back(m.device);
  }
  auto run = Mdadm(std::move(args), what);
  if (!run.ok()) {
    // Do not leave a half-assembled inactive array holding the members.
    auto cleanup = Mdadm({"--stop", paths_.dev + "/md/" + spec.name}, what);
    (void)cleanup;  // best effort; the assemble error is what the caller needs
    if (!spec.allow_degraded) {
      return common::FailedPreconditionError("{} (not started degraded): {}", what,
                                             run.status().message());
    }
    return run.status();
  }
  return common::OkStatus();
}

common::Status LinuxMd::Add(std::string_view name, const MdMember& member) {
  std::string what = fmt::format("adding {} to MD array {}", member.device, name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  std::string kname;
  if (const MdMemberState* m = FindMember(array, member.device, &kname)) {
    if (m->faulty) {
      return common::FailedPreconditionError(
          "{}: it is a faulty member (state \"{}\"); remove it first", what, m->raw_state);
    }
  } else {
    // Never --write-mostly here: the kernel marks a member faulty when mdadm --add passes the
    // flag into a degraded RAID1 (seen on 6.1); the flag is set through sysfs below instead.
    RETURN_IF_ERROR(Mdadm({array.device, "--add", "--failfast", member.device}, what).status());
  }
  if (!member.write_mostly) return common::OkStatus();
  return SetWriteMostly(array.device, member.device, what);
}

common::Status LinuxMd::ReAdd(std::string_view name, std::string_view device) {
  std::string what = fmt::format("re-adding {} to MD array {}", device, name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  std::string kname;
  const MdMemberState* present = FindMember(array, std::string(device), &kname);
  if (present != nullptr && !present->faulty) return common::OkStatus();
  bool any_faulty = std::any_of(array.members.begin(), array.members.end(),
                                [](const MdMemberState& m) { return m.faulty; });
  if (any_faulty) RETURN_IF_ERROR(Mdadm({array.device, "--remove", "failed"}, what).status());

  // Safety rule 2: never re-add a member that ran ahead of the array.
  ASSIGN_OR_RETURN(auto member_sb, Examine(device));
  if (member_sb.array_uuid != array.uuid) {
    return common::FailedPreconditionError("{}: its superblock belongs to array {} ({}), not {}",
                                           what, member_sb.array_uuid, member_sb.name, array.uuid);
  }
  std::optional<uint64_t> array_events;
  for (const auto& m : array.members) {
    if (m.faulty || !m.in_sync) continue;
    auto sb = Examine(paths_.dev + "/" + m.kernel_name);
    if (sb.ok()) {
      array_events = sb->events;
      break;
    }
  }
  if (!array_events) {
    return common::FailedPreconditionError("{}: no in-sync member to compare event counts with",
                                           what);
  }
  if (member_sb.events > *array_events) {
    return common::FailedPreconditionError(
        "{}: its event count {} is ahead of the array's {}: it diverged (written elsewhere); "
        "it needs a full rebuild, not a re-add",
        what, member_sb.events, *array_events);
  }
  auto run = Mdadm({array.device, "--re-add", std::string(device)}, what);
  if (!run.ok() && Contains(run.status().message(), "not possible")) {
    return common::FailedPreconditionError("{}", run.status().message());
  }
  return run.status();
}

common::Status LinuxMd::Replace(std::string_view name, std::string_view old_device,
                                const MdMember& new_member) {
  std::string what =
      fmt::format("replacing {} with {} in MD array {}", old_device, new_member.device, name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  std::string kname;
  const MdMemberState* in = FindMember(array, new_member.device, &kname);
  if (in != nullptr && in->faulty) {
    return common::FailedPreconditionError("{}: the new member is faulty", what);
  }
  if (in != nullptr && !IsPlainSpare(*in)) return common::OkStatus();
  std::string old_kname;
  if (FindMember(array, std::string(old_device), &old_kname) == nullptr) {
    return common::NotFoundError("{}: {} is not a member", what, old_device);
  }
  // --write-mostly is set through sysfs afterwards, as in Add. A spare already in the array
  // needs no --add (mdadm's --with takes spares of the array).
  std::vector<std::string> args{array.device};
  if (in == nullptr) args.insert(args.end(), {"--add", "--failfast", new_member.device});
  args.insert(args.end(), {"--replace", std::string(old_device), "--with", new_member.device});
  RETURN_IF_ERROR(Mdadm(args, what).status());
  if (!new_member.write_mostly) return common::OkStatus();
  return SetWriteMostly(array.device, new_member.device, what);
}

common::Status LinuxMd::SetWriteMostly(const std::string& array_device, const std::string& device,
                                       const std::string& what) {
  // array_device is MdArrayState::device, "<dev>/<kernel name>".
  const std::string array_kname = array_device.substr(array_device.rfind('/') + 1);
  ASSIGN_OR_RETURN(auto array, ReadArray(array_kname));
  std::string member;
  const MdMemberState* state = FindMember(array, device, &member);
  if (state == nullptr) {
    return common::UnavailableError("{}: {} is not a member after the add", what, device);
  }
  if (state->write_mostly) return common::OkStatus();
  return fs::WriteAttr(fmt::format("{}/{}/md/dev-{}/state", paths_.sys_block, array_kname, member),
                       "writemostly")
      .WithContext(what);
}

common::Status LinuxMd::Fail(std::string_view name, std::string_view device) {
  std::string what = fmt::format("failing {} in MD array {}", device, name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  if (!IsKeyword(device)) {
    std::string kname;
    const MdMemberState* m = FindMember(array, std::string(device), &kname);
    if (m == nullptr || m->faulty) return common::OkStatus();
  }
  return Mdadm({array.device, "--fail", std::string(device)}, what).status();
}

common::Status LinuxMd::Remove(std::string_view name, std::string_view device) {
  std::string what = fmt::format("removing {} from MD array {}", device, name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  if (!IsKeyword(device)) {
    std::string kname;
    const MdMemberState* m = FindMember(array, std::string(device), &kname);
    if (m == nullptr) return common::OkStatus();
    if (!m->faulty && !m->spare && m->in_sync) {
      return common::FailedPreconditionError("{}: it is an active member; fail it first", what);
    }
  }
  return Mdadm({array.device, "--remove", std::string(device)}, what).status();
}

common::Status LinuxMd::SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) {
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  if (array.sync_speed_max_kib == max_kib_per_s) return common::OkStatus();
  const std::string kname = array.device.substr(array.device.rfind('/') + 1);
  const std::string value = max_kib_per_s == 0 ? "system" : std::to_string(max_kib_per_s);
  return fs::WriteAttr(paths_.sys_block + "/" + kname + "/md/sync_speed_max", value)
      .WithContext(fmt::format("capping the resync speed of MD array {} at {}", name, value));
}

common::Status LinuxMd::Grow(std::string_view name) {
  std::string what = fmt::format("growing MD array {}", name);
  ASSIGN_OR_RETURN(auto array, GetArray(name));
  return Mdadm({"--grow", array.device, "--size=max"}, what).status();
}

common::Status LinuxMd::Stop(std::string_view name) {
  std::string what = fmt::format("stopping MD array {}", name);
  auto kname = ResolveKernelName(name);
  if (!kname.ok()) {
    return kname.status().code() == common::StatusCode::kNotFound ? common::OkStatus()
                                                                  : kname.status();
  }
  auto run = Mdadm({"--stop", paths_.dev + "/" + *kname}, what);
  if (!run.ok() && (Contains(run.status().message(), "exclusive access") ||
                    Contains(run.status().message(), "in use"))) {
    return common::FailedPreconditionError("{}", run.status().message());
  }
  return run.status();
}

common::Status LinuxMd::ZeroSuperblock(std::string_view device, std::string_view expected_uuid) {
  std::string what = fmt::format("erasing the MD superblock of {}", device);
  auto sb = Examine(device);
  if (!sb.ok()) {
    return sb.status().code() == common::StatusCode::kNotFound ? common::OkStatus()
                                                               : sb.status().WithContext(what);
  }
  if (sb->array_uuid != expected_uuid) {
    return common::FailedPreconditionError("{}: it belongs to array {} ({}), not {}; not erasing",
                                           what, sb->array_uuid, sb->name, expected_uuid);
  }
  ASSIGN_OR_RETURN(auto arrays, ListArrays());
  for (const auto& array : arrays) {
    std::string kname;
    if (FindMember(array, std::string(device), &kname) != nullptr) {
      return common::FailedPreconditionError("{}: it is a member of {} ({}); not erasing", what,
                                             array.name, array.device);
    }
  }
  // mdadm opens the device exclusively: a device some other holder still uses is refused.
  auto run = Mdadm({"--zero-superblock", std::string(device)}, what);
  if (!run.ok() && Contains(run.status().message(), "not zeroing")) {
    return common::FailedPreconditionError("{}", run.status().message());
  }
  return run.status();
}

common::Result<MdSuperblock> LinuxMd::Examine(std::string_view device) {
  std::string what = fmt::format("examining MD superblock of {}", device);
  auto run = Mdadm({"--examine", "--export", std::string(device)}, what);
  if (!run.ok()) {
    if (Contains(run.status().message(), "No md superblock")) {
      return common::NotFoundError("{}: no MD superblock", what);
    }
    return run.status();
  }
  auto kv = ParseMdadmExport(run->stdout_text);
  MdSuperblock sb;
  sb.array_uuid = kv["MD_UUID"];
  sb.name = StripHomehost(kv["MD_NAME"]);
  sb.level = kv["MD_LEVEL"];
  if (sb.array_uuid.empty() || !ParseU64(kv["MD_EVENTS"], sb.events)) {
    return common::InternalError("{}: mdadm --examine --export gave no MD_UUID/MD_EVENTS: {}", what,
                                 Tail(run->stdout_text, 512));
  }
  return sb;
}

}  // namespace agent::sys
