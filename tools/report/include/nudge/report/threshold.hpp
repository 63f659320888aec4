#pragma once
// Thresholds: checks on a run's numbers, written as one comparison.
//
//   push.wire_bytes_per_client_hour < 0.2 * poll.wire_bytes_per_client_hour
//   push[symmetric].missed == 0
//   business-day:async.latency.p99 <= 500ms
//   change(push.wire_bytes_per_client_hour) < +5%
//
// Grammar (docs/report.md):
//   threshold  := sum COMPARISON sum            COMPARISON: < <= > >= == !=
//   sum        := product (("+" | "-") product)*
//   product    := unary (("*" | "/") unary)*
//   unary      := ("+" | "-") unary | primary
//   primary    := NUMBER [UNIT] | METRIC | FUNCTION "(" sum ")" | "(" sum ")"
//   METRIC     := [RUN ":"] MODE ["[" NAT "]"] "." NAME     MODE: poll push async total all run
//   FUNCTION   := change | baseline                 (need --baseline)
//   UNIT       := ns us µs ms s min h d | B KB MB GB KiB MiB GiB | %   (written right after the number)
//
// A METRIC without a RUN is evaluated on every input run that has its mode (and
// NAT group); one with a RUN only on that run. Times are in seconds, bytes in
// bytes; "2s" and "10KB" cannot be compared (or added), a plain number can.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nudge/report/inputs.hpp"
#include "nudge/report/metrics.hpp"

namespace nudge::report {

/// A threshold that cannot be parsed or does not fit the inputs (exit code 2).
struct threshold_error {
  std::string origin;         // "--threshold", "limits.txt:3", "business-day: plan.report.thresholds[0]"
  std::string text;           // the threshold as written
  std::size_t position = 0;   // 0-based offset of the problem in `text`
  std::size_t length = 1;
  std::string message;
  /// "ORIGIN: column N: MESSAGE", then the text and a caret line under the problem.
  std::string what() const;
};

struct metric_ref {
  std::string run;                 // "" = the run the threshold is evaluated on
  std::string mode;                // poll, push, async, total, run ("all" is read as total)
  std::optional<std::string> nat;  // a (mode, NAT) group: push[symmetric]
  const metric_info* metric = nullptr;
  std::size_t position = 0, length = 0;
  std::string text;                // as written
};

enum class comparison { lt, le, gt, ge, eq, ne };
std::string_view to_string(comparison c);

struct expr {
  enum class kind { number, metric, negate, add, subtract, multiply, divide, change, baseline };
  kind k = kind::number;
  double number = 0;
  metric_ref ref;
  std::shared_ptr<const expr> a, b;
  std::size_t position = 0, length = 0;  // of the number, metric, operator or function name
};

struct threshold {
  std::string text;
  std::string origin;
  /// Set for thresholds a scenario declared: unqualified metrics mean that run only.
  std::string scope_run;
  std::shared_ptr<const expr> lhs, rhs;
  comparison op = comparison::lt;
  std::size_t op_position = 0;
  /// Every metric reference, in text order (those inside change()/baseline() too).
  std::vector<metric_ref> refs() const;
  /// Uses change() or baseline().
  bool needs_baseline() const;
};

using parse_result = std::variant<threshold, threshold_error>;
parse_result parse_threshold(std::string_view text, std::string origin = "--threshold");

/// A thresholds file: one threshold per line; blank lines and lines starting
/// with '#' are skipped. Errors name the file and line.
std::variant<std::vector<threshold>, threshold_error> parse_threshold_lines(std::string_view content,
                                                                           const std::string& file_name);

/// Checks what parsing cannot: runs named in the threshold exist, change() has a
/// baseline. nullopt when fine.
std::optional<threshold_error> check_against(const threshold& t, const input_set& now, const input_set* baseline);

/// One check of a threshold on one run (or on the inputs as a whole, when every
/// metric names its run).
struct evaluation {
  std::string threshold;  // as written
  std::string origin;
  std::string run;        // the run unqualified metrics were read from; "" when none
  bool passed = false;
  std::optional<double> lhs, rhs;
  /// Every metric read, as written ("baseline push.missed" for the baseline's value), and its value.
  std::vector<std::pair<std::string, std::optional<double>>> values;
  /// One line: "2828.21 B < 2541.72 B is false", or why there was nothing to compare.
  std::string message;
};

/// Evaluates `t` on every run it applies to. A threshold that applies to no run
/// yields one failed evaluation that says so (a check that checks nothing must
/// not pass quietly).
std::vector<evaluation> evaluate(const threshold& t, const input_set& now, const input_set* baseline);

}  // namespace nudge::report
