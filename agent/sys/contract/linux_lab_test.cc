// agent_sys_lab_tests: the contract suites against the Linux implementations, on real block
// devices. Root only; meant for the lab VM (Debian kernel), where the harness runs
//   agent_sys_lab_tests '[lab]'
// Drives: loop devices made here on sparse files in $TMPDIR (losetup -P, so the kernel sees
// their partitions), or, when MESHSTOR_LAB_SPARE_DRIVES="/dev/nvme1n1,/dev/nvme2n1" is set,
// those drives, which are WIPED (first and last MiB) before every test section.
// Needs /usr/sbin/losetup (util-linux) for loop devices and /usr/sbin/mkfs.xfs + xfs_growfs
// for the Filesystem suite. Without root every test case passes with a warning saying so.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/sys/contract/exec_contract.h"
#include "agent/sys/contract/filesystem_contract.h"
#include "agent/sys/contract/partitions_contract.h"
#include "agent/sys/linux/drives.h"
#include "agent/sys/linux/exec.h"
#include "agent/sys/linux/filesystem.h"
#include "agent/sys/linux/partitions.h"
#include "agent/sys/linux/unique_fd.h"

namespace agent::sys::contract {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLosetup = "/usr/sbin/losetup";

// Returns false (after a warning) when the lab tests cannot run here.
bool RequireRoot() {
  if (geteuid() != 0) {
    WARN("agent_sys_lab_tests need root (run them inside the lab VM); skipped");
    return false;
  }
  return true;
}

std::vector<std::string> SpareDrives() {
  std::vector<std::string> out;
  const char* env = getenv("MESHSTOR_LAB_SPARE_DRIVES");
  if (env == nullptr) return out;
  std::stringstream ss(env);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Writes a Linux swap v1 header (what mkswap writes, minus the bad-block list) at offset 0:
// version 1, last page, no bad pages, and "SWAPSPACE2" at the end of the first 4 KiB page.
void WriteSwapSignature(const std::string& device) {
  UniqueFd fd(open(device.c_str(), O_WRONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  std::string page(4096, '\0');
  uint32_t version = 1, last_page = 1000;
  std::memcpy(page.data() + 1024, &version, 4);
  std::memcpy(page.data() + 1028, &last_page, 4);
  std::memcpy(page.data() + 4096 - 10, "SWAPSPACE2", 10);
  REQUIRE(pwrite(fd.get(), page.data(), page.size(), 0) == static_cast<ssize_t>(page.size()));
  REQUIRE(fsync(fd.get()) == 0);
}

// Loop devices and files made by one test section; all detached and removed at the end.
class LoopDevices {
 public:
  explicit LoopDevices(Exec& exec) : exec_(exec) {
    std::string tmpl = (fs::temp_directory_path() / "meshstor-lab-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
  }
  ~LoopDevices() {
    for (const std::string& dev : devices_) {
      ExecRequest req{kLosetup, {"-d", dev}};
      (void)exec_.Run(req);  // best effort cleanup; a failure leaves a loop device behind
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // "" when losetup is missing or fails (reported as a warning).
  std::string Make(uint64_t size, uint32_t sector, bool partscan) {
    std::string file = (dir_ / ("disk" + std::to_string(devices_.size()) + ".img")).string();
    {
      UniqueFd fd(open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
      REQUIRE(fd.valid());
      REQUIRE(ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
    }
    ExecRequest req{kLosetup, {"--find", "--show", "--sector-size", std::to_string(sector)}};
    if (partscan) req.args.push_back("--partscan");
    req.args.push_back(file);
    common::Result<ExecResult> r = RunChecked(exec_, req);
    if (!r.ok()) {
      WARN("cannot make a loop device: " << r.status().ToString());
      return "";
    }
    std::string dev = r->stdout_text;
    while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
    devices_.push_back(dev);
    return dev;
  }

 private:
  Exec& exec_;
  fs::path dir_;
  std::vector<std::string> devices_;
};

class LinuxPartitionsEnv {
 public:
  LinuxPartitionsEnv() : loops_(exec_) {}
  ~LinuxPartitionsEnv() { busy_.clear(); }
  Partitions& partitions() { return parts_; }
  // A spare drive of exactly the requested size and sector size, else a loop device: the
  // contract's expectations (what fits, what is exhausted) depend on the geometry.
  std::string NewDrive(uint64_t size, uint32_t sector) {
    while (next_spare_ < spares_.size()) {
      std::string d = spares_[next_spare_];
      common::Result<DriveInfo> info = drives_.Get(d);
      if (!info.ok() || info->size_bytes != size || info->logical_block_size != sector) break;
      ++next_spare_;
      REQUIRE(parts_.WipeDriveForTest(d).ok());
      return d;
    }
    return loops_.Make(size, sector, true);
  }
  void PutSignature(const std::string& device) { WriteSwapSignature(device); }
  common::Status AddForeignPartition(const std::string& drive, const std::string& name,
                                     const std::string& uuid, uint64_t start, uint64_t size) {
    return parts_.AddRawPartitionForTest(drive, name, uuid, start, size);
  }
  void SetBusy(const std::string& device, bool busy) {
    if (!busy) {
      busy_.erase(device);
      return;
    }
    UniqueFd fd(open(device.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    REQUIRE(fd.valid());
    busy_[device] = std::move(fd);
  }

 private:
  LinuxExec exec_;
  LinuxPartitions parts_;
  LinuxDrives drives_;
  LoopDevices loops_;
  std::vector<std::string> spares_ = SpareDrives();
  size_t next_spare_ = 0;
  std::map<std::string, UniqueFd> busy_;
};

class LinuxFilesystemEnv {
 public:
  LinuxFilesystemEnv() : loops_(exec_) {
    std::string tmpl = (fs::temp_directory_path() / "meshstor-mnt-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
  }
  ~LinuxFilesystemEnv() {
    // Unmount whatever a failed section left, innermost first, then remove the directories.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) (void)fs_.Unmount(*it);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Filesystem& fs() { return fs_; }
  std::string NewDevice(uint64_t size) { return loops_.Make(size, 512, false); }
  std::string NewDir() {
    fs::path p = dir_ / ("d" + std::to_string(dirs_.size()));
    fs::create_directories(p);
    dirs_.push_back(p.string());
    return p.string();
  }
  void PutSignature(const std::string& device) { WriteSwapSignature(device); }

 private:
  LinuxExec exec_;
  LinuxFilesystem fs_{exec_};
  LoopDevices loops_;
  fs::path dir_;
  std::vector<std::string> dirs_;
};

TEST_CASE("Lab: Exec contract: LinuxExec", "[.privileged][lab]") {
  LinuxExec exec;
  struct Env {
    LinuxExec& e;
    Exec& exec() { return e; }
    ExecRequest Script(std::string out, std::string err, int code) {
      return {"/bin/sh",
              {"-c", "printf %s \"$1\"; printf %s \"$2\" >&2; exit \"$3\"", "sh", std::move(out),
               std::move(err), std::to_string(code)}};
    }
    ExecRequest Sleeper(std::chrono::milliseconds timeout) {
      ExecRequest req{"/bin/sh", {"-c", "sleep 30"}};
      req.timeout = timeout;
      return req;
    }
    ExecRequest Cat(std::string input) {
      ExecRequest req{"/bin/cat", {}};
      req.stdin_data = std::move(input);
      return req;
    }
  } env{exec};
  ExecContract(env);
}

TEST_CASE("Lab: Partitions contract: LinuxPartitions", "[.privileged][lab]") {
  if (!RequireRoot()) return;
  LinuxPartitionsEnv env;
  PartitionsContract(env);
}

TEST_CASE("Lab: Filesystem contract: LinuxFilesystem", "[.privileged][lab]") {
  if (!RequireRoot()) return;
  if (access("/usr/sbin/mkfs.xfs", X_OK) != 0) {
    WARN("/usr/sbin/mkfs.xfs is missing (xfsprogs); Filesystem contract skipped");
    return;
  }
  LinuxFilesystemEnv env;
  FilesystemContract(env);
}

TEST_CASE("Lab: LinuxDrives reads this machine's NVMe drives", "[.privileged][lab]") {
  LinuxDrives drives;
  common::Result<std::vector<DriveInfo>> list = drives.List();
  REQUIRE(list.ok());
  if (list->empty()) WARN("no local NVMe drives on this machine");
  for (const DriveInfo& d : *list) {
    INFO(d.name);
    CHECK(d.size_bytes > 0);
    CHECK((d.logical_block_size == 512 || d.logical_block_size == 4096));
    CHECK(d.hw_queues > 0);
    CHECK(d.transport == "pcie");
    common::Result<DriveInfo> again = drives.Get(d.device_path);
    REQUIRE(again.ok());
    CHECK(*again == d);
  }
}

}  // namespace
}  // namespace agent::sys::contract
