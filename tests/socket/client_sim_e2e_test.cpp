// client-sim's real-socket driver against the `notifier` program, started as a
// child process on free loopback ports: mixed clients miss nothing after the
// drain, push and async cost less than polling, worker processes merge
// exactly, and an absent notifier is a clean error. No timing assertions.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <csignal>
#include <istream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/client_sim_cli.hpp"
#include "support/notifier_process.hpp"

#ifndef NUDGE_NOTIFIER_BIN
#error "NUDGE_NOTIFIER_BIN must name the notifier program"
#endif

namespace {

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using client::client_mode;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

using test_support::notifier_process;
using test_support::free_port;

constexpr client_mode all_modes[] = {client_mode::poll, client_mode::push, client_mode::async};

const mode_result& of(const run_result& r, client_mode m) { return r.modes[static_cast<std::size_t>(m)]; }

std::uint64_t generated(const run_result& r) {
  std::uint64_t n = 0;
  for (const auto& m : r.modes) n += m.events_generated;
  return n;
}

}  // namespace

TEST(client_sim_e2e, five_hundred_mixed_clients_miss_nothing_and_push_and_async_cost_less) {
  notifier_process notifier({"--polls-max-ms", "2000"});
  ASSERT_TRUE(notifier.running()) << "could not start " << NUDGE_NOTIFIER_BIN;

  run_plan plan;
  plan.clients = 500;
  plan.mix = nudge::sim::emsmdb_mix(0.3, 0.4, 0.3);
  plan.poll_interval = 2s;
  plan.events_per_client_hour = 60;  // about one per client-minute
  plan.length = 20s;
  plan.drain = 6s;
  plan.seed = 11;
  const run_result r = run_real(plan, notifier.options());

  EXPECT_EQ(r.clock, "real");
  EXPECT_EQ(r.measured, plan.length);
  for (const auto m : all_modes) {
    const auto& mr = of(r, m);
    SCOPED_TRACE(std::string(client::to_string(m)));
    EXPECT_GT(mr.clients, 0u);
    EXPECT_EQ(mr.metrics.clients_started, mr.clients);
    EXPECT_EQ(mr.metrics.clients_ready, mr.clients);
    EXPECT_EQ(mr.metrics.clients_failed, 0u);
    EXPECT_EQ(mr.metrics.counter(nudge::protocol::emsmdb::counter::protocol_errors), 0u);
    EXPECT_GT(mr.events_generated, 0u);
    EXPECT_EQ(mr.events_missed(), 0u);
    EXPECT_EQ(mr.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), mr.events_generated);
  }
  EXPECT_EQ(of(r, client_mode::poll).clients + of(r, client_mode::push).clients + of(r, client_mode::async).clients,
            500u);

  const double poll = r.wire_bytes_per_client_hour(client_mode::poll);
  EXPECT_LT(r.wire_bytes_per_client_hour(client_mode::push), poll);
  EXPECT_LT(r.wire_bytes_per_client_hour(client_mode::async), poll);
  EXPECT_GT(of(r, client_mode::push).metrics.counter(nudge::protocol::emsmdb::counter::pings_matched), 0u);
  EXPECT_EQ(of(r, client_mode::push).metrics.counter(nudge::protocol::emsmdb::counter::datagrams_ignored), 0u);
  EXPECT_GT(of(r, client_mode::async).metrics.counter(nudge::protocol::emsmdb::counter::async_notified), 0u);

  // What the clients counted agrees with the notifier's own books.
  const auto s = notifier.stats();
  EXPECT_EQ(s.at("events_generated").get<std::uint64_t>(), generated(r));
  EXPECT_EQ(s.at("events_fetched").get<std::uint64_t>(), r.total().counter(nudge::protocol::emsmdb::counter::events_fetched));
  EXPECT_EQ(s.at("sessions_opened").get<std::uint64_t>(), 500u);
  EXPECT_EQ(s.at("registrations").get<std::uint64_t>(), of(r, client_mode::push).clients);
}

TEST(client_sim_e2e, worker_processes_report_exactly_what_the_notifier_saw) {
  notifier_process notifier({"--polls-max-ms", "1000"});
  ASSERT_TRUE(notifier.running());

  run_plan plan;
  plan.clients = 120;
  plan.mix = nudge::sim::emsmdb_mix(1, 1, 1);
  plan.poll_interval = 1s;
  plan.events_per_client_hour = 720;  // one per client every 5 s
  plan.ramp_up = 2s;
  plan.length = 8s;
  plan.drain = 4s;
  plan.seed = 5;
  real_options opts = notifier.options();
  opts.processes = 3;
  opts.workers = 3;
  std::vector<real_progress> seen;
  opts.progress = [&](const real_progress& p) { seen.push_back(p); };
  opts.progress_every = 200ms;
  const run_result r = run_real(plan, opts);

  for (const auto m : all_modes) {
    const auto& mr = of(r, m);
    SCOPED_TRACE(std::string(client::to_string(m)));
    EXPECT_EQ(mr.clients, 40u);
    EXPECT_EQ(mr.metrics.clients_started, 40u);
    EXPECT_EQ(mr.metrics.clients_failed, 0u);
    EXPECT_GT(mr.events_generated, 0u);
    EXPECT_EQ(mr.events_missed(), 0u);
    // The merged histogram holds every fetched event.
    EXPECT_EQ(mr.metrics.latency.count(), mr.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched));
  }
  const auto s = notifier.stats();
  EXPECT_EQ(s.at("events_generated").get<std::uint64_t>(), generated(r));
  EXPECT_EQ(s.at("events_fetched").get<std::uint64_t>(), r.total().counter(nudge::protocol::emsmdb::counter::events_fetched));
  EXPECT_EQ(s.at("sessions_opened").get<std::uint64_t>(), 120u);

  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().processes, 3u);
  EXPECT_EQ(seen.back().clients, 120u);
  EXPECT_EQ(seen.back().events_generated, generated(r));
}

TEST(client_sim_e2e, an_absent_notifier_is_a_clean_runtime_error) {
  real_options opts;
  opts.notifier = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<tcp>());  // nothing listens there
  opts.notifier_udp = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<udp>());
  opts.control = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<tcp>());
  run_plan plan;
  plan.clients = 3;
  try {
    run_real(plan, opts);
    FAIL() << "run_real did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach"), std::string::npos) << e.what();
  }

  // Through the command line: exit code 1 and one line on stderr.
  client_sim_options o;
  o.plan = plan;
  o.real = opts;
  std::ostringstream out, err;
  EXPECT_EQ(run_client_sim(o, out, err, false), exit_failure);
  EXPECT_NE(err.str().find("cannot reach"), std::string::npos);
  EXPECT_EQ(out.str(), "");
}

TEST(client_sim_e2e, a_notifier_that_dies_fails_every_client_and_the_exit_code) {
  notifier_process notifier({"--polls-max-ms", "1000"});
  ASSERT_TRUE(notifier.running());
  client_sim_options o;
  o.plan.clients = 60;
  o.plan.mix = nudge::sim::emsmdb_mix(1, 1, 1);
  o.plan.poll_interval = 1s;
  o.plan.length = 60s;  // the run ends early once every client has failed
  o.plan.drain = 0s;
  o.real = notifier.options();
  // Crash the notifier once every client has logged on.
  std::thread killer([&] {
    for (int i = 0; i < 600; ++i) {
      std::this_thread::sleep_for(50ms);
      try {
        if (notifier.stats().at("sessions_opened").get<std::size_t>() == o.plan.clients) break;
      } catch (const std::exception&) {
      }
    }
    notifier.crash();
  });
  std::ostringstream out, err;
  const int code = run_client_sim(o, out, err, false);
  killer.join();
  EXPECT_EQ(code, exit_failure);
  EXPECT_NE(out.str().find("clients failed"), std::string::npos) << out.str();  // the table is still printed
  EXPECT_NE(err.str().find("60 of 60 clients failed"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("the notifier closed"), std::string::npos) << err.str();
}

TEST(client_sim_e2e, non_loopback_options_are_refused_before_any_socket_opens) {
  run_plan plan;
  plan.clients = 1;
  real_options opts;
  opts.notifier = protocol::ip_endpoint::v4(192, 0, 2, 1, 7777);
  EXPECT_THROW(run_real(plan, opts), std::runtime_error);
  opts = {};
  opts.source_first = protocol::ip_endpoint::v4(10, 0, 0, 1, 0);
  EXPECT_NE(validate(opts), "");
  opts = {};
  opts.source_first = protocol::ip_endpoint::v4(127, 255, 255, 250, 0);
  opts.source_count = 10;  // runs past 127.255.255.255
  EXPECT_NE(validate(opts), "");
  EXPECT_EQ(validate(real_options{}), "");
}

// `client-sim --clock real --scenario scenarios/business-day.toml`, shortened,
// starting three seconds before the business window opens: the real driver
// follows the scenario's process (the shared event_schedule), so no mail is
// generated before the window, and every event is the schedule's, mailbox by
// mailbox (the virtual driver generates the same: tests/sim/virtual_driver_test.cpp).
TEST(client_sim_e2e, a_real_business_day_sends_no_mail_outside_the_business_window) {
  notifier_process notifier({});
  ASSERT_TRUE(notifier.running());
  const std::string file = std::string(NUDGE_SOURCE_DIR) + "/scenarios/business-day.toml";
  const std::string tcp = notifier.tcp_ep().to_string(), udp_ep = notifier.udp_ep().to_string(),
                    control = notifier.control_ep().to_string();
  auto parse = [&](const char* duration) {
    const char* argv[] = {"client-sim", "--clock", "real", "--scenario", file.c_str(), "--notifier", tcp.c_str(),
                          "--notifier-udp", udp_ep.c_str(), "--control", control.c_str(),
                          "--set", "run.clients=20", "--set", duration, "--set", "run.ramp_up=0s",
                          "--set", "run.drain=2s",
                          // 24-hour days (the file's "business" day has no outside), 3 s before 09:00:
                          "--set", "events.business_hours.day=24h", "--set", "events.business_hours.run_starts_at=08:59:57",
                          // ~0.5 events per client-second in the window (per 8-hour day, as the file states it)
                          "--set", "events.per_client_day=14400"};
    return parse_client_sim_options(static_cast<int>(std::size(argv)), argv);
  };

  const auto parsed = parse("run.duration=6s");
  ASSERT_TRUE(parsed) << parsed.error().message;  // the file's [server] policy is the default
  const run_plan& plan = parsed.value().plan;
  ASSERT_TRUE(plan.event_process.hours.enabled);
  EXPECT_DOUBLE_EQ(plan.events_per_client_hour, 14400.0 / 8);

  std::mutex mu;
  std::vector<std::vector<duration>> seen(plan.clients);
  real_options opts = parsed.value().real;
  opts.on_event = [&](std::size_t client, duration at) {
    std::lock_guard lock(mu);
    seen.at(client).push_back(at);
  };
  const run_result r = run_real(plan, opts);

  const event_schedule schedule(plan);
  std::uint64_t scheduled = 0;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    std::vector<duration> expected;
    for (const time_point t : schedule.times_of(i)) expected.push_back(t - time_point{});
    std::lock_guard lock(mu);
    EXPECT_EQ(seen[i], expected) << "client " << i;
    scheduled += expected.size();
    for (const duration at : seen[i]) {
      EXPECT_GE(at, 3s) << "mail before 09:00, client " << i;
      EXPECT_TRUE(schedule.process().active_at(time_point{} + at));
    }
  }
  EXPECT_GT(scheduled, plan.clients);  // ~1.5 per client in the 3 s of business
  EXPECT_EQ(generated(r), scheduled);
  EXPECT_EQ(notifier.stats().at("events_generated").get<std::uint64_t>(), scheduled);

  // A run that is over before 09:00 sends no mail at all.
  const auto early = parse("run.duration=2s");
  ASSERT_TRUE(early) << early.error().message;
  const run_result none = run_real(early.value().plan, early.value().real);
  EXPECT_EQ(generated(none), 0u);
  EXPECT_EQ(notifier.stats().at("events_generated").get<std::uint64_t>(), scheduled);  // nothing added
}
