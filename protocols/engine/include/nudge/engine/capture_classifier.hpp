#pragma once
// How a protocol family reads captured traffic, behind a protocol-neutral
// face. The capture analyser (nudge-pcap, tools/pcap) reads frames, keeps the
// TCP flows (handshakes, teardown, pure ACKs, sequence numbers: gaps,
// retransmissions, overlaps) and sums what it is told; a family's
// capture_reader, made per capture, is handed each flow's new in-order bytes
// per direction and every datagram, frames its messages, names their kinds,
// ties flows and datagrams to client sessions and counts per session by the
// names it declares. The analyser keeps no list of a family's kinds, modes or
// counters and no rule of its protocol (docs/architecture.md, "Adding a protocol").
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::engine {

/// An index that names nothing: no session yet, no kind of the family ("other").
inline constexpr std::uint32_t capture_none = 0xFFFFFFFFu;

/// A host as the analyser numbers it within one capture: equal numbers, same address.
using capture_host = std::uint64_t;

/// What the analyser knows of one flow (TCP, or a UDP socket pair). The family
/// reading it may settle the roles and ties it to a session.
struct capture_flow {
  std::uint32_t id = 0;  // dense from 0 within a capture: a family's per-flow state can be a vector
  std::array<capture_host, 2> host{};  // side 0 and side 1
  std::array<std::uint16_t, 2> port{};
  /// -1 while unknown (no SYN seen): a family sets it from a message only the
  /// client sends (or only the server), before it reports that message.
  std::int8_t client_side = -1;
  std::uint32_t session = capture_none;  // the family's client session, set by the family
};

/// Where a family reports what it framed in a stream.
class capture_stream_sink {
 public:
  /// One whole message of `bytes` bytes of kind `kind` (capture_none: no kind
  /// of the family; counted as "other").
  virtual void message(std::uint32_t kind, std::size_t bytes) = 0;
  /// The bytes held for a message that turned out not to frame; the analyser
  /// counts them as "other" and looks for a message start again.
  virtual void malformed(std::size_t dropped_bytes) = 0;

 protected:
  ~capture_stream_sink() = default;
};

/// A whole UDP datagram (the analyser skips datagrams the snaplen cut).
struct capture_datagram {
  time_point at{};
  capture_host src_host = 0;
  capture_host dst_host = 0;
  protocol::ip_endpoint src;
  protocol::ip_endpoint dst;
  protocol::bytes_view payload;
  /// The source host is a server of the family's TCP in this capture (it sent a message as the server).
  bool src_serves = false;
};

/// A family's verdict on a datagram.
struct datagram_verdict {
  bool related = false;  // false: the analyser counts it as unrelated UDP
  std::uint32_t kind = capture_none;
  std::uint32_t session = capture_none;
  bool client_is_src = false;
  /// The server side's endpoint surely is the family's server: list it in the report.
  bool server_known = false;
};

/// A client session at the end of a capture.
struct capture_session {
  capture_host host = 0;
  /// Made for a host's datagrams that named no session: joins the host's one
  /// primary session when it has exactly one.
  bool host_fallback = false;
  /// A session this one belongs to, learned later in the capture (capture_none: none).
  std::uint32_t joins = capture_none;
  std::uint32_t mode = 0;  // index into mode_names(); sessions grouped together take the highest
  std::vector<std::uint64_t> counters;             // by counter_names()
  std::vector<std::optional<std::int64_t>> facts;  // by fact_names(); a group takes its first known
};

/// A measured interval of a session: what = an index into latency_names()
/// (for poll gaps: unused).
struct capture_sample {
  std::uint32_t session = 0;
  std::uint32_t what = 0;
  std::int64_t ns = 0;
};

/// An event a client learned of, with the stamp of its creation when the
/// protocol carries one (the analyser turns it into a latency).
struct capture_event {
  std::uint64_t id = 0;
  std::uint32_t session = 0;
  std::uint8_t path = 0;  // index into path_names()
  time_point seen{};
  std::int64_t created_us = -1;  // -1: no stamp
};

/// A datagram that told a client to fetch (EMSMDB's pings), and the fetch that answered it.
struct capture_wakeup {
  time_point at{};
  std::uint32_t session = 0;
  protocol::ip_endpoint from;
  protocol::ip_endpoint to;
  std::vector<std::uint8_t> payload;
  bool matched = false;  // carried what the client registered
  std::optional<time_point> answered_at;
  std::uint32_t answer_id = 0;  // e.g. the fetch's call id
};

/// What a family's reader found, once the capture is read.
struct capture_findings {
  std::vector<capture_session> sessions;
  std::vector<capture_sample> latencies;  // trigger -> reaction, per latency_names()
  std::vector<capture_sample> poll_gaps;  // gaps between a session's consecutive polls
  std::vector<capture_event> events;
  std::vector<capture_wakeup> wakeups;
};

/// What the analyser was told on its command line that a family may use.
struct capture_reading_options {
  std::optional<std::uint16_t> udp_port;  // the server's datagram source port
  duration fetch_window = std::chrono::seconds(5);
};

/// A family's per-capture reading state. Called in capture order.
class capture_reader {
 public:
  virtual ~capture_reader() = default;
  /// New bytes of flow `f` from `side`, in order, beginning where the last call
  /// ended or (after a gap, or at the flow's first data) at a point where
  /// begins_message() held. Reports each whole message to `out`.
  virtual void on_stream(capture_flow& f, int side, protocol::bytes_view data, time_point at,
                         capture_stream_sink& out) = 0;
  /// Bytes held for a message in progress on that side of `f`.
  virtual std::size_t pending(const capture_flow& f, int side) const = 0;
  /// Forgets the message in progress (bytes before the next data are missing).
  virtual void drop_pending(const capture_flow& f, int side) = 0;
  /// A datagram: what it is and whose.
  virtual datagram_verdict on_datagram(const capture_datagram& d) = 0;
  /// A TCP flow's label in reports, e.g. "emsmdb" (the interface it bound).
  virtual std::string_view flow_label(const capture_flow& f) const = 0;
  /// Whether a TCP flow is its session's main connection (what tells sessions
  /// of one address apart in time), not a side channel.
  virtual bool primary_flow(const capture_flow& f) const = 0;
  /// A hint that `f`'s state will be needed soon (the analyser runs a few frames ahead).
  virtual void prefetch(const capture_flow& /*f*/, int /*side*/) const {}
  /// Sessions, counters, samples, events and wakeups so far.
  virtual capture_findings findings() const = 0;
};

/// A captured client as the analyser sums it (its sessions together): what a
/// replay rebuilds a client core of the family from (capture_classifier::rebuild_client).
struct captured_client_view {
  std::uint32_t mode = 0;                              // index into mode_names()
  std::span<const std::uint64_t> counters;             // by counter_names()
  std::span<const std::optional<std::int64_t>> facts;  // by fact_names()
  std::optional<duration> poll_gap;                    // the median gap between its polls, if it polled twice
};

/// How to rebuild a captured client as one of the family's client cores: the
/// mode (a name of the family's vocabulary) and the client keys (declared by
/// the family, written as a scenario writes them) that make the core behave
/// as the captured client did; keys not named keep the run's values.
struct client_rebuild {
  std::string mode;
  std::vector<std::pair<std::string, std::string>> keys;
};

class capture_classifier {
 public:
  virtual ~capture_classifier() = default;
  /// The family's name, e.g. "emsmdb".
  virtual std::string_view family() const = 0;
  /// The family's message kinds, by index (the index its counters use).
  virtual std::span<const std::string_view> kind_names() const = 0;
  /// The family's client modes, by index.
  virtual std::span<const std::string_view> mode_names() const = 0;
  /// Whether `stream` (a TCP segment's payload) can begin one of the family's
  /// messages: where the analyser starts framing, and restarts after a gap.
  virtual bool begins_message(protocol::bytes_view stream) const = 0;

  /// Per-session counters a reader counts, by index (capture_session::counters).
  /// A dotted name ("fetches_by_trigger.ping") nests in JSON.
  virtual std::span<const std::string_view> counter_names() const { return {}; }
  /// Per-session optional figures (capture_session::facts), e.g. a negotiated interval.
  virtual std::span<const std::string_view> fact_names() const { return {}; }
  /// Trigger-to-reaction latencies a reader samples (capture_sample::what).
  virtual std::span<const std::string_view> latency_names() const { return {}; }
  /// How an event reached its client (capture_event::path).
  virtual std::span<const std::string_view> path_names() const { return {}; }
  /// How a virtual capture (client-sim --pcap) writes the family's traffic as
  /// its cores count it: the length of the first message in the bytes of one
  /// `send` action (each message is segmented on its own). By default a send
  /// is one message.
  virtual std::size_t sent_message_length(protocol::bytes_view send) const { return send.size(); }
  /// The segments a closing connection counts as in the family's counters
  /// (tcp_setup): 0 when its cores count no teardown (a virtual capture then
  /// writes none), 3 for FIN, FIN/ACK, ACK, 4 for FIN, ACK, FIN, ACK.
  virtual unsigned teardown_segments() const { return 0; }
  /// A new reading state for one capture; null when the family reads no captures.
  virtual std::unique_ptr<capture_reader> make_reader(const capture_reading_options& /*options*/) const {
    return nullptr;
  }

  /// How a captured client is rebuilt as a client core of the family
  /// (nudge-replay's reacting replay); nullopt when the family cannot say.
  virtual std::optional<client_rebuild> rebuild_client(const captured_client_view& /*client*/) const {
    return std::nullopt;
  }

  std::string_view kind_name(std::size_t k) const { return k < kind_names().size() ? kind_names()[k] : "?"; }
  std::string_view mode_name(std::size_t m) const { return m < mode_names().size() ? mode_names()[m] : "?"; }
  std::string_view path_name(std::size_t p) const { return p < path_names().size() ? path_names()[p] : "?"; }
};

}  // namespace nudge::engine
