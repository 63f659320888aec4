#pragma once
// Scenario files: a run_plan written down in TOML (docs/scenarios.md), and
// command-line overrides of any of its keys ("--set run.clients=500").
//
//   auto loaded = load_scenario("scenarios/seed-article.toml");
//   if (auto* e = std::get_if<scenario_error>(&loaded)) { std::cerr << e->what() << "\n"; return 2; }
//   run_plan plan = std::get<run_plan>(std::move(loaded));
//   if (auto e = apply_overrides(plan, {"run.clients=500", "server.policy=peer"})) { ...e->what()... }
//
// Every key is checked: unknown keys (typos) are errors, values are checked
// for type and range as they are read, and the finished plan is validated
// (run_plan::validate). Errors name the file, line, column and key.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nudge/sim/run_plan.hpp"

namespace nudge::sim {

struct scenario_error {
  std::string source;      // the file as given, or "--set" for an override
  std::size_t line = 0;    // 1-based; 0 when not known (e.g. a whole-plan check)
  std::size_t column = 0;  // 1-based; 0 when not known
  std::string key;         // dotted key ("events.mmpp.high_mean", "nat[1].preset"); may be empty
  std::string message;     // what is wrong, and what would be right
  /// "FILE:LINE:COL: KEY: MESSAGE" (parts that are unknown are left out).
  std::string what() const;
};

using scenario_result = std::variant<run_plan, scenario_error>;

/// Reads a scenario file. Keys the file does not give keep run_plan's defaults.
scenario_result load_scenario(const std::filesystem::path& path);
/// The same from text; `source_name` is what errors call it.
scenario_result parse_scenario(std::string_view toml_text, std::string_view source_name = "<scenario>");
/// The same, applied on top of `base` instead of a default run_plan.
scenario_result parse_scenario(std::string_view toml_text, std::string_view source_name, const run_plan& base);

/// Applies one "key.path=value" (the value as in a scenario file; quotes may be
/// left out of strings: server.policy=peer, run.duration=8h; arrays need TOML:
/// nat=[{preset="symmetric",fraction=1}]; NAT entries by index: nat[0].udp_timeout=60s
/// or nat.0.udp_timeout=60s, index = size appends). Checks the value and then the
/// whole plan; on error the plan is left unchanged.
std::optional<scenario_error> apply_override(run_plan& plan, std::string_view assignment);
/// Applies several in order, validating the plan once at the end (so intermediate
/// states may be invalid: mix.poll=0 then mix.push=1). All or nothing.
std::optional<scenario_error> apply_overrides(run_plan& plan, const std::vector<std::string>& assignments);

/// The plan as a complete scenario file (every key with its value); loading it
/// gives the same plan back.
std::string to_toml(const run_plan& plan);

/// The wire.preset key: "windows" (wire_model's defaults) or "linux" (TCP
/// timestamps on every segment, Linux's SYN options and 40 ms delayed ACK, as on
/// Linux loopback). Sets tcp_options, syn_options and delayed_ack; false for an
/// unknown name.
bool apply_wire_preset(metrics::wire_model& w, std::string_view name);

/// Every key a scenario may set (dotted; NAT keys as nat.N.*), with its type and meaning.
struct scenario_key {
  std::string_view key;
  std::string_view type;
  std::string_view help;
  std::string_view example;  // a valid, non-default value as it would appear after '='
};
const std::vector<scenario_key>& scenario_keys();

/// Parses "8h", "90s", "5min", "1h30min", "250ms", "1.5h", "2d" (and a plain
/// number of seconds). nullopt when it is not a duration.
std::optional<duration> parse_duration(std::string_view text);
/// Formats a duration exactly, in the largest unit that divides it ("8h", "90s", "1500ms").
std::string format_duration(duration d);
/// Parses a time of day "HH:MM" or "HH:MM:SS" (up to "24:00").
std::optional<duration> parse_time_of_day(std::string_view text);
/// "HH:MM" or "HH:MM:SS".
std::string format_time_of_day(duration since_midnight);

}  // namespace nudge::sim
