// meshstor-sys: the agent's kernel layer (agent/sys) as a command line, one idempotent step per
// call. The VM lab's "mesh" scenario drives real kernels through it (partitions, nvmet exports,
// nvme connects, MD arrays, XFS) without nvme-cli, sgdisk or a shell pipeline in between; an
// administrator can use it to look at a node the way the agent sees it.
//
// Output is "key=value" lines on stdout (for scripts); errors go to stderr, naming the step,
// with exit status 1 (2 for a usage error).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/sys/linux/drives.h"
#include "agent/sys/linux/exec.h"
#include "agent/sys/linux/filesystem.h"
#include "agent/sys/linux/md.h"
#include "agent/sys/linux/nvme_host.h"
#include "agent/sys/linux/nvmet.h"
#include "agent/sys/linux/partitions.h"
#include "common/status/status.h"

namespace agent::sys {
namespace {

constexpr const char* kUsage = R"(usage: meshstor-sys <command> [--flag value ...] [args]

Each command is one idempotent step of the agent's kernel layer.
  identity                                        this node's NVMe host NQN and host ID
  drives                                          NVMe drives (model, serial, size, sector)
  part-ensure  --drive D --volume V --index I --size-mib N
                                                  our partition of member I (created and zeroed
                                                  when absent); prints device=, uuid=, created=
  part-delete  --drive D --volume V --index I     deletes our partition of member I
  part-list    --drive D                          partitions on D (ours=member)
  export       --drive D --volume V --index I --nsid K --node N --consumer C --consumer-nqn Q
               --addr A                           exports the partition to C only (host NQN Q)
  unexport     --node N --consumer C --nsid K     removes the namespace; the subsystem and the port
                                                  go with their last namespace / subsystem
  connect      --node N --consumer C --addr A --nsid K --volume V --index I
                                                  connects to N's subsystem for C (this node) and
                                                  prints the block device of member I's namespace
  find         --node N --consumer C --nsid K --volume V --index I
  disconnect   --node N --consumer C
  md-create    --volume V --level 1|10 [--zeroed] [--size-mib N] DEV[:wm]|missing ...
  md-add       --volume V DEV[:wm]
  md-readd     --volume V DEV
  md-zero-superblock --volume V DEV  (only the volume's own array superblock, device unused)
  md-replace   --volume V OLD NEW[:wm]
  md-fail      --volume V DEV        md-remove --volume V DEV|failed|detached
  md-stop      --volume V            md-state  --volume V
  md-wait      --volume V --until clean|degraded [--timeout-s S]
  xfs-ensure   DEV                   mount DEV DIR     unmount DIR
  leftovers    --drive D ...         exit 1 when any MeshStor partition, nvmet subsystem or
                                     port, MD array or NVMe-oF controller is left
)";

class Args {
 public:
  // Parses "--flag value" pairs and positionals; every flag takes a value except `switches`.
  static common::Result<Args> Parse(int argc, char** argv, const std::set<std::string>& switches) {
    Args a;
    for (int i = 0; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg.rfind("--", 0) != 0) {
        a.positional_.push_back(arg);
        continue;
      }
      std::string name = arg.substr(2);
      if (switches.count(name)) {
        a.flags_[name].push_back("true");
        continue;
      }
      if (i + 1 >= argc) return common::InvalidArgumentError("--{} needs a value", name);
      a.flags_[name].push_back(argv[++i]);
    }
    return a;
  }
  // InvalidArgument naming the first flag not in `known`.
  common::Status Check(const std::set<std::string>& known) const {
    for (const auto& [name, _] : flags_) {
      if (!known.count(name)) return common::InvalidArgumentError("unknown flag --{}", name);
    }
    return common::OkStatus();
  }
  common::Result<std::string> Get(const std::string& name) const {
    auto it = flags_.find(name);
    if (it == flags_.end() || it->second.back().empty()) {
      return common::InvalidArgumentError("--{} is required", name);
    }
    return it->second.back();
  }
  std::vector<std::string> All(const std::string& name) const {
    auto it = flags_.find(name);
    return it == flags_.end() ? std::vector<std::string>{} : it->second;
  }
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  common::Result<uint64_t> GetU64(const std::string& name) const {
    ASSIGN_OR_RETURN(std::string v, Get(name));
    uint64_t n = 0;
    size_t used = 0;
    try {
      n = std::stoull(v, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != v.size()) {
      return common::InvalidArgumentError("--{}: \"{}\" is not a non-negative integer", name, v);
    }
    return n;
  }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> flags_;
  std::vector<std::string> positional_;
};

void Print(const std::string& key, const std::string& value) {
  std::printf("%s=%s\n", key.c_str(), value.c_str());
}

struct Kernel {
  LinuxExec exec;
  LinuxDrives drives;
  LinuxPartitions partitions;
  LinuxNvmetTarget nvmet;
  LinuxNvmeHost host;
  LinuxMd md{exec};
  LinuxFilesystem fs{exec};
};

common::Result<MemberRef> Member(const Args& a) {
  MemberRef m;
  ASSIGN_OR_RETURN(m.volume, a.Get("volume"));
  ASSIGN_OR_RETURN(uint64_t index, a.GetU64("index"));
  m.index = static_cast<uint32_t>(index);
  RETURN_IF_ERROR(PartitionName(m).status());
  return m;
}

common::Result<PartitionInfo> FindOurs(Kernel& k, const std::string& drive, const MemberRef& m) {
  ASSIGN_OR_RETURN(auto parts, k.partitions.List(drive));
  ASSIGN_OR_RETURN(auto found, FindMember(parts, m, drive));
  if (!found) {
    return common::NotFoundError("no partition of {} member {} on {}", m.volume, m.index, drive);
  }
  return *found;
}

common::Status PartEnsure(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"drive", "volume", "index", "size-mib"}));
  ASSIGN_OR_RETURN(std::string drive, a.Get("drive"));
  ASSIGN_OR_RETURN(MemberRef m, Member(a));
  ASSIGN_OR_RETURN(uint64_t mib, a.GetU64("size-mib"));
  ASSIGN_OR_RETURN(auto before, k.partitions.List(drive));
  ASSIGN_OR_RETURN(auto existing, FindMember(before, m, drive));
  ASSIGN_OR_RETURN(PartitionInfo p, k.partitions.Ensure(drive, {m, mib * kMiB, std::nullopt}));
  if (!existing) {
    // New: zero it, signatures included (stale bytes of an earlier user of this extent).
    ASSIGN_OR_RETURN(ZeroMethod how, k.partitions.Zero(drive, m, /*allow_signature=*/true));
    Print("zeroed", how == ZeroMethod::kWriteZeroes ? "write-zeroes"
                    : how == ZeroMethod::kDiscard   ? "discard"
                                                    : "write");
  }
  Print("device", p.device_path);
  Print("uuid", p.uuid);
  Print("size_bytes", std::to_string(p.size_bytes));
  Print("created", existing ? "false" : "true");
  return common::OkStatus();
}

common::Status PartDelete(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"drive", "volume", "index"}));
  ASSIGN_OR_RETURN(std::string drive, a.Get("drive"));
  ASSIGN_OR_RETURN(MemberRef m, Member(a));
  return k.partitions.Delete(drive, m);
}

common::Status PartList(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"drive"}));
  ASSIGN_OR_RETURN(std::string drive, a.Get("drive"));
  ASSIGN_OR_RETURN(auto parts, k.partitions.List(drive));
  for (const auto& p : parts) {
    std::printf("partition=%s number=%u size_bytes=%llu uuid=%s ours=%s\n", p.device_path.c_str(),
                p.number, static_cast<unsigned long long>(p.size_bytes), p.uuid.c_str(),
                p.member ? fmt::format("{}/{}", p.member->volume, p.member->index).c_str() : "-");
  }
  return common::OkStatus();
}

common::Result<std::string> Nqn(const Args& a) {
  ASSIGN_OR_RETURN(std::string node, a.Get("node"));
  ASSIGN_OR_RETURN(std::string consumer, a.Get("consumer"));
  return SubsystemNqn(node, consumer);
}

constexpr uint16_t kPortId = 1;

common::Status Export(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(
      a.Check({"drive", "volume", "index", "nsid", "node", "consumer", "consumer-nqn", "addr"}));
  ASSIGN_OR_RETURN(std::string drive, a.Get("drive"));
  ASSIGN_OR_RETURN(MemberRef m, Member(a));
  ASSIGN_OR_RETURN(uint64_t nsid, a.GetU64("nsid"));
  ASSIGN_OR_RETURN(std::string consumer_nqn, a.Get("consumer-nqn"));
  ASSIGN_OR_RETURN(std::string addr, a.Get("addr"));
  ASSIGN_OR_RETURN(std::string nqn, Nqn(a));
  ASSIGN_OR_RETURN(PartitionInfo p, FindOurs(k, drive, m));
  RETURN_IF_ERROR(k.nvmet.EnsurePort({kPortId, NvmeTransport::kTcp, addr, "4420"}));
  RETURN_IF_ERROR(k.nvmet.EnsureSubsystem(nqn, SubsystemSerial(nqn), {consumer_nqn}));
  // Fencing: the ACL names the current consumer only, also when the subsystem existed.
  RETURN_IF_ERROR(k.nvmet.SetAllowedHosts(nqn, {consumer_nqn}));
  RETURN_IF_ERROR(k.nvmet.EnsureNamespace(
      nqn, {static_cast<uint32_t>(nsid), p.device_path, p.uuid, /*enabled=*/true}));
  RETURN_IF_ERROR(k.nvmet.LinkSubsystemToPort(nqn, kPortId));
  Print("subsystem", nqn);
  Print("device", p.device_path);
  Print("namespace_uuid", p.uuid);
  return common::OkStatus();
}

common::Status Unexport(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"node", "consumer", "nsid"}));
  ASSIGN_OR_RETURN(uint64_t nsid, a.GetU64("nsid"));
  ASSIGN_OR_RETURN(std::string nqn, Nqn(a));
  auto sub = k.nvmet.GetSubsystem(nqn);
  if (!sub.ok()) {
    return sub.status().code() == common::StatusCode::kNotFound ? common::OkStatus() : sub.status();
  }
  RETURN_IF_ERROR(k.nvmet.RemoveNamespace(nqn, static_cast<uint32_t>(nsid)));
  ASSIGN_OR_RETURN(auto left, k.nvmet.GetSubsystem(nqn));
  if (left.namespaces.empty()) {
    for (uint16_t port : left.ports) RETURN_IF_ERROR(k.nvmet.UnlinkSubsystemFromPort(nqn, port));
    RETURN_IF_ERROR(k.nvmet.RemoveSubsystem(nqn));
    ASSIGN_OR_RETURN(auto ports, k.nvmet.ListPorts());
    for (const auto& port : ports) {
      if (port.subsystems.empty()) RETURN_IF_ERROR(k.nvmet.RemovePort(port.spec.id));
    }
  }
  return common::OkStatus();
}

// The remote member's namespace: its NSID, and its UUID, which is the partition UUID derived
// from volume and index, so a namespace of another partition never matches.
common::Result<NvmeNamespaceSelector> Selector(const Args& a) {
  ASSIGN_OR_RETURN(uint64_t nsid, a.GetU64("nsid"));
  ASSIGN_OR_RETURN(MemberRef m, Member(a));
  return NvmeNamespaceSelector{static_cast<uint32_t>(nsid), PartitionUuid(m)};
}

common::Status Find(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"node", "consumer", "nsid", "volume", "index"}));
  ASSIGN_OR_RETURN(std::string nqn, Nqn(a));
  ASSIGN_OR_RETURN(auto selector, Selector(a));
  ASSIGN_OR_RETURN(std::string device, k.host.FindNamespaceDevice(nqn, selector));
  Print("device", device);
  return common::OkStatus();
}

common::Status Connect(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"node", "consumer", "addr", "nsid", "volume", "index"}));
  ASSIGN_OR_RETURN(std::string nqn, Nqn(a));
  ASSIGN_OR_RETURN(auto selector, Selector(a));
  ASSIGN_OR_RETURN(std::string addr, a.Get("addr"));
  ASSIGN_OR_RETURN(auto id, k.host.GetHostIdentity());
  NvmeConnectSpec spec;
  spec.address = addr;
  spec.subsys_nqn = nqn;
  spec.host_nqn = id.host_nqn;
  spec.host_id = id.host_id;
  ASSIGN_OR_RETURN(NvmeController c, k.host.Connect(spec));
  Print("controller", c.name);
  // The namespace's block device appears shortly after the controller goes live.
  common::Status last = common::OkStatus();
  for (int i = 0; i < 100; ++i) {
    auto device = k.host.FindNamespaceDevice(nqn, selector);
    if (device.ok()) {
      Print("device", *device);
      return common::OkStatus();
    }
    last = device.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last.WithContext("waiting 10 s for the namespace's block device");
}

common::Status Disconnect(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"node", "consumer"}));
  ASSIGN_OR_RETURN(std::string nqn, Nqn(a));
  ASSIGN_OR_RETURN(auto controllers, k.host.ListControllers());
  for (const auto& c : controllers) {
    if (c.subsys_nqn == nqn) RETURN_IF_ERROR(k.host.Disconnect(c.name));
  }
  return common::OkStatus();
}

// "DEV" or "DEV:wm" (write-mostly: a remote leg).
MdMember ParseMember(const std::string& arg) {
  constexpr std::string_view kWm = ":wm";
  if (arg.size() > kWm.size() && arg.compare(arg.size() - kWm.size(), kWm.size(), kWm) == 0) {
    return {arg.substr(0, arg.size() - kWm.size()), true};
  }
  return {arg, false};
}

common::Result<std::string> ArrayName(const Args& a) {
  ASSIGN_OR_RETURN(std::string volume, a.Get("volume"));
  return MdArrayName(volume);
}

common::Status PrintArray(const MdArrayState& s) {
  Print("device", s.device);
  Print("level", s.level);
  Print("array_state", s.array_state);
  Print("raid_disks", std::to_string(s.raid_disks));
  Print("degraded", std::to_string(s.degraded));
  Print("sync_action", s.sync_action);
  Print("sync_done_sectors", std::to_string(s.sync_done_sectors));
  Print("sync_total_sectors", std::to_string(s.sync_total_sectors));
  for (const auto& m : s.members) {
    std::printf("member=%s slot=%d state=%s\n", m.kernel_name.c_str(), m.slot, m.raw_state.c_str());
  }
  return common::OkStatus();
}

common::Status MdCreate(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"volume", "level", "zeroed", "size-mib"}));
  ASSIGN_OR_RETURN(std::string volume, a.Get("volume"));
  ASSIGN_OR_RETURN(uint64_t level, a.GetU64("level"));
  if (level != 1 && level != 10) return common::InvalidArgumentError("--level: 1 or 10");
  MdCreateSpec spec;
  spec.name = MdArrayName(volume);
  spec.uuid = MdArrayUuid(volume);
  spec.level = level == 1 ? MdLevel::kRaid1 : MdLevel::kRaid10;
  spec.members_zeroed = a.Has("zeroed");
  if (a.Has("size-mib")) {  // the members' partition size: the bitmap chunk the agent would use
    ASSIGN_OR_RETURN(uint64_t mib, a.GetU64("size-mib"));
    if (mib <= (kMdDataOffsetBytes >> 20)) {
      return common::InvalidArgumentError(
          "--size-mib {}: members hold no data after the {} MiB offset", mib,
          kMdDataOffsetBytes >> 20);
    }
    spec.bitmap_chunk_kib = MdBitmapChunkKib((mib << 20) - kMdDataOffsetBytes);
  }
  for (const auto& p : a.positional()) spec.members.push_back(ParseMember(p));
  RETURN_IF_ERROR(k.md.Create(spec));
  ASSIGN_OR_RETURN(auto state, k.md.GetArray(spec.name));
  return PrintArray(state);
}

common::Result<std::string> OnePositional(const Args& a, size_t n = 1) {
  if (a.positional().size() != n) {
    return common::InvalidArgumentError("expected {} device argument(s), got {}", n,
                                        a.positional().size());
  }
  return a.positional()[0];
}

common::Status MdWait(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"volume", "until", "timeout-s"}));
  ASSIGN_OR_RETURN(std::string name, ArrayName(a));
  ASSIGN_OR_RETURN(std::string until, a.Get("until"));
  if (until != "clean" && until != "degraded") {
    return common::InvalidArgumentError("--until: clean or degraded, not \"{}\"", until);
  }
  uint64_t timeout_s = 300;
  if (a.Has("timeout-s")) {
    ASSIGN_OR_RETURN(timeout_s, a.GetU64("timeout-s"));
  }
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(timeout_s);
  uint64_t total = 0;
  MdArrayState s;
  while (true) {
    ASSIGN_OR_RETURN(s, k.md.GetArray(name));
    total = std::max(total, s.sync_total_sectors);
    bool idle = s.sync_action == "idle" || s.sync_action.empty();
    bool done = until == "clean" ? (idle && s.degraded == 0) : s.degraded > 0;
    if (done) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return common::DeadlineExceededError(
          "MD array {} not {} after {} s (array_state {}, degraded {}, sync_action {}, {}/{})",
          name, until, timeout_s, s.array_state, s.degraded, s.sync_action, s.sync_done_sectors,
          s.sync_total_sectors);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  Print("waited_s", fmt::format("{:.2f}", took.count()));
  return PrintArray(s);
}

common::Status Leftovers(Kernel& k, const Args& a) {
  RETURN_IF_ERROR(a.Check({"drive"}));
  std::vector<std::string> found;
  for (const auto& drive : a.All("drive")) {
    ASSIGN_OR_RETURN(auto parts, k.partitions.List(drive));
    for (const auto& p : parts) {
      if (p.member) found.push_back("partition " + p.device_path + " (" + p.name + ")");
    }
  }
  ASSIGN_OR_RETURN(auto subsystems, k.nvmet.ListSubsystems());
  for (const auto& s : subsystems) found.push_back("nvmet subsystem " + s.nqn);
  ASSIGN_OR_RETURN(auto ports, k.nvmet.ListPorts());
  for (const auto& p : ports) found.push_back(fmt::format("nvmet port {}", p.spec.id));
  ASSIGN_OR_RETURN(auto arrays, k.md.ListArrays());
  for (const auto& m : arrays) found.push_back("MD array " + m.device + " (" + m.name + ")");
  ASSIGN_OR_RETURN(auto controllers, k.host.ListControllers());
  for (const auto& c : controllers) {
    if (c.transport != "pcie") found.push_back("NVMe-oF controller " + c.name + " " + c.subsys_nqn);
  }
  for (const auto& f : found) Print("leftover", f);
  if (!found.empty()) {
    return common::FailedPreconditionError("{} leftover(s), first: {}", found.size(), found[0]);
  }
  Print("leftovers", "none");
  return common::OkStatus();
}

common::Status Run(const std::string& cmd, const Args& a) {
  Kernel k;
  if (cmd == "identity") {
    ASSIGN_OR_RETURN(auto id, k.host.GetHostIdentity());
    Print("host_nqn", id.host_nqn);
    Print("host_id", id.host_id);
    return common::OkStatus();
  }
  if (cmd == "drives") {
    ASSIGN_OR_RETURN(auto drives, k.drives.List());
    for (const auto& d : drives) {
      std::printf("drive=%s model=\"%s\" serial=%s size_bytes=%llu sector=%u queues=%u\n",
                  d.device_path.c_str(), d.model.c_str(), d.serial.c_str(),
                  static_cast<unsigned long long>(d.size_bytes), d.logical_block_size, d.hw_queues);
    }
    return common::OkStatus();
  }
  if (cmd == "part-ensure") return PartEnsure(k, a);
  if (cmd == "part-delete") return PartDelete(k, a);
  if (cmd == "part-list") return PartList(k, a);
  if (cmd == "export") return Export(k, a);
  if (cmd == "unexport") return Unexport(k, a);
  if (cmd == "connect") return Connect(k, a);
  if (cmd == "find") return Find(k, a);
  if (cmd == "disconnect") return Disconnect(k, a);
  if (cmd == "md-create") return MdCreate(k, a);
  if (cmd == "md-wait") return MdWait(k, a);
  if (cmd == "leftovers") return Leftovers(k, a);
  if (cmd.rfind("md-", 0) == 0) {
    RETURN_IF_ERROR(a.Check({"volume"}));
    ASSIGN_OR_RETURN(std::string name, ArrayName(a));
    if (cmd == "md-state") {
      ASSIGN_OR_RETURN(auto s, k.md.GetArray(name));
      return PrintArray(s);
    }
    if (cmd == "md-stop") return k.md.Stop(name);
    if (cmd == "md-replace") {
      if (a.positional().size() != 2) return common::InvalidArgumentError("md-replace OLD NEW");
      return k.md.Replace(name, a.positional()[0], ParseMember(a.positional()[1]));
    }
    ASSIGN_OR_RETURN(std::string dev, OnePositional(a));
    if (cmd == "md-add") return k.md.Add(name, ParseMember(dev));
    if (cmd == "md-readd") return k.md.ReAdd(name, dev);
    if (cmd == "md-zero-superblock") {
      ASSIGN_OR_RETURN(std::string volume, a.Get("volume"));
      return k.md.ZeroSuperblock(dev, MdArrayUuid(volume));
    }
    if (cmd == "md-fail") return k.md.Fail(name, dev);
    if (cmd == "md-remove") return k.md.Remove(name, dev);
  }
  if (cmd == "xfs-ensure") {
    RETURN_IF_ERROR(a.Check({}));
    ASSIGN_OR_RETURN(std::string dev, OnePositional(a));
    ASSIGN_OR_RETURN(bool formatted, k.fs.EnsureXfs(dev, {}));
    Print("formatted", formatted ? "true" : "false");
    return common::OkStatus();
  }
  if (cmd == "mount") {
    RETURN_IF_ERROR(a.Check({}));
    if (a.positional().size() != 2) return common::InvalidArgumentError("mount DEV DIR");
    return k.fs.Mount(a.positional()[0], a.positional()[1], "xfs", {});
  }
  if (cmd == "unmount") {
    RETURN_IF_ERROR(a.Check({}));
    ASSIGN_OR_RETURN(std::string dir, OnePositional(a));
    return k.fs.Unmount(dir);
  }
  return common::InvalidArgumentError("unknown command \"{}\"", cmd);
}

}  // namespace
}  // namespace agent::sys

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(agent::sys::kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  auto args = agent::sys::Args::Parse(argc - 2, argv + 2, {"zeroed"});
  if (!args.ok()) {
    std::fprintf(stderr, "meshstor-sys %s: %s\n", cmd.c_str(), args.status().message().c_str());
    return 2;
  }
  common::Status s = agent::sys::Run(cmd, *args);
  if (!s.ok()) {
    std::fprintf(stderr, "meshstor-sys %s: %s\n", cmd.c_str(), s.ToString().c_str());
    return s.code() == common::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
