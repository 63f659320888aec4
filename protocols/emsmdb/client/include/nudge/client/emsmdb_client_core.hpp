#pragma once
// The EMSMDB client core on the session contract (nudge/engine/session.hpp):
// one emulated Outlook-style client that asks its driver for its connections
// and its UDP socket instead of being handed them. It wraps client_session,
// the state machine proper, so both keep exactly the same wire behaviour:
//  - start: `connect` the main channel (and the async channel in async mode)
//    to the server's listener, `bind_udp` the push socket in push mode;
//  - once every one of them is up (`connected`, `udp_bound`: the callback
//    address the client registers is the socket's local address as its host
//    sees it), the session starts: handshakes counted, binds sent;
//  - then bytes, datagrams, timers and closes go to the session, and its
//    outputs come back as `send` / `send_datagram` actions.
// A connection refused (or lost) before the start counts the client as
// started and failed, as a client whose connect fails always did.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/client/client_session.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"

namespace nudge::client {

class emsmdb_client_core final : public engine::session {
 public:
  /// Connection ids this core picks: one per channel.
  static constexpr engine::connection_id main_connection = engine::outgoing_bit | 0;
  static constexpr engine::connection_id async_connection = engine::outgoing_bit | 1;
  /// The push socket's id.
  static constexpr engine::socket_id push_socket = 0;
  static engine::connection_id connection_of(channel ch) {
    return ch == channel::main ? main_connection : async_connection;
  }

  /// `server` is the notifier's listener (both channels dial it); `cfg`'s
  /// callback_address is replaced by what `udp_bound` reports.
  emsmdb_client_core(client_config cfg, client_metrics& metrics, engine::ip_endpoint server);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }
  void finish(time_point now) override;

  /// Observes the estimated pure ACKs (captures), named by connection; set
  /// before `start`, with client_config::eager_acks so they come in time order.
  void set_observer(engine::transport_observer* o);
  /// The state machine, once every connection is up (null before).
  const client_session* session() const { return started_ ? &session_ : nullptr; }
  const client_config& config() const { return session_.config(); }
  bool failed() const { return dead_ || session_.failed(); }
  std::string_view failure() const override;

 private:
  enum : std::uint8_t { main_up = 1, async_up = 2, udp_up = 4 };
  void begin(time_point now);
  void give_up(std::string why);
  /// Moves the session's outputs into actions.
  void collect();
  static std::optional<channel> channel_of(engine::connection_id c);

  // Turns the session's per-channel ACK reports into per-connection ones.
  struct forward_acks final : session_tap {
    explicit forward_acks(engine::transport_observer* o) : to(o) {}
    void pure_ack(time_point at, channel ch, metrics::direction d) override { to->pure_ack(at, connection_of(ch), d); }
    engine::transport_observer* to;
  };

  client_session session_;
  std::unique_ptr<forward_acks> tap_;  // only while observed
  client_metrics& m_;
  engine::ip_endpoint server_;
  std::uint8_t needed_ = 0;  // which of main_up / async_up / udp_up this client waits for
  std::uint8_t up_ = 0;
  bool started_ = false;  // the session has started (every connection was up)
  bool dead_ = false;     // gave up before starting
  std::string why_dead_;  // give_up's reason
  std::vector<engine::action> actions_;
};

/// Client i's own seed and push context, derived from the run's seed (the
/// same values whichever driver creates the client).
std::uint64_t client_seed(std::uint64_t run_seed, std::size_t client);
protocol::push_context push_context_for(std::uint64_t run_seed, std::size_t client, std::size_t size);

/// A client's configuration from the family's keys (nudge/emsmdb/family.cpp)
/// and its context; the callback address comes later, from `udp_bound`.
client_config client_config_of(const engine::client_context& ctx);

/// The family's client factory (engine::family::make_client). `ctx.server`
/// names the notifier's listener 0 and socket 0; `ctx.metrics` must be set.
std::unique_ptr<emsmdb_client_core> make_emsmdb_client(const engine::client_context& ctx);

}  // namespace nudge::client
