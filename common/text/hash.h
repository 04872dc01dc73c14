#pragma once

#include <cstdint>
#include <string_view>

namespace common::text {

inline constexpr uint64_t kFnv1a64OffsetBasis = 0xcbf29ce484222325ULL;

// FNV-1a, 64 bits, of `data` starting from `seed` (the standard offset basis by default). Not a
// cryptographic hash: stable names and tie-breaks only. Chaining calls (the result as the next
// seed) hashes the concatenation.
constexpr uint64_t Fnv1a64(std::string_view data, uint64_t seed = kFnv1a64OffsetBasis) {
  uint64_t h = seed;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace common::text
