#include <gtest/gtest.h>

#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/latency_histogram.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/random.hpp"

using namespace nudge;
using namespace nudge::metrics;
using namespace std::chrono_literals;

TEST(wire_model, tcp_and_udp_overheads) {
  wire_model w;
  EXPECT_EQ(w.tcp_message(84).wire_bytes, 124u);  // an idle poll request: 84 + 40
  EXPECT_EQ(w.tcp_message(100).wire_bytes, 140u);
  EXPECT_EQ(w.tcp_message(100).packets, 1u);
  EXPECT_EQ(w.tcp_message(3000).packets, 3u);
  EXPECT_EQ(w.tcp_message(3000).wire_bytes, 3000u + 3 * 40);
  EXPECT_EQ(w.udp_message(8).wire_bytes, 36u);  // exchange-protocol.md: 36-44 IP bytes
  w.tcp_options = 12;
  EXPECT_EQ(w.tcp_message(84).wire_bytes, 136u);
}

TEST(ack_tracker, piggybacks_within_delay_and_counts_pure_acks_after) {
  ack_tracker a;
  const time_point t0{};
  EXPECT_EQ(a.on_data_received(t0, 200ms), never);
  EXPECT_EQ(a.on_data_sent(t0 + 50ms), never);  // the response carries the ACK
  EXPECT_EQ(a.on_data_received(t0 + 1s, 200ms), never);
  EXPECT_EQ(a.on_data_sent(t0 + 5s), t0 + 1s + 200ms);  // too late: a pure ACK went out
  EXPECT_EQ(a.on_data_received(t0 + 6s, 200ms), never);
  EXPECT_EQ(a.flush(t0 + 6s + 100ms), never);
  EXPECT_EQ(a.flush(t0 + 7s), t0 + 6s + 200ms);
  EXPECT_EQ(a.flush(t0 + 8s), never);
}

TEST(latency_histogram, quantiles_within_relative_error) {
  latency_histogram h;
  for (int i = 1; i <= 10000; ++i) h.record(std::chrono::microseconds(i));
  EXPECT_EQ(h.count(), 10000u);
  auto near = [](duration got, double want_us) {
    const double g = static_cast<double>(got.count()) / 1000.0;
    return std::abs(g - want_us) / want_us < 0.02;
  };
  EXPECT_TRUE(near(h.quantile(0.5), 5000)) << h.quantile(0.5).count();
  EXPECT_TRUE(near(h.quantile(0.9), 9000));
  EXPECT_TRUE(near(h.quantile(0.99), 9900));
  EXPECT_EQ(h.max(), std::chrono::microseconds(10000));
  EXPECT_EQ(h.min(), std::chrono::microseconds(1));
  EXPECT_EQ(h.quantile(1.0), h.max());
}

TEST(latency_histogram, merge_is_exact) {
  latency_histogram a, b, all;
  rng r(42);
  for (int i = 0; i < 5000; ++i) {
    auto d = r.between(0ns, 10s);
    (i % 2 ? a : b).record(d);
    all.record(d);
  }
  a += b;
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.buckets(), all.buckets());
  for (double q : {0.1, 0.5, 0.9, 0.999}) EXPECT_EQ(a.quantile(q), all.quantile(q));
}

TEST(rng, same_seed_same_sequence_and_bounds) {
  rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(a.next(), c.next());
  for (int i = 0; i < 10000; ++i) {
    auto d = a.between(5s, 10s);
    EXPECT_GE(d, 5s);
    EXPECT_LE(d, 10s);
  }
}

namespace {
// A family's kinds, as its own enum: the traffic row is the enum's value.
enum class test_kind : std::uint8_t { tcp_setup, tcp_ack, poll, ping };
}  // namespace

TEST(traffic_meter, totals_and_merge) {
  using message_kind = test_kind;
  traffic_meter m;
  wire_model w;
  m.add(message_kind::poll, direction::to_server, w.tcp_message(84));
  m.add(message_kind::poll, direction::to_client, w.tcp_message(100));
  m.add(message_kind::ping, direction::to_client, w.udp_message(8));
  EXPECT_EQ(m.total().payload_bytes, 192u);
  EXPECT_EQ(m.total().wire_bytes, 124u + 140u + 36u);
  EXPECT_EQ(m.total(direction::to_client).packets, 2u);
  traffic_meter n = m;
  n += m;
  EXPECT_EQ(n.total().messages, 6u);
}

TEST(traffic_meter, a_kind_is_its_row_index) {
  traffic_meter m;
  wire_model w;
  m.add(test_kind::ping, direction::to_client, w.udp_message(8));
  EXPECT_EQ(m.cell(std::size_t{3}, direction::to_client), w.udp_message(8));
  EXPECT_EQ(m.cell(test_kind::poll, direction::to_client), traffic_cell{});
  m.add(traffic_meter::max_kinds - 1, direction::to_server, w.tcp_message(1));
  EXPECT_EQ(m.total(direction::to_server).messages, 1u);
}

TEST(client_metrics, fit_sizes_once_and_keeps_counts) {
  client_metrics m;
  EXPECT_EQ(m.counter(std::size_t{5}), 0u);  // unsized: reads as zero
  m.fit(3, 4);
  m.add(std::size_t{2});
  m.fit(2, 3);  // never shrinks
  EXPECT_EQ(m.counters.size(), 4u);
  EXPECT_EQ(m.latency_by_path.size(), 3u);
  EXPECT_EQ(m.counter(std::size_t{2}), 1u);
  EXPECT_EQ(m.events_on(7), 0u);
}

TEST(client_metrics, merge_is_exact_and_grows_to_the_longer) {
  enum class counter : std::uint8_t { polls, fetches };
  client_metrics a(2, 1), b(3, 2);
  wire_model w;
  a.add(counter::polls);
  b.add(counter::polls, 2);
  b.add(counter::fetches, 5);
  a.latency_by_path[1].record(1s);
  b.latency_by_path[2].record(2s);
  ++b.events_by_path[2];
  a.traffic.add(test_kind::poll, direction::to_server, w.tcp_message(84));
  b.traffic.add(test_kind::poll, direction::to_server, w.tcp_message(84));
  a.clients_started = 1;
  b.clients_started = 2;
  b.wasted_poll_traffic = w.tcp_message(10);
  a += b;
  EXPECT_EQ(a.counter(counter::polls), 3u);
  EXPECT_EQ(a.counter(counter::fetches), 5u);
  EXPECT_EQ(a.events_on(2), 1u);
  EXPECT_EQ(a.latency_by_path[1].count(), 1u);
  EXPECT_EQ(a.latency_by_path[2].count(), 1u);
  EXPECT_EQ(a.traffic.cell(test_kind::poll, direction::to_server).messages, 2u);
  EXPECT_EQ(a.clients_started, 3u);
  EXPECT_EQ(a.wasted_poll_traffic, w.tcp_message(10));
}
