// YAML → JSON conversion, for manifests and examples written in YAML (CRDs, kubeconfig-like
// files, test fixtures) that the rest of the code reads as JSON.
//
// Scalars resolve by the YAML 1.2 core schema, as Kubernetes' YAML reader does for the cases we
// use: quoted scalars are strings; plain `null`/`~`/empty are null, `true`/`false` (any case form
// YAML allows) are booleans, decimal/0x/0o integers are numbers, decimals with `.` or an exponent
// and `.inf`/`.nan` are floating point; anything else is a string. Mapping keys must be scalars
// and unique. Integers that do not fit in int64 are an error rather than a silent float.
//
// Thread contract: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace common::config {

// Converts a single YAML document to compact JSON text. An empty document gives "null".
// InvalidArgument (naming `source` and the line) on syntax errors, duplicate keys, non-scalar
// keys, or more than one document.
Result<std::string> YamlToJson(std::string_view yaml, std::string_view source = "<yaml>");

// Converts every document of a YAML stream (separated by `---`); empty documents are skipped.
Result<std::vector<std::string>> YamlToJsonDocuments(std::string_view yaml,
                                                     std::string_view source = "<yaml>");

// Reads a file and converts its single document. NotFound when the file cannot be read.
Result<std::string> YamlFileToJson(const std::string& path);

}  // namespace common::config
