#include "agent/sys/nvmet.h"

#include <cctype>
#include <cstdint>
#include <string>

#include "common/text/hash.h"

namespace agent::sys {
namespace {

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// A Kubernetes node name: a DNS subdomain (RFC 1123), at most 253 characters.
bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return name.front() != '-' && name.front() != '.' && name.back() != '-' && name.back() != '.';
}

}  // namespace

std::string_view NvmeTransportName(NvmeTransport transport) {
  switch (transport) {
    case NvmeTransport::kTcp:
      return "tcp";
    case NvmeTransport::kRdma:
      return "rdma";
  }
  return "tcp";
}

common::Result<NvmeTransport> ParseNvmeTransport(std::string_view name) {
  if (name == "tcp") return NvmeTransport::kTcp;
  if (name == "rdma") return NvmeTransport::kRdma;
  return common::InvalidArgumentError("NVMe-oF transport \"{}\": want tcp or rdma", name);
}

common::Status ValidateNqn(std::string_view nqn) {
  if (nqn.substr(0, 4) != "nqn.") {
    return common::InvalidArgumentError("NQN \"{}\": must start with \"nqn.\"", nqn);
  }
  if (nqn.size() > kMaxNqnBytes) {
    return common::InvalidArgumentError("NQN \"{}\": {} bytes, at most {} allowed", nqn, nqn.size(),
                                        kMaxNqnBytes);
  }
  for (char c : nqn) {
    if (c <= ' ' || c > '~' || c == '/') {
      return common::InvalidArgumentError(
          "NQN \"{}\": only printable ASCII without spaces or '/' is allowed", nqn);
    }
  }
  return common::OkStatus();
}

common::Result<std::string> SubsystemNqn(std::string_view exporting_node,
                                         std::string_view consumer_node) {
  if (!IsValidNodeName(exporting_node)) {
    return common::InvalidArgumentError("exporting node name \"{}\" is not a valid node name",
                                        exporting_node);
  }
  if (!IsValidNodeName(consumer_node)) {
    return common::InvalidArgumentError("consumer node name \"{}\" is not a valid node name",
                                        consumer_node);
  }
  std::string nqn = fmt::format("{}:{}:{}", kNqnPrefix, exporting_node, consumer_node);
  if (nqn.size() > kMaxNqnBytes) {
    return common::InvalidArgumentError(
        "subsystem NQN for nodes \"{}\" and \"{}\" would be {} bytes, at most {} allowed",
        exporting_node, consumer_node, nqn.size(), kMaxNqnBytes);
  }
  return nqn;
}

std::string SubsystemSerial(std::string_view nqn) {
  // 20 hex digits: 16 from one hash, 4 from a second with another seed.
  uint64_t a = common::text::Fnv1a64(nqn);
  uint64_t b = common::text::Fnv1a64(nqn, 0x84222325cbf29ce4ULL);
  return fmt::format("{:016x}{:04x}", a, b & 0xffff);
}

common::Status ValidateNamespaceSpec(std::string_view what, const NvmetNamespaceSpec& spec) {
  if (spec.nsid == 0 || spec.device_path.empty() || !IsUuid(spec.device_uuid)) {
    return common::InvalidArgumentError(
        "{}: nsid >= 1, a device path and a UUID device_uuid are required (got \"{}\")", what,
        spec.device_uuid);
  }
  return common::OkStatus();
}

std::string LowerUuid(std::string_view uuid) {
  std::string out(uuid);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

common::Status CheckNamespaceReplace(std::string_view what, bool enabled, bool same,
                                     const NvmetNamespaceSpec& want) {
  if (!enabled || same) return common::OkStatus();
  return common::FailedPreconditionError(
      "{}: enabled with another device or uuid; remove it before changing it to {} ({})", what,
      want.device_path, want.device_uuid);
}

}  // namespace agent::sys
