#include "common/compress/slab_pool.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <catch2/catch.hpp>

#include "common/compress/shared_name.h"  // NameLess, NameHash, NameEqual

namespace common::compress {
namespace {

// A string whose heap part (past the 15 characters std::string keeps inline) is in the pool.
using SlabString = std::basic_string<char, std::char_traits<char>, SlabAllocator<char>>;
SlabString ToSlabString(std::string_view s) { return SlabString(s.data(), s.size()); }

TEST_CASE("SlabPool hands out aligned, distinct slots and reuses freed ones", "[unit][compress]") {
  if (!SlabPool::kEnabled) {
    WARN("skipped: built with AddressSanitizer, where SlabAllocator uses operator new");
    return;
  }
  const SlabPool::Stats before = SlabPool::GetStats();
  std::vector<std::pair<void*, size_t>> slots;
  std::set<uintptr_t> seen;
  for (size_t bytes = 1; bytes <= SlabPool::kMaxBytes; bytes += 7) {
    for (int i = 0; i < 50; ++i) {
      void* p = SlabPool::Allocate(bytes);
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<uintptr_t>(p) % SlabPool::kAlign == 0);
      CHECK(seen.insert(reinterpret_cast<uintptr_t>(p)).second);
      std::memset(p, static_cast<int>(bytes), bytes);  // the whole request is writable
      slots.emplace_back(p, bytes);
    }
  }
  // Nothing written over: every slot still holds its own byte.
  for (const auto& [p, bytes] : slots) {
    const auto* c = static_cast<const unsigned char*>(p);
    CHECK(c[0] == static_cast<unsigned char>(bytes));
    CHECK(c[bytes - 1] == static_cast<unsigned char>(bytes));
  }
  const SlabPool::Stats during = SlabPool::GetStats();
  size_t whole_slots = 0;
  for (const auto& [p, bytes] : slots) whole_slots += (bytes + 15) / 16 * 16;
  CHECK(during.used_bytes - before.used_bytes == whole_slots);
  CHECK(during.mapped_bytes >= before.mapped_bytes);

  // A freed slot is the next one its class hands out; other classes do not take it.
  void* freed = SlabPool::Allocate(40);
  SlabPool::Deallocate(freed, 40);
  CHECK(SlabPool::Allocate(33) == freed);  // 33..48 bytes: the same 48-byte class
  void* other = SlabPool::Allocate(64);
  CHECK(other != freed);
  SlabPool::Deallocate(other, 64);
  SlabPool::Deallocate(freed, 33);

  for (const auto& [p, bytes] : slots) SlabPool::Deallocate(p, bytes);
  const SlabPool::Stats after = SlabPool::GetStats();
  CHECK(after.used_bytes == before.used_bytes);
  CHECK(after.mapped_bytes == during.mapped_bytes);  // slabs stay, for the next allocations
  // Allocating the same again maps nothing new.
  for (auto& [p, bytes] : slots) p = SlabPool::Allocate(bytes);
  CHECK(SlabPool::GetStats().mapped_bytes == during.mapped_bytes);
  for (const auto& [p, bytes] : slots) SlabPool::Deallocate(p, bytes);
}

TEST_CASE("SlabAllocator keeps map nodes and long names in the pool, big arrays outside it",
          "[unit][compress]") {
  if (!SlabPool::kEnabled) {
    WARN("skipped: built with AddressSanitizer, where SlabAllocator uses operator new");
    return;
  }
  const size_t used0 = SlabPool::GetStats().used_bytes;
  {
    std::map<SlabString, int, NameLess, SlabAllocator<std::pair<const SlabString, int>>> m;
    m.emplace(ToSlabString("pvc-0b7cbb5e-6a1f-4b8e-9d52-3f0f1c2a9e41"), 1);  // 40 characters
    m.emplace(ToSlabString("short"), 2);  // inline in the string: no slot of its own
    const size_t node = sizeof(std::_Rb_tree_node<std::pair<const SlabString, int>>);
    CHECK(SlabPool::GetStats().used_bytes - used0 == 2 * ((node + 15) / 16 * 16) + 48);
    // Found with a std::string and a string_view, without a SlabString.
    CHECK(m.find(std::string("pvc-0b7cbb5e-6a1f-4b8e-9d52-3f0f1c2a9e41"))->second == 1);
    CHECK(m.find(std::string_view("short"))->second == 2);
    CHECK(m.find(std::string_view("other")) == m.end());
  }
  CHECK(SlabPool::GetStats().used_bytes == used0);
  {
    // A bucket array of 1000 pointers is larger than a slot class: operator new.
    std::vector<void*, SlabAllocator<void*>> v(1000);
    CHECK(SlabPool::GetStats().used_bytes == used0);
  }
}

TEST_CASE("Maps over SlabAllocator agree with std maps through random changes from two threads",
          "[unit][compress]") {
  using Map = std::unordered_map<SlabString, std::string, NameHash, NameEqual,
                                 SlabAllocator<std::pair<const SlabString, std::string>>>;
  const size_t used0 = SlabPool::GetStats().used_bytes;
  auto run = [](uint32_t seed, bool* agreed) {
    Map m;
    std::map<std::string, std::string> want;
    std::mt19937 rng(seed);
    for (int i = 0; i < 20000; ++i) {
      // Names of 5..60 characters: some inline, most in slots of several classes.
      std::string name(5 + rng() % 56, 'a' + static_cast<char>(rng() % 3));
      name += std::to_string(rng() % 500);
      if (rng() % 3 == 0) {
        if (auto it = m.find(std::string_view(name)); it != m.end()) m.erase(it);
        want.erase(name);
      } else {
        const std::string value = std::to_string(i);
        m.insert_or_assign(ToSlabString(name), value);
        want[name] = value;
      }
    }
    bool ok = m.size() == want.size();
    for (const auto& [k, v] : want) {
      auto it = m.find(std::string_view(k));
      ok = ok && it != m.end() && it->second == v;
    }
    *agreed = ok;
  };
  bool a = false, b = false;
  std::thread t1(run, 1u, &a), t2(run, 2u, &b);
  t1.join();
  t2.join();
  CHECK(a);
  CHECK(b);
  CHECK(SlabPool::GetStats().used_bytes == used0);  // every slot given back

  // Memory made in one thread and freed in another goes back to its class.
  std::vector<SlabString> names;
  std::thread maker([&] {
    for (int i = 0; i < 1000; ++i) names.push_back(ToSlabString(std::string(40, 'x')));
  });
  maker.join();
  if (SlabPool::kEnabled) CHECK(SlabPool::GetStats().used_bytes >= used0 + 1000 * 48);
  names.clear();
  names.shrink_to_fit();
  CHECK(SlabPool::GetStats().used_bytes == used0);
}

}  // namespace
}  // namespace common::compress
