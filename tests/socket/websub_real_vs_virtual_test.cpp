// WebSub (seed 000) on real sockets against the same plan in virtual time: a
// notifier in this process serves the hub (made from the plan's own keys),
// run_real drives subscribers that listen on loopback for the hub's
// callbacks, run_virtual runs the same plan. They give the same messages per
// kind and direction, the same counters and events, and the real run's
// measured wire bytes (kernel TCP_INFO, both the connections the subscribers
// opened and those the hub opened to them) are within 2 % of the virtual
// run's with the Linux wire preset, teardown left out of both.
//
// An event that comes while a subscriber is still being verified is missed
// in one run and not the other, so the test takes the first seed whose
// events all keep a safe margin from every subscriber's start and from the
// end of the run.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "nudge/websub/family.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;
using metrics::direction;

namespace {

const protocol::ip_endpoint any_loopback_port = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);

class in_process_hub {
 public:
  explicit in_process_hub(engine::settings keys) : keys_(std::move(keys)) {
    notifier::server_config cfg;
    cfg.tcp_listen = any_loopback_port;
    cfg.udp_bind = any_loopback_port;
    cfg.control = any_loopback_port;
    const engine::family* f = engine::registry::instance().find(websub::family_name);
    engine::server_context ctx;
    ctx.keys = &keys_;
    std::vector<notifier::served_protocol> others;
    others.push_back({f->name, f->make_server(ctx), any_loopback_port, any_loopback_port, {}});
    server_ = std::make_unique<notifier::notifier_server>(
        io_, cfg, [](notifier::log_level, std::string_view) {}, std::move(others));
    error_ = server_->start();
    if (!error_) thread_ = std::thread([this] { io_.run(); });
  }
  ~in_process_hub() { stop(); }

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
  std::uint64_t stat(std::string_view name) const {
    const auto& h = server_->host();
    for (std::size_t i = 0; i < h.protocol_count(); ++i)
      if (h.protocol_name(i) == websub::family_name)
        for (const auto& [n, v] : h.core(i).stats())
          if (n == name) return v;
    throw std::out_of_range("no counter " + std::string(name));
  }

 private:
  boost::asio::io_context io_{1};
  engine::settings keys_;
  std::unique_ptr<notifier::notifier_server> server_;
  std::optional<std::string> error_;
  std::thread thread_;
};

duration distance(time_point a, time_point b) { return a > b ? a - b : b - a; }

bool schedule_is_comparable(const run_plan& plan, duration margin) {
  const event_schedule schedule(plan);
  const time_point end = time_point{} + plan.length + plan.drain;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const time_point start = schedule.client_start(i);
    for (const time_point t : schedule.times_of(i))
      if (t - start < margin || distance(t, end) < margin) return false;
  }
  return true;
}

std::uint64_t counter(const mode_result& m, websub::counter c) { return m.metrics.counter(c); }

}  // namespace

TEST(websub_real_vs_virtual, a_seeded_plan_gives_the_same_counts_and_measured_bytes_within_two_percent) {
  protocols::register_all();
  const engine::family* family = engine::registry::instance().find(websub::family_name);
  ASSERT_NE(family, nullptr);

  run_plan plan;
  plan.clients = 12;
  plan.mix = {{"websub", "subscriber", 1}};
  plan.events_per_client_hour = 360;  // about 2 a client in 20 s
  plan.length = 20s;
  plan.drain = 2s;
  plan.ramp_up = 2s;
  ASSERT_TRUE(apply_wire_preset(plan.wire, "linux"));
  ASSERT_EQ(plan.validate(), "");
  std::optional<std::uint64_t> seed;
  for (std::uint64_t s = 1; s <= 5000 && !seed; ++s) {
    plan.seed = s;
    if (schedule_is_comparable(plan, 500ms)) seed = s;
  }
  ASSERT_TRUE(seed) << "no seed in 1..5000 keeps every event 500 ms from a start and the end";
  SCOPED_TRACE("seed " + std::to_string(*seed));

  in_process_hub hub(plan.settings_for(*family));
  ASSERT_FALSE(hub.error()) << *hub.error();
  const run_result real = run_real(plan, hub.options());
  const run_result virt = run_virtual(plan);
  ASSERT_EQ(real.modes.size(), 1u);
  ASSERT_EQ(virt.modes.size(), 1u);
  const auto& r = real.modes[0];
  const auto& v = virt.modes[0];
  ASSERT_EQ(r.clients, 12u);
  EXPECT_EQ(r.metrics.clients_ready, r.clients);
  EXPECT_EQ(r.metrics.clients_failed, 0u);
  EXPECT_EQ(counter(r, websub::counter::verify_failures), 0u);
  EXPECT_EQ(counter(r, websub::counter::bad_signatures), 0u);

  EXPECT_GT(v.events_generated, 5u) << "the plan must put events through";
  EXPECT_EQ(r.events_generated, v.events_generated);
  EXPECT_EQ(r.events_missed(), 0u);
  EXPECT_EQ(r.metrics.events_by_path, v.metrics.events_by_path);
  EXPECT_EQ(r.metrics.counters, v.metrics.counters);
  for (std::size_t k = 0; k < websub::message_kind_count; ++k)
    for (auto d : {direction::to_server, direction::to_client}) {
      SCOPED_TRACE(std::string(websub::to_string(static_cast<websub::message_kind>(k))) +
                   (d == direction::to_server ? " up" : " down"));
      EXPECT_EQ(r.metrics.traffic.cell(k, d).messages, v.metrics.traffic.cell(k, d).messages);
    }

  ASSERT_TRUE(r.measured.has_value()) << "a real run measures its wire traffic";
  EXPECT_EQ(r.measured->unmeasured_connections, 0u);
  const std::uint64_t connections = counter(v, websub::counter::connections) + counter(v, websub::counter::callbacks);
  EXPECT_EQ(r.measured->tcp_connections, connections);
  const double rb = static_cast<double>(r.measured->total().wire_bytes);
  const double vb =
      static_cast<double>(v.metrics.traffic.total().wire_bytes - connections * 3 * plan.wire.pure_ack().wire_bytes);
  const double rp = static_cast<double>(r.measured->total().packets);
  const double vp = static_cast<double>(v.metrics.traffic.total().packets - connections * 3);
  ASSERT_GT(vb, 0);
  EXPECT_LT(std::abs(rb - vb) / vb, 0.02) << "measured real " << rb << " B, virtual (linux preset) " << vb << " B";
  EXPECT_LT(std::abs(rp - vp) / vp, 0.02) << "measured real " << rp << " packets, virtual " << vp;
  std::printf("websub: measured %.0f B / %.0f packets, virtual %.0f B / %.0f packets (teardown left out)\n", rb, rp, vb,
              vp);

  hub.stop();
  EXPECT_EQ(hub.stat("deliveries_ok"), counter(r, websub::counter::received));
  EXPECT_EQ(hub.stat("verifications_ok"), counter(r, websub::counter::verifications));
}
