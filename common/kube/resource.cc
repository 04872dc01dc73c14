#include "common/kube/resource.h"

#include <fmt/format.h>

namespace common::kube {

std::string ResourceType::ApiVersion() const {
  return group.empty() ? version : fmt::format("{}/{}", group, version);
}

std::string ResourceType::Path(std::string_view ns, std::string_view name,
                               std::string_view subresource) const {
  std::string path =
      group.empty() ? fmt::format("/api/{}", version) : fmt::format("/apis/{}/{}", group, version);
  if (namespaced && !ns.empty()) path += fmt::format("/namespaces/{}", ns);
  path += "/" + plural;
  if (!name.empty()) {
    path += "/";
    path += name;
    if (!subresource.empty()) {
      path += "/";
      path += subresource;
    }
  }
  return path;
}

const ResourceType& MeshStorVolumes() {
  static const ResourceType* const kType =
      new ResourceType{"csi.meshstor.io", "v1alpha1", "meshstorvolumes", "MeshStorVolume", false};
  return *kType;
}

const ResourceType& MeshStorNodeDevices() {
  static const ResourceType* const kType = new ResourceType{
      "csi.meshstor.io", "v1alpha1", "meshstornodedevices", "MeshStorNodeDevice", false};
  return *kType;
}

const ResourceType& Nodes() {
  static const ResourceType* const kType = new ResourceType{"", "v1", "nodes", "Node", false};
  return *kType;
}

const ResourceType& Leases() {
  static const ResourceType* const kType =
      new ResourceType{"coordination.k8s.io", "v1", "leases", "Lease", true};
  return *kType;
}

const ResourceType& Events() {
  static const ResourceType* const kType =
      new ResourceType{"events.k8s.io", "v1", "events", "Event", true};
  return *kType;
}

const ResourceType& CoreEvents() {
  static const ResourceType* const kType = new ResourceType{"", "v1", "events", "Event", true};
  return *kType;
}

const ResourceType& Namespaces() {
  static const ResourceType* const kType =
      new ResourceType{"", "v1", "namespaces", "Namespace", false};
  return *kType;
}

const ResourceType& CustomResourceDefinitions() {
  static const ResourceType* const kType = new ResourceType{
      "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false};
  return *kType;
}

std::string ObjectKey::ToString() const {
  return namespace_.empty() ? name : fmt::format("{}/{}", namespace_, name);
}

ObjectKey ObjectKey::Parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return ObjectKey{"", std::string(s)};
  return ObjectKey{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

}  // namespace common::kube
