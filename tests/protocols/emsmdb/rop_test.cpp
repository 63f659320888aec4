#include <gtest/gtest.h>

#include "nudge/protocol/rop.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::protocol::rop;

namespace {
struct recorder : rop_visitor {
  std::vector<new_mail_notification> mails;
  std::vector<std::uint16_t> pending;
  void on_new_mail(const new_mail_notification& n) override { mails.push_back(n); }
  void on_pending(std::uint16_t s) override { pending.push_back(s); }
};
}  // namespace

TEST(rop, empty_request_is_header_plus_ropsize) {
  byte_buffer b;
  encode_empty_request(b);
  const byte_buffer expected = {0, 0, 4, 0, 2, 0, 2, 0, 2, 0};
  EXPECT_EQ(b, expected);
  auto d = decode_request(b);
  ASSERT_TRUE(d.complete());
  EXPECT_TRUE(d.value.empty());
}

TEST(rop, notify_carries_event_id_and_creation_time) {
  byte_buffer b;
  response_builder builder(b);
  new_mail_notification n;
  n.notification_handle = 9;
  n.folder_id = 0x1234;
  n.event = {0xABCDEF123456ull, time_point(std::chrono::microseconds(987654321))};
  builder.add(n);
  n.event.id = 2;
  builder.add(n);
  builder.add_pending(77);
  const std::size_t size = builder.finish();
  EXPECT_EQ(size, rpc_header_ext_size + 2 + 2 * new_mail_size() + rop_pending_size);
  recorder r;
  auto d = decode_response(b, r);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value, 3u);
  ASSERT_EQ(r.mails.size(), 2u);
  EXPECT_EQ(r.mails[0].event.id, 0xABCDEF123456ull);
  EXPECT_EQ(r.mails[0].event.created_at, time_point(std::chrono::microseconds(987654321)));
  EXPECT_EQ(r.mails[0].notification_handle, 9u);
  EXPECT_EQ(r.mails[0].folder_id, 0x1234u);
  EXPECT_EQ(r.mails[1].event.id, 2u);
  EXPECT_EQ(r.pending, std::vector<std::uint16_t>{77});
}

TEST(rop, every_truncation_of_a_response_is_refused) {
  byte_buffer b;
  response_builder builder(b);
  builder.add(new_mail_notification{});
  builder.add_pending(1);
  builder.finish();
  for (std::size_t n = 0; n < b.size(); ++n) {
    byte_buffer cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    recorder r;
    EXPECT_FALSE(decode_response(cut, r).complete()) << n;
  }
}

TEST(rop, unknown_rop_and_compressed_buffers_are_malformed) {
  byte_buffer b;
  response_builder builder(b);
  builder.add_pending(1);
  builder.finish();
  recorder r;
  byte_buffer bad = b;
  bad[10] = 0x01;  // RopId
  EXPECT_TRUE(decode_response(bad, r).malformed());
  bad = b;
  bad[2] |= header_flags::compressed;
  EXPECT_TRUE(decode_response(bad, r).malformed());
  bad = b;
  bad[8] = 0xFF;  // RopSize beyond the buffer
  EXPECT_TRUE(decode_response(bad, r).malformed());
}

TEST(rop, a_header_only_response_is_zero_rops) {
  byte_buffer b;
  encode_header_only_response(b);
  EXPECT_EQ(b.size(), rpc_header_ext_size);  // fits pcbOut 8
  recorder r;
  auto d = decode_response(b, r);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value, 0u);
  EXPECT_EQ(d.consumed, rpc_header_ext_size);
  b[4] = 1;  // Size 1 with nothing behind it
  EXPECT_TRUE(decode_response(b, r).malformed());
}
