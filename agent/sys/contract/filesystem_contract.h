// The Filesystem contract: run against FakeFilesystem (agent_tests) and LinuxFilesystem on
// loop devices with the real mkfs.xfs (agent_sys_lab_tests, root).
//
// An Env provides:
//   Filesystem& fs();
//   std::string NewDevice(uint64_t size_bytes);  // a blank block device ("" if impossible)
//   std::string NewDir();                        // an empty directory
//   void PutSignature(const std::string& device);  // writes a swap signature
#pragma once

#include <catch2/catch.hpp>

#include "agent/sys/filesystem.h"
#include "agent/sys/partitions.h"

namespace agent::sys::contract {

template <class Env>
void FilesystemContract(Env& env) {
  using common::StatusCode;
  Filesystem& fs = env.fs();
  // mkfs.xfs from xfsprogs 6.1 refuses filesystems under 300 MB.
  const std::string dev = env.NewDevice(320 * kMiB);
  REQUIRE_FALSE(dev.empty());
  const std::string staging = env.NewDir();
  const std::string publish = env.NewDir();

  SECTION("EnsureXfs formats a blank device once and refuses other signatures") {
    common::Result<bool> made = fs.EnsureXfs(dev, XfsOptions{4096, "msvol"});
    REQUIRE(made.ok());
    CHECK(*made);
    common::Result<bool> again = fs.EnsureXfs(dev, XfsOptions{});
    REQUIRE(again.ok());
    CHECK_FALSE(*again);
    const std::string other = env.NewDevice(320 * kMiB);
    env.PutSignature(other);
    common::Result<bool> refused = fs.EnsureXfs(other, XfsOptions{});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(refused.status().message(), Catch::Contains("swap"));
  }
  SECTION("Mount, bind mount read-only, stats and unmount, all idempotent") {
    REQUIRE(fs.EnsureXfs(dev, XfsOptions{}).ok());
    MountOptions opts;
    REQUIRE(fs.Mount(dev, staging, "xfs", opts).ok());
    REQUIRE(fs.Mount(dev, staging, "xfs", opts).ok());
    common::Result<std::optional<MountEntry>> m = fs.GetMount(staging);
    REQUIRE(m.ok());
    REQUIRE(m->has_value());
    CHECK((*m)->fstype == "xfs");
    CHECK((*m)->HasOption("noatime"));
    CHECK_FALSE((*m)->read_only());

    common::Result<FsStats> st = fs.Stats(staging);
    REQUIRE(st.ok());
    CHECK(st->total_bytes > 200 * kMiB);
    CHECK(st->total_bytes <= 320 * kMiB);
    CHECK(st->available_bytes <= st->total_bytes);
    CHECK(st->total_inodes > 0);

    REQUIRE(fs.BindMount(staging, publish, true).ok());
    REQUIRE(fs.BindMount(staging, publish, true).ok());
    common::Result<std::optional<MountEntry>> b = fs.GetMount(publish);
    REQUIRE(b.ok());
    REQUIRE(b->has_value());
    CHECK((*b)->read_only());
    CHECK((*b)->fstype == "xfs");
    CHECK((*b)->major == (*m)->major);
    CHECK((*b)->minor == (*m)->minor);
    // Binding something else over an occupied target is refused.
    const std::string elsewhere = env.NewDir();
    CHECK(fs.BindMount(elsewhere, publish, false).code() == StatusCode::kFailedPrecondition);
    // So is another device at the staging path.
    const std::string dev2 = env.NewDevice(320 * kMiB);
    REQUIRE(fs.EnsureXfs(dev2, XfsOptions{}).ok());
    CHECK(fs.Mount(dev2, staging, "xfs", opts).code() == StatusCode::kFailedPrecondition);

    common::Result<std::vector<MountEntry>> all = fs.ListMounts();
    REQUIRE(all.ok());
    int ours = 0;
    for (const MountEntry& e : *all) ours += (e.target == staging || e.target == publish);
    CHECK(ours == 2);

    REQUIRE(fs.Unmount(publish).ok());
    REQUIRE(fs.Unmount(publish).ok());
    REQUIRE(fs.Unmount(staging).ok());
    m = fs.GetMount(staging);
    REQUIRE(m.ok());
    CHECK_FALSE(m->has_value());
  }
  SECTION("GrowXfs needs a mounted XFS; Unmount of nothing is fine") {
    CHECK(fs.GrowXfs(staging).code() == StatusCode::kFailedPrecondition);
    REQUIRE(fs.EnsureXfs(dev, XfsOptions{}).ok());
    REQUIRE(fs.Mount(dev, staging, "xfs", MountOptions{}).ok());
    REQUIRE(fs.GrowXfs(staging).ok());
    REQUIRE(fs.Unmount(staging).ok());
    CHECK(fs.Unmount(staging + "/does-not-exist").ok());
  }
  SECTION("XfsSizeBytes reads the data size from the superblock") {
    CHECK(fs.XfsSizeBytes(dev).status().code() == StatusCode::kFailedPrecondition);  // blank
    REQUIRE(fs.EnsureXfs(dev, XfsOptions{4096, ""}).ok());
    common::Result<uint64_t> size = fs.XfsSizeBytes(dev);
    REQUIRE(size.ok());
    CHECK(*size <= 320 * kMiB);
    CHECK(*size > 320 * kMiB - 64 * 1024);  // the whole device, to a block
    REQUIRE(fs.Mount(dev, staging, "xfs", MountOptions{}).ok());
    common::Result<uint64_t> mounted = fs.XfsSizeBytes(dev);  // the mounted filesystem's view
    REQUIRE(mounted.ok());
    CHECK(*mounted == *size);
    REQUIRE(fs.Unmount(staging).ok());
  }
  SECTION("EnsureDirectory makes parents, is idempotent and refuses a device in the way") {
    const std::string nested = staging + "/a/b/c";
    REQUIRE(fs.EnsureDirectory(nested).ok());
    REQUIRE(fs.EnsureDirectory(nested).ok());
    REQUIRE(fs.EnsureXfs(dev, XfsOptions{}).ok());
    CHECK(fs.Mount(dev, nested, "xfs", MountOptions{}).ok());  // usable as a mount point
    REQUIRE(fs.Unmount(nested).ok());
    CHECK(fs.EnsureDirectory(dev).code() == StatusCode::kFailedPrecondition);
  }
  SECTION("RemoveMountPoint removes only an empty, unmounted directory") {
    const std::string target = staging + "/target";
    REQUIRE(fs.EnsureDirectory(target + "/inner").ok());
    CHECK(fs.RemoveMountPoint(target).code() == StatusCode::kFailedPrecondition);  // not empty
    REQUIRE(fs.RemoveMountPoint(target + "/inner").ok());
    REQUIRE(fs.EnsureXfs(dev, XfsOptions{}).ok());
    REQUIRE(fs.Mount(dev, target, "xfs", MountOptions{}).ok());
    CHECK(fs.RemoveMountPoint(target).code() == StatusCode::kFailedPrecondition);  // mounted
    REQUIRE(fs.Unmount(target).ok());
    REQUIRE(fs.RemoveMountPoint(target).ok());
    CHECK(fs.RemoveMountPoint(target).ok());  // idempotent: gone
    CHECK_FALSE(fs.GetMount(target).value().has_value());
    CHECK(fs.RemoveMountPoint(dev).code() == StatusCode::kFailedPrecondition);  // not a directory
    REQUIRE(fs.EnsureDirectory(target).ok());  // and it can be made again
  }
}

}  // namespace agent::sys::contract
