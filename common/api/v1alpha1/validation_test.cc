#include "common/api/v1alpha1/validation.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include "common/config/yaml_json.h"

namespace common::api::v1alpha1 {
namespace {

void CheckRefused(const Status& s, const std::string& message) {
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == message);
}

TEST_CASE("Each spec value is checked against its named bound", "[unit][api]") {
  CHECK(ValidateCapacityBytes(kMinCapacityBytes, "f").ok());
  CHECK(ValidateCapacityBytes(kMinCapacityBytes + 7 * kMiB, "f").ok());
  CheckRefused(ValidateCapacityBytes(kMinCapacityBytes - kMiB, "spec.capacityBytes"),
               "spec.capacityBytes: 535822336 is below the minimum 536870912 (512 MiB)");
  CheckRefused(ValidateCapacityBytes(kMinCapacityBytes + 5, "spec.capacityBytes"),
               "spec.capacityBytes: 536870917 is not a multiple of 1 MiB");

  for (int32_t v : {kMinReplicaCount, kMaxReplicaCount}) CHECK(ValidateReplicaCount(v, "f").ok());
  CheckRefused(ValidateReplicaCount(0, "parameter replicaCount"),
               "parameter replicaCount: 0 is out of range 1..16");
  CheckRefused(ValidateReplicaCount(17, "spec.replicaCount"),
               "spec.replicaCount: 17 is out of range 1..16");

  for (int32_t v : {kMinStripeWidth, kMaxStripeWidth}) CHECK(ValidateStripeWidth(v, "f").ok());
  CheckRefused(ValidateStripeWidth(17, "spec.stripeWidth"),
               "spec.stripeWidth: 17 is out of range 1..16");

  CHECK(ValidateMemberMissingTimeout(kMinMemberMissingTimeoutSeconds, "f").ok());
  CheckRefused(ValidateMemberMissingTimeout(59, "spec.memberMissingTimeout"),
               "spec.memberMissingTimeout: 59 is below the minimum 60 (seconds)");

  for (int32_t v : kSectorSizes) CHECK(ValidateSectorSize(v, "f").ok());
  CheckRefused(ValidateSectorSize(1024, "spec.sectorSize"),
               "spec.sectorSize: 1024 is not a supported sector size (allowed: 512, 4096)");

  CHECK(ValidateArraySlots(16, 4, "f").ok());  // 64
  CHECK(ValidateArraySlots(1, 16, "f").ok());  // a single copy keeps 2: 32
  CheckRefused(ValidateArraySlots(3, 22, "spec.replicaCount × spec.stripeWidth"),
               "spec.replicaCount × spec.stripeWidth: 66 array slots (max(replicaCount, 2) × "
               "stripeWidth) exceed the maximum 64");
}

// The CRD's schema states the same bounds as the named constants.
TEST_CASE("The CRD schema's bounds are the validator's constants", "[unit][api]") {
  auto json =
      config::YamlFileToJson(std::string(MESHSTOR_SOURCE_DIR) + "/crds/meshstorvolumes.yaml");
  INFO(json.status().ToString());
  REQUIRE(json.ok());
  rapidjson::Document doc;
  doc.Parse(json->c_str());
  REQUIRE_FALSE(doc.HasParseError());
  const std::string spec = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/";
  auto get = [&](const std::string& path) -> int64_t {
    const rapidjson::Value* v = rapidjson::Pointer((spec + path).c_str()).Get(doc);
    INFO(path);
    REQUIRE(v != nullptr);
    REQUIRE(v->IsInt64());
    return v->GetInt64();
  };
  CHECK(get("capacityBytes/minimum") == kMinCapacityBytes);
  CHECK(get("capacityBytes/multipleOf") == kMiB);
  CHECK(get("replicaCount/minimum") == kMinReplicaCount);
  CHECK(get("replicaCount/maximum") == kMaxReplicaCount);
  CHECK(get("stripeWidth/minimum") == kMinStripeWidth);
  CHECK(get("stripeWidth/maximum") == kMaxStripeWidth);
  CHECK(get("memberMissingTimeout/minimum") == kMinMemberMissingTimeoutSeconds);
  CHECK(get("members/maxItems") == kMaxArraySlots);
  CHECK(get("members/items/properties/namespaceID/minimum") == kMinNamespaceId);
  CHECK(get("members/items/properties/namespaceID/maximum") == kMaxNamespaceId);
  std::vector<int64_t> sectors;
  const rapidjson::Value* e = rapidjson::Pointer((spec + "sectorSize/enum").c_str()).Get(doc);
  REQUIRE(e != nullptr);
  REQUIRE(e->IsArray());
  for (const auto& s : e->GetArray()) sectors.push_back(s.GetInt64());
  CHECK(sectors == std::vector<int64_t>(kSectorSizes.begin(), kSectorSizes.end()));
}

}  // namespace
}  // namespace common::api::v1alpha1
