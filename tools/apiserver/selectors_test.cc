#include "tools/apiserver/selectors.h"

#include <catch2/catch.hpp>

namespace tools::apiserver {
namespace {

bool LabelsMatch(const std::string& selector, const StringMap& labels) {
  auto s = LabelSelector::Parse(selector);
  INFO(selector << ": " << s.status().ToString());
  REQUIRE(s.ok());
  return s->Matches(labels);
}

TEST_CASE("Label selectors match like Kubernetes", "[unit][apiserver]") {
  const StringMap gold = {{"tier", "gold"}, {"app", "x"}, {"n", "5"}};
  const StringMap none;
  CHECK(LabelsMatch("", gold));
  CHECK(LabelsMatch("tier=gold", gold));
  CHECK(LabelsMatch("tier == gold", gold));
  CHECK(!LabelsMatch("tier!=gold", gold));
  CHECK(LabelsMatch("tier!=gold", none));  // != matches objects without the label
  CHECK(LabelsMatch("tier in (silver, gold)", gold));
  CHECK(!LabelsMatch("tier in (silver)", gold));
  CHECK(LabelsMatch("tier notin (silver)", gold));
  CHECK(LabelsMatch("tier notin (silver)", none));
  CHECK(LabelsMatch("tier", gold));
  CHECK(!LabelsMatch("tier", none));
  CHECK(LabelsMatch("!tier", none));
  CHECK(!LabelsMatch("!tier", gold));
  CHECK(LabelsMatch("tier=gold,app=x", gold));
  CHECK(!LabelsMatch("tier=gold,app=y", gold));
  CHECK(LabelsMatch("n>4", gold));
  CHECK(!LabelsMatch("n<5", gold));
  CHECK(LabelsMatch("example.com/key=", {{"example.com/key", ""}}));
}

TEST_CASE("Malformed label selectors are rejected", "[unit][apiserver]") {
  for (const char* bad : {"tier in (gold", "tier in ()", "=gold", "tier=gold,", "tier gold",
                          "tier=-gold", "bad key=1", "n>x", "a/b/c=1"}) {
    INFO(bad);
    auto s = LabelSelector::Parse(bad);
    CHECK(!s.ok());
    if (!s.ok()) CHECK(s.status().message().rfind("unable to parse requirement", 0) == 0);
  }
}

TEST_CASE("Field selectors compare fields, with escapes", "[unit][apiserver]") {
  auto s = FieldSelector::Parse("metadata.name=a\\,b,metadata.namespace!=x");
  REQUIRE(s.ok());
  REQUIRE(s->requirements().size() == 2);
  CHECK(s->requirements()[0].value == "a,b");
  CHECK(s->Matches({{"metadata.name", "a,b"}, {"metadata.namespace", "y"}}));
  CHECK(!s->Matches({{"metadata.name", "a,b"}, {"metadata.namespace", "x"}}));
  CHECK(FieldSelector::Parse("metadata.name==a")->Matches({{"metadata.name", "a"}}));
  CHECK(FieldSelector::Parse("metadata.namespace=")->Matches({}));
  CHECK(!FieldSelector::Parse("metadata.name").ok());
}

}  // namespace
}  // namespace tools::apiserver
