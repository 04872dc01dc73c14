#include "common/kube/client.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/api/json.h"
#include "common/text/strings.h"

namespace common::kube {
namespace {

// Non-JSON error bodies (from proxies, load balancers) are kept up to this many bytes.
constexpr size_t kMaxRawErrorText = 512;
// Page size ListAll uses when the caller sets none (client-go's pager default).
constexpr int64_t kDefaultPageSize = 500;
// Used for the idle bound of a watch without timeoutSeconds: the API server's own default
// timeout is at most twice its --min-request-timeout (1800 s).
constexpr std::chrono::seconds kDefaultWatchIdle{3600};

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string Truncate(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}... ({} bytes)", s.substr(0, cut), s.size());
}

std::string Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string StringMember(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::string ResourceVersionOf(const rapidjson::Value& obj) {
  if (!obj.IsObject()) return {};
  auto meta = obj.FindMember("metadata");
  if (meta == obj.MemberEnd()) return {};
  return StringMember(meta->value, "resourceVersion");
}

// Sets obj[key] = value when it is absent, null or "".
void FillString(rapidjson::Value& obj, const char* key, const std::string& value,
                rapidjson::Document::AllocatorType& alloc) {
  auto it = obj.FindMember(key);
  if (it != obj.MemberEnd()) {
    if (it->value.IsString() && it->value.GetStringLength() > 0) return;
    it->value.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc);
    return;
  }
  obj.AddMember(
      rapidjson::StringRef(key),
      rapidjson::Value(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc),
      alloc);
}

Status ValidateSegment(std::string_view what, std::string_view value) {
  if (value == "." || value == "..")
    return InvalidArgumentError("{} may not be \"{}\"", what, value);
  if (value.find_first_of("/%") != std::string_view::npos) {
    return InvalidArgumentError("{} \"{}\" may not contain '/' or '%'", what, value);
  }
  return OkStatus();
}

Status ValidateNamespace(const ResourceType& type, std::string_view ns, bool required) {
  if (type.namespaced && required && ns.empty()) {
    return InvalidArgumentError("{} is namespaced: a namespace is required", type.kind);
  }
  return ns.empty() ? OkStatus() : ValidateSegment("namespace", ns);
}

Status ValidateKey(const ResourceType& type, const ObjectKey& key) {
  if (key.name.empty()) return InvalidArgumentError("{}: a name is required", type.kind);
  RETURN_IF_ERROR(ValidateSegment("name", key.name));
  return ValidateNamespace(type, key.namespace_, /*required=*/true);
}

Result<ListResult> ParseList(const ResourceType& type, const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) {
    return InternalError("decoding the {} list: {} at offset {}", type.plural,
                         rapidjson::GetParseError_En(doc.GetParseError()), doc.GetErrorOffset());
  }
  if (!doc.IsObject()) return InternalError("decoding the {} list: not an object", type.plural);

  // Items of a list may lack apiVersion and kind; they are the list's, without "List".
  std::string kind = StringMember(doc, "kind");
  if (kind.size() > 4 && kind.ends_with("List")) {
    kind.resize(kind.size() - 4);
  } else {
    kind = type.kind;
  }
  std::string api_version = StringMember(doc, "apiVersion");
  if (api_version.empty()) api_version = type.ApiVersion();

  ListResult result;
  auto meta = doc.FindMember("metadata");
  if (meta != doc.MemberEnd()) {
    result.resource_version = StringMember(meta->value, "resourceVersion");
    result.continue_token = StringMember(meta->value, "continue");
  }
  auto items = doc.FindMember("items");
  if (items == doc.MemberEnd() || items->value.IsNull()) return result;
  if (!items->value.IsArray()) {
    return InternalError("decoding the {} list: items is not an array", type.plural);
  }
  result.items.reserve(items->value.Size());
  for (rapidjson::Value& item : items->value.GetArray()) {
    if (!item.IsObject()) {
      return InternalError("decoding the {} list: an item is not an object", type.plural);
    }
    FillString(item, "apiVersion", api_version, doc.GetAllocator());
    FillString(item, "kind", kind, doc.GetAllocator());
    result.items.push_back(Serialize(item));
  }
  return result;
}

std::string DeleteOptionsBody(const DeleteOptions& options) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("DeleteOptions");
  w.Key("apiVersion");
  w.String("v1");
  if (!options.precondition_uid.empty() || !options.precondition_resource_version.empty()) {
    w.Key("preconditions");
    w.StartObject();
    if (!options.precondition_uid.empty()) {
      w.Key("uid");
      w.String(options.precondition_uid);
    }
    if (!options.precondition_resource_version.empty()) {
      w.Key("resourceVersion");
      w.String(options.precondition_resource_version);
    }
    w.EndObject();
  }
  if (!options.propagation_policy.empty()) {
    w.Key("propagationPolicy");
    w.String(options.propagation_policy);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Splits a watch response body into its JSON objects as the bytes arrive, whatever the chunk
// boundaries: an object may span chunks and a chunk may hold several objects. The API server
// writes one object per line, but only the JSON structure is relied on here.
class WatchDecoder {
 public:
  WatchDecoder(const ResourceType& type, const std::function<bool(const WatchEvent&)>& on_event,
               std::stop_token stop)
      : type_(type), on_event_(on_event), stop_(std::move(stop)) {}

  // Consumes one chunk. False: stop reading; status() says why.
  bool Feed(std::string_view chunk) {
    if (Stopped()) return false;
    buf_.append(chunk.data(), chunk.size());
    for (size_t i = scan_pos_; i < buf_.size(); ++i) {
      const char c = buf_[i];
      if (depth_ == 0) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c != '{') {
          status_ = InternalError("watch stream of {}: unexpected byte 0x{:02x} between events",
                                  type_.plural, static_cast<unsigned char>(c));
          return false;
        }
        start_ = i;
        depth_ = 1;
        continue;
      }
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) {
          if (!HandleEvent(std::string_view(buf_).substr(start_, i - start_ + 1))) return false;
          if (Stopped()) return false;
        }
      }
    }
    // Keep only the unfinished object.
    if (depth_ == 0) {
      buf_.clear();
      scan_pos_ = 0;
    } else {
      buf_.erase(0, start_);
      start_ = 0;
      scan_pos_ = buf_.size();
    }
    return true;
  }

  // OK while reading may go on; Cancelled after stop or on_event returning false; the error of
  // an ERROR event or of undecodable data.
  const Status& status() const { return status_; }
  bool HasPartialEvent() const { return depth_ != 0; }

 private:
  bool Stopped() {
    if (status_.ok() && stop_.stop_requested()) {
      status_ = Status(StatusCode::kCancelled, "watch stopped");
    }
    return !status_.ok();
  }

  bool HandleEvent(std::string_view text) {
    common::api::json::ScratchDocument scratch;
    rapidjson::Document& doc = scratch.doc();
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      status_ = InternalError("watch stream of {}: undecodable event: {}", type_.plural,
                              Truncate(text, kMaxRawErrorText));
      return false;
    }
    const std::string type = StringMember(doc, "type");
    auto object = doc.FindMember("object");
    if (object == doc.MemberEnd() || !object->value.IsObject()) {
      status_ = InternalError("watch stream of {}: {} event without an object", type_.plural, type);
      return false;
    }
    WatchEvent event;
    if (type == "ADDED") {
      event.type = WatchEvent::Type::kAdded;
    } else if (type == "MODIFIED") {
      event.type = WatchEvent::Type::kModified;
    } else if (type == "DELETED") {
      event.type = WatchEvent::Type::kDeleted;
    } else if (type == "BOOKMARK") {
      event.type = WatchEvent::Type::kBookmark;
    } else if (type == "ERROR") {
      // A metav1.Status; code 410 (resourceVersion too old) becomes OutOfRange.
      int code = 500;
      auto c = object->value.FindMember("code");
      if (c != object->value.MemberEnd() && c->value.IsInt()) code = c->value.GetInt();
      status_ = StatusFromResponse(code, Serialize(object->value), /*is_create=*/false);
      if (status_.ok()) {
        status_ = InternalError("watch stream of {}: ERROR event with code {}: {}", type_.plural,
                                code, Truncate(text, kMaxRawErrorText));
      }
      return false;
    } else {
      status_ = InternalError("watch stream of {}: unknown event type \"{}\"", type_.plural, type);
      return false;
    }
    FillString(object->value, "apiVersion", type_.ApiVersion(), doc.GetAllocator());
    FillString(object->value, "kind", type_.kind, doc.GetAllocator());
    event.resource_version = ResourceVersionOf(object->value);
    event.object = Serialize(object->value);
    if (!on_event_(event)) {
      status_ = Status(StatusCode::kCancelled, "watch stopped by its event handler");
      return false;
    }
    return true;
  }

  const ResourceType& type_;
  const std::function<bool(const WatchEvent&)>& on_event_;
  const std::stop_token stop_;
  Status status_;
  std::string buf_;      // unconsumed bytes; starts with the unfinished object, if any
  size_t scan_pos_ = 0;  // bytes of buf_ already scanned
  size_t start_ = 0;     // start of the current object in buf_ (when depth_ > 0)
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
};

}  // namespace

Status StatusFromResponse(int http_status, std::string_view body, bool is_create) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    const std::string kind = StringMember(doc, "kind");
    const std::string message = StringMember(doc, "message");
    if (kind == "Status" || (kind.empty() && !message.empty())) {
      return HttpToStatus(http_status, is_create, message, StringMember(doc, "reason"));
    }
  }
  const std::string_view trimmed = text::TrimSpace(body);
  return HttpToStatus(http_status, is_create,
                      trimmed.empty() ? fmt::format("HTTP {}", http_status)
                                      : fmt::format("HTTP {}: {}", http_status,
                                                    Truncate(trimmed, kMaxRawErrorText)));
}

Client::Client(Transport& transport, std::chrono::milliseconds request_timeout)
    : transport_(transport), request_timeout_(request_timeout) {}

Result<std::string> Client::Unary(HttpRequest request, bool is_create) {
  request.timeout = request_timeout_;
  Result<HttpResponse> response = transport_.Do(request);
  if (!response.ok()) {
    return response.status().WithContext(fmt::format("{} {}", request.method, request.path));
  }
  if (response->status >= 200 && response->status < 300) return std::move(response->body);
  return StatusFromResponse(response->status, response->body, is_create);
}

Result<std::string> Client::Get(const ResourceType& type, const ObjectKey& key) {
  RETURN_IF_ERROR(ValidateKey(type, key));
  HttpRequest request;
  request.method = "GET";
  request.path = type.Path(key.namespace_, key.name);
  return Unary(std::move(request), /*is_create=*/false);
}

Result<ListResult> Client::List(const ResourceType& type, std::string_view ns,
                                const ListOptions& options) {
  RETURN_IF_ERROR(ValidateNamespace(type, ns, /*required=*/false));
  HttpRequest request;
  request.method = "GET";
  request.path = type.Path(ns);
  if (!options.label_selector.empty())
    request.query.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty())
    request.query.emplace_back("fieldSelector", options.field_selector);
  if (options.limit > 0) request.query.emplace_back("limit", std::to_string(options.limit));
  if (!options.continue_token.empty())
    request.query.emplace_back("continue", options.continue_token);
  if (!options.resource_version.empty()) {
    request.query.emplace_back("resourceVersion", options.resource_version);
  }
  ASSIGN_OR_RETURN(std::string body, Unary(std::move(request), /*is_create=*/false));
  return ParseList(type, body);
}

Result<ListResult> Client::ListAll(const ResourceType& type, std::string_view ns,
                                   ListOptions options) {
  if (options.limit <= 0) options.limit = kDefaultPageSize;
  // A continue token expires with its snapshot (410); then the whole list starts over, once.
  for (int round = 0;; ++round) {
    ListResult all;
    ListOptions page = options;
    bool restart = false;
    for (bool first = true;; first = false) {
      Result<ListResult> result = List(type, ns, page);
      if (!result.ok()) {
        if (!first && round == 0 && result.status().code() == StatusCode::kOutOfRange) {
          restart = true;
          break;
        }
        return result.status();
      }
      if (first) all.resource_version = result->resource_version;
      all.items.insert(all.items.end(), std::make_move_iterator(result->items.begin()),
                       std::make_move_iterator(result->items.end()));
      if (result->continue_token.empty()) break;
      page.continue_token = std::move(result->continue_token);
      // The token carries the snapshot's resourceVersion; the server rejects both together.
      page.resource_version.clear();
    }
    if (!restart) return all;
  }
}

Result<std::string> Client::Create(const ResourceType& type, std::string_view ns,
                                   std::string body) {
  RETURN_IF_ERROR(ValidateNamespace(type, ns, /*required=*/true));
  HttpRequest request;
  request.method = "POST";
  request.path = type.Path(ns);
  request.body = std::move(body);
  request.content_type = "application/json";
  return Unary(std::move(request), /*is_create=*/true);
}

Result<std::string> Client::Update(const ResourceType& type, const ObjectKey& key,
                                   std::string body) {
  RETURN_IF_ERROR(ValidateKey(type, key));
  HttpRequest request;
  request.method = "PUT";
  request.path = type.Path(key.namespace_, key.name);
  request.body = std::move(body);
  request.content_type = "application/json";
  return Unary(std::move(request), /*is_create=*/false);
}

Result<std::string> Client::UpdateStatus(const ResourceType& type, const ObjectKey& key,
                                         std::string body) {
  RETURN_IF_ERROR(ValidateKey(type, key));
  HttpRequest request;
  request.method = "PUT";
  request.path = type.Path(key.namespace_, key.name, "status");
  request.body = std::move(body);
  request.content_type = "application/json";
  return Unary(std::move(request), /*is_create=*/false);
}

Result<std::string> Client::MergePatch(const ResourceType& type, const ObjectKey& key,
                                       std::string patch, std::string_view subresource) {
  RETURN_IF_ERROR(ValidateKey(type, key));
  if (!subresource.empty()) RETURN_IF_ERROR(ValidateSegment("subresource", subresource));
  HttpRequest request;
  request.method = "PATCH";
  request.path = type.Path(key.namespace_, key.name, subresource);
  request.body = std::move(patch);
  request.content_type = "application/merge-patch+json";
  return Unary(std::move(request), /*is_create=*/false);
}

Status Client::Delete(const ResourceType& type, const ObjectKey& key,
                      const DeleteOptions& options) {
  RETURN_IF_ERROR(ValidateKey(type, key));
  HttpRequest request;
  request.method = "DELETE";
  request.path = type.Path(key.namespace_, key.name);
  request.body = DeleteOptionsBody(options);
  request.content_type = "application/json";
  return Unary(std::move(request), /*is_create=*/false).status();
}

Status Client::Watch(const ResourceType& type, std::string_view ns, const WatchOptions& options,
                     const std::function<bool(const WatchEvent&)>& on_event, std::stop_token stop) {
  RETURN_IF_ERROR(ValidateNamespace(type, ns, /*required=*/false));
  HttpRequest request;
  request.method = "GET";
  request.path = type.Path(ns);
  request.query.emplace_back("watch", "1");
  if (!options.resource_version.empty()) {
    request.query.emplace_back("resourceVersion", options.resource_version);
  }
  if (!options.label_selector.empty())
    request.query.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty())
    request.query.emplace_back("fieldSelector", options.field_selector);
  if (options.allow_bookmarks) request.query.emplace_back("allowWatchBookmarks", "true");
  if (options.timeout_seconds > 0) {
    request.query.emplace_back("timeoutSeconds", std::to_string(options.timeout_seconds));
  }
  request.timeout = request_timeout_;
  // The server ends the watch after timeoutSeconds and may stay silent until then (bookmarks
  // come about once a minute at best), so only silence beyond that means a dead connection.
  const std::chrono::seconds server_end = options.timeout_seconds > 0
                                              ? std::chrono::seconds(options.timeout_seconds)
                                              : kDefaultWatchIdle;
  request.stream_idle_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(server_end) + request_timeout_;
  request.cancel = stop;

  WatchDecoder decoder(type, on_event, stop);
  std::string error_body;
  Result<int> status = transport_.Stream(
      request, [&decoder](std::string_view chunk) { return decoder.Feed(chunk); }, &error_body);
  if (!decoder.status().ok()) return decoder.status();
  if (!status.ok()) {
    if (status.status().code() == StatusCode::kCancelled) {
      return Status(StatusCode::kCancelled, "watch stopped");
    }
    return status.status().WithContext(fmt::format("watching {}", request.path));
  }
  if (*status < 200 || *status >= 300) {
    return StatusFromResponse(*status, error_body, /*is_create=*/false);
  }
  if (decoder.HasPartialEvent()) {
    return UnavailableError("watching {}: the stream ended in the middle of an event",
                            request.path);
  }
  return OkStatus();
}

}  // namespace common::kube
