#include "common/kube/client.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "common/kube/http_transport.h"
#include "common/kube/kubeconfig.h"
#include "common/kube/resource.h"
#include "common/status/status.h"

namespace common::kube {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// An httplib server on 127.0.0.1 whose every request gets the scripted response, and which
// records what it received. Register extra handlers before Start().
class ScriptedServer {
 public:
  struct Seen {
    std::string method;
    std::string path;
    std::string content_type;
    std::string body;
    httplib::Params params;
  };

  ScriptedServer() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(
          {req.method, req.path, req.get_header_value("Content-Type"), req.body, req.params});
      if (script_) {
        script_(req, res);
        return;
      }
      res.status = status_;
      res.set_content(body_, content_type_);
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Patch(".*", handler);
    server_.Delete(".*", handler);
  }
  ~ScriptedServer() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

  void Respond(int status, std::string body, std::string content_type = "application/json") {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    body_ = std::move(body);
    content_type_ = std::move(content_type);
  }
  void Script(std::function<void(const httplib::Request&, httplib::Response&)> script) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(script);
  }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

  void Start() {
    server_.set_tcp_nodelay(true);
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const auto deadline = SteadyClock::now() + 5s;
    while (!server_.is_running() && SteadyClock::now() < deadline) std::this_thread::yield();
    REQUIRE(server_.is_running());
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  int status_ = 200;
  std::string body_ = "{}";
  std::string content_type_ = "application/json";
  std::function<void(const httplib::Request&, httplib::Response&)> script_;
  std::vector<Seen> seen_;
};

// A server, a transport to it and a client over that transport.
struct Fixture {
  ScriptedServer server;
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<Client> client;

  Fixture() {
    server.Start();
    RestConfig config;
    config.server = server.Url();
    Result<std::unique_ptr<HttpTransport>> t = HttpTransport::Create(config);
    REQUIRE(t.ok());
    transport = std::move(t).value();
    client = std::make_unique<Client>(*transport, 5s);
  }
};

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"" +
         message + "\",\"reason\":\"" + reason + "\",\"code\":" + std::to_string(code) + "}";
}

std::string FieldOf(const std::string& json, const char* a, const char* b = nullptr) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember(a)) return "<none>";
  const rapidjson::Value* v = &doc[a];
  if (b != nullptr) {
    if (!v->IsObject() || !v->HasMember(b)) return "<none>";
    v = &(*v)[b];
  }
  return v->IsString() ? v->GetString() : "<not a string>";
}

ListOptions Paged(int64_t limit, std::string resource_version = "") {
  ListOptions options;
  options.limit = limit;
  options.resource_version = std::move(resource_version);
  return options;
}

WatchOptions From(std::string resource_version) {
  WatchOptions options;
  options.resource_version = std::move(resource_version);
  return options;
}

const ObjectKey kVolume{"", "vol-1"};
const ObjectKey kLease{"meshstor-system", "operator"};

// ---- errors
// --------------------------------------------------------------------------------------

TEST_CASE("Client maps API errors to Status codes and keeps the server's message", "[unit][kube]") {
  Fixture f;
  struct Case {
    const char* name;
    const char* verb;
    int http;
    std::string reason;
    StatusCode code;
  };
  const Case cases[] = {
      {"404 on get", "get", 404, "NotFound", StatusCode::kNotFound},
      {"409 on create", "create", 409, "AlreadyExists", StatusCode::kAlreadyExists},
      {"409 on update", "update", 409, "Conflict", StatusCode::kAborted},
      {"409 Conflict on create", "create", 409, "Conflict", StatusCode::kAborted},
      {"410 on list", "list", 410, "Expired", StatusCode::kOutOfRange},
      {"422 on update", "update", 422, "Invalid", StatusCode::kInvalidArgument},
      {"403 on patch", "patch", 403, "Forbidden", StatusCode::kPermissionDenied},
      {"401 on get", "get", 401, "Unauthorized", StatusCode::kUnauthenticated},
      {"429 on get", "get", 429, "TooManyRequests", StatusCode::kUnavailable},
      {"500 on delete", "delete", 500, "InternalError", StatusCode::kUnavailable},
      {"503 on create", "create", 503, "ServiceUnavailable", StatusCode::kUnavailable},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const std::string message = std::string("server says ") + c.name;
      f.server.Respond(c.http, StatusBody(c.http, c.reason, message));
      const std::string verb = c.verb;
      Status s;
      if (verb == "get") {
        s = f.client->Get(MeshStorVolumes(), kVolume).status();
      } else if (verb == "create") {
        s = f.client->Create(MeshStorVolumes(), "", "{\"metadata\":{\"name\":\"vol-1\"}}").status();
      } else if (verb == "update") {
        s = f.client->Update(MeshStorVolumes(), kVolume, "{}").status();
      } else if (verb == "list") {
        s = f.client->List(MeshStorVolumes(), "").status();
      } else if (verb == "patch") {
        s = f.client->MergePatch(MeshStorVolumes(), kVolume, "{}").status();
      } else {
        s = f.client->Delete(MeshStorVolumes(), kVolume);
      }
      INFO(s.ToString());
      CHECK(s.code() == c.code);
      CHECK(s.message() == message);
      CHECK(s.detail() == c.reason);
    }
  }
}

TEST_CASE("Client keeps non-JSON error bodies, truncated", "[unit][kube]") {
  Fixture f;
  SECTION("a proxy's HTML page") {
    f.server.Respond(502, "<html><body>Bad Gateway</body></html>\n", "text/html");
    Status s = f.client->Get(Nodes(), {"", "node-a"}).status();
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK(s.message() == "HTTP 502: <html><body>Bad Gateway</body></html>");
    CHECK(s.detail().empty());
  }
  SECTION("a long body") {
    f.server.Respond(400, std::string(10000, 'x'), "text/plain");
    Status s = f.client->Get(Nodes(), {"", "node-a"}).status();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().size() < 600);
    CHECK_THAT(s.message(), Catch::StartsWith("HTTP 400: xxxx"));
    CHECK_THAT(s.message(), Catch::Contains("(10000 bytes)"));
  }
  SECTION("an empty body") {
    f.server.Respond(504, "", "text/plain");
    Status s = f.client->Get(Nodes(), {"", "node-a"}).status();
    CHECK(s.code() == StatusCode::kDeadlineExceeded);
    CHECK(s.message() == "HTTP 504");
  }
}

TEST_CASE("StatusFromResponse reads metav1.Status bodies", "[unit][kube]") {
  Status s = StatusFromResponse(404, StatusBody(404, "NotFound", "nodes \\\"x\\\" not found"),
                                /*is_create=*/false);
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(s.message() == "nodes \"x\" not found");
  CHECK(s.detail() == "NotFound");
  // A JSON body that is not a Status is kept as text.
  Status t = StatusFromResponse(500, "{\"kind\":\"Node\"}", false);
  CHECK(t.code() == StatusCode::kUnavailable);
  CHECK(t.message() == "HTTP 500: {\"kind\":\"Node\"}");
}

TEST_CASE("Client reports transport failures with the request", "[unit][kube]") {
  RestConfig config;
  std::string url;
  {
    ScriptedServer gone;
    gone.Start();
    url = gone.Url();
  }
  config.server = url;
  Result<std::unique_ptr<HttpTransport>> t = HttpTransport::Create(config);
  REQUIRE(t.ok());
  Client client(**t, 2s);
  Status s = client.Get(Nodes(), {"", "node-a"}).status();
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK_THAT(s.message(), Catch::StartsWith("GET /api/v1/nodes/node-a: "));
  CHECK_THAT(s.message(), Catch::Contains(url));
}

TEST_CASE("Client rejects invalid names before sending anything", "[unit][kube]") {
  Fixture f;
  CHECK(f.client->Get(Nodes(), {"", ""}).status().code() == StatusCode::kInvalidArgument);
  CHECK(f.client->Get(Nodes(), {"", "a/b"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(f.client->Get(Nodes(), {"", ".."}).status().code() == StatusCode::kInvalidArgument);
  CHECK(f.client->Get(Leases(), {"", "operator"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(f.client->Create(Leases(), "", "{}").status().code() == StatusCode::kInvalidArgument);
  CHECK(f.server.seen().empty());
}

// ---- request shapes -----------------------------------------------------------------------------

TEST_CASE("Client builds paths, verbs, content types and bodies", "[unit][kube]") {
  Fixture f;
  f.server.Respond(200, "{\"kind\":\"Lease\"}");

  SECTION("get") {
    Result<std::string> r = f.client->Get(Leases(), kLease);
    REQUIRE(r.ok());
    CHECK(*r == "{\"kind\":\"Lease\"}");
    auto seen = f.server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].method == "GET");
    CHECK(seen[0].path ==
          "/apis/coordination.k8s.io/v1/namespaces/meshstor-system/leases/operator");
  }
  SECTION("create") {
    REQUIRE(f.client->Create(Leases(), "meshstor-system", "{\"a\":1}").ok());
    auto seen = f.server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].method == "POST");
    CHECK(seen[0].path == "/apis/coordination.k8s.io/v1/namespaces/meshstor-system/leases");
    CHECK(seen[0].content_type == "application/json");
    CHECK(seen[0].body == "{\"a\":1}");
  }
  SECTION("update and update status") {
    REQUIRE(f.client->Update(MeshStorVolumes(), kVolume, "{\"b\":2}").ok());
    REQUIRE(f.client->UpdateStatus(MeshStorVolumes(), kVolume, "{\"c\":3}").ok());
    auto seen = f.server.seen();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].method == "PUT");
    CHECK(seen[0].path == "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/vol-1");
    CHECK(seen[0].body == "{\"b\":2}");
    CHECK(seen[1].method == "PUT");
    CHECK(seen[1].path == "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/vol-1/status");
  }
  SECTION("merge patch") {
    REQUIRE(f.client->MergePatch(MeshStorVolumes(), kVolume, "{\"s\":1}", "status").ok());
    REQUIRE(f.client->MergePatch(Nodes(), {"", "node-a"}, "{\"m\":1}").ok());
    auto seen = f.server.seen();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].method == "PATCH");
    CHECK(seen[0].path == "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/vol-1/status");
    CHECK(seen[0].content_type == "application/merge-patch+json");
    CHECK(seen[0].body == "{\"s\":1}");
    CHECK(seen[1].path == "/api/v1/nodes/node-a");
  }
  SECTION("delete with options") {
    REQUIRE(f.client
                ->Delete(MeshStorVolumes(), kVolume,
                         {.precondition_uid = "u-1",
                          .precondition_resource_version = "42",
                          .propagation_policy = "Foreground"})
                .ok());
    REQUIRE(f.client->Delete(Nodes(), {"", "node-a"}).ok());
    auto seen = f.server.seen();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].method == "DELETE");
    CHECK(seen[0].path == "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes/vol-1");
    CHECK(seen[0].content_type == "application/json");
    CHECK(seen[0].body ==
          "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"preconditions\":{\"uid\":\"u-1\","
          "\"resourceVersion\":\"42\"},\"propagationPolicy\":\"Foreground\"}");
    CHECK(seen[1].body == "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\"}");
  }
}

// ---- lists
// ---------------------------------------------------------------------------------------

TEST_CASE("Client::List parses items, resourceVersion and continue", "[unit][kube]") {
  Fixture f;
  f.server.Respond(200,
                   "{\"kind\":\"MeshStorVolumeList\",\"apiVersion\":\"csi.meshstor.io/v1alpha1\","
                   "\"metadata\":{\"resourceVersion\":\"100\",\"continue\":\"tok\"},"
                   "\"items\":[{\"metadata\":{\"name\":\"a\"}},"
                   "{\"kind\":\"MeshStorVolume\",\"apiVersion\":\"csi.meshstor.io/v1alpha1\","
                   "\"metadata\":{\"name\":\"b\"}}]}");
  Result<ListResult> r = f.client->List(MeshStorVolumes(), "",
                                        {.label_selector = "app=meshstor,tier!=x",
                                         .field_selector = "metadata.name=a",
                                         .limit = 2,
                                         .continue_token = "prev",
                                         .resource_version = "0"});
  REQUIRE(r.ok());
  CHECK(r->resource_version == "100");
  CHECK(r->continue_token == "tok");
  REQUIRE(r->items.size() == 2);
  CHECK(FieldOf(r->items[0], "kind") == "MeshStorVolume");
  CHECK(FieldOf(r->items[0], "apiVersion") == "csi.meshstor.io/v1alpha1");
  CHECK(FieldOf(r->items[0], "metadata", "name") == "a");
  CHECK(FieldOf(r->items[1], "metadata", "name") == "b");

  auto seen = f.server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].path == "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes");
  const httplib::Params expected = {{"labelSelector", "app=meshstor,tier!=x"},
                                    {"fieldSelector", "metadata.name=a"},
                                    {"limit", "2"},
                                    {"continue", "prev"},
                                    {"resourceVersion", "0"}};
  CHECK(seen[0].params == expected);
}

TEST_CASE("Client::List takes kind from the type when the list's kind is unusual", "[unit][kube]") {
  Fixture f;
  f.server.Respond(200, "{\"items\":[{\"metadata\":{\"name\":\"n\"}}],\"metadata\":{}}");
  Result<ListResult> r = f.client->List(Nodes(), "");
  REQUIRE(r.ok());
  REQUIRE(r->items.size() == 1);
  CHECK(FieldOf(r->items[0], "kind") == "Node");
  CHECK(FieldOf(r->items[0], "apiVersion") == "v1");
  f.server.Respond(200, "{\"items\":null,\"metadata\":{\"resourceVersion\":\"7\"}}");
  r = f.client->List(Nodes(), "");
  REQUIRE(r.ok());
  CHECK(r->items.empty());
  CHECK(r->resource_version == "7");
  f.server.Respond(200, "not json");
  CHECK(f.client->List(Nodes(), "").status().code() == StatusCode::kInternal);
}

// Serves /api/v1/nodes in pages of two out of five nodes; continue tokens are "p<page>". The
// first `expire` continued requests answer 410.
void ServePages(ScriptedServer& server, std::atomic<int>& expire) {
  server.Script([&expire](const httplib::Request& req, httplib::Response& res) {
    int page = 0;
    if (req.has_param("continue")) {
      if (expire > 0) {
        --expire;
        res.status = 410;
        res.set_content(StatusBody(410, "Expired", "continue token expired"), "application/json");
        return;
      }
      page = std::stoi(req.get_param_value("continue").substr(1));
    }
    std::string items;
    for (int i = page * 2; i < std::min(5, page * 2 + 2); ++i) {
      if (!items.empty()) items += ",";
      items += "{\"metadata\":{\"name\":\"n" + std::to_string(i) + "\"}}";
    }
    const std::string cont = page < 2 ? "p" + std::to_string(page + 1) : "";
    res.set_content(
        "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{"
        "\"resourceVersion\":\"" +
            std::to_string(500 + page) + "\",\"continue\":\"" + cont + "\"},\"items\":[" + items +
            "]}",
        "application/json");
  });
}

std::vector<std::string> Names(const ListResult& list) {
  std::vector<std::string> names;
  for (const std::string& item : list.items) names.push_back(FieldOf(item, "metadata", "name"));
  return names;
}

TEST_CASE("Client::ListAll follows continue tokens", "[unit][kube]") {
  Fixture f;
  std::atomic<int> expire{0};
  ServePages(f.server, expire);
  Result<ListResult> r = f.client->ListAll(Nodes(), "", Paged(2, "0"));
  REQUIRE(r.ok());
  CHECK(Names(*r) == std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"});
  CHECK(r->resource_version == "500");
  CHECK(r->continue_token.empty());
  auto seen = f.server.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].params == httplib::Params{{"limit", "2"}, {"resourceVersion", "0"}});
  // Continued pages carry the token and no resourceVersion (the token holds the snapshot).
  CHECK(seen[1].params == httplib::Params{{"continue", "p1"}, {"limit", "2"}});
  CHECK(seen[2].params == httplib::Params{{"continue", "p2"}, {"limit", "2"}});
}

TEST_CASE("Client::ListAll uses a default page size", "[unit][kube]") {
  Fixture f;
  std::atomic<int> expire{0};
  ServePages(f.server, expire);
  REQUIRE(f.client->ListAll(Nodes(), "").ok());
  auto seen = f.server.seen();
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].params == httplib::Params{{"limit", "500"}});
}

TEST_CASE("Client::ListAll restarts once when a continue token expires", "[unit][kube]") {
  Fixture f;
  std::atomic<int> expire{1};
  SECTION("one expiry: restarted and complete") {
    ServePages(f.server, expire);
    Result<ListResult> r = f.client->ListAll(Nodes(), "", Paged(2));
    REQUIRE(r.ok());
    CHECK(Names(*r) == std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"});
    CHECK(f.server.seen().size() == 5);  // page 0, 410, page 0, page 1, page 2
  }
  SECTION("two expiries: OutOfRange") {
    expire = 2;
    ServePages(f.server, expire);
    Result<ListResult> r = f.client->ListAll(Nodes(), "", Paged(2));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kOutOfRange);
    CHECK(r.status().message() == "continue token expired");
    CHECK(f.server.seen().size() == 4);
  }
}

// ---- watches ------------------------------------------------------------------------------------

// A Transport that plays a scripted watch stream in given chunks.
class ChunkTransport : public Transport {
 public:
  std::vector<std::string> chunks;
  int status = 200;
  std::string error_body;
  std::optional<Status> end;  // error after the chunks
  HttpRequest last;

  Result<HttpResponse> Do(const HttpRequest&) override {
    return UnimplementedError("ChunkTransport streams only");
  }
  Result<int> Stream(const HttpRequest& request,
                     const std::function<bool(std::string_view)>& on_data,
                     std::string* error) override {
    last = request;
    if (status < 200 || status >= 300) {
      *error = error_body;
      return status;
    }
    for (const std::string& chunk : chunks) {
      if (!on_data(chunk)) return status;
    }
    if (end) return *end;
    return status;
  }
};

std::string Event(const std::string& type, const std::string& name, const std::string& rv) {
  return "{\"type\":\"" + type +
         "\",\"object\":{\"kind\":\"MeshStorVolume\",\"apiVersion\":\"csi.meshstor.io/v1alpha1\","
         "\"metadata\":{\"name\":\"" +
         name + "\",\"resourceVersion\":\"" + rv +
         "\"},\"spec\":{\"note\":\"a } and a \\\" {\"}}}\n";
}

std::string Bookmark(const std::string& rv) {
  return "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"MeshStorVolume\",\"apiVersion\":"
         "\"csi.meshstor.io/v1alpha1\",\"metadata\":{\"resourceVersion\":\"" +
         rv + "\"}}}\n";
}

struct Recorded {
  std::vector<WatchEvent::Type> types;
  std::vector<std::string> names;
  std::vector<std::string> rvs;
};

std::function<bool(const WatchEvent&)> Recorder(Recorded* out) {
  return [out](const WatchEvent& e) {
    out->types.push_back(e.type);
    out->names.push_back(FieldOf(e.object, "metadata", "name"));
    out->rvs.push_back(e.resource_version);
    return true;
  };
}

TEST_CASE("Client::Watch decodes events split anywhere across chunks", "[unit][kube]") {
  const std::string stream = Event("ADDED", "a", "1") + Event("MODIFIED", "a", "2") +
                             Bookmark("3") + Event("DELETED", "a", "4");
  const size_t split = GENERATE(1, 2, 3, 7, 64, 1000);
  ChunkTransport transport;
  for (size_t i = 0; i < stream.size(); i += split)
    transport.chunks.push_back(stream.substr(i, split));
  Client client(transport);
  Recorded got;
  Status s = client.Watch(MeshStorVolumes(), "", From("0"), Recorder(&got));
  INFO("split " << split << ": " << s.ToString());
  REQUIRE(s.ok());
  CHECK(got.types ==
        std::vector<WatchEvent::Type>{WatchEvent::Type::kAdded, WatchEvent::Type::kModified,
                                      WatchEvent::Type::kBookmark, WatchEvent::Type::kDeleted});
  CHECK(got.names == std::vector<std::string>{"a", "a", "<none>", "a"});
  CHECK(got.rvs == std::vector<std::string>{"1", "2", "3", "4"});
}

TEST_CASE("Client::Watch sends the watch parameters", "[unit][kube]") {
  ChunkTransport transport;
  Client client(transport, 7s);
  WatchOptions options = From("12");
  options.label_selector = "a=b";
  options.timeout_seconds = 60;
  REQUIRE(client.Watch(Leases(), "meshstor-system", options, [](const WatchEvent&) { return true; })
              .ok());
  CHECK(transport.last.method == "GET");
  CHECK(transport.last.path == "/apis/coordination.k8s.io/v1/namespaces/meshstor-system/leases");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"watch", "1"},
      {"resourceVersion", "12"},
      {"labelSelector", "a=b"},
      {"allowWatchBookmarks", "true"},
      {"timeoutSeconds", "60"}};
  CHECK(transport.last.query == expected);
  CHECK(transport.last.timeout == 7s);
  CHECK(transport.last.stream_idle_timeout == 67s);  // beyond the server's own end of the watch
}

TEST_CASE("Client::Watch ends with the stream's errors", "[unit][kube]") {
  ChunkTransport transport;
  Client client(transport);
  Recorded got;
  SECTION("410 in the stream: OutOfRange after the earlier events") {
    transport.chunks = {Event("ADDED", "a", "1") + "{\"type\":\"ERROR\",\"object\":" +
                        StatusBody(410, "Expired", "too old resource version: 1 (5)") + "}\n" +
                        Event("ADDED", "b", "6")};
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kOutOfRange);
    CHECK(s.message() == "too old resource version: 1 (5)");
    CHECK(s.detail() == "Expired");
    CHECK(got.names == std::vector<std::string>{"a"});
  }
  SECTION("other ERROR events keep their message") {
    transport.chunks = {"{\"type\":\"ERROR\",\"object\":" +
                        StatusBody(500, "InternalError", "etcd is sad") + "}\n"};
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK(s.message() == "etcd is sad");
  }
  SECTION("410 as the HTTP status") {
    transport.status = 410;
    transport.error_body = StatusBody(410, "Gone", "gone");
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kOutOfRange);
    CHECK(s.message() == "gone");
  }
  SECTION("403 as the HTTP status") {
    transport.status = 403;
    transport.error_body = StatusBody(403, "Forbidden", "no watching");
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kPermissionDenied);
  }
  SECTION("garbage between events") {
    transport.chunks = {Event("ADDED", "a", "1") + "oops"};
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kInternal);
    CHECK(got.names.size() == 1);
  }
  SECTION("an unknown event type") {
    transport.chunks = {"{\"type\":\"EXPLODED\",\"object\":{}}"};
    CHECK(client.Watch(MeshStorVolumes(), "", {}, Recorder(&got)).code() == StatusCode::kInternal);
  }
  SECTION("the stream ends in the middle of an event") {
    transport.chunks = {Event("ADDED", "a", "1"), "{\"type\":\"ADDED\",\"obj"};
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK(got.names.size() == 1);
  }
  SECTION("the connection breaks") {
    transport.chunks = {Event("ADDED", "a", "1")};
    transport.end = UnavailableError("connection reset");
    Status s = client.Watch(MeshStorVolumes(), "", {}, Recorder(&got));
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK_THAT(s.message(), Catch::Contains("connection reset"));
  }
  SECTION("on_event returning false cancels") {
    transport.chunks = {Event("ADDED", "a", "1") + Event("ADDED", "b", "2")};
    int calls = 0;
    Status s = client.Watch(MeshStorVolumes(), "", {}, [&](const WatchEvent&) {
      ++calls;
      return false;
    });
    CHECK(s.code() == StatusCode::kCancelled);
    CHECK(calls == 1);
  }
  SECTION("stop is honoured between events") {
    transport.chunks = {Event("ADDED", "a", "1"), Event("ADDED", "b", "2")};
    std::stop_source stop;
    Status s = client.Watch(
        MeshStorVolumes(), "", {},
        [&](const WatchEvent&) {
          stop.request_stop();
          return true;
        },
        stop.get_token());
    CHECK(s.code() == StatusCode::kCancelled);
  }
}

TEST_CASE("Client::Watch over HTTP: events, bookmarks and the end of the watch", "[unit][kube]") {
  Fixture f;
  f.server.Script([](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [](size_t, httplib::DataSink& sink) {
      const std::string parts[] = {Event("ADDED", "a", "10").substr(0, 30),
                                   Event("ADDED", "a", "10").substr(30) + Bookmark("11"),
                                   Event("MODIFIED", "a", "12")};
      for (const std::string& p : parts) sink.write(p.data(), p.size());
      sink.done();
      return true;
    });
  });
  Recorded got;
  Status s = f.client->Watch(MeshStorVolumes(), "", From("9"), Recorder(&got));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(got.types == std::vector<WatchEvent::Type>{WatchEvent::Type::kAdded,
                                                   WatchEvent::Type::kBookmark,
                                                   WatchEvent::Type::kModified});
  CHECK(got.rvs == std::vector<std::string>{"10", "11", "12"});
  auto seen = f.server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].params == httplib::Params{{"allowWatchBookmarks", "true"},
                                          {"resourceVersion", "9"},
                                          {"timeoutSeconds", "300"},
                                          {"watch", "1"}});
}

TEST_CASE("Client::Watch over HTTP stops promptly on the stop flag while the server is silent",
          "[unit][kube]") {
  // Declared before the server, which must stop before they go away.
  std::mutex mu;
  std::condition_variable cv;
  bool finish = false;
  Fixture f;
  f.server.Script([&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      const std::string e = Event("ADDED", "a", "1");
      sink.write(e.data(), e.size());
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, 10s, [&] { return finish; });
      sink.done();
      return true;
    });
  });
  std::stop_source stop;
  std::atomic<bool> got_event{false};
  std::thread stopper([&] {
    while (!got_event) std::this_thread::yield();
    stop.request_stop();
  });
  const auto start = SteadyClock::now();
  Status s = f.client->Watch(
      MeshStorVolumes(), "", {},
      [&](const WatchEvent&) {
        got_event = true;
        return true;
      },
      stop.get_token());
  const auto elapsed = SteadyClock::now() - start;
  got_event = true;
  stopper.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    finish = true;
  }
  cv.notify_all();
  CHECK(s.code() == StatusCode::kCancelled);
  CHECK(elapsed < 3s);
}

}  // namespace
}  // namespace common::kube
