// LinuxFilesystem pieces that need neither root nor devices: the mount table read with libmount.
#include "agent/sys/linux/filesystem.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "agent/sys/fake/exec.h"

namespace agent::sys {
namespace {

// A mountinfo file of its own, removed at the end.
struct MountInfoFile {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("meshstor-mountinfo-" + std::to_string(::getpid())))
                         .string();
  explicit MountInfoFile(const std::string& text) { std::ofstream(path) << text; }
  ~MountInfoFile() { std::filesystem::remove(path); }
};

TEST_CASE("ListMounts unescapes and splits optional fields", "[unit][agent][sys]") {
  MountInfoFile file(
      "22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw\n"
      "36 22 9:127 /sub\\040dir /var/lib/kubelet/pods/x/volumes/my\\040vol ro,noatime shared:5 "
      "master:2 - xfs /dev/md127 rw,attr2\n"
      "40 22 0:50 / /tmp\\134odd rw - tmpfs tmpfs rw\n");
  FakeExec exec;
  LinuxFilesystem fs(exec, {.mountinfo = file.path});
  common::Result<std::vector<MountEntry>> m = fs.ListMounts();
  REQUIRE(m.ok());
  REQUIRE(m->size() == 3);
  CHECK((*m)[1].mount_id == 36);
  CHECK((*m)[1].major == 9);
  CHECK((*m)[1].minor == 127);
  CHECK((*m)[1].root == "/sub dir");
  CHECK((*m)[1].target == "/var/lib/kubelet/pods/x/volumes/my vol");
  CHECK((*m)[1].fstype == "xfs");
  CHECK((*m)[1].source == "/dev/md127");
  CHECK((*m)[1].super_options == "rw,attr2");
  CHECK((*m)[1].read_only());
  CHECK((*m)[1].HasOption("noatime"));
  CHECK_FALSE((*m)[0].read_only());
  CHECK((*m)[2].target == "/tmp\\odd");
}

TEST_CASE("ListMounts refuses a mount table with a line that does not parse",
          "[unit][agent][sys]") {
  MountInfoFile file(
      "22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw\ngarbage line\n");
  FakeExec exec;
  LinuxFilesystem fs(exec, {.mountinfo = file.path});
  auto m = fs.ListMounts();
  CHECK(m.status().code() == common::StatusCode::kInvalidArgument);
  CHECK(m.status().message().find("line 2") != std::string::npos);
}

TEST_CASE("ListMounts of this process finds the root mount", "[unit][agent][sys]") {
  FakeExec exec;
  LinuxFilesystem fs(exec);
  auto m = fs.ListMounts();
  REQUIRE(m.ok());
  bool root = false;
  for (const auto& e : *m) root = root || e.target == "/";
  CHECK(root);
}

}  // namespace
}  // namespace agent::sys
