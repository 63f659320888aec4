// WebSub subscribers (protocols/websub) in the virtual driver beside EMSMDB
// and polling-bus clients on the same mail: without a NAT the hub verifies
// every subscriber and calls each back with every event; behind a NAT the
// hub's GET finds no route to the private callback, so every subscription
// fails verification (counted) and every event is missed (counted as
// generated and never received), while the polling families beside them get
// all of theirs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/engine/registry.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "nudge/websub/family.hpp"

namespace {

using namespace std::chrono_literals;
using nudge::sim::run_plan;
namespace websub = nudge::websub;

std::uint64_t counter(const nudge::sim::group_result& g, websub::counter c) { return g.metrics.counter(c); }

run_plan mixed(std::size_t clients, std::uint64_t seed) {
  nudge::protocols::register_all();
  run_plan p;
  p.clients = clients;
  p.mix = {{"websub", "subscriber", 2}, {"emsmdb", "poll", 1}, {"pollbus", "fixed", 1}};
  p.nat_mix = {{"none", 0.5, 0s}, {"port-restricted-cone", 0.5, 0s}};
  p.length = 1h;
  p.drain = 2min;
  p.ramp_up = 30s;
  p.poll_interval = 60s;
  p.events_per_client_hour = 12;
  p.seed = seed;
  return p;
}

}  // namespace

TEST(websub_nat, subscribers_without_a_nat_get_every_event_and_behind_one_none) {
  const run_plan p = mixed(80, 11);
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  ASSERT_EQ(r.groups.size(), 6u);
  std::size_t seen = 0;
  for (const auto& g : r.groups) {
    SCOPED_TRACE(g.protocol + " / " + g.nat);
    ASSERT_GT(g.clients, 0u);
    if (g.protocol != "websub") {
      EXPECT_EQ(g.events_missed(), 0u) << "the polling families beside it get all of theirs";
      continue;
    }
    ++seen;
    EXPECT_EQ(g.metrics.clients_started, g.clients);
    EXPECT_EQ(counter(g, websub::counter::bad_signatures), 0u);
    EXPECT_GT(g.events_generated, 20u);
    if (g.nat == "none") {
      EXPECT_EQ(g.metrics.clients_ready, g.clients);
      EXPECT_EQ(counter(g, websub::counter::verify_failures), 0u);
      EXPECT_EQ(counter(g, websub::counter::subscribe_errors), 0u);
      EXPECT_EQ(counter(g, websub::counter::received), g.events_generated);
      EXPECT_EQ(g.events_missed(), 0u);
      // A 1 h lease renewed 5 min before its end: once each in an hour's run.
      EXPECT_EQ(counter(g, websub::counter::renewals), g.clients);
      EXPECT_EQ(counter(g, websub::counter::verifications), 2 * g.clients);
      EXPECT_EQ(counter(g, websub::counter::leases_lost), 0u);
      EXPECT_EQ(counter(g, websub::counter::callbacks),
                counter(g, websub::counter::verifications) + counter(g, websub::counter::received));
      EXPECT_LT(g.metrics.latency.quantile(1.0), 2s);
    } else {
      EXPECT_EQ(g.metrics.clients_ready, 0u);
      EXPECT_EQ(counter(g, websub::counter::verifications), 0u);
      EXPECT_EQ(counter(g, websub::counter::callbacks), 0u);
      EXPECT_EQ(counter(g, websub::counter::received), 0u);
      EXPECT_EQ(g.events_missed(), g.events_generated);
      // Every subscription the hub took (202) went unverified, and was tried again every 5 min.
      EXPECT_EQ(counter(g, websub::counter::verify_failures), counter(g, websub::counter::subscriptions));
      EXPECT_GE(counter(g, websub::counter::verify_failures), 10 * g.clients);
    }
  }
  EXPECT_EQ(seen, 2u);
  // The result names the family's counters from its vocabulary.
  const auto j = nudge::sim::to_json(r);
  EXPECT_TRUE(j["vocabulary"].contains("websub")) << j["vocabulary"].dump();
}

TEST(websub_nat, short_leases_are_renewed_without_losing_an_event) {
  run_plan p = mixed(40, 3);
  p.nat_mix.clear();
  p.mix = {{"websub", "subscriber", 1, "short-lease", {{"websub.lease", "10min"}, {"websub.renew_margin", "1min"}}}};
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  ASSERT_EQ(r.modes.size(), 1u);
  const auto& m = r.modes[0];
  EXPECT_GT(m.events_generated, 50u);
  EXPECT_EQ(m.events_missed(), 0u);
  EXPECT_EQ(m.metrics.counter(websub::counter::leases_lost), 0u);
  // Renewed at 9 min of each 10 min lease: 6 times in the hour for every client.
  EXPECT_EQ(m.metrics.counter(websub::counter::renewals), 6 * m.clients);
}

TEST(websub_nat, a_plan_and_seed_give_the_same_numbers_every_run) {
  const run_plan p = mixed(24, 5);
  const auto a = nudge::sim::run_virtual(p);
  const auto b = nudge::sim::run_virtual(p);
  ASSERT_EQ(a.groups.size(), b.groups.size());
  for (std::size_t i = 0; i < a.groups.size(); ++i) {
    EXPECT_EQ(a.groups[i].metrics.counters, b.groups[i].metrics.counters);
    EXPECT_EQ(a.groups[i].metrics.traffic.total().wire_bytes, b.groups[i].metrics.traffic.total().wire_bytes);
  }
}
