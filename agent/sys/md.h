// Md: Linux MD software RAID arrays (RAID1 and RAID10 near-2) assembled from the local partition
// and the imported NVMe-oF namespaces of a volume.
//
// Arrays are named deterministically from the volume (MdArrayName) and found by that name;
// they are created with metadata 1.2, an internal write-intent bitmap, --failfast, remote legs
// --write-mostly, and a caller-chosen array UUID (MdArrayUuid) so that assembly is always
// explicit: named members and the UUID, never a scan, never udev/auto-assembly, never a config
// file. A returning member is --re-add'ed (bitmap catch-up) only when its superblock belongs to
// the array and its event count has not run ahead of the array's (docs/design.md §6 rule 2).
//
// Every method is idempotent: repeating a call that already took effect returns OK. Errors name
// the array and the member.
//
// Thread contract: implementations are safe for concurrent use; callers serialize operations on
// one array.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/v1alpha1/geometry.h"
#include "common/status/status.h"

namespace agent::sys {

enum class MdLevel { kRaid1 = 1, kRaid10 = 10 };

// The md "name" stored in the superblock has 32 bytes, but mdadm 4.2 on Linux 6.1 creates an
// array with a 32-byte name and then never finds it by that name (lab contract "a volume ID's
// array name"): at most 31 bytes.
inline constexpr size_t kMaxMdNameBytes = 31;
// Where member data starts (mdadm --data-offset): the volume geometry's kMdDataOffsetBytes
// (common/api/v1alpha1/geometry.h), which the operator adds to each member's size. mdadm's own
// default grows with the device (up to 129 MiB of reshape headroom we never use), which would
// leave an array smaller than the capacity. Members added later inherit the array's offset.
inline constexpr uint64_t kMdDataOffsetBytes =
    static_cast<uint64_t>(common::api::v1alpha1::kMdDataOffsetBytes);
// How far a member's MD event count may fall behind the array's without the member being an
// older copy: MD steps a clean->dirty transition's increment back when the array turns clean
// again (md_update_sb), so a count read while dirty may be one above the members' later one.
// mdadm --assemble allows the same margin.
inline constexpr uint64_t kMdEventMargin = 1;
// A member keyword of mdadm --create: an empty slot.
inline constexpr std::string_view kMdMissing = "missing";

// A deterministic array name for a volume: the volume name when it is at most kMaxMdNameBytes of
// [A-Za-z0-9._-], else "ms-<first 11 safe characters>-<16 hex digits of a hash>" (31 bytes).
std::string MdArrayName(std::string_view volume_name);
// A deterministic array UUID for a volume, in mdadm's form "xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx".
std::string MdArrayUuid(std::string_view volume_name);
// InvalidArgument unless `name` is 1..32 bytes of [A-Za-z0-9._-].
common::Status ValidateMdName(std::string_view name);

struct MdMember {
  std::string device;  // "/dev/nvme1n1", "/dev/disk/by-partuuid/…", or kMdMissing (Create only)
  bool write_mostly = false;  // remote legs: reads stay on the local member
};

struct MdCreateSpec {
  std::string name;  // ValidateMdName
  MdLevel level = MdLevel::kRaid1;
  std::vector<MdMember> members;  // slot order; RAID10 near-2: mirror pairs are adjacent
  std::string uuid;               // mdadm form; empty: mdadm picks one (avoid: see header)
  uint32_t chunk_kib = 64;        // RAID10 only
  bool members_zeroed = false;    // true: --assume-clean (only for freshly zeroed members)
  bool failfast = true;
  uint32_t bitmap_chunk_kib = 0;  // write-intent bitmap chunk, a power of two; 0: mdadm's default
};

// The bitmap chunk for members with `member_data_bytes` of data each: the smallest power of two
// of at least 1 MiB that needs at most kMdMaxBitmapChunks chunks. A member that was away resyncs
// every chunk written meanwhile, so the chunk bounds the catch-up's overshoot; mdadm's default
// (64 MiB) turned 16 MiB written into a 128 MiB catch-up. The chunk count bounds the bitmap's
// memory (the kernel keeps 16 bits per chunk) and the bitmap updates of scattered writes.
// When an array grows past the bound, the kernel doubles the chunk as its bitmap is resized.
inline constexpr uint32_t kMdMinBitmapChunkKib = 1024;
inline constexpr uint64_t kMdMaxBitmapChunks = uint64_t{1} << 18;
uint32_t MdBitmapChunkKib(uint64_t member_data_bytes);

struct MdAssembleSpec {
  std::string name;
  std::string uuid;               // required
  std::vector<MdMember> members;  // the members to use; nothing else is looked at
  bool allow_degraded = false;    // --run: start even with members missing
};

struct MdMemberState {
  std::string kernel_name;  // "nvme1n1" (from dev-<kernel_name>)
  int slot = -1;            // -1: none (spare or faulty)
  bool faulty = false;
  bool in_sync = false;
  bool write_mostly = false;
  bool spare = false;
  bool failfast = false;
  bool replacement = false;
  bool want_replacement = false;
  std::string raw_state;  // dev-*/state as read, e.g. "in_sync,write_mostly"
};

// A spare that holds no slot and replaces nothing: the array uses it only when a slot falls
// free or it is named a member's replacement.
inline bool IsPlainSpare(const MdMemberState& m) {
  return !m.faulty && !m.in_sync && !m.replacement && m.slot < 0;
}

struct MdArrayState {
  std::string name;
  std::string device;  // "/dev/md127"
  std::string uuid;    // mdadm form
  std::string level;   // "raid1", "raid10"
  int raid_disks = 0;
  uint64_t size_bytes = 0;  // usable size of the array (/sys/block/mdX/size)
  // I/O since the array started (/sys/block/mdX/stat): completed requests and bytes.
  uint64_t reads = 0, read_bytes = 0, writes = 0, write_bytes = 0;
  std::string array_state;  // "clean", "active", "inactive", "read-auto", ...
  int degraded = 0;         // number of missing/failed slots
  std::string sync_action;  // "idle", "resync", "recover", "check", "repair", "frozen", ...
  // sync_completed in 512-byte sectors; both 0 when none is running.
  uint64_t sync_done_sectors = 0;
  uint64_t sync_total_sectors = 0;
  // The array's own resync/recovery speed cap in KiB/s (md/sync_speed_max); 0: the system-wide
  // limit applies (/proc/sys/dev/raid/speed_limit_max).
  uint64_t sync_speed_max_kib = 0;
  std::vector<MdMemberState> members;  // sorted by kernel name
};

// What a member's own superblock says (mdadm --examine --export).
struct MdSuperblock {
  std::string array_uuid;  // mdadm form
  std::string name;        // without the "homehost:" prefix
  uint64_t events = 0;
  std::string level;
};

// InvalidArgument for a bad name, too few slots (RAID1 >= 2, RAID10 near-2 an even number
// >= 4), no real member, or an empty member path.
common::Status ValidateMdCreateSpec(const MdCreateSpec& spec);

class Md {
 public:
  virtual ~Md() = default;

  // Creates and starts the array. OK when an array of that name is already running with the
  // same UUID (when one is given); AlreadyExists when it runs with another. InvalidArgument
  // for a bad name, too few members (RAID1 >= 2 slots, RAID10 >= 4 and even), or no real
  // member; the failure of mdadm comes back with its stderr.
  virtual common::Status Create(const MdCreateSpec& spec) = 0;

  // Assembles the array from exactly `spec.members` and `spec.uuid` (no scan, no config file).
  // OK when it is already running. FailedPrecondition when mdadm refuses to start it degraded
  // and `allow_degraded` is false.
  virtual common::Status Assemble(const MdAssembleSpec& spec) = 0;

  // Adds a member (a spare, or a recovery target when degraded): full sync. OK when it is
  // already a non-faulty member. NotFound if the array is not running.
  virtual common::Status Add(std::string_view name, const MdMember& member) = 0;

  // Puts a returning member back with bitmap catch-up. Any faulty members are removed from the
  // array first (--remove failed). OK when it is already a non-faulty member.
  // FailedPrecondition when its superblock belongs to another array or its event count is
  // ahead of the array's (it diverged: writes happened elsewhere), or when mdadm says a re-add
  // is not possible (the caller then decides on a full Add).
  virtual common::Status ReAdd(std::string_view name, std::string_view device) = 0;

  // Rebuilds `new_member` as the replacement of `old_device` while the old one stays in
  // service (--add + --replace --with). When `new_member` is already in the array as a plain
  // spare (no slot: added earlier by a plain Add, or the agent died between the add and the
  // replace) it becomes the replacement (--replace --with); OK when it already is one, or holds
  // a slot of its own.
  virtual common::Status Replace(std::string_view name, std::string_view old_device,
                                 const MdMember& new_member) = 0;

  // Marks a member faulty; `device` may be a path or the mdadm keyword "detached" (members
  // whose device node is gone). OK when the device is not a member or is already faulty.
  virtual common::Status Fail(std::string_view name, std::string_view device) = 0;

  // Removes a faulty or spare member; `device` may be a path or "failed"/"detached".
  // OK when the device is not a member. FailedPrecondition for an active in-sync member.
  virtual common::Status Remove(std::string_view name, std::string_view device) = 0;

  // Caps the array's resync/recovery speed at `max_kib_per_s` KiB/s (md/sync_speed_max); 0
  // returns it to the system-wide limit. Idempotent. NotFound if the array is not running.
  virtual common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) = 0;

  // Grows the array to the size of its smallest member (--grow --size=max).
  virtual common::Status Grow(std::string_view name) = 0;

  // Stops the array. OK when it is not running. FailedPrecondition when it is in use.
  virtual common::Status Stop(std::string_view name) = 0;

  // The running array of that name. NotFound when it is not running.
  virtual common::Result<MdArrayState> GetArray(std::string_view name) = 0;
  // Every running array, sorted by name.
  virtual common::Result<std::vector<MdArrayState>> ListArrays() = 0;
  // The names of the running arrays, sorted: the names GetArray finds, without reading the
  // arrays' state. An error, never a shorter list, when a running array cannot be named.
  virtual common::Result<std::vector<std::string>> ListArrayNames() = 0;

  // Reads the MD superblock of a device. NotFound when it has none.
  virtual common::Result<MdSuperblock> Examine(std::string_view device) = 0;

  // Erases the MD superblock of a device that is no member of a running array, so that it can
  // be added as a new member (full resync): the way back for a member that diverged. Only a
  // superblock of array `expected_uuid` is erased: FailedPrecondition when it belongs to another
  // array or the device is in use. OK when the device has no superblock.
  virtual common::Status ZeroSuperblock(std::string_view device,
                                        std::string_view expected_uuid) = 0;
};

}  // namespace agent::sys
