#pragma once
// The notifier on real sockets: an Asio driver around notifier_core. One TCP
// acceptor serves DCE/RPC, one UDP socket sends pings and receives cookies,
// one steady_timer fires the core's deadlines and the event generator, and an
// optional loopback control port injects events and reports statistics.
// Single-threaded: everything runs on the io_context the caller runs.
//
// Errors are values: start() returns the reason it could not bind; at run time
// a failing peer, accept (EMFILE) or send is counted and logged, never fatal.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nudge/notifier/notifier_core.hpp"

namespace boost::asio {
class io_context;
}

namespace nudge::notifier {

enum class log_level : std::uint8_t { info, warning, error };
using log_sink = std::function<void(log_level, std::string_view)>;
/// "notifier: <text>" lines on stderr; `quiet` drops info lines.
log_sink stderr_log(bool quiet);

/// The process-wide monotonic clock (CLOCK_MONOTONIC) as the cores see it.
/// Every process on the machine shares it, so client-sim can subtract an
/// event's created_at from its own now.
time_point steady_now();

struct server_config {
  notifier_config core;  // core.tcp_port is filled in from the bound acceptor
  ip_endpoint tcp_listen = ip_endpoint::v4(127, 0, 0, 1, 7777);
  ip_endpoint udp_bind = ip_endpoint::v4(127, 0, 0, 1, 7778);
  std::optional<ip_endpoint> control;  // loopback only
  double events_per_mailbox_hour = 0;  // built-in generator; 0 = off
  std::uint64_t seed = 1;
  int udp_buffer_bytes = 4 << 20;  // SO_RCVBUF and SO_SNDBUF of the UDP socket
  /// A connection whose unsent responses exceed this is not reading: dropped.
  std::size_t max_unsent_bytes_per_connection = 16u << 20;
  /// Datagrams waiting for send-buffer room beyond this are dropped (counted).
  std::size_t max_queued_datagrams = 1u << 20;
  duration accept_retry = std::chrono::milliseconds(100);
};

/// What the driver itself counts (the core counts the protocol).
struct driver_stats {
  std::uint64_t accept_errors = 0;
  std::uint64_t tcp_read_errors = 0;   // resets and other errors (EOF is not one)
  std::uint64_t tcp_write_errors = 0;
  std::uint64_t connections_not_reading = 0;  // dropped for unsent backlog
  std::uint64_t udp_send_calls = 0;           // sendmmsg calls
  std::uint64_t udp_datagrams_sent = 0;       // handed to the kernel
  std::uint64_t udp_send_errors = 0;
  std::uint64_t udp_send_blocked = 0;        // send buffer full: waited for room
  std::uint64_t udp_dropped_queue_full = 0;
  std::uint64_t udp_refused_non_loopback = 0;  // caught by the driver's own check
  std::uint64_t udp_receive_errors = 0;
  std::uint64_t control_connections = 0;
  std::uint64_t control_commands = 0;
  std::uint64_t control_errors = 0;  // ERR replies
  std::uint64_t events_from_control = 0;
  std::uint64_t events_from_generator = 0;
  std::uint64_t generator_backlog_dropped = 0;
  std::uint64_t log_lines_suppressed = 0;  // rate-limited away
};

class notifier_server {
 public:
  notifier_server(boost::asio::io_context& io, server_config cfg, log_sink log);
  ~notifier_server();
  notifier_server(const notifier_server&) = delete;
  notifier_server& operator=(const notifier_server&) = delete;

  /// Opens and binds every socket and starts serving; the reason on failure
  /// (nothing is left open then). Call once, before running the io_context.
  std::optional<std::string> start();
  /// Closes everything; io_context::run returns once the handlers have drained.
  /// Idempotent; call it on the io_context's thread (or post it there).
  void stop();
  bool stopped() const;

  /// The bound addresses (ephemeral ports resolved); valid after start().
  ip_endpoint tcp_endpoint() const;
  ip_endpoint udp_endpoint() const;
  std::optional<ip_endpoint> control_endpoint() const;

  /// Only while the io_context is not running, or from its thread.
  const notifier_core& core() const;
  const driver_stats& stats() const;
  time_point started_at() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nudge::notifier
