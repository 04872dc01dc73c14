#include "operator/memory_trim.h"

#include <malloc.h>

#include <cstdlib>
#include <vector>

#include <catch2/catch.hpp>

namespace meshstor_operator {
namespace {

using std::chrono::seconds;

TEST_CASE("The heap is trimmed once a burst went quiet", "[unit][memory]") {
  int trims = 0;
  QuietTrimmer trimmer(seconds(10), seconds(60), [&] { ++trims; });
  const QuietTrimmer::TimePoint t0{};
  CHECK_FALSE(trimmer.Tick(t0 + seconds(100)));  // nothing changed yet
  trimmer.Changed(t0 + seconds(100));
  trimmer.Changed(t0 + seconds(105));
  CHECK_FALSE(trimmer.Tick(t0 + seconds(110)));  // 5 s after the last change
  CHECK(trims == 0);
  CHECK(trimmer.Tick(t0 + seconds(115)));
  CHECK(trims == 1);
  CHECK_FALSE(trimmer.Tick(t0 + seconds(200)));  // once per burst
  trimmer.Changed(t0 + seconds(300));
  CHECK_FALSE(trimmer.Tick(t0 + seconds(309)));
  CHECK(trimmer.Tick(t0 + seconds(310)));
  CHECK(trims == 2);
}

TEST_CASE("The heap is trimmed every max_interval while changes keep coming", "[unit][memory]") {
  int trims = 0;
  QuietTrimmer trimmer(seconds(10), seconds(60), [&] { ++trims; });
  const QuietTrimmer::TimePoint t0{};
  for (int s = 0; s <= 150; ++s) {
    trimmer.Changed(t0 + seconds(s));  // never quiet
    trimmer.Tick(t0 + seconds(s));
  }
  CHECK(trims == 2);  // at 60 s and 121 s
}

TEST_CASE("TrimHeap returns the free pages between live chunks to the kernel", "[unit][memory]") {
  // 64 MiB in 4 KiB chunks, then every chunk freed but one in 64: the free runs lie between
  // live chunks, where free() alone never gives them back (as an informer's old object
  // versions between the current ones).
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer replaces malloc: glibc's arenas, mallinfo2 and malloc_trim see none of it.
  WARN("skipped: built with AddressSanitizer, whose allocator is not glibc's");
  return;
#endif
  constexpr size_t kChunk = 4096, kCount = 16384;
  std::vector<char*> chunks(kCount);
  for (auto& c : chunks) {
    c = static_cast<char*>(std::malloc(kChunk));
    REQUIRE(c != nullptr);
    for (size_t i = 0; i < kChunk; i += 512) c[i] = 1;  // touch every page
  }
  for (size_t i = 0; i < kCount; ++i) {
    if (i % 64 != 63) {
      std::free(chunks[i]);
      chunks[i] = nullptr;
    }
  }
  const long before = ResidentBytes();
  const TrimResult r = TrimHeap();
  INFO("resident before " << before << ", trim saw " << r.resident_before << " -> "
                          << r.resident_after);
  CHECK(r.resident_before - r.resident_after > 32L * 1024 * 1024);
  CHECK(r.heap_free > 32u * 1024 * 1024);  // what lay free in the heap when it trimmed
  CHECK(ResidentBytes() < before - 32L * 1024 * 1024);
  for (char* c : chunks) std::free(c);
}

TEST_CASE("FixMmapThreshold keeps large buffers mapped on their own after one was freed",
          "[unit][memory]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("skipped: built with AddressSanitizer, whose allocator is not glibc's");
  return;
#endif
  REQUIRE(FixMmapThreshold());
  // A 16 MiB buffer freed: glibc's default would now serve anything under 16 MiB from the arena
  // (8 MiB: larger than any free chunk the other tests leave, so only the threshold decides).
  void* big = std::malloc(16 * 1024 * 1024);
  REQUIRE(big != nullptr);
  std::free(big);
  const size_t mapped_before = mallinfo2().hblkhd;
  char* buffer = static_cast<char*>(std::malloc(8 * 1024 * 1024));
  REQUIRE(buffer != nullptr);
  buffer[0] = 1;
  CHECK(mallinfo2().hblkhd - mapped_before >= 8u * 1024 * 1024);  // mapped on its own
  std::free(buffer);
  CHECK(mallinfo2().hblkhd == mapped_before);  // and unmapped when freed
}

}  // namespace
}  // namespace meshstor_operator
