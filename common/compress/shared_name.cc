#include "common/compress/shared_name.h"

#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_set>

#include "common/compress/slab_pool.h"

namespace common::compress {

// The text follows the header in the same allocation.
struct SharedName::Rep {
  std::atomic<uint32_t> refs;
  uint32_t size;

  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view view() const { return {data(), size}; }
  size_t bytes() const { return sizeof(Rep) + size; }
};

namespace {

struct RepHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  size_t operator()(const void* rep) const;
};
struct RepEqual {
  using is_transparent = void;
  bool operator()(const void* a, const void* b) const { return a == b; }
  bool operator()(std::string_view s, const void* rep) const;
  bool operator()(const void* rep, std::string_view s) const { return (*this)(s, rep); }
};

// Every interned entry, found by its text. The set's nodes are in the slab pool too.
struct Table {
  std::mutex mu;
  std::unordered_set<const void*, RepHash, RepEqual, SlabAllocator<const void*>> reps;
};

Table& Interned() {
  static auto* table = new Table();  // never destroyed: names may be released during exit
  return *table;
}

}  // namespace

size_t RepHash::operator()(const void* rep) const {
  return (*this)(static_cast<const SharedName::Rep*>(rep)->view());
}
bool RepEqual::operator()(std::string_view s, const void* rep) const {
  return s == static_cast<const SharedName::Rep*>(rep)->view();
}

SharedName SharedName::Of(std::string_view s) {
  if (s.empty()) return SharedName();
  if (s.size() > UINT32_MAX) throw std::length_error("SharedName: name too long");
  Table& t = Interned();
  std::lock_guard<std::mutex> lock(t.mu);
  if (auto it = t.reps.find(s); it != t.reps.end()) {
    Rep* rep = const_cast<Rep*>(static_cast<const Rep*>(*it));
    rep->refs.fetch_add(1, std::memory_order_relaxed);
    return SharedName(rep);
  }
  const size_t bytes = sizeof(Rep) + s.size();
  void* p = SlabAllocator<char>().allocate(bytes);
  Rep* rep = new (p) Rep{{1}, static_cast<uint32_t>(s.size())};
  std::memcpy(reinterpret_cast<char*>(rep + 1), s.data(), s.size());
  try {
    t.reps.insert(rep);
  } catch (...) {
    SlabAllocator<char>().deallocate(static_cast<char*>(p), bytes);
    throw;
  }
  return SharedName(rep);
}

SharedName::SharedName(const SharedName& other) noexcept : rep_(other.rep_) {
  if (rep_ != nullptr) rep_->refs.fetch_add(1, std::memory_order_relaxed);
}

SharedName& SharedName::operator=(const SharedName& other) noexcept {
  if (rep_ != other.rep_) {
    Release();
    rep_ = other.rep_;
    if (rep_ != nullptr) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  return *this;
}

SharedName& SharedName::operator=(SharedName&& other) noexcept {
  if (this != &other) {
    Release();
    rep_ = other.rep_;
    other.rep_ = nullptr;
  }
  return *this;
}

void SharedName::Release() noexcept {
  if (rep_ == nullptr) return;
  // Under the table's lock: Of must not hand out an entry whose last reference is going.
  Table& t = Interned();
  std::lock_guard<std::mutex> lock(t.mu);
  if (rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    t.reps.erase(static_cast<const void*>(rep_));
    const size_t bytes = rep_->bytes();
    rep_->~Rep();
    SlabAllocator<char>().deallocate(reinterpret_cast<char*>(rep_), bytes);
  }
  rep_ = nullptr;
}

std::string_view SharedName::view() const {
  return rep_ == nullptr ? std::string_view() : rep_->view();
}

size_t SharedName::InternedCount() {
  Table& t = Interned();
  std::lock_guard<std::mutex> lock(t.mu);
  return t.reps.size();
}

}  // namespace common::compress
