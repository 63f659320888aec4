// The bounded WBXML codec and the Ping/Sync bodies: the reference's exact
// bytes and sizes (wave2-protocols.md §1.2, made with libwbxml2's
// `xml2wbxml -a -n -v 1.3`), round trips, and hostile bodies that must be
// malformed with a reason, never read out of bounds.
#include <gtest/gtest.h>

#include <string>

#include "nudge/activesync/messages.hpp"
#include "nudge/activesync/wbxml.hpp"
#include "nudge/http/writer.hpp"

using namespace nudge;
using namespace nudge::activesync;

namespace {

byte_buffer bytes_of(std::initializer_list<int> v) {
  byte_buffer out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}
void append(byte_buffer& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }

ping_request ping_480() {
  ping_request p;
  p.heartbeat_s = 480;
  p.has_folders = true;
  p.folders.push_back({"5", "Email"});
  return p;
}

}  // namespace

TEST(activesync_wbxml, the_ping_request_is_the_reference_33_bytes) {
  byte_buffer want = bytes_of({0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03});
  append(want, "480");
  for (int b : {0x00, 0x01, 0x49, 0x4A, 0x4B, 0x03}) want.push_back(static_cast<std::uint8_t>(b));
  append(want, "5");
  for (int b : {0x00, 0x01, 0x4C, 0x03}) want.push_back(static_cast<std::uint8_t>(b));
  append(want, "Email");
  for (int b : {0x00, 0x01, 0x01, 0x01, 0x01}) want.push_back(static_cast<std::uint8_t>(b));
  ASSERT_EQ(want.size(), 33u);
  EXPECT_EQ(encode(ping_480()), want);
  auto back = decode_ping_request(want);
  ASSERT_TRUE(back.complete()) << back.reason;
  EXPECT_EQ(back.value, ping_480());
}

TEST(activesync_wbxml, status_responses_are_13_and_20_bytes) {
  const byte_buffer status1 = encode(ping_response{ping_status::expired, {}, {}, {}});
  EXPECT_EQ(status1, bytes_of({0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03, 0x31, 0x00, 0x01, 0x01}));
  const ping_response changes{ping_status::changes, {"5"}, {}, {}};
  const byte_buffer status2 = encode(changes);
  EXPECT_EQ(status2.size(), 20u);
  auto back = decode_ping_response(status2);
  ASSERT_TRUE(back.complete()) << back.reason;
  EXPECT_EQ(back.value, changes);
  const ping_response bound{ping_status::heartbeat_out_of_range, {}, 3540, {}};
  EXPECT_EQ(decode_ping_response(encode(bound)).value, bound);
  const ping_response many{ping_status::too_many_folders, {}, {}, 200};
  EXPECT_EQ(decode_ping_response(encode(many)).value, many);
}

TEST(activesync_wbxml, sync_bodies_round_trip_across_code_pages) {
  const sync_request req{"7", "5", 25};
  EXPECT_EQ(decode_sync_request(encode(req)).value, req);
  sync_response resp;
  resp.sync_key = "8";
  resp.collection_id = "5";
  message_header m;
  m.server_id = "5:1";
  m.to = "\"alice\" <alice@example.com>";
  m.from = "\"Nudge Event\" <events@example.com>";
  m.subject = "Something changed #1";
  m.thread_topic = m.subject;
  m.display_to = "alice";
  m.date_received = date_received_of(time_point{} + std::chrono::milliseconds(90061001));
  resp.adds.push_back(m);
  const byte_buffer body = encode(resp);
  auto back = decode_sync_response(body);
  ASSERT_TRUE(back.complete()) << back.reason;
  EXPECT_EQ(back.value, resp);
  // One new message header: a realistic few hundred bytes, not a mailbox.
  EXPECT_GT(body.size(), 150u);
  EXPECT_LT(body.size(), 400u);
  EXPECT_EQ(m.date_received, "2026-01-06T10:01:01.001Z");
  EXPECT_EQ(time_of_date_received(m.date_received), time_point{} + std::chrono::milliseconds(90061001));
}

TEST(activesync_wbxml, every_truncation_of_a_valid_body_is_malformed_not_a_crash) {
  const byte_buffer body = encode(ping_480());
  for (std::size_t n = 0; n < body.size(); ++n) {
    auto d = wbxml::decode(protocol::bytes_view(body.data(), n));
    EXPECT_TRUE(d.malformed()) << n;
    EXPECT_FALSE(d.reason.empty());
  }
}

TEST(activesync_wbxml, hostile_documents_are_refused_with_reasons) {
  struct bad {
    byte_buffer body;
    std::string_view why;
  };
  byte_buffer deep = bytes_of({0x03, 0x01, 0x6A, 0x00});
  for (int i = 0; i < 40; ++i) deep.push_back(0x45);
  byte_buffer long_text = bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0x03});
  long_text.insert(long_text.end(), 5000, 'a');
  for (int b : {0x00, 0x01}) long_text.push_back(static_cast<std::uint8_t>(b));
  const bad cases[] = {
      {bytes_of({0x09, 0x01, 0x6A, 0x00, 0x45, 0x01}), "unknown WBXML version"},
      {bytes_of({0x03, 0x01, 0x04, 0x00, 0x45, 0x01}), "charset is not UTF-8"},
      {bytes_of({0x03, 0x01, 0x6A, 0x7F, 0x45}), "truncated"},
      {bytes_of({0x03, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), "multi-byte integer too long"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0xC5, 0x01}), "attributes are not used by ActiveSync"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0x02, 0x01, 0x01}), "unsupported global token"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0x01, 0x45}), "bytes after the document"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0x03, 'x', 0x00, 0x46, 0x01}), "mixed content"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0xC3, 0x9F, 0xFF, 0xFF, 0xFF, 0x7F, 0x01}), "multi-byte integer overflows"},
      {bytes_of({0x03, 0x01, 0x6A, 0x00, 0x45, 0xC3, 0x7F, 0x01}), "truncated"},
      {deep, "too deeply nested"},
      {long_text, "text too long"},
  };
  for (const bad& b : cases) {
    auto d = wbxml::decode(b.body);
    EXPECT_TRUE(d.malformed()) << b.why;
    EXPECT_EQ(d.reason, b.why);
  }
}

TEST(activesync_wbxml, ping_bodies_that_break_the_schema_are_malformed) {
  auto with = [](auto edit) {
    ping_request p = ping_480();
    edit(p);
    return encode(p);
  };
  EXPECT_EQ(decode_ping_request(with([](ping_request& p) { p.folders[0].id = std::string(65, '1'); })).reason,
            "folder Id longer than 64");
  EXPECT_EQ(decode_ping_request(with([](ping_request& p) { p.folders[0].folder_class = "Spam"; })).reason,
            "unknown folder Class");
  // A HeartbeatInterval that is not a number, or does not fit 32 bits.
  wbxml::element root = wbxml::node(wbxml::page::ping, wbxml::ping_tag::ping,
                                    {wbxml::leaf(wbxml::page::ping, wbxml::ping_tag::heartbeat_interval, "99999999999")});
  EXPECT_EQ(decode_ping_request(wbxml::encode(root)).reason, "bad HeartbeatInterval");
  root.children[0].text = "-1";
  EXPECT_EQ(decode_ping_request(wbxml::encode(root)).reason, "bad HeartbeatInterval");
  // A Sync document where a Ping belongs.
  EXPECT_EQ(decode_ping_request(encode(sync_request{"1", "5", 25})).reason, "not a Ping");
}

TEST(activesync_http, a_ping_request_carries_the_ms_ashttp_fields_and_reads_back) {
  device_identity d;
  d.host = "mail.example.com";
  d.user = "alice@example.com";
  d.device_id = "ApplF17XXXXXXXX";
  const http::request r = command_request("Ping", d, encode(ping_480()));
  EXPECT_EQ(r.target,
            "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice%40example.com&DeviceId=ApplF17XXXXXXXX&DeviceType=iPhone");
  for (std::string_view f : {"Authorization", "MS-ASProtocolVersion", "X-MS-PolicyKey", "User-Agent", "Content-Type"})
    EXPECT_TRUE(r.headers.has(f)) << f;
  auto call = read_command_request(r);
  ASSERT_TRUE(call.complete()) << call.reason;
  EXPECT_EQ(call.value.cmd, "Ping");
  EXPECT_EQ(call.value.user, "alice@example.com");
  EXPECT_EQ(call.value.device_id, "ApplF17XXXXXXXX");
  // Headers plus the 33-byte body: a few hundred bytes, as wave2-protocols.md §1.2 sizes a device's Ping.
  const std::size_t wire = http::serialize(r).size();
  EXPECT_GT(wire, 300u);
  EXPECT_LT(wire, 450u);

  http::request wrong_type = r;
  wrong_type.headers.set("Content-Type", "text/xml");
  EXPECT_TRUE(read_command_request(wrong_type).malformed());
  http::request no_version = r;
  no_version.headers.erase("MS-ASProtocolVersion");
  EXPECT_TRUE(read_command_request(no_version).malformed());
}
