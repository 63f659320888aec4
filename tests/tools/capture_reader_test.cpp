// The capture layer shared by nudge-pcap and nudge-replay (tools/capture):
// TCP reassembly into DCE/RPC PDUs whatever the segment order, and the
// failures of opening a capture as values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nudge/capture_reader/capture_file.hpp"
#include "nudge/capture_reader/tcp_flows.hpp"

namespace cr = nudge::capture_reader;
using nudge::time_point;
using nudge::protocol::byte_buffer;
using nudge::protocol::bytes_view;
using nudge::protocol::ip_endpoint;
namespace dcerpc = nudge::protocol::dcerpc;

namespace {

byte_buffer request_of(std::uint32_t call_id, std::size_t stub_bytes) {
  const byte_buffer stub(stub_bytes, static_cast<std::uint8_t>(call_id));
  dcerpc::request_pdu r;
  r.call_id = call_id;
  r.stub = stub;
  byte_buffer out;
  dcerpc::encode(out, r);
  return out;
}

cr::packet segment(std::uint32_t seq, std::uint8_t flags, bytes_view payload, int at_ms) {
  cr::packet p;
  p.protocol = cr::ip_proto_tcp;
  p.seq = seq;
  p.tcp_flags = flags;
  p.payload = payload;
  p.payload_length = static_cast<std::uint32_t>(payload.size());
  p.ts = time_point(std::chrono::milliseconds(at_ms));
  return p;
}

}  // namespace

TEST(capture_reader, tcp_flows_reassemble_reordered_and_retransmitted_segments_into_pdus) {
  const ip_endpoint client = ip_endpoint::v4(10, 0, 0, 2, 40000), server = ip_endpoint::v4(10, 0, 0, 1, 7777);
  byte_buffer stream = request_of(1, 30);
  const byte_buffer second = request_of(2, 100);
  stream.insert(stream.end(), second.begin(), second.end());
  const bytes_view s(stream);
  const std::uint32_t isn = 1000;

  cr::tcp_flows flows;
  flows.add(segment(isn, cr::tcp_flag::syn, {}, 0), client, server);
  // Bytes [50, end) first, then [0, 50), then [0, 50) again (a retransmission).
  flows.add(segment(isn + 1 + 50, cr::tcp_flag::ack, s.subspan(50), 1), client, server);
  flows.add(segment(isn + 1, cr::tcp_flag::ack, s.first(50), 2), client, server);
  flows.add(segment(isn + 1, cr::tcp_flag::ack, s.first(50), 3), client, server);

  ASSERT_EQ(flows.flows().size(), 1u);
  const cr::tcp_flow& f = *flows.flows().front();
  EXPECT_EQ(f.client_dir, 0);
  EXPECT_FALSE(f.not_dcerpc);
  ASSERT_EQ(f.pdus.size(), 2u);
  EXPECT_EQ(f.pdus[0].bytes, request_of(1, 30));
  EXPECT_EQ(f.pdus[1].bytes, second);
  // Each PDU is stamped with the arrival of its first byte: [0, 50) came at 2 ms,
  // byte 54 (the second PDU's first) in the early segment at 1 ms.
  EXPECT_EQ(f.pdus[0].t, time_point(std::chrono::milliseconds(2)));
  EXPECT_EQ(f.pdus[1].t, time_point(std::chrono::milliseconds(1)));
}

TEST(capture_reader, bytes_that_are_not_dce_rpc_stop_the_framing) {
  const byte_buffer junk(64, 0xEE);
  cr::tcp_flows flows;
  flows.add(segment(5, cr::tcp_flag::ack, junk, 0), ip_endpoint::v4(10, 0, 0, 2, 1), ip_endpoint::v4(10, 0, 0, 1, 2));
  ASSERT_EQ(flows.flows().size(), 1u);
  EXPECT_TRUE(flows.flows().front()->not_dcerpc);
  EXPECT_TRUE(flows.flows().front()->pdus.empty());
}

TEST(capture_reader, opening_what_is_not_a_capture_fails_with_the_reason) {
  const auto dir = std::filesystem::temp_directory_path() / "nudge_capture_reader_test";
  std::filesystem::create_directories(dir);
  const auto missing = cr::capture_file::open(dir / "missing.pcap");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no such file"), std::string::npos);
  const auto empty_path = dir / "empty.pcap";
  std::ofstream(empty_path).close();
  const auto empty = cr::capture_file::open(empty_path);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty file"), std::string::npos);
  const auto text_path = dir / "text.pcap";
  std::ofstream(text_path) << "hello, this is not a capture at all";
  const auto text = cr::capture_file::open(text_path);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("not a pcap or pcapng capture"), std::string::npos);
  std::filesystem::remove_all(dir);
}
