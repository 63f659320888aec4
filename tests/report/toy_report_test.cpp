// nudge-report reads a family's names from the result's vocabulary block:
// the test-only toy family (tests/support/toy_family, docs/architecture.md)
// shows up in the tables and as threshold metrics without a line about it in
// the report's code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/protocols/registrations.hpp"
#include "nudge/report/inputs.hpp"
#include "nudge/report/metrics.hpp"
#include "nudge/report/report.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "support/toy_family.hpp"

namespace nudge::report {
namespace {

using namespace std::chrono_literals;

TEST(toy_report, renders_the_toy_modes_kinds_and_counters_from_the_vocabulary) {
  protocols::register_all();
  toy::register_toy_family();
  sim::run_plan p;
  p.clients = 20;
  p.mix = {{"emsmdb", "poll", 1}, {"toy", "tick", 1}};
  p.length = 10min;
  p.drain = 1min;
  p.events_per_client_hour = 30;
  nlohmann::json result = sim::to_json(sim::run_virtual(p));
  ASSERT_TRUE(result["modes"].contains("tick"));

  learn_names(result);
  input_set set;
  set.runs.push_back({"mixed", "mixed.json", result});
  ASSERT_EQ(set.runs[0].modes(), (std::vector<std::string>{"poll", "tick"}));
  const report_model model = build_model(set, nullptr, {});
  const std::string md = render_markdown(model);
  EXPECT_NE(md.find("| tick"), std::string::npos) << md;
  // The toy's counters are rows of the mode table, named as its vocabulary names them.
  EXPECT_NE(md.find("| ticks"), std::string::npos) << md;
  EXPECT_NE(md.find("| empty_ticks"), std::string::npos) << md;
  EXPECT_NE(md.find("| polls that found nothing"), std::string::npos) << md;
  // Its message kinds are metrics a threshold can name, read from the result.
  const metric_info* m = find_mode_metric("kind.tick_request.to_server.messages");
  ASSERT_NE(m, nullptr);
  const auto v = lookup(*set.runs[0].mode("tick"), *m);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, result["modes"]["tick"]["ticks"].get<double>());
  EXPECT_GT(*v, 0.0);
}

}  // namespace
}  // namespace nudge::report
