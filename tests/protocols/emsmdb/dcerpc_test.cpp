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

TEST(dcerpc, fragments_decode_with_their_flags_and_authentication_is_refused) {
  byte_buffer out;
  encode(out, request_pdu{1, 0, 0, 4, {}});
  out[3] = pfc::first_frag;
  auto d = decode_pdu(out);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_TRUE(std::get<request_pdu>(d.value).first_fragment());
  EXPECT_FALSE(std::get<request_pdu>(d.value).last_fragment());
  out[3] = pfc::first_frag | pfc::last_frag;
  out[10] = 16;  // auth_length
  EXPECT_TRUE(decode_pdu(out).malformed());
}

namespace {
byte_buffer counting_stub(std::size_t n) {
  byte_buffer stub(n);
  for (std::size_t i = 0; i < n; ++i) stub[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return stub;
}

struct cut_fragment {
  std::uint8_t flags;
  std::uint32_t alloc_hint;
  std::size_t size;
  byte_buffer stub;
};

// Decodes every fragment in `bytes`, checking each one's frag_length.
std::vector<cut_fragment> decode_all_responses(const byte_buffer& bytes) {
  std::vector<cut_fragment> out;
  std::size_t used = 0;
  while (used < bytes.size()) {
    auto d = decode_pdu(bytes_view(bytes).subspan(used));
    EXPECT_TRUE(d.complete()) << d.reason;
    if (!d.complete()) break;
    const auto& r = std::get<response_pdu>(d.value);
    out.push_back({r.pfc_flags, r.alloc_hint, d.consumed, byte_buffer(r.stub.begin(), r.stub.end())});
    used += d.consumed;
  }
  return out;
}
}  // namespace

TEST(dcerpc, a_long_response_is_cut_at_max_frag_and_joins_back) {
  const byte_buffer stub = counting_stub(100);
  byte_buffer out;
  // 64-byte fragments: 40 stub bytes each (64 - 24, a multiple of 8), then the rest.
  EXPECT_EQ(encode_response_fragments(out, 9, 0, stub, 64), 3u);
  const auto frags = decode_all_responses(out);
  ASSERT_EQ(frags.size(), 3u);
  const std::uint8_t want_flags[] = {pfc::first_frag, 0, pfc::last_frag};
  const std::size_t want_stub[] = {40, 40, 20};
  std::size_t remaining = stub.size();
  stub_reassembler joiner(1000);
  stub_reassembler::result joined;
  for (std::size_t i = 0; i < frags.size(); ++i) {
    EXPECT_LE(frags[i].size, 64u) << i;
    EXPECT_EQ(frags[i].flags, want_flags[i]) << i;
    EXPECT_EQ(frags[i].stub.size(), want_stub[i]) << i;
    EXPECT_EQ(frags[i].alloc_hint, remaining) << i;  // what is still to come
    remaining -= frags[i].stub.size();
    joined = joiner.add(9, 0, frags[i].flags, frags[i].stub);
    EXPECT_EQ(joined.outcome, i + 1 < frags.size() ? stub_reassembler::status::need_more
                                                   : stub_reassembler::status::whole);
  }
  ASSERT_EQ(joined.outcome, stub_reassembler::status::whole);
  EXPECT_TRUE(joined.multi_fragment);
  const auto whole = joined.stub();
  EXPECT_EQ(byte_buffer(whole.begin(), whole.end()), stub);
  EXPECT_FALSE(joiner.in_progress());
  EXPECT_EQ(joiner.buffered(), 0u);
}

TEST(dcerpc, a_short_stub_stays_one_fragment_and_is_not_copied) {
  const byte_buffer stub = counting_stub(40);
  byte_buffer out;
  EXPECT_EQ(encode_request_fragments(out, 2, 0, 11, stub, 64), 1u);
  byte_buffer same;
  encode(same, request_pdu{2, 0, 0, 11, stub});
  EXPECT_EQ(out, same);  // identical to the single-PDU encoder
  stub_reassembler joiner(1000);
  auto r = joiner.add(2, 11, pfc::single_frag, stub);
  ASSERT_EQ(r.outcome, stub_reassembler::status::whole);
  EXPECT_FALSE(r.multi_fragment);
  EXPECT_EQ(r.stub().data(), stub.data());
}

TEST(dcerpc, fragment_capacity_keeps_eight_byte_alignment) {
  EXPECT_EQ(fragment_stub_capacity(5840), (5840u - 24u) / 8u * 8u);
  EXPECT_EQ(fragment_stub_capacity(1432), 1408u);
  EXPECT_EQ(fragment_stub_capacity(35), 8u);
  EXPECT_EQ(fragment_stub_capacity(31), 0u);  // no room for 8 stub bytes
}

TEST(dcerpc, reassembly_past_its_bound_is_refused_and_frees_the_buffer) {
  stub_reassembler joiner(100);
  const byte_buffer part = counting_stub(40);
  EXPECT_EQ(joiner.add(1, 0, pfc::first_frag, part).outcome, stub_reassembler::status::need_more);
  EXPECT_EQ(joiner.add(1, 0, 0, part).outcome, stub_reassembler::status::need_more);
  EXPECT_EQ(joiner.buffered(), 80u);
  auto r = joiner.add(1, 0, 0, part);  // 120 > 100
  EXPECT_EQ(r.outcome, stub_reassembler::status::too_large);
  EXPECT_FALSE(joiner.in_progress());
  EXPECT_EQ(joiner.buffered(), 0u);
  // A first fragment alone larger than the bound is refused before it is copied.
  EXPECT_EQ(joiner.add(2, 0, pfc::first_frag, counting_stub(101)).outcome, stub_reassembler::status::too_large);
  EXPECT_EQ(joiner.buffered(), 0u);
  // Exactly the bound is fine.
  EXPECT_EQ(joiner.add(3, 0, pfc::first_frag, counting_stub(60)).outcome, stub_reassembler::status::need_more);
  EXPECT_EQ(joiner.add(3, 0, pfc::last_frag, part).outcome, stub_reassembler::status::whole);
}

TEST(dcerpc, fragments_out_of_sequence_are_refused) {
  const byte_buffer part = counting_stub(8);
  using st = stub_reassembler::status;
  stub_reassembler joiner(100);
  EXPECT_EQ(joiner.add(1, 0, pfc::last_frag, part).outcome, st::out_of_sequence);  // no first fragment
  EXPECT_EQ(joiner.add(1, 0, 0, part).outcome, st::out_of_sequence);
  ASSERT_EQ(joiner.add(1, 7, pfc::first_frag, part).outcome, st::need_more);
  EXPECT_EQ(joiner.add(2, 7, pfc::last_frag, part).outcome, st::out_of_sequence);  // another call id
  ASSERT_EQ(joiner.add(1, 7, pfc::first_frag, part).outcome, st::need_more);
  EXPECT_EQ(joiner.add(1, 8, pfc::last_frag, part).outcome, st::out_of_sequence);  // another opnum/context
  ASSERT_EQ(joiner.add(1, 7, pfc::first_frag, part).outcome, st::need_more);
  EXPECT_EQ(joiner.add(3, 7, pfc::single_frag, part).outcome, st::out_of_sequence);  // a new call too early
  EXPECT_FALSE(joiner.in_progress());
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
