#include "tools/apiserver/json_util.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_map>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tools::apiserver::json {
namespace {

rapidjson::Value Ref(std::string_view s) {
  return rapidjson::Value(
      rapidjson::StringRef(s.data(), static_cast<rapidjson::SizeType>(s.size())));
}

// Returns the depth of `v` (a scalar is 1), stopping early once `limit` is exceeded.
int Depth(const Value& v, int limit) {
  if (limit <= 0) return 1;
  int deepest = 0;
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      deepest = std::max(deepest, Depth(m.value, limit - 1));
      if (deepest >= limit) break;
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      deepest = std::max(deepest, Depth(e, limit - 1));
      if (deepest >= limit) break;
    }
  }
  return deepest + 1;
}

// Keeps the last of duplicate object keys, recursively (Go's encoding/json behaviour).
void DedupeKeys(Value& v) {
  if (v.IsArray()) {
    for (auto& e : v.GetArray()) DedupeKeys(e);
    return;
  }
  if (!v.IsObject()) return;
  std::unordered_map<std::string_view, rapidjson::SizeType> last;
  rapidjson::SizeType i = 0;
  bool duplicates = false;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it, ++i) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    auto [pos, inserted] = last.try_emplace(key, i);
    if (!inserted) {
      pos->second = i;
      duplicates = true;
    }
  }
  if (duplicates) {
    // Walk backwards so erasing does not shift members still to be visited.
    for (rapidjson::SizeType j = v.MemberCount(); j-- > 0;) {
      auto it = v.MemberBegin() + j;
      std::string_view key(it->name.GetString(), it->name.GetStringLength());
      if (last[key] != j) v.EraseMember(it);
    }
  }
  for (auto& m : v.GetObject()) DedupeKeys(m.value);
}

// RFC 6901 pointer tokens; nullopt-like failure reported through `ok`.
bool SplitPointer(std::string_view path, std::vector<std::string>* tokens) {
  tokens->clear();
  if (path.empty()) return true;
  if (path[0] != '/') return false;
  size_t pos = 1;
  while (true) {
    size_t next = path.find('/', pos);
    std::string_view raw =
        path.substr(pos, next == std::string_view::npos ? path.npos : next - pos);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~') {
        if (i + 1 >= raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return false;
        token.push_back(raw[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        token.push_back(raw[i]);
      }
    }
    tokens->push_back(std::move(token));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return true;
}

bool ParseIndex(const std::string& token, size_t* index) {
  if (token.empty() || token.size() > 9) return false;
  if (token.size() > 1 && token[0] == '0') return false;
  size_t value = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<size_t>(c - '0');
  }
  *index = value;
  return true;
}

// The value at `tokens` below `root`, or nullptr.
Value* Resolve(Value& root, const std::vector<std::string>& tokens, size_t count) {
  Value* cur = &root;
  for (size_t i = 0; i < count; ++i) {
    const std::string& t = tokens[i];
    if (cur->IsObject()) {
      cur = FindMutable(*cur, t);
    } else if (cur->IsArray()) {
      size_t index = 0;
      if (!ParseIndex(t, &index) || index >= cur->Size()) return nullptr;
      cur = &(*cur)[static_cast<rapidjson::SizeType>(index)];
    } else {
      return nullptr;
    }
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

common::Status OpFailed(std::string message) {
  return common::Status(common::StatusCode::kFailedPrecondition, std::move(message));
}

// Adds `value` at `path` (RFC 6902 "add").
common::Status AddAt(Value& root, const std::string& path, Value&& value, Allocator& a) {
  std::vector<std::string> tokens;
  if (!SplitPointer(path, &tokens)) return OpFailed(fmt::format("invalid path: {}", path));
  if (tokens.empty()) {
    root = std::move(value);
    return common::OkStatus();
  }
  Value* parent = Resolve(root, tokens, tokens.size() - 1);
  if (parent == nullptr) {
    return OpFailed(fmt::format("add operation does not apply: doc is missing path: \"{}\"", path));
  }
  const std::string& last = tokens.back();
  if (parent->IsObject()) {
    SetMember(*parent, last, std::move(value), a);
    return common::OkStatus();
  }
  if (parent->IsArray()) {
    size_t index = 0;
    if (last == "-") {
      index = parent->Size();
    } else if (!ParseIndex(last, &index) || index > parent->Size()) {
      return OpFailed(
          fmt::format("add operation does not apply: index out of bounds: \"{}\"", path));
    }
    parent->PushBack(Value(), a);  // grow by one, then shift right
    for (size_t i = parent->Size() - 1; i > index; --i) {
      (*parent)[static_cast<rapidjson::SizeType>(i)] =
          std::move((*parent)[static_cast<rapidjson::SizeType>(i - 1)]);
    }
    (*parent)[static_cast<rapidjson::SizeType>(index)] = std::move(value);
    return common::OkStatus();
  }
  return OpFailed(fmt::format("add operation does not apply: doc is missing path: \"{}\"", path));
}

// Removes the value at `path` and returns it through `removed` when non-null.
common::Status RemoveAt(Value& root, const std::string& path, const char* op, Value* removed) {
  std::vector<std::string> tokens;
  if (!SplitPointer(path, &tokens)) return OpFailed(fmt::format("invalid path: {}", path));
  if (tokens.empty()) return OpFailed(fmt::format("{} operation does not apply to the root", op));
  Value* parent = Resolve(root, tokens, tokens.size() - 1);
  const std::string& last = tokens.back();
  if (parent != nullptr && parent->IsObject()) {
    auto it = parent->FindMember(Ref(last));
    if (it != parent->MemberEnd()) {
      if (removed != nullptr) *removed = std::move(it->value);
      parent->EraseMember(it);
      return common::OkStatus();
    }
  } else if (parent != nullptr && parent->IsArray()) {
    size_t index = 0;
    if (ParseIndex(last, &index) && index < parent->Size()) {
      auto it = parent->Begin() + index;
      if (removed != nullptr) *removed = std::move(*it);
      parent->Erase(it);
      return common::OkStatus();
    }
  }
  return OpFailed(fmt::format(
      "{} operation does not apply: doc is missing path: \"{}\": missing value", op, path));
}

void AppendGoValue(const Value& v, std::string* out, bool nested) {
  if (v.IsString()) {
    out->append(GoQuote(std::string_view(v.GetString(), v.GetStringLength())));
  } else if (v.IsBool()) {
    out->append(v.GetBool() ? "true" : "false");
  } else if (v.IsNull()) {
    out->append(nested ? "interface {}(nil)" : "null");
  } else if (v.IsInt64()) {
    out->append(std::to_string(v.GetInt64()));
  } else if (v.IsUint64()) {
    out->append(std::to_string(v.GetUint64()));
  } else if (v.IsNumber()) {
    out->append(GoFloat(v.GetDouble()));
  } else if (v.IsArray()) {
    out->append("[]interface {}{");
    bool first = true;
    for (const auto& e : v.GetArray()) {
      if (!first) out->append(", ");
      first = false;
      AppendGoValue(e, out, true);
    }
    out->append("}");
  } else if (v.IsObject()) {
    // Go prints map keys sorted.
    std::map<std::string_view, const Value*> sorted;
    for (const auto& m : v.GetObject()) {
      sorted[std::string_view(m.name.GetString(), m.name.GetStringLength())] = &m.value;
    }
    out->append("map[string]interface {}{");
    bool first = true;
    for (const auto& [key, value] : sorted) {
      if (!first) out->append(", ");
      first = false;
      out->append(GoQuote(key));
      out->append(":");
      AppendGoValue(*value, out, true);
    }
    out->append("}");
  }
}

}  // namespace

common::Status Parse(std::string_view text, Document* doc) {
  doc->Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag |
             rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc->HasParseError()) {
    return common::InvalidArgumentError("invalid JSON at offset {}: {}", doc->GetErrorOffset(),
                                        rapidjson::GetParseError_En(doc->GetParseError()));
  }
  if (Depth(*doc, kMaxDepth + 1) > kMaxDepth) {
    return common::InvalidArgumentError("JSON nested deeper than {} levels", kMaxDepth);
  }
  DedupeKeys(*doc);
  return common::OkStatus();
}

std::string Serialize(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

const Value* Find(const Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Ref(key));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

Value* FindMutable(Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Ref(key));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string GetString(const Value& obj, std::string_view key) {
  const Value* v = Find(obj, key);
  if (v == nullptr || !v->IsString()) return {};
  return std::string(v->GetString(), v->GetStringLength());
}

void SetMember(Value& obj, std::string_view key, Value&& v, Allocator& a) {
  auto it = obj.FindMember(Ref(key));
  if (it != obj.MemberEnd()) {
    it->value = std::move(v);
    return;
  }
  obj.AddMember(Value(key.data(), static_cast<rapidjson::SizeType>(key.size()), a), std::move(v),
                a);
}

void SetString(Value& obj, std::string_view key, std::string_view s, Allocator& a) {
  SetMember(obj, key, Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a), a);
}

void RemoveMember(Value& obj, std::string_view key) {
  if (!obj.IsObject()) return;
  auto it = obj.FindMember(Ref(key));
  if (it != obj.MemberEnd()) obj.EraseMember(it);
}

Value& EnsureObject(Value& obj, std::string_view key, Allocator& a) {
  Value* existing = FindMutable(obj, key);
  if (existing != nullptr) {
    if (!existing->IsObject()) existing->SetObject();
    return *existing;
  }
  SetMember(obj, key, Value(rapidjson::kObjectType), a);
  return *FindMutable(obj, key);
}

bool Equal(const Value& a, const Value& b) { return a == b; }

void MergePatch(Value& target, const Value& patch, Allocator& a) {
  if (!patch.IsObject()) {
    target.CopyFrom(patch, a);
    return;
  }
  if (!target.IsObject()) target.SetObject();
  for (const auto& m : patch.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (m.value.IsNull()) {
      RemoveMember(target, key);
      continue;
    }
    Value* existing = FindMutable(target, key);
    if (existing == nullptr) {
      SetMember(target, key, Value(rapidjson::kObjectType), a);
      existing = FindMutable(target, key);
      if (!m.value.IsObject()) {
        existing->CopyFrom(m.value, a);
        continue;
      }
    }
    MergePatch(*existing, m.value, a);
  }
}

common::Status JsonPatch(Value& doc, const Value& ops, Allocator& a) {
  if (!ops.IsArray()) {
    return common::InvalidArgumentError(
        "json: cannot unmarshal {} into Go value of type jsonpatch.Patch", TypeName(ops));
  }
  Value work(doc, a);
  for (const auto& op_value : ops.GetArray()) {
    if (!op_value.IsObject()) {
      return common::InvalidArgumentError(
          "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
          TypeName(op_value));
    }
    const std::string op = GetString(op_value, "op");
    const Value* path_value = Find(op_value, "path");
    if (path_value == nullptr || !path_value->IsString()) {
      return OpFailed(
          fmt::format("{} operation does not apply: missing path", op.empty() ? "unknown" : op));
    }
    const std::string path(path_value->GetString(), path_value->GetStringLength());
    const Value* value = Find(op_value, "value");
    if (op == "add" || op == "replace" || op == "test") {
      if (value == nullptr) return OpFailed(fmt::format("{} operation has no value", op));
    }
    if (op == "add") {
      RETURN_IF_ERROR(AddAt(work, path, Value(*value, a), a));
    } else if (op == "remove") {
      RETURN_IF_ERROR(RemoveAt(work, path, "remove", nullptr));
    } else if (op == "replace") {
      std::vector<std::string> tokens;
      if (!SplitPointer(path, &tokens)) return OpFailed(fmt::format("invalid path: {}", path));
      Value* target = Resolve(work, tokens, tokens.size());
      if (target == nullptr) {
        return OpFailed(fmt::format(
            "replace operation does not apply: doc is missing key: {}: missing value", path));
      }
      target->CopyFrom(*value, a);
    } else if (op == "move" || op == "copy") {
      const std::string from = GetString(op_value, "from");
      std::vector<std::string> tokens;
      if (!SplitPointer(from, &tokens)) return OpFailed(fmt::format("invalid from: {}", from));
      Value moved;
      if (op == "move") {
        if (path.rfind(from + "/", 0) == 0) {
          return OpFailed(
              fmt::format("move operation cannot move {} into its own child {}", from, path));
        }
        RETURN_IF_ERROR(RemoveAt(work, from, "move", &moved));
      } else {
        Value* source = Resolve(work, tokens, tokens.size());
        if (source == nullptr) {
          return OpFailed(fmt::format(
              "copy operation does not apply: doc is missing from path: {}: missing value", from));
        }
        moved.CopyFrom(*source, a);
      }
      RETURN_IF_ERROR(AddAt(work, path, std::move(moved), a));
    } else if (op == "test") {
      std::vector<std::string> tokens;
      if (!SplitPointer(path, &tokens)) return OpFailed(fmt::format("invalid path: {}", path));
      Value* target = Resolve(work, tokens, tokens.size());
      bool ok = target != nullptr ? Equal(*target, *value) : value->IsNull();
      if (!ok) return OpFailed(fmt::format("testing value {} failed: test failed", path));
    } else {
      return OpFailed(fmt::format("Unexpected kind: {}", op));
    }
  }
  doc.Swap(work);
  return common::OkStatus();
}

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += "\"";
  return out;
}

std::string GoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, result.ptr);  // e.g. "-1.048576e+06"
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  int exp = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  if (exp < -4 || exp >= 6) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
    return out;
  }
  if (exp < 0) return sign + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  size_t int_digits = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_digits)
    return sign + digits + std::string(int_digits - digits.size(), '0');
  return sign + digits.substr(0, int_digits) + "." + digits.substr(int_digits);
}

std::string GoValue(const Value& v) {
  std::string out;
  AppendGoValue(v, &out, false);
  return out;
}

std::string_view TypeName(const Value& v) {
  if (v.IsString()) return "string";
  if (v.IsBool()) return "boolean";
  if (v.IsNull()) return "null";
  if (v.IsInt64() || v.IsUint64()) return "integer";
  if (v.IsNumber()) return "number";
  if (v.IsArray()) return "array";
  return "object";
}

size_t CodePointCount(std::string_view s) {
  size_t count = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++count;
  }
  return count;
}

}  // namespace tools::apiserver::json
