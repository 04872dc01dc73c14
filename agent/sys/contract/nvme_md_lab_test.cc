// The NvmetTarget, NvmeHost and Md contracts against the Linux implementations, inside the lab
// VM: root, configfs with nvmet + nvmet-tcp, nvme-tcp, md. The VM's own nvmet is reached over
// 127.0.0.1. Scratch devices come from MESHSTOR_LAB_SPARE_DRIVES (comma or space separated;
// their contents are destroyed): nvmet/nvme cases need 1, md cases 4. Each case skips with a
// message when its prerequisites are missing.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "agent/sys/contract/md_contract.h"
#include "agent/sys/contract/nvme_host_contract.h"
#include "agent/sys/contract/nvmet_contract.h"
#include "agent/sys/linux/exec.h"
#include "agent/sys/linux/md.h"
#include "agent/sys/linux/nvme_host.h"
#include "agent/sys/linux/nvme_md_fs.h"
#include "agent/sys/linux/nvmet.h"
#include "agent/sys/linux/uevents.h"

namespace agent::sys {
namespace {

std::vector<std::string> SpareDrives() {
  std::vector<std::string> out;
  const char* env = std::getenv("MESHSTOR_LAB_SPARE_DRIVES");
  if (env == nullptr) return out;
  std::string list(env);
  for (char& c : list) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(list);
  for (std::string d; in >> d;) out.push_back(d);
  return out;
}

// Empty when the lab can run; else why not.
std::string Missing(bool nvme, bool md, size_t drives) {
  if (::geteuid() != 0) return "not root";
  if (nvme && !fsutil::Exists(std::string(kNvmetConfigfsRoot))) {
    return "no /sys/kernel/config/nvmet (configfs mounted? nvmet, nvmet-tcp loaded?)";
  }
  if (nvme && !fsutil::Exists("/dev/nvme-fabrics")) return "no /dev/nvme-fabrics (nvme-tcp?)";
  if (md && !fsutil::Exists("/proc/mdstat")) return "no /proc/mdstat (md_mod, raid1, raid10?)";
  if (SpareDrives().size() < drives) {
    return fmt::format("MESHSTOR_LAB_SPARE_DRIVES names fewer than {} drives", drives);
  }
  return {};
}

#define LAB_REQUIRE(nvme, md, drives)            \
  do {                                           \
    std::string why = Missing(nvme, md, drives); \
    if (!why.empty()) {                          \
      WARN("skipped: " << why);                  \
      return;                                    \
    }                                            \
  } while (0)

contract::NvmetContractEnv TargetEnv(LinuxNvmetTarget& t) {
  return {&t, SpareDrives()[0], "127.0.0.1", "4420", 4097, "lab"};
}

TEST_CASE("LinuxNvmetTarget contract: export life cycle", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  contract::NvmetContractExportLifecycle(TargetEnv(t));
}

TEST_CASE("LinuxNvmetTarget contract: allowed hosts", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  contract::NvmetContractAllowedHosts(TargetEnv(t));
}

TEST_CASE("LinuxNvmetTarget contract: validation", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  contract::NvmetContractValidation(TargetEnv(t));
}

contract::NvmeHostContractEnv HostEnv(LinuxNvmetTarget& t, LinuxNvmeHost& h) {
  return {&t, &h, SpareDrives()[0], "127.0.0.1", "4420", 4098, "lab"};
}

TEST_CASE("LinuxNvmeHost contract: connect, find, disconnect", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  LinuxNvmeHost h;
  contract::NvmeHostContractConnectFindDisconnect(HostEnv(t, h));
}

TEST_CASE("LinuxNvmeHost contract: a host not allowed cannot connect", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  LinuxNvmeHost h;
  contract::NvmeHostContractAclRefused(HostEnv(t, h));
}

TEST_CASE("LinuxNvmeHost contract: target loss and return", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 1);
  LinuxNvmetTarget t;
  LinuxNvmeHost h;
  contract::NvmeHostContractTargetLoss(HostEnv(t, h));
}

TEST_CASE("LinuxNvmeHost contract: identity", "[.privileged][lab]") {
  LAB_REQUIRE(true, false, 0);
  LinuxNvmetTarget t;
  LinuxNvmeHost h;
  contract::NvmeHostContractIdentity({&t, &h});
}

struct LabMd {
  LinuxExec exec;
  LinuxMd md{exec};
  contract::MdContractEnv Env() {
    auto drives = SpareDrives();
    drives.resize(4);
    contract::MdContractEnv env{&md, drives, "lab"};
    // /sys/block/<name>/size: 512-byte sectors.
    const std::string kname = drives[0].substr(drives[0].rfind('/') + 1);
    std::ifstream size_file("/sys/block/" + kname + "/size");
    uint64_t sectors = 0;
    if (size_file >> sectors) env.device_bytes = sectors * 512;
    return env;
  }
};

TEST_CASE("LinuxMd contract: RAID1 life cycle", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractRaid1Lifecycle(lab.Env());
}

TEST_CASE("LinuxMd contract: a volume ID's array name", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractVolumeIdName(lab.Env());
}

// The kernel marked a member faulty when mdadm --add passed --write-mostly into this degraded
// RAID1 (found here, 2026-11-22); LinuxMd now sets write-mostly through sysfs after the add.
TEST_CASE("LinuxMd contract: missing slot filled by Add", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractMissingSlot(lab.Env());
}

TEST_CASE("LinuxMd contract: RAID10", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractRaid10(lab.Env());
}

// A replacement that joined as a plain spare stayed idle in the real-cluster lab (2026-12-06):
// Replace now names such a spare with --replace --with, no second --add.
TEST_CASE("LinuxMd contract: hot replace, also of a plain spare", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractHotReplace(lab.Env());
}

TEST_CASE("LinuxMd contract: a diverged member comes back as a new member", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractDiverged(lab.Env());
}

TEST_CASE("LinuxMd contract: refusals", "[.privileged][lab]") {
  LAB_REQUIRE(false, true, 4);
  LabMd lab;
  contract::MdContractRefusals(lab.Env());
}

// The kernel emits a "change" uevent for a block device when "change" is written to its uevent
// file; the listener (libnl) must deliver it with the device's name, and only block events.
TEST_CASE("LinuxUeventListener receives a kernel block uevent", "[.privileged][lab]") {
  LAB_REQUIRE(false, false, 1);
  auto listener = LinuxUeventListener::Open({"block"});
  REQUIRE(listener.ok());
  const std::string dev = SpareDrives()[0];
  const std::string kname = dev.substr(dev.rfind('/') + 1);
  REQUIRE(fsutil::WriteAttr("/sys/block/" + kname + "/uevent", "change").ok());
  std::optional<Uevent> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    auto next = (*listener)->Next(std::chrono::seconds(1));
    REQUIRE(next.ok());
    if (next->has_value() && (*next)->devname == kname && (*next)->action == "change") got = *next;
    if (next->has_value()) CHECK((*next)->subsystem == "block");
  }
  REQUIRE(got.has_value());
  CHECK(got->devtype == "disk");
  CHECK(got->seqnum > 0);
  CHECK(got->env.at("DEVNAME") == kname);
}

}  // namespace
}  // namespace agent::sys
