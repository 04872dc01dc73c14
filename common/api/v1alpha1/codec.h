// JSON codecs for the csi.meshstor.io/v1alpha1 types. Decoding never crashes and never fills in
// a silent default for a malformed field: wrong types, unknown enum values, malformed times and
// missing required fields give InvalidArgument naming the field path. Encoding writes the form
// the API server stores (empty optional fields omitted, times in whole seconds).
//
// Thread contract: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace common::api::v1alpha1 {

Result<MeshStorVolume> DecodeMeshStorVolume(std::string_view json);
std::string EncodeMeshStorVolume(const MeshStorVolume& v);

Result<MeshStorNodeDevice> DecodeMeshStorNodeDevice(std::string_view json);
std::string EncodeMeshStorNodeDevice(const MeshStorNodeDevice& d);

}  // namespace common::api::v1alpha1
