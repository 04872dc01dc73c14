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
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/api/meta.h"
#include "common/compress/blob_arena.h"
#include "common/compress/dictionary_deflate.h"
#include "common/compress/shared_name.h"
#include "common/compress/slab_pool.h"
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
  using Encoder = std::function<std::string(const T&)>;

  // How a compressed cache keeps objects: each as `encode`'s JSON of the decoded object
  // (so fields T does not hold, such as metadata.managedFields, are not kept), deflated against
  // `dictionary` (best: the JSON of a typical object of the kind). `decoder` must read back
  // exactly what `encode` wrote: Decode(Encode(x)) == x.
  struct Compression {
    Encoder encode;
    std::string dictionary;
  };

  // A change to one object: old null → added; new null → deleted; both set and equal pointers
  // → periodic resync. decode_error is set (and new_obj null) when the new JSON did not decode.
  struct Change {
    ObjectKey key;
    Ptr old_obj;
    Ptr new_obj;
    Status decode_error;
  };
  using Handler = std::function<void(const Change&)>;

  // A cache of decoded objects: Get and List hand out the cached objects themselves.
  Informer(Client& client, ResourceType type, Decoder decoder, InformerOptions options,
           time::Clock& clock)
      : InformerBase(client, std::move(type), std::move(options), clock),
        decoder_(std::move(decoder)) {}
  // A compressed cache, for many objects read one at a time: each object takes its compressed
  // JSON (a volume ~0.1-0.3 KiB instead of ~3 KiB decoded), and every Get, List and handler call
  // decodes the objects it returns (each call its own copies). Handlers get one object decoded
  // at a time, also for a relist or a resync of every object.
  Informer(Client& client, ResourceType type, Decoder decoder, Compression compression,
           InformerOptions options, time::Clock& clock)
      : InformerBase(client, std::move(type), std::move(options), clock),
        decoder_(std::move(decoder)),
        encode_(std::move(compression.encode)),
        deflate_(std::make_unique<compress::DictionaryDeflate>(std::move(compression.dictionary))) {
  }
  ~Informer() override { Stop(); }

  // REQUIRES: called before Start().
  void AddHandler(Handler handler) { handlers_.push_back(std::move(handler)); }

  // The cached object; NotFound when absent; InvalidArgument (the decode error) when present
  // but undecodable.
  Result<Ptr> Get(const ObjectKey& key) const {
    Entry e;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        return NotFoundError("{} {} not found in cache", KindName(), key.ToString());
      }
      e = Copy(it->second);
    }
    return Load(key, e);
  }

  // metadata.resourceVersion of the cached object (decodable or not) without decoding it;
  // NotFound when absent.
  Result<std::string> ResourceVersion(const ObjectKey& key) const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      return NotFoundError("{} {} not found in cache", KindName(), key.ToString());
    }
    return it->second.resource_version;
  }

  // Snapshot of every decodable object, ordered by key. A compressed cache decodes them all.
  std::vector<Ptr> List() const {
    std::vector<std::pair<ObjectKey, Entry>> entries;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      entries.reserve(cache_.size());
      for (const auto& [key, slot] : cache_) {
        if (slot.decodable()) entries.emplace_back(key.ToObjectKey(), Copy(slot));
      }
    }
    std::vector<Ptr> out;
    out.reserve(entries.size());
    for (const auto& [key, entry] : entries) {
      if (auto p = Load(key, entry); p.ok()) out.push_back(std::move(p).value());
    }
    return out;
  }

  // Where a compressed cache keeps its bytes (for tests and memory accounting).
  struct ArenaStats {
    size_t live_bytes = 0;     // the cached objects' compressed bytes
    size_t garbage_bytes = 0;  // of replaced versions, until the next compaction
    size_t mapped_bytes = 0;
    uint64_t compactions = 0;
  };
  ArenaStats Arena() const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    return {arena_.live_bytes(), arena_.garbage_bytes(), arena_.mapped_bytes(), compactions_};
  }

  // Every key in the cache, decodable or not.
  std::vector<ObjectKey> Keys() const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    std::vector<ObjectKey> out;
    for (const auto& [key, slot] : cache_) out.push_back(key.ToObjectKey());
    return out;
  }

 private:
  // One object as the cache had it, outside the cache: `obj` (decoded cache, or a compressed
  // cache's fallback when compression failed), else `packed` (compressed), else `error`
  // (undecodable).
  struct Entry {
    Ptr obj;
    std::string packed;
    Status error;
    std::string resource_version;

    bool decodable() const { return obj || !packed.empty(); }
  };
  // An Entry in the cache: its compressed bytes are in arena_ (compress::BlobArena: blobs
  // replaced at every event, kept out of the heap's pages). Made by Store, read by Copy and given
  // back by Release, all with cache_mu_ held.
  struct Slot {
    Ptr obj;
    compress::BlobArena::Ref packed;
    Status error;
    std::string resource_version;

    bool decodable() const { return obj || packed; }
  };
  // The cache's key: an ObjectKey whose names are interned (compress/shared_name.h), in the slab
  // pool with the map's nodes rather than among a watch event's short-lived allocations
  // (compress/slab_pool.h), and shared with other long-lived maps that keep the same names.
  struct CacheKey {
    compress::SharedName namespace_;
    compress::SharedName name;

    explicit CacheKey(const ObjectKey& k)
        : namespace_(compress::SharedName::Of(k.namespace_)),
          name(compress::SharedName::Of(k.name)) {}
    ObjectKey ToObjectKey() const {
      return ObjectKey{std::string(namespace_.view()), std::string(name.view())};
    }
  };
  // Orders CacheKeys as ObjectKeys are ordered, and finds one by an ObjectKey.
  struct CacheKeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, std::string_view>(a.namespace_, a.name) <
             std::pair<std::string_view, std::string_view>(b.namespace_, b.name);
    }
  };
  using Cache = std::map<CacheKey, Slot, CacheKeyLess,
                         compress::SlabAllocator<std::pair<const CacheKey, Slot>>>;
  // A change to notify: the entries before and after (absent: nullopt), and the object just
  // decoded for `after` when there is one (so an event is not decoded twice).
  struct Pending {
    ObjectKey key;
    std::optional<Entry> before;
    std::optional<Entry> after;
    Ptr decoded;
  };

  static std::string KindName() { return "object"; }

  static ObjectKey KeyOf(const api::ObjectMeta& m) { return ObjectKey{m.namespace_, m.name}; }

  // The entry for `raw`; `decoded` gets the decoded object (null when it does not decode).
  Entry Decode(const RawObject& raw, Ptr* decoded) const {
    Entry e;
    e.resource_version = raw.metadata.resource_version;
    Result<T> r = decoder_(raw.json);
    if (!r.ok()) {
      e.error = r.status();
      return e;
    }
    *decoded = std::make_shared<const T>(std::move(r).value());
    if (deflate_ == nullptr) {
      e.obj = *decoded;
      return e;
    }
    auto packed = deflate_->Compress(encode_(**decoded));
    if (packed.ok()) {
      e.packed = std::move(packed).value();
    } else {
      e.obj = *decoded;  // kept decoded: costs memory, loses nothing
    }
    return e;
  }

  // The object of an entry: the cached pointer, a fresh decode, or the entry's error.
  Result<Ptr> Load(const ObjectKey& key, const Entry& e) const {
    if (e.obj) return e.obj;
    if (e.packed.empty()) return e.error;
    auto json = deflate_->Decompress(e.packed);
    if (!json.ok()) {
      return InternalError("cached {} {} cannot be read back: {}", KindName(), key.ToString(),
                           json.status().message());
    }
    Result<T> r = decoder_(*json);
    if (!r.ok()) {
      return InternalError("cached {} {} does not decode again: {}", KindName(), key.ToString(),
                           r.status().message());
    }
    return std::make_shared<const T>(std::move(r).value());
  }

  Ptr LoadOrNull(const ObjectKey& key, const std::optional<Entry>& e) const {
    if (!e) return nullptr;
    auto p = Load(key, *e);
    return p.ok() ? std::move(p).value() : nullptr;
  }

  // With cache_mu_ held: `e` as a slot (its bytes copied into the arena), a slot as an entry
  // (its bytes copied out), a slot's bytes given back.
  Slot Store(const Entry& e) {
    return Slot{e.obj, arena_.Put(e.packed), e.error, e.resource_version};
  }
  Entry Copy(const Slot& s) const {
    return Entry{s.obj, std::string(arena_.Get(s.packed)), s.error, s.resource_version};
  }
  void Release(Slot& s) {
    arena_.Free(s.packed);
    s.packed = {};
  }
  // With cache_mu_ held: once the arena's freed bytes outgrow a quarter of the live ones, every
  // slot's bytes move to a fresh arena (a copy of what is live, ~3 MiB at 10000 volumes).
  void CompactIfWanted() {
    if (!arena_.WantsCompaction()) return;
    compress::BlobArena fresh;
    for (auto& [key, slot] : cache_) {
      if (slot.packed) slot.packed = fresh.Put(arena_.Get(slot.packed));
    }
    arena_ = std::move(fresh);
    ++compactions_;
  }

  void Notify(const Change& c) {
    for (const auto& h : handlers_) h(c);
  }

  // Decodes what a pending change needs and tells the handlers.
  void Notify(Pending p) {
    Change c{p.key, LoadOrNull(p.key, p.before), nullptr, OkStatus()};
    if (p.after) {
      c.new_obj = p.decoded ? std::move(p.decoded) : LoadOrNull(p.key, p.after);
      c.decode_error = p.after->error;
    }
    p = Pending{};
    Notify(c);
  }

  // One change at a time: each one's decoded objects go with it, not with the whole batch.
  void NotifyAll(std::vector<Pending> pending) {
    for (auto& p : pending) Notify(std::move(p));
  }

  void OnReplace(std::vector<RawObject> objects) override {
    std::vector<Pending> pending;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      Cache next;
      for (auto& raw : objects) {
        ObjectKey key = KeyOf(raw.metadata);
        auto old = cache_.find(key);
        if (old != cache_.end() && old->second.resource_version == raw.metadata.resource_version) {
          next.insert(cache_.extract(old));  // unchanged: the node moves as it is
          continue;
        }
        Ptr decoded;
        Entry e = Decode(raw, &decoded);
        raw.json = std::string();  // a relist holds every object's JSON; drop each once read
        Pending p{key, std::nullopt, std::nullopt, deflate_ ? nullptr : decoded};
        if (old != cache_.end()) {
          p.before = Copy(old->second);
          Release(old->second);
          cache_.erase(old);
        }
        if (auto [slot, added] = next.try_emplace(CacheKey(key)); added) slot->second = Store(e);
        p.after = std::move(e);
        pending.push_back(std::move(p));
      }
      for (auto& [key, slot] : cache_) {  // what is left is gone
        pending.push_back(Pending{key.ToObjectKey(), Copy(slot), std::nullopt, nullptr});
        Release(slot);
      }
      cache_ = std::move(next);
      CompactIfWanted();
    }
    NotifyAll(std::move(pending));
  }

  void OnUpsert(RawObject raw) override {
    Pending p;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      p.key = KeyOf(raw.metadata);
      Entry e = Decode(raw, &p.decoded);
      auto it = cache_.find(p.key);
      if (it != cache_.end()) {
        p.before = Copy(it->second);
        Release(it->second);
        it->second = Store(e);
      } else {
        cache_.emplace(CacheKey(p.key), Store(e));
      }
      p.after = std::move(e);
      CompactIfWanted();
    }
    Notify(std::move(p));
  }

  void OnDelete(RawObject raw) override {
    Pending p;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      p.key = KeyOf(raw.metadata);
      auto it = cache_.find(p.key);
      if (it != cache_.end()) {
        p.before = Copy(it->second);
        Release(it->second);
        cache_.erase(it);
        CompactIfWanted();
      }
    }
    Notify(std::move(p));
  }

  void OnResync() override {
    std::vector<std::pair<ObjectKey, Entry>> entries;
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      entries.reserve(cache_.size());
      for (const auto& [key, slot] : cache_) entries.emplace_back(key.ToObjectKey(), Copy(slot));
    }
    for (auto& [key, entry] : entries) {
      Ptr obj;
      if (entry.decodable()) {
        auto p = Load(key, entry);
        if (!p.ok()) continue;
        obj = std::move(p).value();
      }
      Status error = std::move(entry.error);
      entry = Entry{};
      Notify(Change{key, obj, obj, std::move(error)});
    }
  }

  const Decoder decoder_;
  const Encoder encode_;                                        // compressed cache only
  const std::unique_ptr<compress::DictionaryDeflate> deflate_;  // null: decoded cache
  std::vector<Handler> handlers_;
  mutable std::mutex cache_mu_;
  Cache cache_;                // guarded by cache_mu_
  compress::BlobArena arena_;  // guarded by cache_mu_
  uint64_t compactions_ = 0;   // guarded by cache_mu_
};

}  // namespace common::kube
