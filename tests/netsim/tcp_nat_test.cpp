// nudge::netsim::tcp_nat: TCP through the NAT model (RFC 5382): mapping and
// port allocation per preset, inbound SYN filtering, established and transitory
// idle timeouts, what a segment meets after its mapping expired, hairpinning.
#include "nudge/netsim/tcp_nat.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

namespace {

using namespace std::chrono_literals;
using nudge::duration;
using nudge::time_point;
using nudge::netsim::drop_reason;
using nudge::netsim::filtering_behavior;
using nudge::netsim::ip_endpoint;
using nudge::netsim::mapping_behavior;
using nudge::netsim::nat_config;
using nudge::netsim::port_allocation;
using nudge::netsim::tcp_nat;
using nudge::netsim::tcp_stale_segment;
namespace tcp_flag = nudge::netsim::tcp_flag;

const ip_endpoint public_ip = ip_endpoint::v4(203, 0, 113, 1, 0);
const ip_endpoint client = ip_endpoint::v4(10, 0, 0, 2, 40000);
const ip_endpoint server = ip_endpoint::v4(203, 0, 113, 2, 443);
const ip_endpoint server_other_port = ip_endpoint::v4(203, 0, 113, 2, 8080);
const ip_endpoint other_host = ip_endpoint::v4(203, 0, 113, 3, 443);

time_point at(duration d) { return time_point{} + d; }

nat_config preset(std::string_view name) { return *nudge::netsim::preset(name, public_ip); }

/// SYN out, SYN-ACK in, ACK out: an established connection client <-> server.
ip_endpoint open_connection(tcp_nat& n, time_point now, const ip_endpoint& from = client,
                            const ip_endpoint& to = server) {
  const auto syn = n.outbound(now, from, to, tcp_flag::syn);
  EXPECT_TRUE(syn);
  if (!syn) return {};
  EXPECT_EQ(n.inbound(now, to, *syn.translated, tcp_flag::syn | tcp_flag::ack).translated, from);
  EXPECT_TRUE(n.outbound(now, from, to, tcp_flag::ack));
  return *syn.translated;
}

class tcp_preset : public testing::TestWithParam<std::string_view> {};

std::string preset_case_name(const testing::TestParamInfo<std::string_view>& info) {
  std::string s(info.param);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

TEST_P(tcp_preset, outbound_syn_maps_by_the_presets_rules) {
  const nat_config c = preset(GetParam());
  tcp_nat n(c, 5);
  std::set<std::uint16_t> ports;
  for (const auto& dst : {server, server_other_port, other_host}) {
    const auto t = n.outbound(at(0s), client, dst, tcp_flag::syn);
    ASSERT_TRUE(t);
    EXPECT_EQ(t.translated->address, public_ip.address);
    if (c.allocation == port_allocation::preserving) {
      EXPECT_EQ(t.translated->port, client.port);
    }
    ports.insert(t.translated->port);
  }
  const std::size_t expected = c.mapping == mapping_behavior::endpoint_independent ? 1u
                               : c.mapping == mapping_behavior::address_dependent  ? 2u
                                                                                   : 3u;
  EXPECT_EQ(ports.size(), expected);
  EXPECT_EQ(n.mapping_count(), expected);
  EXPECT_EQ(n.counters().connections_opened, 3u);
}

TEST_P(tcp_preset, inbound_syn_is_admitted_only_as_the_filtering_allows) {
  const nat_config c = preset(GetParam());
  tcp_nat n(c, 5);
  // Unsolicited: nothing mapped, dropped and never answered (RFC 5382 REQ-4).
  const auto cold = n.inbound(at(0s), server, ip_endpoint::v4(203, 0, 113, 1, client.port), tcp_flag::syn);
  EXPECT_EQ(cold.dropped, drop_reason::nat_no_mapping);
  EXPECT_FALSE(cold.reset_sent);

  const ip_endpoint mapped = open_connection(n, at(1s));
  const auto f = c.filtering;
  const auto same_host = n.inbound(at(2s), server_other_port, mapped, tcp_flag::syn);
  EXPECT_EQ(same_host.has_value(), f != filtering_behavior::address_and_port_dependent);
  const auto stranger = n.inbound(at(2s), other_host, mapped, tcp_flag::syn);
  EXPECT_EQ(stranger.has_value(), f == filtering_behavior::endpoint_independent);
  if (!stranger) {
    EXPECT_EQ(stranger.dropped, drop_reason::nat_filtered);
  }
  // A data segment from a stranger is no SYN: it belongs to no connection.
  const auto data = n.inbound(at(2s), ip_endpoint::v4(203, 0, 113, 9, 1), mapped, tcp_flag::data);
  EXPECT_EQ(data.dropped, drop_reason::nat_no_connection);
}

TEST_P(tcp_preset, established_connection_lives_for_the_presets_idle_timeout) {
  const nat_config c = preset(GetParam());
  tcp_nat n(c, 5);
  const ip_endpoint mapped = open_connection(n, at(0s));
  const duration idle = c.tcp_established_timeout;
  EXPECT_EQ(n.inbound(at(idle) - 1s, server, mapped, tcp_flag::data).translated, client);
  // Idle since that push: gone exactly one timeout later.
  const time_point last = at(idle) - 1s;
  EXPECT_TRUE(n.connection_live(last + idle - 1ns, client, server));
  const auto late = n.inbound(last + idle, server, mapped, tcp_flag::data);
  EXPECT_EQ(late.dropped, drop_reason::nat_no_mapping);
  EXPECT_EQ(n.counters().mappings_expired, 1u);
  EXPECT_EQ(n.mapping_count(), 0u);
}

TEST_P(tcp_preset, half_open_connection_lives_for_the_transitory_timeout) {
  const nat_config c = preset(GetParam());
  tcp_nat n(c, 5);
  const auto syn = n.outbound(at(0s), client, server, tcp_flag::syn);
  ASSERT_TRUE(syn);
  EXPECT_EQ(n.next_deadline(), at(c.tcp_transitory_timeout));
  EXPECT_TRUE(n.mapped_endpoint(at(c.tcp_transitory_timeout) - 1ns, client, server));
  EXPECT_EQ(n.expire(at(c.tcp_transitory_timeout)), 1u);
  EXPECT_FALSE(n.inbound(at(c.tcp_transitory_timeout), server, *syn.translated, tcp_flag::syn | tcp_flag::ack));
}

TEST_P(tcp_preset, fin_or_rst_shortens_the_timer_to_transitory) {
  const nat_config c = preset(GetParam());
  for (auto closing : {tcp_flag::fin | tcp_flag::ack, tcp_flag::rst}) {
    tcp_nat n(c, 5);
    const ip_endpoint mapped = open_connection(n, at(0s));
    ASSERT_TRUE(n.outbound(at(10s), client, server, closing));
    EXPECT_TRUE(n.connection_live(at(10s) + c.tcp_transitory_timeout - 1ns, client, server));
    EXPECT_FALSE(n.inbound(at(10s) + c.tcp_transitory_timeout, server, mapped, tcp_flag::ack));
  }
}

INSTANTIATE_TEST_SUITE_P(presets, tcp_preset, testing::ValuesIn(nudge::netsim::preset_names), preset_case_name);

TEST(tcp_nat_timeouts, rfc_presets_meet_rfc5382_req5_and_linux_keeps_its_conntrack_values) {
  for (auto name : {"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}) {
    EXPECT_GE(preset(name).tcp_established_timeout, 2h + 4min) << name;
    EXPECT_GE(preset(name).tcp_transitory_timeout, 4min) << name;
  }
  EXPECT_EQ(preset("linux-snat").tcp_established_timeout, 432000s);  // nf_conntrack_tcp_timeout_established
  EXPECT_EQ(preset("linux-snat").tcp_transitory_timeout, 120s);     // _syn_sent, _time_wait
}

// ActiveSync-style: a held connection whose only traffic is the client's heartbeat,
// behind a gateway with a 30 min TCP idle timeout (shorter than REQ-5, as many are).
TEST(tcp_nat_timeouts, heartbeat_shorter_than_the_idle_timeout_keeps_the_push_path) {
  for (auto heartbeat : {28min, 31min}) {
    nat_config c = preset("port-restricted-cone");
    c.tcp_established_timeout = 30min;
    tcp_nat n(c, 1);
    const ip_endpoint mapped = open_connection(n, at(0s));
    bool every_heartbeat_passed = true;
    time_point t = at(0s);
    for (int i = 0; i < 4; ++i) {
      t += heartbeat;
      every_heartbeat_passed = n.outbound(t, client, server, tcp_flag::data).has_value() && every_heartbeat_passed;
    }
    const auto push = n.inbound(t + 1min, server, mapped, tcp_flag::data);
    EXPECT_EQ(push.has_value(), heartbeat < 30min) << heartbeat.count();
    EXPECT_EQ(every_heartbeat_passed, heartbeat < 30min) << heartbeat.count();
    if (heartbeat >= 30min) {
      EXPECT_EQ(n.counters().outbound_no_connection, 4u);
    }
  }
}

TEST(tcp_nat_stale, after_expiry_segments_are_dropped_or_reset_as_configured) {
  for (auto stale : {tcp_stale_segment::drop, tcp_stale_segment::reset}) {
    nat_config c = preset("port-restricted-cone");
    c.tcp_established_timeout = 10min;
    c.tcp_stale = stale;
    tcp_nat n(c, 1);
    const ip_endpoint mapped = open_connection(n, at(0s));
    const bool resets = stale == tcp_stale_segment::reset;
    const auto push = n.inbound(at(11min), server, mapped, tcp_flag::data);
    EXPECT_EQ(push.dropped, drop_reason::nat_no_mapping);
    EXPECT_EQ(push.reset_sent, resets);
    const auto heartbeat = n.outbound(at(12min), client, server, tcp_flag::data);
    EXPECT_EQ(heartbeat.dropped, drop_reason::nat_no_connection);
    EXPECT_EQ(heartbeat.reset_sent, resets);
    // A RST is never answered with a RST.
    EXPECT_FALSE(n.inbound(at(13min), server, mapped, tcp_flag::rst).reset_sent);
    EXPECT_FALSE(n.outbound(at(13min), client, server, tcp_flag::rst).reset_sent);
    EXPECT_EQ(n.counters().resets_sent, resets ? 2u : 0u);
  }
}

TEST(tcp_nat_stale, linux_picks_the_connection_up_again_on_the_clients_next_segment) {
  nat_config c = preset("linux-snat");
  c.tcp_established_timeout = 10min;
  tcp_nat n(c, 1);
  const ip_endpoint mapped = open_connection(n, at(0s));
  EXPECT_FALSE(n.inbound(at(11min), server, mapped, tcp_flag::data));  // lost while unmapped
  const auto heartbeat = n.outbound(at(12min), client, server, tcp_flag::data);
  ASSERT_TRUE(heartbeat);
  EXPECT_EQ(*heartbeat.translated, mapped);  // the port was free again: preserved
  EXPECT_EQ(n.counters().connections_picked_up, 1u);
  EXPECT_EQ(n.inbound(at(13min), server, mapped, tcp_flag::data).translated, client);
  // Picked up as established: it lasts the established timeout, not the transitory one.
  EXPECT_TRUE(n.connection_live(at(12min) + 10min - 1ns, client, server));
}

TEST(tcp_nat_reuse, a_new_syn_after_a_close_opens_a_fresh_connection_on_the_same_pair) {
  const nat_config c = preset("port-restricted-cone");
  tcp_nat n(c, 1);
  const ip_endpoint mapped = open_connection(n, at(0s));
  ASSERT_TRUE(n.outbound(at(1s), client, server, tcp_flag::fin | tcp_flag::ack));
  ASSERT_TRUE(n.inbound(at(1s), server, mapped, tcp_flag::fin | tcp_flag::ack));
  EXPECT_EQ(open_connection(n, at(2s)), mapped);
  // Established again: the closing flags of the old connection are forgotten.
  EXPECT_TRUE(n.connection_live(at(2s) + c.tcp_established_timeout - 1ns, client, server));
}

TEST(tcp_nat_hairpin, own_public_source_needs_hairpinning) {
  for (bool hairpinning : {false, true}) {
    nat_config c = preset("full-cone");
    c.hairpinning = hairpinning;
    tcp_nat n(c, 1);
    const ip_endpoint listener = open_connection(n, at(0s));
    const ip_endpoint peer_public = ip_endpoint::v4(203, 0, 113, 1, 50000);
    const auto t = n.inbound(at(1s), peer_public, listener, tcp_flag::syn);
    EXPECT_EQ(t.has_value(), hairpinning);
    if (!hairpinning) {
      EXPECT_EQ(t.dropped, drop_reason::nat_hairpin_off);
    }
  }
}

TEST(tcp_nat_ports, sequential_allocation_is_predictable_and_random_is_not) {
  // A peer that saw X':x' towards one server guesses x'+1 for the next mapping.
  auto predicted_hits = [](port_allocation a) {
    int hits = 0;
    for (std::uint64_t seed = 1; seed <= 50; ++seed) {
      nat_config c = preset("symmetric");
      c.allocation = a;
      tcp_nat n(c, seed);
      const auto seen = n.outbound(at(0s), client, server, tcp_flag::syn);
      const auto next = n.outbound(at(1s), client, other_host, tcp_flag::syn);
      if (seen && next && next.translated->port == seen.translated->port + 1) ++hits;
    }
    return hits;
  };
  EXPECT_EQ(predicted_hits(port_allocation::sequential), 50);
  EXPECT_LT(predicted_hits(port_allocation::random), 3);
}

TEST(tcp_nat_determinism, same_seed_same_ports) {
  auto ports = [](std::uint64_t seed) {
    tcp_nat n(preset("symmetric"), seed);
    std::vector<std::uint16_t> out;
    for (std::uint16_t p = 1; p <= 20; ++p)
      out.push_back(n.outbound(at(0s), client, ip_endpoint::v4(203, 0, 113, 2, p), tcp_flag::syn).translated->port);
    return out;
  };
  EXPECT_EQ(ports(9), ports(9));
  EXPECT_NE(ports(9), ports(10));
}

}  // namespace
