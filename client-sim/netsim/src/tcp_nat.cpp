#include "nudge/netsim/tcp_nat.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "port_allocation.hpp"

namespace nudge::netsim {

using detail::address_only;
using detail::same_address;

namespace {

/// Does a connection towards `remote` let a SYN from `src` open another one?
bool admits(filtering_behavior f, const ip_endpoint& remote, const ip_endpoint& src) noexcept {
  switch (f) {
    case filtering_behavior::endpoint_independent: return true;
    case filtering_behavior::address_dependent: return same_address(remote, src);
    case filtering_behavior::address_and_port_dependent: return remote == src;
  }
  return false;
}

struct timer_later {
  template <typename T>
  bool operator()(const T& a, const T& b) const noexcept {
    return a.at > b.at;
  }
};

constexpr std::uint32_t no_slot = UINT32_MAX;

}  // namespace

std::string_view to_string(drop_reason r) noexcept {
  switch (r) {
    case drop_reason::none: return "none";
    case drop_reason::unknown_sender: return "unknown-sender";
    case drop_reason::no_route: return "no-route";
    case drop_reason::lost: return "lost";
    case drop_reason::nat_port_exhausted: return "nat-port-exhausted";
    case drop_reason::nat_no_mapping: return "nat-no-mapping";
    case drop_reason::nat_filtered: return "nat-filtered";
    case drop_reason::nat_hairpin_off: return "nat-hairpin-off";
    case drop_reason::nat_no_connection: return "nat-no-connection";
  }
  return "unknown";
}

std::size_t tcp_nat::mapping_key_hash::operator()(const mapping_key& k) const noexcept {
  protocol::ip_endpoint_hash h;
  const std::size_t a = h(k.private_src);
  return a ^ (h(k.remote) + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
}

tcp_nat::tcp_nat(const nat_config& config, std::uint64_t seed)
    : config_(config), rng_(seed), port_cursor_(config.port_min) {
  if (auto problem = nat::validate(config_)) throw std::invalid_argument("nat_config: " + std::string(*problem));
  config_.public_address.port = 0;
}

bool tcp_nat::is_public_address(const ip_endpoint& e) const noexcept {
  return same_address(e, config_.public_address);
}

ip_endpoint tcp_nat::public_endpoint(std::uint16_t port) const noexcept {
  ip_endpoint pub = config_.public_address;
  pub.port = port;
  return pub;
}

tcp_nat::mapping_key tcp_nat::make_key(const ip_endpoint& private_src, const ip_endpoint& dst) const noexcept {
  switch (config_.mapping) {
    case mapping_behavior::endpoint_independent: return {private_src, ip_endpoint{}};
    case mapping_behavior::address_dependent: return {private_src, address_only(dst)};
    case mapping_behavior::address_and_port_dependent: return {private_src, dst};
  }
  return {private_src, dst};
}

void tcp_nat::arm(std::uint32_t slot, time_point at) {
  slots_[slot].armed_at = at;
  timers_.push_back(timer{at, slot, slots_[slot].generation});
  std::push_heap(timers_.begin(), timers_.end(), timer_later{});
}

std::uint32_t tcp_nat::open_mapping(const mapping_key& key, std::uint16_t private_port) {
  const auto port = detail::allocate_port(
      config_, rng_, port_cursor_, private_port, [this](std::uint16_t p) { return !by_port_.contains(p); },
      counters_.port_collisions);
  if (!port) return no_slot;
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  mapping& m = slots_[slot];
  m.key = key;
  m.public_port = *port;
  m.live = true;
  m.armed_at = never;  // armed by the first note()
  m.connections.clear();
  by_key_.emplace(key, slot);
  by_port_.emplace(*port, slot);
  ++counters_.mappings_created;
  return slot;
}

void tcp_nat::remove_mapping(std::uint32_t slot) {
  mapping& m = slots_[slot];
  by_key_.erase(m.key);
  by_port_.erase(m.public_port);
  m.live = false;
  ++m.generation;
  std::vector<connection>{}.swap(m.connections);
  free_slots_.push_back(slot);
}

tcp_nat::connection* tcp_nat::find_connection(mapping& m, const ip_endpoint& remote, time_point now) {
  std::erase_if(m.connections, [now](const connection& c) { return c.expires <= now; });
  auto it = std::find_if(m.connections.begin(), m.connections.end(),
                         [&](const connection& c) { return c.remote == remote; });
  return it == m.connections.end() ? nullptr : &*it;
}

tcp_nat::connection& tcp_nat::open_connection(std::uint32_t slot, const ip_endpoint& remote, time_point now) {
  mapping& m = slots_[slot];
  m.connections.push_back(connection{remote, 0, now});
  ++counters_.connections_opened;
  return m.connections.back();
}

void tcp_nat::note(std::uint32_t slot, connection& c, std::uint8_t seen_bits, time_point now) {
  constexpr std::uint8_t closing = fin_out | fin_in | rst_seen;
  const bool syn = (seen_bits & (syn_out | syn_in)) != 0;
  if (syn && (c.seen & closing) != 0 && (seen_bits & rst_seen) == 0) c.seen = 0;  // the pair is reused
  c.seen |= seen_bits;
  const bool both_syns = (c.seen & syn_out) != 0 && (c.seen & syn_in) != 0;
  const bool established = (both_syns || (c.seen & picked_up) != 0) && (c.seen & closing) == 0;
  // Restart, not extend: a FIN or RST shortens the idle timer, as in conntrack.
  c.expires = now + (established ? config_.tcp_established_timeout : config_.tcp_transitory_timeout);

  mapping& m = slots_[slot];
  time_point latest = c.expires;
  for (const connection& other : m.connections) latest = std::max(latest, other.expires);
  m.expires = latest;
  if (m.expires < m.armed_at) arm(slot, m.expires);  // a later expiry is re-armed when the timer fires
}

void tcp_nat::expire_mappings(time_point now, std::size_t& expired) {
  while (!timers_.empty() && timers_.front().at <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), timer_later{});
    const timer t = timers_.back();
    timers_.pop_back();
    mapping& m = slots_[t.slot];
    if (!m.live || m.generation != t.generation || m.armed_at != t.at) continue;  // superseded
    if (m.expires <= now) {
      remove_mapping(t.slot);
      ++counters_.mappings_expired;
      ++expired;
    } else {
      arm(t.slot, m.expires);
    }
  }
}

std::size_t tcp_nat::expire(time_point now) {
  std::size_t expired = 0;
  expire_mappings(now, expired);
  return expired;
}

time_point tcp_nat::next_deadline() const { return timers_.empty() ? never : timers_.front().at; }

tcp_translation tcp_nat::outbound(time_point now, const ip_endpoint& private_src, const ip_endpoint& dst,
                                  tcp_flags flags) {
  std::size_t expired = 0;
  expire_mappings(now, expired);
  const bool syn = has(flags, tcp_flag::syn);
  const bool rst = has(flags, tcp_flag::rst);

  const mapping_key key = make_key(private_src, dst);
  auto found = by_key_.find(key);
  std::uint32_t slot = found == by_key_.end() ? no_slot : found->second;
  connection* c = slot == no_slot ? nullptr : find_connection(slots_[slot], dst, now);
  if (c == nullptr) {
    if (rst || (!syn && !config_.tcp_midstream_pickup)) {
      ++counters_.outbound_no_connection;
      const bool reset = !rst && config_.tcp_stale == tcp_stale_segment::reset;
      if (reset) ++counters_.resets_sent;
      return {std::nullopt, drop_reason::nat_no_connection, reset};
    }
    if (slot == no_slot) {
      slot = open_mapping(key, private_src.port);
      if (slot == no_slot) {
        ++counters_.outbound_port_exhausted;
        return {std::nullopt, drop_reason::nat_port_exhausted, false};
      }
    }
    c = &open_connection(slot, dst, now);
    if (!syn) {
      c->seen |= picked_up;
      ++counters_.connections_picked_up;
    }
  }
  const std::uint8_t bits = static_cast<std::uint8_t>((syn ? syn_out : 0) |
                                                      (has(flags, tcp_flag::fin) ? fin_out : 0) |
                                                      (rst ? rst_seen : 0));
  note(slot, *c, bits, now);
  ++counters_.outbound_translated;
  return {public_endpoint(slots_[slot].public_port), drop_reason::none, false};
}

tcp_translation tcp_nat::inbound(time_point now, const ip_endpoint& src, const ip_endpoint& public_dst,
                                 tcp_flags flags) {
  std::size_t expired = 0;
  expire_mappings(now, expired);
  const bool syn = has(flags, tcp_flag::syn);
  const bool rst = has(flags, tcp_flag::rst);
  const bool reset_if_stale = !rst && config_.tcp_stale == tcp_stale_segment::reset;

  if (!is_public_address(public_dst)) {
    ++counters_.inbound_not_public;
    return {std::nullopt, drop_reason::no_route, false};
  }
  if (is_public_address(src) && !config_.hairpinning) {
    ++counters_.inbound_hairpin_dropped;
    return {std::nullopt, drop_reason::nat_hairpin_off, false};
  }
  auto owner = by_port_.find(public_dst.port);
  if (owner == by_port_.end()) {
    ++counters_.inbound_no_mapping;
    if (reset_if_stale && !syn) ++counters_.resets_sent;  // an unsolicited SYN is never answered (REQ-4)
    return {std::nullopt, drop_reason::nat_no_mapping, reset_if_stale && !syn};
  }
  const std::uint32_t slot = owner->second;
  mapping& m = slots_[slot];
  connection* c = find_connection(m, src, now);
  if (c == nullptr) {
    const bool plain_syn = syn && !has(flags, tcp_flag::ack) && !rst;
    if (!plain_syn) {
      ++counters_.inbound_no_connection;
      if (reset_if_stale) ++counters_.resets_sent;
      return {std::nullopt, drop_reason::nat_no_connection, reset_if_stale};
    }
    const bool admitted = std::any_of(m.connections.begin(), m.connections.end(),
                                      [&](const connection& k) { return admits(config_.filtering, k.remote, src); });
    if (!admitted) {
      ++counters_.inbound_filtered;
      return {std::nullopt, drop_reason::nat_filtered, false};
    }
    c = &open_connection(slot, src, now);
  }
  const std::uint8_t bits = static_cast<std::uint8_t>((syn ? syn_in : 0) |
                                                      (has(flags, tcp_flag::fin) ? fin_in : 0) |
                                                      (rst ? rst_seen : 0));
  note(slot, *c, bits, now);
  ++counters_.inbound_admitted;
  return {m.key.private_src, drop_reason::none, false};
}

std::optional<ip_endpoint> tcp_nat::mapped_endpoint(time_point now, const ip_endpoint& private_src,
                                                    const ip_endpoint& dst) const {
  auto found = by_key_.find(make_key(private_src, dst));
  if (found == by_key_.end() || slots_[found->second].expires <= now) return std::nullopt;
  return public_endpoint(slots_[found->second].public_port);
}

bool tcp_nat::connection_live(time_point now, const ip_endpoint& private_src, const ip_endpoint& remote) const {
  auto found = by_key_.find(make_key(private_src, remote));
  if (found == by_key_.end()) return false;
  const auto& conns = slots_[found->second].connections;
  return std::any_of(conns.begin(), conns.end(),
                     [&](const connection& c) { return c.remote == remote && c.expires > now; });
}

}  // namespace nudge::netsim
