#include "tcp_wire.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

namespace nudge::sim::tcp_wire {

namespace {
// tcpi_state values (the kernel's include/net/tcp_states.h, not exported to user space).
constexpr std::uint8_t state_syn_sent = 2, state_close = 7, state_close_wait = 8;
}  // namespace

std::uint64_t syn_option_bytes(std::uint8_t tcpi_options) {
  // MSS 4; timestamps 12 (SACK-permitted rides in their padding), else
  // SACK-permitted 4 (NOP NOP kind len); window scale 4 (NOP kind len shift).
  const bool ts = tcpi_options & TCPI_OPT_TIMESTAMPS, sack = tcpi_options & TCPI_OPT_SACK;
  return 4 + (ts ? 12 : sack ? 4 : 0) + ((tcpi_options & TCPI_OPT_WSCALE) ? 4 : 0);
}

// Segments are the kernel's (tcpi_segs_out / tcpi_segs_in: SYN, SYN-ACK, data,
// pure ACKs, retransmissions); payload is tcpi_bytes_sent / tcpi_bytes_received;
// each segment costs an IPv4 and a TCP header plus the option bytes the
// connection negotiated (12 with timestamps), the SYN and SYN-ACK their longer
// options. When the notifier has begun the teardown itself (its FIN or RST
// arrived: CLOSE_WAIT or CLOSE), that segment, and the FIN's sequence number
// that tcpi_bytes_received counts, are left out: teardown is counted nowhere
// (docs/measurements.md).
bool add_connection(int fd, measured_traffic& out, bool accepted) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
  if (len < offsetof(tcp_info, tcpi_bytes_sent) + sizeof ti.tcpi_bytes_sent) return false;
  std::uint64_t segs_in = ti.tcpi_segs_in, bytes_in = ti.tcpi_bytes_received;
  if (ti.tcpi_state == state_close_wait && segs_in > 0) {
    --segs_in;  // the notifier's FIN
    if (bytes_in > 0) --bytes_in;
  } else if (ti.tcpi_state == state_close && segs_in > 0) {
    --segs_in;  // its RST (a refused connect, a reset connection)
  }
  const bool syn_ack_seen = ti.tcpi_state != state_syn_sent && segs_in > 0;
  const std::uint64_t options = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) ? 12 : 0;
  const std::uint64_t per_segment = ipv4_header_bytes + tcp_header_bytes + options;
  const std::uint64_t syn_extra = syn_option_bytes(ti.tcpi_options) - options;
  // An accepted socket's counters start after the handshake's SYN-ACK (sent by the listener's request sock).
  measured_traffic::flow up{ti.tcpi_segs_out + (accepted ? 1 : 0), ti.tcpi_bytes_sent, 0};
  up.wire_bytes = up.payload_bytes + up.packets * per_segment + (up.packets > 0 ? syn_extra : 0);
  measured_traffic::flow down{segs_in, bytes_in, 0};
  down.wire_bytes = down.payload_bytes + down.packets * per_segment + (syn_ack_seen ? syn_extra : 0);
  ++out.tcp_connections;
  out.tcp[static_cast<std::size_t>(metrics::direction::to_server)] += up;
  out.tcp[static_cast<std::size_t>(metrics::direction::to_client)] += down;
  return true;
}

}  // namespace nudge::sim::tcp_wire
