// The Drives contract: run against FakeDrives and against LinuxDrives over a fake sysfs tree
// (both in agent_tests).
//
// An Env provides:
//   Drives& drives();
//   void AddDrive(const DriveInfo& d);        // an NVMe namespace as the kernel shows it
//   void AddOtherBlockDevice(std::string name);  // a hidden path node, partition, loop, ...
#pragma once

#include <catch2/catch.hpp>

#include "agent/sys/drives.h"

namespace agent::sys::contract {

inline DriveInfo TestDrive(std::string name, std::string transport = "pcie") {
  DriveInfo d;
  d.name = name;
  d.device_path = "/dev/" + name;
  d.model = "QEMU NVMe Ctrl";
  d.serial = "serial-" + name;
  d.size_bytes = uint64_t{2} << 30;
  d.logical_block_size = 4096;
  d.hw_queues = 2;
  d.transport = std::move(transport);
  return d;
}

template <class Env>
void DrivesContract(Env& env) {
  DriveInfo a = TestDrive("nvme0n1");
  DriveInfo b = TestDrive("nvme1n1");
  b.logical_block_size = 512;
  b.size_bytes = uint64_t{1} << 30;
  b.hw_queues = 4;
  DriveInfo remote = TestDrive("nvme2n1", "tcp");
  env.AddDrive(b);
  env.AddDrive(a);
  env.AddDrive(remote);
  env.AddOtherBlockDevice("nvme0c0n1");
  env.AddOtherBlockDevice("nvme0n1p1");
  env.AddOtherBlockDevice("loop0");

  SECTION("lists local NVMe namespaces only, sorted, with their attributes") {
    common::Result<std::vector<DriveInfo>> list = env.drives().List();
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0] == a);
    CHECK((*list)[1] == b);
  }
  SECTION("gets one drive by name or path, remote ones too") {
    common::Result<DriveInfo> d = env.drives().Get("nvme1n1");
    REQUIRE(d.ok());
    CHECK(*d == b);
    common::Result<DriveInfo> by_path = env.drives().Get("/dev/nvme0n1");
    REQUIRE(by_path.ok());
    CHECK(*by_path == a);
    common::Result<DriveInfo> r = env.drives().Get("nvme2n1");
    REQUIRE(r.ok());
    CHECK(r->remote());
  }
  SECTION("unknown drives are NotFound, other names InvalidArgument") {
    CHECK(env.drives().Get("nvme9n1").status().code() == common::StatusCode::kNotFound);
    CHECK(env.drives().Get("sda").status().code() == common::StatusCode::kInvalidArgument);
    CHECK(env.drives().Get("nvme0c0n1").status().code() == common::StatusCode::kInvalidArgument);
  }
}

}  // namespace agent::sys::contract
