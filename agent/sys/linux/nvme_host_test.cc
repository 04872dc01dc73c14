// LinuxNvmeHost: option strings, the kernel's answers, and the sysfs readers against a
// temporary tree laid out like /sys/class/nvme and /sys/block (with a hidden nvmeXcYnZ node).
#include "agent/sys/linux/nvme_host.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

namespace agent::sys {
namespace {

namespace stdfs = std::filesystem;
using common::StatusCode;

constexpr const char* kNqn = "nqn.2026-11.io.meshstor:b:a";
constexpr const char* kHostNqn = "nqn.2014-08.org.nvmexpress:uuid:aaaa";

NvmeConnectSpec Spec() {
  NvmeConnectSpec s;
  s.address = "10.77.0.2";
  s.subsys_nqn = kNqn;
  s.host_nqn = kHostNqn;
  s.host_id = "aaaaaaaa-0000-4000-8000-000000000001";
  return s;
}

TEST_CASE("BuildFabricsOptions", "[unit][agent][nvme]") {
  auto with = BuildFabricsOptions(Spec(), true);
  REQUIRE(with.ok());
  CHECK(*with ==
        "transport=tcp,traddr=10.77.0.2,trsvcid=4420,nqn=nqn.2026-11.io.meshstor:b:a,"
        "hostnqn=nqn.2014-08.org.nvmexpress:uuid:aaaa,hostid=aaaaaaaa-0000-4000-8000-"
        "000000000001,keep_alive_tmo=2,ctrl_loss_tmo=3,reconnect_delay=1,fast_io_fail_tmo=1");
  auto without = BuildFabricsOptions(Spec(), false);
  REQUIRE(without.ok());
  CHECK(without->find("fast_io_fail_tmo") == std::string::npos);
  NvmeConnectSpec bad = Spec();
  bad.address = "10.0.0.1,nqn=evil";
  CHECK(BuildFabricsOptions(bad, true).status().code() == StatusCode::kInvalidArgument);
  bad = Spec();
  bad.keep_alive_tmo_s = 0;
  CHECK(BuildFabricsOptions(bad, true).status().code() == StatusCode::kInvalidArgument);
  bad = Spec();
  bad.subsys_nqn = "";
  CHECK(BuildFabricsOptions(bad, true).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("ParseFabricsResponse and ParseControllerAddress", "[unit][agent][nvme]") {
  CHECK(ParseFabricsResponse("instance=3,cntlid=1\n").value_or(-1) == 3);
  CHECK(ParseFabricsResponse("cntlid=1,instance=12").value_or(-1) == 12);
  CHECK_FALSE(ParseFabricsResponse("").ok());
  CHECK_FALSE(ParseFabricsResponse("instance=x").ok());
  std::string traddr, trsvcid;
  ParseControllerAddress("traddr=10.77.0.3,trsvcid=4420,src_addr=10.77.0.1", &traddr, &trsvcid);
  CHECK(traddr == "10.77.0.3");
  CHECK(trsvcid == "4420");
}

struct FakeSys {
  stdfs::path root;
  LinuxNvmeHostPaths paths;
  FakeSys() {
    char tmpl[] = "/tmp/nvme_host_test.XXXXXX";
    root = ::mkdtemp(tmpl);
    paths.fabrics_device = (root / "nvme-fabrics").string();
    paths.sys_class_nvme = (root / "class/nvme").string();
    paths.sys_block = (root / "block").string();
    paths.etc_nvme = (root / "etc/nvme").string();
    paths.machine_id = (root / "etc/machine-id").string();
    paths.dev = "/dev";
    stdfs::create_directories(paths.sys_class_nvme);
    stdfs::create_directories(paths.sys_block);
    stdfs::create_directories(paths.etc_nvme);
  }
  ~FakeSys() { stdfs::remove_all(root); }
  static void Write(const stdfs::path& p, const std::string& s) {
    stdfs::create_directories(p.parent_path());
    std::ofstream(p) << s << "\n";
  }
  static std::string Read(const stdfs::path& p) {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
  }
  void Controller(int n, const std::string& state, const std::string& nqn) {
    stdfs::path c = stdfs::path(paths.sys_class_nvme) / ("nvme" + std::to_string(n));
    Write(c / "state", state);
    Write(c / "transport", "tcp");
    Write(c / "address", "traddr=10.77.0.2,trsvcid=4420,src_addr=10.77.0.1");
    Write(c / "subsysnqn", nqn);
    Write(c / "hostnqn", kHostNqn);
    Write(c / "fast_io_fail_tmo", "");
    Write(c / "delete_controller", "");
  }
  void Disk(const std::string& name, const std::string& nqn, int nsid, const std::string& uuid) {
    stdfs::path b = stdfs::path(paths.sys_block) / name;
    Write(b / "device/subsysnqn", nqn);
    Write(b / "nsid", std::to_string(nsid));
    Write(b / "uuid", uuid);
  }
};

TEST_CASE("LinuxNvmeHost lists controllers from sysfs", "[unit][agent][nvme]") {
  FakeSys sys;
  sys.Controller(0, "live", kNqn);
  sys.Controller(2, "connecting", "nqn.other");
  stdfs::create_directories(stdfs::path(sys.paths.sys_class_nvme) / "nvme-fabrics");
  LinuxNvmeHost host(sys.paths);
  auto list = host.ListControllers();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].name == "nvme0");
  CHECK((*list)[0].state == NvmeControllerState::kLive);
  CHECK((*list)[0].traddr == "10.77.0.2");
  CHECK((*list)[0].trsvcid == "4420");
  CHECK((*list)[0].subsys_nqn == kNqn);
  CHECK((*list)[0].host_nqn == kHostNqn);
  CHECK((*list)[1].instance == 2);
  CHECK((*list)[1].state == NvmeControllerState::kConnecting);
}

TEST_CASE("LinuxNvmeHost Connect returns an existing controller and sets fast_io_fail_tmo",
          "[unit][agent][nvme]") {
  FakeSys sys;
  sys.Controller(4, "connecting", kNqn);
  LinuxNvmeHost host(sys.paths);
  auto c = host.Connect(Spec());
  REQUIRE(c.ok());
  CHECK(c->name == "nvme4");
  CHECK_FALSE(c->created);
  CHECK(FakeSys::Read(stdfs::path(sys.paths.sys_class_nvme) / "nvme4/fast_io_fail_tmo") == "1");
  // No /dev/nvme-fabrics in the tree: a new connect reports it.
  NvmeConnectSpec other = Spec();
  other.address = "10.77.0.3";
  auto fresh = host.Connect(other);
  CHECK(fresh.status().code() == StatusCode::kNotFound);
  CHECK(fresh.status().message().find("10.77.0.3") != std::string::npos);
}

TEST_CASE("LinuxNvmeHost finds the head namespace device, never a per-path node",
          "[unit][agent][nvme]") {
  FakeSys sys;
  sys.Disk("nvme0c0n1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");  // hidden path node
  sys.Disk("nvme0n1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");
  sys.Disk("nvme0n2", kNqn, 2, "5a1e0000-0000-4000-8000-0000000000b2");
  sys.Disk("nvme1n1", "nqn.other", 1, "5a1e0000-0000-4000-8000-0000000000c1");
  sys.Disk("nvme0n1p1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");
  LinuxNvmeHost host(sys.paths);
  CHECK(host.FindNamespaceDevice(kNqn, {1, ""}).value_or("") == "/dev/nvme0n1");
  CHECK(host.FindNamespaceDevice(kNqn, {std::nullopt, "5A1E0000-0000-4000-8000-0000000000B2"})
            .value_or("") == "/dev/nvme0n2");
  CHECK(
      host.FindNamespaceDevice(kNqn, {2, "5a1e0000-0000-4000-8000-0000000000b1"}).status().code() ==
      StatusCode::kNotFound);
  CHECK(host.FindNamespaceDevice("nqn.absent", {1, ""}).status().code() == StatusCode::kNotFound);
  CHECK(host.FindNamespaceDevice(kNqn, {}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("LinuxNvmeHost names the subsystem of a head namespace device, nothing else",
          "[unit][agent][nvme]") {
  FakeSys sys;
  sys.Disk("nvme0n1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");
  sys.Disk("nvme3n2", "nqn.other", 2, "5a1e0000-0000-4000-8000-0000000000c1");
  sys.Disk("nvme0c0n1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");  // hidden path node
  sys.Disk("nvme0n1p1", kNqn, 1, "5a1e0000-0000-4000-8000-0000000000b1");  // a partition
  LinuxNvmeHost host(sys.paths);
  CHECK(host.SubsystemOfDevice("/dev/nvme0n1").value_or("") == kNqn);
  CHECK(host.SubsystemOfDevice("/dev/nvme3n2").value_or("") == "nqn.other");
  CHECK(host.SubsystemOfDevice("nvme3n2").value_or("") == "nqn.other");
  for (const char* not_head : {"/dev/nvme0c0n1", "/dev/nvme0n1p1", "/dev/md127", "/dev/sda"}) {
    INFO(not_head);
    CHECK(host.SubsystemOfDevice(not_head).status().code() == StatusCode::kNotFound);
  }
  // Gone with its controller.
  CHECK(host.SubsystemOfDevice("/dev/nvme5n1").status().code() == StatusCode::kNotFound);
}

TEST_CASE("LinuxNvmeHost scans /sys/block once for a consumer's namespaces, not per lookup",
          "[unit][agent][nvme]") {
  FakeSys sys;
  constexpr int kCount = 20;
  auto uuid = [](int i) { return fmt::format("5a1e0000-0000-4000-8000-{:012}", i); };
  for (int i = 1; i <= kCount; ++i) sys.Disk(fmt::format("nvme0n{}", i), kNqn, i, uuid(i));
  LinuxNvmeHost host(sys.paths);
  for (int pass = 0; pass < 3; ++pass) {
    for (int i = 1; i <= kCount; ++i) {
      CHECK(host.FindNamespaceDevice(kNqn, {static_cast<uint32_t>(i), uuid(i)}).value_or("") ==
            fmt::format("/dev/nvme0n{}", i));
    }
  }
  CHECK(host.FindNamespaceDevice(kNqn, {std::nullopt, uuid(7)}).value_or("") == "/dev/nvme0n7");
  // Three passes over 20 namespaces: one scan (60 before the notes).
  CHECK(host.namespace_scans() == 1);

  // The kernel gives a noted name to another namespace: the note is not trusted, and the
  // namespace is found where it is now.
  stdfs::remove_all(stdfs::path(sys.paths.sys_block) / "nvme0n3");
  stdfs::remove_all(stdfs::path(sys.paths.sys_block) / "nvme0n4");
  sys.Disk("nvme0n3", kNqn, 4, uuid(4));
  CHECK(host.FindNamespaceDevice(kNqn, {3, uuid(3)}).status().code() == StatusCode::kNotFound);
  CHECK(host.FindNamespaceDevice(kNqn, {4, uuid(4)}).value_or("") == "/dev/nvme0n3");
  CHECK(host.FindNamespaceDevice(kNqn, {std::nullopt, uuid(4)}).value_or("") == "/dev/nvme0n3");
  // Same nsid, another uuid (another partition behind the nsid): not this one.
  CHECK(host.FindNamespaceDevice(kNqn, {4, uuid(3)}).status().code() == StatusCode::kNotFound);
  const int64_t scans = host.namespace_scans();
  CHECK(host.FindNamespaceDevice(kNqn, {5, uuid(5)}).value_or("") == "/dev/nvme0n5");
  CHECK(host.namespace_scans() == scans);  // noted by the last scan, verified, no scan
  // Gone with its controller: NotFound after a scan.
  stdfs::remove_all(stdfs::path(sys.paths.sys_block) / "nvme0n5");
  CHECK(host.FindNamespaceDevice(kNqn, {5, uuid(5)}).status().code() == StatusCode::kNotFound);
}

TEST_CASE("LinuxNvmeHost Disconnect writes delete_controller, absent is OK",
          "[unit][agent][nvme]") {
  FakeSys sys;
  sys.Controller(1, "live", kNqn);
  LinuxNvmeHost host(sys.paths);
  REQUIRE(host.Disconnect("nvme1").ok());
  CHECK(FakeSys::Read(stdfs::path(sys.paths.sys_class_nvme) / "nvme1/delete_controller") == "1");
  CHECK(host.Disconnect("nvme9").ok());
  CHECK(host.Disconnect("nvme1/../x").code() == StatusCode::kInvalidArgument);
}

TEST_CASE("LinuxNvmeHost identity: /etc/nvme first, else the machine id", "[unit][agent][nvme]") {
  FakeSys sys;
  LinuxNvmeHost host(sys.paths);
  CHECK_FALSE(host.GetHostIdentity().ok());
  FakeSys::Write(sys.paths.machine_id, "0123456789abcdef0123456789abcdef");
  auto derived = host.GetHostIdentity();
  REQUIRE(derived.ok());
  CHECK(derived->host_id == "01234567-89ab-cdef-0123-456789abcdef");
  FakeSys::Write(stdfs::path(sys.paths.etc_nvme) / "hostnqn", kHostNqn);
  FakeSys::Write(stdfs::path(sys.paths.etc_nvme) / "hostid", "aaaa-id");
  auto configured = host.GetHostIdentity();
  REQUIRE(configured.ok());
  CHECK(configured->host_nqn == kHostNqn);
  CHECK(configured->host_id == "aaaa-id");
}

}  // namespace
}  // namespace agent::sys
