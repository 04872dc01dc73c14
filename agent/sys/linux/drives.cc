#include "agent/sys/linux/drives.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace agent::sys {
namespace {

namespace fs = std::filesystem;

std::string Trim(std::string s) {
  auto space = [](unsigned char c) { return std::isspace(c) != 0 || c == 0; };
  while (!s.empty() && space(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && space(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

common::Result<std::string> ReadAttr(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    std::error_code ec;
    int err = fs::exists(path, ec) ? EACCES : ENOENT;
    return common::ErrnoToStatus(err, fmt::format("reading {}", path.string()));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Trim(ss.str());
}

common::Result<uint64_t> ReadU64(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadAttr(path));
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) {
    return common::InvalidArgumentError("{} holds \"{}\", not a number", path.string(), text);
  }
  return v;
}

uint32_t CountQueues(const fs::path& mq) {
  std::error_code ec;
  uint32_t n = 0;
  for (fs::directory_iterator it(mq, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) ++n;
  }
  return n;
}

}  // namespace

common::Result<std::string> LinuxDrives::Transport(const std::string& name) {
  const fs::path dev = fs::path(sysfs_root_) / "block" / name / "device";
  common::Result<std::string> transport = ReadAttr(dev / "transport");
  if (transport.ok()) return transport;
  // A native multipath head: device/ is the subsystem; ask its first controller (the entries
  // named nvme<C>, by name: no stat of every attribute of the subsystem).
  std::error_code ec;
  std::vector<std::string> ctrls;
  for (fs::directory_iterator it(dev, ec), end; !ec && it != end; it.increment(ec)) {
    std::string entry = it->path().filename().string();
    if (entry.size() > 4 && entry.starts_with("nvme") &&
        std::all_of(entry.begin() + 4, entry.end(), ::isdigit)) {
      ctrls.push_back(std::move(entry));
    }
  }
  std::sort(ctrls.begin(), ctrls.end());
  for (const std::string& c : ctrls) {
    common::Result<std::string> t = ReadAttr(dev / c / "transport");
    if (t.ok()) return t;
  }
  return transport.status().WithContext(fmt::format("drive {}", name));
}

common::Result<DriveInfo> LinuxDrives::Read(const std::string& name) {
  const fs::path block = fs::path(sysfs_root_) / "block" / name;
  std::error_code ec;
  if (!fs::exists(block, ec)) return common::NotFoundError("no NVMe drive {} in sysfs", name);
  DriveInfo d;
  d.name = name;
  d.device_path = dev_root_ + "/" + name;
  const fs::path dev = block / "device";
  ASSIGN_OR_RETURN(d.model, ReadAttr(dev / "model"));
  ASSIGN_OR_RETURN(d.serial, ReadAttr(dev / "serial"));
  ASSIGN_OR_RETURN(uint64_t sectors, ReadU64(block / "size"));
  d.size_bytes = sectors * 512;
  ASSIGN_OR_RETURN(uint64_t lbs, ReadU64(block / "queue" / "logical_block_size"));
  d.logical_block_size = static_cast<uint32_t>(lbs);
  common::Result<std::string> transport = Transport(name);
  if (!transport.ok()) return transport.status();
  d.transport = *transport;
  d.hw_queues = CountQueues(block / "mq");
  if (d.hw_queues == 0) {
    // A multipath head is bio-based; its path nodes nvme<X>c<C>n<Y> carry the queues.
    size_t n = name.rfind('n');
    std::string subsys = name.substr(4, n - 4), nsid = name.substr(n + 1);
    std::vector<std::string> paths;
    for (fs::directory_iterator it(fs::path(sysfs_root_) / "block", ec), end; !ec && it != end;
         it.increment(ec)) {
      std::string p = it->path().filename().string();
      if (p.starts_with("nvme" + subsys + "c") && p.ends_with("n" + nsid) &&
          !IsNvmeNamespaceName(p)) {
        paths.push_back(p);
      }
    }
    std::sort(paths.begin(), paths.end());
    for (const std::string& p : paths) {
      // Only a name nvme<X>c<digits>n<Y> exactly.
      std::string mid = p.substr(5 + subsys.size(), p.size() - 5 - subsys.size() - 1 - nsid.size());
      if (!mid.empty() && std::all_of(mid.begin(), mid.end(), ::isdigit)) {
        d.hw_queues = CountQueues(fs::path(sysfs_root_) / "block" / p / "mq");
        break;
      }
    }
  }
  return d;
}

common::Result<std::vector<DriveInfo>> LinuxDrives::List() {
  const fs::path block = fs::path(sysfs_root_) / "block";
  std::error_code ec;
  std::vector<std::string> names;
  fs::directory_iterator it(block, ec);
  if (ec) return common::ErrnoToStatus(ec.value(), fmt::format("listing {}", block.string()));
  for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (IsNvmeNamespaceName(name)) names.push_back(name);
  }
  if (ec) return common::ErrnoToStatus(ec.value(), fmt::format("listing {}", block.string()));
  std::sort(names.begin(), names.end());
  std::vector<DriveInfo> out;
  for (const std::string& name : names) {
    // An imported namespace is not a drive of this node: its transport is all that is read.
    common::Result<std::string> transport = Transport(name);
    if (transport.ok() && *transport != "pcie") continue;
    common::Result<DriveInfo> d = Read(name);
    if (!d.ok()) {
      // The namespace went away between listing and reading (hot removal): not an error.
      if (!fs::exists(block / name, ec)) continue;
      return d.status().WithContext(fmt::format("reading drive {}", name));
    }
    if (!d->remote()) out.push_back(std::move(*d));
  }
  return out;
}

common::Result<DriveInfo> LinuxDrives::Get(std::string_view name) {
  if (name.starts_with(dev_root_ + "/")) name.remove_prefix(dev_root_.size() + 1);
  if (!IsNvmeNamespaceName(name)) {
    return common::InvalidArgumentError("\"{}\" is not an NVMe namespace name (nvme<X>n<Y>)", name);
  }
  return Read(std::string(name));
}

}  // namespace agent::sys
