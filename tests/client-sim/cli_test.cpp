// client-sim's command line: parsing is pure (help, version and usage errors
// are values), defaults come from run_plan, real runs refuse non-loopback
// endpoints, and each clock refuses the other's flags.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "nudge/sim/client_sim_cli.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {

// A parse as the checks below read it: what main() does with it (run, print
// help or version, or report a usage error), the options, the text it prints.
struct parse_outcome {
  enum class kind { run, help, version, usage_error };
  kind what = kind::run;
  client_sim_options options;
  std::string text;
  int exit_code = exit_ok;  // the error's, for a usage error
};
using kind = parse_outcome::kind;

parse_outcome parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"client-sim"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
  if (!r) return {kind::usage_error, {}, r.error().message, r.error().exit_code};
  using command = client_sim_options::command;
  const kind k = r->cmd == command::help ? kind::help : r->cmd == command::version ? kind::version : kind::run;
  std::string text = r->text;
  return {k, std::move(*r), std::move(text), exit_ok};
}

void expect_usage_error(std::initializer_list<const char*> args, const std::string& mentions) {
  const auto r = parse(args);
  ASSERT_EQ(r.what, kind::usage_error) << "accepted: " << mentions;
  EXPECT_EQ(r.exit_code, exit_usage);
  EXPECT_NE(r.text.find(mentions), std::string::npos) << r.text;
}

}  // namespace

TEST(client_sim_cli, defaults_follow_run_plan_and_the_notifier_defaults) {
  const auto r = parse({});
  ASSERT_EQ(r.what, kind::run) << r.text;
  const auto& o = r.options;
  const run_plan def;
  EXPECT_EQ(o.clock, clock_kind::real);
  EXPECT_EQ(o.plan.clients, def.clients);
  EXPECT_EQ(o.plan.mix, def.mix);
  EXPECT_EQ(o.plan.poll_interval, def.poll_interval);
  EXPECT_EQ(o.plan.length, def.length);
  EXPECT_EQ(o.plan.drain, def.drain);
  EXPECT_EQ(o.plan.events_per_client_hour, def.events_per_client_hour);
  EXPECT_TRUE(o.plan.poll_until_first_ping);
  EXPECT_EQ(o.real.notifier.to_string(), "127.0.0.1:7777");
  EXPECT_EQ(o.real.notifier_udp.to_string(), "127.0.0.1:7778");
  EXPECT_EQ(o.real.control.to_string(), "127.0.0.1:7779");
  // Unstated: the notifier's SERVICES reply says where EMSMDB is served.
  EXPECT_FALSE(o.real.notifier_stated);
  EXPECT_FALSE(o.real.notifier_udp_stated);
  EXPECT_EQ(o.real.source_first.address_string(), "127.0.0.2");
  EXPECT_EQ(o.real.source_count, 253u);
  EXPECT_TRUE(o.json_path.empty());
  EXPECT_FALSE(o.quiet);
}

TEST(client_sim_cli, every_flag_lands_in_the_plan_or_the_options) {
  const auto r = parse({"--clients", "10000", "--mix", "poll=0.3,push=0.4,async=0.3", "--poll-interval", "5",
                        "--jitter", "--events-per-client-hour", "60", "--ramp-up", "30", "--duration", "600",
                        "--drain", "15", "--seed", "42", "--notifier", "127.0.0.1:17777", "--notifier-udp",
                        "127.0.0.1:17778", "--control", "127.0.0.1:17779", "--workers", "4", "--processes", "2",
                        "--sources", "127.0.1.1-127.0.1.100", "--cookie", "--keepalive", "25", "--fallback-check",
                        "120", "--pure-push", "--json", "/tmp/r.json", "--quiet"});
  ASSERT_EQ(r.what, kind::run) << r.text;
  const auto& o = r.options;
  const auto& p = o.plan;
  EXPECT_EQ(p.clients, 10000u);
  EXPECT_DOUBLE_EQ(p.mix[0].share, 0.3);
  EXPECT_DOUBLE_EQ(p.mix[1].share, 0.4);
  EXPECT_DOUBLE_EQ(p.mix[2].share, 0.3);
  EXPECT_EQ(p.poll_interval, 5s);
  EXPECT_TRUE(p.poll_jitter);
  EXPECT_DOUBLE_EQ(p.events_per_client_hour, 60);
  EXPECT_EQ(p.ramp_up, 30s);
  EXPECT_EQ(p.length, 600s);
  EXPECT_EQ(p.drain, 15s);
  EXPECT_EQ(p.seed, 42u);
  EXPECT_TRUE(p.send_cookie);
  EXPECT_EQ(p.keepalive_interval, 25s);
  EXPECT_EQ(p.fallback_check_interval, 120s);
  EXPECT_FALSE(p.poll_until_first_ping);
  EXPECT_EQ(o.real.notifier.port, 17777);
  EXPECT_EQ(o.real.notifier_udp.port, 17778);
  EXPECT_EQ(o.real.control.port, 17779);
  EXPECT_TRUE(o.real.notifier_stated);
  EXPECT_TRUE(o.real.notifier_udp_stated);
  EXPECT_EQ(o.real.workers, 4u);
  EXPECT_EQ(o.real.processes, 2u);
  EXPECT_EQ(o.real.source_first.address_string(), "127.0.1.1");
  EXPECT_EQ(o.real.source_count, 100u);
  EXPECT_EQ(o.json_path, "/tmp/r.json");
  EXPECT_TRUE(o.quiet);
}

TEST(client_sim_cli, fractional_seconds_and_zero_poll_interval) {
  const auto r = parse({"--poll-interval", "0", "--duration", "1.5", "--drain", "0.25"});
  ASSERT_EQ(r.what, kind::run) << r.text;
  EXPECT_EQ(r.options.plan.poll_interval, duration::zero());  // the server's pcmsPollsMax
  EXPECT_EQ(r.options.plan.length, 1500ms);
  EXPECT_EQ(r.options.plan.drain, 250ms);
}

TEST(client_sim_cli, virtual_clock_configures_the_in_process_notifier) {
  const auto r = parse({"--clock", "virtual", "--policy", "verified", "--polls-max-ms", "5000", "--ping-resend", "30",
                        "--async-hold", "120", "--link-delay-ms", "20", "--udp-loss", "0.1"});
  ASSERT_EQ(r.what, kind::run) << r.text;
  const auto& o = r.options;
  EXPECT_EQ(o.clock, clock_kind::virtual_time);
  EXPECT_EQ(o.plan.server.policy, notifier::callback_policy::verified);
  EXPECT_EQ(o.plan.server.polls_max_ms, 5000u);
  EXPECT_EQ(o.plan.server.ping_resend, 30s);
  EXPECT_EQ(o.plan.server.async_hold, 120s);
  EXPECT_EQ(o.plan.link.one_way_delay, 20ms);
  EXPECT_DOUBLE_EQ(o.plan.link.udp_loss, 0.1);
}

TEST(client_sim_cli, help_and_version_are_values_not_exits) {
  const auto h = parse({"--help"});
  ASSERT_EQ(h.what, kind::help);
  for (const char* s : {"--clock", "--clients", "--mix", "--poll-interval", "--jitter", "--events-per-client-hour",
                        "--ramp-up", "--duration", "--drain", "--seed", "--notifier", "--notifier-udp", "--control",
                        "--workers", "--cookie", "--keepalive", "--fallback-check", "--pure-push", "--json", "--quiet",
                        "Exit codes", "loopback", "poll", "push", "async"})
    EXPECT_NE(h.text.find(s), std::string::npos) << s;
  EXPECT_EQ(parse({"-h"}).what, kind::help);
  const auto v = parse({"--version"});
  ASSERT_EQ(v.what, kind::version);
  EXPECT_EQ(v.text.rfind("client-sim ", 0), 0u);
}

TEST(client_sim_cli, mix_parsing) {
  std::array<double, client::client_mode_count> mix{};
  EXPECT_EQ(parse_mix("poll=0.3,push=0.4,async=0.3", mix), "");
  EXPECT_DOUBLE_EQ(mix[1], 0.4);
  EXPECT_EQ(parse_mix(" push = 2 , async=1 ", mix), "");  // unnormalised, blanks, missing modes are 0
  EXPECT_EQ(mix, (std::array<double, 3>{0, 2, 1}));
  EXPECT_EQ(parse_mix("async", mix), "");  // a bare mode: all of them
  EXPECT_EQ(mix, (std::array<double, 3>{0, 0, 1}));
  const std::array<double, 3> before = mix;
  EXPECT_NE(parse_mix("poll=-0.1,push=1", mix).find("negative"), std::string::npos);
  EXPECT_NE(parse_mix("poll=0,push=0", mix).find("0"), std::string::npos);
  EXPECT_NE(parse_mix("imap=1", mix).find("unknown mode"), std::string::npos);
  EXPECT_NE(parse_mix("poll=1,poll=2", mix).find("twice"), std::string::npos);
  EXPECT_NE(parse_mix("poll=abc", mix).find("not a number"), std::string::npos);
  EXPECT_NE(parse_mix("poll=1x", mix).find("not a number"), std::string::npos);
  EXPECT_NE(parse_mix("poll=", mix).find("not a number"), std::string::npos);
  EXPECT_NE(parse_mix("", mix).find("empty"), std::string::npos);
  EXPECT_EQ(mix, before);  // a failed parse leaves the mix alone
}

TEST(client_sim_cli, bad_values_are_usage_errors) {
  expect_usage_error({"--mix", "poll=-1"}, "negative");
  expect_usage_error({"--mix", "poll=0,push=0,async=0"}, "--mix");
  expect_usage_error({"--mix", "smtp=1"}, "unknown mode");
  expect_usage_error({"--clients", "0"}, "--clients");
  expect_usage_error({"--clients", "many"}, "--clients");
  expect_usage_error({"--duration", "0"}, "--duration");
  expect_usage_error({"--drain", "-1"}, "--drain");
  expect_usage_error({"--events-per-client-hour", "-5"}, "--events-per-client-hour");
  expect_usage_error({"--clock", "wall"}, "--clock");
  expect_usage_error({"--no-such-flag"}, "no-such-flag");
  expect_usage_error({"--notifier", "localhost"}, "ADDRESS:PORT");
  expect_usage_error({"--notifier", "127.0.0.1:0"}, "ADDRESS:PORT");
}

TEST(client_sim_cli, real_runs_refuse_anything_but_ipv4_loopback) {
  expect_usage_error({"--notifier", "10.0.0.5:7777"}, "loopback");
  expect_usage_error({"--notifier-udp", "192.168.1.1:7778"}, "loopback");
  expect_usage_error({"--control", "8.8.8.8:7779"}, "loopback");
  expect_usage_error({"--notifier", "[::1]:7777"}, "IPv4");
  expect_usage_error({"--sources", "10.0.0.1-10.0.0.9"}, "loopback");
  expect_usage_error({"--sources", "127.0.0.9-127.0.0.2"}, "precedes");
  // Any 127/8 address is loopback.
  EXPECT_EQ(parse({"--notifier", "127.1.2.3:7777"}).what, kind::run);
}

TEST(client_sim_cli, each_clock_refuses_the_other_clocks_flags) {
  expect_usage_error({"--policy", "peer"}, "--clock virtual");
  expect_usage_error({"--polls-max-ms", "5000"}, "notifier program");
  expect_usage_error({"--udp-loss", "0.5"}, "--udp-loss");
  expect_usage_error({"--clock", "virtual", "--workers", "2"}, "only applies to --clock real");
  expect_usage_error({"--clock", "virtual", "--notifier", "127.0.0.1:1"}, "--notifier");
}

TEST(client_sim_cli, a_virtual_run_prints_the_table_and_writes_json) {
  const auto path = std::filesystem::temp_directory_path() / ("client_sim_cli_test_" + std::to_string(::getpid()) + ".json");
  const std::string path_s = path.string();
  const auto r = parse({"--clock", "virtual", "--clients", "30", "--mix", "poll=1,push=1,async=1", "--poll-interval",
                        "5", "--duration", "120", "--drain", "10", "--json", path_s.c_str()});
  ASSERT_EQ(r.what, kind::run) << r.text;
  std::ostringstream out, err;
  EXPECT_EQ(run_client_sim(r.options, out, err, false), exit_ok) << err.str();
  EXPECT_NE(out.str().find("virtual clock"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("events missed"), std::string::npos);
  EXPECT_EQ(err.str(), "");  // not a terminal: no progress line
  std::ifstream f(path);
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j.at("schema"), "nudge.result/1");
  EXPECT_EQ(j.at("clock"), "virtual");
  EXPECT_EQ(j.at("plan").at("clients"), 30);
  std::filesystem::remove(path);
}

TEST(client_sim_cli, json_to_stdout_moves_the_table_to_stderr) {
  const auto r = parse({"--clock", "virtual", "--clients", "5", "--duration", "30", "--drain", "0", "--json", "-"});
  ASSERT_EQ(r.what, kind::run) << r.text;
  std::ostringstream out, err;
  EXPECT_EQ(run_client_sim(r.options, out, err, false), exit_ok);
  EXPECT_EQ(nlohmann::json::parse(out.str()).at("schema"), "nudge.result/1");
  EXPECT_NE(err.str().find("events missed"), std::string::npos);
}

TEST(client_sim_cli, an_unwritable_json_file_is_a_runtime_failure) {
  const auto r = parse({"--clock", "virtual", "--clients", "2", "--duration", "10", "--drain", "0", "--json",
                        "/nonexistent-dir/for/sure/r.json"});
  ASSERT_EQ(r.what, kind::run) << r.text;
  std::ostringstream out, err;
  EXPECT_EQ(run_client_sim(r.options, out, err, false), exit_failure);
  EXPECT_NE(err.str().find("cannot write"), std::string::npos);
}

TEST(client_sim_cli, scenario_file_sets_the_plan_and_flags_and_set_override_it) {
  const std::string file = std::string(NUDGE_SOURCE_DIR) + "/scenarios/nat-mix.toml";
  const auto base = parse({"--clock", "virtual", "--scenario", file.c_str()});
  ASSERT_EQ(base.what, kind::run) << base.text;
  EXPECT_FALSE(base.options.plan.nat_mix.empty());
  const auto mix = base.options.plan.mix;
  const auto over = parse({"--clock", "virtual", "--scenario", file.c_str(), "--clients", "77", "--set",
                           "server.policy=verified", "--set", "run.seed=99"});
  ASSERT_EQ(over.what, kind::run) << over.text;
  EXPECT_EQ(over.options.plan.clients, 77u);
  EXPECT_EQ(over.options.plan.seed, 99u);
  EXPECT_EQ(over.options.plan.server.policy, notifier::callback_policy::verified);
  EXPECT_EQ(over.options.plan.mix, mix);  // no --mix: the file's mix stands
}

TEST(client_sim_cli, bad_scenario_and_bad_set_are_usage_errors) {
  expect_usage_error({"--clock", "virtual", "--scenario", "/nonexistent/x.toml"}, "x.toml");
  const std::string file = std::string(NUDGE_SOURCE_DIR) + "/scenarios/nat-mix.toml";
  expect_usage_error({"--clock", "virtual", "--scenario", file.c_str(), "--set", "run.clientz=5"}, "run.clientz");
  expect_usage_error({"--scenario", file.c_str()}, "nat: applies only to --clock virtual");
}

TEST(client_sim_cli, a_real_run_refuses_scenario_keys_only_virtual_time_honours_by_name) {
  // Each refused with its key and why; the same --set is fine in virtual time.
  const std::pair<const char*, const char*> refused[] = {
      {"network.one_way_delay=20ms",
       "network.one_way_delay: applies only to --clock virtual; a real run's network is the loopback interface"},
      {"network.jitter=5ms", "network.jitter: applies only to --clock virtual"},
      {"network.udp_loss=0.1", "network.udp_loss: applies only to --clock virtual"},
      {"network.rate=64000", "network.rate: applies only to --clock virtual"},
      {"nat=[{preset=\"symmetric\", fraction=1}]", "nat: applies only to --clock virtual"},
      {"server.policy=peer", "server.policy: configures the in-process notifier of --clock virtual; for a real run, "
                             "start the notifier with --policy peer"},
      {"server.polls_max_ms=5000", "start the notifier with --polls-max-ms 5000"},
      {"server.ping_resend=30s", "start the notifier with --ping-resend 30"},
      {"server.async_hold=2min", "start the notifier with --async-hold 120"},
      {"server.push_enabled=false", "start the notifier with --no-push"},
      {"server.async_enabled=false", "start the notifier with --no-async"},
      {"server.max_pending_per_mailbox=5", "server.max_pending_per_mailbox: configures the in-process notifier"},
  };
  for (const auto& [set, message] : refused) {
    SCOPED_TRACE(set);
    expect_usage_error({"--set", set}, message);
    const auto virt = parse({"--clock", "virtual", "--set", set});
    EXPECT_EQ(virt.what, kind::run) << virt.text;
  }
  // Keys at their default values are not refused.
  const auto defaults = parse({"--set", "network.one_way_delay=1ms", "--set", "network.udp_loss=0", "--set",
                               "server.policy=legacy", "--set", "server.ping_resend=60s", "--set",
                               "server.push_enabled=true"});
  EXPECT_EQ(defaults.what, kind::run) << defaults.text;
  // The shipped business day runs in real time as written; the NAT mix names every key it cannot honour.
  const std::string dir = std::string(NUDGE_SOURCE_DIR) + "/scenarios/";
  const std::string business = dir + "business-day.toml", nat = dir + "nat-mix.toml";
  const auto day = parse({"--scenario", business.c_str()});
  EXPECT_EQ(day.what, kind::run) << day.text;
  const auto mix = parse({"--scenario", nat.c_str()});
  ASSERT_EQ(mix.what, kind::usage_error);
  for (const char* key : {"network.one_way_delay:", "network.jitter:", "nat:"})
    EXPECT_NE(mix.text.find(key), std::string::npos) << key << " in " << mix.text;
}

TEST(client_sim_cli, the_rate_flag_states_the_hourly_rate_over_a_files_per_day_rate) {
  const std::string business = std::string(NUDGE_SOURCE_DIR) + "/scenarios/business-day.toml";  // per_client_day = 50
  const auto from_file = parse({"--clock", "virtual", "--scenario", business.c_str(), "--set",
                                "events.business_hours.end=19:00"});
  ASSERT_EQ(from_file.what, kind::run) << from_file.text;
  EXPECT_DOUBLE_EQ(from_file.options.plan.events_per_client_hour, 50.0 / 10);  // the file's 50 over 09:00-19:00
  const auto flag = parse({"--clock", "virtual", "--scenario", business.c_str(), "--events-per-client-hour", "7",
                           "--set", "events.business_hours.end=19:00"});
  ASSERT_EQ(flag.what, kind::run) << flag.text;
  EXPECT_DOUBLE_EQ(flag.options.plan.events_per_client_hour, 7.0);
}
