// nudge-report on a run that puts the polling bus (seed 003) beside EMSMDB:
// groups of one bus mode told apart by their labels, the bus's counters and
// kinds named from its vocabulary, wasted polls and latency per path.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/protocols/registrations.hpp"
#include "nudge/report/inputs.hpp"
#include "nudge/report/metrics.hpp"
#include "nudge/report/report.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"

namespace nudge::report {
namespace {

using namespace std::chrono_literals;

TEST(pollbus_report, compares_labelled_bus_groups_with_emsmdb) {
  protocols::register_all();
  sim::run_plan p;
  p.clients = 30;
  p.mix = {{"emsmdb", "poll", 1},
           {"pollbus", "fixed", 1, "bus-soap"},
           {"pollbus", "fixed", 1, "bus-json", {{"pollbus.encoding", "json"}}}};
  p.length = 10min;
  p.drain = 1min;
  p.events_per_client_hour = 30;
  nlohmann::json result = sim::to_json(sim::run_virtual(p));
  learn_names(result);
  input_set set;
  set.runs.push_back({"bus", "bus.json", result});
  ASSERT_EQ(set.runs[0].modes(), (std::vector<std::string>{"poll", "bus-soap", "bus-json"}));
  const report_model model = build_model(set, nullptr, {});
  const std::string md = render_markdown(model);
  EXPECT_NE(md.find("bus-soap"), std::string::npos) << md;
  EXPECT_NE(md.find("bus-json"), std::string::npos) << md;
  EXPECT_NE(md.find("| interval changes"), std::string::npos) << md;
  EXPECT_NE(md.find("| connections"), std::string::npos) << md;
  EXPECT_NE(md.find("| polls that carried nothing"), std::string::npos) << md;
  // Bytes per client-hour, read from each group: JSON costs less than SOAP.
  const metric_info* bytes = find_mode_metric("wire_bytes_per_client_hour");
  ASSERT_NE(bytes, nullptr);
  const auto soap = lookup(*set.runs[0].mode("bus-soap"), *bytes);
  const auto json = lookup(*set.runs[0].mode("bus-json"), *bytes);
  ASSERT_TRUE(soap && json);
  EXPECT_LT(*json, *soap);
  // The bus's kinds and its one path are metrics a threshold can name.
  const metric_info* cont = find_mode_metric("kind.continue.to_client.messages");
  ASSERT_NE(cont, nullptr);
  EXPECT_GT(lookup(*set.runs[0].mode("bus-json"), *cont).value_or(0), 0.0);
  const metric_info* latency = find_mode_metric("latency.poll.count");
  ASSERT_NE(latency, nullptr);
  EXPECT_EQ(lookup(*set.runs[0].mode("bus-soap"), *latency).value_or(-1),
            result["modes"]["bus-soap"]["events"]["fetched"].get<double>());
}

}  // namespace
}  // namespace nudge::report
