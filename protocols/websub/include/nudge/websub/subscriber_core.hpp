#pragma once
// A WebSub subscriber as a client core on the session contract: it listens
// on its callback port (the contract's `listen`), subscribes its mailbox's
// topic at the hub (POST hub.mode=subscribe with hub.callback, hub.lease_seconds
// and, when signed, hub.secret), answers the hub's verification GET by echoing
// hub.challenge, receives content POSTs and checks their X-Hub-Signature, and
// renews its lease `renew_margin` before it ends. Behind a NAT the hub's GET
// and POST never arrive: a subscription the hub accepted (202) but never
// verified within `verify_timeout` is counted (verify_failures) and tried
// again after `resubscribe_after`; the events it misses are the run's
// generated events it never received.
//
// Counting (client_metrics, indexed by nudge/websub/family.hpp): every
// segment's bytes per kind with the wire model's headers, handshakes (either
// side dialling), teardowns and pure-ACK estimates; the latency of each
// content POST as now − the event's creation time in its body.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/message.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/websub/family.hpp"

namespace nudge::websub {

using protocol::byte_buffer;
using protocol::bytes_view;

struct subscriber_config {
  engine::ip_endpoint hub;         // where the hub listens
  std::string mailbox;             // the topic is the hub's /topics/<mailbox>
  std::uint16_t callback_port = 0; // 0: the driver picks
  std::string callback_path = "/callback";
  std::string secret;              // empty: unsigned
  duration lease = std::chrono::hours(1);
  duration renew_margin = std::chrono::minutes(5);
  duration verify_timeout = std::chrono::seconds(30);
  duration resubscribe_after = std::chrono::minutes(5);
  duration http_timeout = std::chrono::seconds(30);
  http::limits limits{8 * 1024, 64 * 1024};
  metrics::wire_model wire;
  /// Optional (captures): told each estimated pure ACK in time order.
  engine::transport_observer* observer = nullptr;
};

/// A subscriber's configuration from the family's keys and its context (the
/// secret derives from the run's seed and the client's index).
subscriber_config subscriber_config_of(const engine::client_context& ctx);

class subscriber_core final : public engine::session {
 public:
  subscriber_core(subscriber_config cfg, metrics::client_metrics& m);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }
  void finish(time_point now) override;

  const subscriber_config& config() const { return cfg_; }
  /// The topic and callback URLs it subscribes with (the callback once it listens).
  const std::string& topic() const { return topic_; }
  const std::string& callback() const { return callback_; }
  bool subscribed() const { return lease_end_ != never; }

 private:
  using direction = metrics::direction;
  struct link {
    bool outgoing = false;
    std::unique_ptr<http::request_reader> requests;    // a callback from the hub
    std::unique_ptr<http::response_reader> responses;  // our subscribe request
    metrics::ack_tracker mine, peers;                  // ACKs we owe (to_server) / the hub owes (to_client)
    time_point deadline = never;
  };

  void begin_subscribe(time_point now, bool renewal);
  void subscribe_failed(time_point now);
  void on_callback_bytes(time_point now, engine::connection_id conn, link& l, bytes_view bytes);
  void on_response_bytes(time_point now, engine::connection_id conn, link& l, bytes_view bytes);
  void answer(time_point now, engine::connection_id conn, link& l, const http::request& req, std::size_t wire_size);
  void reply(time_point now, engine::connection_id conn, link& l, http::response r, message_kind k);
  void send_bytes(time_point now, engine::connection_id conn, link& l, byte_buffer bytes, message_kind k);
  void received(time_point now, link& l, std::size_t wire_size, message_kind k);
  void close_link(time_point now, engine::connection_id conn, bool by_us);
  void count_ack(engine::connection_id conn, direction d, time_point at);

  subscriber_config cfg_;
  metrics::client_metrics& m_;
  std::vector<engine::action> actions_;
  std::string topic_, callback_;
  std::map<engine::connection_id, link> links_;
  std::uint64_t conns_made_ = 0;
  engine::connection_id request_conn_ = 0;  // the subscribe request in flight (0: none)
  bool renewing_ = false;
  bool awaiting_verification_ = false;  // a subscribe request is out or was accepted
  bool verified_in_flight_ = false;     // the verification came before the 202
  bool ready_ = false;
  time_point next_subscribe_ = never;
  time_point verify_deadline_ = never;
  time_point lease_end_ = never;
  time_point renew_at_ = never;
};

/// The family's client factory (engine::family::make_client).
std::unique_ptr<subscriber_core> make_subscriber(const engine::client_context& ctx);

}  // namespace nudge::websub
