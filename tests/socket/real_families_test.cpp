// The real driver runs every registered family, not only EMSMDB: a notifier
// served in-process (notifier_server, with the test-only toy family's server
// core beside EMSMDB's, every socket on an ephemeral loopback port) tells
// run_real where each family listens through its control port's SERVICES
// reply, and nothing else: the options' EMSMDB endpoints stay at their
// defaults, which nothing here listens on.
//
//  * A toy plan run on real sockets and in virtual time gives the same
//    messages per kind and direction, the same counters and events per path
//    (the toy's ticks are its decision points: the test takes the first seed
//    whose events all keep a safe margin from them, as real_vs_virtual does).
//  * A plan mixing EMSMDB poll and push groups with a toy group runs on real
//    sockets, split over two worker processes; each client's mailbox events
//    reach only its own family's core.
//  * A control port that never answers SERVICES fails the run with a reason.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/live/asio_bridge.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "support/toy_family.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using metrics::direction;

namespace {

const protocol::ip_endpoint any_loopback_port = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);

/// The notifier in this process: EMSMDB (as `notifier` configures it) and,
/// when asked, the toy family's server core, behind one control port.
class in_process_notifier {
 public:
  explicit in_process_notifier(bool with_toy) {
    protocols::register_all();
    toy::register_toy_family();
    notifier::server_config cfg;
    cfg.tcp_listen = any_loopback_port;
    cfg.udp_bind = any_loopback_port;
    cfg.control = any_loopback_port;
    std::vector<notifier::served_protocol> others;
    if (with_toy) {
      const engine::family* f = engine::registry::instance().find(toy::family_name);
      toy_keys_ = engine::settings::defaults(*f);
      engine::server_context ctx;
      ctx.keys = &toy_keys_;
      others.push_back({f->name, f->make_server(ctx), any_loopback_port, any_loopback_port, {}});
    }
    server_ = std::make_unique<notifier::notifier_server>(
        io_, cfg, [](notifier::log_level, std::string_view) {}, std::move(others));
    error_ = server_->start();
    if (!error_) thread_ = std::thread([this] { io_.run(); });
  }
  ~in_process_notifier() { stop(); }

  const std::optional<std::string>& error() const { return error_; }

  /// Only the control port: where the families are served, run_real learns from it.
  real_options options() const {
    real_options o;
    o.control = *server_->control_endpoint();
    return o;
  }

  /// Stops serving; the cores may be read afterwards.
  void stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }
  const notifier::server_host& host() const { return server_->host(); }

 private:
  boost::asio::io_context io_{1};
  engine::settings toy_keys_;
  std::unique_ptr<notifier::notifier_server> server_;
  std::optional<std::string> error_;
  std::thread thread_;
};

std::uint64_t stat_of(const engine::server_session& core, std::string_view name) {
  for (const auto& [n, v] : core.stats())
    if (n == name) return v;
  throw std::out_of_range("no counter " + std::string(name));
}

std::size_t served_index(const notifier::server_host& h, std::string_view family) {
  for (std::size_t i = 0; i < h.protocol_count(); ++i)
    if (h.protocol_name(i) == family) return i;
  throw std::out_of_range("not served: " + std::string(family));
}

duration distance(time_point a, time_point b) { return a > b ? a - b : b - a; }

/// Every event keeps `margin` from its client's ticks (from its start, every
/// tick interval) and from the end of the run.
bool toy_schedule_is_comparable(const run_plan& plan, duration margin) {
  const event_schedule schedule(plan);
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const time_point start = schedule.client_start(i);
    for (const time_point t : schedule.times_of(i)) {
      if (distance(t, time_point{} + plan.length) < margin) return false;
      const duration since = t - start;
      const duration before = (since / toy::tick_interval) * toy::tick_interval;
      if (since - before < margin || before + toy::tick_interval - since < margin) return false;
    }
  }
  return true;
}

}  // namespace

TEST(real_families, a_toy_plan_gives_the_same_counts_per_kind_on_real_sockets_and_in_virtual_time) {
  in_process_notifier served(true);
  ASSERT_FALSE(served.error()) << *served.error();

  run_plan plan;
  plan.clients = 30;
  plan.mix = {{"toy", "tick", 1}};
  plan.events_per_client_hour = 240;
  plan.length = 35s;  // ticks at 0 s and 30 s from each client's start
  plan.drain = 3s;
  plan.ramp_up = 0s;
  std::optional<std::uint64_t> seed;
  for (std::uint64_t s = 1; s <= 2000 && !seed; ++s) {
    plan.seed = s;
    if (toy_schedule_is_comparable(plan, 250ms)) seed = s;
  }
  ASSERT_TRUE(seed) << "no seed in 1..2000 keeps every event 250 ms from a tick";
  SCOPED_TRACE("seed " + std::to_string(*seed));

  const run_result real = run_real(plan, served.options());
  const run_result virt = run_virtual(plan);
  ASSERT_EQ(real.modes.size(), 1u);
  ASSERT_EQ(virt.modes.size(), 1u);
  const auto& r = real.modes[0];
  const auto& v = virt.modes[0];
  EXPECT_EQ(r.protocol, "toy");
  ASSERT_EQ(r.clients, 30u);
  ASSERT_EQ(r.clients, v.clients);
  EXPECT_EQ(r.metrics.clients_started, r.clients);
  EXPECT_EQ(r.metrics.clients_ready, r.clients);
  EXPECT_EQ(r.metrics.clients_failed, 0u);

  EXPECT_GT(v.events_generated, 20u) << "the plan must put mail through the toy";
  EXPECT_EQ(r.events_generated, v.events_generated);
  EXPECT_GT(v.metrics.events_fetched(), 0u);
  EXPECT_EQ(r.metrics.events_by_path, v.metrics.events_by_path);
  EXPECT_EQ(r.metrics.counters, v.metrics.counters);  // ticks, empty_ticks
  EXPECT_EQ(r.metrics.counter(toy::counter::ticks), 2 * r.clients);
  for (std::size_t k = 0; k < 4; ++k)
    for (auto d : {direction::to_server, direction::to_client}) {
      SCOPED_TRACE("kind " + std::to_string(k) + (d == direction::to_server ? " up" : " down"));
      EXPECT_EQ(r.metrics.traffic.cell(k, d).messages, v.metrics.traffic.cell(k, d).messages);
    }
  // The toy's one connection per client, measured by the kernel.
  ASSERT_TRUE(r.measured.has_value());
  EXPECT_EQ(r.measured->tcp_connections, r.clients);
  EXPECT_GT(r.measured->tcp[static_cast<std::size_t>(direction::to_server)].payload_bytes, 0u);

  // The toy server core the notifier served saw the same mail.
  served.stop();
  const auto& toy_core = served.host().core(served_index(served.host(), "toy"));
  EXPECT_EQ(stat_of(toy_core, "events_fetched"), r.metrics.events_fetched());
}

TEST(real_families, a_plan_mixing_emsmdb_and_toy_groups_runs_on_real_sockets_in_two_processes) {
  in_process_notifier served(true);
  ASSERT_FALSE(served.error()) << *served.error();

  run_plan plan;
  plan.clients = 30;
  plan.mix = {{"emsmdb", "poll", 1}, {"toy", "tick", 1}, {"emsmdb", "push", 1}};
  plan.poll_interval = 1s;
  plan.events_per_client_hour = 1200;  // one per client every 3 s
  plan.length = 6s;
  plan.drain = 3s;
  plan.seed = 7;
  real_options opts = served.options();
  opts.processes = 2;
  opts.workers = 2;
  std::vector<real_progress> seen;
  opts.progress = [&](const real_progress& p) { seen.push_back(p); };
  opts.progress_every = 200ms;
  const run_result r = run_real(plan, opts);

  ASSERT_EQ(r.modes.size(), 3u);
  for (std::size_t g = 0; g < 3; ++g) {
    const auto& m = r.modes[g];
    SCOPED_TRACE(plan.mix[g].protocol + " " + plan.mix[g].mode);
    EXPECT_EQ(m.protocol, plan.mix[g].protocol);
    EXPECT_EQ(m.clients, 10u);
    EXPECT_EQ(m.metrics.clients_started, 10u);
    EXPECT_EQ(m.metrics.clients_ready, 10u);
    EXPECT_EQ(m.metrics.clients_failed, 0u);
    EXPECT_GT(m.events_generated, 0u);
  }
  for (std::size_t g : {0u, 2u}) EXPECT_EQ(r.modes[g].events_missed(), 0u);
  // Each toy client ticked once (at its start; the next tick is 30 s later).
  const auto& toy_group = r.modes[1];
  EXPECT_EQ(toy_group.metrics.counter(toy::counter::ticks), 10u);
  EXPECT_EQ(toy_group.metrics.traffic.cell(toy::kind::tick_request, direction::to_server).messages, 10u);
  EXPECT_EQ(toy_group.metrics.traffic.cell(toy::kind::tick_reply, direction::to_client).messages, 10u);

  // Progress names the families' counters: EMSMDB's polls, the toy's ticks.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().processes, 2u);
  ASSERT_TRUE(seen.back().counter("ticks").has_value());
  EXPECT_EQ(*seen.back().counter("ticks"), 10u);
  ASSERT_TRUE(seen.back().counter("polls").has_value());
  EXPECT_GT(*seen.back().counter("polls"), 0u);

  served.stop();
  const auto& emsmdb = served.host().core(served_index(served.host(), "emsmdb"));
  EXPECT_EQ(stat_of(emsmdb, "sessions_opened"), 20u);
  EXPECT_EQ(stat_of(emsmdb, "registrations"), 10u);
  EXPECT_EQ(stat_of(emsmdb, "events_fetched"),
            r.modes[0].metrics.events_fetched() + r.modes[2].metrics.events_fetched());

  // Every event named its client's family, so each core's STATS count only
  // its own clients' events, and it knows only its own clients' mailboxes.
  const nlohmann::json stats = served.host().stats_json(live::steady_now());
  const auto& by_family = stats.at("protocols");
  EXPECT_EQ(by_family.at("emsmdb").at("events_generated").get<std::uint64_t>(),
            r.modes[0].events_generated + r.modes[2].events_generated)
      << by_family.dump();
  EXPECT_EQ(by_family.at("toy").at("events_generated").get<std::uint64_t>(), r.modes[1].events_generated)
      << by_family.dump();
  EXPECT_EQ(stats.at("driver").at("events_from_control").get<std::uint64_t>(),
            r.modes[0].events_generated + r.modes[1].events_generated + r.modes[2].events_generated);
  // (The toy core keeps no mailbox list; EMSMDB's would have learnt the toy
  // clients' mailboxes from their events.)
  const auto group_of = plan.assign_groups();
  std::vector<std::string> emsmdb_mailboxes;
  for (std::size_t c = 0; c < plan.clients; ++c)
    if (group_of[c] != 1) emsmdb_mailboxes.push_back(run_plan::user_dn(c));
  EXPECT_EQ(emsmdb.mailbox_count(), 20u);
  for (std::size_t m = 0; m < emsmdb.mailbox_count(); ++m)
    EXPECT_NE(std::find(emsmdb_mailboxes.begin(), emsmdb_mailboxes.end(), emsmdb.mailbox_name(m)),
              emsmdb_mailboxes.end())
        << "the EMSMDB core learnt of another family's mailbox " << emsmdb.mailbox_name(m);
}

TEST(real_families, a_control_port_that_never_answers_services_fails_the_run_with_a_reason) {
  // Connections complete in the kernel's backlog; nothing ever reads or answers.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address_v4("127.0.0.1"), 0});
  real_options opts;
  opts.control = protocol::ip_endpoint::v4(127, 0, 0, 1, silent.local_endpoint().port());
  opts.control_timeout = 300ms;
  run_plan plan;
  plan.clients = 2;
  plan.mix = {{"toy", "tick", 1}};  // only SERVICES can say where the toy is served
  plan.length = 1s;
  plan.drain = 0s;
  protocols::register_all();
  toy::register_toy_family();
  try {
    run_real(plan, opts);
    FAIL() << "run_real did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "the control port at " + opts.control.to_string() + " did not answer SERVICES within 0.3 s");
  }
}

TEST(real_families, a_family_the_notifier_does_not_serve_is_a_clean_error_before_any_client_starts) {
  in_process_notifier served(false);
  ASSERT_FALSE(served.error()) << *served.error();
  run_plan plan;
  plan.clients = 4;
  plan.mix = {{"emsmdb", "poll", 1}, {"toy", "tick", 1}};
  plan.length = 1s;
  plan.drain = 0s;
  try {
    run_real(plan, served.options());
    FAIL() << "run_real did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not serve toy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("emsmdb"), std::string::npos) << e.what();  // what it does serve
  }
}

TEST(real_families, a_stated_emsmdb_endpoint_wins_over_the_services_reply) {
  in_process_notifier served(false);
  ASSERT_FALSE(served.error()) << *served.error();
  run_plan plan;
  plan.clients = 2;
  plan.length = 1s;
  plan.drain = 0s;
  real_options opts = served.options();
  // A port nothing listens on (the kernel's pick, released at once).
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address_v4("127.0.0.1"), 0});
    opts.notifier = protocol::ip_endpoint::v4(127, 0, 0, 1, a.local_endpoint().port());
  }
  opts.notifier_stated = true;
  try {
    run_real(plan, opts);
    FAIL() << "run_real did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(opts.notifier.to_string()), std::string::npos) << e.what();
  }
  // Unstated, the same address is only a default: SERVICES says where EMSMDB is.
  opts.notifier_stated = false;
  const run_result r = run_real(plan, opts);
  EXPECT_EQ(r.modes[0].metrics.clients_ready, 2u);
  EXPECT_EQ(r.modes[0].metrics.clients_failed, 0u);
}
