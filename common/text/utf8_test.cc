#include "common/text/utf8.h"

#include <string>

#include <catch2/catch.hpp>

namespace common::text {
namespace {

TEST_CASE("Valid UTF-8 is kept as it is", "[unit][text]") {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
  CHECK(IsValidUtf8(text));
  CHECK(SanitizeUtf8(text) == text);
  CHECK(Utf8SequenceLength("\xF0\x9F\x98\x80rest") == 4);
  CHECK(Utf8SequenceLength("a") == 1);
}

TEST_CASE("Each maximal invalid subpart becomes one U+FFFD", "[unit][text]") {
  const std::string fffd(kReplacementCharacter);
  auto [input, expected] = GENERATE_COPY(table<std::string, std::string>({
      {"a\xFF"
       "b",
       "a" + fffd + "b"},                               // never valid
      {"\x80", fffd},                                   // lone continuation
      {"\xC0\xAF", fffd + fffd},                        // overlong '/'
      {"\xE0\x80\xAF", fffd + fffd + fffd},             // overlong, 3 bytes
      {"\xED\xA0\x80", fffd + fffd + fffd},             // UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\xE2\x82"
       "x",
       fffd + "x"},                                         // truncated, then ASCII
      {"end\xE2\x82", "end" + fffd},                        // truncated at the end
      {"\xF0\x9F\x98", fffd},                               // truncated 4-byte
      {"\xF0\x9F\x98\x80\xFE", "\xF0\x9F\x98\x80" + fffd},  // valid then invalid
  }));
  INFO(expected);
  CHECK_FALSE(IsValidUtf8(input));
  CHECK(SanitizeUtf8(input) == expected);
  CHECK(IsValidUtf8(SanitizeUtf8(input)));
}

TEST_CASE("Utf8SequenceLength reports the invalid prefix it would replace", "[unit][text]") {
  size_t invalid = 0;
  CHECK(Utf8SequenceLength("\xE2\x82x", &invalid) == 0);
  CHECK(invalid == 2);
  CHECK(Utf8SequenceLength("\xC0", &invalid) == 0);
  CHECK(invalid == 1);
}

}  // namespace
}  // namespace common::text
