#pragma once
// Turns application-level transmissions (a TCP connection opening, payload
// bytes sent one way, a pure ACK, a close, a UDP datagram) into Ethernet II /
// IPv4 / TCP|UDP frames that Wireshark dissects as a clean conversation:
// consistent sequence and acknowledgement numbers, correct IPv4, TCP and UDP
// checksums, segmentation at the MSS. Pure: frames go to a frame_sink, time is
// whatever the caller passes in, and nothing reads a clock or touches a file.
//
// Sizes, so counts can be compared with nudge's metrics::wire_model and tshark:
//   * "IP bytes" (ip_bytes below) = IPv4 header + TCP/UDP header + payload.
//     This is what nudge's counters call wire bytes.
//   * "Ethernet bytes" (ethernet_bytes) = ip_bytes + 14 per frame. tshark's
//     `frame.len` equals this (frames carry no FCS and no padding), so the sum
//     of frame.len over a capture equals totals().ethernet_bytes.
//   * TCP options follow synthesizer_options (set from nudge's wire_model):
//     - windows (syn_options_len 12, tcp_options_len 0, the default): SYN and
//       SYN-ACK carry MSS, NOP, window scale, NOP, NOP, SACK-permitted (52 IP
//       bytes each); every other segment has a plain 20-byte header, so a pure
//       ACK / FIN is 40 IP bytes, 54 as a frame.
//     - linux (syn_options_len 20, tcp_options_len 12): SYN and SYN-ACK carry
//       MSS, SACK-permitted, timestamps, NOP, window scale (60 IP bytes); every
//       other segment carries NOP, NOP, timestamps (a pure ACK is 52 IP bytes).
//       TSval is the frame's time in milliseconds (mod 2^32), TSecr the last
//       TSval the sender received from its peer (0 on the SYN).
//     Other lengths cannot be written faithfully: validate() refuses them with
//     capture_error::unsupported_tcp_options, and so does every TCP call.
//   * UDP: 28 + payload IP bytes.
//
// IPv4 only: an IPv6 endpoint is rejected with capture_error::ipv6_unsupported.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "nudge/capture/error.hpp"
#include "nudge/capture/frame_sink.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::capture {

using protocol::ip_endpoint;

inline constexpr std::size_t ethernet_header_len = 14;
inline constexpr std::size_t ipv4_header_len = 20;
inline constexpr std::size_t tcp_header_len = 20;
inline constexpr std::size_t tcp_syn_options_len = 12;            // Windows' SYN options
inline constexpr std::size_t tcp_syn_timestamp_options_len = 20;  // Linux's SYN options, with timestamps
inline constexpr std::size_t tcp_timestamp_options_len = 12;      // NOP, NOP, timestamps
inline constexpr std::size_t udp_header_len = 8;

struct synthesizer_options {
  std::uint16_t mss = 1460;           // payload bytes per segment; advertised in SYN / SYN-ACK
  std::uint16_t mtu = 1500;           // caps UDP payload at mtu - 28 (no IP fragmentation)
  std::uint8_t window_scale = 8;      // shift advertised in SYN / SYN-ACK (Windows default)
  std::uint16_t syn_window = 64240;   // window field of SYN / SYN-ACK (never scaled)
  std::uint16_t window = 1026;        // window field afterwards; 1026 << 8 = 262656 bytes
  std::uint8_t ttl = 128;             // Windows default
  /// Option bytes on SYN and SYN-ACK: tcp_syn_options_len (Windows) or
  /// tcp_syn_timestamp_options_len (Linux, timestamps negotiated).
  std::uint8_t syn_options_len = tcp_syn_options_len;
  /// Option bytes on every other segment: 0, or tcp_timestamp_options_len
  /// (NOP, NOP, timestamps) when the SYNs negotiated timestamps.
  std::uint8_t tcp_options_len = 0;
};

/// capture_error::none when the synthesizer can write `o`'s option lengths as
/// a real stack would: (syn 12, others 0) or (syn 20, others 12). Anything else
/// (e.g. timestamps on data but not on the SYNs) is unsupported_tcp_options.
capture_error validate(const synthesizer_options& o);

enum class transport : std::uint8_t { tcp, udp };

/// Frame and byte counts. Every frame is counted once in frames / ip_bytes /
/// ethernet_bytes; control_* count the subset without payload (SYN, SYN-ACK,
/// ACKs, FINs), which nudge books as tcp_setup / tcp_ack.
struct traffic_counters {
  std::uint64_t frames = 0;
  std::uint64_t payload_bytes = 0;   // application bytes carried (TCP or UDP payload)
  std::uint64_t ip_bytes = 0;        // payload + IPv4 + TCP/UDP headers (nudge's wire bytes)
  std::uint64_t ethernet_bytes = 0;  // ip_bytes + 14 per frame (= sum of tshark frame.len)
  std::uint64_t control_frames = 0;
  std::uint64_t control_ip_bytes = 0;

  traffic_counters& operator+=(const traffic_counters& o) {
    frames += o.frames;
    payload_bytes += o.payload_bytes;
    ip_bytes += o.ip_bytes;
    ethernet_bytes += o.ethernet_bytes;
    control_frames += o.control_frames;
    control_ip_bytes += o.control_ip_bytes;
    return *this;
  }
  friend bool operator==(const traffic_counters&, const traffic_counters&) = default;
};

/// One TCP connection (from tcp_open to tcp_close) or one UDP endpoint pair.
struct flow_stats {
  transport proto = transport::tcp;
  ip_endpoint initiator;  // TCP: the side that sent SYN (the client). UDP: the first sender.
  ip_endpoint responder;  // TCP: the server. UDP: the first receiver.
  traffic_counters from_initiator;  // TCP: to_server
  traffic_counters from_responder;  // TCP: to_client
  bool open = false;                // TCP: between tcp_open and tcp_close; UDP: always false

  traffic_counters total() const {
    traffic_counters t = from_initiator;
    t += from_responder;
    return t;
  }
};

class frame_synthesizer {
 public:
  /// `sink` must outlive the synthesizer. With options validate() refuses,
  /// every TCP call returns that error and emits nothing.
  explicit frame_synthesizer(frame_sink& sink, synthesizer_options options = {});
  frame_synthesizer(const frame_synthesizer&) = delete;
  frame_synthesizer& operator=(const frame_synthesizer&) = delete;

  /// SYN (client -> server), SYN-ACK, ACK, all stamped `t`. Fails with
  /// connection_exists if that client/server pair is open already.
  [[nodiscard]] capture_error tcp_open(time_point t, const ip_endpoint& client, const ip_endpoint& server);

  /// `payload` from one end of an open connection to the other, cut into
  /// segments of at most mss bytes. Every segment has ACK set and acknowledges
  /// all bytes the sender has received; only the last carries PSH, as real
  /// stacks do at the end of a send. An empty payload emits nothing.
  /// If a segment would fill the window the receiver last advertised (64240
  /// bytes until it sends anything after its SYN, 262656 afterwards), the
  /// receiver first sends a pure ACK (counted in window_acks()), as a real
  /// receiver would have, so Wireshark reports no "window full". nudge's
  /// PDUs are far smaller, so this only matters for bulk test payloads.
  [[nodiscard]] capture_error tcp_data(time_point t, const ip_endpoint& from, const ip_endpoint& to,
                                       std::span<const std::uint8_t> payload);

  /// A segment with only ACK set, acknowledging everything `from` received.
  /// Note: if it acknowledges nothing new, Wireshark labels it a duplicate ACK.
  [[nodiscard]] capture_error tcp_pure_ack(time_point t, const ip_endpoint& from, const ip_endpoint& to);

  /// four_way: FIN/ACK from `closer`, ACK, FIN/ACK from `other`, ACK (4 frames).
  /// three_way: FIN/ACK from `closer`, FIN/ACK from `other` (its ACK riding on
  /// its FIN), ACK (3 frames, as a family's wire model may count a teardown).
  /// The connection is forgotten afterwards, so the same pair can be opened again.
  enum class close_style : std::uint8_t { four_way, three_way };
  [[nodiscard]] capture_error tcp_close(time_point t, const ip_endpoint& closer, const ip_endpoint& other,
                                        close_style style = close_style::four_way);

  /// One UDP datagram; payload_too_large above mtu - 28 bytes.
  [[nodiscard]] capture_error udp(time_point t, const ip_endpoint& from, const ip_endpoint& to,
                                  std::span<const std::uint8_t> payload);

  /// Everything emitted so far.
  const traffic_counters& totals() const { return totals_; }
  /// Every TCP connection and UDP pair in order of first appearance (closed ones included).
  const std::vector<flow_stats>& flows() const { return flows_; }
  /// Frames sent or received by `endpoint` (address and port), over all flows:
  /// the per-client-endpoint count to compare with a client's own counters.
  traffic_counters counters_for(const ip_endpoint& endpoint) const;
  /// Frames sent or received by the host of `host` (address only, any port).
  traffic_counters counters_for_host(const ip_endpoint& host) const;
  /// Pure ACKs inserted by tcp_data to keep the receive window open.
  std::uint64_t window_acks() const { return window_acks_; }
  bool is_open(const ip_endpoint& client, const ip_endpoint& server) const;
  const synthesizer_options& options() const { return options_; }

  /// The locally administered MAC a host gets: 02:00 followed by its 4 IPv4 bytes.
  static std::array<std::uint8_t, 6> mac_for(const ip_endpoint& host);

 private:
  struct v4_endpoint {
    std::uint32_t addr = 0;  // host order
    std::uint16_t port = 0;
    friend auto operator<=>(const v4_endpoint&, const v4_endpoint&) = default;
  };
  using endpoint_pair = std::pair<v4_endpoint, v4_endpoint>;

  // One direction of a TCP connection.
  struct tcp_half {
    std::uint32_t next_seq = 0;  // sequence number of the next byte this side sends
    std::uint32_t acked = 0;     // highest sequence number the peer has acknowledged
    std::uint32_t window = 0;    // receive window this side last advertised, in bytes
    std::uint32_t tsval = 0;     // TSval of the last segment this side sent (the peer echoes it)
  };
  struct tcp_connection {
    v4_endpoint client_ep;
    v4_endpoint server_ep;
    tcp_half client;
    tcp_half server;
    std::size_t flow = 0;  // index into flows_
  };
  // One direction of an open connection, resolved from (from, to).
  struct tcp_route {
    tcp_connection* conn = nullptr;
    bool from_client = true;
    tcp_route reversed() const { return {conn, !from_client}; }
  };

  static capture_error check(const ip_endpoint& from, const ip_endpoint& to);
  static v4_endpoint to_v4(const ip_endpoint& e);
  tcp_route find_tcp(const v4_endpoint& from, const v4_endpoint& to);

  void emit_tcp(time_point t, const tcp_route& r, std::uint8_t flags, std::span<const std::uint8_t> payload);
  // Adds Ethernet and IPv4 headers in front of the l4_len bytes already at
  // frame_[34..], hands the frame to the sink and counts it.
  void send(time_point t, std::size_t flow, bool from_initiator, const v4_endpoint& src, const v4_endpoint& dst,
            std::uint8_t proto, std::size_t l4_len, std::size_t payload_len, bool control);
  std::uint16_t next_ip_id(std::uint32_t src_addr);
  std::uint32_t initial_seq(const v4_endpoint& client, const v4_endpoint& server);

  frame_sink* sink_;
  synthesizer_options options_;
  std::map<endpoint_pair, tcp_connection> tcp_;  // key: (client, server), open connections only
  std::map<endpoint_pair, std::size_t> udp_;     // key: (lower, higher) endpoint -> flows_ index
  std::map<std::uint32_t, std::uint16_t> ip_ids_;  // per source host, like a real IP stack
  std::vector<flow_stats> flows_;
  traffic_counters totals_;
  std::uint64_t window_acks_ = 0;
  std::uint64_t connections_opened_ = 0;
  capture_error options_error_ = capture_error::none;  // validate(options_), checked by every TCP call
  std::vector<std::uint8_t> frame_;  // reused buffer for the frame being built
};

}  // namespace nudge::capture
