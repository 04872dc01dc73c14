// Informer: a list+watch cache of one resource type, as client-go's shared informer.
//
// Run() lists every object (paging), then watches from the list's resourceVersion with
// bookmarks, applying each event to the cache and telling handlers. When the watch ends it
// re-watches from the last resourceVersion seen; on 410 Gone (resourceVersion too old) it
// relists transparently and reports the difference as changes; other failures back off with
// jitter and retry. Readers get immutable snapshots (shared_ptr<const T>) that stay valid after
// the cache moves on. Objects whose JSON does not decode into T are kept by key with their
// decode error, so a controller can report a bad CR instead of never hearing of it.
//
// Thread contract: Start() runs the informer on its own thread; Get/List/HasSynced are safe from
// any thread; handlers run on the informer thread, one at a time, after the cache is updated,
// and must not block for long (queue a key instead).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/api/meta.h"
#include "common/kube/client.h"
#include "common/kube/resource.h"
#include "common/status/status.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"

namespace common::kube {

struct InformerOptions {
  std::string ns;  // "" = all namespaces (or cluster-scoped)
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  int64_t watch_timeout_seconds = 300;         // a little jitter is added per watch
  std::chrono::milliseconds resync_period{0};  // 0 = never; else every object is re-announced
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
};

// One cached object as raw JSON with its metadata (the type-independent part of the cache).
struct RawObject {
  api::ObjectMeta metadata;
  std::string json;
};

// The type-independent list/watch loop. Informer<T> below is what callers use.
class InformerBase {
 public:
  // `client` and `clock` must outlive the informer.
  InformerBase(Client& client, ResourceType type, InformerOptions options, time::Clock& clock);
  InformerBase(const InformerBase&) = delete;
  InformerBase& operator=(const InformerBase&) = delete;
  virtual ~InformerBase();

  // Starts the list/watch thread (and the resync thread). Idempotent.
  void Start();
  // Stops and joins the threads; bounded by the transport's per-chunk timeout. Idempotent.
  // Subclasses must call it from their destructor.
  void Stop();

  // True once the first list has been applied.
  bool HasSynced() const;
  // Blocks (real time) until synced or `timeout`; false on timeout or stop.
  bool WaitForSync(std::chrono::milliseconds timeout);
  // The resourceVersion the cache reflects.
  std::string LastResourceVersion() const;
  // Times the informer had to relist after the first list (410s and failures), for tests and
  // metrics.
  int RelistCount() const;

 protected:
  // Called on the informer thread. OnReplace gets the full set after a (re)list.
  virtual void OnReplace(std::vector<RawObject> objects) = 0;
  virtual void OnUpsert(RawObject object) = 0;
  virtual void OnDelete(RawObject object) = 0;
  virtual void OnResync() = 0;

 private:
  void Run();
  void ResyncLoop();
  // Waits on the clock for `d` or until Stop(); returns false when stopping.
  bool Sleep(std::chrono::steady_clock::duration d);
  void Apply(const WatchEvent& event);

  Client& client_;
  const ResourceType type_;
  const InformerOptions options_;
  time::Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool synced_ = false;
  std::string resource_version_;
  int relists_ = 0;
  std::stop_source stop_;  // requested once, by Stop(); its token cancels the watch
  std::thread thread_;
  std::thread resync_thread_;
};

template <typename T>
class Informer final : public InformerBase {
 public:
  using Ptr = std::shared_ptr<const T>;
  using Decoder = std::function<Result<T>(std::string_view json)>;

  // A change to one object: old null → added; new null → deleted; both set and equal pointers
  // → periodic resync. decode_error is set (and new_obj null) when the new JSON did not decode.
  struct Change {
    ObjectKey key;
    Ptr old_obj;
    Ptr new_obj;
    Status decode_error;
  };
  using Handler = std::function<void(const Change&)>;

  Informer(Client& client, ResourceType type, Decoder decoder, InformerOptions options,
           time::Clock& clock)
      : InformerBase(client, std::move(type), std::move(options), clock),
        decoder_(std::move(decoder)) {}
  ~Informer() override { Stop(); }

  // REQUIRES: called before Start().
  void AddHandler(Handler handler) { handlers_.push_back(std::move(handler)); }

  // The cached object; NotFound when absent; InvalidArgument (the decode error) when present
  // but undecodable.
  Result<Ptr> Get(const ObjectKey& key) const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      return NotFoundError("{} {} not found in cache", KindName(), key.ToString());
    }
    if (!it->second.obj) return it->second.error;
    return it->second.obj;
  }

  // Snapshot of every decodable object, ordered by key.
  std::vector<Ptr> List() const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    std::vector<Ptr> out;
    out.reserve(cache_.size());
    for (const auto& [key, entry] : cache_) {
      if (entry.obj) out.push_back(entry.obj);
    }
    return out;
  }

  // Every key in the cache, decodable or not.
  std::vector<ObjectKey> Keys() const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    std::vector<ObjectKey> out;
    for (const auto& [key, entry] : cache_) out.push_back(key);
    return out;
  }

 private:
  struct Entry {
    Ptr obj;
    Status error;
    std::string resource_version;
  };

  static std::string KindName() { return "object"; }

  static ObjectKey KeyOf(const api::ObjectMeta& m) { return ObjectKey{m.namespace_, m.name}; }

  Entry Decode(const RawObject& raw) {
    Entry e;
    e.resource_version = raw.metadata.resource_version;
    Result<T> r = decoder_(raw.json);
    if (r.ok()) {
      e.obj = std::make_shared<const T>(std::move(r).value());
    } else {
      e.error = r.status();
    }
    return e;
  }

  void Notify(const Change& c) {
    for (const auto& h : handlers_) h(c);
  }

  void OnReplace(std::vector<RawObject> objects) override {
    std::vector<Change> changes;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      std::map<ObjectKey, Entry> next;
      for (auto& raw : objects) {
        ObjectKey key = KeyOf(raw.metadata);
        auto old = cache_.find(key);
        if (old != cache_.end() && old->second.resource_version == raw.metadata.resource_version) {
          next.emplace(key, old->second);  // unchanged
          continue;
        }
        Entry e = Decode(raw);
        changes.push_back(
            Change{key, old == cache_.end() ? nullptr : old->second.obj, e.obj, e.error});
        next.emplace(key, std::move(e));
      }
      for (const auto& [key, entry] : cache_) {
        if (!next.count(key)) changes.push_back(Change{key, entry.obj, nullptr, OkStatus()});
      }
      cache_ = std::move(next);
    }
    for (const auto& c : changes) Notify(c);
  }

  void OnUpsert(RawObject raw) override {
    Change change;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      ObjectKey key = KeyOf(raw.metadata);
      Entry e = Decode(raw);
      auto it = cache_.find(key);
      change = Change{key, it == cache_.end() ? nullptr : it->second.obj, e.obj, e.error};
      cache_[key] = std::move(e);
    }
    Notify(change);
  }

  void OnDelete(RawObject raw) override {
    Change change;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      ObjectKey key = KeyOf(raw.metadata);
      auto it = cache_.find(key);
      change = Change{key, it == cache_.end() ? nullptr : it->second.obj, nullptr, OkStatus()};
      if (it != cache_.end()) cache_.erase(it);
    }
    Notify(change);
  }

  void OnResync() override {
    std::vector<Change> changes;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      for (const auto& [key, entry] : cache_) {
        changes.push_back(Change{key, entry.obj, entry.obj, entry.error});
      }
    }
    for (const auto& c : changes) Notify(c);
  }

  const Decoder decoder_;
  std::vector<Handler> handlers_;
  mutable std::mutex cache_mu_;
  std::map<ObjectKey, Entry> cache_;
};

}  // namespace common::kube
