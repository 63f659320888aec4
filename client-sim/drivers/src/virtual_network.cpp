#include "virtual_network.hpp"

#include <algorithm>

namespace nudge::sim {

namespace {

const ip_endpoint server_host = ip_endpoint::v4(192, 0, 2, 1, 0);
constexpr std::uint32_t clients_per_host = 20000;
constexpr std::uint32_t direct_base = (198u << 24) | (18u << 16);
constexpr std::uint32_t private_base = 10u << 24;
constexpr std::uint32_t nat_public_base = (100u << 24) | (64u << 16);
constexpr std::uint16_t client_port_base = 20000;  // a direct client's ports: base + (i mod 20000)
constexpr std::uint16_t private_udp_port = 50000;
// The notifier's ports in the captures: a server's first listener and its first UDP socket.
constexpr std::uint16_t server_tcp_port = 7777;
constexpr std::uint16_t server_udp_port = 7778;

ip_endpoint client_host(std::size_t i, std::uint16_t port_base) {
  const auto host = static_cast<std::uint32_t>(i / clients_per_host);
  const auto offset = static_cast<std::uint16_t>(i % clients_per_host);
  return ip_endpoint::v4(direct_base | (host + 2), static_cast<std::uint16_t>(port_base + offset));
}
ip_endpoint private_host(std::size_t i, std::uint16_t port) {
  return ip_endpoint::v4(private_base + 2 + static_cast<std::uint32_t>(i), port);
}
ip_endpoint nat_public(std::size_t i, std::uint16_t port) {
  return ip_endpoint::v4(nat_public_base + 2 + static_cast<std::uint32_t>(i), port);
}
// A client's k-th connection leaves from this port (its own host's, or base + i mod 20000 on a shared one).
std::uint16_t tcp_port_base(std::uint8_t ordinal) { return static_cast<std::uint16_t>(client_port_base + 20000u * ordinal); }

}  // namespace

virtual_network::virtual_network(const run_plan& plan, std::size_t clients, const std::vector<std::size_t>& nat_group)
    : plan_(plan), clients_(clients), rng_(plan.seed ^ 0x4E4554ull), nats_(clients), nodes_(clients + 1) {
  for (std::size_t i = 0; i < clients; ++i) {
    const std::size_t g = nat_group[i];
    if (plan.nat_mix.empty() || plan.nat_mix[g].preset == "none") continue;
    auto nc = *netsim::preset(plan.nat_mix[g].preset, nat_public(i, 0));
    if (plan.nat_mix[g].udp_timeout > duration::zero())
      nc.udp_mapping_timeout = nc.udp_timeout_established = plan.nat_mix[g].udp_timeout;
    nats_[i] = std::make_unique<netsim::nat>(nc, plan.seed ^ (0x4E4154ull + i));
  }
  if (plan.link.rate_bps > 0) link_free_.assign(clients, {});
}

ip_endpoint virtual_network::host_of(node_id n, std::uint16_t port) const {
  if (!is_client(n)) {
    ip_endpoint e = server_host;
    e.port = port;
    return e;
  }
  if (nats_[n]) return private_host(n, port);
  ip_endpoint e = client_host(n, 0);
  e.port = port;
  return e;
}

ip_endpoint virtual_network::client_tcp_local(node_id n, std::uint8_t ordinal) const {
  return nats_[n] ? private_host(n, tcp_port_base(ordinal)) : client_host(n, tcp_port_base(ordinal));
}

std::variant<ip_endpoint, std::string> virtual_network::listen(node_id n, engine::listener_id l, std::uint16_t port) {
  if (port == 0 && !is_client(n)) port = server_listeners_++ == 0 ? server_tcp_port : next_server_port_++;
  if (port == 0) port = client_host(n, client_port_base).port;
  const ip_endpoint at = host_of(n, port);
  // Behind a NAT nobody outside reaches the listener: it listens, unreachable.
  if (is_client(n) && nats_[n]) return at;
  if (!listeners_.emplace(at, bound{n, l}).second) return "address in use: " + at.to_string();
  return at;
}

std::variant<ip_endpoint, std::string> virtual_network::bind_udp(node_id n, engine::socket_id s, std::uint16_t port) {
  if (port == 0) {
    if (!is_client(n)) port = server_sockets_++ == 0 ? server_udp_port : next_server_port_++;
    else port = nats_[n] ? private_udp_port : client_host(n, client_port_base).port;
  }
  const ip_endpoint at = host_of(n, port);
  if (!sockets_.emplace(at, bound{n, s}).second) return "address in use: " + at.to_string();
  nodes_[n].sockets.emplace_back(s, at);
  return at;
}

const ip_endpoint* virtual_network::socket_address(node_id n, engine::socket_id s) const {
  for (const auto& [id, at] : nodes_[n].sockets)
    if (id == s) return &at;
  return nullptr;
}

std::variant<virtual_network::dialled, std::string> virtual_network::dial(node_id n, engine::connection_id id,
                                                                        const ip_endpoint& to) {
  const auto it = listeners_.find(to);
  if (it == listeners_.end()) return "nobody listens at " + to.to_string();
  node_sockets& mine = nodes_[n];
  dialled d{};
  d.index = static_cast<std::uint32_t>(conns_.size());
  d.acceptor = it->second.node;
  d.listener = it->second.id;
  const std::uint8_t ordinal = mine.dialled;
  if (is_client(n)) {
    if (ordinal >= 2) return "the virtual address plan gives a client two connections";
    d.dialer_local = client_tcp_local(n, ordinal);
    d.peer_seen = nats_[n] ? nat_public(n, static_cast<std::uint16_t>(tcp_port_base(ordinal) + 1)) : d.dialer_local;
  } else {
    d.dialer_local = host_of(n, next_server_port_++);
    d.peer_seen = d.dialer_local;
  }
  connection c;
  c.dialer = n;
  c.acceptor = d.acceptor;
  c.dialer_id = id;
  c.ordinal = ordinal;
  c.next_of_dialer = mine.first_dialled;
  mine.first_dialled = d.index;
  ++mine.dialled;
  conns_.push_back(c);
  return d;
}

std::uint32_t virtual_network::find(node_id n, engine::connection_id id) const {
  if (!engine::is_outgoing(id)) {
    return id < conns_.size() && conns_[id].acceptor == n ? static_cast<std::uint32_t>(id) : none;
  }
  for (std::uint32_t i = nodes_[n].first_dialled; i != none; i = conns_[i].next_of_dialer)
    if (conns_[i].dialer_id == id) return i;
  return none;
}

std::pair<node_id, engine::connection_id> virtual_network::other_end(std::uint32_t index, node_id n) const {
  const connection& c = conns_[index];
  if (c.dialer == n) return {c.acceptor, index};
  return {c.dialer, c.dialer_id};
}

duration virtual_network::delay() {
  duration d = plan_.link.one_way_delay;
  if (plan_.link.jitter > duration::zero()) d += rng_.between(duration::zero(), plan_.link.jitter);
  return d;
}

time_point virtual_network::serialise(time_point start, node_id n, int dir, std::uint64_t wire_bytes) {
  time_point& free_at = link_free_[n][static_cast<std::size_t>(dir)];
  const auto bits = duration(static_cast<std::int64_t>(static_cast<double>(wire_bytes) * 8e9 / plan_.link.rate_bps));
  free_at = std::max(start, free_at) + bits;
  return free_at;
}

time_point virtual_network::transmitted(time_point now, node_id from, node_id to, std::uint64_t wire_bytes) {
  if (plan_.link.rate_bps <= 0) return now;
  time_point t = now;
  if (is_client(from)) t = serialise(t, from, 0, wire_bytes);  // its uplink
  if (is_client(to)) t = serialise(t, to, 1, wire_bytes);      // then the receiver's downlink
  return t;
}

time_point virtual_network::tcp_arrival(time_point now, std::uint32_t index, node_id from, std::size_t bytes) {
  connection& c = conns_[index];
  const node_id to = c.dialer == from ? c.acceptor : c.dialer;
  time_point& last = c.last_arrival[c.dialer == from ? 0 : 1];
  const time_point sent = transmitted(now, from, to, plan_.wire.tcp_message(bytes).wire_bytes);
  last = std::max(sent + delay(), last);  // TCP delivers in order
  return last;
}

std::optional<node_id> virtual_network::node_at(const ip_endpoint& to) const {
  if (to.is_v6) return std::nullopt;
  const std::uint32_t a = to.v4_host_order();
  if ((a & 0xFFC00000u) != nat_public_base) return std::nullopt;
  const std::size_t i = a - nat_public_base - 2;
  if (i < clients_ && nats_[i]) return static_cast<node_id>(i);
  return std::nullopt;
}

std::optional<virtual_network::datagram_route> virtual_network::route(time_point now, node_id from,
                                                                      engine::socket_id s, const ip_endpoint& to,
                                                                      std::size_t bytes) {
  const ip_endpoint* local = socket_address(from, s);
  if (!local) {
    ++no_route_;
    return std::nullopt;
  }
  // Where it is headed: a NAT's public side, or a directly reachable socket.
  const std::optional<node_id> behind = node_at(to);
  const bound* direct = nullptr;
  if (!behind) {
    const auto it = sockets_.find(to);
    if (it != sockets_.end() && !(is_client(it->second.node) && nats_[it->second.node])) direct = &it->second;
  }
  if (!behind && !direct) {
    ++no_route_;  // e.g. a private address registered from behind a NAT
    return std::nullopt;
  }
  ip_endpoint src = *local;
  if (is_client(from) && nats_[from]) {
    auto mapped = nats_[from]->outbound(now, src, to);
    if (!mapped) {
      ++dropped_nat_;
      return std::nullopt;
    }
    src = *mapped;
  }
  datagram_route r{};
  r.from = src;
  if (behind) {
    auto inside = nats_[*behind]->inbound(now, src, to);
    const auto it = inside ? sockets_.find(*inside) : sockets_.end();
    if (it == sockets_.end() || it->second.node != *behind) {
      ++dropped_nat_;  // no mapping, filtered, or mapped to no socket of that host
      return std::nullopt;
    }
    r.node = *behind;
    r.socket = it->second.id;
    r.local = *inside;
  } else {
    r.node = direct->node;
    r.socket = direct->id;
    r.local = to;
  }
  if (rng_.chance(plan_.link.udp_loss)) {
    ++lost_;
    return std::nullopt;
  }
  const time_point sent = transmitted(now, from, r.node, plan_.wire.udp_message(bytes).wire_bytes);
  r.arrival = sent + delay();
  return r;
}

}  // namespace nudge::sim
