#pragma once
// The virtual driver's network, all in one place (a general topology can
// replace it whole): the address plan, who listens and who is bound where,
// the table of virtual TCP connections, the NAT boxes (client-sim/netsim) and
// the access-link model. It moves nothing itself: the driver asks it where a
// connection leads, when bytes arrive and where a datagram lands, and carries
// the events. Nodes are numbered: clients 0..n-1, the server n.
//
// Addresses (documentation ranges; they never reach a socket):
//   server             192.0.2.1, on the ports it asks for; asked for any, its
//                      first listener gets 7777 and its first UDP socket 7778
//                      (the notifier's ports in the captures), then 30000 on
//   a direct client i  198.18.h.x, 20,000 clients per host address from
//                      198.18.0.2 on: its k-th connection from port
//                      20000 + 20000k + (i mod 20000) (k < 2), its UDP socket on
//                      20000 + (i mod 20000)
//   behind a NAT       its private address 10.0.0.2 + i (connections from
//                      20000 + 20000k, UDP on 50000); the world sees the NAT's
//                      100.64.x.y (TCP is not NAT-modelled beyond that address:
//                      outbound connections stay mapped while open)
// Connections open instantly at the dialer's time (the cores count the
// handshake); bytes arrive after the link's serialisation and delay, in order.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "nudge/engine/session.hpp"
#include "nudge/netsim/nat.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/random.hpp"
#include "nudge/sim/run_plan.hpp"

namespace nudge::sim {

using node_id = std::uint32_t;
using protocol::ip_endpoint;

class virtual_network {
 public:
  /// A virtual TCP connection: the dialer named it `dialer_id` (a core's id,
  /// with engine::outgoing_bit); the acceptor knows it by its index in the table.
  struct connection {
    node_id dialer = 0;
    node_id acceptor = 0;
    engine::connection_id dialer_id = 0;
    std::uint32_t next_of_dialer = none;  // the dialer's next connection in the table
    std::uint8_t ordinal = 0;             // the dialer's 0th, 1st, ... connection
    bool open = true;
    std::array<time_point, 2> last_arrival{};  // [0] dialer -> acceptor, [1] back: TCP keeps order
  };
  static constexpr std::uint32_t none = ~std::uint32_t{0};

  /// Where a datagram lands: on `node`'s socket, seen as coming from `from`.
  struct datagram_route {
    node_id node;
    engine::socket_id socket;
    ip_endpoint from;   // the source as the receiver sees it (after any NAT)
    ip_endpoint local;  // the receiving socket's address as its host sees it
    time_point arrival;
  };

  virtual_network(const run_plan& plan, std::size_t clients, const std::vector<std::size_t>& nat_group);

  node_id server_node() const { return static_cast<node_id>(clients_); }
  bool is_client(node_id n) const { return n < clients_; }

  // ---- listeners and sockets ----
  /// Where node `n` listens (its host's address; a port when it asked for 0);
  /// the reason when the address is taken.
  std::variant<ip_endpoint, std::string> listen(node_id n, engine::listener_id l, std::uint16_t port);
  std::variant<ip_endpoint, std::string> bind_udp(node_id n, engine::socket_id s, std::uint16_t port);
  /// A bound socket's address as its host sees it (null: not bound).
  const ip_endpoint* socket_address(node_id n, engine::socket_id s) const;

  // ---- connections ----
  struct dialled {
    std::uint32_t index;   // in the table; the acceptor's connection id
    node_id acceptor;
    engine::listener_id listener;
    ip_endpoint dialer_local;  // as the dialer's host sees it
    ip_endpoint peer_seen;     // the dialer as the acceptor sees it (a NAT's public side)
  };
  /// Opens a connection from `n` to a listener at `to`; the reason when nobody listens there.
  std::variant<dialled, std::string> dial(node_id n, engine::connection_id id, const ip_endpoint& to);
  /// The table index of connection `id` as node `n` names it (none: unknown).
  std::uint32_t find(node_id n, engine::connection_id id) const;
  const connection& at(std::uint32_t index) const { return conns_[index]; }
  /// The other end of connection `index` from `n`, and its name for it.
  std::pair<node_id, engine::connection_id> other_end(std::uint32_t index, node_id n) const;
  /// Marks connection `index` closed; false when it already was (the other end closed first).
  bool close(std::uint32_t index) {
    const bool was = conns_[index].open;
    conns_[index].open = false;
    return was;
  }
  /// When `bytes` sent now by `from` on connection `index` arrive at the other end.
  time_point tcp_arrival(time_point now, std::uint32_t index, node_id from, std::size_t bytes);

  // ---- datagrams ----
  /// Where a datagram `from`'s socket sends to `to` lands, and when; nullopt when
  /// it is dropped (no route, a NAT, loss: counted here).
  std::optional<datagram_route> route(time_point now, node_id from, engine::socket_id s, const ip_endpoint& to,
                                      std::size_t bytes);

  std::uint64_t dropped_by_nat() const { return dropped_nat_; }
  std::uint64_t no_route() const { return no_route_; }
  std::uint64_t lost() const { return lost_; }
  /// Every delivery takes the same constant delay: arrivals come in send order.
  bool constant_delay() const { return plan_.link.jitter == duration::zero() && plan_.link.rate_bps <= 0; }

 private:
  struct bound {
    node_id node;
    std::uint32_t id;  // listener or socket id
  };
  struct node_sockets {
    std::vector<std::pair<engine::socket_id, ip_endpoint>> sockets;
    std::uint32_t first_dialled = none;
    std::uint8_t dialled = 0;
  };
  ip_endpoint host_of(node_id n, std::uint16_t port) const;
  ip_endpoint client_tcp_local(node_id n, std::uint8_t ordinal) const;
  /// The node whose host has this address (its NAT's public side included).
  std::optional<node_id> node_at(const ip_endpoint& to) const;
  duration delay();
  /// When the last bit of `wire_bytes` has crossed `from`'s uplink, then `to`'s downlink.
  time_point transmitted(time_point now, node_id from, node_id to, std::uint64_t wire_bytes);
  time_point serialise(time_point start, node_id n, int dir, std::uint64_t wire_bytes);

  const run_plan& plan_;
  std::size_t clients_;
  rng rng_;
  std::vector<std::unique_ptr<netsim::nat>> nats_;  // per client; null: directly reachable
  std::vector<node_sockets> nodes_;
  std::unordered_map<ip_endpoint, bound, protocol::ip_endpoint_hash> listeners_;
  std::unordered_map<ip_endpoint, bound, protocol::ip_endpoint_hash> sockets_;  // by local address
  std::vector<connection> conns_;
  std::vector<std::array<time_point, 2>> link_free_;  // per client: when its link is free, up and down
  std::uint16_t next_server_port_ = 30000;
  std::uint32_t server_listeners_ = 0;
  std::uint32_t server_sockets_ = 0;
  std::uint64_t dropped_nat_ = 0;
  std::uint64_t no_route_ = 0;
  std::uint64_t lost_ = 0;
};

}  // namespace nudge::sim
