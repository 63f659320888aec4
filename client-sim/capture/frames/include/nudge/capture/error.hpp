#pragma once
// Errors of the capture library. Returned, never thrown: the synthesizer runs
// inside simulations and tests where a bad call should be reported, not abort.
#include <cstdint>
#include <string_view>

namespace nudge::capture {

enum class capture_error : std::uint8_t {
  none = 0,
  ipv6_unsupported,   // an endpoint is IPv6; only IPv4 frames are synthesized
  same_endpoint,      // from == to
  connection_exists,  // tcp_open on a connection that is already open
  no_connection,      // tcp_data / tcp_pure_ack / tcp_close without an open connection
  payload_too_large,  // UDP payload above mtu - 28 (IP fragmentation is not synthesized)
  open_failed,        // the pcap file could not be created
  write_failed,       // writing or flushing the pcap file failed
  not_open,           // the pcap writer is not open
  unsupported_tcp_options,  // option lengths the synthesizer cannot write faithfully (see validate())
};

constexpr std::string_view to_string(capture_error e) noexcept {
  switch (e) {
    case capture_error::none: return "none";
    case capture_error::ipv6_unsupported: return "ipv6_unsupported";
    case capture_error::same_endpoint: return "same_endpoint";
    case capture_error::connection_exists: return "connection_exists";
    case capture_error::no_connection: return "no_connection";
    case capture_error::payload_too_large: return "payload_too_large";
    case capture_error::open_failed: return "open_failed";
    case capture_error::write_failed: return "write_failed";
    case capture_error::not_open: return "not_open";
    case capture_error::unsupported_tcp_options: return "unsupported_tcp_options";
  }
  return "?";
}

}  // namespace nudge::capture
