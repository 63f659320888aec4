#pragma once
// The `client-sim` command line: parsing (pure: help, version and usage
// errors come back as values) and the run that follows.
//
// Exit codes: 0 the run completed and no client failed (missed events are a
// result, shown in the table); 1 the run could not be carried out (notifier
// unreachable, a worker process died, the JSON file could not be written), or
// it completed with failed clients (table and JSON are still written), or
// --pcap was given and no capture could be made (the run still completes);
// 2 usage error (bad flag or value, non-loopback endpoint for a real run).
#include <iosfwd>
#include <string>

#include "nudge/sim/asio_driver.hpp"
#include "nudge/protocol/result.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/virtual_driver.hpp"

namespace nudge::sim {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

enum class clock_kind { real, virtual_time };

/// --pcap and its companions (docs/captures.md). An empty path: no capture.
struct pcap_cli_options {
  std::string path;
  /// Virtual clock: where simulated time zero lands (seconds since 1970).
  duration epoch = default_pcap_epoch();
  /// Virtual clock: capture the first N clients only (0: all)...
  std::size_t first_clients = 0;
  /// ...and/or a seeded sample of them (1: all).
  double sample = 1.0;
  /// Real clock: the interface libpcap captures on.
  std::string interface = "lo";
};

struct client_sim_options {
  /// What main() does: run, or print `text` (the help text, the version line) and exit 0.
  /// nat_describe: print `text` (a preset's declared behaviour) and exit 0;
  /// nat_judge: build the kernel NAT for `nat_preset` and run the STUN classifiers.
  enum class command { run, help, version, nat_describe, nat_judge };
  command cmd = command::run;
  std::string text;
  std::string nat_preset;  // --nat-describe / --nat-judge
  clock_kind clock = clock_kind::real;
  run_plan plan;
  /// Real clock: endpoints, workers, processes, source addresses. The
  /// progress and log callbacks are set by run_client_sim.
  real_options real;
  /// Virtual clock: progress reporting is set by run_client_sim; plan.server
  /// and plan.link configure the in-process notifier and the network.
  virtual_options virt;
  /// Where to write to_json(result); empty: nowhere; "-": stdout (the table then goes to stderr).
  std::string json_path;
  bool quiet = false;
  pcap_cli_options pcap;
};

/// Parses argv (argv[0] is the program name): the options (command::help or
/// command::version with the text to print when asked), or the usage error
/// (exit code exit_usage). Never prints, never exits.
result<client_sim_options> parse_client_sim_options(int argc, const char* const* argv);

/// Parses "poll=0.3,push=0.4,async=0.3" (missing modes are 0). Empty string on
/// success, else the problem.
std::string parse_mix(std::string_view text, std::array<double, client::client_mode_count>& mix);

/// Runs a parsed command: the table to `out` (or `err` when JSON goes to
/// stdout), warnings and, when `live_progress`, a progress line to `err`.
/// Returns the exit code.
int run_client_sim(const client_sim_options& o, std::ostream& out, std::ostream& err, bool live_progress);

/// `client-sim --nat-judge PRESET`: builds the kernel NAT testbed for the
/// preset, runs Vovida stun and turnutils_natdiscovery through it and prints
/// their verdicts beside the declared ones. 0 when both agree with the
/// declaration, 1 when not or when the testbed cannot be built, 2 when the
/// kernel cannot realise the preset.
int run_nat_judge(const std::string& preset, std::ostream& out, std::ostream& err);

/// main(): parse, print help/version/usage errors, run (progress line only when stderr is a terminal).
int client_sim_main(int argc, const char* const* argv);

}  // namespace nudge::sim
