// The run's event schedule, shared by both drivers: each mailbox's events are a
// function of (plan, seed, client) alone, whoever asks and in whatever order, and
// follow the plan's process (business hours: nothing outside the window).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "nudge/sim/event_schedule.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {

// 40 clients, bursty mail, 24-hour days with a 09:00-17:00 window; the run
// starts at 08:00 and lasts 12 hours, so it begins and ends outside the window.
run_plan office_day() {
  run_plan p;
  p.clients = 40;
  p.seed = 17;
  p.length = 12h;
  p.ramp_up = 10min;
  p.events_per_client_hour = 6;
  p.event_process.kind = event_process_kind::mmpp;
  p.event_process.hours.enabled = true;
  p.event_process.hours.day = day_kind::calendar;
  p.event_process.hours.run_starts_at = 8h;
  return p;
}

using per_client = std::map<std::size_t, std::vector<time_point>>;

per_client drain(event_stream& s) {
  per_client out;
  time_point last{};
  while (!s.empty()) {
    const auto e = s.pop();
    EXPECT_GE(e.at, last);  // one stream, in time order
    last = e.at;
    out[e.client].push_back(e.at);
  }
  return out;
}

}  // namespace

TEST(event_schedule, each_mailbox_depends_on_seed_and_client_only) {
  const run_plan plan = office_day();
  const event_schedule a(plan), b(plan);
  // Asked round-robin, one event at a time, instead of client by client.
  std::vector<event_schedule::mailbox> mail;
  for (std::size_t i = 0; i < plan.clients; ++i) mail.push_back(b.mailbox_of(plan.clients - 1 - i));
  per_client round_robin;
  for (bool more = true; more;) {
    more = false;
    for (std::size_t k = 0; k < mail.size(); ++k) {
      const time_point t = b.next(mail[k]);
      if (t == never) continue;
      round_robin[plan.clients - 1 - k].push_back(t);
      more = true;
    }
  }
  std::size_t events = 0;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const auto times = a.times_of(i);
    EXPECT_EQ(times, round_robin[i]) << "client " << i;
    events += times.size();
  }
  EXPECT_GT(events, plan.clients * 10);  // ~48 per client over the 8 business hours
  EXPECT_NE(a.times_of(0), a.times_of(1));
  run_plan reseeded = plan;
  reseeded.seed = 18;
  EXPECT_NE(event_schedule(reseeded).times_of(0), a.times_of(0));
}

TEST(event_schedule, no_mail_outside_the_business_window_or_the_run) {
  const run_plan plan = office_day();
  const event_schedule s(plan);
  const time_point window_opens = time_point{} + 1h, window_closes = time_point{} + 9h;  // 09:00 and 17:00
  std::size_t events = 0;
  for (std::size_t i = 0; i < plan.clients; ++i)
    for (const time_point t : s.times_of(i)) {
      ++events;
      EXPECT_TRUE(s.process().active_at(t)) << "client " << i << " at " << to_seconds(t.time_since_epoch()) << " s";
      EXPECT_GE(t, window_opens);
      EXPECT_LT(t, window_closes);
      EXPECT_GE(t, s.client_start(i));
    }
  EXPECT_GT(events, 0u);
  // A run that ends before the window opens has no mail at all.
  run_plan early = plan;
  early.length = 59min;
  const event_schedule e(early);
  for (std::size_t i = 0; i < early.clients; ++i) EXPECT_TRUE(e.times_of(i).empty()) << "client " << i;
}

TEST(event_stream, any_split_of_the_clients_streams_the_same_events) {
  // The real driver streams each worker's share of the clients; shares merged
  // give every mailbox's events exactly as the schedule (and the virtual driver) has them.
  const run_plan plan = office_day();
  const event_schedule schedule(plan);
  std::vector<std::size_t> everyone(plan.clients), odd, even_reversed;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    everyone[i] = i;
    (i % 2 ? odd : even_reversed).push_back(i);
  }
  std::reverse(even_reversed.begin(), even_reversed.end());
  event_stream all(plan, everyone), first(plan, odd), second(plan, even_reversed);
  const per_client whole = drain(all);
  per_client split = drain(first);
  for (auto& [client, times] : drain(second)) split[client] = times;
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const auto expected = schedule.times_of(i);
    EXPECT_EQ(whole.count(i) ? whole.at(i) : std::vector<time_point>{}, expected) << "client " << i;
    EXPECT_EQ(split.count(i) ? split.at(i) : std::vector<time_point>{}, expected) << "client " << i;
  }
  run_plan silent = plan;
  silent.events_per_client_hour = 0;
  EXPECT_TRUE(event_stream(silent, everyone).empty());
}
