#pragma once
// The one sans-IO contract every protocol core implements, client or server
// (docs/architecture.md). A driver (the Asio live layer or the virtual-time
// driver) feeds a core `(now, event)` and carries out the actions the core
// leaves behind; the core never touches a socket and never reads a clock.
//
// Names on both sides are small integers, never sockets:
//  - connection ids: the core picks them for connections it opens (`connect`),
//    always with `outgoing_bit` set; the driver picks them for connections it
//    accepted on the core's listeners, always without it. So a core that both
//    dials and listens (webhooks, hole punching) never sees two meanings for one id.
//  - listener ids and UDP socket ids: the core picks them in `listen` / `bind_udp`.
// Endpoints are `protocol::ip_endpoint`; a driver maps them onto real sockets
// (loopback) or onto its virtual network.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::engine {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;

using connection_id = std::uint64_t;
using listener_id = std::uint32_t;
using socket_id = std::uint32_t;

/// Set on every id a core picks for a connection it opens itself.
inline constexpr connection_id outgoing_bit = connection_id{1} << 63;
constexpr bool is_outgoing(connection_id c) { return (c & outgoing_bit) != 0; }

// ---- events: what happened, as the driver saw it ----------------------------

/// A connection the core asked for (`connect`) is established.
struct connected {
  connection_id conn;
  ip_endpoint local;  // the core's side, as its host sees it (private behind a NAT)
};
/// A connection the core asked for could not be made.
struct refused {
  connection_id conn;
  std::string reason;
};
/// Someone connected to one of the core's listeners; `conn` is the driver's id.
struct accepted {
  listener_id listener;
  connection_id conn;
  ip_endpoint peer;  // as the core's host sees it (a NAT's public side, for example)
};
/// The peer closed, or the network lost, a connection. The core's own `close`
/// is never echoed back.
struct closed {
  connection_id conn;
};
/// A `listen` took effect: where the listener accepts (a driver-picked port
/// when the core asked for 0).
struct listening {
  listener_id listener;
  ip_endpoint local;
};
/// A `bind_udp` took effect: the socket's local address as its host sees it
/// (what a client registers as its callback address, private behind a NAT).
struct udp_bound {
  socket_id socket;
  ip_endpoint local;
};
/// Bytes arrived on a connection, in order.
struct stream_bytes {
  connection_id conn;
  bytes_view bytes;
};
/// A datagram arrived on one of the core's UDP sockets.
struct datagram {
  socket_id socket;
  ip_endpoint from;
  bytes_view bytes;
};
/// The deadline the core last reported has passed (it may fire late, never early).
struct timer {};

using event = std::variant<connected, refused, accepted, closed, listening, udp_bound, stream_bytes, datagram, timer>;

// ---- actions: what the core wants done --------------------------------------

/// Open a connection to `to`; answered by `connected` or `refused`.
struct connect {
  connection_id conn;  // picked by the core, with outgoing_bit
  ip_endpoint to;
};
/// Accept connections on `port` (0: the driver picks one; `listening` says which).
struct listen {
  listener_id listener;
  std::uint16_t port = 0;
};
struct send {
  connection_id conn;
  byte_buffer bytes;
};
/// Close a connection (orderly). The driver never reports it back as `closed`.
struct close {
  connection_id conn;
  std::string reason;  // empty for an ordinary close; otherwise why (counted, logged)
};
/// Open a UDP socket on `port` (0: any; `udp_bound` says which).
struct bind_udp {
  socket_id socket;
  std::uint16_t port = 0;
};
struct send_datagram {
  socket_id socket;
  ip_endpoint to;
  byte_buffer bytes;
};
/// Something a person should read (a refused destination, a policy decision);
/// never needed for correctness.
struct notice {
  std::string text;
};

using action = std::variant<connect, listen, send, close, bind_udp, send_datagram, notice>;

/// The contract. A core is driven by exactly one thread at a time.
class session {
 public:
  virtual ~session() = default;
  /// Start: the core emits its first actions (listen, connect, bind_udp).
  virtual void start(time_point now) = 0;
  virtual void handle(time_point now, const event& e) = 0;
  /// When the core next wants a `timer` event (`never`: no deadline).
  virtual time_point next_deadline() const = 0;
  /// Actions produced since the last call; the driver moves them out and clears.
  virtual std::vector<action>& actions() = 0;
  /// End of the run: settle estimates (pending ACKs) at `now`; no more events follow.
  virtual void finish(time_point /*now*/) {}
  /// Why the core gave up for good (a refused connect, a fatal reply), empty
  /// while it has not. A client core counts its own failure in its metrics;
  /// a driver asks after each call into the core and then closes what the
  /// core still holds. The view lasts until the next call into the core.
  virtual std::string_view failure() const { return {}; }
};

/// An optional observer of what a core estimates but never sends itself: the
/// wire model's pure ACKs, on either side of its connections, reported at
/// their own times and in time order. A capture draws them; counting never
/// depends on it (a core may settle its estimate differently while observed,
/// never count differently).
class transport_observer {
 public:
  virtual ~transport_observer() = default;
  /// A pure ACK on connection `conn` (the core's id), sent by the core's side
  /// (`to_server` for a client core) or by its peer.
  virtual void pure_ack(time_point at, connection_id conn, metrics::direction d) = 0;
};

}  // namespace nudge::engine
