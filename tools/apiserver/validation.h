// Name and label syntax checks of Kubernetes (k8s.io/apimachinery/pkg/util/validation), with
// the same error texts, used for object names, label and annotation keys, label values and
// selectors.
//
// Thread contract: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tools::apiserver {

// Each returns the list of problems, empty when the value is valid.
std::vector<std::string> IsDns1123Subdomain(std::string_view value);
std::vector<std::string> IsDns1123Label(std::string_view value);
// A label or annotation key: an optional DNS subdomain prefix and '/', then a name part.
std::vector<std::string> IsQualifiedName(std::string_view value);
std::vector<std::string> IsValidLabelValue(std::string_view value);

// Object name checks: `prefix` is true for metadata.generateName (a trailing '-' is allowed).
std::vector<std::string> NameIsDnsSubdomain(std::string_view name, bool prefix);
std::vector<std::string> NameIsDnsLabel(std::string_view name, bool prefix);

}  // namespace tools::apiserver
