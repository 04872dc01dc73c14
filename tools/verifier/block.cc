#include "tools/verifier/block.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

namespace verifier {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78U : c >> 1;
    }
    table[i] = c;
  }
  return table;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += kGolden);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | p[i];
  }
  return v;
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | p[i];
  }
  return v;
}

constexpr size_t kRunAt = 8, kSeqAt = 16, kOffsetAt = 24, kSizeAt = 32, kPayloadCrcAt = 36,
                 kHeaderCrcAt = 40;

}  // namespace

uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  crc = ~crc;
  for (uint8_t b : data) {
    crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  }
  return ~crc;
}

void FillPayload(uint64_t run_id, uint64_t seq, std::span<uint8_t> out) {
  uint64_t state = run_id * kGolden ^ (seq + 1) * 0xD1B54A32D192ED03ULL;
  size_t i = 0;
  while (i < out.size()) {
    uint64_t v = SplitMix64(state);
    for (int k = 0; k < 8 && i < out.size(); ++k, ++i) {
      out[i] = static_cast<uint8_t>(v >> (8 * k));
    }
  }
}

void EncodeBlock(uint64_t run_id, uint64_t seq, uint64_t offset, std::span<uint8_t> out) {
  std::fill(out.begin(), out.begin() + kHeaderSize, uint8_t{0});
  uint8_t* p = out.data();
  std::memcpy(p, kMagic.data(), kMagic.size());
  Put64(p + kRunAt, run_id);
  Put64(p + kSeqAt, seq);
  Put64(p + kOffsetAt, offset);
  Put32(p + kSizeAt, static_cast<uint32_t>(out.size()));
  std::span<uint8_t> payload = out.subspan(kHeaderSize);
  FillPayload(run_id, seq, payload);
  Put32(p + kPayloadCrcAt, Crc32c(payload));
  Put32(p + kHeaderCrcAt, Crc32c(out.first(kHeaderCrcAt)));
}

std::string_view BlockStateName(BlockState state) {
  switch (state) {
    case BlockState::kValid:
      return "valid";
    case BlockState::kZero:
      return "zero";
    case BlockState::kBadMagic:
      return "bad-magic";
    case BlockState::kBadHeader:
      return "bad-header";
    case BlockState::kBadPayload:
      return "bad-payload";
    case BlockState::kWrongRun:
      return "wrong-run";
    case BlockState::kWrongOffset:
      return "wrong-offset";
  }
  return "unknown";
}

DecodedBlock DecodeBlock(std::span<const uint8_t> block, uint64_t run_id, uint64_t offset) {
  DecodedBlock d;
  if (std::all_of(block.begin(), block.end(), [](uint8_t b) { return b == 0; })) {
    d.state = BlockState::kZero;
    return d;
  }
  const uint8_t* p = block.data();
  if (block.size() < kHeaderSize || std::memcmp(p, kMagic.data(), kMagic.size()) != 0) {
    d.state = BlockState::kBadMagic;
    return d;
  }
  if (Get32(p + kHeaderCrcAt) != Crc32c(block.first(kHeaderCrcAt)) ||
      Get32(p + kSizeAt) != block.size()) {
    d.state = BlockState::kBadHeader;
    return d;
  }
  d.run_id = Get64(p + kRunAt);
  d.seq = Get64(p + kSeqAt);
  d.offset = Get64(p + kOffsetAt);
  std::span<const uint8_t> payload = block.subspan(kHeaderSize);
  if (Get32(p + kPayloadCrcAt) != Crc32c(payload)) {
    d.state = BlockState::kBadPayload;
    return d;
  }
  // The checksum could match a payload written by a buggy writer: compare the content too.
  std::vector<uint8_t> expect(payload.size());
  FillPayload(d.run_id, d.seq, expect);
  if (!std::equal(expect.begin(), expect.end(), payload.begin())) {
    d.state = BlockState::kBadPayload;
    return d;
  }
  if (d.run_id != run_id) {
    d.state = BlockState::kWrongRun;
  } else if (d.offset != offset) {
    d.state = BlockState::kWrongOffset;
  } else {
    d.state = BlockState::kValid;
  }
  return d;
}

std::optional<uint64_t> LatestAckedSeq(uint64_t acked, uint64_t slots, uint64_t slot) {
  if (slots == 0 || slot >= slots || acked <= slot) {
    return std::nullopt;
  }
  return slot + (acked - 1 - slot) / slots * slots;
}

common::Result<Report> VerifyRing(uint64_t run_id, uint64_t acked, uint64_t slots,
                                  const ReadSlot& read) {
  if (slots == 0) {
    return common::InvalidArgumentError("slots must be at least 1");
  }
  Report r;
  r.run_id = run_id;
  r.acknowledged = acked;
  r.checked = std::min(acked, slots);
  std::vector<uint8_t> buf(kBlockSize);
  for (uint64_t slot = 0; slot < r.checked; ++slot) {
    uint64_t expected = *LatestAckedSeq(acked, slots, slot);
    LostBlock lost{.slot = slot, .expected_seq = expected};
    common::Status s = read(slot, buf);
    if (!s.ok()) {
      lost.reason = "read error: " + s.ToString();
    } else {
      lost.found = DecodeBlock(buf, run_id, slot * kBlockSize);
      if (lost.found.state != BlockState::kValid) {
        lost.reason = std::string(BlockStateName(lost.found.state));
      } else if (lost.found.seq % slots != slot) {
        lost.reason = fmt::format("seq {} does not belong to this slot", lost.found.seq);
      } else if (lost.found.seq < expected) {
        lost.reason = fmt::format("older seq {}", lost.found.seq);
      } else {
        ++r.verified;
        continue;
      }
    }
    ++r.lost;
    if (r.first_lost.size() < kMaxListedLost) {
      r.first_lost.push_back(std::move(lost));
    }
  }
  return r;
}

std::string FormatReport(const Report& report) {
  std::string out =
      fmt::format("meshstor-verify: run={} acknowledged={} checked={} verified={} lost={}\n",
                  report.run_id, report.acknowledged, report.checked, report.verified, report.lost);
  for (const LostBlock& l : report.first_lost) {
    out += fmt::format("lost slot={} expected-seq={} found={}\n", l.slot, l.expected_seq, l.reason);
  }
  if (report.lost > report.first_lost.size()) {
    out +=
        fmt::format("... {} more lost blocks not listed\n", report.lost - report.first_lost.size());
  }
  return out;
}

std::string FormatAck(const AckState& ack) {
  return fmt::format("run={} acked={} slots={} block={} errors={} max-latency-ms={}", ack.run_id,
                     ack.acked, ack.slots, kBlockSize, ack.errors, ack.max_latency_ms);
}

common::Result<Url> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  auto bad = [&](std::string_view why) {
    return common::InvalidArgumentError("URL \"{}\": {}", url, why);
  };
  if (!url.starts_with(kScheme)) {
    return bad("must start with http://");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t colon = authority.find(':');
  u.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    unsigned value = 0;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return bad("port is not a number");
    }
    for (char c : port) {
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
      return bad("port out of range");
    }
    u.port = static_cast<uint16_t>(value);
  }
  int dots = 0;
  bool ok = !u.host.empty();
  for (char c : u.host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      ok = false;
    }
  }
  if (!ok || dots != 3) {
    return bad("host must be a numeric IPv4 address");
  }
  return u;
}

}  // namespace verifier
