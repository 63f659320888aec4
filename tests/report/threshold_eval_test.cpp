// Thresholds evaluated on the hand-written result tests/report/data/small.json.
#include <gtest/gtest.h>

#include "nudge/report/threshold.hpp"
#include "report_test_support.hpp"

namespace nudge::report {
namespace {

using namespace testing;

input_set small_set() { return load_inputs({small_json().string()}).value(); }

std::vector<evaluation> eval(std::string_view text, const input_set& set, const input_set* baseline = nullptr) {
  auto r = parse_threshold(text);
  if (auto* e = std::get_if<threshold_error>(&r)) {
    ADD_FAILURE() << e->what();
    return {};
  }
  const auto& t = std::get<threshold>(r);
  if (auto e = check_against(t, set, baseline)) {
    ADD_FAILURE() << e->what();
    return {};
  }
  return evaluate(t, set, baseline);
}

evaluation one(std::string_view text, const input_set& set, const input_set* baseline = nullptr) {
  auto ev = eval(text, set, baseline);
  EXPECT_EQ(ev.size(), 1u) << text;
  return ev.empty() ? evaluation{} : ev.front();
}

TEST(threshold_eval, reads_the_documented_fields) {
  const auto set = small_set();
  ASSERT_EQ(set.runs.size(), 1u);
  EXPECT_EQ(set.runs[0].name, "small");
  struct expect {
    const char* text;
    double lhs;
  };
  const expect cases[] = {
      {"poll.wire_bytes_per_client_hour == 0", 18200},
      {"poll.packets_per_client_hour == 0", 190},
      {"poll.payload_bytes_per_client_hour == 0", 12000},
      {"poll.messages_per_client_hour == 0", 130},
      {"poll.wire_bytes == 0", 182000},
      {"poll.wasted_polls == 0", 540},
      {"poll.unnecessary_bytes_per_client_hour == 0", 15336},
      {"poll.unnecessary_packets_per_client_hour == 0", 108},
      {"poll.unnecessary_bytes_per_hour == 0", 153360},
      {"push.missed == 0", 1},
      {"push.generated == 0", 62},
      {"push.fetched == 0", 61},
      {"push.fetched_by_push == 0", 56},
      {"push.fetched_by_poll == 0", 5},
      {"push.latency.p50 == 0", 0.004},
      {"push.latency.p90 == 0", 0.004},
      {"push.latency.p99 == 0", 30},
      {"push.latency.p999 == 0", 31},
      {"push.latency.max == 0", 31},
      {"push.latency.mean == 0", 2.5},
      {"push.latency.count == 0", 61},
      {"push.latency.poll.p50 == 0", 20},
      {"push.latency.push.count == 0", 56},
      {"push.latency.async.count == 0", 0},  // absent path: no events
      {"push.kind.ping.wire_bytes == 0", 2016},  // both directions
      {"push.kind.register.to_server.payload_bytes == 0", 900},
      {"push.kind.fault.packets == 0", 0},  // kinds without traffic are left out of the file: 0
      {"async.async_timeouts == 0", 2},
      {"push.clients_failed == 0", 0},
      {"total.missed == 0", 1},
      {"all.generated == 0", 180},
      {"push[symmetric].missed == 0", 1},
      {"push[none].fetched_by_push == 0", 31},
      {"push[symmetric].wire_bytes_per_client_hour == 0", 4000},
      {"run.clients == 0", 30},
      {"run.measured == 0", 3600},
      {"run.datagrams_no_route == 0", 5},
      {"small:push.missed * 10 + 1 == 0", 11},
  };
  for (const auto& c : cases) {
    const auto ev = one(c.text, set);
    ASSERT_TRUE(ev.lhs) << c.text << ": " << ev.message;
    EXPECT_DOUBLE_EQ(*ev.lhs, c.lhs) << c.text;
  }
}

TEST(threshold_eval, verdicts_messages_and_values) {
  const auto set = small_set();
  // 3000 < 0.2 * 18200 = 3640
  auto ev = one("push.wire_bytes_per_client_hour < 0.2 * poll.wire_bytes_per_client_hour", set);
  EXPECT_TRUE(ev.passed);
  EXPECT_EQ(ev.run, "small");
  EXPECT_EQ(ev.message, "3000 B < 3640 B is true");
  ASSERT_EQ(ev.values.size(), 2u);
  EXPECT_EQ(ev.values[0].first, "push.wire_bytes_per_client_hour");
  EXPECT_EQ(ev.values[0].second, 3000);
  EXPECT_EQ(ev.values[1].first, "poll.wire_bytes_per_client_hour");

  ev = one("push.missed == 0", set);
  EXPECT_FALSE(ev.passed);
  EXPECT_EQ(ev.message, "1 == 0 is false");

  EXPECT_TRUE(one("poll.latency.p99 < 1min", set).passed);      // 59.4 s
  EXPECT_FALSE(one("poll.latency.max < 1min", set).passed);     // 60 s
  EXPECT_TRUE(one("async.latency.p99 <= 3ms", set).passed);
  EXPECT_EQ(one("async.latency.p99 <= 3ms", set).message, "0.003 s <= 0.003 s is true");
  EXPECT_TRUE(one("push[none].fetched_by_push == push[none].fetched", set).passed);
  EXPECT_TRUE(one("push.missed / push.generated < 2%", set).passed);  // 1/62
  EXPECT_TRUE(one("poll.unnecessary_bytes_per_client_hour > 15KB", set).passed);
  EXPECT_TRUE(one("push.latency.p99 > 2 * push.latency.p50", set).passed);
}

TEST(threshold_eval, no_data_fails_and_says_why) {
  const auto set = small_set();
  auto ev = one("async.latency.push.p50 < 1s", set);  // async clients fetched nothing by push
  EXPECT_FALSE(ev.passed);
  EXPECT_EQ(ev.message, "no data: async.latency.push.p50: no data in small");

  ev = one("async.wasted_polls / async.polls < 1", set);  // 0 / 0
  EXPECT_FALSE(ev.passed);
  EXPECT_NE(ev.message.find("not a number"), std::string::npos) << ev.message;

  ev = one("async[symmetric].missed == 0", set);  // no such group: applies nowhere
  EXPECT_FALSE(ev.passed);
  EXPECT_EQ(ev.run, "");
  EXPECT_EQ(ev.message, "applies to no input: small has no async[symmetric] group");
}

TEST(threshold_eval, unqualified_thresholds_apply_to_every_run_that_has_the_mode) {
  temp_dir dir;
  auto poll_only = small();
  poll_only["modes"].erase("push");
  poll_only["modes"].erase("async");
  write_file(dir.path / "a.json", small().dump());
  write_file(dir.path / "b.json", poll_only.dump());
  const auto set = load_inputs({dir.path.string()}).value();
  ASSERT_EQ(set.names(), (std::vector<std::string>{"a", "b"}));

  const auto poll = eval("poll.missed == 0", set);
  ASSERT_EQ(poll.size(), 2u);
  EXPECT_EQ(poll[0].run, "a");
  EXPECT_EQ(poll[1].run, "b");

  const auto push = eval("push.missed <= 1", set);  // b has no push clients
  ASSERT_EQ(push.size(), 1u);
  EXPECT_EQ(push[0].run, "a");

  const auto qualified = eval("a:push.missed == b:poll.missed + 1", set);  // every metric names its run
  ASSERT_EQ(qualified.size(), 1u);
  EXPECT_EQ(qualified[0].run, "");
  EXPECT_TRUE(qualified[0].passed);

  const auto mixed = eval("poll.wasted_polls == a:poll.wasted_polls", set);
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_TRUE(mixed[0].passed && mixed[1].passed);
}

TEST(threshold_eval, names_that_fit_no_input_are_usage_errors) {
  const auto set = small_set();
  auto t = std::get<threshold>(parse_threshold("nat-mix:push.missed == 0"));
  auto e = check_against(t, set, nullptr);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->position, 0u);
  EXPECT_EQ(e->length, 7u);
  EXPECT_EQ(e->message, "no input run is named 'nat-mix' (runs: small)");

  t = std::get<threshold>(parse_threshold("push.missed < 1 + change(push.missed)"));
  e = check_against(t, set, nullptr);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->position, 18u);
  EXPECT_NE(e->message.find("--baseline"), std::string::npos);
}

TEST(threshold_eval, scenario_thresholds_are_read_from_the_plan_and_bound_to_their_run) {
  temp_dir dir;
  write_file(dir.path / "a.json", small().dump());
  write_file(dir.path / "b.json", small().dump());
  const auto set = load_inputs({dir.path.string()}).value();
  EXPECT_EQ(set.runs[0].declared_thresholds(), (std::vector<std::string>{"push.missed == 0"}));
  auto t = std::get<threshold>(parse_threshold("push.missed == 0", "a: plan.report.thresholds[0]"));
  t.scope_run = "a";
  const auto ev = evaluate(t, set, nullptr);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].run, "a");
  EXPECT_FALSE(ev[0].passed);
}

// A real run's result carries measured wire figures beside the model's:
// wire bytes and packets are then the measured ones, and the run says so.
TEST(threshold_eval, real_runs_use_their_measured_wire_figures) {
  auto result = small();
  result["clock"] = "real";
  auto& poll = result["modes"]["poll"];
  const double modelled = poll["traffic"]["per_client_hour"]["wire_bytes"].get<double>();
  poll["measured"] = {{"source", "kernel tcp_info + socket counts"},
                      {"wire_bytes", 7}, {"packets", 3},
                      {"per_client_hour", {{"wire_bytes", modelled + 1234}, {"packets", 5}}}};
  result["total"]["measured"] = {{"source", "kernel tcp_info + socket counts"}};
  temp_dir dir;
  const auto path = dir.path / "real.json";
  write_file(path, result.dump());
  const auto set = load_inputs({path.string()}).value();
  ASSERT_EQ(set.runs.size(), 1u);
  EXPECT_DOUBLE_EQ(one("poll.wire_bytes_per_client_hour == 0", set).values[0].second.value_or(-1), modelled + 1234);
  EXPECT_DOUBLE_EQ(one("poll.packets_per_client_hour == 0", set).values[0].second.value_or(-1), 5);
  EXPECT_DOUBLE_EQ(one("poll.wire_bytes == 0", set).values[0].second.value_or(-1), 7);
  EXPECT_DOUBLE_EQ(one("poll.packets == 0", set).values[0].second.value_or(-1), 3);
  // Not measured: payload stays the sessions' count.
  EXPECT_DOUBLE_EQ(one("poll.payload_bytes_per_client_hour == 0", set).values[0].second.value_or(-1),
                   poll["traffic"]["per_client_hour"]["payload_bytes"].get<double>());
  EXPECT_NE(set.runs[0].summary().find("measured (kernel tcp_info + socket counts)"), std::string::npos)
      << set.runs[0].summary();
}

}  // namespace
}  // namespace nudge::report
