// A benchmark, not a test: hidden ([.]), so ctest never runs it. It prints what placement costs
// and what the operator keeps per volume at the size of issue 16 (1000 nodes x 2 drives, 10000
// volumes), in memory, without an API server:
//
//   build/release/operator_tests "[.scale]" -s
//
// Numbers only; nothing about them is asserted (timings depend on the machine and its load).
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/api/core_codec.h"
#include "common/api/v1alpha1/codec.h"
#include "common/compress/dictionary_deflate.h"
#include "common/metrics/metrics.h"
#include "operator/controller.h"
#include "operator/memory_trim.h"
#include "operator/metrics.h"
#include "operator/reconcile.h"
#include "operator/testing/builders.h"
#include "operator/volume_index.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::api::ConditionStatus;

constexpr int kNodes = 1000;
constexpr int kVolumes = 10000;

std::string NodeName(int i) { return "bench-" + std::to_string(i + 1); }

// Bytes in use on the heap (glibc), to attribute memory to what is built between two calls.
size_t HeapInUse() { return mallinfo2().uordblks; }

// A volume as it looks once Synced: two members on distinct nodes, both reported, the status the
// operator and the consumer agent write.
v1::MeshStorVolume SyncedVolume(int i) {
  v1::MeshStorVolume v = Volume("pvc-" + std::to_string(100000000 + i) + "-0000-4000-8000-bench");
  v.metadata.uid = "0f0e0d0c-0b0a-4909-8807-" + std::to_string(100000000000 + i);
  v.metadata.resource_version = std::to_string(20000 + i);
  v.metadata.creation_timestamp = std::chrono::time_point_cast<std::chrono::seconds>(T0());
  v.metadata.finalizers.push_back(kFinalizer);
  v.spec.consumer_node = NodeName(i % kNodes);
  const std::string other =
      NodeName((i * 7 + 1) % kNodes == i % kNodes ? (i + 1) % kNodes : (i * 7 + 1) % kNodes);
  for (int m = 0; m < 2; ++m) {
    v1::Member mem;
    mem.index = m;
    mem.node = m == 0 ? v.spec.consumer_node : other;
    mem.drive = m == 0 ? "nvme0n1" : "nvme1n1";
    mem.size_bytes = 1028 * v1::kMiB;
    mem.namespace_id = 1 + i / kNodes;
    mem.role = m == 0 ? v1::MemberRole::kLocal : v1::MemberRole::kRemote;
    mem.slot = m;
    v.spec.members.push_back(mem);
    v1::PartitionStatus p;
    p.index = m;
    p.node_id = mem.node;
    p.drive = mem.drive;
    p.partition_uuid = "5b0c1d2e-3f40-4152-8a6b-" + std::to_string(100000000000 + i * 2 + m);
    p.nvmeof_namespace_id = mem.namespace_id;
    p.state = v1::PartitionState::kSynced;
    p.size_bytes = mem.size_bytes;
    p.updated_at = std::chrono::time_point_cast<std::chrono::seconds>(T0());
    v.status.partitions.push_back(p);
  }
  v.status.observed_generation = 1;
  v.status.phase = v1::VolumePhase::kSynced;
  v.status.node_name = v.spec.consumer_node;
  v.status.md_state = "clean";
  v.status.ready = "2/2";
  v.status.total_devices = 2;
  v.status.active_devices = 2;
  v.status.failed_devices = 0;
  v.status.down_devices = 0;
  v.status.degraded_devices = 0;
  v.status.sync_percentage = "100%";
  v.status.staged_path = "/var/lib/meshstor/staging/" + v.metadata.name;
  for (const char* type : {kConditionReady, kConditionDegraded, kConditionPlaceable}) {
    common::api::Condition c;
    c.type = type;
    c.status =
        std::string(type) == kConditionDegraded ? ConditionStatus::kFalse : ConditionStatus::kTrue;
    c.observed_generation = 1;
    c.last_transition_time = std::chrono::time_point_cast<std::chrono::seconds>(T0());
    c.reason = "AllMembersSynced";
    c.message = "every member is Synced and the array is clean";
    v.status.conditions.push_back(c);
  }
  return v;
}

// A volume as tools/bench/control_plane.py's volumes look once Synced (a real one's JSON, 2.3 KB,
// read from the test server in a 1000 x 10000 run): SyncedVolume plus the fields the simulated
// consumer agent writes and the operator's fourth condition, with the operator's messages.
v1::MeshStorVolume BenchVolume(int i) {
  v1::MeshStorVolume v = SyncedVolume(i);
  char name[32];
  std::snprintf(name, sizeof(name), "bench-vol-%05d", i);
  v.metadata.name = name;
  v.spec.formatted_at = v.metadata.creation_timestamp;
  for (auto& p : v.status.partitions) p.md_events = 1;
  v.status.staged_path = "/tmp/control-plane-bench/1000x10000/staging/" + v.metadata.name;
  v.status.filesystem_bytes = v.spec.capacity_bytes;
  v.status.in_sync =
      v1::InSyncRecord{{0, 1}, v.spec.consumer_node, v.metadata.creation_timestamp, 1};
  const std::string staged =
      "array on " + v.spec.consumer_node + " staged at " + v.status.staged_path;
  const std::pair<const char*, const char*> reasons[] = {
      {"Placed", "2 members placed"},
      {"Staged", staged.c_str()},
      {"AllMembersSynced", "no member is missing, faulty or out of sync"}};
  for (size_t c = 0; c < 3; ++c) {
    v.status.conditions[c].reason = reasons[c].first;
    v.status.conditions[c].message = reasons[c].second;
  }
  common::api::Condition resized = v.status.conditions[0];
  resized.type = "Resized";
  resized.reason = "CapacityReached";
  resized.message = "members hold 1073741824 bytes";
  v.status.conditions.push_back(resized);
  return v;
}

// A Node as tools/bench/control_plane.py registers them: Ready=True.
common::api::Node BenchNode(int n) {
  common::api::Node node = NodeObj(NodeName(n));
  common::api::Condition ready;
  ready.type = "Ready";
  ready.status = ConditionStatus::kTrue;
  node.conditions.push_back(ready);
  return node;
}

v1::MeshStorNodeDevice BenchDrive(int n, int d) {
  return Drive(NodeName(n), "nvme" + std::to_string(d) + "n1",
               (1000 + (n * 37 + d * 11) % 200) * 1024 * v1::kMiB);
}

Inventory BigCluster() {
  Inventory inv;
  inv.now = T0();
  for (int n = 0; n < kNodes; ++n) {
    inv.nodes.push_back(std::make_shared<const common::api::Node>(BenchNode(n)));
    for (int d = 0; d < 2; ++d) {
      inv.devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(BenchDrive(n, d)));
    }
  }
  return inv;
}

void PrintDurations(const std::string& what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  std::printf("%-50s n=%zu mean %.1f us, p50 %.1f, p99 %.1f, max %.1f\n", what.c_str(), us.size(),
              sum / us.size(), us[us.size() / 2], us[us.size() * 99 / 100], us.back());
}

// Wall and CPU time (CLOCK_THREAD_CPUTIME_ID, as the operator's placement_cpu histogram) of
// each measured call; the difference is time the thread waited for a core.
struct Timings {
  std::vector<double> wall_us, cpu_us;

  template <typename F>
  auto Measure(F&& f) {
    const auto w0 = std::chrono::steady_clock::now();
    const auto c0 = ThreadCpuTime();
    auto r = f();
    const auto c1 = ThreadCpuTime();
    const auto w1 = std::chrono::steady_clock::now();
    wall_us.push_back(std::chrono::duration<double, std::micro>(w1 - w0).count());
    cpu_us.push_back(std::chrono::duration<double, std::micro>(c1 - c0).count());
    return r;
  }
  void Print(const std::string& what) const {
    PrintDurations(what + ", CPU", cpu_us);
    PrintDurations(what + ", wall", wall_us);
  }
};

// A cluster as the operator's informers leave it on the heap: every drive, Node and volume
// decoded from JSON in the order their events arrive (interleaved), the index built as they
// come, so what one placement reads is spread over the heap rather than allocated in one run.
// `volumes` keeps the decoded volumes alive, as the informer's cache does.
Inventory DecodedCluster(VolumeIndex* index,
                         std::vector<std::shared_ptr<const v1::MeshStorVolume>>* volumes) {
  Inventory inv;
  inv.now = T0();
  inv.index = index;
  constexpr int kDrives = 2 * kNodes;
  for (int i = 0; i < kVolumes; ++i) {
    if (i % (kVolumes / kDrives) == 0) {
      const int k = i / (kVolumes / kDrives);
      auto d = v1::DecodeMeshStorNodeDevice(v1::EncodeMeshStorNodeDevice(BenchDrive(k / 2, k % 2)));
      REQUIRE(d.ok());
      inv.devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(std::move(d).value()));
    }
    if (i % (kVolumes / kNodes) == 1) {
      const std::string json = R"({"apiVersion":"v1","kind":"Node","metadata":{"name":")" +
                               NodeName(i / (kVolumes / kNodes)) +
                               R"("},"status":{"conditions":[{"type":"Ready","status":"True"}]}})";
      auto n = common::api::DecodeNode(json);
      REQUIRE(n.ok());
      inv.nodes.push_back(std::make_shared<const common::api::Node>(std::move(n).value()));
    }
    auto v = v1::DecodeMeshStorVolume(v1::EncodeMeshStorVolume(SyncedVolume(i)));
    REQUIRE(v.ok());
    volumes->push_back(std::make_shared<const v1::MeshStorVolume>(std::move(v).value()));
    index->Apply(volumes->back()->metadata.name, volumes->back().get());
  }
  // The informers list by key.
  std::sort(inv.devices.begin(), inv.devices.end(),
            [](const auto& a, const auto& b) { return a->metadata.name < b->metadata.name; });
  std::sort(inv.nodes.begin(), inv.nodes.end(),
            [](const auto& a, const auto& b) { return a->metadata.name < b->metadata.name; });
  inv.shared_devices = std::make_shared<const Inventory::DeviceList>(std::move(inv.devices));
  inv.shared_nodes = std::make_shared<const Inventory::NodeList>(std::move(inv.nodes));
  inv.devices.clear();
  inv.nodes.clear();
  return inv;
}

TEST_CASE("Scale: placement and memory at 1000 nodes x 10000 volumes", "[.scale]") {
  const size_t heap_cluster0 = HeapInUse();
  Inventory inv = BigCluster();
  const size_t heap_cluster1 = HeapInUse();
  std::printf("1000 Nodes and 2000 drives (test builders, not decoded): %.0f KiB\n",
              static_cast<double>(heap_cluster1 - heap_cluster0) / 1024);
  {
    const size_t h0 = HeapInUse();
    std::vector<std::shared_ptr<const v1::MeshStorVolume>> bench;
    bench.reserve(kVolumes);
    size_t bench_json = 0;
    for (int i = 0; i < kVolumes; ++i) {
      const std::string json = v1::EncodeMeshStorVolume(BenchVolume(i));
      bench_json += json.size();
      auto v = v1::DecodeMeshStorVolume(json);
      REQUIRE(v.ok());
      bench.push_back(std::make_shared<const v1::MeshStorVolume>(std::move(v).value()));
    }
    std::printf("volumes shaped as the benchmark's: JSON %.0f B/volume; decoded %.0f B/volume\n",
                static_cast<double>(bench_json) / kVolumes,
                static_cast<double>(HeapInUse() - h0) / kVolumes);
    // The operator's cache keeps each one compressed against its dictionary.
    common::compress::DictionaryDeflate deflate(VolumeCacheDictionary());
    size_t packed = 0;
    const size_t h1 = HeapInUse();
    std::vector<std::string> kept;
    kept.reserve(kVolumes);
    for (const auto& v : bench) {
      auto c = deflate.Compress(v1::EncodeMeshStorVolume(*v));
      REQUIRE(c.ok());
      packed += c->size();
      kept.push_back(std::move(c).value());
    }
    std::printf(
        "  compressed against the operator's dictionary: %.0f B/volume, %.0f B/volume on "
        "the heap\n",
        static_cast<double>(packed) / kVolumes, static_cast<double>(HeapInUse() - h1) / kVolumes);
  }
  VolumeIndex index;
  const size_t heap0 = HeapInUse();
  std::vector<std::shared_ptr<const v1::MeshStorVolume>> decoded;
  decoded.reserve(kVolumes);
  size_t json_bytes = 0;
  for (int i = 0; i < kVolumes; ++i) {
    const std::string json = v1::EncodeMeshStorVolume(SyncedVolume(i));
    json_bytes += json.size();
    auto v = v1::DecodeMeshStorVolume(json);
    REQUIRE(v.ok());
    decoded.push_back(std::make_shared<const v1::MeshStorVolume>(std::move(v).value()));
  }
  const size_t heap1 = HeapInUse();
  for (const auto& v : decoded) index.Apply(v->metadata.name, v.get());
  const size_t heap2 = HeapInUse();
  std::printf(
      "volume JSON %.0f B/volume; decoded objects %.0f B/volume (sizeof %zu); "
      "VolumeIndex %.0f B/volume\n",
      static_cast<double>(json_bytes) / kVolumes, static_cast<double>(heap1 - heap0) / kVolumes,
      sizeof(v1::MeshStorVolume), static_cast<double>(heap2 - heap1) / kVolumes);

  common::metrics::Registry registry;
  auto metrics = OperatorMetrics::Create(registry);
  REQUIRE(metrics.ok());
  const size_t heap3 = HeapInUse();
  for (const auto& v : decoded) (*metrics)->VolumeChanged(v->metadata.name, v.get());
  (*metrics)->Refresh(T0());
  const size_t heap4 = HeapInUse();
  std::printf("volume gauges (OperatorMetrics summaries) %.0f B/volume\n",
              static_cast<double>(heap4 - heap3) / kVolumes);

  inv.index = &index;
  Limits limits;
  Timings decide, place;
  for (int i = 0; i < 2000; ++i) {
    v1::MeshStorVolume v = Volume("pvc-new-" + std::to_string(i));
    v.metadata.finalizers.push_back(kFinalizer);
    v.spec.consumer_node = NodeName(i % kNodes);
    Decision d = decide.Measure([&] { return Decide(v, inv, limits); });
    REQUIRE(d.write == Decision::Write::kSpec);
    REQUIRE(d.object.spec.members.size() == 2);
    PlacementRequest req{v.metadata.name, 1028 * v1::kMiB, 4096, 1, 2, v.spec.consumer_node, {}};
    auto p = place.Measure([&] { return Place(req, inv); });
    REQUIRE(p.ok());
  }
  decide.Print("Decide() placing a new volume");
  place.Print("Place() alone");
  // The operator's inventories share the informers' lists (InformerSource::Snapshot); the same
  // placements with the lists shared.
  Inventory shared_inv = inv;
  shared_inv.shared_devices = std::make_shared<const Inventory::DeviceList>(inv.devices);
  shared_inv.shared_nodes = std::make_shared<const Inventory::NodeList>(inv.nodes);
  shared_inv.devices.clear();
  shared_inv.nodes.clear();
  Timings decide_shared, place_shared;
  for (int i = 0; i < 2000; ++i) {
    v1::MeshStorVolume v = Volume("pvc-shared-" + std::to_string(i));
    v.metadata.finalizers.push_back(kFinalizer);
    v.spec.consumer_node = NodeName(i % kNodes);
    Decision d = decide_shared.Measure([&] { return Decide(v, shared_inv, limits); });
    REQUIRE(d.write == Decision::Write::kSpec);
    PlacementRequest req{v.metadata.name, 1028 * v1::kMiB, 4096, 1, 2, v.spec.consumer_node, {}};
    auto p = place_shared.Measure([&] { return Place(req, shared_inv); });
    REQUIRE(p.ok());
  }
  decide_shared.Print("Decide() placing a new volume, shared lists");
  place_shared.Print("Place() alone, shared lists");

  // In the operator, other processes run between two placements and evict what placement reads
  // from the caches; the same with 32 MiB written between calls.
  std::vector<char> thrash(32 << 20);
  auto evict = [&](int i) {
    for (size_t k = 0; k < thrash.size(); k += 64) thrash[k] = static_cast<char>(k + i);
  };
  Timings cold;
  for (int i = 0; i < 300; ++i) {
    evict(i);
    v1::MeshStorVolume v = Volume("pvc-cold-" + std::to_string(i));
    v.metadata.finalizers.push_back(kFinalizer);
    v.spec.consumer_node = NodeName((i * 13) % kNodes);
    Decision d = cold.Measure([&] { return Decide(v, inv, limits); });
    REQUIRE(d.write == Decision::Write::kSpec);
  }
  cold.Print("Decide() with cold caches");

  // The same against drives, Nodes and volumes decoded in their events' order, through the
  // shared lists as InformerSource hands them out: the closest to the operator in-process.
  {
    VolumeIndex decoded_index;
    std::vector<std::shared_ptr<const v1::MeshStorVolume>> decoded_volumes;
    decoded_volumes.reserve(kVolumes);
    const Inventory heap_inv = DecodedCluster(&decoded_index, &decoded_volumes);
    Timings warm, scattered;
    for (int i = 0; i < 1000; ++i) {
      v1::MeshStorVolume v = Volume("pvc-decoded-" + std::to_string(i));
      v.metadata.finalizers.push_back(kFinalizer);
      v.spec.consumer_node = NodeName((i * 13) % kNodes);
      Decision d = warm.Measure([&] { return Decide(v, heap_inv, limits); });
      REQUIRE(d.write == Decision::Write::kSpec);
      evict(i);
      d = scattered.Measure([&] { return Decide(v, heap_inv, limits); });
      REQUIRE(d.write == Decision::Write::kSpec);
    }
    warm.Print("Decide(), decoded cluster, warm");
    scattered.Print("Decide(), decoded cluster, cold caches");

    // During a burst the drives change all the time (heartbeats, free space), so a pass often
    // gets a new drive list: each placement here follows a change of one drive (a new object in
    // a new list, as the informer's handler and InformerSource::Snapshot make it).
    Inventory changing = heap_inv;
    Timings changed;
    for (int i = 0; i < 1000; ++i) {
      Inventory::DeviceList devices = *changing.shared_devices;
      auto& d = devices[(i * 7) % devices.size()];
      v1::MeshStorNodeDevice next = *d;
      next.status.updated_at = std::chrono::time_point_cast<std::chrono::seconds>(T0());
      d = std::make_shared<const v1::MeshStorNodeDevice>(std::move(next));
      changing.shared_devices = std::make_shared<const Inventory::DeviceList>(std::move(devices));
      v1::MeshStorVolume v = Volume("pvc-changed-" + std::to_string(i));
      v.metadata.finalizers.push_back(kFinalizer);
      v.spec.consumer_node = NodeName((i * 13) % kNodes);
      evict(i);
      Decision dec = changed.Measure([&] { return Decide(v, changing, limits); });
      REQUIRE(dec.write == Decision::Write::kSpec);
    }
    changed.Print("Decide(), decoded cluster, cold, after a drive changed");
  }

  // What a pass's snapshot of the drives and Nodes costs: a copy of every pointer (before), or
  // the informers' shared lists (InformerSource now).
  std::vector<double> copy_us, share_us;
  auto shared_devices = std::make_shared<const Inventory::DeviceList>(inv.devices);
  auto shared_nodes = std::make_shared<const Inventory::NodeList>(inv.nodes);
  for (int i = 0; i < 2000; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    {
      Inventory copy;
      copy.devices = inv.devices;
      copy.nodes = inv.nodes;
    }
    auto t1 = std::chrono::steady_clock::now();
    copy_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    t0 = std::chrono::steady_clock::now();
    {
      Inventory shared;
      shared.shared_devices = shared_devices;
      shared.shared_nodes = shared_nodes;
    }
    t1 = std::chrono::steady_clock::now();
    share_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  PrintDurations("snapshot: copy every drive and Node pointer", copy_us);
  PrintDurations("snapshot: share the lists", share_us);

  // An informer through a burst: every volume replaced by a newer decoded version several
  // times, the watch events' JSON freed as it goes. What stays resident, and what malloc_trim
  // gives back.
  const long rss_before_churn = ResidentBytes();
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kVolumes; ++i) {
      v1::MeshStorVolume next = *decoded[i];
      next.metadata.resource_version = std::to_string(100000 * (round + 1) + i);
      const std::string json = v1::EncodeMeshStorVolume(next);
      auto v = v1::DecodeMeshStorVolume(json);
      REQUIRE(v.ok());
      decoded[i] = std::make_shared<const v1::MeshStorVolume>(std::move(v).value());
    }
  }
  // The operator's metrics follow each new version (a summary of it; they keep no volume).
  for (const auto& v : decoded) (*metrics)->VolumeChanged(v->metadata.name, v.get());
  (*metrics)->Refresh(T0());
  const struct mallinfo2 mi = mallinfo2();
  const TrimResult trimmed = TrimHeap();
  std::printf(
      "after 5 new versions of every volume: heap in use %.1f MiB of %.1f MiB in the arena; "
      "resident %.1f MiB (%.1f before the churn), %.1f MiB after malloc_trim\n",
      mi.uordblks / 1048576.0, mi.arena / 1048576.0, trimmed.resident_before / 1048576.0,
      rss_before_churn / 1048576.0, trimmed.resident_after / 1048576.0);
}

}  // namespace
}  // namespace meshstor_operator
