// Command line of meshstor-verify (see main.cc for the usage text).
//
// Thread contract: value types and a pure parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status/status.h"

namespace verifier {

enum class Mode { kWrite, kVerify };

struct Options {
  Mode mode = Mode::kWrite;
  std::string file;  // file on the volume under test, or a block device
  uint64_t run_id = 0;
  uint64_t slots = 0;  // ring size in blocks
  // write
  uint64_t count = 0;              // writes to do; 0 = until SIGTERM/SIGINT
  std::string ack_url;             // where acknowledged counts are POSTed; empty = nowhere
  uint64_t ack_interval_ms = 100;  // how often
  bool fsync = false;              // fdatasync after each write instead of O_DSYNC
  uint64_t pause_ms = 0;           // sleep between writes (keeps a slow VM responsive)
  // verify
  std::optional<uint64_t> acked;  // writes the host recorded as acknowledged
};

// Parses argv[1..]: "write|verify --file F --run N --slots N [...]". InvalidArgument naming the
// offending flag or value.
common::Result<Options> ParseOptions(const std::vector<std::string>& args);

}  // namespace verifier
