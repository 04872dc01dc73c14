#include "tools/csi-client/args.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "fmt/format.h"

namespace csi_client {
namespace {

using common::InvalidArgumentError;

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// "300s", "5m", "1500ms" or plain seconds.
common::Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  int64_t unit_ms = 1000;
  std::string_view digits = text;
  if (digits.size() > 2 && digits.substr(digits.size() - 2) == "ms") {
    unit_ms = 1;
    digits.remove_suffix(2);
  } else if (!digits.empty() && digits.back() == 's') {
    digits.remove_suffix(1);
  } else if (!digits.empty() && digits.back() == 'm') {
    unit_ms = 60'000;
    digits.remove_suffix(1);
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n < 0) {
    return InvalidArgumentError(
        "--timeout: expected a duration like 300s, 5m or 1500ms, got \"{}\"", text);
  }
  return std::chrono::milliseconds(n * unit_ms);
}

}  // namespace

const std::vector<CallSpec>& Calls() {
  static const std::vector<CallSpec> calls = {
      {"plugin-info", {}, {}, {}, false},
      {"plugin-capabilities", {}, {}, {}, false},
      {"probe", {}, {}, {}, false},
      {"controller-capabilities", {}, {}, {}, false},
      {"create-volume", {"name", "capacity"}, {"limit", "fs-type"}, {}, true},
      {"delete-volume", {"volume-id"}, {}, {}, false},
      {"validate-capabilities", {"volume-id"}, {"fs-type", "access-mode"}, {}, true},
      {"get-capacity", {}, {"fs-type"}, {}, true},
      {"controller-expand", {"volume-id", "capacity"}, {}, {}, false},
      {"node-info", {}, {}, {}, false},
      {"node-capabilities", {}, {}, {}, false},
      {"node-stage", {"volume-id", "staging-path"}, {"fs-type", "access-mode"}, {}, false},
      {"node-unstage", {"volume-id", "staging-path"}, {}, {}, false},
      {"node-publish",
       {"volume-id", "staging-path", "target"},
       {"fs-type", "access-mode"},
       {"readonly"},
       false},
      {"node-unpublish", {"volume-id", "target"}, {}, {}, false},
      {"node-expand", {"volume-id", "volume-path", "capacity"}, {"staging-path"}, {}, false},
      {"node-stats", {"volume-id", "volume-path"}, {"staging-path"}, {}, false},
  };
  return calls;
}

common::Result<int64_t> ParseBytes(std::string_view text) {
  struct Suffix {
    std::string_view name;
    int64_t factor;
  };
  static constexpr Suffix kSuffixes[] = {
      {"Ki", 1LL << 10}, {"Mi", 1LL << 20}, {"Gi", 1LL << 30},     {"Ti", 1LL << 40},
      {"K", 1000LL},     {"M", 1000'000LL}, {"G", 1000'000'000LL}, {"T", 1000'000'000'000LL}};
  int64_t factor = 1;
  std::string_view digits = text;
  for (const auto& s : kSuffixes) {
    if (digits.size() > s.name.size() && digits.substr(digits.size() - s.name.size()) == s.name) {
      factor = s.factor;
      digits.remove_suffix(s.name.size());
      break;
    }
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n < 0 ||
      n > std::numeric_limits<int64_t>::max() / factor) {
    return InvalidArgumentError("expected a size like 512Mi, 1Gi or 1073741824, got \"{}\"", text);
  }
  return n * factor;
}

int ExitCodeFor(int grpc_code) { return grpc_code == 0 ? 0 : 10 + grpc_code; }

std::string CodeName(int grpc_code) {
  static constexpr const char* kNames[] = {
      "OK",       "Cancelled",      "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (grpc_code >= 0 && grpc_code < static_cast<int>(std::size(kNames))) return kNames[grpc_code];
  return fmt::format("Code({})", grpc_code);
}

common::Result<Args> ParseArgs(const std::vector<std::string>& argv) {
  Args out;
  const CallSpec* spec = nullptr;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (spec != nullptr) return InvalidArgumentError("unexpected argument \"{}\"", arg);
      auto it = std::find_if(Calls().begin(), Calls().end(),
                             [&](const CallSpec& c) { return c.name == arg; });
      if (it == Calls().end()) return InvalidArgumentError("unknown call \"{}\"", arg);
      spec = &*it;
      out.call = arg;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const bool is_switch = name == "retry" || (spec != nullptr && Contains(spec->switches, name));
    if (is_switch) {
      if (value) return InvalidArgumentError("--{} takes no value", name);
      if (name == "retry") {
        out.retry = true;
      } else {
        out.switches.insert(name);
      }
      continue;
    }
    if (!value) {
      if (i + 1 >= argv.size()) return InvalidArgumentError("--{}: missing value", name);
      value = argv[++i];
    }
    if (name == "endpoint") {
      out.endpoint = *value;
    } else if (name == "timeout") {
      ASSIGN_OR_RETURN(out.timeout, ParseDuration(*value));
    } else if (name == "param") {
      size_t eq = value->find('=');
      if (spec == nullptr || !spec->params) {
        return InvalidArgumentError("--param is not accepted by {}",
                                    spec ? spec->name : std::string("this position"));
      }
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgumentError("--param: expected key=value, got \"{}\"", *value);
      }
      out.params[value->substr(0, eq)] = value->substr(eq + 1);
    } else if (spec != nullptr &&
               (Contains(spec->required, name) || Contains(spec->optional, name))) {
      out.flags[name] = *value;
    } else {
      return InvalidArgumentError("unknown flag --{}{}", name,
                                  spec ? " for " + spec->name : std::string(" before the call"));
    }
  }
  if (spec == nullptr) return InvalidArgumentError("no call given");
  if (out.endpoint.empty()) return InvalidArgumentError("--endpoint is required");
  for (const auto& r : spec->required) {
    if (!out.flags.count(r)) return InvalidArgumentError("{} needs --{}", spec->name, r);
  }
  return out;
}

std::string Usage() {
  std::string s =
      "usage: meshstor-csi-client --endpoint unix:///path [--retry] [--timeout 300s] <call> "
      "[flags]\n"
      "Makes one CSI v1 call and prints the response as JSON. Exit 0 on success, 10 + the gRPC "
      "code on an error (e.g. 15 NotFound, 16 AlreadyExists), 2 for a bad command line.\n"
      "calls:\n";
  for (const auto& c : Calls()) {
    s += "  " + c.name;
    for (const auto& r : c.required) s += " --" + r + " V";
    for (const auto& o : c.optional) s += " [--" + o + " V]";
    for (const auto& w : c.switches) s += " [--" + w + "]";
    if (c.params) s += " [--param k=v]...";
    s += "\n";
  }
  s += "sizes: 512Mi, 1Gi, 2G or bytes; access-mode: a VolumeCapability.AccessMode name "
       "(default SINGLE_NODE_WRITER); fs-type default xfs\n";
  return s;
}

}  // namespace csi_client
