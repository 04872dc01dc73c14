// Gives the heap's free pages back to the kernel after bursts of changes.
//
// glibc keeps what a process freed mapped in the arena it came from (one per thread that
// allocates, up to 8 per core; the operator runs 17 threads), and returns only the free top of
// each heap on its own. During and after a burst (10000 volumes created, each decoded ~10 times on
// its way to Synced, every old version and watch event freed) the freed pages between live
// objects stay resident. `QuietTrimmer` calls its trim function (TrimHeap in the operator) once
// no change has come for `quiet`, and at most every `max_interval` while changes keep coming.
//
// Thread contract: thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>

namespace meshstor_operator {

class QuietTrimmer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  QuietTrimmer(Duration quiet, Duration max_interval, std::function<void()> trim)
      : quiet_(quiet), max_interval_(max_interval), trim_(std::move(trim)) {}

  // Something changed (an informer event that allocated).
  void Changed(TimePoint now);
  // Called on a timer: trims when changes came since the last trim and either none for `quiet`
  // or the first of them is `max_interval` old. True when it trimmed.
  bool Tick(TimePoint now);

 private:
  const Duration quiet_;
  const Duration max_interval_;
  const std::function<void()> trim_;
  std::mutex mu_;
  bool pending_ = false;      // guarded by mu_: changes since the last trim
  TimePoint first_change_{};  // guarded by mu_: the first of them
  TimePoint last_change_{};   // guarded by mu_
};

struct TrimResult {
  long resident_before = 0;  // bytes (/proc/self/statm)
  long resident_after = 0;
  size_t heap_in_use = 0;  // bytes allocated and not freed, all arenas (mallinfo2)
  size_t heap_free = 0;    // bytes free in the arenas' heaps before the trim
  size_t mmapped = 0;      // bytes in chunks mmapped on their own
  size_t slab_mapped = 0;  // bytes of the slab pool's slabs (compress/slab_pool.h), outside malloc
  size_t slab_used = 0;    // of those, bytes in slots handed out
};

// malloc_trim(0): every arena's free pages back to the kernel; the resident size around it.
TrimResult TrimHeap();

// Fixes glibc's mmap threshold at 128 KiB (mallopt M_MMAP_THRESHOLD; the trim threshold stays at
// its 128 KiB default too). By default glibc raises the threshold to the size of each mmapped
// chunk freed (up to 32 MiB): after one list response or /metrics exposition of a few MiB, every
// later buffer under that size that no free chunk can hold grows the heap of the thread's arena,
// where it stays resident behind the small objects made after it. Fixed, such a buffer is mapped
// on its own and unmapped when freed. Call once, first thing in main. False when glibc refused
// (or under AddressSanitizer, whose allocator is not glibc's).
bool FixMmapThreshold();

// This process's resident bytes, or -1.
long ResidentBytes();

}  // namespace meshstor_operator
