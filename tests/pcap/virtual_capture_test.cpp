// client-sim --pcap in virtual time: a run of mixed clients written as a pcap
// (client-sim/capture, virtual_pcap_recorder) opens cleanly in tshark (no
// malformed frame, no TCP analysis flag, no expert warning beyond the MAPI
// dissector's known "Long frame"), and the capture *is* the run's accounting:
// per mode, the sum of tshark's ip.len over the mode's clients equals the
// wire bytes run_result reports, and the frame count its packets. Capturing
// changes no count. Sampling and the first-N limit capture whole clients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "nudge/sim/client_sim_cli.hpp"
#include "nudge/sim/pcap_capture.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"
#include "session_capture.hpp"
#include "support/require.hpp"

namespace nudge::pcap_test {
namespace {

using namespace std::chrono_literals;
using client::client_mode;
using sim::run_plan;
using sim::run_result;

constexpr unsigned long severity_warning = 0x00600000ul;
constexpr unsigned long severity_error = 0x00800000ul;

run_plan mixed_plan(std::size_t clients, duration length) {
  run_plan p;
  p.clients = clients;
  p.mix = nudge::sim::emsmdb_mix(1, 1, 1);
  p.poll_interval = 5s;
  p.events_per_client_hour = 60;  // about one per client-minute
  p.length = length;
  p.drain = 10s;
  p.seed = 3;
  p.server.polls_max_ms = 5000;
  return p;
}

struct captured_run {
  run_result result;
  sim::virtual_pcap_stats stats;
  std::filesystem::path path;
  std::vector<capture::flow_stats> flows;
};

captured_run capture(const run_plan& plan, const std::string& stem, sim::virtual_pcap_options o = {}) {
  captured_run r;
  r.path = temp_pcap(stem);
  o.path = r.path;
  o.seed = plan.seed;
  o.wire = plan.wire;
  sim::virtual_pcap_recorder rec(o);
  EXPECT_EQ(rec.open(), "");
  sim::virtual_options vo;
  vo.capture = &rec;
  r.result = sim::run_virtual(plan, vo);
  EXPECT_EQ(rec.close(), "");
  r.stats = rec.stats();
  r.flows = rec.synthesizer().flows();
  return r;
}

nlohmann::json comparable(const run_result& r) {
  auto j = sim::to_json(r);
  j.erase("wall_s");
  j.erase("simulated_events");  // observed clients settle ACKs with timer events of their own
  return j;
}

/// Client index of a direct client's endpoint (198.18.h.x, port 20000+ / 40000+).
std::optional<std::size_t> client_of(const std::string& addr, const std::string& port_text) {
  if (addr.rfind("198.18.", 0) != 0 || port_text.empty()) return std::nullopt;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (std::sscanf(addr.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return std::nullopt;
  const std::size_t host = ((std::size_t{b} - 18) << 16 | std::size_t{c} << 8 | d) - 2;
  const unsigned port = static_cast<unsigned>(std::stoul(port_text));
  const unsigned offset = port >= 40000 ? port - 40000 : port - 20000;
  return host * 20000 + offset;
}

class VirtualCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    tshark_ = find_tshark();
    NUDGE_REQUIRE(!tshark_.empty(), "tshark");
  }
  void TearDown() override {
    if (std::getenv("NUDGE_KEEP_PCAP")) return;
    for (const auto& p : cleanup_) std::filesystem::remove(p);
  }

  struct row {
    std::string frame, malformed, analysis, severities, ip_len, src, dst, tsrc, tdst, usrc, udst, pkt_types, epoch,
        message;
  };

  std::vector<row> decode(const std::filesystem::path& path, const std::string& extra) {
    const std::string cmd = "'" + tshark_ + "' -n -r '" + path.string() +
                            "' -d tcp.port==7777,dcerpc " + extra +
                            " -T fields -E separator=/t -E occurrence=a -E aggregator=';'"
                            " -e frame.number -e _ws.malformed -e tcp.analysis.flags -e _ws.expert.severity"
                            " -e ip.len -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport -e udp.srcport"
                            " -e udp.dstport -e dcerpc.pkt_type -e frame.time_epoch -e _ws.expert.message";
    const auto r = run_command(cmd);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
    std::vector<row> rows;
    for (const auto& c : split_rows(r.out, '\t')) {
      if (c.size() < 14) {
        ADD_FAILURE() << "short tshark row";
        continue;
      }
      rows.push_back({c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13]});
    }
    return rows;
  }

  /// No malformed frame, no TCP analysis flag, nothing at `worst_allowed` or above.
  void expect_clean(const std::vector<row>& rows, unsigned long worst_allowed) {
    std::size_t problems = 0;
    for (const auto& r : rows) {
      bool bad = !r.malformed.empty() || !r.analysis.empty();
      for (const auto& s : split(r.severities, ';'))
        if (!s.empty() && std::stoul(s, nullptr, 0) >= worst_allowed) bad = true;
      if (bad && ++problems <= 5)
        ADD_FAILURE() << "frame " << r.frame << ": malformed '" << r.malformed << "' analysis '" << r.analysis
                      << "' severities '" << r.severities << "' (" << r.message << ")";
    }
    EXPECT_EQ(problems, 0u);
  }

  std::string tshark_;
  std::vector<std::filesystem::path> cleanup_;
};

TEST_F(VirtualCapture, MixedRunOpensCleanlyAndItsBytesAreTheRunsWireBytes) {
  const run_plan plan = mixed_plan(20, 120s);
  const captured_run c = capture(plan, "nudge_virtual_mixed20");
  cleanup_.push_back(c.path);
  ASSERT_EQ(c.stats.clients_observed, 20u);
  EXPECT_EQ(c.stats.reordered, 0u);
  EXPECT_EQ(c.stats.synthesis_errors, 0u) << c.stats.first_error;

  // Capturing changes no count.
  const run_result plain = sim::run_virtual(plan);
  EXPECT_EQ(comparable(c.result), comparable(plain));

  // Without the MAPI dissector nothing is even a warning; with it, only its
  // known "Long frame" warnings (see session_tshark_test.cpp).
  expect_clean(decode(c.path, "--disable-protocol mapi"), severity_warning);
  const auto rows = decode(c.path, "");
  expect_clean(rows, severity_error);
  for (const auto& r : rows) {
    if (!r.severities.empty() && r.severities.find("6291456") != std::string::npos) {
      EXPECT_NE(r.message.find("Long frame"), std::string::npos) << "frame " << r.frame << ": " << r.message;
    }
  }

  // Per mode: tshark's IP-layer bytes and frames over the mode's client
  // endpoints are exactly the run's wire bytes and packets.
  const auto modes = plan.assign_modes();
  std::array<std::uint64_t, client::client_mode_count> bytes{}, packets{}, pdus{}, datagrams{};
  std::set<std::size_t> seen;
  double last_time = 0;
  for (const auto& r : rows) {
    const bool up = r.src.rfind("198.18.", 0) == 0;
    const std::string& addr = up ? r.src : r.dst;
    const std::string& port = !r.tsrc.empty() ? (up ? r.tsrc : r.tdst) : (up ? r.usrc : r.udst);
    const auto i = client_of(addr, port);
    ASSERT_TRUE(i.has_value()) << "frame " << r.frame << " is not a client's: " << r.src << " -> " << r.dst;
    ASSERT_LT(*i, plan.clients);
    seen.insert(*i);
    const auto m = static_cast<std::size_t>(modes[*i]);
    bytes[m] += std::stoull(r.ip_len);
    ++packets[m];
    if (!r.pkt_types.empty()) pdus[m] += split(r.pkt_types, ';').size();
    if (!r.usrc.empty()) ++datagrams[m];
    const double t = std::stod(r.epoch);
    EXPECT_GE(t, last_time) << "frame " << r.frame << " goes back in time";
    last_time = t;
  }
  EXPECT_EQ(seen.size(), plan.clients);
  for (std::size_t m = 0; m < client::client_mode_count; ++m) {
    SCOPED_TRACE(std::string(client::to_string(static_cast<client_mode>(m))));
    const auto total = c.result.modes[m].metrics.traffic.total();
    EXPECT_EQ(bytes[m], total.wire_bytes);
    EXPECT_EQ(packets[m], total.packets);
    // Every message the clients counted (beyond TCP's own) is one DCE/RPC PDU or one datagram.
    const auto& t = c.result.modes[m].metrics.traffic;
    std::uint64_t control = 0;
    for (auto k : {protocol::emsmdb::message_kind::tcp_setup, protocol::emsmdb::message_kind::tcp_ack})
      for (auto d : {metrics::direction::to_server, metrics::direction::to_client}) control += t.cell(k, d).messages;
    EXPECT_EQ(pdus[m] + datagrams[m], total.messages - control);
    EXPECT_GT(total.packets, 0u);
  }
  // Time zero is stamped 2026-01-05 09:00:00 UTC; the last frame is within the run and its last ACKs.
  ASSERT_FALSE(rows.empty());
  EXPECT_NEAR(std::stod(rows.front().epoch), 1767603600.0, 0.001);
  EXPECT_LE(last_time, 1767603600.0 + 130.2 + 1e-6);
  // Every client opened its connections: async clients two, others one; push clients used UDP.
  std::size_t tcp = 0, udp = 0;
  for (const auto& f : c.flows) (f.proto == capture::transport::tcp ? tcp : udp) += 1;
  EXPECT_EQ(tcp, plan.clients + c.result.modes[static_cast<std::size_t>(client_mode::async)].clients);
  EXPECT_GT(udp, 0u);
}

TEST_F(VirtualCapture, LinuxPresetWritesTimestampsOnEverySegmentAndItsBytesAreTheRunsWireBytes) {
  run_plan plan = mixed_plan(12, 90s);
  ASSERT_TRUE(sim::apply_wire_preset(plan.wire, "linux"));
  const captured_run c = capture(plan, "nudge_virtual_linux12");
  cleanup_.push_back(c.path);
  EXPECT_EQ(c.stats.synthesis_errors, 0u) << c.stats.first_error;
  const auto rows = decode(c.path, "--disable-protocol mapi");
  // Known, and not the options': with the linux preset's quick ACKs the driver
  // reports the server's ACK of the bind before the bind itself, which
  // Wireshark calls a window update (at most one per connection, at its start;
  // the same file without options shows it too). Everything else must be clean.
  std::vector<row> others;
  std::size_t window_updates = 0;
  for (const auto& r : rows) {
    if (r.message == "TCP window update") ++window_updates;
    else others.push_back(r);
  }
  expect_clean(others, severity_warning);
  EXPECT_LE(window_updates, c.flows.size());

  // Per mode, as for the default (windows) wire model: tshark's ip.len over a
  // mode's clients is the run's wire bytes, option bytes included.
  const auto modes = plan.assign_modes();
  std::array<std::uint64_t, client::client_mode_count> bytes{}, packets{};
  for (const auto& r : rows) {
    const bool up = r.src.rfind("198.18.", 0) == 0;
    const auto i = client_of(up ? r.src : r.dst, !r.tsrc.empty() ? (up ? r.tsrc : r.tdst) : (up ? r.usrc : r.udst));
    ASSERT_TRUE(i.has_value()) << "frame " << r.frame;
    const auto m = static_cast<std::size_t>(modes[*i]);
    bytes[m] += std::stoull(r.ip_len);
    ++packets[m];
  }
  for (std::size_t m = 0; m < client::client_mode_count; ++m) {
    SCOPED_TRACE(std::string(client::to_string(static_cast<client_mode>(m))));
    const auto total = c.result.modes[m].metrics.traffic.total();
    EXPECT_EQ(bytes[m], total.wire_bytes);
    EXPECT_EQ(packets[m], total.packets);
    EXPECT_GT(total.packets, 0u);
  }

  // tshark decodes the options: timestamps on every TCP segment, MSS, SACK
  // and window scale on SYNs, and each TSecr echoes the peer's latest TSval.
  const std::string cmd = "'" + tshark_ + "' -n -r '" + c.path.string() +
                          "' --disable-protocol mapi -Y tcp -T fields -E separator=/t -E occurrence=a"
                          " -E aggregator=';' -e frame.number -e tcp.stream -e tcp.srcport -e tcp.flags.syn"
                          " -e tcp.hdr_len -e tcp.options.timestamp.tsval -e tcp.options.timestamp.tsecr"
                          " -e tcp.options.mss_val -e tcp.options.sack_perm -e tcp.options.wscale.shift";
  const auto out = run_command(cmd);
  ASSERT_EQ(out.status, 0) << cmd << "\n" << out.err;
  std::map<std::pair<std::string, std::string>, std::string> last_tsval;  // (stream, sender port) -> TSval
  std::map<std::string, std::set<std::string>> ports;                     // stream -> its two ports
  std::size_t tcp_frames = 0, syns = 0;
  for (const auto& f : split_rows(out.out, '\t')) {
    ASSERT_GE(f.size(), 7u) << "short tshark row";
    ++tcp_frames;
    const std::string &frame = f[0], &stream = f[1], &port = f[2];
    const bool syn = f[3] == "1" || f[3] == "True";
    ASSERT_FALSE(f[5].empty()) << "frame " << frame << " has no TSval";
    ASSERT_FALSE(f[6].empty()) << "frame " << frame << " has no TSecr";
    EXPECT_EQ(f[4], syn ? "40" : "32") << "frame " << frame;  // 20 + 20 or 20 + 12 header bytes
    if (syn) {
      ++syns;
      EXPECT_EQ(f.size() > 7 ? f[7] : "", std::to_string(plan.wire.mss)) << "frame " << frame;
      EXPECT_FALSE(f.size() > 8 && f[8].empty()) << "frame " << frame << " has no SACK-permitted";
      EXPECT_FALSE(f.size() > 9 && f[9].empty()) << "frame " << frame << " has no window scale";
    } else {
      EXPECT_TRUE(f.size() <= 7 || f[7].empty()) << "frame " << frame << " carries an MSS without SYN";
    }
    ports[stream].insert(port);
    std::string peer_tsval = "0";  // nothing received yet: the SYN echoes 0
    for (const auto& [key, v] : last_tsval)
      if (key.first == stream && key.second != port) peer_tsval = v;
    EXPECT_EQ(f[6], peer_tsval) << "frame " << frame << ": TSecr is not the peer's latest TSval";
    last_tsval[{stream, port}] = f[5];
  }
  EXPECT_EQ(tcp_frames, c.stats.frames - [&] {
    std::uint64_t udp = 0;
    for (const auto& r : rows) udp += r.usrc.empty() ? 0 : 1;
    return udp;
  }());
  // SYN and SYN-ACK of every connection.
  EXPECT_EQ(syns, 2 * ports.size());
  EXPECT_GT(syns, 0u);
}

TEST(VirtualPcapRecorder, OptionLengthsTheSynthesizerCannotWriteAreRefusedBeforeTheFileIsMade) {
  sim::virtual_pcap_options o;
  o.path = temp_pcap("nudge_virtual_refused");
  std::filesystem::remove(o.path);
  o.wire.tcp_options = 8;
  sim::virtual_pcap_recorder rec(o);
  const std::string e = rec.open();
  EXPECT_NE(e.find("wire.tcp_options = 8"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(o.path));
  // Timestamps on data but not on the SYNs is not what any stack does.
  sim::virtual_pcap_options half;
  half.path = o.path;
  half.wire.tcp_options = 12;
  EXPECT_NE(sim::virtual_pcap_recorder(half).open(), "");
}

TEST_F(VirtualCapture, FirstClientsAndSamplesCaptureWholeClientsCleanly) {
  const run_plan plan = mixed_plan(60, 60s);
  sim::virtual_pcap_options first;
  first.first_clients = 7;
  const captured_run a = capture(plan, "nudge_virtual_first7", first);
  cleanup_.push_back(a.path);
  EXPECT_EQ(a.stats.clients_observed, 7u);
  EXPECT_EQ(a.stats.clients_in_run, 60u);

  sim::virtual_pcap_options half;
  half.sample = 0.5;
  const captured_run b = capture(plan, "nudge_virtual_half", half);
  cleanup_.push_back(b.path);
  EXPECT_GT(b.stats.clients_observed, 15u);
  EXPECT_LT(b.stats.clients_observed, 45u);
  // Seeded: the same sample again.
  const captured_run b2 = capture(plan, "nudge_virtual_half2", half);
  cleanup_.push_back(b2.path);
  EXPECT_EQ(b2.stats.clients_observed, b.stats.clients_observed);
  EXPECT_EQ(b2.stats.frames, b.stats.frames);

  for (const auto* c : {&a, &b}) {
    const auto rows = decode(c->path, "--disable-protocol mapi");
    expect_clean(rows, severity_warning);
    std::set<std::size_t> seen;
    for (const auto& r : rows) {
      const bool up = r.src.rfind("198.18.", 0) == 0;
      const auto i = client_of(up ? r.src : r.dst, !r.tsrc.empty() ? (up ? r.tsrc : r.tdst) : (up ? r.usrc : r.udst));
      ASSERT_TRUE(i.has_value());
      seen.insert(*i);
    }
    EXPECT_EQ(seen.size(), c->stats.clients_observed);
  }
  for (const auto& r : decode(a.path, "")) {
    const bool up = r.src.rfind("198.18.", 0) == 0;
    const auto i = client_of(up ? r.src : r.dst, !r.tsrc.empty() ? (up ? r.tsrc : r.tdst) : (up ? r.usrc : r.udst));
    ASSERT_TRUE(i.has_value());
    EXPECT_LT(*i, 7u);
  }
}

TEST_F(VirtualCapture, PushBehindNatShowsPrivateAddressesAndMatchesTheCounts) {
  run_plan plan = mixed_plan(12, 90s);
  plan.mix = nudge::sim::emsmdb_mix(0, 1, 0);
  plan.nat_mix = {sim::nat_share{"port-restricted-cone", 1.0, duration::zero()}};
  plan.server.policy = notifier::callback_policy::verified;
  plan.send_cookie = true;
  plan.keepalive_interval = 20s;
  const captured_run c = capture(plan, "nudge_virtual_nat_push");
  cleanup_.push_back(c.path);
  EXPECT_EQ(c.stats.synthesis_errors, 0u) << c.stats.first_error;
  const auto rows = decode(c.path, "--disable-protocol mapi");
  expect_clean(rows, severity_warning);
  std::uint64_t bytes = 0, cookies = 0, pings = 0;
  for (const auto& r : rows) {
    // The client's side of a NAT: its private address, never the NAT's public one.
    EXPECT_TRUE(r.src.rfind("10.", 0) == 0 || r.dst.rfind("10.", 0) == 0) << r.src << " -> " << r.dst;
    EXPECT_EQ(r.src.rfind("100.64.", 0), std::string::npos);
    bytes += std::stoull(r.ip_len);
    if (r.udst == "7778") ++cookies;
    if (r.usrc == "7778") ++pings;
  }
  const auto& push = c.result.modes[static_cast<std::size_t>(client_mode::push)].metrics;
  EXPECT_EQ(bytes, push.traffic.total().wire_bytes);
  EXPECT_EQ(rows.size(), push.traffic.total().packets);
  EXPECT_EQ(cookies, push.traffic.cell(protocol::emsmdb::message_kind::keepalive, metrics::direction::to_server).messages);
  EXPECT_EQ(pings, push.counter(nudge::protocol::emsmdb::counter::pings_received));
  EXPECT_GT(cookies, plan.clients);  // the first cookie and keepalives
  EXPECT_GT(pings, 0u);              // the verified policy reaches clients behind the NAT
}

// ---- the command line ----------------------------------------------------------------------

nudge::result<sim::client_sim_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "client-sim");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return sim::parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
}

TEST(ClientSimPcapFlags, ParseAndRefuseWhatDoesNotApply) {
  auto ok = parse({"--clock", "virtual", "--pcap", "x.pcap", "--pcap-clients", "5", "--pcap-epoch",
                   "2024-02-29T12:30:00Z"});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok.value().pcap.path, "x.pcap");
  EXPECT_EQ(ok.value().pcap.first_clients, 5u);
  EXPECT_EQ(ok.value().pcap.epoch, std::chrono::seconds(1709209800));
  EXPECT_EQ(parse({"--clock", "virtual", "--pcap", "x", "--pcap-epoch", "1767603600"}).value().pcap.epoch,
            sim::default_pcap_epoch());
  EXPECT_EQ(parse({"--pcap", "x"}).value().pcap.interface, "lo");

  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--clock", "virtual", "--pcap-clients", "5"},                     // needs --pcap
           {"--clock", "virtual", "--pcap", "x", "--pcap-clients", "0"},      // nobody
           {"--clock", "virtual", "--pcap", "x", "--pcap-sample", "0"},
           {"--clock", "virtual", "--pcap", "x", "--pcap-sample", "1.5"},
           {"--clock", "virtual", "--pcap", "x", "--pcap-epoch", "2026-02-30"},
           {"--clock", "virtual", "--pcap", "x", "--pcap-epoch", "yesterday"},
           {"--clock", "virtual", "--pcap", "x", "--pcap-interface", "eth0"},  // real only
           {"--pcap", "x", "--pcap-clients", "3"},                             // virtual only
           {"--pcap", "x", "--pcap-epoch", "2026-01-05"},
       }) {
    const auto r = parse(bad);
    EXPECT_FALSE(r) << bad.back();
  }
}

TEST(ClientSimPcapFlags, EpochTextRoundTrips) {
  EXPECT_EQ(sim::format_pcap_epoch(sim::default_pcap_epoch()), "2026-01-05T09:00:00Z");
  EXPECT_EQ(sim::parse_pcap_epoch("2026-01-05 09:00:00"), sim::default_pcap_epoch());
  EXPECT_EQ(sim::parse_pcap_epoch("2026-01-05T09:00Z"), sim::default_pcap_epoch());
  EXPECT_EQ(sim::parse_pcap_epoch("1970-01-01"), duration::zero());
  EXPECT_FALSE(sim::parse_pcap_epoch("2026-13-01"));
  EXPECT_FALSE(sim::parse_pcap_epoch("2026-01-05T25:00"));
  EXPECT_EQ(sim::notifier_capture_filter(protocol::ip_endpoint::v4(127, 0, 0, 1, 7777),
                                         protocol::ip_endpoint::v4(127, 0, 0, 3, 7778)),
            "(tcp and ((src host 127.0.0.1 and src port 7777) or (dst host 127.0.0.1 and dst port 7777))) or "
            "(udp and ((src host 127.0.0.3 and src port 7778) or (dst host 127.0.0.3 and dst port 7778)))");
  // Every family the notifier serves: each listener and UDP socket, in order.
  EXPECT_EQ(sim::notifier_capture_filter(
                std::vector<protocol::ip_endpoint>{protocol::ip_endpoint::v4(127, 0, 0, 1, 7777),
                                                   protocol::ip_endpoint::v4(127, 0, 0, 1, 8080)},
                std::vector<protocol::ip_endpoint>{}),
            "(tcp and ((src host 127.0.0.1 and src port 7777) or (dst host 127.0.0.1 and dst port 7777))) or "
            "(tcp and ((src host 127.0.0.1 and src port 8080) or (dst host 127.0.0.1 and dst port 8080)))");
}

TEST(ClientSimPcapFlags, AnUnwritableFileFailsTheVirtualRunBeforeItStarts) {
  auto parsed = parse({"--clock", "virtual", "--clients", "3", "--duration", "5", "--pcap",
                       "/nonexistent-dir/x.pcap", "--quiet"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  std::ostringstream out, err;
  EXPECT_EQ(sim::run_client_sim(parsed.value(), out, err, false), sim::exit_failure);
  EXPECT_NE(err.str().find("/nonexistent-dir/x.pcap"), std::string::npos) << err.str();
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace nudge::pcap_test
