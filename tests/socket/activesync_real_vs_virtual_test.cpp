// ActiveSync Direct Push on real sockets against the same plan in virtual
// time (after pollbus_real_vs_virtual_test.cpp): a notifier in this process
// serves EMSMDB and ActiveSync (its server core made from the plan's own
// keys), run_real drives a fixed-heartbeat group and an adaptive group through
// it, run_virtual runs the same plan. They give the same messages per kind and
// direction, the same counters and events, and the real run's measured wire
// bytes and packets (kernel TCP_INFO) are within 2 % of the virtual run's with
// the Linux wire preset (one keep-alive connection each, so no teardown).
//
// Heartbeats are seconds here (the server's bounds lowered by key) so a
// 20-second run holds many. Real Pings drift by milliseconds from the virtual
// ones, so the test takes the first seed whose events all keep a safe margin
// from every heartbeat expiry (each client's Ping schedule simulated with its
// policy: a Ping restarts after each change) and from the end of the run.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nudge/activesync/family.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using metrics::direction;
namespace as = nudge::activesync;

namespace {

const protocol::ip_endpoint any_loopback_port = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);

/// The notifier in this process, serving EMSMDB and ActiveSync with `family_keys`.
class in_process_notifier {
 public:
  explicit in_process_notifier(engine::settings family_keys) : keys_(std::move(family_keys)) {
    notifier::server_config cfg;
    cfg.tcp_listen = any_loopback_port;
    cfg.udp_bind = any_loopback_port;
    cfg.control = any_loopback_port;
    const engine::family* f = engine::registry::instance().find(as::family_name);
    engine::server_context ctx;
    ctx.keys = &keys_;
    std::vector<notifier::served_protocol> others;
    others.push_back({f->name, f->make_server(ctx), any_loopback_port, any_loopback_port, {}});
    server_ = std::make_unique<notifier::notifier_server>(
        io_, cfg, [](notifier::log_level, std::string_view) {}, std::move(others));
    error_ = server_->start();
    if (!error_) thread_ = std::thread([this] { io_.run(); });
  }
  ~in_process_notifier() { stop(); }

  const std::optional<std::string>& error() const { return error_; }
  real_options options() const {
    real_options o;
    o.control = *server_->control_endpoint();
    return o;
  }
  void stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }
  const engine::server_session& family_core() const {
    const auto& h = server_->host();
    for (std::size_t i = 0; i < h.protocol_count(); ++i)
      if (h.protocol_name(i) == as::family_name) return h.core(i);
    throw std::out_of_range("activesync is not served");
  }

 private:
  boost::asio::io_context io_{1};
  engine::settings keys_;
  std::unique_ptr<notifier::notifier_server> server_;
  std::optional<std::string> error_;
  std::thread thread_;
};

std::uint64_t stat_of(const engine::server_session& core, std::string_view name) {
  for (const auto& [n, v] : core.stats())
    if (n == name) return v;
  throw std::out_of_range("no counter " + std::string(name));
}

duration distance(time_point a, time_point b) { return a > b ? a - b : b - a; }

/// Every event of every client keeps `margin` from its Ping's heartbeat
/// expiry and from the end of the run. A Ping starts at the client's start,
/// after each expiry (the heartbeat then grows by `step` up to `max` for an
/// adaptive client) and after each event (the change answers it at once).
bool schedule_is_comparable(const run_plan& plan, duration margin) {
  const event_schedule schedule(plan);
  const time_point end = time_point{} + plan.length + plan.drain;
  const auto groups = plan.assign_groups();
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const bool adaptive = plan.mix[groups[i]].mode == "adaptive";
    duration hb = adaptive ? 2s : 3s;
    time_point ping = schedule.client_start(i);
    for (const time_point t : schedule.times_of(i)) {
      while (ping + hb <= t) {
        if (distance(ping + hb, t) < margin) return false;
        ping += hb;
        if (adaptive) hb = std::min<duration>(hb + 1s, 4s);
      }
      if (distance(ping + hb, t) < margin) return false;
      ping = t;
    }
    for (; ping <= end + hb; ping += hb) {
      if (distance(ping, end) < margin) return false;
      if (adaptive) hb = std::min<duration>(hb + 1s, 4s);
    }
  }
  return true;
}

std::uint64_t counter(const mode_result& m, as::counter c) { return m.metrics.counter(c); }

}  // namespace

TEST(activesync_real_vs_virtual, a_seeded_ping_plan_gives_the_same_counts_and_measured_bytes_within_two_percent) {
  protocols::register_all();
  const engine::family* family = engine::registry::instance().find(as::family_name);
  ASSERT_NE(family, nullptr);

  run_plan plan;
  plan.clients = 16;
  plan.mix = {{"activesync", "fixed", 1}, {"activesync", "adaptive", 1}};
  plan.set_family_key("activesync.min_heartbeat", "1s");
  plan.set_family_key("activesync.heartbeat", "3s");
  plan.set_family_key("activesync.adaptive_start", "2s");
  plan.set_family_key("activesync.adaptive_step", "1s");
  plan.set_family_key("activesync.adaptive_min", "1s");
  plan.set_family_key("activesync.adaptive_max", "4s");
  plan.events_per_client_hour = 360;  // about 2 a client in 20 s
  plan.length = 20s;
  plan.drain = 1500ms;
  plan.ramp_up = 0s;
  ASSERT_TRUE(apply_wire_preset(plan.wire, "linux"));
  ASSERT_EQ(plan.validate(), "");
  std::optional<std::uint64_t> seed;
  for (std::uint64_t s = 1; s <= 5000 && !seed; ++s) {
    plan.seed = s;
    if (schedule_is_comparable(plan, 250ms)) seed = s;
  }
  ASSERT_TRUE(seed) << "no seed in 1..5000 keeps every event 250 ms from a heartbeat";
  SCOPED_TRACE("seed " + std::to_string(*seed));

  in_process_notifier served(plan.settings_for(*family));
  ASSERT_FALSE(served.error()) << *served.error();
  const run_result real = run_real(plan, served.options());
  const run_result virt = run_virtual(plan);
  ASSERT_EQ(real.modes.size(), 2u);
  ASSERT_EQ(virt.modes.size(), 2u);

  std::uint64_t real_messages = 0;
  for (std::size_t g = 0; g < 2; ++g) {
    const auto& r = real.modes[g];
    const auto& v = virt.modes[g];
    SCOPED_TRACE(plan.mix[g].name());
    EXPECT_EQ(r.protocol, "activesync");
    ASSERT_EQ(r.clients, 8u);
    ASSERT_EQ(r.clients, v.clients);
    EXPECT_EQ(r.metrics.clients_ready, r.clients);
    EXPECT_EQ(r.metrics.clients_failed, 0u);
    EXPECT_EQ(counter(r, as::counter::protocol_errors), 0u);
    EXPECT_EQ(counter(r, as::counter::http_errors), 0u);
    EXPECT_EQ(counter(r, as::counter::lost_pings), 0u);

    EXPECT_GT(v.events_generated, 5u) << "the plan must put mail through every group";
    EXPECT_EQ(r.events_generated, v.events_generated);
    EXPECT_EQ(r.metrics.events_by_path, v.metrics.events_by_path);
    EXPECT_EQ(r.events_missed(), v.events_missed());
    EXPECT_EQ(r.metrics.counters, v.metrics.counters);  // pings, status 1 and 2, syncs, heartbeat grows...
    EXPECT_GT(counter(r, as::counter::pings_expired), r.clients * 3);
    real_messages += counter(r, as::counter::messages);

    for (std::size_t k = 0; k < as::message_kind_count; ++k)
      for (auto d : {direction::to_server, direction::to_client}) {
        SCOPED_TRACE(std::string(as::to_string(static_cast<as::message_kind>(k))) +
                     (d == direction::to_server ? " up" : " down"));
        EXPECT_EQ(r.metrics.traffic.cell(k, d).messages, v.metrics.traffic.cell(k, d).messages);
      }

    ASSERT_TRUE(r.measured.has_value()) << "a real run measures its wire traffic";
    EXPECT_EQ(r.measured->unmeasured_connections, 0u);
    EXPECT_EQ(r.measured->tcp_connections, counter(r, as::counter::connections));
    const double rb = static_cast<double>(r.measured->total().wire_bytes);
    const double vb = static_cast<double>(v.metrics.traffic.total().wire_bytes);
    const double rp = static_cast<double>(r.measured->total().packets);
    const double vp = static_cast<double>(v.metrics.traffic.total().packets);
    ASSERT_GT(vb, 0);
    EXPECT_LT(std::abs(rb - vb) / vb, 0.02) << "measured real " << rb << " B, virtual (linux preset) " << vb << " B";
    EXPECT_LT(std::abs(rp - vp) / vp, 0.02) << "measured real " << rp << " packets, virtual " << vp;
    std::printf("%s: measured %.0f B / %.0f packets, virtual %.0f B / %.0f packets\n", plan.mix[g].name().c_str(), rb, rp,
                vb, vp);
  }

  served.stop();
  EXPECT_EQ(stat_of(served.family_core(), "events_fetched"), real_messages);
  EXPECT_EQ(stat_of(served.family_core(), "devices"), plan.clients);
}
