#pragma once
// nudge::netsim::nat -- a pure, sans-IO model of one UDP NAT (NAPT) box.
//
// What it is
//   A mapping table, nothing more. It owns no socket and reads no clock: every
//   call takes `now` (virtual or real, non-decreasing), and every random choice
//   (port allocation) comes from an nudge::rng seeded by the caller. Given the
//   same config, seed and call sequence it gives the same answers.
//   A driver puts it between a client segment and the "internet" segment:
//     client -> internet:  pub = nat.outbound(now, private_src, dst)
//                          deliver (pub -> dst), or drop on nullopt
//     internet -> client:  priv = nat.inbound(now, src, public_dst)
//                          deliver (src -> priv), or drop on nullopt
//   Client logic never knows it is behind a NAT.
//
// Behaviour (RFC 4787 terms; X:x private endpoint, X':x' its public mapping, Y:y a remote)
//   mapping    endpoint_independent (EIM): one X':x' per X:x for every Y:y
//              address_dependent (ADM): one X':x' per (X:x, Y)
//              address_and_port_dependent (APDM): one X':x' per (X:x, Y:y)
//   filtering  an inbound datagram from Y:y to X':x' is admitted when the mapping
//              holds a live "session" (a remote X:x has sent to through this
//              mapping) that matches: EIF any session; ADF a session to Y (any
//              port); APDF a session to exactly Y:y.
//   ports      preserving: keep x if x is free on the public side, else fall back
//              to `collision_fallback` (sequential or random). A preserved port
//              may lie outside [port_min, port_max] (Linux keeps port 500, nat.md
//              e4); fallback and the other strategies draw from the range.
//              sequential: next free port from a cursor; random: rng draws.
//              One public port belongs to one mapping at a time (no port
//              overloading, RFC 4787 REQ-3); all mappings share the one public IP.
//   timers     Each session (X:x -> Y:y through a mapping) has its own timer,
//              like a Linux conntrack entry; a mapping lives while any of its
//              sessions does. Outbound traffic to Y:y (re)starts that session's
//              timer (RFC 4787 REQ-6: MUST). With `inbound_refreshes` (MAY; Linux
//              does, nat.md c3) an admitted inbound datagram restarts the timers of
//              the sessions that admitted it. The timer is `udp_mapping_timeout`
//              (Linux 30 s, "unreplied"), or `udp_timeout_established` (Linux 120 s,
//              "stream"/ASSURED) for a refresh that comes more than
//              `established_after` (2 s) after the session was created and after
//              an inbound reply from exactly Y:y was seen. For a single-timer model
//              set udp_timeout_established = udp_mapping_timeout. A mapping expires
//              when `now >= expiry`.
//   expiry     The table is swept from a timer heap at the start of every
//              outbound/inbound call (and by expire(now)), so expired mappings are
//              counted when their time has come and memory stays proportional to
//              the live mappings. next_deadline() says when the next one is due.
//   null bindings (`null_bindings`, Linux only; see nat.md b2): an unsolicited or
//              filtered inbound datagram from Y:y to X':p leaves a conntrack entry
//              that, for udp_mapping_timeout, keeps port p from being allocated to
//              a new mapping whose first datagram goes to Y:y. With preserving
//              ports this is the kernel's surprise "a push before registration
//              changes the mapped port".
//   hairpinning The driver delivers a datagram whose destination is this NAT's
//              public address by calling inbound() with the translated source. An
//              inbound datagram whose source address is this NAT's own public
//              address is therefore a hairpinned one (RFC 4787 REQ-9: the source
//              is the sender's external mapping); it is admitted only with
//              `hairpinning` on, and then goes through normal filtering. outbound()
//              translates such datagrams either way (Linux would not create a
//              mapping for them; harmless).
//   inbound() only handles datagrams addressed to the public address. A datagram
//              to a client's private address is not a NAT operation: on the real
//              Internet it has no route (nat.md a3) and a stateful router drops it
//              (a1/a2). inbound() counts it (inbound_not_public) and returns nullopt.
//
// Limits (what is not modelled)
//   * UDP only here. TCP through the same device is tcp_nat (tcp_nat.hpp, RFC 5382),
//     driven through topology (topology.hpp); the virtual driver's RPC channel
//     does not go through it yet.
//   * One public address; no IP pooling, no parity/contiguity preservation, no
//     port classes (Linux keeps <512 / 512-1023 / >=1024 on a clash).
//   * Linux's 5-tuple port sharing: the kernel lets two hosts hold the same public
//     port towards different remotes and then breaks EIM for one of them (nat.md
//     e5). Here a public port has one owner, so the second host gets another port.
//   * ICMP, fragments, ALGs, packet loss and delay (that is the link model's job).
//   * Memory: sessions per mapping live in a small vector (linear search). That is
//     right for push clients (one or two remotes per socket), not for a socket that
//     talks to thousands of remotes.
//
// Scale
//   Small tables (<= index_threshold live mappings) are flat vectors searched
//   linearly: a nat per client costs a few hundred bytes. Past the threshold the
//   nat builds a hash index by key and a 64 Ki-entry public-port index (256 KiB),
//   so a nat shared by 10,000 clients does O(1) lookups.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::netsim {

using protocol::ip_endpoint;

enum class mapping_behavior : std::uint8_t { endpoint_independent, address_dependent, address_and_port_dependent };
enum class filtering_behavior : std::uint8_t { endpoint_independent, address_dependent, address_and_port_dependent };
enum class port_allocation : std::uint8_t { preserving, sequential, random };
enum class tcp_stale_segment : std::uint8_t { drop, reset };

/// Long names: "endpoint-independent", "address-dependent", "address-and-port-dependent".
std::string_view to_string(mapping_behavior b) noexcept;
std::string_view to_string(filtering_behavior b) noexcept;
/// "preserving", "sequential", "random".
std::string_view to_string(port_allocation a) noexcept;
/// "eim"/"adm"/"apdm" and "eif"/"adf"/"apdf".
std::string_view short_name(mapping_behavior b) noexcept;
std::string_view short_name(filtering_behavior b) noexcept;

/// Accept the long or the short name, case-insensitive, '_' same as '-'.
std::optional<mapping_behavior> parse_mapping_behavior(std::string_view text) noexcept;
std::optional<filtering_behavior> parse_filtering_behavior(std::string_view text) noexcept;
std::optional<port_allocation> parse_port_allocation(std::string_view text) noexcept;

struct nat_config {
  mapping_behavior mapping = mapping_behavior::endpoint_independent;
  filtering_behavior filtering = filtering_behavior::address_and_port_dependent;
  port_allocation allocation = port_allocation::preserving;
  /// With `preserving`, where to go when the private port is taken: sequential or random.
  port_allocation collision_fallback = port_allocation::sequential;
  /// Idle lifetime of a session that has not (yet) become established (Linux nf_conntrack_udp_timeout).
  duration udp_mapping_timeout = std::chrono::seconds(30);
  /// Lifetime after a refresh of an established session (Linux nf_conntrack_udp_timeout_stream).
  duration udp_timeout_established = std::chrono::seconds(120);
  /// A session becomes established on a refresh this long after its creation, once a reply was seen.
  duration established_after = std::chrono::seconds(2);
  /// Admitted inbound datagrams restart the timers (outbound always does).
  bool inbound_refreshes = true;
  bool hairpinning = false;
  /// Model Linux's conntrack entries left by unsolicited inbound datagrams (see the header comment).
  bool null_bindings = false;
  /// The NAT's one public address; the port is ignored. Must not be the unspecified address.
  ip_endpoint public_address{};
  /// Range for allocated public ports (preserved ports may lie outside it). 1 <= port_min <= port_max.
  std::uint16_t port_min = 1024;
  std::uint16_t port_max = 65535;

  // TCP (RFC 5382), used by tcp_nat; mapping, filtering, allocation, port range and
  // hairpinning above apply to TCP too (a separate port space, as in real NATs).
  /// Idle lifetime of a connection once SYNs went both ways (REQ-5: at least 2 h 4 min;
  /// many gateways use less, see docs/network-model.md).
  duration tcp_established_timeout = std::chrono::minutes(124);
  /// Idle lifetime while partially open (SYN one way) or closing (FIN or RST seen) (REQ-5: at least 4 min).
  duration tcp_transitory_timeout = std::chrono::minutes(4);
  /// What the NAT does with a segment that belongs to no live connection (its mapping expired,
  /// or it never existed): drop it silently, or answer the sender with a RST.
  tcp_stale_segment tcp_stale = tcp_stale_segment::drop;
  /// An outbound non-SYN segment with no connection opens one as established and maps it
  /// again (Linux nf_conntrack_tcp_loose=1, "mid-stream pickup").
  bool tcp_midstream_pickup = false;
};

// ---- presets -------------------------------------------------------------------
// All use the nat_config defaults for timers (30 s / 120 s, inbound refresh on;
// TCP 2 h 4 min established, 4 min transitory, stale segments dropped) and no
// hairpinning, except linux_snat.

/// RFC 3489 full cone: EIM + EIF, preserving ports.
nat_config full_cone(const ip_endpoint& public_address);
/// Restricted cone: EIM + ADF, preserving ports.
nat_config restricted_cone(const ip_endpoint& public_address);
/// Port-restricted cone: EIM + APDF, preserving ports (what Linux SNAT does, without its quirks).
nat_config port_restricted_cone(const ip_endpoint& public_address);
/// Symmetric: APDM + APDF, random ports (Linux `snat ... random` / `fully-random`).
nat_config symmetric(const ip_endpoint& public_address);
/// The kernel as observed in nat.md: EIM + APDF, ports preserved and a random port on a clash,
/// 30 s / 120 s conntrack timers refreshed both ways, null bindings, no hairpinning;
/// TCP: 5 days established, 120 s transitory (syn_sent/time_wait), mid-stream pickup.
nat_config linux_snat(const ip_endpoint& public_address);

inline constexpr std::array<std::string_view, 5> preset_names = {"full-cone", "restricted-cone",
                                                                 "port-restricted-cone", "symmetric", "linux-snat"};
/// One of preset_names (case-insensitive, '_' same as '-'); nullopt for an unknown name.
std::optional<nat_config> preset(std::string_view name, const ip_endpoint& public_address);

// ---- the model -----------------------------------------------------------------

struct nat_counters {
  std::uint64_t mappings_created = 0;
  std::uint64_t mappings_expired = 0;
  std::uint64_t mappings_flushed = 0;
  std::uint64_t outbound_translated = 0;
  std::uint64_t outbound_port_exhausted = 0;  // outbound() returned nullopt
  std::uint64_t inbound_admitted = 0;
  std::uint64_t inbound_filtered = 0;         // a mapping exists, the filter refused the source
  std::uint64_t inbound_no_mapping = 0;       // nothing mapped at that public port
  std::uint64_t inbound_not_public = 0;       // destination is not the public address
  std::uint64_t inbound_hairpin_dropped = 0;  // source is our public address, hairpinning off
  std::uint64_t port_collisions = 0;          // allocations that could not take their first-choice port
  std::uint64_t null_bindings_created = 0;
};

struct nat_table_stats {
  std::size_t mappings = 0;       // live mappings
  std::size_t sessions = 0;       // remotes held by live mappings (may include expired ones not yet pruned)
  std::size_t slots = 0;          // mapping slots allocated (peak live mappings)
  std::size_t timers = 0;         // entries in the expiry heap
  std::size_t null_bindings = 0;  // stored null bindings (may include expired ones not yet swept)
  bool indexed = false;           // hash indexes built
};

class nat {
 public:
  /// Live mappings above which the hash indexes are built (they stay afterwards).
  static constexpr std::size_t index_threshold = 16;

  /// Throws std::invalid_argument when validate(config) reports a problem.
  explicit nat(const nat_config& config, std::uint64_t seed = 1);

  /// nullopt when the config is usable, else what is wrong with it.
  static std::optional<std::string_view> validate(const nat_config& config) noexcept;

  /// A datagram from `private_src` to `dst` leaves through the NAT. Creates or refreshes
  /// the mapping and returns the translated (public) source; nullopt only when no public
  /// port is free.
  std::optional<ip_endpoint> outbound(time_point now, const ip_endpoint& private_src, const ip_endpoint& dst);

  /// A datagram from `src` arrives for `public_dst`. Returns the private endpoint to deliver
  /// it to when `public_dst` is our public address, a live mapping owns its port, and the
  /// filtering admits `src` (and, for a source that is our own public address, hairpinning
  /// is on); otherwise nullopt, counted by reason.
  std::optional<ip_endpoint> inbound(time_point now, const ip_endpoint& src, const ip_endpoint& public_dst);

  /// The public endpoint outbound(now, private_src, dst) would use if a live mapping
  /// already exists; changes nothing.
  std::optional<ip_endpoint> mapped_endpoint(time_point now, const ip_endpoint& private_src,
                                             const ip_endpoint& dst) const;

  /// Remove every mapping whose time has come and sweep null bindings; returns the
  /// number of mappings expired. outbound/inbound do the mapping part themselves.
  std::size_t expire(time_point now);

  /// Drop every mapping and null binding at once (router reboot, `conntrack -F`).
  /// Counted as mappings_flushed. The port cursor and the rng carry on.
  void flush();

  /// No later than the next mapping expiry (may be earlier); `never` when the table is empty.
  time_point next_deadline() const;

  bool is_public_address(const ip_endpoint& e) const noexcept;
  const nat_config& config() const noexcept { return config_; }
  const nat_counters& counters() const noexcept { return counters_; }
  std::size_t mapping_count() const noexcept { return live_; }
  nat_table_stats table_stats() const noexcept;

 private:
  struct session {
    ip_endpoint remote;
    time_point created;
    time_point expires;
    bool seen_reply = false;
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
    std::vector<session> sessions;
    time_point expires;
    std::uint32_t generation = 0;
    std::uint16_t public_port = 0;
    bool live = false;
  };
  struct timer {
    time_point at;
    std::uint32_t slot;
    std::uint32_t generation;
  };
  struct null_key {
    ip_endpoint remote;
    std::uint16_t port;
    friend bool operator==(const null_key&, const null_key&) = default;
  };
  struct null_key_hash {
    std::size_t operator()(const null_key& k) const noexcept;
  };
  static constexpr std::uint32_t no_slot = UINT32_MAX;

  mapping_key make_key(const ip_endpoint& private_src, const ip_endpoint& dst) const noexcept;
  std::uint32_t find_by_key(const mapping_key& key) const;
  std::uint32_t find_by_port(std::uint16_t port) const;
  bool port_free(std::uint16_t port, const ip_endpoint& dst, time_point now) const;
  std::optional<std::uint16_t> allocate_port(std::uint16_t private_port, const ip_endpoint& dst, time_point now);
  std::uint32_t create_mapping(const mapping_key& key, std::uint16_t port);
  void remove_mapping(std::uint32_t slot);
  void build_index();
  void refresh(session& s, time_point now) const;
  void expire_mappings(time_point now, std::size_t& expired);
  void record_null_binding(time_point now, const ip_endpoint& remote, std::uint16_t port);
  void sweep_null_bindings(time_point now);

  nat_config config_;
  rng rng_;
  nat_counters counters_;
  std::vector<mapping> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<timer> timers_;  // min-heap on `at`; one valid entry per live mapping
  std::size_t live_ = 0;
  std::uint32_t port_cursor_;
  bool indexed_ = false;
  std::unordered_map<mapping_key, std::uint32_t, mapping_key_hash> by_key_;  // only when indexed_
  std::vector<std::uint32_t> port_owner_;                                    // 65536 entries when indexed_
  std::unordered_map<null_key, time_point, null_key_hash> null_bindings_;
  std::size_t null_sweep_at_ = 64;
};

}  // namespace nudge::netsim
