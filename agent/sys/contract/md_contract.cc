#include "agent/sys/contract/md_contract.h"

#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "agent/sys/contract/nvme_host_contract.h"

namespace agent::sys::contract {
namespace {

// REQUIRE that prints the Status of a failed call, so lab logs say what the kernel refused.
common::Status AsStatus(const common::Status& s) { return s; }
template <typename T>
common::Status AsStatus(const common::Result<T>& r) {
  return r.status();
}
#define REQUIRE_OK(expr)                                     \
  do {                                                       \
    const common::Status require_ok_status = AsStatus(expr); \
    INFO(require_ok_status.ToString());                      \
    REQUIRE(require_ok_status.ok());                         \
  } while (0)

using common::StatusCode;

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

const MdMemberState* Member(const MdArrayState& a, const std::string& device) {
  for (const auto& m : a.members) {
    if (m.kernel_name == BaseName(device)) return &m;
  }
  return nullptr;
}

bool Settled(Md& md, const std::string& name, int degraded, std::chrono::seconds patience) {
  return WaitFor(
      [&] {
        auto a = md.GetArray(name);
        return a.ok() && a->sync_action == "idle" && a->degraded == degraded;
      },
      patience);
}

}  // namespace

void MdContractVolumeIdName(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 2);
  Md& md = *env.md;
  const std::string volume = "pvc-" + env.tag + "0c0c0-0000-4000-8000-000000000001";
  const std::string name = MdArrayName(volume);
  INFO("MD name " << name << " of volume " << volume);
  REQUIRE(name != volume);
  CHECK(name.size() <= kMaxMdNameBytes);
  const std::string uuid = MdArrayUuid(volume);
  const std::string d0 = env.devices[0], d1 = env.devices[1];
  MdCreateSpec spec{name, MdLevel::kRaid1, {{d0, false}, {d1, true}}, uuid};
  spec.members_zeroed = true;
  REQUIRE_OK(md.Create(spec));
  auto a = md.GetArray(name);
  REQUIRE_OK(a);
  CHECK(a->uuid == uuid);
  REQUIRE_OK(md.Create(spec));  // idempotent: found by its name
  REQUIRE_OK(md.Stop(name));
  CHECK(md.GetArray(name).status().code() == StatusCode::kNotFound);
  MdAssembleSpec asm_spec{name, uuid, {{d0, false}, {d1, true}}, false};
  REQUIRE_OK(md.Assemble(asm_spec));
  REQUIRE_OK(md.GetArray(name));
  REQUIRE_OK(md.Assemble(asm_spec));  // idempotent
  REQUIRE_OK(md.Stop(name));
  CHECK(md.GetArray(name).status().code() == StatusCode::kNotFound);
}

void MdContractRaid1Lifecycle(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 2);
  Md& md = *env.md;
  const std::string name = env.tag + "-r1";
  const std::string uuid = MdArrayUuid(name);
  const std::string d0 = env.devices[0], d1 = env.devices[1];
  MdCreateSpec spec{name, MdLevel::kRaid1, {{d0, false}, {d1, true}}, uuid};
  spec.members_zeroed = true;
  REQUIRE_OK(md.Create(spec));
  REQUIRE_OK(md.Create(spec));  // idempotent
  MdCreateSpec other = spec;
  other.uuid = MdArrayUuid(name + "-other");
  CHECK(md.Create(other).code() == StatusCode::kAlreadyExists);

  REQUIRE(Settled(md, name, 0, env.patience));
  auto a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->name == name);
  CHECK(a->uuid == uuid);
  CHECK(a->level == "raid1");
  CHECK(a->raid_disks == 2);
  CHECK(a->device.rfind("/dev/md", 0) == 0);
  // Member data starts kMdDataOffsetBytes in, whatever the device size (the operator sizes
  // members for exactly that).
  if (env.device_bytes > 0) CHECK(a->size_bytes == env.device_bytes - kMdDataOffsetBytes);
  REQUIRE(a->members.size() == 2);
  const MdMemberState* m0 = Member(*a, d0);
  const MdMemberState* m1 = Member(*a, d1);
  REQUIRE(m0 != nullptr);
  REQUIRE(m1 != nullptr);
  CHECK(m0->in_sync);
  CHECK_FALSE(m0->write_mostly);
  CHECK(m1->in_sync);
  CHECK(m1->write_mostly);
  CHECK(m0->slot != m1->slot);
  auto listed = md.ListArrays();
  REQUIRE(listed.ok());
  CHECK(std::any_of(listed->begin(), listed->end(),
                    [&](const MdArrayState& s) { return s.name == name; }));
  auto names = md.ListArrayNames();
  REQUIRE(names.ok());
  CHECK(std::count(names->begin(), names->end(), name) == 1);
  CHECK(std::is_sorted(names->begin(), names->end()));
  auto sb = md.Examine(d1);
  REQUIRE(sb.ok());
  CHECK(sb->array_uuid == uuid);
  CHECK(sb->name == name);

  // The array's own resync speed cap, and back to the system-wide limit.
  CHECK(a->sync_speed_max_kib == 0);
  REQUIRE_OK(md.SetSyncSpeedLimit(name, 12345));
  REQUIRE_OK(md.SetSyncSpeedLimit(name, 12345));  // idempotent
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->sync_speed_max_kib == 12345);
  REQUIRE_OK(md.SetSyncSpeedLimit(name, 0));
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->sync_speed_max_kib == 0);
  CHECK(md.SetSyncSpeedLimit(env.tag + "-absent", 1000).code() == StatusCode::kNotFound);

  // Lose the remote leg, write on (events move on), bring it back with the bitmap.
  REQUIRE_OK(md.Fail(name, d1));
  REQUIRE_OK(md.Fail(name, d1));  // idempotent
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->degraded == 1);
  REQUIRE(Member(*a, d1) != nullptr);
  CHECK(Member(*a, d1)->faulty);
  REQUIRE_OK(md.ReAdd(name, d1));
  REQUIRE(Settled(md, name, 0, env.patience));
  REQUIRE_OK(md.ReAdd(name, d1));  // idempotent
  a = md.GetArray(name);
  REQUIRE(a.ok());
  REQUIRE(a->members.size() == 2);
  CHECK(Member(*a, d1)->in_sync);

  // Stop, then explicit assembly.
  REQUIRE_OK(md.Stop(name));
  REQUIRE_OK(md.Stop(name));
  CHECK(md.GetArray(name).status().code() == StatusCode::kNotFound);
  names = md.ListArrayNames();
  REQUIRE(names.ok());
  CHECK(std::count(names->begin(), names->end(), name) == 0);
  MdAssembleSpec asm_spec{name, uuid, {{d0, false}, {d1, true}}, false};
  REQUIRE_OK(md.Assemble(asm_spec));
  REQUIRE_OK(md.Assemble(asm_spec));  // idempotent
  REQUIRE(Settled(md, name, 0, env.patience));
  REQUIRE_OK(md.Stop(name));

  MdAssembleSpec one_leg{name, uuid, {{d0, false}}, false};
  CHECK(md.Assemble(one_leg).code() == StatusCode::kFailedPrecondition);
  CHECK(md.GetArray(name).status().code() == StatusCode::kNotFound);
  one_leg.allow_degraded = true;
  REQUIRE_OK(md.Assemble(one_leg));
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->degraded == 1);
  REQUIRE_OK(md.ReAdd(name, d1));
  REQUIRE(Settled(md, name, 0, env.patience));
  REQUIRE_OK(md.Stop(name));
}

void MdContractMissingSlot(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 2);
  Md& md = *env.md;
  const std::string name = env.tag + "-miss";
  const std::string d0 = env.devices[0], d1 = env.devices[1];
  MdCreateSpec spec{
      name, MdLevel::kRaid1, {{d0, false}, {std::string(kMdMissing), false}}, MdArrayUuid(name)};
  REQUIRE_OK(md.Create(spec));
  auto a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->raid_disks == 2);
  CHECK(a->degraded == 1);
  CHECK(a->members.size() == 1);
  REQUIRE_OK(md.Add(name, {d1, true}));
  REQUIRE_OK(md.Add(name, {d1, true}));  // idempotent
  REQUIRE(Settled(md, name, 0, env.patience));
  a = md.GetArray(name);
  REQUIRE(a.ok());
  REQUIRE(Member(*a, d1) != nullptr);
  CHECK(Member(*a, d1)->in_sync);
  CHECK(Member(*a, d1)->write_mostly);
  REQUIRE_OK(md.Stop(name));
}

void MdContractRaid10(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 4);
  Md& md = *env.md;
  const std::string name = env.tag + "-r10";
  const auto& d = env.devices;
  MdCreateSpec spec{name,
                    MdLevel::kRaid10,
                    {{d[0], false}, {d[1], true}, {d[2], false}, {d[3], true}},
                    MdArrayUuid(name)};
  spec.members_zeroed = true;
  REQUIRE_OK(md.Create(spec));
  REQUIRE(Settled(md, name, 0, env.patience));
  auto a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->level == "raid10");
  CHECK(a->raid_disks == 4);
  CHECK(a->members.size() == 4);
  CHECK(md.Remove(name, d[1]).code() == StatusCode::kFailedPrecondition);
  REQUIRE_OK(md.Grow(name));

  // Fail, remove, and take the slot back by a full Add.
  REQUIRE_OK(md.Fail(name, d[3]));
  REQUIRE_OK(md.Remove(name, d[3]));
  REQUIRE_OK(md.Remove(name, d[3]));  // idempotent
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(a->degraded == 1);
  CHECK(Member(*a, d[3]) == nullptr);
  REQUIRE_OK(md.Add(name, {d[3], true}));
  REQUIRE(Settled(md, name, 0, env.patience));
  REQUIRE_OK(md.Stop(name));
}

void MdContractHotReplace(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 4);
  Md& md = *env.md;
  const std::string name = env.tag + "-repl";
  const auto& d = env.devices;
  MdCreateSpec spec{name, MdLevel::kRaid1, {{d[0], false}, {d[1], true}}, MdArrayUuid(name)};
  spec.members_zeroed = true;
  REQUIRE_OK(md.Create(spec));
  REQUIRE(Settled(md, name, 0, env.patience));
  // Done: the new member in sync in the old one's place, the old one faulty (or gone).
  auto replaced = [&](const std::string& old_device, const std::string& new_device) {
    return WaitFor(
        [&] {
          auto a = md.GetArray(name);
          if (!a.ok() || a->sync_action != "idle" || a->degraded != 0) return false;
          const MdMemberState* n = Member(*a, new_device);
          const MdMemberState* o = Member(*a, old_device);
          return n != nullptr && n->in_sync && !n->replacement && (o == nullptr || o->faulty);
        },
        env.patience);
  };
  // Not in the array yet: added and rebuilt while the old member stays in service.
  REQUIRE_OK(md.Replace(name, d[1], {d[2], true}));
  REQUIRE(replaced(d[1], d[2]));
  REQUIRE_OK(md.Replace(name, d[1], {d[2], true}));  // idempotent: it holds the slot now
  REQUIRE_OK(md.Remove(name, d[1]));
  // Already in the array as a plain spare (an Add into a whole array): it becomes the
  // replacement without a second add.
  REQUIRE_OK(md.Add(name, {d[3], true}));
  auto a = md.GetArray(name);
  REQUIRE(a.ok());
  REQUIRE(Member(*a, d[3]) != nullptr);
  CHECK(IsPlainSpare(*Member(*a, d[3])));
  REQUIRE_OK(md.Replace(name, d[2], {d[3], true}));
  REQUIRE(replaced(d[2], d[3]));
  a = md.GetArray(name);
  REQUIRE(a.ok());
  CHECK(Member(*a, d[3])->write_mostly);
  REQUIRE(Member(*a, d[0]) != nullptr);
  CHECK(Member(*a, d[0])->in_sync);
  REQUIRE_OK(md.Stop(name));
}

void MdContractDiverged(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 3);
  Md& md = *env.md;
  const std::string name = env.tag + "-div";
  const std::string uuid = MdArrayUuid(name);
  const std::string d0 = env.devices[0], d1 = env.devices[1], d2 = env.devices[2];
  MdCreateSpec spec{name, MdLevel::kRaid1, {{d0, false}, {d1, true}}, uuid};
  spec.members_zeroed = true;
  REQUIRE_OK(md.Create(spec));
  REQUIRE(Settled(md, name, 0, env.patience));
  // d1 leaves; the array goes on without it.
  REQUIRE_OK(md.Fail(name, d1));
  REQUIRE_OK(md.Remove(name, d1));
  REQUIRE_OK(md.Stop(name));
  // Elsewhere, d1 alone is started and changed (a member added and taken out again, its
  // recovery held back so that no whole-device copy runs): its event count runs ahead of d0's.
  REQUIRE_OK(md.Assemble({name, uuid, {{d1, false}}, /*allow_degraded=*/true}));
  REQUIRE_OK(md.SetSyncSpeedLimit(name, 1000));
  REQUIRE_OK(md.Add(name, {d2, false}));
  REQUIRE_OK(md.Fail(name, d2));
  REQUIRE_OK(md.Remove(name, d2));
  REQUIRE_OK(md.Stop(name));
  // Back on d0: d1 diverged and must not be re-added.
  REQUIRE_OK(md.Assemble({name, uuid, {{d0, false}}, /*allow_degraded=*/true}));
  auto sb0 = md.Examine(d0);
  auto sb1 = md.Examine(d1);
  REQUIRE_OK(sb0);
  REQUIRE_OK(sb1);
  INFO("events: " << d0 << " " << sb0->events << ", " << d1 << " " << sb1->events);
  REQUIRE(sb1->events > sb0->events);
  auto readd = md.ReAdd(name, d1);
  CHECK(readd.code() == StatusCode::kFailedPrecondition);
  CHECK(readd.message().find("diverged") != std::string::npos);
  // The way back is a new member: its superblock erased (only this array's, only when unused),
  // then a full resync.
  CHECK(md.ZeroSuperblock(d1, MdArrayUuid(name + "-other")).code() ==
        StatusCode::kFailedPrecondition);
  CHECK(md.ZeroSuperblock(d0, uuid).code() == StatusCode::kFailedPrecondition);
  REQUIRE_OK(md.Examine(d1));
  REQUIRE_OK(md.ZeroSuperblock(d1, uuid));
  CHECK(md.Examine(d1).status().code() == StatusCode::kNotFound);
  REQUIRE_OK(md.ZeroSuperblock(d1, uuid));  // idempotent
  REQUIRE_OK(md.Add(name, {d1, true}));
  REQUIRE(Settled(md, name, 0, env.patience));
  auto a = md.GetArray(name);
  REQUIRE_OK(a);
  REQUIRE(Member(*a, d1) != nullptr);
  CHECK(Member(*a, d1)->in_sync);
  CHECK(Member(*a, d1)->write_mostly);
  REQUIRE_OK(md.Stop(name));
}

void MdContractRefusals(const MdContractEnv& env) {
  REQUIRE(env.devices.size() >= 4);
  Md& md = *env.md;
  const auto& d = env.devices;
  CHECK(md.Create({"bad name!", MdLevel::kRaid1, {{d[0]}, {d[1]}}}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(md.Create({env.tag + "-x", MdLevel::kRaid1, {{d[0]}}}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(md.Create({env.tag + "-x", MdLevel::kRaid10, {{d[0]}, {d[1]}, {d[2]}}}).code() ==
        StatusCode::kInvalidArgument);
  CHECK(md.Create({env.tag + "-x",
                   MdLevel::kRaid1,
                   {{std::string(kMdMissing)}, {std::string(kMdMissing)}}})
            .code() == StatusCode::kInvalidArgument);
  CHECK(md.GetArray(env.tag + "-absent").status().code() == StatusCode::kNotFound);
  CHECK(md.Stop(env.tag + "-absent").ok());

  // A member of another array is never re-added.
  const std::string a_name = env.tag + "-a", b_name = env.tag + "-b";
  MdCreateSpec a{a_name, MdLevel::kRaid1, {{d[0]}, {d[1]}}, MdArrayUuid(a_name)};
  MdCreateSpec b{b_name, MdLevel::kRaid1, {{d[2]}, {d[3]}}, MdArrayUuid(b_name)};
  a.members_zeroed = b.members_zeroed = true;
  REQUIRE_OK(md.Create(a));
  REQUIRE_OK(md.Create(b));
  REQUIRE_OK(md.Fail(b_name, d[3]));
  REQUIRE_OK(md.Remove(b_name, d[3]));
  REQUIRE_OK(md.Fail(a_name, d[1]));
  REQUIRE_OK(md.Remove(a_name, "failed"));
  CHECK(md.ReAdd(a_name, d[3]).code() == StatusCode::kFailedPrecondition);
  REQUIRE_OK(md.Stop(a_name));
  REQUIRE_OK(md.Stop(b_name));
}

}  // namespace agent::sys::contract
