// The resource types the test API server serves: the built-in ones MeshStor uses (namespaces,
// nodes, configmaps, events, leases, CustomResourceDefinitions) and those defined by CRDs, with
// the per-type behaviour kube-apiserver's registry strategies give them (generation tracking,
// unconditional updates, create-on-update, status subresource, supported field selectors).
//
// Thread contract: ResourceInfo is an immutable value once built; free functions are pure.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/apiserver/api_errors.h"
#include "tools/apiserver/json_util.h"
#include "tools/apiserver/schema.h"

namespace tools::apiserver {

inline constexpr std::string_view kCrdCleanupFinalizer =
    "customresourcecleanup.apiextensions.k8s.io";
inline constexpr std::string_view kNamespaceFinalizer = "kubernetes";

struct ResourceInfo {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string plural;
  std::string singular;
  std::string kind;
  std::string list_kind;
  bool namespaced = false;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool status_subresource = false;
  bool custom = false;                     // served from a CRD
  bool uses_generation = false;            // metadata.generation tracks spec changes
  bool allow_unconditional_update = true;  // PUT without metadata.resourceVersion
  bool allow_create_on_update = false;     // PUT of a missing object creates it
  bool strategic_merge_patch = false;      // accepted (applied as a JSON merge patch)
  bool name_is_dns_label = false;          // else a DNS subdomain
  // Field selector keys beyond metadata.name and metadata.namespace, with the JSON path each
  // reads ("involvedObject.name" → involvedObject/name).
  std::vector<std::string> extra_field_selectors;
  std::shared_ptr<const Schema> schema;  // custom resources only
  std::string crd_name;                  // the defining CRD (custom resources only)

  // "csi.meshstor.io/v1alpha1", or "v1" for the core group.
  std::string ApiVersion() const;
  // Objects are stored once per group and resource, whatever the version.
  std::string StorageKey() const { return group + "/" + plural; }
  // "meshstorvolumes.csi.meshstor.io" or "configmaps" (error messages).
  std::string QualifiedResource() const;
};

// The built-in resource types, CustomResourceDefinitions included.
std::vector<ResourceInfo> BuiltinResources();

// Validates a CustomResourceDefinition object (apiextensions.k8s.io/v1) the way
// kube-apiserver does for the fields this server relies on, appending problems to `errors`
// with kube field paths, and returns the resource types it defines (one per served version).
std::vector<ResourceInfo> ResourcesFromCrd(const json::Value& crd, std::vector<FieldError>* errors);

// Fills in what kube-apiserver defaults or computes on a CRD: names.singular and listKind,
// conversion strategy, and a status with acceptedNames, storedVersions and the conditions
// NamesAccepted=True and Established=True (lastTransitionTime `now`, kept when unchanged).
void PrepareCrd(json::Value& crd, const json::Value* old, const std::string& now,
                json::Allocator& a);

}  // namespace tools::apiserver
