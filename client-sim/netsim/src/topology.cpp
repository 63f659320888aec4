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
  hosts_.push_back(host{address_only(address), access, public_realm, {}});
  host_by_address_.emplace(address_only(address), id);
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
  hosts_.push_back(host{a, access, public_realm, {}});
  for (const std::uint16_t p : ports) {
    ip_endpoint e = a;
    e.port = p;
    host_by_endpoint_.emplace(e, id);
  }
  ++shared_addresses_[a];
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
  return id;
}

void topology::attach(host_id h, nat_id n) {
  if (h >= hosts_.size()) throw std::invalid_argument("topology::attach: unknown host");
  if (n >= devices_.size()) throw std::invalid_argument("topology::attach: unknown NAT");
  hosts_[h].realm = n;
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

time_point topology::cross(time_point t, const std::vector<hop>& path, std::size_t wire_bytes) {
  for (const hop& h : path) {
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

time_point topology::fixed_round_trip(time_point now, const std::vector<hop>& path) {
  duration one_way = duration::zero();
  for (const hop& h : path) one_way += h.l->one_way_delay;
  return now + 2 * one_way;
}

route_verdict topology::route_datagram(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                       std::size_t wire_bytes) {
  return route(now, from, to, kind::datagram, tcp_flags::none, wire_bytes);
}

route_verdict topology::route_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                          tcp_flags flags, std::size_t wire_bytes) {
  return route(now, from, to, kind::segment, flags, wire_bytes);
}

route_verdict topology::translate_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                              tcp_flags flags) {
  return route(now, from, to, kind::instant_segment, flags, 0);
}

route_verdict topology::route(time_point now, const ip_endpoint& from, const ip_endpoint& to, kind k,
                              tcp_flags flags, std::size_t wire_bytes) {
  route_verdict v;
  const auto sender_id = host_at(from);
  if (!sender_id) {
    v.dropped = drop_reason::unknown_sender;
    return v;
  }
  host& sender = hosts_[*sender_id];
  path_.clear();
  path_.push_back(hop{&sender.access, &sender.free_at[0]});
  v.from = from;
  v.to = to;

  const auto direct = host_at(to);
  if (!direct || hosts_[*direct].realm != sender.realm) {
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
          if (t.reset_sent) v.reset_arrival = fixed_round_trip(now, path_);
          return v;
        }
        v.from = *t.translated;
      }
      path_.push_back(hop{&out.uplink, &out.free_at[0]});
    }
    // 3. the public side
    if (auto pub = nat_by_address_.find(address_only(to)); pub != nat_by_address_.end()) {
      device& in = *devices_[pub->second];
      path_.push_back(hop{&in.uplink, &in.free_at[1]});
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
          if (t.reset_sent) v.reset_arrival = fixed_round_trip(now, path_);
          return v;
        }
        private_dst = t.translated;
      }
      const auto receiver = host_at(*private_dst);
      if (!receiver || hosts_[*receiver].realm != pub->second) {  // mapped to a host no longer behind it
        v.dropped = drop_reason::no_route;
        return v;
      }
      v.to = *private_dst;
      v.receiver = *receiver;
    } else if (direct && hosts_[*direct].realm == public_realm) {
      v.receiver = *direct;
    } else {
      v.dropped = drop_reason::no_route;
      return v;
    }
  } else {
    v.receiver = *direct;  // 1. same realm
  }
  host& receiver = hosts_[v.receiver];
  path_.push_back(hop{&receiver.access, &receiver.free_at[1]});

  if (k == kind::datagram) {
    double loss = 0.0;  // exactly a link's own loss when it is the only lossy one
    for (const hop& h : path_)
      if (h.l->datagram_loss > 0.0) loss = loss == 0.0 ? h.l->datagram_loss : 1.0 - (1.0 - loss) * (1.0 - h.l->datagram_loss);
    if (rng_.chance(loss)) {
      v.dropped = drop_reason::lost;
      return v;
    }
    v.arrival = cross(now, path_, wire_bytes);
    return v;
  }
  const flow_key key{from, to};
  if (k == kind::instant_segment) {
    if (has(flags, tcp_flag::fin | tcp_flag::rst)) last_arrival_.erase(key);
    v.arrival = now;
    return v;
  }
  time_point arrival = cross(now, path_, wire_bytes);
  if (has(flags, tcp_flag::fin | tcp_flag::rst)) {
    if (auto it = last_arrival_.find(key); it != last_arrival_.end()) {
      arrival = std::max(arrival, it->second);
      last_arrival_.erase(it);  // nothing follows a FIN or RST on this flow
    }
  } else {
    time_point& last = last_arrival_[key];
    arrival = std::max(arrival, last);
    last = arrival;
  }
  v.arrival = arrival;
  return v;
}

}  // namespace nudge::netsim
