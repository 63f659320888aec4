// nudge-pcap on whole sessions: the capture tests/pcap/session_capture builds
// (a push, an async and a poll client against notifier_core, every PDU
// recorded) and a many-client capture written by running the virtual driver
// with its pcap recorder. The analyser's counts must equal what was produced.
#include <gtest/gtest.h>

#include <map>

#include "nudge/sim/pcap_capture.hpp"
#include "pcap_tool_support.hpp"
#include "session_capture.hpp"

namespace nudge::pcap_tool::test {
namespace {

using metrics::direction;
using protocol::emsmdb::message_kind;
using pcap_test::iface;
using pcap_test::pdu_record;
using pcap_test::shared_capture;

constexpr direction up = direction::to_server;
constexpr direction down = direction::to_client;

// What nudge's counters call each recorded PDU (poll and fetch together: the
// record does not say why an EcDoRpcExt2 was sent).
message_kind kind_of(const pdu_record& r) {
  switch (r.ptype) {
    case 11:
    case 12: return message_kind::bind;
    case 3:
    case 13: return message_kind::fault;
    default: break;
  }
  if (r.bound == iface::async_emsmdb) return message_kind::async_wait;
  switch (r.opnum.value_or(0xFFFF)) {
    case protocol::opnum::do_connect_ex: return message_kind::connect;
    case protocol::opnum::register_push_notification: return message_kind::register_push;
    case protocol::opnum::dummy_rpc: return message_kind::dummy;
    case protocol::opnum::do_rpc_ext2: return message_kind::poll;
    case protocol::opnum::do_async_connect_ex: return message_kind::async_connect;
    default: return message_kind::count_;
  }
}

class SessionCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& f = shared_capture();
    ASSERT_TRUE(f.info.error.empty()) << f.info.error;
    info_ = &f.info;
    a_ = analyse_file(f.path);
  }
  traffic_cell both(message_kind k, direction d) const { return a_.total.traffic.meter.cell(k, d); }
  const pcap_test::session_capture* info_ = nullptr;
  analysis a_;
};

TEST_F(SessionCapture, PerKindCountsEqualThePdusTheSessionProduced) {
  // Expected messages, payload bytes and segments (MSS 1460) per kind and direction.
  std::map<std::pair<message_kind, direction>, traffic_cell> expected;
  for (const pdu_record& r : info_->pdus) {
    const message_kind k = kind_of(r);
    ASSERT_NE(k, message_kind::count_) << "unexpected opnum in the session";
    traffic_cell& c = expected[{k, r.from_client ? up : down}];
    c.messages += 1;
    c.payload_bytes += r.frag_length;
    const std::uint64_t segs = (r.frag_length + 1459u) / 1460u;
    c.packets += segs;
    c.wire_bytes += r.frag_length + 40 * segs;
  }
  for (const auto& [key, want] : expected) {
    const auto [k, d] = key;
    traffic_cell got = both(k, d);
    if (k == message_kind::poll) got += both(message_kind::fetch, d);
    EXPECT_EQ(got, want) << protocol::emsmdb::to_string(k) << (d == up ? " to_server" : " to_client");
  }
  for (direction d : {up, down}) {
    EXPECT_EQ(a_.total.traffic.other[static_cast<std::size_t>(d)], traffic_cell{});
    EXPECT_EQ(both(message_kind::tcp_ack, d).packets, 0u);  // the session sends no pure ACKs
  }
  EXPECT_EQ(a_.stream.pdus, info_->pdus.size());
  EXPECT_EQ(a_.stream.malformed_pdus + a_.stream.gaps + a_.stream.retransmissions + a_.stream.unframed_segments, 0u);
  // Four connections opened and closed: SYN + ACK + FIN + ACK up, SYN-ACK + ACK + FIN down.
  EXPECT_EQ(both(message_kind::tcp_setup, up), (traffic_cell{4, 0, 4 * (52 + 40 + 40 + 40), 16}));
  EXPECT_EQ(both(message_kind::tcp_setup, down), (traffic_cell{0, 0, 4 * (52 + 40 + 40), 12}));
  EXPECT_EQ(a_.total.teardown.packets, 4u * 4u);
}

TEST_F(SessionCapture, EveryPacketAndByteIsAccounted) {
  EXPECT_EQ(a_.packets, info_->frames);
  EXPECT_EQ(a_.skipped.total(), 0u);
  EXPECT_TRUE(a_.error.empty());
  EXPECT_EQ(a_.format, "pcap");
  EXPECT_EQ(a_.link_type, "EN10MB");
  const traffic_cell t = a_.total.traffic.total();
  EXPECT_EQ(t.packets, a_.packets);
  EXPECT_EQ(t.wire_bytes, a_.ip_bytes);
  EXPECT_EQ(a_.tcp_flows, 4u);
  EXPECT_EQ(a_.udp_flows, 1u);
  EXPECT_EQ(a_.notifier_tcp, std::vector<ip_endpoint>{info_->server});
  EXPECT_EQ(a_.notifier_udp, std::vector<ip_endpoint>{info_->server_udp});
  expect_every_packet_accounted(a_);
}

TEST_F(SessionCapture, ModesPollsFetchesPingsAndEvents) {
  ASSERT_EQ(a_.clients.size(), 3u);
  EXPECT_EQ(a_.modes[static_cast<std::size_t>(client_mode::push)].clients, 1u);
  EXPECT_EQ(a_.modes[static_cast<std::size_t>(client_mode::async)].clients, 1u);
  EXPECT_EQ(a_.modes[static_cast<std::size_t>(client_mode::poll)].clients, 1u);
  const client_report& push = a_.clients[0];
  const client_report& async = a_.clients[1];
  const client_report& poll = a_.clients[2];
  EXPECT_EQ(push.address.address_string(), "127.0.0.2");
  EXPECT_EQ(push.mode, client_mode::push);
  EXPECT_EQ(async.mode, client_mode::async);
  EXPECT_EQ(poll.mode, client_mode::poll);
  EXPECT_EQ(push.flows.size(), 2u);  // EMSMDB + the UDP socket
  EXPECT_EQ(async.flows.size(), 2u);  // EMSMDB + AsyncEMSMDB
  EXPECT_EQ(poll.flows.size(), 1u);

  // Pings: every datagram the notifier sent, each matched and answered by a fetch.
  std::uint64_t datagrams = 0;
  for (const auto& d : info_->datagrams) datagrams += d.from == info_->server_udp;
  ASSERT_GT(datagrams, 0u);
  EXPECT_EQ(push.pings, datagrams);
  EXPECT_EQ(push.pings_matched, datagrams);
  EXPECT_EQ(push.pings_answered, datagrams);
  EXPECT_EQ(push.fetches_by_trigger[static_cast<std::size_t>(fetch_trigger::ping)], 1u);
  EXPECT_EQ(async.fetches_by_trigger[static_cast<std::size_t>(fetch_trigger::async_wait)], info_->async_completed);
  // RopPending: one more fetch per response that carried it.
  EXPECT_EQ(a_.total.fetches_by_trigger[static_cast<std::size_t>(fetch_trigger::pending)], info_->pending_sent);
  EXPECT_EQ(a_.total.fetches, 1 + info_->async_completed + info_->pending_sent);
  EXPECT_EQ(a_.total.pending_seen, info_->pending_sent);
  // Polls at 5 s: the poll client polled twice, the push client until its ping.
  ASSERT_TRUE(poll.poll_interval_s.has_value());
  EXPECT_NEAR(*poll.poll_interval_s, 5.0, 0.01);
  EXPECT_EQ(poll.polls_max_ms, std::optional<std::uint32_t>(info_->polls_max_ms));
  EXPECT_EQ(poll.session_index, std::optional<std::uint16_t>(info_->poll_session_index));
  EXPECT_EQ(async.polls, 0u);
  EXPECT_EQ(poll.dummies, 1u);
  EXPECT_EQ(push.registrations, 1u);
  EXPECT_EQ(async.async_connects, 1u);

  // Events: every NewMail the notifier sent, with a creation stamp in virtual time
  // (the capture puts virtual zero at 1700000000 s: the whole-second rule finds it).
  EXPECT_EQ(a_.total.events, info_->events_fetched);
  EXPECT_EQ(a_.events.size(), info_->events_fetched);
  EXPECT_EQ(a_.clock_basis, "whole-second start");
  EXPECT_DOUBLE_EQ(a_.clock_offset_s, 1700000000.0);
  EXPECT_EQ(a_.negative_latencies, 0u);
  for (const auto& e : a_.events) {
    ASSERT_TRUE(e.latency_s.has_value());
    EXPECT_GE(*e.latency_s, 0.0);
    EXPECT_LT(*e.latency_s, 3.0);  // the poll client's events wait ~2.2 s for its poll
  }
  EXPECT_EQ(latency_summary::of(a_.total.event_latency).count, info_->events_fetched);
}

// ---- a capture of many clients, from a virtual run --------------------------------------

TEST(ManyClientCapture, AnalyserCountsEqualTheVirtualRunThatWroteIt) {
  using namespace std::chrono_literals;
  sim::run_plan plan;
  plan.clients = 150;
  plan.mix = sim::emsmdb_mix(0.4, 0.4, 0.2);
  plan.poll_interval = 60s;
  plan.events_per_client_hour = 30;
  plan.length = 20min;
  plan.drain = 10s;
  plan.seed = 3;
  const auto path = scratch_dir() / "many_clients.pcap";
  const auto run = sim::capture_virtual_run(plan, path);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const analysis a = analyse_file(path);
  EXPECT_EQ(a.packets, run->capture.frames);
  EXPECT_EQ(a.skipped.total(), 0u);
  EXPECT_EQ(a.stream.gaps + a.stream.malformed_pdus + a.stream.retransmissions, 0u);
  EXPECT_EQ(a.clients.size(), plan.clients);
  for (std::size_t m = 0; m < client_mode_count; ++m) {
    const auto& want = run->result.modes[m];
    const auto& got = a.modes[m];
    SCOPED_TRACE(std::string(to_string(static_cast<client_mode>(m))));
    ASSERT_GT(want.clients, 0u) << "the plan's mix has every mode";
    EXPECT_EQ(got.clients, want.clients);
    EXPECT_EQ(got.polls, want.metrics.counter(protocol::emsmdb::counter::polls));
    EXPECT_EQ(got.fetches, want.metrics.counter(protocol::emsmdb::counter::fetches));
    EXPECT_EQ(got.events, want.metrics.events_fetched());
    EXPECT_EQ(got.pings_matched, want.metrics.counter(protocol::emsmdb::counter::pings_matched));
    EXPECT_EQ(got.async_waits, want.metrics.counter(protocol::emsmdb::counter::async_waits));
    EXPECT_EQ(got.async_notified, want.metrics.counter(protocol::emsmdb::counter::async_notified));
    EXPECT_EQ(got.traffic.total(), want.metrics.traffic.total());
  }
  EXPECT_GT(a.total.fetches, 0u);
  EXPECT_GT(a.total.pings, 0u);
  // Poll clients poll every 60 s: the median gap says so.
  for (const auto& c : a.clients) {
    if (c.mode == client_mode::poll && c.poll_gaps > 3) {
      EXPECT_NEAR(*c.poll_interval_s, 60.0, 0.01);
    }
  }
  EXPECT_EQ(a.negative_latencies, 0u);
  expect_every_packet_accounted(a);
}

}  // namespace
}  // namespace nudge::pcap_tool::test
