#include "nudge/protocol/endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace nudge::protocol {

ip_endpoint ip_endpoint::v4(std::uint32_t host_order_addr, std::uint16_t p) {
  ip_endpoint e;
  e.address[0] = static_cast<std::uint8_t>(host_order_addr >> 24);
  e.address[1] = static_cast<std::uint8_t>(host_order_addr >> 16);
  e.address[2] = static_cast<std::uint8_t>(host_order_addr >> 8);
  e.address[3] = static_cast<std::uint8_t>(host_order_addr);
  e.port = p;
  return e;
}

std::optional<ip_endpoint> ip_endpoint::parse(std::string_view text) {
  std::string host;
  std::string_view port_text;
  ip_endpoint e;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    e.is_v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535) return std::nullopt;
  e.port = static_cast<std::uint16_t>(port);
  if (e.is_v6) {
    if (inet_pton(AF_INET6, host.c_str(), e.address.data()) != 1) return std::nullopt;
  } else {
    if (inet_pton(AF_INET, host.c_str(), e.address.data()) != 1) return std::nullopt;
  }
  return e;
}

bool ip_endpoint::is_loopback() const {
  if (!is_v6) return address[0] == 127;
  static const std::uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::memcmp(address.data(), v6_loopback, 16) == 0) return true;
  static const std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(address.data(), mapped_prefix, 12) == 0 && address[12] == 127;
}

std::string ip_endpoint::address_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v6 ? AF_INET6 : AF_INET, address.data(), buf, sizeof buf);
  return buf;
}

std::string ip_endpoint::to_string() const {
  // Appended piecewise: g++ 12 warns (-Wrestrict, a false positive) on "[" + std::string.
  std::string text;
  if (is_v6) text += '[';
  text += address_string();
  if (is_v6) text += ']';
  text += ':';
  text += std::to_string(port);
  return text;
}

std::string parse_loopback_range(std::string_view text, loopback_range& out) {
  const auto dash = text.find('-');
  const std::string first(text.substr(0, dash));
  const std::string last = dash == std::string_view::npos ? first : std::string(text.substr(dash + 1));
  auto a = ip_endpoint::parse(first + ":0");
  auto b = ip_endpoint::parse(last + ":0");
  if (!a || !b || a->is_v6 || b->is_v6) return "expected FIRST-LAST IPv4 addresses";
  if (!a->is_loopback() || !b->is_loopback()) return "refusing non-loopback addresses (127.0.0.0/8 only)";
  if (b->v4_host_order() < a->v4_host_order()) return "the last address precedes the first";
  out.first = *a;
  out.count = std::size_t{b->v4_host_order() - a->v4_host_order()} + 1;
  return {};
}

std::size_t ip_endpoint_hash::operator()(const ip_endpoint& e) const noexcept {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  for (std::size_t i = 0; i < (e.is_v6 ? 16u : 4u); ++i) mix(e.address[i]);
  mix(static_cast<std::uint8_t>(e.port));
  mix(static_cast<std::uint8_t>(e.port >> 8));
  return static_cast<std::size_t>(h);
}

}  // namespace nudge::protocol
