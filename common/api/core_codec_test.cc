#include "common/api/core_codec.h"

#include <string>

#include <catch2/catch.hpp>

namespace common::api {
namespace {

TEST_CASE("Lease round-trips with microsecond times", "[unit][api]") {
  Lease lease;
  lease.metadata.name = "meshstor-operator";
  lease.metadata.namespace_ = "meshstor-system";
  lease.metadata.resource_version = "42";
  lease.spec.holder_identity = "operator-0";
  lease.spec.lease_duration_seconds = 15;
  auto t = ParseMicroTime("2026-11-22T10:00:00.123456Z");
  REQUIRE(t.ok());
  lease.spec.acquire_time = *t;
  lease.spec.renew_time = *t + std::chrono::microseconds(7);
  lease.spec.lease_transitions = 3;
  std::string json = EncodeLease(lease);
  CHECK(json.find(R"("renewTime":"2026-11-22T10:00:00.123463Z")") != std::string::npos);
  auto back = DecodeLease(json);
  REQUIRE(back.ok());
  CHECK(*back == lease);

  // A released lease keeps an explicit empty holder.
  lease.spec.holder_identity.clear();
  CHECK(EncodeLease(lease).find(R"("holderIdentity":"")") != std::string::npos);
}

TEST_CASE("Lease decoding names bad fields", "[unit][api]") {
  auto r = DecodeLease(R"({"metadata":{"name":"l"},"spec":{"renewTime":"soon"}})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("spec.renewTime") != std::string::npos);
  auto r2 = DecodeLease(R"({"metadata":{"name":"l"},"spec":{"leaseDurationSeconds":"15"}})");
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().message() == "spec.leaseDurationSeconds: expected an integer, got a string");
}

TEST_CASE("Event round-trips", "[unit][api]") {
  Event e;
  e.metadata.name = "pvc-1.17f3a";
  e.metadata.namespace_ = "default";
  e.event_time = *ParseMicroTime("2026-11-22T10:00:01.000001Z");
  e.reporting_controller = "csi.meshstor.io/operator";
  e.reporting_instance = "operator-0";
  e.action = "Reconcile";
  e.reason = "PhaseChanged";
  e.note = "New -> Requested";
  e.type = "Normal";
  e.regarding = {"csi.meshstor.io/v1alpha1", "MeshStorVolume", "", "pvc-1", "uid-1", ""};
  e.series_count = 2;
  e.series_last_observed_time = e.event_time;
  auto back = DecodeEvent(EncodeEvent(e));
  REQUIRE(back.ok());
  CHECK(*back == e);
}

TEST_CASE("Node decoding reads schedulability, addresses and conditions", "[unit][api]") {
  auto n = DecodeNode(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a"},
    "spec":{"unschedulable":true},
    "status":{"addresses":[{"type":"InternalIP","address":"10.0.0.11"}],
      "conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"2026-11-22T10:00:00Z",
        "lastTransitionTime":"2026-11-22T09:00:00Z","reason":"KubeletReady",
        "message":"kubelet is posting ready status"}]}})");
  INFO(n.status().ToString());
  REQUIRE(n.ok());
  CHECK(n->metadata.name == "node-a");
  CHECK(n->unschedulable);
  REQUIRE(n->addresses.size() == 1);
  CHECK(n->addresses[0].address == "10.0.0.11");
  REQUIRE(n->conditions.size() == 1);
  CHECK(n->conditions[0].status == ConditionStatus::kTrue);
}

// v1.NodeCondition requires only type and status (reason, message and times are optional,
// unlike metav1.Condition): a node registered that way must not be dropped as undecodable.
TEST_CASE("Node conditions need only type and status", "[unit][api]") {
  auto n = DecodeNode(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-b"},
    "status":{"conditions":[{"type":"Ready","status":"False"}]}})");
  INFO(n.status().ToString());
  REQUIRE(n.ok());
  REQUIRE(n->conditions.size() == 1);
  CHECK(n->conditions[0].type == "Ready");
  CHECK(n->conditions[0].status == ConditionStatus::kFalse);
  CHECK(n->conditions[0].reason.empty());
  auto bad = DecodeNode(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-c"},
    "status":{"conditions":[{"type":"Ready"}]}})");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("status"));
}

TEST_CASE("Node decoding reads taints (the out-of-service taint of a node shutdown)",
          "[unit][api]") {
  auto n = DecodeNode(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a"},
    "spec":{"taints":[{"key":"node.kubernetes.io/out-of-service","value":"nodeshutdown",
      "effect":"NoExecute"},{"key":"node.kubernetes.io/unreachable","effect":"NoSchedule",
      "timeAdded":"2026-11-22T10:00:00Z"}]}})");
  INFO(n.status().ToString());
  REQUIRE(n.ok());
  REQUIRE(n->taints.size() == 2);
  CHECK(n->taints[0].key == kOutOfServiceTaint);
  CHECK(n->taints[0].value == "nodeshutdown");
  CHECK(n->taints[0].effect == "NoExecute");
  CHECK(n->taints[1].key == "node.kubernetes.io/unreachable");
  auto bad = DecodeNode(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-c"},
    "spec":{"taints":[{"effect":"NoExecute"}]}})");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("key"));
}

}  // namespace
}  // namespace common::api
