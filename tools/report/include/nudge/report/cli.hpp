#pragma once
// nudge-report's command line (docs/report.md):
//
//   nudge-report out/demo --out out/demo/report
//       --threshold 'push.wire_bytes_per_client_hour < 0.2 * poll.wire_bytes_per_client_hour'
//   nudge-report --baseline old.json new.json --threshold 'change(push.wire_bytes_per_client_hour) < +5%'
#include <iosfwd>
#include <string>
#include <vector>

#include "nudge/protocol/result.hpp"

namespace nudge::report {

/// Exit codes (also in --help).
namespace exit_code {
constexpr int ok = 0;                // every threshold passed (or none was given) and every output was written
constexpr int runtime_error = 1;     // an input could not be read, an output could not be written, or charts
                                     // could not be drawn (gnuplot missing) while no threshold failed
constexpr int usage_error = 2;       // a bad flag, an unparsable threshold, an unknown metric or run
constexpr int threshold_failed = 3;  // at least one threshold failed (all outputs written)
}  // namespace exit_code

struct report_options {
  std::vector<std::string> inputs;
  std::vector<std::string> baseline;
  std::vector<std::string> thresholds;
  std::vector<std::string> threshold_files;
  bool scenario_thresholds = true;
  std::string out_dir = "out/report";
  std::string gnuplot = "gnuplot";
  bool charts = true;
  std::string title = "nudge report: polling vs push";
  bool quiet = false;  // no summary on stdout (errors still go to stderr)
  std::string help_text;  // --help: what to print instead of running
};

/// Parses the command line: the options, or the usage error (exit_code::usage_error).
result<report_options> parse_report_options(int argc, const char* const* argv);
/// Parses the command line and runs; returns the exit code.
int report_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);
/// Runs with parsed options.
int run_report(const report_options& o, std::ostream& out, std::ostream& err);

}  // namespace nudge::report
