// The notifier's command line: accepted values, and the exact messages for the
// mistakes an operator makes (bad policy, bad endpoint, non-loopback address).
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "nudge/notifier/notifier_options.hpp"

namespace nudge::notifier {
namespace {

parse_result parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"notifier"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_notifier_options(static_cast<int>(argv.size()), argv.data());
}

TEST(notifier_options, DefaultsAreLoopbackLegacyAndEverythingOn) {
  const auto r = parse({});
  ASSERT_EQ(r.what, parse_result::action::run) << r.text;
  EXPECT_EQ(r.options.listen.to_string(), "127.0.0.1:7777");
  EXPECT_EQ(r.options.udp.to_string(), "127.0.0.1:7778");
  EXPECT_FALSE(r.options.control);
  EXPECT_EQ(r.options.policy, callback_policy::legacy);
  EXPECT_EQ(r.options.polls_max_ms, 60000u);
  EXPECT_EQ(r.options.ping_resend_s, 60);
  EXPECT_EQ(r.options.async_hold_s, 300);
  EXPECT_TRUE(r.options.push);
  EXPECT_TRUE(r.options.async);
  EXPECT_FALSE(r.options.allow_non_loopback);
  EXPECT_EQ(r.options.events_per_mailbox_hour, 0);
  EXPECT_FALSE(r.options.duration_s);
  EXPECT_TRUE(r.options.stats_json.empty());
  EXPECT_FALSE(r.options.quiet);

  const auto cfg = to_server_config(r.options);
  EXPECT_EQ(cfg.core.ping_resend, std::chrono::seconds(60));
  EXPECT_EQ(cfg.core.async_hold, std::chrono::minutes(5));
  EXPECT_FALSE(cfg.core.allow_non_loopback);
}

TEST(notifier_options, AcceptsEveryFlag) {
  const auto r = parse({"--listen", "127.0.0.2:9000", "--udp", "[::1]:9001", "--control", "127.0.0.1:9002",
                        "--policy", "verified", "--polls-max-ms", "5000", "--ping-resend", "2.5", "--async-hold",
                        "30", "--no-push", "--no-async", "--events-per-mailbox-hour", "12", "--seed", "42",
                        "--duration", "90", "--stats-json", "out.json", "--quiet"});
  ASSERT_EQ(r.what, parse_result::action::run) << r.text;
  const auto& o = r.options;
  EXPECT_EQ(o.listen.to_string(), "127.0.0.2:9000");
  EXPECT_EQ(o.udp.to_string(), "[::1]:9001");
  ASSERT_TRUE(o.control);
  EXPECT_EQ(o.control->port, 9002);
  EXPECT_EQ(o.policy, callback_policy::verified);
  EXPECT_EQ(o.polls_max_ms, 5000u);
  EXPECT_FALSE(o.push);
  EXPECT_FALSE(o.async);
  EXPECT_EQ(o.events_per_mailbox_hour, 12);
  EXPECT_EQ(o.seed, 42u);
  ASSERT_TRUE(o.duration_s);
  EXPECT_EQ(*o.duration_s, 90);
  EXPECT_EQ(o.stats_json, "out.json");
  EXPECT_TRUE(o.quiet);

  const auto cfg = to_server_config(o);
  EXPECT_EQ(cfg.core.ping_resend, std::chrono::milliseconds(2500));
  EXPECT_EQ(cfg.core.async_hold, std::chrono::seconds(30));
  EXPECT_EQ(cfg.core.policy, callback_policy::verified);
  EXPECT_FALSE(cfg.core.push_enabled);
  EXPECT_FALSE(cfg.core.async_enabled);
  EXPECT_EQ(cfg.core.polls_max_ms, 5000u);
  EXPECT_EQ(cfg.events_per_mailbox_hour, 12);
  EXPECT_EQ(cfg.seed, 42u);
}

TEST(notifier_options, EveryPolicyParses) {
  EXPECT_EQ(parse({"--policy", "legacy"}).options.policy, callback_policy::legacy);
  EXPECT_EQ(parse({"--policy", "peer"}).options.policy, callback_policy::peer);
  EXPECT_EQ(parse({"--policy", "verified"}).options.policy, callback_policy::verified);
}

TEST(notifier_options, EventsPerDayBecomesPerHour) {
  const auto r = parse({"--events-per-mailbox-day", "48"});
  ASSERT_EQ(r.what, parse_result::action::run) << r.text;
  EXPECT_DOUBLE_EQ(r.options.events_per_mailbox_hour, 2.0);
}

TEST(notifier_options, BadPolicyIsNamed) {
  const auto r = parse({"--policy", "nat"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text, "--policy: unknown callback policy 'nat' (expected legacy, peer or verified)");
  EXPECT_EQ(r.exit_code(), 2);
}

TEST(notifier_options, BadEndpointIsNamed) {
  auto r = parse({"--listen", "localhost"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text, "--listen: 'localhost' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
  r = parse({"--udp", "127.0.0.1:70000"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text, "--udp: '127.0.0.1:70000' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
  r = parse({"--control", "127.0.0.1"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text, "--control: '127.0.0.1' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
}

TEST(notifier_options, NonLoopbackListenNeedsTheFlag) {
  auto r = parse({"--listen", "0.0.0.0:7777"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text,
            "--listen 0.0.0.0:7777 is not a loopback address: the notifier listens on loopback only unless "
            "--allow-non-loopback is given");
  r = parse({"--udp", "192.0.2.1:7778"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text,
            "--udp 192.0.2.1:7778 is not a loopback address: the notifier listens on loopback only unless "
            "--allow-non-loopback is given");

  r = parse({"--listen", "0.0.0.0:7777", "--allow-non-loopback"});
  ASSERT_EQ(r.what, parse_result::action::run) << r.text;
  EXPECT_TRUE(r.options.allow_non_loopback);
  EXPECT_TRUE(to_server_config(r.options).core.allow_non_loopback);
}

TEST(notifier_options, ControlPortStaysOnLoopbackEvenWithTheFlag) {
  const auto r = parse({"--control", "0.0.0.0:7779", "--allow-non-loopback"});
  ASSERT_EQ(r.what, parse_result::action::error);
  EXPECT_EQ(r.text,
            "--control 0.0.0.0:7779 is not a loopback address: the control port has no authentication and stays "
            "on loopback");
}

TEST(notifier_options, OutOfRangeNumbersAreRefused) {
  EXPECT_EQ(parse({"--ping-resend", "0"}).text, "--ping-resend: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--async-hold", "-1"}).text, "--async-hold: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--duration", "0"}).text, "--duration: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--polls-max-ms", "0"}).text, "--polls-max-ms: must be from 1 to 86400000 milliseconds");
  EXPECT_EQ(parse({"--events-per-mailbox-hour", "-3"}).text,
            "--events-per-mailbox-hour/--events-per-mailbox-day: must not be negative");
  EXPECT_EQ(parse({"--polls-max-ms", "soon"}).what, parse_result::action::error);
  EXPECT_EQ(parse({"--events-per-mailbox-hour", "1", "--events-per-mailbox-day", "1"}).what,
            parse_result::action::error);
  EXPECT_EQ(parse({"--frobnicate"}).what, parse_result::action::error);
}

TEST(notifier_options, HelpAndVersionAreValuesNotExits) {
  const auto help = parse({"--help"});
  ASSERT_EQ(help.what, parse_result::action::help);
  EXPECT_EQ(help.exit_code(), 0);
  for (const char* group : {"Endpoints", "Protocol timers", "Callback policy", "Safety", "Event generator", "Output"})
    EXPECT_NE(help.text.find(group), std::string::npos) << group;
  EXPECT_NE(help.text.find("EVENTS <n> <user_dn>"), std::string::npos);

  const auto version = parse({"--version"});
  ASSERT_EQ(version.what, parse_result::action::version);
  EXPECT_EQ(version.text.rfind("notifier (nudge) ", 0), 0u) << version.text;
}

}  // namespace
}  // namespace nudge::notifier
