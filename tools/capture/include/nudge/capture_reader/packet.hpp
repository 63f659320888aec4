#pragma once
// One captured packet as nudge's capture readers see it: IP and TCP/UDP headers already
// decoded, the payload still a view into the capture buffer. decode_frame()
// turns a link-layer frame into this; tests and the fuzz target can build one
// directly (e.g. to hand it to nudge-pcap's analyser::on_packet()).
#include <cstdint>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"

namespace nudge::capture_reader {

using protocol::bytes_view;

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
}  // namespace tcp_flag

inline constexpr std::uint8_t ip_proto_tcp = 6;
inline constexpr std::uint8_t ip_proto_udp = 17;

struct packet {
  time_point ts{};                  // capture clock (ns since the Unix epoch for real captures)
  std::uint8_t ip_version = 4;      // 4 or 6
  std::uint8_t protocol = 0;        // ip_proto_tcp or ip_proto_udp
  std::uint32_t src4 = 0;           // IPv4 addresses, host byte order
  std::uint32_t dst4 = 0;
  const std::uint8_t* src6 = nullptr;  // IPv6: 16 bytes each, valid during the call only
  const std::uint8_t* dst6 = nullptr;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;            // TCP only
  std::uint32_t ack = 0;
  std::uint8_t tcp_flags = 0;
  std::uint32_t ip_bytes = 0;       // IP-layer length on the wire: IP header + L4 header + payload
  std::uint32_t payload_length = 0; // L4 payload length on the wire
  bytes_view payload;               // what the capture holds of it (shorter when the snaplen cut it)
};

/// Why decode_frame() did not produce a packet.
enum class frame_verdict : std::uint8_t {
  ok,
  short_link,      // frame shorter than its link-layer header
  not_ip,          // ARP, LLDP, another ethertype or address family
  bad_ip,          // IP header truncated or inconsistent
  ip_fragment,     // a fragment of a larger datagram (not reassembled)
  other_protocol,  // ICMP, SCTP, ...
  bad_l4,          // TCP/UDP header truncated or inconsistent
};
std::string_view to_string(frame_verdict v);

/// Link types decode_frame() understands (the DLT_ values libpcap returns).
inline constexpr int dlt_null = 0;
inline constexpr int dlt_en10mb = 1;
inline constexpr int dlt_raw = 12;       // Linux/most BSDs; LINKTYPE_RAW (101) maps to it
inline constexpr int dlt_raw_openbsd = 14;
inline constexpr int dlt_loop = 108;
inline constexpr int dlt_linux_sll = 113;
inline constexpr int dlt_ipv4 = 228;
inline constexpr int dlt_ipv6 = 229;
inline constexpr int dlt_linux_sll2 = 276;
bool link_type_supported(int dlt);
std::string_view link_type_name(int dlt);

/// Decodes one frame of link type `dlt`. `wire_length` is the frame's original
/// length (pcap's len); `frame` holds the captured bytes (caplen).
frame_verdict decode_frame(int dlt, bytes_view frame, std::uint32_t wire_length, time_point ts, packet& out);

/// Decodes an IP packet (no link header). `wire_length` is the IP packet's length on the wire.
frame_verdict decode_ip(bytes_view ip, std::uint32_t wire_length, time_point ts, packet& out);

}  // namespace nudge::capture_reader
