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

netsim::link_params client_link(const link_model& l) {
  return netsim::link_params{l.one_way_delay, l.jitter, l.udp_loss, l.rate_bps};
}

}  // namespace

virtual_network::virtual_network(const run_plan& plan, std::size_t clients, const std::vector<std::size_t>& nat_group)
    : plan_(plan), clients_(clients), topo_(plan.seed ^ 0x4E4554ull), behind_nat_(clients, false),
      device_public_(clients, false), nodes_(clients + 1) {
  const netsim::link_params link = client_link(plan.link);
  // Per [[nat]] entry: the device its next client joins, and how many it holds.
  std::vector<std::pair<netsim::nat_id, std::uint32_t>> filling(plan.nat_mix.size(), {0, 0});
  for (std::size_t i = 0; i < clients; ++i) {
    const std::size_t g = nat_group[i];
    if (plan.nat_mix.empty() || plan.nat_mix[g].preset == "none") {
      const std::uint16_t o = client_host(i, 0).port;
      topo_.add_host(client_host(i, 0), link,
                     {static_cast<std::uint16_t>(tcp_port_base(0) + o), static_cast<std::uint16_t>(tcp_port_base(1) + o)});
      continue;
    }
    behind_nat_[i] = true;
    const netsim::host_id h = topo_.add_host(private_host(i, 0), link);
    auto& [device, held] = filling[g];
    if (held == 0) {
      // A new device, numbered (address, port seed) by its first client: one client per
      // device gives the addresses and port draws of the per-client NATs before.
      auto nc = *netsim::preset(plan.nat_mix[g].preset, nat_public(i, 0));
      if (plan.nat_mix[g].udp_timeout > duration::zero())
        nc.udp_mapping_timeout = nc.udp_timeout_established = plan.nat_mix[g].udp_timeout;
      if (plan.nat_mix[g].tcp_timeout > duration::zero()) nc.tcp_established_timeout = plan.nat_mix[g].tcp_timeout;
      device = topo_.add_nat(nc, {}, plan.seed ^ (0x4E4154ull + i));
      device_public_[i] = true;
    }
    topo_.attach(h, device);
    if (++held == plan.nat_mix[g].clients_per_device) held = 0;
  }
  topo_.add_host(server_host, {});  // the server's host: zero-delay, so each path has the client's link once
}

ip_endpoint virtual_network::host_of(node_id n, std::uint16_t port) const {
  if (!is_client(n)) {
    ip_endpoint e = server_host;
    e.port = port;
    return e;
  }
  if (behind_nat_[n]) return private_host(n, port);
  ip_endpoint e = client_host(n, 0);
  e.port = port;
  return e;
}

ip_endpoint virtual_network::client_tcp_local(node_id n, std::uint8_t ordinal) const {
  return behind_nat_[n] ? private_host(n, tcp_port_base(ordinal)) : client_host(n, tcp_port_base(ordinal));
}

std::variant<ip_endpoint, std::string> virtual_network::listen(node_id n, engine::listener_id l, std::uint16_t port) {
  if (port == 0 && !is_client(n)) port = server_listeners_++ == 0 ? server_tcp_port : next_server_port_++;
  if (port == 0) port = client_host(n, client_port_base).port;
  const ip_endpoint at = host_of(n, port);
  if (!listeners_.emplace(at, bound{n, l}).second) return "address in use: " + at.to_string();
  return at;
}

std::variant<ip_endpoint, std::string> virtual_network::bind_udp(node_id n, engine::socket_id s, std::uint16_t port) {
  if (port == 0) {
    if (!is_client(n)) port = server_sockets_++ == 0 ? server_udp_port : next_server_port_++;
    else port = behind_nat_[n] ? private_udp_port : client_host(n, client_port_base).port;
  }
  const ip_endpoint at = host_of(n, port);
  bound_socket entry{};
  entry.node = n;
  entry.id = s;
  if (!sockets_.emplace(at, entry).second) return "address in use: " + at.to_string();
  nodes_[n].sockets.emplace_back(s, at);
  return at;
}

const ip_endpoint* virtual_network::socket_address(node_id n, engine::socket_id s) const {
  for (const auto& [id, at] : nodes_[n].sockets)
    if (id == s) return &at;
  return nullptr;
}

std::variant<virtual_network::dialled, std::string> virtual_network::dial(time_point now, node_id n,
                                                                        engine::connection_id id,
                                                                        const ip_endpoint& to) {
  node_sockets& mine = nodes_[n];
  // A client's address plan has two source-port slots; a client that opens a
  // connection per request (HTTP without keep-alive) reuses them in turn, each
  // long closed by then. EMSMDB's clients never dial more than two.
  const auto ordinal = static_cast<std::uint8_t>(mine.dialled % 2);
  const ip_endpoint local = is_client(n) ? client_tcp_local(n, ordinal) : host_of(n, next_server_port_);
  // The handshake takes no time here (the cores count it), but the NATs see it.
  const netsim::topology::flow_id from_dialer = topo_.flow(local, to);
  const netsim::route_verdict syn = topo_.translate_tcp_segment(now, from_dialer, netsim::tcp_flag::syn);
  if (!syn.delivered()) {
    if (syn.dropped == netsim::drop_reason::no_route || syn.dropped == netsim::drop_reason::unknown_sender)
      return "no route to " + to.to_string();
    return "connection to " + to.to_string() + " timed out (" + std::string(netsim::to_string(syn.dropped)) + ")";
  }
  const auto it = listeners_.find(syn.to);
  if (it == listeners_.end()) return "nobody listens at " + to.to_string();
  const netsim::topology::flow_id from_acceptor = topo_.flow(syn.to, syn.from);
  topo_.translate_tcp_segment(now, from_acceptor, netsim::tcp_flag::syn | netsim::tcp_flag::ack);
  if (!is_client(n)) ++next_server_port_;
  std::uint32_t index = free_conns_;
  if (index != none) {
    free_conns_ = conns_[index].next_of_dialer;
  } else {
    index = static_cast<std::uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  connection& c = conns_[index];
  const std::uint32_t generation = c.generation;
  c = connection{};
  c.generation = generation;
  c.dialer = n;
  c.acceptor = it->second.node;
  c.dialer_id = id;
  c.listener = it->second.id;
  c.ordinal = ordinal;
  c.next_of_dialer = mine.first_dialled;
  if (mine.first_dialled != none) conns_[mine.first_dialled].prev_of_dialer = index;
  c.dialer_local = local;
  c.dialed = to;
  c.acceptor_local = syn.to;
  c.peer_seen = syn.from;
  c.from_dialer = from_dialer;
  c.from_acceptor = from_acceptor;
  mine.first_dialled = index;
  ++mine.dialled;
  dialled d{};
  d.index = index;
  d.id = acceptor_id(index);
  d.acceptor = c.acceptor;
  d.listener = c.listener;
  d.dialer_local = local;
  d.peer_seen = syn.from;
  return d;
}

void virtual_network::recycle_if_done(std::uint32_t index) {
  connection& c = conns_[index];
  if (!c.in_use || c.in_flight != 0 || !c.dialer_done || !c.acceptor_done) return;
  // Unlink it from its dialer's list, then onto the free list under a new generation.
  if (c.prev_of_dialer != none) conns_[c.prev_of_dialer].next_of_dialer = c.next_of_dialer;
  else nodes_[c.dialer].first_dialled = c.next_of_dialer;
  if (c.next_of_dialer != none) conns_[c.next_of_dialer].prev_of_dialer = c.prev_of_dialer;
  c.in_use = false;
  c.open = false;
  ++c.generation;
  c.next_of_dialer = free_conns_;
  c.prev_of_dialer = none;
  free_conns_ = index;
}

std::uint32_t virtual_network::find(node_id n, engine::connection_id id) const {
  if (!engine::is_outgoing(id)) {
    const auto index = static_cast<std::uint32_t>(id);
    if (index >= conns_.size()) return none;
    const connection& c = conns_[index];
    return c.in_use && c.acceptor == n && c.generation == (id >> 32) ? index : none;
  }
  for (std::uint32_t i = nodes_[n].first_dialled; i != none; i = conns_[i].next_of_dialer)
    if (conns_[i].dialer_id == id) return i;
  return none;
}

std::pair<node_id, engine::connection_id> virtual_network::other_end(std::uint32_t index, node_id n) const {
  const connection& c = conns_[index];
  if (c.dialer == n) return {c.acceptor, acceptor_id(index)};
  return {c.dialer, c.dialer_id};
}

bool virtual_network::close(time_point now, std::uint32_t index, node_id from) {
  connection& c = conns_[index];
  const bool by_dialer = c.dialer == from;
  (by_dialer ? c.dialer_done : c.acceptor_done) = true;
  if (!c.open) {
    recycle_if_done(index);
    return false;
  }
  c.open = false;
  const netsim::route_verdict fin = topo_.translate_tcp_segment(now, by_dialer ? c.from_dialer : c.from_acceptor,
                                                                netsim::tcp_flag::fin | netsim::tcp_flag::ack);
  // The other end is told at once when the FIN gets through; otherwise it learns nothing.
  if (fin.delivered()) (by_dialer ? c.acceptor_done : c.dialer_done) = true;
  recycle_if_done(index);
  return fin.delivered();
}

bool virtual_network::reset(std::uint32_t index, node_id at) {
  connection& c = conns_[index];
  if (!c.open) return false;
  c.open = false;
  (c.dialer == at ? c.dialer_done : c.acceptor_done) = true;
  return true;  // the caller tells `at`'s core, then releases the event that carried it
}

bool virtual_network::nat_public_address(const ip_endpoint& to) const {
  if (to.is_v6) return false;
  const std::uint32_t a = to.v4_host_order();
  if ((a & 0xFFC00000u) != nat_public_base) return false;
  const std::size_t i = a - nat_public_base - 2;
  return i < clients_ && device_public_[i];
}

std::optional<virtual_network::datagram_route> virtual_network::route(time_point now, node_id from,
                                                                      engine::socket_id s, const ip_endpoint& to,
                                                                      std::size_t bytes) {
  node_sockets& me = nodes_[from];
  const bool cached = me.datagram_cached && me.datagram_socket == s && me.datagram_to == to;
  netsim::topology::flow_id flow = me.datagram_flow;
  auto target = sockets_.end();
  if (!cached) {
    const ip_endpoint* local = socket_address(from, s);
    // Headed nowhere: no socket there, nor a NAT's public side (checked before the NATs see it).
    if (local) target = sockets_.find(to);
    if (!local || (target == sockets_.end() && !nat_public_address(to))) {
      ++no_route_;
      return std::nullopt;
    }
    if (target == sockets_.end()) {
      flow = topo_.flow(*local, to);
    } else {
      bound_socket& b = target->second;
      if (!b.flow_cached || b.flow_from != *local) {
        b.flow_cached = true;
        b.flow_from = *local;
        b.flow = topo_.flow(*local, to);
      }
      flow = b.flow;
    }
    // A client keeps the one it sent to last (sockets never unbind, so the check above holds for it).
    if (is_client(from) && target != sockets_.end()) {
      me.datagram_cached = true;
      me.datagram_socket = s;
      me.datagram_to = to;
      me.datagram_flow = flow;
      me.datagram_receiver = target->second;
    }
  }
  const netsim::route_verdict v = topo_.route_datagram(now, flow, plan_.wire.udp_message(bytes).wire_bytes);
  const bound* receiver = nullptr;
  if (v.delivered()) {
    if (cached && v.to == to) {
      receiver = &me.datagram_receiver;  // untranslated: the socket it was sent to
    } else if (target != sockets_.end() && v.to == to) {
      receiver = &target->second;
    } else if (const auto it = sockets_.find(v.to); it != sockets_.end()) {
      receiver = &it->second;
    }
  }
  if (!receiver) {
    switch (v.dropped) {
      case netsim::drop_reason::lost: ++lost_; break;
      case netsim::drop_reason::no_route:
      case netsim::drop_reason::unknown_sender: ++no_route_; break;
      default: ++dropped_nat_; break;  // a NAT dropped it, or mapped it to no socket of that host
    }
    return std::nullopt;
  }
  datagram_route r{};
  r.node = receiver->node;
  r.socket = receiver->id;
  r.from = v.from;
  r.local = v.to;
  r.arrival = v.arrival;
  return r;
}

}  // namespace nudge::sim
