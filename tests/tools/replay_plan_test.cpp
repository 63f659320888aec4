// nudge-replay's reacting half, without a notifier: the plan read from a
// capture (read_replay_plan) rebuilds a virtual run's clients of both
// families, per family and mode, with their mailbox events and intervals; a
// foreign capture (other addresses and ports by tcprewrite, Linux cooked
// frames, pcapng by editcap, a TLS flow merged in by mergecap) gives the same
// plan, with the TLS flow counted and named as not replayed; the comparison
// names what differs beyond the tolerance; the command line refuses packet
// pacing without --blind.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/cli.hpp"
#include "nudge/replay/react.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/run_plan.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

namespace nudge::replay {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("nudge_replay_plan_" + std::to_string(::getpid()) + "_" + name);
}

/// Two families in one run: EMSMDB in its three modes and the polling bus.
sim::run_plan mixed_plan() {
  sim::run_plan p;
  p.clients = 12;
  p.mix = {{"emsmdb", "poll", 1}, {"emsmdb", "push", 1}, {"emsmdb", "async", 1}, {"pollbus", "fixed", 1}};
  p.poll_interval = 2s;
  p.events_per_client_hour = 900;
  p.length = 20s;
  p.drain = 2s;
  p.seed = 4;
  p.set_family_key("pollbus.interval", "1s");
  return p;
}

std::map<std::pair<std::string, std::string>, std::size_t> clients_by_mode(const replay_plan& plan) {
  std::map<std::pair<std::string, std::string>, std::size_t> n;
  for (const auto& c : plan.clients) ++n[{c.family, c.mode}];
  return n;
}

const std::string* key_of(const planned_client& c, const std::string& key) {
  for (const auto& [k, v] : c.keys)
    if (k == key) return &v;
  return nullptr;
}

TEST(ReplayPlan, RebuildsAVirtualRunsClientsOfBothFamilies) {
  const sim::run_plan p = mixed_plan();
  const fs::path path = temp("mixed.pcap");
  const auto run = sim::capture_virtual_run(p, path);
  ASSERT_TRUE(run) << run.error().message;
  const replay_plan plan = read_replay_plan(path);
  fs::remove(path);
  ASSERT_TRUE(plan.error.empty()) << plan.error;
  ASSERT_EQ(plan.clients.size(), p.clients);
  EXPECT_EQ(plan.skipped_packets, 0u) << (plan.skipped.empty() ? "" : plan.skipped.front().what);

  const auto by_mode = clients_by_mode(plan);
  for (std::size_t g = 0; g < p.mix.size(); ++g) {
    SCOPED_TRACE(p.mix[g].protocol + " " + p.mix[g].mode);
    const auto& group = run->result.modes[g];
    const auto at = by_mode.find({p.mix[g].protocol, p.mix[g].mode});
    ASSERT_NE(at, by_mode.end());
    EXPECT_EQ(at->second, group.clients);
    // Every event a client of the group fetched in the run is one the plan injects.
    std::size_t events = 0;
    for (const auto& c : plan.clients)
      if (c.family == p.mix[g].protocol && c.mode == p.mix[g].mode) events += c.events.size();
    EXPECT_EQ(events, group.metrics.events_fetched());
    EXPECT_GT(events, 0u);
  }
  for (const auto& c : plan.clients) {
    EXPECT_GE(c.start, duration::zero());
    EXPECT_TRUE(std::is_sorted(c.events.begin(), c.events.end()));
    for (const duration e : c.events) EXPECT_LE(e, plan.span);
    if (c.family == "emsmdb" && c.mode == "poll") {
      // The captured gap: the plan's interval and a round trip of the virtual link.
      const std::string* interval = key_of(c, "poll.interval");
      ASSERT_NE(interval, nullptr);
      const auto* f = engine::registry::instance().find("emsmdb");
      engine::settings s = engine::settings::defaults(*f);
      EXPECT_FALSE(s.assign(*f, "poll.interval", *interval).has_value()) << *interval;
      EXPECT_GE(s.span("poll.interval"), 2s);
      EXPECT_LE(s.span("poll.interval"), 2100ms);
    }
    // The bus's server set the interval: the live server's to set again, not a client key.
    if (c.family == "pollbus") {
      EXPECT_EQ(key_of(c, "pollbus.client_interval"), nullptr);
    }
  }
}

/// A TLS ClientHello's first bytes to port 443, on a flow no family reads.
void write_tls_flow(const fs::path& path) {
  capture::pcap_file_writer w;
  ASSERT_EQ(w.open(path, sim::default_pcap_epoch()), capture::capture_error::none);
  capture::frame_synthesizer syn(w);
  const auto client = protocol::ip_endpoint::v4(198, 51, 100, 7, 40000);
  const auto server = protocol::ip_endpoint::v4(203, 0, 113, 9, 443);
  const std::vector<std::uint8_t> hello = {0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03};
  const time_point t{std::chrono::milliseconds(100)};
  ASSERT_EQ(syn.tcp_open(t, client, server), capture::capture_error::none);
  ASSERT_EQ(syn.tcp_data(t + 1ms, client, server, hello), capture::capture_error::none);
  ASSERT_EQ(syn.tcp_close(t + 2ms, client, server), capture::capture_error::none);
  ASSERT_EQ(w.close(), capture::capture_error::none);
}

TEST(ReplayPlan, AForeignCaptureGivesTheSamePlanAndNamesWhatItCannotReplay) {
  for (const char* tool : {"tcprewrite", "editcap", "mergecap"})
    NUDGE_REQUIRE(test_support::have_program(tool), std::string(tool) + " (Debian: tcpreplay, wireshark-common)");
  sim::run_plan p;
  p.clients = 6;
  p.mix = sim::emsmdb_mix(1, 1, 1);
  p.poll_interval = 1s;
  p.events_per_client_hour = 1200;
  p.length = 8s;
  p.drain = 1s;
  p.seed = 6;
  const fs::path home = temp("home.pcap"), tls = temp("tls.pcap"), merged = temp("merged.pcap"),
                 moved = temp("moved.pcap"), cooked = temp("cooked.pcap"), ng = temp("foreign.pcapng");
  ASSERT_TRUE(sim::capture_virtual_run(p, home));
  write_tls_flow(tls);
  int status = 0;
  const auto sh = [&](const std::string& command) {
    const std::string out = test_support::run_shell(command + " 2>&1", &status);
    EXPECT_EQ(status, 0) << command << "\n" << out;
  };
  sh("mergecap -F pcap -w '" + merged.string() + "' '" + home.string() + "' '" + tls.string() + "'");
  // Other addresses (10.20.0.0/16 for the documentation range) and other ports for the notifier's.
  sh("tcprewrite --infile='" + merged.string() + "' --outfile='" + moved.string() +
     "' --pnat=198.18.0.0/16:10.20.0.0/16 --portmap=7777:8135,7778:9135 --fixcsum");
  // Linux cooked (SLL) frames: packet type 0, ARPHRD_LOOPBACK, a 6-byte address, IPv4.
  sh("tcprewrite --infile='" + moved.string() + "' --outfile='" + cooked.string() +
     "' --dlt=user --user-dlt=113 --user-dlink=00,00,03,04,00,06,00,00,00,00,00,00,00,00,08,00");
  sh("editcap -F pcapng '" + cooked.string() + "' '" + ng.string() + "'");

  const replay_plan a = read_replay_plan(home);
  const replay_plan b = read_replay_plan(ng);
  for (const auto& f : {home, tls, merged, moved, cooked, ng}) fs::remove(f);
  ASSERT_TRUE(a.error.empty()) << a.error;
  ASSERT_TRUE(b.error.empty()) << b.error;
  EXPECT_EQ(b.format, "pcapng");
  EXPECT_EQ(b.link_type, "LINUX_SLL");
  ASSERT_EQ(a.clients.size(), p.clients);
  ASSERT_EQ(b.clients.size(), a.clients.size());
  EXPECT_EQ(a.span, b.span);
  // Same clients, in the same order, with the same plan; only the captured addresses moved.
  for (std::size_t i = 0; i < a.clients.size(); ++i) {
    SCOPED_TRACE(i);
    const auto &x = a.clients[i], &y = b.clients[i];
    EXPECT_EQ(std::tie(x.family, x.mode, x.keys, x.start, x.events), std::tie(y.family, y.mode, y.keys, y.start, y.events));
    EXPECT_EQ(x.captured, y.captured);
    EXPECT_EQ(y.captured_address.address[0], 10);
    EXPECT_EQ(y.captured_address.address[1], 20);
  }
  // The TLS flow: its five packets counted and named, nothing dropped silently.
  EXPECT_EQ(a.skipped_packets, 0u);
  EXPECT_EQ(b.skipped_flows, 1u);
  ASSERT_FALSE(b.skipped.empty());
  EXPECT_NE(b.skipped.front().what.find("TLS (encrypted payload)"), std::string::npos) << b.skipped.front().what;
  EXPECT_NE(b.skipped.front().what.find("203.0.113.9:443"), std::string::npos) << b.skipped.front().what;
  EXPECT_EQ(b.skipped.front().packets, b.skipped_packets);
  EXPECT_GE(b.skipped_packets, 5u);  // handshake, data, teardown
}

planned_client captured_client(counter_values captured, std::size_t events) {
  planned_client c;
  c.family = "emsmdb";
  c.mode = "push";
  c.captured = std::move(captured);
  c.events.assign(events, 1s);
  return c;
}

TEST(ReplayPlan, TheComparisonNamesWhatDiffersBeyondTheTolerance) {
  const planned_client c = captured_client({{"polls", 2}, {"pings_matched", 4}, {"fetches", 4}}, 4);
  // Within one of every count: the same client.
  const client_outcome same = compare_client(c, {{"polls", 3}, {"pings_matched", 4}, {"fetches", 3}, {"async_waits", 0}}, 4, false, 1);
  EXPECT_TRUE(same.divergences.empty());
  EXPECT_TRUE(same.live_only.empty());
  // No pings, polling instead: the pings, the fetches and the polls differ, by name.
  const client_outcome fell_back =
      compare_client(c, {{"polls", 9}, {"pings_matched", 0}, {"fetches", 0}, {"fallbacks_to_polling", 1}}, 4, false, 1);
  std::vector<std::string> names;
  for (const auto& d : fell_back.divergences) names.push_back(d.counter);
  EXPECT_EQ(names, (std::vector<std::string>{"polls", "pings_matched", "fetches"}));
  EXPECT_EQ(fell_back.divergences[1].captured, 4u);
  EXPECT_EQ(fell_back.divergences[1].live, 0u);
  EXPECT_EQ(fell_back.live_only, (counter_values{{"fallbacks_to_polling", 1}}));
  // Events the live client never fetched, with a tolerance of zero.
  const client_outcome missed = compare_client(c, {{"polls", 2}, {"pings_matched", 4}, {"fetches", 4}}, 3, false, 0);
  ASSERT_EQ(missed.divergences.size(), 1u);
  EXPECT_EQ(missed.divergences[0].counter, "events_fetched");
}

// Blind pacing: --limit keeps the capture's first N operations, --pps puts
// them N per second in capture order, each client's in its own order still.
TEST(ReplayPlan, BlindLimitAndPpsRetimeTheCapture) {
  capture_sessions cap = read_capture_sessions(fs::path(NUDGE_SOURCE_DIR) / "captures" / "virtual-mixed-10.pcap");
  ASSERT_TRUE(cap.error.empty()) << cap.error;
  std::vector<duration> before;
  for (const auto& c : cap.clients)
    for (const auto& op : c.ops) before.push_back(op.sent);
  std::sort(before.begin(), before.end());
  ASSERT_GT(before.size(), 40u);
  limit_operations(cap, 40);
  std::vector<duration> kept;
  for (const auto& c : cap.clients)
    for (const auto& op : c.ops) kept.push_back(op.sent);
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, std::vector<duration>(before.begin(), before.begin() + 40));
  retime_operations(cap, 100);
  std::vector<duration> paced;
  for (const auto& c : cap.clients) {
    for (std::size_t k = 1; k < c.ops.size(); ++k) EXPECT_GE(c.ops[k].sent, c.ops[k - 1].sent);
    for (const auto& op : c.ops) paced.push_back(op.sent);
  }
  std::sort(paced.begin(), paced.end());
  ASSERT_EQ(paced.size(), 40u);
  for (std::size_t r = 0; r < paced.size(); ++r)
    EXPECT_NEAR(to_seconds(paced[r]), static_cast<double>(r) / 100.0, 1e-6) << r;
}

result<replay_cli_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "nudge-replay");
  std::vector<const char*> argv;
  for (const auto& x : args) argv.push_back(x.c_str());
  return parse_replay_options(static_cast<int>(argv.size()), argv.data());
}

TEST(ReplayPlan, PacketPacingNeedsBlind) {
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"x.pcap", "--topspeed"},
           {"x.pcap", "--pps", "100"},
           {"x.pcap", "--limit", "10"},
           {"x.pcap", "--blind", "--pps", "100", "--multiplier", "2"},
           {"x.pcap", "--blind", "--pps", "100", "--topspeed"},
           {"x.pcap", "--loop", "0"},
           {"x.pcap", "--multiplier", "0"},
       }) {
    const auto r = parse(bad);
    EXPECT_FALSE(r) << bad[1];
    if (!r) {
      EXPECT_EQ(r.error().exit_code, exit_usage);
    }
  }
  const auto blind = parse({"x.pcap", "--blind", "--pps", "100", "--limit", "10", "--loop", "3"});
  ASSERT_TRUE(blind) << blind.error().message;
  EXPECT_TRUE(blind->blind);
  EXPECT_EQ(blind->pps, 100);
  EXPECT_EQ(blind->limit, 10u);
  EXPECT_EQ(blind->loops, 3u);
  const auto react = parse({"x.pcap", "--multiplier", "4", "--control", "127.0.0.1:17779", "--tolerance", "2"});
  ASSERT_TRUE(react) << react.error().message;
  EXPECT_FALSE(react->blind);
  EXPECT_EQ(react->react.multiplier, 4);
  EXPECT_EQ(react->react.tolerance, 2u);
  EXPECT_EQ(react->react.control.port, 17779);
}

}  // namespace
}  // namespace nudge::replay
