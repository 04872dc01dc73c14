#include "common/api/v1alpha1/codec.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "common/api/json.h"
#include "common/api/v1alpha1/validation.h"
#include "common/config/yaml_json.h"

namespace common::api::v1alpha1 {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(MESHSTOR_SOURCE_DIR) / "crds" / "examples";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ExampleJson(const fs::path& p) {
  auto json = config::YamlToJson(ReadFile(p), p.string());
  INFO(json.status().ToString());
  REQUIRE(json.ok());
  return *json;
}

// "# key: value" header lines of an invalid example.
std::map<std::string, std::string> Headers(const fs::path& p) {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadFile(p));
  std::string line;
  while (std::getline(in, line) && line.rfind("#", 0) == 0) {
    auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string key = line.substr(2, colon - 2);
    if (key == "expect-error" || key == "update-of" || key == "subresource") {
      out[key] = line.substr(colon + 2);
    }
  }
  return out;
}

std::vector<fs::path> Examples(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kExamples / dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsVolume(const std::string& json) {
  return json.find("\"kind\":\"MeshStorVolume\"") != std::string::npos;
}

// Decodes, re-encodes and compares the JSON trees.
void CheckRoundTrip(const fs::path& p) {
  INFO(p.filename().string());
  std::string original = ExampleJson(p);
  std::string encoded;
  if (IsVolume(original)) {
    auto v = DecodeMeshStorVolume(original);
    INFO(v.status().ToString());
    REQUIRE(v.ok());
    encoded = EncodeMeshStorVolume(*v);
    auto again = DecodeMeshStorVolume(encoded);
    REQUIRE(again.ok());
    CHECK(*again == *v);
  } else {
    auto d = DecodeMeshStorNodeDevice(original);
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    encoded = EncodeMeshStorNodeDevice(*d);
    auto again = DecodeMeshStorNodeDevice(encoded);
    REQUIRE(again.ok());
    CHECK(*again == *d);
  }
  rapidjson::Document a, b;
  a.Parse(original.c_str());
  b.Parse(encoded.c_str());
  INFO("original: " << original);
  INFO("encoded:  " << encoded);
  CHECK(a == b);
}

TEST_CASE("Every valid example round-trips through the codecs unchanged", "[unit][api]") {
  auto files = Examples("valid");
  REQUIRE(files.size() >= 5);
  for (const auto& p : files) CheckRoundTrip(p);
}

TEST_CASE("Decoded example has the values of the YAML", "[unit][api]") {
  auto v = DecodeMeshStorVolume(ExampleJson(kExamples / "valid" / "volume-replacing.yaml"));
  REQUIRE(v.ok());
  CHECK(v->metadata.name == "pvc-1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b");
  CHECK(v->metadata.finalizers == std::vector<std::string>{"csi.meshstor.io/teardown"});
  CHECK(v->spec.capacity_bytes == 5368709120);
  CHECK(v->spec.member_missing_timeout == 120);
  REQUIRE(v->spec.members.size() == 3);
  CHECK(v->spec.members[1].state == MemberState::kRetired);
  CHECK(v->spec.members[2].replaces == 1);
  CHECK(v->spec.members[2].role == MemberRole::kRemote);
  CHECK_FALSE(v->spec.members[0].replaces.has_value());
  CHECK(v->status.phase == VolumePhase::kReplacing);
  CHECK(v->status.failed_devices == 0);
  REQUIRE(v->status.partitions.size() == 3);
  CHECK(v->status.partitions[1].state == PartitionState::kMissing);
  REQUIRE(v->status.partitions[1].missing_since.has_value());
  // 2026-11-21T09:58:00Z
  CHECK(v->status.partitions[1].missing_since->time_since_epoch().count() == 1795255080);
  REQUIRE(v->status.conditions.size() == 1);
  CHECK(v->status.conditions[0].status == ConditionStatus::kTrue);

  auto synced = DecodeMeshStorVolume(ExampleJson(kExamples / "valid" / "volume-synced.yaml"));
  REQUIRE(synced.ok());
  CHECK(synced->spec.staging_path ==
        "/var/lib/kubelet/plugins/kubernetes.io/csi/io.meshstor.csi.mesh/3b9a/globalmount");
  CHECK(synced->spec.staging_path == synced->status.staged_path);

  auto forced =
      DecodeMeshStorVolume(ExampleJson(kExamples / "valid" / "volume-force-started.yaml"));
  REQUIRE(forced.ok());
  CHECK(forced->metadata.annotations.at(std::string(kForceStartAnnotation)) ==
        "2026-11-21T10:02:00Z by admin");
  REQUIRE(forced->status.in_sync.has_value());
  CHECK(forced->status.in_sync->members == std::vector<int32_t>{1});
  CHECK(forced->status.in_sync->node == "node-c");
  CHECK(forced->status.in_sync->events == 412);
  REQUIRE(forced->status.partitions.size() == 2);
  CHECK(forced->status.partitions[0].md_events == 97);
  CHECK(forced->status.partitions[0].left_at_events == 98);
  CHECK(forced->status.partitions[1].md_events == 412);
  CHECK_FALSE(forced->status.partitions[1].left_at_events.has_value());
  REQUIRE(forced->status.forced_start.has_value());
  CHECK(forced->status.forced_start->token == "2026-11-21T10:02:00Z by admin");
  CHECK(forced->status.forced_start->from_members == std::vector<int32_t>{1});
  CHECK(forced->status.forced_start->missing_members == std::vector<int32_t>{0});
  CHECK(forced->status.forced_start->diverged_members == std::vector<int32_t>{0});
  REQUIRE(forced->status.forced_start->loss_window_since.has_value());
  // 2026-11-21T09:40:12Z
  CHECK(forced->status.forced_start->loss_window_since->time_since_epoch().count() == 1795254012);
  CHECK(forced->status.start_blocked.empty());

  // An empty in-sync set is kept (not dropped as absent): it is what the agent recorded.
  MeshStorVolume empty_set = *forced;
  empty_set.status.in_sync->members.clear();
  empty_set.status.start_blocked = "member 0 on node-a was in sync";
  auto again = DecodeMeshStorVolume(EncodeMeshStorVolume(empty_set));
  REQUIRE(again.ok());
  CHECK(*again == empty_set);

  auto d = DecodeMeshStorNodeDevice(ExampleJson(kExamples / "valid" / "nodedevice.yaml"));
  REQUIRE(d.ok());
  CHECK(d->spec.node_name == "node-a");
  CHECK(d->status.sector_size == 4096);
  CHECK(d->status.size_bytes == 2000398934016);
  REQUIRE(d->status.transport_addresses.size() == 1);
  CHECK(d->status.transport_addresses[0].port == 4420);
  CHECK(d->status.transport_addresses[0].transport == Transport::kTcp);
}

// Applies an invalid example the way the API server would receive it and returns the error.
Status Apply(const fs::path& p) {
  auto headers = Headers(p);
  std::string json = ExampleJson(p);
  if (IsVolume(json)) {
    auto updated = DecodeMeshStorVolume(json);
    if (!updated.ok()) return updated.status();
    if (headers.count("update-of")) {
      auto old = DecodeMeshStorVolume(ExampleJson(kExamples / "valid" / headers["update-of"]));
      REQUIRE(old.ok());
      return ValidateVolumeUpdate(old->spec, updated->spec);
    }
    return OkStatus();
  }
  auto updated = DecodeMeshStorNodeDevice(json);
  if (!updated.ok()) return updated.status();
  if (headers.count("update-of")) {
    auto old = DecodeMeshStorNodeDevice(ExampleJson(kExamples / "valid" / headers["update-of"]));
    REQUIRE(old.ok());
    return ValidateNodeDeviceUpdate(old->spec, updated->spec);
  }
  return OkStatus();
}

TEST_CASE("Fencing fields decode from the failover example", "[unit][api]") {
  auto v = DecodeMeshStorVolume(ExampleJson(kExamples / "valid" / "volume-consumer-fenced.yaml"));
  REQUIRE(v.ok());
  CHECK(v->spec.fenced_nodes == std::vector<std::string>{"node-a"});
  REQUIRE(v->status.partitions.size() == 2);
  CHECK(v->status.partitions[0].fenced_nodes.empty());
  CHECK(v->status.partitions[1].fenced_nodes == std::vector<std::string>{"node-a"});
  REQUIRE(v->status.fenced_consumer.has_value());
  CHECK(v->status.fenced_consumer->node == "node-a");
  CHECK(v->status.fenced_consumer->at == json::ParseTime("2026-11-21T03:02:10Z").value());
  // A fencedConsumer without its node is refused with the field named.
  auto bad = DecodeMeshStorVolume(
      R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume","metadata":{"name":"x"},)"
      R"("spec":{"capacityBytes":536870912,"replicaCount":1,"stripeWidth":1,)"
      R"("memberMissingTimeout":60,"sectorSize":4096},"status":{"fencedConsumer":{}}})");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("fencedConsumer.node"));
}

TEST_CASE("Every invalid example is rejected with an error naming the field", "[unit][api]") {
  auto files = Examples("invalid");
  REQUIRE(files.size() >= 10);
  for (const auto& p : files) {
    INFO(p.filename().string());
    auto headers = Headers(p);
    REQUIRE(headers.count("expect-error"));
    Status s = Apply(p);
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().find(headers["expect-error"]) != std::string::npos);
  }
}

TEST_CASE("Spec values outside the schema's bounds are refused by the validator", "[unit][api]") {
  auto spec = [](const std::string& fields) {
    return R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume",)"
           R"("metadata":{"name":"v1"},"spec":{)" +
           fields + "}}";
  };
  const std::string ok = R"("capacityBytes":1073741824,"replicaCount":16,"stripeWidth":16,)"
                         R"("memberMissingTimeout":60,"sectorSize":512)";
  REQUIRE(DecodeMeshStorVolume(spec(ok)).ok());
  struct Case {
    std::string from, to, error;
  };
  auto c = GENERATE(
      Case{"\"capacityBytes\":1073741824", "\"capacityBytes\":1073741825",
           "MeshStorVolume v1: spec.capacityBytes: 1073741825 is not a multiple of 1 MiB"},
      Case{"\"capacityBytes\":1073741824", "\"capacityBytes\":1048576",
           "spec.capacityBytes: 1048576 is below the minimum 536870912 (512 MiB)"},
      Case{"\"replicaCount\":16", "\"replicaCount\":17",
           "spec.replicaCount: 17 is out of range 1..16"},
      Case{"\"stripeWidth\":16", "\"stripeWidth\":0", "spec.stripeWidth: 0 is out of range 1..16"},
      Case{"\"memberMissingTimeout\":60", "\"memberMissingTimeout\":59",
           "spec.memberMissingTimeout: 59 is below the minimum 60 (seconds)"},
      Case{"\"sectorSize\":512", "\"sectorSize\":1024",
           "spec.sectorSize: 1024 is not a supported sector size (allowed: 512, 4096)"});
  std::string fields = ok;
  fields.replace(fields.find(c.from), c.from.size(), c.to);
  auto v = DecodeMeshStorVolume(spec(fields));
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(v.status().message(), Catch::Contains(c.error));
}

TEST_CASE("Malformed and wrong-typed JSON gives a clear error, never a default", "[unit][api]") {
  const std::string base =
      R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume",)"
      R"("metadata":{"name":"v1"},"spec":{"capacityBytes":1073741824,"replicaCount":2,)"
      R"("stripeWidth":1,"memberMissingTimeout":900,"sectorSize":4096)";
  REQUIRE(DecodeMeshStorVolume(base + "}}").ok());

  struct Case {
    std::string json;
    std::string error;
  };
  auto c = GENERATE_REF(values<Case>({
      {"", "malformed JSON at offset 0"},
      {"{", "malformed JSON"},
      {"[1,2]", "expected a JSON object, got an array"},
      {base + "}} trailing", "malformed JSON"},
      {base + "}", "malformed JSON"},
      {R"({"apiVersion":"v1","kind":"MeshStorVolume","metadata":{},"spec":{}})",
       "apiVersion: expected \"csi.meshstor.io/v1alpha1\", got \"v1\""},
      {R"({"kind":"Pod","metadata":{},"spec":{}})", "kind: expected \"MeshStorVolume\""},
      {R"({"metadata":{"name":"v1"}})", "MeshStorVolume v1: spec: required field is missing"},
      {R"({"metadata":"v1","spec":{}})", "metadata: expected an object, got a string"},
      {base + R"(,"consumerNode":7}})", "spec.consumerNode: expected a string, got an integer"},
      {base + R"(},"status":{"totalDevices":"2"}})",
       "status.totalDevices: expected an integer, got a string"},
      {base + R"(},"status":{"totalDevices":2.5}})",
       "status.totalDevices: expected a 32-bit integer, got 2.5"},
      {base + R"(},"status":{"totalDevices":4294967296}})",
       "status.totalDevices: expected a 32-bit integer, got 4294967296"},
      {base + R"(},"status":{"observedGeneration":1e30}})",
       "status.observedGeneration: expected an integer that fits in 64 bits"},
      {base + R"(},"status":{"phase":"Healthy"}})",
       "status.phase: unsupported value \"Healthy\" (allowed: New, Requested"},
      {base + R"(},"status":{"phase":true}})", "status.phase: expected a string, got a boolean"},
      {base + R"(,"formattedAt":"yesterday"}})", "spec.formattedAt"},
      {base + R"(,"members":{}}})", "spec.members: expected an array, got an object"},
      {base + R"(,"members":[7]}})", "spec.members[0]: expected an object, got an integer"},
      {base + R"(,"publishTargets":[{"readOnly":"yes"}]}})",
       "spec.publishTargets[0].path: required field is missing"},
      {base + R"(},"status":{"conditions":[{"type":"Ready","status":"Maybe"}]}})",
       "status.conditions[0].status: unsupported value \"Maybe\""},
      {base + R"(},"status":{"publishedTargets":["/a",1]}})",
       "status.publishedTargets[1]: expected a string, got an integer"},
      {base + R"(},"status":{"inSync":{"members":[0,"1"]}}})",
       "status.inSync.members[1]: expected a 32-bit integer, got a string"},
      {base + R"(},"status":{"inSync":{"members":[-1]}}})",
       "status.inSync.members[0]: member index -1 is negative"},
      {base + R"(},"status":{"partitions":[{"index":0,"nodeID":"a","state":"Synced",)"
              R"("mdEvents":-3}]}})",
       "status.partitions[0].mdEvents: -3 is out of range"},
      {base + R"(},"status":{"partitions":[{"index":0,"nodeID":"a","state":"Synced",)"
              R"("leftAtEvents":"7"}]}})",
       "status.partitions[0].leftAtEvents: expected an integer, got a string"},
      {base + R"(},"status":{"inSync":[0,1]}})", "status.inSync: expected an object, got an array"},
      {base + R"(},"status":{"forcedStart":{"at":"2026-11-21T10:02:04Z"}}})",
       "status.forcedStart.token: required field is missing"},
      {R"({"metadata":{"name":"v1","labels":{"a":1}},"spec":{}})",
       "metadata.labels.a: expected a string, got an integer"},
  }));
  auto r = DecodeMeshStorVolume(c.json);
  INFO(c.json);
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message().find(c.error) != std::string::npos);
}

TEST_CASE("Deeply nested JSON is rejected without exhausting the stack", "[unit][api]") {
  std::string deep = R"({"metadata":{"name":"x"},"spec":{"members":)" + std::string(200000, '[') +
                     std::string(200000, ']') + "}}";
  auto r = DecodeMeshStorVolume(deep);
  CHECK_FALSE(r.ok());
}

TEST_CASE("Null counts as absent, as in Kubernetes", "[unit][api]") {
  auto r = DecodeMeshStorVolume(
      R"({"metadata":{"name":"v","labels":null},"spec":{"capacityBytes":536870912,)"
      R"("replicaCount":1,"stripeWidth":1,"memberMissingTimeout":60,"sectorSize":512,)"
      R"("consumerNode":null},"status":null})");
  REQUIRE(r.ok());
  CHECK(r->spec.consumer_node.empty());
  CHECK_FALSE(r->status.phase.has_value());
}

TEST_CASE("Decoded lists hold no spare capacity", "[unit][api]") {
  // Informer caches keep decoded objects for their whole life: a vector grown by push_back (3
  // conditions in room for 4) wastes memory in each of 10000 cached volumes.
  MeshStorVolume v;
  v.metadata.name = "pvc-1";
  v.metadata.finalizers = {"a", "b", "c"};
  v.spec.capacity_bytes = kMinCapacityBytes;
  v.spec.replica_count = 3;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  for (int i = 0; i < 3; ++i) {
    const std::string node = "node-" + std::to_string(i);
    v.spec.members.push_back({i,
                              node,
                              "nvme0n1",
                              kMinCapacityBytes,
                              1,
                              MemberRole::kRemote,
                              MemberState::kPresent,
                              i,
                              {}});
    PartitionStatus p;
    p.index = i;
    p.node_id = node;
    p.state = PartitionState::kSynced;
    v.status.partitions.push_back(p);
    v.status.published_targets.push_back("/t/" + node);
    Condition c;
    c.type = "Type" + std::to_string(i);
    c.status = ConditionStatus::kTrue;
    c.reason = "Reason";
    v.status.conditions.push_back(c);
  }
  v.status.in_sync = InSyncRecord{{0, 1, 2}, "node-0", {}, {}};
  auto d = DecodeMeshStorVolume(EncodeMeshStorVolume(v));
  REQUIRE(d.ok());
  CHECK(*d == v);
  CHECK(d->metadata.finalizers.capacity() == 3);
  CHECK(d->spec.members.capacity() == 3);
  CHECK(d->status.partitions.capacity() == 3);
  CHECK(d->status.published_targets.capacity() == 3);
  CHECK(d->status.conditions.capacity() == 3);
  CHECK(d->status.in_sync->members.capacity() == 3);
}

TEST_CASE("Update rules reject what the CRD's transition rules reject", "[unit][api]") {
  MeshStorVolumeSpec old_spec{.capacity_bytes = 1024 * kMiB,
                              .replica_count = 2,
                              .stripe_width = 1,
                              .member_missing_timeout = 900,
                              .sector_size = 4096};
  MeshStorVolumeSpec grown = old_spec;
  grown.capacity_bytes *= 2;
  grown.consumer_node = "node-a";
  CHECK(ValidateVolumeUpdate(old_spec, grown).ok());

  MeshStorVolumeSpec changed = old_spec;
  changed.stripe_width = 2;
  CHECK(ValidateVolumeUpdate(old_spec, changed).message().find("stripeWidth is immutable") !=
        std::string::npos);
  changed = old_spec;
  changed.formatted_at = Time(std::chrono::seconds(100));
  CHECK(ValidateVolumeUpdate(old_spec, changed).ok());  // first set
  MeshStorVolumeSpec reformatted = changed;
  reformatted.formatted_at = Time(std::chrono::seconds(200));
  CHECK(ValidateVolumeUpdate(changed, reformatted).message() ==
        "spec.formattedAt: formattedAt is set once");

  CHECK(ValidateNodeDeviceUpdate({"n1", "nvme0n1"}, {"n1", "nvme0n1"}).ok());
  CHECK_FALSE(ValidateNodeDeviceUpdate({"n1", "nvme0n1"}, {"n2", "nvme0n1"}).ok());
}

}  // namespace
}  // namespace common::api::v1alpha1
