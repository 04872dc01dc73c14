#include "common/config/yaml_json.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

namespace common::config {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

bool IsNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

int Line(const YAML::Node& node) { return node.Mark().line + 1; }

Status ScalarToJson(const YAML::Node& node, std::string_view source, Writer& w) {
  const std::string& s = node.Scalar();
  // yaml-cpp tags non-plain (quoted or block) scalars "!" and plain ones "?".
  if (node.Tag() == "!") {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return OkStatus();
  }
  if (node.Tag() != "?" && !node.Tag().empty()) {
    if (node.Tag() == "tag:yaml.org,2002:str" || node.Tag() == "!!str") {
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      return OkStatus();
    }
    return InvalidArgumentError("{} line {}: unsupported YAML tag {}", source, Line(node),
                                node.Tag());
  }
  if (IsNull(s)) {
    w.Null();
    return OkStatus();
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    w.Bool(true);
    return OkStatus();
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    w.Bool(false);
    return OkStatus();
  }
  static const std::regex kDecimalInt("[-+]?[0-9]+");
  static const std::regex kHexInt("0x[0-9a-fA-F]+");
  static const std::regex kOctInt("0o[0-7]+");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  static const std::regex kInf(R"([-+]?\.(inf|Inf|INF))");
  static const std::regex kNan(R"(\.(nan|NaN|NAN))");
  auto parse_int = [&](std::string_view digits, int base, bool negative) -> Status {
    uint64_t magnitude = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    const uint64_t limit =
        negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (ec != std::errc() || ptr != digits.data() + digits.size() || magnitude > limit) {
      return InvalidArgumentError("{} line {}: integer {} does not fit in 64 bits", source,
                                  Line(node), s);
    }
    if (negative) {
      w.Int64(magnitude == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                               : -static_cast<int64_t>(magnitude));
    } else {
      w.Int64(static_cast<int64_t>(magnitude));
    }
    return OkStatus();
  };
  if (std::regex_match(s, kDecimalInt)) {
    std::string_view v = s;
    bool negative = false;
    if (v.front() == '+' || v.front() == '-') {
      negative = v.front() == '-';
      v.remove_prefix(1);
    }
    return parse_int(v, 10, negative);
  }
  if (std::regex_match(s, kHexInt)) return parse_int(std::string_view(s).substr(2), 16, false);
  if (std::regex_match(s, kOctInt)) return parse_int(std::string_view(s).substr(2), 8, false);
  if (std::regex_match(s, kInf) || std::regex_match(s, kNan)) {
    // JSON has no representation for these; Kubernetes objects never need them.
    return InvalidArgumentError("{} line {}: {} cannot be represented in JSON", source, Line(node),
                                s);
  }
  if (std::regex_match(s, kFloat)) {
    errno = 0;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (errno == ERANGE || !std::isfinite(d)) {
      return InvalidArgumentError("{} line {}: number {} is out of range", source, Line(node), s);
    }
    w.Double(d);
    return OkStatus();
  }
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return OkStatus();
}

Status NodeToJson(const YAML::Node& node, std::string_view source, Writer& w, int depth) {
  if (depth > 200) {
    return InvalidArgumentError("{} line {}: nesting deeper than 200 levels", source, Line(node));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      w.Null();
      return OkStatus();
    case YAML::NodeType::Scalar:
      return ScalarToJson(node, source, w);
    case YAML::NodeType::Sequence:
      w.StartArray();
      for (const auto& item : node) RETURN_IF_ERROR(NodeToJson(item, source, w, depth + 1));
      w.EndArray();
      return OkStatus();
    case YAML::NodeType::Map: {
      w.StartObject();
      std::set<std::string> seen;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return InvalidArgumentError("{} line {}: mapping keys must be scalars", source,
                                      Line(kv.first));
        }
        const std::string& key = kv.first.Scalar();
        if (!seen.insert(key).second) {
          return InvalidArgumentError("{} line {}: duplicate key '{}'", source, Line(kv.first),
                                      key);
        }
        w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        RETURN_IF_ERROR(NodeToJson(kv.second, source, w, depth + 1));
      }
      w.EndObject();
      return OkStatus();
    }
  }
  return InternalError("{}: unexpected YAML node type", source);
}

Result<std::vector<YAML::Node>> LoadAll(std::string_view yaml, std::string_view source) {
  try {
    return YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("{} line {} column {}: {}", source, e.mark.line + 1,
                                e.mark.column + 1, e.msg);
  }
}

Result<std::string> Convert(const YAML::Node& node, std::string_view source) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  try {
    RETURN_IF_ERROR(NodeToJson(node, source, writer, 0));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("{} line {}: {}", source, e.mark.line + 1, e.msg);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

Result<std::vector<std::string>> YamlToJsonDocuments(std::string_view yaml,
                                                     std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> nodes, LoadAll(yaml, source));
  std::vector<std::string> out;
  for (const auto& node : nodes) {
    if (node.IsNull() || !node.IsDefined()) continue;
    ASSIGN_OR_RETURN(std::string json, Convert(node, source));
    out.push_back(std::move(json));
  }
  return out;
}

Result<std::string> YamlToJson(std::string_view yaml, std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> nodes, LoadAll(yaml, source));
  if (nodes.size() > 1) {
    return InvalidArgumentError("{}: expected one YAML document, found {}", source, nodes.size());
  }
  if (nodes.empty()) return std::string("null");
  return Convert(nodes.front(), source);
}

Result<std::string> YamlFileToJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return YamlToJson(ss.str(), path);
}

}  // namespace common::config
