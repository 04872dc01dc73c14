// The volume ID of a CSI volume name: the one MeshStorVolume name every binary accepts. CSI lets
// the CO pick any name of up to 128 bytes; MeshStorVolume names must be DNS-1123 subdomains, and
// the agent encodes the volume name in each member's GPT partition name (36 UTF-16 characters,
// agent/sys/partitions.h), which leaves room for "pvc-<uuid>" (a compact form) or for at most 26
// characters of [a-z0-9.-] (form "ms1n:<volume>:<index>" with a member index of up to 4 digits).
//
// The mapping (deterministic, the same in every binary and across restarts):
//   "pvc-<canonical lower-case UUID>" (the external-provisioner's default) → itself;
//   any other name → "msv-" + the first 20 lower-case hex digits of SHA-256(name) (24 bytes).
// Distinct names can only meet in the hashed form; the creator keeps the CSI name in the
// annotation kCsiNameAnnotation so a collision is detected, never served as the other volume.
//
// Thread contract: free functions without shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/api/v1alpha1/types.h"
#include "common/status/status.h"

namespace common::api::v1alpha1 {

// The CSI name a volume was created for (absent on volumes that predate it: their name is it).
inline constexpr std::string_view kCsiNameAnnotation = "csi.meshstor.io/csi-name";
// CSI's limit on a string field (the CreateVolume name, a volume ID).
inline constexpr size_t kMaxCsiNameBytes = 128;
inline constexpr std::string_view kHashedVolumeIdPrefix = "msv-";
inline constexpr size_t kVolumeIdHashHexDigits = 20;
// The longest volume ID the mapping produces ("pvc-" + 36).
inline constexpr size_t kMaxVolumeIdBytes = 40;

// True for "pvc-" followed by a canonical lower-case UUID (8-4-4-4-12 hex digits).
bool IsProvisionerVolumeName(std::string_view name);

// The volume ID (MeshStorVolume name) for a CSI volume name, as described above.
// InvalidArgument naming `field` when the name is empty or longer than kMaxCsiNameBytes.
Result<std::string> VolumeIdForCsiName(std::string_view csi_name, std::string_view field = "name");

// The CSI name `volume` was created for: its kCsiNameAnnotation, else its own name.
std::string_view CsiNameOf(const MeshStorVolume& volume);

}  // namespace common::api::v1alpha1
