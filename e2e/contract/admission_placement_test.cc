// The shim's admission (csi-shim/eligibility: CreateVolume's "enough nodes" check and
// GetCapacity) and the operator's placement (operator/reconcile Decide) judge the same drive
// inventory through the one volume geometry (common/api/v1alpha1/geometry.h): at the exact
// boundary, a free extent of exactly the member size and one MiB less, they accept and refuse
// the same volumes.
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "common/api/v1alpha1/geometry.h"
#include "csi-shim/eligibility.h"
#include "operator/reconcile.h"
#include "operator/testing/builders.h"

namespace {

namespace v1 = common::api::v1alpha1;
namespace op = meshstor_operator;
using v1::kMiB;

struct Case {
  int32_t replicas;
  int32_t stripe;
  int64_t capacity;
};

TEST_CASE("Shim admission and operator placement agree at the exact member size",
          "[unit][contract]") {
  for (Case c : {Case{2, 1, 512 * kMiB}, Case{2, 1, 1001 * kMiB}, Case{3, 2, 1001 * kMiB},
                 Case{1, 3, 1024 * kMiB}, Case{2, 2, 4097 * kMiB}}) {
    const int64_t member = v1::MemberSizeBytes(c.capacity, c.stripe);
    for (int64_t extent : {member, member - kMiB}) {
      INFO("replicas " << c.replicas << ", stripe " << c.stripe << ", capacity " << c.capacity
                       << ", member " << member << ", free extent " << extent);
      // replicaCount nodes, each with stripeWidth drives of that free extent.
      op::Inventory inv = op::testing::Cluster(c.replicas, c.stripe, extent);
      std::vector<v1::MeshStorNodeDevice> devices;
      for (const auto& d : inv.devices) devices.push_back(*d);

      const csi_shim::VolumeParameters params{.replica_count = c.replicas,
                                              .stripe_width = c.stripe,
                                              .member_missing_timeout = 900,
                                              .sector_size = 4096};
      const bool shim_admits =
          static_cast<int32_t>(csi_shim::QualifyingNodes(devices, params, member).size()) >=
          c.replicas;
      const bool shim_capacity = csi_shim::MaxVolumeCapacity(devices, params) >= c.capacity;

      v1::MeshStorVolume v = op::testing::Volume("pvc-boundary", c.replicas, c.stripe, c.capacity);
      v.metadata.finalizers.push_back(op::kFinalizer);
      v.spec.consumer_node = "node-a";
      op::Decision d = op::Decide(v, inv, op::Limits{});
      const bool operator_places = !d.placement_failed && d.write == op::Decision::Write::kSpec;

      CHECK(shim_admits == (extent == member));
      CHECK(shim_capacity == shim_admits);
      CHECK(operator_places == shim_admits);
      if (operator_places) {
        REQUIRE(d.object.spec.members.size() == static_cast<size_t>(c.replicas * c.stripe));
        for (const auto& m : d.object.spec.members) CHECK(m.size_bytes == member);
      }
    }
  }
}

}  // namespace
