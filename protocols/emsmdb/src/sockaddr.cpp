#include "nudge/protocol/sockaddr.hpp"

namespace nudge::protocol {

void encode_windows_sockaddr(byte_buffer& out, const ip_endpoint& ep) {
  byte_writer w(out);
  w.u16(ep.is_v6 ? windows_af_inet6 : windows_af_inet);  // family: little-endian
  w.u16_be(ep.port);                                     // port: network order
  if (ep.is_v6) {
    w.u32(0);  // flowinfo
    w.bytes({ep.address.data(), 16});
    w.u32(0);  // scope_id
  } else {
    w.bytes({ep.address.data(), 4});
    w.zeros(8);  // sin_zero
  }
}

byte_buffer windows_sockaddr(const ip_endpoint& ep) {
  byte_buffer b;
  encode_windows_sockaddr(b, ep);
  return b;
}

decoded<ip_endpoint> decode_windows_sockaddr(bytes_view in) {
  using result = decoded<ip_endpoint>;
  byte_reader r(in);
  const std::uint16_t family = r.u16();
  if (!r.ok()) return result::bad("SOCKADDR shorter than its family field");
  ip_endpoint ep;
  if (family == windows_af_inet) {
    if (in.size() != sockaddr_in_size) return result::bad("AF_INET SOCKADDR is not 16 bytes");
    ep.port = r.u16_be();
    auto a = r.bytes(4);
    std::copy(a.begin(), a.end(), ep.address.begin());
  } else if (family == windows_af_inet6) {
    if (in.size() != sockaddr_in6_size) return result::bad("AF_INET6 SOCKADDR is not 28 bytes");
    ep.is_v6 = true;
    ep.port = r.u16_be();
    r.skip(4);  // flowinfo
    auto a = r.bytes(16);
    std::copy(a.begin(), a.end(), ep.address.begin());
  } else {
    return result::bad("SOCKADDR family is neither AF_INET (2) nor AF_INET6 (23)");
  }
  if (!r.ok()) return result::bad("SOCKADDR truncated");
  return result::ok(ep, in.size());
}

}  // namespace nudge::protocol
