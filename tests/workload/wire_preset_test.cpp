// wire.preset: a named set of TCP wire settings (docs/scenarios.md), refined by
// the file's other wire keys whatever their order.
#include <gtest/gtest.h>

#include <variant>

#include "nudge/sim/scenario.hpp"
#include "workload/parse_plan.hpp"

using namespace nudge;
using namespace nudge::sim;
using namespace std::chrono_literals;

namespace {

using test::plan_of;

TEST(WirePreset, LinuxPutsTimestampsOnEverySegmentAndAcksAfter40ms) {
  const run_plan p = plan_of("[wire]\npreset = \"linux\"\n");
  EXPECT_EQ(p.wire.tcp_options, 12u);
  EXPECT_EQ(p.wire.syn_options, 20u);
  EXPECT_EQ(p.wire.delayed_ack, 40ms);
  EXPECT_EQ(p.wire.quick_acks, 1u);
  EXPECT_EQ(p.wire.idle_quick_ack, 200ms);
  // An idle poll: 84 + 100 bytes of PDUs, each in one segment with 52 bytes of headers.
  EXPECT_EQ(p.wire.tcp_message(84).wire_bytes + p.wire.tcp_message(100).wire_bytes, 84u + 100u + 2 * 52u);
  EXPECT_EQ(p.wire.handshake_to_server().wire_bytes, 60u + 52u);  // SYN, then the third ACK with timestamps
  EXPECT_EQ(p.wire.handshake_to_client().wire_bytes, 60u);        // SYN-ACK
}

TEST(WirePreset, WindowsIsTheDefault) {
  run_plan p;
  p.wire.tcp_options = 12;
  p.wire.delayed_ack = 1s;
  ASSERT_FALSE(apply_override(p, "wire.preset=windows"));
  const metrics::wire_model defaults;
  EXPECT_EQ(p.wire.tcp_options, defaults.tcp_options);
  EXPECT_EQ(p.wire.syn_options, defaults.syn_options);
  EXPECT_EQ(p.wire.delayed_ack, defaults.delayed_ack);
  EXPECT_EQ(p.wire.quick_acks, defaults.quick_acks);
  EXPECT_EQ(p.wire.idle_quick_ack, defaults.idle_quick_ack);
}

TEST(WirePreset, TheFirstDataEachEndReceivesIsAckedAtOnceThenAcksAreDelayed) {
  const run_plan p = plan_of("[wire]\npreset = \"linux\"\n");
  metrics::ack_tracker acks;
  acks.set_quick_acks(p.wire.quick_acks);
  const time_point t0{};
  EXPECT_EQ(acks.on_data_received(t0 + 1ms, p.wire.delayed_ack), t0 + 1ms) << "the bind: a pure ACK at once";
  EXPECT_EQ(acks.pending_deadline(), never);
  EXPECT_EQ(acks.on_data_received(t0 + 10ms, p.wire.delayed_ack), never) << "then delayed";
  EXPECT_EQ(acks.pending_deadline(), t0 + 50ms);
  EXPECT_EQ(acks.on_data_sent(t0 + 20ms), never) << "and carried by data within 40 ms";
}

// A keep-alive HTTP poll with Expect: 100-continue, seen from the client's
// receiving end: it gets `100 Continue` (sends the body at once), then the
// answer, then nothing for seconds.
TEST(WirePreset, AfterAQuietGapDataIsAckedAtOnceUnlessTheReceiverIsInteractive) {
  const run_plan p = plan_of("[wire]\npreset = \"linux\"\n");
  metrics::ack_tracker client;
  client.configure(p.wire);
  const time_point t0{};
  const auto d = p.wire.delayed_ack;
  EXPECT_EQ(client.on_data_received(t0 + 1ms, d), t0 + 1ms) << "100 Continue: the connection's first data";
  EXPECT_EQ(client.on_data_sent(t0 + 1ms), never) << "the body";
  EXPECT_EQ(client.on_data_received(t0 + 2ms, d), never) << "the answer: delayed (the client is interactive)";
  // Three seconds on, the next poll: the delayed ACK fired long ago, so the client is not interactive.
  EXPECT_EQ(client.on_data_sent(t0 + 3002ms), t0 + 42ms) << "the head; the answer's pure ACK went at 42 ms";
  EXPECT_EQ(client.on_data_received(t0 + 3003ms, d), t0 + 3003ms) << "100 Continue after 3 s: ACKed at once";
  EXPECT_EQ(client.on_data_sent(t0 + 3003ms), never) << "the body";
  EXPECT_EQ(client.on_data_received(t0 + 3004ms, d), never) << "the answer: delayed again";

  // A server answering every request at once stays interactive: a request after a gap is not ACKed at once.
  metrics::ack_tracker server;
  server.configure(p.wire);
  EXPECT_EQ(server.on_data_received(t0, d), t0) << "the first request: quick-ACK mode at connection start";
  EXPECT_EQ(server.on_data_received(t0 + 1ms, d), never);
  EXPECT_EQ(server.on_data_sent(t0 + 1ms), never) << "the answer carries the ACK";
  EXPECT_EQ(server.on_data_received(t0 + 5s, d), never) << "5 s later: still interactive, delayed";
  EXPECT_EQ(server.on_data_sent(t0 + 5s + 1ms), never);

  // Windows (the default) never does this.
  metrics::ack_tracker windows;
  windows.configure(metrics::wire_model{});
  EXPECT_EQ(windows.on_data_received(t0, 200ms), never);
  EXPECT_EQ(windows.flush(t0 + 1s), t0 + 200ms);
  EXPECT_EQ(windows.on_data_received(t0 + 5s, 200ms), never) << "after a gap: delayed all the same";
}

TEST(WirePreset, OtherWireKeysOfAFileRefineItInAnyOrder) {
  for (const char* text : {"[wire]\npreset = \"linux\"\ndelayed_ack = \"200ms\"\n",
                           "[wire]\ndelayed_ack = \"200ms\"\npreset = \"linux\"\n"}) {
    const run_plan p = plan_of(text);
    EXPECT_EQ(p.wire.tcp_options, 12u) << text;
    EXPECT_EQ(p.wire.delayed_ack, 200ms) << text;
  }
}

TEST(WirePreset, AnUnknownNameIsAnErrorThatNamesTheKey) {
  auto r = parse_scenario("[wire]\npreset = \"solaris\"\n", "test.toml");
  ASSERT_TRUE(std::holds_alternative<scenario_error>(r));
  const auto& e = std::get<scenario_error>(r);
  EXPECT_EQ(e.key, "wire.preset");
  EXPECT_NE(e.message.find("\"linux\""), std::string::npos) << e.message;
  run_plan p;
  const auto o = apply_override(p, "wire.preset=bsd");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->key, "wire.preset");
}

}  // namespace
