#pragma once
// Result files in: one or more nudge.result/1 documents (client-sim --json),
// given as files or directories, or a previous report's result.json
// (nudge.report/1, whose inputs are taken again). Each becomes a `run`, named
// after its file (business-day.json -> "business-day").
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nudge/protocol/result.hpp"

namespace nudge::report {

struct run {
  std::string name;  // unique among the inputs of one set
  std::string path;  // the file it came from
  nlohmann::json result;  // the whole nudge.result/1 document

  /// Modes with clients, in the order poll, push, async.
  std::vector<std::string> modes() const;
  /// A mode block: "poll", "push", "async", or "total" (also "all"); nullptr when absent.
  const nlohmann::json* mode(std::string_view mode_name) const;
  /// A (mode, NAT) group block; nullptr when absent.
  const nlohmann::json* group(std::string_view mode, std::string_view nat) const;
  /// The NAT groups of the result, in file order (empty without a NAT mix).
  std::vector<std::pair<std::string, std::string>> groups() const;  // (mode, nat)
  /// Thresholds the scenario declared ([report] thresholds, echoed as plan.report.thresholds).
  std::vector<std::string> declared_thresholds() const;
  std::string clock() const;
  /// "virtual clock, 10,000 clients, 8 h measured + 5 min drain, seed 1"
  std::string summary() const;
};

struct input_set {
  std::vector<run> runs;
  std::vector<std::string> notes;  // files in a directory that were skipped, and why
  const run* find(std::string_view name) const;
  std::vector<std::string> names() const;
};

/// Loads files and directories in the order given (a directory's *.json files
/// in name order; there, files that are not results are skipped with a note,
/// while a file named explicitly must be one). Fails when an input cannot be
/// used: unreadable, not JSON, not a result (exit code 1).
result<input_set> load_inputs(const std::vector<std::string>& paths);

/// The baseline run to compare `r` with: the one of the same name, or, when
/// both sets hold exactly one run, that one. nullptr when there is none.
const run* baseline_for(const run& r, const input_set& now, const input_set& baseline);

}  // namespace nudge::report
