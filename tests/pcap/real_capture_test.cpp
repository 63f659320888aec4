// client-sim --clock real --pcap: libpcap on the loopback interface records
// the run against a live `notifier` (a child process on free ports): one TCP
// connection per channel with its bind, every EcDoConnectEx, the async waits,
// pings from the notifier's UDP port; nothing else (the filter keeps the
// control port out). Skipped when capturing is not permitted here
// (failed under NUDGE_REQUIRE_TOOLS=1). A capture
// that cannot start leaves the run going and makes the exit code 1.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "nudge/sim/client_sim_cli.hpp"
#include "session_capture.hpp"
#include "support/notifier_process.hpp"
#include "support/require.hpp"

namespace nudge::pcap_test {
namespace {

using client::client_mode;

nudge::result<sim::client_sim_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "client-sim");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return sim::parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> real_args(const test_support::notifier_process& n, const std::string& pcap) {
  return {"--notifier", n.tcp_ep().to_string(), "--notifier-udp", n.udp_ep().to_string(), "--control",
          n.control_ep().to_string(), "--clients", "20", "--mix", "poll=1,push=1,async=1", "--poll-interval", "2",
          "--events-per-client-hour", "720", "--duration", "6", "--drain", "3", "--seed", "4", "--quiet",
          "--pcap", pcap};
}

TEST(RealCapture, LoopbackCaptureHoldsEveryClientsFlows) {
  const std::string tshark = find_tshark();
  NUDGE_REQUIRE(!tshark.empty(), "tshark");
  test_support::notifier_process notifier({"--polls-max-ms", "2000"});
  ASSERT_TRUE(notifier.running());
  const auto path = temp_pcap("nudge_real_capture");
  auto parsed = parse(real_args(notifier, path.string()));
  ASSERT_TRUE(parsed) << parsed.error().message;
  std::ostringstream out, err;
  const int rc = sim::run_client_sim(parsed.value(), out, err, false);
  NUDGE_REQUIRE(err.str().find("cannot capture") == std::string::npos, "permission to capture on lo (CAP_NET_RAW): " << err.str());
  ASSERT_EQ(rc, sim::exit_ok) << err.str();
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_GT(std::filesystem::file_size(path), 24u);

  const auto modes = parsed.value().plan.assign_modes();
  std::size_t async_clients = 0, push_clients = 0;
  for (auto m : modes) {
    async_clients += m == client_mode::async;
    push_clients += m == client_mode::push;
  }
  const std::string port = std::to_string(notifier.tcp_ep().port);
  const std::string udp_port = std::to_string(notifier.udp_ep().port);
  const auto r = run_command("'" + tshark + "' -n -r '" + path.string() + "' -d tcp.port==" + port +
                             ",dcerpc --disable-protocol mapi -T fields -E separator=/t -E occurrence=a"
                             " -E aggregator=';' -e tcp.stream -e tcp.flags.syn -e tcp.flags.ack -e dcerpc.pkt_type"
                             " -e dcerpc.opnum -e udp.srcport -e udp.dstport -e ip.src -e ip.dst -e tcp.srcport"
                             " -e tcp.dstport -e _ws.malformed");
  ASSERT_EQ(r.status, 0) << r.err;
  std::set<std::string> syn_streams;
  std::map<std::string, int> pdus;  // "ptype" or "ptype/opnum"
  std::size_t pings = 0, cookies = 0, frames = 0;
  for (const auto& c : split_rows(r.out, '\t')) {
    ASSERT_GE(c.size(), 12u);
    ++frames;
    EXPECT_TRUE(c[11].empty()) << "malformed frame";
    EXPECT_EQ(c[7].rfind("127.", 0), 0u);
    EXPECT_EQ(c[8].rfind("127.", 0), 0u);
    if (!c[5].empty()) {
      EXPECT_TRUE(c[5] == udp_port || c[6] == udp_port);
      pings += c[5] == udp_port;
      cookies += c[6] == udp_port;
      continue;
    }
    EXPECT_TRUE(c[9] == port || c[10] == port) << "a frame of another port: " << c[9] << " -> " << c[10];
    if (c[1] == "1" && c[2] == "0") syn_streams.insert(c[0]);
    const auto types = split(c[3], ';');
    const auto ops = split(c[4], ';');
    for (std::size_t k = 0; k < types.size(); ++k) {
      if (types[k].empty()) continue;
      ++pdus[types[k]];
      if (types[k] == "0" && k < ops.size()) ++pdus["0/" + ops[k]];
    }
  }
  const std::size_t connections = modes.size() + async_clients;
  EXPECT_EQ(syn_streams.size(), connections) << "one TCP connection per channel, from its SYN";
  EXPECT_EQ(pdus["11"], static_cast<int>(connections)) << "a bind per connection";
  EXPECT_EQ(pdus["12"], static_cast<int>(connections)) << "a bind_ack per connection";
  EXPECT_EQ(pdus["0/10"], 20) << "EcDoConnectEx per client";
  EXPECT_EQ(pdus["0/4"], static_cast<int>(push_clients)) << "EcRRegisterPushNotification per push client";
  EXPECT_EQ(pdus["0/14"], static_cast<int>(async_clients)) << "EcDoAsyncConnectEx per async client";
  EXPECT_GE(pdus["0/0"], static_cast<int>(async_clients)) << "EcDoAsyncWaitEx";
  EXPECT_GT(pdus["0/11"], 20) << "EcDoRpcExt2 polls and fetches";
  EXPECT_GT(pings, 0u) << "pings from the notifier's UDP port";
  EXPECT_EQ(cookies, 0u);
  EXPECT_GT(frames, 200u);
  if (!std::getenv("NUDGE_KEEP_PCAP")) std::filesystem::remove(path);
}

TEST(RealCapture, ACaptureThatCannotStartLeavesTheRunGoingAndExitsOne) {
  test_support::notifier_process notifier({"--polls-max-ms", "2000"});
  ASSERT_TRUE(notifier.running());
  const auto path = temp_pcap("nudge_real_capture_noif");
  auto args = real_args(notifier, path.string());
  for (auto& a : args)
    if (a == "20") a = "3";
  for (auto& a : args)
    if (a == "6") a = "2";
  args.insert(args.end(), {"--pcap-interface", "nudge-no-such-if0"});
  auto parsed = parse(args);
  ASSERT_TRUE(parsed) << parsed.error().message;
  std::ostringstream out, err;
  EXPECT_EQ(sim::run_client_sim(parsed.value(), out, err, false), sim::exit_failure);
  EXPECT_NE(err.str().find("cannot capture on nudge-no-such-if0"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("continues without a capture"), std::string::npos) << err.str();
  EXPECT_NE(out.str().find("clients failed"), std::string::npos) << "the table is still printed";
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace nudge::pcap_test
