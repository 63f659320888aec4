// nudge-replay against the real `notifier` (a child process on free loopback
// ports): a virtual-time capture of 200 mixed clients is replayed at four
// times its speed with the capture's mail injected through the control port;
// every client's operations match, the live notifier sees every session, and
// the report gives the pacing error. Without mail, waits the capture saw
// completed stay held: the clients are consistent, not matched, and the
// calls behind those waits are reported as blocked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/cli.hpp"
#include "nudge/replay/replayer.hpp"
#include "nudge/replay/report.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "session_capture.hpp"
#include "support/notifier_process.hpp"

namespace nudge::replay {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test_support::notifier_process;

struct virtual_capture {
  fs::path path;
  sim::run_plan plan;
  sim::run_result result;
  ~virtual_capture() {
    if (!std::getenv("NUDGE_KEEP_PCAP")) fs::remove(path);
  }
};

std::unique_ptr<virtual_capture> capture_run(std::size_t clients, duration length, std::uint64_t seed,
                                             const std::string& stem) {
  auto c = std::make_unique<virtual_capture>();
  c->path = pcap_test::temp_pcap(stem);
  sim::run_plan& p = c->plan;
  p.clients = clients;
  p.mix = nudge::sim::emsmdb_mix(1, 1, 1);
  p.poll_interval = 5s;
  p.events_per_client_hour = 60;  // about one per client-minute
  p.length = length;
  p.drain = 5s;
  p.seed = seed;
  sim::virtual_pcap_recorder rec({c->path, sim::default_pcap_epoch(), 0, 1.0, seed, p.wire});
  EXPECT_EQ(rec.open(), "");
  sim::virtual_options vo;
  vo.capture = &rec;
  c->result = sim::run_virtual(p, vo);
  EXPECT_EQ(rec.close(), "");
  return c;
}

replay_options target(const notifier_process& n) {
  replay_options o;
  o.notifier = n.tcp_ep();
  o.notifier_udp = n.udp_ep();
  return o;
}

TEST(ReplaySocket, TwoHundredMixedClientsAtFourTimesSpeedMatchTheCapture) {
  const auto cap = capture_run(200, 30s, 7, "nudge_replay_200");
  const capture_sessions s = read_capture_sessions(cap->path);
  ASSERT_TRUE(s.error.empty()) << s.error;
  ASSERT_EQ(s.clients.size(), 200u);

  notifier_process notifier({"--polls-max-ms", "5000"});
  ASSERT_TRUE(notifier.running());
  replay_options o = target(notifier);
  o.control = notifier.control_ep();
  o.speed = 4;
  o.grace = 2s;
  const replay_outcome out = run_replay(s, o);
  ASSERT_TRUE(out.error.empty()) << out.error;
  const replay_report r = make_report(cap->path.string(), s, out, o);

  ASSERT_EQ(r.clients.size(), 200u);
  EXPECT_EQ(r.failed, 0u);
  EXPECT_EQ(r.matched, 200u);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.ops_sent, r.ops_captured);
  EXPECT_EQ(r.blocked, 0u);
  EXPECT_EQ(r.faults, 0u);
  for (const auto& c : r.clients) {
    SCOPED_TRACE(c.user_dn);
    EXPECT_TRUE(c.match) << (c.problems.empty() ? c.failure : c.problems.front());
    // Lane by lane the replayed sequence is the captured one; merged, the
    // order of operations on different connections at the same instant may differ.
    auto sorted = [](std::vector<std::string> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    EXPECT_EQ(sorted(c.replayed), sorted(c.captured));
  }
  // Mail was injected where the capture showed it arriving, and acknowledged.
  EXPECT_GT(r.events_injected, 0u);
  EXPECT_EQ(r.events_acknowledged, r.events_injected);
  EXPECT_GT(r.pings_received, 0u);
  // The pacing summary is that of the per-operation timelines: |sent - due| of
  // every request sent, nearest-rank percentiles (summarize_pacing is checked on
  // known values in replay_capture_test).
  std::vector<double> errors_ms;
  for (const auto& c : r.clients)
    for (const auto& line : c.timeline)
      if (line.sent_s) errors_ms.push_back(std::abs(*line.sent_s - line.due_s) * 1000.0);
  ASSERT_EQ(errors_ms.size(), r.ops_captured);  // every captured operation went out, paced
  std::sort(errors_ms.begin(), errors_ms.end());
  const auto nearest_rank = [&](double q) {
    return errors_ms[static_cast<std::size_t>(std::ceil(q * static_cast<double>(errors_ms.size()))) - 1];
  };
  EXPECT_EQ(r.pacing.count, errors_ms.size());
  EXPECT_NEAR(r.pacing.p50_ms, nearest_rank(0.50), 1e-3);
  EXPECT_NEAR(r.pacing.p99_ms, nearest_rank(0.99), 1e-3);
  EXPECT_NEAR(r.pacing.max_ms, errors_ms.back(), 1e-3);
  // Paced, not blind: at speed 4 the replay cannot end before a quarter of the
  // capture's span (no upper bound: how slow a loaded machine is, is not a property of replay).
  EXPECT_GT(out.wall_seconds, to_seconds(s.summary.span) / 4 * 0.9);

  const auto j = to_json(r);
  EXPECT_EQ(j.at("schema"), "nudge.replay/1");
  EXPECT_EQ(j.at("summary").at("matched"), 200);
  for (const char* k : {"p50_ms", "p99_ms", "max_ms", "count"}) EXPECT_TRUE(j.at("summary").at("pacing").contains(k));
  EXPECT_TRUE(j.at("clients").at(0).at("pacing").contains("p99_ms"));
  EXPECT_FALSE(j.at("clients").at(0).at("timeline").empty());

  // The live notifier saw every session and registration.
  const auto stats = notifier.stats();
  EXPECT_EQ(stats.at("sessions_opened").get<std::size_t>(), 200u);
  std::size_t push = 0;
  for (const auto m : cap->plan.assign_modes()) push += m == client::client_mode::push;
  EXPECT_EQ(stats.at("registrations").get<std::size_t>(), push);
}

TEST(ReplaySocket, WithoutMailHeldWaitsBlockWhatFollowsAndTheCliReportsIt) {
  const auto cap = capture_run(30, 40s, 11, "nudge_replay_nomail");
  notifier_process notifier({"--polls-max-ms", "5000"});
  ASSERT_TRUE(notifier.running());
  const fs::path json_path = pcap_test::temp_pcap("nudge_replay_report") += ".json";
  std::vector<std::string> args{"nudge-replay",           cap->path.string(), "--notifier",
                                notifier.tcp_ep().to_string(), "--notifier-udp",   notifier.udp_ep().to_string(),
                                "--blind", "--topspeed", "--grace", "1",
                                "--json",                 json_path.string(), "--quiet"};
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const auto parsed = parse_replay_options(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->what, replay_cli_options::action::run);
  std::ostringstream out, err;
  EXPECT_EQ(run_replay_cli(*parsed, out, err), exit_ok) << err.str();
  std::ifstream in(json_path);
  const auto j = nlohmann::json::parse(in);
  fs::remove(json_path);
  const auto& sum = j.at("summary");
  EXPECT_EQ(sum.at("clients"), 30);
  EXPECT_EQ(sum.at("consistent"), 30);
  EXPECT_EQ(sum.at("failed"), 0);
  EXPECT_TRUE(sum.at("pacing").is_null()) << "nothing is paced at top speed";
  EXPECT_EQ(j.at("speed"), "topspeed");
  EXPECT_EQ(sum.at("events_injected"), 0);
  // Poll and push clients need no mail to replay every operation; async clients
  // whose waits were completed by mail in the capture stop behind the held wait.
  std::size_t blocked = 0;
  for (const auto& c : j.at("clients")) {
    if (c.at("mode") != "async") {
      EXPECT_TRUE(c.at("match").get<bool>()) << c.at("user_dn");
      continue;
    }
    EXPECT_GE(c.at("pending_at_end").get<int>(), 1);
    blocked += c.at("blocked").get<std::size_t>();
  }
  EXPECT_GT(blocked, 0u) << "with mail in the capture, some async client had its wait completed";
  EXPECT_EQ(sum.at("blocked").get<std::size_t>(), blocked);
}

}  // namespace
}  // namespace nudge::replay
