// The hub core (protocols/websub) driven by hand in test-controlled time: the
// test plays the driver, the subscribers and the publisher. What it checks is
// the spec's (docs/websub.md): 202 then verification of intent, activation
// only on the echoed challenge, signed distribution, back-off, 410, leases,
// the caps and the loopback policy, and 4xx for hostile input.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/websub/form.hpp"
#include "nudge/websub/hub_core.hpp"

using namespace nudge;
using namespace nudge::websub;
using namespace std::chrono_literals;

namespace {

const ip_endpoint hub_at = ip_endpoint::v4(127, 0, 0, 1, 7000);
const ip_endpoint subscriber_at = ip_endpoint::v4(127, 0, 0, 2, 9000);
const std::string mailbox = "/o=nudge/cn=Recipients/cn=user000001";

byte_buffer bytes_of(std::string_view s) { return byte_buffer(s.begin(), s.end()); }

std::uint64_t stat(const hub_core& h, std::string_view name) {
  for (const auto& [n, v] : h.stats())
    if (n == name) return v;
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

/// The test as the hub's driver.
class hub_harness {
 public:
  explicit hub_harness(hub_config cfg = {}) : hub(std::move(cfg)) {
    hub.start(now);
    take();
    hub.handle(now, engine::listening{0, hub_at});
    take();
  }

  std::vector<engine::action> take() {
    std::vector<engine::action> a = std::move(hub.actions());
    hub.actions().clear();
    for (const auto& x : a) {
      if (const auto* c = std::get_if<engine::connect>(&x)) dials.push_back(*c);
      if (const auto* n = std::get_if<engine::notice>(&x)) notices.push_back(n->text);
    }
    return a;
  }

  /// A request on a fresh inbound connection; the response (if any) and whether the hub closed it.
  std::optional<http::response> request(std::string_view raw, bool* closed = nullptr) {
    const engine::connection_id conn = next_in++;
    hub.handle(now, engine::accepted{0, conn, subscriber_at});
    take();
    const auto b = bytes_of(raw);
    hub.handle(now, engine::stream_bytes{conn, b});
    http::response_reader r;
    bool was_closed = false;
    for (const auto& a : take()) {
      if (const auto* s = std::get_if<engine::send>(&a); s && s->conn == conn) r.feed(s->bytes);
      if (const auto* c = std::get_if<engine::close>(&a); c && c->conn == conn) was_closed = true;
    }
    if (closed) *closed = was_closed;
    auto d = r.next();
    if (!d.complete()) return std::nullopt;
    return d.value;
  }

  std::optional<http::response> post_form(const form& f) {
    const std::string body = encode_form(f);
    return request("POST /hub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  std::optional<http::response> subscribe(std::string callback, std::string secret = "s3cret", std::string lease = "3600") {
    form f;
    f.add("hub.mode", "subscribe");
    f.add("hub.topic", topic_url(hub_at, mailbox));
    f.add("hub.callback", std::move(callback));
    f.add("hub.lease_seconds", std::move(lease));
    if (!secret.empty()) f.add("hub.secret", std::move(secret));
    return post_form(f);
  }

  /// The hub's next dial: connected, and the request it then sends.
  std::optional<http::request> accept_dial(engine::connection_id& conn) {
    if (dials.empty()) return std::nullopt;
    const engine::connect c = dials.front();
    dials.erase(dials.begin());
    conn = c.conn;
    hub.handle(now, engine::connected{c.conn, hub_at});
    http::request_reader r;
    for (const auto& a : take())
      if (const auto* s = std::get_if<engine::send>(&a); s && s->conn == c.conn) r.feed(s->bytes);
    auto d = r.next();
    if (!d.complete()) return std::nullopt;
    return d.value;
  }

  /// The subscriber answers a dial's request.
  void answer(engine::connection_id conn, int status, std::string body) {
    http::response r;
    r.status = status;
    r.reason = std::string(http::reason_phrase(status));
    r.body = std::move(body);
    http::set_content_length(r);
    const auto b = http::serialize(r);
    hub.handle(now, engine::stream_bytes{conn, b});
    take();
  }

  /// Answers the pending verification with its challenge (or `body`).
  bool verify(std::optional<std::string> body = std::nullopt, int status = 200) {
    engine::connection_id conn = 0;
    const auto req = accept_dial(conn);
    if (!req || req->method != "GET") return false;
    const auto q = req->target.find('?');
    const auto f = decode_form(std::string_view(req->target).substr(q + 1));
    if (!f.complete()) return false;
    answer(conn, status, body.value_or(std::string(f.value.find("hub.challenge").value_or(""))));
    return true;
  }

  void advance_to(time_point t) {
    now = t;
    if (hub.next_deadline() <= now) hub.handle(now, engine::timer{});
    take();
  }

  hub_core hub;
  time_point now{};
  engine::connection_id next_in = 1;
  std::vector<engine::connect> dials;
  std::vector<std::string> notices;
};

}  // namespace

TEST(websub_hub, accepts_verifies_with_a_challenge_then_distributes_signed_content) {
  hub_harness h;
  const auto r = h.subscribe("http://127.0.0.2:9000/cb?client=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
  ASSERT_EQ(h.dials.size(), 1u);
  EXPECT_EQ(h.dials[0].to, subscriber_at);
  engine::connection_id conn = 0;
  const auto get = h.accept_dial(conn);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->method, "GET");
  EXPECT_EQ(get->target.rfind("/cb?client=1&", 0), 0u) << get->target;
  const auto q = decode_form(std::string_view(get->target).substr(get->target.find('?') + 1));
  ASSERT_TRUE(q.complete());
  EXPECT_EQ(q.value.find("hub.mode"), "subscribe");
  EXPECT_EQ(q.value.find("hub.topic"), topic_url(hub_at, mailbox));
  EXPECT_EQ(q.value.find("hub.lease_seconds"), "3600");
  const std::string challenge(q.value.find("hub.challenge").value_or(""));
  EXPECT_GE(challenge.size(), 16u);
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 0u);  // not before the echo
  h.answer(conn, 200, challenge);
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 1u);

  // An event: a POST with the body, the Link headers and the signature.
  h.hub.inject_event(h.now, mailbox);
  h.take();
  const auto post = h.accept_dial(conn);
  ASSERT_TRUE(post);
  EXPECT_EQ(post->method, "POST");
  EXPECT_EQ(post->target, "/cb?client=1");
  EXPECT_EQ(post->headers.find("X-Hub-Signature"), "sha256=" + hmac_sha256_hex("s3cret", post->body));
  const auto link = std::string(post->headers.find("Link").value_or(""));
  EXPECT_NE(link.find("<http://127.0.0.1:7000/hub>; rel=\"hub\""), std::string::npos) << link;
  EXPECT_NE(link.find("<" + topic_url(hub_at, mailbox) + ">; rel=\"self\""), std::string::npos) << link;
  EXPECT_TRUE(created_ms_of(post->body));
  h.answer(conn, 204, "");
  EXPECT_EQ(stat(h.hub, "deliveries_ok"), 1u);
}

TEST(websub_hub, a_wrong_echo_or_an_unreachable_callback_activates_nothing) {
  hub_harness h;
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/a")->status, 202);
  ASSERT_TRUE(h.verify(std::string("not the challenge")));
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/b")->status, 202);
  ASSERT_TRUE(h.verify(std::nullopt, 404));
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/c")->status, 202);
  ASSERT_EQ(h.dials.size(), 1u);
  h.hub.handle(h.now, engine::refused{h.dials[0].conn, "no route"});
  h.dials.clear();
  h.take();
  EXPECT_EQ(stat(h.hub, "verifications_failed"), 3u);
  EXPECT_EQ(stat(h.hub, "unreachable"), 1u);
  EXPECT_EQ(stat(h.hub, "subscriptions"), 0u);
  h.hub.inject_event(h.now, mailbox);
  h.take();
  EXPECT_TRUE(h.dials.empty());
  EXPECT_EQ(stat(h.hub, "events_without_subscribers"), 1u);
}

TEST(websub_hub, retries_with_exponential_back_off_then_gives_up) {
  hub_config cfg;
  cfg.retry_attempts = 3;
  cfg.retry_base = 10s;
  hub_harness h(cfg);
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/cb")->status, 202);
  ASSERT_TRUE(h.verify());
  h.hub.inject_event(h.now, mailbox);
  h.take();
  const time_point t0 = h.now;
  std::vector<time_point> attempts;
  for (int i = 0; i < 5 && !h.dials.empty(); ++i) {
    attempts.push_back(h.now);
    engine::connection_id conn = 0;
    ASSERT_TRUE(h.accept_dial(conn));
    h.answer(conn, 500, "");
    if (h.hub.next_deadline() == never) break;
    // Skip the stale timers (lease, idle): go to the next dial.
    while (h.dials.empty() && h.hub.next_deadline() != never) h.advance_to(h.hub.next_deadline());
  }
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[1] - t0, 10s);
  EXPECT_EQ(attempts[2] - attempts[1], 20s);
  EXPECT_EQ(stat(h.hub, "deliveries_failed"), 3u);
  EXPECT_EQ(stat(h.hub, "deliveries_abandoned"), 1u);
  EXPECT_EQ(stat(h.hub, "retries"), 2u);
}

TEST(websub_hub, gone_ends_the_subscription_and_leases_run_out) {
  hub_harness h;
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/gone")->status, 202);
  ASSERT_TRUE(h.verify());
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/lease", "", "120")->status, 202);
  ASSERT_TRUE(h.verify());
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 2u);
  h.hub.inject_event(h.now, mailbox);
  h.take();
  ASSERT_EQ(h.dials.size(), 2u);
  engine::connection_id conn = 0;
  const auto first = h.accept_dial(conn);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->target, "/gone");
  h.answer(conn, 410, "");
  const auto second = h.accept_dial(conn);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->headers.has("X-Hub-Signature"));  // no secret: unsigned
  h.answer(conn, 200, "");
  EXPECT_EQ(stat(h.hub, "gone"), 1u);
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 1u);
  h.advance_to(h.now + 121s);
  EXPECT_EQ(stat(h.hub, "leases_expired"), 1u);
  EXPECT_EQ(stat(h.hub, "subscriptions"), 0u);
}

TEST(websub_hub, a_renewal_moves_the_lease_and_unsubscribe_removes_after_verification) {
  hub_harness h;
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/cb", "", "120")->status, 202);
  ASSERT_TRUE(h.verify());
  h.advance_to(h.now + 100s);
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/cb", "", "120")->status, 202);
  ASSERT_TRUE(h.verify());
  h.advance_to(h.now + 100s);  // past the first lease's end
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 1u);
  EXPECT_EQ(stat(h.hub, "leases_expired"), 0u);
  form f;
  f.add("hub.mode", "unsubscribe");
  f.add("hub.topic", topic_url(hub_at, mailbox));
  f.add("hub.callback", "http://127.0.0.2:9000/cb");
  ASSERT_EQ(h.post_form(f)->status, 202);
  EXPECT_EQ(stat(h.hub, "subscriptions_active"), 1u);
  ASSERT_TRUE(h.verify());
  EXPECT_EQ(stat(h.hub, "subscriptions"), 0u);
  EXPECT_EQ(stat(h.hub, "unsubscribed"), 1u);
}

TEST(websub_hub, publish_answers_204_and_distributes) {
  hub_harness h;
  ASSERT_EQ(h.subscribe("http://127.0.0.2:9000/cb")->status, 202);
  ASSERT_TRUE(h.verify());
  form f;
  f.add("hub.mode", "publish");
  f.add("hub.url", topic_url(hub_at, mailbox));
  const auto r = h.post_form(f);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(h.dials.size(), 1u);
  EXPECT_EQ(stat(h.hub, "events_generated"), 1u);
  form bad;
  bad.add("hub.mode", "publish");
  bad.add("hub.url", "http://127.0.0.1/not-a-topic");
  EXPECT_EQ(h.post_form(bad)->status, 400);
}

TEST(websub_hub, never_dials_outside_loopback_unless_allowed) {
  hub_harness h;
  const auto r = h.subscribe("http://10.0.0.2:2500/cb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_TRUE(h.dials.empty());
  EXPECT_EQ(stat(h.hub, "refused_callbacks"), 1u);
  ASSERT_EQ(h.notices.size(), 1u);
  EXPECT_NE(h.notices[0].find("10.0.0.2:2500"), std::string::npos);
  hub_config open;
  open.allow_non_loopback = true;
  hub_harness o(open);
  EXPECT_EQ(o.subscribe("http://10.0.0.2:2500/cb")->status, 202);
  ASSERT_EQ(o.dials.size(), 1u);
  EXPECT_EQ(o.dials[0].to, ip_endpoint::v4(10, 0, 0, 2, 2500));
}

TEST(websub_hub, caps_its_subscriptions) {
  hub_config cfg;
  cfg.max_subscriptions = 3;
  hub_harness h(cfg);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.subscribe("http://127.0.0.2:9000/cb" + std::to_string(i))->status, 202);
  EXPECT_EQ(h.subscribe("http://127.0.0.2:9000/cb9")->status, 429);
  EXPECT_EQ(stat(h.hub, "over_capacity"), 1u);
  EXPECT_EQ(stat(h.hub, "subscriptions"), 3u);
  // A subscribe flood beyond the outgoing budget is refused too, and nothing dials past it.
  hub_config narrow;
  narrow.max_outgoing = 2;
  hub_harness n(narrow);
  for (int i = 0; i < 10; ++i) n.subscribe("http://127.0.0.2:9000/f" + std::to_string(i));
  EXPECT_EQ(n.dials.size(), 2u);
  EXPECT_EQ(stat(n.hub, "over_capacity"), 8u);
}

TEST(websub_hub, answers_hostile_input_with_4xx) {
  hub_config cfg;
  cfg.limits.max_body_bytes = 1024;
  hub_harness h(cfg);
  auto status = [&](std::string raw) {
    bool closed = false;
    const auto r = h.request(raw, &closed);
    return r ? r->status : -1;
  };
  auto post = [](std::string body, std::string type = "application/x-www-form-urlencoded") {
    return "POST /hub HTTP/1.1\r\nHost: h\r\nContent-Type: " + type + "\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.topic=%zz")), 400);
  EXPECT_EQ(status(post("hub.topic=x")), 400);
  EXPECT_EQ(status(post("hub.mode=explode")), 400);
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.callback=http://127.0.0.2/")), 400);
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.topic=http://127.0.0.1/topics/a&hub.callback=ftp://x")), 400);
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.topic=http://127.0.0.1/topics/a&hub.callback=http://127.0.0.2/"
                        "&hub.lease_seconds=-5")),
            400);
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.topic=http://127.0.0.1/topics/a&hub.callback=http://127.0.0.2/"
                        "&hub.secret=" + std::string(300, 'x'))),
            400);
  EXPECT_EQ(status(post("hub.mode=subscribe&hub.topic=http://127.0.0.1/nowhere&hub.callback=http://127.0.0.2/")), 404);
  EXPECT_EQ(status(post("hub.mode=publish", "application/json")), 415);
  EXPECT_EQ(status(post(std::string(4096, 'a'))), 413);
  EXPECT_EQ(status("GET /hub HTTP/1.1\r\nHost: h\r\n\r\n"), 405);
  EXPECT_EQ(status("GET /elsewhere HTTP/1.1\r\nHost: h\r\n\r\n"), 404);
  EXPECT_EQ(status("\x16\x03\x01 not http at all\r\n\r\n"), 400);
  EXPECT_TRUE(h.dials.empty());
  EXPECT_EQ(stat(h.hub, "subscriptions"), 0u);
}
