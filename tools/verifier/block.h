// The data verifier's block format and verification rules (meshstor-verify, tools/verifier).
//
// The verifier writes numbered blocks to a file on the volume under test: write number `seq`
// (0, 1, 2, ...) goes to slot seq % slots, i.e. the file is a ring of `slots` blocks of
// kBlockSize bytes. Each block is self-describing:
//
//   bytes  0..7   magic "MSVRFY01"
//          8..15  run id (u64, little-endian): which writer run wrote it
//         16..23  seq (u64): the write's number
//         24..31  offset (u64): the block's byte offset in the file (catches misplaced writes)
//         32..35  block size (u32)
//         36..39  CRC32C of the payload (bytes kHeaderSize..end)
//         40..43  CRC32C of bytes 0..39
//         44..63  zero
//         64..    payload: a deterministic byte stream of (run id, seq) (splitmix64)
//
// The writer acknowledges a write once write(2) with O_DIRECT|O_DSYNC returned, and reports the
// number of acknowledged writes (`acked`: writes 0..acked-1) to a host outside the system under
// test. Verification of a ring against `acked`: every slot that was written must hold a valid
// block of this run whose seq is at least the slot's latest acknowledged seq (a later,
// unacknowledged write that reached the disk is fine); anything else (zero, torn, corrupt, of
// another run, older) is a lost acknowledged write.
//
// Thread contract: pure functions and value types.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace verifier {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kHeaderSize = 64;
inline constexpr std::string_view kMagic = "MSVRFY01";

// CRC32C (Castagnoli, reflected, as in iSCSI/ext4): Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc = 0);

// Fills `out` with the deterministic payload of (run_id, seq).
void FillPayload(uint64_t run_id, uint64_t seq, std::span<uint8_t> out);

// Writes the complete block of write `seq` (header + payload) into `out`.
// REQUIRES: out.size() == kBlockSize.
void EncodeBlock(uint64_t run_id, uint64_t seq, uint64_t offset, std::span<uint8_t> out);

enum class BlockState {
  kValid,        // a block of the expected run at the expected offset, checksums and payload ok
  kZero,         // all zero: never written (or lost)
  kBadMagic,     // not a verifier block
  kBadHeader,    // header checksum wrong (torn or corrupt header)
  kBadPayload,   // payload checksum or content wrong
  kWrongRun,     // a valid block of another run
  kWrongOffset,  // a valid block written for another offset (misplaced)
};
std::string_view BlockStateName(BlockState state);

struct DecodedBlock {
  BlockState state = BlockState::kZero;
  uint64_t run_id = 0;
  uint64_t seq = 0;
  uint64_t offset = 0;
};

// Checks one block read from `offset` against run `run_id`.
DecodedBlock DecodeBlock(std::span<const uint8_t> block, uint64_t run_id, uint64_t offset);

// The latest write to `slot` among writes 0..acked-1 of a ring of `slots`; nullopt when no
// acknowledged write went to that slot.
std::optional<uint64_t> LatestAckedSeq(uint64_t acked, uint64_t slots, uint64_t slot);

struct LostBlock {
  uint64_t slot = 0;
  uint64_t expected_seq = 0;  // the latest acknowledged write to this slot
  DecodedBlock found;
  std::string reason;  // "zero", "older seq 12", "bad-payload", "read error: ..."
};

struct Report {
  uint64_t run_id = 0;
  uint64_t acknowledged = 0;  // writes the host recorded as acknowledged
  uint64_t checked = 0;       // blocks that must hold an acknowledged write (min(acked, slots))
  uint64_t verified = 0;      // of those, holding it (or a later write)
  uint64_t lost = 0;          // checked - verified
  std::vector<LostBlock> first_lost;  // at most kMaxListedLost, in slot order
};
inline constexpr size_t kMaxListedLost = 16;

// Reads slot `slot` (kBlockSize bytes at slot * kBlockSize) into `out`.
using ReadSlot = std::function<common::Status(uint64_t slot, std::span<uint8_t> out)>;

// Verifies every slot holding an acknowledged write. A read error counts the slot as lost (its
// message is in the reason); the function itself fails only on bad arguments.
common::Result<Report> VerifyRing(uint64_t run_id, uint64_t acked, uint64_t slots,
                                  const ReadSlot& read);

// "meshstor-verify: run=7 acknowledged=10 checked=4 verified=4 lost=0", then one line per
// listed lost block ("lost slot=3 expected-seq=7 found=zero").
std::string FormatReport(const Report& report);

// The body the writer POSTs to the host: "run=<id> acked=<n> slots=<s> block=<bytes>
// errors=<n> max-latency-ms=<ms>".
struct AckState {
  uint64_t run_id = 0;
  uint64_t acked = 0;
  uint64_t slots = 0;
  uint64_t errors = 0;          // failed write attempts (retried)
  uint64_t max_latency_ms = 0;  // slowest acknowledged write, including its retries
};
std::string FormatAck(const AckState& ack);

// "http://10.77.0.254:8080/ack/7" -> {host "10.77.0.254", port 8080, path "/ack/7"}. Only
// numeric IPv4 hosts (the guest has no resolver); InvalidArgument naming the URL otherwise.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string path;
};
common::Result<Url> ParseUrl(std::string_view url);

}  // namespace verifier
