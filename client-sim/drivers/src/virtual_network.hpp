#pragma once
// The virtual driver's network, all in one place: the address plan, who
// listens and who is bound where, the table of virtual TCP connections, and a
// netsim::topology (hosts, access links, NAT devices with UDP and TCP tables)
// that routes every datagram and TCP segment. It moves nothing itself: the
// driver asks it where a connection leads, when bytes arrive and where a
// datagram lands, and carries the events. Nodes are numbered: clients 0..n-1,
// the server n; each is a host of the topology (the server's link is
// zero-delay, each client's is plan.link: the same figures as the single link
// model before it).
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
//                      20000 + 20000k, UDP on 50000); the world sees its
//                      device's 100.64.x.y, x.y from the index of the device's
//                      first client (a [[nat]] entry's clients_per_device
//                      clients of that kind share one device, in client order)
// A direct client owns only those ports of its shared address: anything else
// sent there has no route.
// Connections open instantly at the dialer's time (the cores count the
// handshake), but the SYN and SYN-ACK go through the topology: a NAT that drops
// the SYN (no mapping, filtered) or no route refuses the connection; so does
// nobody listening. Bytes arrive after the links' serialisation and delay, in
// order, each message a segment through the NATs: one whose NAT connection
// expired (RFC 5382 idle timers) vanishes, or comes back as a RST (tcp_stale =
// reset) that closes the sender's end. A close is a FIN, instant; the other end
// learns of it when the FIN gets through.
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
#include "nudge/netsim/topology.hpp"
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
  /// with engine::outgoing_bit); the acceptor knows it by acceptor_id(index):
  /// its index in the table, with the record's generation above bit 32 once
  /// the record is reused (a closed connection's record is recycled when both
  /// ends are done with it and no event in flight names it).
  // What each message reads comes first, within one cache line.
  struct alignas(64) connection {
    node_id dialer = 0;
    node_id acceptor = 0;
    engine::connection_id dialer_id = 0;
    std::uint32_t next_of_dialer = none;  // the dialer's next connection in the table (or the next free record)
    std::uint32_t prev_of_dialer = none;  // the dialer's previous one (none: the first)
    std::uint32_t generation = 0;         // how often this record was reused
    std::uint32_t in_flight = 0;          // queued events that name this record
    std::uint32_t listener = 0;           // the listener that accepted it
    std::uint8_t ordinal = 0;             // the dialer's source-port slot: its 0th, 1st, 0th, ... connection
    bool open = true;
    bool dialer_done = false;    // the dialer closed it, or was told it is closed
    bool acceptor_done = false;  // the same for the acceptor
    bool in_use = true;          // false: on the free list
    netsim::topology::flow_id from_dialer = 0;    // dialer_local -> dialed
    netsim::topology::flow_id from_acceptor = 0;  // acceptor_local -> peer_seen
    ip_endpoint dialer_local;    // the dialer's own endpoint
    ip_endpoint dialed;          // where it dialled (as the dialer names the acceptor)
    ip_endpoint acceptor_local;  // the acceptor's own endpoint (after any NAT)
    ip_endpoint peer_seen;       // the dialer as the acceptor sees it (after any NAT)
  };
  /// What became of a message sent on a connection.
  struct segment_fate {
    bool delivered = false;
    time_point arrival{};
    bool reset = false;  // dropped by a NAT that answered the sender with a RST, arriving at reset_at
    time_point reset_at{};
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
    std::uint32_t index;   // in the table
    engine::connection_id id;  // the acceptor's connection id
    node_id acceptor;
    engine::listener_id listener;
    ip_endpoint dialer_local;  // as the dialer's host sees it
    ip_endpoint peer_seen;     // the dialer as the acceptor sees it (a NAT's public side)
  };
  /// Opens a connection from `n` to a listener at `to` (SYN and SYN-ACK through the
  /// topology at `now`); the reason when there is no route, a NAT drops the SYN or nobody listens.
  std::variant<dialled, std::string> dial(time_point now, node_id n, engine::connection_id id, const ip_endpoint& to);
  /// The table index of connection `id` as node `n` names it (none: unknown).
  std::uint32_t find(node_id n, engine::connection_id id) const;
  const connection& at(std::uint32_t index) const { return conns_[index]; }
  /// The acceptor's id for connection `index` (never reused: the generation tells uses apart).
  engine::connection_id acceptor_id(std::uint32_t index) const {
    return index | (engine::connection_id{conns_[index].generation} << 32);
  }
  /// Records in the table, in use or free: bounded by the connections open (or
  /// named by events in flight) at once, not by those ever opened.
  std::size_t connection_records() const { return conns_.size(); }
  /// An event in flight names connection `index` (hold), or has been handled (release).
  void hold(std::uint32_t index) { ++conns_[index].in_flight; }
  void release(std::uint32_t index) {
    connection& c = conns_[index];
    if (--c.in_flight == 0 && c.dialer_done && c.acceptor_done) recycle_if_done(index);
  }
  /// The other end of connection `index` from `n`, and its name for it.
  std::pair<node_id, engine::connection_id> other_end(std::uint32_t index, node_id n) const;
  /// `from` closes connection `index` (a FIN through the topology); false when it already
  /// was closed (the other end closed first) or the FIN does not get through.
  bool close(time_point now, std::uint32_t index, node_id from);
  /// Marks connection `index` closed by a RST reaching `at`'s end (which is then
  /// told, and done with it); false when it already was closed.
  bool reset(std::uint32_t index, node_id at);
  /// What becomes of `bytes` sent now by `from` on connection `index`.
  segment_fate send(time_point now, std::uint32_t index, node_id from, std::size_t bytes) {
    const connection& c = conns_[index];
    const std::size_t wire = plan_.wire.tcp_message(bytes).wire_bytes;
    const auto v = topo_.route_tcp_data(now, c.dialer == from ? c.from_dialer : c.from_acceptor, netsim::tcp_flag::data, wire);
    segment_fate f;
    f.delivered = v.delivered();
    f.arrival = v.arrival;
    f.reset = v.reset_sent;
    f.reset_at = v.reset_arrival;
    if (!f.delivered) ++tcp_dropped_;
    return f;
  }

  // ---- datagrams ----
  /// Where a datagram `from`'s socket sends to `to` lands, and when; nullopt when
  /// it is dropped (no route, a NAT, loss: counted here).
  std::optional<datagram_route> route(time_point now, node_id from, engine::socket_id s, const ip_endpoint& to,
                                      std::size_t bytes);

  std::uint64_t dropped_by_nat() const { return dropped_nat_; }
  std::uint64_t no_route() const { return no_route_; }
  std::uint64_t lost() const { return lost_; }
  /// TCP segments a NAT dropped (expired or never-opened connections); not in the result.
  std::uint64_t tcp_dropped() const { return tcp_dropped_; }
  const netsim::topology& topology() const { return topo_; }
  /// Every delivery takes the same constant delay: arrivals come in send order.
  bool constant_delay() const { return plan_.link.jitter == duration::zero() && plan_.link.rate_bps <= 0; }

 private:
  struct bound {
    node_id node;
    std::uint32_t id;  // listener or socket id
  };
  // A bound socket, and the flow the last datagram sent to it came by (a server
  // sends to many sockets, each from the same one of its own).
  struct bound_socket : bound {
    bool flow_cached = false;
    ip_endpoint flow_from;
    netsim::topology::flow_id flow = 0;
  };
  struct node_sockets {
    std::vector<std::pair<engine::socket_id, ip_endpoint>> sockets;
    std::uint32_t first_dialled = none;
    std::uint32_t dialled = 0;  // connections dialled so far
    // Where this node last sent a datagram to a bound socket (a client sends to one
    // address): that route's flow and receiver, so the next one looks nothing up.
    bool datagram_cached = false;
    engine::socket_id datagram_socket = 0;
    ip_endpoint datagram_to;
    netsim::topology::flow_id datagram_flow = 0;
    bound datagram_receiver{};
  };
  ip_endpoint host_of(node_id n, std::uint16_t port) const;
  /// Frees connection `index`'s record when both ends are done and no event names it.
  void recycle_if_done(std::uint32_t index);
  ip_endpoint client_tcp_local(node_id n, std::uint8_t ordinal) const;
  bool behind_nat(node_id n) const { return is_client(n) && behind_nat_[n]; }
  /// Is `to` some NAT device's public address?
  bool nat_public_address(const ip_endpoint& to) const;

  const run_plan& plan_;
  std::size_t clients_;
  netsim::topology topo_;
  std::vector<bool> behind_nat_;      // per client
  std::vector<bool> device_public_;   // per client index: a device's public address is numbered by it
  std::vector<node_sockets> nodes_;
  std::unordered_map<ip_endpoint, bound, protocol::ip_endpoint_hash> listeners_;
  std::unordered_map<ip_endpoint, bound_socket, protocol::ip_endpoint_hash> sockets_;  // by local address
  std::vector<connection> conns_;
  std::uint32_t free_conns_ = none;  // the first free record, chained by next_of_dialer
  std::uint16_t next_server_port_ = 30000;
  std::uint32_t server_listeners_ = 0;
  std::uint32_t server_sockets_ = 0;
  std::uint64_t dropped_nat_ = 0;
  std::uint64_t no_route_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t tcp_dropped_ = 0;
};

}  // namespace nudge::sim
