#include "tools/verifier/options.h"

#include <charconv>

namespace verifier {
namespace {

common::Result<uint64_t> ParseNumber(const std::string& flag, const std::string& value) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return common::InvalidArgumentError("{}: \"{}\" is not a non-negative integer", flag, value);
  }
  return v;
}

}  // namespace

common::Result<Options> ParseOptions(const std::vector<std::string>& args) {
  Options o;
  if (args.empty()) {
    return common::InvalidArgumentError("missing mode: write or verify");
  }
  if (args[0] == "write") {
    o.mode = Mode::kWrite;
  } else if (args[0] == "verify") {
    o.mode = Mode::kVerify;
  } else {
    return common::InvalidArgumentError("unknown mode \"{}\": write or verify", args[0]);
  }
  bool have_run = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--fsync") {
      o.fsync = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      return common::InvalidArgumentError("{}: missing value (or unknown flag)", flag);
    }
    const std::string& value = args[++i];
    auto number = [&](uint64_t& out) -> common::Status {
      ASSIGN_OR_RETURN(out, ParseNumber(flag, value));
      return common::OkStatus();
    };
    if (flag == "--file") {
      o.file = value;
    } else if (flag == "--run") {
      RETURN_IF_ERROR(number(o.run_id));
      have_run = true;
    } else if (flag == "--slots") {
      RETURN_IF_ERROR(number(o.slots));
    } else if (flag == "--count" && o.mode == Mode::kWrite) {
      RETURN_IF_ERROR(number(o.count));
    } else if (flag == "--ack-url" && o.mode == Mode::kWrite) {
      o.ack_url = value;
    } else if (flag == "--ack-interval-ms" && o.mode == Mode::kWrite) {
      RETURN_IF_ERROR(number(o.ack_interval_ms));
    } else if (flag == "--pause-ms" && o.mode == Mode::kWrite) {
      RETURN_IF_ERROR(number(o.pause_ms));
    } else if (flag == "--acked" && o.mode == Mode::kVerify) {
      uint64_t v = 0;
      RETURN_IF_ERROR(number(v));
      o.acked = v;
    } else {
      return common::InvalidArgumentError("unknown flag {} for mode {}", flag, args[0]);
    }
  }
  if (o.file.empty()) {
    return common::InvalidArgumentError("--file is required");
  }
  if (!have_run) {
    return common::InvalidArgumentError("--run is required");
  }
  if (o.slots == 0) {
    return common::InvalidArgumentError("--slots is required and must be at least 1");
  }
  if (o.mode == Mode::kVerify && !o.acked) {
    return common::InvalidArgumentError(
        "--acked is required for verify (the host's count of acknowledged writes)");
  }
  if (o.mode == Mode::kWrite && o.ack_interval_ms == 0) {
    return common::InvalidArgumentError("--ack-interval-ms must be at least 1");
  }
  return o;
}

}  // namespace verifier
