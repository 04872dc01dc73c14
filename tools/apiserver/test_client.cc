#include "tools/apiserver/test_client.h"

#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tools::apiserver::testing {
namespace {

HttpReply Convert(const httplib::Result& result) {
  HttpReply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.body = result->body;
  reply.retry_after = result->get_header_value("Retry-After");
  reply.warning = result->get_header_value("Warning");
  reply.content_type = result->get_header_value("Content-Type");
  reply.json.Parse(reply.body.c_str(), reply.body.size());
  if (reply.json.HasParseError()) reply.json.SetNull();
  return reply;
}

}  // namespace

std::string HttpReply::Str(const char* pointer) const {
  const rapidjson::Value* v = rapidjson::Pointer(pointer).Get(json);
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : "";
}

int64_t HttpReply::Int(const char* pointer) const {
  const rapidjson::Value* v = rapidjson::Pointer(pointer).Get(json);
  return v != nullptr && v->IsInt64() ? v->GetInt64() : -1;
}

bool HttpReply::Has(const char* pointer) const {
  return rapidjson::Pointer(pointer).Get(json) != nullptr;
}

TestClient::TestClient(const std::string& url) : client_(url) {
  client_.set_read_timeout(30, 0);
  client_.set_connection_timeout(10, 0);
}

HttpReply TestClient::Get(const std::string& path) { return Convert(client_.Get(path.c_str())); }

HttpReply TestClient::Post(const std::string& path, const std::string& body,
                           const std::string& content_type) {
  return Convert(client_.Post(path.c_str(), body, content_type.c_str()));
}

HttpReply TestClient::Put(const std::string& path, const std::string& body,
                          const std::string& content_type) {
  return Convert(client_.Put(path.c_str(), body, content_type.c_str()));
}

HttpReply TestClient::Patch(const std::string& path, const std::string& body,
                            const std::string& content_type) {
  return Convert(client_.Patch(path.c_str(), body, content_type.c_str()));
}

HttpReply TestClient::Delete(const std::string& path, const std::string& body) {
  if (body.empty()) return Convert(client_.Delete(path.c_str()));
  return Convert(client_.Delete(path.c_str(), body, "application/json"));
}

WatchStream::WatchStream(const std::string& url, const std::string& path) : client_(url) {
  client_.set_read_timeout(60, 0);
  thread_ = std::thread([this, path] {
    httplib::Result result = client_.Get(
        path.c_str(),
        [this](const httplib::Response& response) {
          std::lock_guard<std::mutex> lock(mu_);
          status_ = response.status;
          return true;
        },
        [this](const char* data, size_t length) {
          std::lock_guard<std::mutex> lock(mu_);
          partial_.append(data, length);
          size_t nl;
          while ((nl = partial_.find('\n')) != std::string::npos) {
            std::string line = partial_.substr(0, nl);
            partial_.erase(0, nl + 1);
            auto event = std::make_unique<WatchEvent>();
            rapidjson::Document doc;
            doc.Parse(line.c_str(), line.size());
            if (!doc.HasParseError() && doc.IsObject()) {
              if (doc.HasMember("type") && doc["type"].IsString())
                event->type = doc["type"].GetString();
              if (doc.HasMember("object")) {
                event->object.CopyFrom(doc["object"], event->object.GetAllocator());
                const rapidjson::Value* name =
                    rapidjson::Pointer("/metadata/name").Get(event->object);
                const rapidjson::Value* rv =
                    rapidjson::Pointer("/metadata/resourceVersion").Get(event->object);
                if (name != nullptr && name->IsString()) event->name = name->GetString();
                if (rv != nullptr && rv->IsString()) event->resource_version = rv->GetString();
                rapidjson::StringBuffer buffer;
                rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
                event->object.Accept(w);
                event->raw = buffer.GetString();
              }
            }
            events_.push_back(std::move(event));
          }
          cv_.notify_all();
          return !stop_.load();
        });
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    clean_ = static_cast<bool>(result);
    if (result) status_ = result->status;
    cv_.notify_all();
  });
}

WatchStream::~WatchStream() {
  stop_ = true;
  client_.stop();
  thread_.join();
}

size_t WatchStream::WaitForEvents(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return events_.size() >= n || ended_; });
  return events_.size();
}

bool WatchStream::WaitForEnd(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return ended_; });
}

WatchEvent WatchStream::Event(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  WatchEvent copy;
  if (i >= events_.size()) return copy;
  copy.type = events_[i]->type;
  copy.name = events_[i]->name;
  copy.resource_version = events_[i]->resource_version;
  copy.raw = events_[i]->raw;
  copy.object.CopyFrom(events_[i]->object, copy.object.GetAllocator());
  return copy;
}

size_t WatchStream::EventCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

bool WatchStream::EndedCleanly() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_ && clean_;
}

int WatchStream::http_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

}  // namespace tools::apiserver::testing
