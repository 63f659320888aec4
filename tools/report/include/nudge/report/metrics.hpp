#pragma once
// The metrics a threshold or a report table can name, and where each one is in
// a result file (schema nudge.result/1, docs/measurements.md). One catalogue
// serves the threshold parser, the tables, the charts and docs/report.md.
//
//   mode metrics  (poll., push., async., total., and per NAT group: push[symmetric].)
//     wire_bytes_per_client_hour      -> traffic.per_client_hour.wire_bytes
//     latency.p99                     -> latency.p99_s (seconds)
//     latency.push.p50                -> latency_by_path.push.p50_s
//     kind.ping.wire_bytes            -> traffic.by_kind.ping.{to_server,to_client}.wire_bytes (summed)
//   run metrics   (run.)
//     wall_time                       -> wall_s
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace nudge::report {

/// What a number measures, so that "2s" is never compared with "10KB".
enum class dimension { none, time, bytes };
std::string_view to_string(dimension d);

struct metric_info {
  std::string name;      // as written after "mode." in a threshold
  std::string json;      // dotted path in the block; "*" sums over the children at that level
  dimension dim = dimension::none;
  std::string help;
  /// The value when the path is absent from the block (by_kind omits kinds
  /// with no traffic: 0). nullopt: absent means "no data".
  std::optional<double> if_absent;
  /// A latency statistic: no data when the histogram it comes from is empty.
  bool needs_latency_count = false;
};

/// Every metric of a mode block (a mode, "total", or a (mode, NAT) group):
/// those every result has, then those named by the results read so far
/// (learn_names). Elements never move: a parsed threshold may point at one.
const std::deque<metric_info>& mode_metrics();
/// Metrics of the run as a whole ("run.wall_time").
const std::vector<metric_info>& run_metrics();
const metric_info* find_mode_metric(std::string_view name);
const metric_info* find_run_metric(std::string_view name);
/// "did you mean 'x'?" for an unknown name, or "" when nothing is close.
std::string closest_metric(std::string_view name, bool run_metric);

/// The metric's value in `block` (a mode block, or the whole result for run
/// metrics); nullopt when the block has no data for it. Wire bytes and packets
/// come from the block's `measured` figures when it has them (real runs).
std::optional<double> lookup(const nlohmann::json& block, const metric_info& m);
/// The block holds measured wire figures (a real run's mode or total).
bool has_measured_wire(const nlohmann::json& block);

/// The client modes of the results read so far, in the order their
/// vocabularies (or, for older results, their files) list them.
const std::vector<std::string>& mode_names();
/// Learns the names a result uses: its `vocabulary` block (per family: modes,
/// kinds, paths, counters), or, for older results, the keys it holds. Names
/// are never forgotten; the metric catalogue grows with them.
void learn_names(const nlohmann::json& result);
/// For older results: the same from the keys, in the order the file lists them.
void learn_names_in_file_order(const nlohmann::ordered_json& result);

}  // namespace nudge::report
