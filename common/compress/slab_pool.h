// SlabPool and SlabAllocator: small long-lived allocations (a cache's map nodes and the names in
// its keys, see shared_name.h) in slabs of their own (mmap), one free list per 16-byte size class,
// instead of glibc's arena of the thread that made them.
//
// Why: a long-lived cache entry is made by a watch thread in the middle of that event's hundreds
// of short-lived allocations (decoded objects, JSON text, copies). glibc places it wherever the
// thread's arena has a hole, so after a burst the live entries are spread over the arena's pages
// and the short-lived ones freed around them leave holes that malloc_trim cannot return (it
// gives back only whole free pages). At 10000 volumes with 40-character names the operator's
// volume watch arena held ~3 MiB of such holes. Here each size class is packed: a freed slot is
// reused by the next allocation of its class, and nothing short-lived lives among them.
//
// Slabs are never unmapped: the pool serves containers that shrink rarely (deleting every volume
// leaves their slots free for the next ones). Allocations larger than kMaxBytes (a hash table's
// bucket array) go to operator new. Under AddressSanitizer every allocation goes to operator new,
// so ASan keeps checking the containers' memory.
//
// Thread contract: thread-safe (a mutex per size class); memory may be freed by another thread
// than the one that allocated it.
#pragma once

#include <cstddef>
#include <memory>

namespace common::compress {

class SlabPool {
 public:
  static constexpr size_t kMaxBytes = 256;  // larger requests go to operator new
  static constexpr size_t kAlign = 16;

  // `bytes` (1..kMaxBytes) from the slot class that holds it; throws std::bad_alloc when no slab
  // can be mapped.
  static void* Allocate(size_t bytes);
  // Gives back a slot from Allocate(bytes), with the same `bytes`.
  static void Deallocate(void* p, size_t bytes) noexcept;

  struct Stats {
    size_t mapped_bytes = 0;  // slabs
    size_t used_bytes = 0;    // slots handed out (whole slots, not the bytes asked for)
  };
  static Stats GetStats();

  // False under AddressSanitizer: every allocation then goes to operator new.
  static constexpr bool kEnabled =
#if defined(__SANITIZE_ADDRESS__)
      false;
#else
      true;
#endif
};

// A std allocator over SlabPool: single objects and short arrays of at most kMaxBytes from the
// pool, anything larger (or over-aligned) from std::allocator. Stateless: all instances are equal.
template <class T>
struct SlabAllocator {
  using value_type = T;

  SlabAllocator() = default;
  template <class U>
  SlabAllocator(const SlabAllocator<U>&) noexcept {}  // NOLINT: rebinding, implicit by design

  T* allocate(size_t n) {
    if (Pooled(n)) return static_cast<T*>(SlabPool::Allocate(n * sizeof(T)));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (Pooled(n)) {
      SlabPool::Deallocate(p, n * sizeof(T));
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }

  template <class U>
  bool operator==(const SlabAllocator<U>&) const noexcept {
    return true;
  }

 private:
  static bool Pooled(size_t n) {
    return SlabPool::kEnabled && alignof(T) <= SlabPool::kAlign && n <= SlabPool::kMaxBytes &&
           n * sizeof(T) <= SlabPool::kMaxBytes;
  }
};

}  // namespace common::compress
