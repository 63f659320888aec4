// The bus's cores against each other in test-controlled time (bus_harness.hpp):
// registration, interval adoption, piggybacked delivery and its latency, the
// seed's way back to Register, the three rate policies, and hostile input.
#include <gtest/gtest.h>

#include <string>

#include "bus_harness.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace nudge::pollbus {
namespace {

using namespace std::chrono_literals;
using testing::bus_harness;

time_point at(duration d) { return time_point{} + d; }
std::uint64_t count(const metrics::client_metrics& m, counter c) { return m.counter(c); }

TEST(pollbus_cores, a_client_registers_then_polls_at_the_interval_it_is_told) {
  server_config cfg;
  cfg.slow_interval = 30s;  // the client starts at 15 s and must adopt 30 s
  bus_harness h(cfg);
  auto& c = h.add_client("alice");
  h.run_for(1s);
  EXPECT_EQ(c.mode(), poll_mode::poll);
  EXPECT_EQ(c.interval(), 30s);
  EXPECT_EQ(h.server().agent_count(), 1u);
  const auto& m = h.metrics(0);
  EXPECT_EQ(count(m, counter::registrations), 1u);
  EXPECT_EQ(count(m, counter::interval_changes), 1u);
  EXPECT_EQ(m.clients_ready, 1u);
  h.run_until(at(10min + 1s));
  // One registration at 0, then a poll every 30 s after each answer (a few ms of round trips each).
  EXPECT_EQ(count(m, counter::polls), 1u + 20u);
  EXPECT_EQ(count(m, counter::wasted_polls), 20u);
  EXPECT_EQ(count(m, counter::connections), 1u);  // keep-alive
  // .NET's Expect: 100-continue: one interim response per POST.
  EXPECT_EQ(m.traffic.cell(message_kind::continue_, metrics::direction::to_client).messages, 21u);
  EXPECT_EQ(m.traffic.cell(message_kind::poll, metrics::direction::to_server).messages, 2u * 20u);  // head, body
}

TEST(pollbus_cores, an_event_rides_on_the_next_poll_stamped_with_its_creation_time) {
  bus_harness h;
  auto& c = h.add_client("bob");
  h.add_client("carol");
  h.run_until(at(100s));
  const time_point injected = h.now();
  EXPECT_GT(h.server().inject_event(injected, "bob"), 0u);
  const auto& m = h.metrics(0);
  while (count(m, counter::received_chat) == 0 && h.now() < at(200s)) h.run_for(1ms);
  ASSERT_EQ(count(m, counter::received_chat), 1u);
  const duration waited = h.now() - injected;
  EXPECT_GT(waited, 0s);
  EXPECT_LE(waited, c.interval() + 10ms);
  ASSERT_EQ(m.latency.count(), 1u);
  // The histogram's bucket holds the latency measured from the TimeStamp.
  EXPECT_GE(m.latency.quantile(1.0), waited - 1ms);
  EXPECT_LE(m.latency.quantile(0.0), waited + waited / 20);
  EXPECT_EQ(m.events_by_path[0], 1u);
  EXPECT_EQ(count(h.metrics(1), counter::received_chat), 0u);  // not carol's
}

TEST(pollbus_cores, an_unknown_agent_is_told_to_register) {
  bus_harness h;
  const auto peer = h.open_peer();
  message poll;
  poll.type = message_type::empty;
  poll.agent_id = agent_id_of("nobody");
  request_options o;
  o.expect_continue = false;
  h.peer_send(peer, std::string(reinterpret_cast<const char*>(http::serialize(poll_request(poll, encoding::soap, o)).data()),
                                http::serialize(poll_request(poll, encoding::soap, o)).size()));
  h.run_for(1s);
  const std::string& got = h.peer_received(peer);
  ASSERT_NE(got.find("200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("PollModeMessage"), std::string::npos) << got;
  EXPECT_NE(got.find("Register"), std::string::npos) << got;
  EXPECT_FALSE(h.peer_closed(peer));
}

TEST(pollbus_cores, a_restarted_server_makes_its_clients_register_again) {
  bus_harness h;
  h.add_client("dave");
  h.run_until(at(40s));
  const auto& m = h.metrics(0);
  EXPECT_EQ(count(m, counter::registrations), 1u);
  h.restart_server({});
  EXPECT_EQ(h.server().agent_count(), 0u);
  h.run_until(at(100s));
  EXPECT_EQ(count(m, counter::registrations), 2u);
  EXPECT_EQ(count(m, counter::re_registrations), 1u);
  EXPECT_EQ(h.server().agent_count(), 1u);
  EXPECT_EQ(h.client(0).mode(), poll_mode::poll);
  // The event still arrives through the new server.
  h.server().inject_event(h.now(), "dave");
  h.run_for(20s);
  EXPECT_EQ(count(m, counter::received_chat), 1u);
}

TEST(pollbus_cores, without_keep_alive_every_poll_opens_its_own_connection) {
  bus_harness h;
  client_config cfg;
  cfg.keep_alive = false;
  h.add_client("erin", client_mode::poll, cfg);
  h.run_until(at(5min));
  const auto& m = h.metrics(0);
  EXPECT_EQ(count(m, counter::connections), count(m, counter::polls));
  EXPECT_GE(count(m, counter::polls), 20u);
  EXPECT_EQ(h.server().open_connections(), 0u);
  // Handshake + teardown: SYN, ACK, FIN, last ACK to the server; SYN-ACK, FIN to the client.
  EXPECT_EQ(m.traffic.cell(message_kind::tcp_setup, metrics::direction::to_server).packets, 4 * count(m, counter::polls));
  EXPECT_EQ(m.traffic.cell(message_kind::tcp_setup, metrics::direction::to_client).packets, 2 * count(m, counter::polls));
}

TEST(pollbus_cores, json_clients_register_and_receive_events_too) {
  bus_harness h;
  client_config cfg;
  cfg.enc = encoding::json;
  cfg.expect_continue = false;
  h.add_client("frank", client_mode::fixed, cfg);
  h.run_until(at(20s));
  h.server().inject_event(h.now(), "frank");
  h.run_until(at(60s));
  const auto& m = h.metrics(0);
  EXPECT_EQ(m.clients_ready, 1u);
  EXPECT_EQ(count(m, counter::received_chat), 1u);
  EXPECT_EQ(m.traffic.cell(message_kind::continue_, metrics::direction::to_client).messages, 0u);
}

TEST(pollbus_cores, the_activity_policy_speeds_up_after_traffic_and_slows_down_when_quiet) {
  server_config cfg;
  cfg.fast_interval = 2s;
  cfg.slow_interval = 15s;
  cfg.quiet_period = 60s;
  bus_harness h(cfg);
  auto& c = h.add_client("grace", client_mode::activity);
  h.run_until(at(50s));
  EXPECT_EQ(c.interval(), 15s);
  h.server().inject_event(h.now(), "grace");
  h.run_until(at(70s));
  EXPECT_EQ(c.interval(), 2s);  // the delivery counted as traffic
  h.run_until(at(120s));
  EXPECT_EQ(c.interval(), 2s);  // still within the quiet period
  h.run_until(at(140s));
  EXPECT_EQ(c.interval(), 15s);
  // The fixed service beside it never changes its mind.
  bus_harness f(cfg);
  auto& d = f.add_client("grace", client_mode::fixed);
  f.run_until(at(50s));
  f.server().inject_event(f.now(), "grace");
  f.run_until(at(70s));
  EXPECT_EQ(d.interval(), 15s);
}

// The server's polls per second over [from, to): the polls counted by its stats.
double server_polls_per_second(bus_harness& h, time_point from, time_point to) {
  auto polls = [&] {
    for (const auto& [name, value] : h.server().stats())
      if (name == "polls") return value;
    return std::uint64_t{0};
  };
  h.run_until(from);
  const auto before = polls();
  h.run_until(to);
  return static_cast<double>(polls() - before) / to_seconds(to - from);
}

TEST(pollbus_cores, the_load_policy_keeps_the_servers_polls_per_second_within_its_budget) {
  server_config cfg;
  cfg.load_budget = 4.0;
  cfg.slow_interval = 15s;
  constexpr std::size_t clients = 120;  // at 15 s: 8 polls per second, twice the budget
  bus_harness load(cfg);
  bus_harness fixed(cfg);
  for (std::size_t i = 0; i < clients; ++i) {
    const auto start = at(std::chrono::milliseconds(i * 100));
    load.add_client("user" + std::to_string(i), client_mode::load, {}, start);
    fixed.add_client("user" + std::to_string(i), client_mode::fixed, {}, start);
  }
  const double with_load = server_polls_per_second(load, at(5min), at(15min));
  const double without = server_polls_per_second(fixed, at(5min), at(15min));
  EXPECT_GT(without, 7.5);  // what the budget is there to prevent
  EXPECT_LE(with_load, cfg.load_budget * 1.01);
  EXPECT_GT(with_load, cfg.load_budget * 0.8);  // lengthened, not stopped
  EXPECT_EQ(load.server().load_interval(), 30s);
  for (std::size_t i = 0; i < clients; ++i) EXPECT_EQ(load.client(i).interval(), 30s) << i;
}

// Activity agents beside load agents swing the server's expected rate as they
// speed up and slow down; load agents should not be told a new interval for each swing.
std::uint64_t load_interval_messages(duration hold) {
  server_config cfg;
  cfg.load_budget = 4.0;
  cfg.slow_interval = 15s;
  cfg.fast_interval = 2s;
  cfg.quiet_period = 20s;
  cfg.load_hold = hold;
  bus_harness h(cfg);
  constexpr std::size_t load_clients = 60, activity_clients = 6;
  for (std::size_t i = 0; i < load_clients; ++i)
    h.add_client("load" + std::to_string(i), client_mode::load, {}, at(std::chrono::milliseconds(i * 100)));
  for (std::size_t i = 0; i < activity_clients; ++i)
    h.add_client("busy" + std::to_string(i), client_mode::activity, {}, at(std::chrono::milliseconds(i * 150)));
  for (int minute = 1; minute <= 30; ++minute) {
    h.run_until(at(std::chrono::minutes(minute)));
    // One busy agent at a time gets mail: the expected rate of the others goes up and down.
    h.server().inject_event(h.now(), "busy" + std::to_string(minute % activity_clients));
  }
  std::uint64_t told = 0;
  for (std::size_t i = 0; i < load_clients; ++i) told += count(h.metrics(i), counter::received_poll_interval);
  return told;
}

TEST(pollbus_cores, the_load_policy_does_not_retell_an_interval_for_every_swing_of_the_others) {
  const auto every_swing = load_interval_messages(duration::zero());
  const auto with_hold = load_interval_messages(2min);
  RecordProperty("interval_messages_every_swing", std::to_string(every_swing));
  RecordProperty("interval_messages_with_hold", std::to_string(with_hold));
  EXPECT_GT(every_swing, 4 * with_hold) << every_swing << " vs " << with_hold;
  EXPECT_LE(with_hold, 60u * 4);  // registration plus a few lengthenings each
}

TEST(pollbus_cores, hostile_requests_get_a_4xx_and_a_close_while_other_agents_are_served) {
  bus_harness h;
  h.add_client("heidi");
  h.run_until(at(20s));
  const auto garbage = h.open_peer();
  h.peer_send(garbage, std::string("\x01\x02 not http at all\r\n\r\n", 22));
  const auto huge = h.open_peer();
  h.peer_send(huge, "POST /Bus.asmx HTTP/1.1\r\nHost: x\r\nX-Junk: " + std::string(20000, 'a') + "\r\n\r\n");
  const auto bad_xml = h.open_peer();
  const std::string body = "<soap:Envelope><unclosed>";
  h.peer_send(bad_xml, "POST /Bus.asmx HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
  const auto wrong_path = h.open_peer();
  h.peer_send(wrong_path, "GET /Other.asmx HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto wsdl = h.open_peer();
  h.peer_send(wsdl, "GET /Bus.asmx?WSDL HTTP/1.1\r\nHost: x\r\n\r\n");
  h.server().inject_event(h.now(), "heidi");
  h.run_until(at(60s));
  auto status_of = [&](engine::connection_id c) { return h.peer_received(c).substr(0, 12); };
  EXPECT_EQ(status_of(garbage), "HTTP/1.1 400");
  EXPECT_TRUE(h.peer_closed(garbage));
  EXPECT_EQ(status_of(huge).substr(0, 10), "HTTP/1.1 4");
  EXPECT_TRUE(h.peer_closed(huge));
  EXPECT_EQ(status_of(bad_xml).substr(0, 10), "HTTP/1.1 5");  // ASMX: 500 with a soap:Client fault
  EXPECT_NE(h.peer_received(bad_xml).find("soap:Client"), std::string::npos);
  EXPECT_EQ(status_of(wrong_path), "HTTP/1.1 404");
  EXPECT_EQ(status_of(wsdl), "HTTP/1.1 200");
  EXPECT_NE(h.peer_received(wsdl).find("definitions"), std::string::npos);
  // heidi never noticed.
  EXPECT_EQ(count(h.metrics(0), counter::received_chat), 1u);
  EXPECT_EQ(count(h.metrics(0), counter::protocol_errors), 0u);
}

TEST(pollbus_cores, each_service_path_serves_a_wsdl_whose_address_is_that_path) {
  bus_harness h;
  const auto fixed = h.open_peer();
  h.peer_send(fixed, "GET /fixed/Bus.asmx?WSDL HTTP/1.1\r\nHost: bus.test\r\n\r\n");
  const auto plain = h.open_peer();
  h.peer_send(plain, "GET /Bus.asmx?wsdl HTTP/1.1\r\nHost: bus.test\r\n\r\n");
  h.run_until(at(1s));
  EXPECT_NE(h.peer_received(fixed).find("location=\"http://bus.test/fixed/Bus.asmx\""), std::string::npos)
      << h.peer_received(fixed);
  EXPECT_NE(h.peer_received(plain).find("location=\"http://bus.test/Bus.asmx\""), std::string::npos);
}

TEST(pollbus_cores, a_client_counts_what_it_sends_as_the_encoders_size_it) {
  bus_harness h;
  client_config cfg;
  cfg.expect_continue = false;
  h.add_client("ivan", client_mode::poll, cfg);
  h.run_until(at(31s));  // register, then polls at 15 s and 30 s
  const auto& m = h.metrics(0);
  ASSERT_EQ(count(m, counter::polls), 3u);
  message empty;
  empty.agent_id = agent_id_of("ivan");
  empty.timestamp_ms = 63386877615000;
  request_options o;
  o.host = "bus.example";
  o.expect_continue = false;
  const auto request = http::serialize(poll_request(empty, encoding::soap, o)).size();
  const auto response = http::serialize(poll_response({}, encoding::soap)).size();
  EXPECT_EQ(m.traffic.cell(message_kind::poll, metrics::direction::to_server).payload_bytes, 2 * request);
  EXPECT_EQ(m.traffic.cell(message_kind::poll, metrics::direction::to_client).payload_bytes, 2 * response);
}

}  // namespace
}  // namespace nudge::pollbus
