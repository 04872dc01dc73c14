#include "operator/cluster_view.h"

#include <catch2/catch.hpp>

#include "operator/testing/builders.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders

constexpr int64_t kGiB = 1024 * v1::kMiB;

// A new metadata.resourceVersion, as the API server gives each version of an object.
std::string NextVersion() {
  static int version = 1000;
  return std::to_string(++version);
}

std::shared_ptr<const v1::MeshStorNodeDevice> Versioned(v1::MeshStorNodeDevice drive) {
  drive.metadata.resource_version = NextVersion();
  return std::make_shared<const v1::MeshStorNodeDevice>(std::move(drive));
}

// `inv` with its drives and Nodes moved into shared lists, as InformerSource::Snapshot hands
// them to a pass; each drive gets a resourceVersion, as the informer's objects have.
Inventory Shared(Inventory inv) {
  for (auto& d : inv.devices) {
    if (d->metadata.resource_version.empty()) d = Versioned(*d);
  }
  inv.shared_devices = std::make_shared<const Inventory::DeviceList>(std::move(inv.devices));
  inv.shared_nodes = std::make_shared<const Inventory::NodeList>(std::move(inv.nodes));
  inv.devices.clear();
  inv.nodes.clear();
  return inv;
}

// The next snapshot after one drive changed: a new device list holding the same objects but for
// the drive of `node`, replaced by `drive` (as the informer replaces an object it decoded anew),
// with a new resourceVersion unless `drive` has one.
Inventory WithDrive(const Inventory& inv, const v1::MeshStorNodeDevice& drive) {
  Inventory next = inv;
  Inventory::DeviceList devices = *inv.shared_devices;
  for (auto& d : devices) {
    if (d->spec.node_name == drive.spec.node_name && d->spec.device == drive.spec.device) {
      d = drive.metadata.resource_version.empty()
              ? Versioned(drive)
              : std::make_shared<const v1::MeshStorNodeDevice>(drive);
    }
  }
  next.shared_devices = std::make_shared<const Inventory::DeviceList>(std::move(devices));
  return next;
}

Inventory WithNode(const Inventory& inv, const common::api::Node& node) {
  Inventory next = inv;
  Inventory::NodeList nodes = *inv.shared_nodes;
  for (auto& n : nodes) {
    if (n->metadata.name == node.metadata.name) n = std::make_shared<const common::api::Node>(node);
  }
  next.shared_nodes = std::make_shared<const Inventory::NodeList>(std::move(nodes));
  return next;
}

// Shared lists of three nodes whose node-c drive has the most room (200 GiB against 100).
Inventory RoomiestOnC() {
  Inventory inv = Cluster(3);
  inv.devices[2] =
      std::make_shared<const v1::MeshStorNodeDevice>(Drive("node-c", "nvme0n1", 200 * kGiB));
  return Shared(std::move(inv));
}

std::vector<std::string> Placed(const Inventory& inv, int nodes = 2) {
  auto p = Place(PlacementRequest{"pvc-1", 1025 * v1::kMiB, 4096, 1, nodes, "node-a", {}}, inv);
  if (!p.ok()) return {p.status().message()};
  std::vector<std::string> out;
  for (const auto& n : *p) out.push_back(n.node + "/" + n.drives.front());
  return out;
}

TEST_CASE("A cluster view holds the facts of the drives and Nodes", "[unit][placement]") {
  Inventory inv = Cluster(3, 2);
  inv.devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(
      Drive("node-x", "nvme0n1", 5 * kGiB, 512)));  // no Node object
  inv.nodes.push_back(std::make_shared<const common::api::Node>(NodeObj("node-y", true)));
  auto view = ClusterView::Of(inv);
  REQUIRE(view->nodes().size() == 5);
  REQUIRE(view->nodes_with_drives() == 4);
  CHECK(view->names_with_drives() ==
        std::vector<std::string_view>{"node-a", "node-b", "node-c", "node-x"});
  const ClusterView::Node& b = view->nodes()[view->Find("node-b")];
  CHECK(view->name(b) == "node-b");
  CHECK(b.drive_count == 2);
  CHECK(b.state == ClusterView::NodeState::kSchedulable);
  CHECK(view->device(view->drives()[b.first_drive + 1]) == "nvme1n1");
  CHECK(view->drives()[b.first_drive].free == 100 * kGiB);
  const ClusterView::Node& x = view->nodes()[view->Find("node-x")];
  CHECK(x.state == ClusterView::NodeState::kNoObject);
  CHECK(view->drives()[x.first_drive].sector_size == 512);
  const ClusterView::Node& y = view->nodes()[view->Find("node-y")];
  CHECK(y.drive_count == 0);
  CHECK(y.state == ClusterView::NodeState::kUnschedulable);
  CHECK(view->Find("node-z") == ClusterView::kNone);
}

TEST_CASE("A cluster view gives fencing a node's object and its agent's last heartbeat",
          "[unit][placement]") {
  Inventory inv = Cluster(2, 2);
  inv.devices[1] = std::make_shared<const v1::MeshStorNodeDevice>(
      Drive("node-a", "nvme1n1", 5 * kGiB, 4096, T0() + std::chrono::seconds(30)));
  inv.devices[2] = std::make_shared<const v1::MeshStorNodeDevice>(
      Drive("node-b", "nvme0n1", 5 * kGiB, 4096, T0() - std::chrono::seconds(30)));
  auto silent = Drive("node-b", "nvme1n1", 5 * kGiB);
  silent.status.updated_at.reset();
  inv.devices[3] = std::make_shared<const v1::MeshStorNodeDevice>(silent);
  // Two objects of one name (an informer never lists that): fencing reads the first, placement
  // the last one's state, as each did before the view.
  inv.nodes.push_back(std::make_shared<const common::api::Node>(NodeObj("node-a", true)));
  inv.nodes.push_back(std::make_shared<const common::api::Node>(NodeObj("node-c")));
  auto view = ClusterView::Of(inv);
  const uint32_t a = view->Find("node-a");
  CHECK(view->nodes()[a].object == inv.nodes[0].get());
  CHECK(view->nodes()[a].state == ClusterView::NodeState::kUnschedulable);
  CHECK(view->LastReport(a) ==
        std::chrono::time_point_cast<std::chrono::seconds>(T0()) + std::chrono::seconds(30));
  CHECK(view->LastReport(view->Find("node-b")) ==
        std::chrono::time_point_cast<std::chrono::seconds>(T0()) - std::chrono::seconds(30));
  CHECK(view->LastReport(view->Find("node-c")) == std::nullopt);
}

TEST_CASE("A cluster view is kept while a pass hands over the same lists", "[unit][placement]") {
  const Inventory inv = Shared(Cluster(3));
  auto first = ClusterView::Of(inv);
  CHECK(ClusterView::Of(inv) == first);
  Inventory copy = inv;  // another pass of the same snapshot
  copy.now += std::chrono::seconds(5);
  CHECK(ClusterView::Of(copy) == first);
  // Without shared lists, a view of its own each time.
  const Inventory plain = Cluster(3);
  CHECK(ClusterView::Of(plain) != ClusterView::Of(plain));
}

TEST_CASE("A cluster view held by a pass does not change under it", "[unit][placement]") {
  const Inventory inv = Shared(Cluster(3));
  auto held = ClusterView::Of(inv);
  REQUIRE(held->name(held->nodes()[held->drives()[0].node]) == "node-a");
  const Inventory next = WithDrive(inv, Drive("node-a", "nvme0n1", 7 * kGiB));
  const ClusterView* next_view = ClusterView::Of(next).get();
  CHECK(next_view != held.get());  // a copy: `held` is still in use
  CHECK(held->drives()[0].free == 100 * kGiB);
  CHECK(ClusterView::Of(next)->drives()[0].free == 7 * kGiB);
  held.reset();
  // Nobody holds the view of `next` any more: the next snapshot's change is written into it.
  const Inventory third = WithDrive(next, Drive("node-a", "nvme0n1", 9 * kGiB));
  auto third_view = ClusterView::Of(third);
  CHECK(third_view.get() == next_view);
  CHECK(third_view->drives()[0].free == 9 * kGiB);
}

TEST_CASE("Placement sees a drive's free space change between two snapshots", "[unit][placement]") {
  Inventory inv = RoomiestOnC();
  CHECK(Placed(inv) == std::vector<std::string>{"node-a/nvme0n1", "node-c/nvme0n1"});
  // node-c's drive filled up: node-b is the one with room.
  const Inventory full = WithDrive(inv, Drive("node-c", "nvme0n1", 1 * kGiB));
  CHECK(Placed(full) == std::vector<std::string>{"node-a/nvme0n1", "node-b/nvme0n1"});
  CHECK_THAT(Placed(full, 3).front(), Catch::Contains("node-c: 0 of 1 drives fresh"));
  // And freed again, in the snapshot after.
  const Inventory freed = WithDrive(full, Drive("node-c", "nvme0n1", 300 * kGiB));
  CHECK(Placed(freed) == std::vector<std::string>{"node-a/nvme0n1", "node-c/nvme0n1"});
  // A pass still holding the first snapshot places as before.
  CHECK(Placed(full) == std::vector<std::string>{"node-a/nvme0n1", "node-b/nvme0n1"});
}

TEST_CASE("Placement sees a drive's agent going silent between two snapshots",
          "[unit][placement]") {
  Inventory inv = RoomiestOnC();
  CHECK(Placed(inv) == std::vector<std::string>{"node-a/nvme0n1", "node-c/nvme0n1"});
  const Inventory silent =
      WithDrive(inv, Drive("node-c", "nvme0n1", 200 * kGiB, 4096, T0() - std::chrono::hours(1)));
  CHECK(Placed(silent) == std::vector<std::string>{"node-a/nvme0n1", "node-b/nvme0n1"});
  // The same snapshot later: staleness is judged against the pass's time, not cached.
  Inventory later = inv;
  later.now += std::chrono::hours(1);
  CHECK(Placed(later, 1) == std::vector<std::string>{"consumer node node-a cannot hold a member: "
                                                     "0 of 1 drives fresh, 4096-byte sectors and "
                                                     "1074790400 bytes free"});
}

TEST_CASE("Placement sees a Node become unschedulable, not Ready and back between two snapshots",
          "[unit][placement]") {
  Inventory inv = RoomiestOnC();
  CHECK(Placed(inv) == std::vector<std::string>{"node-a/nvme0n1", "node-c/nvme0n1"});
  const Inventory cordoned = WithNode(inv, NodeObj("node-c", true));
  CHECK(Placed(cordoned) == std::vector<std::string>{"node-a/nvme0n1", "node-b/nvme0n1"});
  CHECK_THAT(Placed(cordoned, 3).front(), Catch::Contains("node-c: unschedulable"));
  common::api::Node not_ready = NodeObj("node-c");
  not_ready.conditions.push_back({"Ready", common::api::ConditionStatus::kFalse});
  const Inventory down = WithNode(cordoned, not_ready);
  CHECK_THAT(Placed(down, 3).front(), Catch::Contains("node-c: not Ready"));
  const Inventory back = WithNode(down, NodeObj("node-c"));
  CHECK(Placed(back) == std::vector<std::string>{"node-a/nvme0n1", "node-c/nvme0n1"});
}

TEST_CASE(
    "A cluster view reads a drive again only when its version changed, and does not keep "
    "replaced drives alive",
    "[unit][placement]") {
  Inventory inv = RoomiestOnC();
  std::weak_ptr<const v1::MeshStorNodeDevice> old_c = inv.shared_devices->at(2);
  REQUIRE(ClusterView::Of(inv)->drives()[2].free == 200 * kGiB);
  // The informer decoded node-c's drive again (a relist): same version, a new object. The view
  // takes it as the same drive. (A different content under the same version never happens; it is
  // used here to show that the drive was not read again.)
  auto same = Drive("node-c", "nvme0n1", 1 * kGiB);
  same.metadata.resource_version = inv.shared_devices->at(2)->metadata.resource_version;
  Inventory relisted = WithDrive(inv, same);
  inv = Inventory();  // the first snapshot is gone: only the view could keep its drive alive
  CHECK(ClusterView::Of(relisted)->drives()[2].free == 200 * kGiB);
  CHECK(old_c.expired());
  // A new version is read.
  const Inventory next = WithDrive(relisted, Drive("node-c", "nvme0n1", 3 * kGiB));
  CHECK(ClusterView::Of(next)->drives()[2].free == 3 * kGiB);
}

TEST_CASE("A cluster view is not taken for another snapshot at a reused address",
          "[unit][placement]") {
  // Each snapshot's lists are freed before the next is allocated, so the allocator may hand out
  // the same addresses again; the placements follow each snapshot's contents.
  for (int i = 0; i < 50; ++i) {
    Inventory inv = Cluster(3);
    const std::string big = i % 2 == 0 ? "node-b" : "node-c";
    for (auto& d : inv.devices) {
      if (d->spec.node_name == big) {
        d = std::make_shared<const v1::MeshStorNodeDevice>(Drive(big, "nvme0n1", 200 * kGiB));
      }
    }
    inv = Shared(std::move(inv));
    INFO("snapshot " << i);
    CHECK(Placed(inv) == std::vector<std::string>{"node-a/nvme0n1", big + "/nvme0n1"});
  }
}

}  // namespace
}  // namespace meshstor_operator
