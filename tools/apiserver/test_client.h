// Test-only helpers for tools/apiserver tests: a small JSON HTTP client over cpp-httplib and a
// watch-stream reader that collects events on its own thread.
//
// Thread contract: TestClient is used by one thread; WatchStream is read by the test thread
// while its reader thread appends events (internally synchronized).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

namespace tools::apiserver::testing {

inline std::string SourceDir() { return MESHSTOR_SOURCE_DIR; }

struct HttpReply {
  int status = 0;  // 0: no response (connection error)
  std::string body;
  std::string retry_after;
  std::string warning;  // the first Warning header
  std::string content_type;
  rapidjson::Document json;  // parsed body; Null when it is not JSON

  // String at a JSON pointer such as "/metadata/name"; "" when absent.
  std::string Str(const char* pointer) const;
  // Integer at a JSON pointer; -1 when absent.
  int64_t Int(const char* pointer) const;
  bool Has(const char* pointer) const;
};

class TestClient {
 public:
  explicit TestClient(const std::string& url);
  // Every later request carries "Authorization: Bearer <token>".
  void SetBearerToken(const std::string& token) { client_.set_bearer_token_auth(token); }

  HttpReply Get(const std::string& path);
  HttpReply Post(const std::string& path, const std::string& body,
                 const std::string& content_type = "application/json");
  HttpReply Put(const std::string& path, const std::string& body,
                const std::string& content_type = "application/json");
  HttpReply Patch(const std::string& path, const std::string& body,
                  const std::string& content_type = "application/merge-patch+json");
  HttpReply Delete(const std::string& path, const std::string& body = "");

 private:
  httplib::Client client_;
};

struct WatchEvent {
  std::string type;
  std::string name;
  std::string resource_version;
  std::string raw;  // the "object" JSON
  rapidjson::Document object;
};

// Reads a watch stream on a background thread.
class WatchStream {
 public:
  WatchStream(const std::string& url, const std::string& path);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Waits until at least `n` events arrived or the stream ended (bounded); returns how many.
  size_t WaitForEvents(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until the stream ended (bounded); false on timeout.
  bool WaitForEnd(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // A snapshot copy of event i's fields (type, name, resource_version, raw).
  WatchEvent Event(size_t i) const;
  size_t EventCount() const;
  // After the end: whether the body ended with the terminating chunk (a clean end).
  bool EndedCleanly() const;
  int http_status() const;

 private:
  httplib::Client client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string partial_;
  std::vector<std::unique_ptr<WatchEvent>> events_;
  bool ended_ = false;
  bool clean_ = false;
  int status_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tools::apiserver::testing
