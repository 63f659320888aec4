// A real virtual-time result through nudge-report: the timeline and latency
// buckets client-sim writes add up to its totals, the charts' data equals the
// tables, and thresholds a scenario declares ([report] thresholds) come along.
#include <gtest/gtest.h>

#include "nudge/report/inputs.hpp"
#include "nudge/report/report.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "report_test_support.hpp"

namespace nudge::report {
namespace {

using namespace testing;
using nlohmann::json;

sim::run_plan scenario_plan() {
  auto loaded = sim::parse_scenario(R"(
[run]
clients = 90
seed = 5
duration = "30min"
drain = "2min"
[mix]
poll = 1
push = 1
async = 1
[poll]
interval = "60s"
[events]
per_client_hour = 12
[report]
thresholds = ["push.missed == 0", "push.wire_bytes_per_client_hour < poll.wire_bytes_per_client_hour"]
)",
                                    "report-sim.toml");
  if (auto* e = std::get_if<sim::scenario_error>(&loaded)) {
    ADD_FAILURE() << e->what();
    return {};
  }
  return std::get<sim::run_plan>(loaded);
}

TEST(report_sim, scenario_thresholds_survive_the_plan_the_toml_and_the_result) {
  const sim::run_plan p = scenario_plan();
  ASSERT_EQ(p.report_thresholds.size(), 2u);
  EXPECT_EQ(p.report_thresholds[0], "push.missed == 0");
  const std::string toml = sim::to_toml(p);
  EXPECT_NE(toml.find("[report]\nthresholds = [\n  \"push.missed == 0\",\n"), std::string::npos) << toml;
  auto again = sim::parse_scenario(toml, "round-trip");
  ASSERT_TRUE(std::holds_alternative<sim::run_plan>(again));
  EXPECT_EQ(std::get<sim::run_plan>(again).report_thresholds, p.report_thresholds);
  // --set works as for any key; a wrong type is an error that names the key.
  sim::run_plan q;
  EXPECT_FALSE(sim::apply_override(q, R"(report.thresholds=["poll.missed == 0"])"));
  EXPECT_EQ(q.report_thresholds, (std::vector<std::string>{"poll.missed == 0"}));
  const auto bad = sim::parse_scenario("[report]\nthresholds = [1]\n", "bad.toml");
  ASSERT_TRUE(std::holds_alternative<sim::scenario_error>(bad));
  EXPECT_EQ(std::get<sim::scenario_error>(bad).key, "report.thresholds");
  const auto typo = sim::parse_scenario("[report]\nthreshold = []\n", "typo.toml");
  ASSERT_TRUE(std::holds_alternative<sim::scenario_error>(typo));
}

TEST(report_sim, a_virtual_run_reports_consistently) {
  const sim::run_plan p = scenario_plan();
  const json result = sim::to_json(sim::run_virtual(p));
  EXPECT_EQ(result["plan"]["report"]["thresholds"].size(), 2u);

  // The timeline adds up to the totals without the pure-ACK estimate.
  ASSERT_TRUE(result.contains("timeline"));
  const json& intervals = result["timeline"]["intervals"];
  ASSERT_GE(intervals.size(), 30u);  // about 100 points at a round interval: 32 min at 30 s
  EXPECT_DOUBLE_EQ(intervals.back()["to_s"].get<double>(), 32 * 60.0);
  for (const auto& mode : {"poll", "push", "async"}) {
    double sum = 0;
    double prev_end = 0;
    for (const auto& iv : intervals) {
      EXPECT_DOUBLE_EQ(iv["from_s"].get<double>(), prev_end);
      prev_end = iv["to_s"].get<double>();
      sum += iv["wire_bytes"][mode].get<double>();
    }
    const json& m = result["modes"][mode];
    double acks = 0;
    if (m["traffic"]["by_kind"].contains("tcp_ack"))
      for (const char* d : {"to_server", "to_client"}) acks += m["traffic"]["by_kind"]["tcp_ack"][d]["wire_bytes"].get<double>();
    EXPECT_DOUBLE_EQ(sum, m["traffic"]["total"]["wire_bytes"].get<double>() - acks) << mode;
    // The latency buckets hold every recorded latency.
    double counted = 0;
    for (const auto& b : m["latency_buckets"]) counted += b[1].get<double>();
    EXPECT_DOUBLE_EQ(counted, m["latency"]["count"].get<double>()) << mode;
  }

  temp_dir dir;
  write_file(dir.path / "virtual.json", result.dump());
  const auto set = load_inputs({(dir.path / "virtual.json").string()}).value();
  const report_model model = build_model(set, nullptr, {});
  // Charts carry the tables' numbers: the bars the overview's cells, the CDF
  // reaches 1 at the table's max, the markers are the table's percentiles.
  for (const auto& c : model.charts) {
    if (c.id == "bytes-by-mode") {
      ASSERT_EQ(c.bars.size(), 3u);
      for (const auto& b : c.bars) {
        const double expected = result["modes"][b.series]["traffic"]["per_client_hour"]["wire_bytes"].get<double>();
        EXPECT_DOUBLE_EQ(b.value, expected) << b.series;
      }
    } else if (c.id == "latency-cdf-virtual") {
      ASSERT_EQ(c.lines.size(), 3u);
      for (const auto& l : c.lines) {
        EXPECT_DOUBLE_EQ(l.points.back().second, 1.0);
        EXPECT_DOUBLE_EQ(l.points.back().first, result["modes"][l.name]["latency"]["max_s"].get<double>());
        ASSERT_EQ(l.markers.size(), 4u);
        EXPECT_DOUBLE_EQ(l.markers[0].first, result["modes"][l.name]["latency"]["p50_s"].get<double>());
        EXPECT_DOUBLE_EQ(l.markers[2].first, result["modes"][l.name]["latency"]["p99_s"].get<double>());
      }
    } else if (c.id == "timeline-virtual") {
      ASSERT_EQ(c.lines.size(), 3u);
      EXPECT_TRUE(c.x_marker);
      EXPECT_DOUBLE_EQ(*c.x_marker, 30.0);  // minutes
    }
  }
  EXPECT_EQ(model.charts.size(), 3u);  // no NAT groups here

  // The command line picks up the scenario's thresholds.
  const auto r = run_cli({(dir.path / "virtual.json").string(), "--out", (dir.path / "out").string(), "--no-charts"});
  EXPECT_NE(r.out.find("thresholds: 2 passed, 0 failed"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.code, 0);
}

}  // namespace
}  // namespace nudge::report
