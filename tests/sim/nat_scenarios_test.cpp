// What NATs do to push, in virtual time: the same sessions, a NAT in between.
#include <gtest/gtest.h>

#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;
using client::delivery_path;

namespace {
run_plan push_behind(const std::string& preset, notifier::callback_policy policy) {
  run_plan p;
  p.clients = 200;
  p.mix = nudge::sim::emsmdb_mix(0, 1, 0);
  p.poll_interval = 60s;
  p.events_per_client_hour = 20;
  p.length = 1h;
  p.drain = 5min;
  p.ramp_up = 30s;
  p.seed = 11;
  p.server.policy = policy;
  p.nat_mix = {{preset, 1.0, 0s}};
  return p;
}
const mode_result& push(const run_result& r) { return r.modes[static_cast<std::size_t>(client_mode::push)]; }
std::uint64_t by(const run_result& r, delivery_path p) {
  return push(r).metrics.events_by_path[static_cast<std::size_t>(p)];
}
}  // namespace

TEST(nat_scenarios, legacy_policy_behind_apdf_pure_push_misses_events) {
  auto p = push_behind("port-restricted-cone", notifier::callback_policy::legacy);
  p.poll_until_first_ping = false;  // pure push: trust the registration
  auto r = run_virtual(p);
  EXPECT_GT(push(r).events_generated, 500u);
  EXPECT_EQ(push(r).metrics.counter(nudge::protocol::emsmdb::counter::pings_received), 0u);
  EXPECT_EQ(push(r).events_missed(), push(r).events_generated);  // nothing ever arrives
  EXPECT_GT(r.network.no_route, 0u);  // pings went to private addresses
  ASSERT_EQ(r.groups.size(), 3u);     // one per mode, for the one NAT group
}

TEST(nat_scenarios, legacy_policy_with_fallback_polling_misses_nothing) {
  auto p = push_behind("port-restricted-cone", notifier::callback_policy::legacy);
  p.poll_until_first_ping = false;
  p.fallback_check_interval = 2min;
  auto r = run_virtual(p);
  EXPECT_EQ(push(r).events_missed(), 0u);
  EXPECT_EQ(by(r, delivery_path::push), 0u);
  EXPECT_EQ(by(r, delivery_path::poll), push(r).events_generated);
  EXPECT_EQ(push(r).metrics.counter(nudge::protocol::emsmdb::counter::fallbacks_to_polling), push(r).clients);
}

TEST(nat_scenarios, mixed_nat_types_keep_polling_until_the_first_ping) {
  // MS-OXCNOTIF's rule alone saves clients whose pings never arrive.
  auto p = push_behind("port-restricted-cone", notifier::callback_policy::legacy);
  p.nat_mix = {{"none", 0.5, 0s}, {"port-restricted-cone", 0.5, 0s}};
  auto r = run_virtual(p);
  EXPECT_EQ(push(r).events_missed(), 0u);
  ASSERT_EQ(r.groups.size(), 6u);
  for (const auto& g : r.groups) {
    if (g.mode != client_mode::push) continue;
    const auto push_events = g.metrics.events_by_path[static_cast<std::size_t>(delivery_path::push)];
    if (g.nat == "none") EXPECT_EQ(push_events, g.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched));
    else EXPECT_EQ(push_events, 0u);
  }
}

TEST(nat_scenarios, verified_policy_with_keepalives_delivers_everything_by_push) {
  auto p = push_behind("port-restricted-cone", notifier::callback_policy::verified);
  p.send_cookie = true;
  p.keepalive_interval = 20s;  // shorter than the NAT's 30 s
  auto r = run_virtual(p);
  EXPECT_EQ(push(r).events_missed(), 0u);
  EXPECT_EQ(by(r, delivery_path::push), push(r).events_generated);
  EXPECT_EQ(r.network.nat_filtered, 0u);
}

TEST(nat_scenarios, verified_policy_without_keepalives_loses_pings_when_the_mapping_expires) {
  auto p = push_behind("port-restricted-cone", notifier::callback_policy::verified);
  p.send_cookie = true;
  p.poll_until_first_ping = false;
  auto r = run_virtual(p);
  EXPECT_GT(r.network.nat_filtered, 0u);
  EXPECT_GT(push(r).events_missed(), 0u);
}

TEST(nat_scenarios, peer_policy_works_through_a_full_cone_but_not_a_port_restricted_one) {
  auto full = push_behind("full-cone", notifier::callback_policy::peer);
  full.poll_until_first_ping = false;
  full.send_cookie = true;  // opens the mapping at the registered port (port preserving)
  full.keepalive_interval = 20s;
  auto r = run_virtual(full);
  EXPECT_EQ(push(r).events_missed(), 0u);
  auto apdf = push_behind("symmetric", notifier::callback_policy::peer);
  apdf.poll_until_first_ping = false;
  apdf.send_cookie = true;
  apdf.keepalive_interval = 20s;
  auto r2 = run_virtual(apdf);
  EXPECT_GT(push(r2).events_missed(), 0u);  // random public port: the registered port is not mapped
}

// Several clients behind one device share its public address. Their UDP sockets all
// sit on the same private port, so the device maps only the first at that port: a
// policy that pings the registered port on the TCP peer's address reaches one client
// per device, the verified policy (the source the cookie came from) reaches them all.
TEST(nat_scenarios, clients_sharing_a_device_need_the_verified_policy) {
  auto shared = [](notifier::callback_policy policy, std::uint32_t per_device) {
    auto p = push_behind("full-cone", policy);
    p.nat_mix[0].clients_per_device = per_device;
    p.poll_until_first_ping = false;
    p.send_cookie = true;
    p.keepalive_interval = 20s;
    return run_virtual(p);
  };
  const auto alone = shared(notifier::callback_policy::peer, 1);
  EXPECT_EQ(push(alone).events_missed(), 0u);
  const auto peer = shared(notifier::callback_policy::peer, 4);
  EXPECT_GT(push(peer).events_missed(), 0u);
  EXPECT_LT(by(peer, delivery_path::push), by(alone, delivery_path::push));
  const auto verified = shared(notifier::callback_policy::verified, 4);
  EXPECT_EQ(push(verified).events_missed(), 0u);
  EXPECT_EQ(by(verified, delivery_path::push), push(verified).events_generated);
  const auto legacy = shared(notifier::callback_policy::legacy, 4);
  EXPECT_EQ(push(legacy).metrics.counter(nudge::protocol::emsmdb::counter::pings_received), 0u);
  EXPECT_GT(legacy.network.no_route, 0u);
}
