#include "operator/controller.h"

#include <fmt/format.h>

#include "common/api/core_codec.h"
#include "common/api/json.h"
#include "common/api/meta_codec.h"
#include "common/api/v1alpha1/codec.h"
#include "common/log/log.h"

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;
namespace kube = common::kube;
using common::log::Root;

// A heartbeat after a silence longer than the staleness: the agent is back, which may lift a
// fence (fencing.h) or let placement use its drives again.
bool AgentReturned(const v1::MeshStorNodeDevice& before, const v1::MeshStorNodeDevice& after,
                   std::chrono::seconds staleness) {
  if (!after.status.updated_at) return false;
  if (!before.status.updated_at) return true;
  return *after.status.updated_at - *before.status.updated_at > staleness;
}

common::api::ObjectReference RefOf(const common::api::ObjectMeta& m) {
  return common::api::ObjectReference{std::string(v1::kApiVersion),
                                      std::string(v1::kVolumeKind),
                                      "",
                                      m.name,
                                      m.uid,
                                      m.resource_version};
}

constexpr char kInvalidObject[] = "InvalidObject";

// Writes Ready=False/InvalidObject (with the decode error) into the status of a volume whose JSON
// does not decode, unless it is already there for this generation. The merge patch carries the
// resourceVersion read, so it is conditional; it replaces status.conditions, which cannot be
// merged because they are part of what does not decode. Returns whether it wrote.
common::Result<bool> ReportUndecodable(kube::Client& client, common::time::Clock& clock,
                                       const std::string& name, const common::Status& error) {
  namespace json = common::api::json;
  ASSIGN_OR_RETURN(std::string raw, client.Get(kube::MeshStorVolumes(), {"", name}));
  ASSIGN_OR_RETURN(common::api::ObjectMeta meta, common::api::DecodeObjectMetaOnly(raw));
  rapidjson::Document doc;
  RETURN_IF_ERROR(json::ParseObject(raw, doc, "MeshStorVolume"));
  const std::string message = error.message();
  auto status = doc.FindMember("status");
  if (status != doc.MemberEnd() && status->value.IsObject()) {
    auto conditions = status->value.FindMember("conditions");
    if (conditions != status->value.MemberEnd() && conditions->value.IsArray()) {
      for (const auto& c : conditions->value.GetArray()) {
        if (!c.IsObject()) continue;
        json::FieldReader r(c, "status.conditions[]");
        common::api::Condition cond;
        if (!json::DecodeCondition(r, &cond).ok()) continue;
        if (cond.type == kConditionReady && cond.reason == kInvalidObject &&
            cond.observed_generation == meta.generation && cond.message == message) {
          return false;
        }
      }
    }
  }
  common::api::Condition cond;
  cond.type = kConditionReady;
  cond.status = common::api::ConditionStatus::kFalse;
  cond.observed_generation = meta.generation;
  cond.last_transition_time = std::chrono::time_point_cast<std::chrono::seconds>(clock.Now());
  cond.reason = kInvalidObject;
  cond.message = message;
  std::vector<common::api::Condition> one;
  common::api::SetCondition(one, cond);  // truncates the message as for every condition
  rapidjson::StringBuffer buf;
  json::JsonWriter w(buf);
  w.StartObject();
  w.Key("metadata");
  w.StartObject();
  json::WriteString(w, "resourceVersion", meta.resource_version);
  w.EndObject();
  w.Key("status");
  w.StartObject();
  json::WriteInt64(w, "observedGeneration", meta.generation);
  w.Key("conditions");
  w.StartArray();
  json::EncodeCondition(w, one.front());
  w.EndArray();
  w.EndObject();
  w.EndObject();
  RETURN_IF_ERROR(
      client.MergePatch(kube::MeshStorVolumes(), {"", name}, buf.GetString(), "status").status());
  return true;
}

}  // namespace

// ClientSource.

common::Result<std::shared_ptr<const v1::MeshStorVolume>> ClientSource::GetVolume(
    const std::string& name) {
  ASSIGN_OR_RETURN(std::string json, client_.Get(kube::MeshStorVolumes(), {"", name}));
  ASSIGN_OR_RETURN(v1::MeshStorVolume v, v1::DecodeMeshStorVolume(json));
  return std::make_shared<const v1::MeshStorVolume>(std::move(v));
}

common::Result<Inventory> ClientSource::Snapshot() {
  Inventory inv;
  ASSIGN_OR_RETURN(kube::ListResult vols, client_.ListAll(kube::MeshStorVolumes(), ""));
  for (const std::string& json : vols.items) {
    auto v = v1::DecodeMeshStorVolume(json);
    if (v.ok()) inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(*v));
  }
  ASSIGN_OR_RETURN(kube::ListResult devs, client_.ListAll(kube::MeshStorNodeDevices(), ""));
  for (const std::string& json : devs.items) {
    auto d = v1::DecodeMeshStorNodeDevice(json);
    if (d.ok()) inv.devices.push_back(std::make_shared<const v1::MeshStorNodeDevice>(*d));
  }
  ASSIGN_OR_RETURN(kube::ListResult nodes, client_.ListAll(kube::Nodes(), ""));
  for (const std::string& json : nodes.items) {
    auto n = common::api::DecodeNode(json);
    if (n.ok()) inv.nodes.push_back(std::make_shared<const common::api::Node>(*n));
  }
  return inv;
}

std::string VolumeCacheDictionary() {
  const auto t = std::chrono::time_point_cast<std::chrono::seconds>(
      std::chrono::sys_days(std::chrono::year(2026) / 1 / 1));
  const std::string staging =
      "/var/lib/kubelet/plugins/kubernetes.io/csi/csi.meshstor.io/"
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/globalmount";
  v1::MeshStorVolume v;
  v.metadata.name = "pvc-00000000-0000-4000-8000-000000000000";
  v.metadata.uid = "00000000-0000-4000-8000-000000000000";
  v.metadata.resource_version = "1000000";
  v.metadata.generation = 2;
  v.metadata.creation_timestamp = t;
  v.metadata.finalizers = {kFinalizer};
  v.spec.capacity_bytes = 1073741824;
  v.spec.replica_count = 2;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  v.spec.consumer_node = "node-1";
  v.spec.staging_path = staging;
  v.spec.publish_targets = {
      {"/var/lib/kubelet/pods/00000000-0000-4000-8000-000000000000/volumes/"
       "kubernetes.io~csi/pvc-00000000-0000-4000-8000-000000000000/mount",
       false}};
  v.spec.formatted_at = t;
  for (int i = 0; i < 3; ++i) {
    const bool local = i == 0;
    v.spec.members.push_back(v1::Member{i, "node-" + std::to_string(i + 1),
                                        local ? "nvme0n1" : "nvme1n1", 1077936128, 1,
                                        local ? v1::MemberRole::kLocal : v1::MemberRole::kRemote,
                                        v1::MemberState::kPresent, i, std::nullopt});
    v1::PartitionStatus p;
    p.index = i;
    p.node_id = v.spec.members.back().node;
    p.drive = v.spec.members.back().drive;
    p.partition_uuid = "00000000-0000-4000-8000-00000000000" + std::to_string(i);
    p.nvmeof_namespace_id = 1;
    p.state = i == 2 ? v1::PartitionState::kSyncing : v1::PartitionState::kSynced;
    p.size_bytes = 1077936128;
    p.updated_at = t;
    p.md_events = 10;
    v.status.partitions.push_back(p);
  }
  v.status.observed_generation = 2;
  v.status.phase = v1::VolumePhase::kSynced;
  v.status.node_name = "node-1";
  v.status.md_state = "clean";
  v.status.ready = "2/2";
  v.status.total_devices = v.status.active_devices = 2;
  v.status.failed_devices = v.status.down_devices = v.status.degraded_devices = 0;
  v.status.sync_percentage = "100%";
  v.status.staged_path = staging;
  v.status.filesystem_bytes = 1073741824;
  v.status.published_targets = {v.spec.publish_targets[0].path};
  v.status.in_sync = v1::InSyncRecord{{0, 1}, "node-1", t, 10};
  // The conditions of a Synced volume, as status.cc words them.
  const struct {
    const char* type;
    common::api::ConditionStatus status;
    const char* reason;
    std::string message;
  } conditions[] = {
      {kConditionPlaceable, common::api::ConditionStatus::kTrue, "Placed", "2 members placed"},
      {kConditionReady, common::api::ConditionStatus::kTrue, "Staged",
       "array on node-1 staged at " + staging},
      {kConditionDegraded, common::api::ConditionStatus::kFalse, "AllMembersSynced",
       "no member is missing, faulty or out of sync"},
      {kConditionResized, common::api::ConditionStatus::kTrue, "CapacityReached",
       "members hold 1073741824 bytes"}};
  for (const auto& c : conditions) {
    v.status.conditions.push_back(
        common::api::Condition{c.type, c.status, 2, t, c.reason, c.message});
  }
  return v1::EncodeMeshStorVolume(v);
}

// InformerSource.

InformerSource::InformerSource(VolumeInformer& volumes, DeviceInformer& devices,
                               NodeInformer& nodes, const VolumeIndex* index)
    : volumes_(volumes), devices_(devices), nodes_(nodes), index_(index) {
  devices_.AddHandler([this](const DeviceInformer::Change&) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_list_.reset();
  });
  nodes_.AddHandler([this](const NodeInformer::Change&) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_list_.reset();
  });
}

common::Result<std::shared_ptr<const v1::MeshStorVolume>> InformerSource::GetVolume(
    const std::string& name) {
  return volumes_.Get({"", name});
}

common::Result<Inventory> InformerSource::Snapshot() {
  Inventory inv;
  if (index_ != nullptr) {
    inv.index = index_;
  } else {
    inv.volumes = volumes_.List();
  }
  // The informers' shared lists: rebuilt once per change of drives or Nodes, not copied per pass
  // (copying 3000 pointers and counting their references was a third of the operator's CPU at
  // 1000 nodes).
  std::lock_guard<std::mutex> lock(mu_);
  if (!devices_list_) {
    devices_list_ = std::make_shared<const Inventory::DeviceList>(devices_.List());
  }
  if (!nodes_list_) nodes_list_ = std::make_shared<const Inventory::NodeList>(nodes_.List());
  inv.shared_devices = devices_list_;
  inv.shared_nodes = nodes_list_;
  return inv;
}

// Controller.

Controller::Controller(kube::Client& client, common::time::Clock& clock, ClusterSource& source,
                       kube::EventRecorder* events, OperatorMetrics* metrics, Limits limits)
    : client_(client),
      clock_(clock),
      source_(source),
      events_(events),
      metrics_(metrics),
      limits_(limits) {}

common::Result<Controller::PassResult> Controller::ReconcileOnce(const std::string& name) {
  const auto started = clock_.SteadyNow();
  auto finish = [&](bool failed) {
    if (metrics_ != nullptr) metrics_->ReconcileDone(clock_.SteadyNow() - started, failed);
  };
  auto log = Root().WithValues(
      {{"controller", "meshstorvolume"}, {"kind", std::string(v1::kVolumeKind)}, {"name", name}});
  PassResult result;
  auto got = source_.GetVolume(name);
  if (!got.ok()) {
    if (got.status().code() == common::StatusCode::kNotFound) {
      finish(false);
      return result;
    }
    if (got.status().code() == common::StatusCode::kInvalidArgument) {
      // An object we cannot decode: say so in its Ready condition and in an Event; retrying
      // cannot help until someone edits it (which queues it again).
      auto wrote = ReportUndecodable(client_, clock_, name, got.status());
      if (!wrote.ok()) {
        finish(true);
        return wrote.status();
      }
      result.wrote = *wrote;
      if (*wrote) {
        log.Error(got.status(), "Could not decode MeshStorVolume");
        if (events_ != nullptr) {
          events_->Record(
              {std::string(v1::kApiVersion), std::string(v1::kVolumeKind), "", name, "", ""},
              "Warning", kInvalidObject, "Reconcile",
              fmt::format("Object does not decode: {}", got.status().message()));
        }
      }
      finish(false);
      return result;
    }
    finish(true);
    return got.status();
  }
  const v1::MeshStorVolume& volume = **got;
  result.read_resource_version = volume.metadata.resource_version;
  auto inv = source_.Snapshot();
  if (!inv.ok()) {
    finish(true);
    return inv.status();
  }
  inv->now = clock_.Now();
  inv->staleness = limits_.agent_staleness;
  const auto decide_started = clock_.SteadyNow();
  const auto decide_cpu_started = ThreadCpuTime();
  Decision d = Decide(volume, *inv, limits_);
  if (metrics_ != nullptr &&
      (d.placement_failed || (d.write == Decision::Write::kSpec &&
                              d.object.spec.members.size() > volume.spec.members.size()))) {
    metrics_->PlacementDone(clock_.SteadyNow() - decide_started,
                            ThreadCpuTime() - decide_cpu_started);
  }
  result.requeue_after = d.requeue_after;
  result.write = d.write;
  if (d.write != Decision::Write::kNone) {
    const std::string body = v1::EncodeMeshStorVolume(d.object);
    const auto t0 = clock_.SteadyNow();
    common::Result<std::string> written =
        d.write == Decision::Write::kSpec
            ? client_.Update(kube::MeshStorVolumes(), {"", name}, body)
            : client_.UpdateStatus(kube::MeshStorVolumes(), {"", name}, body);
    if (metrics_ != nullptr) {
      metrics_->ApiRequest(d.write == Decision::Write::kSpec ? "update" : "update_status",
                           clock_.SteadyNow() - t0);
    }
    if (!written.ok()) {
      finish(written.status().code() != common::StatusCode::kAborted);
      return written.status();
    }
    auto decoded = v1::DecodeMeshStorVolume(*written);
    if (decoded.ok()) result.written_resource_version = decoded->metadata.resource_version;
    result.wrote = true;
    log.V(1).Info(d.write == Decision::Write::kSpec ? "Updated MeshStorVolume"
                                                    : "Updated MeshStorVolume status",
                  {{"resourceVersion", result.written_resource_version}});
  }
  if (metrics_ != nullptr) {
    if (d.placement_failed) metrics_->PlacementFailed();
    for (int i = 0; i < d.replacements_started; ++i) metrics_->ReplacementStarted();
    for (int i = 0; i < d.relocations_started; ++i) metrics_->RelocationStarted();
    for (int i = 0; i < d.expansions_started; ++i) metrics_->ExpansionStarted();
  }
  if (d.write != Decision::Write::kNone) {
    for (const EventNote& e : d.events) {
      log.Info("Recorded Event", {{"type", e.type}, {"reason", e.reason}, {"note", e.note}});
      if (events_ != nullptr) {
        events_->Record(RefOf(volume.metadata), e.type, e.reason, "Reconcile", e.note);
      }
    }
  }
  finish(false);
  return result;
}

// ControllerRunner.

ControllerRunner::ControllerRunner(kube::Client& client, common::time::Clock& clock,
                                   kube::EventRecorder* events, OperatorMetrics* metrics,
                                   Options options)
    : client_(client),
      clock_(clock),
      metrics_(metrics),
      options_(options),
      // Compressed: at 10000 volumes the decoded ones were 30 MiB of the operator's ~57.
      volumes_(client, kube::MeshStorVolumes(), v1::DecodeMeshStorVolume,
               VolumeInformer::Compression{v1::EncodeMeshStorVolume, VolumeCacheDictionary()},
               kube::InformerOptions{.resync_period = options.resync_period}, clock),
      devices_(client, kube::MeshStorNodeDevices(), v1::DecodeMeshStorNodeDevice, {}, clock),
      nodes_(client, kube::Nodes(), common::api::DecodeNode, {}, clock),
      source_(volumes_, devices_, nodes_, &index_),
      controller_(client, clock, source_, events, metrics, options.limits),
      queue_(clock) {
  if (options_.trim_heap) {
    trimmer_ = std::make_unique<QuietTrimmer>(options_.trim_after_quiet, options_.trim_max_interval,
                                              options_.trim_heap);
  }
  volumes_.AddHandler([this](const VolumeInformer::Change& c) {
    // The index first: a pass that waited for its own write in AwaitCache must find it there.
    if (c.old_obj != c.new_obj || c.new_obj == nullptr) {
      index_.Apply(c.key.name, c.new_obj.get());
      if (metrics_ != nullptr) metrics_->VolumeChanged(c.key.name, c.new_obj.get());
      metrics_dirty_ = true;
      if (trimmer_) trimmer_->Changed(clock_.SteadyNow());
    }
    { std::lock_guard<std::mutex> lock(cache_mu_); }
    cache_cv_.notify_all();
    queue_.Add(c.key.ToString());
  });
  // An inventory change can unblock the volumes waiting for placement, and matters to those
  // with a member, the consumer or a fence on that node (VolumeIndex::VolumesConcerning); the
  // others are not looked at again (with every volume requeued on each change, converging took
  // O(volumes²) passes).
  devices_.AddHandler([this](const DeviceInformer::Change& c) {
    if (metrics_ != nullptr) metrics_->NodeDeviceChanged(c.old_obj.get(), c.new_obj.get());
    if (c.old_obj && c.new_obj &&
        c.old_obj->status.biggest_free_extent_bytes ==
            c.new_obj->status.biggest_free_extent_bytes &&
        c.old_obj->status.sector_size == c.new_obj->status.sector_size &&
        !AgentReturned(*c.old_obj, *c.new_obj, options_.limits.agent_staleness)) {
      return;  // a heartbeat (updatedAt) only
    }
    EnqueueVolumesConcerning(c.new_obj ? c.new_obj->spec.node_name : c.old_obj->spec.node_name);
  });
  nodes_.AddHandler([this](const NodeInformer::Change& c) {
    auto ready = [](const common::api::Node& n) {
      const auto* r = common::api::FindCondition(n.conditions, "Ready");
      return r == nullptr ? common::api::ConditionStatus::kUnknown : r->status;
    };
    if (c.old_obj && c.new_obj && c.old_obj->unschedulable == c.new_obj->unschedulable &&
        ready(*c.old_obj) == ready(*c.new_obj) && c.old_obj->taints == c.new_obj->taints) {
      return;  // nothing placement or fencing looks at
    }
    EnqueueVolumesConcerning(c.key.name);
  });
}

ControllerRunner::~ControllerRunner() { Stop(); }

void ControllerRunner::EnqueueAllVolumes() {
  for (const auto& key : volumes_.Keys()) queue_.Add(key.ToString());
}

void ControllerRunner::EnqueueVolumesConcerning(const std::string& node) {
  for (const std::string& name : index_.VolumesConcerning(node)) queue_.Add(name);
}

common::Status ControllerRunner::Start() {
  if (started_) return common::OkStatus();
  started_ = true;
  volumes_.Start();
  devices_.Start();
  nodes_.Start();
  for (common::kube::InformerBase* inf :
       std::initializer_list<common::kube::InformerBase*>{&volumes_, &devices_, &nodes_}) {
    if (!inf->WaitForSync(options_.cache_sync_timeout)) {
      return common::DeadlineExceededError("informer caches did not sync within {} ms",
                                           options_.cache_sync_timeout.count());
    }
  }
  EnqueueAllVolumes();
  worker_ = std::thread([this] { Work(); });
  if (metrics_ != nullptr || trimmer_) {
    metrics_thread_ = std::thread([this] { RefreshMetrics(); });
  }
  return common::OkStatus();
}

void ControllerRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(cache_mu_);  // no lost wake-up in AwaitCache
    stopping_ = true;
  }
  queue_.ShutDown();
  cache_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  volumes_.Stop();
  devices_.Stop();
  nodes_.Stop();
}

void ControllerRunner::AwaitCache(const std::string& name, const std::string& read_rv) {
  std::unique_lock<std::mutex> lock(cache_mu_);
  clock_.WaitFor(lock, cache_cv_, std::chrono::seconds(5), [&] {
    // The index is updated after the cache, so it is the one to wait for: the next pass reads
    // namespace IDs and reservations from it.
    return stopping_ || !index_.IsAt(name, read_rv);
  });
}

void ControllerRunner::Work() {
  while (auto key = queue_.Get()) {
    std::string cached_rv;
    if (auto cached = volumes_.ResourceVersion({"", *key}); cached.ok()) cached_rv = *cached;
    auto r = controller_.ReconcileOnce(*key);
    if (!r.ok()) {
      if (r.status().code() == common::StatusCode::kAborted) {
        // A conflict means the server holds a newer version: retry as soon as the cache shows
        // it, without backoff.
        Root().V(1).Info("Conflict on MeshStorVolume; requeued", {{"name", *key}});
        AwaitCache(*key, cached_rv);
        queue_.Add(*key);
      } else {
        Root().Error(r.status(), "Could not reconcile MeshStorVolume", {{"name", *key}});
        queue_.AddRateLimited(*key);
      }
    } else {
      queue_.Forget(*key);
      if (r->wrote) AwaitCache(*key, r->read_resource_version);
      if (r->requeue_after) queue_.AddAfter(*key, *r->requeue_after);
    }
    queue_.Done(*key);
  }
}

void ControllerRunner::RefreshMetrics() {
  bool time_dependent = false;
  auto last = clock_.SteadyNow();
  std::unique_lock<std::mutex> lock(cache_mu_);
  while (!stopping_) {
    clock_.WaitFor(lock, cache_cv_, options_.metrics_refresh_period, [&] { return !!stopping_; });
    if (stopping_) break;
    const auto now = clock_.SteadyNow();
    if (trimmer_) {
      lock.unlock();
      trimmer_->Tick(now);
      lock.lock();
    }
    if (metrics_ == nullptr) continue;
    if (!metrics_dirty_ && !(time_dependent && now - last >= options_.metrics_max_age)) continue;
    metrics_dirty_ = false;
    last = now;
    lock.unlock();
    time_dependent = metrics_->Refresh(clock_.Now());
    lock.lock();
  }
}

}  // namespace meshstor_operator
