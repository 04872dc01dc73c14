// LinuxMd with a scripted Exec (mdadm answers) over a temporary /sys/block and /dev tree.
#include "agent/sys/linux/md.h"

#include <stdlib.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "agent/sys/linux/nvme_md_fs.h"

namespace agent::sys {
namespace {

namespace stdfs = std::filesystem;
using common::StatusCode;

// Answers mdadm calls by matching the joined argv against a prefix; records every call.
class ScriptedExec final : public Exec {
 public:
  void On(std::string args_prefix, ExecResult result) {
    rules_.push_back({std::move(args_prefix), std::move(result)});
  }
  common::Result<ExecResult> Run(const ExecRequest& request) override {
    std::string joined;
    for (const auto& a : request.args) joined += (joined.empty() ? "" : " ") + a;
    calls.push_back(joined);
    for (const auto& [prefix, result] : rules_) {
      if (joined.rfind(prefix, 0) == 0) return result;
    }
    return ExecResult{1, 0, false, "", "mdadm: unexpected call"};
  }
  std::vector<std::string> calls;

 private:
  std::vector<std::pair<std::string, ExecResult>> rules_;
};

ExecResult Ok(std::string out = {}) { return {0, 0, false, std::move(out), ""}; }
ExecResult Fail(std::string err) { return {1, 0, false, "", std::move(err)}; }

struct FakeSysfs {
  stdfs::path root;
  LinuxMdPaths paths;
  FakeSysfs() {
    char tmpl[] = "/tmp/md_test.XXXXXX";
    root = ::mkdtemp(tmpl);
    paths.mdadm = "/sbin/mdadm";
    paths.sys_block = (root / "block").string();
    paths.dev = (root / "dev").string();
    stdfs::create_directories(root / "dev/md");
    stdfs::create_directories(paths.sys_block);
  }
  ~FakeSysfs() { stdfs::remove_all(root); }
  static void Write(const stdfs::path& p, const std::string& s) {
    stdfs::create_directories(p.parent_path());
    std::ofstream(p) << s << "\n";
  }
  void Array(const std::string& kname, const std::string& name, const std::string& state,
             int degraded, const std::string& sync_action, const std::string& completed) {
    stdfs::path md = stdfs::path(paths.sys_block) / kname / "md";
    Write(md / "array_state", state);
    Write(md / "level", "raid1");
    Write(md / "raid_disks", "2");
    Write(md / "degraded", std::to_string(degraded));
    Write(md / "sync_action", sync_action);
    Write(md / "sync_completed", completed);
    stdfs::create_symlink("../" + kname, root / "dev/md" / name);
  }
  void Member(const std::string& kname, const std::string& dev, const std::string& state,
              const std::string& slot) {
    stdfs::path d = stdfs::path(paths.sys_block) / kname / "md" / ("dev-" + dev);
    Write(d / "state", state);
    Write(d / "slot", slot);
  }
  std::string Dev(const std::string& name) const { return paths.dev + "/" + name; }
};

constexpr const char* kUuid = "11111111:22222222:33333333:44444444";

std::string Detail(const std::string& name) {
  return fmt::format(
      "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_METADATA=1.2\nMD_UUID={}\nMD_DEVNAME={}\nMD_NAME={}\n",
      kUuid, name, name);
}

std::string ExamineOut(const std::string& uuid, uint64_t events) {
  return fmt::format(
      "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_NAME=any:vol\nMD_ARRAY_SIZE=319.00 MiB\nMD_UUID={}\n"
      "MD_UPDATE_TIME=1700000000\nMD_DEV_UUID=aaaaaaaa:bbbbbbbb:cccccccc:dddddddd\n"
      "MD_EVENTS={}\n",
      uuid, events);
}

TEST_CASE("ParseMdadmExport", "[unit][agent][md]") {
  auto kv = ParseMdadmExport("MD_LEVEL=raid1\nMD_NAME='host:vol 1'\nbogus\n=x\nMD_EVENTS=33");
  CHECK(kv["MD_LEVEL"] == "raid1");
  CHECK(kv["MD_NAME"] == "host:vol 1");
  CHECK(kv["MD_EVENTS"] == "33");
  CHECK(kv.count("bogus") == 0);
}

TEST_CASE("MdadmCreateArgs: RAID1 and RAID10 flags", "[unit][agent][md]") {
  MdCreateSpec r1{"vol", MdLevel::kRaid1, {{"/dev/vda1"}, {"missing"}}, kUuid};
  auto args = MdadmCreateArgs(r1, "/dev");
  REQUIRE(args.ok());
  CHECK(*args == std::vector<std::string>{"--create", "/dev/md/vol", "--run", "--level=1",
                                          "--raid-devices=2", "--metadata=1.2", "--bitmap=internal",
                                          "--data-offset=1024K", "--name=vol", "--homehost=<none>",
                                          std::string("--uuid=") + kUuid, "--failfast", "/dev/vda1",
                                          "missing"});
  MdCreateSpec r10{
      "v10", MdLevel::kRaid10, {{"/dev/a"}, {"/dev/b", true}, {"/dev/c"}, {"/dev/d", true}}, "", 64,
      true};
  r10.bitmap_chunk_kib = 2048;
  args = MdadmCreateArgs(r10, "/dev");
  REQUIRE(args.ok());
  std::vector<std::string> want = {"--create",
                                   "/dev/md/v10",
                                   "--run",
                                   "--level=10",
                                   "--layout=n2",
                                   "--chunk=64",
                                   "--raid-devices=4",
                                   "--metadata=1.2",
                                   "--bitmap=internal",
                                   "--bitmap-chunk=2048K",
                                   "--data-offset=1024K",
                                   "--name=v10",
                                   "--homehost=<none>",
                                   "--assume-clean",
                                   "--failfast",
                                   "/dev/a",
                                   "/dev/b",
                                   "/dev/c",
                                   "/dev/d"};
  CHECK(*args == want);
  CHECK_FALSE(MdadmCreateArgs({"v", MdLevel::kRaid1, {{"/dev/a"}}}, "/dev").ok());
}

TEST_CASE("LinuxMd reads array state from sysfs and mdadm --detail", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 1, "recover", "1024 / 4096");
  sys.Member("md127", "vda1", "in_sync", "0");
  sys.Member("md127", "nvme0n1", "write_mostly,failfast", "1");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("any:vol")));
  LinuxMd md(exec, sys.paths);
  auto a = md.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->name == "vol");
  CHECK(a->device == sys.Dev("md127"));
  CHECK(a->uuid == kUuid);
  CHECK(a->level == "raid1");
  CHECK(a->raid_disks == 2);
  CHECK(a->degraded == 1);
  CHECK(a->sync_action == "recover");
  CHECK(a->sync_done_sectors == 1024);
  CHECK(a->sync_total_sectors == 4096);
  REQUIRE(a->members.size() == 2);
  CHECK(a->members[0].kernel_name == "nvme0n1");
  CHECK(a->members[0].write_mostly);
  CHECK(a->members[0].failfast);
  CHECK_FALSE(a->members[0].in_sync);
  CHECK(a->members[0].slot == 1);
  CHECK(a->members[1].in_sync);
  CHECK(md.GetArray("other").status().code() == StatusCode::kNotFound);
}

TEST_CASE("LinuxMd runs mdadm --detail once per array identity, not on every read",
          "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 0, "idle", "none");
  sys.Member("md127", "vda1", "in_sync", "0");
  const stdfs::path uuid_attr = stdfs::path(sys.paths.sys_block) / "md127/md/uuid";
  FakeSysfs::Write(uuid_attr, "11111111-2222-2222-3333-333344444444");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("any:vol")));
  LinuxMd md(exec, sys.paths);
  for (int i = 0; i < 3; ++i) {
    auto a = md.GetArray("vol");
    REQUIRE(a.ok());
    CHECK(a->uuid == kUuid);
    auto all = md.ListArrays();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].name == "vol");
  }
  // The kernel's md/uuid names the array: the name and UUID mdadm reported are reused.
  CHECK(exec.calls.size() == 1);

  // md127 now holds another array (stopped and a new one started under the same kernel name).
  FakeSysfs::Write(uuid_attr, "55555555-6666-6666-7777-777788888888");
  REQUIRE(md.GetArray("vol").ok());
  CHECK(exec.calls.size() == 2);

  // A kernel without md/uuid (before 5.9): mdadm on every read, as the name cannot be pinned.
  stdfs::remove(uuid_attr);
  REQUIRE(md.GetArray("vol").ok());
  REQUIRE(md.GetArray("vol").ok());
  CHECK(exec.calls.size() >= 4);
}

// An idle pass reads every array twice (its own reconcile and ObserveInSync): what one read
// costs in system calls is most of the agent's idle CPU.
TEST_CASE("LinuxMd GetArray and ListArrays read each attribute once, with one read() each",
          "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 0, "idle", "none");
  sys.Member("md127", "vda1", "in_sync", "0");
  sys.Member("md127", "nvme0n1", "in_sync,write_mostly", "1");
  const stdfs::path block = stdfs::path(sys.paths.sys_block) / "md127";
  FakeSysfs::Write(block / "md/uuid", "11111111-2222-2222-3333-333344444444");
  FakeSysfs::Write(block / "size", "1048576");
  FakeSysfs::Write(block / "stat", "1 0 2 0 3 0 4 0 0 0 0 0 0 0 0");
  FakeSysfs::Write(block / "md/sync_speed_max", "200000 (system)");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
  LinuxMd md(exec, sys.paths);
  REQUIRE(md.GetArray("vol").ok());  // mdadm --detail once; the identity is cached after it

  auto repeats = [](std::vector<std::string> opened) {
    std::sort(opened.begin(), opened.end());
    std::vector<std::string> twice;
    for (size_t i = 1; i < opened.size(); ++i) {
      if (opened[i] == opened[i - 1] && (twice.empty() || twice.back() != opened[i])) {
        twice.push_back(opened[i]);
      }
    }
    return twice;
  };
  {
    fsutil::ScopedAttrTrace trace;
    auto a = md.GetArray("vol");
    REQUIRE(a.ok());
    CHECK(a->array_state == "clean");
    CHECK(a->uuid == kUuid);
    CHECK(a->members.size() == 2);
    CHECK(repeats(trace.opened) == std::vector<std::string>{});
    // array_state, uuid, level, size, stat, raid_disks, degraded, sync_action,
    // sync_speed_max, sync_completed, and each member's state and slot.
    CHECK(trace.opened.size() == 14);
    // Every file exists here: one read() per attribute, none to see EOF.
    CHECK(trace.reads == static_cast<int>(trace.opened.size()));
    // One walk of /sys/block/md127's path (a symlink in sysfs): the attributes and the member
    // listing are opened relative to it.
    CHECK(trace.walks == 1);
  }
  {
    fsutil::ScopedAttrTrace trace;
    auto all = md.ListArrays();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].array_state == "clean");
    CHECK(repeats(trace.opened) == std::vector<std::string>{});
    CHECK(trace.walks == 2);  // /sys/block's listing, then md127
  }
  CHECK(exec.calls.size() == 1);
}

TEST_CASE("LinuxMd ListArrayNames names the running arrays, or fails", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 0, "idle", "none");
  sys.Array("md126", "other", "active", 0, "idle", "none");
  sys.Array("md125", "gone", "clear", 0, "idle", "none");  // stopped: not running
  FakeSysfs::Write(stdfs::path(sys.paths.sys_block) / "nvme0n1/size", "1024");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("any:vol")));
  exec.On("--detail --export " + sys.Dev("md126"), Ok(Detail("other")));
  LinuxMd md(exec, sys.paths);
  {
    fsutil::ScopedAttrTrace trace;
    auto names = md.ListArrayNames();
    REQUIRE(names.ok());
    CHECK(*names == std::vector<std::string>{"other", "vol"});
    // Each array's md/array_state and the running ones' md/uuid (absent here, so mdadm names
    // them); none of the attributes GetArray reads.
    CHECK(trace.opened.size() == 5);
  }
  // The names GetArray finds.
  CHECK(md.GetArray("other").ok());
  CHECK(md.GetArray("gone").status().code() == StatusCode::kNotFound);
  // A running array that cannot be named makes the listing fail rather than leave it out.
  sys.Array("md124", "mystery", "clean", 0, "idle", "none");
  exec.On("--detail --export " + sys.Dev("md124"), Fail("mdadm: cannot open"));
  auto names = md.ListArrayNames();
  REQUIRE_FALSE(names.ok());
  CHECK(names.status().message().find("md124") != std::string::npos);
}

TEST_CASE("LinuxMd reads the array's size and I/O counters", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md124", "vol", "clean", 0, "idle", "none");
  FakeSysfs::Write(stdfs::path(sys.paths.sys_block) / "md124/size", "1048576");
  FakeSysfs::Write(stdfs::path(sys.paths.sys_block) / "md124/stat",
                   "     120        0     2048       10      300        0     8192       40"
                   "        0       50       60        0        0        0        0");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md124"), Ok(Detail("vol")));
  LinuxMd md(exec, sys.paths);
  auto a = md.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->size_bytes == 1048576ull * 512);
  CHECK(a->reads == 120);
  CHECK(a->read_bytes == 2048ull * 512);
  CHECK(a->writes == 300);
  CHECK(a->write_bytes == 8192ull * 512);
}

TEST_CASE("LinuxMd resync speed cap: md/sync_speed_max, local or system", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md124", "vol", "clean", 0, "idle", "none");
  const stdfs::path file = stdfs::path(sys.paths.sys_block) / "md124/md/sync_speed_max";
  FakeSysfs::Write(file, "200000 (system)");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md124"), Ok(Detail("vol")));
  LinuxMd md(exec, sys.paths);
  // WriteAttr overwrites in place (no O_TRUNC, as sysfs wants): compare the written prefix.
  auto wrote = [&](const std::string& value) {
    std::ifstream in(file);
    std::string text;
    std::getline(in, text);
    return text.compare(0, value.size(), value) == 0;
  };
  auto a = md.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->sync_speed_max_kib == 0);  // the system-wide limit is no cap of ours

  REQUIRE(md.SetSyncSpeedLimit("vol", 51200).ok());
  CHECK(wrote("51200"));
  FakeSysfs::Write(file, "51200 (local)");  // as the kernel shows it afterwards
  a = md.GetArray("vol");
  REQUIRE(a.ok());
  CHECK(a->sync_speed_max_kib == 51200);
  REQUIRE(md.SetSyncSpeedLimit("vol", 0).ok());
  CHECK(wrote("system"));
}

TEST_CASE("LinuxMd ReAdd compares event counts before --re-add", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 1, "idle", "none");
  sys.Member("md127", "vda1", "in_sync", "0");
  sys.Member("md127", "nvme0n1", "faulty", "none");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
  exec.On(sys.Dev("md127") + " --remove failed", Ok());
  exec.On("--examine --export " + sys.Dev("vda1"), Ok(ExamineOut(kUuid, 40)));
  exec.On(sys.Dev("md127") + " --re-add", Ok());
  LinuxMd md(exec, sys.paths);

  SECTION("behind: re-added") {
    exec.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 33)));
    REQUIRE(md.ReAdd("vol", "/dev/nvme0n1").ok());
    CHECK(exec.calls.back() == sys.Dev("md127") + " --re-add /dev/nvme0n1");
    CHECK(std::count(exec.calls.begin(), exec.calls.end(), sys.Dev("md127") + " --remove failed") ==
          1);
  }
  SECTION("ahead: diverged, refused") {
    exec.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 41)));
    auto s = md.ReAdd("vol", "/dev/nvme0n1");
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(s.message().find("diverged") != std::string::npos);
    CHECK(exec.calls.back().find("--re-add") == std::string::npos);
  }
  SECTION("another array: refused") {
    exec.On("--examine --export /dev/nvme0n1",
            Ok(ExamineOut("99999999:22222222:33333333:44444444", 1)));
    CHECK(md.ReAdd("vol", "/dev/nvme0n1").code() == StatusCode::kFailedPrecondition);
  }
  SECTION("mdadm says not possible") {
    exec.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 30)));
    ScriptedExec strict;
    strict.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
    strict.On(sys.Dev("md127") + " --remove failed", Ok());
    strict.On("--examine --export " + sys.Dev("vda1"), Ok(ExamineOut(kUuid, 40)));
    strict.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 30)));
    strict.On(sys.Dev("md127") + " --re-add",
              Fail("mdadm: --re-add for /dev/nvme0n1 to /dev/md127 is not possible\n"));
    LinuxMd strict_md(strict, sys.paths);
    CHECK(strict_md.ReAdd("vol", "/dev/nvme0n1").code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("LinuxMd ZeroSuperblock erases only this array's superblock of a free device",
          "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md127", "vol", "clean", 1, "idle", "none");
  sys.Member("md127", "vda1", "in_sync", "0");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
  exec.On("--examine --export " + sys.Dev("vda1"), Ok(ExamineOut(kUuid, 40)));
  exec.On("--zero-superblock /dev/nvme0n1", Ok());
  LinuxMd md(exec, sys.paths);
  auto zeroed = [&] {
    return std::count(exec.calls.begin(), exec.calls.end(), "--zero-superblock /dev/nvme0n1");
  };

  SECTION("this array's, not in use: erased") {
    exec.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 41)));
    REQUIRE(md.ZeroSuperblock("/dev/nvme0n1", kUuid).ok());
    CHECK(zeroed() == 1);
  }
  SECTION("no superblock: nothing to do") {
    exec.On("--examine --export /dev/nvme0n1",
            Fail("mdadm: No md superblock detected on /dev/nvme0n1.\n"));
    CHECK(md.ZeroSuperblock("/dev/nvme0n1", kUuid).ok());
    CHECK(zeroed() == 0);
  }
  SECTION("another array's: refused") {
    exec.On("--examine --export /dev/nvme0n1",
            Ok(ExamineOut("99999999:22222222:33333333:44444444", 41)));
    auto s = md.ZeroSuperblock("/dev/nvme0n1", kUuid);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(s.message().find("99999999") != std::string::npos);
    CHECK(zeroed() == 0);
  }
  SECTION("a member of a running array: refused") {
    auto s = md.ZeroSuperblock(sys.Dev("vda1"), kUuid);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(s.message().find("md127") != std::string::npos);
    CHECK(std::none_of(exec.calls.begin(), exec.calls.end(),
                       [](const std::string& c) { return c.rfind("--zero-superblock", 0) == 0; }));
  }
  SECTION("held open by someone else: mdadm refuses, FailedPrecondition") {
    exec.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 41)));
    ScriptedExec busy;
    busy.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
    busy.On("--examine --export /dev/nvme0n1", Ok(ExamineOut(kUuid, 41)));
    busy.On("--zero-superblock",
            Fail("mdadm: Couldn't open /dev/nvme0n1 for write - not zeroing\n"));
    LinuxMd busy_md(busy, sys.paths);
    CHECK(busy_md.ZeroSuperblock("/dev/nvme0n1", kUuid).code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("LinuxMd idempotency and refusals without running mdadm", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md126", "vol", "active", 0, "idle", "none");
  sys.Member("md126", "vda1", "in_sync", "0");
  sys.Member("md126", "nvme0n1", "in_sync,write_mostly", "1");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md126"), Ok(Detail("vol")));
  exec.On("--stop " + sys.Dev("md126"),
          Fail("mdadm: Cannot get exclusive access to /dev/md126:Perhaps a running process"));
  LinuxMd md(exec, sys.paths);
  CHECK(md.Add("vol", {"/dev/nvme0n1", true}).ok());
  CHECK(md.ReAdd("vol", "/dev/nvme0n1").ok());
  CHECK(md.Fail("vol", "/dev/absent").ok());
  CHECK(md.Remove("vol", "/dev/absent").ok());
  CHECK(md.Remove("vol", "/dev/vda1").code() == StatusCode::kFailedPrecondition);
  CHECK(md.Stop("vol").code() == StatusCode::kFailedPrecondition);
  CHECK(md.Stop("absent").ok());
  MdCreateSpec same{"vol", MdLevel::kRaid1, {{"/dev/vda1"}, {"/dev/nvme0n1", true}}, kUuid};
  CHECK(md.Create(same).ok());
  MdCreateSpec other = same;
  other.uuid = "99999999:22222222:33333333:44444444";
  CHECK(md.Create(other).code() == StatusCode::kAlreadyExists);
  for (const auto& call : exec.calls) {
    CHECK((call.rfind("--detail", 0) == 0 || call.rfind("--stop", 0) == 0));
  }
}

TEST_CASE("LinuxMd Create runs mdadm and sets write-mostly through sysfs", "[unit][agent][md]") {
  FakeSysfs sys;
  ScriptedExec exec;
  // mdadm "creates" the array: the script lays out sysfs the way the kernel would.
  exec.On("--create", Ok());
  exec.On("--detail --export " + sys.Dev("md127"), Ok(Detail("vol")));
  MdCreateSpec spec{"vol", MdLevel::kRaid1, {{"/dev/vda1"}, {"/dev/nvme0n1", true}}, kUuid};
  sys.Array("md127", "vol", "clear", 0, "idle", "none");
  FakeSysfs::Write(stdfs::path(sys.paths.sys_block) / "md127/md/array_state", "clear");
  // First call: not running (array_state clear) → mdadm --create; then it "appears".
  class CreateHook final : public Exec {
   public:
    CreateHook(ScriptedExec& inner, FakeSysfs& sys) : inner_(inner), sys_(sys) {}
    common::Result<ExecResult> Run(const ExecRequest& r) override {
      if (!r.args.empty() && r.args[0] == "--create") {
        FakeSysfs::Write(stdfs::path(sys_.paths.sys_block) / "md127/md/array_state", "clean");
        sys_.Member("md127", "vda1", "in_sync", "0");
        sys_.Member("md127", "nvme0n1", "in_sync", "1");
      }
      return inner_.Run(r);
    }

   private:
    ScriptedExec& inner_;
    FakeSysfs& sys_;
  } hook(exec, sys);
  LinuxMd hooked(hook, sys.paths);
  REQUIRE(hooked.Create(spec).ok());
  REQUIRE(!exec.calls.empty());
  CHECK(std::any_of(exec.calls.begin(), exec.calls.end(),
                    [](const std::string& c) { return c.rfind("--create", 0) == 0; }));
  std::ifstream in(stdfs::path(sys.paths.sys_block) / "md127/md/dev-nvme0n1/state");
  std::string state;
  std::getline(in, state);
  CHECK(state.rfind("writemostly", 0) == 0);
}

// The kernel (6.1, seen in the VM lab) marks a member faulty when mdadm --add passes the
// write-mostly flag into a degraded RAID1, so Add and Replace set write-mostly through sysfs.
TEST_CASE("LinuxMd Add sets write-mostly through sysfs, not mdadm", "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md125", "vol", "clean", 1, "idle", "none");
  sys.Member("md125", "vda1", "in_sync", "0");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md125"), Ok(Detail("vol")));
  exec.On(sys.Dev("md125") + " --add", Ok());
  class AddHook final : public Exec {
   public:
    AddHook(ScriptedExec& inner, FakeSysfs& sys) : inner_(inner), sys_(sys) {}
    common::Result<ExecResult> Run(const ExecRequest& r) override {
      if (r.args.size() > 1 && r.args[1] == "--add")
        sys_.Member("md125", "nvme0n1", "spare", "none");
      return inner_.Run(r);
    }

   private:
    ScriptedExec& inner_;
    FakeSysfs& sys_;
  } hook(exec, sys);
  LinuxMd md(hook, sys.paths);
  auto state = [&] {
    std::ifstream in(stdfs::path(sys.paths.sys_block) / "md125/md/dev-nvme0n1/state");
    std::string s;
    std::getline(in, s);
    return s;
  };

  SECTION("new member") {
    REQUIRE(md.Add("vol", {"/dev/nvme0n1", true}).ok());
    auto add = std::find_if(exec.calls.begin(), exec.calls.end(), [](const std::string& c) {
      return c.find("--add") != std::string::npos;
    });
    REQUIRE(add != exec.calls.end());
    CHECK(add->find("--write-mostly") == std::string::npos);
    CHECK(add->find("--failfast") != std::string::npos);
    CHECK(state() == "writemostly");
  }
  SECTION("added before a crash, flag not yet set: converges without a second --add") {
    sys.Member("md125", "nvme0n1", "spare", "none");
    REQUIRE(md.Add("vol", {"/dev/nvme0n1", true}).ok());
    CHECK(std::none_of(exec.calls.begin(), exec.calls.end(),
                       [](const std::string& c) { return c.find("--add") != std::string::npos; }));
    CHECK(state() == "writemostly");
  }
  SECTION("not write-mostly: flag untouched") {
    REQUIRE(md.Add("vol", {"/dev/nvme0n1", false}).ok());
    CHECK(state() == "spare");
  }
}

TEST_CASE("LinuxMd Replace takes a plain spare already in the array without a second --add",
          "[unit][agent][md]") {
  FakeSysfs sys;
  sys.Array("md124", "vol", "clean", 0, "idle", "none");
  sys.Member("md124", "vda1", "in_sync", "0");
  sys.Member("md124", "nvme1n1", "in_sync,write_mostly", "1");
  ScriptedExec exec;
  exec.On("--detail --export " + sys.Dev("md124"), Ok(Detail("vol")));
  exec.On(sys.Dev("md124") + " --replace", Ok());
  exec.On(sys.Dev("md124") + " --add", Ok());
  LinuxMd md(exec, sys.paths);
  auto mdadm_calls = [&](const std::string& flag) {
    return std::count_if(exec.calls.begin(), exec.calls.end(),
                         [&](const std::string& c) { return c.find(flag) != std::string::npos; });
  };

  SECTION("a plain spare (no slot): --replace --with only") {
    sys.Member("md124", "nvme0n1", "spare", "none");
    REQUIRE(md.Replace("vol", "/dev/nvme1n1", {"/dev/nvme0n1", false}).ok());
    CHECK(mdadm_calls("--add") == 0);
    REQUIRE(mdadm_calls("--replace /dev/nvme1n1 --with /dev/nvme0n1") == 1);
  }
  SECTION("not in the array: --add, then --replace --with in the same call") {
    REQUIRE(md.Replace("vol", "/dev/nvme1n1", {"/dev/nvme0n1", false}).ok());
    CHECK(mdadm_calls("--add --failfast /dev/nvme0n1 --replace /dev/nvme1n1 --with") == 1);
  }
  SECTION("already the replacement, or holding a slot: nothing to do") {
    sys.Member("md124", "nvme0n1", "spare,replacement", "1");
    REQUIRE(md.Replace("vol", "/dev/nvme1n1", {"/dev/nvme0n1", false}).ok());
    CHECK(mdadm_calls("--replace") == 0);
  }
  SECTION("a faulty new member is refused") {
    sys.Member("md124", "nvme0n1", "faulty", "none");
    CHECK(md.Replace("vol", "/dev/nvme1n1", {"/dev/nvme0n1", false}).code() ==
          StatusCode::kFailedPrecondition);
    CHECK(mdadm_calls("--replace") == 0);
  }
}

}  // namespace
}  // namespace agent::sys
