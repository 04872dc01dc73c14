#include "common/compress/blob_arena.h"

#include <sys/mman.h>

#include <cstring>
#include <new>
#include <utility>

namespace common::compress {

BlobArena::BlobArena(size_t segment_bytes) : segment_bytes_(segment_bytes) {}

BlobArena::BlobArena(BlobArena&& other) noexcept
    : segment_bytes_(other.segment_bytes_),
      segments_(std::exchange(other.segments_, {})),
      free_slots_(std::exchange(other.free_slots_, {})),
      current_(std::exchange(other.current_, UINT32_MAX)),
      live_(std::exchange(other.live_, 0)) {}

BlobArena& BlobArena::operator=(BlobArena&& other) noexcept {
  if (this != &other) {
    Release();
    segment_bytes_ = other.segment_bytes_;
    segments_ = std::exchange(other.segments_, {});
    free_slots_ = std::exchange(other.free_slots_, {});
    current_ = std::exchange(other.current_, UINT32_MAX);
    live_ = std::exchange(other.live_, 0);
  }
  return *this;
}

BlobArena::~BlobArena() { Release(); }

void BlobArena::Release() {
  for (uint32_t i = 0; i < segments_.size(); ++i) Unmap(i);
  segments_.clear();
  free_slots_.clear();
  current_ = UINT32_MAX;
  live_ = 0;
}

uint32_t BlobArena::NewSegment(size_t capacity) {
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  Segment s{static_cast<char*>(p), capacity, 0, 0};
  if (!free_slots_.empty()) {
    const uint32_t i = free_slots_.back();
    free_slots_.pop_back();
    segments_[i] = s;
    return i;
  }
  segments_.push_back(s);
  return static_cast<uint32_t>(segments_.size() - 1);
}

void BlobArena::Unmap(uint32_t index) {
  Segment& s = segments_[index];
  if (s.base == nullptr) return;
  ::munmap(s.base, s.capacity);
  s = Segment{};
}

BlobArena::Ref BlobArena::Put(std::string_view bytes) {
  if (bytes.empty()) return Ref{};
  if (bytes.size() >= UINT32_MAX) throw std::bad_alloc();
  uint32_t index;
  if (bytes.size() > segment_bytes_) {
    index = NewSegment(bytes.size());  // its own segment, never appended to
  } else {
    if (current_ == UINT32_MAX ||
        segments_[current_].capacity - segments_[current_].used < bytes.size()) {
      // The full segment stays until its last blob is freed.
      if (current_ != UINT32_MAX && segments_[current_].live == 0) {
        Unmap(current_);
        free_slots_.push_back(current_);
      }
      current_ = NewSegment(segment_bytes_);
    }
    index = current_;
  }
  Segment& s = segments_[index];
  const Ref ref{index, static_cast<uint32_t>(s.used), static_cast<uint32_t>(bytes.size())};
  std::memcpy(s.base + s.used, bytes.data(), bytes.size());
  s.used += bytes.size();
  s.live += bytes.size();
  live_ += bytes.size();
  return ref;
}

std::string_view BlobArena::Get(Ref ref) const {
  if (!ref) return {};
  return {segments_[ref.segment].base + ref.offset, ref.size};
}

void BlobArena::Free(Ref ref) {
  if (!ref) return;
  Segment& s = segments_[ref.segment];
  s.live -= ref.size;
  live_ -= ref.size;
  if (s.live == 0 && ref.segment != current_) {
    Unmap(ref.segment);
    free_slots_.push_back(ref.segment);
  }
}

size_t BlobArena::garbage_bytes() const {
  size_t used = 0;
  for (const Segment& s : segments_) used += s.used;
  return used - live_;
}

size_t BlobArena::mapped_bytes() const {
  size_t mapped = 0;
  for (const Segment& s : segments_) mapped += s.capacity;
  return mapped;
}

bool BlobArena::WantsCompaction() const {
  const size_t garbage = garbage_bytes();
  return garbage > segment_bytes_ && garbage > live_ / 4;
}

}  // namespace common::compress
