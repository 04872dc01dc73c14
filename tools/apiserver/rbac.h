// RBAC for the API test server: bearer tokens name users, and Role/ClusterRole rules granted by
// RoleBinding/ClusterRoleBinding decide each resource request the way kube-apiserver's RBAC
// authorizer does (union of every rule bound to the user or one of its groups; no deny).
//
// Used to prove a binary's requests stay within the RBAC of the manifests: the server loads
// manifests/base/rbac-*.yaml and the binary authenticates with its ServiceAccount's token.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace tools::apiserver {

struct UserInfo {
  std::string name;  // "system:serviceaccount:meshstor-system:meshstor-node"
  std::vector<std::string> groups;
};

// The user of a ServiceAccount token, with the groups kube-apiserver gives it.
UserInfo ServiceAccountUser(std::string_view ns, std::string_view name);

// What a resource request asks, as kube-apiserver's request info resolver sees it.
struct RequestAttributes {
  std::string verb;  // get, list, watch, create, update, patch, delete, deletecollection
  std::string group;
  std::string resource;  // plural
  std::string subresource;
  std::string ns;  // "" for cluster-scoped requests
  std::string name;
};

// "get" for GET of a name, "list"/"watch" for collections, "create", "update", "patch",
// "delete" or "deletecollection".
std::string VerbOf(std::string_view method, bool watch, bool has_name);

struct PolicyRule {
  std::vector<std::string> verbs;
  std::vector<std::string> api_groups;
  std::vector<std::string> resources;       // "plural" or "plural/subresource"; "*" for any
  std::vector<std::string> resource_names;  // empty: any
};

class Authorizer {
 public:
  // Adds every Role, ClusterRole, RoleBinding and ClusterRoleBinding among the YAML or JSON
  // documents of `path`; other kinds are ignored. Namespaced objects without a namespace get
  // `default_namespace`. InvalidArgument naming the file and the object on a malformed one.
  common::Status AddFile(const std::string& path, std::string_view default_namespace);
  common::Status AddDocument(std::string_view json, std::string_view default_namespace,
                             std::string_view source);

  // Bearer token → user. Tokens not registered are unauthenticated (401).
  void AddToken(std::string token, UserInfo user);
  // The user of an "Authorization: Bearer ..." header value, or nullptr.
  const UserInfo* Authenticate(std::string_view authorization_header) const;

  // Members of group "system:masters" may do anything, as in Kubernetes.
  bool Allowed(const UserInfo& user, const RequestAttributes& request) const;
  // kube-apiserver's reason text: `User "u" cannot list resource "nodes" in API group "" at
  // the cluster scope`.
  static std::string Reason(const UserInfo& user, const RequestAttributes& request);

 private:
  struct Subject {
    std::string kind;  // User, Group, ServiceAccount
    std::string name;
    std::string ns;
  };
  struct Binding {
    std::string ns;  // "" for a ClusterRoleBinding
    std::string role_kind;
    std::string role_name;
    std::vector<Subject> subjects;
  };
  static bool Matches(const Subject& s, const UserInfo& user);
  static bool RuleAllows(const PolicyRule& rule, const RequestAttributes& request);

  std::map<std::string, std::vector<PolicyRule>> cluster_roles_;
  std::map<std::pair<std::string, std::string>, std::vector<PolicyRule>> roles_;  // (ns, name)
  std::vector<Binding> bindings_;
  std::map<std::string, UserInfo, std::less<>> tokens_;
};

}  // namespace tools::apiserver
