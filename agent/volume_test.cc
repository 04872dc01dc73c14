// VolumeReconciler on simulated nodes (agent/sim): the owner and consumer paths, crash replay
// with fresh reconcilers, a remote node's loss and return, retirement, publish/unpublish,
// teardown, and the refusals of docs/design.md §6.
#include "agent/volume.h"

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/sim/crashing_kernel.h"
#include "agent/sim/sim_node.h"
#include "agent/testing/world.h"
#include "common/api/v1alpha1/volume_id.h"
#include "common/time/fake_clock.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using v1::PartitionState;

using testing::kGiB;
using testing::MakeMember;
using testing::Raid1Volume;
constexpr int64_t kMemberBytes = 513 * v1::kMiB;

using testing::World;

TEST_CASE("A new RAID1 volume comes up on its consumer", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  REQUIRE(v.status.partitions.size() == 2);
  CHECK(w.Part(v, 0)->state == PartitionState::kSynced);
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(w.Part(v, 1)->nvmeof_namespace_id == 1);
  CHECK(w.Part(v, 0)->partition_uuid == sys::PartitionUuid({"pvc-1", 0}));
  CHECK(v.status.node_name == "a");
  CHECK(v.status.active_devices == 2);
  CHECK(v.status.total_devices == 2);
  CHECK(v.status.staged_path == "/var/lib/meshstor/staging/pvc-1");
  REQUIRE(v.spec.formatted_at.has_value());

  // B exports to A's host NQN only, in the subsystem of the (b, a) pair.
  auto sub = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "a"));
  REQUIRE(sub.ok());
  CHECK(sub->allowed_hosts == std::vector<std::string>{w.cluster.node("a").host_nqn});
  REQUIRE(sub->namespaces.size() == 1);
  CHECK(sub->namespaces[0].nsid == 1);
  // Nothing on C; A exports nothing (its member is local).
  CHECK(w.cluster.node("c").nvmet.ListSubsystems()->empty());
  CHECK(w.cluster.node("a").nvmet.ListSubsystems()->empty());
  // The array is mounted at the staging path; remote leg write-mostly.
  auto mount = w.cluster.node("a").fs.GetMount(v.status.staged_path);
  REQUIRE(mount.ok());
  REQUIRE(mount->has_value());
  CHECK((*mount)->fstype == "xfs");
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->uuid == sys::MdArrayUuid("pvc-1"));
  int write_mostly = 0;
  for (const auto& m : array->members) write_mostly += m.write_mostly ? 1 : 0;
  CHECK(write_mostly == 1);

  // Steady state: more passes change nothing and format nothing again.
  const int mkfs = w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs");
  const int zeroes = w.cluster.node("b").block.CallCount("Partitions.Zero");
  const auto status = v.status;
  w.Passes(v, 3);
  CHECK(v.status == status);
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs") == mkfs);
  CHECK(w.cluster.node("b").block.CallCount("Partitions.Zero") == zeroes);
}

// Seeded random CSI names of 1..128 bytes: upper case, dots, spaces, punctuation, UTF-8.
std::string RandomCsiName(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {"A", "z", "7", ".",  " ",   "-",
                                                   "_", "/", "é", "デ", "🙂"};
  const size_t want = std::uniform_int_distribution<size_t>(1, 128)(rng);
  std::string name;
  for (;;) {
    const std::string& piece = kPieces[rng() % kPieces.size()];
    if (name.size() + piece.size() > want) break;
    name += piece;
  }
  return name.empty() ? "Q" : name;
}

TEST_CASE("Every volume ID a CSI name maps to names partitions and arrays",
          "[unit][agent][volume]") {
  std::mt19937 rng(15);
  std::vector<std::string> names = {std::string(128, 'N'), "My Volume.v2", "データ",
                                    "pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca427"};
  while (names.size() < 2000) names.push_back(RandomCsiName(rng));
  for (const std::string& name : names) {
    INFO("CSI name \"" << name << "\"");
    auto id = v1::VolumeIdForCsiName(name);
    REQUIRE(id.ok());
    for (uint32_t index : {0u, 9u, 99u, 999u}) {
      auto gpt = sys::PartitionName({*id, index});
      INFO(gpt.status().ToString());
      REQUIRE(gpt.ok());
      CHECK(sys::ParsePartitionName(*gpt) == sys::MemberRef{*id, index});
    }
    CHECK(sys::ValidateMdName(sys::MdArrayName(*id)).ok());
    if (!v1::IsProvisionerVolumeName(*id)) CHECK(sys::MdArrayName(*id) == *id);  // 24 bytes
  }
}

TEST_CASE("A volume named from any CSI name comes up on its consumer", "[unit][agent][volume]") {
  std::mt19937 rng(1206);
  for (std::string name : {std::string(128, 'N'), std::string("My Volume.v2"), RandomCsiName(rng),
                           RandomCsiName(rng), RandomCsiName(rng)}) {
    INFO("CSI name \"" << name << "\"");
    World w;
    v1::MeshStorVolume v = Raid1Volume();
    v.metadata.name = v1::VolumeIdForCsiName(name).value();
    w.Passes(v, 3);
    INFO(w.ErrorText());
    CHECK(w.errors.empty());
    REQUIRE(v.status.partitions.size() == 2);
    CHECK(w.Part(v, 0)->state == PartitionState::kSynced);
    CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
    CHECK(v.status.staged_path == "/var/lib/meshstor/staging/" + v.metadata.name);
  }
}

TEST_CASE("A lost status never costs data: no second zeroing, no second mkfs",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  REQUIRE(v.status.node_name == "a");
  const int zeroes_a = w.cluster.node("a").block.CallCount("Partitions.Zero");
  const int zeroes_b = w.cluster.node("b").block.CallCount("Partitions.Zero");
  const int mkfs = w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs");
  v.status = {};  // e.g. restored from a backup without status
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.cluster.node("a").block.CallCount("Partitions.Zero") == zeroes_a);
  CHECK(w.cluster.node("b").block.CallCount("Partitions.Zero") == zeroes_b);
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs") == mkfs);
  CHECK(w.Part(v, 0)->state == PartitionState::kSynced);
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
}

TEST_CASE("A failure at any step is retried by the next pass", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  const char* method = GENERATE("Partitions.Ensure", "Partitions.Zero", "Filesystem.EnsureXfs",
                                "Filesystem.Mount", "Filesystem.EnsureDirectory");
  const char* node = std::string(method).rfind("Filesystem", 0) == 0 ? "a" : "b";
  w.cluster.node(node).block.FailNthCall(method, 1, common::UnavailableError("injected"));
  w.Passes(v, 4);
  INFO(method);
  CHECK_FALSE(w.errors.empty());  // the injected failure was reported
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(v.status.staged_path == "/var/lib/meshstor/staging/pvc-1");
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs") <= 2);
}

TEST_CASE("A remote member that goes away is Missing, then caught up when it returns",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  REQUIRE(w.Part(v, 1)->state == PartitionState::kSynced);

  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  const auto lost_at = std::chrono::floor<std::chrono::seconds>(w.clock.Now());
  w.Passes(v, 2);
  CHECK(w.Part(v, 1)->state == PartitionState::kMissing);
  REQUIRE(w.Part(v, 1)->missing_since.has_value());
  CHECK(*w.Part(v, 1)->missing_since == lost_at);
  CHECK(v.status.md_state == "degraded");
  // missingSince stays the first time it was seen missing.
  w.clock.Advance(std::chrono::seconds(30));
  w.Passes(v, 1);
  CHECK(*w.Part(v, 1)->missing_since == lost_at);

  w.cluster.SetOnline("b", true);
  w.errors.clear();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK_FALSE(w.Part(v, 1)->missing_since.has_value());
  CHECK(v.status.active_devices == 2);
  CHECK(v.status.md_state != "degraded");
}

const sys::NvmeController* ControllerTo(World& w, const std::string& host, const std::string& nqn) {
  static std::vector<sys::NvmeController> last;
  auto list = w.cluster.node(host).host.ListControllers();
  REQUIRE(list.ok());
  last = *list;
  for (const auto& c : last) {
    if (c.subsys_nqn == nqn) return &c;
  }
  return nullptr;
}

TEST_CASE("A member connected just now is not Missing while the kernel lists its namespace",
          "[unit][agent][volume]") {
  World w;
  auto& a = w.cluster.node("a");
  w.cluster.fabric().DelayNamespaceScans("a", true);  // the kernel's scan after a connect
  v1::MeshStorVolume v = Raid1Volume();
  const std::string nqn = *sys::SubsystemNqn("b", "a");
  int passes = 0;
  for (; passes < 5 && ControllerTo(w, "a", nqn) == nullptr; ++passes) w.Passes(v, 1);
  REQUIRE(ControllerTo(w, "a", nqn) != nullptr);
  // The pass that connected: B's member is neither Missing nor left out of a started array.
  REQUIRE(w.Part(v, 1) != nullptr);
  CHECK(w.Part(v, 1)->state != PartitionState::kMissing);
  CHECK_FALSE(w.Part(v, 1)->missing_since.has_value());
  CHECK(a.md.ListArrays()->empty());
  // The namespace shows up (its uevent wakes the next pass): the volume comes up with both legs.
  w.cluster.fabric().FinishNamespaceScans("a");
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(v.status.active_devices == 2);

  // A controller that already existed and does not show the namespace: it is not exported to
  // this node (or gone), so the member is Missing, not waited for pass after pass.
  v1::Member c = MakeMember(2, "c", v1::MemberRole::kRemote, 1, 1);
  c.replaces = 1;
  v.spec.members.push_back(c);
  const std::string to_c = *sys::SubsystemNqn("c", "a");
  for (passes = 0; passes < 5 && ControllerTo(w, "a", to_c) == nullptr; ++passes) w.Passes(v, 1);
  REQUIRE(ControllerTo(w, "a", to_c) != nullptr);
  CHECK(w.Part(v, 2)->state != PartitionState::kMissing);
  w.Passes(v, 1);  // no scan came: the existing controller has no such namespace
  CHECK(w.Part(v, 2)->state == PartitionState::kMissing);
  w.cluster.fabric().FinishNamespaceScans("a");
  w.Passes(v, 3);
  CHECK(w.Part(v, 2)->state == PartitionState::kSynced);
}

TEST_CASE("A reachable member MD failed and that cannot rejoin is reported Faulty",
          "[unit][agent][volume]") {
  // The exporter's drive died under its namespace: the NVMe/TCP path stays up, every I/O to the
  // namespace fails, MD fails the leg and mdadm cannot write a superblock to re-add it. Until the
  // consumer reports it, the CR keeps saying Synced and the operator never replaces it.
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  REQUIRE(w.Part(v, 1)->state == PartitionState::kSynced);
  auto& md = w.cluster.node("a").fake_md;
  const std::string array = sys::MdArrayName("pvc-1");
  auto a = w.cluster.node("a").md.GetArray(array);
  REQUIRE(a.ok());
  std::string remote;
  for (const auto& m : a->members) {
    if (m.write_mostly) remote = "/dev/" + m.kernel_name;
  }
  REQUIRE_FALSE(remote.empty());
  REQUIRE(md.Fail(array, remote).ok());
  const auto failed_at = std::chrono::floor<std::chrono::seconds>(w.clock.Now());
  for (int call = 1; call <= 6; ++call) {
    md.FailCall("ReAdd", call,
                common::InternalError("mdadm: Failed to write metadata to {}", remote));
  }
  w.Passes(v, 3);
  CHECK(w.Part(v, 1)->state == PartitionState::kFaulty);
  CHECK(w.Part(v, 1)->message.find("Failed to write metadata") != std::string::npos);
  CHECK(w.Part(v, 1)->updated_at == failed_at);
  CHECK(v.status.md_state == "degraded");
  // Still failing later: the state and its time stand (the operator times the replacement from
  // the first report).
  w.clock.Advance(std::chrono::seconds(30));
  w.Passes(v, 2);
  CHECK(w.Part(v, 1)->state == PartitionState::kFaulty);
  CHECK(w.Part(v, 1)->updated_at == failed_at);

  // The drive works again (the injected failures are used up): re-added, Synced.
  w.errors.clear();
  w.Passes(v, 4);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(v.status.active_devices == 2);
}

// B away while its copy was written elsewhere: its event count ran ahead of the array's.
void DivergeMemberB(World& w, v1::MeshStorVolume& v) {
  w.Passes(v, 3);
  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  w.Passes(v, 2);
  REQUIRE(w.Part(v, 1)->state == PartitionState::kMissing);
  auto parts = w.cluster.node("b").partitions.List("/dev/nvme0n1");
  REQUIRE(parts.ok());
  auto b_part = sys::FindMember(*parts, {"pvc-1", 1}, "/dev/nvme0n1");
  REQUIRE(b_part.ok());
  REQUIRE(b_part->has_value());
  w.cluster.node("b").fake_md.SetSuperblockEvents((*b_part)->device_path, 1000);
  w.cluster.SetOnline("b", true);
}

TEST_CASE("A diverged member is never re-added: it rejoins as a new member, full resync",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  DivergeMemberB(w, v);
  w.cluster.node("a").fake_md.SetInstantSync(false);
  w.Pass(v);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.Part(v, 1)->state == PartitionState::kSyncing);
  CHECK(w.Part(v, 1)->message.find("diverged") != std::string::npos);
  CHECK(w.Part(v, 1)->message.find("full resync") != std::string::npos);
  auto a = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(a.ok());
  CHECK(a->sync_action == "recover");  // rebuilding B
  w.cluster.node("a").fake_md.FinishSync(sys::MdArrayName("pvc-1"));
  w.Passes(v, 2);
  CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
  CHECK(v.status.active_devices == 2);
  CHECK(v.status.md_state != "degraded");
}

TEST_CASE("A diverged member: a crash between erasing its superblock and adding it heals",
          "[unit][agent][volume][crash]") {
  int crashes = 0;
  for (int budget = 0; budget < 20; ++budget) {
    World w;
    v1::MeshStorVolume v = Raid1Volume();
    DivergeMemberB(w, v);
    sim::CrashingKernel crashing(w.cluster.node("a").Kernel(), budget);
    w.kernel_override["a"] = crashing.Kernel();
    w.Pass(v);
    if (!crashing.crashed()) break;
    ++crashes;
    w.kernel_override.clear();  // restarted
    w.errors.clear();
    w.Passes(v, 3);
    INFO("consumer killed after step " << budget << "\n" << w.ErrorText());
    CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
    CHECK(v.status.active_devices == 2);
  }
  CHECK(crashes >= 2);
}

TEST_CASE("The node's rebuild bandwidth is shared by its rebuilding arrays",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v1v = Raid1Volume();
  v1::MeshStorVolume v2v = Raid1Volume();
  v2v.metadata.name = "pvc-2";
  v2v.spec.members[0].index = 0;
  v2v.spec.members[1].namespace_id = 2;
  w.Passes(v1v, 3);
  w.Passes(v2v, 3);
  REQUIRE(v2v.status.active_devices == 2);
  auto& md = w.cluster.node("a").fake_md;
  md.SetInstantSync(false);
  // B drops out of both arrays and comes back: both recover at once.
  for (const char* name : {"pvc-1", "pvc-2"}) {
    auto a = w.cluster.node("a").md.GetArray(sys::MdArrayName(name));
    REQUIRE(a.ok());
    for (const auto& m : a->members) {
      if (m.write_mostly) {
        REQUIRE(md.Fail(sys::MdArrayName(name), "/dev/" + m.kernel_name).ok());
      }
    }
  }
  w.Passes(v1v, 2);
  w.Passes(v2v, 2);
  AgentSettings s = w.Settings("a");
  s.rebuild_kib_per_s = 100 * 1024;
  VolumeReconciler a(w.cluster.node("a").Kernel(), s, w.clock);
  auto cap = [&](const std::string& name) {
    auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName(name));
    REQUIRE(array.ok());
    return array->sync_speed_max_kib;
  };
  REQUIRE(w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"))->sync_action == "recover");
  REQUIRE(w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-2"))->sync_action == "recover");
  REQUIRE(a.CapRebuilds({v1v, v2v}).ok());
  CHECK(cap("pvc-1") == 50 * 1024);
  CHECK(cap("pvc-2") == 50 * 1024);
  // One finishes: the other gets it all; the idle one is back on the system limit.
  md.FinishSync(sys::MdArrayName("pvc-1"));
  REQUIRE(a.CapRebuilds({v1v, v2v}).ok());
  CHECK(cap("pvc-1") == 0);
  CHECK(cap("pvc-2") == 100 * 1024);
  // No cap configured: every array on the kernel's limits.
  VolumeReconciler uncapped(w.cluster.node("a").Kernel(), w.Settings("a"), w.clock);
  REQUIRE(uncapped.CapRebuilds({v1v, v2v}).ok());
  CHECK(cap("pvc-2") == 0);
}

TEST_CASE("Publish targets are bind mounts of the staging mount", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.publish_targets = {{"/var/lib/kubelet/pods/p1/volume", false},
                            {"/var/lib/kubelet/pods/p2/volume", true}};
  w.Passes(v, 3);
  CHECK(v.status.published_targets == std::vector<std::string>{"/var/lib/kubelet/pods/p1/volume",
                                                               "/var/lib/kubelet/pods/p2/volume"});
  auto ro = w.cluster.node("a").fs.GetMount("/var/lib/kubelet/pods/p2/volume");
  REQUIRE(ro.ok());
  REQUIRE(ro->has_value());
  CHECK((*ro)->read_only());
  v.spec.publish_targets.pop_back();
  w.Passes(v, 2);
  CHECK(v.status.published_targets == std::vector<std::string>{"/var/lib/kubelet/pods/p1/volume"});
  auto gone = w.cluster.node("a").fs.GetMount("/var/lib/kubelet/pods/p2/volume");
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
}

TEST_CASE("Unpublishing removes the target directory", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  const std::string target = "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pvc-1/mount";
  v.spec.publish_targets = {{target, false}};
  w.Passes(v, 3);
  REQUIRE(v.status.published_targets == std::vector<std::string>{target});
  auto& fs = w.cluster.node("a").fs;
  // kubelet's parent directory holds the target the agent made.
  const std::string parent = target.substr(0, target.rfind('/'));
  CHECK(fs.RemoveMountPoint(parent).code() == common::StatusCode::kFailedPrecondition);
  v.spec.publish_targets.clear();
  w.Passes(v, 2);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(v.status.published_targets.empty());
  CHECK(fs.RemoveMountPoint(parent).ok());  // empty now: the target went with the unpublish
}

TEST_CASE("The consumer mounts at kubelet's staging path from the spec", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  const std::string staging =
      "/var/lib/kubelet/plugins/kubernetes.io/csi/io.meshstor.csi.mesh/"
      "0c1d/globalmount";
  const std::string target = "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pvc-1/mount";
  v.spec.staging_path = staging;
  v.spec.publish_targets = {{target, false}};
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(v.status.staged_path == staging);
  auto& fs = w.cluster.node("a").fs;
  auto staged = fs.GetMount(staging);
  REQUIRE(staged.ok());
  REQUIRE(staged->has_value());
  CHECK((*staged)->fstype == "xfs");
  CHECK_FALSE(fs.GetMount(StagingPath(w.Settings("a"), "pvc-1"))->has_value());
  CHECK(fs.GetMount(target)->has_value());

  // Unstage: every mount goes, kubelet's staging directory stays (it is kubelet's).
  v.spec.publish_targets.clear();
  v.spec.consumer_node.clear();
  v.spec.staging_path.clear();
  w.Passes(v, 2);
  CHECK(v.status.staged_path.empty());
  CHECK(fs.ListMounts()->empty());
}

TEST_CASE("Paths outside kubelet's and the agent's directories are never mounted",
          "[unit][agent][volume]") {
  AgentSettings s;
  s.kubelet_root = "/var/lib/kubelet";
  s.staging_root = "/var/lib/meshstor/staging";
  CHECK(CheckMountPath(s, "/var/lib/kubelet/pods/p/volumes/x/mount", "t").ok());
  CHECK(CheckMountPath(s, "/var/lib/meshstor/staging/pvc-1", "t").ok());
  for (const char* bad : {"", "relative/path", "/etc", "/var/lib/kubelet", "/var/lib/kubelet/",
                          "/var/lib/kubeletx/pods", "/var/lib/kubelet/../../etc",
                          "/var/lib/kubelet/pods//x", "/var/lib/kubelet/./pods"}) {
    INFO(bad);
    CHECK(CheckMountPath(s, bad, "publish target").code() == common::StatusCode::kInvalidArgument);
  }
  CHECK_THAT(CheckMountPath(s, "/etc/x", "spec.stagingPath").message(),
             Catch::Contains("spec.stagingPath \"/etc/x\" is outside"));

  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.staging_path = "/etc/evil";
  w.Passes(v, 3);
  CHECK(v.status.staged_path.empty());
  CHECK_FALSE(w.cluster.node("a").fs.GetMount("/etc/evil")->has_value());
  bool named = false;
  for (const auto& e : w.errors) named |= e.message().find("/etc/evil") != std::string::npos;
  CHECK(named);
  v.spec.staging_path.clear();
  v.spec.publish_targets = {{"/root/x", false}};
  w.errors.clear();
  w.Passes(v, 2);
  CHECK(v.status.staged_path == StagingPath(w.Settings("a"), "pvc-1"));
  CHECK(v.status.published_targets.empty());
  CHECK_FALSE(w.cluster.node("a").fs.GetMount("/root/x")->has_value());
}

TEST_CASE("A replacement member joins and the retired one leaves", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  // The operator places a replacement for member 1 on C...
  v1::Member c = MakeMember(2, "c", v1::MemberRole::kRemote, 1, 1);
  c.replaces = 1;
  v.spec.members.push_back(c);
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 2)->state == PartitionState::kSynced);
  // ...and retires member 1 once the replacement is in sync.
  v.spec.members[1].state = v1::MemberState::kRetired;
  w.Passes(v, 3);
  CHECK(w.Part(v, 1) == nullptr);  // B confirmed: partition gone
  auto parts = w.cluster.node("b").partitions.List("/dev/nvme0n1");
  REQUIRE(parts.ok());
  CHECK(parts->empty());
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->members.size() == 2);
  CHECK(v.status.active_devices == 2);
  // B no longer exports anything once nothing needs it.
  VolumeReconciler gc(w.cluster.node("b").Kernel(), w.Settings("b"), w.clock);
  REQUIRE(gc.CollectGarbage({v}).ok());
  CHECK(w.cluster.node("b").nvmet.ListSubsystems()->empty());
  CHECK(w.cluster.node("b").nvmet.ListPorts()->empty());
}

TEST_CASE(
    "A replacement that joined as a plain spare (the member it replaces came back in the same "
    "pass) is turned into a hot replace",
    "[unit][agent][volume]") {
  // Found in the real-cluster lab: the consumer re-added the returning member 1 and, deciding on
  // the array as read before that, added its replacement with a plain add; with both slots
  // filled it stayed a spare forever and the volume never left phase Replacing.
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  w.Passes(v, 2);
  // The operator places a replacement for member 1 on C; C exports it before B returns.
  v1::Member c = MakeMember(2, "c", v1::MemberRole::kRemote, 1, 1);
  c.replaces = 1;
  v.spec.members.push_back(c);
  w.PassOn(v, {"c"});
  w.cluster.SetOnline("b", true);
  w.Passes(v, 4);
  INFO(w.ErrorText());
  REQUIRE(w.Part(v, 2) != nullptr);
  CHECK(w.Part(v, 2)->state == PartitionState::kSynced);
  // Retiring member 1 then leaves two in-sync members.
  v.spec.members[1].state = v1::MemberState::kRetired;
  w.Passes(v, 3);
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->members.size() == 2);
  CHECK(v.status.active_devices == 2);
}

TEST_CASE("A replacement left a plain spare by a crash between the add and the replace is resumed",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  v1::Member c = MakeMember(2, "c", v1::MemberRole::kRemote, 1, 1);
  c.replaces = 1;
  v.spec.members.push_back(c);
  // The consumer's first attempt dies inside the replace; what it left: C's namespace connected
  // on A and added to the array as a plain spare.
  w.cluster.node("a").fake_md.FailCall("Replace", 1, common::UnavailableError("killed"));
  w.PassOn(v, {"c"});
  w.PassOn(v, {"a"});
  auto device = w.cluster.node("a").host.FindNamespaceDevice(*sys::SubsystemNqn("c", "a"), {1, ""});
  REQUIRE(device.ok());
  const std::string name = sys::MdArrayName("pvc-1");
  REQUIRE(w.cluster.node("a").md.Add(name, {*device, true}).ok());
  auto array = w.cluster.node("a").md.GetArray(name);
  REQUIRE(array.ok());
  REQUIRE(array->members.size() == 3);
  w.Passes(v, 3);
  INFO(w.ErrorText());
  REQUIRE(w.Part(v, 2) != nullptr);
  CHECK(w.Part(v, 2)->state == PartitionState::kSynced);
}

TEST_CASE("The last in-sync copy is never retired", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  w.cluster.SetOnline("b", false);
  w.cluster.ExpireControllers();
  w.Passes(v, 2);
  v.spec.members[0].state = v1::MemberState::kRetired;  // a bad instruction
  w.errors.clear();
  w.Passes(v, 2);
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->members.size() >= 1);
  bool refused = false;
  for (const auto& e : w.errors)
    refused |= e.message().find("last in-sync copy") != std::string::npos;
  CHECK(refused);
}

TEST_CASE("Unstage and deletion tear down in order and clear the consumer fields",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.publish_targets = {{"/var/lib/kubelet/pods/p1/volume", false}};
  w.Passes(v, 3);
  REQUIRE(v.status.node_name == "a");
  v.spec.publish_targets.clear();
  v.spec.consumer_node.clear();
  w.Passes(v, 2);
  INFO(w.ErrorText());
  CHECK(v.status.node_name.empty());
  CHECK(v.status.staged_path.empty());
  CHECK_FALSE(v.status.filesystem_bytes.has_value());
  CHECK(w.cluster.node("a").fs.ListMounts()->empty());
  CHECK(w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1")).status().code() ==
        common::StatusCode::kNotFound);
  // No consumer: B withdraws its export (fenced) but keeps the partition.
  auto sub = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "a"));
  CHECK((!sub.ok() || sub->namespaces.empty()));

  // Staged again on A: assembled from the members (not created), data kept.
  const int mkfs = w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs");
  v.spec.consumer_node = "a";
  w.Passes(v, 3);
  CHECK(v.status.node_name == "a");
  CHECK(v.status.active_devices == 2);
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs") == mkfs);

  // Deleted: every member retired, partitions deleted, entries dropped, consumer cleared.
  v.metadata.deletion_timestamp = std::chrono::floor<std::chrono::seconds>(w.clock.Now());
  for (auto& m : v.spec.members) m.state = v1::MemberState::kRetired;
  w.Passes(v, 3);
  CHECK(v.status.partitions.empty());
  CHECK(v.status.node_name.empty());
  for (const char* n : {"a", "b"}) {
    auto parts = w.cluster.node(n).partitions.List("/dev/nvme0n1");
    REQUIRE(parts.ok());
    CHECK(parts->empty());
  }
}

// ---- failover from a dead consumer (docs/design.md §5.1) ---------------------------------------

// What a fresh `nvme connect` of node `host` to `exporter` gets.
common::Status ConnectAgain(World& w, const std::string& host, const std::string& exporter) {
  auto identity = w.cluster.node(host).host.GetHostIdentity();
  REQUIRE(identity.ok());
  sys::NvmeConnectSpec spec;
  spec.address = w.peers.at(exporter).address;
  spec.service = w.peers.at(exporter).service;
  spec.subsys_nqn = *sys::SubsystemNqn(exporter, host);
  spec.host_nqn = identity->host_nqn;
  spec.host_id = identity->host_id;
  return w.cluster.node(host).host.Connect(spec).status();
}

TEST_CASE("Garbage collection never disconnects a leg of a running array, whatever its cache says",
          "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  const std::string nqn = *sys::SubsystemNqn("b", "a");
  REQUIRE(ControllerTo(w, "a", nqn) != nullptr);
  auto& a = w.cluster.node("a");
  REQUIRE(a.md.ListArrays()->size() == 1);
  VolumeReconciler gc(a.Kernel(), w.Settings("a"), w.clock);
  // A volume cache that lost the volume (an empty list before the informer's, a bug): the
  // import from B is still a leg of A's running array, so it stays, the array keeps both legs.
  for (int i = 0; i < 2; ++i) {
    common::Status s = gc.CollectGarbage({});
    CHECK(s.code() == common::StatusCode::kFailedPrecondition);  // reported, and kept
    CHECK(s.message().find(nqn + " (a leg of /dev/md") != std::string::npos);
    REQUIRE(ControllerTo(w, "a", nqn) != nullptr);
    auto array = a.md.GetArray(sys::MdArrayName("pvc-1"));
    REQUIRE(array.ok());
    CHECK(array->degraded == 0);
    CHECK(std::none_of(array->members.begin(), array->members.end(),
                       [](const sys::MdMemberState& m) { return m.faulty; }));
  }
  // A failure to tell what the arrays hold keeps every connection too.
  a.host.FailCall("SubsystemOfDevice", 1, common::InternalError("sysfs unreadable"));
  CHECK_FALSE(gc.CollectGarbage({}).ok());
  CHECK(ControllerTo(w, "a", nqn) != nullptr);
  // Once the array is stopped (unstage), the connection nobody imports from goes.
  v.spec.consumer_node.clear();
  v.spec.staging_path.clear();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  REQUIRE(a.md.ListArrays()->empty());
  REQUIRE(gc.CollectGarbage({v}).ok());
  CHECK(ControllerTo(w, "a", nqn) == nullptr);
}

TEST_CASE("An exporter cuts a fenced node off, drops its connections and confirms",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  const std::string nqn = *sys::SubsystemNqn("b", "a");
  const sys::NvmeController* c = ControllerTo(w, "a", nqn);
  REQUIRE(c != nullptr);
  REQUIRE(c->state == sys::NvmeControllerState::kLive);

  // node-a is declared dead (its agent is gone; its kernel may still run): the operator fences
  // it. Only B's agent acts.
  v.spec.fenced_nodes = {"a"};
  w.PassOn(v, {"b"});
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  auto sub = w.cluster.node("b").nvmet.GetSubsystem(nqn);
  REQUIRE(sub.ok());
  CHECK(sub->namespaces.empty());     // the partition left A's subsystem
  CHECK(sub->allowed_hosts.empty());  // A's host NQN is no longer allowed
  CHECK(sub->ports.empty());          // unlinked: A's controllers are gone
  c = ControllerTo(w, "a", nqn);
  REQUIRE(c != nullptr);
  CHECK(c->state != sys::NvmeControllerState::kLive);
  CHECK(w.Part(v, 1)->fenced_nodes == std::vector<std::string>{"a"});
  // A's own member is not confirmed by anyone (its agent is down).
  CHECK(w.Part(v, 0)->fenced_nodes.empty());

  // A new connection from A is refused.
  w.cluster.ExpireControllers();
  CHECK_FALSE(ConnectAgain(w, "a", "b").ok());

  // Idempotent: another pass changes nothing and keeps the confirmation.
  const auto before = v.status;
  w.PassOn(v, {"b"});
  CHECK(w.errors.empty());
  CHECK(v.status == before);
  // And node-wide clean-up drops the emptied subsystem (B exports nothing to a fenced consumer).
  VolumeReconciler gc(w.cluster.node("b").Kernel(), w.Settings("b"), w.clock);
  REQUIRE(gc.CollectGarbage({v}).ok());
  CHECK(w.cluster.node("b").nvmet.GetSubsystem(nqn).status().code() ==
        common::StatusCode::kNotFound);
}

TEST_CASE("Fencing comes before any export, and is confirmed only once applied",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  // A is fenced and C takes over in one go (as B's agent, restarted, first sees it).
  v.spec.fenced_nodes = {"a"};
  v.spec.consumer_node = "c";
  w.cluster.node("b").nvmet.FailCall("UnlinkSubsystemFromPort", 1,
                                     common::UnavailableError("configfs busy"));
  w.PassOn(v, {"b"});
  REQUIRE_FALSE(w.errors.empty());
  CHECK_THAT(w.ErrorText(), Catch::Contains("fencing a"));
  // Nothing exported to C before A is cut off, and no confirmation.
  CHECK(w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "c")).status().code() ==
        common::StatusCode::kNotFound);
  CHECK(w.Part(v, 1)->fenced_nodes.empty());
  // The next pass completes the fence, then exports to C.
  w.errors.clear();
  w.PassOn(v, {"b"});
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.Part(v, 1)->fenced_nodes == std::vector<std::string>{"a"});
  auto to_c = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "c"));
  REQUIRE(to_c.ok());
  CHECK(to_c->namespaces.size() == 1);
  auto to_a = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "a"));
  CHECK((!to_a.ok() || (to_a->namespaces.empty() && to_a->allowed_hosts.empty())));
}

TEST_CASE("An exporter started after the fence never exports to the fenced node",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.fenced_nodes = {"a"};  // A was declared dead before B's agent (re)started
  for (int i = 0; i < 3; ++i) {
    w.PassOn(v, {"b"});
    CHECK(w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "a")).status().code() ==
          common::StatusCode::kNotFound);
  }
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  REQUIRE(w.Part(v, 1) != nullptr);
  CHECK(w.Part(v, 1)->fenced_nodes == std::vector<std::string>{"a"});
}

TEST_CASE("A returning fenced consumer stands down and writes nothing",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.members[0].namespace_id = 2;  // as the operator assigns it, for when it is exported
  v.spec.publish_targets = {{"/var/lib/kubelet/pods/p1/volume", false}};
  w.Passes(v, 3);
  REQUIRE(v.status.node_name == "a");
  // A was cut off while its array ran (a partition, not a power-off): B fenced it, the operator
  // cleared A's consumer fields and C took the volume over (the shim drops A's publish targets;
  // the operator's roles follow). Nothing in the volume names A's mounts any more.
  v.spec.fenced_nodes = {"a"};
  v.spec.consumer_node = "c";
  v.spec.staging_path.clear();
  v.spec.publish_targets.clear();
  for (auto& m : v.spec.members) m.role = v1::MemberRole::kRemote;
  w.PassOn(v, {"b"});
  v.status.node_name.clear();
  v.status.staged_path.clear();
  v.status.published_targets.clear();
  REQUIRE(w.cluster.node("a").fs.ListMounts()->size() == 2);

  // A's agent comes back: it unmounts what it still has (found by the array's device), stops the
  // array, and never starts it again.
  w.errors.clear();
  for (int i = 0; i < 3; ++i) {
    w.PassOn(v, {"a"});
    CHECK(w.cluster.node("a").md.ListArrays()->empty());
  }
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.cluster.node("a").fs.ListMounts()->empty());
  CHECK(v.status.node_name.empty());
  // Its node-wide clean-up disconnects from B, and B refuses a new connection.
  VolumeReconciler gc(w.cluster.node("a").Kernel(), w.Settings("a"), w.clock);
  REQUIRE(gc.CollectGarbage({v}).ok());
  CHECK(ControllerTo(w, "a", *sys::SubsystemNqn("b", "a")) == nullptr);
  CHECK_FALSE(ConnectAgain(w, "a", "b").ok());
  // Its own copy goes to C only, now that its array is stopped.
  auto a_to_c = w.cluster.node("a").nvmet.GetSubsystem(*sys::SubsystemNqn("a", "c"));
  REQUIRE(a_to_c.ok());
  CHECK(a_to_c->namespaces.size() == 1);

  // C reaches both copies (which one it may start from is the stale-member rule's decision: A's
  // array wrote after B was cut off); A never runs the array again whatever C does.
  w.Passes(v, 4);
  CHECK(w.cluster.node("a").md.ListArrays()->empty());
  CHECK(v.status.node_name != "a");
}

TEST_CASE("A fenced consumer nobody took over does not run the array either",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  v.spec.fenced_nodes = {"a"};  // still spec.consumerNode
  w.PassOn(v, {"b"});
  v.status.node_name.clear();  // the operator's take-over preparation
  v.status.staged_path.clear();
  w.errors.clear();
  for (int i = 0; i < 3; ++i) {
    w.PassOn(v, {"a"});
    CHECK(w.cluster.node("a").md.ListArrays()->empty());
  }
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(v.status.node_name.empty());
  CHECK(w.cluster.node("a").fs.ListMounts()->empty());
  // Its copy is offered to nobody (the consumer is fenced).
  auto subsystems = w.cluster.node("a").nvmet.ListSubsystems();
  REQUIRE(subsystems.ok());
  for (const auto& sub : *subsystems) {
    CHECK(sub.namespaces.empty());
  }
}

TEST_CASE("A node that was its volume's consumer exports its member only once the array stopped",
          "[unit][agent][volume][fencing]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.members[0].namespace_id = 2;  // as the operator assigns it, for when it is exported
  w.Passes(v, 3);
  v.spec.consumer_node = "c";
  for (auto& m : v.spec.members) m.role = v1::MemberRole::kRemote;
  // The teardown fails this pass (the array cannot be stopped yet): no export to C from A.
  w.cluster.node("a").fake_md.FailCall("Stop", 1, common::UnavailableError("device busy"));
  w.PassOn(v, {"a"});
  CHECK(w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1")).ok());
  CHECK_THAT(w.ErrorText(), Catch::Contains("still runs on this node"));
  CHECK(w.cluster.node("a").nvmet.GetSubsystem(*sys::SubsystemNqn("a", "c")).status().code() ==
        common::StatusCode::kNotFound);
  w.errors.clear();
  w.PassOn(v, {"a"});
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(w.cluster.node("a").nvmet.GetSubsystem(*sys::SubsystemNqn("a", "c")).ok());
}

TEST_CASE("A partition that is not ours is never touched", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  // A partition with our member's name but another GUID (not created by us for this volume).
  sys::FakePartition foreign;
  foreign.number = 1;
  foreign.name = *sys::PartitionName({"pvc-1", 1});
  foreign.uuid = "0badc0de-0000-4000-8000-000000000001";
  foreign.type_uuid = std::string(sys::kLinuxRaidPartitionType);
  foreign.start_bytes = 1 << 20;
  foreign.size_bytes = kMemberBytes;
  w.cluster.node("b").block.AddRawPartition("/dev/nvme0n1", foreign);
  w.Passes(v, 3);
  bool refused = false;
  for (const auto& e : w.errors) {
    refused |= e.code() == common::StatusCode::kFailedPrecondition;
  }
  CHECK(refused);
  CHECK(w.cluster.node("b").block.CallCount("Partitions.Zero") == 0);
  CHECK(w.Part(v, 1) == nullptr);
  CHECK(v.status.node_name.empty());  // never assembled without it
}

TEST_CASE("A consumer without placed members waits quietly", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.members.clear();  // staged before the operator placed anything
  w.Passes(v, 2);
  INFO(w.ErrorText());
  CHECK(w.errors.empty());
  CHECK(v.status.node_name.empty());
  CHECK(w.cluster.node("a").md.ListArrays()->empty());
}

TEST_CASE("A single-copy volume is a 2-slot RAID1 with a placeholder", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.replica_count = 1;
  v.spec.members.pop_back();
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(v.status.node_name == "a");
  CHECK(v.status.total_devices == 2);
  CHECK(v.status.active_devices == 1);
  CHECK(v.status.down_devices == 0);  // the placeholder is not a missing member
}

TEST_CASE("RAID10 across two nodes", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  v.spec.stripe_width = 2;
  w.cluster.node("a").AddDrive("nvme1n1", 4 * kGiB);
  w.cluster.node("b").AddDrive("nvme1n1", 4 * kGiB);
  v.spec.members = {MakeMember(0, "a", v1::MemberRole::kLocal, 0, 0),
                    MakeMember(1, "b", v1::MemberRole::kRemote, 1, 1),
                    MakeMember(2, "a", v1::MemberRole::kLocal, 0, 2),
                    MakeMember(3, "b", v1::MemberRole::kRemote, 2, 3)};
  v.spec.members[2].drive = "nvme1n1";
  v.spec.members[3].drive = "nvme1n1";
  w.Passes(v, 3);
  INFO(w.ErrorText());
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->level == "raid10");
  CHECK(v.status.active_devices == 4);
  for (int i = 0; i < 4; ++i) CHECK(w.Part(v, i)->state == PartitionState::kSynced);
}

TEST_CASE(
    "Relocation: the old consumer tears down, exports are fenced, the new consumer "
    "assembles and hot-replaces the old local member",
    "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  REQUIRE(v.status.node_name == "a");
  // The pod moves to C: A's member becomes remote, a new local member on C replaces it.
  v.spec.consumer_node = "c";
  v.spec.members[0].role = v1::MemberRole::kRemote;
  v.spec.members[0].namespace_id = 1;
  v1::Member local = MakeMember(2, "c", v1::MemberRole::kLocal, 0, 0);
  local.replaces = 0;
  v.spec.members.push_back(local);
  w.Passes(v, 1);
  // Fenced: B offers its partition to C only, no longer to A.
  auto old_sub = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "a"));
  CHECK((!old_sub.ok() || old_sub->namespaces.empty()));
  auto new_sub = w.cluster.node("b").nvmet.GetSubsystem(*sys::SubsystemNqn("b", "c"));
  REQUIRE(new_sub.ok());
  CHECK(new_sub->allowed_hosts == std::vector<std::string>{w.cluster.node("c").host_nqn});
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(v.status.node_name == "c");
  CHECK(w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1")).status().code() ==
        common::StatusCode::kNotFound);
  CHECK(w.Part(v, 2)->state == PartitionState::kSynced);
  // The replaced member leaves the array; retired, A deletes it.
  v.spec.members[0].state = v1::MemberState::kRetired;
  w.Passes(v, 3);
  CHECK(w.Part(v, 0) == nullptr);
  auto array = w.cluster.node("c").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->members.size() == 2);
  CHECK(v.status.active_devices == 2);
  CHECK(w.cluster.node("a").partitions.List("/dev/nvme0n1")->empty());
  // The data was never formatted again on C.
  CHECK(w.cluster.node("c").block.CallCount("Filesystem.EnsureXfs") == 0);
}

TEST_CASE("Expansion grows partitions, then the array, then XFS, online", "[unit][agent][volume]") {
  World w;
  v1::MeshStorVolume v = Raid1Volume();
  w.Passes(v, 3);
  auto array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->size_bytes == 512 * uint64_t{v1::kMiB});
  auto fs = w.cluster.node("a").fs.XfsSizeBytes(array->device);
  REQUIRE(fs.ok());
  CHECK(*fs == 512 * uint64_t{v1::kMiB});
  CHECK(v.status.filesystem_bytes == 512 * v1::kMiB);  // what NodeExpandVolume waits for
  // The shim raised the capacity; the operator raised the members' sizes.
  v.spec.capacity_bytes = 1024 * v1::kMiB;
  for (auto& m : v.spec.members) m.size_bytes = 1025 * v1::kMiB;
  w.Passes(v, 3);
  INFO(w.ErrorText());
  CHECK(w.Part(v, 0)->size_bytes == 1025 * v1::kMiB);
  CHECK(w.Part(v, 1)->size_bytes == 1025 * v1::kMiB);
  array = w.cluster.node("a").md.GetArray(sys::MdArrayName("pvc-1"));
  REQUIRE(array.ok());
  CHECK(array->size_bytes == 1024 * uint64_t{v1::kMiB});
  fs = w.cluster.node("a").fs.XfsSizeBytes(array->device);
  REQUIRE(fs.ok());
  CHECK(*fs == 1024 * uint64_t{v1::kMiB});
  CHECK(v.status.filesystem_bytes == 1024 * v1::kMiB);
  // Still mounted, never reformatted.
  CHECK(v.status.staged_path == "/var/lib/meshstor/staging/pvc-1");
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.EnsureXfs") == 1);
  // Steady: no more grow calls.
  const int grows = w.cluster.node("a").block.CallCount("Filesystem.GrowXfs");
  w.Passes(v, 2);
  CHECK(w.cluster.node("a").block.CallCount("Filesystem.GrowXfs") == grows);
}

// kill -9 of one node's agent after its k-th state-changing kernel call, for every k, while a
// volume comes up; the restarted agent (a fresh reconciler on the same kernel) must converge to
// the same end state with nothing duplicated: one partition per member, one array, XFS made
// once, formattedAt set once.
TEST_CASE("Crash after any step while a volume comes up: the restarted agent converges",
          "[unit][agent][volume][crash]") {
  const char* node = GENERATE("a", "b");
  int crashes = 0;
  for (int budget = 0; budget < 60; ++budget) {
    World w;
    v1::MeshStorVolume v = Raid1Volume();
    v.spec.publish_targets = {{"/var/lib/kubelet/pods/p1/volume", false}};
    sim::CrashingKernel crashing(w.cluster.node(node).Kernel(), budget);
    w.kernel_override[node] = crashing.Kernel();
    w.Passes(v, 3);                  // the crashed agent does nothing more after its budget
    if (!crashing.crashed()) break;  // the budget outlasted every step: all crash points done
    ++crashes;
    w.kernel_override.clear();  // restarted
    const auto formatted_at = v.spec.formatted_at;
    w.Passes(v, 4);
    INFO("agent on " << node << " killed after step " << budget);
    CHECK(v.status.node_name == "a");
    CHECK(v.status.active_devices == 2);
    CHECK(v.status.published_targets ==
          std::vector<std::string>{"/var/lib/kubelet/pods/p1/volume"});
    REQUIRE(v.status.partitions.size() == 2);
    CHECK(w.Part(v, 0)->state == PartitionState::kSynced);
    CHECK(w.Part(v, 1)->state == PartitionState::kSynced);
    REQUIRE(v.spec.formatted_at.has_value());
    if (formatted_at) CHECK(*v.spec.formatted_at == *formatted_at);
    for (const char* n : {"a", "b"}) {
      auto parts = w.cluster.node(n).partitions.List("/dev/nvme0n1");
      REQUIRE(parts.ok());
      CHECK(parts->size() == 1);
    }
    auto arrays = w.cluster.node("a").md.ListArrays();
    REQUIRE(arrays.ok());
    CHECK(arrays->size() == 1);
    // XFS exists once on the array, mounted once at the staging path.
    int staged = 0;
    auto mounts = w.cluster.node("a").fs.ListMounts();
    REQUIRE(mounts.ok());
    for (const auto& m : *mounts) {
      staged += m.target == v.status.staged_path ? 1 : 0;
    }
    CHECK(staged == 1);
  }
  CHECK(crashes >= 3);
}

}  // namespace
}  // namespace agent
