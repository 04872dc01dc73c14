#include "common/compress/dictionary_deflate.h"

#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace common::compress {
namespace {

std::string Object(int i) {
  return R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolume","metadata":{"name":"pvc-)" +
         std::to_string(i) + R"(","resourceVersion":")" + std::to_string(1000 + i) +
         R"("},"spec":{"capacityBytes":1073741824,"replicaCount":2,"consumerNode":"node-)" +
         std::to_string(i % 7) + R"("}})";
}

TEST_CASE("DictionaryDeflate round-trips texts, with and without a dictionary", "[compress]") {
  for (const std::string& dict : {std::string(), Object(0), std::string(40000, 'x') + Object(0)}) {
    DictionaryDeflate d(dict);
    std::mt19937 rng(7);
    std::vector<std::string> texts = {"", "a", Object(1), Object(123456), std::string(70000, 'z')};
    std::string random(5000, '\0');
    for (char& c : random) c = static_cast<char>(rng());
    texts.push_back(random);
    for (const std::string& t : texts) {
      auto c = d.Compress(t);
      REQUIRE(c.ok());
      auto back = d.Decompress(*c);
      REQUIRE(back.ok());
      CHECK(*back == t);
    }
  }
}

TEST_CASE("A dictionary of the same kind makes small objects much smaller", "[compress]") {
  DictionaryDeflate plain("");
  DictionaryDeflate with(Object(0));
  const std::string t = Object(42);
  auto p = plain.Compress(t);
  auto w = with.Compress(t);
  REQUIRE(p.ok());
  REQUIRE(w.ok());
  CHECK(w->size() * 3 < p->size());
  CHECK(p->size() < t.size());
}

TEST_CASE("Decompress rejects what Compress did not write with the same dictionary", "[compress]") {
  DictionaryDeflate d(Object(0));
  auto c = d.Compress(Object(5));
  REQUIRE(c.ok());
  SECTION("empty") { CHECK(d.Decompress("").status().code() == StatusCode::kDataLoss); }
  SECTION("truncated") {
    CHECK(d.Decompress(c->substr(0, c->size() - 2)).status().code() == StatusCode::kDataLoss);
  }
  SECTION("length prefix says less than the stream holds") {
    std::string shorter = *c;
    shorter[0] = static_cast<char>(shorter[0] - 1);  // the prefix's low 7 bits
    CHECK(d.Decompress(shorter).status().code() == StatusCode::kDataLoss);
  }
  SECTION("length prefix says more than the stream holds") {
    std::string longer = *c;
    longer[0] = static_cast<char>(longer[0] + 1);
    CHECK(d.Decompress(longer).status().code() == StatusCode::kDataLoss);
  }
  SECTION("bytes after the end of the stream") {
    CHECK(d.Decompress(*c + "x").status().code() == StatusCode::kDataLoss);
  }
  SECTION("another dictionary") {
    DictionaryDeflate other(Object(9) + "other");
    auto back = other.Decompress(*c);
    CHECK((!back.ok() || *back != Object(5)));
  }
}

TEST_CASE("DictionaryDeflate is safe from several threads", "[compress]") {
  DictionaryDeflate d(Object(0));
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string text = Object(t * 1000 + i);
        auto c = d.Compress(text);
        auto back = c.ok() ? d.Decompress(*c) : c;
        if (!back.ok() || *back != text) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace common::compress
