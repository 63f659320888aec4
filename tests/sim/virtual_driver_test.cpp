#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;

namespace {
run_plan mixed(std::size_t clients) {
  run_plan p;
  p.clients = clients;
  p.mix = {0.3, 0.4, 0.3};
  p.poll_interval = 5s;
  p.events_per_client_hour = 60;
  p.length = 10min;
  p.drain = 30s;
  p.ramp_up = 10s;
  p.seed = 7;
  return p;
}
const mode_result& of(const run_result& r, client_mode m) { return r.modes[static_cast<std::size_t>(m)]; }
}  // namespace

TEST(virtual_driver, every_event_is_fetched_in_every_mode) {
  auto r = run_virtual(mixed(300));
  for (auto m : {client_mode::poll, client_mode::push, client_mode::async}) {
    const auto& mr = of(r, m);
    EXPECT_GT(mr.events_generated, 100u) << client::to_string(m);
    EXPECT_EQ(mr.events_missed(), 0u) << client::to_string(m);
    EXPECT_EQ(mr.metrics.clients_failed, 0u);
    EXPECT_EQ(mr.metrics.counter(nudge::protocol::emsmdb::counter::protocol_errors), 0u);
  }
  EXPECT_EQ(of(r, client_mode::poll).clients, 90u);
  EXPECT_EQ(of(r, client_mode::push).clients, 120u);
  EXPECT_EQ(of(r, client_mode::async).clients, 90u);
}

TEST(virtual_driver, push_and_async_cost_less_than_polling) {
  auto r = run_virtual(mixed(300));
  const double poll = r.wire_bytes_per_client_hour(client_mode::poll);
  EXPECT_LT(r.wire_bytes_per_client_hour(client_mode::push), poll);
  EXPECT_LT(r.wire_bytes_per_client_hour(client_mode::async), poll);
}

TEST(virtual_driver, polling_median_latency_is_about_half_the_interval) {
  auto p = mixed(200);
  p.mix = {1, 0, 0};
  auto r = run_virtual(p);
  const double median = to_seconds(of(r, client_mode::poll).metrics.latency.quantile(0.5));
  EXPECT_NEAR(median, 2.5, 0.25);
  // Push and async are signalled within a couple of link delays.
  auto q = mixed(200);
  q.mix = {0, 1, 1};
  auto rq = run_virtual(q);
  EXPECT_LT(to_seconds(of(rq, client_mode::async).metrics.latency.quantile(0.99)), 0.05);
}

TEST(virtual_driver, same_plan_and_seed_give_identical_results) {
  auto a = to_json(run_virtual(mixed(100)));
  auto b = to_json(run_virtual(mixed(100)));
  a.erase("wall_s");
  b.erase("wall_s");
  EXPECT_EQ(a.dump(), b.dump());
  auto p = mixed(100);
  p.seed = 8;
  auto c = to_json(run_virtual(p));
  c.erase("wall_s");
  EXPECT_NE(a.dump(), c.dump());
}

TEST(virtual_driver, idle_poll_costs_what_the_wire_model_says) {
  run_plan p;
  p.clients = 10;
  p.mix = {1, 0, 0};
  p.poll_interval = 60s;
  p.events_per_client_hour = 0;
  p.length = 1h;
  p.drain = 0s;
  auto r = run_virtual(p);
  const auto& m = of(r, client_mode::poll).metrics;
  EXPECT_EQ(m.counter(nudge::protocol::emsmdb::counter::polls), 10u * 59);  // polls at 60 s .. 3540 s; the one at 3600 s + link delay falls outside
  const auto& up = m.traffic.cell(protocol::emsmdb::message_kind::poll, metrics::direction::to_server);
  const auto& down = m.traffic.cell(protocol::emsmdb::message_kind::poll, metrics::direction::to_client);
  EXPECT_EQ(up.payload_bytes, 84u * m.counter(nudge::protocol::emsmdb::counter::polls));
  EXPECT_EQ(down.payload_bytes, 100u * m.counter(nudge::protocol::emsmdb::counter::polls));
  // 60 s apart, each response is acknowledged by a pure ACK (no data follows within 200 ms).
  const auto& acks = m.traffic.cell(protocol::emsmdb::message_kind::tcp_ack, metrics::direction::to_server);
  EXPECT_EQ(acks.packets, m.counter(nudge::protocol::emsmdb::counter::polls) + 10);  // plus each connect response's ACK
}

TEST(virtual_driver, a_slow_access_link_delays_delivery_but_not_the_messages) {
  auto p = mixed(50);
  p.mix = {0, 0, 1};  // async: latency is wait response + fetch round trip
  auto fast = run_virtual(p);
  p.link.rate_bps = 8000;  // one byte per millisecond
  auto slow = run_virtual(p);
  const auto& f = of(fast, client_mode::async);
  const auto& s = of(slow, client_mode::async);
  EXPECT_EQ(s.events_missed(), 0u);
  EXPECT_EQ(f.events_generated, s.events_generated);
  EXPECT_EQ(f.metrics.traffic.total().messages, s.metrics.traffic.total().messages);
  EXPECT_EQ(f.metrics.traffic.total().payload_bytes, s.metrics.traffic.total().payload_bytes);
  // Responses now come later than the delayed-ACK time: more pure ACKs.
  EXPECT_GT(s.metrics.traffic.cell(protocol::emsmdb::message_kind::tcp_ack, metrics::direction::to_client).packets,
            f.metrics.traffic.cell(protocol::emsmdb::message_kind::tcp_ack, metrics::direction::to_client).packets);
  // Wait response (72 wire bytes) + fetch request (124) + response with one NewMail (200): ~0.4 s at 8 kbit/s.
  EXPECT_LT(to_seconds(f.metrics.latency.quantile(0.5)), 0.01);
  EXPECT_GT(to_seconds(s.metrics.latency.quantile(0.5)), 0.35);
}

// The virtual driver draws its mail from the run's event_schedule, the one the
// real driver streams from (tests/workload/event_schedule_test.cpp: any split of
// the clients streams the same events), so for the same plan both drivers
// generate the same event times, mailbox by mailbox.
TEST(virtual_driver, generates_exactly_the_event_schedule) {
  run_plan p = mixed(60);
  p.length = 3h;
  p.drain = 1min;
  p.events_per_client_hour = 20;
  p.event_process.kind = event_process_kind::mmpp;
  p.event_process.hours.enabled = true;
  p.event_process.hours.start = 9h;
  p.event_process.hours.end = 11h;
  p.event_process.hours.run_starts_at = 8h + 30min;  // 30 min before the window opens
  std::vector<std::vector<time_point>> seen(p.clients);
  virtual_options o;
  o.on_event = [&](std::size_t client, time_point at) { seen.at(client).push_back(at); };
  const auto r = run_virtual(p, o);

  const event_schedule schedule(p);
  std::uint64_t scheduled = 0, generated = 0;
  for (std::size_t i = 0; i < p.clients; ++i) {
    const auto expected = schedule.times_of(i);
    EXPECT_EQ(seen[i], expected) << "client " << i;
    scheduled += expected.size();
    for (const time_point t : seen[i]) EXPECT_GE(t, time_point{} + 30min) << "mail before the window, client " << i;
  }
  for (const auto& m : r.modes) generated += m.events_generated;
  EXPECT_EQ(generated, scheduled);
  EXPECT_GT(scheduled, p.clients * 10);  // ~40 per client in the two business hours
}
