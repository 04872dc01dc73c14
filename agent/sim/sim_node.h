// SimCluster: nodes whose kernel layer is the in-memory fakes of agent/sys/fake, wired together
// the way real nodes are: partitions a node creates are block devices its nvmet can export;
// a consumer's MD sees its local partitions and the namespaces its NVMe host imports, and a
// namespace vanishes when its target goes offline; a running array is a block device XFS can be
// made on and mounted. Used by the agent's unit tests and by the agent's simulation mode
// (--simulate), which runs many agents on one machine to exercise the control plane.
//
// Thread contract: adding nodes is not thread-safe (set up first). The nodes share one store of
// MD superblocks (they live on the storage, which several nodes see), so agents of one
// SimCluster must not run their passes concurrently (AgentConfig::pass_strand).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/sys/fake/block_model.h"
#include "agent/sys/fake/drives.h"
#include "agent/sys/fake/filesystem.h"
#include "agent/sys/fake/md.h"
#include "agent/sys/fake/nvme_host.h"
#include "agent/sys/fake/nvmet.h"
#include "agent/sys/fake/partitions.h"
#include "agent/volume.h"

namespace agent::sim {

// Partitions that become exportable block devices on their node's target when created.
class SimPartitions final : public sys::Partitions {
 public:
  SimPartitions(sys::BlockModel& block, sys::FakeFabric& fabric, sys::FakeMd& md, std::string node);

  common::Result<std::vector<sys::PartitionInfo>> List(std::string_view drive) override;
  common::Result<sys::FreeSpace> GetFreeSpace(std::string_view drive) override;
  common::Status EnsureGpt(std::string_view drive) override;
  common::Result<sys::PartitionInfo> Ensure(std::string_view drive,
                                            const sys::PartitionSpec& spec) override;
  common::Result<sys::PartitionInfo> Grow(std::string_view drive, const sys::MemberRef& member,
                                          uint64_t new_size_bytes) override;
  common::Status Delete(std::string_view drive, const sys::MemberRef& member) override;
  common::Result<std::optional<std::string>> ProbeSignature(std::string_view device) override;
  common::Result<sys::ZeroMethod> Zero(std::string_view drive, const sys::MemberRef& member,
                                       bool allow_signature) override;

 private:
  void Register(const sys::PartitionInfo& p);

  sys::FakePartitions inner_;
  sys::FakeFabric& fabric_;
  sys::FakeMd& md_;
  std::string node_;
};

// MD whose running arrays are block devices of the node (for mkfs and mount).
class SimMd final : public sys::Md {
 public:
  SimMd(sys::FakeMd& md, sys::BlockModel& block) : md_(md), block_(block) {}

  common::Status Create(const sys::MdCreateSpec& spec) override;
  common::Status Assemble(const sys::MdAssembleSpec& spec) override;
  common::Status Add(std::string_view name, const sys::MdMember& member) override;
  common::Status ReAdd(std::string_view name, std::string_view device) override;
  common::Status Replace(std::string_view name, std::string_view old_device,
                         const sys::MdMember& new_member) override;
  common::Status Fail(std::string_view name, std::string_view device) override;
  common::Status Remove(std::string_view name, std::string_view device) override;
  common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) override;
  common::Status Grow(std::string_view name) override;
  common::Status Stop(std::string_view name) override;
  common::Result<sys::MdArrayState> GetArray(std::string_view name) override;
  common::Result<std::vector<sys::MdArrayState>> ListArrays() override;
  common::Result<std::vector<std::string>> ListArrayNames() override;
  common::Result<sys::MdSuperblock> Examine(std::string_view device) override;
  common::Status ZeroSuperblock(std::string_view device, std::string_view expected_uuid) override;

 private:
  void Publish(std::string_view name);

  sys::FakeMd& md_;
  sys::BlockModel& block_;
};

struct SimNode {
  SimNode(sys::FakeFabric& fabric, std::string name);
  NodeKernel Kernel();
  // Adds an NVMe drive "/dev/<device>" of `size_bytes` with 4096-byte sectors.
  void AddDrive(const std::string& device, uint64_t size_bytes, uint32_t sector_size = 4096);

  std::string name;
  std::string host_nqn;
  sys::FakeFabric& fabric;
  sys::BlockModel block;
  sys::FakeDrives drives{block};
  sys::FakeFilesystem fs{block};
  sys::FakeMd fake_md;
  SimMd md{fake_md, block};
  SimPartitions partitions;
  sys::FakeNvmetTarget nvmet;
  sys::FakeNvmeHost host;
};

class SimCluster {
 public:
  SimNode& AddNode(const std::string& name);
  SimNode& node(const std::string& name) { return *nodes_.at(name); }
  sys::FakeFabric& fabric() { return fabric_; }
  // Whole-node power loss (false) and return (true): its target stops answering, and the
  // controllers other nodes had to it go away after ctrl_loss_tmo (ExpireControllers).
  void SetOnline(const std::string& name, bool online);
  void ExpireControllers();
  // Peers as the agents publish them (host NQN, address = the node name).
  Peers PeersView() const;

 private:
  sys::FakeFabric fabric_;
  // MD superblocks of every node's storage, keyed "<node>:<device>" of the disk they are on.
  std::shared_ptr<sys::FakeMd::SuperblockStore> superblocks_ =
      std::make_shared<sys::FakeMd::SuperblockStore>();
  std::map<std::string, std::unique_ptr<SimNode>> nodes_;
};

}  // namespace agent::sim
