// The ActiveSync cores in test-controlled time (as_harness.hpp): the server
// holds Pings until a change or the heartbeat, answers the statuses of
// [MS-ASCMD] for bad parameters, and the client's heartbeat policies react to
// survived and lost heartbeats.
#include <gtest/gtest.h>

#include <string>

#include "as_harness.hpp"
#include "nudge/activesync/messages.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"

using namespace nudge;
using namespace nudge::activesync;
using namespace std::chrono_literals;
using testing_harness = nudge::activesync::testing::as_harness;

namespace {

time_point at(duration d) { return time_point{} + d; }

device_identity phone(std::string user = "alice") {
  device_identity d;
  d.host = "mail.example.com";
  d.user = std::move(user);
  d.device_id = device_id_of(d.user);
  return d;
}

std::string request_text(std::string_view cmd, const byte_buffer& body, const device_identity& d = phone()) {
  const auto bytes = http::serialize(command_request(cmd, d, body));
  return std::string(bytes.begin(), bytes.end());
}

/// Every whole HTTP response in `wire`.
std::vector<http::response> responses(const std::string& wire) {
  http::response_reader r;
  r.feed(protocol::as_bytes(wire));
  std::vector<http::response> out;
  for (auto d = r.next(); d.complete(); d = r.next()) out.push_back(d.value);
  return out;
}

ping_response ping_answer(const http::response& r) {
  auto p = decode_ping_response(protocol::as_bytes(r.body));
  EXPECT_TRUE(p.complete()) << p.reason;
  return p.value;
}

ping_request ping_of(std::uint32_t hb, std::string folder = "5") {
  ping_request p;
  p.heartbeat_s = hb;
  p.has_folders = true;
  p.folders.push_back({std::move(folder), "Email"});
  return p;
}

std::uint64_t stat(const server_core& s, std::string_view name) {
  for (const auto& [n, v] : s.stats())
    if (n == name) return v;
  ADD_FAILURE() << "no stat " << name;
  return 0;
}

}  // namespace

TEST(activesync_server, holds_a_ping_until_the_heartbeat_then_answers_status_1) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(480))));
  h.run_for(479s);
  EXPECT_TRUE(h.peer_received(c).empty()) << "held for the heartbeat";
  h.run_for(2s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].headers.find("Content-Type").value_or(""), wbxml_content_type);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::expired);
  EXPECT_EQ(rs[0].body.size(), 13u);
}

TEST(activesync_server, a_change_answers_a_held_ping_with_status_2_and_sync_fetches_the_header) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(480))));
  h.run_for(30s);
  h.inject("alice");
  h.run_for(1s);
  auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 1u);
  const ping_response p = ping_answer(rs[0]);
  EXPECT_EQ(p.status, ping_status::changes);
  EXPECT_EQ(p.folders, std::vector<std::string>{"5"});
  EXPECT_EQ(rs[0].body.size(), 20u);

  h.peer_send(c, request_text("Sync", encode(sync_request{"1", "5", 25})));
  h.run_for(1s);
  rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 2u);
  auto s = decode_sync_response(protocol::as_bytes(rs[1].body));
  ASSERT_TRUE(s.complete()) << s.reason;
  ASSERT_EQ(s.value.adds.size(), 1u);
  EXPECT_EQ(time_of_date_received(s.value.adds[0].date_received), at(30s));
  EXPECT_EQ(stat(h.server(), "events_fetched"), 1u);
}

TEST(activesync_server, another_users_change_leaves_the_ping_held) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(300))));
  h.run_for(10s);
  h.inject("bob");
  h.run_for(10s);
  EXPECT_TRUE(h.peer_received(c).empty());
}

TEST(activesync_server, a_pending_change_answers_the_next_ping_at_once) {
  testing_harness h;
  h.inject("alice");
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(480))));
  h.run_for(1s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::changes);
}

TEST(activesync_server, heartbeats_outside_the_bounds_get_status_5_with_the_bound) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(30))));
  h.peer_send(c, request_text("Ping", encode(ping_of(4000000000u))));
  h.run_for(1s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::heartbeat_out_of_range);
  EXPECT_EQ(ping_answer(rs[0]).heartbeat_s, 60u);
  EXPECT_EQ(ping_answer(rs[1]).status, ping_status::heartbeat_out_of_range);
  EXPECT_EQ(ping_answer(rs[1]).heartbeat_s, 3540u);
}

TEST(activesync_server, missing_parameters_get_status_3_and_bad_bodies_status_4) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", {}));  // empty: nothing cached yet
  ping_request folder_without_class = ping_of(480);
  folder_without_class.folders[0].folder_class.clear();
  h.peer_send(c, request_text("Ping", encode(folder_without_class)));
  h.peer_send(c, request_text("Ping", encode(ping_request{})));  // <Ping/>
  h.peer_send(c, request_text("Ping", byte_buffer{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48}));  // cut short
  h.peer_send(c, request_text("Ping", byte_buffer{'h', 'e', 'l', 'l', 'o'}));
  h.run_for(1s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 5u);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::missing_parameters);
  EXPECT_EQ(ping_answer(rs[1]).status, ping_status::missing_parameters);
  EXPECT_EQ(ping_answer(rs[2]).status, ping_status::missing_parameters);
  EXPECT_EQ(ping_answer(rs[3]).status, ping_status::syntax_error);
  EXPECT_EQ(ping_answer(rs[4]).status, ping_status::syntax_error);
  EXPECT_FALSE(h.peer_closed(c)) << "protocol errors keep the connection";
}

TEST(activesync_server, too_many_folders_get_status_6_with_max_folders) {
  server_config cfg;
  cfg.max_folders = 2;
  testing_harness h(cfg);
  ping_request p = ping_of(480);
  p.folders.push_back({"6", "Calendar"});
  p.folders.push_back({"7", "Contacts"});
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(p)));
  h.run_for(1s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::too_many_folders);
  EXPECT_EQ(ping_answer(rs[0]).max_folders, 2u);
}

TEST(activesync_server, an_empty_ping_reuses_the_cached_heartbeat_and_folders) {
  testing_harness h;
  const auto c = h.open_peer();
  h.peer_send(c, request_text("Ping", encode(ping_of(120))));
  h.run_for(121s);
  ASSERT_EQ(responses(h.peer_received(c)).size(), 1u);
  h.peer_send(c, request_text("Ping", {}));
  h.run_for(119s);
  EXPECT_EQ(responses(h.peer_received(c)).size(), 1u) << "held for the cached 120 s";
  h.run_for(2s);
  const auto rs = responses(h.peer_received(c));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(ping_answer(rs[1]).status, ping_status::expired);
}

TEST(activesync_server, bad_http_and_bad_queries_get_http_errors_and_others_are_unaffected) {
  testing_harness h;
  const auto good = h.open_peer();
  h.peer_send(good, request_text("Ping", encode(ping_of(60))));
  const auto q = h.open_peer();
  h.peer_send(q, "POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=alice HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\nContent-Length: 0\r\n\r\n");
  const auto p = h.open_peer();
  h.peer_send(p, "POST /elsewhere?Cmd=Ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  const auto junk = h.open_peer();
  h.peer_send(junk, "\x01\x02 not http at all\r\n\r\n");
  const auto cmd = h.open_peer();
  h.peer_send(cmd, request_text("FolderDelete", {}));
  const auto percent = h.open_peer();
  h.peer_send(percent, "POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=%zz&DeviceId=a&DeviceType=b HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\nContent-Length: 0\r\n\r\n");
  h.run_for(1s);
  EXPECT_EQ(responses(h.peer_received(q)).at(0).status, 400);
  EXPECT_EQ(responses(h.peer_received(p)).at(0).status, 404);
  EXPECT_EQ(responses(h.peer_received(cmd)).at(0).status, 400);
  EXPECT_EQ(responses(h.peer_received(percent)).at(0).status, 400);
  EXPECT_EQ(h.peer_received(junk).substr(0, 12), "HTTP/1.1 400");
  EXPECT_TRUE(h.peer_closed(junk));
  h.run_for(60s);
  const auto rs = responses(h.peer_received(good));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(ping_answer(rs[0]).status, ping_status::expired);
}

// ---- the client ---------------------------------------------------------------

TEST(activesync_client, pings_syncs_on_status_2_and_measures_the_latency) {
  testing_harness h;
  h.add_client("alice");
  h.run_for(100s);
  h.inject("alice");
  h.run_for(10s);
  const auto& m = h.metrics(0);
  EXPECT_EQ(m.counter(counter::pings), 2u) << "the first, then one after the Sync";
  EXPECT_EQ(m.counter(counter::pings_changes), 1u);
  EXPECT_EQ(m.counter(counter::syncs), 1u);
  EXPECT_EQ(m.counter(counter::messages), 1u);
  EXPECT_EQ(m.events_fetched(), 1u);
  EXPECT_EQ(m.counter(counter::http_errors), 0u);
  EXPECT_EQ(m.counter(counter::protocol_errors), 0u);
  EXPECT_LT(m.latency.max(), 1s);
  EXPECT_EQ(m.clients_ready, 1u);
}

TEST(activesync_client, a_fixed_heartbeat_pings_again_after_each_status_1) {
  testing_harness h;
  heartbeat_policy fixed;
  fixed.fixed = 480s;
  h.add_client("alice", fixed);
  h.run_for(3 * 480s + 1s);
  const auto& m = h.metrics(0);
  EXPECT_EQ(m.counter(counter::pings_expired), 3u);
  EXPECT_EQ(m.counter(counter::pings), 4u);
  EXPECT_EQ(m.counter(counter::connections), 1u);
  EXPECT_EQ(m.counter(counter::heartbeat_s), 480u);
  EXPECT_EQ(h.client(0).heartbeat(), 480s);
}

TEST(activesync_client, adaptive_grows_after_each_survived_heartbeat_up_to_the_maximum) {
  testing_harness h;
  heartbeat_policy adaptive;
  adaptive.adaptive = true;
  h.add_client("alice", adaptive);
  // 470, 650, 830, 1010, 1010 s.
  h.run_for(470s + 650s + 830s + 1010s + 5s);
  const auto& m = h.metrics(0);
  EXPECT_EQ(m.counter(counter::pings_expired), 4u);
  EXPECT_EQ(m.counter(counter::heartbeat_grows), 3u);
  EXPECT_EQ(h.client(0).heartbeat(), 1010s);
  EXPECT_EQ(m.counter(counter::heartbeat_s), 1010u);
}

TEST(activesync_client, a_silent_loss_is_learned_at_heartbeat_plus_slack_and_adaptive_drops_back) {
  testing_harness h;
  heartbeat_policy adaptive;
  adaptive.adaptive = true;
  h.add_client("alice", adaptive);
  h.run_for(471s);  // 470 s survived: now 650 s
  ASSERT_EQ(h.client(0).heartbeat(), 650s);
  h.blackhole(true);  // the server's answers vanish
  h.run_for(650s + 5s);
  EXPECT_EQ(h.metrics(0).counter(counter::lost_pings), 0u) << "not before heartbeat + slack";
  h.run_for(10s);
  EXPECT_EQ(h.metrics(0).counter(counter::lost_pings), 1u);
  EXPECT_EQ(h.metrics(0).counter(counter::connections), 2u) << "it reconnected";
  EXPECT_EQ(h.client(0).heartbeat(), 470s) << "back to the last good one";
  h.blackhole(false);
  h.run_for(470s + 470s + 5s);
  EXPECT_EQ(h.client(0).heartbeat(), 470s) << "AOSP never grows again after a drop";
  EXPECT_EQ(h.metrics(0).counter(counter::heartbeat_drops), 1u);
}

TEST(activesync_client, adopts_the_servers_bound_on_status_5) {
  server_config cfg;
  cfg.max_heartbeat = 300s;
  testing_harness h(cfg);
  heartbeat_policy fixed;
  fixed.fixed = 480s;
  h.add_client("alice", fixed);
  h.run_for(301s);
  const auto& m = h.metrics(0);
  EXPECT_EQ(m.counter(counter::pings_refused), 1u);
  EXPECT_EQ(m.counter(counter::pings_expired), 1u);
  EXPECT_EQ(h.client(0).heartbeat(), 300s);
}
