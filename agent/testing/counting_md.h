// CountingMd: an Md that passes every call to another one and counts the array reads
// (GetArray), name listings (ListArrayNames) and changes that reach it.
//
// Thread contract: test-only; the counters are atomic, the inner Md's own contract applies.
#pragma once

#include <atomic>

#include "agent/sys/md.h"

namespace agent::testing {

class CountingMd final : public sys::Md {
 public:
  explicit CountingMd(sys::Md& inner) : inner_(inner) {}
  std::atomic<int> reads{0};
  std::atomic<int> changes{0};
  std::atomic<int> listings{0};  // ListArrayNames

  common::Status Create(const sys::MdCreateSpec& spec) override {
    ++changes;
    return inner_.Create(spec);
  }
  common::Status Assemble(const sys::MdAssembleSpec& spec) override {
    ++changes;
    return inner_.Assemble(spec);
  }
  common::Status Add(std::string_view name, const sys::MdMember& member) override {
    ++changes;
    return inner_.Add(name, member);
  }
  common::Status ReAdd(std::string_view name, std::string_view device) override {
    ++changes;
    return inner_.ReAdd(name, device);
  }
  common::Status Replace(std::string_view name, std::string_view old_device,
                         const sys::MdMember& new_member) override {
    ++changes;
    return inner_.Replace(name, old_device, new_member);
  }
  common::Status Fail(std::string_view name, std::string_view device) override {
    ++changes;
    return inner_.Fail(name, device);
  }
  common::Status Remove(std::string_view name, std::string_view device) override {
    ++changes;
    return inner_.Remove(name, device);
  }
  common::Status SetSyncSpeedLimit(std::string_view name, uint64_t max_kib_per_s) override {
    ++changes;
    return inner_.SetSyncSpeedLimit(name, max_kib_per_s);
  }
  common::Status Grow(std::string_view name) override {
    ++changes;
    return inner_.Grow(name);
  }
  common::Status Stop(std::string_view name) override {
    ++changes;
    return inner_.Stop(name);
  }
  common::Result<sys::MdArrayState> GetArray(std::string_view name) override {
    ++reads;
    return inner_.GetArray(name);
  }
  common::Result<std::vector<sys::MdArrayState>> ListArrays() override {
    return inner_.ListArrays();
  }
  common::Result<std::vector<std::string>> ListArrayNames() override {
    ++listings;
    return inner_.ListArrayNames();
  }
  common::Result<sys::MdSuperblock> Examine(std::string_view device) override {
    return inner_.Examine(device);
  }
  common::Status ZeroSuperblock(std::string_view device, std::string_view expected_uuid) override {
    ++changes;
    return inner_.ZeroSuperblock(device, expected_uuid);
  }

 private:
  sys::Md& inner_;
};

}  // namespace agent::testing
