#include "tools/verifier/block.h"

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace verifier {
namespace {

std::vector<uint8_t> Block(uint64_t run, uint64_t seq, uint64_t offset) {
  std::vector<uint8_t> b(kBlockSize);
  EncodeBlock(run, seq, offset, b);
  return b;
}

// An in-memory ring: slot -> block bytes (missing slots read as zero).
struct Ring {
  std::map<uint64_t, std::vector<uint8_t>> slots;
  void Write(uint64_t run, uint64_t seq, uint64_t nslots) {
    uint64_t slot = seq % nslots;
    slots[slot] = Block(run, seq, slot * kBlockSize);
  }
  ReadSlot Reader() const {
    return [this](uint64_t slot, std::span<uint8_t> out) -> common::Status {
      auto it = slots.find(slot);
      if (it == slots.end()) {
        std::memset(out.data(), 0, out.size());
      } else {
        std::memcpy(out.data(), it->second.data(), out.size());
      }
      return common::OkStatus();
    };
  }
};

TEST_CASE("Crc32c matches the Castagnoli check value", "[verifier]") {
  const std::string s = "123456789";
  CHECK(Crc32c({reinterpret_cast<const uint8_t*>(s.data()), s.size()}) == 0xE3069283U);
}

TEST_CASE("A block decodes to its run, seq and offset", "[verifier]") {
  auto b = Block(7, 42, 8192);
  DecodedBlock d = DecodeBlock(b, 7, 8192);
  CHECK(d.state == BlockState::kValid);
  CHECK(d.run_id == 7);
  CHECK(d.seq == 42);
  CHECK(d.offset == 8192);
}

TEST_CASE("Payloads differ between writes and runs", "[verifier]") {
  auto a = Block(7, 1, 0), b = Block(7, 2, 0), c = Block(8, 1, 0);
  CHECK(std::memcmp(a.data() + kHeaderSize, b.data() + kHeaderSize, kBlockSize - kHeaderSize));
  CHECK(std::memcmp(a.data() + kHeaderSize, c.data() + kHeaderSize, kBlockSize - kHeaderSize));
}

TEST_CASE("Damaged, foreign and misplaced blocks are told apart", "[verifier]") {
  auto b = Block(7, 3, 4096);
  SECTION("a flipped payload bit") {
    b[kBlockSize - 1] ^= 1;
    CHECK(DecodeBlock(b, 7, 4096).state == BlockState::kBadPayload);
  }
  SECTION("a flipped seq bit") {
    b[16] ^= 1;
    CHECK(DecodeBlock(b, 7, 4096).state == BlockState::kBadHeader);
  }
  SECTION("a torn block: the second half of another write") {
    auto other = Block(7, 5, 4096);
    std::memcpy(b.data() + kBlockSize / 2, other.data() + kBlockSize / 2, kBlockSize / 2);
    CHECK(DecodeBlock(b, 7, 4096).state == BlockState::kBadPayload);
  }
  SECTION("zero") {
    std::vector<uint8_t> z(kBlockSize);
    CHECK(DecodeBlock(z, 7, 4096).state == BlockState::kZero);
  }
  SECTION("garbage") {
    b[0] = 'X';
    CHECK(DecodeBlock(b, 7, 4096).state == BlockState::kBadMagic);
  }
  SECTION("another run") { CHECK(DecodeBlock(b, 8, 4096).state == BlockState::kWrongRun); }
  SECTION("another offset") { CHECK(DecodeBlock(b, 7, 0).state == BlockState::kWrongOffset); }
}

TEST_CASE("LatestAckedSeq is the last acknowledged write to a slot", "[verifier]") {
  CHECK(LatestAckedSeq(0, 4, 0) == std::nullopt);
  CHECK(LatestAckedSeq(3, 4, 3) == std::nullopt);  // writes 0, 1, 2 only
  CHECK(LatestAckedSeq(3, 4, 2) == 2);
  CHECK(LatestAckedSeq(10, 4, 0) == 8);  // 0, 4, 8
  CHECK(LatestAckedSeq(10, 4, 1) == 9);
  CHECK(LatestAckedSeq(10, 4, 2) == 6);
  CHECK(LatestAckedSeq(10, 4, 4) == std::nullopt);
}

TEST_CASE("VerifyRing: every acknowledged write present", "[verifier]") {
  Ring ring;
  for (uint64_t s = 0; s < 10; ++s) ring.Write(7, s, 4);
  auto r = VerifyRing(7, 10, 4, ring.Reader());
  REQUIRE(r.ok());
  CHECK(r->acknowledged == 10);
  CHECK(r->checked == 4);
  CHECK(r->verified == 4);
  CHECK(r->lost == 0);
  CHECK(FormatReport(*r) == "meshstor-verify: run=7 acknowledged=10 checked=4 verified=4 lost=0\n");
}

TEST_CASE("VerifyRing: a later unacknowledged write on disk is not a loss", "[verifier]") {
  Ring ring;
  for (uint64_t s = 0; s < 11; ++s) ring.Write(7, s, 4);  // write 10 landed, not acked
  auto r = VerifyRing(7, 10, 4, ring.Reader());
  REQUIRE(r.ok());
  CHECK(r->lost == 0);
}

TEST_CASE("VerifyRing: a slot holding an older write lost the acknowledged one", "[verifier]") {
  Ring ring;
  for (uint64_t s = 0; s < 9; ++s) ring.Write(7, s, 4);  // write 9 (slot 1) never landed
  auto r = VerifyRing(7, 10, 4, ring.Reader());
  REQUIRE(r.ok());
  CHECK(r->verified == 3);
  CHECK(r->lost == 1);
  REQUIRE(r->first_lost.size() == 1);
  CHECK(r->first_lost[0].slot == 1);
  CHECK(r->first_lost[0].expected_seq == 9);
  CHECK(FormatReport(*r) ==
        "meshstor-verify: run=7 acknowledged=10 checked=4 verified=3 lost=1\n"
        "lost slot=1 expected-seq=9 found=older seq 5\n");
}

TEST_CASE("VerifyRing: zero, corrupt and read errors are losses", "[verifier]") {
  Ring ring;
  for (uint64_t s = 0; s < 6; ++s) ring.Write(7, s, 8);
  ring.slots.erase(2);
  ring.slots[3][100] ^= 0xFF;
  ReadSlot base = ring.Reader();
  ReadSlot read = [&](uint64_t slot, std::span<uint8_t> out) -> common::Status {
    if (slot == 5) return common::ErrnoToStatus(5, "pread");
    return base(slot, out);
  };
  auto r = VerifyRing(7, 6, 8, read);
  REQUIRE(r.ok());
  CHECK(r->checked == 6);
  CHECK(r->verified == 3);
  CHECK(r->lost == 3);
  REQUIRE(r->first_lost.size() == 3);
  CHECK(r->first_lost[0].reason == "zero");
  CHECK(r->first_lost[1].reason == "bad-payload");
  CHECK(r->first_lost[2].reason.starts_with("read error: "));
}

TEST_CASE("VerifyRing: blocks of another run are losses", "[verifier]") {
  Ring ring;
  for (uint64_t s = 0; s < 4; ++s) ring.Write(8, s, 4);
  auto r = VerifyRing(7, 4, 4, ring.Reader());
  REQUIRE(r.ok());
  CHECK(r->lost == 4);
  CHECK(r->first_lost[0].reason == "wrong-run");
}

TEST_CASE("VerifyRing: nothing acknowledged checks nothing; zero slots is an error", "[verifier]") {
  Ring ring;
  auto r = VerifyRing(7, 0, 4, ring.Reader());
  REQUIRE(r.ok());
  CHECK(r->checked == 0);
  CHECK(r->lost == 0);
  CHECK_FALSE(VerifyRing(7, 1, 0, ring.Reader()).ok());
}

TEST_CASE("FormatAck is what the host parses", "[verifier]") {
  CHECK(FormatAck({.run_id = 3, .acked = 12, .slots = 64, .errors = 1, .max_latency_ms = 250}) ==
        "run=3 acked=12 slots=64 block=4096 errors=1 max-latency-ms=250");
}

TEST_CASE("ParseUrl takes numeric IPv4 http URLs only", "[verifier]") {
  auto u = ParseUrl("http://10.77.0.254:8080/ack/7");
  REQUIRE(u.ok());
  CHECK(u->host == "10.77.0.254");
  CHECK(u->port == 8080);
  CHECK(u->path == "/ack/7");
  auto d = ParseUrl("http://127.0.0.1");
  REQUIRE(d.ok());
  CHECK(d->port == 80);
  CHECK(d->path == "/");
  CHECK(ParseUrl("https://10.0.0.1/x").status().message().find("http://") != std::string::npos);
  CHECK(ParseUrl("http://host.example:80/").status().message().find("IPv4") != std::string::npos);
  CHECK_FALSE(ParseUrl("http://10.0.0.1:99999/").ok());
  CHECK_FALSE(ParseUrl("http://10.0.0.1:x/").ok());
}

}  // namespace
}  // namespace verifier
