#include "nudge/netsim/nat.hpp"

#include "port_allocation.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace nudge::netsim {

using detail::address_only;
using detail::same_address;

namespace {

/// Lower-case, '_' -> '-'; false when the text is too long to be one of our names.
bool normalise(std::string_view text, std::string& out) {
  if (text.size() > 40) return false;
  out.clear();
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '_') c = '-';
    out.push_back(c);
  }
  return true;
}

template <typename Enum, std::size_t N>
std::optional<Enum> parse_names(std::string_view text, const std::array<Enum, N>& values,
                                std::string_view (*long_name)(Enum) noexcept,
                                std::string_view (*short_nm)(Enum) noexcept) noexcept {
  try {
    std::string n;
    if (!normalise(text, n)) return std::nullopt;
    for (Enum v : values) {
      if (n == long_name(v)) return v;
      if (short_nm != nullptr && n == short_nm(v)) return v;
    }
  } catch (...) {  // std::string allocation; cannot happen for <= 40 chars in practice
  }
  return std::nullopt;
}

constexpr std::array<mapping_behavior, 3> all_mappings = {mapping_behavior::endpoint_independent,
                                                          mapping_behavior::address_dependent,
                                                          mapping_behavior::address_and_port_dependent};
constexpr std::array<filtering_behavior, 3> all_filterings = {filtering_behavior::endpoint_independent,
                                                              filtering_behavior::address_dependent,
                                                              filtering_behavior::address_and_port_dependent};
constexpr std::array<port_allocation, 3> all_allocations = {port_allocation::preserving, port_allocation::sequential,
                                                            port_allocation::random};

constexpr std::string_view behavior_name(int i) noexcept {
  switch (i) {
    case 0: return "endpoint-independent";
    case 1: return "address-dependent";
    default: return "address-and-port-dependent";
  }
}

/// Does a session towards `remote` let a datagram from `src` in?
bool admits(filtering_behavior f, const ip_endpoint& remote, const ip_endpoint& src) noexcept {
  switch (f) {
    case filtering_behavior::endpoint_independent: return true;
    case filtering_behavior::address_dependent: return same_address(remote, src);
    case filtering_behavior::address_and_port_dependent: return remote == src;
  }
  return false;
}

template <typename Session>
void prune_sessions(std::vector<Session>& sessions, time_point now) {
  std::erase_if(sessions, [now](const auto& s) { return s.expires <= now; });
}

constexpr std::size_t port_space = 65536;

}  // namespace

// ---- names ---------------------------------------------------------------------

std::string_view to_string(mapping_behavior b) noexcept { return behavior_name(static_cast<int>(b)); }
std::string_view to_string(filtering_behavior b) noexcept { return behavior_name(static_cast<int>(b)); }

std::string_view to_string(port_allocation a) noexcept {
  switch (a) {
    case port_allocation::preserving: return "preserving";
    case port_allocation::sequential: return "sequential";
    case port_allocation::random: return "random";
  }
  return "?";
}

std::string_view short_name(mapping_behavior b) noexcept {
  switch (b) {
    case mapping_behavior::endpoint_independent: return "eim";
    case mapping_behavior::address_dependent: return "adm";
    case mapping_behavior::address_and_port_dependent: return "apdm";
  }
  return "?";
}

std::string_view short_name(filtering_behavior b) noexcept {
  switch (b) {
    case filtering_behavior::endpoint_independent: return "eif";
    case filtering_behavior::address_dependent: return "adf";
    case filtering_behavior::address_and_port_dependent: return "apdf";
  }
  return "?";
}

std::optional<mapping_behavior> parse_mapping_behavior(std::string_view text) noexcept {
  return parse_names<mapping_behavior>(text, all_mappings, &to_string, &short_name);
}
std::optional<filtering_behavior> parse_filtering_behavior(std::string_view text) noexcept {
  return parse_names<filtering_behavior>(text, all_filterings, &to_string, &short_name);
}
std::optional<port_allocation> parse_port_allocation(std::string_view text) noexcept {
  return parse_names<port_allocation>(text, all_allocations, &to_string, nullptr);
}

// ---- presets -------------------------------------------------------------------

namespace {
nat_config make(const ip_endpoint& public_address, mapping_behavior m, filtering_behavior f, port_allocation a) {
  nat_config c;
  c.mapping = m;
  c.filtering = f;
  c.allocation = a;
  c.public_address = address_only(public_address);
  return c;
}
}  // namespace

nat_config full_cone(const ip_endpoint& public_address) {
  return make(public_address, mapping_behavior::endpoint_independent, filtering_behavior::endpoint_independent,
              port_allocation::preserving);
}
nat_config restricted_cone(const ip_endpoint& public_address) {
  return make(public_address, mapping_behavior::endpoint_independent, filtering_behavior::address_dependent,
              port_allocation::preserving);
}
nat_config port_restricted_cone(const ip_endpoint& public_address) {
  return make(public_address, mapping_behavior::endpoint_independent, filtering_behavior::address_and_port_dependent,
              port_allocation::preserving);
}
nat_config symmetric(const ip_endpoint& public_address) {
  return make(public_address, mapping_behavior::address_and_port_dependent,
              filtering_behavior::address_and_port_dependent, port_allocation::random);
}
nat_config linux_snat(const ip_endpoint& public_address) {
  nat_config c = port_restricted_cone(public_address);
  c.collision_fallback = port_allocation::random;  // nat.md e2: random port on a clash
  c.udp_mapping_timeout = std::chrono::seconds(30);
  c.udp_timeout_established = std::chrono::seconds(120);
  c.established_after = std::chrono::seconds(2);
  c.inbound_refreshes = true;  // nat.md c3
  c.hairpinning = false;       // plain SNAT does not loop back
  c.null_bindings = true;      // nat.md b2
  // nf_conntrack_tcp_timeout_established (432000 s), _syn_sent and _time_wait (120 s),
  // nf_conntrack_tcp_loose=1: an ACK without an entry is picked up mid-stream.
  c.tcp_established_timeout = std::chrono::seconds(432000);
  c.tcp_transitory_timeout = std::chrono::seconds(120);
  c.tcp_stale = tcp_stale_segment::drop;
  c.tcp_midstream_pickup = true;
  return c;
}

std::optional<nat_config> preset(std::string_view name, const ip_endpoint& public_address) {
  std::string n;
  if (!normalise(name, n)) return std::nullopt;
  if (n == "full-cone") return full_cone(public_address);
  if (n == "restricted-cone") return restricted_cone(public_address);
  if (n == "port-restricted-cone") return port_restricted_cone(public_address);
  if (n == "symmetric") return symmetric(public_address);
  if (n == "linux-snat") return linux_snat(public_address);
  return std::nullopt;
}

// ---- nat -----------------------------------------------------------------------

std::size_t nat::mapping_key_hash::operator()(const mapping_key& k) const noexcept {
  protocol::ip_endpoint_hash h;
  const std::size_t a = h(k.private_src);
  return a ^ (h(k.remote) + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
}

std::size_t nat::null_key_hash::operator()(const null_key& k) const noexcept {
  return protocol::ip_endpoint_hash{}(k.remote) * 31u + k.port;
}

std::optional<std::string_view> nat::validate(const nat_config& c) noexcept {
  if (c.port_min == 0) return "port_min must be at least 1";
  if (c.port_min > c.port_max) return "port_min must not exceed port_max";
  if (c.udp_mapping_timeout <= duration::zero()) return "udp_mapping_timeout must be positive";
  if (c.udp_timeout_established <= duration::zero()) return "udp_timeout_established must be positive";
  if (c.established_after < duration::zero()) return "established_after must not be negative";
  if (c.tcp_established_timeout <= duration::zero()) return "tcp_established_timeout must be positive";
  if (c.tcp_transitory_timeout <= duration::zero()) return "tcp_transitory_timeout must be positive";
  if (c.allocation == port_allocation::preserving && c.collision_fallback == port_allocation::preserving)
    return "collision_fallback must be sequential or random";
  const auto len = c.public_address.is_v6 ? 16u : 4u;
  if (std::all_of(c.public_address.address.begin(), c.public_address.address.begin() + len,
                  [](std::uint8_t b) { return b == 0; }))
    return "public_address must be set";
  return std::nullopt;
}

nat::nat(const nat_config& config, std::uint64_t seed) : config_(config), rng_(seed), port_cursor_(config.port_min) {
  if (auto problem = validate(config_)) throw std::invalid_argument("nat_config: " + std::string(*problem));
  config_.public_address.port = 0;
}

bool nat::is_public_address(const ip_endpoint& e) const noexcept { return same_address(e, config_.public_address); }

nat::mapping_key nat::make_key(const ip_endpoint& private_src, const ip_endpoint& dst) const noexcept {
  switch (config_.mapping) {
    case mapping_behavior::endpoint_independent: return {private_src, ip_endpoint{}};
    case mapping_behavior::address_dependent: return {private_src, address_only(dst)};
    case mapping_behavior::address_and_port_dependent: return {private_src, dst};
  }
  return {private_src, dst};
}

std::uint32_t nat::find_by_key(const mapping_key& key) const {
  if (indexed_) {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? no_slot : it->second;
  }
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].live && slots_[i].key == key) return i;
  return no_slot;
}

std::uint32_t nat::find_by_port(std::uint16_t port) const {
  if (indexed_) return port_owner_[port];
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].live && slots_[i].public_port == port) return i;
  return no_slot;
}

bool nat::port_free(std::uint16_t port, const ip_endpoint& dst, time_point now) const {
  if (find_by_port(port) != no_slot) return false;
  if (config_.null_bindings && !null_bindings_.empty()) {
    auto it = null_bindings_.find(null_key{dst, port});
    if (it != null_bindings_.end() && it->second > now) return false;
  }
  return true;
}

std::optional<std::uint16_t> nat::allocate_port(std::uint16_t private_port, const ip_endpoint& dst,
                                                time_point now) {
  return detail::allocate_port(
      config_, rng_, port_cursor_, private_port, [&](std::uint16_t port) { return port_free(port, dst, now); },
      counters_.port_collisions);
}

std::uint32_t nat::create_mapping(const mapping_key& key, std::uint16_t port) {
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
  m.public_port = port;
  m.live = true;
  m.sessions.clear();
  ++live_;
  ++counters_.mappings_created;
  if (indexed_) {
    by_key_.emplace(key, slot);
    port_owner_[port] = slot;
  } else if (live_ > index_threshold) {
    build_index();
  }
  return slot;
}

void nat::build_index() {
  indexed_ = true;
  port_owner_.assign(port_space, no_slot);
  by_key_.reserve(live_ * 2);
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].live) continue;
    by_key_.emplace(slots_[i].key, i);
    port_owner_[slots_[i].public_port] = i;
  }
}

void nat::remove_mapping(std::uint32_t slot) {
  mapping& m = slots_[slot];
  if (indexed_) {
    by_key_.erase(m.key);
    port_owner_[m.public_port] = no_slot;
  }
  m.live = false;
  ++m.generation;
  std::vector<session>{}.swap(m.sessions);
  free_slots_.push_back(slot);
  --live_;
}

void nat::refresh(session& s, time_point now) const {
  const bool established = s.seen_reply && now - s.created > config_.established_after;
  const duration lifetime = established ? config_.udp_timeout_established : config_.udp_mapping_timeout;
  s.expires = std::max(s.expires, now + lifetime);
}

namespace {
struct timer_later {
  template <typename T>
  bool operator()(const T& a, const T& b) const noexcept {
    return a.at > b.at;
  }
};
}  // namespace

void nat::expire_mappings(time_point now, std::size_t& expired) {
  while (!timers_.empty() && timers_.front().at <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), timer_later{});
    const timer t = timers_.back();
    timers_.pop_back();
    mapping& m = slots_[t.slot];
    if (!m.live || m.generation != t.generation) continue;  // stale entry
    if (m.expires <= now) {
      remove_mapping(t.slot);
      ++counters_.mappings_expired;
      ++expired;
    } else {  // refreshed since: re-arm at its real expiry
      timers_.push_back(timer{m.expires, t.slot, t.generation});
      std::push_heap(timers_.begin(), timers_.end(), timer_later{});
    }
  }
}

std::size_t nat::expire(time_point now) {
  std::size_t expired = 0;
  expire_mappings(now, expired);
  sweep_null_bindings(now);
  return expired;
}

void nat::sweep_null_bindings(time_point now) {
  std::erase_if(null_bindings_, [now](const auto& kv) { return kv.second <= now; });
  null_sweep_at_ = std::max<std::size_t>(64, null_bindings_.size() * 2);
}

void nat::record_null_binding(time_point now, const ip_endpoint& remote, std::uint16_t port) {
  if (!config_.null_bindings) return;
  auto [it, inserted] = null_bindings_.try_emplace(null_key{remote, port}, now + config_.udp_mapping_timeout);
  if (!inserted) {
    if (it->second <= now) ++counters_.null_bindings_created;  // the old one had died
    it->second = now + config_.udp_mapping_timeout;
  } else {
    ++counters_.null_bindings_created;
    if (null_bindings_.size() > null_sweep_at_) sweep_null_bindings(now);
  }
}

void nat::flush() {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].live) continue;
    remove_mapping(i);
    ++counters_.mappings_flushed;
  }
  timers_.clear();
  null_bindings_.clear();
  null_sweep_at_ = 64;
}

time_point nat::next_deadline() const { return timers_.empty() ? never : timers_.front().at; }

nat_table_stats nat::table_stats() const noexcept {
  nat_table_stats s;
  s.mappings = live_;
  for (const auto& m : slots_)
    if (m.live) s.sessions += m.sessions.size();
  s.slots = slots_.size();
  s.timers = timers_.size();
  s.null_bindings = null_bindings_.size();
  s.indexed = indexed_;
  return s;
}

std::optional<ip_endpoint> nat::outbound(time_point now, const ip_endpoint& private_src, const ip_endpoint& dst) {
  std::size_t expired = 0;
  expire_mappings(now, expired);

  const mapping_key key = make_key(private_src, dst);
  std::uint32_t slot = find_by_key(key);
  const bool created = slot == no_slot;
  if (created) {
    auto port = allocate_port(private_src.port, dst, now);
    if (!port) {
      ++counters_.outbound_port_exhausted;
      return std::nullopt;
    }
    slot = create_mapping(key, *port);
  }
  mapping& m = slots_[slot];
  prune_sessions(m.sessions, now);
  auto it = std::find_if(m.sessions.begin(), m.sessions.end(), [&](const session& s) { return s.remote == dst; });
  if (it == m.sessions.end()) {
    m.sessions.push_back(session{dst, now, now, false});
    it = m.sessions.end() - 1;
  }
  refresh(*it, now);
  m.expires = created ? it->expires : std::max(m.expires, it->expires);
  if (created) {
    timers_.push_back(timer{m.expires, slot, m.generation});
    std::push_heap(timers_.begin(), timers_.end(), timer_later{});
  }
  ++counters_.outbound_translated;
  ip_endpoint pub = config_.public_address;
  pub.port = m.public_port;
  return pub;
}

std::optional<ip_endpoint> nat::inbound(time_point now, const ip_endpoint& src, const ip_endpoint& public_dst) {
  std::size_t expired = 0;
  expire_mappings(now, expired);

  if (!is_public_address(public_dst)) {
    ++counters_.inbound_not_public;
    return std::nullopt;
  }
  const bool hairpin = is_public_address(src);
  if (hairpin && !config_.hairpinning) {
    ++counters_.inbound_hairpin_dropped;
    return std::nullopt;
  }
  const std::uint32_t slot = find_by_port(public_dst.port);
  if (slot == no_slot) {
    ++counters_.inbound_no_mapping;
    if (!hairpin) record_null_binding(now, src, public_dst.port);
    return std::nullopt;
  }
  mapping& m = slots_[slot];
  prune_sessions(m.sessions, now);
  bool admitted = false;
  for (session& s : m.sessions) {
    if (!admits(config_.filtering, s.remote, src)) continue;
    admitted = true;
    if (config_.inbound_refreshes) {
      refresh(s, now);
      m.expires = std::max(m.expires, s.expires);
    }
    if (s.remote == src) s.seen_reply = true;  // after the refresh, as conntrack sets SEEN_REPLY
  }
  if (!admitted) {
    ++counters_.inbound_filtered;
    if (!hairpin) record_null_binding(now, src, public_dst.port);
    return std::nullopt;
  }
  ++counters_.inbound_admitted;
  return m.key.private_src;
}

std::optional<ip_endpoint> nat::mapped_endpoint(time_point now, const ip_endpoint& private_src,
                                                const ip_endpoint& dst) const {
  const std::uint32_t slot = find_by_key(make_key(private_src, dst));
  if (slot == no_slot || slots_[slot].expires <= now) return std::nullopt;
  ip_endpoint pub = config_.public_address;
  pub.port = slots_[slot].public_port;
  return pub;
}

}  // namespace nudge::netsim
