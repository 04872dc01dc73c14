#include "common/api/v1alpha1/volume_id.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace common::api::v1alpha1 {
namespace {

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

TEST_CASE("pvc-<uuid> names are their own volume ID", "[unit][api]") {
  const std::string name = "pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca427";
  CHECK(IsProvisionerVolumeName(name));
  CHECK(VolumeIdForCsiName(name).value() == name);
}

TEST_CASE("Other names map to msv- and 20 hex digits of SHA-256", "[unit][api]") {
  // sha256("") would not apply (empty is refused); sha256("abc") = ba7816bf8f01cfea4141...
  CHECK(VolumeIdForCsiName("abc").value() == "msv-ba7816bf8f01cfea4141");
  for (const std::string& name :
       std::vector<std::string>{"pvc-1B4E28BA-2FA1-11D2-883F-0016D3CCA427",  // upper-case UUID
                                "pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca42",   // one digit short
                                "pvc-1b4e28ba_2fa1-11d2-883f-0016d3cca427", "My Volume.v2",
                                "データ", "msv-ba7816bf8f01cfea4141", std::string(128, 'x')}) {
    INFO(name);
    CHECK_FALSE(IsProvisionerVolumeName(name));
    auto id = VolumeIdForCsiName(name);
    REQUIRE(id.ok());
    CHECK(id->starts_with(kHashedVolumeIdPrefix));
    CHECK(id->size() == kHashedVolumeIdPrefix.size() + kVolumeIdHashHexDigits);
    CHECK(id->size() <= kMaxVolumeIdBytes);
    CHECK(IsDns1123Label(*id));
    CHECK(*VolumeIdForCsiName(name) == *id);  // deterministic
  }
  CHECK(*VolumeIdForCsiName("a") != *VolumeIdForCsiName("A"));
}

TEST_CASE("Empty and over-long CSI names are InvalidArgument", "[unit][api]") {
  auto empty = VolumeIdForCsiName("", "name");
  CHECK(empty.status().code() == StatusCode::kInvalidArgument);
  CHECK(empty.status().message() == "name is missing");
  auto long_name = VolumeIdForCsiName(std::string(129, 'a'), "name");
  CHECK(long_name.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(long_name.status().message(), Catch::Contains("longer than the 128 bytes"));
}

TEST_CASE("CsiNameOf reads the annotation, else the volume name", "[unit][api]") {
  MeshStorVolume v;
  v.metadata.name = "pvc-1b4e28ba-2fa1-11d2-883f-0016d3cca427";
  CHECK(CsiNameOf(v) == v.metadata.name);
  v.metadata.annotations[std::string(kCsiNameAnnotation)] = "My Volume";
  CHECK(CsiNameOf(v) == "My Volume");
}

}  // namespace
}  // namespace common::api::v1alpha1
