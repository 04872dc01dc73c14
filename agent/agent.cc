#include "agent/agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <set>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include "common/api/v1alpha1/codec.h"
#include "common/kube/resource.h"
#include "common/log/log.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;
using common::StatusCode;

NodeKernel WithPassCaches(NodeKernel kernel, sys::Partitions* partitions, sys::NvmetTarget* nvmet,
                          sys::Md* md, sys::NvmeHost* host) {
  if (partitions != nullptr) kernel.partitions = partitions;
  if (nvmet != nullptr) kernel.nvmet = nvmet;
  if (md != nullptr) kernel.md = md;
  if (host != nullptr) kernel.host = host;
  return kernel;
}

bool WakesForDevice(const v1::MeshStorNodeDevice* old_obj, const v1::MeshStorNodeDevice* new_obj,
                    const std::string& node) {
  const v1::MeshStorNodeDevice* obj = new_obj != nullptr ? new_obj : old_obj;
  // Our own objects are written by our passes: they would wake us after every inventory update.
  if (obj == nullptr || obj->spec.node_name == node) return false;
  // A pass reads other nodes' objects for their host NQN and address only (AddPeer).
  // Their heartbeat (updatedAt) and free space change all the time and must not wake every
  // agent of the cluster.
  if (old_obj == nullptr || new_obj == nullptr) return true;
  return old_obj->status.host_nqn != new_obj->status.host_nqn ||
         old_obj->status.transport_addresses != new_obj->status.transport_addresses ||
         old_obj->spec.node_name != new_obj->spec.node_name;
}

// The nodes a pass may need the host NQN or address of: every node `v` names.
void AddNamedNodes(const v1::MeshStorVolume& v, std::set<std::string, std::less<>>& nodes) {
  nodes.insert(v.spec.consumer_node);
  nodes.insert(v.status.node_name);
  nodes.insert(v.spec.fenced_nodes.begin(), v.spec.fenced_nodes.end());
  for (const auto& m : v.spec.members) nodes.insert(m.node);
  for (const auto& p : v.status.partitions) nodes.insert(p.node_id);
}

void AddPeer(const v1::MeshStorNodeDevice& d, Peers& peers) {
  if (d.status.host_nqn.empty()) return;
  Peer& p = peers[d.spec.node_name];
  p.host_nqn = d.status.host_nqn;
  for (const auto& a : d.status.transport_addresses) {
    if (a.transport == v1::Transport::kTcp && !a.address.empty()) {
      p.address = a.address;
      p.service = std::to_string(a.port > 0 ? a.port : 4420);
      break;
    }
  }
}

// The io_context the agent runs on: the caller's, or a new one of its own.
std::unique_ptr<boost::asio::io_context> OwnIo(const AgentConfig& config) {
  if (config.io != nullptr) return nullptr;
  return std::make_unique<boost::asio::io_context>();
}

}  // namespace

Agent::Agent(common::kube::Client& client, NodeKernel kernel, sys::UeventSource* uevents,
             AgentConfig config, common::time::Clock& clock, AgentMetrics* metrics,
             sys::MdEventSource* md_events)
    : client_(client),
      partitions_(kernel.partitions ? std::make_unique<PassCachedPartitions>(*kernel.partitions)
                                    : nullptr),
      nvmet_(kernel.nvmet ? std::make_unique<PassCachedNvmet>(*kernel.nvmet) : nullptr),
      md_(kernel.md ? std::make_unique<PassCachedMd>(*kernel.md) : nullptr),
      host_(kernel.host ? std::make_unique<PassCachedNvmeHost>(*kernel.host) : nullptr),
      kernel_(WithPassCaches(kernel, partitions_.get(), nvmet_.get(), md_.get(), host_.get())),
      uevents_(uevents),
      md_events_(md_events),
      config_(std::move(config)),
      clock_(clock),
      reconciler_(kernel_, config_.settings, clock),
      inventory_(client, config_.settings.node, config_.inventory_refresh),
      own_io_(OwnIo(config_)),
      io_(own_io_ ? own_io_.get() : config_.io),
      pass_strand_(config_.pass_strand ? *config_.pass_strand : boost::asio::make_strand(*io_)),
      events_strand_(boost::asio::make_strand(*io_)),
      resync_timer_(pass_strand_),
      metrics_(metrics) {
  // Our own io_context runs until RequestStop; a shared one is the caller's to keep running.
  if (own_io_) work_.emplace(own_io_->get_executor());
  volumes_ = config_.shared_volumes;
  devices_ = config_.shared_devices;
  if (volumes_ == nullptr || devices_ == nullptr) {
    common::kube::InformerOptions options;
    own_volumes_ = std::make_unique<common::kube::Informer<v1::MeshStorVolume>>(
        client_, common::kube::MeshStorVolumes(), v1::DecodeMeshStorVolume, options, clock_);
    own_volume_index_ = std::make_unique<VolumeIndex>(*own_volumes_);
    own_devices_ = std::make_unique<common::kube::Informer<v1::MeshStorNodeDevice>>(
        client_, common::kube::MeshStorNodeDevices(), v1::DecodeMeshStorNodeDevice, options,
        clock_);
    volumes_ = own_volume_index_.get();
    devices_ = own_devices_.get();
  }
  // A pass only acts on volumes that involve this node (before or after the change: a member
  // moved away still has a partition here to remove); the others' changes are not ours. The
  // index tells each node's agent only, instead of every agent checking every change.
  volumes_->Subscribe(config_.settings.node, [this] { Wake(); });
  devices_->AddHandler([this](const auto& change) {
    if (WakesForDevice(change.old_obj.get(), change.new_obj.get(), config_.settings.node)) Wake();
  });
}

common::Result<std::unique_ptr<AgentMetrics>> AgentMetrics::Register(common::metrics::Registry& r,
                                                                     bool simulated) {
  auto m = std::make_unique<AgentMetrics>();
  ASSIGN_OR_RETURN(auto* sim, r.AddGauge("meshstor_agent_simulated",
                                         "1 when the agents of this process run on the in-memory "
                                         "(simulated) kernel layer"));
  sim->Set(simulated ? 1 : 0);
  ASSIGN_OR_RETURN(m->passes,
                   r.AddCounter("meshstor_agent_passes_total", "Reconcile passes run", {"node"}));
  ASSIGN_OR_RETURN(m->step_errors,
                   r.AddCounter("meshstor_agent_step_errors_total",
                                "Steps that failed (retried by a later pass)", {"node"}));
  ASSIGN_OR_RETURN(m->pass_seconds, r.AddHistogram("meshstor_agent_pass_duration_seconds",
                                                   "Duration of one reconcile pass",
                                                   common::metrics::DefaultBuckets(), {"node"}));
  ASSIGN_OR_RETURN(m->array_degraded,
                   r.AddGauge("meshstor_agent_array_degraded_devices",
                              "Missing or failed slots of each MD array assembled on the node",
                              {"node", "volume"}));
  ASSIGN_OR_RETURN(m->array_sync_ratio,
                   r.AddGauge("meshstor_agent_array_sync_ratio",
                              "Resync/recovery progress (0..1; 1 when idle) of each array there",
                              {"node", "volume"}));
  ASSIGN_OR_RETURN(m->array_io, r.AddGauge("meshstor_agent_array_io",
                                           "I/O of each array assembled on the node since it "
                                           "started (/sys/block/mdX/stat): requests and bytes by "
                                           "direction",
                                           {"node", "volume", "direction", "unit"}));
  ASSIGN_OR_RETURN(m->partitions, r.AddGauge("meshstor_agent_partitions",
                                             "MeshStor partitions on the node's drives by class",
                                             {"node", "class"}));
  ASSIGN_OR_RETURN(m->controllers, r.AddGauge("meshstor_agent_nvmeof_controllers",
                                              "NVMe-oF controllers of the node's host by state",
                                              {"node", "state"}));
  ASSIGN_OR_RETURN(m->drive_size,
                   r.AddGauge("meshstor_agent_drive_size_bytes",
                              "Size of each local NVMe drive of the node", {"node", "drive"}));
  ASSIGN_OR_RETURN(m->drive_free,
                   r.AddGauge("meshstor_agent_drive_free_extent_bytes",
                              "Biggest free extent of each local NVMe drive (the largest member "
                              "that can still be placed there; 0 when the drive is unreadable)",
                              {"node", "drive"}));
  return m;
}

Agent::~Agent() { Stop(); }

common::Status Agent::Start() {
  if (own_volumes_) own_volumes_->Start();
  if (own_devices_) own_devices_->Start();
  return common::OkStatus();
}

bool Agent::WaitForSync(std::chrono::milliseconds timeout) {
  return volumes_->informer().WaitForSync(timeout) && devices_->WaitForSync(timeout);
}

void Agent::Run() {
  running_ = true;
  if (uevents_ != nullptr || md_events_ != nullptr) {
    // The descriptors are made and used on events_strand_ only (RequestStop cancels them there).
    boost::asio::post(events_strand_, [this] {
      if (stopping_) return;
      auto log = common::log::Root().WithValues({{"node", config_.settings.node}});
      // A duplicate, so that the stream_descriptor closes its own copy only.
      auto watch = [&](int fd, std::optional<boost::asio::posix::stream_descriptor>& out,
                       const char* what) {
        if (fd < 0) {
          log.Info("This event source cannot be waited on; relying on the periodic pass",
                   {{"source", what}});
          return false;
        }
        int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) {
          log.Error(common::ErrnoToStatus(errno, "duplicating the descriptor"),
                    "Not waiting for events; relying on the periodic pass", {{"source", what}});
          return false;
        }
        out.emplace(*io_);
        boost::system::error_code ec;
        out->assign(copy, ec);
        if (ec) {
          ::close(copy);
          out.reset();
          log.Error(common::Status(StatusCode::kInternal, ec.message()),
                    "Not waiting for events; relying on the periodic pass", {{"source", what}});
          return false;
        }
        return true;
      };
      // Live before the first wait: what is pending when the wait is armed counts as an event.
      if (uevents_ != nullptr && watch(uevents_->ReadyFd(), uevent_fd_, "uevents")) {
        uevents_live_ = true;
        WatchUevents();
      }
      if (md_events_ != nullptr &&
          watch(md_events_->ReadyDescriptor().fd, md_event_fd_, "md events")) {
        md_events_live_ = true;
        WatchMdEvents();
      }
    });
  }
  Wake();  // the first pass
  if (own_io_ && threads_.empty()) {
    // Two threads: the events are taken while a pass runs.
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { own_io_->run(); });
  }
}

void Agent::RequestStop() {
  if (stopping_.exchange(true)) return;
  // After these, the agent's handlers arm nothing more: a shared io_context runs out of work.
  boost::asio::post(pass_strand_, [this] { resync_timer_.cancel(); });
  boost::asio::post(events_strand_, [this] {
    if (uevent_fd_) uevent_fd_->cancel();
    if (md_event_fd_) md_event_fd_->cancel();
  });
  work_.reset();
}

void Agent::Stop() {
  RequestStop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (own_volumes_) own_volumes_->Stop();
  if (own_devices_) own_devices_->Stop();
}

void Agent::Wake() {
  other_wake_ = true;
  Post();
}

void Agent::Post() {
  // Not before Run(): with the process's io_context already running, a pass woken by the drives'
  // list before the volumes' list saw no volume, and its garbage collection removed every
  // export and import of the node (a restarted exporter's agent cut its consumers off).
  if (stopping_ || !running_) return;
  // One posted pass at a time: wake-ups until it begins are coalesced into it; one that comes
  // while it runs posts the next.
  if (wake_pending_.exchange(true)) return;
  boost::asio::post(pass_strand_, [this] { RunPass(); });
}

void Agent::RunPass() {
  wake_pending_ = false;
  if (stopping_) return;
  resync_timer_.cancel();
  common::Status s = Pass();
  if (!s.ok()) {
    common::log::Root()
        .WithValues({{"node", config_.settings.node}, {"simulated", config_.simulated}})
        .V(1)
        .Info("Pass finished with errors", {{"first", s.ToString()}});
  }
  if (stopping_) return;
  resync_timer_.expires_after(config_.resync);
  resync_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Wake();
  });
}

void Agent::WatchUevents() {
  if (stopping_) return;
  // Armed before taking what is pending: the reactor is edge-triggered, so an event that comes
  // after the last read must find the wait already queued.
  uevent_fd_->async_wait(
      boost::asio::posix::descriptor_base::wait_read,
      boost::asio::bind_executor(events_strand_, [this](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          uevents_live_ = false;
          common::log::Root().Error(common::Status(StatusCode::kInternal, ec.message()),
                                    "Uevents stopped; relying on the periodic pass");
          return;
        }
        WatchUevents();
      }));
  bool any = false;
  for (;;) {
    auto event = uevents_->Next(std::chrono::milliseconds(0));
    if (!event.ok()) {
      uevents_live_ = false;
      common::log::Root().Error(event.status(), "Uevents stopped; relying on the periodic pass");
      uevent_fd_->cancel();
      break;
    }
    if (!event->has_value()) break;
    any = true;
  }
  if (any) {
    kernel_event_ = true;
    Post();  // not Wake(): a pass woken by kernel events alone does not retry dead addresses
  }
}

// An MD event (a member marked faulty or removed, above all) wakes the pass at once, so the
// consumer records the member's exit from the in-sync set within moments (docs/design.md §6.1).
void Agent::WatchMdEvents() {
  if (stopping_) return;
  const auto wait =
      md_events_->ReadyDescriptor().readiness == sys::MdEventSource::Readiness::kPriority
          ? boost::asio::posix::descriptor_base::wait_error  // EPOLLPRI
          : boost::asio::posix::descriptor_base::wait_read;
  md_event_fd_->async_wait(
      wait, boost::asio::bind_executor(events_strand_, [this](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          md_events_live_ = false;
          common::log::Root().Error(common::Status(StatusCode::kInternal, ec.message()),
                                    "MD events stopped; relying on uevents and the periodic pass");
          return;
        }
        WatchMdEvents();
      }));
  auto event = md_events_->Wait(std::chrono::milliseconds(0));
  if (!event.ok()) {
    md_events_live_ = false;
    common::log::Root().Error(event.status(),
                              "MD events stopped; relying on uevents and the periodic pass");
    md_event_fd_->cancel();
    return;
  }
  if (*event) {
    kernel_event_ = true;
    Post();  // not Wake(): a pass woken by kernel events alone does not retry dead addresses
  }
}

common::Status Agent::Pass() {
  // Agents that share a pass strand queue on it: one asked to stop meanwhile does no pass.
  if (stopping_) return common::OkStatus();
  const auto started = clock_.SteadyNow();
  if (partitions_) partitions_->BeginPass();
  if (nvmet_) nvmet_->BeginPass();
  if (md_) md_->BeginPass();
  // A pass woken by kernel events alone does not connect again to an address that did not
  // answer: each failed connect adds and removes a controller, and those uevents would wake the
  // next pass at once, a pass after pass blocked in the kernel's connect timeout while a node is
  // down. The timer, the API and a direct call retry it, and so does any pass once --resync has
  // passed since the last retry (kernel events that keep coming would keep the timer off).
  const bool by_kernel = kernel_event_.exchange(false);
  const bool by_other = other_wake_.exchange(false);
  const auto since_retry =
      started.time_since_epoch() - std::chrono::steady_clock::duration(last_retry_.load());
  const bool retry = !(by_kernel && !by_other) || since_retry >= config_.resync;
  if (retry) last_retry_ = started.time_since_epoch().count();
  if (host_) host_->BeginPass(/*retry_unanswered=*/retry);
  const std::string& node = config_.settings.node;
  auto log = common::log::Root().WithValues({{"node", node}});
  common::Status first;
  int errors = 0;
  auto note = [&](const common::Status& s) {
    if (s.ok()) return;
    ++errors;
    if (first.ok()) first = s;
    // A step that keeps failing fails every pass: its error is logged once per
    // kRepeatedErrorInterval (the step error counter still counts each), at V(1) in between.
    common::log::RepeatFilter::Verdict verdict;
    {
      std::lock_guard lock(repeats_mu_);
      verdict = repeated_errors_.Check(s.ToString(), clock_.SteadyNow());
    }
    if (!verdict.log) {
      log.V(1).Info("Step failed again; retrying on the next pass", {{"error", s.ToString()}});
    } else if (verdict.suppressed > 0) {
      log.Error(s, "Step failed; retrying on the next pass",
                {{"repeatsNotLogged", verdict.suppressed}});
    } else {
      log.Error(s, "Step failed; retrying on the next pass");
    }
  };

  // Only the volumes that involve this node matter to a pass and to everything it calls
  // (reconcile, garbage collection, rebuild caps, partition classes, metrics), and of the other
  // nodes' drives only the host NQN and address of the nodes those volumes name. The cache
  // holds every volume and drive of the cluster (10000 and 2000 at 1000 nodes); a node takes
  // part in a few dozen volumes, which the index hands over without walking the others.
  std::vector<v1::MeshStorVolume> volumes;
  std::set<std::string, std::less<>> named;
  const auto mine = volumes_->VolumesOf(node);
  volumes_examined_ += static_cast<int64_t>(mine.size());
  for (const auto& v : mine) {
    volumes.push_back(*v);
    AddNamedNodes(*v, named);
  }
  std::vector<v1::MeshStorNodeDevice> own_devices;
  Peers peers;
  for (const auto& d : devices_->List()) {
    if (d->spec.node_name == node) own_devices.push_back(*d);
    if (named.count(d->spec.node_name)) AddPeer(*d, peers);
  }

  // Inventory first: the operator places on it, and our own host NQN goes out with it.
  std::vector<common::Status> drive_errors;
  auto identity = kernel_.host->GetHostIdentity();
  auto drives = SnapshotDrives(kernel_, &drive_errors);
  for (const auto& e : drive_errors) note(e);
  if (!identity.ok()) note(identity.status().WithContext("reading this node's host NQN"));
  if (!drives.ok()) note(drives.status().WithContext("listing drives"));
  if (identity.ok() && drives.ok()) {
    std::vector<v1::TransportAddress> addresses;
    if (!config_.settings.address.empty()) {
      addresses.push_back(
          {v1::Transport::kTcp, config_.settings.address, std::stoi(config_.settings.service)});
    }
    auto desired = BuildNodeDevices(node, *drives, volumes, identity->host_nqn, addresses,
                                    std::chrono::floor<std::chrono::seconds>(clock_.Now()));
    note(inventory_.Sync(desired, own_devices));
    // Our own entry, so a volume consumed here can be exported to us within this pass.
    peers[node] = Peer{identity->host_nqn, config_.settings.address, config_.settings.service};
  }

  // A member's exit from an array goes into the CR first, before any step that may wait on the
  // network (docs/design.md §6.1). MD takes a member out only with an MD event, and a member's
  // device goes only with a uevent: when both sources are waited on and neither spoke since the
  // last pass began, there is no exit to hurry, and each volume's reconcile below records MD's
  // in-sync set as well (an idle consumer reads each array and member device once, not twice).
  // Taken at the start: an event during this pass makes the next one observe.
  const bool observe = by_kernel || !uevents_live_ || !md_events_live_;
  if (observe) {
    for (const auto& v : volumes) {
      if (auto in_sync = reconciler_.ObserveInSync(v, peers)) {
        note(WriteOutcome(v, *in_sync));
      }
    }
  }
  for (const auto& v : volumes) {
    if (!Involves(v, node)) continue;
    VolumeOutcome out = reconciler_.Reconcile(v, peers);
    for (const auto& e : out.errors) note(e);
    for (const auto& n : out.notices) log.Info(n, {{"volume", v.metadata.name}});
    note(WriteOutcome(v, out));
  }
  note(reconciler_.CollectGarbage(volumes));
  // Rebuild caps and metrics only tune and report: the arrays as this pass last read them.
  VolumeReconciler::ArrayReader last_read;
  if (md_) last_read = [this](std::string_view name) { return md_->LastRead(name); };
  note(reconciler_.CapRebuilds(volumes, last_read));

  {
    std::lock_guard lock(repeats_mu_);
    repeated_errors_.Prune(clock_.SteadyNow());
  }
  UpdateMetrics(volumes, drives.ok() ? *drives : std::vector<DriveSnapshot>{});
  if (drives.ok()) UpdateDriveMetrics(*drives);
  ++passes_;
  if (metrics_ != nullptr) {
    metrics_->passes->WithLabels({node}).Inc();
    for (int i = 0; i < errors; ++i) metrics_->step_errors->WithLabels({node}).Inc();
    metrics_->pass_seconds->WithLabels({node}).Observe(
        std::chrono::duration<double>(clock_.SteadyNow() - started).count());
  }
  return first;
}

common::Status Agent::WriteOutcome(const v1::MeshStorVolume& cached, const VolumeOutcome& outcome) {
  const auto& type = common::kube::MeshStorVolumes();
  const std::string& name = cached.metadata.name;
  const common::kube::ObjectKey key{"", name};
  common::Status last;
  // The informer's copy first: a pass that changes nothing sends nothing. Only a conflict (the
  // cache was behind, e.g. our own last write not seen yet) costs a GET of the current object.
  for (int attempt = 0; attempt < 5; ++attempt) {
    v1::MeshStorVolume v;
    if (attempt == 0) {
      v = cached;
    } else {
      auto raw = client_.Get(type, key);
      if (!raw.ok()) {
        return raw.status().code() == StatusCode::kNotFound ? common::OkStatus() : raw.status();
      }
      ASSIGN_OR_RETURN(v, v1::DecodeMeshStorVolume(*raw));
    }
    if (outcome.set_formatted_at && !v.spec.formatted_at) {
      v.spec.formatted_at = outcome.set_formatted_at;
      auto updated = client_.Update(type, key, v1::EncodeMeshStorVolume(v));
      if (!updated.ok()) {
        if (updated.status().code() == StatusCode::kNotFound) return common::OkStatus();
        last = updated.status().WithContext("recording formattedAt of " + name);
        if (last.code() == StatusCode::kAborted) continue;  // conflict: read again
        return last;
      }
      ASSIGN_OR_RETURN(v, v1::DecodeMeshStorVolume(*updated));
    }
    if (!ApplyOutcome(outcome, config_.settings.node, v.status)) return common::OkStatus();
    auto updated = client_.UpdateStatus(type, key, v1::EncodeMeshStorVolume(v));
    if (updated.ok() || updated.status().code() == StatusCode::kNotFound) return common::OkStatus();
    last = updated.status().WithContext("reporting the status of " + name);
    if (last.code() != StatusCode::kAborted) return last;
  }
  return last;
}

void Agent::UpdateMetrics(const std::vector<v1::MeshStorVolume>& volumes,
                          const std::vector<DriveSnapshot>& drives) {
  if (metrics_ == nullptr) return;
  AgentMetrics& m = *metrics_;
  const std::string& node = config_.settings.node;
  PartitionCounts total;
  for (const auto& d : drives) {
    PartitionCounts c = ClassifyPartitions(node, d, volumes);
    total.local += c.local;
    total.remote += c.remote;
    total.unknown += c.unknown;
  }
  m.partitions->WithLabels({node, "local"}).Set(total.local);
  m.partitions->WithLabels({node, "remote"}).Set(total.remote);
  m.partitions->WithLabels({node, "unknown"}).Set(total.unknown);

  std::set<std::string> arrays;
  for (const auto& v : volumes) {
    if (v.spec.consumer_node != node) continue;
    auto a = md_ ? md_->LastRead(sys::MdArrayName(v.metadata.name))
                 : kernel_.md->GetArray(sys::MdArrayName(v.metadata.name));
    if (!a.ok()) continue;
    const std::string& vol = v.metadata.name;
    arrays.insert(vol);
    m.array_degraded->WithLabels({node, vol}).Set(a->degraded);
    double ratio = a->sync_total_sectors == 0 ? 1.0
                                              : static_cast<double>(a->sync_done_sectors) /
                                                    static_cast<double>(a->sync_total_sectors);
    m.array_sync_ratio->WithLabels({node, vol}).Set(ratio);
    m.array_io->WithLabels({node, vol, "read", "requests"}).Set(static_cast<double>(a->reads));
    m.array_io->WithLabels({node, vol, "read", "bytes"}).Set(static_cast<double>(a->read_bytes));
    m.array_io->WithLabels({node, vol, "write", "requests"}).Set(static_cast<double>(a->writes));
    m.array_io->WithLabels({node, vol, "write", "bytes"}).Set(static_cast<double>(a->write_bytes));
  }
  for (const auto& gone : array_volumes_) {
    if (arrays.count(gone)) continue;
    (void)m.array_degraded->Remove({node, gone});
    (void)m.array_sync_ratio->Remove({node, gone});
    for (const char* dir : {"read", "write"}) {
      for (const char* unit : {"requests", "bytes"})
        (void)m.array_io->Remove({node, gone, dir, unit});
    }
  }
  array_volumes_ = std::move(arrays);

  auto controllers = kernel_.host->ListControllers();
  if (controllers.ok()) {
    std::map<std::string, int> by_state;
    for (const auto& c : *controllers) {
      if (c.transport == "pcie") continue;
      ++by_state[std::string(sys::NvmeControllerStateName(c.state))];
    }
    for (const auto& state : controller_states_) {
      if (!by_state.count(state)) (void)m.controllers->Remove({node, state});
    }
    controller_states_.clear();
    for (const auto& [state, n] : by_state) {
      m.controllers->WithLabels({node, state}).Set(n);
      controller_states_.insert(state);
    }
  }
}

void Agent::UpdateDriveMetrics(const std::vector<DriveSnapshot>& drives) {
  if (metrics_ == nullptr) return;
  const std::string& node = config_.settings.node;
  std::set<std::string> names;
  for (const auto& d : drives) {
    if (d.drive.remote()) continue;
    names.insert(d.drive.name);
    metrics_->drive_size->WithLabels({node, d.drive.name})
        .Set(static_cast<double>(d.drive.size_bytes));
    metrics_->drive_free->WithLabels({node, d.drive.name})
        .Set(static_cast<double>(d.biggest_free_bytes));
  }
  for (const auto& gone : drive_names_) {
    if (names.count(gone)) continue;
    (void)metrics_->drive_size->Remove({node, gone});
    (void)metrics_->drive_free->Remove({node, gone});
  }
  drive_names_ = std::move(names);
}

}  // namespace agent
