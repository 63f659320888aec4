#pragma once
// The WebSub hub as a server core on the session contract
// (nudge/engine/session.hpp), sans-IO. It listens for subscribers and
// publishers and dials subscribers' callbacks itself:
//  - POST /hub, hub.mode=subscribe|unsubscribe, hub.topic, hub.callback,
//    hub.lease_seconds, hub.secret: answered 202, then the verification of
//    intent: GET callback?hub.mode&hub.topic&hub.challenge&hub.lease_seconds.
//    Only a 2xx whose body is the challenge activates (or removes) the
//    subscription; anything else, or no route to the callback, leaves it as it was.
//  - POST /hub, hub.mode=publish, hub.url=<topic> (repeatable): answered
//    204, then distribution. inject_event (the control port's EVENT@websub,
//    the event generator, the virtual driver's schedule) publishes too.
//  - Distribution: POST to each active callback of the topic with the body,
//    Link rel="hub" and rel="self", X-Hub-Signature: sha256=HMAC(secret, body);
//    a failure is retried after retry_base, 2*retry_base, ... up to
//    retry_attempts POSTs; a 410 Gone ends the subscription.
//  - Leases run out at their end unless a renewal was verified.
// Topics are the hub's mailboxes (`/topics/<mailbox>`, any authority).
// Hostile input gets a 4xx and a close, never a crash; subscriptions are
// capped (429), and the hub never dials outside loopback (127.0.0.0/8, ::1)
// unless allow_non_loopback (refused with 403 and a notice).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/message.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"

namespace nudge::websub {

using protocol::byte_buffer;
using protocol::bytes_view;

struct hub_config {
  std::uint16_t port = 0;  // 0: the driver picks
  duration min_lease = std::chrono::seconds(60);
  duration max_lease = std::chrono::hours(240);  // also the lease when a subscriber names none
  std::uint32_t retry_attempts = 5;               // POSTs per event and subscription
  duration retry_base = std::chrono::seconds(10);
  duration http_timeout = std::chrono::seconds(30);
  std::size_t max_subscriptions = 100000;
  std::size_t max_outgoing = 10000;
  std::size_t max_connections = 1 << 20;
  http::limits limits{8 * 1024, 64 * 1024};
  std::size_t max_secret_bytes = 199;  // the spec: less than 200 bytes
  bool allow_non_loopback = false;
  metrics::wire_model wire;
};

/// The configuration the family's keys give (docs/websub.md).
hub_config hub_config_of(const engine::settings& keys);

class hub_core final : public engine::server_session {
 public:
  explicit hub_core(hub_config cfg);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }

  std::uint64_t inject_event(time_point now, std::string_view mailbox) override;
  mailbox_handle_t mailbox_handle(std::string_view mailbox) override;
  std::uint64_t inject_event(time_point now, mailbox_handle_t mailbox) override;
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override;
  std::size_t mailbox_count() const override { return mailboxes_.size(); }
  std::string_view mailbox_name(std::size_t index) const override { return mailboxes_[index].name; }

  const hub_config& config() const { return cfg_; }
  std::size_t subscription_count() const { return subs_.size(); }
  std::size_t active_subscriptions() const;
  std::size_t open_connections() const { return in_.size() + out_.size(); }
  /// The hub's own URL (rel="hub"), once it listens.
  const std::string& hub_url() const { return hub_url_; }

 private:
  struct inbound {
    http::request_reader reader;
    time_point idle_deadline = never;
  };
  struct subscription {
    std::uint32_t mailbox = 0;
    std::string topic;  // as the subscriber wrote it (rel="self")
    http_url callback;
    std::string secret;
    bool active = false;
    time_point lease_end = never;
    std::uint64_t generation = 0;  // bumps when it is removed and made again
  };
  enum class purpose : std::uint8_t { verify, deliver };
  struct delivery {
    std::uint64_t sub = 0;
    std::uint64_t generation = 0;
    std::string body;
    std::uint32_t attempt = 0;  // POSTs made so far
  };
  struct outbound {
    purpose what = purpose::verify;
    std::uint64_t sub = 0;
    std::uint64_t generation = 0;
    // verify: the intent and what it asked for
    bool subscribing = true;
    std::string challenge;
    duration lease{};
    std::string secret;
    // deliver
    delivery d;
    byte_buffer request;
    std::unique_ptr<http::response_reader> reader;
    bool connected = false;
    time_point deadline = never;
  };
  struct mailbox {
    std::string name;
    std::vector<std::uint64_t> subs;  // subscription ids, in the order they came
    std::uint64_t generated = 0;
  };
  enum class timer_kind : std::uint8_t { idle, outgoing, lease, retry };
  struct timer_entry {
    time_point at;
    std::uint64_t seq;
    timer_kind kind;
    std::uint64_t id;
    bool operator>(const timer_entry& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
  };

  void arm(time_point at, timer_kind k, std::uint64_t id);
  void on_timer(time_point now);
  void on_request_bytes(time_point now, engine::connection_id conn, bytes_view bytes);
  void drop_inbound(engine::connection_id conn, std::string reason);
  http::response answer(time_point now, const http::request& req);
  http::response subscribe(time_point now, const form& f, bool subscribing);
  http::response publish(time_point now, const form& f);
  http::response topic_page(const http::request& req);
  http::response refuse(int status, std::string_view why);

  void verify(time_point now, std::uint64_t sub, bool subscribing, duration lease, std::string secret);
  void attempt_delivery(time_point now, delivery d);
  engine::connection_id dial(time_point now, const http_url& to, outbound o);
  void on_response_bytes(time_point now, engine::connection_id conn, bytes_view bytes);
  void outbound_done(time_point now, engine::connection_id conn, int status, std::string_view body, bool close_it);
  void delivery_failed(time_point now, delivery d);
  void remove_subscription(std::uint64_t id);
  std::uint32_t mailbox_index(std::string_view name);
  std::string next_challenge();
  /// Connects wait until the call's answers are queued: a subscriber's 202
  /// leaves before the verification's connection opens.
  void flush_dials();

  hub_config cfg_;
  std::vector<engine::action> actions_;
  std::vector<engine::connect> dials_;
  std::string hub_url_ = "http://127.0.0.1/hub";
  ip_endpoint hub_at_;
  std::unordered_map<engine::connection_id, inbound> in_;
  std::map<engine::connection_id, outbound> out_;
  engine::connection_id next_out_ = 0;
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<>> timers_;
  std::uint64_t timer_seq_ = 0;
  std::unordered_map<std::uint64_t, subscription> subs_;
  std::unordered_map<std::string, std::uint64_t> sub_by_key_;  // mailbox '\n' callback
  std::uint64_t next_sub_ = 1;
  std::unordered_map<std::uint64_t, delivery> waiting_;  // deliveries waiting for their retry
  std::uint64_t next_waiting_ = 1;
  std::vector<mailbox> mailboxes_;
  std::unordered_map<std::string, std::uint32_t> mailbox_by_name_;
  std::uint64_t challenge_state_ = 0x5eed0f5eb5ull;

  struct counts {
    std::uint64_t connections = 0, connections_refused = 0, requests = 0, bad_requests = 0, not_found = 0,
                  subscribe_requests = 0, unsubscribe_requests = 0, publish_requests = 0, refused_callbacks = 0,
                  over_capacity = 0, verifications_sent = 0, verifications_ok = 0, verifications_failed = 0,
                  unreachable = 0, deliveries_sent = 0, deliveries_ok = 0, deliveries_failed = 0,
                  deliveries_abandoned = 0, retries = 0, gone = 0, leases_expired = 0, unsubscribed = 0,
                  events_generated = 0, events_without_subscribers = 0, idle_closes = 0, timeouts = 0;
  } n_;
};

}  // namespace nudge::websub
