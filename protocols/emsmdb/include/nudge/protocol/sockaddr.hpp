#pragma once
// The Windows SOCKADDR a client registers as its callback address
// (EcRRegisterPushNotification rgbCallbackAddress): u16 family little-endian
// (2 = AF_INET, 23 = AF_INET6), then port and address in network order.
// SOCKADDR_IN is 16 bytes; SOCKADDR_IN6 is 28 (family, port, flowinfo, addr, scope).
#include <cstdint>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::protocol {

inline constexpr std::uint16_t windows_af_inet = 2;
inline constexpr std::uint16_t windows_af_inet6 = 23;
inline constexpr std::size_t sockaddr_in_size = 16;
inline constexpr std::size_t sockaddr_in6_size = 28;

void encode_windows_sockaddr(byte_buffer& out, const ip_endpoint& ep);
byte_buffer windows_sockaddr(const ip_endpoint& ep);

/// Malformed (with the reason) when the family is unknown or the size does not
/// match it; the server answers both with ecInvalidParam.
decoded<ip_endpoint> decode_windows_sockaddr(bytes_view in);

}  // namespace nudge::protocol
