#include <gtest/gtest.h>

#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/sockaddr.hpp"

using namespace nudge::protocol;

TEST(sockaddr, ipv4_layout_is_windows_style) {
  auto b = windows_sockaddr(ip_endpoint::v4(10, 0, 0, 2, 2500));
  const byte_buffer expected = {0x02, 0x00, 0x09, 0xC4, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(b, expected);
  auto d = decode_windows_sockaddr(b);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.value, ip_endpoint::v4(10, 0, 0, 2, 2500));
}

TEST(sockaddr, ipv6_is_28_bytes_with_family_23) {
  auto ep = *ip_endpoint::parse("[::1]:40000");
  auto b = windows_sockaddr(ep);
  ASSERT_EQ(b.size(), 28u);
  EXPECT_EQ(b[0], 23);
  EXPECT_EQ(b[1], 0);
  auto d = decode_windows_sockaddr(b);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.value, ep);
  EXPECT_TRUE(d.value.is_loopback());
}

TEST(sockaddr, wrong_size_or_family_is_invalid) {
  auto b = windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 1));
  b.push_back(0);
  EXPECT_TRUE(decode_windows_sockaddr(b).malformed());  // 17 bytes for AF_INET
  b.resize(28);
  EXPECT_TRUE(decode_windows_sockaddr(b).malformed());  // AF_INET in 28 bytes
  b = windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 1));
  b[0] = 10;  // Linux's AF_INET6 value is not Windows'
  EXPECT_TRUE(decode_windows_sockaddr(b).malformed());
  EXPECT_TRUE(decode_windows_sockaddr(bytes_view(b).first(1)).malformed());
  EXPECT_TRUE(decode_windows_sockaddr({}).malformed());
}

TEST(push_datagram, context_is_at_most_16_bytes) {
  push_context c;
  byte_buffer sixteen(16, 7), seventeen(17, 7);
  EXPECT_TRUE(c.assign(sixteen));
  EXPECT_FALSE(c.assign(seventeen));
  EXPECT_EQ(validate_push_context_size(16), ec::success);
  EXPECT_EQ(validate_push_context_size(17), ec::too_big);
  auto payload = encode_push_datagram(c);
  EXPECT_EQ(byte_buffer(payload.begin(), payload.end()), sixteen);
}

TEST(push_datagram, only_an_exact_match_matches) {
  push_context c;
  const byte_buffer ctx = {'l', 'i', 'b', 'm', 'a', 'p', 'i', 1};
  c.assign(ctx);
  EXPECT_TRUE(c.matches(ctx));
  byte_buffer other = ctx;
  other[7] = 2;
  EXPECT_FALSE(c.matches(other));
  EXPECT_FALSE(c.matches(bytes_view(ctx).first(7)));
  byte_buffer longer = ctx;
  longer.push_back(0);
  EXPECT_FALSE(c.matches(longer));
  EXPECT_FALSE(c.matches({}));
}

TEST(push_datagram, cookie_round_trip_and_rejects_foreign_bytes) {
  const byte_buffer ctx = {1, 2, 3};
  byte_buffer out;
  encode_reachability_cookie(out, 0x01000005, ctx);
  auto d = decode_reachability_cookie(out);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.value.notification_handle, 0x01000005u);
  EXPECT_EQ(byte_buffer(d.value.context.begin(), d.value.context.end()), ctx);
  EXPECT_TRUE(decode_reachability_cookie(ctx).malformed());
  out.resize(10);
  EXPECT_TRUE(decode_reachability_cookie(out).malformed());
}

TEST(endpoint, parse_and_loopback) {
  EXPECT_TRUE(ip_endpoint::parse("127.0.0.1:5000")->is_loopback());
  EXPECT_TRUE(ip_endpoint::parse("127.9.8.7:1")->is_loopback());
  EXPECT_FALSE(ip_endpoint::parse("192.0.2.2:5000")->is_loopback());  // a documentation address
  EXPECT_FALSE(ip_endpoint::parse("[::2]:5000")->is_loopback());
  EXPECT_FALSE(ip_endpoint::parse("127.0.0.1").has_value());
  EXPECT_FALSE(ip_endpoint::parse("127.0.0.1:70000").has_value());
  EXPECT_FALSE(ip_endpoint::parse("nonsense:1").has_value());
  EXPECT_EQ(ip_endpoint::parse("127.0.0.1:5000")->to_string(), "127.0.0.1:5000");
}
