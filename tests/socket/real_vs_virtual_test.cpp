// One protocol core, two drivers, mail flowing: the same seeded plan run on real
// loopback sockets against the notifier program and in virtual time gives the
// same events (one schedule for both drivers), the same messages per kind and
// direction, the same events fetched and missed per path; and the real run's
// measured wire bytes (kernel TCP_INFO, socket counts) are within 2 % of the
// virtual run's, modelled with the Linux wire preset.
//
// The real run differs from the virtual one by milliseconds of scheduling, so a
// plan is only comparable message for message when no event sits within that
// of a decision point: a poll (it could ride on it in one run and not the
// other), the end of the run, or another event of the same mailbox (a fetch
// could take both). The test takes the first seed whose schedule keeps every
// event a safe margin away from those, which is a property of the schedule
// alone (deterministic), and says which seed it used.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "support/notifier_process.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;
using metrics::direction;
using protocol::emsmdb::message_kind;

namespace {

constexpr duration safe_margin = 250ms;

duration distance(time_point a, time_point b) { return a > b ? a - b : b - a; }

/// Every event is at least safe_margin from its client's poll times (multiples
/// of the poll interval from its start: poll and push clients poll, push ones
/// until their first ping), from the run's end, and from the mailbox's other events.
bool schedule_is_comparable(const run_plan& plan) {
  const event_schedule schedule(plan);
  const auto modes = plan.assign_modes();
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const auto times = schedule.times_of(i);
    const time_point start = schedule.client_start(i);
    for (std::size_t k = 0; k < times.size(); ++k) {
      const time_point t = times[k];
      if (distance(t, time_point{} + plan.length) < safe_margin) return false;
      if (k > 0 && t - times[k - 1] < 4 * safe_margin) return false;
      if (modes[i] == client_mode::async) continue;
      const auto since_start = t - start;
      const auto interval = plan.poll_interval;
      const auto before = (since_start / interval) * interval;
      if (since_start - before < safe_margin || before + interval - since_start < safe_margin) return false;
    }
  }
  return true;
}

}  // namespace

TEST(real_vs_virtual, same_seeded_plan_with_mail_gives_same_messages_events_and_bytes_within_two_percent) {
  test_support::notifier_process notifier({"--polls-max-ms", "7000"});
  ASSERT_TRUE(notifier.running());

  run_plan plan;
  plan.clients = 90;
  plan.mix = {1.0, 1.0, 1.0};
  plan.poll_interval = 7s;  // polls at 7 s, 14 s, ... 119 s; the run ends at 125 s
  plan.events_per_client_hour = 40;
  plan.length = 120s;
  plan.drain = 5s;
  plan.ramp_up = 0s;
  plan.server.polls_max_ms = 7000;
  ASSERT_TRUE(apply_wire_preset(plan.wire, "linux"));

  std::optional<std::uint64_t> seed;
  for (std::uint64_t s = 1; s <= 5000 && !seed; ++s) {
    plan.seed = s;
    if (schedule_is_comparable(plan)) seed = s;
  }
  ASSERT_TRUE(seed) << "no seed in 1..5000 keeps every event " << safe_margin.count() << " ns from a decision point";
  plan.seed = *seed;
  SCOPED_TRACE("seed " + std::to_string(*seed));

  const run_result real = run_real(plan, notifier.options());
  const run_result virt = run_virtual(plan);

  for (auto m : {client_mode::poll, client_mode::push, client_mode::async}) {
    const auto& r = real.modes[static_cast<std::size_t>(m)];
    const auto& v = virt.modes[static_cast<std::size_t>(m)];
    SCOPED_TRACE(std::string(client::to_string(m)));
    ASSERT_EQ(r.clients, v.clients);
    EXPECT_EQ(r.metrics.clients_failed, 0u);

    // The same mail, fetched the same way.
    EXPECT_GT(v.events_generated, 10u) << "the plan must put mail through every mode";
    EXPECT_EQ(r.events_generated, v.events_generated);
    EXPECT_EQ(r.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), v.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched));
    EXPECT_EQ(r.events_missed(), v.events_missed());
    EXPECT_EQ(r.metrics.events_by_path, v.metrics.events_by_path);
    EXPECT_EQ(r.metrics.counter(nudge::protocol::emsmdb::counter::polls), v.metrics.counter(nudge::protocol::emsmdb::counter::polls));
    EXPECT_EQ(r.metrics.counter(nudge::protocol::emsmdb::counter::fetches), v.metrics.counter(nudge::protocol::emsmdb::counter::fetches));
    EXPECT_EQ(r.metrics.counter(nudge::protocol::emsmdb::counter::async_waits), v.metrics.counter(nudge::protocol::emsmdb::counter::async_waits));
    EXPECT_EQ(r.metrics.counter(nudge::protocol::emsmdb::counter::pings_matched), v.metrics.counter(nudge::protocol::emsmdb::counter::pings_matched));

    for (std::size_t k = 0; k < protocol::emsmdb::message_kind_count; ++k)
      for (auto d : {direction::to_server, direction::to_client}) {
        const auto kind = static_cast<message_kind>(k);
        SCOPED_TRACE(std::string(protocol::emsmdb::to_string(kind)) + (d == direction::to_server ? " up" : " down"));
        EXPECT_EQ(r.metrics.traffic.cell(kind, d).messages, v.metrics.traffic.cell(kind, d).messages);
      }

    // Measured on the real wire against the model of it.
    ASSERT_TRUE(r.measured.has_value()) << "a real run measures its wire traffic";
    EXPECT_EQ(r.measured->unmeasured_connections, 0u);
    const double rb = static_cast<double>(r.measured->total().wire_bytes);
    const double vb = static_cast<double>(v.metrics.traffic.total().wire_bytes);
    ASSERT_GT(vb, 0);
    EXPECT_LT(std::abs(rb - vb) / vb, 0.02) << "measured real " << rb << " B, virtual (linux preset) " << vb << " B";
  }
}
