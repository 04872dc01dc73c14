#include "common/api/json.h"

#include <memory>

#include <rapidjson/error/en.h>

#include "common/time/clock.h"

namespace common::api::json {
namespace {

constexpr size_t kScratchBytes = 32 * 1024;
constexpr int kScratchBuffers = 2;

// The calling thread's scratch buffers, allocated on first use and kept for the thread's life.
struct ThreadScratch {
  std::unique_ptr<char[]> buffers[kScratchBuffers];
  int in_use = 0;  // buffers[0..in_use) are lent out

  char* Take() {
    if (in_use == kScratchBuffers) return nullptr;
    auto& b = buffers[in_use++];
    if (!b) b = std::make_unique<char[]>(kScratchBytes);
    return b.get();
  }
};

thread_local ThreadScratch scratch;

}  // namespace

ScratchDocument::ScratchDocument()
    : buffer_(scratch.Take()),
      borrowed_(buffer_ != nullptr),
      pool_(borrowed_ ? rapidjson::MemoryPoolAllocator<>(buffer_, kScratchBytes)
                      : rapidjson::MemoryPoolAllocator<>()),
      doc_(&pool_) {}

ScratchDocument::~ScratchDocument() {
  if (borrowed_) --scratch.in_use;
}

Status ParseObject(std::string_view text, rapidjson::Document& doc, std::string_view what) {
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return InvalidArgumentError("{}: malformed JSON at offset {}: {}", what, doc.GetErrorOffset(),
                                rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) {
    return InvalidArgumentError("{}: expected a JSON object, got {}", what, TypeName(doc));
  }
  return OkStatus();
}

std::string_view TypeName(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return v.IsInt64() ? "an integer" : "a number";
  }
  return "an unknown JSON type";
}

std::string JoinPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

FieldReader::FieldReader(const rapidjson::Value& object, std::string path)
    : object_(object), path_(std::move(path)) {}

bool FieldReader::Has(const char* key) const {
  auto it = object_.FindMember(key);
  return it != object_.MemberEnd() && !it->value.IsNull();
}

Result<const rapidjson::Value*> FieldReader::Find(const char* key, Presence p) const {
  auto it = object_.FindMember(key);
  if (it == object_.MemberEnd() || it->value.IsNull()) {
    if (p == Presence::kRequired) {
      return InvalidArgumentError("{}: required field is missing", JoinPath(path_, key));
    }
    return static_cast<const rapidjson::Value*>(nullptr);
  }
  return &it->value;
}

Status FieldReader::WrongType(const char* key, const rapidjson::Value& v,
                              std::string_view want) const {
  return InvalidArgumentError("{}: expected {}, got {}", JoinPath(path_, key), want, TypeName(v));
}

Status FieldReader::String(const char* key, std::string* out, Presence p) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->IsString()) return WrongType(key, *v, "a string");
  out->assign(v->GetString(), v->GetStringLength());
  return OkStatus();
}

Status FieldReader::Bool(const char* key, bool* out, Presence p) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->IsBool()) return WrongType(key, *v, "a boolean");
  *out = v->GetBool();
  return OkStatus();
}

Status FieldReader::Int64(const char* key, int64_t* out, Presence p) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->IsInt64()) {
    if (v->IsNumber()) {
      return InvalidArgumentError("{}: expected an integer that fits in 64 bits, got {}",
                                  JoinPath(path_, key), v->GetDouble());
    }
    return WrongType(key, *v, "an integer");
  }
  *out = v->GetInt64();
  return OkStatus();
}

Status FieldReader::Int32(const char* key, int32_t* out, Presence p) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->IsInt()) {
    if (v->IsNumber()) {
      return InvalidArgumentError(
          "{}: expected a 32-bit integer, got {}", JoinPath(path_, key),
          v->IsInt64() ? fmt::format("{}", v->GetInt64()) : fmt::format("{}", v->GetDouble()));
    }
    return WrongType(key, *v, "an integer");
  }
  *out = v->GetInt();
  return OkStatus();
}

Status FieldReader::OptionalInt64(const char* key, std::optional<int64_t>* out) {
  if (!Has(key)) {
    out->reset();
    return OkStatus();
  }
  int64_t v = 0;
  RETURN_IF_ERROR(Int64(key, &v));
  *out = v;
  return OkStatus();
}

Status FieldReader::OptionalInt32(const char* key, std::optional<int32_t>* out) {
  if (!Has(key)) {
    out->reset();
    return OkStatus();
  }
  int32_t v = 0;
  RETURN_IF_ERROR(Int32(key, &v));
  *out = v;
  return OkStatus();
}

Status FieldReader::Time(const char* key, api::Time* out, Presence p) {
  std::string s;
  RETURN_IF_ERROR(String(key, &s, p));
  if (!Has(key)) return OkStatus();
  Result<api::Time> t = ParseTime(s);
  if (!t.ok()) return t.status().WithContext(JoinPath(path_, key));
  *out = *t;
  return OkStatus();
}

Status FieldReader::OptionalTime(const char* key, std::optional<api::Time>* out) {
  if (!Has(key)) {
    out->reset();
    return OkStatus();
  }
  api::Time t{};
  RETURN_IF_ERROR(Time(key, &t));
  *out = t;
  return OkStatus();
}

Status FieldReader::StringMap(const char* key, std::map<std::string, std::string>* out) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, Presence::kOptional));
  out->clear();
  if (v == nullptr) return OkStatus();
  if (!v->IsObject()) return WrongType(key, *v, "an object");
  for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    if (!it->value.IsString()) {
      return InvalidArgumentError("{}.{}: expected a string, got {}", JoinPath(path_, key), name,
                                  TypeName(it->value));
    }
    (*out)[name].assign(it->value.GetString(), it->value.GetStringLength());
  }
  return OkStatus();
}

Status FieldReader::StringList(const char* key, std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, Presence::kOptional));
  out->clear();
  if (v == nullptr) return OkStatus();
  if (!v->IsArray()) return WrongType(key, *v, "an array");
  out->reserve(v->Size());
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const auto& item = (*v)[i];
    if (!item.IsString()) {
      return InvalidArgumentError("{}[{}]: expected a string, got {}", JoinPath(path_, key), i,
                                  TypeName(item));
    }
    out->emplace_back(item.GetString(), item.GetStringLength());
  }
  return OkStatus();
}

Status FieldReader::Int32List(const char* key, std::vector<int32_t>* out) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, Presence::kOptional));
  out->clear();
  if (v == nullptr) return OkStatus();
  if (!v->IsArray()) return WrongType(key, *v, "an array");
  out->reserve(v->Size());
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const auto& item = (*v)[i];
    if (!item.IsInt()) {
      return InvalidArgumentError("{}[{}]: expected a 32-bit integer, got {}", JoinPath(path_, key),
                                  i, TypeName(item));
    }
    out->push_back(item.GetInt());
  }
  return OkStatus();
}

Status FieldReader::Object(const char* key, const std::function<Status(FieldReader&)>& fn,
                           Presence p) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->IsObject()) return WrongType(key, *v, "an object");
  FieldReader nested(*v, JoinPath(path_, key));
  return fn(nested);
}

size_t FieldReader::ArraySize(const char* key) const {
  auto it = object_.FindMember(key);
  if (it == object_.MemberEnd() || !it->value.IsArray()) return 0;
  return it->value.Size();
}

Status FieldReader::ObjectArray(const char* key, const std::function<Status(FieldReader&)>& fn) {
  ASSIGN_OR_RETURN(const rapidjson::Value* v, Find(key, Presence::kOptional));
  if (v == nullptr) return OkStatus();
  if (!v->IsArray()) return WrongType(key, *v, "an array");
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const auto& item = (*v)[i];
    std::string item_path = fmt::format("{}[{}]", JoinPath(path_, key), i);
    if (!item.IsObject()) {
      return InvalidArgumentError("{}: expected an object, got {}", item_path, TypeName(item));
    }
    FieldReader nested(item, item_path);
    RETURN_IF_ERROR(fn(nested));
  }
  return OkStatus();
}

std::string FormatTime(api::Time t) { return time::FormatRfc3339(t); }

Result<api::Time> ParseTime(std::string_view s) {
  ASSIGN_OR_RETURN(auto tp, time::ParseRfc3339(s));
  return std::chrono::floor<std::chrono::seconds>(tp);
}

void WriteString(JsonWriter& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void WriteStringIfNotEmpty(JsonWriter& w, const char* key, std::string_view v) {
  if (!v.empty()) WriteString(w, key, v);
}

void WriteInt64(JsonWriter& w, const char* key, int64_t v) {
  w.Key(key);
  w.Int64(v);
}

void WriteTime(JsonWriter& w, const char* key, api::Time t) { WriteString(w, key, FormatTime(t)); }

void WriteStringMapIfNotEmpty(JsonWriter& w, const char* key,
                              const std::map<std::string, std::string>& m) {
  if (m.empty()) return;
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : m) WriteString(w, k.c_str(), v);
  w.EndObject();
}

void WriteStringListIfNotEmpty(JsonWriter& w, const char* key, const std::vector<std::string>& v) {
  if (v.empty()) return;
  w.Key(key);
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

void WriteInt32List(JsonWriter& w, const char* key, const std::vector<int32_t>& v) {
  w.Key(key);
  w.StartArray();
  for (int32_t i : v) w.Int(i);
  w.EndArray();
}

}  // namespace common::api::json
