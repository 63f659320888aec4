// One protocol core, two drivers: the same short plan run on real loopback
// sockets against the notifier program and in virtual time gives the same
// message counts, and bytes within 2 %. Events are off so that the runs are
// comparable message for message (event times are random per driver); the
// poll interval keeps every poll well away from the end of the run.
#include <gtest/gtest.h>

#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "support/notifier_process.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;
using metrics::direction;
using metrics::message_kind;

TEST(real_vs_virtual, hundred_clients_two_minutes_same_counts_bytes_within_two_percent) {
  test_support::notifier_process notifier({"--polls-max-ms", "7000"});
  ASSERT_TRUE(notifier.running());

  run_plan plan;
  plan.clients = 100;
  plan.mix = {0.4, 0.3, 0.3};
  plan.poll_interval = 7s;  // polls at 7 s, 14 s, ... 119 s; the run ends at 125 s
  plan.events_per_client_hour = 0;
  plan.length = 120s;
  plan.drain = 5s;
  plan.ramp_up = 0s;
  plan.seed = 5;
  plan.server.polls_max_ms = 7000;

  const run_result real = run_real(plan, notifier.options());
  const run_result virt = run_virtual(plan);

  for (auto m : {client_mode::poll, client_mode::push, client_mode::async}) {
    const auto& r = real.modes[static_cast<std::size_t>(m)];
    const auto& v = virt.modes[static_cast<std::size_t>(m)];
    SCOPED_TRACE(std::string(client::to_string(m)));
    ASSERT_EQ(r.clients, v.clients);
    EXPECT_EQ(r.metrics.clients_failed, 0u);
    EXPECT_EQ(r.metrics.polls, v.metrics.polls);
    EXPECT_EQ(r.metrics.async_waits, v.metrics.async_waits);
    for (std::size_t k = 0; k < metrics::message_kind_count; ++k)
      for (auto d : {direction::to_server, direction::to_client}) {
        const auto kind = static_cast<message_kind>(k);
        SCOPED_TRACE(std::string(metrics::to_string(kind)) + (d == direction::to_server ? " up" : " down"));
        EXPECT_EQ(r.metrics.traffic.cell(kind, d).messages, v.metrics.traffic.cell(kind, d).messages);
        EXPECT_EQ(r.metrics.traffic.cell(kind, d).packets, v.metrics.traffic.cell(kind, d).packets);
      }
    const double rb = static_cast<double>(r.metrics.traffic.total().wire_bytes);
    const double vb = static_cast<double>(v.metrics.traffic.total().wire_bytes);
    ASSERT_GT(vb, 0);
    EXPECT_LT(std::abs(rb - vb) / vb, 0.02) << "real " << rb << " virtual " << vb;
  }
}
