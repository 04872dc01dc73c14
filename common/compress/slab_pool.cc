#include "common/compress/slab_pool.h"

#include <sys/mman.h>

#include <array>
#include <mutex>

namespace common::compress {
namespace {

constexpr size_t kSlabBytes = 64 * 1024;
constexpr size_t kClasses = SlabPool::kMaxBytes / SlabPool::kAlign;

// One size class: freed slots on an intrusive list, new ones cut from the current slab.
struct SizeClass {
  struct FreeSlot {
    FreeSlot* next;
  };

  std::mutex mu;
  FreeSlot* free = nullptr;  // guarded by mu
  char* next = nullptr;      // guarded by mu; next uncut slot of the current slab
  char* end = nullptr;       // guarded by mu
  size_t mapped = 0;         // guarded by mu
  size_t used = 0;           // guarded by mu; slots handed out
};

std::array<SizeClass, kClasses>& Classes() {
  // Never destroyed: containers with static storage may give memory back during exit.
  static auto* classes = new std::array<SizeClass, kClasses>();
  return *classes;
}

size_t ClassOf(size_t bytes) { return (bytes + SlabPool::kAlign - 1) / SlabPool::kAlign - 1; }

}  // namespace

void* SlabPool::Allocate(size_t bytes) {
  const size_t c = ClassOf(bytes == 0 ? 1 : bytes);
  const size_t slot = (c + 1) * kAlign;
  SizeClass& k = Classes()[c];
  std::lock_guard<std::mutex> lock(k.mu);
  ++k.used;
  if (k.free != nullptr) {
    SizeClass::FreeSlot* s = k.free;
    k.free = s->next;
    return s;
  }
  if (k.next == nullptr || static_cast<size_t>(k.end - k.next) < slot) {
    void* p =
        ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      --k.used;
      throw std::bad_alloc();
    }
    k.next = static_cast<char*>(p);
    k.end = k.next + kSlabBytes;  // the tail shorter than a slot stays unused
    k.mapped += kSlabBytes;
  }
  void* out = k.next;
  k.next += slot;
  return out;
}

void SlabPool::Deallocate(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  SizeClass& k = Classes()[ClassOf(bytes == 0 ? 1 : bytes)];
  std::lock_guard<std::mutex> lock(k.mu);
  --k.used;
  auto* s = static_cast<SizeClass::FreeSlot*>(p);
  s->next = k.free;
  k.free = s;
}

SlabPool::Stats SlabPool::GetStats() {
  Stats out;
  for (size_t c = 0; c < kClasses; ++c) {
    SizeClass& k = Classes()[c];
    std::lock_guard<std::mutex> lock(k.mu);
    out.mapped_bytes += k.mapped;
    out.used_bytes += k.used * (c + 1) * kAlign;
  }
  return out;
}

}  // namespace common::compress
