// meshstor-operator: the cluster-scoped controller of MeshStorVolume. This main only wires:
// options, the runtime (Kubernetes client, /metrics, /healthz, /readyz) and leader election.
// The volume controller arrives with the operator issue; until then the elected leader only
// holds the Lease and reports it in meshstor_operator_leader.
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/kube/leader_election.h"
#include "common/log/log.h"
#include "common/time/clock.h"

namespace {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "meshstor-operator";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using common::log::Root;
  common::app::CommonOptions common_options;
  bool leader_elect = true;
  std::string lease_namespace = "meshstor-system";
  std::string lease_name = "meshstor-operator";
  std::string identity = Hostname();
  std::chrono::milliseconds lease_duration = std::chrono::seconds(15);
  std::chrono::milliseconds renew_deadline = std::chrono::seconds(10);
  std::chrono::milliseconds retry_period = std::chrono::seconds(2);

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

  std::unique_ptr<common::kube::LeaderElector> elector;
  std::thread election_thread;
  std::atomic<bool> lost{false};
  if (leader_elect) {
    elector = std::make_unique<common::kube::LeaderElector>(
        (*runtime)->client(), common::time::RealClock::Get(), election,
        common::kube::LeaderCallbacks{.on_started_leading = [leader] { leader->Set(1); },
                                      .on_stopped_leading = [leader] { leader->Set(0); },
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
  }

  int sig = common::app::WaitForTerminationSignal();
  Root().Info("Stopping", {{"signal", sig}});
  if (elector) {
    elector->Stop();
    election_thread.join();
  }
  return lost ? 1 : 0;
}
