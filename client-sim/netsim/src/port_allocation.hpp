#pragma once
// Public port allocation shared by the UDP and the TCP NAT tables (RFC 4787 §4.2.1,
// RFC 5382 §5 applies the same rules to TCP). Private to nudge_netsim.
#include <cstdint>
#include <optional>

#include "nudge/netsim/nat.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::netsim::detail {

// Address comparisons both NAT tables (UDP and TCP) make.
inline bool same_address(const ip_endpoint& a, const ip_endpoint& b) noexcept {
  return a.is_v6 == b.is_v6 && a.address == b.address;
}

inline ip_endpoint address_only(const ip_endpoint& e) noexcept {
  ip_endpoint r = e;
  r.port = 0;
  return r;
}

/// The next free port from `cursor` (which moves past the port taken), scanning the
/// whole range once. `is_free(port)` says whether a port may be given out.
template <typename IsFree>
std::optional<std::uint16_t> allocate_sequential(const nat_config& c, std::uint32_t& cursor, IsFree&& is_free,
                                                 std::uint64_t* collisions) {
  const std::uint32_t lo = c.port_min;
  const std::uint32_t range = std::uint32_t{c.port_max} - lo + 1;
  const std::uint32_t start = (cursor >= lo && cursor - lo < range) ? cursor - lo : 0;
  for (std::uint32_t i = 0; i < range; ++i) {
    const auto port = static_cast<std::uint16_t>(lo + (start + i) % range);
    if (is_free(port)) {
      if (i > 0 && collisions != nullptr) ++*collisions;
      cursor = lo + (start + i + 1) % range;
      return port;
    }
  }
  return std::nullopt;
}

/// Up to 32 uniform draws, then one scan from a random start (a nearly full range).
template <typename IsFree>
std::optional<std::uint16_t> allocate_random(const nat_config& c, rng& r, IsFree&& is_free,
                                             std::uint64_t* collisions) {
  const std::uint32_t lo = c.port_min;
  const std::uint32_t range = std::uint32_t{c.port_max} - lo + 1;
  constexpr int draws = 32;
  for (int attempt = 0; attempt < draws; ++attempt) {
    const auto port = static_cast<std::uint16_t>(lo + r.next() % range);
    if (is_free(port)) {
      if (attempt > 0 && collisions != nullptr) ++*collisions;
      return port;
    }
  }
  if (collisions != nullptr) ++*collisions;
  const auto start = static_cast<std::uint32_t>(r.next() % range);
  for (std::uint32_t i = 0; i < range; ++i) {
    const auto port = static_cast<std::uint16_t>(lo + (start + i) % range);
    if (is_free(port)) return port;
  }
  return std::nullopt;
}

/// The config's allocation rule for a mapping of `private_port` (0: none to preserve).
/// `collisions` counts allocations that could not take their first-choice port.
template <typename IsFree>
std::optional<std::uint16_t> allocate_port(const nat_config& c, rng& r, std::uint32_t& cursor,
                                           std::uint16_t private_port, IsFree&& is_free, std::uint64_t& collisions) {
  switch (c.allocation) {
    case port_allocation::preserving:
      if (private_port != 0) {
        if (is_free(private_port)) return private_port;
        ++collisions;
      }
      return c.collision_fallback == port_allocation::random ? allocate_random(c, r, is_free, nullptr)
                                                             : allocate_sequential(c, cursor, is_free, nullptr);
    case port_allocation::sequential: return allocate_sequential(c, cursor, is_free, &collisions);
    case port_allocation::random: return allocate_random(c, r, is_free, &collisions);
  }
  return std::nullopt;
}

}  // namespace nudge::netsim::detail
