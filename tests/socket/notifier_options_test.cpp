// The notifier's command line: accepted values, and the exact messages for the
// mistakes an operator makes (bad policy, bad endpoint, non-loopback address).
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "nudge/notifier/notifier_options.hpp"

namespace nudge::notifier {
namespace {

result<notifier_options> parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"notifier"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_notifier_options(static_cast<int>(argv.size()), argv.data());
}

TEST(notifier_options, DefaultsAreLoopbackLegacyAndEverythingOn) {
  const auto r = parse({});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->cmd, notifier_options::command::run);
  EXPECT_EQ(r->listen.to_string(), "127.0.0.1:7777");
  EXPECT_EQ(r->udp.to_string(), "127.0.0.1:7778");
  EXPECT_FALSE(r->control);
  EXPECT_EQ(r->policy, callback_policy::legacy);
  EXPECT_EQ(r->polls_max_ms, 60000u);
  EXPECT_EQ(r->ping_resend_s, 60);
  EXPECT_EQ(r->async_hold_s, 300);
  EXPECT_TRUE(r->push);
  EXPECT_TRUE(r->async);
  EXPECT_FALSE(r->allow_non_loopback);
  EXPECT_EQ(r->events_per_mailbox_hour, 0);
  EXPECT_FALSE(r->duration_s);
  EXPECT_TRUE(r->stats_json.empty());
  EXPECT_FALSE(r->quiet);

  const auto cfg = to_server_config(*r);
  EXPECT_EQ(cfg.core.ping_resend, std::chrono::seconds(60));
  EXPECT_EQ(cfg.core.async_hold, std::chrono::minutes(5));
  EXPECT_FALSE(cfg.core.allow_non_loopback);
}

TEST(notifier_options, AcceptsEveryFlag) {
  const auto r = parse({"--listen", "127.0.0.2:9000", "--udp", "[::1]:9001", "--control", "127.0.0.1:9002",
                        "--policy", "verified", "--polls-max-ms", "5000", "--ping-resend", "2.5", "--async-hold",
                        "30", "--no-push", "--no-async", "--events-per-mailbox-hour", "12", "--seed", "42",
                        "--duration", "90", "--stats-json", "out.json", "--quiet"});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->cmd, notifier_options::command::run);
  const auto& o = *r;
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
  EXPECT_EQ(parse({"--policy", "legacy"}).value().policy, callback_policy::legacy);
  EXPECT_EQ(parse({"--policy", "peer"}).value().policy, callback_policy::peer);
  EXPECT_EQ(parse({"--policy", "verified"}).value().policy, callback_policy::verified);
}

TEST(notifier_options, EventsPerDayBecomesPerHour) {
  const auto r = parse({"--events-per-mailbox-day", "48"});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->cmd, notifier_options::command::run);
  EXPECT_DOUBLE_EQ(r->events_per_mailbox_hour, 2.0);
}

TEST(notifier_options, BadPolicyIsNamed) {
  const auto r = parse({"--policy", "nat"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--policy: unknown callback policy 'nat' (expected legacy, peer or verified)");
  EXPECT_EQ(r.error().exit_code, 2);
}

TEST(notifier_options, BadEndpointIsNamed) {
  auto r = parse({"--listen", "localhost"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--listen: 'localhost' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
  r = parse({"--udp", "127.0.0.1:70000"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--udp: '127.0.0.1:70000' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
  r = parse({"--control", "127.0.0.1"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--control: '127.0.0.1' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)");
}

TEST(notifier_options, NonLoopbackListenNeedsTheFlag) {
  auto r = parse({"--listen", "0.0.0.0:7777"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "--listen 0.0.0.0:7777 is not a loopback address: the notifier listens on loopback only unless "
            "--allow-non-loopback is given");
  r = parse({"--udp", "192.0.2.1:7778"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "--udp 192.0.2.1:7778 is not a loopback address: the notifier listens on loopback only unless "
            "--allow-non-loopback is given");

  r = parse({"--listen", "0.0.0.0:7777", "--allow-non-loopback"});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->cmd, notifier_options::command::run);
  EXPECT_TRUE(r->allow_non_loopback);
  EXPECT_TRUE(to_server_config(*r).core.allow_non_loopback);
}

TEST(notifier_options, ControlPortStaysOnLoopbackEvenWithTheFlag) {
  const auto r = parse({"--control", "0.0.0.0:7779", "--allow-non-loopback"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "--control 0.0.0.0:7779 is not a loopback address: the control port has no authentication and stays "
            "on loopback");
}

TEST(notifier_options, OutOfRangeNumbersAreRefused) {
  EXPECT_EQ(parse({"--ping-resend", "0"}).error().message, "--ping-resend: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--async-hold", "-1"}).error().message, "--async-hold: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--duration", "0"}).error().message, "--duration: must be a number of seconds above 0");
  EXPECT_EQ(parse({"--polls-max-ms", "0"}).error().message, "--polls-max-ms: must be from 1 to 86400000 milliseconds");
  EXPECT_EQ(parse({"--events-per-mailbox-hour", "-3"}).error().message,
            "--events-per-mailbox-hour/--events-per-mailbox-day: must not be negative");
  EXPECT_FALSE(parse({"--polls-max-ms", "soon"}));
  EXPECT_FALSE(parse({"--events-per-mailbox-hour", "1", "--events-per-mailbox-day", "1"}));
  EXPECT_FALSE(parse({"--frobnicate"}));
}

TEST(notifier_options, SetTakesKeyValuePairsAndProtocolsIsAValue) {
  const auto set = parse({"--set", "pollbus.policy=activity", "--set", "a.b=c=d"});
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->family_keys.size(), 2u);
  EXPECT_EQ(set->family_keys[0], (std::pair<std::string, std::string>{"pollbus.policy", "activity"}));
  EXPECT_EQ(set->family_keys[1], (std::pair<std::string, std::string>{"a.b", "c=d"}));
  EXPECT_EQ(parse({"--set", "novalue"}).error().message,
            "--set novalue: expected KEY=VALUE, for example pollbus.policy=activity");
  const auto listed = parse({"--protocols"});
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(listed->cmd, notifier_options::command::help);
  EXPECT_EQ(listed->text.rfind("Protocols the notifier serves", 0), 0u) << listed->text;
}

TEST(notifier_options, HelpAndVersionAreValuesNotExits) {
  const auto help = parse({"--help"});
  ASSERT_TRUE(help) << help.error().message;
  ASSERT_EQ(help->cmd, notifier_options::command::help);
  for (const char* group : {"Endpoints", "Protocol timers", "Callback policy", "Safety", "Event generator", "Output"})
    EXPECT_NE(help->text.find(group), std::string::npos) << group;
  EXPECT_NE(help->text.find("EVENTS <n> <user_dn>"), std::string::npos);
  EXPECT_NE(help->text.find("EVENT@<family> <user_dn>"), std::string::npos);

  const auto version = parse({"--version"});
  ASSERT_TRUE(version) << version.error().message;
  ASSERT_EQ(version->cmd, notifier_options::command::version);
  EXPECT_EQ(version->text.rfind("notifier (nudge) ", 0), 0u) << version->text;
}

}  // namespace
}  // namespace nudge::notifier
