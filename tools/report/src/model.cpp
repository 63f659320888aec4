// Builds the report model from the inputs: the tables first, then the charts
// from the tables' own cells.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "nudge/report/format.hpp"
#include "nudge/report/metrics.hpp"
#include "nudge/report/report.hpp"

namespace nudge::report {

using nlohmann::json;

namespace {

struct row_def {
  const char* label;
  const char* metric;
  value_style style;
};

// The per-mode table, as client-sim's own table has it.
constexpr row_def mode_rows[] = {
    {"clients", "clients", value_style::count},
    {"wire bytes / client-hour", "wire_bytes_per_client_hour", value_style::rate},
    {"packets / client-hour", "packets_per_client_hour", value_style::rate},
    {"payload bytes / client-hour", "payload_bytes_per_client_hour", value_style::rate},
    // here: the families' counter rows (family_rows)
    {"events generated", "generated", value_style::count},
    {"events fetched", "fetched", value_style::count},
    {"events missed", "missed", value_style::count},
    {"latency p50", "latency.p50", value_style::seconds},
    {"latency p90", "latency.p90", value_style::seconds},
    {"latency p99", "latency.p99", value_style::seconds},
    {"latency p99.9", "latency.p999", value_style::seconds},
    {"latency max", "latency.max", value_style::seconds},
    {"clients failed", "clients_failed", value_style::count},
};

cell value_cell(const json* block, std::string_view metric, value_style style) {
  const metric_info* m = find_mode_metric(metric);
  std::optional<double> v;
  if (block && m) v = lookup(*block, *m);
  return {v, format_value(v, style)};
}

cell text_cell(std::string text) { return {std::nullopt, std::move(text)}; }

// The families' counter rows, from the result's vocabulary block: each
// family's table rows that show one counter (a cell is one number), else one
// row per counter. Results written before the block, or before its "table",
// ran EMSMDB only: they get the rows its table always had.
std::vector<std::pair<std::string, std::string>> family_rows(const run& r) {
  const std::vector<std::pair<std::string, std::string>> emsmdb_rows = {
      {"polls", "polls"}, {"polls that found nothing", "wasted_polls"}, {"fetches", "fetches"}};
  const auto v = r.result.find("vocabulary");
  if (v == r.result.end() || !v->is_object()) return emsmdb_rows;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [family, words] : v->items()) {
    if (!words.is_object()) continue;
    const auto table = words.find("table");
    if (table == words.end() && family == "emsmdb") {
      rows.insert(rows.end(), emsmdb_rows.begin(), emsmdb_rows.end());
    } else if (table != words.end() && table->is_array()) {
      for (const auto& row : *table)
        if (row.is_object() && row.value("counters", json::array()).size() == 1)
          rows.emplace_back(row.value("label", std::string()), row["counters"][0].get<std::string>());
    } else if (const auto counters = words.find("counters"); counters != words.end() && counters->is_array()) {
      for (const auto& c : *counters)
        if (c.is_string()) rows.emplace_back(c.get<std::string>(), c.get<std::string>());
    }
  }
  return rows;
}

std::string mode_label(const std::string& mode) { return mode == "total" ? "all" : mode; }

table mode_table(const run& r) {
  table t;
  t.title = "Per mode";
  t.header = {"metric"};
  std::vector<std::string> cols = r.modes();
  cols.push_back("total");
  for (const auto& c : cols) t.header.push_back(mode_label(c));
  auto add = [&](const std::string& label, std::string_view metric, value_style style) {
    table_row row{label, {}};
    for (const auto& c : cols) row.cells.push_back(value_cell(r.mode(c), metric, style));
    t.rows.push_back(std::move(row));
  };
  for (const auto& d : mode_rows) {
    if (std::string_view(d.metric) == "generated")
      for (const auto& [label, counter] : family_rows(r)) add(label, counter, value_style::count);
    add(d.label, d.metric, d.style);
  }
  t.note = "Wire bytes are IP-layer bytes, both directions: payload + IPv4/TCP/UDP headers, handshakes and estimated "
           "pure ACKs, per client per measured hour (docs/measurements.md). Latency: event created to details fetched.";
  return t;
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::nullopt;
  return *a / *b;
}

table unnecessary_table(const run& r) {
  table t;
  t.title = "Unnecessary traffic (the seed article's measure)";
  t.header = {"metric"};
  std::vector<std::string> cols = r.modes();
  cols.push_back("total");
  for (const auto& c : cols) t.header.push_back(mode_label(c));
  auto add = [&](const char* label, auto fn) {
    table_row row{label, {}};
    for (const auto& c : cols) row.cells.push_back(fn(r.mode(c)));
    t.rows.push_back(std::move(row));
  };
  auto metric = [](const char* name, value_style s) { return [=](const json* b) { return value_cell(b, name, s); }; };
  add("polls", metric("polls", value_style::count));
  add("polls that found nothing", metric("wasted_polls", value_style::count));
  add("share of polls that found nothing", [](const json* b) {
    const auto v = ratio(value_cell(b, "wasted_polls", value_style::count).value, value_cell(b, "polls", value_style::count).value);
    return cell{v, format_value(v, value_style::percent)};
  });
  add("unnecessary bytes / client-hour", metric("unnecessary_bytes_per_client_hour", value_style::rate));
  add("unnecessary packets / client-hour", metric("unnecessary_packets_per_client_hour", value_style::rate));
  add("unnecessary bytes / hour, all clients", metric("unnecessary_bytes_per_hour", value_style::count));
  add("unnecessary packets / hour, all clients", metric("unnecessary_packets_per_hour", value_style::count));
  add("share of the mode's wire bytes", [](const json* b) {
    const auto v = ratio(value_cell(b, "unnecessary_bytes", value_style::count).value,
                         value_cell(b, "wire_bytes", value_style::count).value);
    return cell{v, format_value(v, value_style::percent)};
  });
  t.note = "Unnecessary: the request and response of every poll that found nothing (pure ACKs not included), as the "
           "seed article counted it.";
  return t;
}

struct group_col {
  const char* header;
  const char* metric;
  value_style style;
};
constexpr group_col group_cols[] = {
    {"clients", "clients", value_style::count},
    {"wire B / client-h", "wire_bytes_per_client_hour", value_style::rate},
    {"packets / client-h", "packets_per_client_hour", value_style::rate},
    {"events", "generated", value_style::count},
    {"by push", "fetched_by_push", value_style::count},
    {"by poll", "fetched_by_poll", value_style::count},
    {"by async", "fetched_by_async", value_style::count},
    {"missed", "missed", value_style::count},
    {"latency p50", "latency.p50", value_style::seconds},
    {"latency p99", "latency.p99", value_style::seconds},
};

std::optional<table> groups_table(const run& r) {
  const auto groups = r.groups();
  if (groups.empty()) return std::nullopt;
  table t;
  t.title = "By mode and NAT";
  t.header = {"mode [NAT]"};
  for (const auto& c : group_cols) t.header.push_back(c.header);
  for (const auto& [mode, nat] : groups) {
    table_row row{fmt::format("{}[{}]", mode, nat), {}};
    for (const auto& c : group_cols) row.cells.push_back(value_cell(r.group(mode, nat), c.metric, c.style));
    t.rows.push_back(std::move(row));
  }
  t.note = "Events fetched by path: what made the client fetch them (a ping, the poll timer, an async wait). "
           "The row label is how a threshold names the group: push[symmetric].missed.";
  return t;
}

const char* const overview_header[] = {"run",    "mode",   "clients",     "wire B / client-h", "packets / client-h",
                                       "wasted polls", "missed", "latency p50", "latency p99"};
constexpr row_def overview_cols[] = {
    {"clients", "clients", value_style::count},
    {"wire B / client-h", "wire_bytes_per_client_hour", value_style::rate},
    {"packets / client-h", "packets_per_client_hour", value_style::rate},
    {"wasted polls", "wasted_polls", value_style::count},
    {"missed", "missed", value_style::count},
    {"latency p50", "latency.p50", value_style::seconds},
    {"latency p99", "latency.p99", value_style::seconds},
};

// ---- charts from the tables --------------------------------------------------------------------

const table_row* find_row(const table& t, std::string_view label) {
  for (const auto& r : t.rows)
    if (r.label == label) return &r;
  return nullptr;
}

std::size_t column_of(const table& t, std::string_view header) {
  for (std::size_t i = 1; i < t.header.size(); ++i)
    if (t.header[i] == header) return i - 1;
  return static_cast<std::size_t>(-1);
}

chart overview_chart(const table& overview) {
  chart c;
  c.k = chart::kind::bars;
  c.id = "bytes-by-mode";
  c.title = "Wire bytes per client-hour, by mode";
  c.caption = "Each bar is the overview table's \"wire B / client-h\" cell: IP-layer bytes both ways, with handshakes "
              "and estimated pure ACKs, per client per measured hour.";
  c.ylabel = "wire bytes per client-hour";
  const std::size_t col = 2;  // cells: mode, clients, wire B / client-h, ...
  for (const auto& row : overview.rows) {
    // The label column holds "run", the first cell the mode.
    const std::string& run_name = row.label;
    const std::string& mode = row.cells[0].text;
    if (mode == "all") continue;
    const cell& v = row.cells[col];
    if (!v.value) continue;
    if (std::find(c.clusters.begin(), c.clusters.end(), run_name) == c.clusters.end()) c.clusters.push_back(run_name);
    c.bars.push_back({run_name, mode, *v.value, v.text});
  }
  for (const auto& m : mode_names())
    if (std::any_of(c.bars.begin(), c.bars.end(), [&](const bar& b) { return b.series == m; })) c.series.push_back(m);
  // Runs of different scenarios can differ by orders of magnitude: a log axis
  // keeps the small ones visible (every bar carries its number).
  double lo = INFINITY, hi = 0;
  for (const auto& b : c.bars) lo = std::min(lo, b.value), hi = std::max(hi, b.value);
  if (lo > 0 && hi / lo > 25) {
    c.log_y = true;
    c.ylabel += " (log scale)";
    c.caption += " The runs differ by more than 25x, so the axis is logarithmic.";
  }
  return c;
}

chart nat_chart(const run& r, const table& groups) {
  chart c;
  c.k = chart::kind::bars;
  c.id = "bytes-by-nat-" + r.name;
  c.title = fmt::format("{}: wire bytes per client-hour, by mode and NAT type", r.name);
  c.caption = "Each bar is the \"wire B / client-h\" cell of the run's \"By mode and NAT\" table.";
  c.ylabel = "wire bytes per client-hour";
  const std::size_t col = column_of(groups, "wire B / client-h");
  for (const auto& row : groups.rows) {
    const auto open = row.label.find('[');
    const std::string mode = row.label.substr(0, open);
    const std::string nat = row.label.substr(open + 1, row.label.size() - open - 2);
    const cell& v = row.cells[col];
    if (!v.value) continue;
    if (std::find(c.clusters.begin(), c.clusters.end(), nat) == c.clusters.end()) c.clusters.push_back(nat);
    c.bars.push_back({nat, mode, *v.value, v.text});
  }
  for (const auto& m : mode_names())
    if (std::any_of(c.bars.begin(), c.bars.end(), [&](const bar& b) { return b.series == m; })) c.series.push_back(m);
  return c;
}

std::optional<chart> cdf_chart(const run& r, const table& modes, std::vector<std::string>& notes) {
  chart c;
  c.k = chart::kind::cdf;
  c.id = "latency-cdf-" + r.name;
  c.title = fmt::format("{}: latency CDF, by mode", r.name);
  c.xlabel = "latency, event created to details fetched (log scale)";
  c.ylabel = "share of events fetched within x";
  bool approximate = false;
  static constexpr std::pair<const char*, double> pct_rows[] = {
      {"latency p50", 0.5}, {"latency p90", 0.9}, {"latency p99", 0.99}, {"latency p99.9", 0.999}};
  for (const auto& mode : r.modes()) {
    const json* block = r.mode(mode);
    const std::size_t col = column_of(modes, mode);
    if (!block || col >= modes.header.size()) continue;
    line_series s{mode, {}, {}};
    for (const auto& [label, q] : pct_rows) {
      const table_row* row = find_row(modes, label);
      if (row && row->cells[col].value) s.markers.emplace_back(*row->cells[col].value, q);
    }
    const table_row* max_row = find_row(modes, "latency max");
    const std::optional<double> max = max_row ? max_row->cells[col].value : std::nullopt;
    if (!max) continue;  // no event fetched
    const auto buckets = block->find("latency_buckets");
    double total = 0;
    const bool have_buckets = buckets != block->end() && buckets->is_array() && !buckets->empty();
    // .at(): a short or malformed bucket throws (a runtime error), never reads past the array.
    if (have_buckets)
      for (const auto& b : *buckets) total += b.at(1).get<double>();
    if (have_buckets && total > 0) {
      double cum = 0;
      bool first = true;
      for (const auto& b : *buckets) {
        const double edge = std::min(b.at(0).get<double>(), *max);
        if (first) s.points.emplace_back(edge, 0.0);
        first = false;
        cum += b.at(1).get<double>();
        s.points.emplace_back(edge, cum / total);
      }
    } else {
      // An older result without buckets: through the table's percentiles.
      approximate = true;
      s.points = s.markers;
      s.points.emplace_back(*max, 1.0);
    }
    c.lines.push_back(std::move(s));
  }
  if (c.lines.empty()) return std::nullopt;
  c.caption = approximate
                  ? "This result has no latency_buckets: the curves join the table's percentiles (an approximation)."
                  : "From the latency histogram's buckets (under 1.6 % relative error); the dots are the table's p50, "
                    "p90, p99 and p99.9.";
  if (approximate) notes.push_back("latency CDF approximated from percentiles (the result has no latency_buckets)");
  return c;
}

std::pair<std::optional<chart>, std::optional<table>> timeline_chart(const run& r) {
  const auto tl = r.result.find("timeline");
  if (tl == r.result.end() || !tl->is_object() || !tl->contains("intervals") || (*tl)["intervals"].empty())
    return {std::nullopt, std::nullopt};
  const json& intervals = (*tl)["intervals"];
  const double end = intervals.back().value("to_s", 0.0);
  const bool hours = end >= 3 * 3600;
  const double unit = hours ? 3600 : 60;
  chart c;
  c.k = chart::kind::timeline;
  c.id = "timeline-" + r.name;
  c.title = fmt::format("{}: traffic over the run, by mode", r.name);
  c.xlabel = hours ? "hours since the start of the run" : "minutes since the start of the run";
  c.ylabel = "wire bytes per client-hour, without pure ACKs";
  c.caption = "Wire bytes each mode's clients sent and received in each interval, per client-hour (estimated pure ACKs "
              "are left out: they are counted when settled, not when sent). The data is in the table below the chart.";
  table t;
  t.title = "Traffic over the run (wire bytes per client-hour, without pure ACKs)";
  t.header = {hours ? "interval (h)" : "interval (min)"};
  const auto modes = r.modes();
  for (const auto& m : modes) t.header.push_back(m);
  std::vector<line_series> series;
  for (const auto& m : modes) series.push_back({m, {}, {}});
  for (const auto& iv : intervals) {
    const double from = iv.value("from_s", 0.0), to = iv.value("to_s", 0.0);
    table_row row{fmt::format("{:g}–{:g}", from / unit, to / unit), {}};
    for (std::size_t i = 0; i < modes.size(); ++i) {
      const json* block = r.mode(modes[i]);
      const double clients = block ? block->value("clients", 0.0) : 0.0;
      std::optional<double> rate;
      if (iv.contains("wire_bytes") && iv["wire_bytes"].contains(modes[i]) && clients > 0 && to > from)
        rate = iv["wire_bytes"][modes[i]].get<double>() / (clients * (to - from) / 3600.0);
      row.cells.push_back({rate, format_value(rate, value_style::rate)});
      if (rate) series[i].points.emplace_back(from / unit, *rate);
    }
    t.rows.push_back(std::move(row));
  }
  // The last step ends at the end of the run.
  for (std::size_t i = 0; i < modes.size(); ++i)
    if (!series[i].points.empty()) series[i].points.emplace_back(end / unit, series[i].points.back().second);
  for (auto& s : series)
    if (!s.points.empty()) c.lines.push_back(std::move(s));
  if (c.lines.empty()) return {std::nullopt, std::nullopt};
  const double measured = r.result.value("measured_s", 0.0);
  if (measured > 0 && measured < end) {
    c.x_marker = measured / unit;
    c.x_marker_label = "end of the run; drain follows";
  }
  return {std::move(c), std::move(t)};
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& compared_metrics() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"wire_bytes_per_client_hour", "wire bytes / client-hour"},
      {"packets_per_client_hour", "packets / client-hour"},
      {"payload_bytes_per_client_hour", "payload bytes / client-hour"},
      {"wasted_polls", "polls that found nothing"},
      {"unnecessary_bytes_per_client_hour", "unnecessary bytes / client-hour"},
      {"generated", "events generated"},
      {"fetched", "events fetched"},
      {"missed", "events missed"},
      {"latency.p50", "latency p50"},
      {"latency.p90", "latency p90"},
      {"latency.p99", "latency p99"},
      {"latency.p999", "latency p99.9"},
      {"latency.max", "latency max"},
      {"clients_failed", "clients failed"},
  };
  return m;
}

report_model build_model(const input_set& now, const input_set* baseline, std::vector<evaluation> evaluations,
                         std::string title) {
  report_model m;
  m.title = std::move(title);
  m.input_notes = now.notes;
  m.evaluations = std::move(evaluations);
  for (const auto& e : m.evaluations) (e.passed ? m.passed : m.failed)++;

  // Overview: one row per (run, mode), the label column holding the run.
  m.overview.title = "Overview";
  for (const char* h : overview_header) m.overview.header.push_back(h);
  for (const auto& r : now.runs) {
    auto cols = r.modes();
    if (cols.size() > 1) cols.push_back("total");
    for (const auto& mode : cols) {
      table_row row{r.name, {text_cell(mode_label(mode))}};
      for (const auto& c : overview_cols) row.cells.push_back(value_cell(r.mode(mode), c.metric, c.style));
      m.overview.rows.push_back(std::move(row));
    }
  }
  m.overview.note = "Per run and mode; \"all\" is every client of the run. Wire bytes per client per measured hour.";

  m.charts.push_back(overview_chart(m.overview));
  m.overview_charts.push_back(0);

  for (const auto& r : now.runs) {
    run_section s;
    s.name = r.name;
    s.path = r.path;
    s.summary = r.summary();
    s.modes = mode_table(r);
    s.unnecessary = unnecessary_table(r);
    s.groups = groups_table(r);
    if (s.groups) {
      m.charts.push_back(nat_chart(r, *s.groups));
      s.charts.push_back(m.charts.size() - 1);
    }
    if (auto c = cdf_chart(r, s.modes, s.notes)) {
      m.charts.push_back(std::move(*c));
      s.charts.push_back(m.charts.size() - 1);
    }
    auto [tc, tt] = timeline_chart(r);
    if (tc) {
      m.charts.push_back(std::move(*tc));
      s.charts.push_back(m.charts.size() - 1);
      s.timeline = std::move(tt);
    } else {
      s.notes.push_back("no traffic-over-the-run chart: the result has no timeline (only virtual-time runs record one)");
    }
    m.runs.push_back(std::move(s));
  }

  if (baseline) {
    for (const auto& r : now.runs) {
      const run* b = baseline_for(r, now, *baseline);
      if (!b) {
        m.baseline_notes.push_back(fmt::format("{}: no run of that name in the baseline", r.name));
        continue;
      }
      table t;
      t.title = b->name == r.name ? fmt::format("{}: change against the baseline", r.name)
                                  : fmt::format("{}: change against {}", r.name, b->name);
      t.header = {"metric"};
      std::vector<std::string> cols;
      for (const auto& mode : r.modes())
        if (b->mode(mode)) cols.push_back(mode);
      cols.push_back("total");
      for (const auto& c : cols) t.header.push_back(mode_label(c));
      for (const auto& [metric, label] : compared_metrics()) {
        const metric_info* info = find_mode_metric(metric);
        const bool seconds = info->dim == dimension::time;
        const bool counts = metric.find("per_client_hour") == std::string::npos && !seconds;
        table_row row{label, {}};
        for (const auto& c : cols) {
          change ch{r.name, b->name, c, metric, lookup(*b->mode(c), *info), lookup(*r.mode(c), *info), std::nullopt};
          if (ch.old_value && ch.new_value) {
            if (*ch.old_value == *ch.new_value) ch.fraction = 0.0;
            else ch.fraction = (*ch.new_value - *ch.old_value) / std::abs(*ch.old_value);
          }
          const auto style = seconds ? value_style::seconds : counts ? value_style::count : value_style::rate;
          std::string text = fmt::format("{} → {}", format_value(ch.old_value, style), format_value(ch.new_value, style));
          if (ch.fraction) text += fmt::format(" ({})", format_change(*ch.fraction));
          row.cells.push_back({ch.fraction, text});
          m.changes.push_back(std::move(ch));
        }
        t.rows.push_back(std::move(row));
      }
      t.note = fmt::format("baseline {} → now {}; change = (now - baseline) / |baseline|, as change() computes it.",
                           b->path, r.path);
      m.change_tables.push_back(std::move(t));
    }
  }
  return m;
}

}  // namespace nudge::report
