// LinuxNvmetTarget against a temporary directory laid out as the kernel's nvmet configfs: the
// test creates what the kernel would create on mkdir (attribute files, sub-directories).
// Removal (rmdir of a populated configfs directory) is covered by the lab contract only.
#include "agent/sys/linux/nvmet.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

namespace agent::sys {
namespace {

namespace stdfs = std::filesystem;

struct FakeConfigfs {
  stdfs::path root;
  FakeConfigfs() {
    char tmpl[] = "/tmp/nvmet_test.XXXXXX";
    root = ::mkdtemp(tmpl);
    stdfs::create_directories(root / "ports");
    stdfs::create_directories(root / "subsystems");
    stdfs::create_directories(root / "hosts");
  }
  ~FakeConfigfs() { stdfs::remove_all(root); }
  static void Touch(const stdfs::path& p, const std::string& content = "") {
    std::ofstream(p) << content;
  }
  static std::string Read(const stdfs::path& p) {
    // Files here are not truncated on write (configfs attributes need no O_TRUNC): compare
    // without the kernel-style trailing newline.
    std::ifstream in(p);
    std::string s(std::istreambuf_iterator<char>(in), {});
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  // What the kernel creates on mkdir ports/<id>.
  void KernelPort(int id) {
    stdfs::path p = root / "ports" / std::to_string(id);
    stdfs::create_directories(p / "subsystems");
    for (auto f : {"addr_trtype", "addr_adrfam", "addr_traddr", "addr_trsvcid"}) Touch(p / f);
  }
  // What the kernel creates on mkdir subsystems/<nqn>.
  void KernelSubsystem(const std::string& nqn) {
    stdfs::path p = root / "subsystems" / nqn;
    stdfs::create_directories(p / "namespaces");
    stdfs::create_directories(p / "allowed_hosts");
    Touch(p / "attr_allow_any_host", "1\n");  // the kernel's default
    Touch(p / "attr_serial", "c0ffee\n");
  }
  // What the kernel creates on mkdir namespaces/<nsid>.
  void KernelNamespace(const std::string& nqn, int nsid) {
    stdfs::path p = root / "subsystems" / nqn / "namespaces" / std::to_string(nsid);
    stdfs::create_directories(p);
    Touch(p / "device_path", "\n");
    Touch(p / "device_uuid");
    Touch(p / "device_nguid");
    Touch(p / "enable", "0\n");
    Touch(p / "revalidate_size");  // write-only in the kernel; reads back what was written here
  }
};

constexpr const char* kNqn = "nqn.2026-11.io.meshstor:b:a";
constexpr const char* kHostA = "nqn.2014-08.org.nvmexpress:uuid:aaaa";
constexpr const char* kHostC = "nqn.2014-08.org.nvmexpress:uuid:cccc";
constexpr const char* kUuid = "5A1E0000-0000-4000-8000-0000000000B1";

TEST_CASE("LinuxNvmetTarget writes the configfs export sequence", "[unit][agent][nvmet]") {
  FakeConfigfs fs;
  fs.KernelPort(1);
  fs.KernelSubsystem(kNqn);
  fs.KernelNamespace(kNqn, 1);
  LinuxNvmetTarget t(fs.root.string());

  REQUIRE(t.EnsurePort({1, NvmeTransport::kTcp, "10.77.0.2", "4420"}).ok());
  CHECK(FakeConfigfs::Read(fs.root / "ports/1/addr_trtype") == "tcp");
  CHECK(FakeConfigfs::Read(fs.root / "ports/1/addr_adrfam") == "ipv4");
  CHECK(FakeConfigfs::Read(fs.root / "ports/1/addr_traddr") == "10.77.0.2");
  CHECK(FakeConfigfs::Read(fs.root / "ports/1/addr_trsvcid") == "4420");

  REQUIRE(t.EnsureSubsystem(kNqn, "0123456789abcdef0123", {kHostA}).ok());
  stdfs::path s = fs.root / "subsystems" / kNqn;
  CHECK(FakeConfigfs::Read(s / "attr_allow_any_host") == "0");
  CHECK(FakeConfigfs::Read(s / "attr_serial") == "0123456789abcdef0123");
  CHECK(stdfs::is_directory(fs.root / "hosts" / kHostA));
  CHECK(stdfs::read_symlink(s / "allowed_hosts" / kHostA) == fs.root / "hosts" / kHostA);

  REQUIRE(t.EnsureNamespace(kNqn, {1, "/dev/vdb1", kUuid, true}).ok());
  CHECK(FakeConfigfs::Read(s / "namespaces/1/device_path") == "/dev/vdb1");
  CHECK(FakeConfigfs::Read(s / "namespaces/1/device_uuid") ==
        "5a1e0000-0000-4000-8000-0000000000b1");
  CHECK(FakeConfigfs::Read(s / "namespaces/1/device_nguid") ==
        "5a1e0000-0000-4000-8000-0000000000b1");
  CHECK(FakeConfigfs::Read(s / "namespaces/1/enable") == "1");

  REQUIRE(t.LinkSubsystemToPort(kNqn, 1).ok());
  CHECK(stdfs::read_symlink(fs.root / "ports/1/subsystems" / kNqn) == s);

  auto info = t.GetSubsystem(kNqn);
  REQUIRE(info.ok());
  CHECK(info->serial == "0123456789abcdef0123");
  CHECK_FALSE(info->allow_any_host);
  CHECK(info->allowed_hosts == std::vector<std::string>{kHostA});
  REQUIRE(info->namespaces.size() == 1);
  CHECK(info->namespaces[0].device_uuid == "5a1e0000-0000-4000-8000-0000000000b1");
  CHECK(info->namespaces[0].enabled);
  CHECK(info->ports == std::vector<uint16_t>{1});
  auto ports = t.ListPorts();
  REQUIRE(ports.ok());
  REQUIRE(ports->size() == 1);
  CHECK((*ports)[0].subsystems == std::vector<std::string>{kNqn});

  // A linked port keeps its address.
  CHECK(t.EnsurePort({1, NvmeTransport::kTcp, "10.77.0.9", "4420"}).code() ==
        common::StatusCode::kFailedPrecondition);
  // A live namespace keeps its identity.
  CHECK(t.EnsureNamespace(kNqn, {1, "/dev/vdc1", kUuid, true}).code() ==
        common::StatusCode::kFailedPrecondition);
  CHECK(FakeConfigfs::Read(s / "namespaces/1/device_path") == "/dev/vdb1");
  // Idempotent: nothing is rewritten; but a live namespace has its size revalidated, so that a
  // partition grown underneath reaches the host (nvmet then sends a namespace-changed event).
  FakeConfigfs::Touch(s / "namespaces/1/device_uuid", "5a1e0000-0000-4000-8000-0000000000b1\n");
  FakeConfigfs::Touch(s / "namespaces/1/revalidate_size");
  REQUIRE(t.EnsureNamespace(kNqn, {1, "/dev/vdb1", kUuid, true}).ok());
  CHECK(FakeConfigfs::Read(s / "namespaces/1/device_path") == "/dev/vdb1");
  CHECK(FakeConfigfs::Read(s / "namespaces/1/revalidate_size") == "1");

  REQUIRE(t.UnlinkSubsystemFromPort(kNqn, 1).ok());
  CHECK_FALSE(stdfs::exists(fs.root / "ports/1/subsystems" / kNqn));
  REQUIRE(t.UnlinkSubsystemFromPort(kNqn, 1).ok());
}

TEST_CASE("LinuxNvmetTarget replaces allowed hosts", "[unit][agent][nvmet]") {
  FakeConfigfs fs;
  fs.KernelSubsystem(kNqn);
  LinuxNvmetTarget t(fs.root.string());
  REQUIRE(t.EnsureSubsystem(kNqn, "0123", {kHostA}).ok());
  REQUIRE(t.SetAllowedHosts(kNqn, {kHostC}).ok());
  stdfs::path s = fs.root / "subsystems" / kNqn;
  CHECK_FALSE(stdfs::exists(stdfs::symlink_status(s / "allowed_hosts" / kHostA)));
  CHECK(stdfs::is_symlink(s / "allowed_hosts" / kHostC));
  CHECK(stdfs::is_directory(fs.root / "hosts" / kHostA));  // other subsystems may use it
  CHECK(t.SetAllowedHosts("nqn.absent", {kHostC}).code() == common::StatusCode::kNotFound);
}

TEST_CASE("LinuxNvmetTarget disables a namespace and reports it", "[unit][agent][nvmet]") {
  FakeConfigfs fs;
  fs.KernelSubsystem(kNqn);
  fs.KernelNamespace(kNqn, 3);
  LinuxNvmetTarget t(fs.root.string());
  REQUIRE(t.EnsureNamespace(kNqn, {3, "/dev/vdb2", kUuid, true}).ok());
  REQUIRE(t.EnsureNamespace(kNqn, {3, "/dev/vdb2", kUuid, false}).ok());
  stdfs::path ns = fs.root / "subsystems" / kNqn / "namespaces/3";
  CHECK(FakeConfigfs::Read(ns / "enable") == "0");
  auto all = t.ListSubsystems();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  REQUIRE((*all)[0].namespaces.size() == 1);
  CHECK((*all)[0].namespaces[0].nsid == 3);
  CHECK_FALSE((*all)[0].namespaces[0].enabled);
}

}  // namespace
}  // namespace agent::sys
