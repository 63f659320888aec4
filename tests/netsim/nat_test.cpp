// nudge::netsim::nat: the 3x3 mapping/filtering table, timers, port allocation,
// determinism, scale, and the kernel behaviour recorded in shared/reference/nat.md
// reproduced with the linux_snat preset.
#include "nudge/netsim/nat.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using nudge::duration;
using nudge::time_point;
using nudge::netsim::filtering_behavior;
using nudge::netsim::ip_endpoint;
using nudge::netsim::mapping_behavior;
using nudge::netsim::nat;
using nudge::netsim::nat_config;
using nudge::netsim::port_allocation;

// The nat.md testbed: lan 10.0.0.2/.3, NAT public 203.0.113.1, servers 203.0.113.2/.3.
const ip_endpoint public_ip = ip_endpoint::v4(203, 0, 113, 1, 0);
const ip_endpoint client = ip_endpoint::v4(10, 0, 0, 2, 40000);
const ip_endpoint client_b = ip_endpoint::v4(10, 0, 0, 3, 40000);  // 2nd host, same port
const ip_endpoint server = ip_endpoint::v4(203, 0, 113, 2, 5000);
const ip_endpoint server_other_port = ip_endpoint::v4(203, 0, 113, 2, 5001);
const ip_endpoint other_host = ip_endpoint::v4(203, 0, 113, 3, 5000);
const ip_endpoint other_host_other_port = ip_endpoint::v4(203, 0, 113, 3, 5001);

time_point at(duration d) { return time_point{} + d; }
ip_endpoint pub(std::uint16_t port) { return ip_endpoint::v4(203, 0, 113, 1, port); }

nat_config config(mapping_behavior m, filtering_behavior f, port_allocation a = port_allocation::preserving) {
  nat_config c;
  c.mapping = m;
  c.filtering = f;
  c.allocation = a;
  c.public_address = public_ip;
  return c;
}

// ---- the 3x3 behaviour table -----------------------------------------------------

struct behaviour_case {
  mapping_behavior mapping;
  filtering_behavior filtering;
};

std::string case_name(const testing::TestParamInfo<behaviour_case>& info) {
  return std::string(short_name(info.param.mapping)) + "_" + std::string(short_name(info.param.filtering));
}

class nat_behaviour : public testing::TestWithParam<behaviour_case> {
 protected:
  nat make() const { return nat(config(GetParam().mapping, GetParam().filtering), 7); }
  filtering_behavior filtering() const { return GetParam().filtering; }
};

TEST_P(nat_behaviour, push_to_private_address_is_never_delivered) {
  nat n = make();
  EXPECT_FALSE(n.inbound(at(0s), server, client));  // before registering
  auto mapped = n.outbound(at(1s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_FALSE(n.inbound(at(2s), server, client));  // after: the pinhole is on the public address only
  EXPECT_EQ(n.counters().inbound_not_public, 2u);
  EXPECT_EQ(n.counters().inbound_admitted, 0u);
}

TEST_P(nat_behaviour, push_before_client_sent_anything_is_dropped) {
  nat n = make();
  EXPECT_FALSE(n.inbound(at(0s), server, pub(client.port)));
  EXPECT_EQ(n.counters().inbound_no_mapping, 1u);
  EXPECT_EQ(n.mapping_count(), 0u);
}

TEST_P(nat_behaviour, filtering_after_client_sent_to_server) {
  nat n = make();
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->address, public_ip.address);
  const auto f = filtering();
  // Same ip:port: every filtering admits it.
  EXPECT_EQ(n.inbound(at(1s), server, *mapped), client);
  // Same ip, other port: EIF and ADF.
  EXPECT_EQ(n.inbound(at(1s), server_other_port, *mapped).has_value(), f != filtering_behavior::address_and_port_dependent);
  // Other host: EIF only.
  EXPECT_EQ(n.inbound(at(1s), other_host, *mapped).has_value(), f == filtering_behavior::endpoint_independent);
  EXPECT_EQ(n.inbound(at(1s), other_host_other_port, *mapped).has_value(), f == filtering_behavior::endpoint_independent);
  const std::uint64_t expect_admitted = f == filtering_behavior::endpoint_independent ? 4u
                                        : f == filtering_behavior::address_dependent ? 2u
                                                                                      : 1u;
  EXPECT_EQ(n.counters().inbound_admitted, expect_admitted);
  EXPECT_EQ(n.counters().inbound_filtered, 4u - expect_admitted);
}

TEST_P(nat_behaviour, mapping_expires_without_outbound_refresh) {
  nat n = make();
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(n.next_deadline(), at(30s));
  EXPECT_TRUE(n.mapped_endpoint(at(29s), client, server));
  EXPECT_FALSE(n.inbound(at(30s), server, *mapped));  // expiry is at exactly now >= 30 s
  EXPECT_EQ(n.counters().mappings_expired, 1u);
  EXPECT_EQ(n.counters().inbound_no_mapping, 1u);
  EXPECT_EQ(n.mapping_count(), 0u);
  EXPECT_EQ(n.next_deadline(), nudge::never);
}

TEST_P(nat_behaviour, push_just_before_timeout_is_delivered) {
  nat n = make();
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(n.inbound(at(30s) - 1ns, server, *mapped), client);
}

TEST_P(nat_behaviour, keepalives_shorter_than_timeout_hold_it_open) {
  nat n = make();
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_TRUE(mapped);
  for (auto t = 25s; t <= 600s; t += 25s) EXPECT_EQ(n.outbound(at(t), client, server), mapped);
  EXPECT_EQ(n.inbound(at(620s), server, *mapped), client);  // 20 s after the last keepalive
  EXPECT_EQ(n.counters().mappings_created, 1u);
  EXPECT_EQ(n.counters().mappings_expired, 0u);
}

TEST_P(nat_behaviour, keepalives_longer_than_timeout_lose_the_pinhole) {
  nat n = make();
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(n.outbound(at(35s), client, server));  // a new mapping (same port here, as it is free again)
  EXPECT_FALSE(n.inbound(at(66s), server, *mapped));
  EXPECT_EQ(n.counters().mappings_created, 2u);
  EXPECT_EQ(n.counters().mappings_expired, 2u);
}

TEST_P(nat_behaviour, inbound_refresh_only_when_configured) {
  for (bool inbound_refreshes : {true, false}) {
    nat_config c = config(GetParam().mapping, GetParam().filtering);
    c.inbound_refreshes = inbound_refreshes;
    c.udp_mapping_timeout = c.udp_timeout_established = 5s;  // nat.md (c) ran with 5 s
    nat n(c, 1);
    auto mapped = n.outbound(at(0s), client, server);
    ASSERT_TRUE(mapped);
    for (auto t = 3s; t <= 12s; t += 3s) EXPECT_EQ(n.inbound(at(t), server, *mapped).has_value(), inbound_refreshes || t < 5s);
  }
}

INSTANTIATE_TEST_SUITE_P(
    all, nat_behaviour,
    testing::Values(behaviour_case{mapping_behavior::endpoint_independent, filtering_behavior::endpoint_independent},
                    behaviour_case{mapping_behavior::endpoint_independent, filtering_behavior::address_dependent},
                    behaviour_case{mapping_behavior::endpoint_independent, filtering_behavior::address_and_port_dependent},
                    behaviour_case{mapping_behavior::address_dependent, filtering_behavior::endpoint_independent},
                    behaviour_case{mapping_behavior::address_dependent, filtering_behavior::address_dependent},
                    behaviour_case{mapping_behavior::address_dependent, filtering_behavior::address_and_port_dependent},
                    behaviour_case{mapping_behavior::address_and_port_dependent, filtering_behavior::endpoint_independent},
                    behaviour_case{mapping_behavior::address_and_port_dependent, filtering_behavior::address_dependent},
                    behaviour_case{mapping_behavior::address_and_port_dependent,
                                   filtering_behavior::address_and_port_dependent}),
    case_name);

// ---- mapping behaviour and port allocation ----------------------------------------

TEST(nat_mapping, public_port_per_destination_follows_mapping_behaviour) {
  struct row {
    mapping_behavior m;
    std::size_t distinct_ports;  // over server, server_other_port, other_host
  };
  for (auto [m, distinct] : {row{mapping_behavior::endpoint_independent, 1}, row{mapping_behavior::address_dependent, 2},
                             row{mapping_behavior::address_and_port_dependent, 3}}) {
    SCOPED_TRACE(std::string(to_string(m)));
    nat n(config(m, filtering_behavior::address_and_port_dependent), 3);
    std::set<std::uint16_t> ports;
    for (const auto& dst : {server, server_other_port, other_host}) ports.insert(n.outbound(at(0s), client, dst)->port);
    EXPECT_EQ(ports.size(), distinct);
    EXPECT_EQ(n.mapping_count(), distinct);
    // Same destination again reuses the mapping.
    EXPECT_EQ(n.outbound(at(1s), client, server), n.mapped_endpoint(at(1s), client, server));
    EXPECT_EQ(n.mapping_count(), distinct);
  }
}

TEST(nat_mapping, symmetric_preset_gives_a_different_public_port_per_destination) {
  nat n(nudge::netsim::symmetric(public_ip), 11);
  auto a = n.outbound(at(0s), client, server);
  auto b = n.outbound(at(0s), client, server_other_port);
  auto c = n.outbound(at(0s), client, other_host);
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(a->port, b->port);
  EXPECT_NE(a->port, c->port);
  EXPECT_NE(b->port, c->port);
  // A port learned from one server (say by STUN) is useless for another: the other
  // server pushing to it is filtered.
  EXPECT_FALSE(n.inbound(at(1s), other_host, *a));
  EXPECT_EQ(n.inbound(at(1s), other_host, *c), client);
}

TEST(nat_ports, preserving_keeps_the_private_port) {
  nat n(nudge::netsim::port_restricted_cone(public_ip), 1);
  EXPECT_EQ(n.outbound(at(0s), client, server), pub(40000));
  EXPECT_EQ(n.outbound(at(0s), ip_endpoint::v4(10, 0, 0, 2, 500), server), pub(500));  // outside the range: kept
  EXPECT_EQ(n.counters().port_collisions, 0u);
}

TEST(nat_ports, two_hosts_with_the_same_private_port_get_distinct_public_ports) {
  for (auto alloc : {port_allocation::preserving, port_allocation::sequential, port_allocation::random}) {
    SCOPED_TRACE(std::string(to_string(alloc)));
    nat n(config(mapping_behavior::endpoint_independent, filtering_behavior::address_and_port_dependent, alloc), 5);
    auto a = n.outbound(at(0s), client, server);
    auto b = n.outbound(at(0s), client_b, server);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->port, b->port);
    EXPECT_EQ(n.inbound(at(1s), server, *a), client);
    EXPECT_EQ(n.inbound(at(1s), server, *b), client_b);
    if (alloc == port_allocation::preserving) {
      EXPECT_EQ(a->port, 40000);
      EXPECT_EQ(b->port, 1024);  // sequential fallback from the bottom of the range
      EXPECT_EQ(n.counters().port_collisions, 1u);
    }
  }
}

TEST(nat_ports, sequential_counts_up_from_the_cursor) {
  nat n(config(mapping_behavior::address_and_port_dependent, filtering_behavior::address_and_port_dependent,
               port_allocation::sequential),
        1);
  for (std::uint16_t i = 0; i < 5; ++i) {
    auto dst = ip_endpoint::v4(203, 0, 113, 2, static_cast<std::uint16_t>(6000 + i));
    EXPECT_EQ(n.outbound(at(0s), client, dst), pub(static_cast<std::uint16_t>(1024 + i)));
  }
}

TEST(nat_ports, exhaustion_returns_nullopt_until_a_mapping_expires) {
  nat_config c = config(mapping_behavior::address_and_port_dependent, filtering_behavior::address_and_port_dependent,
                        port_allocation::sequential);
  c.port_min = 2000;
  c.port_max = 2002;
  nat n(c, 1);
  for (std::uint16_t i = 0; i < 3; ++i)
    EXPECT_TRUE(n.outbound(at(0s), client, ip_endpoint::v4(203, 0, 113, 2, static_cast<std::uint16_t>(6000 + i))));
  EXPECT_FALSE(n.outbound(at(1s), client, other_host));
  EXPECT_EQ(n.counters().outbound_port_exhausted, 1u);
  auto again = n.outbound(at(31s), client, other_host);  // the three expired at 30 s
  ASSERT_TRUE(again);
  EXPECT_GE(again->port, 2000);
  EXPECT_LE(again->port, 2002);
  EXPECT_EQ(n.counters().mappings_expired, 3u);
}

TEST(nat_ports, random_allocation_is_deterministic_for_a_seed) {
  auto run = [](std::uint64_t seed) {
    nat n(config(mapping_behavior::address_and_port_dependent, filtering_behavior::address_and_port_dependent,
                 port_allocation::random),
          seed);
    std::vector<std::uint16_t> ports;
    for (std::uint16_t i = 0; i < 50; ++i)
      ports.push_back(n.outbound(at(0s), client, ip_endpoint::v4(203, 0, 113, 2, static_cast<std::uint16_t>(6000 + i)))->port);
    return ports;
  };
  const auto a = run(42);
  EXPECT_EQ(a, run(42));
  EXPECT_NE(a, run(43));
  EXPECT_EQ(std::set<std::uint16_t>(a.begin(), a.end()).size(), a.size());
  for (auto p : a) EXPECT_GE(p, 1024);
}

// ---- hairpinning, flush, config -------------------------------------------------------

TEST(nat_hairpin, admitted_only_when_hairpinning_is_on) {
  for (bool hairpinning : {false, true}) {
    nat_config c = nudge::netsim::full_cone(public_ip);
    c.hairpinning = hairpinning;
    nat n(c, 1);
    auto a_pub = n.outbound(at(0s), client, server);  // A opens a mapping
    ASSERT_TRUE(a_pub);
    // B sends to A's public endpoint: the driver translates it, then loops it back in.
    auto b_pub = n.outbound(at(1s), client_b, *a_pub);
    ASSERT_TRUE(b_pub);
    auto delivered = n.inbound(at(1s), *b_pub, *a_pub);
    EXPECT_EQ(delivered.has_value(), hairpinning);
    if (hairpinning) {
      EXPECT_EQ(*delivered, client);  // ...with B's *public* endpoint as the source
    }
    EXPECT_EQ(n.counters().inbound_hairpin_dropped, hairpinning ? 0u : 1u);
  }
}

TEST(nat_table, flush_drops_everything) {
  nat n(nudge::netsim::port_restricted_cone(public_ip), 1);
  auto mapped = n.outbound(at(0s), client, server);
  n.flush();
  EXPECT_EQ(n.mapping_count(), 0u);
  EXPECT_EQ(n.counters().mappings_flushed, 1u);
  EXPECT_FALSE(n.inbound(at(1s), server, *mapped));
  EXPECT_EQ(n.next_deadline(), nudge::never);
}

TEST(nat_table, invalid_config_is_rejected) {
  nat_config c;  // no public address
  EXPECT_TRUE(nat::validate(c));
  EXPECT_THROW(nat(c, 1), std::invalid_argument);
  c.public_address = public_ip;
  EXPECT_FALSE(nat::validate(c));
  c.port_min = 0;
  EXPECT_TRUE(nat::validate(c));
  c.port_min = 3000;
  c.port_max = 2000;
  EXPECT_TRUE(nat::validate(c));
}

TEST(nat_table, index_switch_keeps_lookups_working) {
  nat n(nudge::netsim::port_restricted_cone(public_ip), 1);
  std::vector<std::pair<ip_endpoint, ip_endpoint>> clients;
  for (std::uint8_t i = 0; i < 40; ++i) {
    auto priv = ip_endpoint::v4(10, 0, 1, i, 40000);  // all the same port: collisions from the 2nd on
    auto mapped = n.outbound(at(0s), priv, server);
    ASSERT_TRUE(mapped);
    clients.emplace_back(priv, *mapped);
    EXPECT_EQ(n.table_stats().indexed, i >= nat::index_threshold);
  }
  for (const auto& [priv, mapped] : clients) {
    EXPECT_EQ(n.inbound(at(1s), server, mapped), priv);
    EXPECT_EQ(n.mapped_endpoint(at(1s), priv, server), mapped);
  }
  EXPECT_EQ(n.counters().port_collisions, 39u);
}

TEST(nat_names, to_string_and_parse_round_trip) {
  using namespace nudge::netsim;
  for (auto m : {mapping_behavior::endpoint_independent, mapping_behavior::address_dependent,
                 mapping_behavior::address_and_port_dependent}) {
    EXPECT_EQ(parse_mapping_behavior(to_string(m)), m);
    EXPECT_EQ(parse_mapping_behavior(short_name(m)), m);
  }
  for (auto f : {filtering_behavior::endpoint_independent, filtering_behavior::address_dependent,
                 filtering_behavior::address_and_port_dependent}) {
    EXPECT_EQ(parse_filtering_behavior(to_string(f)), f);
    EXPECT_EQ(parse_filtering_behavior(short_name(f)), f);
  }
  for (auto a : {port_allocation::preserving, port_allocation::sequential, port_allocation::random})
    EXPECT_EQ(parse_port_allocation(to_string(a)), a);
  EXPECT_EQ(to_string(mapping_behavior::address_and_port_dependent), "address-and-port-dependent");
  EXPECT_EQ(short_name(filtering_behavior::address_dependent), "adf");
  EXPECT_EQ(parse_mapping_behavior("EIM"), mapping_behavior::endpoint_independent);
  EXPECT_EQ(parse_mapping_behavior("address_dependent"), mapping_behavior::address_dependent);
  EXPECT_EQ(parse_filtering_behavior("apdf"), filtering_behavior::address_and_port_dependent);
  EXPECT_FALSE(parse_filtering_behavior("eim"));
  EXPECT_FALSE(parse_mapping_behavior(""));
  EXPECT_FALSE(parse_port_allocation("preserve"));
  for (auto name : preset_names) EXPECT_TRUE(preset(name, public_ip)) << name;
  EXPECT_FALSE(preset("cone", public_ip));
  auto s = preset("Port_Restricted_Cone", public_ip);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mapping, mapping_behavior::endpoint_independent);
  EXPECT_EQ(s->filtering, filtering_behavior::address_and_port_dependent);
  EXPECT_EQ(preset("symmetric", public_ip)->allocation, port_allocation::random);
  EXPECT_EQ(preset("full-cone", public_ip)->filtering, filtering_behavior::endpoint_independent);
  EXPECT_EQ(preset("restricted-cone", public_ip)->filtering, filtering_behavior::address_dependent);
}

// ---- scale and bounded memory ----------------------------------------------------------

TEST(nat_scale, one_nat_shared_by_10000_clients) {
  nat n(nudge::netsim::linux_snat(public_ip), 2024);
  constexpr int clients = 10000;
  auto priv = [](int i) {
    return ip_endpoint::v4(10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                           static_cast<std::uint8_t>(i), 40000);
  };
  std::vector<ip_endpoint> mapped(clients);
  for (int i = 0; i < clients; ++i) mapped[static_cast<std::size_t>(i)] = *n.outbound(at(0s), priv(i), server);
  EXPECT_EQ(n.mapping_count(), static_cast<std::size_t>(clients));
  EXPECT_EQ(std::set<ip_endpoint>(mapped.begin(), mapped.end()).size(), static_cast<std::size_t>(clients));
  // Five minutes: keepalive every 25 s, a push to everyone every 60 s.
  std::uint64_t delivered = 0;
  for (auto t = 1s; t <= 300s; t += 1s) {
    for (int i = 0; i < clients; ++i) {
      const auto phase = std::chrono::seconds(i % 25);
      if ((t - phase) % 25s == 0s) {
        EXPECT_EQ(n.outbound(at(t), priv(i), server), mapped[static_cast<std::size_t>(i)]);
      }
      if (t % 60s == 0s && n.inbound(at(t), server, mapped[static_cast<std::size_t>(i)]) == priv(i)) ++delivered;
    }
  }
  EXPECT_EQ(delivered, 5u * clients);
  EXPECT_EQ(n.counters().mappings_created, static_cast<std::uint64_t>(clients));
  // Everyone goes silent: after the established timer (120 s) all mappings are gone.
  EXPECT_EQ(n.expire(at(300s + 121s)), static_cast<std::size_t>(clients));
  EXPECT_EQ(n.mapping_count(), 0u);
  EXPECT_EQ(n.table_stats().timers, 0u);
}

TEST(nat_scale, long_run_memory_stays_bounded) {
  // A per-client nat whose client talks to a new destination every second for a day
  // under APDM: ~30 live mappings at a time, 86,400 created in all.
  nat n(config(mapping_behavior::address_and_port_dependent, filtering_behavior::address_and_port_dependent,
               port_allocation::random),
        9);
  std::size_t max_slots = 0, max_timers = 0;
  for (int s = 0; s < 86400; ++s) {
    auto dst = ip_endpoint::v4(198, 51, 100, static_cast<std::uint8_t>(s % 250), static_cast<std::uint16_t>(1 + s % 60000));
    ASSERT_TRUE(n.outbound(at(std::chrono::seconds(s)), client, dst));
    const auto st = n.table_stats();
    max_slots = std::max(max_slots, st.slots);
    max_timers = std::max(max_timers, st.timers);
  }
  EXPECT_EQ(n.counters().mappings_created, 86400u);
  EXPECT_LE(max_slots, 31u);
  EXPECT_LE(max_timers, 31u);
  EXPECT_LE(n.mapping_count(), 30u);
}

TEST(nat_scale, unsolicited_flood_keeps_null_bindings_bounded) {
  nat n(nudge::netsim::linux_snat(public_ip), 1);
  std::size_t max_null = 0;
  for (int s = 0; s < 20000; ++s) {  // 10 per second from ever-new sources, 2000 s
    auto src = ip_endpoint::v4(198, 51, 100, static_cast<std::uint8_t>(s % 200), static_cast<std::uint16_t>(1024 + s));
    EXPECT_FALSE(n.inbound(at(std::chrono::milliseconds(100 * s)), src, pub(40000)));
    max_null = std::max(max_null, n.table_stats().null_bindings);
  }
  EXPECT_EQ(n.counters().null_bindings_created, 20000u);
  EXPECT_LE(max_null, 2u * 300u + 64u);  // 300 live (30 s x 10/s), swept when it doubles
}

// ---- the kernel, as observed in nat.md, via linux_snat --------------------------------

class linux_snat_test : public testing::Test {
 protected:
  nat n{nudge::netsim::linux_snat(public_ip), 0x5eed};
};

TEST_F(linux_snat_test, a_push_to_the_private_address_is_not_delivered) {
  EXPECT_FALSE(n.inbound(at(0s), server, client));                 // a1
  ASSERT_EQ(n.outbound(at(1s), client, server), pub(40000));      // a2: registered first
  EXPECT_FALSE(n.inbound(at(1s), server, client));
  EXPECT_EQ(n.counters().inbound_not_public, 2u);
}

TEST_F(linux_snat_test, b_unsolicited_push_first_changes_the_mapped_port) {
  // b1: socket open, nothing sent; push to the public address is lost and leaves a null binding.
  EXPECT_FALSE(n.inbound(at(0s), server, pub(40000)));
  EXPECT_EQ(n.counters().null_bindings_created, 1u);
  // b2: the REGISTER to that same server cannot keep 40000; it gets a random port that works.
  auto mapped = n.outbound(at(1s), client, server);
  ASSERT_TRUE(mapped);
  EXPECT_NE(mapped->port, 40000);
  EXPECT_GE(mapped->port, 1024);
  EXPECT_EQ(n.counters().port_collisions, 1u);
  EXPECT_EQ(n.inbound(at(1s), server, *mapped), client);
  // b3: flush conntrack, register again: the port is preserved.
  n.flush();
  EXPECT_EQ(n.outbound(at(2s), client, server), pub(40000));
  EXPECT_EQ(n.inbound(at(2s), server, pub(40000)), client);
}

TEST_F(linux_snat_test, b_null_binding_only_blocks_that_remote_and_dies_after_30s) {
  EXPECT_FALSE(n.inbound(at(0s), server, pub(40000)));
  EXPECT_EQ(n.outbound(at(1s), client, other_host), pub(40000));  // another remote: no clash
  nat fresh{nudge::netsim::linux_snat(public_ip), 1};
  EXPECT_FALSE(fresh.inbound(at(0s), server, pub(40000)));
  EXPECT_EQ(fresh.outbound(at(30s), client, server), pub(40000));  // the null binding expired
}

TEST_F(linux_snat_test, c_pinhole_expiry_keepalive_and_inbound_refresh_with_5s_timers) {
  nat_config c = nudge::netsim::linux_snat(public_ip);
  c.udp_mapping_timeout = c.udp_timeout_established = 5s;  // sysctl in rtr
  {  // c1: register, push at +1 s ok, silent, push at +8 s lost
    nat k(c, 1);
    auto mapped = k.outbound(at(0s), client, server);
    EXPECT_EQ(k.inbound(at(1s), server, *mapped), client);
    EXPECT_FALSE(k.inbound(at(8s), server, *mapped));
  }
  {  // c2: client keepalive every 3 s: push at +12 s delivered
    nat k(c, 1);
    auto mapped = k.outbound(at(0s), client, server);
    for (auto t = 3s; t <= 12s; t += 3s) k.outbound(at(t), client, server);
    EXPECT_EQ(k.inbound(at(12s) + 12ms, server, *mapped), client);
  }
  {  // c3: no client traffic, server pushes every ~3 s: inbound refreshes the pinhole
    nat k(c, 1);
    auto mapped = k.outbound(at(0s), client, server);
    for (int i = 1; i <= 4; ++i) EXPECT_EQ(k.inbound(at(500ms + i * 2900ms), server, *mapped), client);
    EXPECT_EQ(k.counters().inbound_admitted, 4u);
  }
}

TEST_F(linux_snat_test, c_default_timers_30s_unreplied_120s_once_established) {
  // REGISTER, one reply within 2 s, then silence: only the 30 s timer.
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_EQ(mapped, pub(40000));
  EXPECT_EQ(n.inbound(at(300ms), server, *mapped), client);
  EXPECT_EQ(n.next_deadline(), at(30s));  // early (the entry from the REGISTER); waking then is harmless
  EXPECT_EQ(n.expire(at(30s)), 0u);
  EXPECT_EQ(n.next_deadline(), at(30s + 300ms));
  EXPECT_FALSE(n.inbound(at(31s), server, *mapped));

  // Keepalive at 2.6 s after a reply was seen: 120 s ("stream", ASSURED).
  nat k{nudge::netsim::linux_snat(public_ip), 1};
  mapped = k.outbound(at(0s), client, server);
  EXPECT_EQ(k.inbound(at(300ms), server, *mapped), client);
  k.outbound(at(2600ms), client, server);
  EXPECT_EQ(k.inbound(at(100s), server, *mapped), client);
  EXPECT_EQ(k.inbound(at(219s), server, *mapped), client);  // the push at 100 s refreshed it to 220 s
  EXPECT_FALSE(k.inbound(at(219s) + 121s, server, *mapped));

  // Keepalives alone (nothing answers) never become established: 30 s.
  nat u{nudge::netsim::linux_snat(public_ip), 1};
  mapped = u.outbound(at(0s), client, server);
  u.outbound(at(10s), client, server);
  EXPECT_FALSE(u.inbound(at(40s), server, *mapped));
}

TEST_F(linux_snat_test, d_filtering_is_address_and_port_dependent) {
  auto mapped = n.outbound(at(0s), client, server);
  ASSERT_EQ(mapped, pub(40000));
  EXPECT_EQ(n.inbound(at(500ms), server, *mapped), client);
  EXPECT_FALSE(n.inbound(at(600ms), server_other_port, *mapped));
  EXPECT_FALSE(n.inbound(at(700ms), other_host, *mapped));
  EXPECT_FALSE(n.inbound(at(800ms), other_host_other_port, *mapped));
  EXPECT_EQ(n.counters().inbound_filtered, 3u);
  EXPECT_EQ(n.counters().null_bindings_created, 3u);  // each left an UNREPLIED entry
}

TEST_F(linux_snat_test, e_mapping_is_endpoint_independent_with_port_preservation) {
  // e1: one socket to four server endpoints: one public port, preserved.
  for (const auto& dst : {server, server_other_port, other_host, other_host_other_port})
    EXPECT_EQ(n.outbound(at(0s), client, dst), pub(40000));
  EXPECT_EQ(n.mapping_count(), 1u);
  // e2: second host, same port, same server: a random port in 1024-65535.
  auto b = n.outbound(at(1s), client_b, server);
  ASSERT_TRUE(b);
  EXPECT_NE(b->port, 40000);
  EXPECT_GE(b->port, 1024);
  // e3: after the clash the host keeps its new port for other destinations.
  EXPECT_EQ(n.outbound(at(1s), client_b, other_host), b);
  // e4: a privileged port is preserved as well.
  EXPECT_EQ(n.outbound(at(2s), ip_endpoint::v4(10, 0, 0, 2, 500), server), pub(500));
  // No hairpinning.
  EXPECT_FALSE(n.inbound(at(3s), *b, pub(40000)));
  EXPECT_EQ(n.counters().inbound_hairpin_dropped, 1u);
}

TEST_F(linux_snat_test, f_tcp_registration_alone_opens_no_udp_pinhole) {
  // The registration went over TCP (not modelled); the client never sent UDP from 40000.
  EXPECT_FALSE(n.inbound(at(0s), server, client));     // to the registered (private) address
  EXPECT_FALSE(n.inbound(at(0s), server, pub(40000)));  // to the TCP peer's public IP + registered port
  EXPECT_EQ(n.counters().inbound_admitted, 0u);
}

}  // namespace
