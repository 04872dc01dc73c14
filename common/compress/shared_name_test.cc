#include "common/compress/shared_name.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/compress/slab_pool.h"

namespace common::compress {
namespace {

TEST_CASE("SharedName keeps one entry per text, alive while any copy holds it",
          "[unit][compress]") {
  // The table's first bucket array stays once made: make it before counting.
  { SharedName warm_up[] = {SharedName::Of("w1"), SharedName::Of("w2"), SharedName::Of("w3")}; }
  const size_t interned0 = SharedName::InternedCount();
  const size_t used0 = SlabPool::GetStats().used_bytes;
  {
    const std::string text = "pvc-0b7cbb5e-6a1f-4b8e-9d52-3f0f1c2a9e41";
    SharedName a = SharedName::Of(text);
    SharedName b = SharedName::Of(std::string(text));  // another buffer, the same text
    CHECK(a.view() == text);
    CHECK(a == b);
    CHECK(a.view().data() == b.view().data());  // one copy of the text
    CHECK(SharedName::InternedCount() == interned0 + 1);
    if (SlabPool::kEnabled) CHECK(SlabPool::GetStats().used_bytes > used0);

    SharedName c = SharedName::Of("pvc-0a-other");
    CHECK(c != a);
    CHECK(c < a);  // ordered by text
    CHECK(SharedName::InternedCount() == interned0 + 2);

    // Copies and moves share the entry; the entry goes with its last holder.
    SharedName d = a;
    a = SharedName();
    b = std::move(c);
    CHECK(b.view() == "pvc-0a-other");
    CHECK(c.empty());  // NOLINT(bugprone-use-after-move): a moved-from name is empty
    CHECK(SharedName::InternedCount() == interned0 + 2);
    d = b;  // the last holder of the pvc-0b7... entry lets go of it
    CHECK(SharedName::InternedCount() == interned0 + 1);
    // Interned again, it is a new entry with the same text.
    SharedName e = SharedName::Of(text);
    CHECK(e.view() == text);
    CHECK(SharedName::InternedCount() == interned0 + 2);
  }
  CHECK(SharedName::InternedCount() == interned0);
  CHECK(SlabPool::GetStats().used_bytes == used0);

  // The empty name holds nothing.
  SharedName empty = SharedName::Of("");
  CHECK(empty.empty());
  CHECK(empty.view().empty());
  CHECK(empty == SharedName());
  CHECK(SharedName::InternedCount() == interned0);
}

TEST_CASE(
    "SharedName keys find entries by string_view and survive threads interning and "
    "releasing the same names",
    "[unit][compress]") {
  const size_t interned0 = SharedName::InternedCount();
  {
    std::map<SharedName, int, NameLess> m;
    m.emplace(SharedName::Of("b-volume"), 2);
    m.emplace(SharedName::Of("a-volume"), 1);
    CHECK(m.begin()->first.view() == "a-volume");
    CHECK(m.find(std::string_view("b-volume"))->second == 2);
    CHECK(m.find(std::string("b-volume"))->second == 2);
    CHECK(m.find(std::string_view("c-volume")) == m.end());
  }
  // Four threads intern, copy and release 50 shared names 2000 times each: every entry found is
  // the text asked for, and none is left behind.
  auto run = [](int seed, bool* ok) {
    *ok = true;
    std::vector<SharedName> held;
    for (int i = 0; i < 2000; ++i) {
      const std::string text = "pvc-" + std::to_string((i * 7 + seed) % 50) + std::string(30, 'x');
      SharedName n = SharedName::Of(text);
      *ok = *ok && n.view() == text;
      if (i % 3 == 0) held.push_back(n);
      if (held.size() > 10) held.erase(held.begin());
    }
  };
  bool ok[4] = {false, false, false, false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(run, t, &ok[t]);
  for (auto& t : threads) t.join();
  for (bool b : ok) CHECK(b);
  CHECK(SharedName::InternedCount() == interned0);
}

}  // namespace
}  // namespace common::compress
