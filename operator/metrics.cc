#include "operator/metrics.h"

#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>

#include <fmt/format.h>

namespace meshstor_operator {
namespace {

namespace v1 = common::api::v1alpha1;

constexpr v1::VolumePhase kPhases[] = {v1::VolumePhase::kNew,       v1::VolumePhase::kRequested,
                                       v1::VolumePhase::kSyncing,   v1::VolumePhase::kSynced,
                                       v1::VolumePhase::kExpanding, v1::VolumePhase::kReplacing,
                                       v1::VolumePhase::kDeleting};

constexpr v1::PartitionState kStates[] = {
    v1::PartitionState::kRequested, v1::PartitionState::kCreated,   v1::PartitionState::kSpare,
    v1::PartitionState::kSyncing,   v1::PartitionState::kSynced,    v1::PartitionState::kFaulty,
    v1::PartitionState::kMissing,   v1::PartitionState::kReplacing, v1::PartitionState::kDeleting};

constexpr char kUnreported[] = "Unreported";

// "45.2%" → 0.452; nullopt when absent or malformed.
std::optional<double> ParsePercentage(const std::string& s) {
  if (s.empty() || s.back() != '%') return std::nullopt;
  std::string num = s.substr(0, s.size() - 1);
  char* end = nullptr;
  double v = std::strtod(num.c_str(), &end);
  if (end == num.c_str() || *end != '\0' || v < 0 || v > 100) return std::nullopt;
  return v / 100.0;
}

// The value of meshstor_operator_volume_sync_ratio: status.syncPercentage, else 1 once Synced.
std::optional<double> SyncRatio(const v1::MeshStorVolume& v) {
  if (auto r = ParsePercentage(v.status.sync_percentage)) return r;
  if (v.status.phase == v1::VolumePhase::kSynced) return 1.0;
  return std::nullopt;
}

}  // namespace

std::vector<double> PlacementBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
          0.0025,  0.005,  0.01,    0.025,  0.05,    0.1,   0.25,   1};
}

std::chrono::nanoseconds ThreadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

common::Result<std::unique_ptr<OperatorMetrics>> OperatorMetrics::Create(
    common::metrics::Registry& r) {
  auto m = std::make_unique<OperatorMetrics>(Private{});
  ASSIGN_OR_RETURN(m->volumes_by_phase_,
                   r.AddGauge("meshstor_operator_volumes", "MeshStorVolumes by phase", {"phase"}));
  ASSIGN_OR_RETURN(m->members_by_state_,
                   r.AddGauge("meshstor_operator_members",
                              "Present members by reported partition state", {"state"}));
  ASSIGN_OR_RETURN(m->degraded_volumes_,
                   r.AddGauge("meshstor_operator_degraded_volumes",
                              "Volumes with a member missing, faulty or out of sync"));
  ASSIGN_OR_RETURN(m->waiting_for_member_,
                   r.AddGauge("meshstor_operator_volumes_waiting_for_member",
                              "Volumes whose array may not start: a member of the last in-sync "
                              "set (it may hold acknowledged writes the others lack) is missing "
                              "(status.startBlocked)"));
  ASSIGN_OR_RETURN(m->missing_seconds_,
                   r.AddGauge("meshstor_operator_member_missing_seconds",
                              "Seconds a member has been Missing or Faulty (replaced after the "
                              "volume's memberMissingTimeout)",
                              {"volume", "index", "node"}));
  // The per-volume series, computed at each scrape from the kept summaries.
  std::shared_ptr<Summaries> summaries = m->summaries_;
  auto sync_ratios = [summaries] {
    common::metrics::Registry::GaugeSamples out;
    std::lock_guard<std::mutex> lock(summaries->mu);
    for (const auto& [name, v] : summaries->volumes) {
      if (v.sync_ratio >= 0) out.push_back({{std::string(name)}, v.sync_ratio});
    }
    return out;
  };
  auto missing_timeouts = [summaries] {
    common::metrics::Registry::GaugeSamples out;
    std::lock_guard<std::mutex> lock(summaries->mu);
    out.reserve(summaries->volumes.size());
    for (const auto& [name, v] : summaries->volumes) {
      out.push_back({{std::string(name)}, static_cast<double>(v.missing_timeout)});
    }
    return out;
  };
  RETURN_IF_ERROR(r.AddCallbackGaugeFamily("meshstor_operator_volume_sync_ratio",
                                           "Array sync progress, 0..1", {"volume"}, sync_ratios));
  RETURN_IF_ERROR(r.AddCallbackGaugeFamily(
      "meshstor_operator_member_missing_timeout_seconds",
      "spec.memberMissingTimeout of each volume: a member Missing or Faulty this long is replaced",
      {"volume"}, missing_timeouts));
  ASSIGN_OR_RETURN(m->agent_last_report_,
                   r.AddGauge("meshstor_operator_agent_last_report_timestamp_seconds",
                              "Unix time of the newest status.updatedAt among the node's "
                              "MeshStorNodeDevices (the agent's inventory heartbeat)",
                              {"node"}));
  ASSIGN_OR_RETURN(m->replacements_, r.AddCounter("meshstor_operator_replacements_total",
                                                  "Member replacements started"));
  ASSIGN_OR_RETURN(m->relocations_, r.AddCounter("meshstor_operator_relocations_total",
                                                 "Relocations to a new consumer node started"));
  ASSIGN_OR_RETURN(m->expansions_,
                   r.AddCounter("meshstor_operator_expansions_total", "Volume expansions started"));
  ASSIGN_OR_RETURN(m->placement_failures_,
                   r.AddCounter("meshstor_operator_placement_failures_total",
                                "Placements that found too few eligible nodes"));
  ASSIGN_OR_RETURN(m->reconcile_errors_, r.AddCounter("meshstor_operator_reconcile_errors_total",
                                                      "Reconcile passes that failed"));
  ASSIGN_OR_RETURN(
      m->reconcile_duration_,
      r.AddHistogram("meshstor_operator_reconcile_duration_seconds",
                     "Duration of one reconcile pass", common::metrics::DefaultBuckets()));
  ASSIGN_OR_RETURN(
      m->placement_duration_,
      r.AddHistogram(
          "meshstor_operator_placement_duration_seconds",
          "Duration of the decision of a reconcile pass that placed members or failed to "
          "place them (in-process, without API requests)",
          PlacementBuckets()));
  ASSIGN_OR_RETURN(
      m->placement_cpu_,
      r.AddHistogram("meshstor_operator_placement_cpu_seconds",
                     "CPU time of the worker thread during the same decisions as "
                     "meshstor_operator_placement_duration_seconds (without the time the thread "
                     "waited for a core)",
                     PlacementBuckets()));
  ASSIGN_OR_RETURN(m->api_latency_, r.AddHistogram("meshstor_operator_api_request_duration_seconds",
                                                   "Latency of the operator's API writes",
                                                   common::metrics::DefaultBuckets(), {"verb"}));
  return m;
}

void OperatorMetrics::ReconcileDone(std::chrono::duration<double> took, bool failed) {
  reconcile_duration_->Observe(took.count());
  if (failed) reconcile_errors_->Inc();
}

void OperatorMetrics::ApiRequest(const std::string& verb, std::chrono::duration<double> took) {
  api_latency_->WithLabels({verb}).Observe(took.count());
}

void OperatorMetrics::VolumeChanged(const std::string& name, const v1::MeshStorVolume* v) {
  std::lock_guard<std::mutex> lock(summaries_->mu);
  summaries_->missing.erase(name);
  auto it = summaries_->volumes.find(name);
  if (v == nullptr) {
    if (it != summaries_->volumes.end()) summaries_->volumes.erase(it);
    return;
  }
  std::vector<MissingMember> missing;
  VolumeSummary s;
  if (v->status.phase) s.phase = static_cast<int8_t>(*v->status.phase);
  s.degraded = v->status.degraded_devices.value_or(0) > 0;
  s.waiting = !v->status.start_blocked.empty();
  s.missing_timeout = v->spec.member_missing_timeout;
  s.sync_ratio = SyncRatio(*v).value_or(-1);
  for (const v1::Member& m : v->spec.members) {
    if (m.state != v1::MemberState::kPresent) continue;
    const v1::PartitionStatus* p = nullptr;
    for (const auto& ps : v->status.partitions) {
      if (ps.index == m.index && ps.node_id == m.node) p = &ps;
    }
    auto& count = s.states[p ? static_cast<size_t>(p->state) : s.states.size() - 1];
    if (count < UINT8_MAX) ++count;
    if (p &&
        (p->state == v1::PartitionState::kMissing || p->state == v1::PartitionState::kFaulty)) {
      if (auto since = p->missing_since ? p->missing_since : p->updated_at) {
        missing.emplace_back(m.index, m.node, *since);
      }
    }
  }
  if (it != summaries_->volumes.end()) {
    it->second = s;
  } else {
    summaries_->volumes.emplace(common::compress::SharedName::Of(name), s);
  }
  if (!missing.empty()) summaries_->missing.emplace(name, std::move(missing));
}

bool OperatorMetrics::Refresh(std::chrono::system_clock::time_point now) {
  static_assert(std::tuple_size_v<decltype(VolumeSummary::states)> == std::size(kStates) + 1);
  static_assert(std::size(kPhases) == static_cast<size_t>(v1::VolumePhase::kDeleting) + 1);
  std::array<int, std::size(kPhases)> phases{};
  std::array<int, std::tuple_size_v<decltype(VolumeSummary::states)>> states{};
  int degraded = 0;
  int waiting = 0;
  std::map<common::metrics::LabelValues, double> missing_values;
  {
    std::lock_guard<std::mutex> lock(summaries_->mu);
    for (const auto& [name, v] : summaries_->volumes) {
      if (v.phase != VolumeSummary::kNoPhase) ++phases[static_cast<size_t>(v.phase)];
      if (v.degraded) ++degraded;
      if (v.waiting) ++waiting;
      for (size_t i = 0; i < states.size(); ++i) states[i] += v.states[i];
    }
    for (const auto& [name, members] : summaries_->missing) {
      for (const auto& [index, node, since] : members) {
        missing_values[{name, fmt::format("{}", index), node}] =
            std::chrono::duration<double>(now - since).count();
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (v1::VolumePhase p : kPhases) {
    volumes_by_phase_->WithLabels({std::string(v1::Name(p))}).Set(phases[static_cast<size_t>(p)]);
  }
  for (v1::PartitionState s : kStates) {
    members_by_state_->WithLabels({std::string(v1::Name(s))}).Set(states[static_cast<size_t>(s)]);
  }
  members_by_state_->WithLabels({kUnreported}).Set(states.back());
  degraded_volumes_->Set(degraded);
  waiting_for_member_->Set(waiting);
  // The family holds the series exposed; those of volumes (or missing members) no longer in the
  // new values go. Keeping a copy of every label set here cost ~0.3 KiB per volume.
  missing_seconds_->RemoveIf([&](const auto& l) { return !missing_values.count(l); });
  for (const auto& [l, value] : missing_values) missing_seconds_->WithLabels(l).Set(value);
  return !missing_values.empty();
}

void OperatorMetrics::NodeDeviceChanged(const v1::MeshStorNodeDevice* old_obj,
                                        const v1::MeshStorNodeDevice* new_obj) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> nodes;
  if (old_obj != nullptr) {
    nodes.insert(old_obj->spec.node_name);
    drives_.erase(old_obj->metadata.name);
  }
  if (new_obj != nullptr) {
    nodes.insert(new_obj->spec.node_name);
    drives_[new_obj->metadata.name] = {new_obj->spec.node_name, new_obj->status.updated_at};
  }
  for (const std::string& node : nodes) {
    bool any = false;
    std::optional<common::api::Time> newest;
    for (const auto& [name, drive] : drives_) {
      if (drive.first != node) continue;
      any = true;
      if (drive.second && (!newest || *drive.second > *newest)) newest = drive.second;
    }
    if (!any) {
      (void)agent_last_report_->Remove({node});
    } else if (newest) {
      agent_last_report_->WithLabels({node}).Set(
          static_cast<double>(newest->time_since_epoch().count()));
    }
  }
}

}  // namespace meshstor_operator
