#include "common/kube/informer.h"

#include <random>

#include "common/api/meta_codec.h"
#include "common/log/log.h"

namespace common::kube {

InformerBase::InformerBase(Client& client, ResourceType type, InformerOptions options,
                           time::Clock& clock)
    : client_(client), type_(std::move(type)), options_(std::move(options)), clock_(clock) {}

InformerBase::~InformerBase() {
  // Subclasses stop first (their handlers must not run after they are gone); this is a backstop.
  Stop();
}

void InformerBase::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  if (options_.resync_period.count() > 0) resync_thread_ = std::thread([this] { ResyncLoop(); });
}

void InformerBase::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.request_stop();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
}

bool InformerBase::HasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

bool InformerBase::WaitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_ || stop_.stop_requested(); }) && synced_;
}

std::string InformerBase::LastResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

int InformerBase::RelistCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return relists_;
}

bool InformerBase::Sleep(std::chrono::steady_clock::duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  clock_.WaitFor(lock, cv_, d, [&] { return stop_.stop_requested(); });
  return !stop_.stop_requested();
}

void InformerBase::Apply(const WatchEvent& event) {
  if (event.type == WatchEvent::Type::kBookmark) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!event.resource_version.empty()) resource_version_ = event.resource_version;
    return;
  }
  Result<api::ObjectMeta> meta = api::DecodeObjectMetaOnly(event.object);
  if (!meta.ok()) {
    // Without a name the event cannot be applied; the next relist repairs the cache.
    log::Root().Error(meta.status(), "Could not read watch event metadata",
                      {{"resource", type_.plural}});
    return;
  }
  std::string rv = meta->resource_version;
  RawObject raw{std::move(meta).value(), event.object};
  if (event.type == WatchEvent::Type::kDeleted) {
    OnDelete(std::move(raw));
  } else {
    OnUpsert(std::move(raw));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!rv.empty()) resource_version_ = rv;
}

void InformerBase::Run() {
  time::Backoff backoff(time::Backoff::Options{.initial = options_.initial_backoff,
                                               .max = options_.max_backoff,
                                               .multiplier = 2.0,
                                               .jitter = 0.2});
  std::mt19937_64 rng(std::random_device{}());
  log::Logger log = log::Root().WithValues({{"informer", type_.plural}});
  bool need_list = true;
  bool first_list = true;
  while (!stop_.stop_requested()) {
    if (need_list) {
      ListOptions list_options{.label_selector = options_.label_selector,
                               .field_selector = options_.field_selector,
                               .limit = options_.page_size};
      Result<ListResult> list = client_.ListAll(type_, options_.ns, list_options);
      if (!list.ok()) {
        log.Error(list.status(), "Could not list objects");
        if (!Sleep(backoff.Next())) return;
        continue;
      }
      std::vector<RawObject> objects;
      objects.reserve(list->items.size());
      for (auto& item : list->items) {
        Result<api::ObjectMeta> meta = api::DecodeObjectMetaOnly(item);
        if (!meta.ok()) {
          log.Error(meta.status(), "Skipped listed object without readable metadata");
          continue;
        }
        objects.push_back(RawObject{std::move(meta).value(), std::move(item)});
      }
      OnReplace(std::move(objects));
      {
        std::lock_guard<std::mutex> lock(mu_);
        resource_version_ = list->resource_version;
        synced_ = true;
        if (!first_list) ++relists_;
        cv_.notify_all();
      }
      first_list = false;
      need_list = false;
      backoff.Reset();
    }

    WatchOptions watch_options{
        .resource_version = LastResourceVersion(),
        .label_selector = options_.label_selector,
        .field_selector = options_.field_selector,
        .allow_bookmarks = true,
        // Jitter so that many informers do not re-watch in lock step.
        .timeout_seconds = options_.watch_timeout_seconds +
                           static_cast<int64_t>(rng() % (options_.watch_timeout_seconds / 5 + 1))};
    bool saw_event = false;
    Status s = client_.Watch(
        type_, options_.ns, watch_options,
        [&](const WatchEvent& e) {
          saw_event = true;
          Apply(e);
          return !stop_.stop_requested();
        },
        stop_.get_token());
    if (stop_.stop_requested()) return;
    if (saw_event) backoff.Reset();
    if (s.ok()) continue;  // the server ended the watch; resume from the last version
    if (s.code() == StatusCode::kOutOfRange) {
      log.V(1).Info("Relisting after resourceVersion expired",
                    {{"resourceVersion", watch_options.resource_version}});
      need_list = true;
      continue;
    }
    log.Error(s, "Watch failed", {{"resourceVersion", watch_options.resource_version}});
    if (!Sleep(backoff.Next())) return;
  }
}

void InformerBase::ResyncLoop() {
  while (Sleep(options_.resync_period)) {
    if (HasSynced()) OnResync();
  }
}

}  // namespace common::kube
