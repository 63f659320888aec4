// The model as Markdown, HTML, JUnit XML, JSON and plain text. Every number
// printed here is a cell's text from build_model: no output formats its own.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "nudge/report/charts.hpp"
#include "nudge/report/format.hpp"
#include "nudge/report/report.hpp"

namespace nudge::report {

using nlohmann::json;

namespace {

// ---- Markdown ---------------------------------------------------------------------------------

std::string md_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string md_code(std::string_view s) { return "`" + md_escape(s) + "`"; }

std::string md_table(const table& t, int level) {
  std::string o;
  if (!t.title.empty()) o += fmt::format("{} {}\n\n", std::string(static_cast<std::size_t>(level), '#'), t.title);
  o += "|";
  for (const auto& h : t.header) {
    o += ' ';
    o += md_escape(h);
    o += " |";
  }
  o += "\n|";
  for (std::size_t i = 0; i < t.header.size(); ++i) o += i == 0 ? "---|" : "---:|";
  o += "\n";
  // Appended piece by piece: g++ 12 warns (-Wrestrict, a false positive) on "x" + string here.
  for (const auto& r : t.rows) {
    o += "| ";
    o += md_escape(r.label);
    o += " |";
    for (const auto& c : r.cells) {
      o += ' ';
      o += md_escape(c.text);
      o += " |";
    }
    o += '\n';
  }
  if (!t.note.empty()) {
    o += '\n';
    o += t.note;
    o += '\n';
  }
  return o + "\n";
}

std::string verdict_line(const report_model& m) {
  const std::size_t n = m.passed + m.failed;
  if (n == 0) return "No thresholds were given.";
  if (m.failed == 0) return fmt::format("**All {} threshold checks passed.**", n);
  return fmt::format("**{} of {} threshold checks failed.**", m.failed, n);
}

// ---- HTML -------------------------------------------------------------------------------------

std::string h(std::string_view s) { return xml_escape(s); }

std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return out;
}

std::string html_table(const table& t, int level, std::string_view cls = "") {
  std::string o;
  if (!t.title.empty()) o += fmt::format("<h{0}>{1}</h{0}>\n", level, h(t.title));
  o += fmt::format("<table{}>\n<thead><tr>", cls.empty() ? std::string() : fmt::format(" class=\"{}\"", cls));
  for (std::size_t i = 0; i < t.header.size(); ++i) o += fmt::format("<th{}>{}</th>", i ? " class=\"num\"" : "", h(t.header[i]));
  o += "</tr></thead>\n<tbody>\n";
  for (const auto& r : t.rows) {
    o += "<tr><th scope=\"row\">" + h(r.label) + "</th>";
    for (const auto& c : r.cells) o += "<td class=\"num\">" + h(c.text) + "</td>";
    o += "</tr>\n";
  }
  o += "</tbody></table>\n";
  if (!t.note.empty()) o += "<p class=\"note\">" + h(t.note) + "</p>\n";
  return o;
}

std::string html_chart(const chart& c) {
  std::string o = fmt::format("<figure class=\"chart\" id=\"chart-{}\" data-chart=\"{}\">\n", slug(c.id), h(c.id));
  o += "<figcaption><strong>" + h(c.title) + "</strong><br>" + h(c.caption) + "</figcaption>\n";
  if (!c.svg.empty()) o += c.svg + "\n";
  else o += "<p class=\"chart-error\">Chart not drawn: " + h(c.error.empty() ? "charts were turned off" : c.error) + "</p>\n";
  return o + "</figure>\n";
}

constexpr std::string_view css = R"(
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2rem auto; max-width: 1040px; padding: 0 1rem;
       color: #1d1d1d; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { margin-top: 1.6rem; } .summary { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border: 1px solid #d6d6d6; padding: .25rem .55rem; } thead th { background: #f3f3f3; }
tbody th { text-align: left; font-weight: normal; background: #fafafa; } .num { text-align: right; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: #555; font-size: .88rem; margin-top: .2rem; }
.verdict { font-size: 1.15rem; padding: .5rem .8rem; border-radius: 4px; display: inline-block; }
.verdict.pass { background: #e3f4e8; } .verdict.fail { background: #fbe4e4; } .verdict.none { background: #eee; }
tr.fail th, tr.fail td { background: #fdf0f0; } .mark { font-weight: bold; }
tr.pass .mark { color: #1a7f37; } tr.fail .mark { color: #c62828; }
table.thresholds td.run, table.thresholds td.from { white-space: nowrap; }
code { background: #f4f4f4; padding: 0 .2rem; border-radius: 3px; }
figure.chart { margin: 1.2rem 0 1.8rem; } figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: #444; margin-bottom: .4rem; }
.chart-error { color: #c62828; border: 1px dashed #c62828; padding: .6rem; }
details { margin: .4rem 0 1rem; } summary { cursor: pointer; color: #333; }
.legend-swatch { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: -0.05em; }
)";

std::string thresholds_html(const report_model& m) {
  std::string o = "<table class=\"thresholds\">\n<thead><tr><th></th><th>threshold</th><th>run</th><th>measured</th>"
                  "<th>from</th></tr></thead>\n<tbody>\n";
  for (const auto& e : m.evaluations) {
    o += fmt::format("<tr class=\"{}\"><td class=\"mark\">{}</td><td><code>{}</code></td><td class=\"run\">{}</td><td>{}</td>"
                     "<td class=\"from\">{}</td></tr>\n",
                     e.passed ? "pass" : "fail", e.passed ? "PASS" : "FAIL", h(e.threshold), h(e.run.empty() ? "-" : e.run),
                     h(e.message), h(e.origin));
  }
  return o + "</tbody></table>\n";
}

// ---- JUnit ------------------------------------------------------------------------------------

std::string x(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += ' ';
        else out += c;
    }
  }
  return out;
}

std::string optional_number(std::optional<double> v) { return v ? fmt::format("{:.10g}", *v) : "none"; }

}  // namespace

std::string render_markdown(const report_model& m) {
  std::string o = fmt::format("# {}\n\n{}\n\n", m.title, verdict_line(m));
  o += "Inputs:";
  for (const auto& r : m.runs) o += fmt::format(" {} ({}){}", md_code(r.name), md_escape(r.path), &r == &m.runs.back() ? "" : ",");
  o += "\n\n";
  for (const auto& n : m.input_notes) o += "- " + md_escape(n) + "\n";
  if (!m.input_notes.empty()) o += "\n";
  if (!m.evaluations.empty()) {
    o += "## Thresholds\n\n| | threshold | run | measured |\n|---|---|---|---|\n";
    for (const auto& e : m.evaluations)
      o += fmt::format("| {} | {} | {} | {} |\n", e.passed ? "✅ pass" : "❌ **FAIL**", md_code(e.threshold),
                       md_escape(e.run.empty() ? "-" : e.run), md_escape(e.message));
    o += "\n";
  }
  o += md_table(m.overview, 2);
  if (!m.change_tables.empty() || !m.baseline_notes.empty()) {
    o += "## Change against the baseline\n\n";
    for (const auto& n : m.baseline_notes) o += "- " + md_escape(n) + "\n";
    if (!m.baseline_notes.empty()) o += "\n";
    for (const auto& t : m.change_tables) o += md_table(t, 3);
  }
  for (const auto& r : m.runs) {
    o += fmt::format("## {}\n\n{} — {}\n\n", r.name, r.summary, md_code(r.path));
    o += md_table(r.modes, 3);
    o += md_table(r.unnecessary, 3);
    if (r.groups) o += md_table(*r.groups, 3);
    for (const auto& n : r.notes) o += "- " + md_escape(n) + "\n";
    if (!r.notes.empty()) o += "\n";
  }
  o += "Charts (bytes per client-hour by mode and NAT type, latency CDFs, traffic over the run) are in report.html.\n";
  return o;
}

std::string render_html(const report_model& m) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  o += "<title>" + h(m.title) + "</title>\n<style>" + std::string(css) + "</style>\n</head>\n<body>\n";
  o += "<h1>" + h(m.title) + "</h1>\n";
  const std::size_t n = m.passed + m.failed;
  const char* cls = n == 0 ? "none" : m.failed ? "fail" : "pass";
  std::string verdict = verdict_line(m);
  verdict.erase(std::remove(verdict.begin(), verdict.end(), '*'), verdict.end());
  o += fmt::format("<p class=\"verdict {}\">{}</p>\n", cls, h(verdict));
  o += "<p class=\"summary\">Inputs: ";
  for (const auto& r : m.runs) o += fmt::format("<code>{}</code> ({}){}", h(r.name), h(r.path), &r == &m.runs.back() ? "" : ", ");
  o += "<br>Modes: ";
  for (const auto& mode : mode_names())
    o += fmt::format("<span class=\"legend-swatch\" style=\"background:{}\"></span>{} ", mode_colour(mode), mode);
  o += "</p>\n";
  if (!m.input_notes.empty()) {
    o += "<ul class=\"note\">";
    for (const auto& note : m.input_notes) o += "<li>" + h(note) + "</li>";
    o += "</ul>\n";
  }
  if (!m.evaluations.empty()) o += "<h2>Thresholds</h2>\n" + thresholds_html(m);
  o += html_table(m.overview, 2);
  for (std::size_t i : m.overview_charts) o += html_chart(m.charts[i]);
  if (!m.change_tables.empty() || !m.baseline_notes.empty()) {
    o += "<h2>Change against the baseline</h2>\n";
    for (const auto& note : m.baseline_notes) o += "<p class=\"note\">" + h(note) + "</p>\n";
    for (const auto& t : m.change_tables) o += html_table(t, 3);
  }
  for (const auto& r : m.runs) {
    o += fmt::format("<h2 id=\"run-{}\">{}</h2>\n<p class=\"summary\">{} — <code>{}</code></p>\n", slug(r.name), h(r.name),
                     h(r.summary), h(r.path));
    o += html_table(r.modes, 3);
    for (std::size_t i : r.charts)
      if (m.charts[i].k == chart::kind::cdf) o += html_chart(m.charts[i]);
    o += html_table(r.unnecessary, 3);
    if (r.groups) {
      o += html_table(*r.groups, 3);
      for (std::size_t i : r.charts)
        if (m.charts[i].k == chart::kind::bars) o += html_chart(m.charts[i]);
    }
    for (std::size_t i : r.charts) {
      if (m.charts[i].k != chart::kind::timeline) continue;
      o += "<h3>Traffic over the run</h3>\n" + html_chart(m.charts[i]);
      if (r.timeline) {
        table t = *r.timeline;
        t.title.clear();
        o += "<details><summary>The chart's data</summary>\n" + html_table(t, 4) + "</details>\n";
      }
    }
    if (!r.notes.empty()) {
      o += "<ul class=\"note\">";
      for (const auto& note : r.notes) o += "<li>" + h(note) + "</li>";
      o += "</ul>\n";
    }
  }
  o += "<p class=\"note\">Made by nudge-report (docs/report.md); every number is defined in docs/measurements.md.</p>\n";
  return o + "</body>\n</html>\n";
}

std::string render_junit(const report_model& m) {
  const std::size_t n = m.evaluations.size();
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format("<testsuites name=\"nudge-report\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">\n", n, m.failed);
  o += fmt::format("  <testsuite name=\"nudge-report thresholds\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" "
                   "time=\"0\">\n",
                   n, m.failed);
  for (const auto& e : m.evaluations) {
    const std::string classname = e.run.empty() ? "nudge.thresholds" : "nudge.thresholds." + e.run;
    o += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", x(classname), x(e.threshold));
    std::string details = fmt::format("threshold: {}\nfrom: {}\nrun: {}\n", e.threshold, e.origin, e.run.empty() ? "-" : e.run);
    for (const auto& [name, v] : e.values) details += fmt::format("{} = {}\n", name, optional_number(v));
    details += e.message + "\n";
    if (e.passed) {
      o += ">\n      <system-out>" + x(details) + "</system-out>\n    </testcase>\n";
    } else {
      o += ">\n      <failure type=\"threshold\" message=\"" + x(e.message) + "\">" + x(details) + "</failure>\n";
      o += "    </testcase>\n";
    }
  }
  o += "  </testsuite>\n</testsuites>\n";
  return o;
}

json render_json(const report_model& m, const input_set& now, const input_set* baseline, int exit_code) {
  auto runs_json = [](const input_set& s) {
    json a = json::array();
    for (const auto& r : s.runs) a.push_back({{"name", r.name}, {"path", r.path}, {"result", r.result}});
    return a;
  };
  json thresholds = json::array();
  for (const auto& e : m.evaluations) {
    json values = json::array();
    for (const auto& [name, v] : e.values) values.push_back({{"metric", name}, {"value", v ? json(*v) : json(nullptr)}});
    thresholds.push_back({{"threshold", e.threshold},
                          {"origin", e.origin},
                          {"run", e.run.empty() ? json(nullptr) : json(e.run)},
                          {"passed", e.passed},
                          {"lhs", e.lhs ? json(*e.lhs) : json(nullptr)},
                          {"rhs", e.rhs ? json(*e.rhs) : json(nullptr)},
                          {"values", values},
                          {"message", e.message}});
  }
  json out = {{"schema", "nudge.report/1"}, {"title", m.title}, {"inputs", runs_json(now)}};
  if (baseline) {
    out["baseline"] = runs_json(*baseline);
    json changes = json::array();
    auto opt = [](std::optional<double> v) { return v ? json(*v) : json(nullptr); };
    for (const auto& c : m.changes)
      changes.push_back({{"run", c.run},
                         {"baseline_run", c.baseline_run},
                         {"mode", c.mode},
                         {"metric", c.metric},
                         {"baseline", opt(c.old_value)},
                         {"now", opt(c.new_value)},
                         {"change", c.fraction && std::isfinite(*c.fraction) ? json(*c.fraction)
                                    : c.fraction ? json(*c.fraction > 0 ? "+inf" : "-inf")
                                                 : json(nullptr)}});
    out["changes"] = changes;
  }
  json charts = json::array();
  for (const auto& c : m.charts)
    charts.push_back({{"id", c.id}, {"title", c.title}, {"drawn", !c.svg.empty()}, {"error", c.error.empty() ? json(nullptr) : json(c.error)}});
  out["thresholds"] = thresholds;
  out["charts"] = charts;
  out["verdict"] = {{"checks", m.evaluations.size()}, {"passed", m.passed}, {"failed", m.failed}, {"exit_code", exit_code}};
  return out;
}

std::string render_summary(const report_model& m) {
  std::string o;
  o += fmt::format("{}: {} run{}\n", m.title, m.runs.size(), m.runs.size() == 1 ? "" : "s");
  // The overview table, aligned.
  std::vector<std::vector<std::string>> rows;
  rows.push_back(m.overview.header);
  for (const auto& r : m.overview.rows) {
    std::vector<std::string> cells{r.label};
    for (const auto& c : r.cells) cells.push_back(c.text);
    rows.push_back(std::move(cells));
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  auto display_width = [](const std::string& s) {
    std::size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;  // UTF-8 code points
    return w;
  };
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
  for (const auto& r : rows) {
    o += "  ";
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
      const std::string pad(width[i] - display_width(r[i]), ' ');
      o += i < 2 ? r[i] + pad : pad + r[i];
      o += "  ";
    }
    while (!o.empty() && o.back() == ' ') o.pop_back();
    o += "\n";
  }
  if (m.evaluations.empty()) {
    o += "thresholds: none given\n";
    return o;
  }
  o += fmt::format("thresholds: {} passed, {} failed\n", m.passed, m.failed);
  for (const auto& e : m.evaluations)
    o += fmt::format("  {}  {}{}  {}\n", e.passed ? "PASS" : "FAIL", e.threshold, e.run.empty() ? "" : "  [" + e.run + "]",
                     e.message);
  return o;
}

}  // namespace nudge::report
