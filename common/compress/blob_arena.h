// BlobArena: byte strings of one owner packed end to end in segments of their own (mmap), so a
// cache that replaces small blobs at every change neither interleaves them with the short-lived
// allocations of the heap nor leaves the heap's pages pinned by them.
//
// Why: glibc serves each thread from one arena. A cache that keeps a new ~0.3 KiB blob from every
// watch event places it among that event's short-lived allocations, and a blob that grows with
// each version no longer fits the hole its previous version left. After a burst of 10000 volumes
// the operator's volume watch arena held ~3.3 MiB of free holes under 1 KiB between live objects,
// which malloc_trim cannot return. Here a blob is appended to the current segment; freeing one
// only counts it as garbage; a segment whose blobs are all freed is unmapped; and when garbage
// outgrows a quarter of the live bytes the owner copies every live blob into a fresh arena
// (Compact in its own words: only the owner knows where its references are).
//
// Thread contract: not thread-safe; the owner serialises every call (the informer's cache lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace common::compress {

class BlobArena {
 public:
  // Where a blob is; size 0: no blob.
  struct Ref {
    uint32_t segment = 0;
    uint32_t offset = 0;
    uint32_t size = 0;

    explicit operator bool() const { return size != 0; }
  };

  // Segments hold `segment_bytes` (a blob larger than that gets a segment of its own).
  explicit BlobArena(size_t segment_bytes = 128 * 1024);
  BlobArena(BlobArena&& other) noexcept;
  BlobArena& operator=(BlobArena&& other) noexcept;
  BlobArena(const BlobArena&) = delete;
  BlobArena& operator=(const BlobArena&) = delete;
  ~BlobArena();

  // A copy of `bytes`; an empty one gets the empty Ref. Throws std::bad_alloc when no segment can
  // be mapped.
  Ref Put(std::string_view bytes);
  // The bytes of a live blob; valid until the next Put, Free or move of this arena.
  std::string_view Get(Ref ref) const;
  // Forgets a live blob (nothing for the empty Ref).
  void Free(Ref ref);

  // Bytes of live blobs, and of freed ones still in mapped segments.
  size_t live_bytes() const { return live_; }
  size_t garbage_bytes() const;
  // Bytes of the mapped segments.
  size_t mapped_bytes() const;
  // True when the garbage exceeds a quarter of the live bytes and one segment: time to Compact.
  bool WantsCompaction() const;

 private:
  struct Segment {
    char* base = nullptr;  // null: unmapped, slot free for reuse
    size_t capacity = 0;
    size_t used = 0;  // bytes appended
    size_t live = 0;  // of those, bytes not freed
  };

  uint32_t NewSegment(size_t capacity);
  void Unmap(uint32_t index);
  void Release();

  size_t segment_bytes_;
  std::vector<Segment> segments_;
  std::vector<uint32_t> free_slots_;
  uint32_t current_ = UINT32_MAX;  // the segment Put appends to
  size_t live_ = 0;
};

}  // namespace common::compress
