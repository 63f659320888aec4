// ActiveSync Direct Push behind home gateways whose TCP idle timeout (5 min)
// is shorter than the heartbeat, in the virtual driver (the netsim TCP NAT
// drops the held connection silently, docs/network-model.md): a fixed 8-min
// heartbeat loses every held Ping that no change answered within 5 min; the
// adaptive (AOSP) policy loses its first one, drops to 290 s and then loses
// none, and no event is missed. Without the short timeout nothing is lost.
#include <gtest/gtest.h>

#include "nudge/activesync/family.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"

namespace {

using namespace std::chrono_literals;
using nudge::sim::run_plan;
namespace as = nudge::activesync;

std::uint64_t counter(const nudge::sim::mode_result& m, as::counter c) { return m.metrics.counter(c); }

run_plan behind_gateways(nudge::duration tcp_timeout) {
  nudge::protocols::register_all();
  run_plan p;
  p.clients = 40;
  p.mix = {{"activesync", "fixed", 1}, {"activesync", "adaptive", 1}};
  p.set_family_key("activesync.heartbeat", "480s");
  p.length = 3h;
  p.drain = 2min;
  p.ramp_up = 60s;
  p.events_per_client_hour = 2;
  p.seed = 11;
  nudge::sim::nat_share gateway;
  gateway.preset = "port-restricted-cone";
  gateway.tcp_timeout = tcp_timeout;
  p.nat_mix = {gateway};
  return p;
}

}  // namespace

TEST(activesync_nat, a_5_minute_tcp_idle_timeout_loses_every_held_8_minute_ping_and_adaptive_settles_below_it) {
  const run_plan p = behind_gateways(5min);
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  ASSERT_EQ(r.modes.size(), 2u);
  const auto& fixed = r.modes[0];
  const auto& adaptive = r.modes[1];
  ASSERT_EQ(fixed.clients, 20u);
  ASSERT_EQ(adaptive.clients, 20u);

  // Fixed 480 s: no Status 1 ever gets through; each Ping ends in a change
  // (answered within 5 min) or a loss, but the one in flight at the end.
  EXPECT_EQ(counter(fixed, as::counter::pings_expired), 0u);
  EXPECT_GT(counter(fixed, as::counter::lost_pings), 20u * 15);
  EXPECT_GE(counter(fixed, as::counter::lost_pings) + counter(fixed, as::counter::pings_changes) + fixed.clients,
            counter(fixed, as::counter::pings));
  EXPECT_GT(counter(fixed, as::counter::late_events), 0u) << "changes in a dead Ping's window wait for the timeout";
  EXPECT_EQ(counter(fixed, as::counter::connections), counter(fixed, as::counter::lost_pings) + fixed.clients);
  EXPECT_GT(fixed.metrics.latency.quantile(1.0), 3min);

  // Adaptive: one loss each (470 s), then 290 s, which the gateway keeps.
  EXPECT_EQ(counter(adaptive, as::counter::lost_pings), adaptive.clients);
  EXPECT_EQ(counter(adaptive, as::counter::heartbeat_drops), adaptive.clients);
  EXPECT_EQ(counter(adaptive, as::counter::heartbeat_grows), 0u);
  EXPECT_EQ(counter(adaptive, as::counter::heartbeat_s), adaptive.clients * 290) << "every client at 290 s";
  EXPECT_GT(counter(adaptive, as::counter::pings_expired), 20u * 20);
  EXPECT_GT(adaptive.events_generated, 40u);
  EXPECT_EQ(adaptive.events_missed(), 0u);
  EXPECT_EQ(counter(adaptive, as::counter::protocol_errors), 0u);
  EXPECT_EQ(counter(adaptive, as::counter::http_errors), 0u);

  // Only adaptive's first Ping can make an event late; fixed's every Ping can.
  EXPECT_LT(counter(adaptive, as::counter::late_events), counter(fixed, as::counter::late_events));
}

TEST(activesync_nat, with_the_presets_tcp_timeout_nothing_is_lost_and_adaptive_grows_to_its_maximum) {
  const run_plan p = behind_gateways(0s);  // the preset's own: RFC 5382's 2 h 4 min
  const auto r = nudge::sim::run_virtual(p);
  for (const auto& m : r.modes) {
    EXPECT_EQ(counter(m, as::counter::lost_pings), 0u);
    EXPECT_EQ(m.events_missed(), 0u);
    EXPECT_LT(m.metrics.latency.quantile(1.0), 1s);
  }
  EXPECT_EQ(counter(r.modes[1], as::counter::heartbeat_s), r.modes[1].clients * 1010);
}
