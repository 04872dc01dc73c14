// PassCachedMd: the agent's MD layer with each array's state, as the pass last read it, kept for
// the pass's reports.
//
// A consumer's pass read every array it runs four times: when it records which members are in
// sync (ObserveInSync), when it reconciles the volume, when it caps rebuild speeds (CapRebuilds)
// and when it exports the array's metrics, each read about twenty sysfs attributes. The first
// two decide what happens to the data and keep reading the kernel (GetArray reads through, and
// keeps what it read). The last two only report or tune: they take the state this pass last
// read (LastRead) as long as nothing since then changed that array through this layer; an
// array the pass did not read, or changed, is read again.
//
// MD state also changes by itself (a member fails, a resync ends); that raises an MD event and
// the next pass reads it. Between passes nothing is kept (BeginPass). A failed read is not kept.
// A change that may affect an array (every method that is not a read) forgets that array, and
// a change to a device alone (ZeroSuperblock) or to several arrays forgets all of them.
//
// Most arrays a pass asks about do not run here: an exporter asks for each member it exports
// whether the volume's array still runs on this node, and for each volume it does not consume
// whether anything of it is left to tear down. A name that is not running costs the kernel
// layer a scan of every array (LinuxMd looks through /sys/block/md*), so an exporter's pass
// scanned twice per volume, and a node that also ran K arrays read K identities each time. After
// the pass's first NotFound, the names of the running arrays are listed once (ListArrayNames)
// and kept until a change goes through this layer; an array that listing does not name is
// NotFound without reading. An array started by another tool during the pass is seen by the
// next one (its uevent wakes it), as it would be had the pass read a moment earlier.
//
// Thread contract: safe for concurrent use (one mutex; the inner layer is called outside it).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/sys/md.h"

namespace agent {

class PassCachedMd final : public sys::Md {
 public:
  // `inner` must outlive this object.
  explicit PassCachedMd(sys::Md& inner) : inner_(inner) {}

  // Forgets every array: called when a pass begins.
  void BeginPass();

  // The state of array `name` as this pass last read it through GetArray, when nothing changed
  // it through this layer since; otherwise GetArray. For reports and tuning only, never for a
  // decision about members or data.
  common::Result<sys::MdArrayState> LastRead(std::string_view name);

  common::Status Create(const sys::MdCreateSpec& spec) override;
  common::Status Assemble(const sys::MdAssembleSpec& spec) override;
  common::Status Add(std::string_view name, const sys::MdMember& member) override;
  common::Status ReAdd(std::string_view name, std::string_view device) override;
  common::Status Replace(std::string_view name, std::string_view old_device,
                         const sys::MdMember& new_member) override;
  common::Status Fail(std::string_view name, std::string_view device) override;
  common::Status Remove(std::string_view name, std::string_view device) override;
  common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) override;
  common::Status Grow(std::string_view name) override;
  common::Status Stop(std::string_view name) override;
  // Reads the kernel and keeps what it read for LastRead; NotFound without reading when the
  // pass's kept name listing does not name the array (see above).
  common::Result<sys::MdArrayState> GetArray(std::string_view name) override;
  common::Result<std::vector<sys::MdArrayState>> ListArrays() override {
    return inner_.ListArrays();
  }
  // The pass's kept listing, read (and kept) when there is none.
  common::Result<std::vector<std::string>> ListArrayNames() override;
  common::Result<sys::MdSuperblock> Examine(std::string_view device) override {
    return inner_.Examine(device);
  }
  common::Status ZeroSuperblock(std::string_view device, std::string_view expected_uuid) override;

 private:
  // Forgets array `name` (every array when empty), then returns `status`.
  common::Status Forget(std::string_view name, common::Status status);

  sys::Md& inner_;
  std::mutex mu_;
  std::map<std::string, sys::MdArrayState, std::less<>> read_;
  std::optional<std::vector<std::string>> running_;  // the kept ListArrayNames, sorted
  uint64_t generation_ = 0;                          // bumped by every BeginPass and change
};

}  // namespace agent
