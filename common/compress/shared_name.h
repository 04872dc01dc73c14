// SharedName: an immutable name (a Kubernetes object's name or namespace) kept once, in the slab
// pool, however many long-lived maps hold it.
//
// Why: at 10000 volumes the operator kept each volume's name in the informer's cache, the volume
// index and the metric summaries; with the CSI shim's 40-character pvc-<uuid> names that was three
// 32-byte strings and three 48-byte slots per volume. A SharedName is one pointer; the text, with
// its reference count, is interned: SharedName::Of returns the entry already held for the same
// text, so the three maps share one copy without passing it to each other.
//
// Thread contract: thread-safe. Copies count references atomically; Of and the release of the
// last reference take one process-wide mutex (names are interned when a map gains an entry, not
// per lookup: maps find entries by string_view).
#pragma once

#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace common::compress {

class SharedName {
 public:
  SharedName() = default;  // the empty name (holds nothing)
  // The interned name with text `s`: the entry already held for it, or a new one.
  static SharedName Of(std::string_view s);

  SharedName(const SharedName& other) noexcept;
  SharedName(SharedName&& other) noexcept : rep_(other.rep_) { other.rep_ = nullptr; }
  SharedName& operator=(const SharedName& other) noexcept;
  SharedName& operator=(SharedName&& other) noexcept;
  ~SharedName() { Release(); }

  std::string_view view() const;
  operator std::string_view() const { return view(); }  // NOLINT: used as its text
  bool empty() const { return rep_ == nullptr; }

  friend bool operator==(const SharedName& a, const SharedName& b) {
    return a.rep_ == b.rep_;  // interned: the same text is the same entry
  }
  friend std::strong_ordering operator<=>(const SharedName& a, const SharedName& b) {
    return a.view() <=> b.view();
  }

  // Distinct names interned now (for tests).
  static size_t InternedCount();

  struct Rep;  // the entry: reference count, size and text (defined in shared_name.cc)

 private:
  explicit SharedName(Rep* rep) : rep_(rep) {}
  void Release() noexcept;

  Rep* rep_ = nullptr;
};

// Transparent comparison and hashing of name keys (SharedName, std::string) through string_view,
// for heterogeneous lookup (find(std::string) in a map keyed by SharedName).
struct NameLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a < b; }
};
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct NameEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

}  // namespace common::compress
