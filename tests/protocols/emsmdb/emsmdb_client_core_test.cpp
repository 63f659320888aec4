// The EMSMDB client core on the session contract: what it asks its driver
// for, when it starts, what it registers, and how a refused connect counts.
// The state machine itself is client_session_test's subject.
#include <gtest/gtest.h>

#include <variant>

#include "nudge/client/emsmdb_client_core.hpp"
#include "nudge/emsmdb/family.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/sockaddr.hpp"

using namespace nudge;
using namespace nudge::client;
using namespace std::chrono_literals;
using protocol::ip_endpoint;

namespace {

const ip_endpoint notifier_at = ip_endpoint::v4(127, 0, 0, 1, 7777);

client_config config(client_mode mode) {
  client_config c;
  c.mode = mode;
  c.user_dn = "/o=nudge/cn=Recipients/cn=bob";
  c.poll_interval = 5s;
  const protocol::byte_buffer ctx = {1, 2, 3, 4, 5, 6, 7, 8};
  c.context.assign(ctx);
  c.callback_address = ip_endpoint::v4(127, 0, 0, 9, 9999);  // replaced by udp_bound
  return c;
}

std::vector<engine::action> take(engine::session& s) {
  auto a = std::move(s.actions());
  s.actions().clear();
  return a;
}

template <class T>
std::size_t count_of(const std::vector<engine::action>& as) {
  std::size_t n = 0;
  for (const auto& a : as) n += std::holds_alternative<T>(a);
  return n;
}

// Carries a core's actions to a notifier_core (zero delay) until both are quiet.
struct wired {
  notifier::notifier_core server{notifier::notifier_config{}};
  client_metrics metrics;
  emsmdb_client_core client;
  std::array<notifier::connection_id, 2> conn{};
  ip_endpoint udp_local = ip_endpoint::v4(127, 0, 0, 2, 2600);
  std::vector<ip_endpoint> ping_targets;

  explicit wired(client_mode mode) : client(config(mode), metrics, notifier_at) {}

  void pump(time_point now) {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (auto& a : take(client)) {
        moved = true;
        if (auto* c = std::get_if<engine::connect>(&a)) {
          const std::size_t k = c->conn == emsmdb_client_core::main_connection ? 0 : 1;
          conn[k] = server.open_connection(now, ip_endpoint::v4(127, 0, 0, 2, static_cast<std::uint16_t>(50000 + k)));
          client.handle(now, engine::connected{c->conn, ip_endpoint::v4(127, 0, 0, 2, 50000)});
        } else if (auto* b = std::get_if<engine::bind_udp>(&a)) {
          client.handle(now, engine::udp_bound{b->socket, udp_local});
        } else if (auto* s = std::get_if<engine::send>(&a)) {
          server.receive(now, conn[s->conn == emsmdb_client_core::main_connection ? 0 : 1], s->bytes);
        }
      }
      auto outs = std::move(server.outputs());
      server.outputs().clear();
      for (auto& o : outs) {
        moved = true;
        if (auto* t = std::get_if<notifier::tcp_send>(&o)) {
          const auto c = t->conn == conn[0] ? emsmdb_client_core::main_connection : emsmdb_client_core::async_connection;
          client.handle(now, engine::stream_bytes{c, t->bytes});
        } else if (auto* u = std::get_if<notifier::udp_send>(&o)) {
          ping_targets.push_back(u->to);
          client.handle(now, engine::datagram{emsmdb_client_core::push_socket, ip_endpoint::v4(127, 0, 0, 1, 7778), u->bytes});
        }
      }
      if (!moved) return;
    }
    FAIL() << "pump did not settle";
  }
};

}  // namespace

TEST(emsmdb_client_core, asks_for_the_channels_and_the_socket_its_mode_needs) {
  client_metrics m;
  for (auto [mode, connects, binds] : {std::tuple{client_mode::poll, 1u, 0u}, std::tuple{client_mode::push, 1u, 1u},
                                       std::tuple{client_mode::async, 2u, 0u}}) {
    emsmdb_client_core c(config(mode), m, notifier_at);
    c.start(time_point{});
    const auto as = take(c);
    EXPECT_EQ(count_of<engine::connect>(as), connects) << to_string(mode);
    EXPECT_EQ(count_of<engine::bind_udp>(as), binds) << to_string(mode);
    for (const auto& a : as) {
      if (auto* k = std::get_if<engine::connect>(&a)) {
        EXPECT_TRUE(engine::is_outgoing(k->conn));
        EXPECT_EQ(k->to, notifier_at);
      }
    }
  }
  EXPECT_EQ(m.clients_started, 0u);  // nothing starts before the connections are up
}

TEST(emsmdb_client_core, starts_binding_only_when_every_connection_is_up) {
  client_metrics m;
  emsmdb_client_core c(config(client_mode::async), m, notifier_at);
  c.start(time_point{});
  take(c);
  c.handle(time_point{}, engine::connected{emsmdb_client_core::main_connection, {}});
  EXPECT_TRUE(take(c).empty());
  EXPECT_EQ(c.session(), nullptr);
  c.handle(time_point{}, engine::connected{emsmdb_client_core::async_connection, {}});
  const auto as = take(c);
  EXPECT_EQ(count_of<engine::send>(as), 2u);  // one bind per channel
  EXPECT_EQ(m.clients_started, 1u);
}

TEST(emsmdb_client_core, registers_the_address_udp_bound_reported) {
  wired w(client_mode::push);
  w.client.start(time_point{});
  w.pump(time_point{});
  ASSERT_NE(w.client.session(), nullptr);
  EXPECT_TRUE(w.client.session()->ready());
  EXPECT_EQ(w.client.config().callback_address, w.udp_local);
  w.server.inject_event(time_point{} + 1s, w.server.mailbox(config(client_mode::push).user_dn));
  w.pump(time_point{} + 1s);
  ASSERT_EQ(w.ping_targets.size(), 1u);
  EXPECT_EQ(w.ping_targets.front(), w.udp_local);  // the legacy policy pings what was registered
  EXPECT_EQ(w.metrics.counter(protocol::emsmdb::counter::pings_matched), 1u);
  EXPECT_EQ(w.metrics.counter(protocol::emsmdb::counter::events_fetched), 1u);
}

TEST(emsmdb_client_core, a_refused_connect_counts_the_client_started_and_failed_and_closes_the_rest) {
  client_metrics m;
  emsmdb_client_core c(config(client_mode::async), m, notifier_at);
  c.start(time_point{});
  take(c);
  c.handle(time_point{}, engine::connected{emsmdb_client_core::main_connection, {}});
  c.handle(time_point{}, engine::refused{emsmdb_client_core::async_connection, "connection refused"});
  const auto as = take(c);
  ASSERT_EQ(count_of<engine::close>(as), 1u);
  for (const auto& a : as) {
    if (auto* k = std::get_if<engine::close>(&a)) {
      EXPECT_EQ(k->conn, emsmdb_client_core::main_connection);
    }
  }
  EXPECT_EQ(m.clients_started, 1u);
  EXPECT_EQ(m.clients_failed, 1u);
  EXPECT_TRUE(c.failed());
  EXPECT_EQ(c.next_deadline(), never);
}

TEST(emsmdb_client_core, polls_through_the_contract_like_the_session_does) {
  wired w(client_mode::poll);
  w.client.start(time_point{});
  w.pump(time_point{});
  for (int i = 0; i < 3; ++i) {
    const time_point t = w.client.next_deadline();
    ASSERT_EQ(t, time_point{} + (i + 1) * 5s);
    w.client.handle(t, engine::timer{});
    w.pump(t);
  }
  EXPECT_EQ(w.metrics.counter(protocol::emsmdb::counter::polls), 3u);
  EXPECT_EQ(w.metrics.counter(protocol::emsmdb::counter::wasted_polls), 3u);
}
