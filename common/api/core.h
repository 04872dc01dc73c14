// Built-in Kubernetes types MeshStor reads or writes, reduced to the fields we use:
// coordination.k8s.io/v1 Lease (leader election), events.k8s.io/v1 Event (the event recorder)
// and core v1 Node (placement). Codecs are in core_codec.h.
//
// Thread contract: value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/api/meta.h"

namespace common::api {

// metav1.MicroTime: RFC 3339 with microseconds.
using MicroTime = std::chrono::system_clock::time_point;

struct LeaseSpec {
  std::string holder_identity;
  std::optional<int32_t> lease_duration_seconds;
  std::optional<MicroTime> acquire_time;
  std::optional<MicroTime> renew_time;
  std::optional<int32_t> lease_transitions;

  bool operator==(const LeaseSpec&) const = default;
};

struct Lease {
  ObjectMeta metadata;
  LeaseSpec spec;

  bool operator==(const Lease&) const = default;
};

struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;

  bool operator==(const ObjectReference&) const = default;
};

// events.k8s.io/v1 Event.
struct Event {
  ObjectMeta metadata;
  MicroTime event_time{};
  std::string reporting_controller;  // e.g. "csi.meshstor.io/operator"
  std::string reporting_instance;    // e.g. pod name
  std::string action;                // what was done, e.g. "Reconcile"
  std::string reason;                // CamelCase, e.g. "PhaseChanged"
  std::string note;                  // human readable, ≤ 1 KiB
  std::string type;                  // "Normal" or "Warning"
  ObjectReference regarding;
  int32_t series_count = 0;  // 0: no series
  std::optional<MicroTime> series_last_observed_time;

  bool operator==(const Event&) const = default;
};

struct NodeAddress {
  std::string type;  // InternalIP, Hostname, ...
  std::string address;

  bool operator==(const NodeAddress&) const = default;
};

// core v1 Taint (spec.taints of a Node).
struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute

  bool operator==(const Taint&) const = default;
};

// The taint of Kubernetes' non-graceful node shutdown: an administrator asserts that the node is
// shut down (failover, docs/design.md).
inline constexpr char kOutOfServiceTaint[] = "node.kubernetes.io/out-of-service";

struct Node {
  ObjectMeta metadata;
  bool unschedulable = false;
  std::vector<Taint> taints;
  std::vector<NodeAddress> addresses;
  std::vector<Condition> conditions;  // lastTransitionTime etc. as in the server's status

  bool operator==(const Node&) const = default;
};

}  // namespace common::api
