// WebSub's wire pieces: forms and query strings, http:// URLs, topic URLs and
// the X-Hub-Signature HMAC (RFC 4231's test vector, computed by libcrypto).
#include <gtest/gtest.h>

#include "nudge/websub/form.hpp"

using namespace nudge::websub;

TEST(websub_form, decodes_what_a_publisher_and_a_subscriber_send) {
  const auto f = decode_form("hub.mode=publish&hub.url=http%3A%2F%2F127.0.0.1%3A80%2Ftopics%2Fa+b&&hub.url=x");
  ASSERT_TRUE(f.complete());
  EXPECT_EQ(f.value.find("hub.mode"), "publish");
  const auto urls = f.value.all("hub.url");
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(urls[0], "http://127.0.0.1:80/topics/a b");
  EXPECT_EQ(urls[1], "x");
  EXPECT_FALSE(f.value.find("hub.topic"));
}

TEST(websub_form, round_trips_any_octets) {
  form f;
  std::string odd;
  for (int c = 0; c < 256; ++c) odd.push_back(static_cast<char>(c));
  f.add("hub.secret", odd);
  f.add("a=b&c", "d e+f%");
  const auto back = decode_form(encode_form(f));
  ASSERT_TRUE(back.complete());
  EXPECT_EQ(back.value.pairs, f.pairs);
}

TEST(websub_form, refuses_bad_escapes_and_too_much) {
  EXPECT_TRUE(decode_form("a=%4").malformed());
  EXPECT_TRUE(decode_form("a=%zz").malformed());
  EXPECT_TRUE(decode_form("%=1").malformed());
  form_limits l;
  l.max_pairs = 3;
  EXPECT_TRUE(decode_form("a&b&c", l).complete());
  EXPECT_TRUE(decode_form("a&b&c&d", l).malformed());
  l.max_bytes = 4;
  EXPECT_TRUE(decode_form("a=bcd", l).malformed());
}

TEST(websub_form, reads_http_urls_with_ip_literals_only) {
  const auto u = parse_http_url("http://127.0.0.1:8080/cb/3?x=1");
  ASSERT_TRUE(u.complete());
  EXPECT_EQ(u.value.at.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(u.value.authority, "127.0.0.1:8080");
  EXPECT_EQ(u.value.path, "/cb/3?x=1");
  const auto v6 = parse_http_url("HTTP://[::1]/");
  ASSERT_TRUE(v6.complete());
  EXPECT_TRUE(v6.value.at.is_loopback());
  EXPECT_EQ(v6.value.at.port, 80);
  EXPECT_TRUE(parse_http_url("https://127.0.0.1/").malformed());
  EXPECT_TRUE(parse_http_url("http://example.org/").malformed());
  EXPECT_TRUE(parse_http_url("http://u@127.0.0.1/").malformed());
  EXPECT_TRUE(parse_http_url("http://127.0.0.1:0/").malformed());
  EXPECT_TRUE(parse_http_url("http://127.0.0.1:65536/").malformed());
  EXPECT_TRUE(parse_http_url("http://127.0.0.1/a b").malformed());
  EXPECT_TRUE(parse_http_url("http://[::1/").malformed());
}

TEST(websub_form, topics_are_mailboxes_under_any_authority) {
  const std::string mailbox = "/o=nudge/cn=Recipients/cn=user 7";
  const std::string url = topic_url(nudge::protocol::ip_endpoint::v4(192, 0, 2, 1, 7777), mailbox);
  EXPECT_EQ(url.rfind("http://192.0.2.1:7777/topics/", 0), 0u);
  EXPECT_EQ(mailbox_of_topic(url), mailbox);
  EXPECT_EQ(mailbox_of_topic("http://127.0.0.1:1/topics/abc"), "abc");
  EXPECT_FALSE(mailbox_of_topic("http://127.0.0.1:1/topics/"));
  EXPECT_FALSE(mailbox_of_topic("http://127.0.0.1:1/elsewhere/abc"));
  EXPECT_FALSE(mailbox_of_topic("http://127.0.0.1:1/topics/a%2"));
}

TEST(websub_form, signs_with_hmac_sha256_as_rfc_4231_says) {
  // RFC 4231, test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string body = event_body("http://127.0.0.1/topics/a", 7, 1234);
  const std::string sig = signature_header("s3cret", body);
  EXPECT_EQ(sig.substr(0, 7), "sha256=");
  EXPECT_TRUE(signature_matches(sig, "s3cret", body));
  EXPECT_FALSE(signature_matches(sig, "other", body));
  EXPECT_FALSE(signature_matches(sig, "s3cret", body + " "));
  EXPECT_FALSE(signature_matches("md5=00", "s3cret", body));
  EXPECT_FALSE(signature_matches("sha256", "s3cret", body));
  EXPECT_TRUE(signature_matches("sha1=" + std::string("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"), "Jefe",
                                "what do ya want for nothing?"));
  EXPECT_EQ(created_ms_of(body), 1234);
  EXPECT_FALSE(created_ms_of("{}"));
}
