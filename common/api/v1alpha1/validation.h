// Rules on changes to existing objects that a schema on one object cannot express (the CRDs
// state them as x-kubernetes-validations transition rules). The API server enforces them; the
// operator and the API test server check them too, with the same messages.
//
// Thread contract: free functions without shared state.
#pragma once

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace common::api::v1alpha1 {

// InvalidArgument naming the field when `updated` changes what may not change:
// spec.sectorSize and spec.stripeWidth (immutable), spec.capacityBytes (cannot shrink),
// spec.formattedAt (set once).
Status ValidateVolumeUpdate(const MeshStorVolumeSpec& old_spec, const MeshStorVolumeSpec& updated);

// spec.nodeName and spec.device are immutable.
Status ValidateNodeDeviceUpdate(const MeshStorNodeDeviceSpec& old_spec,
                                const MeshStorNodeDeviceSpec& updated);

}  // namespace common::api::v1alpha1
