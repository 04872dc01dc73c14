#include "agent/sim/sim_node.h"

#include <fmt/format.h>

namespace agent::sim {

SimPartitions::SimPartitions(sys::BlockModel& block, sys::FakeFabric& fabric, sys::FakeMd& md,
                             std::string node)
    : inner_(block), fabric_(fabric), md_(md), node_(std::move(node)) {}

void SimPartitions::Register(const sys::PartitionInfo& p) {
  fabric_.AddTargetDevice(node_, p.device_path);
  md_.AddLocalDevice(p.device_path);
}

common::Result<std::vector<sys::PartitionInfo>> SimPartitions::List(std::string_view drive) {
  ASSIGN_OR_RETURN(auto parts, inner_.List(drive));
  for (const auto& p : parts) Register(p);
  return parts;
}
common::Result<sys::FreeSpace> SimPartitions::GetFreeSpace(std::string_view drive) {
  return inner_.GetFreeSpace(drive);
}
common::Status SimPartitions::EnsureGpt(std::string_view drive) { return inner_.EnsureGpt(drive); }
common::Result<sys::PartitionInfo> SimPartitions::Ensure(std::string_view drive,
                                                         const sys::PartitionSpec& spec) {
  ASSIGN_OR_RETURN(auto p, inner_.Ensure(drive, spec));
  Register(p);
  return p;
}
common::Result<sys::PartitionInfo> SimPartitions::Grow(std::string_view drive,
                                                       const sys::MemberRef& member,
                                                       uint64_t new_size_bytes) {
  return inner_.Grow(drive, member, new_size_bytes);
}
common::Status SimPartitions::Delete(std::string_view drive, const sys::MemberRef& member) {
  ASSIGN_OR_RETURN(auto parts, inner_.List(drive));
  ASSIGN_OR_RETURN(auto found, sys::FindMember(parts, member, drive));
  if (found) {
    // The kernel refuses (EBUSY) to delete a partition an MD array holds.
    const std::string kname = found->device_path.substr(found->device_path.rfind('/') + 1);
    ASSIGN_OR_RETURN(auto arrays, md_.ListArrays());
    for (const auto& a : arrays) {
      for (const auto& m : a.members) {
        if (m.kernel_name == kname) {
          return common::FailedPreconditionError("deleting partition {}: in use by MD array {}",
                                                 found->device_path, a.name);
        }
      }
    }
  }
  RETURN_IF_ERROR(inner_.Delete(drive, member));
  if (found) md_.RemoveLocalDevice(found->device_path);
  return common::OkStatus();
}
common::Result<std::optional<std::string>> SimPartitions::ProbeSignature(std::string_view device) {
  return inner_.ProbeSignature(device);
}
common::Result<sys::ZeroMethod> SimPartitions::Zero(std::string_view drive,
                                                    const sys::MemberRef& member,
                                                    bool allow_signature) {
  return inner_.Zero(drive, member, allow_signature);
}

void SimMd::Publish(std::string_view name) {
  auto a = md_.GetArray(name);
  if (!a.ok()) return;
  if (!block_.HasDevice(a->device)) {
    block_.AddDevice(a->device, a->size_bytes, 4096);
  } else {
    block_.ResizeDevice(a->device, a->size_bytes);
  }
}
common::Status SimMd::Create(const sys::MdCreateSpec& spec) {
  RETURN_IF_ERROR(md_.Create(spec));
  Publish(spec.name);
  return common::OkStatus();
}
common::Status SimMd::Assemble(const sys::MdAssembleSpec& spec) {
  RETURN_IF_ERROR(md_.Assemble(spec));
  Publish(spec.name);
  return common::OkStatus();
}
common::Status SimMd::Add(std::string_view name, const sys::MdMember& member) {
  return md_.Add(name, member);
}
common::Status SimMd::ReAdd(std::string_view name, std::string_view device) {
  return md_.ReAdd(name, device);
}
common::Status SimMd::Replace(std::string_view name, std::string_view old_device,
                              const sys::MdMember& new_member) {
  return md_.Replace(name, old_device, new_member);
}
common::Status SimMd::Fail(std::string_view name, std::string_view device) {
  return md_.Fail(name, device);
}
common::Status SimMd::Remove(std::string_view name, std::string_view device) {
  return md_.Remove(name, device);
}
common::Status SimMd::SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) {
  return md_.SetSyncSpeedLimit(name, max_kib_per_s);
}
common::Status SimMd::Grow(std::string_view name) {
  RETURN_IF_ERROR(md_.Grow(name));
  Publish(name);
  return common::OkStatus();
}
common::Status SimMd::Stop(std::string_view name) {
  auto a = md_.GetArray(name);
  if (a.ok()) {
    // A mounted array cannot be stopped, as with the kernel.
    for (const auto& m : block_.Mounts()) {
      if (m.device == a->device) {
        return common::FailedPreconditionError("stopping MD array {}: {} is mounted at {}", name,
                                               a->device, m.entry.target);
      }
    }
  }
  RETURN_IF_ERROR(md_.Stop(name));
  if (a.ok()) block_.RemoveDevice(a->device);
  return common::OkStatus();
}
common::Result<sys::MdArrayState> SimMd::GetArray(std::string_view name) {
  return md_.GetArray(name);
}
common::Result<std::vector<sys::MdArrayState>> SimMd::ListArrays() { return md_.ListArrays(); }
common::Result<std::vector<std::string>> SimMd::ListArrayNames() { return md_.ListArrayNames(); }
common::Result<sys::MdSuperblock> SimMd::Examine(std::string_view device) {
  return md_.Examine(device);
}
common::Status SimMd::ZeroSuperblock(std::string_view device, std::string_view expected_uuid) {
  return md_.ZeroSuperblock(device, expected_uuid);
}

SimNode::SimNode(sys::FakeFabric& f, std::string n)
    : name(n),
      host_nqn(fmt::format("nqn.2014-08.org.nvmexpress:uuid:sim-{}", n)),
      fabric(f),
      partitions(block, f, fake_md, n),
      nvmet(f, n),
      host(f, n, {host_nqn, "00000000-0000-4000-8000-000000000000"}) {
  fake_md.SetRemoteDevicePresence(
      [this](std::string_view path) { return fabric.HostDeviceExists(name, path); });
}

NodeKernel SimNode::Kernel() { return NodeKernel{&drives, &partitions, &fs, &nvmet, &host, &md}; }

void SimNode::AddDrive(const std::string& device, uint64_t size_bytes, uint32_t sector_size) {
  sys::DriveInfo d;
  d.name = device;
  d.device_path = "/dev/" + device;
  d.model = "Simulated NVMe";
  d.serial = fmt::format("SIM-{}-{}", name, device);
  d.size_bytes = size_bytes;
  d.logical_block_size = sector_size;
  d.hw_queues = 4;
  d.transport = "pcie";
  block.AddDrive(d);
}

SimNode& SimCluster::AddNode(const std::string& name) {
  auto node = std::make_unique<SimNode>(fabric_, name);
  SimNode& ref = *node;
  ref.fake_md.SetDeviceSizes([this, name](std::string_view device) -> uint64_t {
    auto backing = fabric_.BackingOf(name, device);
    const std::string owner = backing ? backing->first : name;
    const std::string path = backing ? backing->second : std::string(device);
    auto it = nodes_.find(owner);
    if (it == nodes_.end()) return 0;
    auto dev = it->second->block.Device(path);
    return dev ? dev->size_bytes : 0;
  });
  ref.fake_md.ShareSuperblocks(superblocks_, [this, name](std::string_view device) {
    auto backing = fabric_.BackingOf(name, device);
    return backing ? backing->first + ":" + backing->second : name + ":" + std::string(device);
  });
  nodes_[name] = std::move(node);
  return ref;
}

void SimCluster::SetOnline(const std::string& name, bool online) {
  fabric_.SetTargetOnline(name, online);
}

void SimCluster::ExpireControllers() {
  for (auto& [name, _] : nodes_) fabric_.ExpireDisconnectedControllers(name);
}

Peers SimCluster::PeersView() const {
  Peers peers;
  int i = 1;
  for (const auto& [name, node] : nodes_) {
    peers[name] = Peer{node->host_nqn, fmt::format("10.0.0.{}", i++), "4420"};
  }
  return peers;
}

}  // namespace agent::sim
