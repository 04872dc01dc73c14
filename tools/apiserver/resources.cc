#include "tools/apiserver/resources.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "tools/apiserver/validation.h"

namespace tools::apiserver {
namespace {

using json::Value;

ResourceInfo Builtin(std::string group, std::string version, std::string plural,
                     std::string singular, std::string kind, bool namespaced) {
  ResourceInfo r;
  r.group = std::move(group);
  r.version = std::move(version);
  r.plural = std::move(plural);
  r.singular = std::move(singular);
  r.list_kind = kind + "List";
  r.kind = std::move(kind);
  r.namespaced = namespaced;
  r.strategic_merge_patch = true;
  return r;
}

std::vector<std::string> StringList(const Value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->IsArray()) return out;
  for (const auto& e : v->GetArray()) {
    if (e.IsString()) out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Sets condition `type` in status.conditions, keeping lastTransitionTime when status is unchanged.
void SetCondition(Value& status, std::string_view type, std::string_view cond_status,
                  std::string_view reason, std::string_view message, const std::string& now,
                  json::Allocator& a) {
  Value* conditions = json::FindMutable(status, "conditions");
  if (conditions == nullptr || !conditions->IsArray()) {
    json::SetMember(status, "conditions", Value(rapidjson::kArrayType), a);
    conditions = json::FindMutable(status, "conditions");
  }
  Value* existing = nullptr;
  for (auto& c : conditions->GetArray()) {
    if (json::GetString(c, "type") == type) existing = &c;
  }
  std::string transition = now;
  if (existing != nullptr && json::GetString(*existing, "status") == cond_status &&
      !json::GetString(*existing, "lastTransitionTime").empty()) {
    transition = json::GetString(*existing, "lastTransitionTime");
  }
  Value c(rapidjson::kObjectType);
  json::SetString(c, "type", type, a);
  json::SetString(c, "status", cond_status, a);
  json::SetString(c, "lastTransitionTime", transition, a);
  json::SetString(c, "reason", reason, a);
  json::SetString(c, "message", message, a);
  if (existing != nullptr) {
    *existing = std::move(c);
  } else {
    conditions->PushBack(std::move(c), a);
  }
}

}  // namespace

std::string ResourceInfo::ApiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceInfo::QualifiedResource() const {
  return group.empty() ? plural : plural + "." + group;
}

std::vector<ResourceInfo> BuiltinResources() {
  std::vector<ResourceInfo> out;

  ResourceInfo ns = Builtin("", "v1", "namespaces", "namespace", "Namespace", false);
  ns.short_names = {"ns"};
  ns.status_subresource = true;
  ns.name_is_dns_label = true;
  ns.extra_field_selectors = {"status.phase"};
  out.push_back(ns);

  ResourceInfo node = Builtin("", "v1", "nodes", "node", "Node", false);
  node.short_names = {"no"};
  node.status_subresource = true;
  node.extra_field_selectors = {"spec.unschedulable"};
  out.push_back(node);

  ResourceInfo cm = Builtin("", "v1", "configmaps", "configmap", "ConfigMap", true);
  cm.short_names = {"cm"};
  out.push_back(cm);

  ResourceInfo ev = Builtin("", "v1", "events", "event", "Event", true);
  ev.short_names = {"ev"};
  ev.allow_create_on_update = true;
  ev.extra_field_selectors = {"involvedObject.kind",
                              "involvedObject.namespace",
                              "involvedObject.name",
                              "involvedObject.uid",
                              "involvedObject.apiVersion",
                              "involvedObject.resourceVersion",
                              "involvedObject.fieldPath",
                              "reason",
                              "reportingComponent",
                              "source",
                              "type"};
  out.push_back(ev);

  ResourceInfo lease = Builtin("coordination.k8s.io", "v1", "leases", "lease", "Lease", true);
  lease.allow_create_on_update = true;
  out.push_back(lease);

  ResourceInfo ev2 = Builtin("events.k8s.io", "v1", "events", "event", "Event", true);
  ev2.short_names = {"ev"};
  ev2.allow_create_on_update = true;
  out.push_back(ev2);

  ResourceInfo crd = Builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                             "customresourcedefinition", "CustomResourceDefinition", false);
  crd.short_names = {"crd", "crds"};
  crd.categories = {"api-extensions"};
  crd.status_subresource = true;
  crd.uses_generation = true;
  crd.allow_unconditional_update = false;
  crd.strategic_merge_patch = false;
  out.push_back(crd);
  return out;
}

std::vector<ResourceInfo> ResourcesFromCrd(const Value& crd, std::vector<FieldError>* errors) {
  std::vector<ResourceInfo> out;
  const Value* spec = json::Find(crd, "spec");
  if (spec == nullptr || !spec->IsObject()) {
    errors->push_back(FieldError::Required("spec"));
    return out;
  }
  const std::string group = json::GetString(*spec, "group");
  if (group.empty()) {
    errors->push_back(FieldError::Required("spec.group"));
  } else if (group.find('.') == std::string::npos) {
    errors->push_back(FieldError::Invalid("spec.group", json::GoQuote(group),
                                          "should be a domain with at least one dot"));
  } else {
    for (const std::string& e : IsDns1123Subdomain(group)) {
      errors->push_back(FieldError::Invalid("spec.group", json::GoQuote(group), e));
    }
  }
  const Value* names = json::Find(*spec, "names");
  const Value empty_object(rapidjson::kObjectType);
  if (names == nullptr) names = &empty_object;
  const std::string plural = json::GetString(*names, "plural");
  const std::string kind = json::GetString(*names, "kind");
  std::string singular = json::GetString(*names, "singular");
  std::string list_kind = json::GetString(*names, "listKind");
  if (plural.empty()) {
    errors->push_back(FieldError::Required("spec.names.plural"));
  } else {
    for (const std::string& e : IsDns1123Label(plural)) {
      errors->push_back(FieldError::Invalid("spec.names.plural", json::GoQuote(plural), e));
    }
  }
  if (kind.empty()) errors->push_back(FieldError::Required("spec.names.kind"));
  if (singular.empty()) singular = Lower(kind);
  if (list_kind.empty()) list_kind = kind + "List";

  const Value* metadata = json::Find(crd, "metadata");
  const std::string name = metadata != nullptr ? json::GetString(*metadata, "name") : "";
  if (!plural.empty() && !group.empty() && name != plural + "." + group) {
    errors->push_back(FieldError::Invalid("metadata.name", json::GoQuote(name),
                                          "must be spec.names.plural+\".\"+spec.group"));
  }
  const std::string scope = json::GetString(*spec, "scope");
  if (scope.empty()) {
    errors->push_back(FieldError::Required("spec.scope"));
  } else if (scope != "Cluster" && scope != "Namespaced") {
    errors->push_back(
        FieldError::NotSupported("spec.scope", json::GoQuote(scope), {"Cluster", "Namespaced"}));
  }
  if (const Value* p = json::Find(*spec, "preserveUnknownFields");
      p && p->IsBool() && p->GetBool()) {
    errors->push_back(FieldError::Invalid("spec.preserveUnknownFields", "true",
                                          "cannot set to true, set x-kubernetes-preserve-unknown-"
                                          "fields to true in spec.versions[*].schema instead"));
  }
  const Value* versions = json::Find(*spec, "versions");
  if (versions == nullptr || !versions->IsArray() || versions->Empty()) {
    errors->push_back(FieldError::Invalid("spec.versions", "[]interface {}{}",
                                          "must have exactly one version marked as storage "
                                          "version"));
    return out;
  }
  int storage_count = 0;
  rapidjson::SizeType i = 0;
  for (const auto& v : versions->GetArray()) {
    const std::string vpath = fmt::format("spec.versions[{}]", i++);
    const std::string vname = json::GetString(v, "name");
    if (vname.empty()) {
      errors->push_back(FieldError::Required(vpath + ".name"));
      continue;
    }
    for (const std::string& e : IsDns1123Label(vname)) {
      errors->push_back(FieldError::Invalid(vpath + ".name", json::GoQuote(vname), e));
    }
    const Value* storage = json::Find(v, "storage");
    if (storage != nullptr && storage->IsBool() && storage->GetBool()) ++storage_count;
    const Value* served = json::Find(v, "served");
    const Value* openapi = nullptr;
    if (const Value* schema = json::Find(v, "schema"))
      openapi = json::Find(*schema, "openAPIV3Schema");
    if (openapi == nullptr) {
      errors->push_back(
          FieldError::Required(vpath + ".schema.openAPIV3Schema", "schemas are required"));
      continue;
    }
    std::shared_ptr<const Schema> parsed =
        Schema::Parse(*openapi, vpath + ".schema.openAPIV3Schema", errors);
    if (parsed == nullptr || served == nullptr || !served->IsBool() || !served->GetBool()) continue;

    ResourceInfo r;
    r.group = group;
    r.version = vname;
    r.plural = plural;
    r.singular = singular;
    r.kind = kind;
    r.list_kind = list_kind;
    r.namespaced = scope == "Namespaced";
    r.short_names = StringList(json::Find(*names, "shortNames"));
    r.categories = StringList(json::Find(*names, "categories"));
    if (const Value* sub = json::Find(v, "subresources")) {
      r.status_subresource = json::Find(*sub, "status") != nullptr;
    }
    r.custom = true;
    r.uses_generation = true;
    r.allow_unconditional_update = false;
    r.allow_create_on_update = false;
    r.strategic_merge_patch = false;
    r.schema = std::move(parsed);
    r.crd_name = name;
    out.push_back(std::move(r));
  }
  if (storage_count != 1) {
    errors->push_back(FieldError::Invalid("spec.versions", json::GoValue(*versions),
                                          "must have exactly one version marked as storage "
                                          "version"));
  }
  return out;
}

void PrepareCrd(Value& crd, const Value* old, const std::string& now, json::Allocator& a) {
  Value& spec = json::EnsureObject(crd, "spec", a);
  Value& names = json::EnsureObject(spec, "names", a);
  const std::string kind = json::GetString(names, "kind");
  if (json::GetString(names, "singular").empty())
    json::SetString(names, "singular", Lower(kind), a);
  if (json::GetString(names, "listKind").empty())
    json::SetString(names, "listKind", kind + "List", a);
  Value& conversion = json::EnsureObject(spec, "conversion", a);
  if (json::GetString(conversion, "strategy").empty()) {
    json::SetString(conversion, "strategy", "None", a);
  }

  // The status is computed here, as the CRD controllers of kube-apiserver would.
  Value status(rapidjson::kObjectType);
  if (old != nullptr) {
    if (const Value* old_status = json::Find(*old, "status")) status.CopyFrom(*old_status, a);
  }
  if (!status.IsObject()) status.SetObject();
  json::SetMember(status, "acceptedNames", Value(names, a), a);
  std::vector<std::string> stored = StringList(json::Find(status, "storedVersions"));
  if (const Value* versions = json::Find(spec, "versions"); versions && versions->IsArray()) {
    for (const auto& v : versions->GetArray()) {
      const Value* storage = json::Find(v, "storage");
      std::string vname = json::GetString(v, "name");
      if (storage != nullptr && storage->IsBool() && storage->GetBool() &&
          std::find(stored.begin(), stored.end(), vname) == stored.end()) {
        stored.push_back(vname);
      }
    }
  }
  Value stored_value(rapidjson::kArrayType);
  for (const std::string& s : stored) {
    stored_value.PushBack(Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a), a);
  }
  json::SetMember(status, "storedVersions", std::move(stored_value), a);
  SetCondition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now, a);
  SetCondition(status, "Established", "True", "InitialNamesAccepted",
               "the initial names have been accepted", now, a);
  json::SetMember(crd, "status", std::move(status), a);
}

}  // namespace tools::apiserver
