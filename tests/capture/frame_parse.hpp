#pragma once
// Test-side parser and checksum for synthesized frames, written independently
// of the library so the tests do not check the code against itself.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "nudge/protocol/endpoint.hpp"

namespace nudge::capture::test {

inline protocol::ip_endpoint ep(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  // Fields set directly: ip_endpoint::v4() lives in nudge_protocol's .cpp.
  protocol::ip_endpoint e;
  e.address[0] = a;
  e.address[1] = b;
  e.address[2] = c;
  e.address[3] = d;
  e.port = port;
  return e;
}

inline std::uint16_t be16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
inline std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
  return (std::uint32_t{be16(b, at)} << 16) | be16(b, at + 2);
}

/// One's-complement sum, folding the carry after every word (unlike the library,
/// which folds once at the end).
inline std::uint16_t ones_sum(std::span<const std::uint8_t> bytes, std::uint16_t start = 0) {
  std::uint32_t s = start;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    const std::uint32_t hi = bytes[i];
    const std::uint32_t lo = i + 1 < bytes.size() ? bytes[i + 1] : 0u;
    s += (hi << 8) | lo;
    if (s > 0xffff) s = (s & 0xffff) + 1;
  }
  return static_cast<std::uint16_t>(s);
}

struct parsed_frame {
  std::array<std::uint8_t, 6> dst_mac{};
  std::array<std::uint8_t, 6> src_mac{};
  std::uint16_t ethertype = 0;
  std::uint8_t version_ihl = 0;
  std::uint16_t ip_total_length = 0;
  std::uint16_t ip_id = 0;
  std::uint16_t ip_flags_fragment = 0;
  std::uint8_t ttl = 0;
  std::uint8_t protocol = 0;
  std::uint16_t ip_checksum = 0;
  std::uint32_t src = 0;
  std::uint32_t dst = 0;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  // TCP
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::size_t tcp_header_length = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::vector<std::uint8_t> tcp_options;
  // UDP
  std::uint16_t udp_length = 0;
  std::uint16_t l4_checksum = 0;
  std::vector<std::uint8_t> payload;
  bool ip_checksum_ok = false;
  bool l4_checksum_ok = false;
};

inline parsed_frame parse(std::span<const std::uint8_t> f) {
  parsed_frame p;
  std::copy_n(f.begin(), 6, p.dst_mac.begin());
  std::copy_n(f.begin() + 6, 6, p.src_mac.begin());
  p.ethertype = be16(f, 12);
  const auto ip = f.subspan(14);
  p.version_ihl = ip[0];
  p.ip_total_length = be16(ip, 2);
  p.ip_id = be16(ip, 4);
  p.ip_flags_fragment = be16(ip, 6);
  p.ttl = ip[8];
  p.protocol = ip[9];
  p.ip_checksum = be16(ip, 10);
  p.src = be32(ip, 12);
  p.dst = be32(ip, 16);
  // A correct header sums to 0xffff including its checksum field.
  p.ip_checksum_ok = ones_sum(ip.first(20)) == 0xffff;

  const auto l4 = ip.subspan(20, p.ip_total_length - 20u);
  std::array<std::uint8_t, 12> pseudo{};
  std::copy_n(ip.begin() + 12, 8, pseudo.begin());
  pseudo[9] = p.protocol;
  pseudo[10] = static_cast<std::uint8_t>(l4.size() >> 8);
  pseudo[11] = static_cast<std::uint8_t>(l4.size());
  p.l4_checksum_ok = ones_sum(l4, ones_sum(pseudo)) == 0xffff;
  p.src_port = be16(l4, 0);
  p.dst_port = be16(l4, 2);
  if (p.protocol == 6) {
    p.seq = be32(l4, 4);
    p.ack = be32(l4, 8);
    p.tcp_header_length = std::size_t{l4[12]} >> 4 << 2;
    p.flags = l4[13];
    p.window = be16(l4, 14);
    p.l4_checksum = be16(l4, 16);
    p.tcp_options.assign(l4.begin() + 20, l4.begin() + static_cast<std::ptrdiff_t>(p.tcp_header_length));
    p.payload.assign(l4.begin() + static_cast<std::ptrdiff_t>(p.tcp_header_length), l4.end());
  } else if (p.protocol == 17) {
    p.udp_length = be16(l4, 4);
    p.l4_checksum = be16(l4, 6);
    p.payload.assign(l4.begin() + 8, l4.end());
  }
  return p;
}

}  // namespace nudge::capture::test
