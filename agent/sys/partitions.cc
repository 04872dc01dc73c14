#include "agent/sys/partitions.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>

#include <fmt/format.h>
#include <openssl/sha.h>

namespace agent::sys {
namespace {

constexpr std::string_view kPvcForm = "ms1p:";
constexpr std::string_view kNameForm = "ms1n:";
constexpr size_t kMaxGptName = 36;
constexpr uint32_t kMaxIndex = 999;
constexpr std::string_view kDnsNamespace = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses a canonical (8-4-4-4-12) lowercase UUID.
std::optional<std::array<uint8_t, 16>> ParseUuid(std::string_view s, bool lowercase_only) {
  if (s.size() != 36) return std::nullopt;
  std::array<uint8_t, 16> out{};
  size_t byte = 0;
  for (size_t i = 0; i < s.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    if (lowercase_only && std::isupper(static_cast<unsigned char>(s[i]))) return std::nullopt;
    int hi = HexValue(s[i]), lo = HexValue(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return out;
}

std::string FormatUuid(const uint8_t* b) {
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}"
      "{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

// 16 bytes → 22 characters of unpadded base64url.
std::string Base64Url16(const std::array<uint8_t, 16>& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : in) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::array<uint8_t, 16>> DecodeBase64Url16(std::string_view s) {
  if (s.size() != 22) return std::nullopt;
  std::array<uint8_t, 16> out{};
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : s) {
    const char* p = std::char_traits<char>::find(kB64, 64, c);
    if (p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == 16) return std::nullopt;
      out[n++] = static_cast<uint8_t>((acc >> bits) & 0xff);
    }
  }
  // The 4 leftover bits must be zero, so each name has exactly one encoding.
  if (n != 16 || (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool IsVolumeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

const std::string& MeshStorNamespace() {
  static const std::string ns = UuidV5(kDnsNamespace, "csi.meshstor.io");
  return ns;
}

}  // namespace

std::string UuidV5(std::string_view namespace_uuid, std::string_view name) {
  auto ns = ParseUuid(namespace_uuid, false);
  std::string data(reinterpret_cast<const char*>(ns ? ns->data() : nullptr), ns ? 16 : 0);
  data.append(name);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);  // version 5
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return FormatUuid(digest);
}

std::string PartitionUuid(const MemberRef& member) {
  return UuidV5(MeshStorNamespace(), fmt::format("{}/{}", member.volume, member.index));
}

common::Result<std::string> PartitionName(const MemberRef& member) {
  if (member.index > kMaxIndex) {
    return common::InvalidArgumentError("member index {} of volume {} is above {}", member.index,
                                        member.volume, kMaxIndex);
  }
  std::string_view v = member.volume;
  if (v.starts_with("pvc-")) {
    if (auto uuid = ParseUuid(v.substr(4), true)) {
      return fmt::format("{}{}:{}", kPvcForm, Base64Url16(*uuid), member.index);
    }
  }
  std::string name = fmt::format("{}{}:{}", kNameForm, v, member.index);
  bool chars_ok = !v.empty();
  for (char c : v) chars_ok = chars_ok && IsVolumeChar(c);
  if (!chars_ok || name.size() > kMaxGptName) {
    return common::InvalidArgumentError(
        "volume name \"{}\" cannot be encoded in a GPT partition name: it must be pvc-<uuid> or "
        "at most {} characters of [a-z0-9.-]",
        v, kMaxGptName - kNameForm.size() - 1 - fmt::formatted_size("{}", member.index));
  }
  return name;
}

std::optional<MemberRef> ParsePartitionName(std::string_view gpt_name) {
  bool pvc = gpt_name.starts_with(kPvcForm);
  if (!pvc && !gpt_name.starts_with(kNameForm)) return std::nullopt;
  std::string_view rest = gpt_name.substr(kPvcForm.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view body = rest.substr(0, colon);
  std::string_view index_text = rest.substr(colon + 1);
  uint32_t index = 0;
  auto [ptr, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
  if (ec != std::errc() || ptr != index_text.data() + index_text.size() || index > kMaxIndex ||
      index_text.empty() || (index_text.size() > 1 && index_text[0] == '0')) {
    return std::nullopt;
  }
  MemberRef ref;
  ref.index = index;
  if (pvc) {
    auto bytes = DecodeBase64Url16(body);
    if (!bytes) return std::nullopt;
    ref.volume = "pvc-" + FormatUuid(bytes->data());
  } else {
    if (body.empty()) return std::nullopt;
    for (char c : body) {
      if (!IsVolumeChar(c)) return std::nullopt;
    }
    ref.volume = std::string(body);
  }
  // Only the canonical encoding counts, so one member has exactly one name.
  auto canonical = PartitionName(ref);
  if (!canonical.ok() || *canonical != gpt_name) return std::nullopt;
  return ref;
}

std::string PartitionDevicePath(std::string_view drive, uint32_t number) {
  bool ends_digit = !drive.empty() && std::isdigit(static_cast<unsigned char>(drive.back()));
  return fmt::format("{}{}{}", drive, ends_digit ? "p" : "", number);
}

}  // namespace agent::sys

namespace agent::sys {

void ClassifyPartition(PartitionInfo& info) {
  info.member.reset();
  std::optional<MemberRef> ref = ParsePartitionName(info.name);
  if (ref && PartitionUuid(*ref) == info.uuid) info.member = std::move(ref);
}

std::optional<FreeExtent> BlankDriveExtent(uint64_t size_bytes, uint32_t sector_size) {
  uint64_t backup = uint64_t{sector_size} + 16384;
  if (size_bytes < backup + 2 * kAlignment) return std::nullopt;
  uint64_t end = (size_bytes - backup) / kAlignment * kAlignment;
  if (end <= kAlignment) return std::nullopt;
  return FreeExtent{kAlignment, end - kAlignment};
}

FreeSpace AlignFreeSpace(const std::vector<FreeExtent>& raw_gaps) {
  FreeSpace out;
  for (const FreeExtent& g : raw_gaps) {
    uint64_t start = (g.start_bytes + kAlignment - 1) / kAlignment * kAlignment;
    uint64_t end = (g.start_bytes + g.size_bytes) / kAlignment * kAlignment;
    if (end <= start) continue;
    out.extents.push_back(FreeExtent{start, end - start});
    out.biggest_bytes = std::max(out.biggest_bytes, end - start);
  }
  return out;
}

common::Result<std::optional<PartitionInfo>> FindMember(
    const std::vector<PartitionInfo>& partitions, const MemberRef& member, std::string_view drive) {
  ASSIGN_OR_RETURN(std::string name, PartitionName(member));
  std::string uuid = PartitionUuid(member);
  for (const PartitionInfo& p : partitions) {
    bool name_match = p.name == name;
    bool uuid_match = p.uuid == uuid;
    if (name_match && uuid_match) return std::optional<PartitionInfo>(p);
    if (name_match || uuid_match) {
      return common::FailedPreconditionError(
          "partition {} of {} has name \"{}\" and GUID {}, but member {}/{} needs name \"{}\" "
          "and GUID {}: it was not created by MeshStor for this member, refusing to touch it",
          p.device_path, drive, p.name, p.uuid, member.volume, member.index, name, uuid);
    }
  }
  return std::optional<PartitionInfo>();
}

common::Status CheckExistingMember(const PartitionInfo& existing, const PartitionSpec& spec) {
  if (existing.size_bytes == spec.size_bytes &&
      (!spec.start_bytes || *spec.start_bytes == existing.start_bytes)) {
    return common::OkStatus();
  }
  return common::FailedPreconditionError(
      "{} already holds member {}/{} at offset {} with {} bytes, not the {} bytes asked",
      existing.device_path, spec.member.volume, spec.member.index, existing.start_bytes,
      existing.size_bytes, spec.size_bytes);
}

common::Result<uint64_t> PlacePartition(const FreeSpace& free, const PartitionSpec& spec,
                                        std::string_view drive) {
  if (spec.size_bytes == 0 || spec.size_bytes % kAlignment != 0) {
    return common::InvalidArgumentError(
        "partition size {} for {} is not a positive multiple of "
        "1 MiB",
        spec.size_bytes, drive);
  }
  if (spec.start_bytes) {
    uint64_t start = *spec.start_bytes;
    if (start % kAlignment != 0) {
      return common::InvalidArgumentError("partition start {} on {} is not 1 MiB aligned", start,
                                          drive);
    }
    for (const FreeExtent& e : free.extents) {
      if (start >= e.start_bytes && start + spec.size_bytes <= e.start_bytes + e.size_bytes) {
        return start;
      }
    }
    return common::ResourceExhaustedError("no free space for {} bytes at offset {} on {}",
                                          spec.size_bytes, start, drive);
  }
  for (const FreeExtent& e : free.extents) {
    if (e.size_bytes >= spec.size_bytes) return e.start_bytes;
  }
  return common::ResourceExhaustedError("no free extent of {} bytes on {} (biggest is {})",
                                        spec.size_bytes, drive, free.biggest_bytes);
}

common::Status CheckGrowRoom(const FreeSpace& free, const PartitionInfo& part,
                             uint64_t new_size_bytes) {
  uint64_t end = part.start_bytes + part.size_bytes;
  uint64_t need = new_size_bytes - part.size_bytes;
  for (const FreeExtent& e : free.extents) {
    if (e.start_bytes == end && e.size_bytes >= need) return common::OkStatus();
  }
  return common::ResourceExhaustedError(
      "cannot grow {} from {} to {} bytes in place: the {} bytes after it are not free",
      part.device_path, part.size_bytes, new_size_bytes, need);
}

}  // namespace agent::sys
