#include "common/text/utf8.h"

namespace common::text {

size_t Utf8SequenceLength(std::string_view s, size_t* invalid_length) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  auto invalid = [&](size_t n) -> size_t {
    if (invalid_length != nullptr) *invalid_length = n;
    return 0;
  };
  size_t length = 0;
  // The valid range of the second byte; later bytes are plain continuation bytes.
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return invalid(1);
  }
  for (size_t i = 1; i < length; ++i) {
    if (i >= s.size()) return invalid(i);
    const auto b = static_cast<unsigned char>(s[i]);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
    if (!ok) return invalid(i);
  }
  return length;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    size_t invalid = 0;
    const size_t length = Utf8SequenceLength(s, &invalid);
    if (length == 0) {
      out.append(kReplacementCharacter);
      s.remove_prefix(invalid);
    } else {
      out.append(s.substr(0, length));
      s.remove_prefix(length);
    }
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  while (!s.empty()) {
    const size_t length = Utf8SequenceLength(s);
    if (length == 0) return false;
    s.remove_prefix(length);
  }
  return true;
}

}  // namespace common::text
