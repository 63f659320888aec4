// The threshold language: every operator, units, metric references, and errors
// that point at the right column.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iterator>

#include <nlohmann/json.hpp>

#include "nudge/report/metrics.hpp"
#include "nudge/report/threshold.hpp"

namespace nudge::report {
namespace {

// The parser knows the names the results read so far use; these tests read
// none, so they learn the vocabulary block a client-sim result carries.
const bool names_learnt = [] {
  learn_names(nlohmann::json::parse(R"({"vocabulary": {"emsmdb": {
    "modes": ["poll", "push", "async"],
    "paths": ["poll", "push", "async"],
    "kinds": ["tcp_setup", "tcp_ack", "bind", "connect", "register", "poll", "fetch", "dummy", "async_connect",
              "async_wait", "ping", "keepalive", "fault"],
    "counters": ["polls", "wasted_polls", "fetches", "wasted_fetches", "events_fetched", "pings_received"]}}})"));
  return true;
}();

threshold parse_ok(std::string_view text) {
  auto r = parse_threshold(text);
  if (auto* e = std::get_if<threshold_error>(&r)) {
    ADD_FAILURE() << "did not parse: " << e->what();
    return {};
  }
  return std::get<threshold>(std::move(r));
}

threshold_error parse_err(std::string_view text) {
  auto r = parse_threshold(text);
  if (auto* e = std::get_if<threshold_error>(&r)) return *e;
  ADD_FAILURE() << "parsed, but should not: " << text;
  return {};
}

// A threshold without metrics is evaluated once, on nothing: a calculator.
bool holds(std::string_view text) {
  const threshold t = parse_ok(text);
  if (!t.lhs) return false;
  const input_set none;
  const auto ev = evaluate(t, none, nullptr);
  EXPECT_EQ(ev.size(), 1u) << text;
  return !ev.empty() && ev.front().passed;
}

double side(std::string_view text) {
  const threshold t = parse_ok(text);
  const input_set none;
  const auto ev = evaluate(t, none, nullptr);
  return ev.empty() || !ev.front().lhs ? std::nan("") : *ev.front().lhs;
}

TEST(threshold_parser, every_comparison) {
  EXPECT_EQ(parse_ok("push.missed < 1").op, comparison::lt);
  EXPECT_EQ(parse_ok("push.missed <= 1").op, comparison::le);
  EXPECT_EQ(parse_ok("push.missed > 1").op, comparison::gt);
  EXPECT_EQ(parse_ok("push.missed >= 1").op, comparison::ge);
  EXPECT_EQ(parse_ok("push.missed == 1").op, comparison::eq);
  EXPECT_EQ(parse_ok("push.missed != 1").op, comparison::ne);
  EXPECT_TRUE(holds("1 < 2"));
  EXPECT_FALSE(holds("2 < 2"));
  EXPECT_TRUE(holds("2 <= 2"));
  EXPECT_FALSE(holds("3 <= 2"));
  EXPECT_TRUE(holds("3 > 2"));
  EXPECT_FALSE(holds("2 > 2"));
  EXPECT_TRUE(holds("2 >= 2"));
  EXPECT_FALSE(holds("1 >= 2"));
  EXPECT_TRUE(holds("2 == 2"));
  EXPECT_FALSE(holds("2 == 3"));
  EXPECT_TRUE(holds("2 != 3"));
  EXPECT_FALSE(holds("2 != 2"));
}

TEST(threshold_parser, arithmetic_precedence_and_associativity) {
  EXPECT_DOUBLE_EQ(side("1 + 2 * 3 == 0"), 7);
  EXPECT_DOUBLE_EQ(side("(1 + 2) * 3 == 0"), 9);
  EXPECT_DOUBLE_EQ(side("7 - 2 - 1 == 0"), 4);
  EXPECT_DOUBLE_EQ(side("12 / 3 / 2 == 0"), 2);
  EXPECT_DOUBLE_EQ(side("10 / 4 == 0"), 2.5);
  EXPECT_DOUBLE_EQ(side("-2 * -3 == 0"), 6);
  EXPECT_DOUBLE_EQ(side("+5 - -5 == 0"), 10);
  EXPECT_DOUBLE_EQ(side("2 * (3 + (4 - 1)) / 4 == 0"), 3);
  EXPECT_DOUBLE_EQ(side("1.5e3 == 0"), 1500);
  EXPECT_DOUBLE_EQ(side(".5 == 0"), 0.5);
  EXPECT_TRUE(holds("1+2*3==7"));  // no spaces needed
}

TEST(threshold_parser, units) {
  EXPECT_TRUE(holds("2s == 2000ms"));
  EXPECT_TRUE(holds("1min == 60s"));
  EXPECT_TRUE(holds("1h == 3600s"));
  EXPECT_TRUE(holds("1d == 24h"));
  EXPECT_TRUE(holds("500ms == 0.5s"));
  EXPECT_TRUE(holds("250us == 0.25ms"));
  EXPECT_TRUE(holds("250\xC2\xB5s == 250us"));
  EXPECT_NEAR(side("1000ns == 0"), 1e-6, 1e-18);
  EXPECT_TRUE(holds("10KB == 10000B"));
  EXPECT_TRUE(holds("10kB == 10KB"));
  EXPECT_TRUE(holds("1KiB == 1024B"));
  EXPECT_TRUE(holds("1MiB == 1024KiB"));
  EXPECT_TRUE(holds("1GiB == 1024MiB"));
  EXPECT_TRUE(holds("1MB == 1000KB"));
  EXPECT_TRUE(holds("1GB == 1000MB"));
  EXPECT_TRUE(holds("5% == 0.05"));
  EXPECT_TRUE(holds("+5% > 0"));
  EXPECT_TRUE(holds("-5% < 0"));
  EXPECT_TRUE(holds("2s == 2"));  // a plain number is as many seconds (or bytes)
  EXPECT_TRUE(holds("1.5KB == 1500"));
}

TEST(threshold_parser, metric_references) {
  const auto refs = parse_ok("nat-mix:push[symmetric/60s].missed + all.missed < run.datagrams_lost + "
                             "business-day:async.fetched_by_async")
                        .refs();
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_EQ(refs[0].run, "nat-mix");
  EXPECT_EQ(refs[0].mode, "push");
  ASSERT_TRUE(refs[0].nat);
  EXPECT_EQ(*refs[0].nat, "symmetric/60s");
  EXPECT_EQ(refs[0].metric->name, "missed");
  EXPECT_EQ(refs[0].text, "nat-mix:push[symmetric/60s].missed");
  EXPECT_EQ(refs[0].position, 0u);
  EXPECT_EQ(refs[1].mode, "total");  // "all" is the total block
  EXPECT_FALSE(refs[1].nat);
  EXPECT_EQ(refs[2].mode, "run");
  EXPECT_EQ(refs[2].metric->name, "datagrams_lost");
  EXPECT_EQ(refs[3].run, "business-day");
  EXPECT_EQ(refs[3].metric->name, "fetched_by_async");
  const auto latency = parse_ok("business-day:async.latency.p99 < 1s").refs();
  ASSERT_EQ(latency.size(), 1u);
  EXPECT_EQ(latency[0].metric->name, "latency.p99");
  EXPECT_EQ(latency[0].metric->dim, dimension::time);

  // A minus between two metrics is a minus, not part of a name.
  const auto diff = parse_ok("poll.wire_bytes-push.wire_bytes > 0").refs();
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[1].text, "push.wire_bytes");

  // Generated metric families.
  EXPECT_TRUE(parse_ok("push.latency.push.p50 < 1s").lhs);
  EXPECT_TRUE(parse_ok("push.kind.ping.to_client.wire_bytes > 0").lhs);
  EXPECT_TRUE(parse_ok("poll.unnecessary_bytes_per_client_hour > 10KB").lhs);
  EXPECT_FALSE(parse_ok("push.missed == 0").needs_baseline());
  EXPECT_TRUE(parse_ok("change(push.missed) == 0").needs_baseline());
  EXPECT_TRUE(parse_ok("baseline(push.missed) == push.missed").needs_baseline());
}

struct bad {
  const char* text;
  std::size_t column;  // 1-based, as the message says
  const char* says;
};

TEST(threshold_parser, errors_say_what_and_where) {
  const bad cases[] = {
      {"", 1, "empty threshold"},
      {"push.missed", 12, "expected a comparison"},
      {"push.missed = 0", 13, "write =="},
      {"push.missed ! 0", 13, "!="},
      {"push.missed < ", 15, "expected a number, a metric or '('"},
      {"push.mised == 0", 6, "did you mean 'missed'?"},
      {"pushh.missed == 0", 1, "unknown mode 'pushh'"},
      {"missed == 0", 1, "'missed' is not a metric"},
      {"push.latency.p99 < 2parsecs", 21, "unknown unit 'parsecs'"},
      {"push.missed < 2 s", 17, "right after its number"},
      {"(push.missed < 1", 14, "expected ')'"},
      {"push.missed < 1)", 16, "unexpected ')'"},
      {"push.missed < 1 < 2", 17, "one comparison per threshold"},
      {"push[symmetric.missed == 0", 5, "unclosed '['"},
      {"push[].missed == 0", 5, "empty NAT group"},
      {"total[none].missed == 0", 6, "belong to a mode"},
      {"push.latency.p99 < 10KB", 18, "cannot compare a time with bytes"},
      {"push.wire_bytes + push.latency.p50 > 0", 17, "cannot add bytes with a time"},
      {"push.missed - 2s > 0", 13, "cannot subtract a count with a time"},
      {"foo(push.missed) < 1", 1, "unknown function 'foo'"},
      {"change(change(push.missed)) < 1", 8, "cannot be used inside"},
      {"push.missed < $", 15, "unexpected character '$'"},
      {"push.missed < 'x'", 15, "quotes"},
      {"run.clinets > 0", 5, "unknown run metric 'clinets' (did you mean 'clients'?)"},
      {"push. == 0", 6, "expected a metric name"},
      {"push == 0", 5, "expected '.' and a metric name after 'push'"},
      {"business-day: == 0", 14, "expected a mode"},
      {"1 2 == 0", 3, "expected an operator"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const threshold_error e = parse_err(c.text);
    EXPECT_EQ(e.position + 1, c.column) << e.what();
    EXPECT_NE(e.message.find(c.says), std::string::npos) << e.what();
    EXPECT_EQ(e.text, c.text);
  }
}

TEST(threshold_parser, error_text_has_a_caret_under_the_problem) {
  const threshold_error e = parse_err("push.mised == 0");
  EXPECT_EQ(e.what(), "--threshold: column 6: unknown metric 'mised' (did you mean 'missed'?)\n"
                      "  push.mised == 0\n"
                      "       ^~~~~");
}

TEST(threshold_parser, files_skip_comments_and_name_the_line) {
  auto ok = parse_threshold_lines("# limits\n\npush.missed == 0\n  poll.missed < 1   \r\n# done\n", "limits.txt");
  ASSERT_TRUE(std::holds_alternative<std::vector<threshold>>(ok));
  const auto& list = std::get<std::vector<threshold>>(ok);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].origin, "limits.txt:3");
  EXPECT_EQ(list[1].text, "poll.missed < 1");
  EXPECT_EQ(list[1].origin, "limits.txt:4");

  auto bad_file = parse_threshold_lines("push.missed == 0\npush.missed =< 1\n", "limits.txt");
  ASSERT_TRUE(std::holds_alternative<threshold_error>(bad_file));
  const auto& e = std::get<threshold_error>(bad_file);
  EXPECT_EQ(e.origin, "limits.txt:2");
  EXPECT_EQ(e.position, 12u);
}

TEST(threshold_parser, random_text_parses_or_fails_with_a_position_never_throws) {
  // Pieces of the grammar, glued at random: most combinations are wrong.
  static constexpr const char* pieces[] = {
      "push", "poll", "async", "total", "run", ".", "missed", "latency", "p99", "[", "]", "symmetric", ":", "nat-mix",
      "(", ")", "change", "baseline", "+", "-", "*", "/", "<", "<=", "==", "!=", ">", "=", "!", " ", "2", "2s", "10KB",
      "5%", "1e", ".5", "e", "wire_bytes_per_client_hour", "kind", "ping", "\xC2\xB5s", "\xC2", "#", "'", "\t", "0"};
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::size_t parsed = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string text;
    const std::uint64_t n = next() % 12;
    for (std::uint64_t k = 0; k < n; ++k) text += pieces[next() % std::size(pieces)];
    parse_result r;
    ASSERT_NO_THROW(r = parse_threshold(text)) << text;
    if (const auto* e = std::get_if<threshold_error>(&r)) {
      ASSERT_LE(e->position, text.size()) << text;
      ASSERT_FALSE(e->message.empty()) << text;
      (void)e->what();
    } else {
      ++parsed;
    }
  }
  EXPECT_GT(parsed, 0u);
}

}  // namespace
}  // namespace nudge::report
