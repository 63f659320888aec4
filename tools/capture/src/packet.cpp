#include "nudge/capture_reader/packet.hpp"

#include <algorithm>

namespace nudge::capture_reader {

namespace {

inline std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86DD;

frame_verdict by_ethertype(std::uint16_t type, bytes_view rest, std::uint32_t wire, time_point ts, packet& out) {
  if (type == ethertype_ipv4 || type == ethertype_ipv6) return decode_ip(rest, wire, ts, out);
  return frame_verdict::not_ip;
}

// DLT_NULL carries the address family in the capturing host's byte order, DLT_LOOP
// in network order. AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (BSDs, macOS).
frame_verdict by_family(std::uint32_t family, bytes_view rest, std::uint32_t wire, time_point ts, packet& out) {
  switch (family) {
    case 2:
    case 10:
    case 24:
    case 28:
    case 30: return decode_ip(rest, wire, ts, out);
    default: return frame_verdict::not_ip;
  }
}

std::uint32_t link_wire(std::uint32_t wire, std::size_t header) {
  return wire > header ? wire - static_cast<std::uint32_t>(header) : 0;
}

}  // namespace

std::string_view to_string(frame_verdict v) {
  switch (v) {
    case frame_verdict::ok: return "ok";
    case frame_verdict::short_link: return "short_link";
    case frame_verdict::not_ip: return "not_ip";
    case frame_verdict::bad_ip: return "bad_ip";
    case frame_verdict::ip_fragment: return "ip_fragment";
    case frame_verdict::other_protocol: return "other_protocol";
    case frame_verdict::bad_l4: return "bad_l4";
  }
  return "?";
}

bool link_type_supported(int dlt) {
  switch (dlt) {
    case dlt_null:
    case dlt_en10mb:
    case dlt_raw:
    case dlt_raw_openbsd:
    case dlt_loop:
    case dlt_linux_sll:
    case dlt_ipv4:
    case dlt_ipv6:
    case dlt_linux_sll2: return true;
    default: return false;
  }
}

std::string_view link_type_name(int dlt) {
  switch (dlt) {
    case dlt_null: return "NULL";
    case dlt_en10mb: return "EN10MB";
    case dlt_raw:
    case dlt_raw_openbsd: return "RAW";
    case dlt_loop: return "LOOP";
    case dlt_linux_sll: return "LINUX_SLL";
    case dlt_ipv4: return "IPV4";
    case dlt_ipv6: return "IPV6";
    case dlt_linux_sll2: return "LINUX_SLL2";
    default: return "unsupported";
  }
}

frame_verdict decode_frame(int dlt, bytes_view f, std::uint32_t wire, time_point ts, packet& out) {
  const std::uint8_t* d = f.data();
  const std::size_t n = f.size();
  switch (dlt) {
    case dlt_en10mb: {
      if (n < 14) return frame_verdict::short_link;
      std::size_t off = 12;
      std::uint16_t type = be16(d + off);
      // Up to two VLAN tags (802.1Q, 802.1ad, the old QinQ value).
      for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8 || type == 0x9100); ++tags) {
        off += 4;
        if (n < off + 2) return frame_verdict::short_link;
        type = be16(d + off);
      }
      off += 2;
      return by_ethertype(type, f.subspan(off), link_wire(wire, off), ts, out);
    }
    case dlt_null: {
      if (n < 4) return frame_verdict::short_link;
      std::uint32_t family = std::uint32_t{d[0]} | (std::uint32_t{d[1]} << 8) | (std::uint32_t{d[2]} << 16) |
                             (std::uint32_t{d[3]} << 24);
      if (family > 0xFFFF) family = be32(d);  // written by a big-endian host
      return by_family(family, f.subspan(4), link_wire(wire, 4), ts, out);
    }
    case dlt_loop: {
      if (n < 4) return frame_verdict::short_link;
      return by_family(be32(d), f.subspan(4), link_wire(wire, 4), ts, out);
    }
    case dlt_linux_sll: {
      if (n < 16) return frame_verdict::short_link;
      return by_ethertype(be16(d + 14), f.subspan(16), link_wire(wire, 16), ts, out);
    }
    case dlt_linux_sll2: {
      if (n < 20) return frame_verdict::short_link;
      return by_ethertype(be16(d), f.subspan(20), link_wire(wire, 20), ts, out);
    }
    case dlt_raw:
    case dlt_raw_openbsd:
    case dlt_ipv4:
    case dlt_ipv6: return decode_ip(f, wire, ts, out);
    default: return frame_verdict::not_ip;
  }
}

frame_verdict decode_ip(bytes_view ip, std::uint32_t wire, time_point ts, packet& out) {
  const std::uint8_t* d = ip.data();
  const std::size_t cap = ip.size();
  if (cap < 1) return frame_verdict::bad_ip;
  std::size_t header = 0;
  std::size_t total = 0;
  std::uint8_t proto = 0;
  if ((d[0] >> 4) == 4) {
    if (cap < 20) return frame_verdict::bad_ip;
    header = std::size_t{d[0] & 0x0Fu} * 4;
    if (header < 20 || cap < header) return frame_verdict::bad_ip;
    total = be16(d + 2);
    if (total == 0) total = wire;  // segmentation offload: the stack had not filled it in yet
    if (total < header) return frame_verdict::bad_ip;
    const std::uint16_t frag = be16(d + 6);
    if ((frag & 0x3FFF) != 0) return frame_verdict::ip_fragment;  // MF set or a non-zero offset
    proto = d[9];
    out.ip_version = 4;
    out.src4 = be32(d + 12);
    out.dst4 = be32(d + 16);
    out.src6 = out.dst6 = nullptr;
  } else if ((d[0] >> 4) == 6) {
    if (cap < 40) return frame_verdict::bad_ip;
    const std::size_t plen = be16(d + 4);
    total = plen == 0 ? wire : 40 + plen;  // 0: jumbogram or offload
    if (total < 40) return frame_verdict::bad_ip;
    proto = d[6];
    header = 40;
    for (int hops = 0; hops < 8; ++hops) {
      if (proto == 0 || proto == 43 || proto == 60) {  // hop-by-hop, routing, destination options
        if (cap < header + 2) return frame_verdict::bad_ip;
        const std::uint8_t next = d[header];
        header += (std::size_t{d[header + 1]} + 1) * 8;
        proto = next;
      } else if (proto == 44) {  // fragment header
        if (cap < header + 8) return frame_verdict::bad_ip;
        const std::uint16_t off_flags = be16(d + header + 2);
        if ((off_flags & 0xFFF9) != 0) return frame_verdict::ip_fragment;
        proto = d[header];
        header += 8;
      } else {
        break;
      }
    }
    if (header > total || header > cap) return frame_verdict::bad_ip;
    out.ip_version = 6;
    out.src6 = d + 8;
    out.dst6 = d + 24;
    out.src4 = out.dst4 = 0;
  } else {
    return frame_verdict::bad_ip;
  }

  const std::size_t l4_wire = total - header;
  const std::size_t l4_cap = std::min(cap, total) - header;
  const std::uint8_t* l4 = d + header;
  out.ts = ts;
  out.protocol = proto;
  out.ip_bytes = static_cast<std::uint32_t>(total);
  if (proto == ip_proto_tcp) {
    if (l4_cap < 20 || l4_wire < 20) return frame_verdict::bad_l4;
    const std::size_t doff = static_cast<std::size_t>(l4[12] >> 4) * 4;
    if (doff < 20 || doff > l4_wire || doff > l4_cap) return frame_verdict::bad_l4;
    out.src_port = be16(l4);
    out.dst_port = be16(l4 + 2);
    out.seq = be32(l4 + 4);
    out.ack = be32(l4 + 8);
    out.tcp_flags = l4[13];
    out.payload_length = static_cast<std::uint32_t>(l4_wire - doff);
    out.payload = bytes_view(l4 + doff, l4_cap - doff);
    return frame_verdict::ok;
  }
  if (proto == ip_proto_udp) {
    if (l4_cap < 8 || l4_wire < 8) return frame_verdict::bad_l4;
    std::size_t ulen = be16(l4 + 4);
    if (ulen == 0) ulen = l4_wire;  // offload / jumbogram
    if (ulen < 8) return frame_verdict::bad_l4;
    ulen = std::min(ulen, l4_wire);
    out.src_port = be16(l4);
    out.dst_port = be16(l4 + 2);
    out.seq = out.ack = 0;
    out.tcp_flags = 0;
    out.payload_length = static_cast<std::uint32_t>(ulen - 8);
    out.payload = bytes_view(l4 + 8, std::min(l4_cap, ulen) - 8);
    return frame_verdict::ok;
  }
  return frame_verdict::other_protocol;
}

}  // namespace nudge::capture_reader
