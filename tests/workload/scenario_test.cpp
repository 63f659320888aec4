// Scenario files and --set overrides: every error class names file, line and
// key; every shipped scenario and every key survive a round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "nudge/sim/scenario.hpp"
#include "workload/parse_plan.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path source_dir = NUDGE_SOURCE_DIR;

scenario_error error_of(std::string_view text) {
  auto r = parse_scenario(text, "test.toml");
  if (auto* e = std::get_if<scenario_error>(&r)) return *e;
  ADD_FAILURE() << "expected an error for:\n" << text;
  return {};
}

using test::plan_of;

scenario_error override_error(run_plan& p, std::string_view assignment) {
  auto e = apply_override(p, assignment);
  if (!e) {
    ADD_FAILURE() << "expected an error for " << assignment;
    return {};
  }
  return *e;
}

std::vector<std::filesystem::path> shipped() {
  std::vector<std::filesystem::path> out;
  for (const auto& f : std::filesystem::directory_iterator(source_dir / "scenarios"))
    if (f.path().extension() == ".toml") out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---- values ---------------------------------------------------------------------------------

TEST(scenario, durations) {
  EXPECT_EQ(parse_duration("8h"), 8h);
  EXPECT_EQ(parse_duration("90s"), 90s);
  EXPECT_EQ(parse_duration("5min"), 5min);
  EXPECT_EQ(parse_duration("1h30min"), 90min);
  EXPECT_EQ(parse_duration("1h 30min"), 90min);
  EXPECT_EQ(parse_duration("1.5h"), 90min);
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("2d"), 48h);
  EXPECT_EQ(parse_duration("42"), 42s);
  EXPECT_EQ(parse_duration("8 hours"), 8h);
  for (const char* bad : {"", "h", "8x", "-5s", "1h 30", "5 min s", "1..5s", "1e400s"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
  for (duration d : std::initializer_list<duration>{0ns, 8h, 90s, 90min, 1500ms, 1us, 7ns, 25h})
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  EXPECT_EQ(format_duration(8h), "8h");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
}

TEST(scenario, times_of_day) {
  EXPECT_EQ(parse_time_of_day("09:00"), 9h);
  EXPECT_EQ(parse_time_of_day("9:00"), 9h);
  EXPECT_EQ(parse_time_of_day("17:30:15"), 17h + 30min + 15s);
  EXPECT_EQ(parse_time_of_day("24:00"), 24h);
  for (const char* bad : {"25:00", "9", "9:0", "09:60", "24:01", "09:00:60", "nine"})
    EXPECT_FALSE(parse_time_of_day(bad)) << bad;
  EXPECT_EQ(format_time_of_day(9h), "09:00");
  EXPECT_EQ(format_time_of_day(17h + 30min + 15s), "17:30:15");
}

// ---- reading ---------------------------------------------------------------------------------

TEST(scenario, a_full_file_sets_every_section) {
  const auto p = plan_of(R"(
[run]
clients = 250
seed = 9
duration = "2h"
ramp_up = 30
drain = "90s"
[mix]
push = 3
async = 1
[poll]
interval = "30s"
jitter = true
[push]
context_size = 12
poll_until_first_ping = false
cookie = true
keepalive = "25s"
fallback_check = "2min"
[events]
process = "mmpp"
per_client_day = 40
[events.business_hours]
start = 08:00:00
end = "16:00"
run_starts_at = "07:30"
[events.mmpp]
burst_ratio = inf
high_mean = "5min"
low_mean = "25min"
[server]
policy = "verified"
polls_max_ms = 30000
ping_resend = "20s"
async_hold = "2min"
[network]
one_way_delay = "20ms"
jitter = "5ms"
udp_loss = 0.01
[wire]
abstract_message_bytes = 150
tcp_options = 12
delayed_ack = "40ms"
[[nat]]
preset = "symmetric"
fraction = 0.25
[[nat]]
preset = "linux-snat"
fraction = 0.75
udp_timeout = "60s"
)");
  EXPECT_EQ(p.clients, 250u);
  EXPECT_EQ(p.seed, 9u);
  EXPECT_EQ(p.length, 2h);
  EXPECT_EQ(p.ramp_up, 30s);
  EXPECT_EQ(p.drain, 90s);
  EXPECT_EQ(p.mix[0].share, 0.0);  // a [mix] table lists the modes in use
  EXPECT_EQ(p.mix[1].share, 3.0);
  EXPECT_EQ(p.mix[2].share, 1.0);
  EXPECT_EQ(p.poll_interval, 30s);
  EXPECT_TRUE(p.poll_jitter);
  EXPECT_EQ(p.context_size, 12u);
  EXPECT_FALSE(p.poll_until_first_ping);
  EXPECT_TRUE(p.send_cookie);
  EXPECT_EQ(p.keepalive_interval, 25s);
  EXPECT_EQ(p.fallback_check_interval, 2min);
  EXPECT_EQ(p.event_process.kind, event_process_kind::mmpp);
  EXPECT_TRUE(p.event_process.hours.enabled);
  EXPECT_EQ(p.event_process.hours.start, 8h);
  EXPECT_EQ(p.event_process.hours.end, 16h);
  EXPECT_EQ(p.event_process.hours.run_starts_at, 7h + 30min);
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 5.0);  // 40 per 8-hour window
  EXPECT_TRUE(std::isinf(p.event_process.mmpp.burst_ratio));
  EXPECT_EQ(p.event_process.mmpp.high_mean, 5min);
  EXPECT_EQ(p.server.policy, notifier::callback_policy::verified);
  EXPECT_EQ(p.server.polls_max_ms, 30000u);
  EXPECT_EQ(p.server.ping_resend, 20s);
  EXPECT_EQ(p.server.async_hold, 2min);
  EXPECT_EQ(p.link.one_way_delay, 20ms);
  EXPECT_EQ(p.link.jitter, 5ms);
  EXPECT_DOUBLE_EQ(p.link.udp_loss, 0.01);
  EXPECT_EQ(p.wire.abstract_message_bytes, 150u);
  EXPECT_EQ(p.wire.tcp_options, 12u);
  EXPECT_EQ(p.wire.delayed_ack, 40ms);
  ASSERT_EQ(p.nat_mix.size(), 2u);
  EXPECT_EQ(p.nat_mix[1].preset, "linux-snat");
  EXPECT_EQ(p.nat_mix[1].udp_timeout, 60s);
}

TEST(scenario, an_empty_file_is_the_default_plan) {
  EXPECT_EQ(to_toml(plan_of("")), to_toml(run_plan{}));
}

TEST(scenario, mmpp_from_rates) {
  const auto p = plan_of(R"(
[events]
process = "mmpp"
[events.mmpp]
high_per_client_hour = 30
low_per_client_hour = 2
high_mean = "10min"
low_mean = "50min"
)");
  EXPECT_NEAR(p.events_per_client_hour, (30 * 10 + 2 * 50) / 60.0, 1e-12);
  EXPECT_NEAR(p.event_process.mmpp.high_rate(p.events_per_client_hour), 30, 1e-9);
  EXPECT_NEAR(p.event_process.mmpp.low_rate(p.events_per_client_hour), 2, 1e-9);
}

// ---- errors: one test per class, each naming file, line and key -----------------------------

TEST(scenario_errors, toml_syntax) {
  const auto e = error_of("[run]\nclients = 10\nseed = = 2\n");
  EXPECT_EQ(e.source, "test.toml");
  EXPECT_EQ(e.line, 3u);
  EXPECT_NE(e.what().find("test.toml:3"), std::string::npos) << e.what();
}

TEST(scenario_errors, unknown_key_is_an_error_with_a_suggestion) {
  const auto e = error_of("[run]\nclients = 10\nclinets = 20\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_EQ(e.key, "run.clinets");
  EXPECT_NE(e.message.find("did you mean 'run.clients'"), std::string::npos) << e.message;
  EXPECT_EQ(e.what().rfind("test.toml:3:1: run.clinets: unknown key", 0), 0u) << e.what();
  // The right key in the wrong table.
  const auto f = error_of("[run]\ninterval = \"30s\"\n");
  EXPECT_NE(f.message.find("poll.interval"), std::string::npos) << f.message;
  // An unknown table, and a key where a table belongs.
  EXPECT_EQ(error_of("[runn]\nclients = 1\n").key, "runn");
  EXPECT_EQ(error_of("run = 5\n").key, "run");
  EXPECT_EQ(error_of("[events.mmpp]\nburst = 3\n").key, "events.mmpp.burst");
}

TEST(scenario_errors, wrong_type) {
  const auto e = error_of("[run]\n\nclients = \"many\"\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.key, "run.clients");
  EXPECT_NE(e.message.find("expected an integer >= 1, got string \"many\""), std::string::npos) << e.message;
  EXPECT_EQ(error_of("[poll]\njitter = 1\n").key, "poll.jitter");
  EXPECT_EQ(error_of("[mix]\npoll = \"all\"\n").key, "mix.poll");
  EXPECT_EQ(error_of("[run]\nduration = true\n").key, "run.duration");
}

TEST(scenario_errors, out_of_range) {
  EXPECT_EQ(error_of("[run]\nclients = 0\n").key, "run.clients");
  EXPECT_EQ(error_of("[run]\nclients = -3\n").key, "run.clients");
  EXPECT_EQ(error_of("[push]\ncontext_size = 17\n").key, "push.context_size");
  EXPECT_EQ(error_of("[network]\nudp_loss = 1.5\n").key, "network.udp_loss");
  EXPECT_EQ(error_of("[mix]\npoll = -1\n").key, "mix.poll");
  EXPECT_EQ(error_of("[run]\nduration = 0\n").key, "run.duration");
  EXPECT_EQ(error_of("[run]\ndrain = -5\n").key, "run.drain");
  EXPECT_EQ(error_of("[events]\nper_client_hour = nan\n").key, "events.per_client_hour");
  EXPECT_EQ(error_of("[events]\nprocess = \"mmpp\"\n[events.mmpp]\nburst_ratio = 0.5\n").key, "events.mmpp.burst_ratio");
  EXPECT_EQ(error_of("[wire]\ntcp_options = 41\n").key, "wire.tcp_options");
}

TEST(scenario_errors, bad_durations_and_times) {
  const auto e = error_of("[run]\nduration = \"8 hrz\"\n");
  EXPECT_EQ(e.key, "run.duration");
  EXPECT_EQ(e.line, 2u);
  EXPECT_NE(e.message.find("expected a duration"), std::string::npos);
  EXPECT_EQ(error_of("[events.business_hours]\nstart = \"25:00\"\n").key, "events.business_hours.start");
  EXPECT_EQ(error_of("[events.business_hours]\nstart = \"24:00\"\n").key, "events.business_hours.start");
  EXPECT_EQ(error_of("[events.business_hours]\nstart = 9\n").key, "events.business_hours.start");
}

TEST(scenario_errors, bad_names) {
  const auto e = error_of("[server]\npolicy = \"nope\"\n");
  EXPECT_EQ(e.key, "server.policy");
  EXPECT_NE(e.message.find("\"legacy\", \"peer\" or \"verified\""), std::string::npos);
  EXPECT_EQ(error_of("[events]\nprocess = \"weibull\"\n").key, "events.process");
  EXPECT_EQ(error_of("[wire]\nprofile = \"exact\"\n").key, "wire.profile");
  EXPECT_EQ(error_of("[events.business_hours]\nday = \"weekday\"\n").key, "events.business_hours.day");
}

TEST(scenario_errors, nat_entries) {
  const auto e = error_of("[[nat]]\npreset = \"none\"\n[[nat]]\npreset = \"cone\"\n");
  EXPECT_EQ(e.key, "nat[1].preset");
  EXPECT_EQ(e.line, 4u);
  EXPECT_NE(e.message.find("unknown NAT preset"), std::string::npos);
  const auto f = error_of("[[nat]]\npreset = \"symmetric\"\nfractoin = 1\n");
  EXPECT_EQ(f.key, "nat[0].fractoin");
  EXPECT_EQ(f.line, 3u);
  EXPECT_EQ(error_of("nat = [1, 2]\n").key, "nat[0]");
  EXPECT_EQ(error_of("[nat]\npreset = \"none\"\n").key, "nat");
}

TEST(scenario_errors, conflicting_keys) {
  const auto e = error_of("[events]\nper_client_hour = 6\nper_client_day = 50\n");
  EXPECT_EQ(e.key, "events.per_client_day");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(error_of("[events]\nprocess = \"mmpp\"\n[events.mmpp]\nhigh_per_client_hour = 30\n").key,
            "events.mmpp.high_per_client_hour");
  EXPECT_EQ(error_of("[events]\nprocess = \"mmpp\"\nper_client_hour = 5\n[events.mmpp]\nhigh_per_client_hour = 30\n"
                     "low_per_client_hour = 1\n")
                .key,
            "events.per_client_hour");
  EXPECT_EQ(error_of("[events]\nprocess = \"mmpp\"\n[events.mmpp]\nhigh_per_client_hour = 1\nlow_per_client_hour = 3\n").key,
            "events.mmpp.low_per_client_hour");
  // MMPP parameters without the MMPP: a likely mistake, not something to ignore.
  const auto m = error_of("[events]\nper_client_hour = 5\n\n[events.mmpp]\nburst_ratio = 4\n");
  EXPECT_EQ(m.key, "events.mmpp");
  EXPECT_EQ(m.line, 4u);
  EXPECT_EQ(error_of("[wire]\nprofile = \"faithful\"\nabstract_message_bytes = 100\n").key, "wire.abstract_message_bytes");
}

TEST(scenario_errors, whole_plan_checks) {
  const auto e = error_of("[run]\nclients = 5\n[mix]\npoll = 0\n");
  EXPECT_EQ(e.source, "test.toml");
  EXPECT_EQ(e.key, "mix");  // the table the check concerns
  EXPECT_EQ(e.line, 3u);
  EXPECT_NE(e.message.find("mix fractions must not all be zero"), std::string::npos) << e.message;
  EXPECT_NE(error_of("[events.business_hours]\nstart = \"09:00\"\nend = \"09:00\"\n").message.find("differ"),
            std::string::npos);
}

TEST(scenario_errors, missing_file) {
  auto r = load_scenario("/nonexistent/nope.toml");
  ASSERT_TRUE(std::holds_alternative<scenario_error>(r));
  EXPECT_EQ(std::get<scenario_error>(r).what(), "/nonexistent/nope.toml: cannot open the scenario file");
}

// ---- overrides --------------------------------------------------------------------------------

TEST(scenario_overrides, set_values_like_a_file_would) {
  run_plan p;
  ASSERT_FALSE(apply_override(p, "run.clients=500"));
  EXPECT_EQ(p.clients, 500u);
  ASSERT_FALSE(apply_override(p, "run.duration=8h"));  // a bare string
  EXPECT_EQ(p.length, 8h);
  ASSERT_FALSE(apply_override(p, "run.drain = \"90s\""));
  EXPECT_EQ(p.drain, 90s);
  ASSERT_FALSE(apply_override(p, "server.policy=peer"));
  EXPECT_EQ(p.server.policy, notifier::callback_policy::peer);
  ASSERT_FALSE(apply_override(p, "poll.jitter=true"));
  EXPECT_TRUE(p.poll_jitter);
  ASSERT_FALSE(apply_override(p, "events.business_hours.start=08:00"));
  EXPECT_TRUE(p.event_process.hours.enabled);  // setting a business_hours key turns them on
  EXPECT_EQ(p.event_process.hours.start, 8h);
  ASSERT_FALSE(apply_override(p, "events.per_client_day=45"));  // per 9-hour window
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 5.0);
  ASSERT_FALSE(apply_override(p, "wire.profile=abstract"));
  EXPECT_EQ(p.wire.abstract_message_bytes, 100u);
  ASSERT_FALSE(apply_override(p, "nat=[{preset=\"symmetric\", fraction=1}]"));
  ASSERT_FALSE(apply_override(p, "nat[1].preset=none"));  // index = size appends
  ASSERT_FALSE(apply_override(p, "nat.1.udp_timeout=60s"));
  ASSERT_EQ(p.nat_mix.size(), 2u);
  EXPECT_EQ(p.nat_mix[1].preset, "none");
  EXPECT_EQ(p.nat_mix[1].udp_timeout, 60s);
}

TEST(scenario_overrides, mmpp_rates_keep_the_other_rate) {
  run_plan p;
  ASSERT_FALSE(apply_overrides(p, {"events.process=mmpp", "events.mmpp.high_mean=10min", "events.mmpp.low_mean=50min",
                                   "events.mmpp.high_per_client_hour=300", "events.mmpp.low_per_client_hour=2"}));
  EXPECT_NEAR(p.event_process.mmpp.high_rate(p.events_per_client_hour), 300, 1e-9);
  EXPECT_NEAR(p.event_process.mmpp.low_rate(p.events_per_client_hour), 2, 1e-9);
  EXPECT_NEAR(p.events_per_client_hour, (300 * 10 + 2 * 50) / 60.0, 1e-9);
  ASSERT_FALSE(apply_override(p, "events.per_client_hour=10"));  // scales both, keeps the shape
  EXPECT_NEAR(p.event_process.mmpp.high_rate(10) / p.event_process.mmpp.low_rate(10), 150, 1e-9);
}

TEST(scenario_overrides, errors_name_the_key_and_leave_the_plan_alone) {
  run_plan p;
  const std::string before = to_toml(p);
  auto e = override_error(p, "run.clinets=5");
  EXPECT_EQ(e.source, "--set");
  EXPECT_EQ(e.key, "run.clinets");
  EXPECT_NE(e.message.find("did you mean 'run.clients'"), std::string::npos);
  EXPECT_EQ(e.what(), "--set: run.clinets: unknown key (did you mean 'run.clients'?)");
  EXPECT_EQ(override_error(p, "run.clients=abc").key, "run.clients");
  EXPECT_EQ(override_error(p, "run.clients").message, "expected KEY=VALUE, e.g. run.clients=500");
  EXPECT_EQ(override_error(p, "network.udp_loss=2").key, "network.udp_loss");
  EXPECT_EQ(override_error(p, "nat[3].preset=none").key, "nat.3.preset");
  EXPECT_EQ(override_error(p, "nat[0].prest=none").key, "nat.0.prest");
  EXPECT_EQ(override_error(p, "events.mmpp.burst_ratio=4").key, "events.mmpp.burst_ratio");  // process is poisson
  EXPECT_NE(override_error(p, "mix.poll=0").message.find("mix fractions"), std::string::npos);
  EXPECT_EQ(to_toml(p), before);
  // Several at once: validated at the end, all or nothing.
  EXPECT_FALSE(apply_overrides(p, {"mix.poll=0", "mix.push=1"}));
  EXPECT_EQ(p.mix[1].share, 1.0);
  const std::string now = to_toml(p);
  EXPECT_TRUE(apply_overrides(p, {"run.clients=7", "run.seed=x"}));
  EXPECT_EQ(to_toml(p), now);
}

// ---- round trips ---------------------------------------------------------------------------------

TEST(scenario_round_trip, every_shipped_scenario) {
  const auto files = shipped();
  std::set<std::string> names;
  for (const auto& f : files) names.insert(f.filename().string());
  for (const char* expected : {"seed-article.toml", "seed-article-faithful.toml", "seed-article-push.toml",
                               "nat-mix.toml", "loopback-10k.toml", "million-hour.toml"})
    EXPECT_TRUE(names.count(expected)) << expected;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    auto loaded = load_scenario(f);
    ASSERT_TRUE(std::holds_alternative<run_plan>(loaded)) << std::get<scenario_error>(loaded).what();
    const run_plan& p = std::get<run_plan>(loaded);
    EXPECT_EQ(p.validate(), "");
    const std::string text = to_toml(p);
    auto again = parse_scenario(text, "round-trip");
    ASSERT_TRUE(std::holds_alternative<run_plan>(again)) << std::get<scenario_error>(again).what() << "\n" << text;
    EXPECT_EQ(to_toml(std::get<run_plan>(again)), text);
    EXPECT_EQ(std::get<run_plan>(again).events_per_client_hour, p.events_per_client_hour);
  }
}

TEST(scenario_round_trip, every_key_is_written_and_read_back) {
  const std::string defaults = to_toml(run_plan{});
  for (const auto& k : scenario_keys()) {
    SCOPED_TRACE(std::string(k.key));
    run_plan p;
    std::vector<std::string> sets;
    if (k.key.rfind("events.mmpp", 0) == 0) sets.push_back("events.process=mmpp");
    std::string key(k.key);
    if (key.rfind("nat.N.", 0) == 0) {
      sets.push_back("nat[0].preset=full-cone");
      key = "nat.0." + key.substr(6);
    }
    sets.push_back(key + "=" + std::string(k.example));
    ASSERT_FALSE(apply_overrides(p, sets)) << apply_overrides(p, sets)->what();
    const std::string text = to_toml(p);
    EXPECT_NE(text, defaults);
    auto again = parse_scenario(text, "round-trip");
    ASSERT_TRUE(std::holds_alternative<run_plan>(again)) << std::get<scenario_error>(again).what() << "\n" << text;
    EXPECT_EQ(to_toml(std::get<run_plan>(again)), text);
  }
}

TEST(scenario_round_trip, every_key_is_documented) {
  std::ifstream in(source_dir / "docs" / "scenarios.md");
  ASSERT_TRUE(in) << "docs/scenarios.md";
  std::stringstream doc;
  doc << in.rdbuf();
  for (const auto& k : scenario_keys()) {
    std::string quoted = "`";  // built piecewise: g++ 12 warns (-Wrestrict, a false positive) on "`" + std::string
    quoted += k.key;
    quoted += '`';
    EXPECT_NE(doc.str().find(quoted), std::string::npos) << k.key << " is not in docs/scenarios.md";
  }
}

TEST(scenario, the_seed_article_scenario_says_what_the_article_says) {
  auto loaded = load_scenario(source_dir / "scenarios" / "seed-article.toml");
  ASSERT_TRUE(std::holds_alternative<run_plan>(loaded)) << std::get<scenario_error>(loaded).what();
  const auto& p = std::get<run_plan>(loaded);
  EXPECT_EQ(p.clients, 10000u);
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 50.0 / 8.0);
  EXPECT_EQ(p.poll_interval, 60s);
  EXPECT_EQ(p.length, 8h);
  EXPECT_EQ(p.wire.abstract_message_bytes, 100u);
  EXPECT_EQ(p.mix, nudge::sim::emsmdb_mix(1, 0, 0));
  EXPECT_EQ(p.event_process.kind, event_process_kind::poisson);
}

// ---- order-free overrides ------------------------------------------------------------------------

namespace {

// Applies `sets` to a default plan; the plan's complete text (every field, and the
// event rate as it was stated), or the error.
std::string plan_after(const std::vector<std::string>& sets) {
  run_plan p;
  if (auto e = apply_overrides(p, sets)) return "error: " + e->what();
  return to_toml(p);
}

// Every order of `sets` gives the same plan; returns it.
std::string same_in_every_order(std::vector<std::string> sets) {
  std::sort(sets.begin(), sets.end());
  const std::string first = plan_after(sets);
  std::size_t orders = 0;
  do {
    ++orders;
    EXPECT_EQ(plan_after(sets), first) << "in the order: " << ::testing::PrintToString(sets);
  } while (std::next_permutation(sets.begin(), sets.end()));
  EXPECT_GT(orders, 1u);
  return first;
}

// Some assignments go into a scenario file (as root-level dotted keys), the rest
// into one --set list; a unit is kept together (keys a file must give together).
std::string plan_from_file_and_sets(const std::vector<std::vector<std::string>>& units, unsigned in_file_mask,
                                    const std::string& file_prefix, std::vector<std::string> sets) {
  std::string file = file_prefix;
  for (std::size_t u = 0; u < units.size(); ++u)
    for (const auto& a : units[u]) {
      if (in_file_mask & (1u << u)) file += a + "\n";
    }
  auto loaded = parse_scenario(file, "mixed.toml");
  if (auto* e = std::get_if<scenario_error>(&loaded)) return "error: " + e->what();
  run_plan p = std::get<run_plan>(loaded);
  if (auto e = apply_overrides(p, sets)) return "error: " + e->what();
  return to_toml(p);
}

}  // namespace

TEST(scenario_overrides, per_client_day_is_resolved_after_the_business_hours_in_any_order) {
  // 80 a day over a 07:00-19:00 window is 80/12 an hour, typed in either order.
  const std::string plan = same_in_every_order(
      {"events.per_client_day=80", "events.business_hours.start=07:00", "events.business_hours.end=19:00"});
  run_plan p;
  ASSERT_FALSE(apply_overrides(p, {"events.business_hours.end=19:00", "events.business_hours.start=07:00",
                                   "events.per_client_day=80"}));
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 80.0 / 12.0);
  EXPECT_EQ(to_toml(p), plan);
  // A later list that moves the window re-derives the hourly rate from the day's 80.
  ASSERT_FALSE(apply_overrides(p, {"events.business_hours.end=17:00"}));
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 80.0 / 10.0);
  // Stating the hourly rate ends the derivation.
  ASSERT_FALSE(apply_overrides(p, {"events.per_client_hour=3", "events.business_hours.end=18:00"}));
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 3.0);
}

TEST(scenario_overrides, mmpp_state_rates_are_resolved_after_the_sojourn_means_in_any_order) {
  const std::string plan = same_in_every_order({"events.process=mmpp", "events.mmpp.high_mean=10min",
                                                "events.mmpp.low_mean=50min", "events.mmpp.high_per_client_hour=300",
                                                "events.mmpp.low_per_client_hour=2"});
  auto loaded = parse_scenario(plan, "round-trip");
  ASSERT_TRUE(std::holds_alternative<run_plan>(loaded)) << std::get<scenario_error>(loaded).what() << "\n" << plan;
  const auto& p = std::get<run_plan>(loaded);
  EXPECT_NEAR(p.event_process.mmpp.high_rate(p.events_per_client_hour), 300, 1e-9);
  EXPECT_NEAR(p.event_process.mmpp.low_rate(p.events_per_client_hour), 2, 1e-9);
  EXPECT_NEAR(p.events_per_client_hour, (300 * 10 + 2 * 50) / 60.0, 1e-9);
  // One state rate alone keeps the other state's rate of the plan as the list leaves it.
  const std::string one = same_in_every_order({"events.process=mmpp", "events.mmpp.high_mean=5min",
                                               "events.mmpp.high_per_client_hour=100"});
  run_plan q;
  ASSERT_FALSE(apply_overrides(q, {"events.process=mmpp", "events.mmpp.high_mean=5min"}));
  const double low = q.event_process.mmpp.low_rate(q.events_per_client_hour);
  ASSERT_FALSE(apply_overrides(q, {"events.mmpp.high_per_client_hour=100"}));
  EXPECT_NEAR(q.event_process.mmpp.low_rate(q.events_per_client_hour), low, 1e-9);
  EXPECT_NEAR(q.event_process.mmpp.high_rate(q.events_per_client_hour), 100, 1e-9);
  EXPECT_EQ(to_toml(q), one);
}

TEST(scenario_overrides, an_explicit_enabled_wins_over_the_implied_one_in_any_order) {
  const std::string plan = same_in_every_order({"events.business_hours.enabled=false", "events.business_hours.start=07:00"});
  EXPECT_EQ(plan.find("[events.business_hours]"), std::string::npos) << plan;
  const std::string on = same_in_every_order({"events.per_client_day=48", "events.business_hours.start=08:00"});
  EXPECT_NE(on.find("[events.business_hours]"), std::string::npos) << on;
}

TEST(scenario_overrides, keys_that_state_one_thing_twice_are_refused_in_one_list) {
  run_plan p;
  const std::string before = to_toml(p);
  for (const auto& sets : std::vector<std::vector<std::string>>{
           {"events.per_client_hour=5", "events.per_client_day=80"},
           {"events.process=mmpp", "events.mmpp.high_per_client_hour=30", "events.mmpp.burst_ratio=4"},
           {"events.process=mmpp", "events.per_client_hour=5", "events.mmpp.low_per_client_hour=1"},
           {"wire.profile=faithful", "wire.abstract_message_bytes=200"},
           {"wire.abstract_message_bytes=0", "wire.profile=abstract"}}) {
    auto forward = sets, backward = sets;
    std::reverse(backward.begin(), backward.end());
    const auto a = apply_overrides(p, forward), b = apply_overrides(p, backward);
    ASSERT_TRUE(a && b) << ::testing::PrintToString(sets);
    EXPECT_EQ(a->key, b->key);
    EXPECT_EQ(to_toml(p), before);
  }
  // Agreeing values are fine, in either order.
  EXPECT_EQ(same_in_every_order({"wire.profile=abstract", "wire.abstract_message_bytes=200"}),
            plan_after({"wire.abstract_message_bytes=200"}));
}

TEST(scenario_overrides, file_keys_and_set_lists_mix_in_any_split_and_order) {
  // Each unit goes either into the file or into the --set list; every split and
  // every order of the list gives the plan of all units in one file.
  const std::vector<std::vector<std::string>> per_day_units = {
      {"events.per_client_day = 80"},
      {"events.business_hours.start = \"07:00\""},
      {"events.business_hours.end = \"19:00\""},
      {"events.mmpp.burst_ratio = 4"},
      {"events.mmpp.high_mean = \"10min\""},
  };
  const std::vector<std::vector<std::string>> state_rate_units = {
      {"events.mmpp.high_per_client_hour = 300", "events.mmpp.low_per_client_hour = 2"},
      {"events.mmpp.high_mean = \"10min\""},
      {"events.mmpp.low_mean = \"50min\""},
      {"events.business_hours.end = \"19:00\""},
  };
  for (const auto* units : {&per_day_units, &state_rate_units}) {
    const std::string prefix = "events.process = \"mmpp\"\n";  // the file's MMPP keys need it
    const unsigned all = (1u << units->size()) - 1;
    const std::string expected = plan_from_file_and_sets(*units, all, prefix, {});
    ASSERT_EQ(expected.rfind("error", 0), std::string::npos) << expected;
    std::size_t runs = 0;
    for (unsigned mask = 0; mask <= all; ++mask) {
      std::vector<std::string> sets;
      for (std::size_t u = 0; u < units->size(); ++u)
        if (!(mask & (1u << u)))
          for (const auto& a : (*units)[u]) sets.push_back(a);
      std::sort(sets.begin(), sets.end());
      do {
        ++runs;
        EXPECT_EQ(plan_from_file_and_sets(*units, mask, prefix, sets), expected)
            << "file units " << mask << ", --set " << ::testing::PrintToString(sets);
      } while (std::next_permutation(sets.begin(), sets.end()));
    }
    EXPECT_GT(runs, std::size_t{1} << units->size());
  }
  // The numbers: 80 a day over 12 hours.
  run_plan p = plan_of("events.process = \"mmpp\"\nevents.per_client_day = 80\n");
  ASSERT_FALSE(apply_overrides(p, {"events.business_hours.end=19:00", "events.business_hours.start=07:00"}));
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 80.0 / 12.0);
}

TEST(scenario_clients, client_groups_are_read_in_order) {
  const auto p = plan_of(R"(
[[clients]]
protocol = "emsmdb"
mode = "push"
share = 0.4

[[clients]]
mode = "async"
share = 0.6
)");
  ASSERT_EQ(p.mix.size(), 2u);
  EXPECT_EQ(p.mix[0], (client_group{"emsmdb", "push", 0.4}));
  EXPECT_EQ(p.mix[1], (client_group{"emsmdb", "async", 0.6}));  // protocol defaults to emsmdb
  const auto modes = p.assign_modes();
  EXPECT_EQ(std::count(modes.begin(), modes.end(), client::client_mode::poll), 0);
  EXPECT_EQ(std::count(modes.begin(), modes.end(), client::client_mode::push), 40);  // of run_plan's 100 clients
}

TEST(scenario_clients, the_legacy_mix_is_the_three_emsmdb_groups) {
  const auto legacy = plan_of("[mix]\npoll = 0.6\npush = 0.4\n");
  EXPECT_EQ(legacy.mix, emsmdb_mix(0.6, 0.4, 0));
  const auto groups = plan_of(R"(
[[clients]]
mode = "poll"
share = 0.6
[[clients]]
mode = "push"
share = 0.4
[[clients]]
mode = "async"
share = 0
)");
  EXPECT_EQ(groups.mix, legacy.mix);
  EXPECT_EQ(groups.assign_modes(), legacy.assign_modes());
  EXPECT_EQ(to_toml(groups), to_toml(legacy));  // written back as [mix]
}

TEST(scenario_clients, bad_groups_name_the_entry) {
  EXPECT_EQ(error_of("[[clients]]\nprotocol = \"imap\"\nmode = \"idle\"\n").key, "clients[0].protocol");
  EXPECT_EQ(error_of("[[clients]]\nmode = \"push\"\nshare = -1\n").key, "clients[0].share");
  EXPECT_EQ(error_of("[[clients]]\nmode = \"push\"\ncolour = 1\n").key, "clients[0].colour");
  EXPECT_EQ(error_of("[[clients]]\nshare = 1\n").key, "clients[0]");
  const auto unknown_mode = error_of("[[clients]]\nmode = \"carrier-pigeon\"\n");
  EXPECT_EQ(unknown_mode.key, "clients");
  EXPECT_NE(unknown_mode.message.find("no mode \"carrier-pigeon\""), std::string::npos) << unknown_mode.message;
  EXPECT_NE(error_of("[[clients]]\nmode = \"push\"\n[[clients]]\nmode = \"push\"\n").message.find("both emsmdb push"),
            std::string::npos);
  EXPECT_EQ(error_of("[mix]\npoll = 1\n[[clients]]\nmode = \"push\"\n").key, "clients");
}

TEST(scenario_clients, written_back_as_clients_entries) {
  auto p = plan_of("[[clients]]\nmode = \"async\"\nshare = 2\n[[clients]]\nmode = \"poll\"\nshare = 1\n");
  const std::string text = to_toml(p);
  EXPECT_NE(text.find("[[clients]]"), std::string::npos) << text;
  EXPECT_EQ(text.find("[mix]"), std::string::npos) << text;
  const auto again = plan_of(text);
  EXPECT_EQ(again.mix, p.mix);
}
