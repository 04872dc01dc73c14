// VolumeIndex: the volumes filed by node, fed the informer's changes directly (the agent tests
// run it on a real informer against the test server).
#include "agent/volume_index.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/testing/world.h"
#include "common/api/v1alpha1/codec.h"
#include "common/kube/client.h"
#include "common/kube/resource.h"
#include "common/kube/transport.h"
#include "common/time/clock.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using testing::MakeMember;
using Change = VolumeIndex::Informer::Change;
using Ptr = VolumeIndex::Ptr;

// The informer of these tests never starts: it sends nothing.
class NoTransport final : public common::kube::Transport {
 public:
  common::Result<common::kube::HttpResponse> Do(const common::kube::HttpRequest&) override {
    return common::UnimplementedError("no requests here");
  }
  common::Result<int> Stream(const common::kube::HttpRequest&,
                             const std::function<bool(std::string_view)>&, std::string*) override {
    return common::UnimplementedError("no requests here");
  }
};

// An index on an informer that never starts: the tests feed it changes themselves.
struct IndexFixture {
  NoTransport transport;
  common::kube::Client client{transport};
  common::kube::Informer<v1::MeshStorVolume> informer{
      client, common::kube::MeshStorVolumes(), v1::DecodeMeshStorVolume,
      common::kube::InformerOptions{}, common::time::RealClock::Get()};
  VolumeIndex index{informer};
  std::map<std::string, int> told;  // node -> changes announced to it

  IndexFixture() {
    for (const char* n : {"a", "b", "c", "d"}) index.Subscribe(n, [this, n] { ++told[n]; });
  }
  // The names of the volumes filed under `node`.
  std::vector<std::string> Names(const std::string& node) {
    std::vector<std::string> out;
    for (const auto& v : index.VolumesOf(node)) out.push_back(v->metadata.name);
    return out;
  }
};

// Volume `name`: consumer `consumer`, a local member there and a remote one on `remote`.
Ptr Volume(const std::string& name, const std::string& consumer, const std::string& remote) {
  v1::MeshStorVolume v = testing::Raid1Volume();
  v.metadata.name = name;
  v.spec.consumer_node = consumer;
  v.spec.members = {MakeMember(0, consumer, v1::MemberRole::kLocal, 1),
                    MakeMember(1, remote, v1::MemberRole::kRemote, 1)};
  return std::make_shared<const v1::MeshStorVolume>(std::move(v));
}

Change Upsert(const Ptr& old_obj, const Ptr& new_obj) {
  return Change{{"", new_obj->metadata.name}, old_obj, new_obj, common::OkStatus()};
}

TEST_CASE("Involves and InvolvedNodes read the same fields", "[unit][agent]") {
  v1::MeshStorVolume v = testing::Raid1Volume();  // consumer a, members a and b
  v.spec.members.push_back(MakeMember(2, "e", v1::MemberRole::kRemote, 2));
  v.spec.members.back().state = v1::MemberState::kRetired;
  v.spec.fenced_nodes = {"f"};
  v.status.node_name = "g";
  v1::PartitionStatus p;
  p.node_id = "h";
  v.status.partitions.push_back(p);
  CHECK(InvolvedNodes(v) == std::vector<std::string>{"a", "b", "e", "f", "g", "h"});
  for (const char* n : {"a", "b", "e", "f", "g", "h"}) CHECK(Involves(v, n));
  CHECK_FALSE(Involves(v, "c"));
}

TEST_CASE("The volume index files each volume under the nodes it involves", "[unit][agent]") {
  IndexFixture f;
  auto ab = Volume("pvc-ab", "a", "b");
  auto bc = Volume("pvc-bc", "b", "c");
  f.index.Apply(Upsert(nullptr, ab));
  f.index.Apply(Upsert(nullptr, bc));
  CHECK(f.Names("a") == std::vector<std::string>{"pvc-ab"});
  CHECK(f.Names("b") == std::vector<std::string>{"pvc-ab", "pvc-bc"});  // ordered by key
  CHECK(f.Names("c") == std::vector<std::string>{"pvc-bc"});
  CHECK(f.Names("d").empty());
  CHECK(f.told == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 1}});
  // The object handed out is the cached one (no copy).
  CHECK(f.index.VolumesOf("a").at(0) == ab);

  SECTION("a status change replaces the object under the same nodes") {
    auto copy = std::make_shared<v1::MeshStorVolume>(*ab);
    copy->status.phase = v1::VolumePhase::kSynced;
    Ptr synced = copy;
    f.index.Apply(Upsert(ab, synced));
    CHECK(f.index.VolumesOf("a").at(0) == synced);
    CHECK(f.index.VolumesOf("b").at(0) == synced);
    CHECK(f.told == std::map<std::string, int>{{"a", 2}, {"b", 3}, {"c", 1}});
  }

  SECTION("a member moved in and away again") {
    auto moved_in = Volume("pvc-bc", "b", "d");
    f.index.Apply(Upsert(bc, moved_in));
    CHECK(f.Names("c").empty());
    CHECK(f.Names("d") == std::vector<std::string>{"pvc-bc"});
    // c hears of it once (its pass collects what is left there); d hears it came.
    CHECK(f.told["c"] == 2);
    CHECK(f.told["d"] == 1);
    CHECK(f.told["a"] == 1);  // not a's

    f.index.Apply(Upsert(moved_in, bc));
    CHECK(f.Names("c") == std::vector<std::string>{"pvc-bc"});
    CHECK(f.Names("d").empty());
    CHECK(f.told["d"] == 2);
  }

  SECTION("a retired member, a fenced node and a reported partition keep the volume filed") {
    auto copy = std::make_shared<v1::MeshStorVolume>(*bc);
    copy->spec.members[1].state = v1::MemberState::kRetired;
    copy->spec.members.push_back(MakeMember(2, "d", v1::MemberRole::kRemote, 2));
    copy->spec.fenced_nodes = {"a"};
    Ptr retired = copy;
    f.index.Apply(Upsert(bc, retired));
    CHECK(f.Names("a") == std::vector<std::string>{"pvc-ab", "pvc-bc"});
    CHECK(f.Names("c") == std::vector<std::string>{"pvc-bc"});
    CHECK(f.Names("d") == std::vector<std::string>{"pvc-bc"});

    // The member gone from the spec, its partition still reported on c.
    auto gone = std::make_shared<v1::MeshStorVolume>(*retired);
    gone->spec.members.erase(gone->spec.members.begin() + 1);
    gone->spec.fenced_nodes.clear();
    v1::PartitionStatus p;
    p.index = 1;
    p.node_id = "c";
    gone->status.partitions.push_back(p);
    f.index.Apply(Upsert(retired, gone));
    CHECK(f.Names("a") == std::vector<std::string>{"pvc-ab"});
    CHECK(f.Names("c") == std::vector<std::string>{"pvc-bc"});
  }

  SECTION("a deleted volume leaves every node") {
    f.index.Apply(Change{{"", "pvc-bc"}, bc, nullptr, common::OkStatus()});
    CHECK(f.Names("b") == std::vector<std::string>{"pvc-ab"});
    CHECK(f.Names("c").empty());
    CHECK(f.told == std::map<std::string, int>{{"a", 1}, {"b", 3}, {"c", 2}});
  }

  SECTION("an object that no longer decodes leaves the index as it leaves List()") {
    f.index.Apply(Change{{"", "pvc-bc"},
                         bc,
                         nullptr,
                         common::Status(common::StatusCode::kInvalidArgument, "bad spec")});
    CHECK(f.Names("b") == std::vector<std::string>{"pvc-ab"});
    CHECK(f.Names("c").empty());
    // Decodable again (the cache's old object is null then): filed again.
    f.index.Apply(Upsert(nullptr, bc));
    CHECK(f.Names("c") == std::vector<std::string>{"pvc-bc"});
  }

  SECTION("a periodic resync tells the volume's nodes and changes nothing") {
    f.index.Apply(Upsert(ab, ab));
    CHECK(f.Names("a") == std::vector<std::string>{"pvc-ab"});
    CHECK(f.told == std::map<std::string, int>{{"a", 2}, {"b", 3}, {"c", 1}});
  }
}

}  // namespace
}  // namespace agent
