// Kubernetes object metadata and status conditions as plain structs (metav1.ObjectMeta and
// metav1.Condition, the parts MeshStor uses). JSON codecs live in meta_codec.h; nothing here
// depends on a JSON library.
//
// Thread contract: value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace common::api {

// metav1.Time: RFC 3339 with whole seconds, always UTC on the wire.
using Time = std::chrono::sys_seconds;

struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
  bool block_owner_deletion = false;

  bool operator==(const OwnerReference&) const = default;
};

struct ObjectMeta {
  std::string name;
  std::string generate_name;
  std::string namespace_;  // empty for cluster-scoped objects
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::optional<Time> creation_timestamp;
  std::optional<Time> deletion_timestamp;
  std::optional<int64_t> deletion_grace_period_seconds;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  std::vector<OwnerReference> owner_references;

  bool operator==(const ObjectMeta&) const = default;
};

enum class ConditionStatus { kTrue, kFalse, kUnknown };

struct Condition {
  std::string type;  // CamelCase, e.g. "Ready"
  ConditionStatus status = ConditionStatus::kUnknown;
  int64_t observed_generation = 0;
  Time last_transition_time{};
  std::string reason;   // CamelCase, e.g. "ArraySynced"
  std::string message;  // human readable, at most 32 KiB

  bool operator==(const Condition&) const = default;
};

// "True", "False", "Unknown".
const char* ConditionStatusName(ConditionStatus status);

// Returns the condition of that type, or nullptr.
const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type);

// Sets `condition` in `conditions` by type, keeping lastTransitionTime when the status did not
// change (so it moves only on a flip), and truncating the message to 32 KiB. Returns true when
// anything changed, so callers write status only when needed.
bool SetCondition(std::vector<Condition>& conditions, Condition condition);

}  // namespace common::api
