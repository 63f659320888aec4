#include <gtest/gtest.h>

#include "nudge/protocol/dcerpc.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::dcerpc;

namespace {
bind_pdu emsmdb_bind(std::uint32_t call_id) {
  bind_pdu b;
  b.call_id = call_id;
  presentation_context c;
  c.abstract_syntax = emsmdb_syntax();
  c.transfer_syntaxes.push_back(ndr_syntax());
  b.contexts.push_back(c);
  return b;
}
}  // namespace

TEST(dcerpc, bind_round_trip_is_72_bytes) {
  byte_buffer out;
  EXPECT_EQ(encode(out, emsmdb_bind(7)), 72u);
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.consumed, 72u);
  auto& b = std::get<bind_pdu>(d.value);
  EXPECT_EQ(b.call_id, 7u);
  ASSERT_EQ(b.contexts.size(), 1u);
  EXPECT_EQ(b.contexts[0].abstract_syntax, emsmdb_syntax());
  EXPECT_EQ(b.contexts[0].abstract_syntax.minor, 81);
  EXPECT_EQ(b.contexts[0].transfer_syntaxes.at(0), ndr_syntax());
}

TEST(dcerpc, guid_text_form_round_trips) {
  EXPECT_EQ(emsmdb_syntax().uuid.to_string(), "a4f1db00-ca47-1067-b31f-00dd010662da");
  EXPECT_EQ(async_emsmdb_syntax().uuid.to_string(), "5261574a-4572-206e-b268-6b199213b4e4");
  // NDR puts the first field little-endian on the wire.
  EXPECT_EQ(emsmdb_syntax().uuid.bytes[0], 0x00);
  EXPECT_EQ(emsmdb_syntax().uuid.bytes[3], 0xa4);
}

TEST(dcerpc, bind_ack_round_trip_matches_reference_size) {
  bind_ack_pdu a;
  a.call_id = 1;
  a.secondary_address = "7777";
  a.results.push_back({0, 0, ndr_syntax()});
  byte_buffer out;
  EXPECT_EQ(encode(out, a), 60u);  // exchange-protocol.md 3.2
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete()) << d.reason;
  auto& b = std::get<bind_ack_pdu>(d.value);
  EXPECT_EQ(b.secondary_address, "7777");
  ASSERT_EQ(b.results.size(), 1u);
  EXPECT_EQ(b.results[0].transfer_syntax, ndr_syntax());
}

TEST(dcerpc, bind_nak_round_trip) {
  byte_buffer out;
  encode(out, bind_nak_pdu{3, 4});
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(std::get<bind_nak_pdu>(d.value).reject_reason, 4);
  EXPECT_EQ(std::get<bind_nak_pdu>(d.value).call_id, 3u);
}

TEST(dcerpc, request_and_response_set_lengths_and_alloc_hint) {
  const byte_buffer stub = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  byte_buffer out;
  EXPECT_EQ(encode(out, request_pdu{9, 0, 0, 11, stub}), 34u);
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete());
  auto& r = std::get<request_pdu>(d.value);
  EXPECT_EQ(r.opnum, 11);
  EXPECT_EQ(r.call_id, 9u);
  EXPECT_EQ(r.alloc_hint, 10u);
  EXPECT_EQ(byte_buffer(r.stub.begin(), r.stub.end()), stub);
  EXPECT_EQ(out[8] | (out[9] << 8), 34);  // frag_length
  EXPECT_EQ(out[3], pfc::first_frag | pfc::last_frag);

  byte_buffer rsp;
  EXPECT_EQ(encode(rsp, response_pdu{9, 0, 0, stub}), 34u);
  auto dr = decode_pdu(rsp);
  ASSERT_TRUE(dr.complete());
  EXPECT_EQ(std::get<response_pdu>(dr.value).alloc_hint, 10u);
}

TEST(dcerpc, fault_is_32_bytes) {
  byte_buffer out;
  EXPECT_EQ(encode(out, fault_pdu{5, 0, fault_status::op_rng_error}), 32u);
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(std::get<fault_pdu>(d.value).status, fault_status::op_rng_error);
}

TEST(dcerpc, truncated_header_needs_more) {
  byte_buffer out;
  encode(out, emsmdb_bind(1));
  for (std::size_t n = 0; n < 16; ++n) EXPECT_TRUE(decode_pdu(bytes_view(out).first(n)).need_more()) << n;
}

TEST(dcerpc, frag_length_beyond_bytes_needs_more) {
  byte_buffer out;
  encode(out, emsmdb_bind(1));
  EXPECT_TRUE(decode_pdu(bytes_view(out).first(out.size() - 1)).need_more());
}

TEST(dcerpc, frag_length_smaller_than_content_is_malformed) {
  byte_buffer out;
  encode(out, emsmdb_bind(1));
  out[8] = 40;  // claims 40 bytes: the context list runs past it
  auto d = decode_pdu(out);
  EXPECT_TRUE(d.malformed());
  EXPECT_NE(d.reason.find("frag_length"), std::string_view::npos) << d.reason;
  out[8] = 10;  // smaller than the common header
  EXPECT_TRUE(decode_pdu(out).malformed());
}

TEST(dcerpc, unknown_packet_type_is_malformed) {
  byte_buffer out;
  encode(out, request_pdu{1, 0, 0, 4, {}});
  out[2] = 99;
  auto d = decode_pdu(out);
  EXPECT_TRUE(d.malformed());
  EXPECT_NE(d.reason.find("packet type"), std::string_view::npos);
}

TEST(dcerpc, wrong_version_and_big_endian_are_malformed) {
  byte_buffer out;
  encode(out, request_pdu{1, 0, 0, 4, {}});
  out[0] = 4;
  EXPECT_TRUE(decode_pdu(out).malformed());
  out[0] = 5;
  out[4] = 0x00;  // big-endian drep
  EXPECT_TRUE(decode_pdu(out).malformed());
}

TEST(dcerpc, fragmented_and_authenticated_requests_are_refused) {
  byte_buffer out;
  encode(out, request_pdu{1, 0, 0, 4, {}});
  out[3] = pfc::first_frag;
  EXPECT_TRUE(decode_pdu(out).malformed());
  out[3] = pfc::first_frag | pfc::last_frag;
  out[10] = 16;  // auth_length
  EXPECT_TRUE(decode_pdu(out).malformed());
}

TEST(dcerpc, two_pdus_in_one_buffer_decode_one_at_a_time) {
  byte_buffer out;
  encode(out, request_pdu{1, 0, 0, 6, {}});
  encode(out, request_pdu{2, 0, 0, 6, {}});
  auto first = decode_pdu(out);
  ASSERT_TRUE(first.complete());
  EXPECT_EQ(first.consumed, 24u);
  auto second = decode_pdu(bytes_view(out).subspan(first.consumed));
  ASSERT_TRUE(second.complete());
  EXPECT_EQ(std::get<request_pdu>(second.value).call_id, 2u);
}
