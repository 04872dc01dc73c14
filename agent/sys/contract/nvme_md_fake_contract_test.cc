// The NvmetTarget, NvmeHost and Md contracts against the fakes.
#include <catch2/catch.hpp>

#include "agent/sys/contract/md_contract.h"
#include "agent/sys/contract/nvme_host_contract.h"
#include "agent/sys/contract/nvmet_contract.h"
#include "agent/sys/fake/md.h"
#include "agent/sys/fake/nvme_host.h"
#include "agent/sys/fake/nvmet.h"

namespace agent::sys {
namespace {

using contract::MdContractEnv;
using contract::NvmeHostContractEnv;
using contract::NvmetContractEnv;

struct FakeNvmeCluster {
  FakeFabric fabric;
  FakeNvmetTarget target{fabric, "node-b"};
  FakeNvmeHost host{
      fabric, "node-a",
      NvmeHostIdentity{"nqn.2014-08.org.nvmexpress:uuid:0000000a-0000-4000-8000-0000000000aa",
                       "0000000a-0000-4000-8000-0000000000aa"}};
  FakeNvmeCluster() { target.AddBlockDevice("/dev/vdb1"); }
  NvmetContractEnv TargetEnv() { return {&target, "/dev/vdb1", "10.77.0.2"}; }
  NvmeHostContractEnv HostEnv() { return {&target, &host, "/dev/vdb1", "10.77.0.2"}; }
};

TEST_CASE("FakeNvmetTarget contract: export life cycle", "[unit][agent][nvmet]") {
  FakeNvmeCluster c;
  contract::NvmetContractExportLifecycle(c.TargetEnv());
}

TEST_CASE("FakeNvmetTarget contract: allowed hosts", "[unit][agent][nvmet]") {
  FakeNvmeCluster c;
  contract::NvmetContractAllowedHosts(c.TargetEnv());
}

TEST_CASE("FakeNvmetTarget contract: validation", "[unit][agent][nvmet]") {
  FakeNvmeCluster c;
  contract::NvmetContractValidation(c.TargetEnv());
}

TEST_CASE("FakeNvmeHost contract: connect, find, disconnect", "[unit][agent][nvme]") {
  FakeNvmeCluster c;
  contract::NvmeHostContractConnectFindDisconnect(c.HostEnv());
}

TEST_CASE("FakeNvmeHost contract: a host not allowed cannot connect", "[unit][agent][nvme]") {
  FakeNvmeCluster c;
  contract::NvmeHostContractAclRefused(c.HostEnv());
}

TEST_CASE("FakeNvmeHost contract: target loss and return", "[unit][agent][nvme]") {
  FakeNvmeCluster c;
  contract::NvmeHostContractTargetLoss(c.HostEnv());
}

TEST_CASE("FakeNvmeHost contract: identity", "[unit][agent][nvme]") {
  FakeNvmeCluster c;
  contract::NvmeHostContractIdentity(c.HostEnv());
}

MdContractEnv FakeMdEnv(FakeMd& md) {
  MdContractEnv env{&md, {"/dev/vda1", "/dev/nvme0n1", "/dev/vda2", "/dev/nvme1n1"}};
  for (const auto& d : env.devices) md.AddLocalDevice(d);
  env.device_bytes = 3ull << 30;
  md.SetDeviceSizes([size = env.device_bytes](std::string_view) { return size; });
  return env;
}

TEST_CASE("FakeMd contract: RAID1 life cycle", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractRaid1Lifecycle(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: a volume ID's array name", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractVolumeIdName(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: missing slot filled by Add", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractMissingSlot(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: RAID10", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractRaid10(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: hot replace, also of a plain spare", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractHotReplace(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: a diverged member comes back as a new member", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractDiverged(FakeMdEnv(md));
}

TEST_CASE("FakeMd contract: refusals", "[unit][agent][md]") {
  FakeMd md;
  contract::MdContractRefusals(FakeMdEnv(md));
}

}  // namespace
}  // namespace agent::sys
