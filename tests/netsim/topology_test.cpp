// nudge::netsim::topology: routing between hosts through NAT devices (server ->
// NATed client, client <-> client through two NATs, several hosts behind one NAT),
// TCP hole punching and port prediction, and the links' delay, rate, loss and
// jitter drawn deterministically from the seed.
#include "nudge/netsim/topology.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using nudge::duration;
using nudge::time_point;
using nudge::netsim::drop_reason;
using nudge::netsim::filtering_behavior;
using nudge::netsim::host_id;
using nudge::netsim::ip_endpoint;
using nudge::netsim::link_params;
using nudge::netsim::nat_config;
using nudge::netsim::nat_id;
using nudge::netsim::port_allocation;
using nudge::netsim::route_verdict;
using nudge::netsim::topology;
namespace tcp_flag = nudge::netsim::tcp_flag;

time_point at(duration d) { return time_point{} + d; }

const ip_endpoint nat_a_ip = ip_endpoint::v4(203, 0, 113, 1, 0);
const ip_endpoint nat_b_ip = ip_endpoint::v4(198, 51, 100, 1, 0);
const ip_endpoint server_ip = ip_endpoint::v4(192, 0, 2, 10, 0);
const ip_endpoint rendezvous = ip_endpoint::v4(192, 0, 2, 10, 3478);
const ip_endpoint server_https = ip_endpoint::v4(192, 0, 2, 10, 443);
const ip_endpoint a_local = ip_endpoint::v4(10, 0, 0, 2, 50000);
const ip_endpoint b_local = ip_endpoint::v4(10, 1, 0, 2, 50000);

nat_config preset(std::string_view name, const ip_endpoint& address) {
  return *nudge::netsim::preset(name, address);
}

/// A server on the public side, host a behind NAT a, host b behind NAT b.
struct two_homes {
  topology net;
  host_id server, a, b;
  nat_id nat_a, nat_b;
  two_homes(const nat_config& ca, const nat_config& cb, std::uint64_t seed = 1) : net(seed) {
    server = net.add_host(server_ip);
    nat_a = net.add_nat(ca);
    nat_b = net.add_nat(cb);
    a = net.add_host(a_local);
    b = net.add_host(b_local);
    net.attach(a, nat_a);
    net.attach(b, nat_b);
  }
  /// A TCP handshake with the rendezvous server; returns the public endpoint it saw.
  ip_endpoint register_with_rendezvous(time_point now, const ip_endpoint& local) {
    const route_verdict syn = net.route_tcp_segment(now, local, rendezvous, tcp_flag::syn);
    EXPECT_TRUE(syn.delivered());
    EXPECT_EQ(syn.receiver, server);
    const route_verdict syn_ack = net.route_tcp_segment(now, rendezvous, syn.from, tcp_flag::syn | tcp_flag::ack);
    EXPECT_TRUE(syn_ack.delivered());
    EXPECT_EQ(syn_ack.to, local);
    EXPECT_TRUE(net.route_tcp_segment(now, local, rendezvous, tcp_flag::ack).delivered());
    return syn.from;
  }
  /// Both peers send a SYN to where they believe the other is (A first, as if slightly
  /// earlier); true when one got through and the answer reached the other side.
  bool simultaneous_open(time_point now, const ip_endpoint& a_target, const ip_endpoint& b_target) {
    const route_verdict from_a = net.route_tcp_segment(now, a_local, a_target, tcp_flag::syn);
    const route_verdict from_b = net.route_tcp_segment(now, b_local, b_target, tcp_flag::syn);
    const route_verdict& through = from_a.delivered() ? from_a : from_b;
    if (!through.delivered()) return false;
    // The receiver answers SYN-ACK to the source it saw; it must come back to the sender.
    const route_verdict answer = net.route_tcp_segment(now + 1ms, through.to, through.from,
                                                       tcp_flag::syn | tcp_flag::ack);
    return answer.delivered() && answer.to == (&through == &from_a ? a_local : b_local);
  }
};

std::string case_name(const testing::TestParamInfo<std::string_view>& info) {
  std::string s(info.param);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

class topology_preset : public testing::TestWithParam<std::string_view> {};

TEST_P(topology_preset, tcp_hole_punching_through_two_nats) {
  two_homes h(preset(GetParam(), nat_a_ip), preset(GetParam(), nat_b_ip));
  const ip_endpoint a_public = h.register_with_rendezvous(at(0s), a_local);
  const ip_endpoint b_public = h.register_with_rendezvous(at(0s), b_local);
  const bool endpoint_independent_mapping =
      h.net.udp_table(h.nat_a).config().mapping == nudge::netsim::mapping_behavior::endpoint_independent;
  EXPECT_EQ(h.simultaneous_open(at(1s), b_public, a_public), endpoint_independent_mapping) << GetParam();
}

TEST_P(topology_preset, server_cannot_dial_a_client_behind_the_nat) {
  two_homes h(preset(GetParam(), nat_a_ip), preset(GetParam(), nat_b_ip));
  const ip_endpoint webhook_listener = ip_endpoint::v4(10, 0, 0, 2, 8443);
  // To the private address: not routed on the Internet.
  EXPECT_EQ(h.net.route_tcp_segment(at(0s), server_https, webhook_listener, tcp_flag::syn).dropped,
            drop_reason::no_route);
  EXPECT_EQ(h.net.route_datagram(at(0s), server_https, webhook_listener).dropped, drop_reason::no_route);
  // To the NAT's public address at the listening port: nothing mapped there.
  ip_endpoint public_listener = nat_a_ip;
  public_listener.port = webhook_listener.port;
  EXPECT_EQ(h.net.route_tcp_segment(at(0s), server_https, public_listener, tcp_flag::syn).dropped,
            drop_reason::nat_no_mapping);

  // While the client holds a connection to the server, the server's callback from
  // another port to that mapping passes only a filter that ignores the port.
  const route_verdict syn = h.net.route_tcp_segment(at(1s), a_local, server_https, tcp_flag::syn);
  ASSERT_TRUE(syn.delivered());
  ASSERT_TRUE(h.net.route_tcp_segment(at(1s), server_https, syn.from, tcp_flag::syn | tcp_flag::ack).delivered());
  const ip_endpoint server_callback = ip_endpoint::v4(192, 0, 2, 10, 61000);
  const route_verdict callback = h.net.route_tcp_segment(at(2s), server_callback, syn.from, tcp_flag::syn);
  const auto f = h.net.tcp_table(h.nat_a).config().filtering;
  EXPECT_EQ(callback.delivered(), f != filtering_behavior::address_and_port_dependent);
  if (!callback.delivered()) {
    EXPECT_EQ(callback.dropped, drop_reason::nat_filtered);
  }
}

INSTANTIATE_TEST_SUITE_P(presets, topology_preset, testing::ValuesIn(nudge::netsim::preset_names), case_name);

TEST(topology_punching, port_prediction_opens_symmetric_nats_only_with_sequential_ports) {
  for (auto allocation : {port_allocation::sequential, port_allocation::random}) {
    nat_config ca = preset("symmetric", nat_a_ip);
    nat_config cb = preset("symmetric", nat_b_ip);
    ca.allocation = cb.allocation = allocation;
    two_homes h(ca, cb, 3);
    ip_endpoint a_public = h.register_with_rendezvous(at(0s), a_local);
    ip_endpoint b_public = h.register_with_rendezvous(at(0s), b_local);
    // Without prediction a symmetric NAT defeats punching either way.
    EXPECT_FALSE(h.simultaneous_open(at(1s), b_public, a_public));
    // Predict: each peer's next mapping is the one after the last seen (the failed
    // attempt above used one port each, so skip it too).
    a_public.port = static_cast<std::uint16_t>(a_public.port + 2);
    b_public.port = static_cast<std::uint16_t>(b_public.port + 2);
    EXPECT_EQ(h.simultaneous_open(at(2s), b_public, a_public), allocation == port_allocation::sequential);
  }
}

TEST(topology_sharing, several_hosts_share_one_public_address_with_distinct_ports) {
  topology net(7);
  const host_id server = net.add_host(server_ip);
  const nat_id home = net.add_nat(preset("port-restricted-cone", nat_a_ip));
  std::vector<ip_endpoint> locals;
  for (std::uint8_t i = 2; i <= 5; ++i) {
    locals.push_back(ip_endpoint::v4(10, 0, 0, i, 40000));  // all the same private port
    net.attach(net.add_host(locals.back()), home);
  }
  std::set<std::uint16_t> udp_ports, tcp_ports;
  for (const auto& local : locals) {
    const route_verdict d = net.route_datagram(at(0s), local, rendezvous);
    ASSERT_TRUE(d.delivered());
    EXPECT_EQ(d.receiver, server);
    EXPECT_EQ(d.from.address, nat_a_ip.address);
    udp_ports.insert(d.from.port);
    // The server's answer finds the right host.
    const route_verdict reply = net.route_datagram(at(1s), rendezvous, d.from);
    ASSERT_TRUE(reply.delivered());
    EXPECT_EQ(reply.to, local);
    const route_verdict s = net.route_tcp_segment(at(0s), local, server_https, tcp_flag::syn);
    ASSERT_TRUE(s.delivered());
    EXPECT_EQ(s.from.address, nat_a_ip.address);
    tcp_ports.insert(s.from.port);
    EXPECT_EQ(net.route_tcp_segment(at(1s), server_https, s.from, tcp_flag::syn | tcp_flag::ack).to, local);
  }
  EXPECT_EQ(udp_ports.size(), locals.size());
  EXPECT_EQ(tcp_ports.size(), locals.size());
  EXPECT_EQ(net.udp_table(home).mapping_count(), locals.size());
  EXPECT_EQ(net.tcp_table(home).mapping_count(), locals.size());
}

TEST(topology_sharing, hosts_behind_one_nat_talk_directly_and_hairpin_only_when_allowed) {
  for (bool hairpinning : {false, true}) {
    nat_config c = preset("full-cone", nat_a_ip);
    c.hairpinning = hairpinning;
    topology net(1);
    const nat_id home = net.add_nat(c);
    const ip_endpoint one = ip_endpoint::v4(10, 0, 0, 2, 5000), two = ip_endpoint::v4(10, 0, 0, 3, 6000);
    net.attach(net.add_host(one), home);
    const host_id second = net.add_host(two);
    net.attach(second, home);
    net.add_host(server_ip);
    // LAN: untranslated, the NAT not involved.
    const route_verdict lan = net.route_datagram(at(0s), one, two);
    ASSERT_TRUE(lan.delivered());
    EXPECT_EQ(lan.from, one);
    EXPECT_EQ(net.udp_table(home).mapping_count(), 0u);
    // Via the public mapping of `two`.
    const route_verdict out = net.route_datagram(at(1s), two, rendezvous);
    ASSERT_TRUE(out.delivered());
    const route_verdict hairpin = net.route_datagram(at(2s), one, out.from);
    EXPECT_EQ(hairpin.delivered(), hairpinning);
    if (hairpinning) {
      EXPECT_EQ(hairpin.receiver, second);
      EXPECT_EQ(hairpin.from.address, nat_a_ip.address);  // RFC 4787 REQ-9: the sender's mapping
    } else {
      EXPECT_EQ(hairpin.dropped, drop_reason::nat_hairpin_off);
    }
  }
}

TEST(topology_udp, verdicts_follow_the_udp_nat_model) {
  two_homes h(preset("port-restricted-cone", nat_a_ip), preset("port-restricted-cone", nat_b_ip));
  EXPECT_EQ(h.net.route_datagram(at(0s), ip_endpoint::v4(10, 9, 9, 9, 1), rendezvous).dropped,
            drop_reason::unknown_sender);
  const route_verdict out = h.net.route_datagram(at(0s), a_local, rendezvous);
  ASSERT_TRUE(out.delivered());
  EXPECT_EQ(out.from, ip_endpoint::v4(203, 0, 113, 1, a_local.port));  // port preserved
  EXPECT_EQ(h.net.route_datagram(at(1s), rendezvous, out.from).to, a_local);
  EXPECT_EQ(h.net.route_datagram(at(1s), server_https, out.from).dropped, drop_reason::nat_filtered);
  // The inbound reply at 1 s refreshed the 30 s timer (inbound_refreshes).
  EXPECT_EQ(h.net.route_datagram(at(31s), rendezvous, out.from).dropped, drop_reason::nat_no_mapping);
  // TCP has its own port space: the UDP mapping does not admit a SYN.
  EXPECT_EQ(h.net.route_tcp_segment(at(31s), rendezvous, out.from, tcp_flag::syn).dropped,
            drop_reason::nat_no_mapping);
}

// ---- links -------------------------------------------------------------------------

TEST(topology_links, delays_add_up_along_the_path_and_rate_queues_packets) {
  topology net(1);
  const host_id server = net.add_host(server_ip, link_params{1ms, 0ms, 0.0, 0.0});
  const nat_id home = net.add_nat(preset("full-cone", nat_a_ip), link_params{5ms, 0ms, 0.0, 0.0});
  const host_id a = net.add_host(a_local, link_params{20ms, 0ms, 0.0, 1e6});  // 1 Mbit/s access
  net.attach(a, home);
  const route_verdict first = net.route_datagram(at(0s), a_local, rendezvous, 1250);  // 10 ms on the wire
  const route_verdict second = net.route_datagram(at(0s), a_local, rendezvous, 1250);
  ASSERT_TRUE(first.delivered() && second.delivered());
  EXPECT_EQ(first.receiver, server);
  EXPECT_EQ(first.arrival, at(10ms + 20ms + 5ms + 1ms));
  EXPECT_EQ(second.arrival, first.arrival + 10ms);  // waited for the first to leave
  const route_verdict back = net.route_tcp_segment(at(1s), rendezvous, first.from, tcp_flag::data, 0);
  EXPECT_EQ(back.dropped, drop_reason::nat_no_mapping);  // a UDP mapping only: TCP has its own ports
}

TEST(topology_links, a_nat_reset_comes_back_over_the_path_to_the_nat) {
  nat_config c = preset("port-restricted-cone", nat_a_ip);
  c.tcp_established_timeout = 10min;
  c.tcp_stale = nudge::netsim::tcp_stale_segment::reset;
  topology net(1);
  net.add_host(server_ip, link_params{2ms, 0ms, 0.0, 0.0});
  const nat_id home = net.add_nat(c, link_params{3ms, 0ms, 0.0, 0.0});
  net.attach(net.add_host(a_local, link_params{10ms, 0ms, 0.0, 0.0}), home);
  const route_verdict syn = net.route_tcp_segment(at(0s), a_local, server_https, tcp_flag::syn);
  ASSERT_TRUE(syn.delivered());
  EXPECT_EQ(syn.arrival, at(15ms));
  ASSERT_TRUE(net.route_tcp_segment(at(0s), server_https, syn.from, tcp_flag::syn | tcp_flag::ack).delivered());
  // Idle past the timeout: the server's push meets no mapping and the NAT resets it.
  const route_verdict push = net.route_tcp_segment(at(11min), server_https, syn.from, tcp_flag::data);
  EXPECT_EQ(push.dropped, drop_reason::nat_no_mapping);
  EXPECT_TRUE(push.reset_sent);
  EXPECT_EQ(push.reset_arrival, at(11min) + 2 * (2ms + 3ms));
  // The client's heartbeat meets the same fate at its own NAT.
  const route_verdict heartbeat = net.route_tcp_segment(at(12min), a_local, server_https, tcp_flag::data);
  EXPECT_EQ(heartbeat.dropped, drop_reason::nat_no_connection);
  EXPECT_TRUE(heartbeat.reset_sent);
  EXPECT_EQ(heartbeat.reset_arrival, at(12min) + 2 * 10ms);
}

struct link_run {
  std::vector<bool> lost;
  std::vector<time_point> arrivals;
  friend bool operator==(const link_run&, const link_run&) = default;
};

link_run run_lossy_link(std::uint64_t seed) {
  topology net(seed);
  net.add_host(server_ip, link_params{2ms, 0ms, 0.0, 0.0});
  net.add_host(a_local, link_params{10ms, 30ms, 0.3, 0.0});  // both public: no NAT involved
  link_run r;
  for (int i = 0; i < 1000; ++i) {
    const route_verdict v = net.route_datagram(at(i * 1ms), a_local, rendezvous);
    r.lost.push_back(v.dropped == drop_reason::lost);
    r.arrivals.push_back(v.arrival);
  }
  return r;
}

TEST(topology_links, loss_and_jitter_are_drawn_from_the_seed) {
  const link_run one = run_lossy_link(42);
  EXPECT_EQ(one, run_lossy_link(42));
  EXPECT_NE(one, run_lossy_link(43));
  const auto lost = std::count(one.lost.begin(), one.lost.end(), true);
  EXPECT_GT(lost, 200);
  EXPECT_LT(lost, 400);
  bool reordered = false;
  time_point latest{};
  for (std::size_t i = 0; i < one.arrivals.size(); ++i) {
    if (one.lost[i]) continue;
    EXPECT_GE(one.arrivals[i], at(static_cast<int>(i) * 1ms + 12ms));
    EXPECT_LE(one.arrivals[i], at(static_cast<int>(i) * 1ms + 42ms));
    reordered = reordered || one.arrivals[i] < latest;
    latest = std::max(latest, one.arrivals[i]);
  }
  EXPECT_TRUE(reordered);  // datagrams may overtake each other
}

TEST(topology_links, tcp_is_never_lost_and_keeps_its_order) {
  topology net(5);
  net.add_host(server_ip);
  net.add_host(a_local, link_params{10ms, 30ms, 1.0, 0.0});  // every datagram lost
  EXPECT_EQ(net.route_datagram(at(0s), a_local, rendezvous).dropped, drop_reason::lost);
  time_point previous{};
  for (int i = 0; i < 500; ++i) {
    const route_verdict v = net.route_tcp_segment(at(i * 1ms), a_local, server_https, tcp_flag::data);
    ASSERT_TRUE(v.delivered());
    EXPECT_GE(v.arrival, previous);
    previous = v.arrival;
  }
}

}  // namespace
