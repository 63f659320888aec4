#pragma once
// An IPv4 or IPv6 address and port, independent of any socket library, so the
// sans-IO cores and the virtual network can name peers.
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::protocol {

struct ip_endpoint {
  std::array<std::uint8_t, 16> address{};  // IPv4 uses the first 4 bytes
  bool is_v6 = false;
  std::uint16_t port = 0;

  static ip_endpoint v4(std::uint32_t host_order_addr, std::uint16_t port);
  static ip_endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
    return v4((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d, port);
  }
  /// "127.0.0.1:5000", "[::1]:5000"; nullopt when it does not parse.
  static std::optional<ip_endpoint> parse(std::string_view text);

  std::uint32_t v4_host_order() const {
    return (std::uint32_t{address[0]} << 24) | (std::uint32_t{address[1]} << 16) | (std::uint32_t{address[2]} << 8) |
           address[3];
  }
  /// 127.0.0.0/8 or ::1 (or ::ffff:127.x.y.z).
  bool is_loopback() const;
  std::string address_string() const;
  std::string to_string() const;

  friend auto operator<=>(const ip_endpoint&, const ip_endpoint&) = default;
  friend bool operator==(const ip_endpoint&, const ip_endpoint&) = default;
};

/// A run of consecutive IPv4 loopback addresses, e.g. client source addresses.
struct loopback_range {
  ip_endpoint first;
  std::size_t count = 0;
};
/// "127.0.0.2-127.0.0.254" (or one address). Empty on success, else what is wrong.
std::string parse_loopback_range(std::string_view text, loopback_range& out);

struct ip_endpoint_hash {
  std::size_t operator()(const ip_endpoint& e) const noexcept;
};

}  // namespace nudge::protocol
