#include "tools/apiserver/test_apiserver.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/config/yaml_json.h"
#include "tools/apiserver/json_util.h"
#include "tools/apiserver/store.h"

namespace tools::apiserver {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr char kJson[] = "application/json";
// Watch streams are newline-delimited JSON. The stream=watch parameter keeps cpp-httplib from
// gzip-compressing the stream (which would buffer events); clients parse it as application/json.
constexpr char kWatchContentType[] = "application/json;stream=watch";

// One thread per connection, so a long watch never starves other requests (cpp-httplib's
// default pool has a fixed size). Finished threads are joined on the next enqueue; shutdown()
// joins the rest.
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back({std::thread([fn = std::move(fn), done] {
                          fn();
                          done->store(true);
                        }),
                        done});
  }

  void shutdown() override {
    std::list<Worker> workers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      workers.swap(workers_);
    }
    for (Worker& w : workers) w.thread.join();
  }

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mu_;
  std::list<Worker> workers_;
};

std::string Json(const std::function<void(JsonWriter&)>& fill) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  fill(w);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) out.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

bool ParseBool(const std::string& s) {
  return s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True";
}

// Kubernetes version priority: GA before beta before alpha, higher numbers first.
int64_t VersionPriority(const std::string& v) {
  int major = 0;
  int minor = 0;
  int stage = 3;  // 3 GA, 2 beta, 1 alpha, 0 other
  if (v.size() < 2 || v[0] != 'v' || !std::isdigit(static_cast<unsigned char>(v[1]))) return 0;
  size_t i = 1;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
    major = major * 10 + (v[i++] - '0');
  }
  std::string rest = v.substr(i);
  if (rest.rfind("beta", 0) == 0) {
    stage = 2;
    rest = rest.substr(4);
  } else if (rest.rfind("alpha", 0) == 0) {
    stage = 1;
    rest = rest.substr(5);
  } else if (!rest.empty()) {
    return 0;
  }
  for (char c : rest) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
    minor = minor * 10 + (c - '0');
  }
  return static_cast<int64_t>(stage) * 1000000 + major * 1000 + minor;
}

void WriteStrings(JsonWriter& w, const char* key, const std::vector<std::string>& values,
                  bool omit_empty) {
  if (omit_empty && values.empty()) return;
  w.Key(key);
  w.StartArray();
  for (const std::string& v : values) w.String(v);
  w.EndArray();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FaultInjector

FaultInjector::FaultInjector(Store& store, size_t request_log_size)
    : store_(store), request_log_size_(std::max<size_t>(request_log_size, 1)) {}

int FaultInjector::FailNext(std::string method, std::string path_prefix, int status, int times,
                            int retry_after_seconds) {
  FaultRule rule;
  rule.method = std::move(method);
  rule.path_prefix = std::move(path_prefix);
  rule.status = status;
  rule.times = times;
  rule.retry_after_seconds = retry_after_seconds;
  return Add(std::move(rule));
}

int FaultInjector::Delay(std::string method, std::string path_prefix,
                         std::chrono::milliseconds delay, int times) {
  FaultRule rule;
  rule.method = std::move(method);
  rule.path_prefix = std::move(path_prefix);
  rule.delay = delay;
  rule.times = times;
  return Add(std::move(rule));
}

int FaultInjector::Add(FaultRule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rule.id = next_id_++;
  rules_.push_back(std::move(rule));
  return rules_.back().id;
}

void FaultInjector::Remove(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.erase(
      std::remove_if(rules_.begin(), rules_.end(), [id](const FaultRule& r) { return r.id == id; }),
      rules_.end());
}

void FaultInjector::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

std::vector<FaultRule> FaultInjector::Rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_;
}

size_t FaultInjector::DropWatches() { return store_.DropWatchers(); }

int64_t FaultInjector::CompactHistory() { return store_.Compact(); }

std::vector<RequestRecord> FaultInjector::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {requests_.begin(), requests_.end()};
}

size_t FaultInjector::RequestCount(std::string_view method, std::string_view path_prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count_if(requests_.begin(), requests_.end(), [&](const RequestRecord& r) {
        return (method.empty() || r.method == method) && r.path.rfind(path_prefix, 0) == 0;
      }));
}

void FaultInjector::ClearRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.clear();
}

FaultInjector::Decision FaultInjector::Match(std::string_view method, std::string_view path) {
  std::lock_guard<std::mutex> lock(mu_);
  Decision d;
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->times == 0) continue;
    if (!it->method.empty() && it->method != method) continue;
    if (path.rfind(it->path_prefix, 0) != 0) continue;
    d.delay = it->delay;
    d.status = it->status;
    d.retry_after_seconds = it->retry_after_seconds;
    d.message = it->message.empty()
                    ? fmt::format("fault injected by meshstor-test-apiserver (rule {})", it->id)
                    : it->message;
    if (it->times > 0 && --it->times == 0) rules_.erase(it);
    break;
  }
  return d;
}

void FaultInjector::Record(RequestRecord record) {
  std::lock_guard<std::mutex> lock(mu_);
  while (requests_.size() >= request_log_size_) requests_.pop_front();
  requests_.push_back(std::move(record));
}

// ---------------------------------------------------------------------------------------------
// TestApiServer

struct TestApiServer::Impl {
  explicit Impl(const Options& o)
      : options(o),
        store(Store::Options{o.watch_history_size, o.bookmark_interval,
                             std::chrono::milliseconds(3000)}),
        faults(store, o.request_log_size) {}

  void Handle(const httplib::Request& req, httplib::Response& res);
  void Route(const httplib::Request& req, httplib::Response& res, const UserInfo* user);
  void HandleResource(const httplib::Request& req, httplib::Response& res, Target target,
                      bool watch_path, const UserInfo* user);
  void HandleTesting(const httplib::Request& req, httplib::Response& res);
  void ServeWatch(const Target& target, const Query& query, httplib::Response& res);
  std::string ApiVersions() const;
  std::string ResourceList(const std::string& group, const std::string& version) const;
  std::string GroupList() const;
  std::string Group(const std::string& group) const;
  void InterruptibleSleep(std::chrono::milliseconds delay);

  static void Send(httplib::Response& res, const Reply& reply) {
    res.status = reply.code;
    if (reply.retry_after_seconds > 0) {
      res.set_header("Retry-After", std::to_string(reply.retry_after_seconds));
    }
    for (const std::string& warning : reply.warnings) {
      res.headers.emplace("Warning", fmt::format("299 - {}", json::GoQuote(warning)));
    }
    res.set_content(reply.body, kJson);
  }

  const Options options;
  std::unique_ptr<Authorizer> authorizer;  // null: RBAC off
  Store store;
  FaultInjector faults;
  std::unique_ptr<httplib::Server> server;
  std::thread listen_thread;
  std::string url;
  int port = 0;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu
};

void TestApiServer::Impl::InterruptibleSleep(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(stop_mu);
  stop_cv.wait_for(lock, delay, [this] { return stopping; });
}

void TestApiServer::Impl::Handle(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (path == "/testing" || path.rfind("/testing/", 0) == 0) {
    HandleTesting(req, res);
    return;
  }
  FaultInjector::Decision fault = faults.Match(req.method, path);
  if (fault.delay.count() > 0) InterruptibleSleep(fault.delay);
  const UserInfo* user =
      authorizer ? authorizer->Authenticate(req.get_header_value("Authorization")) : nullptr;
  if (authorizer && user == nullptr) {
    Send(res, Reply::Error(errors::FromCode(401, "Unauthorized", 0)));
  } else if (fault.status != 0) {
    Send(res,
         Reply::Error(errors::FromCode(fault.status, fault.message, fault.retry_after_seconds)));
  } else {
    Route(req, res, user);
  }
  size_t q = req.target.find('?');
  faults.Record(
      {req.method, path, q == std::string::npos ? "" : req.target.substr(q + 1), res.status});
}

void TestApiServer::Impl::Route(const httplib::Request& req, httplib::Response& res,
                                const UserInfo* user) {
  const std::string& path = req.path;
  std::vector<std::string> segs = Split(path);
  if (path == "/healthz" || path == "/livez" || path == "/readyz" ||
      path.rfind("/healthz/", 0) == 0 || path.rfind("/livez/", 0) == 0 ||
      path.rfind("/readyz/", 0) == 0) {
    res.status = 200;
    res.set_content("ok", "text/plain; charset=utf-8");
    return;
  }
  const bool get = req.method == "GET";
  if (path == "/version" && get) {
    res.status = 200;
    res.set_content(
        R"({"major":"1","minor":"28","gitVersion":"v1.28.0-meshstor-test",)"
        R"("gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean",)"
        R"("buildDate":"1970-01-01T00:00:00Z","goVersion":"go1.20","compiler":"gc",)"
        R"("platform":"linux/amd64"})",
        kJson);
    return;
  }
  if (segs.empty() && get) {
    res.status = 200;
    res.set_content(Json([](JsonWriter& w) {
                      w.StartObject();
                      w.Key("paths");
                      w.StartArray();
                      for (const char* p : {"/api", "/api/v1", "/apis", "/healthz", "/livez",
                                            "/readyz", "/version"}) {
                        w.String(p);
                      }
                      w.EndArray();
                      w.EndObject();
                    }),
                    kJson);
    return;
  }
  if (!segs.empty() && segs[0] == "api") {
    if (segs.size() == 1 && get) {
      Send(res, Reply::Ok(200, ApiVersions()));
      return;
    }
    if (segs.size() == 1 || segs[1] != "v1") {
      Send(res, Reply::Error(errors::UnknownResource()));
      return;
    }
    if (segs.size() == 2 && get) {
      Send(res, Reply::Ok(200, ResourceList("", "v1")));
      return;
    }
    Target target;
    target.version = "v1";
    std::vector<std::string> rest(segs.begin() + 2, segs.end());
    bool watch_path = false;
    if (!rest.empty() && rest[0] == "watch") {
      watch_path = true;
      rest.erase(rest.begin());
    }
    if (rest.empty()) {
      Send(res, Reply::Error(errors::UnknownResource()));
      return;
    }
    // /api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]], except the namespace's own
    // subresources /api/v1/namespaces/{name}/status|finalize.
    if (rest[0] == "namespaces" && rest.size() >= 3 &&
        !(rest.size() == 3 && (rest[2] == "status" || rest[2] == "finalize"))) {
      target.ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.size() > 3) {
      Send(res, Reply::Error(errors::UnknownResource()));
      return;
    }
    target.plural = rest[0];
    if (rest.size() > 1) target.name = rest[1];
    if (rest.size() > 2) target.subresource = rest[2];
    HandleResource(req, res, std::move(target), watch_path, user);
    return;
  }
  if (!segs.empty() && segs[0] == "apis") {
    if (segs.size() == 1 && get) {
      Send(res, Reply::Ok(200, GroupList()));
      return;
    }
    if (segs.size() == 2 && get) {
      std::string body = Group(segs[1]);
      Send(res, body.empty() ? Reply::Error(errors::UnknownResource()) : Reply::Ok(200, body));
      return;
    }
    if (segs.size() == 3 && get) {
      std::string body = ResourceList(segs[1], segs[2]);
      Send(res, body.empty() ? Reply::Error(errors::UnknownResource()) : Reply::Ok(200, body));
      return;
    }
    if (segs.size() < 4) {
      Send(res, Reply::Error(errors::MethodNotAllowed()));
      return;
    }
    Target target;
    target.group = segs[1];
    target.version = segs[2];
    std::vector<std::string> rest(segs.begin() + 3, segs.end());
    bool watch_path = false;
    if (rest[0] == "watch") {
      watch_path = true;
      rest.erase(rest.begin());
    }
    if (!rest.empty() && rest[0] == "namespaces" && rest.size() >= 3) {
      target.ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.empty() || rest.size() > 3) {
      Send(res, Reply::Error(errors::UnknownResource()));
      return;
    }
    target.plural = rest[0];
    if (rest.size() > 1) target.name = rest[1];
    if (rest.size() > 2) target.subresource = rest[2];
    HandleResource(req, res, std::move(target), watch_path, user);
    return;
  }
  Send(res, Reply::Error(errors::UnknownResource()));
}

void TestApiServer::Impl::HandleResource(const httplib::Request& req, httplib::Response& res,
                                         Target target, bool watch_path, const UserInfo* user) {
  Query q;
  q.label_selector = req.get_param_value("labelSelector");
  q.field_selector = req.get_param_value("fieldSelector");
  q.resource_version = req.get_param_value("resourceVersion");
  q.resource_version_match = req.get_param_value("resourceVersionMatch");
  q.continue_token = req.get_param_value("continue");
  q.allow_bookmarks = ParseBool(req.get_param_value("allowWatchBookmarks"));
  q.send_initial_events = ParseBool(req.get_param_value("sendInitialEvents"));
  q.dry_run = !req.get_param_value("dryRun").empty();
  q.field_validation = req.get_param_value("fieldValidation");
  for (const auto& [key, out] : {std::pair<const char*, int64_t*>{"limit", &q.limit},
                                 {"timeoutSeconds", &q.timeout_seconds}}) {
    const std::string v = req.get_param_value(key);
    if (v.empty()) continue;
    try {
      size_t used = 0;
      *out = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      Send(res, Reply::Error(errors::BadRequest(
                    fmt::format("unable to parse quantity's suffix: {}={}", key, v))));
      return;
    }
  }
  const bool watch = watch_path || ParseBool(req.get_param_value("watch"));
  if (authorizer != nullptr && user != nullptr) {
    RequestAttributes attrs{VerbOf(req.method, watch, !target.name.empty()),
                            target.group,
                            target.plural,
                            target.subresource,
                            target.ns,
                            target.name};
    if (!authorizer->Allowed(*user, attrs)) {
      Send(res, Reply::Error(errors::Forbidden(target.group, target.plural, target.name,
                                               Authorizer::Reason(*user, attrs))));
      return;
    }
  }
  const std::string content_type = req.get_header_value("Content-Type");
  if (req.method == "GET") {
    if (watch) {
      if (!target.name.empty()) {
        // Watching one object is a watch of the collection filtered by name.
        q.field_selector = q.field_selector.empty()
                               ? "metadata.name=" + target.name
                               : q.field_selector + ",metadata.name=" + target.name;
        target.name.clear();
        target.subresource.clear();
      }
      ServeWatch(target, q, res);
    } else if (target.name.empty()) {
      Send(res, store.List(target, q));
    } else {
      Send(res, store.Get(target));
    }
  } else if (watch) {
    Send(res, Reply::Error(errors::MethodNotAllowed()));
  } else if (req.method == "POST") {
    Send(res, store.Create(target, req.body, content_type, q));
  } else if (req.method == "PUT") {
    Send(res, store.Update(target, req.body, content_type, q));
  } else if (req.method == "PATCH") {
    Send(res, store.Patch(target, req.body, content_type, q));
  } else if (req.method == "DELETE") {
    Send(res, target.name.empty() ? store.DeleteCollection(target, req.body, q)
                                  : store.Delete(target, req.body, q));
  } else {
    Send(res, Reply::Error(errors::MethodNotAllowed()));
  }
}

void TestApiServer::Impl::ServeWatch(const Target& target, const Query& query,
                                     httplib::Response& res) {
  std::shared_ptr<Watcher> watcher;
  Reply reply = store.Watch(target, query, &watcher);
  if (reply.code != 200) {
    Send(res, reply);
    return;
  }
  res.status = 200;
  Store* store_ptr = &store;
  const uint64_t id = watcher->id();
  res.set_chunked_content_provider(
      kWatchContentType,
      [watcher](size_t /*offset*/, httplib::DataSink& sink) {
        std::string out;
        switch (watcher->Wait(&out)) {
          case Watcher::Next::kData:
            return sink.write(out.data(), out.size());
          case Watcher::Next::kEnd:
            sink.done();
            return true;
          case Watcher::Next::kDrop:
            return false;  // cpp-httplib aborts the response and closes the connection
        }
        return false;
      },
      [store_ptr, id](bool /*success*/) { store_ptr->RemoveWatcher(id); });
}

std::string TestApiServer::Impl::ApiVersions() const {
  const std::string address = fmt::format("{}:{}", options.address, port);
  return Json([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("APIVersions");
    w.Key("versions");
    w.StartArray();
    w.String("v1");
    w.EndArray();
    w.Key("serverAddressByClientCIDRs");
    w.StartArray();
    w.StartObject();
    w.Key("clientCIDR");
    w.String("0.0.0.0/0");
    w.Key("serverAddress");
    w.String(address);
    w.EndObject();
    w.EndArray();
    w.EndObject();
  });
}

std::string TestApiServer::Impl::ResourceList(const std::string& group,
                                              const std::string& version) const {
  std::vector<std::shared_ptr<const ResourceInfo>> resources;
  for (auto& r : store.ServedResources()) {
    if (r->group == group && r->version == version) resources.push_back(r);
  }
  if (resources.empty()) return {};
  std::sort(resources.begin(), resources.end(),
            [](const auto& a, const auto& b) { return a->plural < b->plural; });
  return Json([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("APIResourceList");
    w.Key("apiVersion");
    w.String("v1");
    w.Key("groupVersion");
    w.String(group.empty() ? version : group + "/" + version);
    w.Key("resources");
    w.StartArray();
    for (const auto& r : resources) {
      w.StartObject();
      w.Key("name");
      w.String(r->plural);
      w.Key("singularName");
      w.String(r->singular);
      w.Key("namespaced");
      w.Bool(r->namespaced);
      w.Key("kind");
      w.String(r->kind);
      WriteStrings(
          w, "verbs",
          {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
          false);
      WriteStrings(w, "shortNames", r->short_names, true);
      WriteStrings(w, "categories", r->categories, true);
      w.EndObject();
      if (r->status_subresource) {
        w.StartObject();
        w.Key("name");
        w.String(r->plural + "/status");
        w.Key("singularName");
        w.String("");
        w.Key("namespaced");
        w.Bool(r->namespaced);
        w.Key("kind");
        w.String(r->kind);
        WriteStrings(w, "verbs", {"get", "patch", "update"}, false);
        w.EndObject();
      }
    }
    w.EndArray();
    w.EndObject();
  });
}

namespace {

// group → its served versions, preferred first.
std::map<std::string, std::vector<std::string>> GroupVersions(
    const std::vector<std::shared_ptr<const ResourceInfo>>& resources) {
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& r : resources) {
    if (r->group.empty()) continue;
    auto& versions = groups[r->group];
    if (std::find(versions.begin(), versions.end(), r->version) == versions.end()) {
      versions.push_back(r->version);
    }
  }
  for (auto& [g, versions] : groups) {
    std::sort(versions.begin(), versions.end(), [](const std::string& a, const std::string& b) {
      int64_t pa = VersionPriority(a);
      int64_t pb = VersionPriority(b);
      return pa != pb ? pa > pb : a < b;
    });
  }
  return groups;
}

void WriteGroup(JsonWriter& w, const std::string& name, const std::vector<std::string>& versions) {
  w.Key("name");
  w.String(name);
  w.Key("versions");
  w.StartArray();
  for (const std::string& v : versions) {
    w.StartObject();
    w.Key("groupVersion");
    w.String(name + "/" + v);
    w.Key("version");
    w.String(v);
    w.EndObject();
  }
  w.EndArray();
  w.Key("preferredVersion");
  w.StartObject();
  w.Key("groupVersion");
  w.String(name + "/" + versions.front());
  w.Key("version");
  w.String(versions.front());
  w.EndObject();
}

}  // namespace

std::string TestApiServer::Impl::GroupList() const {
  auto groups = GroupVersions(store.ServedResources());
  return Json([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("APIGroupList");
    w.Key("apiVersion");
    w.String("v1");
    w.Key("groups");
    w.StartArray();
    for (const auto& [name, versions] : groups) {
      w.StartObject();
      WriteGroup(w, name, versions);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  });
}

std::string TestApiServer::Impl::Group(const std::string& group) const {
  auto groups = GroupVersions(store.ServedResources());
  auto it = groups.find(group);
  if (it == groups.end()) return {};
  return Json([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("APIGroup");
    w.Key("apiVersion");
    w.String("v1");
    WriteGroup(w, it->first, it->second);
    w.EndObject();
  });
}

void TestApiServer::Impl::HandleTesting(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  auto ok = [&](int code, std::string body) { Send(res, Reply::Ok(code, std::move(body))); };
  auto bad = [&](std::string message) {
    Send(res, Reply::Error(errors::BadRequest(std::move(message))));
  };
  if (path == "/testing/faults" && req.method == "POST") {
    json::Document doc;
    if (!json::Parse(req.body, &doc).ok() || !doc.IsObject()) {
      bad("body must be a JSON object");
      return;
    }
    FaultRule rule;
    rule.method = json::GetString(doc, "method");
    rule.path_prefix = json::GetString(doc, "pathPrefix");
    rule.message = json::GetString(doc, "message");
    auto read_int = [&](const char* key, int fallback) {
      const json::Value* v = json::Find(doc, key);
      return v != nullptr && v->IsInt() ? v->GetInt() : fallback;
    };
    rule.status = read_int("status", 0);
    rule.times = read_int("times", 1);
    rule.retry_after_seconds = read_int("retryAfterSeconds", 0);
    rule.delay = std::chrono::milliseconds(read_int("delayMs", 0));
    if (rule.status == 0 && rule.delay.count() == 0) {
      bad("a fault needs a status or a delayMs");
      return;
    }
    if (rule.status != 0 && (rule.status < 400 || rule.status > 599)) {
      bad("status must be an HTTP error code (400-599)");
      return;
    }
    const int id = faults.Add(std::move(rule));
    ok(201, fmt::format("{{\"id\":{}}}", id));
    return;
  }
  if (path == "/testing/faults" && req.method == "GET") {
    ok(200, Json([&](JsonWriter& w) {
         w.StartObject();
         w.Key("items");
         w.StartArray();
         for (const FaultRule& r : faults.Rules()) {
           w.StartObject();
           w.Key("id");
           w.Int(r.id);
           w.Key("method");
           w.String(r.method);
           w.Key("pathPrefix");
           w.String(r.path_prefix);
           w.Key("status");
           w.Int(r.status);
           w.Key("times");
           w.Int(r.times);
           w.Key("retryAfterSeconds");
           w.Int(r.retry_after_seconds);
           w.Key("delayMs");
           w.Int64(r.delay.count());
           w.EndObject();
         }
         w.EndArray();
         w.EndObject();
       }));
    return;
  }
  if (path == "/testing/faults" && req.method == "DELETE") {
    faults.Clear();
    ok(200, "{}");
    return;
  }
  if (path.rfind("/testing/faults/", 0) == 0 && req.method == "DELETE") {
    try {
      faults.Remove(std::stoi(path.substr(std::string("/testing/faults/").size())));
    } catch (const std::exception&) {
      bad("fault id must be a number");
      return;
    }
    ok(200, "{}");
    return;
  }
  if (path == "/testing/drop-watches" && req.method == "POST") {
    ok(200, fmt::format("{{\"dropped\":{}}}", faults.DropWatches()));
    return;
  }
  if (path == "/testing/compact" && req.method == "POST") {
    ok(200, fmt::format("{{\"resourceVersion\":\"{}\"}}", faults.CompactHistory()));
    return;
  }
  if (path == "/testing/requests" && req.method == "GET") {
    const std::string method = req.get_param_value("method");
    const std::string prefix = req.get_param_value("pathPrefix");
    ok(200, Json([&](JsonWriter& w) {
         std::vector<RequestRecord> records = faults.Requests();
         w.StartObject();
         w.Key("items");
         w.StartArray();
         int64_t count = 0;
         for (const RequestRecord& r : records) {
           if ((!method.empty() && r.method != method) || r.path.rfind(prefix, 0) != 0) continue;
           ++count;
           w.StartObject();
           w.Key("method");
           w.String(r.method);
           w.Key("path");
           w.String(r.path);
           w.Key("query");
           w.String(r.query);
           w.Key("status");
           w.Int(r.status);
           w.EndObject();
         }
         w.EndArray();
         w.Key("count");
         w.Int64(count);
         w.EndObject();
       }));
    return;
  }
  if (path == "/testing/requests" && req.method == "DELETE") {
    faults.ClearRequests();
    ok(200, "{}");
    return;
  }
  if (path == "/testing/state" && req.method == "GET") {
    ok(200, fmt::format("{{\"resourceVersion\":\"{}\",\"watches\":{}}}", store.ResourceVersion(),
                        store.WatcherCount()));
    return;
  }
  Send(res, Reply::Error(errors::UnknownResource()));
}

common::Result<std::unique_ptr<TestApiServer>> TestApiServer::Start(Options options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return common::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  if (options.port < 0 || options.port > 65535) {
    return common::InvalidArgumentError("port {} is out of range", options.port);
  }
  auto impl = std::make_unique<Impl>(options);
  if (!options.rbac_files.empty()) {
    impl->authorizer = std::make_unique<Authorizer>();
    for (const auto& f : options.rbac_files) {
      RETURN_IF_ERROR(impl->authorizer->AddFile(f, options.rbac_namespace));
    }
    for (const auto& [token, user] : options.tokens) impl->authorizer->AddToken(token, user);
  }
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    RETURN_IF_ERROR(impl->store.EnsureNamespace(ns));
  }
  // The constructor is private; make_unique cannot reach it.
  std::unique_ptr<TestApiServer> server(new TestApiServer(std::move(impl)));
  std::vector<std::string> files;
  if (!options.crd_dir.empty()) {
    std::error_code ec;
    std::filesystem::directory_iterator it(options.crd_dir, ec);
    if (ec) {
      return common::InvalidArgumentError("cannot read CRD directory {}: {}", options.crd_dir,
                                          ec.message());
    }
    for (const auto& entry : it) {
      const std::string ext = entry.path().extension().string();
      // kustomization.yaml lists the CRDs for kustomize; it is not one.
      const std::string stem = entry.path().stem().string();
      if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml" || ext == ".json") &&
          stem != "kustomization") {
        files.push_back(entry.path().string());
      }
    }
    std::sort(files.begin(), files.end());
  }
  files.insert(files.end(), options.crd_files.begin(), options.crd_files.end());
  for (const std::string& file : files) RETURN_IF_ERROR(server->InstallCrdFile(file));

  Impl& s = *server->impl_;
  if (!options.tls_cert_file.empty()) {
    s.server = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                    options.tls_key_file.c_str());
  } else {
    s.server = std::make_unique<httplib::Server>();
  }
  if (!s.server->is_valid()) {
    return common::InvalidArgumentError("could not load TLS certificate {} and key {}",
                                        options.tls_cert_file, options.tls_key_file);
  }
  // cpp-httplib takes ownership of the queue it gets from this factory.
  s.server->new_task_queue = [] { return new ThreadPerConnection(); };
  s.server->set_keep_alive_max_count(1000);
  s.server->set_keep_alive_timeout(options.keep_alive_timeout.count());
  s.server->set_read_timeout(30, 0);
  s.server->set_write_timeout(30, 0);
  // cpp-httplib 0.11 listens with a backlog of 5, so a burst of connections (informers
  // starting together) waits for SYN retransmits. Keep the listening socket to raise it below.
  // TCP_NODELAY, as kube-apiserver (Go) sets it: cpp-httplib writes a response's headers and
  // body separately, and with Nagle the body waits for the client's delayed ACK (~40 ms per
  // request). The option is set on the listening socket; Linux copies it to every accepted one.
  auto listen_fd = std::make_shared<int>(-1);
  s.server->set_socket_options([listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    int yes = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    *listen_fd = sock;
  });
  Impl* impl_ptr = &s;
  auto handler = [impl_ptr](const httplib::Request& req, httplib::Response& res) {
    impl_ptr->Handle(req, res);
  };
  s.server->Get(".*", handler);
  s.server->Post(".*", handler);
  s.server->Put(".*", handler);
  s.server->Patch(".*", handler);
  s.server->Delete(".*", handler);
  s.server->Options(".*", handler);
  s.server->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Impl::Send(res, Reply::Error(errors::Internal(what)));
      });
  if (options.port == 0) {
    s.port = s.server->bind_to_any_port(options.address);
    if (s.port < 0) {
      return common::UnavailableError("could not bind {} on any port", options.address);
    }
  } else {
    if (!s.server->bind_to_port(options.address, options.port)) {
      return common::UnavailableError("could not bind {}:{}", options.address, options.port);
    }
    s.port = options.port;
  }
  if (*listen_fd >= 0) ::listen(*listen_fd, SOMAXCONN);  // only raises the backlog
  const std::string host = options.address.find(':') != std::string::npos
                               ? "[" + options.address + "]"
                               : options.address;
  s.url = fmt::format("{}://{}:{}", options.tls_cert_file.empty() ? "http" : "https", host, s.port);
  httplib::Server* http = s.server.get();
  s.listen_thread = std::thread([http] { http->listen_after_bind(); });
  return server;
}

TestApiServer::TestApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TestApiServer::~TestApiServer() { Stop(); }

std::string TestApiServer::url() const { return impl_->url; }

int TestApiServer::port() const { return impl_->port; }

void TestApiServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->stop_mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  impl_->store.Shutdown();
  if (impl_->server != nullptr) impl_->server->stop();
  if (impl_->listen_thread.joinable()) impl_->listen_thread.join();
}

FaultInjector& TestApiServer::faults() { return impl_->faults; }

int64_t TestApiServer::ResourceVersion() const { return impl_->store.ResourceVersion(); }

size_t TestApiServer::WatchCount() const { return impl_->store.WatcherCount(); }

common::Status TestApiServer::InstallCrdFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return common::InvalidArgumentError("cannot read CRD file {}", path);
  std::stringstream text;
  text << in.rdbuf();
  common::Result<std::vector<std::string>> docs =
      common::config::YamlToJsonDocuments(text.str(), path);
  if (!docs.ok()) return docs.status();
  for (size_t i = 0; i < docs->size(); ++i) {
    json::Document doc;
    RETURN_IF_ERROR(json::Parse((*docs)[i], &doc).WithContext(path));
    const std::string kind = doc.IsObject() ? json::GetString(doc, "kind") : "";
    if (kind != "CustomResourceDefinition") {
      return common::InvalidArgumentError("{}: document {} is a {}, not a CustomResourceDefinition",
                                          path, i + 1, kind.empty() ? "non-object" : kind);
    }
    RETURN_IF_ERROR(impl_->store.InstallCrd((*docs)[i]).WithContext(path));
  }
  return common::OkStatus();
}

}  // namespace tools::apiserver
