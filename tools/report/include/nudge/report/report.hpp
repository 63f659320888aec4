#pragma once
// The report: one in-memory model built from the inputs (tables and chart data
// take their numbers from the same cells, so a chart shows what its table
// says), rendered as Markdown (report.md, fits a GitHub job summary), as a
// self-contained HTML page with inline SVG charts (report.html), as JSON
// (result.json, schema nudge.report/1) and as JUnit XML (junit.xml).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nudge/report/inputs.hpp"
#include "nudge/report/threshold.hpp"

namespace nudge::report {

struct cell {
  std::optional<double> value;
  std::string text;  // value formatted once; every output shows this text
};

struct table_row {
  std::string label;
  std::vector<cell> cells;
};

struct table {
  std::string title;
  std::string note;                 // a sentence under the table
  std::vector<std::string> header;  // header[0] heads the label column
  std::vector<table_row> rows;
};

struct bar {
  std::string cluster;  // a run, or a NAT group
  std::string series;   // a mode
  double value = 0;
  std::string label;    // the table cell's text
};

struct line_series {
  std::string name;  // a mode
  std::vector<std::pair<double, double>> points;
  /// Points drawn as markers (the table's latency percentiles on a CDF).
  std::vector<std::pair<double, double>> markers;
};

struct chart {
  enum class kind { bars, cdf, timeline };
  kind k = kind::bars;
  std::string id;       // "bytes-by-mode", "latency-cdf-business-day", ...
  std::string title;
  std::string caption;
  std::string xlabel, ylabel;
  std::vector<std::string> clusters, series;  // bars, in order
  std::vector<bar> bars;
  std::vector<line_series> lines;
  bool log_y = false;              // bars: values span more than 25x (the labels keep the numbers)
  std::optional<double> x_marker;  // timeline: the end of the measured period
  std::string x_marker_label;
  // Filled by draw_charts.
  std::string svg;    // inline <svg> element
  std::string error;  // why it could not be drawn
};

struct run_section {
  std::string name;
  std::string path;
  std::string summary;
  table modes;
  table unnecessary;
  std::optional<table> groups;
  std::optional<table> timeline;  // the timeline chart's data, for the HTML page
  std::vector<std::size_t> charts;  // indices into report_model::charts
  std::vector<std::string> notes;
};

struct change {
  std::string run, baseline_run, mode, metric;
  std::optional<double> old_value, new_value;
  std::optional<double> fraction;  // (new - old) / |old|; 0 when equal; inf from 0
};

struct report_model {
  std::string title;
  std::vector<std::string> input_notes;
  table overview;
  std::vector<std::size_t> overview_charts;
  std::vector<run_section> runs;
  std::vector<chart> charts;
  std::vector<evaluation> evaluations;
  std::vector<change> changes;
  std::vector<table> change_tables;  // one per compared run
  std::vector<std::string> baseline_notes;
  std::size_t passed = 0, failed = 0;
};

/// Builds the model. `baseline` may be null.
report_model build_model(const input_set& now, const input_set* baseline, std::vector<evaluation> evaluations,
                         std::string title = "nudge report: polling vs push");

/// The metrics compared against a baseline, with their table labels.
const std::vector<std::pair<std::string, std::string>>& compared_metrics();

std::string render_markdown(const report_model& m);
std::string render_html(const report_model& m);
std::string render_junit(const report_model& m);
/// result.json: the inputs (and baseline) merged, with the verdicts and changes.
nlohmann::json render_json(const report_model& m, const input_set& now, const input_set* baseline, int exit_code);
/// A short plain-text summary for stdout.
std::string render_summary(const report_model& m);

}  // namespace nudge::report
