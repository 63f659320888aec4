// The nudge-report command: outputs, exit codes, JUnit, the merged JSON.
#include <gtest/gtest.h>

#include <functional>

#include "nudge/report/metrics.hpp"
#include "report_test_support.hpp"

namespace nudge::report {
namespace {

using namespace testing;
using nlohmann::json;

TEST(report_cli, all_pass_writes_every_output_and_exits_0) {
  temp_dir out;
  const auto r = run_cli({small_json().string(), "--out", out.path.string(), "--no-charts", "--no-scenario-thresholds",
                          "--threshold", "push.wire_bytes_per_client_hour < 0.2 * poll.wire_bytes_per_client_hour",
                          "-t", "poll.missed == 0"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* f : {"report.md", "report.html", "result.json", "junit.xml"})
    EXPECT_TRUE(fs::exists(out.path / f)) << f;
  EXPECT_NE(r.out.find("report: " + out.path.string() + "/report.md, " + out.path.string() + "/report.html"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("thresholds: 2 passed, 0 failed"), std::string::npos) << r.out;

  const json j = json::parse(read_file(out.path / "result.json"));
  EXPECT_EQ(j["schema"], "nudge.report/1");
  ASSERT_EQ(j["inputs"].size(), 1u);
  EXPECT_EQ(j["inputs"][0]["name"], "small");
  EXPECT_EQ(j["inputs"][0]["result"], small());  // merged inputs, as they were
  EXPECT_EQ(j["verdict"]["exit_code"], 0);
  EXPECT_EQ(j["verdict"]["passed"], 2);
  ASSERT_EQ(j["thresholds"].size(), 2u);
  EXPECT_EQ(j["thresholds"][0]["lhs"], 3000);
  EXPECT_EQ(j["thresholds"][0]["run"], "small");

  const std::string xml = read_file(out.path / "junit.xml");
  EXPECT_NE(xml.find("<testsuites name=\"nudge-report\" tests=\"2\" failures=\"0\""), std::string::npos) << xml;
  EXPECT_EQ(junit_testcases(xml).size(), 2u);
  EXPECT_EQ(xml.find("<failure"), std::string::npos);
}

TEST(report_cli, a_violated_threshold_exits_3_and_junit_marks_that_testcase_failed) {
  temp_dir out;
  const auto r = run_cli({small_json().string(), "--out", out.path.string(), "--no-charts", "--no-scenario-thresholds",
                          "--threshold", "push.missed == 0", "--threshold", "poll.missed == 0",
                          "--threshold", "push.latency.p99 < 1s"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.out.find("FAIL  push.missed == 0  [small]  1 == 0 is false"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verdict: 2 of 3 threshold checks failed (exit code 3)"), std::string::npos) << r.out;

  const std::string xml = read_file(out.path / "junit.xml");
  EXPECT_NE(xml.find("tests=\"3\" failures=\"2\""), std::string::npos) << xml;
  const std::string missed = junit_testcase(xml, "push.missed == 0", "nudge.thresholds.small");
  ASSERT_FALSE(missed.empty()) << xml;
  EXPECT_NE(missed.find("<failure type=\"threshold\" message=\"1 == 0 is false\">"), std::string::npos) << missed;
  EXPECT_NE(missed.find("push.missed = 1"), std::string::npos) << missed;  // the measured value
  const std::string latency = junit_testcase(xml, "push.latency.p99 &lt; 1s");
  ASSERT_FALSE(latency.empty()) << xml;
  EXPECT_NE(latency.find("message=\"30 s &lt; 1 s is false\""), std::string::npos) << latency;
  const std::string passed = junit_testcase(xml, "poll.missed == 0");
  ASSERT_FALSE(passed.empty());
  EXPECT_EQ(passed.find("<failure"), std::string::npos) << passed;

  const json j = json::parse(read_file(out.path / "result.json"));
  EXPECT_EQ(j["verdict"]["exit_code"], 3);
  EXPECT_EQ(j["verdict"]["failed"], 2);
  const std::string md = read_file(out.path / "report.md");
  EXPECT_NE(md.find("**2 of 3 threshold checks failed.**"), std::string::npos);
  EXPECT_NE(md.find("| ❌ **FAIL** | `push.missed == 0` | small | 1 == 0 is false |"), std::string::npos) << md;
}

TEST(report_cli, scenario_thresholds_are_checked_unless_turned_off) {
  temp_dir out;
  auto r = run_cli({small_json().string(), "--out", out.path.string(), "--no-charts"});
  EXPECT_EQ(r.code, 3);  // the plan declares push.missed == 0, and one was missed
  const std::string xml = read_file(out.path / "junit.xml");
  const std::string t = junit_testcase(xml, "push.missed == 0");
  EXPECT_NE(t.find("from: small: plan.report.thresholds[0]"), std::string::npos) << t;
  r = run_cli({small_json().string(), "--out", out.path.string(), "--no-charts", "--no-scenario-thresholds"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(report_cli, thresholds_file) {
  temp_dir dir;
  write_file(dir.path / "limits.txt", "# what we promise\npoll.missed == 0\n\nasync.latency.p99 < 10ms\n");
  auto r = run_cli({small_json().string(), "--out", (dir.path / "out").string(), "--no-charts",
                    "--no-scenario-thresholds", "--thresholds-file", (dir.path / "limits.txt").string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("thresholds: 2 passed"), std::string::npos) << r.out;
  write_file(dir.path / "bad.txt", "poll.missed == 0\npoll.mised == 0\n");
  r = run_cli({small_json().string(), "--out", (dir.path / "out").string(), "--thresholds-file",
               (dir.path / "bad.txt").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.txt:2: column 6: unknown metric 'mised'"), std::string::npos) << r.err;
}

TEST(report_cli, usage_errors_exit_2) {
  temp_dir out;
  const std::string in = small_json().string(), dir = out.path.string();
  struct usage {
    std::vector<std::string> args;
    const char* says;
  };
  const usage cases[] = {
      {{in, "--frobnicate"}, "frobnicate"},
      {{}, "inputs is required"},
      {{in, "--out", dir, "--threshold", "push.missed = 0"}, "column 13: '=' is not a comparison"},
      {{in, "--out", dir, "--threshold", "push.wire_bytes_per_hour < 1"}, "unknown metric 'wire_bytes_per_hour'"},
      {{in, "--out", dir, "--threshold", "nat-mix:push.missed == 0"}, "no input run is named 'nat-mix'"},
      {{in, "--out", dir, "--threshold", "change(push.missed) < 5%"}, "give --baseline"},
      {{in, "--out", dir, "--thresholds-file", dir + "/no-such-file"}, "cannot open"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.code, 2) << c.says << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(out.path / "report.md"));  // nothing written on a usage error
}

TEST(report_cli, runtime_errors_exit_1) {
  temp_dir dir;
  write_file(dir.path / "not-json.json", "{ nope");
  write_file(dir.path / "other.json", R"({"schema": "nudge.model/1"})");
  const std::string out = (dir.path / "out").string();
  struct runtime {
    std::string input;
    const char* says;
  };
  const runtime cases[] = {
      {(dir.path / "missing.json").string(), "no such file or directory"},
      {(dir.path / "not-json.json").string(), "not JSON"},
      {(dir.path / "other.json").string(), "schema \"nudge.model/1\", expected nudge.result/1"},
      {dir.path.string(), "no nudge.result/1 files in the directory"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli({c.input, "--out", out});
    EXPECT_EQ(r.code, 1) << c.says << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

TEST(report_cli, a_directory_skips_what_is_not_a_result) {
  temp_dir dir;
  write_file(dir.path / "in" / "small.json", read_file(small_json()));
  write_file(dir.path / "in" / "notifier-stats.json", R"({"connections": 3})");
  const auto r = run_cli({(dir.path / "in").string(), "--out", (dir.path / "out").string(), "--no-charts",
                          "--no-scenario-thresholds"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped"), std::string::npos);
  EXPECT_NE(r.err.find("notifier-stats.json"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir.path / "out" / "report.md").find("notifier-stats.json"), std::string::npos);
}

TEST(report_cli, without_gnuplot_the_other_outputs_are_written_and_the_exit_code_is_1) {
  temp_dir out;
  auto r = run_cli({small_json().string(), "--out", out.path.string(), "--no-scenario-thresholds", "--gnuplot",
                    "/nonexistent/gnuplot", "-t", "poll.missed == 0"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("gnuplot not found"), std::string::npos) << r.err;
  for (const char* f : {"report.md", "report.html", "result.json", "junit.xml"})
    EXPECT_TRUE(fs::exists(out.path / f)) << f;
  EXPECT_NE(read_file(out.path / "report.html").find("Chart not drawn: gnuplot not found"), std::string::npos);
  EXPECT_EQ(json::parse(read_file(out.path / "result.json"))["verdict"]["exit_code"], 1);
  // A failed threshold still wins: the verdict is complete without charts.
  r = run_cli({small_json().string(), "--out", out.path.string(), "--gnuplot", "/nonexistent/gnuplot"});
  EXPECT_EQ(r.code, 3);
}

TEST(report_cli, the_markdown_has_the_tables_a_job_summary_needs) {
  temp_dir out;
  const auto r = run_cli({small_json().string(), "--out", out.path.string(), "--no-charts"});
  const std::string md = read_file(out.path / "report.md");
  for (const char* s : {"# nudge report: polling vs push", "## Thresholds", "## Overview",
                        "| small | push | 10 | 3,000.0 | 31.0 | 15 | 1 | 4.0 ms | 30.00 s |", "### Per mode",
                        "| wire bytes / client-hour | 18,200.0 | 3,000.0 | 5,000.0 | 8,733.3 |",
                        "| latency p99.9 | 59.90 s | 31.00 s | 3.0 ms | 60.00 s |",
                        "### Unnecessary traffic (the seed article's measure)",
                        "| unnecessary bytes / client-hour | 15,336.0 | 426.0 | 0.0 | 5,254.0 |",
                        "| share of polls that found nothing | 90.0% | 75.0% | - | 89.5% |", "### By mode and NAT",
                        "| push[symmetric] | 5 | 4,000.0 | 40.0 | 31 | 25 | 5 | 0 | 1 | 4.0 ms | 31.00 s |"})
    EXPECT_NE(md.find(s), std::string::npos) << s << "\n" << md;
}

}  // namespace
}  // namespace nudge::report

namespace nudge::report {
namespace {

TEST(report_docs, every_metric_and_exit_code_is_in_docs_report_md) {
  const std::string doc = testing::read_file(testing::source_dir() / "docs" / "report.md");
  ASSERT_FALSE(doc.empty());
  for (const auto& m : mode_metrics()) {
    // The generated families are documented as patterns.
    if (m.name.rfind("kind.", 0) == 0) continue;
    if (m.name.rfind("latency.poll.", 0) == 0 || m.name.rfind("latency.push.", 0) == 0 ||
        m.name.rfind("latency.async.", 0) == 0)
      continue;
    EXPECT_NE(doc.find("`" + m.name + "`"), std::string::npos) << m.name << " is not in docs/report.md";
  }
  for (const auto& m : run_metrics()) EXPECT_NE(doc.find("`" + m.name + "`"), std::string::npos) << "run." << m.name;
  for (const char* s : {"`latency.PATH.STAT`", "`kind.KIND.FIELD`", "| 0 |", "| 1 |", "| 2 |", "| 3 |"})
    EXPECT_NE(doc.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace nudge::report

namespace nudge::report {
namespace {

using namespace testing;
using nlohmann::json;

std::string fmt_index(std::size_t i) { return "damaged-" + std::to_string(i) + ".json"; }

TEST(report_cli, malformed_results_are_runtime_errors_never_crashes) {
  temp_dir dir;
  std::vector<std::function<void(json&)>> damage = {
      [](json& j) { j["modes"]["push"]["latency_buckets"] = "x"; },
      [](json& j) { j["modes"]["push"]["latency_buckets"] = json::parse(R"([["a", 1]])"); },
      [](json& j) { j["modes"]["push"]["latency_buckets"] = json::parse(R"([[1]])"); },
      [](json& j) { j["timeline"]["intervals"] = json::parse("[1, 2]"); },
      [](json& j) { j["timeline"] = "soon"; },
      [](json& j) { j["groups"] = json::parse(R"([{"mode": 5, "nat": []}])"); },
      [](json& j) { j["groups"] = "none"; },
      [](json& j) { j["clock"] = 7; },
      [](json& j) { j["plan"] = json::array(); },
      [](json& j) { j["plan"]["report"]["thresholds"] = json::parse(R"([1, "push.missed == 0"])"); },
      [](json& j) { j["modes"]["push"] = "x"; },
      [](json& j) { j["modes"]["push"]["traffic"] = json::array(); },
      [](json& j) { j["modes"]["poll"]["latency"]["count"] = "many"; },
      [](json& j) { j["total"]["events"] = nullptr; },
  };
  for (std::size_t i = 0; i < damage.size(); ++i) {
    SCOPED_TRACE(i);
    json j = small();
    damage[i](j);
    const fs::path in = dir.path / fmt_index(i);
    write_file(in, j.dump());
    cli_run r;
    EXPECT_NO_THROW(r = run_cli({in.string(), "--out", (dir.path / "out").string(), "--no-charts", "-t",
                                 "push.latency.p99 < 1min", "-t", "push[symmetric].missed <= 1"}));
    EXPECT_TRUE(r.code == 0 || r.code == 1 || r.code == 3) << r.code << " " << r.err;
    if (r.code == 1) {
      EXPECT_NE(r.err.find("nudge-report: "), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace nudge::report
