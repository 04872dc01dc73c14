#include "tools/apiserver/schema.h"

#include <catch2/catch.hpp>

namespace tools::apiserver {
namespace {

std::shared_ptr<const Schema> ParseSchema(const std::string& text,
                                          std::vector<FieldError>* errors = nullptr) {
  json::Document doc;
  REQUIRE(json::Parse(text, &doc).ok());
  std::vector<FieldError> local;
  auto schema = Schema::Parse(doc, "openAPIV3Schema", errors != nullptr ? errors : &local);
  return schema;
}

std::vector<std::string> Validate(const Schema& schema, const std::string& object,
                                  const std::string& old = "") {
  json::Document doc;
  REQUIRE(json::Parse(object, &doc).ok());
  json::Document old_doc;
  if (!old.empty()) REQUIRE(json::Parse(old, &old_doc).ok());
  schema.PruneAndDefault(doc, doc.GetAllocator());
  std::vector<FieldError> errors;
  schema.ValidateObject(doc, old.empty() ? nullptr : &old_doc, &errors);
  std::vector<std::string> out;
  for (const FieldError& e : errors) out.push_back(e.ToString());
  return out;
}

constexpr char kSchema[] = R"({"type":"object","properties":{"spec":{"type":"object",
  "required":["size"],
  "properties":{
    "size":{"type":"integer","format":"int64","minimum":536870912,"multipleOf":1048576,
            "x-kubernetes-validations":[{"rule":"self >= oldSelf","message":"size cannot shrink"}]},
    "count":{"type":"integer","format":"int32","minimum":1,"maximum":16},
    "sector":{"type":"integer","enum":[512,4096],
              "x-kubernetes-validations":[{"rule":"self == oldSelf",
                                           "message":"sector is immutable"}]},
    "name":{"type":"string","minLength":1,"maxLength":5,"pattern":"^[a-z]+$"},
    "when":{"type":"string","format":"date-time"},
    "items":{"type":"array","maxItems":2,"x-kubernetes-list-type":"map",
             "x-kubernetes-list-map-keys":["index"],
             "items":{"type":"object","required":["index"],"properties":{
               "index":{"type":"integer"},"role":{"type":"string","enum":["a","b"]}}}},
    "tags":{"type":"array","x-kubernetes-list-type":"set","items":{"type":"string"}}}}}})";

TEST_CASE("Schema violations use kube-apiserver's messages and paths", "[unit][apiserver]") {
  auto schema = ParseSchema(kSchema);
  REQUIRE(schema != nullptr);
  using V = std::vector<std::string>;
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824}})").empty());
  CHECK(Validate(*schema, R"({"spec":{}})") == V{"spec.size: Required value"});
  CHECK(Validate(*schema, R"({"spec":{"size":"big"}})") ==
        V{"spec.size: Invalid value: \"string\": spec.size in body must be of type integer: "
          "\"string\""});
  CHECK(Validate(*schema, R"({"spec":{"size":268435456}})") ==
        V{"spec.size: Invalid value: 268435456: spec.size in body should be greater than or "
          "equal to 5.36870912e+08"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073742000}})") ==
        V{"spec.size: Invalid value: 1073742000: spec.size in body should be a multiple of "
          "1.048576e+06"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"count":17}})") ==
        V{"spec.count: Invalid value: 17: spec.count in body should be less than or equal to 16"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"count":4294967296}})").size() == 2);
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"sector":1024}})") ==
        V{"spec.sector: Unsupported value: 1024: supported values: \"512\", \"4096\""});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"name":"toolong"}})") ==
        V{"spec.name: Too long: may not be longer than 5"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"name":"AB"}})") ==
        V{"spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"when":"yesterday"}})") ==
        V{"spec.when: Invalid value: \"yesterday\": spec.when in body must be of type "
          "date-time: \"yesterday\""});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"when":"2026-11-20T09:14:03Z"}})").empty());
  CHECK(Validate(*schema,
                 R"({"spec":{"size":1073741824,"items":[{"index":0,"role":"c"},{"index":0}]}})") ==
        V{"spec.items[0].role: Unsupported value: \"c\": supported values: \"a\", \"b\"",
          "spec.items[1]: Duplicate value: map[string]interface {}{\"index\":0}"});
  CHECK(Validate(*schema,
                 R"({"spec":{"size":1073741824,"items":[{"index":0},{"index":1},{"index":2}]}})") ==
        V{"spec.items: Too many: 3: must have at most 2 items"});
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"tags":["x","x"]}})") ==
        V{"spec.tags[1]: Duplicate value: \"x\""});
}

TEST_CASE("Unknown fields are pruned and non-nullable nulls dropped", "[unit][apiserver]") {
  auto schema = ParseSchema(kSchema);
  json::Document doc;
  REQUIRE(
      json::Parse(
          R"({"apiVersion":"v","kind":"K","metadata":{"name":"n"},"extra":1,)"
          R"("spec":{"size":1073741824,"junk":{"a":1},"name":null,"items":[{"index":1,"x":2}]}})",
          &doc)
          .ok());
  schema->PruneAndDefault(doc, doc.GetAllocator());
  CHECK(json::Serialize(doc) == R"({"apiVersion":"v","kind":"K","metadata":{"name":"n"},)"
                                R"("spec":{"size":1073741824,"items":[{"index":1}]}})");
}

TEST_CASE("Transition rules run on update only, for fields present in both", "[unit][apiserver]") {
  auto schema = ParseSchema(kSchema);
  using V = std::vector<std::string>;
  const std::string old = R"({"spec":{"size":2147483648,"sector":512}})";
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"sector":4096}})").empty());
  CHECK(Validate(*schema, R"({"spec":{"size":2147483648,"sector":512}})", old).empty());
  CHECK(Validate(*schema, R"({"spec":{"size":1073741824,"sector":4096}})", old) ==
        V{"spec.size: Invalid value: \"integer\": size cannot shrink",
          "spec.sector: Invalid value: \"integer\": sector is immutable"});
  // Removing a field skips its rule, as in Kubernetes.
  CHECK(Validate(*schema, R"({"spec":{"size":2147483648}})", old).empty());
  // No transition rules while there are type errors.
  CHECK(Validate(*schema, R"({"spec":{"size":"x","sector":4096}})", old).size() == 1);
}

TEST_CASE("Schemas with constructs the server cannot enforce are refused", "[unit][apiserver]") {
  for (const char* bad :
       {R"({"type":"object","properties":{"a":{"type":"string",)"
        R"("x-kubernetes-validations":[{"rule":"self.size() > 2"}]}}})",
        R"({"type":"object","properties":{"a":{"type":"string","x-kubernetes-validations":)"
        R"([{"rule":"self == oldSelf","messageExpression":"'x'"}]}}})",
        R"({"type":"object","properties":{"a":{"type":"object",)"
        R"("x-kubernetes-validations":[{"rule":"self >= oldSelf"}]}}})",
        R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"string",)"
        R"("x-kubernetes-validations":[{"rule":"self == oldSelf"}]}}}})",
        R"({"type":"object","properties":{"a":{"anyOf":[{"type":"string"}]}}})",
        R"({"type":"object","properties":{"a":{"type":"string","pattern":"(unclosed"}}})",
        R"({"type":"object","properties":{"a":{"type":"array"}}})",
        R"({"type":"object","properties":{"a":{}}})"}) {
    INFO(bad);
    std::vector<FieldError> errors;
    CHECK(ParseSchema(bad, &errors) == nullptr);
    CHECK(!errors.empty());
  }
}

}  // namespace
}  // namespace tools::apiserver
