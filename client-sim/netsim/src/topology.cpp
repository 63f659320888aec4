#include "nudge/netsim/topology.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace nudge::netsim {

namespace {

ip_endpoint address_only(const ip_endpoint& e) noexcept {
  ip_endpoint r = e;
  r.port = 0;
  return r;
}

/// Which NAT counter moved tells why nat::inbound refused a datagram.
drop_reason udp_inbound_reason(const nat_counters& before, const nat_counters& after) noexcept {
  if (after.inbound_hairpin_dropped != before.inbound_hairpin_dropped) return drop_reason::nat_hairpin_off;
  if (after.inbound_no_mapping != before.inbound_no_mapping) return drop_reason::nat_no_mapping;
  if (after.inbound_filtered != before.inbound_filtered) return drop_reason::nat_filtered;
  return drop_reason::no_route;  // inbound_not_public
}

}  // namespace

std::size_t topology::flow_key_hash::operator()(const flow_key& k) const noexcept {
  protocol::ip_endpoint_hash h;
  const std::size_t a = h(k.from);
  return a ^ (h(k.to) + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
}

topology::topology(std::uint64_t seed) : rng_(seed), seed_(seed) {}

void topology::claim_address(const ip_endpoint& address) const {
  const ip_endpoint a = address_only(address);
  if (host_by_address_.contains(a) || nat_by_address_.contains(a) || shared_addresses_.contains(a))
    throw std::invalid_argument("topology: address " + a.address_string() + " is already used");
}

host_id topology::add_host(const ip_endpoint& address, const link_params& access) {
  claim_address(address);
  const auto id = static_cast<host_id>(hosts_.size());
  hosts_.push_back(host{access, public_realm, {}, address_only(address)});
  host_by_address_.emplace(address_only(address), id);
  ++generation_;
  return id;
}

host_id topology::add_host(const ip_endpoint& address, const link_params& access,
                           const std::vector<std::uint16_t>& ports) {
  const ip_endpoint a = address_only(address);
  if (host_by_address_.contains(a) || nat_by_address_.contains(a))
    throw std::invalid_argument("topology: address " + a.address_string() + " is already used");
  for (const std::uint16_t p : ports) {
    ip_endpoint e = a;
    e.port = p;
    if (host_by_endpoint_.contains(e))
      throw std::invalid_argument("topology: endpoint " + e.to_string() + " is already used");
  }
  const auto id = static_cast<host_id>(hosts_.size());
  hosts_.push_back(host{access, public_realm, {}, a});
  for (const std::uint16_t p : ports) {
    ip_endpoint e = a;
    e.port = p;
    host_by_endpoint_.emplace(e, id);
  }
  ++shared_addresses_[a];
  ++generation_;
  return id;
}

nat_id topology::add_nat(const nat_config& config, const link_params& uplink, std::optional<std::uint64_t> port_seed) {
  if (auto problem = nat::validate(config)) throw std::invalid_argument("nat_config: " + std::string(*problem));
  claim_address(config.public_address);
  const auto id = static_cast<nat_id>(devices_.size());
  // Each device draws its ports from its own stream, fixed by the topology seed and its index.
  std::uint64_t stream = seed_ ^ (0xA0761D6478BD642Full * (id + 1));
  devices_.push_back(std::make_unique<device>(config, port_seed ? *port_seed : splitmix64(stream)));
  devices_.back()->uplink = uplink;
  nat_by_address_.emplace(address_only(config.public_address), id);
  ++generation_;
  return id;
}

void topology::attach(host_id h, nat_id n) {
  if (h >= hosts_.size()) throw std::invalid_argument("topology::attach: unknown host");
  if (n >= devices_.size()) throw std::invalid_argument("topology::attach: unknown NAT");
  hosts_[h].realm = n;
  ++generation_;
}

std::optional<host_id> topology::host_at(const ip_endpoint& e) const {
  if (!host_by_endpoint_.empty()) {
    if (auto at = host_by_endpoint_.find(e); at != host_by_endpoint_.end()) return at->second;
  }
  auto it = host_by_address_.find(address_only(e));
  if (it == host_by_address_.end()) return std::nullopt;
  return it->second;
}

std::optional<nat_id> topology::nat_of(host_id h) const {
  const nat_id realm = hosts_.at(h).realm;
  if (realm == public_realm) return std::nullopt;
  return realm;
}

time_point topology::next_deadline() const {
  time_point t = never;
  for (const auto& d : devices_) t = std::min({t, d->udp.next_deadline(), d->tcp.next_deadline()});
  return t;
}

std::size_t topology::expire(time_point now) {
  std::size_t n = 0;
  for (auto& d : devices_) n += d->udp.expire(now) + d->tcp.expire(now);
  return n;
}

time_point topology::cross(time_point t, const path& p, std::size_t wire_bytes) {
  for (const hop& h : p) {
    if (h.l->rate_bps > 0) {
      const auto serialize =
          duration(static_cast<std::int64_t>(static_cast<double>(wire_bytes) * 8e9 / h.l->rate_bps));
      *h.free_at = std::max(t, *h.free_at) + serialize;
      t = *h.free_at;
    }
    t += h.l->one_way_delay;
    if (h.l->jitter > duration::zero()) t += rng_.between(duration::zero(), h.l->jitter);
  }
  return t;
}

time_point topology::fixed_round_trip(time_point now, const path& p) {
  duration one_way = duration::zero();
  for (const hop& h : p) one_way += h.l->one_way_delay;
  return now + 2 * one_way;
}

topology::flow_id topology::flow(const ip_endpoint& from, const ip_endpoint& to) {
  const auto [it, added] = flow_by_key_.try_emplace(flow_key{from, to}, static_cast<flow_id>(flows_.size()));
  if (added) {
    flow_state f;
    f.from = from;
    f.to = to;
    flows_.push_back(f);
  }
  return it->second;
}

void topology::resolve(flow_state& f) const {
  const auto sender = host_at(f.from);
  const auto direct = host_at(f.to);
  const auto pub = nat_by_address_.find(address_only(f.to));
  f.sender = sender ? *sender : no_host;
  f.direct = direct ? *direct : no_host;
  f.to_nat = pub == nat_by_address_.end() ? public_realm : pub->second;
  f.inbound_receiver = no_host;
  f.fixed = false;
  if (f.sender != no_host && f.direct != no_host && hosts_[f.direct].realm == hosts_[f.sender].realm) {
    const link_params& up = hosts_[f.sender].access;
    const link_params& down = hosts_[f.direct].access;
    auto plain = [](const link_params& l) { return l.rate_bps <= 0 && l.jitter <= duration::zero(); };
    if (plain(up) && plain(down)) {
      f.fixed = true;
      f.fixed_delay = up.one_way_delay + down.one_way_delay;
      double loss = 0.0;  // as route() combines them, in the same order
      for (const link_params* l : {&up, &down})
        if (l->datagram_loss > 0.0) loss = loss == 0.0 ? l->datagram_loss : 1.0 - (1.0 - loss) * (1.0 - l->datagram_loss);
      f.fixed_loss = loss;
    }
  }
  f.resolved = generation_;
}

route_verdict topology::route_datagram(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                       std::size_t wire_bytes) {
  return route(now, flow(from, to), kind::datagram, tcp_flags::none, wire_bytes);
}

route_verdict topology::route_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                          tcp_flags flags, std::size_t wire_bytes) {
  return route(now, flow(from, to), kind::segment, flags, wire_bytes);
}

route_verdict topology::translate_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                              tcp_flags flags) {
  return route(now, flow(from, to), kind::instant_segment, flags, 0);
}

route_verdict topology::route(time_point now, flow_id id, kind k, tcp_flags flags, std::size_t wire_bytes) {
  flow_state& f = flows_[id];
  if (f.resolved != generation_) resolve(f);
  const ip_endpoint& from = f.from;
  const ip_endpoint& to = f.to;
  route_verdict v;
  if (f.sender == no_host) {
    v.dropped = drop_reason::unknown_sender;
    return v;
  }
  if (f.fixed) {
    // The same verdict as the general path below, without building it: one
    // loss draw per datagram, the links' fixed delays, TCP kept in order.
    v.receiver = f.direct;
    v.from = from;
    v.to = to;
    if (k == kind::datagram) {
      if (rng_.chance(f.fixed_loss)) {
        v.dropped = drop_reason::lost;
        return v;
      }
      v.arrival = now + f.fixed_delay;
      return v;
    }
    if (k == kind::instant_segment) {
      if (has(flags, tcp_flag::fin | tcp_flag::rst)) f.last_arrival = time_point{};
      v.arrival = now;
      return v;
    }
    const time_point arrival = std::max(now + f.fixed_delay, f.last_arrival);
    f.last_arrival = has(flags, tcp_flag::fin | tcp_flag::rst) ? time_point{} : arrival;
    v.arrival = arrival;
    return v;
  }
  host& sender = hosts_[f.sender];
  path links;
  links.push_back(hop{&sender.access, &sender.free_at[0]});
  v.from = from;
  v.to = to;

  if (f.direct == no_host || hosts_[f.direct].realm != sender.realm) {
    // 2. out through the sender's NAT
    if (sender.realm != public_realm) {
      device& out = *devices_[sender.realm];
      if (k == kind::datagram) {
        const auto mapped = out.udp.outbound(now, from, to);
        if (!mapped) {
          v.dropped = drop_reason::nat_port_exhausted;
          return v;
        }
        v.from = *mapped;
      } else {
        const tcp_translation t = out.tcp.outbound(now, from, to, flags);
        if (!t) {
          v.dropped = t.dropped;
          v.reset_sent = t.reset_sent;
          if (t.reset_sent) v.reset_arrival = fixed_round_trip(now, links);
          return v;
        }
        v.from = *t.translated;
      }
      links.push_back(hop{&out.uplink, &out.free_at[0]});
    }
    // 3. the public side
    if (f.to_nat != public_realm) {
      device& in = *devices_[f.to_nat];
      links.push_back(hop{&in.uplink, &in.free_at[1]});
      std::optional<ip_endpoint> private_dst;
      if (k == kind::datagram) {
        const nat_counters before = in.udp.counters();
        private_dst = in.udp.inbound(now, v.from, to);
        if (!private_dst) {
          v.dropped = udp_inbound_reason(before, in.udp.counters());
          return v;
        }
      } else {
        const tcp_translation t = in.tcp.inbound(now, v.from, to, flags);
        if (!t) {
          v.dropped = t.dropped;
          v.reset_sent = t.reset_sent;
          if (t.reset_sent) v.reset_arrival = fixed_round_trip(now, links);
          return v;
        }
        private_dst = t.translated;
      }
      // The host behind the NAT: looked up again only when the mapping names another endpoint.
      if (f.inbound_receiver == no_host || f.inbound_private != *private_dst) {
        const auto receiver = host_at(*private_dst);
        f.inbound_private = *private_dst;
        f.inbound_receiver = receiver ? *receiver : no_host;
      }
      if (f.inbound_receiver == no_host || hosts_[f.inbound_receiver].realm != f.to_nat) {
        // mapped to a host no longer behind it (or none)
        v.dropped = drop_reason::no_route;
        return v;
      }
      v.to = *private_dst;
      v.receiver = f.inbound_receiver;
    } else if (f.direct != no_host && hosts_[f.direct].realm == public_realm) {
      v.receiver = f.direct;
    } else {
      v.dropped = drop_reason::no_route;
      return v;
    }
  } else {
    v.receiver = f.direct;  // 1. same realm
  }
  host& receiver = hosts_[v.receiver];
  links.push_back(hop{&receiver.access, &receiver.free_at[1]});

  if (k == kind::datagram) {
    double loss = 0.0;  // exactly a link's own loss when it is the only lossy one
    for (const hop& h : links)
      if (h.l->datagram_loss > 0.0) loss = loss == 0.0 ? h.l->datagram_loss : 1.0 - (1.0 - loss) * (1.0 - h.l->datagram_loss);
    if (rng_.chance(loss)) {
      v.dropped = drop_reason::lost;
      return v;
    }
    v.arrival = cross(now, links, wire_bytes);
    return v;
  }
  if (k == kind::instant_segment) {
    if (has(flags, tcp_flag::fin | tcp_flag::rst)) f.last_arrival = time_point{};
    v.arrival = now;
    return v;
  }
  // TCP delivers in order: no segment of a flow arrives before the one sent before it.
  const time_point arrival = std::max(cross(now, links, wire_bytes), f.last_arrival);
  // Nothing follows a FIN or RST on this flow: the next one starts afresh.
  f.last_arrival = has(flags, tcp_flag::fin | tcp_flag::rst) ? time_point{} : arrival;
  v.arrival = arrival;
  return v;
}

}  // namespace nudge::netsim
