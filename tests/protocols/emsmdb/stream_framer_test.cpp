// dcerpc::stream_framer: whole PDUs out of a byte stream cut anywhere, a
// bounded incomplete tail, and a refused stream stays refused until cleared.
#include <gtest/gtest.h>

#include <vector>

#include "nudge/protocol/dcerpc.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::dcerpc;
using status = stream_framer::status;

namespace {

byte_buffer request_of(std::uint32_t call_id, std::size_t stub_bytes) {
  byte_buffer stub(stub_bytes);
  for (std::size_t i = 0; i < stub.size(); ++i) stub[i] = static_cast<std::uint8_t>(i * 7 + call_id);
  request_pdu r;
  r.call_id = call_id;
  r.opnum = 11;
  r.stub = stub;
  byte_buffer out;
  encode(out, r);
  return out;
}

/// Feeds `stream` in pieces of `piece` bytes and returns the PDUs framed, copied.
std::vector<byte_buffer> frame_in_pieces(stream_framer& framer, const byte_buffer& stream, std::size_t piece) {
  std::vector<byte_buffer> pdus;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    // A fresh copy per piece, destroyed after it: the framer must not keep a view of it.
    const byte_buffer chunk(stream.begin() + static_cast<std::ptrdiff_t>(at),
                            stream.begin() + static_cast<std::ptrdiff_t>(std::min(stream.size(), at + piece)));
    framer.append(chunk);
    for (auto f = framer.next(); f.outcome == status::complete; f = framer.next())
      pdus.emplace_back(f.pdu.begin(), f.pdu.end());
  }
  return pdus;
}

}  // namespace

TEST(stream_framer, frames_the_same_pdus_whatever_the_cuts) {
  const std::vector<byte_buffer> sent = {request_of(1, 0), request_of(2, 40), request_of(3, 1000), request_of(4, 9)};
  byte_buffer stream;
  for (const auto& p : sent) stream.insert(stream.end(), p.begin(), p.end());
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{16}, std::size_t{100}, stream.size()}) {
    stream_framer framer;
    EXPECT_EQ(frame_in_pieces(framer, stream, piece), sent) << "pieces of " << piece;
    EXPECT_EQ(framer.pending(), 0u);
  }
}

TEST(stream_framer, holds_only_the_incomplete_pdu_and_says_need_more) {
  const byte_buffer a = request_of(1, 20), b = request_of(2, 300);
  byte_buffer stream = a;
  stream.insert(stream.end(), b.begin(), b.begin() + 50);
  stream_framer framer;
  framer.append(stream);
  auto f = framer.next();
  ASSERT_EQ(f.outcome, status::complete);
  EXPECT_EQ(byte_buffer(f.pdu.begin(), f.pdu.end()), a);
  EXPECT_EQ(framer.next().outcome, status::need_more);
  EXPECT_EQ(framer.pending(), 50u);
  framer.append(bytes_view(b).subspan(50));
  f = framer.next();
  ASSERT_EQ(f.outcome, status::complete);
  EXPECT_EQ(byte_buffer(f.pdu.begin(), f.pdu.end()), b);
  EXPECT_EQ(framer.next().outcome, status::need_more);
}

TEST(stream_framer, a_pdu_longer_than_the_limit_is_malformed_before_it_is_held) {
  const byte_buffer big = request_of(1, 2000);
  stream_framer framer(1024);
  framer.append(bytes_view(big).first(16));
  const auto f = framer.next();
  EXPECT_EQ(f.outcome, status::malformed);
  EXPECT_FALSE(f.reason.empty());
  EXPECT_EQ(framer.pending(), 16u);
  // Refused for good: more bytes do not restart it.
  framer.append(bytes_view(big).subspan(16));
  EXPECT_EQ(framer.next().outcome, status::malformed);
  framer.clear();
  EXPECT_EQ(framer.pending(), 0u);
  const byte_buffer small = request_of(2, 100);
  framer.append(small);
  EXPECT_EQ(framer.next().outcome, status::complete);
}

TEST(stream_framer, strict_refuses_what_decode_common_header_refuses_with_its_reason) {
  byte_buffer p = request_of(1, 8);
  p[1] = 1;  // version 5.1
  stream_framer strict;
  strict.append(p);
  const auto f = strict.next();
  ASSERT_EQ(f.outcome, status::malformed);
  EXPECT_EQ(f.reason, decode_common_header(p).reason);
  // The capture reader's lenient rule takes 5.1 ...
  stream_framer lenient(stream_framer::max_frag_length, stream_framer::header_rule::lenient);
  lenient.append(p);
  EXPECT_EQ(lenient.next().outcome, status::complete);
  // ... but not a connectionless packet type.
  p[2] = 5;
  lenient.clear();
  lenient.append(p);
  EXPECT_EQ(lenient.next().outcome, status::malformed);
}

TEST(stream_framer, appending_again_before_draining_keeps_the_order) {
  const byte_buffer a = request_of(1, 10), b = request_of(2, 10);
  stream_framer framer;
  framer.append(a);
  framer.append(b);
  auto f = framer.next();
  ASSERT_EQ(f.outcome, status::complete);
  EXPECT_EQ(byte_buffer(f.pdu.begin(), f.pdu.end()), a);
  f = framer.next();
  ASSERT_EQ(f.outcome, status::complete);
  EXPECT_EQ(byte_buffer(f.pdu.begin(), f.pdu.end()), b);
  EXPECT_EQ(framer.next().outcome, status::need_more);
}

TEST(stream_framer, plausible_header_needs_a_whole_header_and_a_covering_frag_length) {
  byte_buffer p = request_of(1, 8);
  EXPECT_TRUE(plausible_common_header(p));
  EXPECT_FALSE(plausible_common_header(bytes_view(p).first(15)));
  p[8] = 20;  // frag_length 20 < the request header's 24
  p[9] = 0;
  EXPECT_FALSE(plausible_common_header(p));
}
