// LinuxMd: Md on mdadm (run through Exec, never a shell) and /sys/block/mdX/md.
//
// Array state comes from sysfs; the array UUID and name from `mdadm --detail --export`, member
// superblocks from `mdadm --examine --export` (KEY=VALUE output). An array is found by name
// through /dev/md/<name>, else by scanning /sys/block/md* and comparing MD_NAME, so neither udev
// nor a config file is needed. Creation never prompts (--run, stdin is /dev/null); write-mostly
// is set through dev-*/state after creation because mdadm --create cannot clear the flag
// between members.
//
// Thread contract: safe for concurrent use if `exec` is.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "agent/sys/exec.h"
#include "agent/sys/linux/nvme_md_fs.h"
#include "agent/sys/md.h"

namespace agent::sys {

struct LinuxMdPaths {
  std::string mdadm;  // empty: /sbin/mdadm, else /usr/sbin/mdadm
  std::string sys_block = "/sys/block";
  std::string dev = "/dev";
};

// Parses mdadm's --export output ("KEY=VALUE" lines; values may be single-quoted).
std::map<std::string, std::string> ParseMdadmExport(std::string_view text);
// The mdadm argv (without the program) that creates `spec`, for review and tests.
common::Result<std::vector<std::string>> MdadmCreateArgs(const MdCreateSpec& spec,
                                                         const std::string& dev_root);

class LinuxMd final : public Md {
 public:
  // `exec` must outlive this object.
  explicit LinuxMd(Exec& exec, LinuxMdPaths paths = {});

  common::Status Create(const MdCreateSpec& spec) override;
  common::Status Assemble(const MdAssembleSpec& spec) override;
  common::Status Add(std::string_view name, const MdMember& member) override;
  common::Status ReAdd(std::string_view name, std::string_view device) override;
  common::Status Replace(std::string_view name, std::string_view old_device,
                         const MdMember& new_member) override;
  common::Status Fail(std::string_view name, std::string_view device) override;
  common::Status Remove(std::string_view name, std::string_view device) override;
  common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) override;
  common::Status Grow(std::string_view name) override;
  common::Status Stop(std::string_view name) override;
  common::Result<MdArrayState> GetArray(std::string_view name) override;
  common::Result<std::vector<MdArrayState>> ListArrays() override;
  common::Result<std::vector<std::string>> ListArrayNames() override;
  common::Result<MdSuperblock> Examine(std::string_view device) override;
  common::Status ZeroSuperblock(std::string_view device, std::string_view expected_uuid) override;

 private:
  common::Result<ExecResult> Mdadm(std::vector<std::string> args, const std::string& what);
  // The running array's UUID and name as mdadm --detail reports them. Cached per kernel name
  // while the kernel's md/uuid (Linux 5.9+) stays the same: a pass reads every array several
  // times, and each mdadm run is a process spawn. Without md/uuid, mdadm runs every time.
  struct Identity {
    std::string uuid;  // mdadm's form, "xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx"
    std::string name;  // without the homehost prefix
  };
  common::Result<Identity> ReadIdentity(const fsutil::AttrDir& dir, const std::string& kernel_name);
  // A running array found by name, with what was read to find it.
  struct Resolved {
    fsutil::AttrDir dir;      // its /sys/block/<kernel name>, held open
    std::string kernel_name;  // "md127"
    std::string array_state;  // its md/array_state: neither empty nor "clear"
    Identity identity;        // ReadIdentity's answer, naming the array
  };
  // NotFound when not running.
  common::Result<Resolved> Resolve(std::string_view name);
  // Calls `visit` with the open /sys/block/<kernel name>, the kernel name and md/array_state of
  // every running array (array_state neither empty nor "clear"), in listing order; returns the
  // first error `visit` returns.
  using RunningVisitor =
      std::function<common::Status(const fsutil::AttrDir&, const std::string&, std::string)>;
  common::Status ForEachRunning(const RunningVisitor& visit);
  // The array's kernel name ("md127"). NotFound when not running.
  common::Result<std::string> ResolveKernelName(std::string_view name);
  // Reads the array from sysfs, relative to `dir` (its /sys/block/<kernel name>).
  // `array_state` and `identity`, when given, were read by the caller during the same call
  // (Resolve, ListArrays) and are not read again.
  common::Result<MdArrayState> ReadArray(const fsutil::AttrDir& dir, const std::string& kernel_name,
                                         std::optional<std::string> array_state,
                                         std::optional<Identity> identity);
  // The same, opening the directory.
  common::Result<MdArrayState> ReadArray(const std::string& kernel_name);
  const MdMemberState* FindMember(const MdArrayState& array, const std::string& device,
                                  std::string* kernel_name);
  // Sets write-mostly on a member through sysfs (idempotent).
  common::Status SetWriteMostly(const std::string& array_device, const std::string& device,
                                const std::string& what);

  Exec& exec_;
  LinuxMdPaths paths_;
  std::mutex identities_mu_;
  // kernel name -> (its md/uuid when read, identity)
  std::map<std::string, std::pair<std::string, Identity>> identities_;
};

}  // namespace agent::sys
