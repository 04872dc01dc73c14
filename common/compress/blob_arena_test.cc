#include "common/compress/blob_arena.h"

#include <map>
#include <random>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

namespace common::compress {
namespace {

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_CASE("BlobArena keeps blobs end to end and hands their bytes back", "[unit][compress]") {
  BlobArena arena(4096);
  CHECK_FALSE(arena.Put(""));
  CHECK(arena.Get(BlobArena::Ref{}).empty());
  std::vector<std::pair<BlobArena::Ref, std::string>> blobs;
  for (uint32_t i = 0; i < 100; ++i) {
    std::string b = Bytes(100 + i, i);
    blobs.emplace_back(arena.Put(b), b);
  }
  for (const auto& [ref, bytes] : blobs) CHECK(arena.Get(ref) == bytes);
  const size_t total = 100 * 100 + 99 * 100 / 2;
  CHECK(arena.live_bytes() == total);
  CHECK(arena.garbage_bytes() == 0);
  // Packed: 4 KiB segments, a blob never split, so at most one blob's worth unused per segment.
  CHECK(arena.mapped_bytes() <= total + (total / (4096 - 199) + 1) * 199 + 4096);

  // A blob larger than a segment gets one of its own.
  const std::string big = Bytes(10000, 7);
  auto big_ref = arena.Put(big);
  CHECK(arena.Get(big_ref) == big);
  const size_t mapped = arena.mapped_bytes();
  arena.Free(big_ref);
  CHECK(arena.mapped_bytes() == mapped - 10000);  // unmapped at once
}

TEST_CASE("BlobArena unmaps a segment once all its blobs are freed and asks for compaction",
          "[unit][compress]") {
  BlobArena arena(1000);
  std::vector<BlobArena::Ref> refs;
  for (uint32_t i = 0; i < 50; ++i) refs.push_back(arena.Put(Bytes(100, i)));  // 10 per segment
  CHECK(arena.mapped_bytes() == 5000);
  // Every other blob freed: no segment empties, and the garbage (2500) is over a quarter of the
  // live bytes (2500) and one segment.
  for (size_t i = 0; i < refs.size(); i += 2) arena.Free(refs[i]);
  CHECK(arena.mapped_bytes() == 5000);
  CHECK(arena.garbage_bytes() == 2500);
  CHECK(arena.WantsCompaction());
  // The first segment's other blobs: it goes.
  for (size_t i = 1; i < 10; i += 2) arena.Free(refs[i]);
  CHECK(arena.mapped_bytes() == 4000);
  CHECK(arena.garbage_bytes() == 2000);

  // What an owner's compaction does: every live blob into a fresh arena.
  BlobArena fresh(1000);
  std::map<size_t, BlobArena::Ref> moved;
  for (size_t i = 11; i < refs.size(); i += 2) moved[i] = fresh.Put(arena.Get(refs[i]));
  arena = std::move(fresh);
  CHECK(arena.garbage_bytes() == 0);
  CHECK(arena.live_bytes() == 2000);
  CHECK(arena.mapped_bytes() == 2000);
  CHECK_FALSE(arena.WantsCompaction());
  for (const auto& [i, ref] : moved) CHECK(arena.Get(ref) == Bytes(100, static_cast<uint32_t>(i)));
}

TEST_CASE("BlobArena agrees with a map of strings over random puts and frees", "[unit][compress]") {
  std::mt19937 rng(3);
  BlobArena arena(2048);
  std::map<int, std::pair<BlobArena::Ref, std::string>> model;
  for (int step = 0; step < 20000; ++step) {
    const int key = static_cast<int>(rng() % 200);
    if (auto it = model.find(key); it != model.end()) {
      arena.Free(it->second.first);
      model.erase(it);
    }
    if (rng() % 3 != 0) {
      std::string b = Bytes(rng() % 700, static_cast<uint32_t>(step));
      model[key] = {arena.Put(b), b};
    }
    if (arena.WantsCompaction()) {
      BlobArena fresh(2048);
      for (auto& [k, v] : model) v.first = fresh.Put(arena.Get(v.first));
      arena = std::move(fresh);
    }
  }
  size_t live = 0;
  for (const auto& [k, v] : model) {
    CHECK(arena.Get(v.first) == v.second);
    live += v.second.size();
  }
  CHECK(arena.live_bytes() == live);
  // Garbage stays within a quarter of the live bytes or one segment, plus the freed blobs of the
  // segment being filled.
  CHECK(arena.garbage_bytes() <= std::max<size_t>(live / 4, 2048) + 2048);
}

}  // namespace
}  // namespace common::compress
