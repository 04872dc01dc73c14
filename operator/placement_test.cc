#include "operator/placement.h"

#include <catch2/catch.hpp>

#include "operator/testing/builders.h"

namespace meshstor_operator {
namespace {

using namespace testing;  // NOLINT(build/namespaces): test builders
using common::StatusCode;

PlacementRequest Req(int nodes, const std::string& consumer = "", int drives = 1,
                     int64_t size = 1025 * v1::kMiB) {
  return PlacementRequest{"pvc-1", size, 4096, drives, nodes, consumer, {}};
}

std::vector<std::string> NodesOf(const std::vector<NodePlacement>& p) {
  std::vector<std::string> out;
  for (const auto& n : p) out.push_back(n.node);
  return out;
}

void SetFree(Inventory& inv, const std::string& node, const std::string& dev, int64_t free) {
  for (auto& d : inv.devices) {
    if (d->spec.node_name == node && d->spec.device == dev) {
      auto copy = *d;
      copy.status.biggest_free_extent_bytes = free;
      d = std::make_shared<const v1::MeshStorNodeDevice>(copy);
    }
  }
}

TEST_CASE("Placement puts the consumer first and picks distinct nodes", "[unit][placement]") {
  Inventory inv = Cluster(4);
  auto p = Place(Req(3, "node-c"), inv);
  REQUIRE(p.ok());
  REQUIRE(p->size() == 3);
  CHECK((*p)[0].node == "node-c");
  std::set<std::string> distinct;
  for (const auto& n : *p) distinct.insert(n.node);
  CHECK(distinct.size() == 3);
}

TEST_CASE("Placement is deterministic and independent of input order", "[unit][placement]") {
  Inventory inv = Cluster(6);
  auto first = Place(Req(3, "node-a"), inv);
  REQUIRE(first.ok());
  std::reverse(inv.devices.begin(), inv.devices.end());
  std::reverse(inv.nodes.begin(), inv.nodes.end());
  auto second = Place(Req(3, "node-a"), inv);
  REQUIRE(second.ok());
  CHECK(*first == *second);
}

TEST_CASE("Placement prefers most free space, then fewest members", "[unit][placement]") {
  Inventory inv = Cluster(4);
  SetFree(inv, "node-d", "nvme0n1", 200 * 1024 * v1::kMiB);
  auto p = Place(Req(2, "node-a"), inv);
  REQUIRE(p.ok());
  CHECK(NodesOf(*p) == std::vector<std::string>{"node-a", "node-d"});

  SECTION("equal free space: fewer members wins") {
    Inventory eq = Cluster(3);
    auto vol = Volume("other");
    vol.spec.members.push_back({0,
                                "node-b",
                                "nvme0n1",
                                1025 * v1::kMiB,
                                1,
                                v1::MemberRole::kRemote,
                                v1::MemberState::kPresent,
                                0,
                                {}});
    // Reported by its agent, so it no longer reserves the free extent.
    vol.status.partitions.push_back({0, "node-b", "nvme0n1", "", 1, v1::PartitionState::kSynced});
    eq.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(vol));
    auto q = Place(Req(2, "node-a"), eq);
    REQUIRE(q.ok());
    CHECK(NodesOf(*q) == std::vector<std::string>{"node-a", "node-c"});
  }
}

TEST_CASE("Placement ties break on a stable hash of (volume, node)", "[unit][placement]") {
  Inventory inv = Cluster(8);
  std::set<std::string> second_choices;
  for (int i = 0; i < 20; ++i) {
    PlacementRequest r = Req(2, "node-a");
    r.volume = "pvc-" + std::to_string(i);
    auto p = Place(r, inv);
    REQUIRE(p.ok());
    // The chosen peer is the one with the smallest hash among the equals.
    std::string best;
    for (char c = 'b'; c <= 'h'; ++c) {
      std::string n = std::string("node-") + c;
      if (best.empty() || StableHash(r.volume, n) < StableHash(r.volume, best)) best = n;
    }
    CHECK((*p)[1].node == best);
    second_choices.insert((*p)[1].node);
  }
  CHECK(second_choices.size() > 1);  // volumes spread over nodes
  CHECK(StableHash("v", "n") == StableHash("v", "n"));
  CHECK(StableHash("v", "n1") != StableHash("v", "n2"));
}

TEST_CASE("Placement filters nodes", "[unit][placement]") {
  Inventory inv = Cluster(3);
  SECTION("wrong sector size") {
    auto d = Drive("node-b", "nvme0n1", 100 * 1024 * v1::kMiB, 512);
    inv.devices[1] = std::make_shared<const v1::MeshStorNodeDevice>(d);
    auto p = Place(Req(3, "node-a"), inv);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(p.status().message(), Catch::Contains("3 needed, 2 qualified"));
    CHECK_THAT(p.status().message(), Catch::Contains("node-b"));
  }
  SECTION("free extent too small, counting unreported members on the drive") {
    SetFree(inv, "node-b", "nvme0n1", 1500 * v1::kMiB);
    REQUIRE(Place(Req(3, "node-a"), inv).ok());
    auto other = Volume("other");
    other.spec.members.push_back({0,
                                  "node-b",
                                  "nvme0n1",
                                  1025 * v1::kMiB,
                                  1,
                                  v1::MemberRole::kRemote,
                                  v1::MemberState::kPresent,
                                  0,
                                  {}});
    inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(other));
    auto p = Place(Req(3, "node-a"), inv);
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.status().message(), Catch::Contains("2 qualified"));
  }
  SECTION("unschedulable, not Ready or unknown node") {
    inv.nodes[1] = std::make_shared<const common::api::Node>(NodeObj("node-b", true));
    auto notready = NodeObj("node-c");
    common::api::Condition c;
    c.type = "Ready";
    c.status = common::api::ConditionStatus::kFalse;
    notready.conditions.push_back(c);
    inv.nodes[2] = std::make_shared<const common::api::Node>(notready);
    auto p = Place(Req(2, "node-a"), inv);
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.status().message(), Catch::Contains("1 qualified"));
    CHECK_THAT(p.status().message(), Catch::Contains("unschedulable"));
    CHECK_THAT(p.status().message(), Catch::Contains("not Ready"));
    inv.nodes.resize(1);
    auto q = Place(Req(2, "node-a"), inv);
    CHECK_THAT(q.status().message(), Catch::Contains("no Node object"));
  }
  SECTION("stale agent") {
    inv.now = T0() + std::chrono::seconds(121);
    auto fresh =
        Drive("node-a", "nvme0n1", 100 * 1024 * v1::kMiB, 4096, T0() + std::chrono::seconds(120));
    inv.devices[0] = std::make_shared<const v1::MeshStorNodeDevice>(fresh);
    auto p = Place(Req(2, "node-a"), inv);
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.status().message(), Catch::Contains("1 qualified"));
    inv.now = T0() + std::chrono::seconds(120);  // exactly at the bound: still fresh
    CHECK(Place(Req(3, "node-a"), inv).ok());
  }
  SECTION("excluded nodes") {
    PlacementRequest r = Req(2);
    r.exclude_nodes = {"node-a", "node-b"};
    auto p = Place(r, inv);
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.status().message(), Catch::Contains("1 qualified"));
  }
}

TEST_CASE("Placement fails when the consumer cannot hold a member", "[unit][placement]") {
  Inventory inv = Cluster(3);
  auto p = Place(Req(2, "node-z"), inv);
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(p.status().message(), Catch::Contains("consumer node node-z"));
}

TEST_CASE("Placement needs stripeWidth distinct drives per node", "[unit][placement]") {
  Inventory inv = Cluster(3, 2);
  SetFree(inv, "node-c", "nvme1n1", 10 * v1::kMiB);
  SetFree(inv, "node-a", "nvme1n1", 150 * 1024 * v1::kMiB);
  auto p = Place(Req(3, "node-a", 2), inv);
  REQUIRE_FALSE(p.ok());
  CHECK_THAT(p.status().message(), Catch::Contains("node-c: 1 of 2 drives"));
  auto q = Place(Req(2, "node-a", 2), inv);
  REQUIRE(q.ok());
  for (const auto& n : *q) {
    REQUIRE(n.drives.size() == 2);
    CHECK(n.drives[0] != n.drives[1]);
  }
  CHECK((*q)[0].drives[0] == "nvme1n1");  // the drive with the most free space first
}

TEST_CASE("Placement prefers RDMA peers of an RDMA consumer", "[unit][placement]") {
  Inventory inv = Cluster(3);
  for (const char* node : {"node-a", "node-c"}) {
    for (auto& d : inv.devices) {
      if (d->spec.node_name != node) continue;
      auto copy = *d;
      copy.status.transport_addresses.push_back({v1::Transport::kRdma, "10.1.0.1", 4421});
      d = std::make_shared<const v1::MeshStorNodeDevice>(copy);
    }
  }
  SetFree(inv, "node-b", "nvme0n1", 500 * 1024 * v1::kMiB);  // more free, but TCP only
  auto p = Place(Req(2, "node-a"), inv);
  REQUIRE(p.ok());
  CHECK((*p)[1].node == "node-c");
}

TEST_CASE("Placement rejects malformed requests", "[unit][placement]") {
  Inventory inv = Cluster(2);
  CHECK(Place(Req(0), inv).status().code() == StatusCode::kInvalidArgument);
  CHECK(Place(Req(1, "", 0), inv).status().code() == StatusCode::kInvalidArgument);
  CHECK(Place(Req(1, "", 1, 0), inv).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Namespace IDs are unique per exporting node within 1..8192", "[unit][placement]") {
  CHECK(*AllocateNamespaceId({}) == 1);
  CHECK(*AllocateNamespaceId({1, 2, 4}) == 3);
  std::set<int32_t> all;
  for (int32_t i = 1; i <= 8192; ++i) all.insert(i);
  CHECK(AllocateNamespaceId(all).status().code() == StatusCode::kResourceExhausted);
  all.erase(8192);
  CHECK(*AllocateNamespaceId(all) == 8192);

  Inventory inv = Cluster(2);
  auto a = Volume("a");
  a.spec.members.push_back({0,
                            "node-a",
                            "nvme0n1",
                            v1::kMiB,
                            1,
                            v1::MemberRole::kLocal,
                            v1::MemberState::kPresent,
                            0,
                            {}});
  a.spec.members.push_back({1,
                            "node-b",
                            "nvme0n1",
                            v1::kMiB,
                            7,
                            v1::MemberRole::kRemote,
                            v1::MemberState::kRetired,
                            1,
                            {}});
  a.status.partitions.push_back({5, "node-a", "nvme0n1", "", 3, v1::PartitionState::kDeleting});
  inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(a));
  CHECK(UsedNamespaceIds(inv, "node-a") == std::set<int32_t>{1, 3});
  CHECK(UsedNamespaceIds(inv, "node-b") == std::set<int32_t>{7});  // retired still exported
  CHECK(UsedNamespaceIds(inv, "node-c").empty());
  CHECK(MemberCounts(inv) == std::map<std::string, int>{{"node-a", 1}});
}

}  // namespace
}  // namespace meshstor_operator
