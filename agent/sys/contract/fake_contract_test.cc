// The contract suites against the fakes, plus the Linux implementations that need neither root
// nor devices: LinuxExec (with /bin/sh) and LinuxDrives over a fake sysfs tree.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "agent/sys/contract/drives_contract.h"
#include "agent/sys/contract/exec_contract.h"
#include "agent/sys/contract/filesystem_contract.h"
#include "agent/sys/contract/partitions_contract.h"
#include "agent/sys/fake/block_model.h"
#include "agent/sys/fake/drives.h"
#include "agent/sys/fake/exec.h"
#include "agent/sys/fake/filesystem.h"
#include "agent/sys/fake/partitions.h"
#include "agent/sys/linux/drives.h"
#include "agent/sys/linux/exec.h"

namespace agent::sys::contract {
namespace {

namespace fs = std::filesystem;

class FakeExecEnv {
 public:
  Exec& exec() { return exec_; }
  ExecRequest Script(std::string out, std::string err, int code) {
    std::string path = "/fake/bin/script" + std::to_string(++n_);
    ExecResult r;
    r.exit_code = code;
    r.stdout_text = std::move(out);
    r.stderr_text = std::move(err);
    exec_.SetResult(path, r);
    return Request(path);
  }
  ExecRequest Sleeper(std::chrono::milliseconds timeout) {
    std::string path = "/fake/bin/sleep";
    exec_.SetHandler(path, [](const ExecRequest&) {
      ExecResult r;
      r.timed_out = true;
      r.signal = SIGTERM;
      return common::Result<ExecResult>(r);
    });
    ExecRequest req = Request(path);
    req.timeout = timeout;
    return req;
  }
  ExecRequest Cat(std::string input) {
    exec_.SetHandler("/fake/bin/cat", [](const ExecRequest& req) {
      return common::Result<ExecResult>(FakeExec::Ok(req.stdin_data));
    });
    ExecRequest req = Request("/fake/bin/cat");
    req.stdin_data = std::move(input);
    return req;
  }

 private:
  static ExecRequest Request(std::string path) {
    ExecRequest req;
    req.path = std::move(path);
    return req;
  }
  FakeExec exec_;
  int n_ = 0;
};

class LinuxExecEnv {
 public:
  LinuxExecEnv() : exec_(LinuxExec::Options{std::chrono::milliseconds(500), 16u << 20}) {}
  Exec& exec() { return exec_; }
  ExecRequest Script(std::string out, std::string err, int code) {
    return Sh("printf %s \"$1\"; printf %s \"$2\" >&2; exit \"$3\"",
              {std::move(out), std::move(err), std::to_string(code)});
  }
  ExecRequest Sleeper(std::chrono::milliseconds timeout) {
    ExecRequest req = Sh("sleep 30", {});
    req.timeout = timeout;
    return req;
  }
  ExecRequest Cat(std::string input) {
    ExecRequest req;
    req.path = "/bin/cat";
    req.stdin_data = std::move(input);
    return req;
  }

 private:
  static ExecRequest Sh(std::string script, std::vector<std::string> args) {
    ExecRequest req;
    req.path = "/bin/sh";
    req.args = {"-c", std::move(script), "sh"};
    for (std::string& a : args) req.args.push_back(std::move(a));
    return req;
  }
  LinuxExec exec_;
};

class FakeDrivesEnv {
 public:
  Drives& drives() { return drives_; }
  void AddDrive(const DriveInfo& d) { model_.AddDrive(d); }
  void AddOtherBlockDevice(std::string name) {
    DriveInfo d = TestDrive(std::move(name));
    model_.AddDrive(d);
  }

 private:
  BlockModel model_;
  FakeDrives drives_{model_};
};

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "meshstor-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// LinuxDrives over a sysfs tree laid out as the kernel does it.
class SysfsDrivesEnv {
 public:
  Drives& drives() { return drives_; }
  void AddDrive(const DriveInfo& d) {
    fs::path b = dir_.path() / "block" / d.name;
    WriteFile(b / "size", std::to_string(d.size_bytes / 512) + "\n");
    WriteFile(b / "queue" / "logical_block_size", std::to_string(d.logical_block_size) + "\n");
    WriteFile(b / "device" / "model", d.model + "                    \n");
    WriteFile(b / "device" / "serial", "  " + d.serial + "\n");
    WriteFile(b / "device" / "transport", d.transport + "\n");
    for (uint32_t q = 0; q < d.hw_queues; ++q) fs::create_directories(b / "mq" / std::to_string(q));
  }
  void AddOtherBlockDevice(std::string name) {
    fs::path b = dir_.path() / "block" / name;
    WriteFile(b / "size", "2048\n");
  }
  // A namespace imported over NVMe/TCP as the kernel shows a native multipath head: device/ is
  // the subsystem with its controller nvme<C>; nothing else (as while it reconnects).
  void AddImportedHead(const std::string& name, int controller) {
    fs::path dev = dir_.path() / "block" / name / "device";
    WriteFile(dev / "subsysnqn", "nqn.2026-11.io.meshstor:b:a\n");
    WriteFile(dev / ("nvme" + std::to_string(controller)) / "transport", "tcp\n");
  }

 private:
  TempDir dir_;
  LinuxDrives drives_{dir_.path().string(), "/dev"};
};

class FakePartitionsEnv {
 public:
  Partitions& partitions() { return parts_; }
  std::string NewDrive(uint64_t size, uint32_t sector) {
    DriveInfo d = TestDrive("nvme" + std::to_string(n_++) + "n1");
    d.size_bytes = size;
    d.logical_block_size = sector;
    model_.AddDrive(d);
    return d.device_path;
  }
  void PutSignature(const std::string& device) { model_.SetSignature(device, "swap"); }
  common::Status AddForeignPartition(const std::string& drive, const std::string& name,
                                     const std::string& uuid, uint64_t start, uint64_t size) {
    std::optional<FakeDriveState> d = model_.Drive(drive);
    uint32_t number = 1;
    while (d && d->partitions.count(number) != 0) ++number;
    model_.AddRawPartition(
        drive,
        FakePartition{number, name, uuid, "0fc63daf-8483-4772-8e79-3d69d8477de4", start, size});
    return common::OkStatus();
  }
  void SetBusy(const std::string& device, bool busy) { model_.SetInUse(device, busy); }

 private:
  BlockModel model_;
  FakePartitions parts_{model_};
  int n_ = 0;
};

class FakeFilesystemEnv {
 public:
  Filesystem& fs() { return fs_; }
  std::string NewDevice(uint64_t size) {
    std::string path = "/dev/md" + std::to_string(120 + n_++);
    model_.AddDevice(path, size, 4096);
    return path;
  }
  std::string NewDir() {
    std::string path = "/var/lib/kubelet/test/dir" + std::to_string(n_++);
    model_.AddDirectory(path);
    return path;
  }
  void PutSignature(const std::string& device) { model_.SetSignature(device, "swap"); }

 private:
  BlockModel model_;
  FakeFilesystem fs_{model_};
  int n_ = 0;
};

TEST_CASE("Exec contract: FakeExec", "[unit][agent][sys]") {
  FakeExecEnv env;
  ExecContract(env);
}

TEST_CASE("Exec contract: LinuxExec", "[unit][agent][sys]") {
  LinuxExecEnv env;
  ExecContract(env);
}

TEST_CASE("Drives contract: FakeDrives", "[unit][agent][sys]") {
  FakeDrivesEnv env;
  DrivesContract(env);
}

TEST_CASE("Drives contract: LinuxDrives over a fake sysfs", "[unit][agent][sys]") {
  SysfsDrivesEnv env;
  DrivesContract(env);
}

TEST_CASE("LinuxDrives lists local drives without reading imported namespaces",
          "[unit][agent][sys]") {
  // Reading an imported namespace fully (model, serial, size, queues) cost a consumer's pass
  // O(namespaces^2), and one whose attributes could not be read failed the whole listing.
  SysfsDrivesEnv env;
  env.AddDrive(TestDrive("nvme0n1"));
  for (int i = 1; i <= 20; ++i) env.AddImportedHead("nvme" + std::to_string(i) + "n1", 100 + i);
  auto listed = env.drives().List();
  INFO(listed.status().ToString());
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0] == TestDrive("nvme0n1"));
  // Asked for by name, an imported head still says what it is, or why it cannot.
  auto head = env.drives().Get("nvme3n1");
  CHECK_FALSE(head.ok());
  CHECK(head.status().message().find("nvme3n1") != std::string::npos);
}

TEST_CASE("Partitions contract: FakePartitions", "[unit][agent][sys]") {
  FakePartitionsEnv env;
  PartitionsContract(env);
}

TEST_CASE("Filesystem contract: FakeFilesystem", "[unit][agent][sys]") {
  FakeFilesystemEnv env;
  FilesystemContract(env);
}

}  // namespace
}  // namespace agent::sys::contract
