// WebSub's capture reader (nudge-pcap analyse --family websub) fed the flows
// of one subscriber as a capture holds them: its subscribe connection to the
// hub, and two connections the hub dialled (the verification, a signed
// content POST), plus a forged content POST. It must name each message's
// kind, make the subscriber the client of every flow whoever dialled, tie
// them to one session by the callback, check signatures with the secret the
// subscribe request carried, and report the event with its creation stamp.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "nudge/websub/capture_classifier.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"

using namespace nudge;
using namespace nudge::websub;

namespace {

struct sink final : engine::capture_stream_sink {
  std::vector<std::pair<std::uint32_t, std::size_t>> messages;
  std::size_t dropped = 0;
  void message(std::uint32_t kind, std::size_t bytes) override { messages.emplace_back(kind, bytes); }
  void malformed(std::size_t n) override { dropped += n; }
};

protocol::bytes_view view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::uint32_t k(message_kind m) { return static_cast<std::uint32_t>(m); }

std::uint64_t session_counter(const engine::capture_findings& f, std::string_view name) {
  const auto names = websub_capture_classifier().counter_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return f.sessions.at(0).counters.at(i);
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

}  // namespace

TEST(websub_capture_reader, names_kinds_and_ties_both_dialling_directions_to_one_subscriber) {
  const auto& cls = websub_capture_classifier();
  auto r = cls.make_reader({});
  ASSERT_NE(r, nullptr);
  const std::string secret = "capture-secret";
  const std::string topic = "http://192.0.2.1:7777/topics/mb";

  form f;
  f.add("hub.mode", "subscribe");
  f.add("hub.topic", topic);
  f.add("hub.callback", "http://198.18.0.2:20001/callback/1");
  f.add("hub.lease_seconds", "3600");
  f.add("hub.secret", secret);
  const std::string body = encode_form(f);
  const std::string subscribe = "POST /hub HTTP/1.1\r\nHost: 192.0.2.1:7777\r\nContent-Type: "
                                "application/x-www-form-urlencoded\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string accepted = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
  const std::string verify = "GET /callback/1?hub.mode=subscribe&hub.topic=x&hub.challenge=abc123&hub.lease_seconds=3600 "
                             "HTTP/1.1\r\nHost: 198.18.0.2:20001\r\nConnection: close\r\n\r\n";
  const std::string echo = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc123";
  const std::string event = event_body(topic, 1, 5000);
  auto content = [&](const std::string& signature) {
    return "POST /callback/1 HTTP/1.1\r\nHost: 198.18.0.2:20001\r\nContent-Type: application/json\r\nLink: "
           "<http://192.0.2.1:7777/hub>; rel=\"hub\"\r\nX-Hub-Signature: " +
           signature + "\r\nContent-Length: " + std::to_string(event.size()) + "\r\n\r\n" + event;
  };
  const std::string signed_post = content(signature_header(secret, event));
  const std::string forged_post = content(signature_header("guess", event));
  const std::string no_content = "HTTP/1.1 204 No Content\r\n\r\n";

  // The subscriber dialled the hub: side 0 is the subscriber (host 1), side 1 the hub (host 2).
  engine::capture_flow up{0, {1, 2}, {20001, 7777}, 0, engine::capture_none};
  // The hub dialled the callback: side 0 is the hub, side 1 the subscriber; the SYN made the hub "client".
  engine::capture_flow v{1, {2, 1}, {40000, 20001}, 0, engine::capture_none};
  engine::capture_flow c{2, {2, 1}, {40001, 20001}, 0, engine::capture_none};
  engine::capture_flow x{3, {2, 1}, {40002, 20001}, 0, engine::capture_none};
  sink s;
  const time_point t{};
  ASSERT_TRUE(cls.begins_message(view(subscribe)));
  ASSERT_TRUE(cls.begins_message(view(accepted)));
  ASSERT_FALSE(cls.begins_message(view(std::string("\x16\x03\x01"))));
  r->on_stream(up, 0, view(subscribe), t, s);
  r->on_stream(up, 1, view(accepted), t, s);
  r->on_stream(v, 0, view(verify), t, s);
  r->on_stream(v, 1, view(echo), t, s);
  r->on_stream(c, 0, view(signed_post), t + std::chrono::milliseconds(5021), s);
  r->on_stream(c, 1, view(no_content), t, s);
  r->on_stream(x, 0, view(forged_post), t, s);
  r->on_stream(x, 1, view(no_content), t, s);

  const std::vector<std::pair<std::uint32_t, std::size_t>> want = {
      {k(message_kind::subscribe), subscribe.size()}, {k(message_kind::subscribe), accepted.size()},
      {k(message_kind::verify), verify.size()},       {k(message_kind::verify), echo.size()},
      {k(message_kind::content), signed_post.size()}, {k(message_kind::content), no_content.size()},
      {k(message_kind::content), forged_post.size()}, {k(message_kind::content), no_content.size()}};
  EXPECT_EQ(s.messages, want);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(up.client_side, 0);
  EXPECT_EQ(v.client_side, 1) << "the subscriber is the client even where the hub dialled";
  EXPECT_EQ(c.client_side, 1);
  EXPECT_EQ(up.session, v.session);
  EXPECT_EQ(up.session, c.session);
  EXPECT_EQ(r->flow_label(up), "hub");
  EXPECT_EQ(r->flow_label(c), "callback");

  const auto found = r->findings();
  ASSERT_EQ(found.sessions.size(), 1u);
  EXPECT_EQ(found.sessions[0].host, 1u);
  EXPECT_EQ(session_counter(found, "subscriptions"), 1u);
  EXPECT_EQ(session_counter(found, "verifications"), 1u);
  EXPECT_EQ(session_counter(found, "received"), 1u);
  EXPECT_EQ(session_counter(found, "bad_signatures"), 1u);
  EXPECT_EQ(session_counter(found, "connections"), 1u);
  EXPECT_EQ(session_counter(found, "callbacks"), 3u);
  ASSERT_EQ(found.events.size(), 1u);
  EXPECT_EQ(found.events[0].created_us, 5000 * 1000);
}
