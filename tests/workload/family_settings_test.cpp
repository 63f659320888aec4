// A run plan reaches the EMSMDB cores through the registry's words: the
// plan's settings as the family's keys, read back by the factories, give the
// configuration the plan itself gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "nudge/client/emsmdb_client_core.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/notifier/emsmdb_server_factory.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_plan.hpp"

using namespace nudge;
using namespace std::chrono_literals;

namespace {

const engine::family& emsmdb() {
  protocols::register_all();
  const auto* f = engine::registry::instance().find("emsmdb");
  EXPECT_NE(f, nullptr);
  return *f;
}

sim::run_plan unusual_plan() {
  sim::run_plan p;
  p.seed = 77;
  p.poll_interval = 1500ms + 3ns;
  p.poll_jitter = true;
  p.context_size = 13;
  p.poll_until_first_ping = false;
  p.send_cookie = true;
  p.keepalive_interval = 25s;
  p.fallback_check_interval = 2min;
  p.server.policy = notifier::callback_policy::verified;
  p.server.polls_max_ms = 12345;
  p.server.ping_resend = 7s;
  p.server.async_hold = 90s;
  p.server.push_enabled = false;
  p.server.async_enabled = false;
  p.server.max_pending_per_mailbox = 42;
  return p;
}

void expect_same(const client::client_config& a, const client::client_config& b) {
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.user_dn, b.user_dn);
  EXPECT_EQ(a.poll_interval, b.poll_interval);
  EXPECT_EQ(a.poll_jitter, b.poll_jitter);
  EXPECT_TRUE(std::ranges::equal(a.context.view(), b.context.view()));
  EXPECT_EQ(a.send_cookie, b.send_cookie);
  EXPECT_EQ(a.keepalive_interval, b.keepalive_interval);
  EXPECT_EQ(a.poll_until_first_ping, b.poll_until_first_ping);
  EXPECT_EQ(a.fallback_check_interval, b.fallback_check_interval);
  EXPECT_EQ(a.seed, b.seed);
}

engine::client_context context_of(const sim::run_plan& p, const engine::settings& keys, std::size_t i,
                                   client::client_mode mode) {
  engine::client_context ctx;
  ctx.client = i;
  ctx.mode = static_cast<std::size_t>(mode);
  ctx.seed = p.seed;
  ctx.mailbox = sim::run_plan::user_dn(i);
  ctx.keys = &keys;
  ctx.wire = p.wire;
  return ctx;
}

}  // namespace

TEST(family_settings, names_exactly_the_keys_the_family_declares) {
  const auto keys = sim::run_plan{}.family_settings();
  std::vector<std::string> declared, given;
  for (const auto& k : emsmdb().keys) declared.push_back(k.key);
  for (const auto& [k, v] : keys.entries()) given.push_back(k);
  std::ranges::sort(declared);
  EXPECT_EQ(given, declared);
}

TEST(family_settings, the_client_factory_configures_what_the_plan_configures) {
  for (const auto& plan : {sim::run_plan{}, unusual_plan()}) {
    const auto keys = plan.family_settings();
    for (std::size_t i : {0u, 1u, 4711u})
      for (auto mode : {client::client_mode::poll, client::client_mode::push, client::client_mode::async})
        expect_same(client::client_config_of(context_of(plan, keys, i, mode)), plan.client_config_for(i, mode));
  }
}

TEST(family_settings, the_server_factory_configures_what_the_plan_configures) {
  const auto plan = unusual_plan();
  const auto c = notifier::notifier_config_of(plan.family_settings());
  EXPECT_EQ(c.policy, plan.server.policy);
  EXPECT_EQ(c.polls_max_ms, plan.server.polls_max_ms);
  EXPECT_EQ(c.ping_resend, plan.server.ping_resend);
  EXPECT_EQ(c.async_hold, plan.server.async_hold);
  EXPECT_EQ(c.push_enabled, plan.server.push_enabled);
  EXPECT_EQ(c.async_enabled, plan.server.async_enabled);
  EXPECT_EQ(c.max_pending_per_mailbox, plan.server.max_pending_per_mailbox);
}

TEST(family_settings, the_family_defaults_are_the_plans_defaults) {
  const auto& f = emsmdb();
  const auto from_family = engine::settings::defaults(f);
  const sim::run_plan plan;
  expect_same(client::client_config_of(context_of(plan, from_family, 3, client::client_mode::push)),
              plan.client_config_for(3, client::client_mode::push));
  const auto c = notifier::notifier_config_of(from_family);
  EXPECT_EQ(c.policy, plan.server.policy);
  EXPECT_EQ(c.polls_max_ms, plan.server.polls_max_ms);
  EXPECT_EQ(c.ping_resend, plan.server.ping_resend);
  EXPECT_EQ(c.async_hold, plan.server.async_hold);
  EXPECT_EQ(c.max_pending_per_mailbox, plan.server.max_pending_per_mailbox);
}

TEST(family_settings, the_registered_server_factory_asks_for_its_listener_and_socket) {
  engine::server_context ctx;
  const auto keys = sim::run_plan{}.family_settings();
  ctx.keys = &keys;
  auto server = emsmdb().make_server(ctx);
  ASSERT_NE(server, nullptr);
  server->start(time_point{});
  std::size_t listens = 0, binds = 0;
  for (const auto& a : server->actions()) {
    listens += std::holds_alternative<engine::listen>(a);
    binds += std::holds_alternative<engine::bind_udp>(a);
  }
  EXPECT_EQ(listens, 1u);
  EXPECT_EQ(binds, 1u);
}

TEST(family_settings, mailbox_names_are_the_zero_padded_client_index) {
  for (std::size_t i : {std::size_t{0}, std::size_t{7}, std::size_t{42}, std::size_t{1234567}, std::size_t{12345678}}) {
    char expected[128];
    std::snprintf(expected, sizeof expected,
                  "/o=nudge/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=user%07zu", i);
    EXPECT_EQ(sim::run_plan::user_dn(i), expected);
  }
}
