// Program configuration from command-line flags, environment variables and a YAML file.
//
// A program declares its options, each bound to a field of a plain struct whose initial value
// is the default, then calls Load() once at startup:
//
//   struct Options {
//     std::string metrics_address = ":8080";
//     int64_t workers = 4;
//     bool leader_elect = true;
//     std::chrono::milliseconds resync = std::chrono::minutes(10);
//   } options;
//   common::config::Config config("meshstor-operator", "Runs the MeshStor operator");
//   config.AddString("metrics-address", &options.metrics_address, "Address of /metrics");
//   config.AddInt64("workers", &options.workers, "Reconcile workers", {.min = 1, .max = 64});
//   config.AddBool("leader-elect", &options.leader_elect, "Elect a leader before working");
//   config.AddDuration("resync", &options.resync, "Full resync period", {.min = 1s});
//   if (Status s = config.Load(argc, argv); !s.ok()) { /* print s.message(), exit 2 */ }
//   if (config.help_requested()) { std::cout << config.HelpText(); /* exit 0 */ }
//
// Each value comes from the first of these sources that sets it:
//   1. flags: --name=value or --name value (a single leading dash also works); bools take
//      --name (true) or --name=false, never the next argument; "--" ends the flags;
//   2. environment: MESHSTOR_ plus the name in upper case with '-' as '_'
//      (MESHSTOR_METRICS_ADDRESS); an empty variable counts as unset;
//   3. the YAML file named by --config <file> (or MESHSTOR_CONFIG): a mapping whose keys are
//      option names, e.g. `metrics-address: ":8080"`;
//   4. the default.
// Every value present is checked, including ones a higher source overrides.
//
// Value syntax, the same in every source: strings as they are; integers in decimal (optional
// sign); bools true/false/1/0 in any case; doubles in decimal or exponent notation (finite);
// durations as Go-style "1h30m", "30s", "1.5s", "500ms" (units h, m, s, ms) or a plain number
// of seconds ("30", "0.5"), never negative, with millisecond precision.
//
// Errors are InvalidArgument and name the source and the key: "unknown flag --wrokers (did you
// mean --workers?)", "environment variable MESHSTOR_WORKERS: expected an integer, got \"x\"",
// "key 'max-rebuilds-per-node' in /etc/x.yaml line 3: expected an integer, got \"ten\"",
// "unknown key 'foo' in /etc/x.yaml line 7", "flag --workers: value 0 is below the minimum 1",
// "flag --workers: missing value", "invalid YAML in /etc/x.yaml line 4 column 2: ...".
//
// Thread contract: not thread-safe; declare and Load from one thread (normally main) before
// other threads read the bound fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace common::config {

namespace internal {
struct Option;  // A declared option; defined in config.cc.
}  // namespace internal

// Inclusive bounds; an empty bound is unlimited. Written {.min = 1}, {.max = 64s} or both.
template <typename T>
struct Range {
  // The initializers let callers name one bound without -Wmissing-field-initializers.
  std::optional<T> min = std::nullopt;
  std::optional<T> max = std::nullopt;
};

// Returns the value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The environment variable of option `name`: "metrics-address" → "MESHSTOR_METRICS_ADDRESS".
std::string EnvVarName(std::string_view name);

// Parses a duration in the syntax described above. InvalidArgument (saying what is accepted
// and quoting `text`) otherwise.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Formats a non-negative duration so that ParseDuration reads it back: "0s", "500ms", "1.5s",
// "1m30s", "2h".
std::string FormatDuration(std::chrono::milliseconds d);

class Config {
 public:
  // `program` names the binary in the usage line of HelpText(); `description` follows it.
  explicit Config(std::string program, std::string description = "");
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;
  ~Config();

  // Declare an option named `name` bound to `*target`. The value of `*target` now is the
  // default; Load() overwrites it when a source sets the option. `target` must stay valid
  // until Load() returns. `help` is one line for HelpText(), in sentence case without a final
  // period. Names are lower-case letters, digits and single dashes, starting with a letter;
  // "config" and "help" are reserved. Mistakes in a declaration (bad or repeated name, null
  // target, default outside its own constraints) are programming errors: Load() then returns
  // Internal naming the option, without reading any source.
  void AddString(std::string name, std::string* target, std::string help,
                 std::vector<std::string> allowed = {});  // Empty: any string.
  void AddInt64(std::string name, int64_t* target, std::string help, Range<int64_t> range = {});
  void AddBool(std::string name, bool* target, std::string help);
  void AddDouble(std::string name, double* target, std::string help, Range<double> range = {});
  void AddDuration(std::string name, std::chrono::milliseconds* target, std::string help,
                   Range<std::chrono::milliseconds> range = {});

  // Loads from the process's arguments (argv[0] is skipped) and environment.
  Status Load(int argc, const char* const* argv);

  // Loads from `args` (without the program name) and the environment given by `env`.
  // On success every bound target holds its value. On error (InvalidArgument for bad input,
  // Internal for bad declarations) no target is changed. When --help (or -h) is among the
  // flags, returns OK at once, sets help_requested() and changes nothing. May be called again;
  // each call starts from the declared defaults.
  Status Load(const std::vector<std::string>& args, const EnvLookup& env);

  // Whether the last Load() saw --help or -h.
  bool help_requested() const { return help_requested_; }

  // The YAML file the last Load() read (from --config or MESHSTOR_CONFIG); empty when none.
  const std::string& config_file() const { return config_file_; }

  // Usage text listing every option in name order with its type, help, default, constraints
  // and environment variable; ends with a newline.
  std::string HelpText() const;

 private:
  void Add(internal::Option option);

  std::string program_;
  std::string description_;
  std::vector<internal::Option> options_;  // In declaration order.
  std::string declaration_error_;          // The first declaration mistake; empty when none.
  bool help_requested_ = false;
  std::string config_file_;
};

}  // namespace common::config
