#include "nudge/report/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nudge/report/charts.hpp"
#include "nudge/report/inputs.hpp"
#include "nudge/report/report.hpp"
#include "nudge/report/threshold.hpp"

namespace nudge::report {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view footer = R"(Inputs: nudge.result/1 files (client-sim --json), directories of them (every
*.json in it that is a result), or a previous report's result.json. Each run is
named after its file: out/demo/nat-mix.json is "nat-mix".

Thresholds (docs/report.md): MODE.METRIC, MODE[NAT].METRIC or RUN:MODE.METRIC,
numbers with units (2s, 500ms, 10KB, 5%), + - * / ( ), one of < <= > >= == !=:
  --threshold 'push.wire_bytes_per_client_hour < 0.2 * poll.wire_bytes_per_client_hour'
  --threshold 'push[symmetric].missed == 0' --threshold 'business-day:async.latency.p99 <= 500ms'
  --baseline old.json --threshold 'change(push.wire_bytes_per_client_hour) < +5%'
A threshold without RUN is checked on every run that has its mode (and group).
Scenario files may declare thresholds too ([report] thresholds = [...]).

Outputs in --out: report.md, report.html (charts by gnuplot, inline SVG),
result.json (schema nudge.report/1), junit.xml (one testcase per check).

Exit codes:
  0  every threshold passed (or none was given), every output written
  1  runtime error: an input unreadable or not a result, an output not
     writable, or the charts could not be drawn (gnuplot missing: the other
     outputs are still written, the HTML without charts) and no threshold failed
  2  usage error: a bad flag, an unparsable threshold, an unknown metric or run,
     change() without --baseline
  3  at least one threshold failed (every output written)
)";

result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(fmt::format("{}: cannot open the file", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write_text(const fs::path& p, const std::string& text, std::ostream& err) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) {
    err << "nudge-report: cannot write " << p.string() << "\n";
    return false;
  }
  return true;
}

}  // namespace

result<report_options> parse_report_options(int argc, const char* const* argv) {
  CLI::App app{"Reports client-sim results: per-mode tables, charts, threshold verdicts, JUnit (docs/report.md).",
               "nudge-report"};
  report_options o;
  bool no_charts = false, no_scenario_thresholds = false;
  app.add_option("inputs", o.inputs, "Result files (nudge.result/1) or directories of them")->required();
  app.add_option("--out,-o", o.out_dir, "Directory for report.md, report.html, result.json, junit.xml")
      ->capture_default_str();
  app.add_option("--threshold,-t", o.thresholds, "A threshold to check (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--thresholds-file", o.threshold_files,
                 "A file of thresholds, one per line ('#' starts a comment line) (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("--no-scenario-thresholds", no_scenario_thresholds,
               "Ignore the thresholds the inputs' scenarios declared (plan.report.thresholds)");
  app.add_option("--baseline,-b", o.baseline,
                 "Results to compare with (file, directory or report result.json; repeatable): a change table, and "
                 "change()/baseline() in thresholds")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--gnuplot", o.gnuplot, "The gnuplot program (Debian: gnuplot-nox)")->capture_default_str();
  app.add_flag("--no-charts", no_charts, "Do not run gnuplot: report.html has the tables only");
  app.add_option("--title", o.title, "The report's title")->capture_default_str();
  app.add_flag("--quiet,-q", o.quiet, "No summary on stdout");
  app.footer(std::string(footer));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.help_text = app.help();
    return o;
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + "\n(nudge-report --help lists the options)", exit_code::usage_error);
  }
  o.charts = !no_charts;
  o.scenario_thresholds = !no_scenario_thresholds;
  return o;
}

int report_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  const auto o = parse_report_options(argc, argv);
  if (!o) {
    err << "nudge-report: " << o.error().message << "\n";
    return o.error().exit_code;
  }
  if (!o->help_text.empty()) {
    out << o->help_text;
    return exit_code::ok;
  }
  return run_report(*o, out, err);
}

int run_report(const report_options& o, std::ostream& out, std::ostream& err) {
  input_set now, base;
  try {  // nlohmann's type errors on a malformed result: caught here, reported as one
    auto loaded = load_inputs(o.inputs);
    if (!loaded) {
      err << "nudge-report: " << loaded.error().message << "\n";
      return exit_code::runtime_error;
    }
    now = std::move(loaded).value();
    if (!o.baseline.empty()) {
      auto old = load_inputs(o.baseline);
      if (!old) {
        err << "nudge-report: " << old.error().message << "\n";
        return exit_code::runtime_error;
      }
      base = std::move(old).value();
    }
  } catch (const nlohmann::json::exception& e) {
    err << "nudge-report: an input is not a well-formed result: " << e.what() << "\n";
    return exit_code::runtime_error;
  }
  // Thresholds next: the metric and mode names they may use are those the inputs name
  // (their vocabulary blocks, or their keys); a typo is still reported before anything is written.
  std::vector<threshold> thresholds;
  for (const auto& text : o.thresholds) {
    auto r = parse_threshold(text, "--threshold");
    if (auto* e = std::get_if<threshold_error>(&r)) {
      err << "nudge-report: " << e->what() << "\n";
      return exit_code::usage_error;
    }
    thresholds.push_back(std::get<threshold>(std::move(r)));
  }
  for (const auto& file : o.threshold_files) {
    const auto text = read_text(file);
    if (!text) {
      err << "nudge-report: --thresholds-file " << text.error().message << "\n";
      return exit_code::usage_error;
    }
    auto r = parse_threshold_lines(*text, file);
    if (auto* e = std::get_if<threshold_error>(&r)) {
      err << "nudge-report: " << e->what() << "\n";
      return exit_code::usage_error;
    }
    for (auto& t : std::get<std::vector<threshold>>(r)) thresholds.push_back(std::move(t));
  }

  const input_set* baseline = o.baseline.empty() ? nullptr : &base;

  if (o.scenario_thresholds) {
    for (const auto& r : now.runs) {
      const auto declared = r.declared_thresholds();
      for (std::size_t i = 0; i < declared.size(); ++i) {
        auto p = parse_threshold(declared[i], fmt::format("{}: plan.report.thresholds[{}]", r.name, i));
        if (auto* e = std::get_if<threshold_error>(&p)) {
          err << "nudge-report: " << e->what() << "\n";
          return exit_code::usage_error;
        }
        auto t = std::get<threshold>(std::move(p));
        t.scope_run = r.name;
        thresholds.push_back(std::move(t));
      }
    }
  }
  for (const auto& t : thresholds) {
    if (auto e = check_against(t, now, baseline)) {
      err << "nudge-report: " << e->what() << "\n";
      return exit_code::usage_error;
    }
  }

  // A result whose fields have the wrong types (hand-edited, truncated) is a
  // runtime error that names the problem, not a crash.
  report_model model;
  try {
    std::vector<evaluation> evaluations;
    for (const auto& t : thresholds)
      for (auto& e : evaluate(t, now, baseline)) evaluations.push_back(std::move(e));
    model = build_model(now, baseline, std::move(evaluations), o.title);
  } catch (const nlohmann::json::exception& e) {
    err << "nudge-report: an input is not a well-formed result: " << e.what() << "\n";
    return exit_code::runtime_error;
  }
  std::string chart_problem;
  if (o.charts) chart_problem = draw_charts(model.charts, {o.gnuplot});
  else
    for (auto& c : model.charts) c.error = "charts were turned off (--no-charts)";

  int code = exit_code::ok;
  if (model.failed) code = exit_code::threshold_failed;
  else if (!chart_problem.empty()) code = exit_code::runtime_error;

  const fs::path dir(o.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    err << "nudge-report: cannot create " << dir.string() << ": " << ec.message() << "\n";
    return exit_code::runtime_error;
  }
  const bool written = write_text(dir / "report.md", render_markdown(model), err) &&
                       write_text(dir / "report.html", render_html(model), err) &&
                       write_text(dir / "junit.xml", render_junit(model), err) &&
                       write_text(dir / "result.json", render_json(model, now, baseline, code).dump(2) + "\n", err);
  if (!written) return exit_code::runtime_error;

  if (!o.quiet) out << render_summary(model);
  for (const auto& note : now.notes) err << "nudge-report: " << note << "\n";
  std::size_t drawn = 0;
  for (const auto& c : model.charts) drawn += !c.svg.empty();
  if (!chart_problem.empty())
    err << "nudge-report: charts not drawn: " << chart_problem << "\n"
        << "nudge-report: report.html has the tables without " << (drawn ? "some charts" : "charts") << "\n";
  if (!o.quiet) {
    out << fmt::format("report: {0}/report.md, {0}/report.html ({1} of {2} charts), {0}/result.json, {0}/junit.xml\n",
                       dir.string(), drawn, model.charts.size());
    if (code == exit_code::threshold_failed)
      out << fmt::format("verdict: {} of {} threshold checks failed (exit code 3)\n", model.failed,
                         model.passed + model.failed);
  }
  return code;
}

}  // namespace nudge::report
