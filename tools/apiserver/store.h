// Store: the object database and REST semantics of the test API server, independent of HTTP.
//
// One global resourceVersion counter is bumped by every write. Objects are kept per group and
// resource; a bounded history of events (with the previous object of each) serves watches from
// an old resourceVersion and consistent paged lists. All verbs follow kube-apiserver: metadata
// system fields, generation on spec changes, status subresource isolation, optimistic
// concurrency, merge and JSON patches, finalizers and deletionTimestamp, CRD schema pruning and
// validation, label and field selectors, and metav1.Status errors (see api_errors.h).
//
// Watches: Watch() registers a Watcher whose queue the store fills, under the store lock, with
// ready-to-send event lines; the HTTP layer drains it with Watcher::Next() without the store
// lock, so a slow client never blocks a write.
//
// Thread contract: every public method is safe to call from any thread. One mutex guards all
// store state; each Watcher has its own mutex (lock order: store, then watcher).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"
#include "tools/apiserver/api_errors.h"
#include "tools/apiserver/json_util.h"
#include "tools/apiserver/resources.h"
#include "tools/apiserver/selectors.h"

namespace tools::apiserver {

// What a request path names.
struct Target {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  std::string ns;  // from namespaces/{ns}/; "" for cluster-scoped or all namespaces
  std::string name;
  std::string subresource;  // "" or "status"
};

// The query parameters the store understands.
struct Query {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  std::string resource_version_match;
  std::string continue_token;
  int64_t limit = 0;
  bool allow_bookmarks = false;
  bool send_initial_events = false;
  int64_t timeout_seconds = 0;  // watches: end the stream cleanly after this long; 0: never
  bool dry_run = false;
  std::string field_validation;  // "", Ignore, Warn, Strict (unknown fields of custom resources)
};

// An HTTP answer: status code and JSON body.
struct Reply {
  int code = 200;
  std::string body;
  int retry_after_seconds = 0;        // Retry-After header when > 0
  std::vector<std::string> warnings;  // one Warning header each ("299 - \"...\"")

  static Reply Error(const ApiError& e);
  static Reply Ok(int code, std::string body);
};

// One open watch. The store fills it; one HTTP thread drains it.
class Watcher {
 public:
  enum class Next { kData, kEnd, kDrop };

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Blocks until event lines, a due bookmark, the watch timeout, or the end. kData: `out` holds
  // one or more newline-terminated JSON lines. kEnd: finish the response cleanly. kDrop: abort
  // the connection without a final chunk.
  Next Wait(std::string* out);

  uint64_t id() const { return id_; }

 private:
  friend class Store;
  Watcher(uint64_t id, std::string storage_key, std::string ns, std::string api_version,
          std::string kind, LabelSelector labels, FieldSelector fields, bool bookmarks,
          std::chrono::milliseconds bookmark_interval, int64_t timeout_seconds,
          int64_t progress_rv);

  // Queues `line` (when non-null) and records that the watcher has seen everything up to `rv`.
  void Deliver(const std::string* line, int64_t rv);
  // Ends the watch: cleanly, or abruptly when `drop`.
  void End(bool drop);

  const uint64_t id_;
  const std::string storage_key_;
  const std::string ns_;
  const std::string api_version_;
  const std::string kind_;
  const LabelSelector labels_;
  const FieldSelector fields_;
  const bool bookmarks_;
  const std::chrono::milliseconds bookmark_interval_;
  const std::optional<std::chrono::steady_clock::time_point> deadline_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;                                                 // guarded by mu_
  int64_t progress_rv_ = 0;                                            // guarded by mu_
  enum class State { kOpen, kEnded, kDropped } state_ = State::kOpen;  // guarded by mu_
  std::chrono::steady_clock::time_point next_bookmark_;                // guarded by mu_
};

class Store {
 public:
  struct Options {
    size_t history_size = 10000;  // events retained for watches and paged lists
    std::chrono::milliseconds bookmark_interval{1000};
    // How long a request for a resourceVersion newer than the store waits before 504.
    std::chrono::milliseconds future_rv_wait{3000};
  };

  explicit Store(Options options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The resource type served at group/version/plural, or null.
  std::shared_ptr<const ResourceInfo> Lookup(std::string_view group, std::string_view version,
                                             std::string_view plural) const;
  // Every served resource type (discovery).
  std::vector<std::shared_ptr<const ResourceInfo>> ServedResources() const;

  // The REST verbs. Unknown resources give 404; every failure is a metav1.Status reply.
  Reply Get(const Target& target);
  Reply List(const Target& target, const Query& query);
  Reply Create(const Target& target, std::string_view body, std::string_view content_type,
               const Query& query);
  Reply Update(const Target& target, std::string_view body, std::string_view content_type,
               const Query& query);
  Reply Patch(const Target& target, std::string_view body, std::string_view content_type,
              const Query& query);
  Reply Delete(const Target& target, std::string_view body, const Query& query);
  Reply DeleteCollection(const Target& target, std::string_view body, const Query& query);

  // Opens a watch. On success (code 200) `*watcher` is set and already holds the initial
  // events; the caller must call RemoveWatcher(id) when the stream ends.
  Reply Watch(const Target& target, const Query& query, std::shared_ptr<Watcher>* watcher);
  void RemoveWatcher(uint64_t id);
  // Ends every open watch abruptly (no final chunk); returns how many.
  size_t DropWatchers();
  // Ends every open watch cleanly and refuses new ones (server shutdown).
  void Shutdown();
  // Forgets all watch history: watches and continue tokens from older resourceVersions get
  // 410 Expired. Returns the current resourceVersion.
  int64_t Compact();
  int64_t ResourceVersion() const;
  size_t WatcherCount() const;

  // Creates a CRD (as a POST would) at startup. InvalidArgument with the server's message when
  // it is rejected, AlreadyExists when a CRD of that name exists.
  common::Status InstallCrd(std::string_view crd_json);
  // Creates a namespace (startup).
  common::Status EnsureNamespace(std::string_view name);

 private:
  struct StoredObject;
  using ObjectPtr = std::shared_ptr<const StoredObject>;
  using ObjectMap = std::map<std::string, ObjectPtr>;  // key: "ns/name" or "name"
  enum class EventType { kAdded, kModified, kDeleted };
  struct HistoryEvent {
    int64_t rv;
    std::string storage_key;
    EventType type;
    ObjectPtr object;  // the new state; for kDeleted the last state, at the deletion rv
    ObjectPtr prev;    // null for kAdded
  };
  // Per-write state: the fieldValidation mode and the unknown fields found so far.
  struct WriteContext {
    std::string field_validation;
    std::vector<std::string> unknown_fields;
  };
  struct DeleteOptions {
    std::string uid;
    std::string resource_version;
  };

  // All *Locked methods require mu_.
  std::shared_ptr<const ResourceInfo> LookupLocked(const Target& target, ApiError* error) const;
  ObjectPtr FindLocked(const ResourceInfo& info, const std::string& ns,
                       const std::string& name) const;
  ObjectPtr BuildObject(const ResourceInfo& info, const json::Document& doc) const;
  std::string Render(const StoredObject& object, const ResourceInfo& info) const;
  void CommitLocked(const ResourceInfo& info, EventType type, ObjectPtr object, ObjectPtr prev);
  void NotifyWatchersLocked(const HistoryEvent& event);
  std::optional<std::string> EventLine(const Watcher& w, EventType type, const StoredObject* object,
                                       const StoredObject* prev) const;

  Reply CreateLocked(const ResourceInfo& info, const Target& target, json::Document& doc,
                     WriteContext& ctx);
  Reply UpdateLocked(const ResourceInfo& info, const Target& target, json::Document& doc,
                     WriteContext& ctx);
  Reply ApplyUpdateLocked(const ResourceInfo& info, const ObjectPtr& existing, json::Document& doc,
                          const std::string& subresource, WriteContext& ctx);
  Reply DeleteLocked(const ResourceInfo& info, const ObjectPtr& existing,
                     const DeleteOptions& options);
  Reply RemoveLocked(const ResourceInfo& info, const ObjectPtr& existing,
                     json::Document* final_state);
  void DeleteContentsLocked(const std::function<bool(const ResourceInfo&)>& which,
                            const std::string& ns);
  void FinalizeContainersLocked();
  void SyncCrdLocked(const StoredObject& crd, bool removed);

  // Returns the object map of `storage_key` as of `rv` (rv >= compacted_rv_).
  ObjectMap SnapshotLocked(const std::string& storage_key, int64_t rv) const;
  // Waits (releasing the lock) until the store reaches `rv`; false on timeout.
  bool WaitForRvLocked(std::unique_lock<std::mutex>& lock, int64_t rv);
  std::optional<ApiError> ParseSelectors(const ResourceInfo& info, const Query& query,
                                         LabelSelector* labels, FieldSelector* fields) const;
  bool MatchesLocked(const StoredObject& o, const std::string& ns, const LabelSelector& labels,
                     const FieldSelector& fields) const;
  std::string ListBody(const ResourceInfo& info, const std::vector<ObjectPtr>& items, int64_t rv,
                       const std::string& continue_token, int64_t remaining) const;

  std::string NewUid();
  std::string RandomSuffix();

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable rv_cv_;  // signalled on every commit
  int64_t rv_ = 0;
  int64_t compacted_rv_ = 0;  // every event with rv > compacted_rv_ is in history_
  std::deque<HistoryEvent> history_;
  std::map<std::string, ObjectMap> objects_;                              // by storage key
  std::map<std::string, std::shared_ptr<const ResourceInfo>> resources_;  // "g/v/plural"
  std::map<uint64_t, std::shared_ptr<Watcher>> watchers_;
  uint64_t next_watcher_id_ = 1;
  bool shutdown_ = false;
  bool finalizing_ = false;
  std::mt19937_64 rng_;
};

}  // namespace tools::apiserver
