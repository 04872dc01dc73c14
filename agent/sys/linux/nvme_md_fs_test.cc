// fsutil's readers over files in a temporary directory: how many read() calls a value costs,
// and that ReadFile reads on past a short read.
#include "agent/sys/linux/nvme_md_fs.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

namespace agent::sys::fsutil {
namespace {

namespace stdfs = std::filesystem;

struct TempDir {
  stdfs::path root;
  TempDir() {
    char tmpl[] = "/tmp/nvme_md_fs_test.XXXXXX";
    root = ::mkdtemp(tmpl);
  }
  ~TempDir() { stdfs::remove_all(root); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(root / name) << text;
    return (root / name).string();
  }
};

TEST_CASE("ReadAttr reads a value shorter than its buffer with one read()",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  const std::string path = dir.Write("array_state", "clean\n");
  ScopedAttrTrace trace;
  auto value = ReadAttr(path);
  REQUIRE(value.ok());
  CHECK(*value == "clean");
  CHECK(trace.opened == std::vector<std::string>{path});
  CHECK(trace.reads == 1);  // no second read() to see EOF
}

TEST_CASE("ReadAttr reads a value of 4 KiB or more to EOF", "[unit][agent][nvme][md]") {
  TempDir dir;
  for (size_t size : {size_t{4095}, size_t{4096}, size_t{6000}, size_t{8192}}) {
    CAPTURE(size);
    const std::string text(size, 'x');
    const std::string path = dir.Write("attr", text);
    ScopedAttrTrace trace;
    auto value = ReadAttr(path);
    REQUIRE(value.ok());
    CHECK(*value == text);
    // One read per full 4 KiB buffer, then the short (or empty, at EOF) one that ends it.
    CHECK(trace.reads == static_cast<int>(size / 4096 + 1));
  }
}

TEST_CASE("ReadFile reads to EOF past a short read", "[unit][agent][nvme][md]") {
  TempDir dir;
  const std::string fifo = (dir.root / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A pipe returns what has been written so far: the first read() is short, not the end.
  std::thread writer([&] {
    std::ofstream out(fifo);
    out << "first " << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out << "second\n" << std::flush;
  });
  ScopedAttrTrace trace;
  auto value = ReadFile(fifo);
  writer.join();
  REQUIRE(value.ok());
  CHECK(*value == "first second");
  CHECK(trace.reads >= 2);
}

TEST_CASE("ReadFile reads a regular file whole; absent files are NotFound",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  const std::string path = dir.Write("hostnqn", "nqn.2014-08.org.nvmexpress:uuid:x\n");
  auto value = ReadFile(path);
  REQUIRE(value.ok());
  CHECK(*value == "nqn.2014-08.org.nvmexpress:uuid:x");
  CHECK(ReadFile((dir.root / "absent").string()).status().code() == common::StatusCode::kNotFound);
  CHECK(ReadAttrOr((dir.root / "absent").string(), "none") == "none");
}

TEST_CASE("AttrDir reads attributes relative to the directory it opened",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  stdfs::create_directories(dir.root / "md127/md/dev-vda1");
  dir.Write("md127/md/level", "raid1\n");
  dir.Write("md127/md/dev-vda1/state", "in_sync\n");
  const std::string path = (dir.root / "md127").string();
  ScopedAttrTrace trace;
  auto md = AttrDir::Open(path);
  REQUIRE(md.ok());
  CHECK(md->path() == path);
  CHECK(md->Read("md/level").value() == "raid1");
  CHECK(md->ReadOr("md/dev-vda1/state", "") == "in_sync");
  CHECK(md->ReadOr("md/absent", "none") == "none");
  CHECK(md->Read("md/absent").status().code() == common::StatusCode::kNotFound);
  CHECK(md->List("md").value() == std::vector<std::string>{"dev-vda1", "level"});
  CHECK(md->List("absent").status().code() == common::StatusCode::kNotFound);
  CHECK(trace.walks == 1);  // the directory's own open; the rest through openat()
  CHECK(trace.opened == std::vector<std::string>{path + "/md/level", path + "/md/dev-vda1/state",
                                                 path + "/md/absent", path + "/md/absent"});
  CHECK(trace.reads == 2);
  CHECK(AttrDir::Open((dir.root / "absent").string()).status().code() ==
        common::StatusCode::kNotFound);

  // The path now names another directory (an array stopped, another started as md127): what
  // is read is the opened one's, or nothing once it is gone, never the newcomer's.
  stdfs::rename(dir.root / "md127", dir.root / "old");
  stdfs::create_directories(dir.root / "md127/md");
  dir.Write("md127/md/level", "raid10\n");
  CHECK(md->ReadOr("md/level", "") == "raid1");
  stdfs::remove_all(dir.root / "old");
  CHECK(md->Read("md/level").status().code() == common::StatusCode::kNotFound);
  AttrDir moved = std::move(md).value();
  CHECK(moved.ReadOr("md/level", "gone") == "gone");
}

TEST_CASE("AttrDir lists a directory larger than one getdents64 buffer",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  stdfs::create_directories(dir.root / "md127/md");
  std::vector<std::string> want;
  for (int i = 0; i < 400; ++i) {  // ~70 bytes per entry: more than 8 KiB of entries
    want.push_back(fmt::format("dev-{:03}-{}", i, std::string(40, 'x')));
    stdfs::create_directory(dir.root / "md127/md" / want.back());
  }
  std::sort(want.begin(), want.end());
  auto md = AttrDir::Open((dir.root / "md127").string());
  REQUIRE(md.ok());
  auto names = md->List("md");
  REQUIRE(names.ok());
  CHECK(*names == want);
  CHECK(*names == ListDir((dir.root / "md127/md").string()).value());
}

TEST_CASE("ListDir lists a directory in name order without . and .. and names it in errors",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  const stdfs::path root = dir.root / "ports";
  stdfs::create_directories(root);
  {
    ScopedAttrTrace trace;
    auto empty = ListDir(root.string());
    REQUIRE(empty.ok());
    CHECK(empty->empty());
    CHECK(trace.walks == 1);
    CHECK(trace.reads == 0);
  }
  // Entries of every kind, more than one getdents64 buffer of them, listed in name order.
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    want.push_back(fmt::format("{}-{}", 299 - i, std::string(48, 'y')));
    const stdfs::path entry = root / want.back();
    if (i % 3 == 0) {
      stdfs::create_directory(entry);
    } else if (i % 3 == 1) {
      dir.Write("ports/" + want.back(), "1\n");
    } else {
      stdfs::create_directory_symlink("../elsewhere", entry);  // dangling: listed all the same
    }
  }
  std::sort(want.begin(), want.end());
  ScopedAttrTrace trace;
  auto names = ListDir(root.string());
  REQUIRE(names.ok());
  CHECK(*names == want);
  CHECK(trace.walks == 1);

  // Absent: NotFound, which callers may take as "nothing there" (ListControllers: no nvme driver).
  const std::string absent = (dir.root / "absent").string();
  auto gone = ListDir(absent);
  CHECK(gone.status().code() == common::StatusCode::kNotFound);
  CHECK_THAT(gone.status().message(), Catch::Contains("listing " + absent));
  // A file is not a directory: an error, and not NotFound (it is not an empty directory).
  const std::string file = dir.Write("attr", "1\n");
  auto not_dir = ListDir(file);
  REQUIRE_FALSE(not_dir.ok());
  CHECK(not_dir.status().code() != common::StatusCode::kNotFound);
  CHECK_THAT(not_dir.status().message(), Catch::Contains("ENOTDIR"));
  CHECK_THAT(not_dir.status().message(), Catch::Contains("listing " + file));
}

TEST_CASE("ScopedAttrTrace records only while it lives; an inner one shadows the outer",
          "[unit][agent][nvme][md]") {
  TempDir dir;
  const std::string a = dir.Write("a", "1"), b = dir.Write("b", "2");
  ScopedAttrTrace outer;
  ReadAttrOr(a, "");
  {
    ScopedAttrTrace inner;
    ReadAttrOr(b, "");
    CHECK(inner.opened == std::vector<std::string>{b});
  }
  ReadAttrOr(a, "");
  CHECK(outer.opened == std::vector<std::string>{a, a});
}

}  // namespace
}  // namespace agent::sys::fsutil
