#include "common/api/v1alpha1/volume_id.h"

#include <fmt/format.h>
#include <openssl/sha.h>

namespace common::api::v1alpha1 {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

bool IsProvisionerVolumeName(std::string_view name) {
  constexpr std::string_view kPrefix = "pvc-";
  if (!name.starts_with(kPrefix)) return false;
  std::string_view uuid = name.substr(kPrefix.size());
  if (uuid.size() != 36) return false;
  for (size_t i = 0; i < uuid.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? uuid[i] != '-' : !IsLowerHex(uuid[i])) return false;
  }
  return true;
}

Result<std::string> VolumeIdForCsiName(std::string_view csi_name, std::string_view field) {
  if (csi_name.empty()) return InvalidArgumentError("{} is missing", field);
  if (csi_name.size() > kMaxCsiNameBytes) {
    return InvalidArgumentError("{}: {} bytes is longer than the {} bytes CSI allows", field,
                                csi_name.size(), kMaxCsiNameBytes);
  }
  if (IsProvisionerVolumeName(csi_name)) return std::string(csi_name);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(csi_name.data()), csi_name.size(), digest);
  std::string id(kHashedVolumeIdPrefix);
  for (size_t i = 0; i < kVolumeIdHashHexDigits / 2; ++i) id += fmt::format("{:02x}", digest[i]);
  return id;
}

std::string_view CsiNameOf(const MeshStorVolume& volume) {
  auto it = volume.metadata.annotations.find(std::string(kCsiNameAnnotation));
  return it == volume.metadata.annotations.end() ? std::string_view(volume.metadata.name)
                                                 : std::string_view(it->second);
}

}  // namespace common::api::v1alpha1
