// LinuxFilesystem pieces that need no devices: the mount table read with libmount, and (as root,
// in a mount namespace of a child process) that it is parsed again exactly when it changes.
#include "agent/sys/linux/filesystem.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
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

TEST_CASE("ListMounts parses the mount table again only after a mount or unmount",
          "[unit][agent][sys]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root (a private mount namespace and a tmpfs mount)");
    return;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("meshstor-mounts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // The child mounts in a mount namespace of its own and exits with the number of the first
  // step that went wrong (0: none); nothing it mounts is seen outside it.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(90);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(91);
    FakeExec exec;
    LinuxFilesystem fs(exec);
    auto has = [&](const std::string& target) {
      auto m = fs.ListMounts();
      if (!m.ok()) ::_exit(92);
      for (const auto& e : *m) {
        if (e.target == target) return true;
      }
      return false;
    };
    const std::string target = dir.string();
    if (has(target) || fs.mount_table_parses() != 1) ::_exit(1);
    if (has(target) || fs.mount_table_parses() != 1) ::_exit(2);  // unchanged: not parsed
    if (::mount("tmpfs", target.c_str(), "tmpfs", 0, "size=1m") != 0) ::_exit(93);
    if (!has(target) || fs.mount_table_parses() != 2) ::_exit(3);  // the mount is seen
    if (!fs.GetMount(target).ok() || fs.mount_table_parses() != 2) ::_exit(4);
    if (::umount2(target.c_str(), 0) != 0) ::_exit(94);
    if (has(target) || fs.mount_table_parses() != 3) ::_exit(5);  // the unmount is seen
    if (has(target) || fs.mount_table_parses() != 3) ::_exit(6);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  std::filesystem::remove(dir);
  REQUIRE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  if (code >= 90) {
    WARN("skipped: no private mount namespace or tmpfs mount here (step " << code << ")");
    return;
  }
  CHECK(code == 0);
}

}  // namespace
}  // namespace agent::sys
