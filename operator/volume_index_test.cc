#include "operator/volume_index.h"

#include <algorithm>
#include <random>
#include <string_view>

#include <catch2/catch.hpp>

#include "operator/members.h"
#include "operator/reconcile.h"
#include "operator/testing/builders.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;

const std::vector<std::string> kNodes = {"n1", "n2", "n3", "n4", "n5"};
const std::vector<std::string> kDrives = {"nvme0n1", "nvme1n1"};

// A volume with random members (present or retired, some replacing others), partitions reported
// for some of them (with or without namespace IDs, states Synced or Syncing), a consumer, fenced
// nodes and a Placeable condition of any status.
v1::MeshStorVolume RandomVolume(const std::string& name, std::mt19937& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  v1::MeshStorVolume v = Volume(name);
  const int members = pick(4);
  for (int i = 0; i < members; ++i) {
    v1::Member m;
    m.index = i;
    m.node = kNodes[pick(kNodes.size())];
    m.drive = kDrives[pick(kDrives.size())];
    m.size_bytes = (1 + pick(3)) * v1::kMiB;
    m.namespace_id = 1 + pick(6);
    m.state = pick(4) == 0 ? v1::MemberState::kRetired : v1::MemberState::kPresent;
    if (i > 0 && pick(3) == 0) m.replaces = i - 1;
    if (pick(2) == 0) {
      v1::PartitionStatus p;
      p.index = i;
      p.node_id = pick(5) == 0 ? kNodes[pick(kNodes.size())] : m.node;
      p.drive = m.drive;
      if (pick(2) == 0) p.nvmeof_namespace_id = 1 + pick(8);
      p.state = pick(2) == 0 ? v1::PartitionState::kSynced : v1::PartitionState::kSyncing;
      v.status.partitions.push_back(p);
    }
    v.spec.members.push_back(m);
  }
  if (pick(2) == 0) v.spec.consumer_node = kNodes[pick(kNodes.size())];
  if (pick(4) == 0) v.spec.fenced_nodes.push_back(kNodes[pick(kNodes.size())]);
  if (pick(3) != 0) {
    common::api::Condition c;
    c.type = kConditionPlaceable;
    c.status = pick(2) == 0 ? ConditionStatus::kTrue : ConditionStatus::kFalse;
    v.status.conditions.push_back(c);
  }
  if (pick(6) == 0)
    v.metadata.deletion_timestamp = std::chrono::time_point_cast<std::chrono::seconds>(T0());
  return v;
}

// What the index must agree with: full scans of `volumes`.
void RequireAgreesWithScan(const VolumeIndex& index,
                           const std::map<std::string, v1::MeshStorVolume>& volumes) {
  Inventory inv;
  for (const auto& [name, v] : volumes) {
    inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(v));
  }
  REQUIRE(index.size() == volumes.size());
  const auto counts = MemberCounts(inv);
  std::map<std::string, int> rebuilds;
  std::map<std::pair<std::string, std::string>, int64_t> pending;
  for (const auto& [name, v] : volumes) {
    for (const v1::Member& m : v.spec.members) {
      if (m.state != v1::MemberState::kPresent) continue;
      if (m.replaces && !IsSynced(v, m)) ++rebuilds[m.node];
      bool reported = false;
      for (const auto& p : v.status.partitions) {
        reported = reported || (p.index == m.index && p.node_id == m.node);
      }
      if (!reported) pending[{m.node, m.drive}] += m.size_bytes;
    }
  }
  CHECK(index.RebuildsByNode() == rebuilds);
  std::vector<std::string_view> node_views(kNodes.begin(), kNodes.end());
  const auto loads = index.Loads(node_views);
  REQUIRE(loads.size() == kNodes.size());
  for (size_t i = 0; i < kNodes.size(); ++i) {
    INFO("load of node " << kNodes[i]);
    CHECK(loads[i].members == (counts.count(kNodes[i]) ? counts.at(kNodes[i]) : 0));
    auto got = loads[i].pending;
    std::sort(got.begin(), got.end());
    std::vector<std::pair<std::string, int64_t>> want;
    for (const auto& [key, bytes] : pending) {
      if (key.first == kNodes[i]) want.emplace_back(key.second, bytes);
    }
    CHECK(got == want);
  }
  for (const std::string& node : kNodes) {
    INFO("node " << node);
    CHECK(index.MemberCount(node) == (counts.count(node) ? counts.at(node) : 0));
    CHECK(index.UsedNamespaceIds(node) == UsedNamespaceIds(inv, node));
    for (const std::string& drive : kDrives) {
      auto it = pending.find({node, drive});
      CHECK(index.PendingBytes(node, drive) == (it == pending.end() ? 0 : it->second));
    }
    std::vector<std::string> concerning;
    for (const auto& [name, v] : volumes) {
      const auto* placeable = common::api::FindCondition(v.status.conditions, kConditionPlaceable);
      bool waiting = !v.metadata.deletion_timestamp &&
                     (!v.spec.consumer_node.empty() || !v.spec.members.empty()) &&
                     (placeable == nullptr || placeable->status != ConditionStatus::kTrue);
      bool on_node = v.spec.consumer_node == node;
      for (const auto& m : v.spec.members) on_node = on_node || m.node == node;
      for (const auto& f : v.spec.fenced_nodes) on_node = on_node || f == node;
      if (waiting || on_node) concerning.push_back(name);
    }
    CHECK(index.VolumesConcerning(node) == concerning);
  }
}

TEST_CASE("The volume index agrees with a full scan after random adds, updates and deletes",
          "[unit][volume_index]") {
  std::mt19937 rng(42);
  VolumeIndex index;
  std::map<std::string, v1::MeshStorVolume> volumes;
  for (int step = 0; step < 2000; ++step) {
    const std::string name = "pvc-" + std::to_string(rng() % 40);
    if (rng() % 4 == 0) {
      volumes.erase(name);
      index.Apply(name, nullptr);
    } else {
      auto v = RandomVolume(name, rng);
      volumes[name] = v;
      index.Apply(name, &v);
    }
    if (step % 50 == 49) {
      INFO("step " << step);
      RequireAgreesWithScan(index, volumes);
    }
  }
  for (auto it = volumes.begin(); it != volumes.end();) {
    index.Apply(it->first, nullptr);
    it = volumes.erase(it);
  }
  RequireAgreesWithScan(index, volumes);
  CHECK(index.UsedNamespaceIds("n1").empty());
  CHECK(index.VolumesConcerning("n1").empty());
  CHECK(index.node_count() == 0);  // nothing kept for nodes no volume refers to
}

TEST_CASE("The volume index keeps its names, entries and lists in the slab pool",
          "[unit][volume_index]") {
  if (!common::compress::SlabPool::kEnabled) {
    WARN("skipped: built with AddressSanitizer, where SlabAllocator uses operator new");
    return;
  }
  const size_t used0 = common::compress::SlabPool::GetStats().used_bytes;
  std::mt19937 rng(7);
  {
    VolumeIndex index;
    std::vector<std::string> names;
    for (int i = 0; i < 200; ++i) {
      // Names as the CSI shim gives them (40 characters: a slot of their own).
      names.push_back("pvc-" + std::to_string(10000000 + i) + "-0000-4000-8000-000000000000");
      auto v = RandomVolume(names.back(), rng);
      index.Apply(names.back(), &v);
    }
    // Each volume: its entry and its name, besides the nodes' lists.
    const size_t used = common::compress::SlabPool::GetStats().used_bytes - used0;
    CAPTURE(used);
    CHECK(used >= 200 * (48 + 128));
    for (const std::string& name : names) index.Apply(name, nullptr);
    CHECK(index.node_count() == 0);
  }
  CHECK(common::compress::SlabPool::GetStats().used_bytes == used0);  // every slot given back
}

TEST_CASE("The volume index tells which resourceVersion of a volume it applied last",
          "[unit][volume_index]") {
  VolumeIndex index;
  CHECK(index.IsAt("pvc-1", ""));  // not indexed
  CHECK_FALSE(index.IsAt("pvc-1", "5"));
  auto v = Volume("pvc-1");
  v.metadata.resource_version = "5";
  index.Apply("pvc-1", &v);
  CHECK(index.IsAt("pvc-1", "5"));
  CHECK_FALSE(index.IsAt("pvc-1", "6"));
  CHECK_FALSE(index.IsAt("pvc-1", ""));
  v.metadata.resource_version = "6";
  index.Apply("pvc-1", &v);
  CHECK(index.IsAt("pvc-1", "6"));
  CHECK_FALSE(index.IsAt("pvc-1", "5"));
  index.Apply("pvc-1", nullptr);
  CHECK(index.IsAt("pvc-1", ""));
  CHECK_FALSE(index.IsAt("pvc-1", "6"));
}

TEST_CASE("The volume index's loads stay right for the names it keeps between calls",
          "[unit][volume_index]") {
  std::mt19937 rng(7);
  VolumeIndex index;
  // Loads keeps the names of its last call and updates their loads as volumes are applied: the
  // same names again, other names (unknown ones, another order), repeated names (not kept).
  const std::vector<std::string_view> all(kNodes.begin(), kNodes.end());
  const std::vector<std::string_view> other = {"n9", "n4", "n2"};
  const std::vector<std::string_view> repeated = {"n1", "n3", "n1"};
  const std::vector<std::string_view>* names = &all;
  auto want = [&](std::string_view node) {
    VolumeIndex::NodeLoad load;
    load.members = index.MemberCount(std::string(node));
    for (const std::string& drive : kDrives) {
      if (int64_t bytes = index.PendingBytes(std::string(node), drive)) {
        load.pending.emplace_back(drive, bytes);
      }
    }
    return load;
  };
  for (int step = 0; step < 3000; ++step) {
    const std::string name = "pvc-" + std::to_string(rng() % 30);
    if (rng() % 4 == 0) {
      index.Apply(name, nullptr);
    } else {
      auto v = RandomVolume(name, rng);
      index.Apply(name, &v);
    }
    if (rng() % 10 == 0) {
      const std::vector<std::string_view>* lists[] = {&all, &other, &repeated};
      names = lists[rng() % 3];
    }
    auto got = index.Loads(*names);
    REQUIRE(got.size() == names->size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("step " << step << ", node " << (*names)[i]);
      std::sort(got[i].pending.begin(), got[i].pending.end());
      CHECK(got[i] == want((*names)[i]));
    }
  }
  for (int i = 0; i < 30; ++i) index.Apply("pvc-" + std::to_string(i), nullptr);
  CHECK(index.node_count() == 0);
  for (const auto& load : index.Loads(all)) CHECK(load == VolumeIndex::NodeLoad());
}

TEST_CASE("The volume index's node loads follow reservations, reports, moves and deletions",
          "[unit][volume_index]") {
  VolumeIndex index;
  auto loads = [&] { return index.Loads({"n1", "n2", "n9"}); };
  using Load = VolumeIndex::NodeLoad;
  auto v = Volume("pvc-1");
  v.spec.members.push_back({0,
                            "n1",
                            "nvme0n1",
                            5 * v1::kMiB,
                            1,
                            v1::MemberRole::kRemote,
                            v1::MemberState::kPresent,
                            0,
                            {}});
  v.spec.members.push_back({1,
                            "n1",
                            "nvme1n1",
                            5 * v1::kMiB,
                            2,
                            v1::MemberRole::kRemote,
                            v1::MemberState::kPresent,
                            1,
                            {}});
  index.Apply("pvc-1", &v);
  auto w = Volume("pvc-2");
  w.spec.members.push_back({0,
                            "n1",
                            "nvme0n1",
                            7 * v1::kMiB,
                            3,
                            v1::MemberRole::kRemote,
                            v1::MemberState::kPresent,
                            0,
                            {}});
  index.Apply("pvc-2", &w);
  // Reservations of two volumes on one drive add up; a node nobody uses has no load.
  auto l = loads();
  CHECK(l[0].members == 3);
  std::sort(l[0].pending.begin(), l[0].pending.end());
  CHECK(l[0].pending == std::vector<std::pair<std::string, int64_t>>{{"nvme0n1", 12 * v1::kMiB},
                                                                     {"nvme1n1", 5 * v1::kMiB}});
  CHECK(l[1] == Load{});
  CHECK(l[2] == Load{});

  // The agent reports member 0 of pvc-1: its reservation ends, the member stays.
  v.status.partitions.push_back({0, "n1", "nvme0n1", "", 1, v1::PartitionState::kCreated});
  index.Apply("pvc-1", &v);
  l = loads();
  CHECK(l[0].members == 3);
  std::sort(l[0].pending.begin(), l[0].pending.end());
  CHECK(l[0].pending == std::vector<std::pair<std::string, int64_t>>{{"nvme0n1", 7 * v1::kMiB},
                                                                     {"nvme1n1", 5 * v1::kMiB}});
  // Member 1 moves to n2 (a new version of the volume): n1 no longer holds or reserves it.
  v.spec.members[1].node = "n2";
  index.Apply("pvc-1", &v);
  l = loads();
  CHECK(l[0] == Load{2, {{"nvme0n1", 7 * v1::kMiB}}});
  CHECK(l[1] == Load{1, {{"nvme1n1", 5 * v1::kMiB}}});
  CHECK(index.PendingBytes("n2", "nvme1n1") == 5 * v1::kMiB);
  CHECK(index.PendingBytes("n1", "nvme1n1") == 0);
  // Retired members neither count nor reserve, but keep their namespace ID.
  w.spec.members[0].state = v1::MemberState::kRetired;
  index.Apply("pvc-2", &w);
  CHECK(loads()[0] == Load{1, {}});
  CHECK(index.UsedNamespaceIds("n1") == std::set<int32_t>{1, 3});
  index.Apply("pvc-1", nullptr);
  index.Apply("pvc-2", nullptr);
  CHECK(loads() == std::vector<Load>(3));
  CHECK(index.node_count() == 0);
}

TEST_CASE("Placement with the index decides as placement with a full scan",
          "[unit][volume_index]") {
  std::mt19937 rng(7);
  Inventory inv = Cluster(5, 2);
  VolumeIndex index;
  for (int i = 0; i < 30; ++i) {
    auto v = Volume("pvc-" + std::to_string(i));
    v1::Member m;
    m.index = 0;
    m.node = std::string("node-") + static_cast<char>('a' + rng() % 5);
    m.drive = "nvme" + std::to_string(rng() % 2) + "n1";
    m.size_bytes = static_cast<int64_t>(1 + rng() % 20) * 1024 * v1::kMiB;
    m.namespace_id = i + 1;
    v.spec.members.push_back(m);
    inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(v));
    index.Apply(v.metadata.name, &v);
  }
  Inventory indexed = inv;
  indexed.volumes.clear();
  indexed.index = &index;
  for (int n = 1; n <= 4; ++n) {
    for (const char* consumer : {"", "node-c"}) {
      PlacementRequest req{"pvc-new", 30 * 1024 * v1::kMiB, 4096, 1, n, consumer, {}};
      auto scanned = Place(req, inv);
      auto fast = Place(req, indexed);
      REQUIRE(scanned.ok() == fast.ok());
      if (scanned.ok()) CHECK(*scanned == *fast);
    }
  }
}

TEST_CASE("Placement with the index decides as a full scan while volumes and drives change",
          "[unit][volume_index]") {
  std::mt19937 rng(11);
  Inventory inv;
  inv.now = T0();
  for (const std::string& node : kNodes) {
    inv.nodes.push_back(std::make_shared<const common::api::Node>(NodeObj(node)));
    for (const std::string& drive : kDrives) {
      inv.devices.push_back(
          std::make_shared<const v1::MeshStorNodeDevice>(Drive(node, drive, 6 * v1::kMiB)));
    }
  }
  VolumeIndex index;
  std::map<std::string, v1::MeshStorVolume> volumes;
  int placed = 0, failed = 0;
  for (int step = 0; step < 600; ++step) {
    const std::string name = "pvc-" + std::to_string(rng() % 30);
    if (rng() % 5 == 0) {
      volumes.erase(name);
      index.Apply(name, nullptr);
    } else {
      auto v = RandomVolume(name, rng);
      volumes[name] = v;
      index.Apply(name, &v);
    }
    // A drive's agent reports new free space (or goes stale).
    auto& d = inv.devices[rng() % inv.devices.size()];
    auto drive = *d;
    drive.status.biggest_free_extent_bytes = static_cast<int64_t>(rng() % 24) * v1::kMiB;
    if (rng() % 10 == 0) drive.status.updated_at = std::nullopt;
    d = std::make_shared<const v1::MeshStorNodeDevice>(drive);

    Inventory scanned = inv;
    for (const auto& [n, v] : volumes) {
      scanned.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(v));
    }
    Inventory indexed = inv;
    indexed.index = &index;
    PlacementRequest req{"pvc-new-" + std::to_string(step),
                         static_cast<int64_t>(1 + rng() % 4) * v1::kMiB,
                         4096,
                         1 + static_cast<int32_t>(rng() % 2),
                         1 + static_cast<int32_t>(rng() % 3),
                         rng() % 2 == 0 ? "" : kNodes[rng() % kNodes.size()],
                         {}};
    if (rng() % 3 == 0) req.exclude_nodes.insert(kNodes[rng() % kNodes.size()]);
    INFO("step " << step);
    auto want = Place(req, scanned);
    auto got = Place(req, indexed);
    REQUIRE(want.ok() == got.ok());
    if (want.ok()) {
      CHECK(*want == *got);
      ++placed;
    } else {
      CHECK(want.status().message() == got.status().message());
      ++failed;
    }
  }
  // The comparison covered both outcomes.
  CHECK(placed > 30);
  CHECK(failed > 30);
}

}  // namespace
}  // namespace meshstor_operator
