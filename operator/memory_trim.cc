#include "operator/memory_trim.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include "common/compress/slab_pool.h"

namespace meshstor_operator {

void QuietTrimmer::Changed(TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_) first_change_ = now;
  pending_ = true;
  last_change_ = now;
}

bool QuietTrimmer::Tick(TimePoint now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_) return false;
    // While changes keep coming, the interval counts from the first change since the last trim.
    if (now - last_change_ < quiet_ && now - first_change_ < max_interval_) return false;
    pending_ = false;
  }
  trim_();
  return true;
}

long ResidentBytes() {
  long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

TrimResult TrimHeap() {
  TrimResult r;
  r.resident_before = ResidentBytes();
  const struct mallinfo2 mi = mallinfo2();
  r.heap_in_use = mi.uordblks + mi.hblkhd;
  r.heap_free = mi.fordblks;
  r.mmapped = mi.hblkhd;
  const auto slabs = common::compress::SlabPool::GetStats();
  r.slab_mapped = slabs.mapped_bytes;
  r.slab_used = slabs.used_bytes;
  malloc_trim(0);
  r.resident_after = ResidentBytes();
  return r;
}

bool FixMmapThreshold() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1;
#endif
}

}  // namespace meshstor_operator
