#include "tools/apiserver/schema.h"

#include <cmath>
#include <limits>
#include <regex>
#include <set>

#include <fmt/format.h>

namespace tools::apiserver {

struct Schema::Errors {
  std::vector<FieldError> schema;
  std::vector<FieldError> rules;
  bool type_error = false;
};

namespace {

using json::Value;

const std::set<std::string, std::less<>>& RefusedKeywords() {
  static const std::set<std::string, std::less<>> kRefused = {
      "allOf",          "anyOf", "oneOf",       "not",          "$ref",
      "$schema",        "id",    "definitions", "dependencies", "patternProperties",
      "additionalItems"};
  return kRefused;
}

std::string Child(const std::string& path, std::string_view name) {
  if (path.empty()) return std::string(name);
  return path + "." + std::string(name);
}

std::string Index(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

std::string In(const std::string& path) { return path.empty() ? "body" : path + " in body"; }

bool IsIntegral(const Value& v) {
  if (v.IsInt64()) return true;
  if (v.IsUint64()) return true;
  if (v.IsDouble()) {
    double d = v.GetDouble();
    return std::isfinite(d) && std::floor(d) == d;
  }
  return false;
}

std::string RenderEnumValue(const Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return json::Serialize(v);
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool ValidDate(int y, int m, int d) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  int max_day = kDays[m - 1] + (m == 2 && IsLeap(y) ? 1 : 0);
  return d <= max_day;
}

bool IsDateTime(const std::string& s) {
  static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}))"
                             R"((?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  if (!ValidDate(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]))) return false;
  if (std::stoi(m[4]) > 23 || std::stoi(m[5]) > 59) return false;
  if (m[6].matched && std::stoi(m[6]) > 59) return false;
  return true;
}

bool IsDate(const std::string& s) {
  static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})$)");
  std::smatch m;
  return std::regex_match(s, m, re) && ValidDate(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]));
}

bool IsUuid(const std::string& s) {
  static const std::regex re(
      R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)");
  return std::regex_match(s, re);
}

bool IsBase64(const std::string& s) {
  static const std::regex re(R"(^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$)");
  return std::regex_match(s, re);
}

// Reads an optional number keyword; appends an error when it is not a number.
void ReadNumber(const Value& v, std::string_view key, const std::string& path,
                std::optional<double>* out, std::vector<FieldError>* errors) {
  const Value* n = json::Find(v, key);
  if (n == nullptr) return;
  if (!n->IsNumber()) {
    errors->push_back(FieldError::Invalid(Child(path, key), json::GoValue(*n), "must be a number"));
    return;
  }
  *out = n->GetDouble();
}

void ReadCount(const Value& v, std::string_view key, const std::string& path,
               std::optional<long long>* out, std::vector<FieldError>* errors) {
  const Value* n = json::Find(v, key);
  if (n == nullptr) return;
  if (!n->IsInt64() || n->GetInt64() < 0) {
    errors->push_back(
        FieldError::Invalid(Child(path, key), json::GoValue(*n), "must be a non-negative integer"));
    return;
  }
  *out = n->GetInt64();
}

bool ReadBool(const Value& v, std::string_view key) {
  const Value* b = json::Find(v, key);
  return b != nullptr && b->IsBool() && b->GetBool();
}

// "self == oldSelf" with any spacing → kEqual; "self >= oldSelf" → kGreaterOrEqual.
std::optional<TransitionRule::Kind> RuleKind(const std::string& rule) {
  std::string compact;
  for (char c : rule) {
    if (!std::isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  }
  if (compact == "self==oldSelf") return TransitionRule::Kind::kEqual;
  if (compact == "self>=oldSelf") return TransitionRule::Kind::kGreaterOrEqual;
  return std::nullopt;
}

}  // namespace

std::shared_ptr<const Schema> Schema::Parse(const Value& v, const std::string& path,
                                            std::vector<FieldError>* errors) {
  size_t before = errors->size();
  std::shared_ptr<Schema> root = ParseNode(v, path, /*correlatable=*/true, errors);
  if (errors->size() != before) return nullptr;
  if (root->type_ != "object") {
    errors->push_back(FieldError::Invalid(Child(path, "type"), json::GoQuote(root->type_),
                                          "must be object at the root"));
    return nullptr;
  }
  return root;
}

std::shared_ptr<Schema> Schema::ParseNode(const Value& v, const std::string& path,
                                          bool correlatable, std::vector<FieldError>* errors) {
  auto s = std::make_shared<Schema>();
  if (!v.IsObject()) {
    errors->push_back(FieldError::Invalid(path, json::GoValue(v), "must be a schema object"));
    return s;
  }
  for (const auto& m : v.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (RefusedKeywords().count(key) > 0) {
      errors->push_back(FieldError::Forbidden(
          Child(path, key),
          "not supported by meshstor-test-apiserver, which would not enforce it; remove it or "
          "extend tools/apiserver/schema.cc"));
    }
  }
  if (ReadBool(v, "uniqueItems")) {
    errors->push_back(FieldError::Forbidden(Child(path, "uniqueItems"),
                                            "uniqueItems cannot be set to true since the runtime "
                                            "complexity becomes quadratic"));
  }

  s->type_ = json::GetString(v, "type");
  static const std::set<std::string, std::less<>> kTypes = {"",        "object", "array",  "string",
                                                            "integer", "number", "boolean"};
  if (kTypes.count(s->type_) == 0) {
    errors->push_back(
        FieldError::NotSupported(Child(path, "type"), json::GoQuote(s->type_),
                                 {"array", "boolean", "integer", "number", "object", "string"}));
  }
  s->nullable_ = ReadBool(v, "nullable");
  s->preserve_unknown_fields_ = ReadBool(v, "x-kubernetes-preserve-unknown-fields");
  s->int_or_string_ = ReadBool(v, "x-kubernetes-int-or-string");
  s->embedded_resource_ = ReadBool(v, "x-kubernetes-embedded-resource");
  if (s->type_.empty() && !s->int_or_string_ && !s->preserve_unknown_fields_) {
    errors->push_back(
        FieldError::Required(Child(path, "type"), "must not be empty for specified object fields"));
  }
  s->format_ = json::GetString(v, "format");

  if (const Value* props = json::Find(v, "properties")) {
    if (!props->IsObject()) {
      errors->push_back(FieldError::Invalid(Child(path, "properties"), json::GoValue(*props),
                                            "must be an object"));
    } else {
      for (const auto& m : props->GetObject()) {
        std::string name(m.name.GetString(), m.name.GetStringLength());
        s->properties_.emplace_back(
            name,
            ParseNode(m.value, fmt::format("{}.properties[{}]", path, name), correlatable, errors));
      }
    }
  }
  if (const Value* ap = json::Find(v, "additionalProperties")) {
    if (ap->IsBool()) {
      s->additional_properties_allowed_ = ap->GetBool();
    } else {
      s->additional_properties_ =
          ParseNode(*ap, Child(path, "additionalProperties"), correlatable, errors);
    }
    if (!s->properties_.empty() &&
        (s->additional_properties_ || s->additional_properties_allowed_)) {
      errors->push_back(FieldError::Forbidden(Child(path, "additionalProperties"),
                                              "additionalProperties and properties are mutual "
                                              "exclusive"));
    }
  }
  s->list_type_ = json::GetString(v, "x-kubernetes-list-type");
  if (!s->list_type_.empty() && s->list_type_ != "atomic" && s->list_type_ != "set" &&
      s->list_type_ != "map") {
    errors->push_back(FieldError::NotSupported(Child(path, "x-kubernetes-list-type"),
                                               json::GoQuote(s->list_type_),
                                               {"atomic", "set", "map"}));
  }
  if (const Value* keys = json::Find(v, "x-kubernetes-list-map-keys")) {
    if (keys->IsArray()) {
      for (const auto& k : keys->GetArray()) {
        if (k.IsString()) s->list_map_keys_.emplace_back(k.GetString(), k.GetStringLength());
      }
    }
  }
  if (const Value* items = json::Find(v, "items")) {
    s->items_ =
        ParseNode(*items, Child(path, "items"), correlatable && s->list_type_ == "map", errors);
  } else if (s->type_ == "array") {
    errors->push_back(FieldError::Required(Child(path, "items"), "must be specified"));
  }
  if (s->list_type_ == "map") {
    if (s->list_map_keys_.empty()) {
      errors->push_back(FieldError::Required(Child(path, "x-kubernetes-list-map-keys"),
                                             "must not be empty if x-kubernetes-list-type is map"));
    }
    for (const std::string& key : s->list_map_keys_) {
      if (s->items_ == nullptr || s->items_->PropertySchema(key) == nullptr) {
        errors->push_back(FieldError::Invalid(Child(path, "x-kubernetes-list-map-keys"),
                                              json::GoQuote(key),
                                              "entries must all be names of item properties"));
      }
    }
  }
  if (const Value* req = json::Find(v, "required")) {
    if (req->IsArray()) {
      for (const auto& r : req->GetArray()) {
        if (r.IsString()) s->required_.emplace_back(r.GetString(), r.GetStringLength());
      }
    }
  }
  if (const Value* e = json::Find(v, "enum")) {
    if (!e->IsArray()) {
      errors->push_back(
          FieldError::Invalid(Child(path, "enum"), json::GoValue(*e), "must be an array"));
    } else {
      s->enum_ = std::make_shared<json::Document>();
      s->enum_->CopyFrom(*e, s->enum_->GetAllocator());
    }
  }
  if (const Value* d = json::Find(v, "default")) {
    s->default_ = std::make_shared<json::Document>();
    s->default_->CopyFrom(*d, s->default_->GetAllocator());
  }
  ReadNumber(v, "minimum", path, &s->minimum_, errors);
  ReadNumber(v, "maximum", path, &s->maximum_, errors);
  ReadNumber(v, "multipleOf", path, &s->multiple_of_, errors);
  if (s->multiple_of_ && *s->multiple_of_ <= 0) {
    errors->push_back(FieldError::Invalid(
        Child(path, "multipleOf"), json::GoFloat(*s->multiple_of_), "must be greater than zero"));
  }
  s->exclusive_minimum_ = ReadBool(v, "exclusiveMinimum");
  s->exclusive_maximum_ = ReadBool(v, "exclusiveMaximum");
  ReadCount(v, "minLength", path, &s->min_length_, errors);
  ReadCount(v, "maxLength", path, &s->max_length_, errors);
  ReadCount(v, "minItems", path, &s->min_items_, errors);
  ReadCount(v, "maxItems", path, &s->max_items_, errors);
  ReadCount(v, "minProperties", path, &s->min_properties_, errors);
  ReadCount(v, "maxProperties", path, &s->max_properties_, errors);
  s->pattern_ = json::GetString(v, "pattern");
  if (!s->pattern_.empty()) {
    try {
      s->pattern_re_.emplace(s->pattern_, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      errors->push_back(
          FieldError::Invalid(Child(path, "pattern"), json::GoQuote(s->pattern_),
                              fmt::format("must be a valid regular expression: {}", e.what())));
    }
  }

  if (const Value* rules = json::Find(v, "x-kubernetes-validations")) {
    const std::string rules_path = Child(path, "x-kubernetes-validations");
    if (!rules->IsArray()) {
      errors->push_back(FieldError::Invalid(rules_path, json::GoValue(*rules), "must be an array"));
    } else {
      size_t i = 0;
      for (const auto& r : rules->GetArray()) {
        const std::string rule_path = Index(rules_path, i++);
        if (!r.IsObject()) {
          errors->push_back(FieldError::Invalid(rule_path, json::GoValue(r), "must be an object"));
          continue;
        }
        for (const auto& m : r.GetObject()) {
          std::string_view key(m.name.GetString(), m.name.GetStringLength());
          if (key != "rule" && key != "message" && key != "reason") {
            errors->push_back(FieldError::Forbidden(
                Child(rule_path, key),
                "not supported by meshstor-test-apiserver (only rule, message and reason are)"));
          }
        }
        TransitionRule rule;
        rule.rule = json::GetString(r, "rule");
        rule.message = json::GetString(r, "message");
        rule.reason = json::GetString(r, "reason");
        std::optional<TransitionRule::Kind> kind = RuleKind(rule.rule);
        if (!kind) {
          errors->push_back(FieldError::Forbidden(
              Child(rule_path, "rule"),
              fmt::format("meshstor-test-apiserver enforces only the rules \"self == oldSelf\" and "
                          "\"self >= oldSelf\"; {} would not be enforced",
                          json::GoQuote(rule.rule))));
          continue;
        }
        rule.kind = *kind;
        if (rule.kind == TransitionRule::Kind::kGreaterOrEqual && s->type_ != "integer" &&
            s->type_ != "number" && s->type_ != "string") {
          errors->push_back(FieldError::Invalid(
              Child(rule_path, "rule"), json::GoQuote(rule.rule),
              fmt::format("compilation failed: no matching overload for '_>=_' applied to '({0}, "
                          "{0})'",
                          s->type_.empty() ? "dyn" : s->type_)));
          continue;
        }
        if (!rule.reason.empty() && rule.reason != "FieldValueInvalid" &&
            rule.reason != "FieldValueForbidden" && rule.reason != "FieldValueRequired" &&
            rule.reason != "FieldValueDuplicate") {
          errors->push_back(
              FieldError::NotSupported(Child(rule_path, "reason"), json::GoQuote(rule.reason),
                                       {"FieldValueInvalid", "FieldValueForbidden",
                                        "FieldValueRequired", "FieldValueDuplicate"}));
          continue;
        }
        if (!correlatable) {
          errors->push_back(FieldError::Invalid(
              Child(rule_path, "rule"), json::GoQuote(rule.rule),
              "oldSelf cannot be used on the uncorrelatable portion of the schema"));
          continue;
        }
        s->rules_.push_back(std::move(rule));
      }
    }
  }
  return s;
}

const Schema* Schema::PropertySchema(std::string_view name) const {
  for (const auto& [n, schema] : properties_) {
    if (n == name) return schema.get();
  }
  return nullptr;
}

void Schema::PruneAndDefault(Value& object, json::Allocator& a,
                             std::vector<std::string>* unknown) const {
  Prune(object, "", /*is_root=*/true, a, unknown);
  Default(object, a);
}

void Schema::Prune(Value& v, const std::string& path, bool is_root, json::Allocator& a,
                   std::vector<std::string>* unknown) const {
  if (v.IsArray()) {
    if (items_ != nullptr) {
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        items_->Prune(v[i], Index(path, i), false, a, unknown);
      }
    }
    return;
  }
  if (!v.IsObject()) return;
  for (auto it = v.MemberBegin(); it != v.MemberEnd();) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if ((is_root || embedded_resource_) &&
        (name == "apiVersion" || name == "kind" || name == "metadata")) {
      ++it;
      continue;
    }
    const Schema* sub = PropertySchema(name);
    if (sub == nullptr) sub = additional_properties_.get();
    if (sub == nullptr) {
      if (preserve_unknown_fields_ || additional_properties_allowed_) {
        ++it;
      } else {
        if (unknown != nullptr) unknown->push_back(Child(path, name));
        it = v.EraseMember(it);
      }
      continue;
    }
    if (it->value.IsNull() && !sub->nullable_) {
      it = v.EraseMember(it);  // defaulting below may fill it in again
      continue;
    }
    const bool by_name = PropertySchema(name) != nullptr;
    sub->Prune(it->value, by_name ? Child(path, name) : fmt::format("{}[{}]", path, name), false, a,
               unknown);
    ++it;
  }
}

void Schema::Default(Value& v, json::Allocator& a) const {
  if (v.IsArray()) {
    if (items_ != nullptr) {
      for (auto& e : v.GetArray()) items_->Default(e, a);
    }
    return;
  }
  if (!v.IsObject()) return;
  for (const auto& [name, sub] : properties_) {
    Value* child = json::FindMutable(v, name);
    if (child == nullptr && sub->default_ != nullptr) {
      json::SetMember(v, name, Value(*sub->default_, a), a);
      child = json::FindMutable(v, name);
    }
    if (child != nullptr) sub->Default(*child, a);
  }
  if (additional_properties_ != nullptr) {
    for (auto& m : v.GetObject()) {
      if (PropertySchema(std::string_view(m.name.GetString(), m.name.GetStringLength())) ==
          nullptr) {
        additional_properties_->Default(m.value, a);
      }
    }
  }
}

void Schema::ValidateObject(const Value& object, const Value* old,
                            std::vector<FieldError>* errors) const {
  Errors e;
  Validate(object, old, "", /*is_root=*/true, &e);
  for (FieldError& fe : e.schema) errors->push_back(std::move(fe));
  // Like kube-apiserver, CEL rules do not run when the schema found type errors.
  if (!e.type_error) {
    for (FieldError& fe : e.rules) errors->push_back(std::move(fe));
  }
}

void Schema::Validate(const Value& v, const Value* old, const std::string& path, bool is_root,
                      Errors* errors) const {
  if (v.IsNull()) {
    if (nullable_ || type_.empty()) return;
    errors->type_error = true;
    errors->schema.push_back(FieldError::TypeInvalid(
        path, "\"null\"", fmt::format("{} must be of type {}: \"null\"", In(path), type_)));
    return;
  }
  bool type_ok = true;
  if (int_or_string_) {
    type_ok = v.IsString() || IsIntegral(v);
  } else if (type_ == "object") {
    type_ok = v.IsObject();
  } else if (type_ == "array") {
    type_ok = v.IsArray();
  } else if (type_ == "string") {
    type_ok = v.IsString();
  } else if (type_ == "integer") {
    type_ok = IsIntegral(v);
  } else if (type_ == "number") {
    type_ok = v.IsNumber();
  } else if (type_ == "boolean") {
    type_ok = v.IsBool();
  }
  if (!type_ok) {
    errors->type_error = true;
    std::string actual = json::GoQuote(json::TypeName(v));
    errors->schema.push_back(
        FieldError::TypeInvalid(path, actual,
                                fmt::format("{} must be of type {}: {}", In(path),
                                            int_or_string_ ? "integer,string" : type_, actual)));
    return;
  }
  if (enum_ != nullptr) {
    bool found = false;
    for (const auto& allowed : enum_->GetArray()) {
      if (json::Equal(allowed, v)) {
        found = true;
        break;
      }
    }
    if (!found) {
      std::vector<std::string> supported;
      for (const auto& allowed : enum_->GetArray()) supported.push_back(RenderEnumValue(allowed));
      errors->schema.push_back(FieldError::NotSupported(path, json::GoValue(v), supported));
    }
  }
  if (v.IsNumber()) ValidateNumber(v, path, errors);
  if (v.IsString()) ValidateString(v, path, errors);
  if (v.IsArray()) ValidateArray(v, old, path, errors);
  if (v.IsObject()) ValidateObjectNode(v, old, path, is_root, errors);
  if (old != nullptr && !rules_.empty()) CheckRules(v, *old, path, errors);
}

void Schema::ValidateNumber(const Value& v, const std::string& path, Errors* errors) const {
  const double d = v.GetDouble();
  const std::string shown = json::GoValue(v);
  if (maximum_) {
    if (exclusive_maximum_ ? d >= *maximum_ : d > *maximum_) {
      errors->schema.push_back(FieldError::Invalid(
          path, shown,
          fmt::format("{} should be less than {}{}", In(path),
                      exclusive_maximum_ ? "" : "or equal to ", json::GoFloat(*maximum_))));
    }
  }
  if (minimum_) {
    if (exclusive_minimum_ ? d <= *minimum_ : d < *minimum_) {
      errors->schema.push_back(FieldError::Invalid(
          path, shown,
          fmt::format("{} should be greater than {}{}", In(path),
                      exclusive_minimum_ ? "" : "or equal to ", json::GoFloat(*minimum_))));
    }
  }
  if (multiple_of_) {
    bool multiple = true;
    const double m = *multiple_of_;
    if (v.IsInt64() && std::floor(m) == m && m < 9.2e18) {
      multiple = v.GetInt64() % static_cast<int64_t>(m) == 0;
    } else {
      double q = d / m;
      multiple = std::fabs(q - std::round(q)) < 1e-9;
    }
    if (!multiple) {
      errors->schema.push_back(FieldError::Invalid(
          path, shown, fmt::format("{} should be a multiple of {}", In(path), json::GoFloat(m))));
    }
  }
  if (type_ == "integer" && (format_ == "int32" || format_ == "int64")) {
    bool fits = true;
    if (format_ == "int32") {
      fits = v.IsInt64() && v.GetInt64() >= std::numeric_limits<int32_t>::min() &&
             v.GetInt64() <= std::numeric_limits<int32_t>::max();
      if (v.IsDouble()) fits = d >= -2147483648.0 && d <= 2147483647.0;
    } else {
      fits =
          v.IsInt64() || (v.IsDouble() && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18);
    }
    if (!fits) {
      errors->schema.push_back(FieldError::Invalid(
          path, shown, fmt::format("{} must be of type {}: \"{}\"", In(path), format_, shown)));
    }
  }
}

void Schema::ValidateString(const Value& v, const std::string& path, Errors* errors) const {
  const std::string s(v.GetString(), v.GetStringLength());
  const size_t length = json::CodePointCount(s);
  if (max_length_ && static_cast<long long>(length) > *max_length_) {
    errors->schema.push_back(FieldError::TooLong(path, *max_length_));
  }
  if (min_length_ && static_cast<long long>(length) < *min_length_) {
    errors->schema.push_back(FieldError::Invalid(
        path, json::GoQuote(s),
        fmt::format("{} should be at least {} chars long", In(path), *min_length_)));
  }
  if (pattern_re_ && !std::regex_search(s, *pattern_re_)) {
    errors->schema.push_back(FieldError::Invalid(
        path, json::GoQuote(s), fmt::format("{} should match '{}'", In(path), pattern_)));
  }
  bool format_ok = true;
  if (format_ == "date-time") {
    format_ok = IsDateTime(s);
  } else if (format_ == "date") {
    format_ok = IsDate(s);
  } else if (format_ == "uuid") {
    format_ok = IsUuid(s);
  } else if (format_ == "byte") {
    format_ok = IsBase64(s);
  }
  if (!format_ok) {
    errors->schema.push_back(FieldError::Invalid(
        path, json::GoQuote(s),
        fmt::format("{} must be of type {}: {}", In(path), format_, json::GoQuote(s))));
  }
}

void Schema::ValidateArray(const Value& v, const Value* old, const std::string& path,
                           Errors* errors) const {
  const long long size = static_cast<long long>(v.Size());
  if (max_items_ && size > *max_items_) {
    errors->schema.push_back(FieldError::TooMany(path, size, *max_items_));
  }
  if (min_items_ && size < *min_items_) {
    errors->schema.push_back(FieldError::Invalid(
        path, json::GoValue(v),
        fmt::format("{} should have at least {} items", In(path), *min_items_)));
  }
  const bool is_map = list_type_ == "map";
  const Value* old_array = old != nullptr && old->IsArray() ? old : nullptr;
  auto keys_equal = [&](const Value& a, const Value& b) {
    for (const std::string& k : list_map_keys_) {
      const Value* ka = json::Find(a, k);
      const Value* kb = json::Find(b, k);
      if ((ka == nullptr) != (kb == nullptr)) return false;
      if (ka != nullptr && !json::Equal(*ka, *kb)) return false;
    }
    return true;
  };
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const Value& e = v[i];
    const Value* old_e = nullptr;
    if (is_map && old_array != nullptr && e.IsObject()) {
      for (const auto& candidate : old_array->GetArray()) {
        if (candidate.IsObject() && keys_equal(candidate, e)) {
          old_e = &candidate;
          break;
        }
      }
    }
    if (items_ != nullptr) items_->Validate(e, old_e, Index(path, i), false, errors);
    // Duplicates: each element equal (set) or key-equal (map) to an earlier one.
    if (list_type_ == "set" || (is_map && e.IsObject())) {
      for (rapidjson::SizeType j = 0; j < i; ++j) {
        bool dup = is_map ? (v[j].IsObject() && keys_equal(v[j], e)) : json::Equal(v[j], e);
        if (!dup) continue;
        if (is_map) {
          json::Document keys;
          keys.SetObject();
          for (const std::string& k : list_map_keys_) {
            if (const Value* kv = json::Find(e, k)) {
              json::SetMember(keys, k, Value(*kv, keys.GetAllocator()), keys.GetAllocator());
            }
          }
          errors->schema.push_back(FieldError::Duplicate(Index(path, i), json::GoValue(keys)));
        } else {
          errors->schema.push_back(FieldError::Duplicate(Index(path, i), json::GoValue(e)));
        }
        break;
      }
    }
  }
}

void Schema::ValidateObjectNode(const Value& v, const Value* old, const std::string& path,
                                bool is_root, Errors* errors) const {
  const long long count = static_cast<long long>(v.MemberCount());
  if (max_properties_ && count > *max_properties_) {
    errors->schema.push_back(FieldError::TooMany(path, count, *max_properties_));
  }
  if (min_properties_ && count < *min_properties_) {
    errors->schema.push_back(FieldError::Invalid(
        path, json::GoValue(v),
        fmt::format("{} should have at least {} properties", In(path), *min_properties_)));
  }
  for (const std::string& r : required_) {
    if (json::Find(v, r) == nullptr) errors->schema.push_back(FieldError::Required(Child(path, r)));
  }
  const Value* old_object = old != nullptr && old->IsObject() ? old : nullptr;
  for (const auto& [name, sub] : properties_) {
    if (is_root && (name == "apiVersion" || name == "kind" || name == "metadata")) continue;
    const Value* child = json::Find(v, name);
    if (child == nullptr) continue;
    const Value* old_child = old_object != nullptr ? json::Find(*old_object, name) : nullptr;
    sub->Validate(*child, old_child, Child(path, name), false, errors);
  }
  if (additional_properties_ != nullptr) {
    for (const auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (PropertySchema(name) != nullptr) continue;
      const Value* old_child = old_object != nullptr ? json::Find(*old_object, name) : nullptr;
      additional_properties_->Validate(m.value, old_child, fmt::format("{}[{}]", path, name), false,
                                       errors);
    }
  }
}

void Schema::CheckRules(const Value& v, const Value& old, const std::string& path,
                        Errors* errors) const {
  for (const TransitionRule& rule : rules_) {
    bool ok = true;
    if (rule.kind == TransitionRule::Kind::kEqual) {
      ok = json::Equal(v, old);
    } else if (v.IsString() && old.IsString()) {
      ok = std::string_view(v.GetString(), v.GetStringLength()) >=
           std::string_view(old.GetString(), old.GetStringLength());
    } else if (v.IsInt64() && old.IsInt64()) {
      ok = v.GetInt64() >= old.GetInt64();
    } else if (v.IsNumber() && old.IsNumber()) {
      ok = v.GetDouble() >= old.GetDouble();
    }
    if (ok) continue;
    std::string message = rule.message.empty() ? "failed rule: " + rule.rule : rule.message;
    if (rule.reason == "FieldValueForbidden") {
      errors->rules.push_back(FieldError::Forbidden(path, std::move(message)));
    } else if (rule.reason == "FieldValueRequired") {
      errors->rules.push_back(FieldError::Required(path, std::move(message)));
    } else if (rule.reason == "FieldValueDuplicate") {
      FieldError e = FieldError::Duplicate(path, json::GoQuote(type_));
      e.detail = std::move(message);
      errors->rules.push_back(std::move(e));
    } else {
      // kube-apiserver reports the schema type as the "value" of a failed CEL rule.
      errors->rules.push_back(FieldError::Invalid(path, json::GoQuote(type_), std::move(message)));
    }
  }
}

}  // namespace tools::apiserver
