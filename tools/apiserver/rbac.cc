#include "tools/apiserver/rbac.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/config/yaml_json.h"
#include "tools/apiserver/json_util.h"

namespace tools::apiserver {
namespace {

using common::InvalidArgumentError;
using common::OkStatus;
using common::Status;

bool Has(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool HasOrStar(const std::vector<std::string>& list, std::string_view value) {
  return Has(list, "*") || Has(list, value);
}

Status Strings(const json::Value& obj, std::string_view key, std::vector<std::string>* out,
               std::string_view where) {
  out->clear();
  const json::Value* v = json::Find(obj, key);
  if (v == nullptr || v->IsNull()) return OkStatus();
  if (!v->IsArray()) return InvalidArgumentError("{}: {} must be a list of strings", where, key);
  for (const auto& s : v->GetArray()) {
    if (!s.IsString()) return InvalidArgumentError("{}: {} must be a list of strings", where, key);
    out->emplace_back(s.GetString(), s.GetStringLength());
  }
  return OkStatus();
}

}  // namespace

UserInfo ServiceAccountUser(std::string_view ns, std::string_view name) {
  return {fmt::format("system:serviceaccount:{}:{}", ns, name),
          {"system:serviceaccounts", fmt::format("system:serviceaccounts:{}", ns),
           "system:authenticated"}};
}

std::string VerbOf(std::string_view method, bool watch, bool has_name) {
  if (method == "GET") return watch ? "watch" : (has_name ? "get" : "list");
  if (method == "POST") return "create";
  if (method == "PUT") return "update";
  if (method == "PATCH") return "patch";
  if (method == "DELETE") return has_name ? "delete" : "deletecollection";
  return std::string(method);
}

Status Authorizer::AddFile(const std::string& path, std::string_view default_namespace) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("RBAC file {}: cannot be read", path);
  std::ostringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(auto docs, common::config::YamlToJsonDocuments(text.str(), path));
  for (size_t i = 0; i < docs.size(); ++i) {
    RETURN_IF_ERROR(AddDocument(docs[i], default_namespace, fmt::format("{} #{}", path, i + 1)));
  }
  return OkStatus();
}

Status Authorizer::AddDocument(std::string_view text, std::string_view default_namespace,
                               std::string_view source) {
  json::Document doc;
  RETURN_IF_ERROR(json::Parse(text, &doc).WithContext(std::string(source)));
  if (!doc.IsObject()) return OkStatus();  // an empty document
  const std::string kind = json::GetString(doc, "kind");
  if (kind != "Role" && kind != "ClusterRole" && kind != "RoleBinding" &&
      kind != "ClusterRoleBinding") {
    return OkStatus();
  }
  const json::Value* meta = json::Find(doc, "metadata");
  std::string name = meta ? json::GetString(*meta, "name") : "";
  std::string ns = meta ? json::GetString(*meta, "namespace") : "";
  const std::string where = fmt::format("{}: {} {}", source, kind, name);
  if (name.empty()) return InvalidArgumentError("{}: metadata.name is missing", where);
  const bool namespaced = kind == "Role" || kind == "RoleBinding";
  if (namespaced && ns.empty()) ns = std::string(default_namespace);

  if (kind == "Role" || kind == "ClusterRole") {
    std::vector<PolicyRule> rules;
    if (const json::Value* rs = json::Find(doc, "rules"); rs != nullptr && rs->IsArray()) {
      for (const auto& r : rs->GetArray()) {
        PolicyRule rule;
        RETURN_IF_ERROR(Strings(r, "verbs", &rule.verbs, where));
        RETURN_IF_ERROR(Strings(r, "apiGroups", &rule.api_groups, where));
        RETURN_IF_ERROR(Strings(r, "resources", &rule.resources, where));
        RETURN_IF_ERROR(Strings(r, "resourceNames", &rule.resource_names, where));
        if (rule.verbs.empty()) return InvalidArgumentError("{}: a rule has no verbs", where);
        rules.push_back(std::move(rule));
      }
    }
    if (namespaced) {
      roles_[{ns, name}] = std::move(rules);
    } else {
      cluster_roles_[name] = std::move(rules);
    }
    return OkStatus();
  }
  Binding b;
  b.ns = namespaced ? ns : "";
  const json::Value* ref = json::Find(doc, "roleRef");
  if (ref == nullptr || !ref->IsObject()) return InvalidArgumentError("{}: no roleRef", where);
  b.role_kind = json::GetString(*ref, "kind");
  b.role_name = json::GetString(*ref, "name");
  if (b.role_kind != "ClusterRole" && !(namespaced && b.role_kind == "Role")) {
    return InvalidArgumentError("{}: roleRef.kind {} is not allowed here", where, b.role_kind);
  }
  if (const json::Value* ss = json::Find(doc, "subjects"); ss != nullptr && ss->IsArray()) {
    for (const auto& s : ss->GetArray()) {
      Subject subject{json::GetString(s, "kind"), json::GetString(s, "name"),
                      json::GetString(s, "namespace")};
      if (subject.kind == "ServiceAccount" && subject.ns.empty()) {
        if (!namespaced) {
          return InvalidArgumentError("{}: ServiceAccount subject {} needs a namespace", where,
                                      subject.name);
        }
        subject.ns = ns;
      }
      b.subjects.push_back(std::move(subject));
    }
  }
  bindings_.push_back(std::move(b));
  return OkStatus();
}

void Authorizer::AddToken(std::string token, UserInfo user) {
  tokens_[std::move(token)] = std::move(user);
}

const UserInfo* Authorizer::Authenticate(std::string_view header) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!header.starts_with(kBearer)) return nullptr;
  auto it = tokens_.find(header.substr(kBearer.size()));
  return it == tokens_.end() ? nullptr : &it->second;
}

bool Authorizer::Matches(const Subject& s, const UserInfo& user) {
  if (s.kind == "User") return s.name == user.name;
  if (s.kind == "Group") return Has(user.groups, s.name);
  if (s.kind == "ServiceAccount") return ServiceAccountUser(s.ns, s.name).name == user.name;
  return false;
}

bool Authorizer::RuleAllows(const PolicyRule& rule, const RequestAttributes& r) {
  if (!HasOrStar(rule.verbs, r.verb) || !HasOrStar(rule.api_groups, r.group)) return false;
  const std::string resource =
      r.subresource.empty() ? r.resource : fmt::format("{}/{}", r.resource, r.subresource);
  bool resource_ok = Has(rule.resources, "*") || Has(rule.resources, resource);
  if (!resource_ok && !r.subresource.empty()) {
    resource_ok = Has(rule.resources, fmt::format("*/{}", r.subresource));
  }
  if (!resource_ok) return false;
  return rule.resource_names.empty() || (!r.name.empty() && Has(rule.resource_names, r.name));
}

bool Authorizer::Allowed(const UserInfo& user, const RequestAttributes& request) const {
  if (Has(user.groups, "system:masters")) return true;
  for (const Binding& b : bindings_) {
    if (!b.ns.empty() && b.ns != request.ns) continue;  // a RoleBinding grants in its namespace
    if (std::none_of(b.subjects.begin(), b.subjects.end(),
                     [&](const Subject& s) { return Matches(s, user); })) {
      continue;
    }
    const std::vector<PolicyRule>* rules = nullptr;
    if (b.role_kind == "ClusterRole") {
      auto it = cluster_roles_.find(b.role_name);
      if (it != cluster_roles_.end()) rules = &it->second;
    } else {
      auto it = roles_.find({b.ns, b.role_name});
      if (it != roles_.end()) rules = &it->second;
    }
    if (rules == nullptr) continue;
    for (const PolicyRule& rule : *rules) {
      if (RuleAllows(rule, request)) return true;
    }
  }
  return false;
}

std::string Authorizer::Reason(const UserInfo& user, const RequestAttributes& r) {
  std::string resource =
      r.subresource.empty() ? r.resource : fmt::format("{}/{}", r.resource, r.subresource);
  std::string scope =
      r.ns.empty() ? "at the cluster scope" : fmt::format("in the namespace \"{}\"", r.ns);
  return fmt::format("User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {}", user.name,
                     r.verb, resource, r.group, scope);
}

}  // namespace tools::apiserver
