#pragma once
// The real driver's wire measurement of one TCP connection, from the kernel's
// TCP_INFO. Its own translation unit: <linux/tcp.h> (which has the fields
// needed) and glibc's <netinet/tcp.h> (which Boost.Asio includes) cannot meet.
#include <cstdint>

#include "nudge/sim/run_result.hpp"

namespace nudge::sim::tcp_wire {

// IP-layer bytes as a capture's ip.len counts them; loopback IPv4 carries no IP options.
inline constexpr std::uint64_t ipv4_header_bytes = 20;
inline constexpr std::uint64_t tcp_header_bytes = 20;
inline constexpr std::uint64_t udp_header_bytes = 8;

/// Option bytes Linux puts on a SYN (and on the SYN-ACK) when these TCPI_OPT_*
/// options were negotiated.
std::uint64_t syn_option_bytes(std::uint8_t tcpi_options);

/// Adds the client TCP connection on `fd` to `out`, read with TCP_INFO before
/// the client starts its teardown. False (and nothing added) when the kernel
/// cannot describe it (TCP_INFO without tcpi_bytes_sent: before Linux 4.19).
/// `accepted`: the client accepted it on its own listener (a webhook's
/// callback); the kernel's listener sent its SYN-ACK, which the accepted
/// socket's tcpi_segs_out leaves out, so it is added here.
bool add_connection(int fd, measured_traffic& out, bool accepted = false);

}  // namespace nudge::sim::tcp_wire
