#pragma once
// nudge::netsim::topology -- hosts, access links and NAT devices in virtual time.
//
// What it is
//   The emulated Internet a driver moves packets through, sans-IO: it owns no
//   socket and reads no clock. A driver asks, for each datagram or TCP segment
//   (or a whole message, with the flags of its first and last segment), where it
//   goes; the answer is a verdict: delivered to a host, with the endpoints the
//   receiver sees and the arrival time, or dropped with a reason. The same calls
//   in the same order with the same seed give the same verdicts.
//
// Shape
//   * Hosts have an address and an access link. A host is on the public side
//     until attach(host, nat) puts it behind a NAT; any number of hosts may sit
//     behind one NAT and share its public address (with distinct public ports).
//   * A NAT device is a UDP table (nat, RFC 4787) and a TCP table (tcp_nat,
//     RFC 5382) built from one nat_config, plus an uplink that every packet
//     entering or leaving its private side crosses (a home's shared broadband).
//   * Addresses are unique across the whole topology (no two hosts, nor a host
//     and a NAT, share one), so the sender is found by the source address;
//     except that hosts added with their own ports (add_host with ports) may
//     share an address, each owning its ports (the virtual driver's plan puts
//     20,000 direct clients on one address): found by address and port.
//
// Routing (from -> to, `from` the sender's own endpoint, `to` as the sender names it)
//   1. `to` names a host in the sender's realm (the same NAT's private side, or
//      both public): delivered directly, untranslated (a LAN, or the Internet).
//   2. Else a sender behind a NAT goes out through it: the source becomes the
//      mapped public endpoint (or the packet is dropped: no port, or TCP without
//      a connection).
//   3. On the public side, `to` is a public host (delivered), or a NAT's public
//      address (its inbound filter decides; the receiver sees the translated
//      source; a NAT's own address is hairpinning), or anything else, such as a
//      private address behind another NAT: no_route (RFC 1918 addresses are not
//      routed on the Internet, shared/reference/nat.md a3).
//   So a server reaches a NATed client only through a mapping the client opened
//   and the filter admits; two NATed clients meet only through both NATs.
//
// Time
//   NAT state is updated at the send time `now` (calls must not go back in time);
//   the transit delay is small next to the NAT timers. A packet then crosses its
//   links in order (sender's access link, sender's NAT uplink, receiver's NAT
//   uplink, receiver's access link; only those on the path), each adding, as
//   sim::link_model does: the wait for the link and wire_bytes * 8 / rate_bps
//   when rate_bps > 0 (per link and direction), the one-way delay, and a uniform
//   jitter in [0, jitter]. TCP segments of one flow (from, to) never overtake
//   each other (TCP delivers in order). A datagram is lost with probability
//   1 - prod(1 - loss) over its links (exactly the link's loss when only one link
//   loses), drawn after the NAT saw it (as the virtual driver does); TCP segments
//   are never lost. translate_tcp_segment is a segment that takes no time (a
//   handshake or close a driver models as instant): NAT and route only.
// Randomness
//   One rng seeded by the constructor: per routed datagram one loss draw (always,
//   even at zero loss), then one jitter draw per link on the path with jitter > 0;
//   per TCP segment only the jitter draws. NAT port draws use seeds derived from it.
// RST answers (tcp_stale = reset) reach the sender after the fixed one-way delays
//   of the path to the NAT and back (no jitter, no queueing).
// Flows
//   Every (from, to) pair routed is a flow the topology remembers: where its
//   sender, its destination host and its destination NAT are (looked up once,
//   again only after add_host, add_nat or attach) and, for TCP, its last
//   arrival. A driver that routes many segments of one connection names it by
//   its flow id (flow()) and skips the address lookups; the verdicts are the
//   same as by endpoints.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "nudge/netsim/nat.hpp"
#include "nudge/netsim/tcp_nat.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::netsim {

/// One link, the same in both directions (each direction queues on its own).
/// Same meaning as sim::link_model, per link.
struct link_params {
  duration one_way_delay = duration::zero();
  duration jitter = duration::zero();  // uniform extra delay in [0, jitter]
  double datagram_loss = 0.0;          // UDP loss probability; TCP is reliable
  double rate_bps = 0.0;               // bits per second each way; 0: unlimited
};

using host_id = std::uint32_t;
using nat_id = std::uint32_t;

/// Where a packet went.
struct route_verdict {
  drop_reason dropped = drop_reason::none;
  host_id receiver = 0;
  ip_endpoint from;          // the source as the receiver sees it (translated by the sender's NAT)
  ip_endpoint to;            // the receiver's own endpoint (translated by the receiver's NAT)
  time_point arrival{};      // when it reaches the receiver
  bool reset_sent = false;   // a NAT answered the sender with a RST (TCP, tcp_stale = reset)
  time_point reset_arrival{};  // when that RST reaches the sender
  bool delivered() const noexcept { return dropped == drop_reason::none; }
};

class topology {
 public:
  explicit topology(std::uint64_t seed = 1);

  /// A host on the public side. Throws std::invalid_argument for an address already used.
  host_id add_host(const ip_endpoint& address, const link_params& access = {});
  /// A public host owning only `ports` of `address`, which other such hosts may share (never a
  /// host added without ports, nor a NAT). Throws std::invalid_argument for an endpoint already used.
  host_id add_host(const ip_endpoint& address, const link_params& access, const std::vector<std::uint16_t>& ports);
  /// A NAT device (its public address is config.public_address). Throws std::invalid_argument
  /// for an invalid config or an address already used. `port_seed` seeds its UDP port draws
  /// (its TCP table: port_seed ^ 0x7C9); without it, a stream derived from the topology seed.
  nat_id add_nat(const nat_config& config, const link_params& uplink = {},
                 std::optional<std::uint64_t> port_seed = std::nullopt);
  /// Put `host` behind `device` (from now on; its address becomes a private one). Throws
  /// std::invalid_argument for unknown ids.
  void attach(host_id host, nat_id device);

  route_verdict route_datagram(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                               std::size_t wire_bytes = 0);
  route_verdict route_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to, tcp_flags flags,
                                  std::size_t wire_bytes = 0);
  /// route_tcp_segment for a segment that takes no time: the NATs and the route decide as
  /// for any segment, but it crosses no link (no queueing, no rng draw); arrival = now.
  route_verdict translate_tcp_segment(time_point now, const ip_endpoint& from, const ip_endpoint& to,
                                      tcp_flags flags);

  /// The flow from -> to (as the route calls above name it); the id lasts as long as the topology.
  using flow_id = std::uint32_t;
  flow_id flow(const ip_endpoint& from, const ip_endpoint& to);
  /// The calls above, for flow `f`: the same verdicts, without looking up its addresses.
  route_verdict route_datagram(time_point now, flow_id f, std::size_t wire_bytes = 0) {
    return route(now, f, kind::datagram, tcp_flags::none, wire_bytes);
  }
  route_verdict route_tcp_segment(time_point now, flow_id f, tcp_flags flags, std::size_t wire_bytes = 0) {
    return route(now, f, kind::segment, flags, wire_bytes);
  }
  route_verdict translate_tcp_segment(time_point now, flow_id f, tcp_flags flags) {
    return route(now, f, kind::instant_segment, flags, 0);
  }
  /// route_tcp_segment's verdict without the endpoints (a driver that knows a
  /// connection's ends needs only this), inline for a fixed route: a virtual
  /// run's every data segment.
  struct segment_verdict {
    drop_reason dropped = drop_reason::none;
    time_point arrival{};
    bool reset_sent = false;
    time_point reset_arrival{};
    bool delivered() const noexcept { return dropped == drop_reason::none; }
  };
  segment_verdict route_tcp_data(time_point now, flow_id id, tcp_flags flags, std::size_t wire_bytes) {
    flow_state& f = flows_[id];
    if (f.fixed && f.resolved == generation_) {
      const time_point arrival = std::max(now + f.fixed_delay, f.last_arrival);
      f.last_arrival = has(flags, tcp_flag::fin | tcp_flag::rst) ? time_point{} : arrival;
      return {drop_reason::none, arrival, false, {}};
    }
    const route_verdict v = route(now, id, kind::segment, flags, wire_bytes);
    return {v.dropped, v.arrival, v.reset_sent, v.reset_arrival};
  }

  /// The host whose address `e` has (the port counts only for hosts added with ports).
  std::optional<host_id> host_at(const ip_endpoint& e) const;
  const ip_endpoint& address_of(host_id h) const { return hosts_.at(h).address; }
  /// The NAT a host sits behind; nullopt on the public side.
  std::optional<nat_id> nat_of(host_id h) const;
  ip_endpoint public_address(nat_id n) const { return devices_.at(n)->udp.config().public_address; }
  nat& udp_table(nat_id n) { return devices_.at(n)->udp; }
  tcp_nat& tcp_table(nat_id n) { return devices_.at(n)->tcp; }
  const nat& udp_table(nat_id n) const { return devices_.at(n)->udp; }
  const tcp_nat& tcp_table(nat_id n) const { return devices_.at(n)->tcp; }
  std::size_t host_count() const noexcept { return hosts_.size(); }
  std::size_t nat_count() const noexcept { return devices_.size(); }

  /// The earliest NAT deadline (mapping expiry) of any device; `never` when none.
  time_point next_deadline() const;
  /// Expire due mappings in every device; returns how many (UDP and TCP).
  std::size_t expire(time_point now);

 private:
  static constexpr nat_id public_realm = UINT32_MAX;
  struct host {
    // What every packet reads first.
    link_params access;
    nat_id realm = public_realm;
    time_point free_at[2]{};  // when each direction of the access link is free (0 up, 1 down)
    ip_endpoint address;
  };
  struct device {
    device(const nat_config& config, std::uint64_t seed) : udp(config, seed), tcp(config, seed ^ 0x7C9u) {}
    nat udp;
    tcp_nat tcp;
    link_params uplink;
    time_point free_at[2]{};
  };
  struct hop {
    const link_params* l;
    time_point* free_at;
  };
  // The links a packet crosses: at most the sender's access link, two NAT uplinks
  // and the receiver's access link.
  struct path {
    std::array<hop, 4> hops{};
    std::size_t size = 0;
    void push_back(const hop& h) { hops[size++] = h; }
    const hop* begin() const { return hops.data(); }
    const hop* end() const { return hops.data() + size; }
  };
  struct flow_key {
    ip_endpoint from, to;
    friend bool operator==(const flow_key&, const flow_key&) = default;
  };
  struct flow_key_hash {
    std::size_t operator()(const flow_key& k) const noexcept;
  };
  enum class kind : std::uint8_t { datagram, segment, instant_segment };
  static constexpr host_id no_host = UINT32_MAX;
  // A (from, to) pair: its addresses resolved (valid while `resolved` is the
  // topology's generation) and, for TCP, when its last segment arrives
  // (time_point{}: none since the last FIN or RST, or ever).
  struct alignas(64) flow_state {
    // What every packet reads first, within one cache line.
    std::uint64_t resolved = 0;
    host_id sender = no_host;       // host_at(from)
    host_id direct = no_host;       // host_at(to)
    nat_id to_nat = public_realm;   // the NAT whose public address `to` is
    host_id inbound_receiver = no_host;  // the host behind to_nat at inbound_private (no_host: not looked up)
    time_point last_arrival{};
    // Same realm, over links with neither a rate nor jitter (the usual virtual
    // run): the route is the two access links, their delay and loss fixed.
    bool fixed = false;
    duration fixed_delay{};
    double fixed_loss = 0.0;
    ip_endpoint from, to;
    ip_endpoint inbound_private;    // the last private endpoint to_nat mapped `to` onto
  };

  route_verdict route(time_point now, flow_id f, kind k, tcp_flags flags, std::size_t wire_bytes);
  void resolve(flow_state& f) const;
  void claim_address(const ip_endpoint& address) const;
  time_point cross(time_point t, const path& p, std::size_t wire_bytes);
  static time_point fixed_round_trip(time_point now, const path& p);

  rng rng_;
  std::uint64_t seed_;
  std::vector<host> hosts_;
  std::vector<std::unique_ptr<device>> devices_;  // stable addresses for the tables
  std::unordered_map<ip_endpoint, host_id, protocol::ip_endpoint_hash> host_by_address_;
  std::unordered_map<ip_endpoint, nat_id, protocol::ip_endpoint_hash> nat_by_address_;
  std::unordered_map<ip_endpoint, host_id, protocol::ip_endpoint_hash> host_by_endpoint_;  // hosts with ports
  std::unordered_map<ip_endpoint, std::size_t, protocol::ip_endpoint_hash> shared_addresses_;  // their addresses
  std::unordered_map<flow_key, flow_id, flow_key_hash> flow_by_key_;
  std::vector<flow_state> flows_;
  std::uint64_t generation_ = 1;  // moves on with every add_host, add_nat and attach
};

}  // namespace nudge::netsim
