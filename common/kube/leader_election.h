// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm: a candidate
// takes the Lease when it is free (no holder) or when its holder has not renewed it for
// leaseDuration as observed on the candidate's own clock (so clock skew between nodes does not
// matter); the leader renews every retryPeriod and steps down when it could not renew for
// renewDeadline; on Stop() a leader releases the Lease (empty holder) so a successor does not wait
// out the lease. Every write is conditional on the Lease's resourceVersion.
//
// Thread contract: Run() blocks on the calling thread; Stop(), IsLeader() and Leader() are safe
// from any thread. Callbacks run on the Run() thread and must return promptly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/api/core.h"
#include "common/kube/client.h"
#include "common/status/status.h"
#include "common/time/clock.h"

namespace common::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per candidate, e.g. the pod name
  std::chrono::milliseconds lease_duration{std::chrono::seconds(15)};
  std::chrono::milliseconds renew_deadline{std::chrono::seconds(10)};
  std::chrono::milliseconds retry_period{std::chrono::seconds(2)};
  bool release_on_stop = true;
};

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  // Called once when leadership ends, whether lost or released.
  std::function<void()> on_stopped_leading;
  // Called when the observed holder changes (including to this candidate).
  std::function<void(const std::string& identity)> on_new_leader;
};

class LeaderElector {
 public:
  // InvalidArgument naming the field unless: names and identity are set and
  // lease_duration > renew_deadline > retry_period > 0.
  static Status Validate(const LeaderElectionConfig& config);

  // `client` and `clock` must outlive the elector. REQUIRES: Validate(config).ok().
  LeaderElector(Client& client, time::Clock& clock, LeaderElectionConfig config,
                LeaderCallbacks callbacks);
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns until leading, then renews until leadership is lost or Stop() is called.
  // Returns OK after Stop(); Aborted when leadership was lost (the caller should exit, as
  // client-go programs do, so that a fresh process campaigns again).
  Status Run();
  // Ends Run() (releasing the Lease if leading and configured to). Idempotent.
  void Stop();

  bool IsLeader() const;
  // The holder last observed; empty if none.
  std::string Leader() const;

 private:
  // One attempt to acquire or renew; true when this candidate holds the Lease afterwards.
  bool TryAcquireOrRenew();
  void Release();
  // Waits `d` on the clock unless stopped; false when stopped.
  bool Wait(std::chrono::steady_clock::duration d);
  void ObserveHolder(const std::string& holder);

  Client& client_;
  time::Clock& clock_;
  const LeaderElectionConfig config_;
  const LeaderCallbacks callbacks_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool leading_ = false;
  std::string observed_holder_;
  std::optional<api::LeaseSpec> observed_spec_;
  std::chrono::steady_clock::time_point observed_time_{};
  std::string observed_resource_version_;
};

}  // namespace common::kube
