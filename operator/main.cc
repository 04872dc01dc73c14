// meshstor-operator: the cluster-scoped controller of MeshStorVolume. This main only wires:
// options, the runtime (Kubernetes client, /metrics, /healthz, /readyz), leader election and
// the volume controller (operator/controller.h), which runs only while this replica leads.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/kube/leader_election.h"
#include "common/log/log.h"
#include "common/time/clock.h"
#include "operator/controller.h"
#include "operator/memory_trim.h"
#include "operator/metrics.h"

namespace {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "meshstor-operator";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  meshstor_operator::FixMmapThreshold();
  using common::log::Root;
  common::app::CommonOptions common_options;
  bool leader_elect = true;
  std::string lease_namespace = "meshstor-system";
  std::string lease_name = "meshstor-operator";
  std::string identity = Hostname();
  std::chrono::milliseconds lease_duration = std::chrono::seconds(15);
  std::chrono::milliseconds renew_deadline = std::chrono::seconds(10);
  std::chrono::milliseconds retry_period = std::chrono::seconds(2);
  int64_t max_rebuilds_per_node = 2;
  int64_t max_rebuilds_cluster = 8;
  std::chrono::milliseconds agent_staleness = std::chrono::minutes(2);
  std::chrono::milliseconds placement_retry = std::chrono::seconds(30);
  std::chrono::milliseconds consumer_dead_after{0};
  std::chrono::milliseconds resync_period = std::chrono::minutes(10);
  std::string events_namespace = "default";

  common::config::Config config("meshstor-operator",
                                "Runs the MeshStor operator (placement and volume lifecycle)");
  common::app::AddCommonOptions(config, &common_options);
  config.AddBool("leader-elect", &leader_elect, "Elect one active replica through a Lease");
  config.AddString("lease-namespace", &lease_namespace, "Namespace of the leader-election Lease");
  config.AddString("lease-name", &lease_name, "Name of the leader-election Lease");
  config.AddString("identity", &identity, "Leader-election identity (default: host name)");
  config.AddDuration("lease-duration", &lease_duration, "Leader-election lease duration");
  config.AddDuration("renew-deadline", &renew_deadline, "Leader steps down if not renewed by then");
  config.AddDuration("retry-period", &retry_period, "Interval between Lease attempts");
  config.AddInt64("max-rebuilds-per-node", &max_rebuilds_per_node,
                  "Replacements that may sync onto one node at a time", {.min = 1, .max = 1000});
  config.AddInt64("max-rebuilds-cluster", &max_rebuilds_cluster,
                  "Replacements that may sync at a time cluster-wide", {.min = 1, .max = 100000});
  config.AddDuration("agent-staleness", &agent_staleness,
                     "Drives whose agent has not reported for this long are not placed on");
  config.AddDuration("consumer-dead-after", &consumer_dead_after,
                     "Declare a consumer node dead (and fence it, so its volumes can move) once it "
                     "is NotReady or Unknown and its agent has been silent this long; 0 (default): "
                     "only the node.kubernetes.io/out-of-service taint declares a node dead");
  config.AddDuration("placement-retry", &placement_retry,
                     "Interval between placement attempts while too few nodes qualify");
  config.AddDuration("resync-period", &resync_period, "Full resync of every volume");
  config.AddString("events-namespace", &events_namespace,
                   "Namespace of Events about cluster-scoped MeshStorVolumes");
  if (int code = common::app::LoadOrExit(config, common_options, argc, argv); code >= 0) {
    return code;
  }
  common::kube::LeaderElectionConfig election{lease_namespace, lease_name,     identity,
                                              lease_duration,  renew_deadline, retry_period};
  if (common::Status s = common::kube::LeaderElector::Validate(election); !s.ok()) {
    std::fprintf(stderr, "leader election: %s\n", s.message().c_str());
    return 2;
  }

  common::app::BlockTerminationSignals();
  auto runtime =
      common::app::Runtime::Start("operator", common_options, common::kube::MeshStorVolumes());
  if (!runtime.ok()) {
    Root().Error(runtime.status(), "Could not start");
    return 1;
  }
  auto leader_gauge = (*runtime)->registry().AddGauge(
      "meshstor_operator_leader", "1 while this replica is the active (elected) operator");
  if (!leader_gauge.ok()) {
    Root().Error(leader_gauge.status(), "Could not register metrics");
    return 1;
  }
  common::metrics::Gauge* leader = *leader_gauge;
  auto metrics = meshstor_operator::OperatorMetrics::Create((*runtime)->registry());
  if (!metrics.ok()) {
    Root().Error(metrics.status(), "Could not register metrics");
    return 1;
  }
  common::kube::EventRecorder recorder((*runtime)->client(), common::time::RealClock::Get(),
                                       {.reporting_controller = "csi.meshstor.io/operator",
                                        .reporting_instance = identity,
                                        .default_namespace = events_namespace});
  meshstor_operator::ControllerRunner::Options runner_options;
  runner_options.limits.agent_staleness =
      std::chrono::duration_cast<std::chrono::seconds>(agent_staleness);
  runner_options.limits.max_rebuilds_per_node = static_cast<int>(max_rebuilds_per_node);
  runner_options.limits.max_rebuilds_cluster = static_cast<int>(max_rebuilds_cluster);
  runner_options.limits.retry_interval =
      std::chrono::duration_cast<std::chrono::seconds>(placement_retry);
  runner_options.limits.consumer_dead_after =
      std::chrono::duration_cast<std::chrono::seconds>(consumer_dead_after);
  runner_options.resync_period = resync_period;
  runner_options.trim_heap = [] {
    const auto r = meshstor_operator::TrimHeap();
    Root().Info("Trimmed the heap", {{"residentBytesBefore", r.resident_before},
                                     {"residentBytesAfter", r.resident_after},
                                     {"heapInUseBytes", r.heap_in_use},
                                     {"heapFreeBytes", r.heap_free},
                                     {"mmappedBytes", r.mmapped},
                                     {"slabBytes", r.slab_mapped},
                                     {"slabUsedBytes", r.slab_used}});
  };

  // The controller runs only while this replica leads. Starting waits for the informer caches,
  // so it happens on its own thread, never on the election thread.
  std::mutex runner_mu;
  std::unique_ptr<meshstor_operator::ControllerRunner> runner;  // guarded by runner_mu
  std::thread starter;
  auto start_controller = [&] {
    std::lock_guard<std::mutex> lock(runner_mu);
    if (runner) return;
    runner = std::make_unique<meshstor_operator::ControllerRunner>(
        (*runtime)->client(), common::time::RealClock::Get(), &recorder, metrics->get(),
        runner_options);
    if (common::Status s = runner->Start(); !s.ok()) {
      Root().Error(s, "Could not start the volume controller");
      kill(getpid(), SIGTERM);
      return;
    }
    Root().Info("Started volume controller");
  };
  auto stop_controller = [&] {
    std::lock_guard<std::mutex> lock(runner_mu);
    if (runner) runner->Stop();
  };

  std::unique_ptr<common::kube::LeaderElector> elector;
  std::thread election_thread;
  std::atomic<bool> lost{false};
  if (leader_elect) {
    elector = std::make_unique<common::kube::LeaderElector>(
        (*runtime)->client(), common::time::RealClock::Get(), election,
        common::kube::LeaderCallbacks{.on_started_leading =
                                          [&, leader] {
                                            leader->Set(1);
                                            starter = std::thread(start_controller);
                                          },
                                      .on_stopped_leading =
                                          [&, leader] {
                                            leader->Set(0);
                                            stop_controller();
                                          },
                                      .on_new_leader =
                                          [](const std::string& who) {
                                            Root().Info("Observed leader", {{"leader", who}});
                                          }});
    election_thread = std::thread([&] {
      common::Status s = elector->Run();
      if (!s.ok()) {
        lost = true;
        // Exit so a fresh process campaigns again, as client-go programs do.
        kill(getpid(), SIGTERM);
      }
    });
  } else {
    leader->Set(1);
    starter = std::thread(start_controller);
  }

  int sig = common::app::WaitForTerminationSignal();
  Root().Info("Stopping", {{"signal", sig}});
  if (elector) {
    elector->Stop();
    election_thread.join();
  }
  if (starter.joinable()) starter.join();
  stop_controller();
  recorder.Stop();
  return lost ? 1 : 0;
}
