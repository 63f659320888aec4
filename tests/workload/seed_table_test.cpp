// The seed article's table, checked: scenarios/seed-article.toml run in virtual
// time gives the unnecessary bytes and TSDUs per client-hour that the
// closed-form Poisson model (tools/model) predicts, within 1 %. The model's
// message sizes come from the encoders and the wire model (poll_sizes.hpp),
// checked against a hand derivation, never from the simulation.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "nudge/model/poll_sizes.hpp"
#include "nudge/model/seed_model.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;

namespace {

const std::filesystem::path scenarios = std::filesystem::path(NUDGE_SOURCE_DIR) / "scenarios";

run_plan load(const char* name, const std::vector<std::string>& overrides = {}) {
  auto r = load_scenario(scenarios / name);
  if (auto* e = std::get_if<scenario_error>(&r)) {
    ADD_FAILURE() << e->what();
    return {};
  }
  run_plan p = std::get<run_plan>(r);
  if (auto e = apply_overrides(p, overrides)) ADD_FAILURE() << e->what();
  return p;
}

#ifdef NDEBUG
const std::vector<std::string> debug_size{};  // the full 10,000 clients
#else
// A Debug build runs 2,000 of the 10,000 clients: per client-hour figures do not depend on the count.
const std::vector<std::string> debug_size{"run.clients=2000"};
#endif

double per_client_hour(std::uint64_t v, const mode_result& m, duration measured) {
  return static_cast<double>(v) / (static_cast<double>(m.clients) * to_seconds(measured) / 3600.0);
}

model::seed_inputs model_inputs(const run_plan& p) {
  model::seed_inputs in;
  in.users = static_cast<double>(p.clients);
  in.day_hours = p.event_process.active_hours_per_day();
  in.events_per_day = p.events_per_client_hour * in.day_hours;
  in.poll_interval_s = to_seconds(p.poll_interval);
  return model::with_empty_poll_sizes(in, p.wire);
}

}  // namespace

TEST(seed_table, simulation_matches_the_poisson_model_within_one_percent) {
  const run_plan p = load("seed-article.toml", debug_size);
  ASSERT_EQ(p.wire.abstract_message_bytes, 100u);
  const auto start = std::chrono::steady_clock::now();
  const run_result r = run_virtual(p);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& poll = r.modes[static_cast<std::size_t>(client_mode::poll)];
  ASSERT_EQ(poll.clients, p.clients);
  EXPECT_EQ(poll.metrics.clients_failed, 0u);
  EXPECT_EQ(poll.events_missed(), 0u);  // the drain lets the last poll fetch the last events

  const auto expected = model::estimate(model_inputs(p));
  EXPECT_DOUBLE_EQ(expected.events_per_client_hour, 6.25);
  const double bytes = per_client_hour(poll.metrics.wasted_poll_traffic.wire_bytes, poll, r.measured);
  const double packets = per_client_hour(poll.metrics.wasted_poll_traffic.packets, poll, r.measured);
  EXPECT_NEAR(bytes / expected.poisson.bytes_per_client_hour, 1.0, 0.01)
      << "simulated " << bytes << " B/client-hour, Poisson model " << expected.poisson.bytes_per_client_hour;
  EXPECT_NEAR(packets / expected.poisson.tsdus_per_client_hour, 1.0, 0.01)
      << "simulated " << packets << " TSDUs/client-hour, Poisson model " << expected.poisson.tsdus_per_client_hour;
  // Each unnecessary poll is a 100-byte request and a 100-byte response, one TSDU each.
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.wire_bytes, 200 * poll.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls));
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.packets, 2 * poll.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls));
  // Events: 6.25 per client-hour, Poisson.
  const double events = per_client_hour(poll.events_generated, poll, r.measured);
  EXPECT_NEAR(events / 6.25, 1.0, 0.02);
  RecordProperty("clients", static_cast<int>(p.clients));
  RecordProperty("wall_ms", static_cast<int>(wall * 1000));
  RecordProperty("unnecessary_bytes_per_client_hour", std::to_string(bytes));
  RecordProperty("unnecessary_packets_per_client_hour", std::to_string(packets));
}

// One empty poll, derived by hand from MS-RPCE and MS-OXCRPC's NDR layouts:
//  request  24 (DCE/RPC request header) + pcxh 20 + pulFlags 4 + rgbIn (max count 4,
//           RPC_HEADER_EXT 8 + RopSize 2, pad 2) 16 + cbIn 4 + pcbOut 4 + rgbAuxIn
//           (max count 4) + cbAuxIn 4 + pcbAuxOut 4 = 84 bytes;
//  response 24 + pcxh 20 + pulFlags 4 + rgbOut (max count, offset, actual count 12,
//           10 bytes, pad 2) 24 + pcbOut 4 + rgbAuxOut (12) + pcbAuxOut 4
//           + pulTransTime 4 + return code 4 = 100 bytes;
// each in one TCP segment behind 20 bytes of IPv4 and 20 of TCP header (12 more
// with Linux's timestamps); the abstract profile counts 100 bytes in one TSDU.
TEST(seed_table, empty_poll_sizes_come_from_the_encoders) {
  metrics::wire_model faithful;
  auto s = model::empty_poll_on_the_wire(faithful);
  EXPECT_EQ(s.request_pdu, 84u);
  EXPECT_EQ(s.response_pdu, 100u);
  EXPECT_EQ(s.request, (metrics::traffic_cell{1, 84, 84 + 40, 1}));
  EXPECT_EQ(s.response, (metrics::traffic_cell{1, 100, 100 + 40, 1}));
  faithful.tcp_options = 12;
  s = model::empty_poll_on_the_wire(faithful);
  EXPECT_EQ(s.request.wire_bytes, 84u + 52u);
  EXPECT_EQ(s.response.wire_bytes, 100u + 52u);
  metrics::wire_model abstract;
  abstract.abstract_message_bytes = 100;
  s = model::empty_poll_on_the_wire(abstract);
  EXPECT_EQ(s.request, (metrics::traffic_cell{1, 100, 100, 1}));
  EXPECT_EQ(s.response, (metrics::traffic_cell{1, 100, 100, 1}));
}

TEST(seed_table, faithful_closed_form_is_the_hand_arithmetic_and_near_the_simulation) {
  const run_plan p = load("seed-article-faithful.toml", {"run.clients=1000"});
  ASSERT_FALSE(p.wire.is_abstract());
  const auto in = model_inputs(p);
  EXPECT_EQ(in.request_bytes, 124.0);
  EXPECT_EQ(in.response_bytes, 140.0);
  const auto expected = model::estimate(in);
  // By hand: 6.25 events per client-hour, a poll every 60 s, so exp(-6.25/60) of
  // 60 polls an hour find nothing, each 124 + 140 bytes in 1 + 1 packets.
  const double empty_polls = 60 * std::exp(-6.25 / 60);
  EXPECT_NEAR(expected.poisson.bytes_per_client_hour, empty_polls * (124 + 140), 1e-9);  // ~14,273
  EXPECT_NEAR(expected.poisson.tsdus_per_client_hour, empty_polls * 2, 1e-12);
  EXPECT_NEAR(expected.poisson.bytes_per_client_hour, 14273, 0.5);

  const run_result r = run_virtual(p);
  const auto& poll = r.modes[static_cast<std::size_t>(client_mode::poll)];
  ASSERT_GT(poll.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls), 0u);
  // Every empty poll the simulation counted costs what the encoders say.
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.wire_bytes, 264 * poll.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls));
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.packets, 2 * poll.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls));
  const double bytes = per_client_hour(poll.metrics.wasted_poll_traffic.wire_bytes, poll, r.measured);
  EXPECT_NEAR(bytes / expected.poisson.bytes_per_client_hour, 1.0, 0.01)
      << "simulated " << bytes << " B/client-hour, closed form " << expected.poisson.bytes_per_client_hour;
}

TEST(seed_table, push_and_async_remove_the_unnecessary_polls) {
  run_plan p = load("seed-article-push.toml", debug_size);
  if (auto e = apply_override(p, "run.clients=1000")) FAIL() << e->what();
  const run_result r = run_virtual(p);
  const auto& push = r.modes[static_cast<std::size_t>(client_mode::push)];
  const auto& async = r.modes[static_cast<std::size_t>(client_mode::async)];
  EXPECT_EQ(push.events_missed(), 0u);
  EXPECT_EQ(async.events_missed(), 0u);
  EXPECT_EQ(async.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls), 0u);
  // Push clients poll only until their first ping (about 10 minutes at 6.25 an hour).
  const double push_bytes = per_client_hour(push.metrics.wasted_poll_traffic.wire_bytes, push, r.measured);
  EXPECT_LT(push_bytes, 0.05 * model::estimate(model_inputs(p)).poisson.bytes_per_client_hour);
  EXPECT_GT(push.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls), 0u);
}

TEST(seed_table, bursty_mail_in_business_hours_in_the_driver) {
  // 24 hours from midnight; mail only 09:00-17:00, in bursts. The mean holds,
  // the night is silent, and the run is reproducible from its seed.
  run_plan p;
  p.clients = 300;
  p.mix = {0, 0, 1};  // async: every event is fetched at once
  p.length = 24h;
  p.drain = 1min;
  p.events_per_client_hour = 10;
  p.event_process.kind = event_process_kind::mmpp;
  p.event_process.hours.enabled = true;
  p.event_process.hours.run_starts_at = 0h;
  ASSERT_EQ(p.validate(), "");
  const run_result r = run_virtual(p);
  const auto& async = r.modes[static_cast<std::size_t>(client_mode::async)];
  EXPECT_NEAR(static_cast<double>(async.events_generated) / (300 * 8 * 10.0), 1.0, 0.1);
  EXPECT_EQ(async.events_missed(), 0u);
  auto a = to_json(r), b = to_json(run_virtual(p));
  a.erase("wall_s");
  b.erase("wall_s");
  EXPECT_EQ(a.dump(), b.dump());
  // Nothing happens at night: 17:00 to 24:00 of a run that ends at 17:00 adds no events.
  run_plan until_five = p;
  until_five.length = 17h;
  const run_result day = run_virtual(until_five);
  EXPECT_EQ(day.modes[2].events_generated, async.events_generated);
}
