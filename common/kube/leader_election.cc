#include "common/kube/leader_election.h"

#include <random>

#include "common/api/core_codec.h"
#include "common/log/log.h"

namespace common::kube {

Status LeaderElector::Validate(const LeaderElectionConfig& c) {
  if (c.lease_namespace.empty()) return InvalidArgumentError("lease namespace must be set");
  if (c.lease_name.empty()) return InvalidArgumentError("lease name must be set");
  if (c.identity.empty()) return InvalidArgumentError("leader election identity must be set");
  if (c.retry_period.count() <= 0) return InvalidArgumentError("retry period must be positive");
  if (c.renew_deadline <= c.retry_period) {
    return InvalidArgumentError(
        "renew deadline ({} ms) must be longer than the retry period ({} ms)",
        c.renew_deadline.count(), c.retry_period.count());
  }
  if (c.lease_duration <= c.renew_deadline) {
    return InvalidArgumentError(
        "lease duration ({} ms) must be longer than the renew deadline ({} ms)",
        c.lease_duration.count(), c.renew_deadline.count());
  }
  return OkStatus();
}

LeaderElector::LeaderElector(Client& client, time::Clock& clock, LeaderElectionConfig config,
                             LeaderCallbacks callbacks)
    : client_(client),
      clock_(clock),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)) {}

bool LeaderElector::IsLeader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

std::string LeaderElector::Leader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_holder_;
}

void LeaderElector::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

bool LeaderElector::Wait(std::chrono::steady_clock::duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  clock_.WaitFor(lock, cv_, d, [&] { return stop_; });
  return !stop_;
}

void LeaderElector::ObserveHolder(const std::string& holder) {
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = holder != observed_holder_;
    observed_holder_ = holder;
  }
  if (changed && !holder.empty() && callbacks_.on_new_leader) callbacks_.on_new_leader(holder);
}

bool LeaderElector::TryAcquireOrRenew() {
  const auto now = clock_.Now();
  const auto steady_now = clock_.SteadyNow();
  const ObjectKey key{config_.lease_namespace, config_.lease_name};
  const int32_t duration_s = static_cast<int32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count());
  log::Logger log = log::Root().WithValues({{"lease", key.ToString()}});

  Result<std::string> got = client_.Get(Leases(), key);
  if (!got.ok() && got.status().code() == StatusCode::kNotFound) {
    api::Lease lease;
    lease.metadata.name = config_.lease_name;
    lease.metadata.namespace_ = config_.lease_namespace;
    lease.spec = {config_.identity, std::max(duration_s, 1), now, now, 0};
    Result<std::string> created =
        client_.Create(Leases(), config_.lease_namespace, api::EncodeLease(lease));
    if (!created.ok()) {
      log.V(1).Info("Could not create Lease", {{"error", created.status()}});
      return false;
    }
    Result<api::Lease> stored = api::DecodeLease(*created);
    {
      std::lock_guard<std::mutex> lock(mu_);
      observed_spec_ = lease.spec;
      observed_time_ = steady_now;
      observed_resource_version_ = stored.ok() ? stored->metadata.resource_version : "";
    }
    ObserveHolder(config_.identity);
    return true;
  }
  if (!got.ok()) {
    log.V(1).Info("Could not read Lease", {{"error", got.status()}});
    return false;
  }
  Result<api::Lease> lease = api::DecodeLease(*got);
  if (!lease.ok()) {
    log.Error(lease.status(), "Could not decode Lease");
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!observed_spec_ || !(*observed_spec_ == lease->spec)) {
      observed_spec_ = lease->spec;
      observed_time_ = steady_now;
    }
  }
  ObserveHolder(lease->spec.holder_identity);
  const std::string& holder = lease->spec.holder_identity;
  const auto held_for = std::chrono::seconds(lease->spec.lease_duration_seconds.value_or(0));
  if (!holder.empty() && holder != config_.identity) {
    std::lock_guard<std::mutex> lock(mu_);
    if (observed_time_ + held_for > steady_now) return false;  // someone else holds it
  }

  api::Lease next = *lease;
  next.spec.holder_identity = config_.identity;
  next.spec.lease_duration_seconds = std::max(duration_s, 1);
  next.spec.renew_time = now;
  if (holder != config_.identity) {
    next.spec.acquire_time = now;
    next.spec.lease_transitions = lease->spec.lease_transitions.value_or(0) + 1;
  }
  // metadata.resourceVersion from the read makes this update conditional.
  Result<std::string> updated = client_.Update(Leases(), key, api::EncodeLease(next));
  if (!updated.ok()) {
    log.V(1).Info("Could not update Lease", {{"error", updated.status()}});
    return false;
  }
  Result<api::Lease> stored = api::DecodeLease(*updated);
  {
    std::lock_guard<std::mutex> lock(mu_);
    observed_spec_ = next.spec;
    observed_time_ = steady_now;
    observed_resource_version_ = stored.ok() ? stored->metadata.resource_version : "";
  }
  ObserveHolder(config_.identity);
  return true;
}

void LeaderElector::Release() {
  const ObjectKey key{config_.lease_namespace, config_.lease_name};
  Result<std::string> got = client_.Get(Leases(), key);
  if (!got.ok()) return;
  Result<api::Lease> lease = api::DecodeLease(*got);
  if (!lease.ok() || lease->spec.holder_identity != config_.identity) return;
  const auto now = clock_.Now();
  lease->spec.holder_identity.clear();
  lease->spec.lease_duration_seconds = 1;
  lease->spec.renew_time = now;
  lease->spec.acquire_time = now;
  Result<std::string> updated = client_.Update(Leases(), key, api::EncodeLease(*lease));
  if (!updated.ok()) {
    log::Root().Error(updated.status(), "Could not release Lease", {{"lease", key.ToString()}});
  }
}

Status LeaderElector::Run() {
  std::mt19937_64 rng(std::random_device{}());
  auto jittered = [&](std::chrono::milliseconds d) {
    // client-go waits retryPeriod·(1 + up to 20 %) between campaign attempts.
    auto extra = std::chrono::milliseconds(rng() % (d.count() / 5 + 1));
    return d + extra;
  };
  log::Logger log =
      log::Root().WithValues({{"lease", config_.lease_namespace + "/" + config_.lease_name},
                              {"identity", config_.identity}});

  // Campaign.
  while (!TryAcquireOrRenew()) {
    if (!Wait(jittered(config_.retry_period))) return OkStatus();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = true;
  }
  log.Info("Acquired leadership");
  if (callbacks_.on_started_leading) callbacks_.on_started_leading();

  // Renew until a renewal does not succeed within renew_deadline, or until stopped.
  Status result = OkStatus();
  auto last_renew = clock_.SteadyNow();
  while (Wait(config_.retry_period)) {
    if (TryAcquireOrRenew()) {
      last_renew = clock_.SteadyNow();
      continue;
    }
    if (clock_.SteadyNow() - last_renew >= config_.renew_deadline) {
      result =
          AbortedError("lost leadership of Lease {}/{}: not renewed within {} ms",
                       config_.lease_namespace, config_.lease_name, config_.renew_deadline.count());
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = false;
  }
  if (result.ok() && config_.release_on_stop) Release();
  if (result.ok()) {
    log.Info("Released leadership");
  } else {
    log.Error(result, "Lost leadership");
  }
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
  return result;
}

}  // namespace common::kube
