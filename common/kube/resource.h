// Names of Kubernetes resources and objects, and the REST paths built from them.
//
// Thread contract: value types.
#pragma once

#include <string>
#include <string_view>

namespace common::kube {

// A resource type: group/version/plural plus its kind and scope.
struct ResourceType {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string plural;   // "meshstorvolumes"
  std::string kind;     // "MeshStorVolume"
  bool namespaced = false;

  // "csi.meshstor.io/v1alpha1" or "v1" for the core group.
  std::string ApiVersion() const;

  // REST path: /api/v1/... for the core group, /apis/<group>/<version>/... otherwise, with
  // namespaces/<ns>/ for namespaced types (omitted when ns is empty: all namespaces), then the
  // plural, the name and the subresource when given.
  std::string Path(std::string_view ns, std::string_view name = {},
                   std::string_view subresource = {}) const;

  bool operator==(const ResourceType&) const = default;
};

// The resource types MeshStor uses.
const ResourceType& MeshStorVolumes();
const ResourceType& MeshStorNodeDevices();
const ResourceType& Nodes();
const ResourceType& Leases();      // coordination.k8s.io/v1, namespaced
const ResourceType& Events();      // events.k8s.io/v1, namespaced
const ResourceType& CoreEvents();  // v1 events, namespaced
const ResourceType& Namespaces();
const ResourceType& CustomResourceDefinitions();

// Identifies one object; namespace_ is empty for cluster-scoped objects.
struct ObjectKey {
  std::string namespace_;
  std::string name;

  // "ns/name", or "name" when cluster-scoped (the work-queue key format).
  std::string ToString() const;
  // Inverse of ToString().
  static ObjectKey Parse(std::string_view s);

  bool operator==(const ObjectKey&) const = default;
  auto operator<=>(const ObjectKey&) const = default;
};

}  // namespace common::kube
