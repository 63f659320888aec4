// The seed article's table, checked: scenarios/seed-article.toml run in virtual
// time gives the unnecessary bytes and TSDUs per client-hour that the
// closed-form Poisson model (tools/model) predicts, within 1 %.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

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
  in.request_bytes = in.response_bytes = p.wire.abstract_message_bytes;
  return in;
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
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.wire_bytes, 200 * poll.metrics.wasted_polls);
  EXPECT_EQ(poll.metrics.wasted_poll_traffic.packets, 2 * poll.metrics.wasted_polls);
  // Events: 6.25 per client-hour, Poisson.
  const double events = per_client_hour(poll.events_generated, poll, r.measured);
  EXPECT_NEAR(events / 6.25, 1.0, 0.02);
  RecordProperty("clients", static_cast<int>(p.clients));
  RecordProperty("wall_ms", static_cast<int>(wall * 1000));
  RecordProperty("unnecessary_bytes_per_client_hour", std::to_string(bytes));
  RecordProperty("unnecessary_packets_per_client_hour", std::to_string(packets));
}

TEST(seed_table, push_and_async_remove_the_unnecessary_polls) {
  run_plan p = load("seed-article-push.toml", debug_size);
  if (auto e = apply_override(p, "run.clients=1000")) FAIL() << e->what();
  const run_result r = run_virtual(p);
  const auto& push = r.modes[static_cast<std::size_t>(client_mode::push)];
  const auto& async = r.modes[static_cast<std::size_t>(client_mode::async)];
  EXPECT_EQ(push.events_missed(), 0u);
  EXPECT_EQ(async.events_missed(), 0u);
  EXPECT_EQ(async.metrics.wasted_polls, 0u);
  // Push clients poll only until their first ping (about 10 minutes at 6.25 an hour).
  const double push_bytes = per_client_hour(push.metrics.wasted_poll_traffic.wire_bytes, push, r.measured);
  EXPECT_LT(push_bytes, 0.05 * model::estimate(model_inputs(p)).poisson.bytes_per_client_hour);
  EXPECT_GT(push.metrics.wasted_polls, 0u);
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
