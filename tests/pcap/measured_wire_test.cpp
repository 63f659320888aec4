// A real run's measured wire traffic (kernel TCP_INFO per connection + the
// UDP sockets' own counts) against the capture of the same run: per mode, the
// run's measured wire bytes and packets are within 1 % of what libpcap saw on
// lo, analysed by nudge-pcap's analyser, with teardown (FIN, RST, the ACKs of
// FINs) left out on both sides (docs/measurements.md, "Measured wire traffic").
// Once with one process, once with worker processes, whose figures travel over
// the worker pipe. Needs capture permission on lo (root or CAP_NET_RAW +
// CAP_NET_ADMIN): skipped without it, failed when NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/capture_reader.hpp"
#include "nudge/sim/client_sim_cli.hpp"
#include "session_capture.hpp"
#include "support/notifier_process.hpp"
#include "support/require.hpp"

namespace nudge::pcap_test {
namespace {

using client::client_mode;
using nlohmann::json;

nudge::result<sim::client_sim_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "client-sim");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return sim::parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
}

struct measured_run {
  bool capture_refused = false;
  std::string why;
  json result;
  pcap_tool::analysis capture;
};

measured_run run_with_capture(const test_support::notifier_process& n, const std::string& processes,
                              const std::string& stem) {
  measured_run out;
  const auto pcap = temp_pcap(stem);
  const auto result_path = std::filesystem::path(pcap).replace_extension(".json");
  auto parsed = parse({"--notifier", n.tcp_ep().to_string(), "--notifier-udp", n.udp_ep().to_string(), "--control",
                       n.control_ep().to_string(), "--clients", "24", "--mix", "poll=1,push=1,async=1",
                       "--poll-interval", "2", "--events-per-client-hour", "900", "--duration", "5", "--drain", "2",
                       "--seed", "9", "--processes", processes, "--workers", "2", "--quiet", "--pcap", pcap.string(),
                       "--json", result_path.string()});
  EXPECT_TRUE(parsed) << parsed.error().message;
  std::ostringstream table, err;
  const int rc = sim::run_client_sim(parsed.value(), table, err, false);
  if (err.str().find("cannot capture") != std::string::npos) {
    out.capture_refused = true;
    out.why = err.str();
    return out;
  }
  EXPECT_EQ(rc, sim::exit_ok) << err.str();
  std::ifstream in(result_path);
  out.result = json::parse(in);
  pcap_tool::analyser_options ao;
  ao.server_port = n.tcp_ep().port;
  ao.udp_port = n.udp_ep().port;
  pcap_tool::analyser a(ao);
  const auto status = pcap_tool::read_capture(pcap, a);
  if (!status) {
    ADD_FAILURE() << status.error().message;
  } else {
    EXPECT_TRUE(status->error.empty()) << status->error;
  }
  out.capture = a.finish();
  if (!std::getenv("NUDGE_KEEP_PCAP")) {
    std::filesystem::remove(pcap);
    std::filesystem::remove(result_path);
  }
  return out;
}

void expect_measured_matches_capture(const measured_run& r, std::size_t expected_processes) {
  const auto& a = r.capture;
  ASSERT_GT(a.packets, 0u);
  EXPECT_EQ(a.skipped.total(), 0u) << "every captured packet belongs to the notifier's flows";
  // The analyser puts every packet of the capture in a mode: the comparison below covers the whole capture.
  std::uint64_t mode_packets = 0, mode_bytes = 0;
  for (const auto& m : a.modes) {
    mode_packets += m.traffic.total().packets;
    mode_bytes += m.traffic.total().wire_bytes;
  }
  EXPECT_EQ(mode_packets, a.packets);
  EXPECT_EQ(mode_bytes, a.ip_bytes);

  const json& modes = r.result.at("modes");
  for (const client_mode m : {client_mode::poll, client_mode::push, client_mode::async}) {
    const std::string name(client::to_string(m));
    SCOPED_TRACE(name + ", " + std::to_string(expected_processes) + " process(es)");
    ASSERT_TRUE(modes.contains(name));
    const json& block = modes.at(name);
    ASSERT_TRUE(block.contains("measured")) << "a real run measures every mode";
    const json& measured = block.at("measured");
    EXPECT_EQ(measured.at("source"), "kernel tcp_info + socket counts");
    EXPECT_EQ(measured.at("tcp").at("unmeasured_connections"), 0);
    const auto clients = block.at("clients").get<std::uint64_t>();
    EXPECT_EQ(measured.at("tcp").at("connections").get<std::uint64_t>(),
              m == client_mode::async ? 2 * clients : clients)
        << "one TCP_INFO per connection";

    const auto& captured = a.modes[static_cast<std::size_t>(m)];
    EXPECT_EQ(captured.clients, clients);
    const auto all = captured.traffic.total();
    ASSERT_GT(captured.teardown.packets, 0u) << "the run closes its connections: the capture has their teardown";
    const double capture_bytes = static_cast<double>(all.wire_bytes - captured.teardown.wire_bytes);
    const double capture_packets = static_cast<double>(all.packets - captured.teardown.packets);
    const double wire = measured.at("wire_bytes").get<double>();
    const double packets = measured.at("packets").get<double>();
    EXPECT_LE(std::abs(wire - capture_bytes), 0.01 * capture_bytes)
        << "measured " << wire << " wire bytes, captured " << capture_bytes << " (teardown "
        << captured.teardown.wire_bytes << " left out)";
    EXPECT_LE(std::abs(packets - capture_packets), 0.01 * capture_packets)
        << "measured " << packets << " packets, captured " << capture_packets;
    // Datagrams: the push clients' pings, counted by their sockets.
    const auto datagrams_in = measured.at("udp").at("to_client").at("datagrams").get<std::uint64_t>();
    if (m == client_mode::push) EXPECT_EQ(datagrams_in, captured.pings) << "pings the sockets read vs captured";
    else EXPECT_EQ(datagrams_in, 0u);
    // The model's figures stay beside the measured ones, with their difference.
    const double model = block.at("traffic").at("total").at("wire_bytes").get<double>();
    EXPECT_DOUBLE_EQ(measured.at("model_minus_measured").at("wire_bytes").get<double>(), model - wire);
  }
}

class MeasuredWire : public ::testing::TestWithParam<const char*> {};

TEST_P(MeasuredWire, RealRunMeasuresWhatItsOwnCaptureShowsPerMode) {
  test_support::notifier_process notifier({"--polls-max-ms", "2000"});
  ASSERT_TRUE(notifier.running());
  const std::string processes = GetParam();
  const auto r = run_with_capture(notifier, processes, "nudge_measured_wire_" + processes);
  NUDGE_REQUIRE(!r.capture_refused, "permission to capture on lo: " + r.why);
  expect_measured_matches_capture(r, std::stoul(processes));
}

INSTANTIATE_TEST_SUITE_P(Processes, MeasuredWire, ::testing::Values("1", "2"),
                         [](const auto& p) { return std::string(p.param) + "_process"; });

}  // namespace
}  // namespace nudge::pcap_test
