// Every crds/examples/valid file is accepted (and its status through the status subresource);
// every crds/examples/invalid file is rejected with a message containing its `# expect-error:`
// text, applied the way its header says (see crds/examples/invalid/README.md and
// tools/check-crds-live.sh, which does the same against a real cluster).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/config/yaml_json.h"
#include "tools/apiserver/test_apiserver.h"
#include "tools/apiserver/test_client.h"

namespace tools::apiserver {
namespace {

using testing::HttpReply;
using testing::SourceDir;
using testing::TestClient;

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The value of a `# key: value` header comment, or "".
std::string Header(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  const std::string prefix = "# " + key + ": ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return {};
}

struct Example {
  rapidjson::Document doc;
  std::string name;
  std::string collection;  // REST path of the collection
};

Example Load(const std::string& file) {
  common::Result<std::string> json = common::config::YamlFileToJson(file);
  INFO(file);
  REQUIRE(json.ok());
  Example e;
  e.doc.Parse(json->c_str());
  REQUIRE(e.doc.IsObject());
  e.name = e.doc["metadata"]["name"].GetString();
  const std::string kind = e.doc["kind"].GetString();
  REQUIRE((kind == "MeshStorVolume" || kind == "MeshStorNodeDevice"));
  e.collection = kind == "MeshStorVolume" ? "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes"
                                          : "/apis/csi.meshstor.io/v1alpha1/meshstornodedevices";
  return e;
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  v.Accept(w);
  return buffer.GetString();
}

// What `kubectl replace` sends: the file with the stored object's resourceVersion.
std::string WithResourceVersion(Example& e, TestClient& client) {
  HttpReply current = client.Get(e.collection + "/" + e.name);
  REQUIRE(current.status == 200);
  const std::string rv = current.Str("/metadata/resourceVersion");
  rapidjson::Value value(rv.c_str(), e.doc.GetAllocator());
  rapidjson::Value& meta = e.doc["metadata"];
  if (meta.HasMember("resourceVersion")) meta.RemoveMember("resourceVersion");
  meta.AddMember("resourceVersion", value, e.doc.GetAllocator());
  return Serialize(e.doc);
}

std::unique_ptr<TestApiServer> StartServer() {
  TestApiServer::Options options;
  options.crd_dir = SourceDir() + "/crds";
  auto server = TestApiServer::Start(options);
  REQUIRE(server.ok());
  return std::move(server).value();
}

TEST_CASE("Every valid CRD example is accepted, status included", "[unit][apiserver]") {
  auto server = StartServer();
  TestClient client(server->url());
  const std::vector<std::string> files = Files(SourceDir() + "/crds/examples/valid");
  REQUIRE(files.size() >= 6);
  for (const std::string& file : files) {
    INFO(file);
    Example e = Load(file);
    HttpReply created = client.Post(e.collection, Serialize(e.doc));
    INFO(created.body);
    REQUIRE(created.status == 201);
    CHECK(Serialize(created.json["spec"]) == Serialize(e.doc["spec"]));
    if (!e.doc.HasMember("status")) continue;
    HttpReply status =
        client.Put(e.collection + "/" + e.name + "/status", WithResourceVersion(e, client));
    INFO(status.body);
    REQUIRE(status.status == 200);
    CHECK(Serialize(status.json["status"]) == Serialize(e.doc["status"]));
  }
}

TEST_CASE("Every invalid CRD example is rejected with the expected message", "[unit][apiserver]") {
  const std::vector<std::string> files = Files(SourceDir() + "/crds/examples/invalid");
  REQUIRE(files.size() >= 16);
  for (const std::string& file : files) {
    INFO(file);
    const std::string expect = Header(file, "expect-error");
    const std::string base = Header(file, "update-of");
    const std::string subresource = Header(file, "subresource");
    REQUIRE(!expect.empty());
    auto server = StartServer();  // a fresh server per example keeps them independent
    TestClient client(server->url());
    Example e = Load(file);
    HttpReply reply;
    if (base.empty()) {
      reply = client.Post(e.collection, Serialize(e.doc));
    } else {
      Example valid = Load(SourceDir() + "/crds/examples/valid/" + base);
      REQUIRE(client.Post(valid.collection, Serialize(valid.doc)).status == 201);
      std::string path = e.collection + "/" + e.name;
      if (!subresource.empty()) path += "/" + subresource;
      reply = client.Put(path, WithResourceVersion(e, client));
    }
    INFO(reply.body);
    CHECK(reply.status == 422);
    CHECK(reply.Str("/reason") == "Invalid");
    CHECK(reply.Str("/message").find(expect) != std::string::npos);
    CHECK(reply.json["details"]["causes"].Size() >= 1);
  }
}

}  // namespace
}  // namespace tools::apiserver
