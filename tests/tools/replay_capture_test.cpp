// nudge-replay, the reading half (tools/replay, read_capture_sessions): client
// sessions found in captures nudge made, with TCP reassembled across segments
// (the whole-session capture of tests/pcap has a RopPending response of ~5800
// bytes in four segments), in pcap and pcapng, from virtual and real captures;
// and the command line's refusals (non-loopback targets). No sockets.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/cli.hpp"
#include "nudge/replay/replayer.hpp"
#include "nudge/replay/report.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "session_capture.hpp"
#include "support/require.hpp"

#ifndef NUDGE_SOURCE_DIR
#error "NUDGE_SOURCE_DIR must name the source tree"
#endif

namespace nudge::replay {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::map<std::string, int> count_ops(const captured_client& c) {
  std::map<std::string, int> n;
  for (const auto& op : c.ops) ++n[op.name()];
  return n;
}

TEST(ReplayCapture, FindsTheWholeSessionCapturesClientsAcrossSegments) {
  const auto& f = pcap_test::shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  const capture_sessions s = read_capture_sessions(f.path);
  ASSERT_TRUE(s.error.empty()) << s.error;
  EXPECT_TRUE(s.summary.skipped.empty()) << s.summary.skipped.front();
  EXPECT_EQ(s.summary.pdus, f.info.pdus.size());
  ASSERT_EQ(s.clients.size(), 3u);
  std::map<std::string, const captured_client*> by_dn;
  for (const auto& c : s.clients) by_dn[c.user_dn] = &c;
  ASSERT_EQ(by_dn.size(), 3u);
  const captured_client& push = *by_dn.at(f.info.user_dns[0]);
  const captured_client& async = *by_dn.at(f.info.user_dns[1]);
  const captured_client& poll = *by_dn.at(f.info.user_dns[2]);
  EXPECT_EQ(push.mode, "push");
  EXPECT_EQ(async.mode, "async");
  EXPECT_EQ(poll.mode, "poll");
  EXPECT_TRUE(async.async_open.has_value());
  EXPECT_EQ(push.pings.size(), f.info.datagrams.size());

  // Every request PDU nudge sent is one operation of its client.
  std::size_t requests = 0;
  for (const auto& p : f.info.pdus) requests += p.from_client && (p.ptype == 0 || p.ptype == 11);
  EXPECT_EQ(push.ops.size() + async.ops.size() + poll.ops.size(), requests);
  EXPECT_EQ(count_ops(poll)["EcDummyRpc"], 1);
  EXPECT_EQ(count_ops(push)["EcRRegisterPushNotification"], 1);
  EXPECT_EQ(count_ops(async)["bind(AsyncEMSMDB)"], 1);
  EXPECT_EQ(count_ops(async)["EcDoAsyncConnectEx"], 1);
  EXPECT_GE(count_ops(async)["EcDoAsyncWaitEx"], 2);
  // The poll client's fetches after the 700 events: responses of several
  // segments, reassembled and answered.
  for (const auto& op : poll.ops) {
    if (op.kind != op_kind::rpc_ext2) continue;
    EXPECT_TRUE(op.answered.has_value()) << "at " << to_seconds(op.sent);
    EXPECT_GE(*op.answered, op.sent);
  }
  // Offsets from the first client's SYN, in capture order.
  EXPECT_EQ(s.clients.front().main_open, duration::zero());
  for (const auto& c : s.clients)
    for (std::size_t k = 1; k < c.ops.size(); ++k) EXPECT_GE(c.ops[k].sent, c.ops[k - 1].sent);
  // The async client's last wait was still held when the capture closed.
  const auto waits = async.lane_ops(lane::async);
  ASSERT_FALSE(waits.empty());
  EXPECT_FALSE(async.ops[waits.back()].answered.has_value());
}

TEST(ReplayCapture, ReadsTheSameSessionsFromPcapng) {
  const auto which = pcap_test::run_command("command -v editcap");
  NUDGE_REQUIRE(!which.out.empty(), "editcap (Debian: wireshark-common)");
  const auto& f = pcap_test::shared_capture();
  const fs::path ng = pcap_test::temp_pcap("nudge_replay_ng");
  const auto conv = pcap_test::run_command("editcap -F pcapng '" + f.path.string() + "' '" + ng.string() + "'");
  ASSERT_EQ(conv.status, 0) << conv.err;
  const capture_sessions a = read_capture_sessions(f.path);
  const capture_sessions b = read_capture_sessions(ng);
  fs::remove(ng);
  ASSERT_TRUE(b.error.empty()) << b.error;
  ASSERT_EQ(a.clients.size(), b.clients.size());
  for (std::size_t i = 0; i < a.clients.size(); ++i) {
    EXPECT_EQ(a.clients[i].user_dn, b.clients[i].user_dn);
    ASSERT_EQ(a.clients[i].ops.size(), b.clients[i].ops.size());
    for (std::size_t k = 0; k < a.clients[i].ops.size(); ++k) {
      EXPECT_EQ(a.clients[i].ops[k].request, b.clients[i].ops[k].request);
      EXPECT_EQ(a.clients[i].ops[k].sent, b.clients[i].ops[k].sent);
    }
  }
}

TEST(ReplayCapture, AVirtualRunsClientsAreItsPlansClients) {
  sim::run_plan plan;
  plan.clients = 30;
  plan.mix = nudge::sim::emsmdb_mix(1, 1, 1);
  plan.poll_interval = 5s;
  plan.events_per_client_hour = 120;
  plan.length = 40s;
  plan.drain = 5s;
  plan.seed = 9;
  plan.send_cookie = true;
  plan.keepalive_interval = 15s;
  const fs::path path = pcap_test::temp_pcap("nudge_replay_plan");
  sim::virtual_pcap_recorder rec({path, sim::default_pcap_epoch(), 0, 1.0, plan.seed, plan.wire});
  ASSERT_EQ(rec.open(), "");
  sim::virtual_options vo;
  vo.capture = &rec;
  const sim::run_result r = sim::run_virtual(plan, vo);
  ASSERT_EQ(rec.close(), "");
  const capture_sessions s = read_capture_sessions(path);
  fs::remove(path);
  ASSERT_TRUE(s.error.empty()) << s.error;
  EXPECT_TRUE(s.summary.skipped.empty());
  ASSERT_EQ(s.clients.size(), plan.clients);
  EXPECT_EQ(s.summary.time_zero, time_point{} + sim::default_pcap_epoch());

  const auto modes = plan.assign_modes();
  std::array<std::uint64_t, client::client_mode_count> ext2{}, waits{}, cookies{}, pings{};
  for (std::size_t i = 0; i < plan.clients; ++i) {
    const captured_client& c = s.clients[i];  // all start at 0: capture order is client order
    EXPECT_EQ(c.user_dn, sim::run_plan::user_dn(i));
    const auto m = static_cast<std::size_t>(modes[i]);
    EXPECT_EQ(c.mode, client::to_string(modes[i]));
    const auto n = count_ops(c);
    ext2[m] += static_cast<std::uint64_t>(n.count("EcDoRpcExt2") ? n.at("EcDoRpcExt2") : 0);
    waits[m] += static_cast<std::uint64_t>(n.count("EcDoAsyncWaitEx") ? n.at("EcDoAsyncWaitEx") : 0);
    cookies[m] += static_cast<std::uint64_t>(n.count("cookie") ? n.at("cookie") : 0);
    pings[m] += c.pings.size();
  }
  for (std::size_t m = 0; m < client::client_mode_count; ++m) {
    const auto& mm = r.modes[m].metrics;
    SCOPED_TRACE(std::string(client::to_string(static_cast<client::client_mode>(m))));
    EXPECT_EQ(ext2[m], mm.counter(nudge::protocol::emsmdb::counter::polls) + mm.counter(nudge::protocol::emsmdb::counter::fetches));
    EXPECT_EQ(waits[m], mm.counter(nudge::protocol::emsmdb::counter::async_waits));
    EXPECT_EQ(cookies[m], mm.traffic.cell(protocol::emsmdb::message_kind::keepalive, metrics::direction::to_server).messages);
    EXPECT_EQ(pings[m], mm.counter(nudge::protocol::emsmdb::counter::pings_matched));
  }
  EXPECT_GT(cookies[static_cast<std::size_t>(client::client_mode::push)], 0u);
}

TEST(ReplayCapture, ReadsTheGoldenCaptures) {
  const fs::path dir = fs::path(NUDGE_SOURCE_DIR) / "captures";
  const capture_sessions real = read_capture_sessions(dir / "real-loopback-mixed-6.pcap");
  ASSERT_TRUE(real.error.empty()) << real.error;
  ASSERT_EQ(real.clients.size(), 6u);
  std::map<std::string, int> modes;
  for (const auto& c : real.clients) {
    ++modes[c.mode];
    EXPECT_EQ(c.main_endpoint.address[0], 127);
  }
  EXPECT_EQ(modes, (std::map<std::string, int>{{"async", 2}, {"poll", 2}, {"push", 2}}));
  const capture_sessions nat = read_capture_sessions(dir / "virtual-nat-push.pcap");
  ASSERT_TRUE(nat.error.empty()) << nat.error;
  ASSERT_EQ(nat.clients.size(), 6u);
  for (const auto& c : nat.clients) {
    EXPECT_EQ(c.mode, "push");
    EXPECT_EQ(c.main_endpoint.address[0], 10) << "the client side of the NAT";
    EXPECT_GE(count_ops(c)["cookie"], 1);
  }
  const capture_sessions none = read_capture_sessions(dir / "no-such-file.pcap");
  EXPECT_FALSE(none.error.empty());
}

// ---- the command line ----------------------------------------------------------------------

result<replay_cli_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "nudge-replay");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_replay_options(static_cast<int>(argv.size()), argv.data());
}

TEST(ReplayCli, RefusesTargetsOutsideLoopback) {
  using action = replay_cli_options::action;
  ASSERT_TRUE(parse({"x.pcap"}));
  EXPECT_EQ(parse({"x.pcap"})->what, action::run);
  const auto v6 = parse({"x.pcap", "--notifier", "[::1]:7777", "--notifier-udp", "[::1]:7778"});
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->what, action::run);
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"x.pcap", "--notifier", "192.0.2.1:7777"},  // a capture's own (documentation) address
           {"x.pcap", "--notifier-udp", "198.18.0.2:7778"},
           {"x.pcap", "--control", "10.0.0.1:7779"},
           {"x.pcap", "--notifier", "[2001:db8::1]:7777"},
           {"x.pcap", "--sources", "10.0.0.2-10.0.0.9"},
           {"x.pcap", "--speed", "0"},
           {"x.pcap", "--speed", "2", "--topspeed"},
           {},
       }) {
    const auto r = parse(bad);
    ASSERT_FALSE(r) << (bad.size() > 1 ? bad[1] + " " + bad[2] : "no args");
    EXPECT_EQ(r.error().exit_code, exit_usage);
  }
  // The library refuses too, before any socket opens.
  capture_sessions empty;
  replay_options o;
  o.notifier = protocol::ip_endpoint::v4(192, 0, 2, 1, 7777);
  EXPECT_NE(run_replay(empty, o).error.find("non-loopback"), std::string::npos);
}

TEST(ReplayCli, DryRunListsTheClients) {
  auto parsed =
      parse({(fs::path(NUDGE_SOURCE_DIR) / "captures" / "virtual-mixed-10.pcap").string(), "--dry-run", "--blind"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->what, replay_cli_options::action::run);
  std::ostringstream out, err;
  EXPECT_EQ(run_replay_cli(*parsed, out, err), exit_ok) << err.str();
  EXPECT_NE(out.str().find("10 clients"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("[async]"), std::string::npos);
  // Reacting (the default): the clients as client cores of their family will be rebuilt.
  auto react = parse({(fs::path(NUDGE_SOURCE_DIR) / "captures" / "virtual-mixed-10.pcap").string(), "--dry-run"});
  ASSERT_TRUE(react) << react.error().message;
  std::ostringstream rout, rerr;
  EXPECT_EQ(run_replay_cli(*react, rout, rerr), exit_ok) << rerr.str();
  EXPECT_NE(rout.str().find("10 clients"), std::string::npos) << rout.str();
  EXPECT_NE(rout.str().find("emsmdb async from"), std::string::npos) << rout.str();
  EXPECT_NE(rout.str().find("poll.interval="), std::string::npos) << rout.str();
}

// Nearest-rank percentiles on known values: 1..100 ms in a scrambled order give
// p50 50, p99 99 (not the maximum), max 100, mean 50.5; five values round up.
TEST(ReplayReport, PacingPercentilesAreNearestRank) {
  std::vector<double> e;
  for (int i = 0; i < 100; ++i) e.push_back(static_cast<double>((i * 37) % 100 + 1));
  const pacing_summary s = summarize_pacing(e);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 50);
  EXPECT_DOUBLE_EQ(s.p99_ms, 99);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);
  EXPECT_DOUBLE_EQ(s.mean_ms, 50.5);
  const pacing_summary five = summarize_pacing({5, 1, 4, 2, 3});
  EXPECT_DOUBLE_EQ(five.p50_ms, 3);
  EXPECT_DOUBLE_EQ(five.p99_ms, 5);
  EXPECT_EQ(summarize_pacing({}).count, 0u);
}

}  // namespace
}  // namespace nudge::replay
