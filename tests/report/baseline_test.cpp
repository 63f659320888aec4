// Comparing with a baseline: the change table, change()/baseline() in thresholds.
#include <gtest/gtest.h>

#include "nudge/report/report.hpp"
#include "nudge/report/threshold.hpp"
#include "report_test_support.hpp"

namespace nudge::report {
namespace {

using namespace testing;
using nlohmann::json;

// small.json as "old/small.json", and a "new/small.json" whose push clients
// spend 10 % more bytes and miss nothing.
struct pair_of_runs {
  temp_dir dir;
  fs::path old_file = dir.path / "old" / "small.json";
  fs::path new_file = dir.path / "new" / "small.json";
  pair_of_runs() {
    write_file(old_file, read_file(small_json()));
    json j = small();
    j["modes"]["push"]["traffic"]["per_client_hour"]["wire_bytes"] = 3300;
    j["modes"]["push"]["events"]["missed"] = 0;
    j["modes"]["push"]["events"]["fetched"] = 62;
    j["modes"]["poll"]["latency"]["p99_s"] = 59.4;  // unchanged
    write_file(new_file, j.dump());
  }
};

const change* find_change(const report_model& m, std::string_view mode, std::string_view metric) {
  for (const auto& c : m.changes)
    if (c.mode == mode && c.metric == metric) return &c;
  return nullptr;
}

TEST(baseline, the_change_table_has_every_compared_metric_per_mode) {
  pair_of_runs p;
  const auto now = load_inputs({p.new_file.string()}).value();
  const auto old = load_inputs({p.old_file.string()}).value();
  const report_model m = build_model(now, &old, {});
  ASSERT_EQ(m.change_tables.size(), 1u);
  const table& t = m.change_tables[0];
  EXPECT_EQ(t.title, "small: change against the baseline");
  EXPECT_EQ(t.header, (std::vector<std::string>{"metric", "poll", "push", "async", "all"}));
  EXPECT_EQ(t.rows.size(), compared_metrics().size());
  EXPECT_EQ(m.changes.size(), compared_metrics().size() * 4);

  const change* bytes = find_change(m, "push", "wire_bytes_per_client_hour");
  ASSERT_TRUE(bytes);
  EXPECT_DOUBLE_EQ(*bytes->old_value, 3000);
  EXPECT_DOUBLE_EQ(*bytes->new_value, 3300);
  EXPECT_DOUBLE_EQ(*bytes->fraction, 0.1);
  const change* missed = find_change(m, "push", "missed");
  ASSERT_TRUE(missed);
  EXPECT_DOUBLE_EQ(*missed->fraction, -1.0);
  const change* same = find_change(m, "poll", "latency.p99");
  ASSERT_TRUE(same);
  EXPECT_EQ(*same->fraction, 0.0);

  EXPECT_EQ(t.rows[0].label, "wire bytes / client-hour");
  EXPECT_EQ(t.rows[0].cells[1].text, "3,000.0 → 3,300.0 (+10.0%)");
  EXPECT_EQ(t.rows[0].cells[0].text, "18,200.0 → 18,200.0 (0.0%)");
}

TEST(baseline, thresholds_on_changes) {
  pair_of_runs p;
  const auto now = load_inputs({p.new_file.string()}).value();
  const auto old = load_inputs({p.old_file.string()}).value();
  auto check = [&](std::string_view text) {
    auto t = std::get<threshold>(parse_threshold(text));
    EXPECT_FALSE(check_against(t, now, &old));
    const auto ev = evaluate(t, now, &old);
    EXPECT_EQ(ev.size(), 1u);
    return ev.front();
  };
  auto ev = check("change(push.wire_bytes_per_client_hour) < +5%");
  EXPECT_FALSE(ev.passed);
  EXPECT_EQ(ev.message, "+10.0% < +5.0% is false");
  ASSERT_EQ(ev.values.size(), 2u);
  EXPECT_EQ(ev.values[0].first, "baseline push.wire_bytes_per_client_hour");
  EXPECT_EQ(ev.values[0].second, 3000);
  EXPECT_EQ(ev.values[1].first, "push.wire_bytes_per_client_hour");
  EXPECT_EQ(ev.values[1].second, 3300);

  EXPECT_TRUE(check("change(push.wire_bytes_per_client_hour) < +15%").passed);
  EXPECT_TRUE(check("change(poll.wire_bytes_per_client_hour) == 0").passed);
  EXPECT_TRUE(check("change(push.missed) <= -100%").passed);
  EXPECT_TRUE(check("baseline(push.missed) == 1").passed);
  EXPECT_TRUE(check("push.wire_bytes_per_client_hour - baseline(push.wire_bytes_per_client_hour) == 300B").passed);
  EXPECT_TRUE(check("change(push.wire_bytes_per_client_hour / poll.wire_bytes_per_client_hour) > 9%").passed);
  // From nothing to something is an infinite change.
  const auto inf = check("change(push.fetched - push.generated + 1) > 1000%");  // 0 -> 1
  EXPECT_TRUE(inf.passed);
}

TEST(baseline, runs_pair_by_name_or_one_to_one) {
  pair_of_runs p;
  write_file(p.dir.path / "other" / "renamed.json", read_file(small_json()));
  const auto now = load_inputs({p.new_file.string()}).value();
  const auto renamed = load_inputs({(p.dir.path / "other" / "renamed.json").string()}).value();
  // One run each: compared, whatever the names.
  const report_model m = build_model(now, &renamed, {});
  ASSERT_EQ(m.change_tables.size(), 1u);
  EXPECT_EQ(m.change_tables[0].title, "small: change against renamed");

  // Two runs now, one baseline of another name: no pair for either.
  write_file(p.dir.path / "two" / "a.json", read_file(small_json()));
  write_file(p.dir.path / "two" / "b.json", read_file(small_json()));
  const auto two = load_inputs({(p.dir.path / "two").string()}).value();
  const report_model m2 = build_model(two, &renamed, {});
  EXPECT_TRUE(m2.change_tables.empty());
  EXPECT_EQ(m2.baseline_notes.size(), 2u);
  auto t = std::get<threshold>(parse_threshold("change(push.missed) == 0"));
  const auto ev = evaluate(t, two, &renamed);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].passed);
  EXPECT_EQ(ev[0].message, "no data: the baseline has no run named 'a' (for push.missed)");
}

TEST(baseline, the_command_line_writes_the_comparison_everywhere) {
  pair_of_runs p;
  const fs::path out = p.dir.path / "out";
  const auto r = run_cli({"--baseline", p.old_file.string(), p.new_file.string(), "--out", out.string(), "--no-charts",
                          "--no-scenario-thresholds", "-t", "change(push.wire_bytes_per_client_hour) < +5%"});
  EXPECT_EQ(r.code, 3) << r.err;
  const std::string md = read_file(out / "report.md");
  EXPECT_NE(md.find("## Change against the baseline"), std::string::npos);
  EXPECT_NE(md.find("| wire bytes / client-hour | 18,200.0 → 18,200.0 (0.0%) | 3,000.0 → 3,300.0 (+10.0%) |"),
            std::string::npos)
      << md;
  EXPECT_NE(read_file(out / "report.html").find("3,000.0 → 3,300.0 (+10.0%)"), std::string::npos);
  const json j = json::parse(read_file(out / "result.json"));
  ASSERT_TRUE(j.contains("baseline"));
  EXPECT_EQ(j["baseline"][0]["path"], p.old_file.string());
  bool found = false;
  for (const auto& c : j["changes"])
    if (c["mode"] == "push" && c["metric"] == "wire_bytes_per_client_hour") {
      found = true;
      EXPECT_DOUBLE_EQ(c["change"].get<double>(), 0.1);
      EXPECT_EQ(c["baseline"], 3000);
      EXPECT_EQ(c["now"], 3300);
    }
  EXPECT_TRUE(found);

  // A previous report's result.json serves as the baseline too.
  const auto again = run_cli({"--baseline", (out / "result.json").string(), p.new_file.string(), "--out",
                              (p.dir.path / "out2").string(), "--no-charts", "--no-scenario-thresholds", "-t",
                              "change(push.wire_bytes_per_client_hour) == 0"});
  EXPECT_EQ(again.code, 0) << again.err << again.out;
}

}  // namespace
}  // namespace nudge::report
