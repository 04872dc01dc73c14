// Inventory: which drives become MeshStorNodeDevice objects and how partitions are classified.
#include "agent/inventory.h"

#include <catch2/catch.hpp>

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;

sys::PartitionInfo Ours(const std::string& volume, uint32_t index) {
  sys::PartitionInfo p;
  p.member = sys::MemberRef{volume, index};
  return p;
}

v1::MeshStorVolume Volume(const std::string& name, std::vector<v1::Member> members) {
  v1::MeshStorVolume v;
  v.metadata.name = name;
  v.spec.members = std::move(members);
  return v;
}

v1::Member Member(int32_t index, std::string node, v1::MemberRole role,
                  v1::MemberState state = v1::MemberState::kPresent) {
  v1::Member m;
  m.index = index;
  m.node = std::move(node);
  m.drive = "nvme0n1";
  m.role = role;
  m.state = state;
  return m;
}

DriveSnapshot Drive(std::string name, std::string transport = "pcie") {
  DriveSnapshot d;
  d.drive.name = name;
  d.drive.device_path = "/dev/" + name;
  d.drive.model = "M";
  d.drive.serial = "S-" + name;
  d.drive.size_bytes = 1ull << 40;
  d.drive.logical_block_size = 4096;
  d.drive.hw_queues = 8;
  d.drive.transport = std::move(transport);
  d.biggest_free_bytes = 1ull << 39;
  return d;
}

TEST_CASE("Partitions are local, remote or unknown by the volumes' claims",
          "[unit][agent][inventory]") {
  DriveSnapshot d = Drive("nvme0n1");
  sys::PartitionInfo foreign;  // not ours at all: not counted
  d.partitions = {Ours("pvc-a", 0),    Ours("pvc-a", 1), Ours("pvc-b", 2),
                  Ours("pvc-gone", 0), Ours("pvc-b", 3), foreign};
  std::vector<v1::MeshStorVolume> volumes = {
      Volume("pvc-a",
             {Member(0, "n1", v1::MemberRole::kLocal), Member(1, "n1", v1::MemberRole::kRemote)}),
      // member 2 is claimed on another node, member 3 is retired: both unknown here
      Volume("pvc-b", {Member(2, "n2", v1::MemberRole::kRemote),
                       Member(3, "n1", v1::MemberRole::kRemote, v1::MemberState::kRetired)}),
  };
  PartitionCounts c = ClassifyPartitions("n1", d, volumes);
  CHECK(c.local == 1);
  CHECK(c.remote == 1);
  CHECK(c.unknown == 3);
}

TEST_CASE("Only local drives become MeshStorNodeDevice objects", "[unit][agent][inventory]") {
  std::vector<DriveSnapshot> drives = {Drive("nvme1n1"), Drive("nvme5n1", "tcp"), Drive("nvme0n1")};
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto out = BuildNodeDevices("node-1", drives, {}, "nqn.host",
                              {{v1::Transport::kTcp, "10.0.0.1", 4420}}, now);
  REQUIRE(out.size() == 2);
  CHECK(out[0].metadata.name == "node-1-nvme0n1");
  CHECK(out[1].metadata.name == "node-1-nvme1n1");
  CHECK(out[0].spec.node_name == "node-1");
  CHECK(out[0].spec.device == "nvme0n1");
  CHECK(out[0].status.host_nqn == "nqn.host");
  CHECK(out[0].status.biggest_free_extent_bytes == int64_t{1} << 39);
  CHECK(out[0].status.queue_count == 8);
  CHECK(out[0].status.updated_at == now);
  CHECK(out[0].status.unknown_partitions == 0);
}

}  // namespace
}  // namespace agent
