#pragma once
// nudge::netsim::tcp_nat -- the TCP side of one NAT device (RFC 5382), sans-IO.
//
// Same contract as nat (the UDP table): no socket, no clock; every call takes a
// non-decreasing `now`; port choices come from an rng the caller seeds. It sees
// segments only by their flags (SYN, ACK, FIN, RST): sequence numbers, windows and
// retransmission are the endpoints' business, not the NAT's.
//
// Behaviour (X:x private, X':x' public mapping, Y:y remote; RFC 5382 REQ numbers)
//   mapping     An outbound SYN from X:x to Y:y opens a connection and, if none
//               fits, a mapping keyed by the config's mapping behaviour (REQ-1
//               asks for endpoint-independent) with the config's port allocation.
//               TCP ports are a space of their own: a TCP and a UDP mapping may
//               hold the same public port. One owner per public port (REQ-7).
//   connections A mapping holds connections, one per remote Y:y, each with the
//               flags seen each way. It lives while any connection does.
//   filtering   An inbound segment of a live connection (same Y:y) is admitted.
//               An inbound SYN without one opens a connection only when the
//               mapping's port is live and a connection of that mapping admits
//               Y:y under the filtering behaviour (EIF: any; ADF: same address;
//               APDF: same address and port). So with APDF a SYN gets in only
//               from the Y:y the host itself sent a SYN to: simultaneous open
//               (REQ-2, TCP hole punching). Unsolicited SYNs are dropped silently
//               (REQ-4 forbids answering within 6 s; the model never answers).
//               Other inbound segments without a connection are stale.
//   timers      Every admitted segment, either way, restarts its connection's
//               idle timer: `tcp_established_timeout` once SYNs went both ways
//               (REQ-5: >= 2 h 4 min), `tcp_transitory_timeout` while partially
//               open or after a FIN or RST was seen (REQ-5: >= 4 min). A
//               connection is gone when `now >= expiry`.
//   stale       A segment for no live connection (expired, reset, never opened):
//               dropped, or answered with a RST towards its sender
//               (`tcp_stale = reset`); never a RST in answer to a RST. An outbound
//               non-SYN segment is picked up as a new established connection
//               instead when `tcp_midstream_pickup` is set (Linux).
//   hairpinning As for UDP: an inbound segment whose source is this NAT's public
//               address is admitted only with `hairpinning` (REQ-8 asks for it).
//
// Limits: no ALGs (REQ-6), no ICMP (REQ-9/10), no TIME_WAIT assassination or sequence checks, one
// public address, a connection reopened by a new SYN after a FIN/RST reuses its
// entry. Tables are hash maps: O(1) per segment at any size.
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nudge/netsim/nat.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::netsim {

/// TCP header flag bits, as on the wire (RFC 9293 §3.1).
enum class tcp_flags : std::uint8_t { none = 0, fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10 };
constexpr tcp_flags operator|(tcp_flags a, tcp_flags b) noexcept {
  return static_cast<tcp_flags>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
/// Does `set` carry any of the bits of `f`?
constexpr bool has(tcp_flags set, tcp_flags f) noexcept {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(f)) != 0;
}
namespace tcp_flag {
inline constexpr tcp_flags fin = tcp_flags::fin;
inline constexpr tcp_flags syn = tcp_flags::syn;
inline constexpr tcp_flags rst = tcp_flags::rst;
inline constexpr tcp_flags psh = tcp_flags::psh;
inline constexpr tcp_flags ack = tcp_flags::ack;
/// A data segment of an open connection.
inline constexpr tcp_flags data = psh | ack;
}  // namespace tcp_flag

/// Why a NAT (UDP or TCP) or the topology did not deliver a packet.
enum class drop_reason : std::uint8_t {
  none,
  unknown_sender,      // the source address is no host of the topology
  no_route,            // the destination is no host, or a private address in another realm
  lost,                // the link lost it (datagrams only: TCP is reliable)
  nat_port_exhausted,  // outbound: no public port free
  nat_no_mapping,      // inbound: nothing mapped at that public port (expired, or never opened)
  nat_filtered,        // inbound: a mapping exists, its filtering refused the source
  nat_hairpin_off,     // inbound from the NAT's own public address, hairpinning off
  nat_no_connection,   // TCP: a non-SYN segment that belongs to no live connection
};
std::string_view to_string(drop_reason r) noexcept;

/// What tcp_nat did with one segment.
struct tcp_translation {
  std::optional<ip_endpoint> translated;  // outbound: the public source; inbound: the private destination
  drop_reason dropped = drop_reason::none;
  bool reset_sent = false;  // the NAT answered the segment's sender with a RST (tcp_stale = reset)
  bool has_value() const noexcept { return translated.has_value(); }
  explicit operator bool() const noexcept { return translated.has_value(); }
};

struct tcp_nat_counters {
  std::uint64_t mappings_created = 0;
  std::uint64_t mappings_expired = 0;
  std::uint64_t connections_opened = 0;  // by an outbound SYN, an admitted inbound SYN or a pickup
  std::uint64_t connections_picked_up = 0;
  std::uint64_t outbound_translated = 0;
  std::uint64_t outbound_port_exhausted = 0;
  std::uint64_t outbound_no_connection = 0;
  std::uint64_t inbound_admitted = 0;
  std::uint64_t inbound_no_mapping = 0;
  std::uint64_t inbound_filtered = 0;
  std::uint64_t inbound_no_connection = 0;
  std::uint64_t inbound_not_public = 0;
  std::uint64_t inbound_hairpin_dropped = 0;
  std::uint64_t resets_sent = 0;
  std::uint64_t port_collisions = 0;
};

class tcp_nat {
 public:
  /// Throws std::invalid_argument when nat::validate(config) reports a problem.
  explicit tcp_nat(const nat_config& config, std::uint64_t seed = 1);

  /// A segment from `private_src` to `dst` leaves through the NAT.
  tcp_translation outbound(time_point now, const ip_endpoint& private_src, const ip_endpoint& dst, tcp_flags flags);
  /// A segment from `src` arrives for `public_dst`.
  tcp_translation inbound(time_point now, const ip_endpoint& src, const ip_endpoint& public_dst, tcp_flags flags);

  /// The public endpoint of the live mapping outbound(now, private_src, dst, ...) would use; changes nothing.
  std::optional<ip_endpoint> mapped_endpoint(time_point now, const ip_endpoint& private_src,
                                             const ip_endpoint& dst) const;
  /// Is the connection private_src <-> remote live at `now`?
  bool connection_live(time_point now, const ip_endpoint& private_src, const ip_endpoint& remote) const;

  /// Remove the mappings whose time has come; returns how many. outbound/inbound do it themselves.
  std::size_t expire(time_point now);
  /// No later than the next mapping expiry (may be earlier); `never` when the table is empty.
  time_point next_deadline() const;

  bool is_public_address(const ip_endpoint& e) const noexcept;
  const nat_config& config() const noexcept { return config_; }
  const tcp_nat_counters& counters() const noexcept { return counters_; }
  std::size_t mapping_count() const noexcept { return by_key_.size(); }

 private:
  enum seen : std::uint8_t { syn_out = 1, syn_in = 2, fin_out = 4, fin_in = 8, rst_seen = 16, picked_up = 32 };
  struct connection {
    ip_endpoint remote;
    std::uint8_t seen = 0;
    time_point expires;
  };
  struct mapping_key {
    ip_endpoint private_src;
    ip_endpoint remote;  // zero for EIM, address only for ADM, full for APDM
    friend bool operator==(const mapping_key&, const mapping_key&) = default;
  };
  struct mapping_key_hash {
    std::size_t operator()(const mapping_key& k) const noexcept;
  };
  struct mapping {
    mapping_key key;
    std::vector<connection> connections;
    time_point expires;   // the latest connection expiry
    time_point armed_at;  // the heap entry that counts; never later than `expires`
    std::uint32_t generation = 0;
    std::uint16_t public_port = 0;
    bool live = false;
  };
  struct timer {
    time_point at;
    std::uint32_t slot;
    std::uint32_t generation;
  };

  mapping_key make_key(const ip_endpoint& private_src, const ip_endpoint& dst) const noexcept;
  std::uint32_t open_mapping(const mapping_key& key, std::uint16_t private_port);
  void remove_mapping(std::uint32_t slot);
  connection* find_connection(mapping& m, const ip_endpoint& remote, time_point now);
  connection& open_connection(std::uint32_t slot, const ip_endpoint& remote, time_point now);
  void note(std::uint32_t slot, connection& c, std::uint8_t seen_bits, time_point now);
  ip_endpoint public_endpoint(std::uint16_t port) const noexcept;
  void expire_mappings(time_point now, std::size_t& expired);
  void arm(std::uint32_t slot, time_point at);

  nat_config config_;
  rng rng_;
  std::uint32_t port_cursor_;
  tcp_nat_counters counters_;
  std::vector<mapping> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<timer> timers_;  // min-heap on `at`; re-armed when a mapping was refreshed
  std::unordered_map<mapping_key, std::uint32_t, mapping_key_hash> by_key_;
  std::unordered_map<std::uint16_t, std::uint32_t> by_port_;
};

}  // namespace nudge::netsim
