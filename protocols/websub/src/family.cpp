#include "nudge/websub/family.hpp"

#include <memory>
#include <string>
#include <utility>

#include "nudge/websub/capture_classifier.hpp"
#include "nudge/websub/hub_core.hpp"
#include "nudge/websub/subscriber_core.hpp"

namespace nudge::websub {

std::string_view to_string(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "tcp_setup";
    case message_kind::tcp_ack: return "tcp_ack";
    case message_kind::subscribe: return "subscribe";
    case message_kind::verify: return "verify";
    case message_kind::content: return "content";
    case message_kind::publish: return "publish";
    case message_kind::http_error: return "http_error";
    case message_kind::count_: break;
  }
  return "?";
}

std::string_view to_string(counter c) {
  switch (c) {
    case counter::subscriptions: return "subscriptions";
    case counter::renewals: return "renewals";
    case counter::verifications: return "verifications";
    case counter::verify_failures: return "verify_failures";
    case counter::subscribe_errors: return "subscribe_errors";
    case counter::received: return "received";
    case counter::bad_signatures: return "bad_signatures";
    case counter::denied: return "denied";
    case counter::connections: return "connections";
    case counter::callbacks: return "callbacks";
    case counter::wakeups: return "wakeups";
    case counter::leases_lost: return "leases_lost";
    case counter::count_: break;
  }
  return "?";
}

namespace {

std::string_view kind_doc(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "TCP handshakes and teardowns (SYN, SYN-ACK, ACK, FIN/ACKs), either side dialling";
    case message_kind::tcp_ack: return "pure ACKs (estimated from the delayed-ACK model)";
    case message_kind::subscribe: return "POST hub.mode=subscribe (or unsubscribe) to the hub, and its 202 Accepted";
    case message_kind::verify: return "the hub's verification GET to the callback (hub.challenge), and the echo";
    case message_kind::content: return "the hub's content POST to the callback (X-Hub-Signature), and its 2xx";
    case message_kind::publish: return "POST hub.mode=publish, and its 204 No Content";
    case message_kind::http_error: return "4xx/5xx responses, either way";
    case message_kind::count_: break;
  }
  return "";
}

std::string_view counter_doc(counter c) {
  switch (c) {
    case counter::subscriptions: return "subscribe requests sent (renewals included)";
    case counter::renewals: return "subscribe requests that renewed a running lease";
    case counter::verifications: return "verification GETs answered with the challenge";
    case counter::verify_failures: return "subscriptions the hub accepted (202) but never verified within websub.verify_timeout";
    case counter::subscribe_errors: return "subscribe requests refused, unanswered or answered other than 202";
    case counter::received: return "content POSTs received with a valid signature (events)";
    case counter::bad_signatures: return "content POSTs whose X-Hub-Signature did not match the secret";
    case counter::denied: return "hub.mode=denied callbacks";
    case counter::connections: return "TCP connections the subscriber opened to the hub";
    case counter::callbacks: return "TCP connections the hub opened to the subscriber's callback";
    case counter::wakeups: return "exchanges that woke the subscriber: its own requests and every callback";
    case counter::leases_lost: return "leases that ran out before a renewal was verified";
    case counter::count_: break;
  }
  return "";
}

}  // namespace

engine::family family() {
  using engine::key_spec;
  using type = key_spec::type;
  engine::family f;
  f.name = std::string(family_name);
  f.doc = "WebSub (PubSubHubbub) webhooks: a hub verifies and POSTs to each subscriber's callback (seed article 000)";
  f.words.modes = {{"subscriber", "subscribes its mailbox's topic and listens for the hub's callbacks"}};
  for (std::size_t k = 0; k < message_kind_count; ++k) {
    const auto kind = static_cast<message_kind>(k);
    f.words.kinds.push_back({std::string(to_string(kind)), std::string(kind_doc(kind))});
  }
  f.words.paths = {{"callback", "POSTed by the hub to the subscriber's callback"}};
  for (std::size_t c = 0; c < counter_count; ++c) {
    const auto ctr = static_cast<counter>(c);
    f.words.counters.push_back({std::string(to_string(ctr)), std::string(counter_doc(ctr))});
  }
  f.words.table = {{"subscriptions / renewals", {"subscriptions", "renewals"}},
                   {"verified / verification failed", {"verifications", "verify_failures"}},
                   {"subscribe errors", {"subscribe_errors"}},
                   {"content received / bad signature", {"received", "bad_signatures"}},
                   {"connections out / callbacks in", {"connections", "callbacks"}},
                   {"wakeups", {"wakeups"}},
                   {"leases lost", {"leases_lost"}}};
  f.keys = {
      {"websub.port", type::integer, "0", "the hub's TCP port (0: any)"},
      {"websub.lease", type::duration, "1h", "the lease a subscriber asks for (hub.lease_seconds)"},
      {"websub.min_lease", type::duration, "60s", "the hub's shortest lease; shorter requests get this"},
      {"websub.max_lease", type::duration, "240h", "the hub's longest lease (the spec's suggested 10 days); also its default"},
      {"websub.renew_margin", type::duration, "5min", "a subscriber renews this long before its lease ends (at half the lease at the latest)"},
      {"websub.signed", type::boolean, "true", "subscribers send a hub.secret, and check X-Hub-Signature"},
      {"websub.verify_timeout", type::duration, "30s", "a subscriber waits this long after the 202 for the verification GET"},
      {"websub.resubscribe_after", type::duration, "5min", "a subscriber tries again this long after a failed subscription"},
      {"websub.http_timeout", type::duration, "30s", "either side gives up on an HTTP exchange (or an idle connection) after this"},
      {"websub.retry_attempts", type::integer, "5", "content POSTs the hub makes per event and subscription before it gives up"},
      {"websub.retry_base", type::duration, "10s", "the hub's first retry delay; each next one doubles"},
      {"websub.max_subscriptions", type::integer, "100000", "subscriptions the hub holds (verified or pending); more get 429"},
      {"websub.max_outgoing", type::integer, "10000", "callback connections the hub has open at once; subscribes beyond get 429"},
      {"websub.max_body", type::integer, "65536", "the largest request or response body either side reads; larger gets 413"},
  };
  f.make_client = [](const engine::client_context& ctx) -> std::unique_ptr<engine::session> { return make_subscriber(ctx); };
  f.make_server = [](const engine::server_context& ctx) -> std::unique_ptr<engine::server_session> {
    hub_config c = ctx.keys ? hub_config_of(*ctx.keys) : hub_config{};
    c.allow_non_loopback = ctx.allow_non_loopback;
    c.wire = ctx.wire;
    return std::make_unique<hub_core>(std::move(c));
  };
  f.capture = &websub_capture_classifier();
  return f;
}

}  // namespace nudge::websub
