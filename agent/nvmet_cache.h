// PassCachedNvmet: the agent's nvmet layer with the subsystems read once per pass.
//
// An exporter fences each member before exporting it: it looks for the member's partition in
// every other subsystem (VolumeReconciler::Unexport), which lists every subsystem with every
// namespace, its allowed hosts and ports. Once per member per pass made a pass O(members^2)
// configfs reads: the biggest part of an idle exporter's work (lab_bench_agent_rss).
//
// Between passes other tools may change nvmet, so nothing is kept across passes (BeginPass).
// Within a pass only this agent changes this node's nvmet, and every change goes through here:
// after a change succeeds, the kept listing is brought to the state the method's contract
// promises (NvmetTarget in agent/sys/nvmet.h: a subsystem exists with exactly those hosts, a
// namespace with that device, uuid and enable state, a link to that port, ...), so the next
// member's fencing check sees this pass's exports without reading them back. A change that fails
// may have been partly applied: the listing is forgotten and read again when next asked for.
// Ports are not listed; a port EnsurePort set up is remembered for the pass. A failed listing is
// not kept.
//
// The same listing makes an idle export cheap: an exporter ensures, for every member and pass,
// its port, its subsystem and allowed host, its namespace and the port link. A port this pass
// already ensured with the same settings, and a subsystem, host list or port link the kept
// listing already shows as asked, are not set up again (each was a mkdir, symlink or attribute
// read in configfs per member). EnsureNamespace always goes through: it also has nvmet check
// the size of a grown partition (revalidate_size).
//
// Thread contract: safe for concurrent use (one mutex; the inner layer is called outside it).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/sys/nvmet.h"

namespace agent {

class PassCachedNvmet final : public sys::NvmetTarget {
 public:
  // `inner` must outlive this object.
  explicit PassCachedNvmet(sys::NvmetTarget& inner) : inner_(inner) {}

  // Forgets the listing: called when a pass begins.
  void BeginPass();

  common::Status EnsurePort(const sys::NvmetPortSpec& spec) override;
  common::Status RemovePort(uint16_t port_id) override;
  common::Status EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                 const std::vector<std::string>& allowed_host_nqns) override;
  common::Status SetAllowedHosts(std::string_view nqn,
                                 const std::vector<std::string>& host_nqns) override;
  common::Status EnsureNamespace(std::string_view nqn,
                                 const sys::NvmetNamespaceSpec& spec) override;
  common::Status RemoveNamespace(std::string_view nqn, uint32_t nsid) override;
  common::Status RemoveSubsystem(std::string_view nqn) override;
  common::Status LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) override;
  common::Status UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) override;
  common::Result<std::vector<sys::NvmetPortInfo>> ListPorts() override {
    return inner_.ListPorts();
  }
  common::Result<std::vector<sys::NvmetSubsystemInfo>> ListSubsystems() override;
  common::Result<sys::NvmetSubsystemInfo> GetSubsystem(std::string_view nqn) override;

 private:
  using Listing = std::vector<sys::NvmetSubsystemInfo>;

  // Runs a change: on success `apply` brings the kept listing (if any) to the promised state;
  // on failure the listing is forgotten. Either way a listing read meanwhile is not kept.
  template <typename Apply>
  common::Status Change(common::Status status, Apply apply);
  // Where subsystem `nqn` is or would go in the kept listing. Requires mu_ and a listing.
  std::vector<sys::NvmetSubsystemInfo>::iterator Position(std::string_view nqn);
  // The kept subsystem `nqn`, or nullptr. Requires mu_.
  sys::NvmetSubsystemInfo* Find(std::string_view nqn);
  // Whether the kept listing shows subsystem `nqn` closed to any host but exactly `hosts`, and
  // with `*serial` unless null.
  bool Shows(std::string_view nqn, const std::vector<std::string>& hosts,
             const std::string_view* serial);

  sys::NvmetTarget& inner_;
  std::mutex mu_;
  std::optional<Listing> listed_;
  std::vector<sys::NvmetPortSpec> ports_;  // set up by EnsurePort in this pass
  uint64_t generation_ = 0;                // bumped by every BeginPass and change
};

}  // namespace agent
