#include "nudge/capture/frame_synthesizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "frame_parse.hpp"

namespace nudge::capture {
namespace {

using test::ep;
using test::parse;
using test::parsed_frame;

constexpr std::uint8_t fin = 0x01, syn = 0x02, psh = 0x08, ack = 0x10;

const ip_endpoint client = ep(10, 0, 0, 2, 50123);
const ip_endpoint server = ep(10, 0, 0, 1, 7777);

time_point at(int ms) { return time_point{std::chrono::milliseconds(ms)}; }

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t seed = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

std::vector<parsed_frame> parse_all(const memory_sink& sink) {
  std::vector<parsed_frame> out;
  for (const auto& f : sink.frames()) out.push_back(parse(f.bytes));
  return out;
}

TEST(FrameSynthesizer, HandshakeLayoutAndOptions) {
  memory_sink sink;
  frame_synthesizer syn_(sink);
  ASSERT_EQ(syn_.tcp_open(at(5), client, server), capture_error::none);
  ASSERT_EQ(sink.frames().size(), 3u);
  const auto f = parse_all(sink);

  // SYN and SYN-ACK: 12 option bytes, 52-byte IP packets; the ACK is plain.
  const std::vector<std::uint8_t> options = {2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2};
  for (int i : {0, 1}) {
    EXPECT_EQ(f[i].ip_total_length, 52);
    EXPECT_EQ(f[i].tcp_header_length, 32u);
    EXPECT_EQ(f[i].tcp_options, options);
    EXPECT_EQ(f[i].window, 64240);
    EXPECT_EQ(sink.frames()[i].bytes.size(), 66u);
  }
  EXPECT_EQ(f[2].ip_total_length, 40);
  EXPECT_EQ(f[2].tcp_header_length, 20u);
  EXPECT_EQ(f[2].window, 1026);

  EXPECT_EQ(f[0].flags, syn);
  EXPECT_EQ(f[1].flags, syn | ack);
  EXPECT_EQ(f[2].flags, ack);
  EXPECT_EQ(f[0].ack, 0u);
  EXPECT_EQ(f[1].ack, f[0].seq + 1);
  EXPECT_EQ(f[2].seq, f[0].seq + 1);
  EXPECT_EQ(f[2].ack, f[1].seq + 1);

  EXPECT_EQ(f[0].src, 0x0a000002u);
  EXPECT_EQ(f[0].dst, 0x0a000001u);
  EXPECT_EQ(f[0].src_port, 50123);
  EXPECT_EQ(f[0].dst_port, 7777);
  EXPECT_EQ(f[1].src_port, 7777);
  for (const auto& p : f) {
    EXPECT_EQ(p.ethertype, 0x0800);
    EXPECT_EQ(p.version_ihl, 0x45);
    EXPECT_EQ(p.ttl, 128);
    EXPECT_EQ(p.protocol, 6);
    EXPECT_EQ(p.ip_flags_fragment, 0x4000);  // DF
  }
  for (const auto& fr : sink.frames()) EXPECT_EQ(fr.time, at(5));
}

TEST(FrameSynthesizer, MacsDerivedFromAddresses) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  const auto f = parse_all(sink);
  const std::array<std::uint8_t, 6> cmac{0x02, 0x00, 10, 0, 0, 2};
  const std::array<std::uint8_t, 6> smac{0x02, 0x00, 10, 0, 0, 1};
  EXPECT_EQ(f[0].src_mac, cmac);
  EXPECT_EQ(f[0].dst_mac, smac);
  EXPECT_EQ(f[1].src_mac, smac);
  EXPECT_EQ(f[1].dst_mac, cmac);
  EXPECT_EQ(frame_synthesizer::mac_for(client), cmac);
}

TEST(FrameSynthesizer, ChecksumsAreCorrect) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(84)), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(2), server, client, bytes(101, 3)), capture_error::none);  // odd length
  ASSERT_EQ(s.tcp_data(at(3), client, server, bytes(4000, 9)), capture_error::none);
  ASSERT_EQ(s.tcp_pure_ack(at(4), server, client), capture_error::none);
  ASSERT_EQ(s.udp(at(5), ep(10, 0, 0, 1, 49517), ep(10, 0, 0, 2, 2500), bytes(8)), capture_error::none);
  ASSERT_EQ(s.udp(at(6), ep(10, 0, 0, 1, 49517), ep(10, 0, 0, 2, 2500), bytes(13, 1)), capture_error::none);
  ASSERT_EQ(s.tcp_close(at(7), client, server), capture_error::none);

  for (std::size_t i = 0; i < sink.frames().size(); ++i) {
    SCOPED_TRACE(i);
    const auto& raw = sink.frames()[i].bytes;
    const parsed_frame p = parse(raw);
    EXPECT_TRUE(p.ip_checksum_ok);
    EXPECT_TRUE(p.l4_checksum_ok);
    EXPECT_NE(p.ip_checksum, 0);
    EXPECT_EQ(p.ip_total_length + 14u, raw.size());

    // Recompute each checksum from scratch with the field zeroed.
    std::vector<std::uint8_t> ip(raw.begin() + 14, raw.begin() + 34);
    ip[10] = ip[11] = 0;
    EXPECT_EQ(p.ip_checksum, static_cast<std::uint16_t>(~test::ones_sum(ip)));

    std::vector<std::uint8_t> l4(raw.begin() + 34, raw.end());
    const std::size_t field = p.protocol == 6 ? 16 : 6;
    l4[field] = l4[field + 1] = 0;
    std::vector<std::uint8_t> pseudo(raw.begin() + 26, raw.begin() + 34);  // src, dst
    pseudo.push_back(0);
    pseudo.push_back(p.protocol);
    pseudo.push_back(static_cast<std::uint8_t>(l4.size() >> 8));
    pseudo.push_back(static_cast<std::uint8_t>(l4.size()));
    pseudo.insert(pseudo.end(), l4.begin(), l4.end());
    auto expected = static_cast<std::uint16_t>(~test::ones_sum(pseudo));
    if (p.protocol == 17 && expected == 0) expected = 0xffff;
    EXPECT_EQ(p.l4_checksum, expected);
  }
}

TEST(FrameSynthesizer, MultiSegmentPayloadKeepsSequenceContinuity) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  const auto hs = parse_all(sink);
  const std::uint32_t c_next = hs[2].seq;
  const std::uint32_t s_next = hs[1].seq + 1;
  sink.clear();

  const auto payload = bytes(4000, 42);
  ASSERT_EQ(s.tcp_data(at(1), client, server, payload), capture_error::none);
  const auto f = parse_all(sink);
  ASSERT_EQ(f.size(), 3u);
  const std::size_t sizes[] = {1460, 1460, 1080};
  std::uint32_t expect_seq = c_next;
  std::vector<std::uint8_t> joined;
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(f[i].payload.size(), sizes[i]);
    EXPECT_EQ(f[i].seq, expect_seq);
    EXPECT_EQ(f[i].ack, s_next);  // nothing received from the server yet
    EXPECT_EQ(f[i].ip_total_length, 40 + sizes[i]);
    EXPECT_EQ(f[i].flags, i == 2 ? (psh | ack) : ack);
    EXPECT_EQ(f[i].tcp_header_length, 20u);
    if (i > 0) {
      EXPECT_EQ(f[i].ip_id, static_cast<std::uint16_t>(f[i - 1].ip_id + 1));
    }
    expect_seq += static_cast<std::uint32_t>(sizes[i]);
    joined.insert(joined.end(), f[i].payload.begin(), f[i].payload.end());
  }
  EXPECT_EQ(joined, payload);

  // The server's reply acknowledges all 4000 bytes, and its own sequence
  // continues from its SYN.
  sink.clear();
  ASSERT_EQ(s.tcp_data(at(2), server, client, bytes(100)), capture_error::none);
  auto r = parse_all(sink);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].seq, s_next);
  EXPECT_EQ(r[0].ack, c_next + 4000);
  EXPECT_EQ(r[0].flags, psh | ack);

  // A pure ACK from the client covers the reply.
  sink.clear();
  ASSERT_EQ(s.tcp_pure_ack(at(3), client, server), capture_error::none);
  r = parse_all(sink);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].seq, c_next + 4000);
  EXPECT_EQ(r[0].ack, s_next + 100);
  EXPECT_EQ(r[0].flags, ack);
  EXPECT_TRUE(r[0].payload.empty());
}

TEST(FrameSynthesizer, CloseIsFourSegments) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(10)), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(2), server, client, bytes(20)), capture_error::none);
  const auto before = parse_all(sink);
  const std::uint32_t c_next = before[3].seq + 10;
  const std::uint32_t s_next = before[4].seq + 20;
  sink.clear();

  // The server closes.
  ASSERT_EQ(s.tcp_close(at(3), server, client), capture_error::none);
  const auto f = parse_all(sink);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].flags, fin | ack);
  EXPECT_EQ(f[0].src_port, 7777);
  EXPECT_EQ(f[0].seq, s_next);
  EXPECT_EQ(f[0].ack, c_next);
  EXPECT_EQ(f[1].flags, ack);
  EXPECT_EQ(f[1].src_port, 50123);
  EXPECT_EQ(f[1].seq, c_next);
  EXPECT_EQ(f[1].ack, s_next + 1);
  EXPECT_EQ(f[2].flags, fin | ack);
  EXPECT_EQ(f[2].src_port, 50123);
  EXPECT_EQ(f[2].seq, c_next);
  EXPECT_EQ(f[2].ack, s_next + 1);
  EXPECT_EQ(f[3].flags, ack);
  EXPECT_EQ(f[3].src_port, 7777);
  EXPECT_EQ(f[3].seq, s_next + 1);
  EXPECT_EQ(f[3].ack, c_next + 1);
  for (const auto& p : f) EXPECT_EQ(p.ip_total_length, 40);

  EXPECT_FALSE(s.is_open(client, server));
  EXPECT_EQ(s.tcp_data(at(4), client, server, bytes(1)), capture_error::no_connection);
  // The pair can be opened again, as a new flow.
  EXPECT_EQ(s.tcp_open(at(5), client, server), capture_error::none);
  EXPECT_EQ(s.flows().size(), 2u);
  EXPECT_FALSE(s.flows()[0].open);
  EXPECT_TRUE(s.flows()[1].open);
}

TEST(FrameSynthesizer, UdpDatagram) {
  memory_sink sink;
  frame_synthesizer s(sink);
  const std::vector<std::uint8_t> ctx = {'l', 'i', 'b', 'm', 'a', 'p', 'i', 1};
  ASSERT_EQ(s.udp(at(0), ep(10, 0, 0, 1, 49517), ep(10, 0, 0, 2, 2500), ctx), capture_error::none);
  ASSERT_EQ(sink.frames().size(), 1u);
  EXPECT_EQ(sink.frames()[0].bytes.size(), 50u);  // the reference's push datagram frame
  const auto p = parse(sink.frames()[0].bytes);
  EXPECT_EQ(p.protocol, 17);
  EXPECT_EQ(p.udp_length, 16);
  EXPECT_EQ(p.ip_total_length, 36);
  EXPECT_EQ(p.src_port, 49517);
  EXPECT_EQ(p.dst_port, 2500);
  EXPECT_EQ(p.payload, ctx);
  EXPECT_EQ(s.totals().ip_bytes, 36u);
  EXPECT_EQ(s.totals().ethernet_bytes, 50u);
  EXPECT_EQ(s.totals().control_frames, 0u);
}

TEST(FrameSynthesizer, IpIdIncrementsPerHost) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(5)), capture_error::none);
  const auto f = parse_all(sink);
  // Client frames 0, 2, 3; server frame 1.
  EXPECT_EQ(f[2].ip_id, static_cast<std::uint16_t>(f[0].ip_id + 1));
  EXPECT_EQ(f[3].ip_id, static_cast<std::uint16_t>(f[0].ip_id + 2));
  EXPECT_NE(f[1].ip_id, f[0].ip_id);
}

TEST(FrameSynthesizer, CountersMatchFrames) {
  memory_sink sink;
  frame_synthesizer s(sink);
  const ip_endpoint udp_client = ep(10, 0, 0, 2, 2500);
  const ip_endpoint udp_server = ep(10, 0, 0, 1, 49517);
  const ip_endpoint other_client = ep(10, 0, 0, 3, 50000);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(84)), capture_error::none);   // poll request
  ASSERT_EQ(s.tcp_data(at(2), server, client, bytes(100)), capture_error::none);  // poll response
  ASSERT_EQ(s.tcp_pure_ack(at(3), client, server), capture_error::none);
  ASSERT_EQ(s.udp(at(4), udp_server, udp_client, bytes(8)), capture_error::none);
  ASSERT_EQ(s.udp(at(5), udp_client, udp_server, bytes(8)), capture_error::none);
  ASSERT_EQ(s.tcp_open(at(6), other_client, server), capture_error::none);
  ASSERT_EQ(s.tcp_close(at(7), client, server), capture_error::none);

  std::uint64_t eth = 0;
  for (const auto& f : sink.frames()) eth += f.bytes.size();
  const auto& t = s.totals();
  EXPECT_EQ(t.frames, sink.frames().size());
  EXPECT_EQ(t.ethernet_bytes, eth);
  EXPECT_EQ(t.ip_bytes, eth - 14 * t.frames);
  EXPECT_EQ(t.payload_bytes, 84u + 100u + 8u + 8u);

  ASSERT_EQ(s.flows().size(), 3u);
  const flow_stats& first = s.flows()[0];
  EXPECT_EQ(first.proto, transport::tcp);
  // to_server: SYN 52, ACK 40, request 124, pure ACK 40, FIN 40, last ACK 40.
  EXPECT_EQ(first.from_initiator.ip_bytes, 52u + 40 + 124 + 40 + 40 + 40);
  EXPECT_EQ(first.from_initiator.frames, 6u);
  EXPECT_EQ(first.from_initiator.control_frames, 5u);
  // to_client: SYN-ACK 52, response 140, ACK 40, FIN 40.
  EXPECT_EQ(first.from_responder.ip_bytes, 52u + 140 + 40 + 40);
  EXPECT_EQ(first.from_responder.ethernet_bytes, 52u + 140 + 40 + 40 + 4 * 14);
  EXPECT_EQ(first.from_responder.payload_bytes, 100u);

  const flow_stats& udp_flow = s.flows()[1];
  EXPECT_EQ(udp_flow.proto, transport::udp);
  EXPECT_EQ(udp_flow.initiator.port, 49517);  // the first sender
  EXPECT_EQ(udp_flow.from_initiator.ip_bytes, 36u);
  EXPECT_EQ(udp_flow.from_responder.ip_bytes, 36u);

  EXPECT_EQ(s.counters_for(client), first.total());
  EXPECT_EQ(s.counters_for(udp_client), udp_flow.total());
  traffic_counters host = first.total();
  host += udp_flow.total();
  EXPECT_EQ(s.counters_for_host(client), host);
  EXPECT_EQ(s.counters_for(other_client).frames, 3u);
  EXPECT_EQ(s.counters_for(other_client).ip_bytes, 52u + 52 + 40);
  EXPECT_EQ(s.counters_for(server).frames, first.total().frames + 3);
}

TEST(FrameSynthesizer, RejectsBadCalls) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ip_endpoint v6 = client;
  v6.is_v6 = true;
  EXPECT_EQ(s.tcp_open(at(0), v6, server), capture_error::ipv6_unsupported);
  EXPECT_EQ(s.udp(at(0), client, v6, bytes(1)), capture_error::ipv6_unsupported);
  EXPECT_EQ(s.tcp_open(at(0), client, client), capture_error::same_endpoint);
  EXPECT_EQ(s.tcp_data(at(0), client, server, bytes(1)), capture_error::no_connection);
  EXPECT_EQ(s.tcp_pure_ack(at(0), client, server), capture_error::no_connection);
  EXPECT_EQ(s.tcp_close(at(0), client, server), capture_error::no_connection);
  EXPECT_EQ(s.udp(at(0), client, server, bytes(1473)), capture_error::payload_too_large);
  EXPECT_TRUE(sink.frames().empty());
  EXPECT_EQ(s.totals(), traffic_counters{});

  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  EXPECT_EQ(s.tcp_open(at(0), client, server), capture_error::connection_exists);
  EXPECT_EQ(s.tcp_open(at(0), server, client), capture_error::connection_exists);
  EXPECT_EQ(s.tcp_data(at(0), v6, server, bytes(1)), capture_error::ipv6_unsupported);
  EXPECT_EQ(s.tcp_data(at(0), client, server, {}), capture_error::none);  // nothing to send
  EXPECT_EQ(s.udp(at(0), client, server, bytes(1472)), capture_error::none);
  EXPECT_EQ(sink.frames().size(), 4u);
}

TEST(FrameSynthesizer, InsertsReceiverAckBeforeWindowFills) {
  memory_sink sink;
  frame_synthesizer s(sink);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  // The server has only advertised its 64240-byte SYN window: 44 full segments fill it.
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(100000)), capture_error::none);
  EXPECT_EQ(s.window_acks(), 1u);
  const auto f = parse_all(sink);
  std::size_t ack_index = 0;
  for (std::size_t i = 3; i < f.size(); ++i)
    if (f[i].src_port == 7777) ack_index = i;
  ASSERT_EQ(ack_index, 3u + 43);  // after 43 segments = 62780 bytes in flight
  EXPECT_EQ(f[ack_index].ack, f[ack_index - 1].seq + 1460);
  EXPECT_TRUE(f[ack_index].payload.empty());
  EXPECT_EQ(s.totals().payload_bytes, 100000u);
}

TEST(FrameSynthesizer, CustomMss) {
  memory_sink sink;
  synthesizer_options o;
  o.mss = 536;
  frame_synthesizer s(sink, o);
  ASSERT_EQ(s.tcp_open(at(0), client, server), capture_error::none);
  EXPECT_EQ(parse(sink.frames()[0].bytes).tcp_options[3], 0x18);  // 536 = 0x0218
  ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(1000)), capture_error::none);
  EXPECT_EQ(sink.frames().size(), 5u);
  EXPECT_EQ(parse(sink.frames()[3].bytes).payload.size(), 536u);
  EXPECT_EQ(parse(sink.frames()[4].bytes).payload.size(), 464u);
}

std::vector<std::uint8_t> be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}

// NOP, NOP, timestamps (RFC 7323 appendix A's layout).
std::vector<std::uint8_t> timestamp_options(std::uint32_t tsval, std::uint32_t tsecr) {
  std::vector<std::uint8_t> o = {1, 1, 8, 10};
  for (auto v : {tsval, tsecr})
    for (auto b : be32(v)) o.push_back(b);
  return o;
}

synthesizer_options linux_options() {
  synthesizer_options o;
  o.syn_options_len = 20;
  o.tcp_options_len = 12;
  return o;
}

TEST(FrameSynthesizer, LinuxOptionsCarryTimestampsOnEverySegment) {
  memory_sink sink;
  frame_synthesizer s(sink, linux_options());
  ASSERT_EQ(s.tcp_open(at(5), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(1234), client, server, bytes(100)), capture_error::none);
  ASSERT_EQ(s.tcp_data(at(2000), server, client, bytes(50)), capture_error::none);
  ASSERT_EQ(s.tcp_pure_ack(at(2100), client, server), capture_error::none);
  ASSERT_EQ(s.tcp_close(at(3000), client, server), capture_error::none);
  const auto f = parse_all(sink);
  ASSERT_EQ(f.size(), 10u);

  // SYN: MSS, SACK-permitted, timestamps (TSecr 0: nothing received yet), NOP, window scale.
  std::vector<std::uint8_t> syn_options = {2, 4, 0x05, 0xb4, 4, 2, 8, 10};
  for (auto v : {5u, 0u})
    for (auto b : be32(v)) syn_options.push_back(b);
  syn_options.insert(syn_options.end(), {1, 3, 3, 8});
  EXPECT_EQ(f[0].tcp_options, syn_options);
  // SYN-ACK: the same layout, echoing the SYN's TSval.
  std::copy_n(be32(5).begin(), 4, syn_options.begin() + 12);
  EXPECT_EQ(f[1].tcp_options, syn_options);
  for (int i : {0, 1}) {
    EXPECT_EQ(f[i].tcp_header_length, 40u);
    EXPECT_EQ(f[i].ip_total_length, 60);
  }

  // Every later segment: NOP, NOP, TSval (ms of its time), TSecr (the peer's latest TSval).
  EXPECT_EQ(f[2].tcp_options, timestamp_options(5, 5));        // third ACK
  EXPECT_EQ(f[3].tcp_options, timestamp_options(1234, 5));     // client data
  EXPECT_EQ(f[4].tcp_options, timestamp_options(2000, 1234));  // server data
  EXPECT_EQ(f[5].tcp_options, timestamp_options(2100, 2000));  // client pure ACK
  EXPECT_EQ(f[6].tcp_options, timestamp_options(3000, 2000));  // client FIN
  EXPECT_EQ(f[7].tcp_options, timestamp_options(3000, 3000));  // server ACK
  EXPECT_EQ(f[9].tcp_options, timestamp_options(3000, 3000));  // client's last ACK
  for (std::size_t i = 2; i < f.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(f[i].tcp_header_length, 32u);
    EXPECT_EQ(std::size_t{f[i].ip_total_length}, 52 + f[i].payload.size());
  }
  EXPECT_EQ(f[3].payload, bytes(100));
  for (const auto& p : f) {
    EXPECT_TRUE(p.ip_checksum_ok);
    EXPECT_TRUE(p.l4_checksum_ok);
  }
  // Counted as nudge's linux wire model counts: 20 option bytes on SYNs, 12 on the rest.
  EXPECT_EQ(s.totals().ip_bytes, 2u * 60 + 8u * 52 + 150);
  EXPECT_EQ(s.totals().control_ip_bytes, 2u * 60 + 6u * 52);
}

TEST(FrameSynthesizer, TimestampsWrapAtTwoToThe32Milliseconds) {
  memory_sink sink;
  frame_synthesizer s(sink, linux_options());
  const time_point late{std::chrono::milliseconds((std::int64_t{1} << 32) + 7)};
  ASSERT_EQ(s.tcp_open(late, client, server), capture_error::none);
  EXPECT_EQ(parse(sink.frames()[2].bytes).tcp_options, timestamp_options(7, 7));
}

TEST(FrameSynthesizer, RefusesOptionLengthsItCannotWrite) {
  EXPECT_EQ(validate(synthesizer_options{}), capture_error::none);
  EXPECT_EQ(validate(linux_options()), capture_error::none);
  for (auto [syn_len, tcp_len] : std::vector<std::pair<int, int>>{{12, 12}, {20, 0}, {12, 8}, {16, 0}, {0, 0}, {20, 20}}) {
    SCOPED_TRACE(std::to_string(syn_len) + "/" + std::to_string(tcp_len));
    synthesizer_options o;
    o.syn_options_len = static_cast<std::uint8_t>(syn_len);
    o.tcp_options_len = static_cast<std::uint8_t>(tcp_len);
    EXPECT_EQ(validate(o), capture_error::unsupported_tcp_options);
    memory_sink sink;
    frame_synthesizer s(sink, o);
    EXPECT_EQ(s.tcp_open(at(0), client, server), capture_error::unsupported_tcp_options);
    EXPECT_EQ(s.tcp_data(at(0), client, server, bytes(10)), capture_error::unsupported_tcp_options);
    EXPECT_EQ(s.tcp_pure_ack(at(0), client, server), capture_error::unsupported_tcp_options);
    EXPECT_EQ(s.tcp_close(at(0), client, server), capture_error::unsupported_tcp_options);
    EXPECT_TRUE(sink.frames().empty());
    EXPECT_EQ(s.totals().frames, 0u);
  }
}

}  // namespace
}  // namespace nudge::capture
