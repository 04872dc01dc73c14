#include "agent/sys/linux/modules.h"

#include <unistd.h>

#include <filesystem>

#include <catch2/catch.hpp>

#include "agent/sys/fake/exec.h"

namespace agent::sys {
namespace {

struct ModuleDir {
  std::filesystem::path root;
  ModuleDir() {
    root = std::filesystem::temp_directory_path() /
           ("meshstor-modules-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(root);
  }
  ~ModuleDir() { std::filesystem::remove_all(root); }
  void Load(const std::string& name) { std::filesystem::create_directories(root / name); }
};

TEST_CASE("Kernel modules already present are not probed", "[unit][agent][sys]") {
  ModuleDir dir;
  for (const auto& m : RequiredKernelModules()) dir.Load(m);
  FakeExec exec;
  CHECK(EnsureKernelModules(exec, RequiredKernelModules(), dir.root.string()).ok());
  CHECK(exec.calls().empty());
}

TEST_CASE("Missing modules are loaded with modprobe", "[unit][agent][sys]") {
  ModuleDir dir;
  dir.Load("md_mod");  // built in
  FakeExec exec;
  exec.SetHandler("/usr/sbin/modprobe", [&](const ExecRequest& r) -> common::Result<ExecResult> {
    dir.Load(r.args.at(0));
    return FakeExec::Ok();
  });
  REQUIRE(EnsureKernelModules(exec, RequiredKernelModules(), dir.root.string()).ok());
  std::vector<std::string> probed;
  for (const auto& c : exec.CallsTo("/usr/sbin/modprobe")) probed.push_back(c.args.at(0));
  CHECK(probed == std::vector<std::string>{"nvmet", "nvmet_tcp", "nvme_tcp", "raid1", "raid10"});
}

TEST_CASE("A kernel without a module refuses with one message naming each", "[unit][agent][sys]") {
  ModuleDir dir;
  FakeExec exec;
  exec.SetHandler("/usr/sbin/modprobe", [&](const ExecRequest& r) -> common::Result<ExecResult> {
    if (r.args.at(0) == "nvmet_tcp" || r.args.at(0) == "raid10") {
      return FakeExec::Exit(1, "modprobe: FATAL: Module " + r.args.at(0) +
                                   " not found in directory /lib/modules/6.1.0-28-amd64\n");
    }
    dir.Load(r.args.at(0));
    return FakeExec::Ok();
  });
  common::Status s = EnsureKernelModules(exec, RequiredKernelModules(), dir.root.string());
  CHECK(s.code() == common::StatusCode::kFailedPrecondition);
  CHECK_THAT(s.message(), Catch::Contains("lacks nvmet_tcp (modprobe: FATAL: Module nvmet_tcp not "
                                          "found in directory /lib/modules/6.1.0-28-amd64), "
                                          "raid10 (modprobe: FATAL"));
  CHECK_THAT(s.message(), !Catch::Contains("raid1 ("));

  ModuleDir empty;
  FakeExec none;  // no modprobe in the image at all
  none.SetHandler("/usr/sbin/modprobe", [](const ExecRequest&) -> common::Result<ExecResult> {
    return common::NotFoundError("/usr/sbin/modprobe: not found");
  });
  s = EnsureKernelModules(none, {"raid1"}, empty.root.string());
  CHECK_THAT(s.message(), Catch::Contains("raid1 (/usr/sbin/modprobe: not found)"));
}

}  // namespace
}  // namespace agent::sys
