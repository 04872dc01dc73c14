#include "agent/nvmet_cache.h"

#include <algorithm>
#include <set>

namespace agent {
namespace {

template <typename T>
void InsertSorted(std::vector<T>& v, const T& value) {
  auto it = std::lower_bound(v.begin(), v.end(), value);
  if (it == v.end() || *it != value) v.insert(it, value);
}

template <typename T>
void EraseValue(std::vector<T>& v, const T& value) {
  v.erase(std::remove(v.begin(), v.end(), value), v.end());
}

template <typename T, typename Pred>
void EraseIf(std::vector<T>& v, Pred pred) {
  v.erase(std::remove_if(v.begin(), v.end(), pred), v.end());
}

std::vector<std::string> SortedHosts(const std::vector<std::string>& hosts) {
  std::set<std::string> unique(hosts.begin(), hosts.end());
  return {unique.begin(), unique.end()};
}

// The argument checks of EnsureSubsystem and SetAllowedHosts, for a call the kept listing
// answers: a bad NQN is refused as the kernel layer would refuse it.
common::Status Valid(std::string_view nqn, const std::vector<std::string>& hosts) {
  RETURN_IF_ERROR(sys::ValidateNqn(nqn));
  for (const auto& host : hosts) RETURN_IF_ERROR(sys::ValidateNqn(host));
  return common::OkStatus();
}

}  // namespace

void PassCachedNvmet::BeginPass() {
  std::lock_guard lock(mu_);
  listed_.reset();
  ports_.clear();
  ++generation_;
}

std::vector<sys::NvmetSubsystemInfo>::iterator PassCachedNvmet::Position(std::string_view nqn) {
  return std::lower_bound(listed_->begin(), listed_->end(), nqn,
                          [](const auto& s, std::string_view n) { return s.nqn < n; });
}

sys::NvmetSubsystemInfo* PassCachedNvmet::Find(std::string_view nqn) {
  if (!listed_) return nullptr;
  auto it = Position(nqn);
  return it != listed_->end() && it->nqn == nqn ? &*it : nullptr;
}

template <typename Apply>
common::Status PassCachedNvmet::Change(common::Status status, Apply apply) {
  std::lock_guard lock(mu_);
  ++generation_;
  if (!status.ok()) {
    listed_.reset();
    ports_.clear();
  } else if (listed_ && !apply()) {
    listed_.reset();  // the kept listing does not know the object: read it again
  }
  return status;
}

bool PassCachedNvmet::Shows(std::string_view nqn, const std::vector<std::string>& hosts,
                            const std::string_view* serial) {
  std::lock_guard lock(mu_);
  const sys::NvmetSubsystemInfo* s = Find(nqn);
  return s != nullptr && !s->allow_any_host && (serial == nullptr || s->serial == *serial) &&
         s->allowed_hosts == SortedHosts(hosts);
}

common::Status PassCachedNvmet::EnsurePort(const sys::NvmetPortSpec& spec) {
  {
    std::lock_guard lock(mu_);
    if (std::find(ports_.begin(), ports_.end(), spec) != ports_.end()) return common::OkStatus();
  }
  common::Status status = inner_.EnsurePort(spec);
  if (status.ok()) {
    std::lock_guard lock(mu_);
    EraseIf(ports_, [&](const auto& p) { return p.id == spec.id; });
    ports_.push_back(spec);
  }
  // A port is rewritten only while no subsystem is linked to it: no subsystem changes.
  return Change(std::move(status), [] { return true; });
}

common::Status PassCachedNvmet::RemovePort(uint16_t port_id) {
  {
    std::lock_guard lock(mu_);
    EraseIf(ports_, [&](const auto& p) { return p.id == port_id; });
  }
  return Change(inner_.RemovePort(port_id), [&] {
    for (auto& s : *listed_) EraseValue(s.ports, port_id);
    return true;
  });
}

common::Status PassCachedNvmet::EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                                const std::vector<std::string>& allowed_host_nqns) {
  if (Shows(nqn, allowed_host_nqns, &serial)) return Valid(nqn, allowed_host_nqns);
  return Change(inner_.EnsureSubsystem(nqn, serial, allowed_host_nqns), [&] {
    sys::NvmetSubsystemInfo* s = Find(nqn);
    if (s == nullptr) {
      sys::NvmetSubsystemInfo fresh;
      fresh.nqn = std::string(nqn);
      s = &*listed_->insert(Position(nqn), std::move(fresh));
    }
    s->serial = std::string(serial);
    s->allow_any_host = false;
    s->allowed_hosts = SortedHosts(allowed_host_nqns);
    return true;
  });
}

common::Status PassCachedNvmet::SetAllowedHosts(std::string_view nqn,
                                                const std::vector<std::string>& host_nqns) {
  if (Shows(nqn, host_nqns, nullptr)) return Valid(nqn, host_nqns);
  return Change(inner_.SetAllowedHosts(nqn, host_nqns), [&] {
    sys::NvmetSubsystemInfo* s = Find(nqn);
    if (s == nullptr) return false;
    s->allowed_hosts = SortedHosts(host_nqns);
    return true;
  });
}

common::Status PassCachedNvmet::EnsureNamespace(std::string_view nqn,
                                                const sys::NvmetNamespaceSpec& spec) {
  return Change(inner_.EnsureNamespace(nqn, spec), [&] {
    sys::NvmetSubsystemInfo* s = Find(nqn);
    if (s == nullptr) return false;
    sys::NvmetNamespaceSpec now = spec;
    now.device_uuid = sys::LowerUuid(spec.device_uuid);
    auto at = std::lower_bound(s->namespaces.begin(), s->namespaces.end(), spec.nsid,
                               [](const auto& ns, uint32_t id) { return ns.nsid < id; });
    if (at != s->namespaces.end() && at->nsid == spec.nsid) {
      *at = std::move(now);
    } else {
      s->namespaces.insert(at, std::move(now));
    }
    return true;
  });
}

common::Status PassCachedNvmet::RemoveNamespace(std::string_view nqn, uint32_t nsid) {
  return Change(inner_.RemoveNamespace(nqn, nsid), [&] {
    if (sys::NvmetSubsystemInfo* s = Find(nqn)) {
      s->namespaces.erase(std::remove_if(s->namespaces.begin(), s->namespaces.end(),
                                         [&](const auto& ns) { return ns.nsid == nsid; }),
                          s->namespaces.end());
    }
    return true;
  });
}

common::Status PassCachedNvmet::RemoveSubsystem(std::string_view nqn) {
  return Change(inner_.RemoveSubsystem(nqn), [&] {
    listed_->erase(std::remove_if(listed_->begin(), listed_->end(),
                                  [&](const auto& s) { return s.nqn == nqn; }),
                   listed_->end());
    return true;
  });
}

common::Status PassCachedNvmet::LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) {
  {
    std::lock_guard lock(mu_);
    const sys::NvmetSubsystemInfo* s = Find(nqn);
    if (s != nullptr && std::binary_search(s->ports.begin(), s->ports.end(), port_id)) {
      return common::OkStatus();
    }
  }
  return Change(inner_.LinkSubsystemToPort(nqn, port_id), [&] {
    sys::NvmetSubsystemInfo* s = Find(nqn);
    if (s == nullptr) return false;
    InsertSorted(s->ports, port_id);
    return true;
  });
}

common::Status PassCachedNvmet::UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) {
  return Change(inner_.UnlinkSubsystemFromPort(nqn, port_id), [&] {
    if (sys::NvmetSubsystemInfo* s = Find(nqn)) EraseValue(s->ports, port_id);
    return true;
  });
}

common::Result<std::vector<sys::NvmetSubsystemInfo>> PassCachedNvmet::ListSubsystems() {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (listed_) return *listed_;
    generation = generation_;
  }
  auto listed = inner_.ListSubsystems();
  if (listed.ok()) {
    std::lock_guard lock(mu_);
    // Kept only when nothing changed meanwhile (a change may have raced the read).
    if (generation == generation_) {
      listed_ = *listed;
      std::sort(listed_->begin(), listed_->end(),
                [](const auto& a, const auto& b) { return a.nqn < b.nqn; });
    }
  }
  return listed;
}

common::Result<sys::NvmetSubsystemInfo> PassCachedNvmet::GetSubsystem(std::string_view nqn) {
  {
    std::lock_guard lock(mu_);
    if (listed_) {
      if (const sys::NvmetSubsystemInfo* s = Find(nqn)) return *s;
      return common::NotFoundError("nvmet subsystem {}: no such subsystem", nqn);
    }
  }
  return inner_.GetSubsystem(nqn);
}

}  // namespace agent
