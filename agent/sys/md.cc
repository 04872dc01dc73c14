#include "agent/sys/md.h"

#include <cstdint>
#include <string>

#include "common/text/hash.h"

namespace agent::sys {
namespace {

bool IsMdNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

common::Status ValidateMdName(std::string_view name) {
  if (name.empty() || name.size() > kMaxMdNameBytes) {
    return common::InvalidArgumentError("MD array name \"{}\": want 1 to {} bytes", name,
                                        kMaxMdNameBytes);
  }
  for (char c : name) {
    if (!IsMdNameChar(c)) {
      return common::InvalidArgumentError(
          "MD array name \"{}\": only letters, digits, '.', '_' and '-' are allowed", name);
    }
  }
  return common::OkStatus();
}

common::Status ValidateMdCreateSpec(const MdCreateSpec& spec) {
  RETURN_IF_ERROR(ValidateMdName(spec.name));
  size_t n = spec.members.size();
  size_t real = 0;
  for (const auto& m : spec.members) {
    if (m.device.empty()) {
      return common::InvalidArgumentError("MD array {}: empty member device", spec.name);
    }
    if (m.device != kMdMissing) ++real;
  }
  if (spec.level == MdLevel::kRaid1 && n < 2) {
    return common::InvalidArgumentError("MD array {}: RAID1 needs at least 2 slots, got {}",
                                        spec.name, n);
  }
  if (spec.level == MdLevel::kRaid10 && (n < 4 || n % 2 != 0)) {
    return common::InvalidArgumentError(
        "MD array {}: RAID10 near-2 needs an even number (>= 4) of slots, got {}", spec.name, n);
  }
  if (real == 0) {
    return common::InvalidArgumentError("MD array {}: every slot is \"missing\"", spec.name);
  }
  const uint32_t bc = spec.bitmap_chunk_kib;
  if (bc != 0 && (bc < 4 || (bc & (bc - 1)) != 0)) {
    return common::InvalidArgumentError(
        "MD array {}: bitmap chunk {} KiB is not a power of two of at least 4 KiB", spec.name, bc);
  }
  return common::OkStatus();
}

uint32_t MdBitmapChunkKib(uint64_t member_data_bytes) {
  const uint64_t kib = (member_data_bytes + 1023) >> 10;
  uint64_t chunk = kMdMinBitmapChunkKib;
  while (kib > chunk * kMdMaxBitmapChunks) chunk *= 2;
  return static_cast<uint32_t>(chunk);
}

std::string MdArrayName(std::string_view volume_name) {
  if (ValidateMdName(volume_name).ok()) return std::string(volume_name);
  std::string safe;
  for (char c : volume_name) {
    if (safe.size() == 11) break;  // "ms-" + 11 + "-" + 16 = kMaxMdNameBytes
    if (IsMdNameChar(c)) safe.push_back(c);
  }
  return fmt::format("ms-{}-{:016x}", safe, common::text::Fnv1a64(volume_name));
}

std::string MdArrayUuid(std::string_view volume_name) {
  std::string seeded = fmt::format("meshstor-md:{}", volume_name);
  uint64_t a = common::text::Fnv1a64(seeded);
  uint64_t b = common::text::Fnv1a64(seeded, 0x9e3779b97f4a7c15ULL);
  return fmt::format("{:08x}:{:08x}:{:08x}:{:08x}", a >> 32, a & 0xffffffffULL, b >> 32,
                     b & 0xffffffffULL);
}

}  // namespace agent::sys
