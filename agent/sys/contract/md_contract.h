// The Md contract: behaviour every implementation (FakeMd, LinuxMd) must show. Each function is
// one scenario of Catch2 assertions on four scratch block devices (their contents are
// destroyed); scenarios stop the arrays they create. Waits for resync poll up to a bound.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/sys/md.h"

namespace agent::sys::contract {

struct MdContractEnv {
  Md* md = nullptr;
  std::vector<std::string> devices;  // at least 4 scratch block devices of equal size
  std::string tag = "ct";            // array name prefix (short: names are at most 32 bytes)
  std::chrono::seconds patience{120};
  uint64_t device_bytes = 0;  // size of each device (all equal); 0: sizes are not checked
};

// RAID1: create (write-mostly leg), idempotent create, state, resync speed cap, fail, re-add with
// bitmap, stop, explicit assembly (refused degraded without allow_degraded), stop idempotent.
void MdContractRaid1Lifecycle(const MdContractEnv& env);
// RAID1 with a "missing" slot, filled by Add.
void MdContractMissingSlot(const MdContractEnv& env);
// The array of a volume named as external-provisioner names them (pvc-<uuid>, longer than an MD
// name may be: MdArrayName's hashed form) is found by that name after create and assembly.
void MdContractVolumeIdName(const MdContractEnv& env);
// RAID10 near-2 on four members; an active member cannot be removed; Replace.
void MdContractRaid10(const MdContractEnv& env);
// RAID1 hot replace: of a member by a device not in the array, then by a plain spare already in
// it (no slot, added into the whole array); each time the old member stays in service until the
// new one is in sync, then is faulty.
void MdContractHotReplace(const MdContractEnv& env);
// A member that ran ahead elsewhere (diverged): ReAdd refuses it; ZeroSuperblock erases only
// this array's superblock of an unused device; Add brings it back with a full resync.
void MdContractDiverged(const MdContractEnv& env);
// ReAdd refuses a member of another array; input validation.
void MdContractRefusals(const MdContractEnv& env);

}  // namespace agent::sys::contract
