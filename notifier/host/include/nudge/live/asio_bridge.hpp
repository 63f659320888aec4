#pragma once
// The live layer's two conversions, shared by the server host (notifier/host)
// and the client host (client-sim's real driver): Asio endpoints <->
// protocol::ip_endpoint, and steady_clock <-> nudge's time_point. Both hosts
// map steady_clock onto time_point through time_since_epoch, so a timestamp
// the notifier stamps and a client's `now` are comparable on one machine.
#include <algorithm>
#include <chrono>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::live {

/// The process-wide monotonic clock (CLOCK_MONOTONIC) as the cores see it.
inline time_point steady_now() {
  return time_point(std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

/// When a steady_timer should fire for a core's deadline (`never`: the far future).
inline std::chrono::steady_clock::time_point to_steady(time_point t) {
  if (t == never) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
}

/// A v4-mapped IPv6 address becomes the IPv4 address it carries.
inline protocol::ip_endpoint from_asio(const boost::asio::ip::address& a, std::uint16_t port) {
  if (a.is_v4()) return protocol::ip_endpoint::v4(a.to_v4().to_uint(), port);
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped())
    return protocol::ip_endpoint::v4(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_uint(), port);
  protocol::ip_endpoint e;
  e.is_v6 = true;
  const auto b = v6.to_bytes();
  std::copy(b.begin(), b.end(), e.address.begin());
  e.port = port;
  return e;
}

/// Any Asio endpoint (tcp::endpoint, udp::endpoint).
template <class Endpoint>
protocol::ip_endpoint from_asio(const Endpoint& ep) {
  return from_asio(ep.address(), ep.port());
}

inline boost::asio::ip::address to_asio_address(const protocol::ip_endpoint& e) {
  if (!e.is_v6) return boost::asio::ip::address_v4(e.v4_host_order());
  boost::asio::ip::address_v6::bytes_type b;
  std::copy(e.address.begin(), e.address.end(), b.begin());
  return boost::asio::ip::address_v6(b);
}

/// to_asio<tcp::endpoint>(e), to_asio<udp::endpoint>(e).
template <class Endpoint>
Endpoint to_asio(const protocol::ip_endpoint& e) {
  return Endpoint(to_asio_address(e), e.port);
}

}  // namespace nudge::live
