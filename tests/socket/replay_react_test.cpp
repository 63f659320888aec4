// The reacting replay against the real `notifier` (a child process on free
// loopback ports): a virtual capture of push clients, each client rebuilt as
// an EMSMDB client core and run by the real driver with its mailbox events
// injected at their captured times.
//  * Against a notifier like the capture's: no client diverges.
//  * Against `notifier --no-push`: the live server refuses every registration,
//    every client goes on polling as the protocol then requires, no ping comes,
//    and the divergence report names the pings and fetches that did not
//    happen and the polls that did.
// And a capture of the polling bus replays with no divergence against a
// notifier set up as the capture's server was (its interval).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "nudge/replay/react.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/run_plan.hpp"
#include "support/notifier_process.hpp"

namespace nudge::replay {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test_support::notifier_process;

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("nudge_replay_react_" + std::to_string(::getpid()) + "_" + name);
}

/// A virtual run captured, and the plan read back from the file.
replay_plan captured_plan(const sim::run_plan& p, const std::string& name) {
  const fs::path path = temp(name);
  const auto run = sim::capture_virtual_run(p, path);
  EXPECT_TRUE(run) << (run ? "" : run.error().message);
  replay_plan plan = read_replay_plan(path);
  fs::remove(path);
  EXPECT_TRUE(plan.error.empty()) << plan.error;
  EXPECT_EQ(plan.clients.size(), p.clients);
  return plan;
}

sim::run_plan push_clients() {
  sim::run_plan p;
  p.clients = 6;
  p.mix = sim::emsmdb_mix(0, 1, 0);
  p.poll_interval = 1s;  // polls until the first ping, then pings alone
  p.events_per_client_hour = 1800;
  p.length = 8s;
  p.drain = 1s;
  p.seed = 2;
  return p;
}

react_options against(const notifier_process& n) {
  react_options o;
  o.control = n.control_ep();
  return o;
}

std::string report_text(const replay_plan& plan, const react_outcome& r) {
  std::ostringstream s;
  print_react_report(s, plan, r, true);
  return s.str();
}

const divergence* find(const client_outcome& c, const std::string& counter) {
  for (const auto& d : c.divergences)
    if (d.counter == counter) return &d;
  return nullptr;
}

TEST(ReplayReact, PushClientsReplayAsCapturedAgainstALikeNotifier) {
  const replay_plan plan = captured_plan(push_clients(), "push.pcap");
  std::size_t events = 0;
  for (const auto& c : plan.clients) events += c.events.size();
  ASSERT_GT(events, plan.clients.size());  // mail for every client, on average more than one
  notifier_process notifier({});
  ASSERT_TRUE(notifier.running());
  const react_outcome r = run_reacting(plan, against(notifier));
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.clients.size(), plan.clients.size());
  EXPECT_EQ(r.events_injected, events);
  EXPECT_EQ(r.diverged, 0u) << report_text(plan, r);
  EXPECT_TRUE(r.ok());
  for (const auto& c : r.clients) EXPECT_FALSE(c.failed);
}

TEST(ReplayReact, PushClientsFallBackToPollingAgainstANoPushNotifierAndTheReportSaysSo) {
  const replay_plan plan = captured_plan(push_clients(), "push-nopush.pcap");
  notifier_process notifier({"--no-push"});
  ASSERT_TRUE(notifier.running());
  const react_outcome r = run_reacting(plan, against(notifier));
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.clients.size(), plan.clients.size());
  EXPECT_EQ(r.diverged, plan.clients.size());
  EXPECT_FALSE(r.ok());
  const std::string text = report_text(plan, r);
  for (const auto& c : r.clients) {
    SCOPED_TRACE("client " + std::to_string(c.index));
    EXPECT_FALSE(c.failed);
    // The pings it had in the capture never came ...
    const divergence* pings = find(c, "pings_matched");
    ASSERT_NE(pings, nullptr) << text;
    EXPECT_GT(pings->captured, 0u);
    EXPECT_EQ(pings->live, 0u);
    // ... and it kept polling instead, more than it did in the capture.
    const divergence* polls = find(c, "polls");
    ASSERT_NE(polls, nullptr) << text;
    EXPECT_GT(polls->live, polls->captured);
  }
  EXPECT_NE(text.find("pings_matched: differs for " + std::to_string(plan.clients.size()) + " clients"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("DIVERGED"), std::string::npos);
}

TEST(ReplayReact, APollingBusCaptureReplaysAsCapturedAgainstTheSameConfiguration) {
  sim::run_plan p;
  p.clients = 4;
  p.mix = {{"pollbus", "fixed", 1}};
  p.events_per_client_hour = 720;
  p.length = 10s;
  p.drain = 1s;
  p.seed = 5;
  p.set_family_key("pollbus.interval", "1s");
  const replay_plan plan = captured_plan(p, "bus.pcap");
  notifier_process notifier({"--set", "pollbus.interval=1s"});
  ASSERT_TRUE(notifier.running());
  const react_outcome r = run_reacting(plan, against(notifier));
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.clients.size(), plan.clients.size());
  EXPECT_EQ(r.diverged, 0u) << report_text(plan, r);
  std::uint64_t polls = 0;
  for (const auto& c : r.clients)
    for (const auto& [name, v] : c.live)
      if (name == "polls") polls += v;
  EXPECT_GT(polls, 4u * 5);  // the live clients polled about once a second, as captured
}

}  // namespace
}  // namespace nudge::replay
