#include "common/api/meta.h"

#include <algorithm>

namespace common::api {
namespace {
constexpr size_t kMaxConditionMessage = 32 * 1024;
}  // namespace

const char* ConditionStatusName(ConditionStatus status) {
  switch (status) {
    case ConditionStatus::kTrue:
      return "True";
    case ConditionStatus::kFalse:
      return "False";
    case ConditionStatus::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type) {
  auto it = std::find_if(conditions.begin(), conditions.end(),
                         [&](const Condition& c) { return c.type == type; });
  return it == conditions.end() ? nullptr : &*it;
}

bool SetCondition(std::vector<Condition>& conditions, Condition condition) {
  if (condition.message.size() > kMaxConditionMessage) {
    condition.message.resize(kMaxConditionMessage);
  }
  auto it = std::find_if(conditions.begin(), conditions.end(),
                         [&](const Condition& c) { return c.type == condition.type; });
  if (it == conditions.end()) {
    conditions.push_back(std::move(condition));
    return true;
  }
  if (it->status == condition.status) {
    condition.last_transition_time = it->last_transition_time;
  }
  if (*it == condition) return false;
  *it = std::move(condition);
  return true;
}

}  // namespace common::api
