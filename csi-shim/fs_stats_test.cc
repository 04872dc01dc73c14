#include "csi-shim/fs_stats.h"

#include <catch2/catch.hpp>

namespace csi_shim {
namespace {

TEST_CASE("StatvfsFsStats reports bytes and inodes of a real path", "[unit][csi]") {
  StatvfsFsStats stats;
  auto usage = stats.Usage("/");
  INFO(usage.status().ToString());
  REQUIRE(usage.ok());
  CHECK(usage->total_bytes > 0);
  CHECK(usage->available_bytes <= usage->total_bytes);
  CHECK(usage->used_bytes <= usage->total_bytes);
  CHECK(usage->used_inodes == usage->total_inodes - usage->free_inodes);
  CHECK(stats.Usage("/no/such/meshstor/path").status().code() == common::StatusCode::kNotFound);
}

}  // namespace
}  // namespace csi_shim
