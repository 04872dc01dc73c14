// FakeMd: an in-memory model of Linux MD arrays with superblocks, event counts, degraded slots,
// resync/recovery and failure injection.
//
// Devices: a member must exist, either registered with AddLocalDevice() or reported present by
// the hook given to SetRemoteDevicePresence() (a FakeFabric host's namespaces, so that a target
// that vanishes makes the member disappear). On every call, a member whose device is gone is
// marked faulty, as MD does on the first failed I/O. Each member device carries a superblock
// (array UUID, name, slot, events); events are bumped on every array change and written to the
// non-faulty members, so a member that was away has a lower count and ReAdd can compare.
// Sync: by default a resync/recovery completes at once; SetInstantSync(false) keeps it running
// until FinishSync().
//
// Thread contract: safe for concurrent use (one mutex).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "agent/sys/fake/nvme_md_faults.h"
#include "agent/sys/md.h"

namespace agent::sys {

class FakeMd final : public Md {
 public:
  FakeMd() = default;

  void AddLocalDevice(const std::string& path);
  void RemoveLocalDevice(const std::string& path);
  void SetRemoteDevicePresence(std::function<bool(std::string_view)> present);
  void SetInstantSync(bool instant);
  // Completes every running resync/recovery/replacement of the array.
  void FinishSync(std::string_view name);
  // Makes Stop fail as if the array were mounted.
  void SetInUse(std::string_view name, bool in_use);
  // Overwrites the event count of a device's superblock (to model a member written elsewhere).
  void SetSuperblockEvents(const std::string& device, uint64_t events);
  // The event count of a device's superblock; nullopt when it has none.
  std::optional<uint64_t> SuperblockEvents(const std::string& device);
  // Power loss of the host: every running array is gone without a superblock write (a clean
  // Stop would bump the event count).
  void PowerOff();
  // Failure injection: method names are the Md methods.
  void FailCall(std::string method, int nth, common::Status status);

  // What a member device's superblock holds.
  struct Superblock {
    MdSuperblock sb;
    int slot = -1;
    int raid_disks = 0;
    MdLevel level = MdLevel::kRaid1;
  };
  using SuperblockStore = std::map<std::string, Superblock, std::less<>>;
  // Sizes of member devices (0 when unknown): an array's size is that of its smallest in-slot
  // member less 1 MiB of superblock and bitmap (times the stripes of a RAID10), set at
  // Create/Assemble and by Grow, as mdadm --grow --size=max does.
  void SetDeviceSizes(std::function<uint64_t(std::string_view)> size_of);
  // Superblocks live on the storage, not in one host's view of it: several FakeMd (nodes) may
  // share one store, with `key_of` mapping a device path as this node sees it to the storage
  // behind it (e.g. an imported namespace to the exporting node's partition). Callers that
  // share a store serialize their calls across those FakeMd instances.
  void ShareSuperblocks(std::shared_ptr<SuperblockStore> store,
                        std::function<std::string(std::string_view)> key_of);

  common::Status Create(const MdCreateSpec& spec) override;
  common::Status Assemble(const MdAssembleSpec& spec) override;
  common::Status Add(std::string_view name, const MdMember& member) override;
  common::Status ReAdd(std::string_view name, std::string_view device) override;
  common::Status Replace(std::string_view name, std::string_view old_device,
                         const MdMember& new_member) override;
  common::Status Fail(std::string_view name, std::string_view device) override;
  common::Status Remove(std::string_view name, std::string_view device) override;
  common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) override;
  common::Status Grow(std::string_view name) override;
  common::Status Stop(std::string_view name) override;
  common::Result<MdArrayState> GetArray(std::string_view name) override;
  common::Result<std::vector<MdArrayState>> ListArrays() override;
  common::Result<std::vector<std::string>> ListArrayNames() override;
  common::Result<MdSuperblock> Examine(std::string_view device) override;
  common::Status ZeroSuperblock(std::string_view device, std::string_view expected_uuid) override;

 private:
  struct Member {
    std::string device;
    int slot = -1;
    bool faulty = false;
    bool in_sync = false;
    bool write_mostly = false;
    bool failfast = false;
    bool replacement = false;
    bool want_replacement = false;
  };
  struct Array {
    std::string name;
    std::string uuid;
    MdLevel level = MdLevel::kRaid1;
    int raid_disks = 0;
    int minor = 127;
    uint64_t events = 0;
    bool resync = false;  // initial resync running
    uint64_t size = 0;
    bool in_use = false;
    uint64_t sync_speed_max_kib = 0;
    std::vector<Member> members;
  };
  bool PresentLocked(std::string_view device) const;
  // Marks members whose device vanished as faulty.
  void RefreshLocked();
  common::Result<Array*> FindLocked(std::string_view name);
  Member* MemberLocked(Array& a, std::string_view device);
  // Bumps the event count and writes it to the superblocks of the non-faulty members.
  void BumpLocked(Array& a);
  // Writes a new member's superblock (events 0 until the next bump).
  void WriteSuperblockLocked(const Array& a, const Member& m);
  int FreeSlotLocked(const Array& a, int preferred) const;
  bool PairAliveWithoutLocked(const Array& a, const Member& m) const;
  void FinishSyncLocked(Array& a);
  MdArrayState DescribeLocked(const Array& a) const;
  bool InAnyArrayLocked(std::string_view device) const;

  std::mutex mu_;
  std::set<std::string, std::less<>> local_;
  std::function<bool(std::string_view)> remote_present_;
  bool instant_sync_ = true;
  int next_minor_ = 127;
  int next_uuid_ = 1;
  std::map<std::string, Array, std::less<>> arrays_;  // running arrays by name
  std::string KeyLocked(std::string_view device) const {
    return key_of_ ? key_of_(device) : std::string(device);
  }
  std::shared_ptr<SuperblockStore> superblocks_ = std::make_shared<SuperblockStore>();
  std::function<std::string(std::string_view)> key_of_;
  std::function<uint64_t(std::string_view)> size_of_;
  uint64_t SizeLocked(const Array& a) const;
  FakeFaults faults_;
};

}  // namespace agent::sys
