#include "tools/apiserver/store.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/config/yaml_json.h"
#include "tools/apiserver/validation.h"

namespace tools::apiserver {

struct Store::StoredObject {
  std::string json;
  std::string api_version;
  std::string ns;
  std::string name;
  std::string uid;
  int64_t rv = 0;
  StringMap labels;
  StringMap fields;  // values for field selectors
  std::vector<std::string> finalizers;
  bool terminating = false;  // metadata.deletionTimestamp is set
};

namespace {

using json::Value;

// A watcher whose client reads too slowly is dropped, as kube-apiserver does.
constexpr size_t kMaxWatchBuffer = 64u << 20;
constexpr std::string_view kUnsupportedPatch =
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

std::string NowRfc3339() {
  time_t t = time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ObjectKey(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "/" + name;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "application/merge-patch+json; charset=utf-8" → "application/merge-patch+json".
std::string MediaType(std::string_view content_type) {
  std::string_view m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && std::isspace(static_cast<unsigned char>(m.back()))) m.remove_suffix(1);
  while (!m.empty() && std::isspace(static_cast<unsigned char>(m.front()))) m.remove_prefix(1);
  return Lower(m);
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
  }
  return out;
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kB64, c);
    if (c == '\0' || p == nullptr) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return bits < 6;
}

std::string EncodeContinue(int64_t rv, const std::string& key) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("v");
  w.String("meta.k8s.io/v1");
  w.Key("rv");
  w.Int64(rv);
  w.Key("start");
  std::string start = key;
  start.push_back('\0');
  w.String(start.data(), static_cast<rapidjson::SizeType>(start.size()));
  w.EndObject();
  return Base64UrlEncode(std::string_view(buffer.GetString(), buffer.GetSize()));
}

// Decodes a continue token into (rv, last key); an error message otherwise.
std::optional<std::string> DecodeContinue(std::string_view token, int64_t* rv, std::string* key) {
  std::string raw;
  if (!Base64UrlDecode(token, &raw)) return "illegal base64 data";
  json::Document doc;
  if (!json::Parse(raw, &doc).ok() || !doc.IsObject()) return "invalid continue token";
  if (json::GetString(doc, "v") != "meta.k8s.io/v1")
    return "continue key is not valid: incorrect encoded start resourceVersion (version "
           "meta.k8s.io/v1)";
  const Value* rv_value = json::Find(doc, "rv");
  if (rv_value == nullptr || !rv_value->IsInt64() || rv_value->GetInt64() <= 0) {
    return "incorrect encoded start resourceVersion (version meta.k8s.io/v1)";
  }
  *rv = rv_value->GetInt64();
  *key = json::GetString(doc, "start");
  if (key->empty() || key->back() != '\0') return "invalid start key";
  key->pop_back();
  return std::nullopt;
}

std::string SuccessStatus(const ResourceInfo& info, const std::string& name,
                          const std::string& uid) {
  ApiError details;
  details.code = 0;
  details.has_details = true;
  details.name = name;
  details.group = info.group;
  details.kind = info.plural;
  details.uid = uid;
  return StatusJson("Success", details);
}

ApiError DecodeError(std::string_view what) {
  return errors::BadRequest(fmt::format("json: {}", what));
}

// Keeps the ObjectMeta fields kube-apiserver stores, checking their JSON types as Go's decoder
// would; null means absent. Unknown metadata fields are dropped.
std::optional<ApiError> NormalizeMetadata(json::Document& doc, std::vector<std::string>* unknown) {
  json::Allocator& a = doc.GetAllocator();
  Value* meta = json::FindMutable(doc, "metadata");
  if (meta == nullptr || meta->IsNull()) {
    json::SetMember(doc, "metadata", Value(rapidjson::kObjectType), a);
    return std::nullopt;
  }
  if (!meta->IsObject()) {
    return DecodeError(
        fmt::format("cannot unmarshal {} into Go struct field .metadata of type "
                    "v1.ObjectMeta",
                    json::TypeName(*meta)));
  }
  static const std::set<std::string, std::less<>> kStrings = {"name",
                                                              "generateName",
                                                              "namespace",
                                                              "uid",
                                                              "resourceVersion",
                                                              "creationTimestamp",
                                                              "deletionTimestamp"};
  static const std::set<std::string, std::less<>> kInts = {"generation",
                                                           "deletionGracePeriodSeconds"};
  for (auto it = meta->MemberBegin(); it != meta->MemberEnd();) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    const Value& v = it->value;
    auto type_error = [&](std::string_view want) {
      return DecodeError(
          fmt::format("cannot unmarshal {} into Go struct field ObjectMeta.metadata.{} "
                      "of type {}",
                      json::TypeName(v), key, want));
    };
    if (v.IsNull()) {
      it = meta->EraseMember(it);
      continue;
    }
    if (kStrings.count(key) > 0) {
      if (!v.IsString()) return type_error("string");
    } else if (kInts.count(key) > 0) {
      if (!v.IsInt64()) return type_error("int64");
    } else if (key == "labels" || key == "annotations") {
      if (!v.IsObject()) return type_error("map[string]string");
      for (const auto& m : v.GetObject()) {
        if (!m.value.IsString()) return type_error("string");
      }
    } else if (key == "finalizers") {
      if (!v.IsArray()) return type_error("[]string");
      for (const auto& e : v.GetArray()) {
        if (!e.IsString()) return type_error("string");
      }
    } else if (key == "ownerReferences") {
      if (!v.IsArray()) return type_error("[]v1.OwnerReference");
    } else {
      // selfLink, managedFields and unknown fields are not stored by this server.
      if (key != "selfLink" && key != "managedFields" && unknown != nullptr) {
        unknown->push_back("metadata." + std::string(key));
      }
      it = meta->EraseMember(it);
      continue;
    }
    ++it;
  }
  return std::nullopt;
}

std::vector<std::string> StringArray(const Value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->IsArray()) return out;
  for (const auto& e : v->GetArray()) {
    if (e.IsString()) out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

// ObjectMeta validation (ValidateObjectMeta): name, generateName, labels, annotations,
// finalizers.
void ValidateMeta(const ResourceInfo& info, const Value& meta, std::vector<FieldError>* errs) {
  const std::string name = json::GetString(meta, "name");
  const std::string generate_name = json::GetString(meta, "generateName");
  auto name_fn = info.name_is_dns_label ? NameIsDnsLabel : NameIsDnsSubdomain;
  if (!generate_name.empty()) {
    for (const std::string& e : name_fn(generate_name, true)) {
      errs->push_back(
          FieldError::Invalid("metadata.generateName", json::GoQuote(generate_name), e));
    }
  }
  if (name.empty()) {
    errs->push_back(FieldError::Required("metadata.name", "name or generateName is required"));
  } else {
    for (const std::string& e : name_fn(name, false)) {
      errs->push_back(FieldError::Invalid("metadata.name", json::GoQuote(name), e));
    }
  }
  if (const Value* labels = json::Find(meta, "labels")) {
    for (const auto& m : labels->GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      std::string value(m.value.GetString(), m.value.GetStringLength());
      for (const std::string& e : IsQualifiedName(key)) {
        errs->push_back(FieldError::Invalid("metadata.labels", json::GoQuote(key), e));
      }
      for (const std::string& e : IsValidLabelValue(value)) {
        errs->push_back(FieldError::Invalid("metadata.labels", json::GoQuote(value), e));
      }
    }
  }
  if (const Value* annotations = json::Find(meta, "annotations")) {
    size_t total = 0;
    for (const auto& m : annotations->GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      total += key.size() + m.value.GetStringLength();
      for (const std::string& e : IsQualifiedName(Lower(key))) {
        errs->push_back(FieldError::Invalid("metadata.annotations", json::GoQuote(key), e));
      }
    }
    if (total > 256 * 1024) {
      FieldError e = FieldError::TooLong("metadata.annotations", 0);
      e.detail = "must have at most 262144 bytes";
      errs->push_back(std::move(e));
    }
  }
  for (const std::string& f : StringArray(json::Find(meta, "finalizers"))) {
    for (const std::string& e : IsQualifiedName(f)) {
      errs->push_back(FieldError::Invalid("metadata.finalizers", json::GoQuote(f), e));
    }
  }
}

// A copy of `v` without metadata (and without status when `drop_status`), for generation.
void SpecOnly(const Value& v, bool drop_status, json::Document* out) {
  out->CopyFrom(v, out->GetAllocator());
  json::RemoveMember(*out, "metadata");
  if (drop_status) json::RemoveMember(*out, "status");
}

// Reads a field-selector value from a JSON path such as "involvedObject.name".
std::string FieldValue(const Value& doc, const std::string& path) {
  const Value* cur = &doc;
  size_t pos = 0;
  while (cur != nullptr && pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    cur = json::Find(*cur, part);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (cur == nullptr) return {};
  if (cur->IsString()) return std::string(cur->GetString(), cur->GetStringLength());
  if (cur->IsBool()) return cur->GetBool() ? "true" : "false";
  if (cur->IsNumber()) return json::Serialize(*cur);
  return {};
}

std::string FinalizerList(const std::vector<std::string>& finalizers) {
  std::string out = "[]string{";
  for (size_t i = 0; i < finalizers.size(); ++i) {
    if (i > 0) out += ", ";
    out += json::GoQuote(finalizers[i]);
  }
  return out + "}";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reply and Watcher

Reply Reply::Error(const ApiError& e) {
  Reply r;
  r.code = e.code;
  r.body = e.ToJson();
  r.retry_after_seconds = e.retry_after_seconds;
  return r;
}

Reply Reply::Ok(int code, std::string body) {
  Reply r;
  r.code = code;
  r.body = std::move(body);
  return r;
}

Watcher::Watcher(uint64_t id, std::string storage_key, std::string ns, std::string api_version,
                 std::string kind, LabelSelector labels, FieldSelector fields, bool bookmarks,
                 std::chrono::milliseconds bookmark_interval, int64_t timeout_seconds,
                 int64_t progress_rv)
    : id_(id),
      storage_key_(std::move(storage_key)),
      ns_(std::move(ns)),
      api_version_(std::move(api_version)),
      kind_(std::move(kind)),
      labels_(std::move(labels)),
      fields_(std::move(fields)),
      bookmarks_(bookmarks),
      bookmark_interval_(bookmark_interval),
      deadline_(timeout_seconds > 0 ? std::optional(std::chrono::steady_clock::now() +
                                                    std::chrono::seconds(timeout_seconds))
                                    : std::nullopt),
      progress_rv_(progress_rv),
      next_bookmark_(std::chrono::steady_clock::now() + bookmark_interval) {}

Watcher::Next Watcher::Wait(std::string* out) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (state_ == State::kDropped) return Next::kDrop;
    if (!buffer_.empty()) {
      out->swap(buffer_);
      buffer_.clear();
      return Next::kData;
    }
    if (state_ == State::kEnded) return Next::kEnd;
    const auto now = std::chrono::steady_clock::now();
    if (deadline_ && now >= *deadline_) return Next::kEnd;
    if (bookmarks_ && now >= next_bookmark_) {
      *out = fmt::format(
          "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"{}\","
          "\"metadata\":{{\"resourceVersion\":\"{}\"}}}}}}\n",
          kind_, api_version_, progress_rv_);
      next_bookmark_ = now + bookmark_interval_;
      return Next::kData;
    }
    auto wake = now + std::chrono::hours(1);
    if (deadline_) wake = std::min(wake, *deadline_);
    if (bookmarks_) wake = std::min(wake, next_bookmark_);
    cv_.wait_until(lock, wake);
  }
}

void Watcher::Deliver(const std::string* line, int64_t rv) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kOpen) return;
  progress_rv_ = rv;
  if (line == nullptr) return;
  buffer_ += *line;
  if (buffer_.size() > kMaxWatchBuffer) state_ = State::kDropped;
  cv_.notify_all();
}

void Watcher::End(bool drop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kDropped) return;
  state_ = drop ? State::kDropped : State::kEnded;
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Store: construction, lookup, helpers

Store::Store(Options options) : options_(options), rng_(std::random_device{}()) {
  for (ResourceInfo& info : BuiltinResources()) {
    std::string key = info.group + "/" + info.version + "/" + info.plural;
    resources_[key] = std::make_shared<const ResourceInfo>(std::move(info));
  }
}

Store::~Store() { Shutdown(); }

std::shared_ptr<const ResourceInfo> Store::Lookup(std::string_view group, std::string_view version,
                                                  std::string_view plural) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = resources_.find(fmt::format("{}/{}/{}", group, version, plural));
  return it == resources_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const ResourceInfo>> Store::ServedResources() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const ResourceInfo>> out;
  for (const auto& [key, info] : resources_) out.push_back(info);
  return out;
}

std::shared_ptr<const ResourceInfo> Store::LookupLocked(const Target& target,
                                                        ApiError* error) const {
  auto it = resources_.find(target.group + "/" + target.version + "/" + target.plural);
  std::shared_ptr<const ResourceInfo> info = it == resources_.end() ? nullptr : it->second;
  if (info == nullptr || (!info->namespaced && !target.ns.empty()) ||
      (info->namespaced && target.ns.empty() && !target.name.empty()) ||
      (!target.subresource.empty() &&
       (target.subresource != "status" || !info->status_subresource || target.name.empty()))) {
    *error = errors::UnknownResource();
    return nullptr;
  }
  return info;
}

Store::ObjectPtr Store::FindLocked(const ResourceInfo& info, const std::string& ns,
                                   const std::string& name) const {
  auto map = objects_.find(info.StorageKey());
  if (map == objects_.end()) return nullptr;
  auto it = map->second.find(ObjectKey(ns, name));
  return it == map->second.end() ? nullptr : it->second;
}

Store::ObjectPtr Store::BuildObject(const ResourceInfo& info, const json::Document& doc) const {
  auto o = std::make_shared<StoredObject>();
  o->json = json::Serialize(doc);
  o->api_version = json::GetString(doc, "apiVersion");
  const Value* meta = json::Find(doc, "metadata");
  o->ns = json::GetString(*meta, "namespace");
  o->name = json::GetString(*meta, "name");
  o->uid = json::GetString(*meta, "uid");
  (void)ParseInt64(json::GetString(*meta, "resourceVersion"), &o->rv);  // always set by callers
  if (const Value* labels = json::Find(*meta, "labels")) {
    for (const auto& m : labels->GetObject()) {
      o->labels.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                        std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  }
  o->finalizers = StringArray(json::Find(*meta, "finalizers"));
  o->terminating = !json::GetString(*meta, "deletionTimestamp").empty();
  o->fields["metadata.name"] = o->name;
  o->fields["metadata.namespace"] = o->ns;
  for (const std::string& f : info.extra_field_selectors) {
    o->fields[f] = FieldValue(doc, f == "source" ? "source.component" : f);
  }
  return o;
}

std::string Store::Render(const StoredObject& object, const ResourceInfo& info) const {
  if (object.api_version == info.ApiVersion()) return object.json;
  json::Document doc;
  if (!json::Parse(object.json, &doc).ok()) return object.json;
  json::SetString(doc, "apiVersion", info.ApiVersion(), doc.GetAllocator());
  return json::Serialize(doc);
}

std::string Store::NewUid() {
  uint64_t hi = rng_();
  uint64_t lo = rng_();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF,
                     hi & 0xFFFF, lo >> 48, lo & 0xFFFFFFFFFFFFull);
}

std::string Store::RandomSuffix() {
  // The alphabet of k8s.io/apimachinery/pkg/util/rand (no vowels, no confusable digits).
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 5; ++i) s.push_back(kAlphabet[rng_() % kAlphabet.size()]);
  return s;
}

int64_t Store::ResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

size_t Store::WatcherCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watchers_.size();
}

// ---------------------------------------------------------------------------------------------
// Commit, history and watch fan-out

void Store::CommitLocked(const ResourceInfo& info, EventType type, ObjectPtr object,
                         ObjectPtr prev) {
  ObjectMap& map = objects_[info.StorageKey()];
  const std::string key = ObjectKey(object->ns, object->name);
  if (type == EventType::kDeleted) {
    map.erase(key);
  } else {
    map[key] = object;
  }
  history_.push_back({object->rv, info.StorageKey(), type, object, prev});
  while (history_.size() > options_.history_size) {
    compacted_rv_ = history_.front().rv;
    history_.pop_front();
  }
  if (options_.history_size == 0) compacted_rv_ = rv_;
  NotifyWatchersLocked({object->rv, info.StorageKey(), type, object, prev});
  rv_cv_.notify_all();
  if (info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions") {
    SyncCrdLocked(*object, type == EventType::kDeleted);
  }
  if (type == EventType::kDeleted || (object->terminating && object->finalizers.empty())) {
    FinalizeContainersLocked();
  }
}

void Store::NotifyWatchersLocked(const HistoryEvent& event) {
  for (auto& [id, w] : watchers_) {
    std::optional<std::string> line;
    if (w->storage_key_ == event.storage_key) {
      line = EventLine(*w, event.type, event.object.get(), event.prev.get());
    }
    w->Deliver(line ? &*line : nullptr, event.rv);
  }
}

std::optional<std::string> Store::EventLine(const Watcher& w, EventType type,
                                            const StoredObject* object,
                                            const StoredObject* prev) const {
  auto matches = [&](const StoredObject* o) {
    return o != nullptr && (w.ns_.empty() || o->ns == w.ns_) && w.labels_.Matches(o->labels) &&
           w.fields_.Matches(o->fields);
  };
  const bool now_matches = type != EventType::kDeleted && matches(object);
  const bool old_matches = matches(prev);
  const char* name = nullptr;
  switch (type) {
    case EventType::kAdded:
      if (now_matches) name = "ADDED";
      break;
    case EventType::kModified:
      // An object entering or leaving the selection is ADDED or DELETED for this watcher.
      if (now_matches && old_matches) {
        name = "MODIFIED";
      } else if (now_matches) {
        name = "ADDED";
      } else if (old_matches) {
        name = "DELETED";
      }
      break;
    case EventType::kDeleted:
      if (old_matches) name = "DELETED";
      break;
  }
  if (name == nullptr) return std::nullopt;
  std::string rendered = object->json;
  if (object->api_version != w.api_version_) {
    json::Document doc;
    if (json::Parse(object->json, &doc).ok()) {
      json::SetString(doc, "apiVersion", w.api_version_, doc.GetAllocator());
      rendered = json::Serialize(doc);
    }
  }
  return fmt::format("{{\"type\":\"{}\",\"object\":{}}}\n", name, rendered);
}

Store::ObjectMap Store::SnapshotLocked(const std::string& storage_key, int64_t rv) const {
  ObjectMap snapshot;
  if (auto it = objects_.find(storage_key); it != objects_.end()) snapshot = it->second;
  for (auto it = history_.rbegin(); it != history_.rend() && it->rv > rv; ++it) {
    if (it->storage_key != storage_key) continue;
    const std::string key = ObjectKey(it->object->ns, it->object->name);
    if (it->prev == nullptr) {
      snapshot.erase(key);
    } else {
      snapshot[key] = it->prev;
    }
  }
  return snapshot;
}

bool Store::WaitForRvLocked(std::unique_lock<std::mutex>& lock, int64_t rv) {
  rv_cv_.wait_for(lock, options_.future_rv_wait, [&] { return rv_ >= rv || shutdown_; });
  return rv_ >= rv;
}

std::optional<ApiError> Store::ParseSelectors(const ResourceInfo& info, const Query& query,
                                              LabelSelector* labels, FieldSelector* fields) const {
  common::Result<LabelSelector> l = LabelSelector::Parse(query.label_selector);
  if (!l.ok()) return errors::BadRequest(l.status().message());
  common::Result<FieldSelector> f = FieldSelector::Parse(query.field_selector);
  if (!f.ok()) return errors::BadRequest(f.status().message());
  for (const FieldSelector::Requirement& r : f->requirements()) {
    if (r.field != "metadata.name" && r.field != "metadata.namespace" &&
        std::find(info.extra_field_selectors.begin(), info.extra_field_selectors.end(), r.field) ==
            info.extra_field_selectors.end()) {
      return errors::BadRequest(fmt::format("field label not supported: {}", r.field));
    }
  }
  *labels = std::move(l).value();
  *fields = std::move(f).value();
  return std::nullopt;
}

bool Store::MatchesLocked(const StoredObject& o, const std::string& ns, const LabelSelector& labels,
                          const FieldSelector& fields) const {
  return (ns.empty() || o.ns == ns) && labels.Matches(o.labels) && fields.Matches(o.fields);
}

std::string Store::ListBody(const ResourceInfo& info, const std::vector<ObjectPtr>& items,
                            int64_t rv, const std::string& continue_token,
                            int64_t remaining) const {
  std::string body = fmt::format("{{\"apiVersion\":\"{}\",\"items\":[", info.ApiVersion());
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) body += ",";
    body += Render(*items[i], info);
  }
  body += fmt::format("],\"kind\":\"{}\",\"metadata\":{{", info.list_kind);
  if (!continue_token.empty()) body += fmt::format("\"continue\":\"{}\",", continue_token);
  if (remaining > 0) body += fmt::format("\"remainingItemCount\":{},", remaining);
  body += fmt::format("\"resourceVersion\":\"{}\"}}}}", rv);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Body decoding shared by create, update and patch

namespace {

std::optional<ApiError> DecodeObject(const ResourceInfo& info, std::string_view body,
                                     std::string_view content_type, json::Document* doc,
                                     std::vector<std::string>* unknown) {
  const std::string media = MediaType(content_type);
  std::string text;
  if (media == "application/yaml" || media == "application/x-yaml" || media == "text/yaml") {
    common::Result<std::string> converted = common::config::YamlToJson(body, "request body");
    if (!converted.ok()) return errors::BadRequest(converted.status().message());
    text = std::move(converted).value();
  } else if (media.empty() || media == "application/json" || media == "*/*") {
    text = std::string(body);
  } else {
    return errors::UnsupportedMediaType(fmt::format(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"));
  }
  common::Status parsed = json::Parse(text, doc);
  if (!parsed.ok()) {
    return errors::BadRequest(
        fmt::format("couldn't get version/kind; json parse error: {}", parsed.message()));
  }
  if (!doc->IsObject()) {
    return errors::BadRequest(fmt::format(
        "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value "
        "of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
        "\"json:\\\"kind,omitempty\\\"\" }}",
        json::TypeName(*doc)));
  }
  const std::string kind = json::GetString(*doc, "kind");
  const std::string api_version = json::GetString(*doc, "apiVersion");
  if (kind.empty() && info.custom) {
    return errors::BadRequest(fmt::format("Object 'Kind' is missing in '{}'", text));
  }
  if (!kind.empty() && kind != info.kind) {
    return errors::BadRequest(fmt::format(
        "the kind in the data ({}) does not match the expected kind ({})", kind, info.kind));
  }
  if (!api_version.empty()) {
    const std::string group = api_version.find('/') == std::string::npos
                                  ? std::string()
                                  : api_version.substr(0, api_version.find('/'));
    if (group != info.group) {
      return errors::BadRequest(fmt::format(
          "the API version in the data ({}) does not match the expected API version ({})",
          api_version, info.ApiVersion()));
    }
  }
  json::SetString(*doc, "apiVersion", info.ApiVersion(), doc->GetAllocator());
  json::SetString(*doc, "kind", info.kind, doc->GetAllocator());
  return NormalizeMetadata(*doc, unknown);
}

// fieldValidation: Strict turns unknown fields into a 400, Warn (the default) into warnings.
std::optional<ApiError> CheckUnknownFields(const std::string& mode,
                                           const std::vector<std::string>& unknown) {
  if (mode != "Strict" || unknown.empty()) return std::nullopt;
  std::string message = "strict decoding error: ";
  for (size_t i = 0; i < unknown.size(); ++i) {
    if (i > 0) message += ", ";
    message += fmt::format("unknown field \"{}\"", unknown[i]);
  }
  return errors::BadRequest(std::move(message));
}

Reply WithWarnings(Reply reply, const std::string& mode, const std::vector<std::string>& unknown) {
  if (mode == "Ignore" || mode == "Strict" || reply.code >= 300) return reply;
  for (const std::string& field : unknown) {
    reply.warnings.push_back(fmt::format("unknown field \"{}\"", field));
  }
  return reply;
}

bool IsCrdResource(const ResourceInfo& info) {
  return info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions";
}

bool IsNamespaceResource(const ResourceInfo& info) {
  return info.group.empty() && info.plural == "namespaces";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Verbs

Reply Store::Get(const Target& target) {
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  ObjectPtr existing = FindLocked(*info, target.ns, target.name);
  if (existing == nullptr) {
    return Reply::Error(errors::NotFound(info->group, info->plural, target.name));
  }
  return Reply::Ok(200, Render(*existing, *info));
}

Reply Store::List(const Target& target, const Query& query) {
  std::unique_lock<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  LabelSelector labels;
  FieldSelector fields;
  if (auto e = ParseSelectors(*info, query, &labels, &fields)) return Reply::Error(*e);
  if (query.limit < 0) return Reply::Error(errors::BadRequest("limit must be non-negative"));

  int64_t list_rv = rv_;
  std::string start;
  if (!query.continue_token.empty()) {
    if (!query.resource_version.empty() && query.resource_version != "0") {
      return Reply::Error(
          errors::BadRequest("specifying resource version is not allowed when using continue"));
    }
    int64_t token_rv = 0;
    if (auto bad = DecodeContinue(query.continue_token, &token_rv, &start)) {
      return Reply::Error(errors::BadRequest(fmt::format("continue key is not valid: {}", *bad)));
    }
    if (token_rv < compacted_rv_) {
      ApiError e = errors::Expired(
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the provided "
          "token results in an inconsistent list - objects that were created, modified, or "
          "deleted between the time the first chunk was returned and now may show up in the "
          "list.");
      e.continue_token = EncodeContinue(rv_, start);
      return Reply::Error(e);
    }
    list_rv = std::min(token_rv, rv_);
  } else {
    const std::string& match = query.resource_version_match;
    if (!match.empty() && query.resource_version.empty()) {
      return Reply::Error(errors::BadRequest(
          "resourceVersionMatch is forbidden unless resourceVersion is provided"));
    }
    if (!match.empty() && match != "NotOlderThan" && match != "Exact") {
      return Reply::Error(errors::BadRequest(fmt::format(
          "resourceVersionMatch: Unsupported value: \"{}\": supported values: \"Exact\", "
          "\"NotOlderThan\"",
          match)));
    }
    if (!query.resource_version.empty() && query.resource_version != "0") {
      int64_t wanted = 0;
      if (!ParseInt64(query.resource_version, &wanted) || wanted < 0) {
        return Reply::Error(errors::BadRequest(
            fmt::format("invalid resource version: {}", query.resource_version)));
      }
      if (wanted > rv_ && !WaitForRvLocked(lock, wanted)) {
        ApiError e = errors::Timeout(
            fmt::format("Too large resource version: {}, current: {}", wanted, rv_), 1);
        e.causes.push_back({"ResourceVersionTooLarge", "Too large resource version", ""});
        return Reply::Error(e);
      }
      if (match == "Exact") {
        if (wanted < compacted_rv_) {
          return Reply::Error(errors::Expired(
              fmt::format("too old resource version: {} ({})", wanted, compacted_rv_)));
        }
        list_rv = wanted;
      } else {
        list_rv = rv_;
      }
    } else if (match == "Exact") {
      return Reply::Error(errors::BadRequest(
          "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
    }
  }

  ObjectMap snapshot;
  const ObjectMap* map = &snapshot;
  if (list_rv == rv_) {
    if (auto it = objects_.find(info->StorageKey()); it != objects_.end()) map = &it->second;
  } else {
    snapshot = SnapshotLocked(info->StorageKey(), list_rv);
  }
  std::vector<ObjectPtr> items;
  std::string continue_token;
  int64_t remaining = 0;
  auto it = start.empty() ? map->begin() : map->upper_bound(start);
  for (; it != map->end(); ++it) {
    if (!MatchesLocked(*it->second, target.ns, labels, fields)) continue;
    if (query.limit > 0 && static_cast<int64_t>(items.size()) == query.limit) {
      // More items match: hand out a continue token at the last returned key.
      continue_token = EncodeContinue(list_rv, ObjectKey(items.back()->ns, items.back()->name));
      if (labels.empty() && fields.empty()) {
        for (auto rest = it; rest != map->end(); ++rest) {
          if (target.ns.empty() || rest->second->ns == target.ns) ++remaining;
        }
      }
      break;
    }
    items.push_back(it->second);
  }
  return Reply::Ok(200, ListBody(*info, items, list_rv, continue_token, remaining));
}

Reply Store::Create(const Target& target, std::string_view body, std::string_view content_type,
                    const Query& query) {
  if (query.dry_run) {
    return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  if (!target.name.empty() || !target.subresource.empty() ||
      (info->namespaced && target.ns.empty())) {
    return Reply::Error(errors::MethodNotAllowed());
  }
  json::Document doc;
  WriteContext ctx{query.field_validation, {}};
  if (auto e = DecodeObject(*info, body, content_type, &doc, &ctx.unknown_fields)) {
    return Reply::Error(*e);
  }
  return WithWarnings(CreateLocked(*info, target, doc, ctx), ctx.field_validation,
                      ctx.unknown_fields);
}

Reply Store::CreateLocked(const ResourceInfo& info, const Target& target, json::Document& doc,
                          WriteContext& ctx) {
  json::Allocator& a = doc.GetAllocator();
  Value& meta = json::EnsureObject(doc, "metadata", a);
  if (info.namespaced) {
    const std::string body_ns = json::GetString(meta, "namespace");
    if (!body_ns.empty() && body_ns != target.ns) {
      return Reply::Error(errors::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the "
          "request"));
    }
    json::SetString(meta, "namespace", target.ns, a);
  } else {
    json::RemoveMember(meta, "namespace");
  }
  if (!json::GetString(meta, "resourceVersion").empty()) {
    return Reply::Error(
        errors::BadRequest("resourceVersion should not be set on objects to be created"));
  }
  std::string name = json::GetString(meta, "name");
  const std::string generate_name = json::GetString(meta, "generateName");
  if (name.empty() && !generate_name.empty()) {
    // A generated name that is taken is regenerated, as kube-apiserver retries generateName.
    for (int attempt = 0; attempt < 8; ++attempt) {
      name = generate_name + RandomSuffix();
      if (FindLocked(info, target.ns, name) == nullptr) break;
    }
    json::SetString(meta, "name", name, a);
  }
  if (info.namespaced) {
    ObjectPtr ns =
        objects_["/namespaces"].count(target.ns) > 0 ? objects_["/namespaces"][target.ns] : nullptr;
    if (ns == nullptr) return Reply::Error(errors::NotFound("", "namespaces", target.ns));
    if (ns->terminating) {
      ApiError e = errors::Forbidden(
          info.group, info.plural, name,
          fmt::format("unable to create new content in namespace {} because it is being terminated",
                      target.ns));
      e.causes.push_back({"NamespaceTerminating",
                          fmt::format("namespace {} is being terminated", target.ns),
                          "metadata.namespace"});
      return Reply::Error(e);
    }
  }
  if (info.custom) {
    auto crds = objects_.find("apiextensions.k8s.io/customresourcedefinitions");
    if (crds != objects_.end()) {
      auto crd = crds->second.find(info.crd_name);
      if (crd != crds->second.end() && crd->second->terminating) {
        ApiError e = errors::MethodNotAllowed();
        e.message = "create not allowed while custom resource definition is terminating";
        return Reply::Error(e);
      }
    }
  }

  std::vector<FieldError> errs;
  ValidateMeta(info, meta, &errs);
  const std::string now = NowRfc3339();
  json::RemoveMember(meta, "deletionTimestamp");
  json::RemoveMember(meta, "deletionGracePeriodSeconds");
  json::SetString(meta, "uid", NewUid(), a);
  json::SetString(meta, "creationTimestamp", now, a);
  if (info.uses_generation) {
    json::SetMember(meta, "generation", Value(int64_t{1}), a);
  } else {
    json::RemoveMember(meta, "generation");
  }
  if (info.custom && info.status_subresource) json::RemoveMember(doc, "status");
  if (IsNamespaceResource(info)) {
    Value& spec = json::EnsureObject(doc, "spec", a);
    if (json::Find(spec, "finalizers") == nullptr) {
      Value finalizers(rapidjson::kArrayType);
      finalizers.PushBack(
          Value(rapidjson::StringRef(kNamespaceFinalizer.data(), kNamespaceFinalizer.size())), a);
      json::SetMember(spec, "finalizers", std::move(finalizers), a);
    }
    Value status(rapidjson::kObjectType);
    json::SetString(status, "phase", "Active", a);
    json::SetMember(doc, "status", std::move(status), a);
  }
  if (IsCrdResource(info)) {
    for (const ResourceInfo& defined : ResourcesFromCrd(doc, &errs)) {
      auto existing = resources_.find(defined.group + "/" + defined.version + "/" + defined.plural);
      if (existing != resources_.end() && !existing->second->custom) {
        errs.push_back(FieldError::Invalid("spec.group", json::GoQuote(defined.group),
                                           "is reserved by a built-in resource"));
      }
    }
    PrepareCrd(doc, nullptr, now, a);
  }
  if (info.schema != nullptr) {
    info.schema->PruneAndDefault(doc, a, &ctx.unknown_fields);
    if (auto e = CheckUnknownFields(ctx.field_validation, ctx.unknown_fields)) {
      return Reply::Error(*e);
    }
    info.schema->ValidateObject(doc, nullptr, &errs);
  }
  if (!errs.empty()) return Reply::Error(errors::Invalid(info.group, info.kind, name, errs));
  if (FindLocked(info, target.ns, name) != nullptr) {
    return Reply::Error(errors::AlreadyExists(info.group, info.plural, name));
  }
  const int64_t rv = ++rv_;
  json::SetString(meta, "resourceVersion", std::to_string(rv), a);
  ObjectPtr object = BuildObject(info, doc);
  CommitLocked(info, EventType::kAdded, object, nullptr);
  return Reply::Ok(201, Render(*object, info));
}

Reply Store::Update(const Target& target, std::string_view body, std::string_view content_type,
                    const Query& query) {
  if (query.dry_run) {
    return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  if (target.name.empty()) return Reply::Error(errors::MethodNotAllowed());
  json::Document doc;
  WriteContext ctx{query.field_validation, {}};
  if (auto e = DecodeObject(*info, body, content_type, &doc, &ctx.unknown_fields)) {
    return Reply::Error(*e);
  }
  return WithWarnings(UpdateLocked(*info, target, doc, ctx), ctx.field_validation,
                      ctx.unknown_fields);
}

Reply Store::UpdateLocked(const ResourceInfo& info, const Target& target, json::Document& doc,
                          WriteContext& ctx) {
  json::Allocator& a = doc.GetAllocator();
  Value& meta = json::EnsureObject(doc, "metadata", a);
  const std::string body_name = json::GetString(meta, "name");
  if (body_name != target.name) {
    return Reply::Error(errors::BadRequest(
        fmt::format("the name of the object ({}) does not match the name on the URL ({})",
                    body_name, target.name)));
  }
  if (info.namespaced) {
    const std::string body_ns = json::GetString(meta, "namespace");
    if (!body_ns.empty() && body_ns != target.ns) {
      return Reply::Error(errors::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the "
          "request"));
    }
    json::SetString(meta, "namespace", target.ns, a);
  } else {
    json::RemoveMember(meta, "namespace");
  }
  ObjectPtr existing = FindLocked(info, target.ns, target.name);
  if (existing == nullptr) {
    if (info.allow_create_on_update && target.subresource.empty()) {
      json::RemoveMember(meta, "resourceVersion");
      return CreateLocked(info, target, doc, ctx);
    }
    return Reply::Error(errors::NotFound(info.group, info.plural, target.name));
  }
  const std::string rv_text = json::GetString(meta, "resourceVersion");
  if (rv_text.empty()) {
    if (!info.allow_unconditional_update) {
      return Reply::Error(
          errors::Invalid(info.group, info.kind, target.name,
                          {FieldError::Invalid("metadata.resourceVersion", "0x0",
                                               "must be specified for an update")}));
    }
  } else {
    int64_t rv = 0;
    if (!ParseInt64(rv_text, &rv)) {
      return Reply::Error(errors::BadRequest(fmt::format("invalid resource version: {}", rv_text)));
    }
    if (rv != existing->rv) {
      return Reply::Error(errors::ObjectModified(info.group, info.plural, target.name));
    }
  }
  return ApplyUpdateLocked(info, existing, doc, target.subresource, ctx);
}

Reply Store::ApplyUpdateLocked(const ResourceInfo& info, const ObjectPtr& existing,
                               json::Document& doc, const std::string& subresource,
                               WriteContext& ctx) {
  json::Allocator& a = doc.GetAllocator();
  json::Document old;
  if (!json::Parse(existing->json, &old).ok()) {
    return Reply::Error(errors::Internal("stored object is not valid JSON"));
  }
  std::vector<FieldError> errs;
  if (subresource == "status") {
    // The status subresource changes status and nothing else.
    Value status;
    bool has_status = false;
    if (const Value* s = json::Find(doc, "status")) {
      status.CopyFrom(*s, a);
      has_status = true;
    }
    doc.CopyFrom(old, a);
    if (has_status) {
      json::SetMember(doc, "status", std::move(status), a);
    } else {
      json::RemoveMember(doc, "status");
    }
  } else {
    if (info.status_subresource) {
      // The main resource ignores status changes.
      if (const Value* s = json::Find(old, "status")) {
        json::SetMember(doc, "status", Value(*s, a), a);
      } else {
        json::RemoveMember(doc, "status");
      }
    }
    Value& meta = json::EnsureObject(doc, "metadata", a);
    const Value& old_meta = *json::Find(old, "metadata");
    const std::string uid = json::GetString(meta, "uid");
    if (uid.empty()) {
      json::SetString(meta, "uid", existing->uid, a);
    } else if (uid != existing->uid) {
      errs.push_back(FieldError::Invalid("metadata.uid", json::GoQuote(uid), "field is immutable"));
    }
    for (const char* field :
         {"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
      if (const Value* v = json::Find(old_meta, field)) {
        json::SetMember(meta, field, Value(*v, a), a);
      } else {
        json::RemoveMember(meta, field);
      }
    }
    if (existing->terminating) {
      std::vector<std::string> added;
      for (const std::string& f : StringArray(json::Find(meta, "finalizers"))) {
        if (std::find(existing->finalizers.begin(), existing->finalizers.end(), f) ==
            existing->finalizers.end()) {
          added.push_back(f);
        }
      }
      if (!added.empty()) {
        errs.push_back(FieldError::Forbidden(
            "metadata.finalizers",
            fmt::format("no new finalizers can be added if the object is being deleted, found "
                        "new finalizers {}",
                        FinalizerList(added))));
      }
    }
  }
  Value& meta = json::EnsureObject(doc, "metadata", a);
  ValidateMeta(info, meta, &errs);
  if (IsCrdResource(info) && subresource.empty()) {
    const Value* old_spec = json::Find(old, "spec");
    const Value* new_spec = json::Find(doc, "spec");
    if (old_spec != nullptr && new_spec != nullptr &&
        json::GetString(*old_spec, "scope") != json::GetString(*new_spec, "scope")) {
      errs.push_back(FieldError::Invalid(
          "spec.scope", json::GoQuote(json::GetString(*new_spec, "scope")), "field is immutable"));
    }
    (void)ResourcesFromCrd(doc, &errs);  // validation only; the registry syncs on commit
    PrepareCrd(doc, &old, NowRfc3339(), a);
  }
  if (info.schema != nullptr) {
    // The status subresource only looks at status: unknown fields elsewhere were dropped above.
    info.schema->PruneAndDefault(doc, a, &ctx.unknown_fields);
    if (auto e = CheckUnknownFields(ctx.field_validation, ctx.unknown_fields)) {
      return Reply::Error(*e);
    }
    info.schema->ValidateObject(doc, &old, &errs);
  }
  if (!errs.empty())
    return Reply::Error(errors::Invalid(info.group, info.kind, existing->name, errs));

  // A write that changes nothing is not stored: same resourceVersion, no event.
  json::SetString(meta, "resourceVersion", std::to_string(existing->rv), a);
  if (json::Equal(doc, old)) return Reply::Ok(200, Render(*existing, info));

  if (info.uses_generation && subresource.empty()) {
    json::Document new_spec;
    json::Document old_spec;
    SpecOnly(doc, info.status_subresource, &new_spec);
    SpecOnly(old, info.status_subresource, &old_spec);
    if (!json::Equal(new_spec, old_spec)) {
      int64_t generation = 0;
      if (const Value* g = json::Find(meta, "generation"); g != nullptr && g->IsInt64()) {
        generation = g->GetInt64();
      }
      json::SetMember(meta, "generation", Value(generation + 1), a);
    }
  }
  const bool terminating = !json::GetString(meta, "deletionTimestamp").empty();
  if (terminating && StringArray(json::Find(meta, "finalizers")).empty()) {
    // The last finalizer is gone: the object is deleted now. Like kube-apiserver, the reply and
    // the DELETED event carry the stored state at the deletion's resourceVersion.
    return RemoveLocked(info, existing, nullptr);
  }
  const int64_t rv = ++rv_;
  json::SetString(meta, "resourceVersion", std::to_string(rv), a);
  ObjectPtr object = BuildObject(info, doc);
  CommitLocked(info, EventType::kModified, object, existing);
  return Reply::Ok(200, Render(*object, info));
}

Reply Store::Patch(const Target& target, std::string_view body, std::string_view content_type,
                   const Query& query) {
  if (query.dry_run) {
    return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  if (target.name.empty()) return Reply::Error(errors::MethodNotAllowed());
  const std::string media = MediaType(content_type);
  const bool merge =
      media == "application/merge-patch+json" ||
      (media == "application/strategic-merge-patch+json" && info->strategic_merge_patch);
  const bool json_patch = media == "application/json-patch+json";
  if (!merge && !json_patch) {
    std::string message(kUnsupportedPatch);
    if (info->strategic_merge_patch) message += ", application/strategic-merge-patch+json";
    return Reply::Error(errors::UnsupportedMediaType(std::move(message)));
  }
  ObjectPtr existing = FindLocked(*info, target.ns, target.name);
  if (existing == nullptr) {
    return Reply::Error(errors::NotFound(info->group, info->plural, target.name));
  }
  json::Document patch;
  if (common::Status s = json::Parse(body, &patch); !s.ok()) {
    return Reply::Error(errors::BadRequest(fmt::format("error decoding patch: {}", s.message())));
  }
  json::Document doc;
  if (!json::Parse(existing->json, &doc).ok()) {
    return Reply::Error(errors::Internal("stored object is not valid JSON"));
  }
  if (merge) {
    if (!patch.IsObject()) {
      return Reply::Error(errors::BadRequest("json: cannot unmarshal " +
                                             std::string(json::TypeName(patch)) +
                                             " into Go value of type map[string]interface {}"));
    }
    json::MergePatch(doc, patch, doc.GetAllocator());
  } else {
    common::Status s = json::JsonPatch(doc, patch, doc.GetAllocator());
    if (s.code() == common::StatusCode::kInvalidArgument) {
      return Reply::Error(errors::BadRequest(s.message()));
    }
    if (!s.ok()) return Reply::Error(errors::UnprocessablePatch(s.message()));
  }
  if (!doc.IsObject()) {
    return Reply::Error(errors::BadRequest("the patched object is not a JSON object"));
  }
  json::SetString(doc, "apiVersion", existing->api_version, doc.GetAllocator());
  json::SetString(doc, "kind", info->kind, doc.GetAllocator());
  WriteContext ctx{query.field_validation, {}};
  if (auto e = NormalizeMetadata(doc, &ctx.unknown_fields)) return Reply::Error(*e);
  const Value& meta = *json::Find(doc, "metadata");
  if (json::GetString(meta, "name") != target.name ||
      (info->namespaced && json::GetString(meta, "namespace") != target.ns)) {
    return Reply::Error(errors::BadRequest(
        fmt::format("the name of the object ({}) does not match the name on the URL ({})",
                    json::GetString(meta, "name"), target.name)));
  }
  // metadata.resourceVersion in the patch is a precondition.
  const std::string rv_text = json::GetString(meta, "resourceVersion");
  int64_t rv = 0;
  if (!rv_text.empty() && (!ParseInt64(rv_text, &rv) || rv != existing->rv)) {
    return Reply::Error(errors::ObjectModified(info->group, info->plural, target.name));
  }
  return WithWarnings(ApplyUpdateLocked(*info, existing, doc, target.subresource, ctx),
                      ctx.field_validation, ctx.unknown_fields);
}

Reply Store::Delete(const Target& target, std::string_view body, const Query& query) {
  if (query.dry_run) {
    return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
  }
  DeleteOptions options;
  if (!body.empty()) {
    json::Document doc;
    if (common::Status s = json::Parse(body, &doc); !s.ok() || !doc.IsObject()) {
      return Reply::Error(errors::BadRequest(
          fmt::format("error decoding DeleteOptions: {}", s.ok() ? "not an object" : s.message())));
    }
    if (const Value* pre = json::Find(doc, "preconditions")) {
      options.uid = json::GetString(*pre, "uid");
      options.resource_version = json::GetString(*pre, "resourceVersion");
    }
    if (const Value* dry = json::Find(doc, "dryRun");
        dry != nullptr && dry->IsArray() && !dry->Empty()) {
      return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  if (!target.subresource.empty()) return Reply::Error(errors::MethodNotAllowed());
  ObjectPtr existing = FindLocked(*info, target.ns, target.name);
  if (existing == nullptr) {
    return Reply::Error(errors::NotFound(info->group, info->plural, target.name));
  }
  return DeleteLocked(*info, existing, options);
}

Reply Store::DeleteLocked(const ResourceInfo& info, const ObjectPtr& existing,
                          const DeleteOptions& options) {
  if (!options.uid.empty() && options.uid != existing->uid) {
    return Reply::Error(errors::Conflict(
        info.group, info.plural, existing->name,
        fmt::format("Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    options.uid, existing->uid)));
  }
  if (!options.resource_version.empty() &&
      options.resource_version != std::to_string(existing->rv)) {
    return Reply::Error(errors::Conflict(
        info.group, info.plural, existing->name,
        fmt::format("Precondition failed: ResourceVersion in precondition: {}, ResourceVersion "
                    "in object meta: {}",
                    options.resource_version, existing->rv)));
  }
  const bool is_namespace = IsNamespaceResource(info);
  const bool is_crd = IsCrdResource(info);
  if (is_namespace && (existing->name == "default" || existing->name == "kube-system")) {
    return Reply::Error(
        errors::Forbidden("", "namespaces", existing->name, "this namespace may not be deleted"));
  }
  if (existing->terminating) return Reply::Ok(200, Render(*existing, info));
  if (existing->finalizers.empty() && !is_namespace && !is_crd) {
    Reply removed = RemoveLocked(info, existing, nullptr);
    if (removed.code != 200) return removed;
    return Reply::Ok(200, SuccessStatus(info, existing->name, existing->uid));
  }
  // Graceful deletion: mark the object; finalizers (and, for namespaces and CRDs, the cleanup of
  // their contents) decide when it goes away.
  json::Document doc;
  if (!json::Parse(existing->json, &doc).ok()) {
    return Reply::Error(errors::Internal("stored object is not valid JSON"));
  }
  json::Allocator& a = doc.GetAllocator();
  Value& meta = json::EnsureObject(doc, "metadata", a);
  json::SetString(meta, "deletionTimestamp", NowRfc3339(), a);
  json::SetMember(meta, "deletionGracePeriodSeconds", Value(int64_t{0}), a);
  if (info.uses_generation) {
    int64_t generation = 0;
    if (const Value* g = json::Find(meta, "generation"); g != nullptr && g->IsInt64()) {
      generation = g->GetInt64();
    }
    json::SetMember(meta, "generation", Value(generation + 1), a);
  }
  if (is_namespace) {
    json::SetString(json::EnsureObject(doc, "status", a), "phase", "Terminating", a);
  }
  if (is_crd) {
    Value* finalizers = json::FindMutable(meta, "finalizers");
    if (finalizers == nullptr || !finalizers->IsArray()) {
      json::SetMember(meta, "finalizers", Value(rapidjson::kArrayType), a);
      finalizers = json::FindMutable(meta, "finalizers");
    }
    finalizers->PushBack(Value(kCrdCleanupFinalizer.data(),
                               static_cast<rapidjson::SizeType>(kCrdCleanupFinalizer.size()), a),
                         a);
    Value& status = json::EnsureObject(doc, "status", a);
    Value* conditions = json::FindMutable(status, "conditions");
    if (conditions == nullptr || !conditions->IsArray()) {
      json::SetMember(status, "conditions", Value(rapidjson::kArrayType), a);
      conditions = json::FindMutable(status, "conditions");
    }
    Value c(rapidjson::kObjectType);
    json::SetString(c, "type", "Terminating", a);
    json::SetString(c, "status", "True", a);
    json::SetString(c, "lastTransitionTime", NowRfc3339(), a);
    json::SetString(c, "reason", "InstanceDeletionInProgress", a);
    json::SetString(c, "message", "CustomResource deletion is in progress", a);
    conditions->PushBack(std::move(c), a);
  }
  const int64_t rv = ++rv_;
  json::SetString(meta, "resourceVersion", std::to_string(rv), a);
  ObjectPtr marked = BuildObject(info, doc);
  const std::string key = ObjectKey(marked->ns, marked->name);
  const std::string storage_key = info.StorageKey();
  CommitLocked(info, EventType::kModified, marked, existing);
  if (is_namespace) {
    DeleteContentsLocked([](const ResourceInfo& r) { return r.namespaced; }, marked->name);
  }
  if (is_crd) {
    const std::string crd_name = marked->name;
    DeleteContentsLocked([&](const ResourceInfo& r) { return r.crd_name == crd_name; }, "");
  }
  FinalizeContainersLocked();
  // Reply with the latest state: still terminating, or already gone (deleted at once).
  auto map = objects_.find(storage_key);
  if (map != objects_.end()) {
    if (auto it = map->second.find(key); it != map->second.end()) {
      return Reply::Ok(200, Render(*it->second, info));
    }
  }
  return Reply::Ok(200, Render(*marked, info));
}

Reply Store::RemoveLocked(const ResourceInfo& info, const ObjectPtr& existing,
                          json::Document* final_state) {
  json::Document doc;
  json::Document* state = final_state;
  if (state == nullptr) {
    if (!json::Parse(existing->json, &doc).ok()) {
      return Reply::Error(errors::Internal("stored object is not valid JSON"));
    }
    state = &doc;
  }
  const int64_t rv = ++rv_;
  json::SetString(json::EnsureObject(*state, "metadata", state->GetAllocator()), "resourceVersion",
                  std::to_string(rv), state->GetAllocator());
  ObjectPtr object = BuildObject(info, *state);
  CommitLocked(info, EventType::kDeleted, object, existing);
  return Reply::Ok(200, Render(*object, info));
}

void Store::DeleteContentsLocked(const std::function<bool(const ResourceInfo&)>& which,
                                 const std::string& ns) {
  std::map<std::string, std::shared_ptr<const ResourceInfo>> by_storage;
  for (const auto& [key, info] : resources_) {
    if (which(*info)) by_storage.emplace(info->StorageKey(), info);
  }
  for (const auto& [storage_key, info] : by_storage) {
    auto map = objects_.find(storage_key);
    if (map == objects_.end()) continue;
    std::vector<ObjectPtr> victims;
    for (const auto& [key, object] : map->second) {
      if (ns.empty() || object->ns == ns) victims.push_back(object);
    }
    for (const ObjectPtr& victim : victims) {
      ObjectPtr current = FindLocked(*info, victim->ns, victim->name);
      if (current != nullptr) (void)DeleteLocked(*info, current, {});  // best effort, as GC is
    }
  }
}

void Store::FinalizeContainersLocked() {
  if (finalizing_) return;
  finalizing_ = true;
  bool changed = true;
  while (changed) {
    changed = false;
    // CRDs being deleted lose the cleanup finalizer once no instance is left.
    auto crd_info = resources_.find("apiextensions.k8s.io/v1/customresourcedefinitions")->second;
    std::vector<ObjectPtr> crds;
    for (const auto& [key, crd] : objects_[crd_info->StorageKey()]) {
      if (crd->terminating) crds.push_back(crd);
    }
    for (const ObjectPtr& crd : crds) {
      json::Document doc;
      if (!json::Parse(crd->json, &doc).ok()) continue;
      const Value* spec = json::Find(doc, "spec");
      const Value* names = spec != nullptr ? json::Find(*spec, "names") : nullptr;
      if (spec == nullptr || names == nullptr) continue;
      const std::string storage_key =
          json::GetString(*spec, "group") + "/" + json::GetString(*names, "plural");
      if (auto it = objects_.find(storage_key); it != objects_.end() && !it->second.empty()) {
        continue;
      }
      std::vector<std::string> finalizers = crd->finalizers;
      auto pos = std::find(finalizers.begin(), finalizers.end(), kCrdCleanupFinalizer);
      if (pos == finalizers.end()) {
        if (finalizers.empty()) {
          (void)RemoveLocked(*crd_info, crd, nullptr);
          changed = true;
        }
        continue;
      }
      finalizers.erase(pos);
      if (finalizers.empty()) {
        (void)RemoveLocked(*crd_info, crd, nullptr);
      } else {
        json::Allocator& a = doc.GetAllocator();
        Value list(rapidjson::kArrayType);
        for (const std::string& f : finalizers) {
          list.PushBack(Value(f.c_str(), static_cast<rapidjson::SizeType>(f.size()), a), a);
        }
        Value& meta = json::EnsureObject(doc, "metadata", a);
        json::SetMember(meta, "finalizers", std::move(list), a);
        json::SetString(meta, "resourceVersion", std::to_string(++rv_), a);
        CommitLocked(*crd_info, EventType::kModified, BuildObject(*crd_info, doc), crd);
      }
      changed = true;
    }
    // Terminating namespaces go away once empty (the namespace controller's job).
    auto ns_info = resources_.find("/v1/namespaces")->second;
    std::vector<ObjectPtr> namespaces;
    for (const auto& [key, ns] : objects_[ns_info->StorageKey()]) {
      if (ns->terminating && ns->finalizers.empty()) namespaces.push_back(ns);
    }
    for (const ObjectPtr& ns : namespaces) {
      bool empty = true;
      for (const auto& [key, info] : resources_) {
        if (!info->namespaced) continue;
        auto map = objects_.find(info->StorageKey());
        if (map == objects_.end()) continue;
        auto it = map->second.lower_bound(ns->name + "/");
        if (it != map->second.end() && it->second->ns == ns->name) {
          empty = false;
          break;
        }
      }
      if (empty) {
        (void)RemoveLocked(*ns_info, ns, nullptr);
        changed = true;
      }
    }
  }
  finalizing_ = false;
}

void Store::SyncCrdLocked(const StoredObject& crd, bool removed) {
  std::set<std::string> old_storage_keys;
  for (auto it = resources_.begin(); it != resources_.end();) {
    if (it->second->custom && it->second->crd_name == crd.name) {
      old_storage_keys.insert(it->second->StorageKey());
      it = resources_.erase(it);
    } else {
      ++it;
    }
  }
  if (removed) {
    for (const std::string& key : old_storage_keys) objects_.erase(key);
    for (auto& [id, w] : watchers_) {
      if (old_storage_keys.count(w->storage_key_) > 0) w->End(false);
    }
    return;
  }
  json::Document doc;
  if (!json::Parse(crd.json, &doc).ok()) return;
  std::vector<FieldError> errs;
  for (ResourceInfo& info : ResourcesFromCrd(doc, &errs)) {
    std::string key = info.group + "/" + info.version + "/" + info.plural;
    resources_[key] = std::make_shared<const ResourceInfo>(std::move(info));
  }
}

Reply Store::DeleteCollection(const Target& target, std::string_view body, const Query& query) {
  if (query.dry_run) {
    return Reply::Error(errors::BadRequest("dryRun is not supported by meshstor-test-apiserver"));
  }
  (void)body;  // DeleteOptions preconditions make no sense for a collection
  std::lock_guard<std::mutex> lock(mu_);
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  LabelSelector labels;
  FieldSelector fields;
  if (auto e = ParseSelectors(*info, query, &labels, &fields)) return Reply::Error(*e);
  std::vector<ObjectPtr> victims;
  if (auto map = objects_.find(info->StorageKey()); map != objects_.end()) {
    for (const auto& [key, object] : map->second) {
      if (MatchesLocked(*object, target.ns, labels, fields)) victims.push_back(object);
    }
  }
  std::vector<ObjectPtr> results;
  for (const ObjectPtr& victim : victims) {
    ObjectPtr current = FindLocked(*info, victim->ns, victim->name);
    if (current == nullptr) continue;
    (void)DeleteLocked(*info, current, {});
    ObjectPtr after = FindLocked(*info, victim->ns, victim->name);
    results.push_back(after != nullptr ? after : current);
  }
  return Reply::Ok(200, ListBody(*info, results, rv_, "", 0));
}

Reply Store::Watch(const Target& target, const Query& query, std::shared_ptr<Watcher>* watcher) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shutdown_) return Reply::Error(errors::ServiceUnavailable("apiserver is shutting down"));
  ApiError error;
  auto info = LookupLocked(target, &error);
  if (info == nullptr) return Reply::Error(error);
  LabelSelector labels;
  FieldSelector fields;
  if (auto e = ParseSelectors(*info, query, &labels, &fields)) return Reply::Error(*e);

  const bool from_now =
      query.resource_version.empty() || query.resource_version == "0" || query.send_initial_events;
  int64_t start_rv = rv_;
  std::string initial;
  if (!from_now) {
    if (!ParseInt64(query.resource_version, &start_rv) || start_rv < 0) {
      return Reply::Error(
          errors::BadRequest(fmt::format("invalid resource version: {}", query.resource_version)));
    }
    if (start_rv > rv_ && !WaitForRvLocked(lock, start_rv)) {
      ApiError e = errors::Timeout(
          fmt::format("Too large resource version: {}, current: {}", start_rv, rv_), 1);
      e.causes.push_back({"ResourceVersionTooLarge", "Too large resource version", ""});
      return Reply::Error(e);
    }
    if (shutdown_) return Reply::Error(errors::ServiceUnavailable("apiserver is shutting down"));
  }
  auto w = std::shared_ptr<Watcher>(
      new Watcher(next_watcher_id_++, info->StorageKey(), target.ns, info->ApiVersion(), info->kind,
                  std::move(labels), std::move(fields), query.allow_bookmarks,
                  options_.bookmark_interval, query.timeout_seconds, rv_));
  if (from_now) {
    if (auto map = objects_.find(info->StorageKey()); map != objects_.end()) {
      for (const auto& [key, object] : map->second) {
        if (auto line = EventLine(*w, EventType::kAdded, object.get(), nullptr)) initial += *line;
      }
    }
    if (query.send_initial_events && query.allow_bookmarks) {
      initial += fmt::format(
          "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"{}\","
          "\"metadata\":{{\"resourceVersion\":\"{}\",\"annotations\":{{"
          "\"k8s.io/initial-events-end\":\"true\"}}}}}}}}\n",
          info->kind, info->ApiVersion(), rv_);
    }
  } else if (start_rv < compacted_rv_) {
    // kube-apiserver answers 200 and sends the 410 as an ERROR event, then ends the stream.
    ApiError e =
        errors::Expired(fmt::format("too old resource version: {} ({})", start_rv, compacted_rv_));
    initial = fmt::format("{{\"type\":\"ERROR\",\"object\":{}}}\n", e.ToJson());
    w->End(false);
  } else {
    for (const HistoryEvent& ev : history_) {
      if (ev.rv <= start_rv || ev.storage_key != w->storage_key_) continue;
      if (auto line = EventLine(*w, ev.type, ev.object.get(), ev.prev.get())) initial += *line;
    }
  }
  {
    std::lock_guard<std::mutex> wlock(w->mu_);
    w->buffer_ = std::move(initial);
  }
  watchers_[w->id()] = w;
  *watcher = w;
  return Reply::Ok(200, "");
}

void Store::RemoveWatcher(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(id);
}

size_t Store::DropWatchers() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, w] : watchers_) w->End(true);
  return watchers_.size();
}

void Store::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  for (auto& [id, w] : watchers_) w->End(false);
  rv_cv_.notify_all();
}

int64_t Store::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  history_.clear();
  compacted_rv_ = rv_;
  return rv_;
}

common::Status Store::InstallCrd(std::string_view crd_json) {
  std::lock_guard<std::mutex> lock(mu_);
  const Target target{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "", "", ""};
  ApiError error;
  auto info = LookupLocked(target, &error);
  json::Document doc;
  WriteContext ctx;
  if (auto e = DecodeObject(*info, crd_json, "application/json", &doc, nullptr)) {
    return common::InvalidArgumentError("{}", e->message);
  }
  Reply reply = CreateLocked(*info, target, doc, ctx);
  if (reply.code == 409) return common::AlreadyExistsError("{}", reply.body);
  if (reply.code != 201) {
    json::Document status;
    std::string message = reply.body;
    if (json::Parse(reply.body, &status).ok()) message = json::GetString(status, "message");
    return common::InvalidArgumentError("{}", message);
  }
  return common::OkStatus();
}

common::Status Store::EnsureNamespace(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  const Target target{"", "v1", "namespaces", "", "", ""};
  ApiError error;
  auto info = LookupLocked(target, &error);
  json::Document doc;
  const std::string body = fmt::format(
      "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{}\"}}}}", name);
  WriteContext ctx;
  if (auto e = DecodeObject(*info, body, "application/json", &doc, nullptr)) {
    return common::InvalidArgumentError("{}", e->message);
  }
  Reply reply = CreateLocked(*info, target, doc, ctx);
  if (reply.code != 201 && reply.code != 409) return common::InternalError("{}", reply.body);
  return common::OkStatus();
}

}  // namespace tools::apiserver
