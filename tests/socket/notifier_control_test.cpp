// The pure pieces of the notifier's driver: the control protocol's parser and
// line splitter, and the built-in Poisson event generator.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "nudge/notifier/control_protocol.hpp"
#include "nudge/notifier/event_generator.hpp"

namespace nudge::notifier {
namespace {

using namespace control;

TEST(control_protocol, ParsesEventWithADnContainingSpaces) {
  const auto c = parse_line("EVENT /o=nudge/ou=First Administrative Group/cn=alice \r");
  const auto* e = std::get_if<inject_events>(&c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->user_dn, "/o=nudge/ou=First Administrative Group/cn=alice");
  EXPECT_EQ(e->count, 1u);
  EXPECT_FALSE(e->batch);
}

TEST(control_protocol, ParsesEventsStatsQuitCaseInsensitively) {
  const auto c = parse_line("events 250 /o=nudge/cn=bob");
  const auto* e = std::get_if<inject_events>(&c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->count, 250u);
  EXPECT_TRUE(e->batch);
  EXPECT_EQ(e->user_dn, "/o=nudge/cn=bob");
  EXPECT_TRUE(std::holds_alternative<query_stats>(parse_line("Stats")));
  EXPECT_TRUE(std::holds_alternative<quit>(parse_line("QUIT")));
  EXPECT_TRUE(std::holds_alternative<query_services>(parse_line("services")));
}

TEST(control_protocol, EventsMayNameTheFamilyTheyAreFor) {
  const auto one = parse_line("EVENT@toy /o=nudge/ou=First Administrative Group/cn=alice");
  const auto* e = std::get_if<inject_events>(&one);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->family, "toy");
  EXPECT_EQ(e->user_dn, "/o=nudge/ou=First Administrative Group/cn=alice");
  EXPECT_FALSE(e->batch);
  const auto many = parse_line("events@EMSMDB 3 /o=nudge/cn=bob");
  e = std::get_if<inject_events>(&many);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->family, "EMSMDB");  // the host matches names case-blind
  EXPECT_EQ(e->count, 3u);
  EXPECT_TRUE(e->batch);
  EXPECT_EQ(e->user_dn, "/o=nudge/cn=bob");
  const auto plain = parse_line("EVENT /o=nudge/cn=carol");
  e = std::get_if<inject_events>(&plain);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->family.empty());
}

std::string error_of(std::string_view line) {
  const auto c = parse_line(line);
  const auto* b = std::get_if<bad_request>(&c);
  return b ? b->reason : "(accepted)";
}

TEST(control_protocol, MalformedLinesSayWhy) {
  EXPECT_EQ(error_of(""), "empty line");
  EXPECT_EQ(error_of("EVENT"), "EVENT needs a user DN");
  EXPECT_EQ(error_of("EVENTS 5"), "EVENTS needs a user DN");
  EXPECT_EQ(error_of("EVENTS x /o=a"), "EVENTS needs a count from 1 to 1000000 before the user DN, got 'x'");
  EXPECT_EQ(error_of("EVENTS 1000001 /o=a"),
            "EVENTS needs a count from 1 to 1000000 before the user DN, got '1000001'");
  EXPECT_EQ(error_of("STATS now"), "STATS takes no argument");
  EXPECT_EQ(error_of("SERVICES all"), "SERVICES takes no argument");
  EXPECT_EQ(error_of("EVENT /o=a\x01"), "user DN contains control characters");
  EXPECT_EQ(error_of("EVENT@ /o=a"), "EVENT@ needs a family name after '@'");
  EXPECT_EQ(error_of("EVENTS@ 2 /o=a"), "EVENTS@ needs a family name after '@'");
  EXPECT_EQ(error_of("EVENT@a@b /o=a"), "not a family name: 'a@b'");
  EXPECT_EQ(error_of("EVENT@toy"), "EVENT needs a user DN");
  EXPECT_EQ(error_of("STATS@toy"), "unknown command 'STATS@toy' (only EVENT and EVENTS take @<family>)");
  EXPECT_EQ(error_of("HELLO\x02"), "unknown command 'HELLO?' (expected EVENT, EVENTS, STATS, SERVICES or QUIT)");
}

TEST(control_protocol, RepliesAreLines) {
  std::string out;
  append_ok_event(out, 7);
  append_ok_events(out, 8, 10);
  append_error(out, "nope");
  EXPECT_EQ(out, "OK 7\nOK 8 10\nERR nope\n");
}

std::vector<std::string> drain(line_reader& r, int* too_long = nullptr) {
  std::vector<std::string> lines;
  std::string_view line;
  while (true) {
    const auto st = r.next(line);
    if (st == line_reader::status::none) break;
    if (st == line_reader::status::too_long) {
      if (too_long) ++*too_long;
      continue;
    }
    lines.emplace_back(line);
  }
  return lines;
}

TEST(line_reader, SplitsAcrossChunksAndStripsCr) {
  line_reader r;
  r.append("EVENT a\r\nEVE");
  EXPECT_EQ(drain(r), std::vector<std::string>{"EVENT a"});
  r.append("NT b\nSTATS\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"EVENT b", "STATS"}));
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(line_reader, OverlongLinesAreReportedOnceAndSkipped) {
  line_reader r;
  int too_long = 0;
  r.append("STATS\n");
  r.append(std::string(max_line + 10, 'x'));
  EXPECT_EQ(drain(r, &too_long), std::vector<std::string>{"STATS"});
  EXPECT_EQ(too_long, 1);
  r.append(std::string(50000, 'y'));  // still the same line: discarded, not buffered
  EXPECT_LE(r.buffered(), max_line);
  r.append("yyy\nQUIT\n");
  EXPECT_EQ(drain(r, &too_long), std::vector<std::string>{"QUIT"});
  EXPECT_EQ(too_long, 1);

  line_reader whole;  // a complete over-long line in one chunk
  whole.append(std::string(max_line + 1, 'z') + "\nSTATS\n");
  too_long = 0;
  EXPECT_EQ(drain(whole, &too_long), std::vector<std::string>{"STATS"});
  EXPECT_EQ(too_long, 1);
}

TEST(event_generator, DisabledOrWithoutMailboxesItNeverFires) {
  event_generator off(0, 1);
  off.set_mailbox_count(time_point{}, 10);
  EXPECT_EQ(off.next_deadline(), never);
  event_generator none(60, 1);
  EXPECT_EQ(none.next_deadline(), never);
}

TEST(event_generator, RateMatchesPoissonMeanAndSpreadsOverMailboxes) {
  // 100 mailboxes at 36 per hour for 10 simulated hours: 36000 events expected.
  event_generator g(36, 7);
  g.set_mailbox_count(time_point{}, 100);
  std::vector<mailbox_id> due;
  const time_point end = time_point{} + std::chrono::hours(10);
  for (time_point t{}; t < end; t += std::chrono::seconds(1)) g.due(t, due);
  const double n = static_cast<double>(due.size());
  EXPECT_NEAR(n, 36000.0, 5 * std::sqrt(36000.0));  // five standard deviations
  std::vector<int> per(100, 0);
  for (mailbox_id mb : due) {
    ASSERT_LT(mb, 100u);
    ++per[mb];
  }
  for (int c : per) EXPECT_NEAR(c, 360, 5 * std::sqrt(360.0));
  EXPECT_EQ(g.generated(), due.size());
}

TEST(event_generator, SameSeedSameSchedule) {
  auto run = [](std::uint64_t seed) {
    event_generator g(120, seed);
    g.set_mailbox_count(time_point{}, 5);
    std::vector<mailbox_id> due;
    g.due(time_point{} + std::chrono::hours(1), due);
    return due;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(event_generator, NewMailboxesRaiseTheRate) {
  event_generator g(3600, 1);  // one a second per mailbox
  g.set_mailbox_count(time_point{}, 1);
  std::vector<mailbox_id> due;
  g.due(time_point{} + std::chrono::seconds(100), due);
  const auto one = due.size();
  g.set_mailbox_count(time_point{} + std::chrono::seconds(100), 10);
  due.clear();
  g.due(time_point{} + std::chrono::seconds(200), due);
  EXPECT_GT(due.size(), 5 * one);
}

}  // namespace
}  // namespace nudge::notifier
