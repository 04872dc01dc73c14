#include "common/config/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace common::config {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// A fresh temporary directory, removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `contents` to `name` in the directory and returns its path.
  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string file = (path_ / name).string();
    std::ofstream out(file, std::ios::binary);
    out << contents;
    REQUIRE(out.good());
    return file;
  }

 private:
  std::filesystem::path path_;
};

using Env = std::map<std::string, std::string>;

EnvLookup LookupIn(const Env& env) {
  return [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

// The options of a typical program, with their defaults.
struct Options {
  std::string metrics_address = ":8080";
  std::string log_format = "json";
  int64_t workers = 4;
  int64_t max_rebuilds_per_node = 2;
  bool leader_elect = true;
  double headroom = 0.1;
  milliseconds resync = 10min;
  double ratio = 1.0;
};

struct Fixture {
  Fixture() {
    config.AddString("metrics-address", &o.metrics_address, "Address of the metrics endpoint");
    config.AddString("log-format", &o.log_format, "Log line format", {"json", "text"});
    config.AddInt64("workers", &o.workers, "Reconcile workers", {.min = 1, .max = 64});
    config.AddInt64("max-rebuilds-per-node", &o.max_rebuilds_per_node,
                    "Concurrent rebuilds per node", {.min = 0});
    config.AddBool("leader-elect", &o.leader_elect, "Elect a leader before reconciling");
    config.AddDouble("headroom", &o.headroom, "Free space kept on each pool",
                     {.min = 0.0, .max = 0.5});
    config.AddDuration("resync", &o.resync, "Period of full resyncs", {.min = 1s, .max = 24h});
    config.AddDouble("ratio", &o.ratio, "Ratio with only a maximum", {.max = 2.0});
  }

  Status Load(const std::vector<std::string>& args, const Env& env = {}) {
    return config.Load(args, LookupIn(env));
  }

  // Loads expecting InvalidArgument; returns the message.
  std::string LoadError(const std::vector<std::string>& args, const Env& env = {}) {
    const Status s = Load(args, env);
    INFO(s.ToString());
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    return s.message();
  }

  Options o;
  Config config{"meshstor-test", "Tests the configuration loader"};
};

TEST_CASE("Config keeps the defaults when no source sets an option", "[unit][config]") {
  Fixture f;
  REQUIRE(f.Load({}).ok());
  CHECK(f.o.metrics_address == ":8080");
  CHECK(f.o.log_format == "json");
  CHECK(f.o.workers == 4);
  CHECK(f.o.leader_elect);
  CHECK(f.o.headroom == 0.1);
  CHECK(f.o.resync == 10min);
  CHECK_FALSE(f.config.help_requested());
  CHECK(f.config.config_file().empty());
}

TEST_CASE("Config reads every type from each source", "[unit][config]") {
  TempDir dir;
  Fixture f;
  SECTION("flags") {
    REQUIRE(f.Load({"--metrics-address=:9090", "--log-format", "text", "-workers=8",
                    "--leader-elect=false", "--headroom", "0.25", "--resync=1m30s",
                    "--max-rebuilds-per-node", "+7"})
                .ok());
  }
  SECTION("environment") {
    REQUIRE(f.Load({}, {{"MESHSTOR_METRICS_ADDRESS", ":9090"},
                        {"MESHSTOR_LOG_FORMAT", "text"},
                        {"MESHSTOR_WORKERS", "8"},
                        {"MESHSTOR_LEADER_ELECT", "FALSE"},
                        {"MESHSTOR_HEADROOM", "2.5e-1"},
                        {"MESHSTOR_RESYNC", "90"},
                        {"MESHSTOR_MAX_REBUILDS_PER_NODE", "7"}})
                .ok());
  }
  SECTION("YAML file") {
    const std::string file = dir.Write("c.yaml",
                                       "# Operator settings\n"
                                       "metrics-address: \":9090\"\n"
                                       "log-format: text\n"
                                       "workers: 8\n"
                                       "leader-elect: False\n"
                                       "headroom: 0.25\n"
                                       "resync: 1.5m\n"
                                       "max-rebuilds-per-node: '7'\n");
    REQUIRE(f.Load({"--config", file}).ok());
    CHECK(f.config.config_file() == file);
  }
  CHECK(f.o.metrics_address == ":9090");
  CHECK(f.o.log_format == "text");
  CHECK(f.o.workers == 8);
  CHECK_FALSE(f.o.leader_elect);
  CHECK(f.o.headroom == 0.25);
  CHECK(f.o.resync == 90s);
  CHECK(f.o.max_rebuilds_per_node == 7);
}

TEST_CASE("Config precedence is flag, environment, file, default", "[unit][config]") {
  TempDir dir;
  const std::string file = dir.Write("c.yaml", "workers: 3\nresync: 2m\nheadroom: 0.3\n");
  Fixture f;
  REQUIRE(f.Load({"--config=" + file, "--workers=5"},
                 {{"MESHSTOR_WORKERS", "4"}, {"MESHSTOR_RESYNC", "3m"}})
              .ok());
  CHECK(f.o.workers == 5);          // flag over environment and file
  CHECK(f.o.resync == 3min);        // environment over file
  CHECK(f.o.headroom == 0.3);       // file over default
  CHECK(f.o.log_format == "json");  // default

  SECTION("an empty environment variable counts as unset") {
    REQUIRE(f.Load({"--config=" + file}, {{"MESHSTOR_WORKERS", ""}}).ok());
    CHECK(f.o.workers == 3);
  }
  SECTION("each Load starts from the declared defaults") {
    REQUIRE(f.Load({}).ok());
    CHECK(f.o.workers == 4);
    CHECK(f.o.resync == 10min);
    CHECK(f.o.headroom == 0.1);
  }
}

TEST_CASE("Config flag syntax", "[unit][config]") {
  Fixture f;
  SECTION("a bare bool flag means true and never takes the next argument") {
    f.o.leader_elect = false;
    Config config("p");
    config.AddBool("leader-elect", &f.o.leader_elect, "Elect");
    REQUIRE(config.Load({"--leader-elect"}, LookupIn({})).ok());
    CHECK(f.o.leader_elect);
    const Status s = config.Load({"--leader-elect", "false"}, LookupIn({}));
    CHECK(s.message() == "unexpected argument \"false\"; options are given as --name=value");
  }
  SECTION("bool values") {
    for (const auto& [text, expected] : std::vector<std::pair<std::string, bool>>{
             {"true", true}, {"TRUE", true}, {"1", true}, {"False", false}, {"0", false}}) {
      REQUIRE(f.Load({"--leader-elect=" + text}).ok());
      CHECK(f.o.leader_elect == expected);
    }
  }
  SECTION("the last of repeated flags wins") {
    REQUIRE(f.Load({"--workers=2", "--workers", "9"}).ok());
    CHECK(f.o.workers == 9);
  }
  SECTION("an empty string value") {
    REQUIRE(f.Load({"--metrics-address="}).ok());
    CHECK(f.o.metrics_address.empty());
  }
  SECTION("values may contain '=' and start with a single dash") {
    Config config("p");
    std::string s;
    int64_t n = 0;
    config.AddString("selector", &s, "Label selector");
    config.AddInt64("offset", &n, "Offset");
    REQUIRE(config.Load({"--selector=a=b", "--offset", "-3"}, LookupIn({})).ok());
    CHECK(s == "a=b");
    CHECK(n == -3);
  }
  SECTION("-- ends the flags") {
    REQUIRE(f.Load({"--workers=2", "--"}).ok());
    CHECK(f.o.workers == 2);
    CHECK(f.LoadError({"--", "--workers=2"}) == "unexpected argument \"--workers=2\" after --");
  }
}

TEST_CASE("Config flag errors name the flag", "[unit][config]") {
  Fixture f;
  auto [args, message] = GENERATE(table<std::vector<std::string>, std::string>({
      {{"--wrokers=3"}, "unknown flag --wrokers (did you mean --workers?)"},
      {{"--zzz"}, "unknown flag --zzz"},
      {{"---workers=3"}, "invalid flag \"---workers=3\""},
      {{"--=3"}, "invalid flag \"--=3\""},
      {{"workers=3"}, "unexpected argument \"workers=3\"; options are given as --name=value"},
      {{"-"}, "unexpected argument \"-\"; options are given as --name=value"},
      {{"--workers"}, "flag --workers: missing value"},
      {{"--workers", "--leader-elect"}, "flag --workers: missing value"},
      {{"--config"}, "flag --config: missing value"},
      {{"--config="}, "flag --config: missing value"},
      {{"--workers=ten"}, "flag --workers: expected an integer, got \"ten\""},
      {{"--workers=5.0"}, "flag --workers: expected an integer, got \"5.0\""},
      {{"--workers= 5"}, "flag --workers: expected an integer, got \" 5\""},
      {{"--workers=+-5"}, "flag --workers: expected an integer, got \"+-5\""},
      {{"--workers="}, "flag --workers: expected an integer, got \"\""},
      {{"--workers=99999999999999999999"},
       "flag --workers: integer \"99999999999999999999\" does not fit in 64 bits"},
      {{"--workers=0"}, "flag --workers: value 0 is below the minimum 1"},
      {{"--workers=65"}, "flag --workers: value 65 is above the maximum 64"},
      {{"--max-rebuilds-per-node=-1"},
       "flag --max-rebuilds-per-node: value -1 is below the minimum 0"},
      {{"--leader-elect=yes"}, "flag --leader-elect: expected true or false, got \"yes\""},
      {{"--headroom=nan"}, "flag --headroom: expected a finite number, got \"nan\""},
      {{"--headroom=1e999"}, "flag --headroom: expected a finite number, got \"1e999\""},
      {{"--headroom=0.6"}, "flag --headroom: value 0.6 is above the maximum 0.5"},
      {{"--log-format=xml"}, "flag --log-format: \"xml\" is not one of \"json\", \"text\""},
      {{"--resync=0.5"}, "flag --resync: value 500ms is below the minimum 1s"},
  }));
  INFO(args.front());
  CHECK(f.LoadError(args) == message);
}

TEST_CASE("Config duration flags check syntax and range", "[unit][config]") {
  Fixture f;
  CHECK(f.LoadError({"--resync=500ms"}) == "flag --resync: value 500ms is below the minimum 1s");
  CHECK(f.LoadError({"--resync=25h"}) == "flag --resync: value 25h is above the maximum 24h");
  CHECK(f.LoadError({"--resync=-5s"}) ==
        "flag --resync: expected a duration such as 30s, 1m30s or 500ms (a plain number means "
        "seconds), got \"-5s\"");
  REQUIRE(f.Load({"--resync=24h"}).ok());
  CHECK(f.o.resync == 24h);
}

TEST_CASE("Config environment errors name the variable", "[unit][config]") {
  Fixture f;
  CHECK(f.LoadError({}, {{"MESHSTOR_WORKERS", "ten"}}) ==
        "environment variable MESHSTOR_WORKERS: expected an integer, got \"ten\"");
  CHECK(f.LoadError({}, {{"MESHSTOR_HEADROOM", "-0.5"}}) ==
        "environment variable MESHSTOR_HEADROOM: value -0.5 is below the minimum 0");
  CHECK(f.LoadError({}, {{"MESHSTOR_LOG_FORMAT", "JSON"}}) ==
        "environment variable MESHSTOR_LOG_FORMAT: \"JSON\" is not one of \"json\", \"text\"");
  // Checked even when a flag overrides it.
  CHECK(f.LoadError({"--workers=3"}, {{"MESHSTOR_WORKERS", "many"}}) ==
        "environment variable MESHSTOR_WORKERS: expected an integer, got \"many\"");
}

TEST_CASE("Config YAML errors name the file, line and key", "[unit][config]") {
  TempDir dir;
  Fixture f;
  const auto error_for = [&](const std::string& yaml) {
    const std::string file = dir.Write("x.yaml", yaml);
    std::string message = f.LoadError({"--config", file});
    // Make messages comparable: the directory is random.
    for (size_t at; (at = message.find(file)) != std::string::npos;) {
      message.replace(at, file.size(), "x.yaml");
    }
    return message;
  };

  CHECK(error_for("workers: 3\nlog-format: json\nmax-rebuilds-per-node: ten\n") ==
        "key 'max-rebuilds-per-node' in x.yaml line 3: expected an integer, got \"ten\"");
  CHECK(error_for("workers: 3\n\n# comment\nmetrics-adress: \":1\"\n") ==
        "unknown key 'metrics-adress' in x.yaml line 4 (did you mean 'metrics-address'?)");
  CHECK(error_for("bogus: 1\n") == "unknown key 'bogus' in x.yaml line 1");
  CHECK(error_for("workers:\n") == "key 'workers' in x.yaml line 1: missing value");
  CHECK(error_for("workers: ~\n") == "key 'workers' in x.yaml line 1: missing value");
  CHECK(error_for("workers: [1, 2]\n") ==
        "key 'workers' in x.yaml line 1: expected a single value, got a sequence");
  CHECK(error_for("log-format:\n  name: json\n") ==
        "key 'log-format' in x.yaml line 1: expected a single value, got a mapping");
  CHECK(error_for("workers: 1\nresync: 1m\nworkers: 2\n") ==
        "key 'workers' in x.yaml line 3: duplicate key (first on line 1)");
  CHECK(error_for("workers: 100\n") ==
        "key 'workers' in x.yaml line 1: value 100 is above "
        "the maximum 64");
  CHECK(error_for("resync: 5 minutes\n") ==
        "key 'resync' in x.yaml line 1: expected a duration such as 30s, 1m30s or 500ms (a "
        "plain number means seconds), got \"5 minutes\"");
  CHECK(error_for("leader-elect: yes\n") ==
        "key 'leader-elect' in x.yaml line 1: expected true or false, got \"yes\"");
  CHECK(error_for("config: other.yaml\n") ==
        "key 'config' in x.yaml line 1: cannot be set in a config file");
  CHECK(error_for("- workers\n- 3\n") ==
        "config file x.yaml line 1: expected a mapping of option names to values");
  CHECK(error_for("workers: 3\n---\nworkers: 4\n") ==
        "config file x.yaml holds 2 YAML documents; expected one");
  CHECK(error_for("[a, b]: 1\n") == "config file x.yaml line 1: keys must be option names");

  CHECK(error_for("workers: 3\nresync: a: b\n") ==
        "invalid YAML in x.yaml line 2 column 10: illegal map value");
  CHECK(error_for("workers: 3\n\tresync: 1\n") ==
        "invalid YAML in x.yaml line 2 column 1: illegal tab when looking for indentation");
  CHECK(error_for("workers: 3\nlog-format: [json\n") ==
        "invalid YAML in x.yaml line 3 column 1: end of sequence flow not found");

  // A value a higher source overrides is still checked.
  const std::string file = dir.Write("y.yaml", "workers: lots\n");
  const std::string overridden = f.LoadError({"--config", file, "--workers=2"});
  CHECK(overridden.find("key 'workers' in ") == 0);
  CHECK(overridden.find("y.yaml line 1: expected an integer, got \"lots\"") != std::string::npos);
}

TEST_CASE("Config reports unreadable config files with what named them", "[unit][config]") {
  TempDir dir;
  Fixture f;
  const std::string missing = dir.Write("present.yaml", "") + ".missing";
  CHECK(f.LoadError({"--config", missing}) ==
        "cannot read config file " + missing + " (named by --config): No such file or directory");
  CHECK(f.LoadError({}, {{"MESHSTOR_CONFIG", missing}}) ==
        "cannot read config file " + missing +
            " (named by environment variable MESHSTOR_CONFIG): No such file or directory");
}

TEST_CASE("Config takes the file from MESHSTOR_CONFIG unless --config is given", "[unit][config]") {
  TempDir dir;
  const std::string from_env = dir.Write("env.yaml", "workers: 6\n");
  const std::string from_flag = dir.Write("flag.yaml", "workers: 7\n");
  Fixture f;
  REQUIRE(f.Load({}, {{"MESHSTOR_CONFIG", from_env}}).ok());
  CHECK(f.o.workers == 6);
  CHECK(f.config.config_file() == from_env);
  REQUIRE(f.Load({"--config", from_flag}, {{"MESHSTOR_CONFIG", from_env}}).ok());
  CHECK(f.o.workers == 7);
  CHECK(f.config.config_file() == from_flag);

  SECTION("an empty file or one with only comments sets nothing") {
    REQUIRE(f.Load({"--config", dir.Write("empty.yaml", "")}).ok());
    CHECK(f.o.workers == 4);
    REQUIRE(f.Load({"--config", dir.Write("comments.yaml", "# nothing\n")}).ok());
    CHECK(f.o.workers == 4);
  }
}

TEST_CASE("Config changes no target when loading fails", "[unit][config]") {
  Fixture f;
  f.o.workers = 11;  // Not the default; an all-or-nothing Load must leave it alone.
  const Status s = f.Load({"--metrics-address=:1", "--workers=12", "--headroom=bad"});
  REQUIRE_FALSE(s.ok());
  CHECK(f.o.metrics_address == ":8080");
  CHECK(f.o.workers == 11);
}

TEST_CASE("Config --help returns at once and changes nothing", "[unit][config]") {
  Fixture f;
  for (const char* help : {"--help", "-h", "-help", "--h"}) {
    REQUIRE(f.Load({"--workers=2", help, "--bogus"}, {{"MESHSTOR_WORKERS", "bad"}}).ok());
    CHECK(f.config.help_requested());
    CHECK(f.o.workers == 4);
  }
  REQUIRE(f.Load({}).ok());
  CHECK_FALSE(f.config.help_requested());
}

TEST_CASE("Config HelpText lists options by name with defaults and variables", "[unit][config]") {
  Fixture f;
  const std::string help = f.config.HelpText();
  INFO(help);
  CHECK(help.starts_with("Usage: meshstor-test [flags]\n\nTests the configuration loader\n"));
  CHECK(help.find("  --metrics-address string\n        Address of the metrics endpoint "
                  "(default \":8080\"; env MESHSTOR_METRICS_ADDRESS)\n") != std::string::npos);
  CHECK(help.find("  --workers int\n        Reconcile workers (default 4; range [1, 64]; env "
                  "MESHSTOR_WORKERS)\n") != std::string::npos);
  CHECK(help.find("  --leader-elect\n        Elect a leader before reconciling (default true; "
                  "env MESHSTOR_LEADER_ELECT)\n") != std::string::npos);
  CHECK(help.find("  --log-format string\n        Log line format (default \"json\"; one of "
                  "\"json\", \"text\"; env MESHSTOR_LOG_FORMAT)\n") != std::string::npos);
  CHECK(help.find("  --resync duration\n        Period of full resyncs (default 10m; range "
                  "[1s, 24h]; env MESHSTOR_RESYNC)\n") != std::string::npos);
  CHECK(help.find("(default 2; minimum 0; env MESHSTOR_MAX_REBUILDS_PER_NODE)") !=
        std::string::npos);
  CHECK(help.find("(default 1; maximum 2; env MESHSTOR_RATIO)") != std::string::npos);
  CHECK(help.find("  --headroom float\n") != std::string::npos);
  CHECK(help.find("  --config file\n") != std::string::npos);
  CHECK(help.find("  --help\n") != std::string::npos);
  // Sorted by name.
  const std::vector<std::string> order = {
      "--config",          "--headroom",   "--help",
      "--leader-elect",    "--log-format", "--max-rebuilds-per-node",
      "--metrics-address", "--ratio",      "--resync",
      "--workers"};
  size_t last = 0;
  for (const std::string& name : order) {
    const size_t at = help.find("  " + name);
    INFO(name);
    REQUIRE(at != std::string::npos);
    CHECK(at > last);
    last = at;
  }
}

TEST_CASE("Config reports declaration mistakes as Internal naming the option", "[unit][config]") {
  struct Targets {
    std::string s;
    int64_t n = 5;
    double inf = std::numeric_limits<double>::infinity();
    milliseconds negative = -1s;
  };
  using Declare = void (*)(Config&, Targets&);
  auto [declare, message] = GENERATE(table<Declare, std::string>({
      {[](Config& c, Targets& t) { c.AddString("Bad_Name", &t.s, ""); },
       "option \"Bad_Name\": name must be"},
      {[](Config& c, Targets& t) { c.AddString("a--b", &t.s, ""); },
       "option \"a--b\": name must be"},
      {[](Config& c, Targets& t) { c.AddString("trailing-", &t.s, ""); },
       "option \"trailing-\": name must be"},
      {[](Config& c, Targets& t) { c.AddString("1st", &t.s, ""); }, "option \"1st\": name must be"},
      {[](Config& c, Targets& t) { c.AddString("config", &t.s, ""); },
       "option \"config\": name is reserved"},
      {[](Config& c, Targets&) { c.AddBool("help", nullptr, ""); },
       "option \"help\": name is reserved"},
      {[](Config& c, Targets& t) {
         c.AddString("x", &t.s, "");
         c.AddInt64("x", &t.n, "");
       },
       "option \"x\": declared twice"},
      {[](Config& c, Targets&) { c.AddInt64("n", nullptr, ""); }, "option \"n\": target is null"},
      {[](Config& c, Targets& t) { c.AddInt64("n", &t.n, "", {.min = 6, .max = 10}); },
       "option \"n\": default: value 5 is below the minimum 6"},
      {[](Config& c, Targets& t) { c.AddInt64("n", &t.n, "", {.min = 10, .max = 1}); },
       "option \"n\": minimum is above maximum"},
      {[](Config& c, Targets& t) {
         c.AddString("s", &t.s, "", {"a", "b"});
       },
       "option \"s\": default: \"\" is not one of \"a\", \"b\""},
      {[](Config& c, Targets& t) { c.AddDuration("t", &t.negative, ""); },
       "option \"t\": default duration is negative"},
      {[](Config& c, Targets& t) { c.AddDouble("d", &t.inf, ""); },
       "option \"d\": default is not finite"},
  }));
  Targets targets;
  Config config("prog");
  std::string ok_target = "kept";
  config.AddString("ok", &ok_target, "");
  declare(config, targets);
  const Status status = config.Load({"--ok=changed"}, LookupIn({}));
  INFO(status.ToString());
  CHECK(status.code() == StatusCode::kInternal);
  CHECK(status.message().find("configuration of prog: " + message) == 0);
  CHECK(ok_target == "kept");
}

TEST_CASE("Config Load(argc, argv) skips the program name and reads the environment",
          "[unit][config]") {
  std::string probe = "default";
  int64_t count = 0;
  Config config("prog");
  config.AddString("config-test-probe", &probe, "Probe");
  config.AddInt64("config-test-count", &count, "Count");
  REQUIRE(::setenv("MESHSTOR_CONFIG_TEST_PROBE", "from-env", 1) == 0);
  const char* argv[] = {"prog", "--config-test-count=3"};
  const Status s = config.Load(2, argv);
  ::unsetenv("MESHSTOR_CONFIG_TEST_PROBE");
  REQUIRE(s.ok());
  CHECK(probe == "from-env");
  CHECK(count == 3);
}

TEST_CASE("EnvVarName derives the variable from the option name", "[unit][config]") {
  CHECK(EnvVarName("metrics-address") == "MESHSTOR_METRICS_ADDRESS");
  CHECK(EnvVarName("workers") == "MESHSTOR_WORKERS");
  CHECK(EnvVarName("v2-mode") == "MESHSTOR_V2_MODE");
}

TEST_CASE("ParseDuration accepts Go-style units and plain seconds", "[unit][config]") {
  auto [text, expected] = GENERATE(table<std::string, milliseconds>({
      {"0", 0ms},
      {"0s", 0ms},
      {"30", 30s},
      {"1.5", 1500ms},
      {".5", 500ms},
      {"30s", 30s},
      {"500ms", 500ms},
      {"1m30s", 90s},
      {"1h30m", 90min},
      {"1.5h", 90min},
      {"2h0m0.25s", 2h + 250ms},
      {"1s500ms", 1500ms},
      {"0.0004s", 0ms},  // Below millisecond precision.
      {"0.0006s", 1ms},  // Rounded to the nearest millisecond.
  }));
  INFO(text);
  auto d = ParseDuration(text);
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CHECK(*d == expected);
}

TEST_CASE("ParseDuration rejects malformed durations", "[unit][config]") {
  auto text = GENERATE(as<std::string>{}, "", "s", "-1s", "+1s", "1d", "1us", "30 s", " 30s",
                       "1h30", "1..5s", ".s", "1e3s", "1m-3s", "abc", "10000000000000000h");
  INFO(text);
  auto d = ParseDuration(text);
  REQUIRE_FALSE(d.ok());
  const Status s = d.status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find(fmt::format("{:?}", text)) != std::string::npos);
}

TEST_CASE("FormatDuration writes what ParseDuration reads", "[unit][config]") {
  auto [d, text] = GENERATE(table<milliseconds, std::string>({
      {0ms, "0s"},
      {1ms, "1ms"},
      {999ms, "999ms"},
      {1s, "1s"},
      {1500ms, "1.5s"},
      {1250ms, "1.25s"},
      {90s, "1m30s"},
      {10min, "10m"},
      {2h, "2h"},
      {2h + 1min + 1001ms, "2h1m1.001s"},
      {1h + 500ms, "1h0.5s"},
  }));
  CHECK(FormatDuration(d) == text);
  auto back = ParseDuration(text);
  REQUIRE(back.ok());
  CHECK(*back == d);
}

}  // namespace
}  // namespace common::config
