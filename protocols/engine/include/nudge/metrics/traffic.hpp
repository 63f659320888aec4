#pragma once
// Traffic counters: every message is counted by the session that encodes or
// decodes it, per kind and direction (a kind is a row index: each protocol
// family numbers its own kinds, nudge/engine/registry.hpp), as payload bytes (what the protocol
// layer hands to TCP/UDP) and as on-wire bytes and packets (IPv4 + TCP/UDP
// headers, TCP segmentation, handshakes and pure ACKs, per wire_model).
#include <array>
#include <cstdint>
#include <cstddef>
#include <type_traits>

#include "nudge/protocol/clock.hpp"

namespace nudge::metrics {

enum class direction : std::uint8_t { to_server, to_client };

struct traffic_cell {
  std::uint64_t messages = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t wire_bytes = 0;
  std::uint64_t packets = 0;

  traffic_cell& operator+=(const traffic_cell& o) {
    messages += o.messages;
    payload_bytes += o.payload_bytes;
    wire_bytes += o.wire_bytes;
    packets += o.packets;
    return *this;
  }
  friend bool operator==(const traffic_cell&, const traffic_cell&) = default;
};

/// How payload becomes packets on the wire. Defaults: IPv4, 20-byte TCP headers
/// without options (Windows peers of the era), MSS 1460, 200 ms delayed ACK.
struct wire_model {
  std::uint32_t ip_header = 20;
  std::uint32_t tcp_header = 20;
  std::uint32_t tcp_options = 0;   // 12 for Linux timestamps
  std::uint32_t syn_options = 12;  // MSS + window scale + SACK-permitted on SYN and SYN-ACK
  std::uint32_t udp_header = 8;
  std::uint32_t mss = 1460;
  duration delayed_ack = std::chrono::milliseconds(200);
  /// Data segments each end of a new connection acknowledges at once, by a pure
  /// ACK, before delaying its ACKs: Linux's quick-ACK mode at connection start
  /// (1: the bind and the bind_ack are each ACKed at once); 0 for Windows.
  std::uint32_t quick_acks = 0;
  /// Data arriving more than this after the previous data is ACKed at once,
  /// unless the receiver is interactive (it last sent data within the ACK
  /// delay of a receipt, its delayed ACK never firing since): Linux re-enters
  /// quick-ACK mode after a gap longer than its RTO (200 ms on loopback) and
  /// leaves its ping-pong mode when a delayed ACK fires. Zero (Windows): off.
  duration idle_quick_ack = duration::zero();
  /// Abstract size profile (the seed article's arithmetic): when non-zero, every
  /// message counts as exactly this many bytes in one TSDU, and transport
  /// overhead (headers, handshakes, ACKs) counts as nothing.
  std::uint32_t abstract_message_bytes = 0;

  bool is_abstract() const { return abstract_message_bytes != 0; }
  std::uint32_t tcp_packet_overhead() const { return ip_header + tcp_header + tcp_options; }
  std::uint64_t tcp_segments(std::uint64_t payload) const { return payload == 0 ? 1 : (payload + mss - 1) / mss; }
  traffic_cell tcp_message(std::uint64_t payload) const {
    if (is_abstract()) return {1, abstract_message_bytes, abstract_message_bytes, 1};
    const auto segs = tcp_segments(payload);
    return {1, payload, payload + segs * tcp_packet_overhead(), segs};
  }
  traffic_cell udp_message(std::uint64_t payload) const {
    if (is_abstract()) return {1, abstract_message_bytes, abstract_message_bytes, 1};
    return {1, payload, payload + ip_header + udp_header, 1};
  }
  traffic_cell pure_ack() const { return is_abstract() ? traffic_cell{} : traffic_cell{0, 0, tcp_packet_overhead(), 1}; }
  /// SYN and SYN-ACK carry syn_options; the third ACK is plain.
  traffic_cell handshake_to_server() const;
  traffic_cell handshake_to_client() const;
};

/// Cells per (kind, direction), in a fixed array so counting never allocates
/// and never looks anything up: `add` is two index operations and four adds.
/// The family's vocabulary names the rows; rows it does not declare stay zero.
class traffic_meter {
 public:
  /// Rows a meter holds: more than any family declares (the registry checks).
  static constexpr std::size_t max_kinds = 24;

  void add(std::size_t kind, direction d, const traffic_cell& c) { cell(kind, d) += c; }
  traffic_cell& cell(std::size_t kind, direction d) { return cells_[kind][static_cast<std::size_t>(d)]; }
  const traffic_cell& cell(std::size_t kind, direction d) const { return cells_[kind][static_cast<std::size_t>(d)]; }
  /// A family's own kind enum (e.g. protocol::emsmdb::message_kind) is its row index.
  template <typename Kind>
    requires std::is_enum_v<Kind>
  void add(Kind k, direction d, const traffic_cell& c) {
    add(static_cast<std::size_t>(k), d, c);
  }
  template <typename Kind>
    requires std::is_enum_v<Kind>
  traffic_cell& cell(Kind k, direction d) {
    return cell(static_cast<std::size_t>(k), d);
  }
  template <typename Kind>
    requires std::is_enum_v<Kind>
  const traffic_cell& cell(Kind k, direction d) const {
    return cell(static_cast<std::size_t>(k), d);
  }
  traffic_cell total(direction d) const;
  traffic_cell total() const;
  traffic_meter& operator+=(const traffic_meter& o);
  friend bool operator==(const traffic_meter&, const traffic_meter&) = default;

 private:
  std::array<std::array<traffic_cell, 2>, max_kinds> cells_{};
};

/// Estimates pure ACKs on one TCP direction: data received at t is ACKed by the
/// receiver's next data segment if it leaves within `delayed_ack`, otherwise by
/// a pure ACK at t + delayed_ack. Deterministic given the event times, so real
/// and virtual runs estimate the same ACKs.
class ack_tracker {
 public:
  /// The receiver got data at `now`. Returns the time of a pure ACK that an
  /// earlier, still-unacknowledged receipt forced out (or `never`).
  time_point on_data_received(time_point now, duration delayed_ack);
  /// The receiver sends data at `now`: a pending ACK rides along if still
  /// within its delay; returns the time of a pure ACK that was due before.
  time_point on_data_sent(time_point now);
  /// Flushes a pending ACK whose delay has passed by `now` (or at end of run).
  time_point flush(time_point now);
  time_point pending_deadline() const { return deadline_; }
  /// The next `n` receipts are acknowledged at once (wire_model::quick_acks):
  /// on_data_received returns `now` for each.
  void set_quick_acks(std::uint32_t n) { quick_acks_ = n; }
  /// A receipt more than `gap` after the previous one is acknowledged at once
  /// unless the receiver is interactive (wire_model::idle_quick_ack; zero: never).
  void set_idle_quick_ack(duration gap) { idle_gap_ = gap; }
  /// Both of the model's settings.
  void configure(const wire_model& w) {
    set_quick_acks(w.quick_acks);
    set_idle_quick_ack(w.idle_quick_ack);
  }

 private:
  time_point deadline_ = never;
  std::uint32_t quick_acks_ = 0;
  duration idle_gap_ = duration::zero();
  duration delay_ = duration::zero();  // the delayed-ACK time last given
  time_point last_receipt_ = never;
  bool interactive_ = false;  // sent data within the ACK delay of a receipt, no delayed ACK fired since
};

}  // namespace nudge::metrics
