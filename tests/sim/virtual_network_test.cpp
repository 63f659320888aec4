// The virtual driver's network: connections go through the topology's NATs.
// This is what server-initiated connections (webhooks, callbacks) meet.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "../../client-sim/drivers/src/virtual_network.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {
// Client 0 direct, client 1 behind a port-restricted cone.
run_plan two_clients() {
  run_plan p;
  p.clients = 2;
  p.seed = 5;
  p.nat_mix = {{"none", 0.5, 0s}, {"port-restricted-cone", 0.5, 0s}};
  return p;
}
const std::vector<std::size_t> groups = {0, 1};
constexpr engine::connection_id outgoing(engine::connection_id n) { return n | engine::outgoing_bit; }
}  // namespace

TEST(virtual_network, a_server_reaches_a_direct_client_but_not_one_behind_a_nat) {
  const run_plan plan = two_clients();
  virtual_network net(plan, 2, groups);
  const node_id server = net.server_node();
  const time_point t0 = time_point{} + 1s;
  const auto direct = std::get<ip_endpoint>(net.listen(0, 1, 0));
  const auto natted = std::get<ip_endpoint>(net.listen(1, 1, 0));

  const auto reached = net.dial(t0, server, outgoing(1), direct);
  ASSERT_TRUE(std::holds_alternative<virtual_network::dialled>(reached));
  EXPECT_EQ(std::get<virtual_network::dialled>(reached).acceptor, 0u);

  // Its private address is routed nowhere on the public side.
  const auto to_private = net.dial(t0, server, outgoing(2), natted);
  ASSERT_TRUE(std::holds_alternative<std::string>(to_private));
  EXPECT_NE(std::get<std::string>(to_private).find("no route"), std::string::npos);

  // Its device's public side: no mapping there, the SYN is dropped.
  ip_endpoint public_side = net.topology().public_address(0);
  public_side.port = natted.port;
  const auto to_public = net.dial(t0, server, outgoing(3), public_side);
  ASSERT_TRUE(std::holds_alternative<std::string>(to_public));
  EXPECT_NE(std::get<std::string>(to_public).find("timed out"), std::string::npos) << std::get<std::string>(to_public);
}

TEST(virtual_network, a_held_connection_dies_silently_when_the_nat_forgets_it) {
  const run_plan plan = two_clients();
  virtual_network net(plan, 2, groups);
  const node_id server = net.server_node();
  const auto service = std::get<ip_endpoint>(net.listen(server, 1, 0));
  const auto d = net.dial(time_point{}, 1, outgoing(1), service);
  ASSERT_TRUE(std::holds_alternative<virtual_network::dialled>(d));
  const std::uint32_t index = std::get<virtual_network::dialled>(d).index;
  EXPECT_NE(std::get<virtual_network::dialled>(d).peer_seen.address, std::get<virtual_network::dialled>(d).dialer_local.address);

  // Within the NAT's established timeout (RFC 5382: >= 2 h 4 min) the server's bytes get in...
  EXPECT_TRUE(net.send(time_point{} + 2h, index, server, 100).delivered);
  // ...idle past it, they vanish: no RST (the preset drops stale segments), nothing arrives.
  const auto late = net.send(time_point{} + 2h + 125min, index, server, 100);
  EXPECT_FALSE(late.delivered);
  EXPECT_FALSE(late.reset);
  EXPECT_EQ(net.tcp_dropped(), 1u);
}

// A client that opens a connection per request (HTTP without keep-alive) opens
// thousands a day: closed connections' records are reused, so the table stays
// as small as the connections open at once, and an old id never names a new one.
TEST(virtual_network, closed_connections_records_are_reused) {
  const run_plan plan = two_clients();
  virtual_network net(plan, 2, groups);
  const node_id server = net.server_node();
  const auto service = std::get<ip_endpoint>(net.listen(server, 1, 0));
  time_point now{};
  engine::connection_id first_acceptor_id = 0;
  for (engine::connection_id k = 1; k <= 10000; ++k) {
    now += 1s;
    const auto d = net.dial(now, 0, outgoing(k), service);
    ASSERT_TRUE(std::holds_alternative<virtual_network::dialled>(d)) << k;
    const auto& dialled = std::get<virtual_network::dialled>(d);
    if (k == 1) first_acceptor_id = dialled.id;
    ASSERT_EQ(net.find(0, outgoing(k)), dialled.index);
    ASSERT_EQ(net.find(server, dialled.id), dialled.index);
    // A segment in flight keeps the record past the close until it is handled.
    const auto sent = net.send(now, dialled.index, 0, 100);
    ASSERT_TRUE(sent.delivered);
    net.hold(dialled.index);
    EXPECT_TRUE(net.close(now, dialled.index, 0));  // the FIN reaches the server: both ends are done
    ASSERT_EQ(net.find(server, dialled.id), dialled.index) << "freed while a segment names it";
    net.release(dialled.index);
    EXPECT_EQ(net.find(0, outgoing(k)), virtual_network::none);
    EXPECT_EQ(net.find(server, dialled.id), virtual_network::none);
  }
  EXPECT_LE(net.connection_records(), 2u);
  EXPECT_EQ(net.find(server, first_acceptor_id), virtual_network::none);
}

// One end closing while the FIN is lost leaves the other end holding the
// connection: its record stays until that end closes too.
TEST(virtual_network, a_record_stays_while_one_end_still_holds_it) {
  const run_plan plan = two_clients();
  virtual_network net(plan, 2, groups);
  const node_id server = net.server_node();
  const auto service = std::get<ip_endpoint>(net.listen(server, 1, 0));
  const auto d = std::get<virtual_network::dialled>(net.dial(time_point{}, 0, outgoing(1), service));
  EXPECT_TRUE(net.reset(d.index, 0));  // a RST reached the client's end only
  EXPECT_EQ(net.find(server, d.id), d.index);
  EXPECT_FALSE(net.close(time_point{} + 1s, d.index, server));  // already closed: no FIN
  EXPECT_EQ(net.find(server, d.id), virtual_network::none);
  const auto again = std::get<virtual_network::dialled>(net.dial(time_point{} + 2s, 0, outgoing(2), service));
  EXPECT_EQ(again.index, d.index);
  EXPECT_NE(again.id, d.id);
  EXPECT_EQ(net.connection_records(), 1u);
}
