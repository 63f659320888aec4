// A virtual run of the polling bus, captured by client-sim (--clock virtual
// --pcap), read three ways: tshark decodes it as HTTP with the XML visible and
// finds nothing malformed; nudge-pcap analyse --family pollbus counts, per
// mode, the same messages, bytes and packets per kind and the same polls,
// wasted polls, registrations, connections and events as the run counted
// itself (its --json); and the events' latency from their ChatMessage
// TimeStamps lines up with the capture's clock. Two client groups: SOAP with
// keep-alive (mode fixed) and JSON with a connection per poll (mode activity),
// so the capture holds Expect: 100-continue exchanges and FIN teardowns.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/pcap/cli.hpp"
#include "nudge/sim/client_sim_cli.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

namespace nudge::test {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& command, int* status = nullptr) {
  return test_support::run_shell(command + " 2>/dev/null", status);
}

bool have(const std::string& program) { return test_support::have_program(program); }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str(), nullptr, false);
}

constexpr const char* scenario = R"(
[run]
clients = 12
seed = 11
duration = "10min"
ramp_up = "20s"
drain = "30s"

[[clients]]
protocol = "pollbus"
mode = "fixed"
share = 1

[[clients]]
protocol = "pollbus"
mode = "activity"
share = 1
set = { "pollbus.encoding" = "json", "pollbus.keep_alive" = false }

[events]
per_client_hour = 30

[pollbus]
port = 8080
interval = "15s"
fast_interval = "2s"
quiet_period = "30s"
)";

class PollbusCapture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("nudge_pollbus_capture_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    { std::ofstream(dir_ / "bus.toml") << scenario; }
    const std::string toml = (dir_ / "bus.toml").string(), pcap = (dir_ / "bus.pcap").string(),
                      json = (dir_ / "run.json").string();
    const char* args[] = {"client-sim", "--clock", "virtual", "--scenario", toml.c_str(), "--quiet",
                          "--json",     json.c_str(), "--pcap", pcap.c_str()};
    auto parsed = sim::parse_client_sim_options(static_cast<int>(std::size(args)), args);
    ASSERT_TRUE(parsed) << parsed.error().message;
    std::ostringstream table, err;
    ASSERT_EQ(sim::run_client_sim(parsed.value(), table, err, false), sim::exit_ok) << err.str();
    run_ = read_json(json);
    ASSERT_FALSE(run_.is_discarded());

    const std::string analysis = (dir_ / "analysis.json").string();
    const char* pargs[] = {"nudge-pcap", "analyse", pcap.c_str(), "--family", "pollbus", "--json", analysis.c_str()};
    std::ostringstream out, perr;
    ASSERT_EQ(pcap_tool::pcap_main(static_cast<int>(std::size(pargs)), pargs, out, perr), 0) << perr.str();
    analysis_ = read_json(analysis);
    ASSERT_FALSE(analysis_.is_discarded());
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!std::getenv("NUDGE_KEEP_CAPTURE")) fs::remove_all(dir_, ec);
  }

  static inline fs::path dir_;
  static inline nlohmann::json run_;
  static inline nlohmann::json analysis_;
};

TEST_F(PollbusCapture, TsharkDecodesHttpWithTheXmlAndNothingMalformed) {
  if (!have("tshark")) {
    NUDGE_REQUIRE(false, "tshark");
    return;
  }
  const std::string pcap = (dir_ / "bus.pcap").string();
  int status = 0;
  const std::string fields = run("tshark -n -r '" + pcap +
                                     "' -Y http -T fields -e http.request.method -e http.response.code "
                                     "-e http.content_type -e xml.tag -e json.member",
                                 &status);
  ASSERT_EQ(status, 0) << fields;
  EXPECT_NE(fields.find("POST"), std::string::npos);
  EXPECT_NE(fields.find("\t100\t"), std::string::npos) << "SOAP clients wait for 100 Continue";
  EXPECT_NE(fields.find("<message xsi:type=\"RegisterMessage\">"), std::string::npos);
  EXPECT_NE(fields.find("<message xsi:type=\"EmptyMessage\">"), std::string::npos);
  EXPECT_NE(fields.find("application/json"), std::string::npos);
  // Malformed frames and expert errors (bad checksums, broken reassembly) anywhere in the file.
  const std::string bad = run("tshark -n -r '" + pcap + "' -Y '_ws.malformed || _ws.expert.severity >= \"error\"' "
                              "-T fields -e frame.number -e _ws.expert.message", &status);
  ASSERT_EQ(status, 0) << bad;
  EXPECT_EQ(bad, "") << bad;
  // Every connection of the JSON group closes: FINs are in the file.
  const std::string fins = run("tshark -n -r '" + pcap + "' -Y 'tcp.flags.fin == 1' -T fields -e frame.number", &status);
  EXPECT_FALSE(fins.empty());
}

TEST_F(PollbusCapture, NudgePcapCountsWhatTheRunCounted) {
  const auto& modes = run_.at("modes");
  const auto& amodes = analysis_.at("modes");
  std::uint64_t checked = 0;
  for (const char* mode : {"fixed", "activity"}) {
    SCOPED_TRACE(mode);
    ASSERT_TRUE(modes.contains(mode)) << modes.dump(1);
    ASSERT_TRUE(amodes.contains(mode)) << amodes.dump(1);
    const auto& r = modes.at(mode);
    const auto& a = amodes.at(mode);
    EXPECT_EQ(a.at("clients"), r.at("clients"));
    // Per kind and direction: messages, payload and wire bytes, packets.
    const auto& rk = r.at("traffic").at("by_kind");
    const auto& ak = a.at("traffic").at("by_kind");
    for (auto it = rk.begin(); it != rk.end(); ++it) {
      SCOPED_TRACE(it.key());
      ASSERT_TRUE(ak.contains(it.key())) << ak.dump(1);
      for (const char* dir : {"to_server", "to_client"})
        for (const char* field : {"messages", "payload_bytes", "wire_bytes", "packets"})
          EXPECT_EQ(ak.at(it.key()).at(dir).at(field), it.value().at(dir).at(field)) << dir << " " << field;
      ++checked;
    }
    // Kinds the run never counted: nothing in the capture either.
    for (auto kind = ak.begin(); kind != ak.end(); ++kind) {
      if (rk.contains(kind.key())) continue;
      for (const char* dir : {"to_server", "to_client"}) EXPECT_EQ(kind.value().at(dir).at("packets"), 0) << kind.key();
    }
    // Nothing unframed.
    for (const char* dir : {"to_server", "to_client"}) EXPECT_EQ(a.at("traffic").at("other").at(dir).at("packets"), 0);
    const auto& counters = a.at("counters");
    for (const char* c : {"polls", "wasted_polls", "registrations", "connections", "received_chat",
                          "received_poll_interval", "http_errors"})
      EXPECT_EQ(counters.at(c), r.at(c)) << c;
    EXPECT_GT(r.at("polls").get<std::uint64_t>(), r.at("clients").get<std::uint64_t>());
    EXPECT_GT(r.at("received_chat").get<std::uint64_t>(), 0u) << "the run should deliver events";
  }
  EXPECT_GE(checked, 9u);
  // A connection per poll in the JSON group: as many connections as polls.
  EXPECT_EQ(modes.at("activity").at("connections"), modes.at("activity").at("polls"));
  EXPECT_EQ(amodes.at("fixed").at("counters").at("connections"), modes.at("fixed").at("clients"));
}

TEST_F(PollbusCapture, CapturingChangesNoCount) {
  // The same run without --pcap: observed clients settle their ACKs by timers,
  // which must count the same ACKs at the same times.
  const std::string toml = (dir_ / "bus.toml").string(), json = (dir_ / "uncaptured.json").string();
  const char* args[] = {"client-sim", "--clock", "virtual", "--scenario", toml.c_str(), "--quiet", "--json", json.c_str()};
  auto parsed = sim::parse_client_sim_options(static_cast<int>(std::size(args)), args);
  ASSERT_TRUE(parsed) << parsed.error().message;
  std::ostringstream table, err;
  ASSERT_EQ(sim::run_client_sim(parsed.value(), table, err, false), sim::exit_ok) << err.str();
  const nlohmann::json plain = read_json(json);
  ASSERT_FALSE(plain.is_discarded());
  EXPECT_EQ(plain.at("modes"), run_.at("modes"));
  EXPECT_EQ(plain.at("total"), run_.at("total"));
}

TEST_F(PollbusCapture, EventLatencyFromTimeStampsIsTheRunsLatency) {
  // The TimeStamps and the frame times share a clock (the default capture epoch).
  EXPECT_EQ(analysis_.at("event_clock").at("basis"), "same") << analysis_.at("event_clock").dump();
  EXPECT_EQ(analysis_.at("event_clock").at("negative_latencies"), 0);
  const auto& r = run_.at("total").at("latency");
  const auto& a = analysis_.at("total").at("latency").at("event");
  EXPECT_EQ(a.at("count"), r.at("count"));
  // Millisecond TimeStamps: each latency within a millisecond of the run's.
  EXPECT_NEAR(a.at("max_s").get<double>(), r.at("max_s").get<double>(), 0.0011);
}

}  // namespace
}  // namespace nudge::test
