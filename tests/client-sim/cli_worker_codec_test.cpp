// The real driver's worker processes send client_metrics to the parent as
// JSON; merging what comes back must equal merging in one process, exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/protocol/random.hpp"
#include "nudge/sim/asio_codec.hpp"

using namespace nudge;
using namespace nudge::sim;
using client::client_metrics;
using namespace std::chrono_literals;

namespace {

client_metrics random_metrics(std::uint64_t seed) {
  rng r(seed);
  client_metrics m(client::delivery_path_count, protocol::emsmdb::counter_count);
  metrics::wire_model w;
  for (int i = 0; i < 200; ++i) {
    const auto k = static_cast<protocol::emsmdb::message_kind>(r.next() % protocol::emsmdb::message_kind_count);
    const auto d = static_cast<metrics::direction>(r.next() % 2);
    m.traffic.add(k, d, r.chance(0.5) ? w.tcp_message(r.next() % 5000) : w.udp_message(r.next() % 16));
  }
  for (int i = 0; i < 1000; ++i) {
    const auto lat = r.between(0ns, 30s);
    m.latency.record(lat);
    const auto p = r.next() % client::delivery_path_count;
    m.latency_by_path[p].record(lat);
    ++m.events_by_path[p];
  }
  std::uint64_t v = seed * 1000;
  for (auto* f : {&m.clients_started, &m.clients_ready, &m.clients_failed}) *f = ++v;
  for (auto& c : m.counters) c = ++v;
  m.wasted_poll_traffic = w.tcp_message(seed * 77);
  return m;
}

void expect_same(const client_metrics& a, const client_metrics& b) {
  EXPECT_EQ(a.traffic, b.traffic);
  auto same_hist = [](const metrics::latency_histogram& x, const metrics::latency_histogram& y) {
    EXPECT_EQ(x.count(), y.count());
    EXPECT_EQ(x.raw_buckets(), y.raw_buckets());
    EXPECT_EQ(x.min(), y.min());
    EXPECT_EQ(x.max(), y.max());
    EXPECT_EQ(x.sum_ns(), y.sum_ns());
    EXPECT_EQ(x.mean(), y.mean());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) EXPECT_EQ(x.quantile(q), y.quantile(q));
  };
  same_hist(a.latency, b.latency);
  ASSERT_EQ(a.latency_by_path.size(), b.latency_by_path.size());
  for (std::size_t p = 0; p < a.latency_by_path.size(); ++p) same_hist(a.latency_by_path[p], b.latency_by_path[p]);
  EXPECT_EQ(a.events_by_path, b.events_by_path);
  // Every counter, through the codec's own field list.
  EXPECT_EQ(client_metrics_to_json(a).at("counters"), client_metrics_to_json(b).at("counters"));
  EXPECT_EQ(a.clients_started, b.clients_started);
  EXPECT_EQ(a.counters, b.counters);
  EXPECT_EQ(a.wasted_poll_traffic, b.wasted_poll_traffic);
}

}  // namespace

TEST(worker_codec, round_trip_is_exact) {
  const client_metrics m = random_metrics(3);
  const auto text = client_metrics_to_json(m).dump();  // through text, as over the pipe
  const client_metrics back = client_metrics_from_json(nlohmann::json::parse(text));
  expect_same(m, back);
}

TEST(worker_codec, empty_metrics_round_trip) {
  const client_metrics m;
  const client_metrics back = client_metrics_from_json(nlohmann::json::parse(client_metrics_to_json(m).dump()));
  expect_same(m, back);
  EXPECT_EQ(back.latency.count(), 0u);
  EXPECT_EQ(back.latency.min(), duration::zero());
}

TEST(worker_codec, merging_decoded_slices_equals_merging_in_process) {
  client_metrics in_process;
  client_metrics via_pipes;
  for (std::uint64_t s = 1; s <= 4; ++s) {
    const client_metrics slice = random_metrics(s);
    in_process += slice;
    via_pipes += client_metrics_from_json(nlohmann::json::parse(client_metrics_to_json(slice).dump()));
  }
  expect_same(in_process, via_pipes);
}

TEST(worker_codec, malformed_input_throws) {
  auto j = client_metrics_to_json(random_metrics(5));
  auto bad_bucket = j;
  bad_bucket["latency"]["buckets"].push_back({1u << 30, 1});
  EXPECT_THROW(client_metrics_from_json(bad_bucket), std::out_of_range);
  auto missing = j;
  missing["counters"].erase("family");
  EXPECT_ANY_THROW(client_metrics_from_json(missing));
  auto bad_cell = j;
  bad_cell["traffic"].push_back({999, 0, {1, 1, 1, 1}});
  EXPECT_THROW(client_metrics_from_json(bad_cell), std::out_of_range);
  EXPECT_ANY_THROW(client_metrics_from_json(nlohmann::json::object()));
}
