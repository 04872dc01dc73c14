// VolumeLocks: at most one CSI operation in flight per volume. A second call for a volume that is
// busy is answered at once with Aborted, as the CSI spec allows, instead of queueing behind the
// first (the caller retries and then finds the first one's result).
//
// Thread contract: safe for concurrent use.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "common/status/status.h"

namespace csi_shim {

class VolumeLocks {
 public:
  // Releases its volume when destroyed. Movable, not copyable.
  class Guard {
   public:
    Guard(Guard&& other) noexcept;
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();

   private:
    friend class VolumeLocks;
    Guard(VolumeLocks* locks, std::string id) : locks_(locks), id_(std::move(id)) {}
    VolumeLocks* locks_;  // null once moved from
    std::string id_;
  };

  VolumeLocks() = default;
  VolumeLocks(const VolumeLocks&) = delete;
  VolumeLocks& operator=(const VolumeLocks&) = delete;

  // Marks `volume_id` busy until the Guard goes, or Aborted naming `method` when it already is.
  common::Result<Guard> TryLock(const std::string& volume_id, std::string_view method);

 private:
  void Unlock(const std::string& volume_id);

  std::mutex mu_;
  std::set<std::string> busy_;  // guarded by mu_
};

}  // namespace csi_shim
