#include "csi-shim/parameters.h"

#include <catch2/catch.hpp>

#include "csi-shim/eligibility.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;
using common::StatusCode;
constexpr int64_t kMiB = v1::kMiB;

TEST_CASE("ParseParameters fills defaults and ignores provisioner keys", "[unit][csi]") {
  auto p = ParseParameters(
      {{"csi.storage.k8s.io/pvc/name", "data"}, {"csi.storage.k8s.io/pvc/namespace", "default"}});
  REQUIRE(p.ok());
  CHECK(*p == VolumeParameters{});
  auto q = ParseParameters({{"replicaCount", "3"},
                            {"stripeWidth", "2"},
                            {"memberMissingTimeout", "60"},
                            {"sectorSize", "512"}});
  REQUIRE(q.ok());
  CHECK(*q == VolumeParameters{.replica_count = 3,
                               .stripe_width = 2,
                               .member_missing_timeout = 60,
                               .sector_size = 512});
}

TEST_CASE("ParseParameters names the parameter and its rule", "[unit][csi]") {
  struct Case {
    std::string key, value, expect;
  };
  auto c = GENERATE(Case{"replicaCount", "0", "parameter replicaCount: 0 is out of range 1..16"},
                    Case{"replicaCount", "17", "parameter replicaCount: 17 is out of range 1..16"},
                    Case{"replicaCount", "two", "replicaCount: \"two\" is not an integer"},
                    Case{"replicaCount", "", "is not an integer"},
                    Case{"replicaCount", "+2", "is not an integer"},
                    Case{"stripeWidth", "-1", "parameter stripeWidth: -1 is out of range 1..16"},
                    Case{"stripeWidth", "17", "parameter stripeWidth: 17 is out of range 1..16"},
                    Case{"memberMissingTimeout", "59",
                         "parameter memberMissingTimeout: 59 is below the minimum 60 (seconds)"},
                    Case{"sectorSize", "1024",
                         "parameter sectorSize: 1024 is not a supported sector size (allowed: "
                         "512, 4096)"},
                    Case{"sectorSize", "99999999999", "is not an integer"},
                    Case{"fsType", "xfs", "unknown parameter \"fsType\""});
  auto p = ParseParameters({{c.key, c.value}});
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(p.status().message(), Catch::Contains(c.expect));
}

TEST_CASE("ParseParameters refuses an array of more slots than a volume holds", "[unit][csi]") {
  CHECK(ParseParameters({{"replicaCount", "16"}, {"stripeWidth", "4"}}).ok());  // 64 slots
  auto p = ParseParameters({{"replicaCount", "16"}, {"stripeWidth", "5"}});
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(p.status().message(),
             Catch::Contains("parameters replicaCount × stripeWidth: 80 array slots"));
}

TEST_CASE("CapacityForRange rounds up to MiB with a 512 MiB minimum", "[unit][csi]") {
  CHECK(*CapacityForRange(0, 0) == 512 * kMiB);
  CHECK(*CapacityForRange(1, 0) == 512 * kMiB);
  CHECK(*CapacityForRange(1024 * kMiB + 1, 0) == 1025 * kMiB);
  CHECK(*CapacityForRange(1024 * kMiB, 1024 * kMiB) == 1024 * kMiB);
  CHECK(*CapacityForRange(0, 600 * kMiB) == 512 * kMiB);
  CHECK(CapacityForRange(-1, 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(CapacityForRange(0, -1).status().code() == StatusCode::kInvalidArgument);
  CHECK(CapacityForRange(2 * kMiB, kMiB).status().code() == StatusCode::kInvalidArgument);
  CHECK(CapacityForRange(0, 100 * kMiB).status().code() == StatusCode::kOutOfRange);
  CHECK(CapacityForRange(1000 * kMiB + 1, 1000 * kMiB + 2).status().code() ==
        StatusCode::kOutOfRange);
  CHECK(CapacityFits(1024 * kMiB, 1000 * kMiB, 0));
  CHECK_FALSE(CapacityFits(1024 * kMiB, 2000 * kMiB, 0));
  CHECK_FALSE(CapacityFits(1024 * kMiB, 0, 1000 * kMiB));
}

TEST_CASE("ValidateVolumeName accepts DNS-1123 subdomains only", "[unit][csi]") {
  CHECK(ValidateVolumeName("pvc-0a1b2c3d-aaaa-bbbb-cccc-0123456789ab", "name").ok());
  CHECK(ValidateVolumeName("a.b-c", "name").ok());
  for (const char* bad : {"", "Pvc", "-a", "a-", "a..b", "a.-b", "a_b", "a/b", ".a"}) {
    INFO(bad);
    CHECK(ValidateVolumeName(bad, "name").code() == StatusCode::kInvalidArgument);
  }
  CHECK(ValidateVolumeName(std::string(254, 'a'), "name").code() == StatusCode::kInvalidArgument);
}

v1::MeshStorNodeDevice Drive(std::string node, std::string dev, int32_t sector, int64_t free) {
  v1::MeshStorNodeDevice d;
  d.metadata.name = v1::NodeDeviceName(node, dev);
  d.spec.node_name = std::move(node);
  d.spec.device = std::move(dev);
  d.status.sector_size = sector;
  d.status.biggest_free_extent_bytes = free;
  return d;
}

TEST_CASE("Eligibility counts nodes by sector size, drive count and free extent", "[unit][csi]") {
  std::vector<v1::MeshStorNodeDevice> devices = {
      Drive("a", "nvme0n1", 4096, 10 * 1024 * kMiB), Drive("a", "nvme1n1", 4096, 2 * 1024 * kMiB),
      Drive("b", "nvme0n1", 4096, 4 * 1024 * kMiB),  Drive("c", "nvme0n1", 512, 50 * 1024 * kMiB),
      Drive("d", "nvme0n1", 4096, 1024 * kMiB),
  };
  VolumeParameters raid1;  // 2 copies, 1 drive each, 4096
  CHECK(QualifyingNodes(devices, raid1, 1024 * kMiB) == std::vector<std::string>{"a", "b", "d"});
  CHECK(QualifyingNodes(devices, raid1, 3 * 1024 * kMiB) == std::vector<std::string>{"a", "b"});
  // The second biggest node holds 4 GiB less the MD data offset of its member.
  CHECK(MaxVolumeCapacity(devices, raid1) == 4095 * kMiB);
  VolumeParameters raid10 = raid1;
  raid10.stripe_width = 2;
  raid10.replica_count = 1;
  CHECK(QualifyingNodes(devices, raid10, 2 * 1024 * kMiB) == std::vector<std::string>{"a"});
  CHECK(MaxVolumeCapacity(devices, raid10) == 2 * 2047 * kMiB);
  raid10.replica_count = 2;
  CHECK(MaxVolumeCapacity(devices, raid10) == 0);
  VolumeParameters small_sector = raid1;
  small_sector.sector_size = 512;
  small_sector.replica_count = 1;
  CHECK(MaxVolumeCapacity(devices, small_sector) == 50 * 1024 * kMiB - kMiB);
}

}  // namespace
}  // namespace csi_shim
