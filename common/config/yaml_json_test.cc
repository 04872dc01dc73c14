#include "common/config/yaml_json.h"

#include <string>

#include <catch2/catch.hpp>

namespace common::config {
namespace {

std::string Json(std::string_view yaml) {
  auto r = YamlToJson(yaml, "test.yaml");
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("YAML scalars resolve by the core schema", "[unit][config][yaml]") {
  CHECK(Json("a: 1") == R"({"a":1})");
  CHECK(Json("a: -42") == R"({"a":-42})");
  CHECK(Json("a: 0x1F") == R"({"a":31})");
  CHECK(Json("a: 0o17") == R"({"a":15})");
  CHECK(Json("a: 1.5") == R"({"a":1.5})");
  CHECK(Json("a: 1e3") == R"({"a":1000.0})");
  CHECK(Json("a: true\nb: False") == R"({"a":true,"b":false})");
  CHECK(Json("a: ~\nb: null\nc:") == R"({"a":null,"b":null,"c":null})");
  CHECK(Json("a: \"2\"\nb: '4096'") == R"({"a":"2","b":"4096"})");
  CHECK(Json("a: yes") == R"({"a":"yes"})");
  CHECK(Json("a: 10.0.0.1") == R"({"a":"10.0.0.1"})");
  CHECK(Json("a: \"True\"") == R"({"a":"True"})");
  CHECK(Json("a: 9223372036854775807") == R"({"a":9223372036854775807})");
  CHECK(Json("a: -9223372036854775808") == R"({"a":-9223372036854775808})");
}

TEST_CASE("YAML structures become JSON objects and arrays in order", "[unit][config][yaml]") {
  CHECK(Json("b: [1, two]\na: {x: y}") == R"({"b":[1,"two"],"a":{"x":"y"}})");
  CHECK(Json("- a\n- - 1\n  - 2\n") == R"(["a",[1,2]])");
  CHECK(Json("msg: |\n  line \"one\"\n  two\n") == R"({"msg":"line \"one\"\ntwo\n"})");
  CHECK(Json("") == "null");
}

TEST_CASE("Bad YAML is an error naming the source and line", "[unit][config][yaml]") {
  auto dup = YamlToJson("a: 1\nb: 2\na: 3\n", "dup.yaml");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().code() == StatusCode::kInvalidArgument);
  CHECK(dup.status().message() == "dup.yaml line 3: duplicate key 'a'");

  auto syntax = YamlToJson("a: [1, 2\nb: 3\n", "broken.yaml");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.status().message().rfind("broken.yaml line ", 0) == 0);

  auto big = YamlToJson("a: 9223372036854775808", "big.yaml");
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message() ==
        "big.yaml line 1: integer 9223372036854775808 does not fit in 64 bits");

  auto inf = YamlToJson("a: .inf", "inf.yaml");
  REQUIRE_FALSE(inf.ok());

  auto complex_key = YamlToJson("? [a, b]\n: 1\n", "key.yaml");
  REQUIRE_FALSE(complex_key.ok());
  CHECK(complex_key.status().message() == "key.yaml line 1: mapping keys must be scalars");

  auto two = YamlToJson("a: 1\n---\nb: 2\n", "two.yaml");
  REQUIRE_FALSE(two.ok());
  CHECK(two.status().message() == "two.yaml: expected one YAML document, found 2");

  CHECK(YamlFileToJson("/nonexistent/file.yaml").status().code() == StatusCode::kNotFound);
}

TEST_CASE("Multi-document streams skip empty documents", "[unit][config][yaml]") {
  auto docs = YamlToJsonDocuments("---\na: 1\n---\n---\nb: 2\n", "multi.yaml");
  REQUIRE(docs.ok());
  REQUIRE(docs->size() == 2);
  CHECK((*docs)[0] == R"({"a":1})");
  CHECK((*docs)[1] == R"({"b":2})");
}

}  // namespace
}  // namespace common::config
