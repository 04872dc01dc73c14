// Structural OpenAPI v3 schemas of CustomResourceDefinitions, applied the way kube-apiserver
// applies them to custom resources: pruning of unknown fields, nulls of non-nullable fields
// dropped, defaults, then validation with kube's error texts and field paths
// (spec.members[0].namespaceID).
//
// Supported keywords: type, properties, required, items, additionalProperties, enum, minimum,
// maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength, pattern
// (ECMAScript std::regex), format (date-time, date, uuid, byte, int32, int64; other formats are
// not checked, as kube ignores unknown ones), minItems, maxItems, minProperties, maxProperties,
// nullable, default, x-kubernetes-list-type (atomic, set, map) with x-kubernetes-list-map-keys,
// x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string,
// x-kubernetes-embedded-resource. x-kubernetes-validations may hold only the transition rules
// `self == oldSelf` and `self >= oldSelf` (with message and reason); they are evaluated on
// update when the field exists in both the old and the new object. A schema using anything this
// server cannot enforce (other CEL rules, allOf/anyOf/oneOf/not, $ref, ...) is refused, so no
// test believes a rule is checked when it is not.
//
// Thread contract: a parsed Schema is immutable and safe to share between threads.
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "tools/apiserver/api_errors.h"
#include "tools/apiserver/json_util.h"

namespace tools::apiserver {

struct TransitionRule {
  enum class Kind { kEqual, kGreaterOrEqual };
  Kind kind = Kind::kEqual;
  std::string rule;     // as written, for the default message "failed rule: <rule>"
  std::string message;  // empty: "failed rule: <rule>"
  std::string reason;   // FieldValueInvalid (default), FieldValueForbidden, ...
};

class Schema {
 public:
  // Parses `v` (an openAPIV3Schema). Problems are appended to `errors` with field paths below
  // `path` (e.g. "spec.versions[0].schema.openAPIV3Schema"); the result is null when there are
  // any.
  static std::shared_ptr<const Schema> Parse(const json::Value& v, const std::string& path,
                                             std::vector<FieldError>* errors);

  // Prunes unknown fields and non-nullable nulls from a whole custom resource object (keeping
  // apiVersion, kind and metadata at the root), then applies defaults. The paths of pruned
  // unknown fields ("spec.junk") are appended to `unknown` when it is non-null.
  void PruneAndDefault(json::Value& object, json::Allocator& a,
                       std::vector<std::string>* unknown = nullptr) const;

  // Validates a whole custom resource object (apiVersion, kind and metadata are not checked
  // here). `old` is the stored object on update, null on create; transition rules run only with
  // an old object and only when schema validation found no type errors.
  void ValidateObject(const json::Value& object, const json::Value* old,
                      std::vector<FieldError>* errors) const;

 private:
  struct Errors;

  static std::shared_ptr<Schema> ParseNode(const json::Value& v, const std::string& path,
                                           bool correlatable, std::vector<FieldError>* errors);

  void Prune(json::Value& v, const std::string& path, bool is_root, json::Allocator& a,
             std::vector<std::string>* unknown) const;
  void Default(json::Value& v, json::Allocator& a) const;
  void Validate(const json::Value& v, const json::Value* old, const std::string& path, bool is_root,
                Errors* errors) const;
  void ValidateNumber(const json::Value& v, const std::string& path, Errors* errors) const;
  void ValidateString(const json::Value& v, const std::string& path, Errors* errors) const;
  void ValidateArray(const json::Value& v, const json::Value* old, const std::string& path,
                     Errors* errors) const;
  void ValidateObjectNode(const json::Value& v, const json::Value* old, const std::string& path,
                          bool is_root, Errors* errors) const;
  void CheckRules(const json::Value& v, const json::Value& old, const std::string& path,
                  Errors* errors) const;
  const Schema* PropertySchema(std::string_view name) const;

  std::string type_;  // "" = any
  bool nullable_ = false;
  bool preserve_unknown_fields_ = false;
  bool int_or_string_ = false;
  bool embedded_resource_ = false;
  std::vector<std::pair<std::string, std::shared_ptr<const Schema>>> properties_;
  std::shared_ptr<const Schema> additional_properties_;
  bool additional_properties_allowed_ = false;  // additionalProperties: true
  std::shared_ptr<const Schema> items_;
  std::vector<std::string> required_;
  std::shared_ptr<json::Document> enum_;     // an array, or null
  std::shared_ptr<json::Document> default_;  // or null
  std::optional<double> minimum_;
  std::optional<double> maximum_;
  bool exclusive_minimum_ = false;
  bool exclusive_maximum_ = false;
  std::optional<double> multiple_of_;
  std::optional<long long> min_length_;
  std::optional<long long> max_length_;
  std::string pattern_;
  std::optional<std::regex> pattern_re_;
  std::string format_;
  std::optional<long long> min_items_;
  std::optional<long long> max_items_;
  std::optional<long long> min_properties_;
  std::optional<long long> max_properties_;
  std::string list_type_;  // "", atomic, set, map
  std::vector<std::string> list_map_keys_;
  std::vector<TransitionRule> rules_;
};

}  // namespace tools::apiserver
