#include "tools/apiserver/test_apiserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tools/apiserver/test_client.h"

namespace tools::apiserver {
namespace {

using testing::HttpReply;
using testing::SourceDir;
using testing::TestClient;
using testing::WatchStream;

constexpr char kVolumes[] = "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes";
constexpr char kDevices[] = "/apis/csi.meshstor.io/v1alpha1/meshstornodedevices";

std::unique_ptr<TestApiServer> StartServer(TestApiServer::Options options = {}) {
  options.crd_dir = SourceDir() + "/crds";
  auto server = TestApiServer::Start(options);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return std::move(server).value();
}

std::string Volume(const std::string& name, const std::string& extra_metadata = "",
                   int64_t capacity = 10737418240) {
  return fmt::format(
      R"({{"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume",)"
      R"("metadata":{{"name":"{}"{}}},)"
      R"("spec":{{"capacityBytes":{},"replicaCount":2,"stripeWidth":1,"memberMissingTimeout":900,)"
      R"("sectorSize":4096}}}})",
      name, extra_metadata, capacity);
}

std::string VolumePath(const std::string& name) { return std::string(kVolumes) + "/" + name; }

// Creates a volume and returns the stored object.
HttpReply CreateVolume(TestClient& client, const std::string& name,
                       const std::string& extra_metadata = "") {
  HttpReply reply = client.Post(kVolumes, Volume(name, extra_metadata));
  INFO(reply.body);
  REQUIRE(reply.status == 201);
  return reply;
}

TEST_CASE("Objects go through create, get, update, list and delete", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());

  HttpReply created = CreateVolume(client, "vol-a");
  CHECK(created.Str("/apiVersion") == "csi.meshstor.io/v1alpha1");
  CHECK(created.Str("/kind") == "MeshStorVolume");
  CHECK(std::regex_match(created.Str("/metadata/uid"),
                         std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                    "[0-9a-f]{12}")));
  CHECK(std::regex_match(created.Str("/metadata/creationTimestamp"),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  CHECK(created.Int("/metadata/generation") == 1);
  CHECK(!created.Has("/metadata/namespace"));
  const std::string rv = created.Str("/metadata/resourceVersion");
  CHECK(std::stoll(rv) == server->ResourceVersion());

  HttpReply got = client.Get(VolumePath("vol-a"));
  REQUIRE(got.status == 200);
  CHECK(got.body == created.body);

  std::string updated_body = Volume("vol-a", R"(,"resourceVersion":")" + rv + "\"", 21474836480);
  HttpReply updated = client.Put(VolumePath("vol-a"), updated_body);
  REQUIRE(updated.status == 200);
  CHECK(updated.Int("/spec/capacityBytes") == 21474836480);
  CHECK(updated.Str("/metadata/uid") == created.Str("/metadata/uid"));
  CHECK(updated.Str("/metadata/creationTimestamp") == created.Str("/metadata/creationTimestamp"));
  CHECK(std::stoll(updated.Str("/metadata/resourceVersion")) > std::stoll(rv));

  HttpReply list = client.Get(kVolumes);
  REQUIRE(list.status == 200);
  CHECK(list.Str("/kind") == "MeshStorVolumeList");
  CHECK(list.Str("/apiVersion") == "csi.meshstor.io/v1alpha1");
  CHECK(list.Str("/metadata/resourceVersion") == std::to_string(server->ResourceVersion()));
  REQUIRE(list.json["items"].Size() == 1);
  CHECK(std::string(list.json["items"][0]["kind"].GetString()) == "MeshStorVolume");

  HttpReply deleted = client.Delete(VolumePath("vol-a"));
  REQUIRE(deleted.status == 200);
  CHECK(deleted.Str("/kind") == "Status");
  CHECK(deleted.Str("/status") == "Success");
  CHECK(deleted.Str("/details/name") == "vol-a");
  CHECK(deleted.Str("/details/kind") == "meshstorvolumes");
  CHECK(deleted.Str("/details/uid") == created.Str("/metadata/uid"));

  HttpReply missing = client.Get(VolumePath("vol-a"));
  CHECK(missing.status == 404);
  CHECK(missing.Str("/kind") == "Status");
  CHECK(missing.Str("/status") == "Failure");
  CHECK(missing.Str("/reason") == "NotFound");
  CHECK(missing.Str("/message") == "meshstorvolumes.csi.meshstor.io \"vol-a\" not found");
  CHECK(missing.Str("/details/group") == "csi.meshstor.io");
  CHECK(missing.Int("/code") == 404);
  CHECK(client.Delete(VolumePath("vol-a")).status == 404);
}

TEST_CASE("generateName appends five random characters", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i) {
    std::string body = Volume("", "");
    body.replace(body.find(R"("name":"")"), 9, R"("generateName":"vol-")");
    HttpReply reply = client.Post(kVolumes, body);
    REQUIRE(reply.status == 201);
    CHECK(std::regex_match(reply.Str("/metadata/name"),
                           std::regex("vol-[bcdfghjklmnpqrstvwxz2456789]{5}")));
    CHECK(reply.Str("/metadata/generateName") == "vol-");
    names.insert(reply.Str("/metadata/name"));
  }
  CHECK(names.size() == 3);
}

TEST_CASE("A create without name or generateName is invalid", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply reply = client.Post(
      kVolumes, R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume","metadata":{},)"
                R"("spec":{"capacityBytes":10737418240,"replicaCount":2,"stripeWidth":1,)"
                R"("memberMissingTimeout":900,"sectorSize":4096}})");
  CHECK(reply.status == 422);
  CHECK(reply.Str("/reason") == "Invalid");
  CHECK(reply.Str("/message") ==
        "MeshStorVolume.csi.meshstor.io \"\" is invalid: metadata.name: Required value: name or "
        "generateName is required");
  CHECK(reply.Str("/details/causes/0/field") == "metadata.name");
  CHECK(reply.Str("/details/causes/0/reason") == "FieldValueRequired");
}

TEST_CASE("Creating an existing name is 409 AlreadyExists", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  HttpReply again = client.Post(kVolumes, Volume("vol-a"));
  CHECK(again.status == 409);
  CHECK(again.Str("/reason") == "AlreadyExists");
  CHECK(again.Str("/message") == "meshstorvolumes.csi.meshstor.io \"vol-a\" already exists");
}

TEST_CASE("An update with a stale resourceVersion is 409 Conflict", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply created = CreateVolume(client, "vol-a");
  const std::string rv = created.Str("/metadata/resourceVersion");
  REQUIRE(client.Patch(VolumePath("vol-a"), R"({"metadata":{"labels":{"a":"b"}}})").status == 200);
  HttpReply stale =
      client.Put(VolumePath("vol-a"), Volume("vol-a", R"(,"resourceVersion":")" + rv + "\""));
  CHECK(stale.status == 409);
  CHECK(stale.Str("/reason") == "Conflict");
  CHECK(stale.Str("/message") ==
        "Operation cannot be fulfilled on meshstorvolumes.csi.meshstor.io \"vol-a\": the object "
        "has been modified; please apply your changes to the latest version and try again");
  CHECK(stale.Str("/details/kind") == "meshstorvolumes");
}

TEST_CASE("A custom resource update without resourceVersion is invalid", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  HttpReply reply = client.Put(VolumePath("vol-a"), Volume("vol-a"));
  CHECK(reply.status == 422);
  CHECK(reply.Str("/message") ==
        "MeshStorVolume.csi.meshstor.io \"vol-a\" is invalid: metadata.resourceVersion: Invalid "
        "value: 0x0: must be specified for an update");
}

TEST_CASE("generation changes only with the spec; no-op writes keep resourceVersion",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply created = CreateVolume(client, "vol-a");

  HttpReply labelled = client.Patch(VolumePath("vol-a"), R"({"metadata":{"labels":{"x":"y"}}})");
  REQUIRE(labelled.status == 200);
  CHECK(labelled.Int("/metadata/generation") == 1);
  CHECK(labelled.Str("/metadata/resourceVersion") != created.Str("/metadata/resourceVersion"));

  HttpReply grown = client.Patch(VolumePath("vol-a"), R"({"spec":{"capacityBytes":21474836480}})");
  REQUIRE(grown.status == 200);
  CHECK(grown.Int("/metadata/generation") == 2);

  const int64_t rv_before = server->ResourceVersion();
  HttpReply same = client.Patch(VolumePath("vol-a"), R"({"spec":{"capacityBytes":21474836480}})");
  REQUIRE(same.status == 200);
  CHECK(same.Str("/metadata/resourceVersion") == grown.Str("/metadata/resourceVersion"));
  HttpReply same_put = client.Put(VolumePath("vol-a"), grown.body);
  REQUIRE(same_put.status == 200);
  CHECK(same_put.body == grown.body);
  CHECK(server->ResourceVersion() == rv_before);

  HttpReply status = client.Patch(VolumePath("vol-a") + "/status", R"({"status":{"phase":"New"}})");
  REQUIRE(status.status == 200);
  CHECK(status.Int("/metadata/generation") == 2);
}

TEST_CASE("The status subresource and the main resource ignore each other's fields",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  std::string with_status = Volume("vol-a");
  with_status.insert(with_status.size() - 1, R"(,"status":{"phase":"Synced"})");
  HttpReply created = client.Post(kVolumes, with_status);
  REQUIRE(created.status == 201);
  CHECK(!created.Has("/status"));  // create drops status

  // Main endpoint: status changes are ignored, spec changes applied.
  HttpReply main = client.Patch(
      VolumePath("vol-a"), R"({"spec":{"consumerNode":"node-a"},"status":{"phase":"Synced"}})");
  REQUIRE(main.status == 200);
  CHECK(main.Str("/spec/consumerNode") == "node-a");
  CHECK(!main.Has("/status"));

  // Status endpoint: everything but status is ignored, labels included.
  HttpReply st =
      client.Patch(VolumePath("vol-a") + "/status",
                   R"({"metadata":{"labels":{"x":"y"}},"spec":{"consumerNode":"node-b"},)"
                   R"("status":{"phase":"Synced"}})");
  REQUIRE(st.status == 200);
  CHECK(st.Str("/status/phase") == "Synced");
  CHECK(st.Str("/spec/consumerNode") == "node-a");
  CHECK(!st.Has("/metadata/labels"));

  // PUT /status with the whole object works the same way.
  std::string body = st.body;
  body.replace(body.find("\"Synced\""), 8, "\"Syncing\"");
  body.replace(body.find("\"node-a\""), 8, "\"node-c\"");
  HttpReply put = client.Put(VolumePath("vol-a") + "/status", body);
  REQUIRE(put.status == 200);
  CHECK(put.Str("/status/phase") == "Syncing");
  CHECK(put.Str("/spec/consumerNode") == "node-a");
  CHECK(client.Get(VolumePath("vol-a") + "/status").Str("/status/phase") == "Syncing");
}

TEST_CASE("Merge patch deletes with null and treats resourceVersion as a precondition",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply created = CreateVolume(client, "vol-a", R"(,"labels":{"a":"1","b":"2"})");
  HttpReply patched =
      client.Patch(VolumePath("vol-a"), R"({"metadata":{"labels":{"a":null,"c":"3"}}})");
  REQUIRE(patched.status == 200);
  CHECK(!patched.Has("/metadata/labels/a"));
  CHECK(patched.Str("/metadata/labels/b") == "2");
  CHECK(patched.Str("/metadata/labels/c") == "3");

  const std::string stale = created.Str("/metadata/resourceVersion");
  HttpReply conflict =
      client.Patch(VolumePath("vol-a"), R"({"metadata":{"resourceVersion":")" + stale +
                                            R"(","finalizers":["example.com/x"]}})");
  CHECK(conflict.status == 409);
  CHECK(conflict.Str("/reason") == "Conflict");

  const std::string current = patched.Str("/metadata/resourceVersion");
  HttpReply ok = client.Patch(VolumePath("vol-a"), R"({"metadata":{"resourceVersion":")" + current +
                                                       R"(","finalizers":["example.com/x"]}})");
  REQUIRE(ok.status == 200);
  CHECK(ok.Str("/metadata/finalizers/0") == "example.com/x");
}

TEST_CASE("Unknown fields are pruned with a warning, or rejected with fieldValidation=Strict",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  std::string body = Volume("vol-a", R"(,"color":"red")");
  body.insert(body.find(R"("replicaCount")"), R"("junk":1,)");
  HttpReply strict = client.Post(std::string(kVolumes) + "?fieldValidation=Strict", body);
  CHECK(strict.status == 400);
  CHECK(strict.Str("/message") ==
        R"(strict decoding error: unknown field "metadata.color", unknown field "spec.junk")");
  HttpReply warned = client.Post(kVolumes, body);
  REQUIRE(warned.status == 201);
  CHECK(!warned.Has("/spec/junk"));
  CHECK(!warned.Has("/metadata/color"));
  CHECK(warned.warning == R"(299 - "unknown field \"metadata.color\"")");
}

TEST_CASE("JSON patch applies atomically and its test op guards the change", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a", R"(,"finalizers":["example.com/a","example.com/b"])");
  const char* kJsonPatch = "application/json-patch+json";

  HttpReply failed =
      client.Patch(VolumePath("vol-a"),
                   R"([{"op":"test","path":"/metadata/finalizers/0","value":"example.com/b"},)"
                   R"({"op":"remove","path":"/metadata/finalizers/0"}])",
                   kJsonPatch);
  CHECK(failed.status == 422);
  CHECK(failed.Str("/reason") == "Invalid");
  CHECK(client.Get(VolumePath("vol-a")).json["metadata"]["finalizers"].Size() == 2);

  HttpReply ok =
      client.Patch(VolumePath("vol-a"),
                   R"([{"op":"test","path":"/metadata/finalizers/0","value":"example.com/a"},)"
                   R"({"op":"remove","path":"/metadata/finalizers/0"},)"
                   R"({"op":"add","path":"/spec/consumerNode","value":"node-a"}])",
                   kJsonPatch);
  REQUIRE(ok.status == 200);
  REQUIRE(ok.json["metadata"]["finalizers"].Size() == 1);
  CHECK(ok.Str("/metadata/finalizers/0") == "example.com/b");
  CHECK(ok.Str("/spec/consumerNode") == "node-a");

  CHECK(client.Patch(VolumePath("vol-a"), "{not json", kJsonPatch).status == 400);
}

TEST_CASE("Unsupported patch types are 415", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  for (const char* type :
       {"application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain"}) {
    HttpReply reply = client.Patch(VolumePath("vol-a"), "{}", type);
    INFO(type);
    CHECK(reply.status == 415);
    CHECK(reply.Str("/reason") == "UnsupportedMediaType");
  }
}

TEST_CASE("Finalizers hold a deleted object until the last one is removed", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply created =
      CreateVolume(client, "vol-a", R"(,"finalizers":["csi.meshstor.io/teardown"])");
  WatchStream watch(server->url(), fmt::format("{}?watch=true&resourceVersion={}", kVolumes,
                                               created.Str("/metadata/resourceVersion")));

  HttpReply deleting = client.Delete(VolumePath("vol-a"));
  REQUIRE(deleting.status == 200);
  CHECK(deleting.Str("/kind") == "MeshStorVolume");
  CHECK(!deleting.Str("/metadata/deletionTimestamp").empty());
  CHECK(deleting.Int("/metadata/deletionGracePeriodSeconds") == 0);
  CHECK(deleting.Int("/metadata/generation") == 2);
  REQUIRE(watch.WaitForEvents(1) >= 1);
  CHECK(watch.Event(0).type == "MODIFIED");
  CHECK(client.Get(VolumePath("vol-a")).status == 200);

  // A second delete changes nothing.
  HttpReply again = client.Delete(VolumePath("vol-a"));
  CHECK(again.status == 200);
  CHECK(again.Str("/metadata/resourceVersion") == deleting.Str("/metadata/resourceVersion"));

  HttpReply add = client.Patch(
      VolumePath("vol-a"),
      R"({"metadata":{"finalizers":["csi.meshstor.io/teardown","example.com/late"]}})");
  CHECK(add.status == 422);
  CHECK(add.Str("/message")
            .find("metadata.finalizers: Forbidden: no new finalizers can be added "
                  "if the object is being deleted, found new finalizers "
                  "[]string{\"example.com/late\"}") != std::string::npos);

  HttpReply removed = client.Patch(VolumePath("vol-a"), R"({"metadata":{"finalizers":null}})");
  REQUIRE(removed.status == 200);
  REQUIRE(watch.WaitForEvents(2) >= 2);
  CHECK(watch.Event(1).type == "DELETED");
  CHECK(watch.Event(1).name == "vol-a");
  CHECK(std::stoll(watch.Event(1).resource_version) == server->ResourceVersion());
  CHECK(client.Get(VolumePath("vol-a")).status == 404);
  CHECK(watch.EventCount() == 2);
}

TEST_CASE("Delete preconditions on uid and resourceVersion", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply created = CreateVolume(client, "vol-a");
  HttpReply wrong_uid =
      client.Delete(VolumePath("vol-a"), R"({"preconditions":{"uid":"not-the-uid"}})");
  CHECK(wrong_uid.status == 409);
  CHECK(wrong_uid.Str("/message").find("Precondition failed: UID in precondition: not-the-uid") !=
        std::string::npos);
  HttpReply wrong_rv =
      client.Delete(VolumePath("vol-a"), R"({"preconditions":{"resourceVersion":"1"}})");
  CHECK(wrong_rv.status == 409);
  HttpReply ok = client.Delete(
      VolumePath("vol-a"),
      fmt::format(R"({{"preconditions":{{"uid":"{}","resourceVersion":"{}"}}}})",
                  created.Str("/metadata/uid"), created.Str("/metadata/resourceVersion")));
  CHECK(ok.status == 200);
  CHECK(client.Get(VolumePath("vol-a")).status == 404);
}

TEST_CASE("A watch from resourceVersion N sees exactly the later events", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  HttpReply b = CreateVolume(client, "vol-b");
  const std::string rv = b.Str("/metadata/resourceVersion");
  REQUIRE(client.Patch(VolumePath("vol-a"), R"({"metadata":{"labels":{"x":"1"}}})").status == 200);
  CreateVolume(client, "vol-c");
  REQUIRE(client.Delete(VolumePath("vol-b")).status == 200);
  // Writes to other resources do not show up in this watch.
  REQUIRE(client
              .Post("/api/v1/namespaces/default/configmaps",
                    R"({"metadata":{"name":"cm"},"data":{"a":"b"}})")
              .status == 201);

  WatchStream watch(server->url(), fmt::format("{}?watch=1&resourceVersion={}", kVolumes, rv));
  REQUIRE(watch.WaitForEvents(3) == 3);
  CHECK(watch.Event(0).type == "MODIFIED");
  CHECK(watch.Event(0).name == "vol-a");
  CHECK(watch.Event(1).type == "ADDED");
  CHECK(watch.Event(1).name == "vol-c");
  CHECK(watch.Event(2).type == "DELETED");
  CHECK(watch.Event(2).name == "vol-b");

  CreateVolume(client, "vol-d");
  REQUIRE(watch.WaitForEvents(4) == 4);
  CHECK(watch.Event(3).type == "ADDED");
  CHECK(watch.Event(3).name == "vol-d");
  CHECK(watch.Event(3).object["apiVersion"] == "csi.meshstor.io/v1alpha1");
}

TEST_CASE("A watch without resourceVersion starts with ADDED for every object",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  CreateVolume(client, "vol-b");
  for (const char* rv : {"", "&resourceVersion=0"}) {
    WatchStream watch(server->url(), fmt::format("{}?watch=true{}", kVolumes, rv));
    REQUIRE(watch.WaitForEvents(2) == 2);
    CHECK(watch.Event(0).type == "ADDED");
    CHECK(watch.Event(0).name == "vol-a");
    CHECK(watch.Event(1).name == "vol-b");
  }
}

TEST_CASE("A watch from a compacted resourceVersion gets 410 Expired", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply a = CreateVolume(client, "vol-a");
  CreateVolume(client, "vol-b");
  const int64_t compacted = server->faults().CompactHistory();

  WatchStream watch(server->url(), fmt::format("{}?watch=true&resourceVersion={}", kVolumes,
                                               a.Str("/metadata/resourceVersion")));
  REQUIRE(watch.WaitForEvents(1) == 1);
  REQUIRE(watch.WaitForEnd());
  CHECK(watch.http_status() == 200);
  CHECK(watch.EndedCleanly());
  testing::WatchEvent event = watch.Event(0);
  CHECK(event.type == "ERROR");
  CHECK(event.object["kind"] == "Status");
  CHECK(event.object["code"].GetInt() == 410);
  CHECK(event.object["reason"] == "Expired");
  CHECK(std::string(event.object["message"].GetString()) ==
        fmt::format("too old resource version: {} ({})", a.Str("/metadata/resourceVersion"),
                    compacted));

  // From the compaction point on, watches work again.
  WatchStream fresh(server->url(),
                    fmt::format("{}?watch=true&resourceVersion={}", kVolumes, compacted));
  CreateVolume(client, "vol-c");
  REQUIRE(fresh.WaitForEvents(1) == 1);
  CHECK(fresh.Event(0).type == "ADDED");
  CHECK(fresh.Event(0).name == "vol-c");
}

TEST_CASE("Old resourceVersions expire once they fall out of the history window",
          "[unit][apiserver]") {
  TestApiServer::Options options;
  options.watch_history_size = 2;
  auto server = StartServer(options);
  TestClient client(server->url());
  HttpReply a = CreateVolume(client, "vol-a");
  for (const char* name : {"vol-b", "vol-c", "vol-d"}) CreateVolume(client, name);
  WatchStream watch(server->url(), fmt::format("{}?watch=true&resourceVersion={}", kVolumes,
                                               a.Str("/metadata/resourceVersion")));
  REQUIRE(watch.WaitForEvents(1) == 1);
  CHECK(watch.Event(0).type == "ERROR");
}

TEST_CASE("Bookmarks carry only kind, apiVersion and the resourceVersion", "[unit][apiserver]") {
  TestApiServer::Options options;
  options.bookmark_interval = std::chrono::milliseconds(50);
  auto server = StartServer(options);
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  WatchStream watch(server->url(), fmt::format("{}?watch=true&allowWatchBookmarks=true&"
                                               "resourceVersion={}",
                                               kVolumes, server->ResourceVersion()));
  REQUIRE(watch.WaitForEvents(1) == 1);
  testing::WatchEvent bookmark = watch.Event(0);
  CHECK(bookmark.type == "BOOKMARK");
  CHECK(bookmark.raw ==
        fmt::format(R"({{"kind":"MeshStorVolume","apiVersion":"csi.meshstor.io/v1alpha1",)"
                    R"("metadata":{{"resourceVersion":"{}"}}}})",
                    server->ResourceVersion()));

  // Without allowWatchBookmarks there are none.
  WatchStream plain(server->url(), fmt::format("{}?watch=true&resourceVersion={}&timeoutSeconds=1",
                                               kVolumes, server->ResourceVersion()));
  REQUIRE(plain.WaitForEnd());
  CHECK(plain.EventCount() == 0);
  CHECK(plain.EndedCleanly());
}

TEST_CASE("timeoutSeconds ends a watch cleanly", "[unit][apiserver]") {
  auto server = StartServer();
  WatchStream watch(server->url(), fmt::format("{}?watch=true&timeoutSeconds=1", kVolumes));
  REQUIRE(watch.WaitForEnd(std::chrono::seconds(5)));
  CHECK(watch.EndedCleanly());
  CHECK(watch.http_status() == 200);
}

TEST_CASE("Label and field selectors filter lists", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a", R"(,"labels":{"tier":"gold","zone":"a"})");
  CreateVolume(client, "vol-b", R"(,"labels":{"tier":"silver","zone":"b"})");
  CreateVolume(client, "vol-c", R"(,"labels":{"zone":"c"})");

  auto names = [&](const std::string& query) {
    HttpReply reply = client.Get(std::string(kVolumes) + "?" + query);
    INFO(query << " -> " << reply.body);
    REQUIRE(reply.status == 200);
    std::vector<std::string> out;
    for (const auto& item : reply.json["items"].GetArray()) {
      out.push_back(item["metadata"]["name"].GetString());
    }
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names("labelSelector=tier%3Dgold") == V{"vol-a"});
  CHECK(names("labelSelector=tier%3D%3Dgold") == V{"vol-a"});
  CHECK(names("labelSelector=tier!%3Dgold") == V{"vol-b", "vol-c"});
  CHECK(names("labelSelector=tier%20in%20(gold,silver)") == V{"vol-a", "vol-b"});
  CHECK(names("labelSelector=tier%20notin%20(gold)") == V{"vol-b", "vol-c"});
  CHECK(names("labelSelector=tier") == V{"vol-a", "vol-b"});
  CHECK(names("labelSelector=!tier") == V{"vol-c"});
  CHECK(names("labelSelector=tier,zone%3Db") == V{"vol-b"});
  CHECK(names("fieldSelector=metadata.name%3Dvol-b") == V{"vol-b"});
  CHECK(names("fieldSelector=metadata.name!%3Dvol-b") == V{"vol-a", "vol-c"});
  CHECK(names("fieldSelector=metadata.name%3D%3Dvol-c,metadata.namespace%3D") == V{"vol-c"});

  HttpReply bad_label = client.Get(std::string(kVolumes) + "?labelSelector=tier%20in%20(gold");
  CHECK(bad_label.status == 400);
  CHECK(bad_label.Str("/reason") == "BadRequest");
  HttpReply bad_field = client.Get(std::string(kVolumes) + "?fieldSelector=spec.x%3Dy");
  CHECK(bad_field.status == 400);
  CHECK(bad_field.Str("/message") == "field label not supported: spec.x");
}

TEST_CASE("A watch with a selector sees objects enter and leave the selection",
          "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a", R"(,"labels":{"tier":"gold"})");
  CreateVolume(client, "vol-b");
  WatchStream watch(server->url(),
                    fmt::format("{}?watch=true&labelSelector=tier%3Dgold", kVolumes));
  REQUIRE(watch.WaitForEvents(1) == 1);
  CHECK(watch.Event(0).type == "ADDED");
  CHECK(watch.Event(0).name == "vol-a");

  REQUIRE(client.Patch(VolumePath("vol-b"), R"({"metadata":{"labels":{"tier":"gold"}}})").status ==
          200);
  REQUIRE(
      client.Patch(VolumePath("vol-a"), R"({"metadata":{"labels":{"tier":"bronze"}}})").status ==
      200);
  REQUIRE(client.Patch(VolumePath("vol-a"), R"({"spec":{"consumerNode":"n"}})").status == 200);
  REQUIRE(client.Patch(VolumePath("vol-b"), R"({"spec":{"consumerNode":"n"}})").status == 200);
  REQUIRE(watch.WaitForEvents(4) == 4);
  CHECK(watch.Event(1).type == "ADDED");
  CHECK(watch.Event(1).name == "vol-b");
  CHECK(watch.Event(2).type == "DELETED");
  CHECK(watch.Event(2).name == "vol-a");
  CHECK(watch.Event(3).type == "MODIFIED");
  CHECK(watch.Event(3).name == "vol-b");

  WatchStream by_name(server->url(), fmt::format("{}?watch=true&fieldSelector=metadata.name%3D"
                                                 "vol-b",
                                                 kVolumes));
  REQUIRE(by_name.WaitForEvents(1) == 1);
  CHECK(by_name.Event(0).name == "vol-b");
}

TEST_CASE("Paged lists are consistent at the first page's resourceVersion", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  for (const char* name : {"vol-a", "vol-b", "vol-c", "vol-d", "vol-e"}) {
    CreateVolume(client, name);
  }
  HttpReply page1 = client.Get(std::string(kVolumes) + "?limit=2");
  REQUIRE(page1.status == 200);
  REQUIRE(page1.json["items"].Size() == 2);
  const std::string list_rv = page1.Str("/metadata/resourceVersion");
  std::string token = page1.Str("/metadata/continue");
  REQUIRE(!token.empty());
  CHECK(page1.Int("/metadata/remainingItemCount") == 3);

  // Changes after the first page do not show up in the later pages.
  REQUIRE(client.Delete(VolumePath("vol-d")).status == 200);
  CreateVolume(client, "vol-f");
  REQUIRE(client.Patch(VolumePath("vol-c"), R"({"metadata":{"labels":{"late":"yes"}}})").status ==
          200);

  std::vector<std::string> names = {page1.json["items"][0]["metadata"]["name"].GetString(),
                                    page1.json["items"][1]["metadata"]["name"].GetString()};
  int pages = 1;
  while (!token.empty()) {
    HttpReply page = client.Get(std::string(kVolumes) + "?limit=2&continue=" + token);
    REQUIRE(page.status == 200);
    CHECK(page.Str("/metadata/resourceVersion") == list_rv);
    for (const auto& item : page.json["items"].GetArray()) {
      names.push_back(item["metadata"]["name"].GetString());
      CHECK(!item["metadata"].HasMember("labels"));
    }
    token = page.Str("/metadata/continue");
    ++pages;
  }
  CHECK(pages == 3);
  CHECK(names == std::vector<std::string>{"vol-a", "vol-b", "vol-c", "vol-d", "vol-e"});

  HttpReply bad = client.Get(std::string(kVolumes) + "?limit=2&continue=garbage!");
  CHECK(bad.status == 400);
  server->faults().CompactHistory();
  HttpReply expired =
      client.Get(std::string(kVolumes) + "?limit=2&continue=" + page1.Str("/metadata/continue"));
  CHECK(expired.status == 410);
  CHECK(expired.Str("/reason") == "Expired");
  CHECK(!expired.Str("/metadata/continue").empty());
}

TEST_CASE("Injected faults fail the next requests, then the server recovers", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  CreateVolume(client, "vol-a");

  SECTION("500 then success") {
    server->faults().FailNext("GET", "/apis/csi.meshstor.io", 500, 2);
    HttpReply first = client.Get(VolumePath("vol-a"));
    CHECK(first.status == 500);
    CHECK(first.Str("/reason") == "InternalError");
    CHECK(first.Str("/kind") == "Status");
    CHECK(client.Get(VolumePath("vol-a")).status == 500);
    CHECK(client.Get(VolumePath("vol-a")).status == 200);
    // Other methods and paths were never affected.
    CHECK(server->faults().Rules().empty());
  }
  SECTION("429 with Retry-After") {
    server->faults().FailNext("", "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes", 429, 1, 3);
    HttpReply limited = client.Patch(VolumePath("vol-a"), "{}");
    CHECK(limited.status == 429);
    CHECK(limited.retry_after == "3");
    CHECK(limited.Str("/reason") == "TooManyRequests");
    CHECK(limited.Int("/details/retryAfterSeconds") == 3);
    CHECK(client.Patch(VolumePath("vol-a"), "{}").status == 200);
  }
  SECTION("delay") {
    server->faults().Delay("GET", VolumePath("vol-a"), std::chrono::milliseconds(300), 1);
    auto start = std::chrono::steady_clock::now();
    CHECK(client.Get(VolumePath("vol-a")).status == 200);
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));
  }
  SECTION("over HTTP under /testing/") {
    HttpReply added = client.Post(
        "/testing/faults", R"({"method":"GET","pathPrefix":"/apis/","status":503,"times":1})");
    REQUIRE(added.status == 201);
    CHECK(client.Get("/testing/faults").json["items"].Size() == 1);
    CHECK(client.Get(VolumePath("vol-a")).status == 503);
    CHECK(client.Get(VolumePath("vol-a")).status == 200);
    HttpReply log = client.Get("/testing/requests?method=GET&pathPrefix=/apis/");
    CHECK(log.Int("/count") == 2);
    CHECK(server->faults().RequestCount("POST", kVolumes) == 1);
    CHECK(client.Delete("/testing/requests").status == 200);
    CHECK(server->faults().Requests().empty());
    HttpReply compact = client.Post("/testing/compact", "");
    CHECK(compact.Str("/resourceVersion") == std::to_string(server->ResourceVersion()));
  }
}

TEST_CASE("The request log keeps the newest requests in order once full", "[unit][apiserver]") {
  TestApiServer::Options options;
  options.request_log_size = 5;
  auto server = StartServer(options);
  TestClient client(server->url());
  for (int i = 0; i < 8; ++i) client.Get(fmt::format("/api/v1/nodes/node-{}", i));
  std::vector<RequestRecord> log = server->faults().Requests();
  REQUIRE(log.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(log[i].path == fmt::format("/api/v1/nodes/node-{}", i + 3));
  HttpReply listed = client.Get("/testing/requests");
  CHECK(listed.Int("/count") == 5);
  CHECK(listed.Str("/items/0/path") == "/api/v1/nodes/node-3");
  CHECK(listed.Str("/items/4/path") == "/api/v1/nodes/node-7");
}

// A full log of the default size drops its oldest entry (a ring: O(1) per request, where a
// vector erased at the front moved 100000 entries each time; docs/benchmarks.md has the numbers).
TEST_CASE("A full request log of the default size keeps the newest entries", "[unit][apiserver]") {
  auto server = StartServer();
  const size_t cap = FaultInjector::kDefaultRequestLogSize;
  for (size_t i = 0; i < cap + 50000; ++i) {
    server->faults().Record({"GET", "/api/v1/nodes/n" + std::to_string(i), "", 200});
  }
  std::vector<RequestRecord> log = server->faults().Requests();
  REQUIRE(log.size() == cap);
  CHECK(log.front().path == "/api/v1/nodes/n50000");
  CHECK(log.back().path == "/api/v1/nodes/n" + std::to_string(cap + 49999));
}

// The server sets TCP_NODELAY, as kube-apiserver does. Without it every response on a kept-alive
// connection stalls ~40 ms (cpp-httplib writes headers and body separately; Nagle holds the body
// until the client's delayed ACK), so timings against the server are ~40x too slow. The server
// runs in this process: its accepted socket is one of our descriptors, and its option is read
// directly.
TEST_CASE("Accepted connections have TCP_NODELAY set", "[unit][apiserver]") {
  auto server = StartServer();
  httplib::Client client(server->url());
  client.set_keep_alive(true);
  REQUIRE(client.Get("/version"));  // connected and kept open
  int accepted = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = std::stoi(entry.path().filename().string());
    sockaddr_in local{};
    sockaddr_in peer{};
    socklen_t len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != server->port()) {
      continue;
    }
    len = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;  // listener
    int nodelay = 0;
    len = sizeof(nodelay);
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
    CHECK(nodelay != 0);
    ++accepted;
  }
  CHECK(accepted >= 1);
}

TEST_CASE("Dropping watches closes their streams abruptly", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  WatchStream a(server->url(), fmt::format("{}?watch=true", kVolumes));
  WatchStream b(server->url(), fmt::format("{}?watch=true", kDevices));
  CreateVolume(client, "vol-a");
  REQUIRE(a.WaitForEvents(1) == 1);
  // b has no event to wait for: its watch is registered once the server counts it (under load
  // it was not yet when the drop came, and the drop closed 1 stream).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server->WatchCount() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(server->WatchCount() == 2);  // both streams are established
  HttpReply dropped = client.Post("/testing/drop-watches", "");
  CHECK(dropped.Int("/dropped") == 2);
  REQUIRE(a.WaitForEnd());
  REQUIRE(b.WaitForEnd());
  CHECK(!a.EndedCleanly());
  CHECK(!b.EndedCleanly());
  CHECK(client.Get(kVolumes).status == 200);
}

TEST_CASE("Many concurrent watches do not block other requests", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < 24; ++i) {
    watches.push_back(
        std::make_unique<WatchStream>(server->url(), fmt::format("{}?watch=true", kVolumes)));
  }
  CreateVolume(client, "vol-a");
  for (auto& w : watches) {
    REQUIRE(w->WaitForEvents(1) >= 1);
    CHECK(w->Event(0).name == "vol-a");
  }
  CHECK(server->WatchCount() == 24);
}

TEST_CASE("Stop ends every watch stream promptly", "[unit][apiserver]") {
  auto server = StartServer();
  WatchStream watch(server->url(), fmt::format("{}?watch=true", kVolumes));
  TestClient client(server->url());
  CreateVolume(client, "vol-a");
  REQUIRE(watch.WaitForEvents(1) == 1);
  auto start = std::chrono::steady_clock::now();
  server->Stop();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  REQUIRE(watch.WaitForEnd(std::chrono::seconds(2)));
  CHECK(client.Get(kVolumes).status == 0);
}

TEST_CASE("Unknown resources and paths are 404 Status", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  for (const char* path :
       {"/apis/csi.meshstor.io/v1alpha1/nothings", "/apis/nope.io/v1/things", "/api/v2/pods",
        "/api/v1/pods", "/openapi/v2", "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/x/scale",
        "/api/v1/namespaces/default/nodes"}) {
    HttpReply reply = client.Get(path);
    INFO(path);
    CHECK(reply.status == 404);
    CHECK(reply.Str("/kind") == "Status");
    CHECK(reply.Str("/reason") == "NotFound");
    CHECK(reply.Str("/message") == "the server could not find the requested resource");
  }
}

TEST_CASE("Discovery documents have the shapes kubectl reads", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply api = client.Get("/api");
  REQUIRE(api.status == 200);
  CHECK(api.Str("/kind") == "APIVersions");
  CHECK(api.Str("/versions/0") == "v1");

  HttpReply core = client.Get("/api/v1");
  REQUIRE(core.status == 200);
  CHECK(core.Str("/kind") == "APIResourceList");
  CHECK(core.Str("/groupVersion") == "v1");
  std::set<std::string> core_names;
  for (const auto& r : core.json["resources"].GetArray()) core_names.insert(r["name"].GetString());
  for (const char* n :
       {"namespaces", "namespaces/status", "nodes", "nodes/status", "configmaps", "events"}) {
    CHECK(core_names.count(n) == 1);
  }

  HttpReply groups = client.Get("/apis");
  REQUIRE(groups.status == 200);
  CHECK(groups.Str("/kind") == "APIGroupList");
  std::set<std::string> group_names;
  for (const auto& g : groups.json["groups"].GetArray()) {
    group_names.insert(g["name"].GetString());
    CHECK(g["preferredVersion"]["groupVersion"].IsString());
    CHECK(g["versions"].Size() >= 1);
  }
  CHECK(group_names == std::set<std::string>{"apiextensions.k8s.io", "coordination.k8s.io",
                                             "csi.meshstor.io", "events.k8s.io"});

  HttpReply group = client.Get("/apis/csi.meshstor.io");
  CHECK(group.Str("/kind") == "APIGroup");
  CHECK(group.Str("/preferredVersion/version") == "v1alpha1");

  HttpReply list = client.Get("/apis/csi.meshstor.io/v1alpha1");
  REQUIRE(list.status == 200);
  CHECK(list.Str("/groupVersion") == "csi.meshstor.io/v1alpha1");
  bool found_main = false;
  bool found_status = false;
  for (const auto& r : list.json["resources"].GetArray()) {
    std::string name = r["name"].GetString();
    if (name == "meshstorvolumes") {
      found_main = true;
      CHECK(std::string(r["kind"].GetString()) == "MeshStorVolume");
      CHECK(std::string(r["singularName"].GetString()) == "meshstorvolume");
      CHECK(r["namespaced"].GetBool() == false);
      CHECK(std::string(r["shortNames"][0].GetString()) == "msvol");
      CHECK(std::string(r["categories"][0].GetString()) == "meshstor");
      std::set<std::string> verbs;
      for (const auto& v : r["verbs"].GetArray()) verbs.insert(v.GetString());
      CHECK(verbs == std::set<std::string>{"create", "delete", "deletecollection", "get", "list",
                                           "patch", "update", "watch"});
    }
    if (name == "meshstorvolumes/status") found_status = true;
  }
  CHECK(found_main);
  CHECK(found_status);

  HttpReply version = client.Get("/version");
  CHECK(version.Str("/major") == "1");
  CHECK(!version.Str("/gitVersion").empty());
  CHECK(client.Get("/healthz").body == "ok");
  CHECK(client.Get("/readyz").status == 200);
}

constexpr char kWidgetCrd[] = R"({
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.example.com"},
  "spec": {"group": "example.com", "scope": "Namespaced",
    "names": {"plural": "widgets", "kind": "Widget"},
    "versions": [{"name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
          "size": {"type": "integer", "minimum": 1, "default": 3},
          "color": {"type": "string", "enum": ["red", "blue"]}}}}}}}]}})";

TEST_CASE("CRDs created through the API are established and served", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  const std::string crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  HttpReply created = client.Post(crds, kWidgetCrd);
  INFO(created.body);
  REQUIRE(created.status == 201);
  std::map<std::string, std::string> conditions;
  for (const auto& c : created.json["status"]["conditions"].GetArray()) {
    conditions[c["type"].GetString()] = c["status"].GetString();
  }
  CHECK(conditions["Established"] == "True");
  CHECK(conditions["NamesAccepted"] == "True");
  CHECK(created.Str("/status/acceptedNames/listKind") == "WidgetList");
  CHECK(created.Str("/spec/names/singular") == "widget");

  const std::string widgets = "/apis/example.com/v1/namespaces/default/widgets";
  HttpReply widget = client.Post(
      widgets, R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},)"
               R"("spec":{"color":"red","unknown":1}})");
  REQUIRE(widget.status == 201);
  CHECK(widget.Int("/spec/size") == 3);  // defaulted
  CHECK(!widget.Has("/spec/unknown"));   // pruned
  CHECK(widget.Str("/metadata/namespace") == "default");
  HttpReply bad = client.Post(
      widgets, R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},)"
               R"("spec":{"color":"green"}})");
  CHECK(bad.status == 422);
  CHECK(bad.Str("/message") ==
        "Widget.example.com \"w2\" is invalid: spec.color: Unsupported value: \"green\": "
        "supported values: \"red\", \"blue\"");
  CHECK(client.Get("/apis/example.com/v1/widgets").json["items"].Size() == 1);
  CHECK(client
            .Post("/apis/example.com/v1/namespaces/missing/widgets",
                  R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}})")
            .status == 404);

  HttpReply deleted = client.Delete(crds + "/widgets.example.com");
  CHECK(deleted.status == 200);
  CHECK(client.Get(crds + "/widgets.example.com").status == 404);
  CHECK(client.Get(widgets).status == 404);
  CHECK(client.Get("/apis/example.com/v1").status == 404);
}

TEST_CASE("Deleting a CRD waits for instance finalizers", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  const std::string crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  REQUIRE(client.Post(crds, kWidgetCrd).status == 201);
  const std::string widgets = "/apis/example.com/v1/namespaces/default/widgets";
  REQUIRE(client
              .Post(widgets, R"({"apiVersion":"example.com/v1","kind":"Widget",)"
                             R"("metadata":{"name":"w","finalizers":["example.com/f"]}})")
              .status == 201);
  HttpReply deleting = client.Delete(crds + "/widgets.example.com");
  REQUIRE(deleting.status == 200);
  CHECK(deleting.Str("/metadata/finalizers/0") == "customresourcecleanup.apiextensions.k8s.io");
  CHECK(!client.Get(widgets + "/w").Str("/metadata/deletionTimestamp").empty());
  CHECK(client
            .Post(widgets, R"({"apiVersion":"example.com/v1","kind":"Widget",)"
                           R"("metadata":{"name":"w2"}})")
            .status == 405);
  REQUIRE(client.Patch(widgets + "/w", R"({"metadata":{"finalizers":null}})").status == 200);
  CHECK(client.Get(crds + "/widgets.example.com").status == 404);
}

TEST_CASE("CRDs with rules the server cannot enforce are refused", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  std::string crd = kWidgetCrd;
  crd.replace(crd.find(R"("minimum": 1,)"), 13,
              R"("minimum": 1, "x-kubernetes-validations": [{"rule": "self > 2"}],)");
  HttpReply reply = client.Post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
  CHECK(reply.status == 422);
  CHECK(reply.Str("/message").find("enforces only the rules") != std::string::npos);
  CHECK(reply.Str("/message").find("properties[size].x-kubernetes-validations[0].rule") !=
        std::string::npos);
}

TEST_CASE("Namespaced built-in resources follow kube-apiserver", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  const std::string cms = "/api/v1/namespaces/default/configmaps";
  HttpReply cm = client.Post(cms, R"({"metadata":{"name":"c"},"data":{"k":"v"}})");
  REQUIRE(cm.status == 201);
  CHECK(cm.Str("/kind") == "ConfigMap");
  CHECK(cm.Str("/apiVersion") == "v1");
  CHECK(!cm.Has("/metadata/generation"));
  // Built-in types allow unconditional updates.
  HttpReply put = client.Put(cms + "/c", R"({"metadata":{"name":"c"},"data":{"k":"w"}})");
  CHECK(put.status == 200);
  CHECK(put.Str("/data/k") == "w");
  CHECK(client.Post("/api/v1/namespaces/nope/configmaps", R"({"metadata":{"name":"c"}})")
            .Str("/message") == "namespaces \"nope\" not found");
  HttpReply mismatch = client.Post(cms, R"({"metadata":{"name":"d","namespace":"kube-system"}})");
  CHECK(mismatch.status == 400);

  // Leases are created by PUT, as leader election does.
  const std::string lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/op";
  HttpReply created =
      client.Put(lease, R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",)"
                        R"("metadata":{"name":"op"},"spec":{"holderIdentity":"a"}})");
  CHECK(created.status == 201);
  CHECK(client.Put("/api/v1/nodes/n1", R"({"metadata":{"name":"n1"}})").status == 404);
  REQUIRE(client.Post("/api/v1/nodes", R"({"metadata":{"name":"n1","labels":{"a":"b"}}})").status ==
          201);
  REQUIRE(client.Post("/api/v1/namespaces/kube-system/configmaps", R"({"metadata":{"name":"c"}})")
              .status == 201);
  HttpReply all = client.Get("/api/v1/configmaps");
  REQUIRE(all.status == 200);
  CHECK(all.json["items"].Size() == 2);
  HttpReply ns_only = client.Get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Ddefault");
  CHECK(ns_only.json["items"].Size() == 1);

  HttpReply bad_label = client.Post(cms, R"({"metadata":{"name":"e","labels":{"a":"-bad"}}})");
  CHECK(bad_label.status == 422);
  CHECK(bad_label.Str("/details/causes/0/field") == "metadata.labels");
  HttpReply bad_name = client.Post(cms, R"({"metadata":{"name":"Upper"}})");
  CHECK(bad_name.status == 422);
  CHECK(bad_name.Str("/message").find("a lowercase RFC 1123 subdomain") != std::string::npos);
}

TEST_CASE("Deleting a namespace deletes what is in it", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  REQUIRE(client.Post("/api/v1/namespaces", R"({"metadata":{"name":"team"}})").status == 201);
  REQUIRE(
      client.Post("/api/v1/namespaces/team/configmaps", R"({"metadata":{"name":"c"}})").status ==
      201);
  HttpReply deleted = client.Delete("/api/v1/namespaces/team");
  CHECK(deleted.status == 200);
  CHECK(client.Get("/api/v1/namespaces/team").status == 404);
  CHECK(client.Get("/api/v1/namespaces/team/configmaps/c").status == 404);
  CHECK(client.Delete("/api/v1/namespaces/default").status == 403);
}

TEST_CASE("YAML request bodies are accepted", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  HttpReply reply = client.Post("/api/v1/namespaces/default/configmaps",
                                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n"
                                "  a: b\n",
                                "application/yaml");
  CHECK(reply.status == 201);
  CHECK(reply.Str("/data/a") == "b");
}

TEST_CASE("Start fails clearly on bad options", "[unit][apiserver]") {
  TestApiServer::Options options;
  options.crd_dir = "/nonexistent/crds";
  CHECK(TestApiServer::Start(options).status().code() == common::StatusCode::kInvalidArgument);
  options.crd_dir.clear();
  options.tls_cert_file = "/nonexistent/cert.pem";
  CHECK(TestApiServer::Start(options).status().code() == common::StatusCode::kInvalidArgument);
  options.tls_key_file = "/nonexistent/key.pem";
  CHECK(TestApiServer::Start(options).status().code() == common::StatusCode::kInvalidArgument);
  options = {};
  options.crd_files = {SourceDir() + "/crds/examples/valid/volume-new.yaml"};
  auto not_crd = TestApiServer::Start(options);
  CHECK(not_crd.status().message().find("not a CustomResourceDefinition") != std::string::npos);
}

TEST_CASE("HTTPS with a given certificate and key", "[unit][apiserver]") {
  TestApiServer::Options options;
  options.tls_cert_file = SourceDir() + "/tools/apiserver/testdata/server.crt";
  options.tls_key_file = SourceDir() + "/tools/apiserver/testdata/server.key";
  auto server = StartServer(options);
  REQUIRE(server->url().rfind("https://127.0.0.1:", 0) == 0);
  httplib::SSLClient client("127.0.0.1", server->port());
  client.set_ca_cert_path(options.tls_cert_file.c_str());
  client.enable_server_certificate_verification(true);
  auto result = client.Get("/api/v1/namespaces/default");
  REQUIRE(result);
  CHECK(result->status == 200);

  httplib::Client plain(fmt::format("http://127.0.0.1:{}", server->port()));
  auto refused = plain.Get("/api/v1/namespaces/default");
  CHECK((!refused || refused->status != 200));
}

}  // namespace
}  // namespace tools::apiserver
