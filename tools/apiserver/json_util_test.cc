#include "tools/apiserver/json_util.h"

#include <catch2/catch.hpp>

namespace tools::apiserver::json {
namespace {

std::string Merge(const std::string& target, const std::string& patch) {
  Document t;
  Document p;
  REQUIRE(Parse(target, &t).ok());
  REQUIRE(Parse(patch, &p).ok());
  MergePatch(t, p, t.GetAllocator());
  return Serialize(t);
}

TEST_CASE("Merge patch follows RFC 7386", "[unit][apiserver]") {
  CHECK(Merge(R"({"a":"b"})", R"({"a":"c"})") == R"({"a":"c"})");
  CHECK(Merge(R"({"a":"b"})", R"({"b":"c"})") == R"({"a":"b","b":"c"})");
  CHECK(Merge(R"({"a":"b"})", R"({"a":null})") == R"({})");
  CHECK(Merge(R"({"a":"b","b":"c"})", R"({"a":null})") == R"({"b":"c"})");
  CHECK(Merge(R"({"a":["b"]})", R"({"a":"c"})") == R"({"a":"c"})");
  CHECK(Merge(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})") == R"({"a":{"b":"d"}})");
  CHECK(Merge(R"({"a":[{"b":"c"}]})", R"({"a":[1]})") == R"({"a":[1]})");
  CHECK(Merge(R"({"e":null})", R"({"a":1})") == R"({"e":null,"a":1})");
  CHECK(Merge(R"({})", R"({"a":{"bb":{"ccc":null}}})") == R"({"a":{"bb":{}}})");
}

common::Status Apply(const std::string& doc, const std::string& ops, std::string* out) {
  Document d;
  Document p;
  REQUIRE(Parse(doc, &d).ok());
  REQUIRE(Parse(ops, &p).ok());
  common::Status s = JsonPatch(d, p, d.GetAllocator());
  *out = Serialize(d);
  return s;
}

TEST_CASE("JSON patch operations follow RFC 6902", "[unit][apiserver]") {
  std::string out;
  REQUIRE(Apply(R"({"a":[1,2]})", R"([{"op":"add","path":"/a/1","value":9}])", &out).ok());
  CHECK(out == R"({"a":[1,9,2]})");
  REQUIRE(Apply(R"({"a":[1,2]})", R"([{"op":"add","path":"/a/-","value":3}])", &out).ok());
  CHECK(out == R"({"a":[1,2,3]})");
  REQUIRE(Apply(R"({"a":{"b/c":1}})", R"([{"op":"remove","path":"/a/b~1c"}])", &out).ok());
  CHECK(out == R"({"a":{}})");
  REQUIRE(Apply(R"({"a":1})", R"([{"op":"replace","path":"/a","value":{"x":true}}])", &out).ok());
  CHECK(out == R"({"a":{"x":true}})");
  REQUIRE(Apply(R"({"a":1,"b":{}})", R"([{"op":"move","from":"/a","path":"/b/a"}])", &out).ok());
  CHECK(out == R"({"b":{"a":1}})");
  REQUIRE(Apply(R"({"a":[1]})", R"([{"op":"copy","from":"/a","path":"/b"}])", &out).ok());
  CHECK(out == R"({"a":[1],"b":[1]})");
  REQUIRE(Apply(R"({"a":"x"})", R"([{"op":"test","path":"/a","value":"x"}])", &out).ok());

  // A failed test leaves the document untouched, even after earlier operations.
  common::Status failed =
      Apply(R"({"a":"x"})",
            R"([{"op":"add","path":"/b","value":1},{"op":"test","path":"/a","value":"y"}])", &out);
  CHECK(failed.code() == common::StatusCode::kFailedPrecondition);
  CHECK(out == R"({"a":"x"})");
  CHECK(Apply(R"({})", R"([{"op":"remove","path":"/nope"}])", &out).code() ==
        common::StatusCode::kFailedPrecondition);
  CHECK(Apply(R"({})", R"({"op":"add"})", &out).code() == common::StatusCode::kInvalidArgument);
}

TEST_CASE("Parsing keeps the last of duplicate keys and limits nesting", "[unit][apiserver]") {
  Document d;
  REQUIRE(Parse(R"({"a":1,"b":2,"a":3})", &d).ok());
  CHECK(Serialize(d) == R"({"b":2,"a":3})");
  CHECK(!Parse("{", &d).ok());
  std::string deep(300, '[');
  deep += std::string(300, ']');
  CHECK(!Parse(deep, &d).ok());
}

TEST_CASE("Values print the way Go prints them in Kubernetes errors", "[unit][apiserver]") {
  CHECK(GoFloat(1) == "1");
  CHECK(GoFloat(16) == "16");
  CHECK(GoFloat(536870912) == "5.36870912e+08");
  CHECK(GoFloat(1048576) == "1.048576e+06");
  CHECK(GoFloat(123456) == "123456");
  CHECK(GoFloat(0.5) == "0.5");
  CHECK(GoFloat(0.00001) == "1e-05");
  CHECK(GoFloat(-2.5) == "-2.5");
  CHECK(GoQuote("a\"b\\c\n") == R"("a\"b\\c\n")");
  Document d;
  REQUIRE(Parse(R"({"s":"x","i":-3,"b":true,"n":null,"o":{"k":0,"a":"z"},"l":["q",1]})", &d).ok());
  CHECK(GoValue(d["s"]) == "\"x\"");
  CHECK(GoValue(d["i"]) == "-3");
  CHECK(GoValue(d["b"]) == "true");
  CHECK(GoValue(d["n"]) == "null");
  CHECK(GoValue(d["o"]) == R"(map[string]interface {}{"a":"z", "k":0})");
  CHECK(GoValue(d["l"]) == R"([]interface {}{"q", 1})");
  CHECK(CodePointCount("h\xc3\xa9llo") == 5);
}

}  // namespace
}  // namespace tools::apiserver::json
