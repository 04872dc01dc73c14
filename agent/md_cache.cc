#include "agent/md_cache.h"

#include <algorithm>

namespace agent {

void PassCachedMd::BeginPass() {
  std::lock_guard lock(mu_);
  read_.clear();
  running_.reset();
  ++generation_;
}

common::Status PassCachedMd::Forget(std::string_view name, common::Status status) {
  std::lock_guard lock(mu_);
  ++generation_;
  running_.reset();  // any change may start or stop an array
  if (name.empty()) {
    read_.clear();
  } else if (auto it = read_.find(name); it != read_.end()) {
    read_.erase(it);
  }
  return status;
}

common::Result<sys::MdArrayState> PassCachedMd::GetArray(std::string_view name) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (running_ && !std::binary_search(running_->begin(), running_->end(), name, std::less<>())) {
      return common::NotFoundError("MD array {}: not running", name);
    }
    generation = generation_;
  }
  auto array = inner_.GetArray(name);
  bool list = false;
  {
    std::lock_guard lock(mu_);
    if (!array.ok()) {
      if (auto it = read_.find(name); it != read_.end()) read_.erase(it);
      list = array.status().code() == common::StatusCode::kNotFound && !running_;
    } else if (generation == generation_) {
      // A change that ran meanwhile may or may not show in what was read: not kept then.
      read_.insert_or_assign(std::string(name), *array);
    }
  }
  // The pass's first array that does not run here: list the ones that do, once.
  if (list) (void)ListArrayNames();
  return array;
}

common::Result<std::vector<std::string>> PassCachedMd::ListArrayNames() {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (running_) return *running_;
    generation = generation_;
  }
  auto names = inner_.ListArrayNames();
  if (names.ok()) {
    std::sort(names->begin(), names->end());
    std::lock_guard lock(mu_);
    // Kept only when nothing changed meanwhile (a change may have raced the listing).
    if (generation == generation_) running_ = *names;
  }
  return names;
}

common::Result<sys::MdArrayState> PassCachedMd::LastRead(std::string_view name) {
  {
    std::lock_guard lock(mu_);
    if (auto it = read_.find(name); it != read_.end()) return it->second;
  }
  return GetArray(name);
}

common::Status PassCachedMd::Create(const sys::MdCreateSpec& spec) {
  return Forget(spec.name, inner_.Create(spec));
}

common::Status PassCachedMd::Assemble(const sys::MdAssembleSpec& spec) {
  return Forget(spec.name, inner_.Assemble(spec));
}

common::Status PassCachedMd::Add(std::string_view name, const sys::MdMember& member) {
  return Forget(name, inner_.Add(name, member));
}

common::Status PassCachedMd::ReAdd(std::string_view name, std::string_view device) {
  return Forget(name, inner_.ReAdd(name, device));
}

common::Status PassCachedMd::Replace(std::string_view name, std::string_view old_device,
                                     const sys::MdMember& new_member) {
  return Forget(name, inner_.Replace(name, old_device, new_member));
}

common::Status PassCachedMd::Fail(std::string_view name, std::string_view device) {
  return Forget(name, inner_.Fail(name, device));
}

common::Status PassCachedMd::Remove(std::string_view name, std::string_view device) {
  return Forget(name, inner_.Remove(name, device));
}

common::Status PassCachedMd::SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) {
  return Forget(name, inner_.SetSyncSpeedLimit(name, max_kib_per_s));
}

common::Status PassCachedMd::Grow(std::string_view name) { return Forget(name, inner_.Grow(name)); }

common::Status PassCachedMd::Stop(std::string_view name) { return Forget(name, inner_.Stop(name)); }

common::Status PassCachedMd::ZeroSuperblock(std::string_view device,
                                            std::string_view expected_uuid) {
  return Forget("", inner_.ZeroSuperblock(device, expected_uuid));
}

}  // namespace agent
