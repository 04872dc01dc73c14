#include "agent/sys/fake/block_model.h"

#include <utility>

namespace agent::sys {

void BlockModel::AddDrive(DriveInfo info) {
  std::lock_guard lock(mu_);
  if (info.device_path.empty()) info.device_path = "/dev/" + info.name;
  FakeDevice dev;
  dev.size_bytes = info.size_bytes;
  dev.logical_block_size = info.logical_block_size;
  dev.minor = next_minor_++;
  devices_[info.device_path] = dev;
  std::string path = info.device_path;
  drives_[path] = FakeDriveState{std::move(info), {}};
}

void BlockModel::AddDevice(std::string path, uint64_t size_bytes, uint32_t logical_block_size) {
  std::lock_guard lock(mu_);
  FakeDevice dev;
  dev.size_bytes = size_bytes;
  dev.logical_block_size = logical_block_size;
  dev.major = 9;
  dev.minor = next_minor_++;
  devices_[std::move(path)] = dev;
}

void BlockModel::ResizeDevice(std::string_view path, uint64_t size_bytes) {
  std::lock_guard lock(mu_);
  auto it = devices_.find(path);
  if (it != devices_.end()) it->second.size_bytes = size_bytes;
}

void BlockModel::RemoveDevice(std::string_view path) {
  std::lock_guard lock(mu_);
  if (auto it = devices_.find(path); it != devices_.end()) devices_.erase(it);
}

void BlockModel::SetSignature(std::string_view path, std::optional<std::string> signature) {
  std::lock_guard lock(mu_);
  if (auto it = devices_.find(path); it != devices_.end()) it->second.signature = signature;
}

void BlockModel::SetInUse(std::string_view path, bool in_use) {
  std::lock_guard lock(mu_);
  if (auto it = devices_.find(path); it != devices_.end()) it->second.in_use = in_use;
}

void BlockModel::SetFsUsedBytes(std::string_view device, uint64_t used) {
  std::lock_guard lock(mu_);
  if (auto it = devices_.find(device); it != devices_.end()) it->second.fs_used_bytes = used;
}

void BlockModel::AddDirectory(std::string path) {
  std::lock_guard lock(mu_);
  directories_.insert(std::move(path));
}

void BlockModel::AddRawPartition(std::string_view drive, FakePartition partition) {
  std::lock_guard lock(mu_);
  auto it = drives_.find(drive);
  if (it == drives_.end()) return;
  devices_[std::string(drive)].signature = "gpt";
  FakeDevice dev;
  dev.size_bytes = partition.size_bytes;
  dev.logical_block_size = it->second.info.logical_block_size;
  dev.minor = next_minor_++;
  devices_[PartitionDevicePath(drive, partition.number)] = dev;
  it->second.partitions[partition.number] = std::move(partition);
}

void BlockModel::FailNthCall(std::string_view method, int n, common::Status status) {
  std::lock_guard lock(mu_);
  int base = 0;
  if (auto c = calls_.find(method); c != calls_.end()) base = c->second;
  faults_[std::string(method)][base + n] = std::move(status);
}

common::Status BlockModel::Hit(std::string_view method) {
  std::lock_guard lock(mu_);
  int n = ++calls_[std::string(method)];
  auto f = faults_.find(method);
  if (f == faults_.end()) return common::OkStatus();
  auto s = f->second.find(n);
  if (s == f->second.end()) return common::OkStatus();
  common::Status status = s->second;
  f->second.erase(s);
  return status;
}

bool BlockModel::HasDevice(std::string_view path) const {
  std::lock_guard lock(mu_);
  return devices_.find(path) != devices_.end();
}

std::optional<FakeDevice> BlockModel::Device(std::string_view path) const {
  std::lock_guard lock(mu_);
  auto it = devices_.find(path);
  if (it == devices_.end()) return std::nullopt;
  return it->second;
}

std::optional<FakeDriveState> BlockModel::Drive(std::string_view path) const {
  std::lock_guard lock(mu_);
  auto it = drives_.find(path);
  if (it == drives_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeMount> BlockModel::Mounts() const {
  std::lock_guard lock(mu_);
  return mounts_;
}

int BlockModel::CallCount(std::string_view method) const {
  std::lock_guard lock(mu_);
  auto c = calls_.find(method);
  return c == calls_.end() ? 0 : c->second;
}

}  // namespace agent::sys
