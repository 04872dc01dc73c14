#include "common/config/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace common::config {
namespace internal {

// A value of any option type; the alternatives are in the same order as Target's.
using Value = std::variant<std::string, int64_t, bool, double, std::chrono::milliseconds>;
using Target = std::variant<std::string*, int64_t*, bool*, double*, std::chrono::milliseconds*>;

struct Option {
  std::string name;
  std::string help;
  Target target;  // Never null once declared.
  Value default_value;
  std::optional<Value> min;
  std::optional<Value> max;
  std::vector<std::string> allowed;  // Strings only; empty means any.
};

}  // namespace internal

namespace {

using internal::Option;
using internal::Target;
using internal::Value;

using std::chrono::milliseconds;

constexpr std::string_view kEnvPrefix = "MESHSTOR_";
constexpr std::string_view kConfigFlag = "config";
constexpr std::string_view kHelpFlag = "help";

// Indexes of Value and Target alternatives.
enum TypeIndex : size_t { kString = 0, kInt64 = 1, kBool = 2, kDouble = 3, kDuration = 4 };

static_assert(std::is_same_v<std::variant_alternative_t<kDuration, Value>, milliseconds>);
static_assert(std::is_same_v<std::variant_alternative_t<kDuration, Target>, milliseconds*>);

constexpr std::string_view kDurationSyntax =
    "expected a duration such as 30s, 1m30s or 500ms (a plain number means seconds)";

std::string_view TypeName(size_t index) {
  switch (index) {
    case kString:
      return "string";
    case kInt64:
      return "int";
    case kBool:
      return "bool";
    case kDouble:
      return "float";
    default:
      return "duration";
  }
}

std::string Quote(std::string_view s) { return fmt::format("{:?}", s); }

std::string FormatValue(const Value& v) {
  switch (v.index()) {
    case kString:
      return Quote(std::get<kString>(v));
    case kInt64:
      return fmt::format("{}", std::get<kInt64>(v));
    case kBool:
      return std::get<kBool>(v) ? "true" : "false";
    case kDouble:
      return fmt::format("{}", std::get<kDouble>(v));
    default:
      return FormatDuration(std::get<kDuration>(v));
  }
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z' || name.back() == '-') {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (c == '-' && name[i - 1] == '-')) return false;
  }
  return true;
}

Result<int64_t> ParseInt64(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return InvalidArgumentError("integer {} does not fit in 64 bits", Quote(text));
  }
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      (digits.front() == '-' && text.front() == '+')) {
    return InvalidArgumentError("expected an integer, got {}", Quote(text));
  }
  return value;
}

Result<bool> ParseBool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "1") return true;
  if (lower == "false" || lower == "0") return false;
  return InvalidArgumentError("expected true or false, got {}", Quote(text));
}

Result<double> ParseDouble(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      !std::isfinite(value) || (digits.front() == '-' && text.front() == '+')) {
    return InvalidArgumentError("expected a finite number, got {}", Quote(text));
  }
  return value;
}

Result<Value> ParseValue(size_t type, std::string_view text) {
  switch (type) {
    case kString:
      return Value(std::string(text));
    case kInt64: {
      ASSIGN_OR_RETURN(int64_t v, ParseInt64(text));
      return Value(v);
    }
    case kBool: {
      ASSIGN_OR_RETURN(bool v, ParseBool(text));
      return Value(v);
    }
    case kDouble: {
      ASSIGN_OR_RETURN(double v, ParseDouble(text));
      return Value(v);
    }
    default: {
      ASSIGN_OR_RETURN(milliseconds v, ParseDuration(text));
      return Value(v);
    }
  }
}

// OK when `v` satisfies the option's constraints; otherwise a message without location.
Status CheckConstraints(const Option& option, const Value& v) {
  if (!option.allowed.empty()) {
    const std::string& s = std::get<kString>(v);
    if (std::find(option.allowed.begin(), option.allowed.end(), s) == option.allowed.end()) {
      std::vector<std::string> quoted;
      for (const std::string& a : option.allowed) quoted.push_back(Quote(a));
      return InvalidArgumentError("{} is not one of {}", Quote(s), fmt::join(quoted, ", "));
    }
  }
  if (option.min && v < *option.min) {
    return InvalidArgumentError("value {} is below the minimum {}", FormatValue(v),
                                FormatValue(*option.min));
  }
  if (option.max && v > *option.max) {
    return InvalidArgumentError("value {} is above the maximum {}", FormatValue(v),
                                FormatValue(*option.max));
  }
  return OkStatus();
}

// Parses `text` for `option` and checks its constraints; errors are prefixed with `where`.
Result<Value> ParseFor(const Option& option, std::string_view text, std::string_view where) {
  Result<Value> v = ParseValue(option.target.index(), text);
  if (!v.ok()) return InvalidArgumentError("{}: {}", where, v.status().message());
  if (Status s = CheckConstraints(option, *v); !s.ok()) {
    return InvalidArgumentError("{}: {}", where, s.message());
  }
  return v;
}

const Option* FindOption(const std::vector<Option>& options, std::string_view name) {
  for (const Option& o : options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean --workers?)" for the option name closest to `unknown`, or "" when none is
// close; `before` and `after` surround the name ("--" and "" for flags, "'" for keys).
std::string Suggest(const std::vector<Option>& options, std::string_view unknown,
                    std::string_view before, std::string_view after) {
  const Option* best = nullptr;
  size_t best_distance = std::max<size_t>(2, unknown.size() / 3) + 1;
  for (const Option& o : options) {
    const size_t d = EditDistance(unknown, o.name);
    if (d < best_distance) {
      best = &o;
      best_distance = d;
    }
  }
  if (best == nullptr) return "";
  return fmt::format(" (did you mean {}{}{}?)", before, best->name, after);
}

}  // namespace

std::string EnvVarName(std::string_view name) {
  std::string out(kEnvPrefix);
  for (char c : name) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

Result<milliseconds> ParseDuration(std::string_view text) {
  const auto bad = [text] {
    return InvalidArgumentError("{}, got {}", kDurationSyntax, Quote(text));
  };
  // Reads a decimal number (digits, optionally '.' and more digits) from the front of `s`.
  const auto number = [](std::string_view& s, double* value) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    const size_t int_digits = n;
    size_t frac_digits = 0;
    if (n < s.size() && s[n] == '.') {
      ++n;
      while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
        ++n;
        ++frac_digits;
      }
    }
    if (int_digits + frac_digits == 0) return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + n, *value);
    if (ec != std::errc() || end != s.data() + n) return false;
    s.remove_prefix(n);
    return true;
  };

  std::string_view rest = text;
  double total_ms = 0;
  double v = 0;
  if (!number(rest, &v)) return bad();
  if (rest.empty()) {
    total_ms = v * 1000;  // A plain number of seconds.
  } else {
    for (;;) {
      double unit_ms = 0;
      if (rest.starts_with("ms")) {
        unit_ms = 1;
        rest.remove_prefix(2);
      } else if (rest.starts_with("h")) {
        unit_ms = 3600e3;
        rest.remove_prefix(1);
      } else if (rest.starts_with("m")) {
        unit_ms = 60e3;
        rest.remove_prefix(1);
      } else if (rest.starts_with("s")) {
        unit_ms = 1e3;
        rest.remove_prefix(1);
      } else {
        return bad();
      }
      total_ms += v * unit_ms;
      if (rest.empty()) break;
      if (!number(rest, &v)) return bad();
    }
  }
  // Leaves headroom below the int64 limit so the rounding below cannot overflow.
  constexpr double kMaxMs = 9.2e18;
  if (!(total_ms < kMaxMs)) {
    return InvalidArgumentError("duration {} is too large", Quote(text));
  }
  return milliseconds(std::llround(total_ms));
}

std::string FormatDuration(milliseconds d) {
  if (d < milliseconds::zero()) return fmt::format("{}ms", d.count());  // Not a valid input.
  if (d == milliseconds::zero()) return "0s";
  if (d < std::chrono::seconds(1)) return fmt::format("{}ms", d.count());
  const int64_t total = d.count();
  const int64_t hours = total / 3600000;
  const int64_t minutes = total / 60000 % 60;
  const int64_t seconds = total / 1000 % 60;
  const int64_t millis = total % 1000;
  std::string out;
  if (hours > 0) fmt::format_to(std::back_inserter(out), "{}h", hours);
  if (minutes > 0) fmt::format_to(std::back_inserter(out), "{}m", minutes);
  if (seconds > 0 || millis > 0) {
    fmt::format_to(std::back_inserter(out), "{}", seconds);
    if (millis > 0) {
      std::string frac = fmt::format("{:03}", millis);
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

Config::Config(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

Config::~Config() = default;

void Config::Add(Option option) {
  const auto declaration_error = [this, &option](std::string_view what) {
    if (declaration_error_.empty()) {
      declaration_error_ = fmt::format("option {}: {}", Quote(option.name), what);
    }
  };
  if (!ValidName(option.name)) {
    return declaration_error("name must be lower-case letters, digits and single dashes");
  }
  if (option.name == kConfigFlag || option.name == kHelpFlag) {
    return declaration_error("name is reserved");
  }
  if (FindOption(options_, option.name) != nullptr) return declaration_error("declared twice");
  const bool null_target = std::visit([](auto* p) { return p == nullptr; }, option.target);
  if (null_target) return declaration_error("target is null");
  if (option.min && option.max && *option.max < *option.min) {
    return declaration_error("minimum is above maximum");
  }
  if (option.default_value.index() == kDuration &&
      std::get<kDuration>(option.default_value) < milliseconds::zero()) {
    return declaration_error("default duration is negative");
  }
  if (option.default_value.index() == kDouble &&
      !std::isfinite(std::get<kDouble>(option.default_value))) {
    return declaration_error("default is not finite");
  }
  if (Status s = CheckConstraints(option, option.default_value); !s.ok()) {
    return declaration_error(fmt::format("default: {}", s.message()));
  }
  options_.push_back(std::move(option));
}

void Config::AddString(std::string name, std::string* target, std::string help,
                       std::vector<std::string> allowed) {
  Add({.name = std::move(name),
       .help = std::move(help),
       .target = target,
       .default_value = target ? *target : std::string(),
       .min = std::nullopt,
       .max = std::nullopt,
       .allowed = std::move(allowed)});
}

void Config::AddInt64(std::string name, int64_t* target, std::string help, Range<int64_t> range) {
  Add({.name = std::move(name),
       .help = std::move(help),
       .target = target,
       .default_value = target ? *target : int64_t{0},
       .min = range.min ? std::optional<Value>(*range.min) : std::nullopt,
       .max = range.max ? std::optional<Value>(*range.max) : std::nullopt,
       .allowed = {}});
}

void Config::AddBool(std::string name, bool* target, std::string help) {
  Add({.name = std::move(name),
       .help = std::move(help),
       .target = target,
       .default_value = target ? *target : false,
       .min = std::nullopt,
       .max = std::nullopt,
       .allowed = {}});
}

void Config::AddDouble(std::string name, double* target, std::string help, Range<double> range) {
  Add({.name = std::move(name),
       .help = std::move(help),
       .target = target,
       .default_value = target ? *target : 0.0,
       .min = range.min ? std::optional<Value>(*range.min) : std::nullopt,
       .max = range.max ? std::optional<Value>(*range.max) : std::nullopt,
       .allowed = {}});
}

void Config::AddDuration(std::string name, milliseconds* target, std::string help,
                         Range<milliseconds> range) {
  Add({.name = std::move(name),
       .help = std::move(help),
       .target = target,
       .default_value = target ? *target : milliseconds::zero(),
       .min = range.min ? std::optional<Value>(*range.min) : std::nullopt,
       .max = range.max ? std::optional<Value>(*range.max) : std::nullopt,
       .allowed = {}});
}

Status Config::Load(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Load(args, [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): startup.
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

namespace {

// Reads the YAML file at `path` (named by `named_by`, for messages) and parses each key's value
// for its option into `values`, which is indexed like `options`.
Status LoadYamlFile(const std::string& path, std::string_view named_by,
                    const std::vector<Option>& options, std::vector<std::optional<Value>>& values) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgumentError("cannot read config file {} (named by {}): {}", path, named_by,
                                std::strerror(errno));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return InvalidArgumentError("cannot read config file {} (named by {}): read error", path,
                                named_by);
  }

  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(contents.str());
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return InvalidArgumentError("invalid YAML in {}: {}", path, e.msg);
    return InvalidArgumentError("invalid YAML in {} line {} column {}: {}", path, e.mark.line + 1,
                                e.mark.column + 1, e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError("invalid YAML in {}: {}", path, e.what());
  }
  if (documents.size() > 1) {
    return InvalidArgumentError("config file {} holds {} YAML documents; expected one", path,
                                documents.size());
  }
  if (documents.empty() || documents[0].IsNull()) return OkStatus();  // Empty file.
  const YAML::Node& root = documents[0];
  if (!root.IsMap()) {
    return InvalidArgumentError(
        "config file {} line {}: expected a mapping of option names to values", path,
        root.Mark().line + 1);
  }

  std::map<std::string, int, std::less<>> first_line;  // Key → line where it first appears.
  try {
    for (const auto& entry : root) {
      const YAML::Node& key = entry.first;
      const YAML::Node& value = entry.second;
      const int line = key.Mark().line + 1;
      if (!key.IsScalar()) {
        return InvalidArgumentError("config file {} line {}: keys must be option names", path,
                                    line);
      }
      const std::string& name = key.Scalar();
      const std::string where = fmt::format("key '{}' in {} line {}", name, path, line);
      if (auto [it, inserted] = first_line.emplace(name, line); !inserted) {
        return InvalidArgumentError("{}: duplicate key (first on line {})", where, it->second);
      }
      if (name == kConfigFlag || name == kHelpFlag) {
        return InvalidArgumentError("{}: cannot be set in a config file", where);
      }
      const Option* option = FindOption(options, name);
      if (option == nullptr) {
        return InvalidArgumentError("unknown key '{}' in {} line {}{}", name, path, line,
                                    Suggest(options, name, "'", "'"));
      }
      if (value.IsNull()) return InvalidArgumentError("{}: missing value", where);
      if (!value.IsScalar()) {
        return InvalidArgumentError("{}: expected a single value, got a {}", where,
                                    value.IsMap() ? "mapping" : "sequence");
      }
      ASSIGN_OR_RETURN(Value v, ParseFor(*option, value.Scalar(), where));
      values[static_cast<size_t>(option - options.data())] = std::move(v);
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("invalid YAML in {}: {}", path, e.msg);
  }
  return OkStatus();
}

}  // namespace

Status Config::Load(const std::vector<std::string>& args, const EnvLookup& env) {
  help_requested_ = false;
  config_file_.clear();
  if (!declaration_error_.empty()) {
    return InternalError("configuration of {}: {}", program_, declaration_error_);
  }

  const auto index_of = [this](const Option* o) {
    return static_cast<size_t>(o - options_.data());
  };

  // 1. Flags, parsed first so that --help and --config are known; applied last.
  std::vector<std::optional<Value>> from_flags(options_.size());
  std::string config_file;
  std::string config_named_by;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (i + 1 < args.size()) {
        return InvalidArgumentError("unexpected argument {} after --", Quote(args[i + 1]));
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return InvalidArgumentError("unexpected argument {}; options are given as --name=value",
                                  Quote(arg));
    }
    std::string_view body(arg);
    body.remove_prefix(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const std::string_view name = body.substr(0, eq);
    std::optional<std::string_view> inline_value;
    if (eq != std::string_view::npos) inline_value = body.substr(eq + 1);
    if (name.empty() || name.front() == '-') {
      return InvalidArgumentError("invalid flag {}", Quote(arg));
    }
    const std::string flag = fmt::format("--{}", name);
    if (name == kHelpFlag || name == "h") {
      help_requested_ = true;
      return OkStatus();
    }
    const Option* option = name == kConfigFlag ? nullptr : FindOption(options_, name);
    if (name != kConfigFlag && option == nullptr) {
      return InvalidArgumentError("unknown flag {}{}", flag, Suggest(options_, name, "--", ""));
    }
    std::string_view text;
    if (inline_value) {
      text = *inline_value;
    } else if (option != nullptr && option->target.index() == kBool) {
      text = "true";
    } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
      text = args[++i];
    } else {
      return InvalidArgumentError("flag {}: missing value", flag);
    }
    if (option == nullptr) {  // --config
      if (text.empty()) return InvalidArgumentError("flag {}: missing value", flag);
      config_file = std::string(text);
      config_named_by = flag;
      continue;
    }
    ASSIGN_OR_RETURN(Value v, ParseFor(*option, text, fmt::format("flag {}", flag)));
    from_flags[index_of(option)] = std::move(v);  // A repeated flag: the last one wins.
  }

  // 2. The config file named by the flag or the environment.
  const auto lookup = [&env](const std::string& var) -> std::optional<std::string> {
    std::optional<std::string> value = env ? env(var) : std::nullopt;
    if (value && value->empty()) return std::nullopt;  // Empty counts as unset.
    return value;
  };
  if (config_file.empty()) {
    const std::string var = EnvVarName(kConfigFlag);
    if (auto value = lookup(var)) {
      config_file = *value;
      config_named_by = fmt::format("environment variable {}", var);
    }
  }
  std::vector<std::optional<Value>> from_file(options_.size());
  if (!config_file.empty()) {
    RETURN_IF_ERROR(LoadYamlFile(config_file, config_named_by, options_, from_file));
  }

  // 3. The environment.
  std::vector<std::optional<Value>> from_env(options_.size());
  for (size_t i = 0; i < options_.size(); ++i) {
    const std::string var = EnvVarName(options_[i].name);
    if (auto value = lookup(var)) {
      ASSIGN_OR_RETURN(from_env[i],
                       ParseFor(options_[i], *value, fmt::format("environment variable {}", var)));
    }
  }

  // Everything parsed: assign by precedence.
  for (size_t i = 0; i < options_.size(); ++i) {
    const Value& v = from_flags[i]  ? *from_flags[i]
                     : from_env[i]  ? *from_env[i]
                     : from_file[i] ? *from_file[i]
                                    : options_[i].default_value;
    std::visit(
        [&v](auto* target) { *target = std::get<std::remove_pointer_t<decltype(target)>>(v); },
        options_[i].target);
  }
  config_file_ = std::move(config_file);
  return OkStatus();
}

std::string Config::HelpText() const {
  std::string out = fmt::format("Usage: {} [flags]\n", program_);
  if (!description_.empty()) fmt::format_to(std::back_inserter(out), "\n{}\n", description_);
  out += "\nFlags:\n";

  struct Entry {
    std::string name;
    std::string type;
    std::string help;
  };
  std::vector<Entry> entries;
  entries.push_back({std::string(kConfigFlag), "file",
                     fmt::format("YAML file of option values, keyed by option name (env {})",
                                 EnvVarName(kConfigFlag))});
  entries.push_back({std::string(kHelpFlag), "", "Show this help and exit"});
  for (const Option& o : options_) {
    std::vector<std::string> notes;
    notes.push_back(fmt::format("default {}", FormatValue(o.default_value)));
    if (!o.allowed.empty()) {
      std::vector<std::string> quoted;
      for (const std::string& a : o.allowed) quoted.push_back(Quote(a));
      notes.push_back(fmt::format("one of {}", fmt::join(quoted, ", ")));
    }
    if (o.min && o.max) {
      notes.push_back(fmt::format("range [{}, {}]", FormatValue(*o.min), FormatValue(*o.max)));
    } else if (o.min) {
      notes.push_back(fmt::format("minimum {}", FormatValue(*o.min)));
    } else if (o.max) {
      notes.push_back(fmt::format("maximum {}", FormatValue(*o.max)));
    }
    notes.push_back(fmt::format("env {}", EnvVarName(o.name)));
    const size_t type = o.target.index();
    entries.push_back({o.name, type == kBool ? "" : std::string(TypeName(type)),
                       fmt::format("{} ({})", o.help, fmt::join(notes, "; "))});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const Entry& e : entries) {
    fmt::format_to(std::back_inserter(out), "  --{}{}{}\n        {}\n", e.name,
                   e.type.empty() ? "" : " ", e.type, e.help);
  }
  out +=
      "\nEach option is taken from, highest precedence first: its flag, its environment variable,\n"
      "the --config file, then its default. Durations are written like 30s, 1m30s or 500ms.\n";
  return out;
}

}  // namespace common::config
