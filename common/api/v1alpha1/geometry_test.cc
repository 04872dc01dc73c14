#include "common/api/v1alpha1/geometry.h"

#include <catch2/catch.hpp>

#include "common/api/v1alpha1/types.h"

namespace common::api::v1alpha1 {
namespace {

TEST_CASE("A member holds its share of the capacity plus the MD data offset", "[unit][api]") {
  CHECK(kMdDataOffsetBytes == kMiB);
  CHECK(MemberSizeBytes(512 * kMiB, 1) == 513 * kMiB);
  CHECK(MemberSizeBytes(1025 * kMiB, 2) == 514 * kMiB);   // 512.5 → 513, + 1
  CHECK(MemberSizeBytes(1024 * kMiB, 3) == 343 * kMiB);   // 341.33 → 342, + 1
  CHECK(MemberSizeBytes(1024 * kMiB, 0) == 1025 * kMiB);  // width below 1 counts as 1
  MeshStorVolumeSpec spec;
  spec.capacity_bytes = 1025 * kMiB;
  spec.stripe_width = 2;
  CHECK(MemberSizeBytes(spec) == 514 * kMiB);
}

TEST_CASE("MaxCapacityForExtent is the exact inverse of MemberSizeBytes", "[unit][api]") {
  for (int32_t width = 1; width <= 4; ++width) {
    for (int64_t extent :
         {0 * kMiB, kMiB, 2 * kMiB, 513 * kMiB, 513 * kMiB + 1, 1000 * kMiB - 1, 4096 * kMiB}) {
      INFO("width " << width << ", extent " << extent);
      const int64_t max = MaxCapacityForExtent(extent, width);
      CHECK(max % kMiB == 0);
      if (max > 0) CHECK(MemberSizeBytes(max, width) <= extent);
      CHECK(MemberSizeBytes(max + kMiB, width) > extent);
    }
  }
  CHECK(MaxCapacityForExtent(513 * kMiB, 1) == 512 * kMiB);
  CHECK(MaxCapacityForExtent(513 * kMiB - 1, 1) == 511 * kMiB);
  CHECK(MaxCapacityForExtent(2048 * kMiB, 2) == 4094 * kMiB);
}

TEST_CASE("Slots: copies of each stripe position are adjacent", "[unit][api]") {
  CHECK(Copies(1) == 2);  // a single copy keeps a placeholder mirror
  CHECK(Copies(3) == 3);
  CHECK(SlotCount(1, 1) == 2);
  CHECK(SlotCount(3, 2) == 6);
  CHECK(SlotCount(2, 0) == 2);
  for (int32_t replicas : {1, 2, 3}) {
    for (int32_t stripe = 0; stripe < 3; ++stripe) {
      for (int32_t copy = 0; copy < Copies(replicas); ++copy) {
        const int32_t slot = SlotOf(replicas, stripe, copy);
        CHECK(slot < SlotCount(replicas, 3));
        CHECK(StripeOfSlot(replicas, slot) == stripe);
      }
    }
  }
  MeshStorVolumeSpec spec;
  spec.replica_count = 1;
  spec.stripe_width = 3;
  CHECK(Copies(spec) == 2);
  CHECK(SlotCount(spec) == 6);
}

}  // namespace
}  // namespace common::api::v1alpha1
