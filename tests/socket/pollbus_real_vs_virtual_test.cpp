// The polling bus (seed 003) on real sockets against the same plan in virtual
// time: a notifier in this process serves EMSMDB and the bus (the bus's
// server core made from the plan's own keys, so both runs' servers agree),
// run_real drives a SOAP keep-alive group and a JSON connection-per-poll
// group through it, run_virtual runs the same plan. They give the same
// messages per kind and direction, the same counters and events, and the
// real run's measured wire bytes (kernel TCP_INFO) are within 2 % of the
// virtual run's with the Linux wire preset, teardown left out of both (the
// measurement excludes it by definition, docs/measurements.md).
//
// Real polls drift by milliseconds from the virtual ones (each comes one
// interval after the previous answer), so the test takes the first seed
// whose events all keep a safe margin from every poll instant and from the
// end of the run, as real_vs_virtual_test does for EMSMDB.
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

#include "nudge/engine/registry.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using metrics::direction;
namespace bus = nudge::pollbus;

namespace {

const protocol::ip_endpoint any_loopback_port = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);

/// The notifier in this process, serving EMSMDB and the bus with `bus_keys`.
class in_process_notifier {
 public:
  explicit in_process_notifier(engine::settings bus_keys) : keys_(std::move(bus_keys)) {
    notifier::server_config cfg;
    cfg.tcp_listen = any_loopback_port;
    cfg.udp_bind = any_loopback_port;
    cfg.control = any_loopback_port;
    const engine::family* f = engine::registry::instance().find(bus::family_name);
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
  const engine::server_session& bus_core() const {
    const auto& h = server_->host();
    for (std::size_t i = 0; i < h.protocol_count(); ++i)
      if (h.protocol_name(i) == bus::family_name) return h.core(i);
    throw std::out_of_range("the bus is not served");
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

/// Every event keeps `margin` from its client's poll instants (its start, then
/// every `interval`) and from the end of the run (events and drain).
bool schedule_is_comparable(const run_plan& plan, duration interval, duration margin) {
  const event_schedule schedule(plan);
  const time_point end = time_point{} + plan.length + plan.drain;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const time_point start = schedule.client_start(i);
    for (time_point poll = start; poll <= end + interval; poll += interval)
      if (distance(poll, end) < margin) return false;  // a poll in flight at the end
    for (const time_point t : schedule.times_of(i)) {
      const duration since = t - start;
      const duration before = (since / interval) * interval;
      if (since - before < margin || before + interval - since < margin) return false;
    }
  }
  return true;
}

std::uint64_t counter(const mode_result& m, bus::counter c) { return m.metrics.counter(c); }

}  // namespace

TEST(pollbus_real_vs_virtual, a_seeded_bus_plan_gives_the_same_counts_and_measured_bytes_within_two_percent) {
  protocols::register_all();
  const engine::family* family = engine::registry::instance().find(bus::family_name);
  ASSERT_NE(family, nullptr);

  constexpr duration interval = 3s;
  run_plan plan;
  plan.clients = 16;
  plan.mix = {{"pollbus", "fixed", 1, "bus-soap-keepalive", {}},
              {"pollbus", "fixed", 1, "bus-json-close", {{"pollbus.encoding", "json"}, {"pollbus.keep_alive", "false"}}}};
  plan.set_family_key("pollbus.interval", "3s");
  plan.set_family_key("pollbus.client_interval", "3s");
  plan.events_per_client_hour = 360;  // about 2 a client in 20 s
  plan.length = 20s;
  plan.drain = 1500ms;  // the run ends at 21.5 s, between the polls at 21 s and 24 s
  plan.ramp_up = 0s;
  ASSERT_TRUE(apply_wire_preset(plan.wire, "linux"));
  ASSERT_EQ(plan.validate(), "");
  std::optional<std::uint64_t> seed;
  for (std::uint64_t s = 1; s <= 5000 && !seed; ++s) {
    plan.seed = s;
    if (schedule_is_comparable(plan, interval, 250ms)) seed = s;
  }
  ASSERT_TRUE(seed) << "no seed in 1..5000 keeps every event 250 ms from a poll";
  SCOPED_TRACE("seed " + std::to_string(*seed));

  in_process_notifier served(plan.settings_for(*family));
  ASSERT_FALSE(served.error()) << *served.error();
  const run_result real = run_real(plan, served.options());
  const run_result virt = run_virtual(plan);
  ASSERT_EQ(real.modes.size(), 2u);
  ASSERT_EQ(virt.modes.size(), 2u);

  std::uint64_t real_chats = 0;
  for (std::size_t g = 0; g < 2; ++g) {
    const auto& r = real.modes[g];
    const auto& v = virt.modes[g];
    SCOPED_TRACE(plan.mix[g].name());
    EXPECT_EQ(r.protocol, "pollbus");
    ASSERT_EQ(r.clients, 8u);
    ASSERT_EQ(r.clients, v.clients);
    EXPECT_EQ(r.metrics.clients_ready, r.clients);
    EXPECT_EQ(r.metrics.clients_failed, 0u);
    EXPECT_EQ(counter(r, bus::counter::protocol_errors), 0u);
    EXPECT_EQ(counter(r, bus::counter::http_errors), 0u);

    // The same mail, delivered on the same polls.
    EXPECT_GT(v.events_generated, 5u) << "the plan must put mail through every group";
    EXPECT_EQ(r.events_generated, v.events_generated);
    EXPECT_EQ(r.metrics.events_by_path, v.metrics.events_by_path);
    EXPECT_EQ(r.events_missed(), v.events_missed());
    EXPECT_EQ(r.metrics.counters, v.metrics.counters);  // polls, wasted polls, connections, received_*...
    EXPECT_EQ(counter(r, bus::counter::polls), r.clients * 8);  // at 0, 3, ... 21 s
    real_chats += counter(r, bus::counter::received_chat);

    for (std::size_t k = 0; k < bus::message_kind_count; ++k)
      for (auto d : {direction::to_server, direction::to_client}) {
        SCOPED_TRACE(std::string(bus::to_string(static_cast<bus::message_kind>(k))) +
                     (d == direction::to_server ? " up" : " down"));
        EXPECT_EQ(r.metrics.traffic.cell(k, d).messages, v.metrics.traffic.cell(k, d).messages);
      }

    // Measured on the real wire against the model of it. The model counts
    // each teardown (the closer's FIN and last ACK, the other's FIN: three
    // pure-ACK-sized segments); the measurement leaves teardown out.
    ASSERT_TRUE(r.measured.has_value()) << "a real run measures its wire traffic";
    EXPECT_EQ(r.measured->unmeasured_connections, 0u);
    EXPECT_EQ(r.measured->tcp_connections, counter(r, bus::counter::connections));
    const bool keep_alive = g == 0;
    const std::uint64_t teardowns = keep_alive ? 0 : counter(v, bus::counter::connections);
    const double rb = static_cast<double>(r.measured->total().wire_bytes);
    const double vb = static_cast<double>(v.metrics.traffic.total().wire_bytes -
                                          teardowns * 3 * plan.wire.pure_ack().wire_bytes);
    const double rp = static_cast<double>(r.measured->total().packets);
    const double vp = static_cast<double>(v.metrics.traffic.total().packets - teardowns * 3);
    ASSERT_GT(vb, 0);
    EXPECT_LT(std::abs(rb - vb) / vb, 0.02) << "measured real " << rb << " B, virtual (linux preset) " << vb << " B";
    EXPECT_LT(std::abs(rp - vp) / vp, 0.02) << "measured real " << rp << " packets, virtual " << vp;
    std::printf("%s: measured %.0f B / %.0f packets, virtual %.0f B / %.0f packets (teardown left out)\n",
                plan.mix[g].name().c_str(), rb, rp, vb, vp);
  }

  // The notifier's bus core delivered what the clients received.
  served.stop();
  EXPECT_EQ(stat_of(served.bus_core(), "events_fetched"), real_chats);
  EXPECT_EQ(stat_of(served.bus_core(), "registrations"), plan.clients);
}
