// NvmetTarget: the exporting side of the NVMe-oF data path, the kernel nvmet target configured
// through configfs (/sys/kernel/config/nvmet).
//
// Model (docs/design.md §7): one subsystem per (exporting node, consumer node) pair, named by
// SubsystemNqn(), whose allowed_hosts is the consumer's host NQN only (allow_any_host is always
// 0); one namespace per exported partition with a stable device_uuid/nguid and serial, so a
// reconnecting host keeps its /dev/nvmeXnY across a target restart (kernel-lab.md pitfall 8);
// one port per transport (TCP 4420, RDMA 4421) to which the subsystems are linked.
//
// Fencing: changing allowed_hosts only affects new connections; a controller that is already
// connected keeps its access. To cut a consumer off, remove the namespace from that consumer's
// subsystem (or remove the subsystem), which the design does when the consumer changes, because
// the new consumer gets its own subsystem.
//
// Every mutating method is idempotent: calling it again with the same arguments changes nothing
// and returns OK. Errors name the object (port id, subsystem NQN, nsid).
//
// Thread contract: implementations are safe for concurrent use; callers serialize operations on
// one subsystem.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace agent::sys {

enum class NvmeTransport { kTcp, kRdma };

// "tcp" / "rdma", as configfs and /dev/nvme-fabrics spell them.
std::string_view NvmeTransportName(NvmeTransport transport);
// InvalidArgument for anything but "tcp" or "rdma".
common::Result<NvmeTransport> ParseNvmeTransport(std::string_view name);

// The NVMe-oF NQN limit (NVMe base spec: 223 bytes, UTF-8).
inline constexpr size_t kMaxNqnBytes = 223;
inline constexpr std::string_view kNqnPrefix = "nqn.2026-11.io.meshstor";

// "nqn.2026-11.io.meshstor:<exporting-node>:<consumer-node>". Node names are Kubernetes node
// names (DNS subdomains: lower-case alphanumerics, '-' and '.'). InvalidArgument for an empty or
// invalid name or when the result would exceed kMaxNqnBytes.
common::Result<std::string> SubsystemNqn(std::string_view exporting_node,
                                         std::string_view consumer_node);

// InvalidArgument unless `nqn` starts with "nqn." and is at most kMaxNqnBytes of printable
// ASCII without '/' (it becomes a configfs directory name).
common::Status ValidateNqn(std::string_view nqn);

// A 20-character serial derived from the subsystem NQN (stable across target restarts).
std::string SubsystemSerial(std::string_view nqn);

struct NvmetPortSpec {
  uint16_t id = 1;  // configfs ports/<id>; >= 1
  NvmeTransport transport = NvmeTransport::kTcp;
  std::string address;           // IPv4 or IPv6 literal (addr_traddr); the family is derived
  std::string service = "4420";  // addr_trsvcid

  friend bool operator==(const NvmetPortSpec&, const NvmetPortSpec&) = default;
};

struct NvmetPortInfo {
  NvmetPortSpec spec;
  std::vector<std::string> subsystems;  // NQNs linked to this port, sorted
};

struct NvmetNamespaceSpec {
  uint32_t nsid = 1;        // >= 1
  std::string device_path;  // block device exported, e.g. /dev/disk/by-partuuid/<uuid>
  std::string device_uuid;  // stable namespace UUID (also used as NGUID), lower-case 8-4-4-4-12
  bool enabled = true;

  friend bool operator==(const NvmetNamespaceSpec&, const NvmetNamespaceSpec&) = default;
};

// The rules of NvmetTarget::EnsureNamespace shared by every implementation. `what` names the
// namespace in errors ("nvmet namespace <nsid> of <nqn>").
// InvalidArgument unless nsid >= 1, device_path is set and device_uuid is a UUID (8-4-4-4-12 hex
// digits, either case).
common::Status ValidateNamespaceSpec(std::string_view what, const NvmetNamespaceSpec& spec);
// The lower-case form of a UUID (nvmet shows device_uuid in lower case).
std::string LowerUuid(std::string_view uuid);
// FailedPrecondition when an enabled namespace holds another device or uuid than `want` (whose
// device_uuid is lower-case): it is not changed while enabled.
common::Status CheckNamespaceReplace(std::string_view what, bool enabled, bool same,
                                     const NvmetNamespaceSpec& want);

struct NvmetSubsystemInfo {
  std::string nqn;
  std::string serial;
  bool allow_any_host = false;
  std::vector<std::string> allowed_hosts;      // host NQNs, sorted
  std::vector<NvmetNamespaceSpec> namespaces;  // sorted by nsid
  std::vector<uint16_t> ports;                 // ports the subsystem is linked to, sorted
};

class NvmetTarget {
 public:
  virtual ~NvmetTarget() = default;

  // Creates port `spec.id` with the given transport, address and service. OK when it already
  // has exactly these settings. An existing port with other settings is rewritten when no
  // subsystem is linked to it, else FailedPrecondition (the kernel refuses changes to an
  // enabled port). InvalidArgument for id 0 or an empty address or service.
  virtual common::Status EnsurePort(const NvmetPortSpec& spec) = 0;

  // Removes a port after unlinking every subsystem from it. OK when absent.
  virtual common::Status RemovePort(uint16_t port_id) = 0;

  // Creates the subsystem (allow_any_host=0, the given serial) and makes its allowed hosts
  // exactly `allowed_host_nqns` (see SetAllowedHosts). On an existing subsystem: converges the
  // serial and host list. InvalidArgument for a bad NQN, an empty serial or one longer than 20
  // characters; FailedPrecondition when the kernel refuses a serial change.
  virtual common::Status EnsureSubsystem(std::string_view nqn, std::string_view serial,
                                         const std::vector<std::string>& allowed_host_nqns) = 0;

  // Replaces the subsystem's allowed hosts with `host_nqns` (creating hosts/<nqn> entries as
  // needed; entries of other subsystems are left alone). Existing connections are not torn down
  // (see the header comment). NotFound if the subsystem does not exist.
  virtual common::Status SetAllowedHosts(std::string_view nqn,
                                         const std::vector<std::string>& host_nqns) = 0;

  // Creates or converges namespace `spec.nsid` of subsystem `nqn`: device_path, device_uuid and
  // device_nguid are written while the namespace is disabled, then it is enabled if asked (or
  // disabled if not). An enabled namespace with another device_path or uuid is not changed
  // under a live host: FailedPrecondition (remove it first). NotFound if the subsystem does not
  // exist; InvalidArgument for nsid 0, an empty device path or a malformed uuid; the kernel's
  // refusal to enable (device missing, busy) comes back with the namespace named.
  virtual common::Status EnsureNamespace(std::string_view nqn, const NvmetNamespaceSpec& spec) = 0;

  // Disables and removes the namespace. OK when the namespace or the subsystem is absent.
  virtual common::Status RemoveNamespace(std::string_view nqn, uint32_t nsid) = 0;

  // Unlinks the subsystem from every port, removes its namespaces and allowed-host links, then
  // the subsystem. OK when absent.
  virtual common::Status RemoveSubsystem(std::string_view nqn) = 0;

  // Exposes the subsystem on the port. NotFound if either is missing; OK if already linked.
  virtual common::Status LinkSubsystemToPort(std::string_view nqn, uint16_t port_id) = 0;
  // OK when not linked or when the port is absent.
  virtual common::Status UnlinkSubsystemFromPort(std::string_view nqn, uint16_t port_id) = 0;

  // State queries, sorted by id / NQN.
  virtual common::Result<std::vector<NvmetPortInfo>> ListPorts() = 0;
  virtual common::Result<std::vector<NvmetSubsystemInfo>> ListSubsystems() = 0;
  // NotFound if the subsystem does not exist.
  virtual common::Result<NvmetSubsystemInfo> GetSubsystem(std::string_view nqn) = 0;
};

}  // namespace agent::sys
