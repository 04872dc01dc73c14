// Partitions: the GPT partitions MeshStor carves on a node's drives, and the safety checks
// around them (docs/design.md §6 rule 1: never touch what we did not create).
//
// Every partition we create is identified twice, and both must match before we change it:
//  - its GPT name, a compact deterministic encoding of (volume, member index) (PartitionName);
//  - its unique partition GUID, a name-based SHA-1 UUID (RFC 4122 version 5) of the volume and
//    index under a fixed MeshStor namespace (PartitionUuid).
// A partition whose name decodes but whose GUID does not match is NOT ours.
//
// GPT names hold at most 36 UTF-16 characters, and volume names are "pvc-<uuid>" (40 chars), so
// the name has two forms (version 1 of the scheme, "ms" = MeshStor):
//   "ms1p:<22 chars>:<index>"   for "pvc-<canonical lowercase uuid>": the 16 UUID bytes in
//                               unpadded base64url (RFC 4648 §5); at most 31 characters.
//   "ms1n:<volume>:<index>"     for any other volume of [a-z0-9.-] that fits in 36 characters.
// <index> is decimal, 0..999. Other volume names are rejected with InvalidArgument.
//
// Geometry: starts and sizes are multiples of 1 MiB (kAlignment). The GPT partition type is
// "Linux RAID" (A19D880F-05FC-4D3B-A006-743F0F84911E); members carry MD superblocks.
//
// Thread contract: implementations are safe for concurrent use; changes to one drive's table
// are serialized inside the implementation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/v1alpha1/geometry.h"
#include "common/status/status.h"

namespace agent::sys {

// The volume geometry's unit (common/api/v1alpha1/geometry.h), unsigned like the sizes here.
inline constexpr uint64_t kMiB = static_cast<uint64_t>(common::api::v1alpha1::kMiB);
inline constexpr uint64_t kAlignment = kMiB;
inline constexpr std::string_view kLinuxRaidPartitionType = "a19d880f-05fc-4d3b-a006-743f0f84911e";

// Which member of which volume a partition belongs to.
struct MemberRef {
  std::string volume;  // the MeshStorVolume name, e.g. "pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca427"
  uint32_t index = 0;  // member index, 0..999
  friend bool operator==(const MemberRef&, const MemberRef&) = default;
};

// The deterministic GPT name for a member, or InvalidArgument when the volume name fits neither
// form or the index is above 999.
common::Result<std::string> PartitionName(const MemberRef& member);
// Decodes a GPT name; nullopt when it is not in one of our forms.
std::optional<MemberRef> ParsePartitionName(std::string_view gpt_name);
// The deterministic partition GUID for a member: lowercase canonical form.
std::string PartitionUuid(const MemberRef& member);
// UUID version 5 (SHA-1, RFC 4122 §4.3) of `name` in `namespace_uuid` (canonical form).
// REQUIRES: namespace_uuid is a valid canonical UUID.
std::string UuidV5(std::string_view namespace_uuid, std::string_view name);
// "/dev/nvme0n1" + 3 → "/dev/nvme0n1p3"; "/dev/vda" + 1 → "/dev/vda1".
std::string PartitionDevicePath(std::string_view drive, uint32_t number);

struct PartitionInfo {
  std::string drive;        // whole-disk device, e.g. "/dev/nvme0n1"
  uint32_t number = 0;      // GPT entry number, 1-based
  std::string device_path;  // e.g. "/dev/nvme0n1p3"
  std::string name;         // GPT name as stored
  std::string uuid;         // unique partition GUID, lowercase
  std::string type_uuid;    // partition type GUID, lowercase
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;
  // Set only when the name decodes AND the GUID is PartitionUuid(member): ours.
  std::optional<MemberRef> member;
  bool ours() const { return member.has_value(); }
};

// A contiguous free range of a drive, 1 MiB aligned at both ends.
struct FreeExtent {
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;
  friend bool operator==(const FreeExtent&, const FreeExtent&) = default;
};

struct FreeSpace {
  std::vector<FreeExtent> extents;  // in disk order; empty when nothing is usable
  uint64_t biggest_bytes = 0;       // the biggest extent's size
};

// A drive's partitions and free space, as one read of its table found them.
struct DriveTable {
  std::vector<PartitionInfo> partitions;
  FreeSpace free;
};

struct PartitionSpec {
  MemberRef member;
  uint64_t size_bytes = 0;  // multiple of 1 MiB, > 0
  // Start of the placement; nullopt: the first free extent big enough.
  std::optional<uint64_t> start_bytes;
};

enum class ZeroMethod { kWriteZeroes, kDiscard, kWrite };

class Partitions {
 public:
  virtual ~Partitions() = default;

  // Every partition of `drive` (ours and foreign), ordered by number. A drive without a GPT has
  // none. NotFound when the drive does not exist.
  virtual common::Result<std::vector<PartitionInfo>> List(std::string_view drive) = 0;

  // The usable free space of `drive`: gaps of its GPT, or, for a drive with no signature at all,
  // the space a new GPT would leave. A drive with a non-GPT signature has no free space.
  virtual common::Result<FreeSpace> GetFreeSpace(std::string_view drive) = 0;

  // List and GetFreeSpace of `drive` together. An implementation that reads the table once for
  // both overrides it (opening a drive's table is most of what listing costs); this default
  // calls the two, so it is correct for any implementation.
  virtual common::Result<DriveTable> ReadTable(std::string_view drive) {
    ASSIGN_OR_RETURN(auto partitions, List(drive));
    ASSIGN_OR_RETURN(auto free, GetFreeSpace(drive));
    return DriveTable{std::move(partitions), std::move(free)};
  }

  // Writes an empty GPT when `drive` carries no signature at all (libblkid finds nothing);
  // OK when it already has a GPT; FailedPrecondition naming what was found otherwise.
  virtual common::Status EnsureGpt(std::string_view drive) = 0;

  // Idempotent: the partition of spec.member on `drive`, creating it (and the GPT, as
  // EnsureGpt) when absent. Returns the existing one when it matches; FailedPrecondition when a
  // partition of that member exists with a different size or start, or when the member's GUID
  // is used by a partition that is not ours; ResourceExhausted when no free extent fits;
  // InvalidArgument for an unaligned size or start. The new partition's /dev node exists on
  // return.
  virtual common::Result<PartitionInfo> Ensure(std::string_view drive,
                                               const PartitionSpec& spec) = 0;

  // Idempotent: grows our partition of `member` in place to `new_size_bytes` (multiple of
  // 1 MiB), online, when the space right after it is free. OK when already that size;
  // ResourceExhausted when the following space is too small; FailedPrecondition when asked to
  // shrink; NotFound when the partition does not exist.
  virtual common::Result<PartitionInfo> Grow(std::string_view drive, const MemberRef& member,
                                             uint64_t new_size_bytes) = 0;

  // Idempotent: deletes our partition of `member`. OK when no partition carries its name or
  // GUID. FailedPrecondition, naming what was found, when the name or the GUID matches but the
  // other does not (never deletes what we did not create); FailedPrecondition for a partition
  // in use (EBUSY).
  virtual common::Status Delete(std::string_view drive, const MemberRef& member) = 0;

  // The signature libblkid finds on `device` ("xfs", "linux_raid_member", "gpt", ...), or
  // nullopt when there is none.
  virtual common::Result<std::optional<std::string>> ProbeSignature(std::string_view device) = 0;

  // Zeroes our partition of `member` completely: write-zeroes, else discard when the device
  // guarantees zeroes after discard, else plain writes. Refuses (FailedPrecondition) when the
  // partition is not ours, is in use, or carries a signature and `allow_signature` is false
  // (the caller passes true only for a partition it has just created, whose stale bytes may look
  // like a signature).
  virtual common::Result<ZeroMethod> Zero(std::string_view drive, const MemberRef& member,
                                          bool allow_signature) = 0;
};

}  // namespace agent::sys

namespace agent::sys {

// --- Decisions shared by every implementation (pure functions, unit tested) ------------------

// Sets info.member when the name decodes and the GUID matches (see the header comment).
void ClassifyPartition(PartitionInfo& info);

// The 1 MiB-aligned usable area of a drive without a partition table, as a new GPT would leave
// it: [1 MiB, end aligned down), the end leaving room for the backup GPT (one header sector
// plus 16 KiB of entries). Empty when the drive is too small.
std::optional<FreeExtent> BlankDriveExtent(uint64_t size_bytes, uint32_t sector_size);

// Aligns raw gaps (start, size in bytes) inwards to 1 MiB and drops the empty ones.
FreeSpace AlignFreeSpace(const std::vector<FreeExtent>& raw_gaps);

// The partition of `member` among `partitions`: nullopt when neither its name nor its GUID is
// present; FailedPrecondition (naming the partition found) when one matches but not the other.
common::Result<std::optional<PartitionInfo>> FindMember(
    const std::vector<PartitionInfo>& partitions, const MemberRef& member, std::string_view drive);

// Partitions::Ensure's rule for a member that has a partition already: OK when it has the size
// asked and, when spec.start_bytes is set, that start; FailedPrecondition otherwise (it is never
// resized or moved by Ensure).
common::Status CheckExistingMember(const PartitionInfo& existing, const PartitionSpec& spec);

// Where a new partition for `spec` goes: spec.start_bytes when it lies in a free extent with
// room, else the first extent that fits. InvalidArgument for unaligned input, ResourceExhausted
// when nothing fits.
common::Result<uint64_t> PlacePartition(const FreeSpace& free, const PartitionSpec& spec,
                                        std::string_view drive);

// For growing `part` to `new_size_bytes`: OK when the space right after it is a free extent
// that reaches that size; ResourceExhausted otherwise.
common::Status CheckGrowRoom(const FreeSpace& free, const PartitionInfo& part,
                             uint64_t new_size_bytes);

}  // namespace agent::sys
