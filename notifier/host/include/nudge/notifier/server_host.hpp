#pragma once
// The server host: runs any server core (engine::server_session) on real
// loopback sockets with Boost.Asio. It opens the TCP listeners and UDP
// sockets each core asks for (`listen`, `bind_udp`) on that core's addresses,
// carries out its actions, fires its deadlines with one steady_timer, runs
// one built-in event generator per core, and serves ONE control port for all
// of them: `EVENT@<family> mailbox` and `STATS` map onto
// server_session::inject_event of that family's core (plain `EVENT`: the
// first core's) and every core's stats(), `SERVICES` lists where each core
// listens (nudge/notifier/control_protocol.hpp).
// Single-threaded: everything runs on the io_context the caller runs.
//
// Errors are values: start() returns the reason it could not bind; at run time
// a failing peer, accept (EMFILE) or send is counted and logged, never fatal.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace boost::asio {
class io_context;
}

namespace nudge::notifier {

using protocol::ip_endpoint;

enum class log_level : std::uint8_t { info, warning, error };
using log_sink = std::function<void(log_level, std::string_view)>;
/// "notifier: <text>" lines on stderr; `quiet` drops info lines.
log_sink stderr_log(bool quiet);

/// One core the host serves.
struct served_protocol {
  std::string name;  // the family's name, e.g. "emsmdb" (STATS, log lines, EVENT@<name>)
  std::unique_ptr<engine::server_session> core;
  /// The addresses its listeners and UDP sockets bind; the port comes from
  /// the core's `listen` / `bind_udp`.
  ip_endpoint tcp_address = ip_endpoint::v4(127, 0, 0, 1, 0);
  ip_endpoint udp_address = ip_endpoint::v4(127, 0, 0, 1, 0);
  /// Appended to the "serving ..." log line (the core's policy, say).
  std::string description;
};

struct host_config {
  std::optional<ip_endpoint> control;  // loopback only
  double events_per_mailbox_hour = 0;  // built-in generator, per core; 0 = off
  std::uint64_t seed = 1;              // the first core's generator; the next ones seed + index
  /// Binding or sending outside loopback is refused unless set.
  bool allow_non_loopback = false;
  int udp_buffer_bytes = 4 << 20;  // SO_RCVBUF and SO_SNDBUF of every UDP socket
  /// A connection whose unsent bytes exceed this is not reading: dropped.
  std::size_t max_unsent_bytes_per_connection = 16u << 20;
  /// Datagrams waiting for send-buffer room beyond this (per socket) are dropped (counted).
  std::size_t max_queued_datagrams = 1u << 20;
  duration accept_retry = std::chrono::milliseconds(100);
};

/// What the host itself counts (the cores count their protocols).
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
  std::uint64_t udp_refused_non_loopback = 0;  // caught by the host's own check
  std::uint64_t tcp_connects = 0;              // connections a core opened (webhooks)
  std::uint64_t tcp_connect_failures = 0;      // of those, refused or unreachable
  std::uint64_t tcp_refused_non_loopback = 0;  // connects outside loopback, refused by the host
  std::uint64_t udp_receive_errors = 0;
  std::uint64_t control_connections = 0;
  std::uint64_t control_commands = 0;
  std::uint64_t control_errors = 0;  // ERR replies
  std::uint64_t events_from_control = 0;
  std::uint64_t events_from_generator = 0;
  std::uint64_t generator_backlog_dropped = 0;
  std::uint64_t log_lines_suppressed = 0;  // rate-limited away
};

class server_host {
 public:
  /// The first of `served` is the default family: the control port's
  /// EVENT without @<family> goes to its core.
  server_host(boost::asio::io_context& io, host_config cfg, std::vector<served_protocol> served, log_sink log);
  ~server_host();
  server_host(const server_host&) = delete;
  server_host& operator=(const server_host&) = delete;

  /// Starts every core and opens every socket they ask for; the reason on
  /// failure (nothing is left open then). Call once, before running the io_context.
  std::optional<std::string> start();
  /// Closes everything; io_context::run returns once the handlers have drained.
  /// Idempotent; call it on the io_context's thread (or post it there).
  void stop();
  bool stopped() const;

  std::size_t protocol_count() const;
  const std::string& protocol_name(std::size_t index) const;
  const engine::server_session& core(std::size_t index) const;
  /// Where a core's listener / UDP socket is bound (ephemeral ports resolved);
  /// nullopt before start() or when the core asked for no such id.
  std::optional<ip_endpoint> listener_endpoint(std::size_t index, engine::listener_id id) const;
  std::optional<ip_endpoint> socket_endpoint(std::size_t index, engine::socket_id id) const;
  std::optional<ip_endpoint> control_endpoint() const;
  /// Where core `index` can be reached: every listener and UDP socket it
  /// opened, by its own id, at the bound endpoint (empty before start()).
  engine::service_address service(std::size_t index) const;

  /// The SERVICES reply: {"<family>": {"listeners": [{"id", "at"}], "sockets": [...]}}.
  nlohmann::json services_json() const;

  /// Only while the io_context is not running, or from its thread.
  const driver_stats& stats() const;
  time_point started_at() const;

  /// The STATS reply: uptime, every core's stats() (at the top level when the
  /// host serves one core, else under its name), the host's counters under
  /// "driver", and up to `max_mailboxes` mailboxes with undelivered events.
  nlohmann::json stats_json(time_point now, std::size_t max_mailboxes = 100) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Serialises without throwing: invalid UTF-8 (mailbox names come from the
/// network) is replaced.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace nudge::notifier
