// nudge-pcap on synthesized flows: handshake, pure ACK and teardown
// classification, PDUs that span segments, retransmissions, gaps and
// reordering, poll vs fetch, pings with and without their registration,
// foreign TCP, IPv6 through the per-packet entry point.
#include <gtest/gtest.h>

#include <algorithm>

#include "pcap_tool_support.hpp"

namespace nudge::pcap_tool::test {
namespace {

using capture::captured_frame;
using capture::capture_error;
using capture::frame_synthesizer;
using capture::memory_sink;
using metrics::direction;
using protocol::emsmdb::message_kind;

const ip_endpoint client = ep(10, 0, 0, 2, 50123);
const ip_endpoint server = ep(10, 0, 0, 1, 7777);
constexpr direction up = direction::to_server;
constexpr direction down = direction::to_client;

#define OK(expr) ASSERT_EQ((expr), capture_error::none)

TEST(PcapFlow, HandshakeAcksAndTeardown) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  OK(syn.tcp_open(at_ms(0), client, server));                     // SYN, SYN-ACK, ACK
  OK(syn.tcp_data(at_ms(1), client, server, p.bind(1, false)));   // 72
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  OK(syn.tcp_pure_ack(at_ms(202), client, server));               // delayed ACK of the bind_ack
  OK(syn.tcp_data(at_ms(300), client, server, p.ext2_req(2)));    // 84
  OK(syn.tcp_data(at_ms(301), server, client, p.ext2_rsp(2)));    // 100
  OK(syn.tcp_pure_ack(at_ms(501), client, server));
  OK(syn.tcp_pure_ack(at_ms(502), server, client));               // a duplicate ACK: still a pure ACK
  OK(syn.tcp_close(at_ms(600), client, server));                  // FIN, ACK, FIN, ACK

  const analysis a = analyse_frames(sink.frames());
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(c.address.address_string(), "10.0.0.2");
  ASSERT_EQ(c.flows.size(), 1u);
  EXPECT_EQ(c.flows[0].client, client);
  EXPECT_EQ(c.flows[0].server, server);
  EXPECT_EQ(c.flows[0].interface, "emsmdb");
  EXPECT_TRUE(c.flows[0].saw_syn);
  EXPECT_TRUE(c.flows[0].saw_close);

  // SYN (52, one message) + handshake ACK (40) + client FIN (40) + ACK of the server's FIN (40).
  EXPECT_EQ(cell(c.traffic, message_kind::tcp_setup, up), (traffic_cell{1, 0, 52 + 40 + 40 + 40, 4}));
  // SYN-ACK (52) + ACK of the client's FIN + the server's FIN.
  EXPECT_EQ(cell(c.traffic, message_kind::tcp_setup, down), (traffic_cell{0, 0, 52 + 40 + 40, 3}));
  EXPECT_EQ(c.teardown, (traffic_cell{0, 0, 160, 4}));
  EXPECT_EQ(cell(c.traffic, message_kind::tcp_ack, up), (traffic_cell{0, 0, 80, 2}));
  EXPECT_EQ(cell(c.traffic, message_kind::tcp_ack, down), (traffic_cell{0, 0, 40, 1}));
  EXPECT_EQ(cell(c.traffic, message_kind::bind, up), (traffic_cell{1, 72, 112, 1}));
  EXPECT_EQ(cell(c.traffic, message_kind::poll, up), (traffic_cell{1, 84, 124, 1}));
  EXPECT_EQ(cell(c.traffic, message_kind::poll, down), (traffic_cell{1, 100, 140, 1}));
  EXPECT_EQ(c.polls, 1u);
  EXPECT_EQ(c.wasted_polls, 1u);
  EXPECT_EQ(c.mode, client_mode::poll);
  // Every packet lands in exactly one kind.
  EXPECT_EQ(c.traffic.total().packets, sink.frames().size());
  EXPECT_EQ(a.skipped.total(), 0u);
  EXPECT_EQ(a.notifier_tcp, std::vector<ip_endpoint>{server});
  expect_every_packet_accounted(a);
}

TEST(PcapFlow, PdusSpanningSegmentsAreReassembled) {
  memory_sink sink;
  capture::synthesizer_options small;
  small.mss = 40;  // every PDU spans segments; headers split across them too
  frame_synthesizer syn(sink, small);
  pdu_factory p;
  OK(syn.tcp_open(at_ms(0), client, server));
  // Two PDUs in one send: the segment boundaries fall inside headers.
  byte_buffer both = p.bind(1, false);
  const byte_buffer req = p.connect_req(2);
  both.insert(both.end(), req.begin(), req.end());
  OK(syn.tcp_data(at_ms(1), client, server, both));
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  OK(syn.tcp_data(at_ms(3), server, client, p.connect_rsp(2, 9)));
  OK(syn.tcp_data(at_ms(4), client, server, p.ext2_req(3)));
  OK(syn.tcp_data(at_ms(5), server, client, p.ext2_rsp(3, {{42, at_ms(1)}}, 9)));
  OK(syn.tcp_data(at_ms(6), client, server, p.ext2_req(4)));  // RopPending said so: a fetch
  OK(syn.tcp_data(at_ms(7), server, client, p.ext2_rsp(4)));

  const analysis a = analyse_frames(sink.frames());
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(a.stream.pdus, 8u);
  EXPECT_EQ(a.stream.gaps + a.stream.malformed_pdus + a.stream.unframed_segments, 0u);
  EXPECT_EQ(cell(c.traffic, message_kind::bind, up).messages, 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::bind, up).payload_bytes, 72u);
  EXPECT_EQ(cell(c.traffic, message_kind::connect, up).messages, 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::connect, down).messages, 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::poll, up), (traffic_cell{1, 84, 84 + 3 * 40, 3}));
  EXPECT_EQ(cell(c.traffic, message_kind::fetch, up), (traffic_cell{1, 84, 84 + 3 * 40, 3}));
  EXPECT_EQ(c.session_index, std::optional<std::uint16_t>(9));
  EXPECT_EQ(c.polls, 1u);
  EXPECT_EQ(c.fetches, 1u);
  EXPECT_EQ(c.fetches_by_trigger[static_cast<std::size_t>(fetch_trigger::pending)], 1u);
  EXPECT_EQ(c.pending_seen, 1u);
  EXPECT_EQ(c.events, 1u);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].id, 42u);
  EXPECT_EQ(a.events[0].created_us, std::optional<std::int64_t>(1000));
  // Packets and wire bytes are conserved: every segment is in exactly one kind.
  EXPECT_EQ(c.traffic.total().packets, sink.frames().size());
  std::uint64_t ip = 0;
  for (const auto& f : sink.frames()) ip += f.bytes.size() - 14;
  EXPECT_EQ(c.traffic.total().wire_bytes, ip);
}

TEST(PcapFlow, RetransmissionsGapsAndReordering) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.bind(1, false)));
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  for (std::uint32_t call = 2; call < 7; ++call) {
    OK(syn.tcp_data(at_ms(1000 * call), client, server, p.ext2_req(call)));
    OK(syn.tcp_data(at_ms(1000 * call + 1), server, client, p.ext2_rsp(call)));
  }
  std::vector<captured_frame> frames = sink.frames();
  // Frames: 0-2 handshake, 3 bind, 4 bind_ack, then (request, response) pairs from 5.
  std::vector<captured_frame> edited;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (i == 7) continue;  // the second poll request is lost: a gap on the client's stream
    edited.push_back(frames[i]);
    if (i == 5) edited.push_back(frames[i]);  // the first poll request is retransmitted
  }
  // The last two requests arrive reordered.
  ASSERT_EQ(edited[9].bytes, frames[9].bytes);
  ASSERT_EQ(edited[11].bytes, frames[11].bytes);
  std::swap(edited[9], edited[11]);

  const analysis a = analyse_frames(edited);
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(a.stream.retransmissions, 1u);  // the duplicate
  EXPECT_EQ(a.stream.gaps, 1u);             // request 5 arrives where request 3 should be
  EXPECT_EQ(a.stream.resyncs, 1u);          // framing restarts at request 5
  EXPECT_EQ(a.stream.reordered, 1u);        // request 4 arrives after request 5: its bytes are lost to framing
  // Requests 2, 5 and 6 are framed; all five responses are, but those of the two
  // requests never framed (3 and 4) cannot be paired: they count as "other".
  EXPECT_EQ(cell(c.traffic, message_kind::poll, up).messages, 3u);
  EXPECT_EQ(cell(c.traffic, message_kind::poll, down).messages, 3u);
  EXPECT_EQ(c.traffic.other[static_cast<std::size_t>(down)].messages, 2u);
  EXPECT_EQ(c.traffic.other[static_cast<std::size_t>(up)].packets, 1u);  // the late request
  EXPECT_EQ(c.traffic.total().packets, edited.size());
  expect_every_packet_accounted(a);
}

TEST(PcapFlow, PingThenFetchAndPollInterval) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  const ip_endpoint callback = ep(10, 0, 0, 2, 2500);
  const ip_endpoint notifier_udp = ep(10, 0, 0, 1, 7778);
  const std::vector<std::uint8_t> ctx = {'c', 't', 'x', 1};
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.bind(1, false)));
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  OK(syn.tcp_data(at_ms(3), client, server, p.register_req(2, ctx, callback)));
  OK(syn.tcp_data(at_ms(4), server, client, p.register_rsp(2)));
  std::uint32_t call = 3;
  for (int i = 1; i <= 4; ++i) {  // polls every 60 s
    OK(syn.tcp_data(at_ms(60'000 * i), client, server, p.ext2_req(call)));
    OK(syn.tcp_data(at_ms(60'000 * i + 1), server, client, p.ext2_rsp(call++)));
  }
  // A ping; the client fetches 2 ms later.
  OK(syn.udp(at_ms(250'000), notifier_udp, callback, ctx));
  OK(syn.tcp_data(at_ms(250'002), client, server, p.ext2_req(call)));
  OK(syn.tcp_data(at_ms(250'003), server, client, p.ext2_rsp(call++, {{7, at_ms(249'000)}})));
  // A forged datagram from the notifier's port: ignored by the client, no fetch follows.
  OK(syn.udp(at_ms(260'000), notifier_udp, callback, std::vector<std::uint8_t>{'x'}));
  // The next poll, 70 s after the last: still a poll (the ping was answered).
  OK(syn.tcp_data(at_ms(310'000), client, server, p.ext2_req(call)));
  OK(syn.tcp_data(at_ms(310'001), server, client, p.ext2_rsp(call++)));

  const analysis a = analyse_frames(sink.frames());
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(c.mode, client_mode::push);
  EXPECT_EQ(c.registrations, 1u);
  EXPECT_EQ(c.polls, 5u);
  EXPECT_EQ(c.fetches, 1u);
  EXPECT_EQ(c.pings, 2u);
  EXPECT_EQ(c.pings_matched, 1u);
  EXPECT_EQ(c.pings_answered, 1u);
  ASSERT_TRUE(c.poll_interval_s.has_value());
  EXPECT_DOUBLE_EQ(*c.poll_interval_s, 60.0);
  EXPECT_EQ(c.poll_gaps, 4u);
  ASSERT_EQ(a.pings.size(), 2u);
  EXPECT_TRUE(a.pings[0].matched);
  ASSERT_TRUE(a.pings[0].fetch_at.has_value());
  EXPECT_EQ(*a.pings[0].fetch_at - a.pings[0].at, std::chrono::milliseconds(2));
  EXPECT_FALSE(a.pings[1].matched);
  EXPECT_FALSE(a.pings[1].fetch_at.has_value());
  EXPECT_EQ(cell(c.traffic, message_kind::ping, down), (traffic_cell{2, 5, 5 + 2 * 28, 2}));
  EXPECT_EQ(a.notifier_udp, std::vector<ip_endpoint>{notifier_udp});
  EXPECT_EQ(c.ping_to_fetch.count, 1u);
  EXPECT_EQ(c.events, 1u);
  ASSERT_EQ(a.events.size(), 1u);
  ASSERT_TRUE(a.events[0].latency_s.has_value());
  EXPECT_NEAR(*a.events[0].latency_s, 1.003, 1e-9);  // same clock: created 249.000 s, seen 250.003 s
  EXPECT_EQ(a.clock_basis, "same");
  EXPECT_EQ(a.events[0].path, 1);  // push
}

// Without the registration in the capture, --udp-port names the notifier's port.
TEST(PcapFlow, PingsByUdpPortWithoutRegistration) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  const ip_endpoint notifier_udp = ep(10, 0, 0, 1, 7778);
  const ip_endpoint callback = ep(10, 0, 0, 2, 2500);
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.ext2_req(10)));  // mid-session: no bind, no register
  OK(syn.tcp_data(at_ms(2), server, client, p.ext2_rsp(10)));
  OK(syn.udp(at_ms(1000), notifier_udp, callback, std::vector<std::uint8_t>(16, 0xAB)));
  OK(syn.tcp_data(at_ms(1001), client, server, p.ext2_req(11)));
  OK(syn.tcp_data(at_ms(1002), server, client, p.ext2_rsp(11)));
  OK(syn.udp(at_ms(2000), ep(10, 0, 0, 9, 9999), callback, std::vector<std::uint8_t>(8, 1)));  // unrelated

  {
    const analysis a = analyse_frames(sink.frames());
    ASSERT_EQ(a.clients.size(), 1u);
    EXPECT_EQ(a.clients[0].pings, 0u);
    EXPECT_EQ(a.clients[0].polls, 2u);
    EXPECT_EQ(a.skipped.unrelated_udp, 2u);
  }
  analyser_options o;
  o.udp_port = 7778;
  o.server_port = 7777;
  const analysis a = analyse_frames(sink.frames(), o);
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(c.pings, 1u);
  EXPECT_EQ(c.pings_matched, 0u);
  EXPECT_EQ(c.polls, 1u);
  EXPECT_EQ(c.fetches, 1u);
  EXPECT_EQ(a.skipped.unrelated_udp, 1u);
  EXPECT_EQ(c.mode, client_mode::poll);  // it registered nothing that the capture shows
  EXPECT_EQ(c.flows.size(), 2u);
  expect_every_packet_accounted(a);
}

TEST(PcapFlow, AsyncWaitCompletionMakesAFetch) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  const ip_endpoint async_ep = ep(10, 0, 0, 2, 50124);
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.bind(1, false)));
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  OK(syn.tcp_data(at_ms(3), client, server, p.async_connect_req(2)));
  OK(syn.tcp_data(at_ms(4), server, client, p.async_connect_rsp(2)));
  OK(syn.tcp_open(at_ms(5), async_ep, server));
  OK(syn.tcp_data(at_ms(6), async_ep, server, p.bind(1, true)));
  OK(syn.tcp_data(at_ms(7), server, async_ep, p.bind_ack(1)));
  OK(syn.tcp_data(at_ms(8), async_ep, server, p.wait_req(2)));
  OK(syn.tcp_pure_ack(at_ms(208), server, async_ep));
  OK(syn.tcp_data(at_ms(30'000), server, async_ep, p.wait_rsp(2, protocol::notification_pending)));
  OK(syn.tcp_data(at_ms(30'001), client, server, p.ext2_req(3)));
  OK(syn.tcp_data(at_ms(30'002), server, client, p.ext2_rsp(3, {{5, at_ms(29'999)}})));
  OK(syn.tcp_data(at_ms(30'003), async_ep, server, p.wait_req(3)));
  OK(syn.tcp_data(at_ms(330'003), server, async_ep, p.wait_rsp(3, 0)));  // timed out: no fetch
  OK(syn.tcp_data(at_ms(330'004), async_ep, server, p.wait_req(4)));
  OK(syn.tcp_data(at_ms(330'005), server, async_ep, pdu_factory::fault(4)));

  const analysis a = analyse_frames(sink.frames());
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(c.mode, client_mode::async);
  ASSERT_EQ(c.flows.size(), 2u);
  EXPECT_EQ(c.flows[1].interface, "async_emsmdb");
  EXPECT_EQ(c.async_connects, 1u);
  EXPECT_EQ(c.async_waits, 3u);
  EXPECT_EQ(c.async_notified, 1u);
  EXPECT_EQ(c.fetches, 1u);
  EXPECT_EQ(c.polls, 0u);
  EXPECT_EQ(c.faults, 1u);
  EXPECT_EQ(c.fetches_by_trigger[static_cast<std::size_t>(fetch_trigger::async_wait)], 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::async_wait, up).messages, 3u);
  EXPECT_EQ(cell(c.traffic, message_kind::async_wait, down).messages, 2u);
  EXPECT_EQ(cell(c.traffic, message_kind::fault, down).messages, 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::tcp_ack, down).packets, 1u);
  EXPECT_EQ(a.total.async_to_fetch.count(), 1u);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].path, 2);  // async
}

// The capture ends inside a PDU: its segments still count, as "other".
TEST(PcapFlow, PduCutOffByTheEndOfTheCapture) {
  memory_sink sink;
  capture::synthesizer_options small;
  small.mss = 30;
  frame_synthesizer syn(sink, small);
  pdu_factory p;
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.bind(1, false)));
  OK(syn.tcp_data(at_ms(2), server, client, p.bind_ack(1)));
  OK(syn.tcp_data(at_ms(3), client, server, p.ext2_req(2)));
  std::vector<captured_frame> frames = sink.frames();
  frames.pop_back();  // the request's last segment never made it into the capture
  const analysis a = analyse_frames(frames);
  ASSERT_EQ(a.clients.size(), 1u);
  EXPECT_EQ(cell(a.clients[0].traffic, message_kind::poll, up).messages, 0u);
  EXPECT_EQ(a.clients[0].traffic.other[0].packets, 2u);
  EXPECT_EQ(a.clients[0].traffic.other[0].payload_bytes, 60u);
  expect_every_packet_accounted(a);
}

// A fetch window that closes before a late EcDoRpcExt2: that one is a poll.
TEST(PcapFlow, TriggersExpire) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  pdu_factory p;
  const ip_endpoint callback = ep(10, 0, 0, 2, 2500);
  const std::vector<std::uint8_t> ctx = {1, 2, 3};
  OK(syn.tcp_open(at_ms(0), client, server));
  OK(syn.tcp_data(at_ms(1), client, server, p.register_req(1, ctx, callback)));
  OK(syn.tcp_data(at_ms(2), server, client, p.register_rsp(1)));
  OK(syn.udp(at_ms(1000), ep(10, 0, 0, 1, 7778), callback, ctx));
  OK(syn.tcp_data(at_ms(7000), client, server, p.ext2_req(2)));  // 6 s later: outside the 5 s window
  OK(syn.tcp_data(at_ms(7001), server, client, p.ext2_rsp(2)));
  const analysis a = analyse_frames(sink.frames());
  ASSERT_EQ(a.clients.size(), 1u);
  EXPECT_EQ(a.clients[0].polls, 1u);
  EXPECT_EQ(a.clients[0].fetches, 0u);
  EXPECT_EQ(a.clients[0].pings_answered, 0u);

  analyser_options wide;
  wide.fetch_window = std::chrono::seconds(10);
  const analysis b = analyse_frames(sink.frames(), wide);
  EXPECT_EQ(b.clients[0].fetches, 1u);
}

TEST(PcapFlow, ForeignTcpIsSkipped) {
  memory_sink sink;
  frame_synthesizer syn(sink);
  const ip_endpoint web = ep(10, 0, 0, 80, 80);
  const std::string get = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  OK(syn.tcp_open(at_ms(0), client, web));
  for (int i = 0; i < 6; ++i) {
    OK(syn.tcp_data(at_ms(1 + i), client, web, protocol::as_bytes(get)));
    OK(syn.tcp_data(at_ms(2 + i), web, client, protocol::as_bytes("HTTP/1.1 200 OK\r\n\r\nhello")));
  }
  OK(syn.tcp_close(at_ms(100), client, web));
  const analysis a = analyse_frames(sink.frames());
  EXPECT_TRUE(a.clients.empty());
  EXPECT_EQ(a.skipped.unrelated_tcp, sink.frames().size());
  EXPECT_EQ(a.tcp_flows, 0u);
  expect_every_packet_accounted(a);

  // Declared the notifier's port, the same flow is a client's: the handshake is
  // tcp_setup, everything after the flow turned out foreign is "other", the
  // teardown included (a regression found by fuzz_classifier).
  analyser_options o;
  o.server_port = 80;
  const analysis b = analyse_frames(sink.frames(), o);
  ASSERT_EQ(b.clients.size(), 1u);
  EXPECT_EQ(b.skipped.total(), 0u);
  EXPECT_EQ(b.clients[0].traffic.other[0].packets + b.clients[0].traffic.other[1].packets, 12u + 4u);
  expect_every_packet_accounted(b);
}

// The per-packet entry point with IPv6 addresses (the synthesizer writes IPv4 only).
TEST(PcapFlow, Ipv6ThroughThePacketEntryPoint) {
  pdu_factory f;
  std::array<std::uint8_t, 16> c6{0x20, 0x01, 0x0d, 0xb8};
  std::array<std::uint8_t, 16> s6{0x20, 0x01, 0x0d, 0xb8};
  c6[15] = 2;
  s6[15] = 1;
  analyser a;
  std::uint32_t cseq = 1000, sseq = 5000;
  auto seg = [&](bool from_client, const byte_buffer& pdu, std::int64_t ms) {
    packet p;
    p.ts = at_ms(ms);
    p.ip_version = 6;
    p.protocol = ip_proto_tcp;
    p.src6 = from_client ? c6.data() : s6.data();
    p.dst6 = from_client ? s6.data() : c6.data();
    p.src_port = from_client ? 50000 : 7777;
    p.dst_port = from_client ? 7777 : 50000;
    p.seq = from_client ? cseq : sseq;
    (from_client ? cseq : sseq) += static_cast<std::uint32_t>(pdu.size());
    p.tcp_flags = tcp_flag::ack | tcp_flag::psh;
    p.payload = pdu;
    p.payload_length = static_cast<std::uint32_t>(pdu.size());
    p.ip_bytes = 40 + 20 + p.payload_length;
    a.on_packet(p);
  };
  seg(true, f.bind(1, false), 0);
  seg(false, f.bind_ack(1), 1);
  seg(true, f.ext2_req(2), 2);
  seg(false, f.ext2_rsp(2), 3);
  const analysis r = a.finish();
  ASSERT_EQ(r.clients.size(), 1u);
  EXPECT_EQ(r.clients[0].address.address_string(), "2001:db8::2");
  EXPECT_EQ(r.clients[0].polls, 1u);
  EXPECT_EQ(cell(r.clients[0].traffic, message_kind::poll, up), (traffic_cell{1, 84, 84 + 60, 1}));
  ASSERT_EQ(r.notifier_tcp.size(), 1u);
  EXPECT_EQ(r.notifier_tcp[0].to_string(), "[2001:db8::1]:7777");
}

}  // namespace
}  // namespace nudge::pcap_tool::test
