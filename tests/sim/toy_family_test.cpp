// The worked example of docs/architecture.md ("Adding a protocol"): a
// test-only family (tests/support/toy_family) registered here, run by the
// virtual driver next to EMSMDB clients in one plan, with no edit to a driver,
// the result writer or the report for it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "nudge/engine/registry.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "support/toy_family.hpp"

namespace {

using namespace std::chrono_literals;
using nudge::sim::run_plan;

run_plan toy_and_emsmdb(std::size_t clients) {
  nudge::protocols::register_all();
  nudge::toy::register_toy_family();
  run_plan p;
  p.clients = clients;
  p.mix = {{"emsmdb", "poll", 1}, {"toy", "tick", 1}, {"emsmdb", "push", 1}};
  p.length = 20min;
  p.drain = 2min;
  p.ramp_up = 10s;
  p.poll_interval = 30s;
  p.events_per_client_hour = 30;
  p.seed = 11;
  return p;
}

TEST(toy_family, runs_in_the_virtual_driver_next_to_emsmdb) {
  const run_plan p = toy_and_emsmdb(60);
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  ASSERT_EQ(r.modes.size(), 3u);
  const auto& toy = r.modes[1];
  EXPECT_EQ(toy.protocol, "toy");
  EXPECT_EQ(toy.clients, 20u);
  EXPECT_EQ(toy.metrics.clients_ready, 20u);
  EXPECT_EQ(toy.metrics.clients_failed, 0u);
  EXPECT_GT(toy.events_generated, 100u);
  // Events stop at the end of the measured period; a tick every 30 s within
  // the 2 min drain fetches whatever is left.
  EXPECT_EQ(toy.metrics.events_fetched(), toy.events_generated);
  EXPECT_EQ(toy.metrics.latency.count(), toy.metrics.counter(nudge::toy::counter::ticks) -
                                             toy.metrics.counter(nudge::toy::counter::empty_ticks));
  // 20 clients ticking every 30 s for about 22 min.
  EXPECT_NEAR(static_cast<double>(toy.metrics.counter(nudge::toy::counter::ticks)), 20.0 * 22 * 2, 20.0 * 2);
  EXPECT_LE(toy.metrics.latency.quantile(0.99), 30s);
  // The EMSMDB groups are untouched by their neighbour.
  for (std::size_t g : {0u, 2u}) {
    EXPECT_EQ(r.modes[g].protocol, "emsmdb");
    EXPECT_EQ(r.modes[g].clients, 20u);
    EXPECT_GT(r.modes[g].events_generated, 100u);
    EXPECT_EQ(r.modes[g].events_missed(), 0u);
  }
}

TEST(toy_family, the_result_names_its_rows_from_the_toy_vocabulary) {
  const auto r = nudge::sim::run_virtual(toy_and_emsmdb(30));
  const auto j = nudge::sim::to_json(r);
  ASSERT_TRUE(j["modes"].contains("tick")) << j["modes"].dump();
  const auto& tick = j["modes"]["tick"];
  EXPECT_EQ(tick["protocol"], "toy");
  const auto& kinds = tick["traffic"]["by_kind"];
  ASSERT_TRUE(kinds.contains("tick_request")) << kinds.dump();
  ASSERT_TRUE(kinds.contains("tick_reply"));
  EXPECT_EQ(kinds["tick_request"]["to_server"]["messages"], tick["ticks"]);
  EXPECT_EQ(kinds["tick_reply"]["to_client"]["messages"], tick["ticks"]);
  EXPECT_EQ(tick["events"]["by_path"]["tick"], tick["events"]["fetched"]);
  EXPECT_FALSE(tick.contains("polls"));  // EMSMDB's counters are not the toy's
  EXPECT_TRUE(j["modes"]["poll"].contains("polls"));
  ASSERT_TRUE(j["vocabulary"].contains("toy")) << j["vocabulary"].dump();
  EXPECT_EQ(j["vocabulary"]["toy"]["modes"][0], "tick");
}

TEST(toy_family, print_table_names_the_toy_counters) {
  const auto r = nudge::sim::run_virtual(toy_and_emsmdb(30));
  std::ostringstream out;
  nudge::sim::print_table(out, r);
  const std::string t = out.str();
  EXPECT_NE(t.find("tick"), std::string::npos) << t;
  EXPECT_NE(t.find("ticks"), std::string::npos) << t;
  EXPECT_NE(t.find("empty_ticks"), std::string::npos) << t;
  EXPECT_NE(t.find("polls"), std::string::npos) << t;
}

}  // namespace
