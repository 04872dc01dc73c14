#include "common/api/meta.h"

#include <string>

#include <catch2/catch.hpp>

namespace common::api {
namespace {

Condition Make(std::string type, ConditionStatus status, int64_t t, std::string reason) {
  return Condition{.type = std::move(type),
                   .status = status,
                   .observed_generation = 1,
                   .last_transition_time = Time(std::chrono::seconds(t)),
                   .reason = std::move(reason),
                   .message = ""};
}

TEST_CASE("SetCondition moves lastTransitionTime only when the status flips", "[unit][api]") {
  std::vector<Condition> conds;
  CHECK(SetCondition(conds, Make("Ready", ConditionStatus::kFalse, 100, "Waiting")));
  REQUIRE(conds.size() == 1);

  // Same status, new reason: changed, but the transition time is kept.
  CHECK(SetCondition(conds, Make("Ready", ConditionStatus::kFalse, 200, "StillWaiting")));
  CHECK(conds[0].reason == "StillWaiting");
  CHECK(conds[0].last_transition_time.time_since_epoch().count() == 100);

  // Identical apart from the time: nothing changes, so no status write is needed.
  CHECK_FALSE(SetCondition(conds, Make("Ready", ConditionStatus::kFalse, 300, "StillWaiting")));

  // Flip: the time moves.
  CHECK(SetCondition(conds, Make("Ready", ConditionStatus::kTrue, 400, "Synced")));
  CHECK(conds[0].last_transition_time.time_since_epoch().count() == 400);

  CHECK(SetCondition(conds, Make("Degraded", ConditionStatus::kFalse, 400, "AllActive")));
  CHECK(conds.size() == 2);
  REQUIRE(FindCondition(conds, "Degraded") != nullptr);
  CHECK(FindCondition(conds, "Degraded")->reason == "AllActive");
  CHECK(FindCondition(conds, "Placeable") == nullptr);
}

TEST_CASE("SetCondition caps the message at 32 KiB", "[unit][api]") {
  std::vector<Condition> conds;
  Condition c = Make("Ready", ConditionStatus::kFalse, 1, "Big");
  c.message = std::string(40000, 'x');
  CHECK(SetCondition(conds, c));
  CHECK(conds[0].message.size() == 32 * 1024);
}

}  // namespace
}  // namespace common::api
