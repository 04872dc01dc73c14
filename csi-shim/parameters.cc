#include "csi-shim/parameters.h"

#include <charconv>
#include <limits>

#include "common/api/v1alpha1/validation.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;
using common::InvalidArgumentError;
using common::Result;
using common::Status;

constexpr std::string_view kProvisionerPrefix = "csi.storage.k8s.io/";

// A decimal integer without sign, spaces or leading '+', that fits in int32.
Result<int32_t> ParseInt(std::string_view key, std::string_view value) {
  int32_t out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (value.empty() || ec != std::errc() || ptr != end) {
    return InvalidArgumentError("parameter {}: \"{}\" is not an integer", key, value);
  }
  return out;
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

Result<VolumeParameters> ParseParameters(const std::map<std::string, std::string>& params) {
  VolumeParameters out;
  for (const auto& [key, value] : params) {
    if (key.starts_with(kProvisionerPrefix)) continue;
    const std::string field = "parameter " + key;
    if (key == "replicaCount") {
      ASSIGN_OR_RETURN(out.replica_count, ParseInt(key, value));
      RETURN_IF_ERROR(v1::ValidateReplicaCount(out.replica_count, field));
    } else if (key == "stripeWidth") {
      ASSIGN_OR_RETURN(out.stripe_width, ParseInt(key, value));
      RETURN_IF_ERROR(v1::ValidateStripeWidth(out.stripe_width, field));
    } else if (key == "memberMissingTimeout") {
      ASSIGN_OR_RETURN(out.member_missing_timeout, ParseInt(key, value));
      RETURN_IF_ERROR(v1::ValidateMemberMissingTimeout(out.member_missing_timeout, field));
    } else if (key == "sectorSize") {
      ASSIGN_OR_RETURN(out.sector_size, ParseInt(key, value));
      RETURN_IF_ERROR(v1::ValidateSectorSize(out.sector_size, field));
    } else {
      return InvalidArgumentError(
          "unknown parameter \"{}\" (allowed: replicaCount, stripeWidth, memberMissingTimeout, "
          "sectorSize)",
          key);
    }
  }
  RETURN_IF_ERROR(v1::ValidateArraySlots(out.replica_count, out.stripe_width,
                                         "parameters replicaCount × stripeWidth"));
  return out;
}

VolumeParameters ParametersOf(const v1::MeshStorVolumeSpec& spec) {
  return {.replica_count = spec.replica_count,
          .stripe_width = spec.stripe_width,
          .member_missing_timeout = spec.member_missing_timeout,
          .sector_size = spec.sector_size};
}

Result<int64_t> CapacityForRange(int64_t required_bytes, int64_t limit_bytes) {
  if (required_bytes < 0) {
    return InvalidArgumentError("capacity_range.required_bytes {} is negative", required_bytes);
  }
  if (limit_bytes < 0) {
    return InvalidArgumentError("capacity_range.limit_bytes {} is negative", limit_bytes);
  }
  if (limit_bytes > 0 && limit_bytes < required_bytes) {
    return InvalidArgumentError("capacity_range.limit_bytes {} is below required_bytes {}",
                                limit_bytes, required_bytes);
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / v1::kMiB * v1::kMiB;
  if (required_bytes > kMax) {
    return common::OutOfRangeError("capacity_range.required_bytes {} is too large", required_bytes);
  }
  int64_t bytes = (required_bytes + v1::kMiB - 1) / v1::kMiB * v1::kMiB;
  if (bytes < v1::kMinCapacityBytes) bytes = v1::kMinCapacityBytes;
  if (limit_bytes > 0 && bytes > limit_bytes) {
    return common::OutOfRangeError(
        "capacity_range.limit_bytes {} is below {} bytes, the smallest volume (MiB multiple, at "
        "least 512 MiB) that holds required_bytes {}",
        limit_bytes, bytes, required_bytes);
  }
  return bytes;
}

bool CapacityFits(int64_t capacity_bytes, int64_t required_bytes, int64_t limit_bytes) {
  return capacity_bytes >= required_bytes && (limit_bytes <= 0 || capacity_bytes <= limit_bytes);
}

Status ValidateVolumeName(std::string_view name, std::string_view what) {
  if (name.empty()) return InvalidArgumentError("{} is missing", what);
  if (name.size() > 253) {
    return InvalidArgumentError("{} \"{}\" is longer than 253 characters", what, name);
  }
  bool ok = IsAlnum(name.front()) && IsAlnum(name.back());
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      ok = IsAlnum(name[i - 1]) && IsAlnum(name[i + 1]);  // i is neither first nor last here
    } else {
      ok = IsAlnum(c) || c == '-';
    }
  }
  if (!ok) {
    return InvalidArgumentError(
        "{} \"{}\" is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting "
        "and ending with a letter or digit)",
        what, name);
  }
  return common::OkStatus();
}

}  // namespace csi_shim
