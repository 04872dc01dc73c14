#include "csi-shim/volume_locks.h"

#include <utility>

namespace csi_shim {

VolumeLocks::Guard::Guard(Guard&& other) noexcept
    : locks_(std::exchange(other.locks_, nullptr)), id_(std::move(other.id_)) {}

VolumeLocks::Guard::~Guard() {
  if (locks_ != nullptr) locks_->Unlock(id_);
}

common::Result<VolumeLocks::Guard> VolumeLocks::TryLock(const std::string& volume_id,
                                                        std::string_view method) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!busy_.insert(volume_id).second) {
    return common::AbortedError("{}: an operation on volume {} is already in progress, retry",
                                method, volume_id);
  }
  return Guard(this, volume_id);
}

void VolumeLocks::Unlock(const std::string& volume_id) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(volume_id);
}

}  // namespace csi_shim
