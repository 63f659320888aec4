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
