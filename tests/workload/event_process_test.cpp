// The event processes: long-run rates, burstiness, business hours, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nudge/sim/event_process.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {

// Event times of one client over [0, horizon).
std::vector<time_point> arrivals(const event_process& p, duration horizon, std::uint64_t seed,
                                 event_process::client_state s = {}) {
  rng r(seed);
  std::vector<time_point> out;
  const time_point end = time_point{} + horizon;
  for (time_point t = p.next(time_point{}, s, r); t < end; t = p.next(t, s, r)) out.push_back(t);
  return out;
}

// Counts per window of `width`, over `clients` independent clients.
std::vector<double> window_counts(const event_process& p, duration horizon, duration width, int clients) {
  const auto windows = static_cast<std::size_t>(horizon / width);
  std::vector<double> counts;
  for (int c = 0; c < clients; ++c) {
    std::vector<double> per(windows, 0.0);
    for (auto t : arrivals(p, horizon, 1000 + static_cast<std::uint64_t>(c)))
      per[static_cast<std::size_t>(t.time_since_epoch() / width)] += 1;
    counts.insert(counts.end(), per.begin(), per.end());
  }
  return counts;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double variance_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size() - 1);
}

duration time_of_day(time_point t, duration run_start) { return (t.time_since_epoch() + run_start) % 24h; }

event_process_spec mmpp_spec(double ratio = 10, duration high = 15min, duration low = 45min) {
  event_process_spec s;
  s.kind = event_process_kind::mmpp;
  s.mmpp.burst_ratio = ratio;
  s.mmpp.high_mean = high;
  s.mmpp.low_mean = low;
  return s;
}

}  // namespace

TEST(event_process, poisson_draws_what_the_driver_always_drew) {
  // The default plan must not change: same rng, same draws, to the nanosecond.
  event_process p({}, 60.0);
  rng a(7), b(7);
  event_process::client_state s;
  const duration mean = std::chrono::duration_cast<duration>(std::chrono::duration<double>(3600.0 / 60.0));
  time_point t{};
  for (int i = 0; i < 1000; ++i) {
    const time_point expected = t + b.exponential(mean);
    t = p.next(t, s, a);
    ASSERT_EQ(t, expected) << i;
  }
}

TEST(event_process, poisson_long_run_rate_matches) {
  event_process p({}, 6.25);
  const auto n = arrivals(p, 100000h, 3).size();  // expect 625,000
  EXPECT_NEAR(static_cast<double>(n) / 625000.0, 1.0, 0.01);
}

TEST(event_process, poisson_counts_are_not_overdispersed) {
  event_process p({}, 30.0);
  const auto c = window_counts(p, 2000h, 1h, 20);
  EXPECT_NEAR(mean_of(c), 30.0, 0.6);
  EXPECT_NEAR(variance_of(c) / mean_of(c), 1.0, 0.1);  // Poisson: variance = mean
}

TEST(event_process, mmpp_rates_follow_from_mean_and_shape) {
  mmpp_shape s;  // ratio 10, 15 min high, 45 min low: high share 1/4
  EXPECT_DOUBLE_EQ(s.high_share(), 0.25);
  const double high = s.high_rate(6.25), low = s.low_rate(6.25);
  EXPECT_NEAR(high / low, 10.0, 1e-12);
  EXPECT_NEAR(0.25 * high + 0.75 * low, 6.25, 1e-12);
  mmpp_shape t = s;
  EXPECT_NEAR(t.set_rates(40, 0), 10.0, 1e-12);  // on/off: 40 an hour a quarter of the time
  EXPECT_TRUE(std::isinf(t.burst_ratio));
  EXPECT_EQ(t.low_rate(10.0), 0.0);
  EXPECT_NEAR(t.high_rate(10.0), 40.0, 1e-12);
}

TEST(event_process, mmpp_long_run_rate_matches) {
  event_process p(mmpp_spec(), 10.0);
  double n = 0;
  for (std::uint64_t c = 0; c < 50; ++c) n += static_cast<double>(arrivals(p, 4000h, 77 + c).size());
  EXPECT_NEAR(n / (50 * 4000 * 10.0), 1.0, 0.02);
  EXPECT_DOUBLE_EQ(p.long_run_rate_per_hour(), 10.0);
}

TEST(event_process, mmpp_is_burstier_than_poisson) {
  event_process bursty(mmpp_spec(), 10.0);
  const auto c = window_counts(bursty, 2000h, 1h, 20);
  EXPECT_NEAR(mean_of(c), 10.0, 0.5);
  // Same mean, far more variance: hours in a burst see ~31, quiet hours ~3.
  EXPECT_GT(variance_of(c) / mean_of(c), 3.0);
  // An on/off source is burstier still.
  event_process on_off(mmpp_spec(std::numeric_limits<double>::infinity()), 10.0);
  const auto d = window_counts(on_off, 2000h, 1h, 20);
  EXPECT_NEAR(mean_of(d), 10.0, 0.6);
  EXPECT_GT(variance_of(d) / mean_of(d), variance_of(c) / mean_of(c));
  // Burst ratio 1 is Poisson.
  event_process flat(mmpp_spec(1.0), 10.0);
  const auto f = window_counts(flat, 2000h, 1h, 20);
  EXPECT_NEAR(variance_of(f) / mean_of(f), 1.0, 0.1);
}

TEST(event_process, mmpp_state_is_per_client_and_starts_stationary) {
  // Sojourns far longer than the first gap: the state after the first draw is the initial one.
  event_process p(mmpp_spec(10, 15min * 1000, 45min * 1000), 10.0);
  rng r(5);
  int high = 0;
  const int clients = 20000;
  for (int i = 0; i < clients; ++i) {
    event_process::client_state s;
    (void)p.next(time_point{}, s, r);
    ASSERT_NE(s.phase, 0);
    high += s.phase == 2;
  }
  EXPECT_NEAR(high / double(clients), 0.25, 0.015);  // the high state's stationary share
}

TEST(event_process, business_hours_no_events_outside_the_window) {
  for (duration run_start : std::initializer_list<duration>{0h, 7h, 9h, 13h, 16h + 59min, 20h}) {
    event_process_spec s;
    s.hours.enabled = true;
    s.hours.start = 9h;
    s.hours.end = 17h;
    s.hours.run_starts_at = run_start;
    event_process p(s, 30.0);
    const auto events = arrivals(p, 30 * 24h, 11);
    for (auto t : events) {
      const duration tod = time_of_day(t, run_start);
      ASSERT_GE(tod, 9h) << "run start " << to_seconds(run_start);
      ASSERT_LT(tod, 17h) << "run start " << to_seconds(run_start);
      ASSERT_TRUE(p.active_at(t));
    }
    // 30 days x 8 h x 30 per hour (the first and last partial days aside).
    EXPECT_NEAR(static_cast<double>(events.size()) / p.expected_events(time_point{}, time_point{} + 30 * 24h), 1.0, 0.03);
    EXPECT_NEAR(p.long_run_rate_per_hour(), 10.0, 1e-12);
  }
}

TEST(event_process, business_hours_across_midnight) {
  event_process_spec s;
  s.hours.enabled = true;
  s.hours.start = 22h;
  s.hours.end = 6h;  // a night shift
  s.hours.run_starts_at = 1h;
  event_process p(s, 12.0);
  const auto events = arrivals(p, 20 * 24h, 4);
  ASSERT_FALSE(events.empty());
  for (auto t : events) {
    const duration tod = time_of_day(t, 1h);
    ASSERT_TRUE(tod >= 22h || tod < 6h) << to_seconds(tod);
  }
  EXPECT_NEAR(static_cast<double>(events.size()) / (20 * 8 * 12.0), 1.0, 0.05);
}

TEST(event_process, mmpp_in_business_hours_stays_inside) {
  auto s = mmpp_spec();
  s.hours.enabled = true;
  s.hours.run_starts_at = 0h;
  event_process p(s, 20.0);
  const auto events = arrivals(p, 60 * 24h, 8);
  for (auto t : events) {
    const duration tod = time_of_day(t, 0h);
    ASSERT_GE(tod, 9h);
    ASSERT_LT(tod, 17h);
  }
  EXPECT_NEAR(static_cast<double>(events.size()) / (60 * 8 * 20.0), 1.0, 0.1);
}

TEST(event_process, a_business_day_is_all_business) {
  event_process_spec s;
  s.hours.enabled = true;
  s.hours.day = day_kind::business;
  EXPECT_DOUBLE_EQ(s.active_hours_per_day(), 8.0);  // 50 a day is 6.25 an hour
  event_process p(s, 6.25);
  EXPECT_TRUE(p.active_at(time_point{} + 20h));
  EXPECT_EQ(p.active_before(time_point{} + 20h), 20h);
  // Nothing is mapped: the draws are the plain Poisson ones.
  event_process plain({}, 6.25);
  EXPECT_EQ(arrivals(p, 1000h, 9), arrivals(plain, 1000h, 9));
}

TEST(event_process, active_time_maps_back_and_forth) {
  event_process_spec s;
  s.hours.enabled = true;
  s.hours.start = 8h + 30min;
  s.hours.end = 17h;
  s.hours.run_starts_at = 12h;
  event_process p(s, 1.0);
  // The run starts mid-window: 5 h of it remain on day one.
  EXPECT_EQ(p.active_before(time_point{} + 5h), 5h);
  EXPECT_EQ(p.active_before(time_point{} + 10h), 5h);  // 22:00, closed
  EXPECT_EQ(p.at_active(5h), time_point{} + 20h + 30min);  // next day 08:30
  for (duration a : std::initializer_list<duration>{0h, 1h, 4h + 59min, 5h, 5h + 1min, 13h, 13h + 30min, 100h}) {
    const time_point t = p.at_active(a);
    EXPECT_EQ(p.active_before(t), a) << to_seconds(a);
    EXPECT_TRUE(p.active_at(t)) << to_seconds(a);
  }
  EXPECT_DOUBLE_EQ(p.expected_events(time_point{}, time_point{} + 24h), 5.0 + 3.5);
}

TEST(event_process, zero_and_tiny_rates) {
  event_process none({}, 0.0);
  rng r(1);
  event_process::client_state s;
  EXPECT_EQ(none.next(time_point{}, s, r), never);
  event_process tiny({}, 1e-12);  // one event per ~114 million years
  for (int i = 0; i < 100; ++i) {
    const time_point t = tiny.next(time_point{}, s, r);
    EXPECT_TRUE(t == never || t > time_point{} + 24h * 365);
  }
  event_process tiny_mmpp(mmpp_spec(), 1e-12);
  EXPECT_EQ(tiny_mmpp.next(time_point{}, s, r), never);
}

TEST(event_process, same_seed_same_events) {
  auto s = mmpp_spec();
  s.hours.enabled = true;
  event_process p(s, 20.0);
  EXPECT_EQ(arrivals(p, 200h, 42), arrivals(p, 200h, 42));
  EXPECT_NE(arrivals(p, 200h, 42), arrivals(p, 200h, 43));
}

TEST(event_process, spec_validation) {
  event_process_spec s;
  EXPECT_EQ(s.validate(), "");
  s.kind = event_process_kind::mmpp;
  s.mmpp.burst_ratio = 0.5;
  EXPECT_NE(s.validate(), "");
  s.mmpp.burst_ratio = 2;
  s.mmpp.high_mean = 0s;
  EXPECT_NE(s.validate(), "");
  s = {};
  s.hours.enabled = true;
  s.hours.end = s.hours.start;
  EXPECT_NE(s.validate(), "");
  s.hours.start = 0h;
  s.hours.end = 24h;
  EXPECT_EQ(s.validate(), "");
  EXPECT_DOUBLE_EQ(s.active_hours_per_day(), 24.0);
}
