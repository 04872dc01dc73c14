#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace common::text {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at the start of non-empty `s` (1 for ASCII), or 0 when it is
// not valid (overlong forms, UTF-16 surrogates, code points above U+10FFFF, truncated). When 0 and
// `invalid_length` is given, it receives the length of the sequence's maximal invalid subpart (at
// least 1): the bytes that Unicode recommends replacing by one U+FFFD.
size_t Utf8SequenceLength(std::string_view s, size_t* invalid_length = nullptr);

// `s` with every maximal invalid subpart replaced by U+FFFD; valid text is returned unchanged.
std::string SanitizeUtf8(std::string_view s);

bool IsValidUtf8(std::string_view s);

}  // namespace common::text
