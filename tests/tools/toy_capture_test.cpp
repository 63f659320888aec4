// nudge-pcap reads a family it has never heard of: the test-only toy family
// (tests/support/toy_family.cpp) registers a capture reader, and the analyser,
// the report and the JSON count its traffic, clients, counters and event
// latency by the names the family gives, with no toy code in tools/pcap.
// The capture is synthesized with client-sim's frame writer (client-sim/capture/frames):
// virtual runs capture only what their drivers model, and the toy's lines are
// simple enough to script here.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../support/toy_family.hpp"
#include "nudge/capture/frame_sink.hpp"
#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/cli.hpp"
#include "nudge/pcap/report.hpp"
#include "nudge/protocols/registrations.hpp"

namespace nudge::pcap_tool::test {
namespace {

using capture::frame_synthesizer;
using capture::memory_sink;

time_point at_ms(std::int64_t ms) { return time_point{std::chrono::milliseconds(ms)}; }

std::vector<std::uint8_t> line(const std::string& s) { return {s.begin(), s.end()}; }

std::size_t kind_index(const analysis& a, std::string_view name) {
  const auto kinds = a.names->kind_names();
  for (std::size_t k = 0; k < kinds.size(); ++k)
    if (kinds[k] == name) return k;
  ADD_FAILURE() << "no kind " << name;
  return 0;
}

std::uint64_t counter(const analysis& a, const std::vector<std::uint64_t>& values, std::string_view name) {
  const auto names = a.names->counter_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return values.at(i);
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

class toy_capture : public ::testing::Test {
 protected:
  void SetUp() override {
    protocols::register_all();  // as programs do: the toy comes after the real families
    toy::register_toy_family();
    frame_synthesizer syn(sink_);
    // Client A ticks three times, 30 s apart; the second tick finds two events,
    // the oldest 1.5 s old. Client B ticks twice and finds nothing.
    const auto a = ip_endpoint::v4(10, 0, 0, 2, 50000), b = ip_endpoint::v4(10, 0, 0, 3, 50001);
    ASSERT_EQ(syn.tcp_open(at_ms(1000), a, server_), capture::capture_error::none);
    ASSERT_EQ(syn.tcp_open(at_ms(2000), b, server_), capture::capture_error::none);
    const char* a_replies[] = {"0 0\n", "2 1500\n", "0 0\n"};
    for (int i = 0; i < 3; ++i) {
      const std::int64_t t = 1100 + 30'000 * i;
      ASSERT_EQ(syn.tcp_data(at_ms(t), a, server_, line("TICK alice\n")), capture::capture_error::none);
      ASSERT_EQ(syn.tcp_data(at_ms(t + 10), server_, a, line(a_replies[i])), capture::capture_error::none);
      ASSERT_EQ(syn.tcp_pure_ack(at_ms(t + 200), a, server_), capture::capture_error::none);
    }
    for (int i = 0; i < 2; ++i) {
      const std::int64_t t = 2100 + 30'000 * i;
      ASSERT_EQ(syn.tcp_data(at_ms(t), b, server_, line("TICK bob\n")), capture::capture_error::none);
      ASSERT_EQ(syn.tcp_data(at_ms(t + 10), server_, b, line("0 0\n")), capture::capture_error::none);
    }
    ASSERT_EQ(syn.tcp_close(at_ms(100'000), a, server_), capture::capture_error::none);
    // A foreign datagram: the toy reads no UDP.
    ASSERT_EQ(syn.udp(at_ms(5000), a, server_, line("hello")), capture::capture_error::none);
    totals_ = syn.totals();
  }

  analysis analyse() const {
    analyser_options o;
    o.family = std::string(toy::family_name);
    analyser an(o);
    for (const auto& f : sink_.frames())
      an.on_frame(capture_reader::dlt_en10mb, f.time, f.bytes, static_cast<std::uint32_t>(f.bytes.size()));
    return an.finish();
  }

  ip_endpoint server_ = ip_endpoint::v4(10, 0, 0, 1, 7000);
  memory_sink sink_;
  capture::traffic_counters totals_;
};

TEST_F(toy_capture, counts_the_toy_by_its_own_names) {
  const analysis a = analyse();
  ASSERT_NE(a.names, nullptr);
  EXPECT_EQ(a.names->family(), "toy");
  ASSERT_EQ(a.clients.size(), 2u);
  EXPECT_EQ(a.skipped.unrelated_udp, 1u);
  ASSERT_EQ(a.notifier_tcp.size(), 1u);
  EXPECT_EQ(a.notifier_tcp[0], server_);

  const client_report& ca = a.clients[0];
  EXPECT_EQ(ca.address.address_string(), "10.0.0.2");
  EXPECT_EQ(a.names->mode_name(static_cast<std::size_t>(ca.mode)), "tick");
  EXPECT_EQ(counter(a, ca.counters, "ticks"), 3u);
  EXPECT_EQ(counter(a, ca.counters, "empty_ticks"), 2u);
  EXPECT_EQ(counter(a, ca.counters, "events"), 2u);
  EXPECT_EQ(ca.events, 2u);  // nudge.pcap/1's fixed field of that name
  ASSERT_EQ(ca.flows.size(), 1u);
  EXPECT_EQ(ca.flows[0].interface, "tick");
  ASSERT_TRUE(ca.poll_interval_s.has_value());
  EXPECT_DOUBLE_EQ(*ca.poll_interval_s, 30.0);

  const traffic_cell up = ca.traffic.meter.cell(kind_index(a, "tick_request"), direction::to_server);
  EXPECT_EQ(up.messages, 3u);
  EXPECT_EQ(up.payload_bytes, 3u * std::string("TICK alice\n").size());
  const traffic_cell down = ca.traffic.meter.cell(kind_index(a, "tick_reply"), direction::to_client);
  EXPECT_EQ(down.messages, 3u);
  EXPECT_EQ(down.payload_bytes, 4u + 7u + 4u);
  EXPECT_EQ(ca.traffic.meter.cell(kind_index(a, "tcp_ack"), direction::to_server).packets, 3u);

  const client_report& cb = a.clients[1];
  EXPECT_EQ(counter(a, cb.counters, "ticks"), 2u);
  EXPECT_EQ(counter(a, cb.counters, "empty_ticks"), 2u);

  // Every TCP byte the synthesizer wrote is in some row (the datagram is skipped).
  const std::uint64_t udp_ip_bytes = 28 + 5;
  EXPECT_EQ(a.total.traffic.total().wire_bytes, totals_.ip_bytes - udp_ip_bytes);
  EXPECT_EQ(a.total.traffic.total().payload_bytes, totals_.payload_bytes - 5);
  EXPECT_EQ(counter(a, a.total.counters, "ticks"), 5u);

  // The reply's age dates its oldest event: 1.5 s, on the capture's own clock.
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.clock_basis, "same");
  ASSERT_TRUE(a.events[0].latency_s.has_value());
  EXPECT_NEAR(*a.events[0].latency_s, 1.5, 1e-9);
  EXPECT_EQ(a.total.event_latency.count(), 1u);
}

TEST_F(toy_capture, the_report_prints_the_toy_names) {
  const analysis a = analyse();
  const nlohmann::json j = to_json(a, json_options{true});
  ASSERT_TRUE(j["modes"].contains("tick"));
  EXPECT_EQ(j["modes"]["tick"]["clients"], 2);
  EXPECT_EQ(j["total"]["counters"]["ticks"], 5);
  EXPECT_EQ(j["total"]["counters"]["empty_ticks"], 4);
  EXPECT_EQ(j["total"]["traffic"]["by_kind"]["tick_request"]["to_server"]["messages"], 5);
  EXPECT_EQ(j["clients"][0]["counters"]["ticks"], 3);
  EXPECT_EQ(j["events"][0]["path"], "tick");

  std::ostringstream table;
  write_table(table, a);
  EXPECT_NE(table.str().find("Counters per mode (toy)"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("tick_reply"), std::string::npos) << table.str();
}

TEST_F(toy_capture, the_default_family_does_not_read_the_toy) {
  // Without --family the analyser reads EMSMDB: the toy's lines are no DCE/RPC.
  analyser an;
  for (const auto& f : sink_.frames())
    an.on_frame(capture_reader::dlt_en10mb, f.time, f.bytes, static_cast<std::uint32_t>(f.bytes.size()));
  const analysis a = an.finish();
  EXPECT_EQ(a.names->family(), "emsmdb");
  EXPECT_TRUE(a.clients.empty());
}

TEST_F(toy_capture, the_command_line_names_the_family) {
  const char* toy_args[] = {"nudge-pcap", "analyse", "x.pcap", "--family", "toy"};
  const auto toy = parse_pcap_options(5, toy_args);
  ASSERT_TRUE(toy) << toy.error().message;
  EXPECT_EQ(toy->analysis.family, "toy");
  const char* bad_args[] = {"nudge-pcap", "analyse", "x.pcap", "--family", "no-such-family"};
  const auto bad = parse_pcap_options(5, bad_args);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_code, exit_usage);
  EXPECT_NE(bad.error().message.find("no-such-family"), std::string::npos);
}

}  // namespace
}  // namespace nudge::pcap_tool::test
