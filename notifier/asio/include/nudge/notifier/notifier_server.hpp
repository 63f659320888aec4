#pragma once
// The notifier on real sockets: the EMSMDB core (emsmdb_server_core) run by
// the server host (nudge/notifier/server_host.hpp), with the notifier's
// options: one TCP listener serves DCE/RPC, one UDP socket sends pings and
// receives cookies, an optional loopback control port injects events and
// reports statistics. Further protocols' cores, if given, are served by the
// same host, each on its own ports, behind the same control port.
// Single-threaded: everything runs on the io_context the caller runs.
//
// Errors are values: start() returns the reason it could not bind; at run time
// a failing peer, accept (EMFILE) or send is counted and logged, never fatal.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/protocol/result.hpp"
#include "nudge/live/asio_bridge.hpp"
#include "nudge/notifier/emsmdb_server_core.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/notifier/server_host.hpp"

namespace boost::asio {
class io_context;
}

namespace nudge::notifier {

/// The process-wide monotonic clock (CLOCK_MONOTONIC) as the cores see it.
/// Every process on the machine shares it, so client-sim can subtract an
/// event's created_at from its own now.
using live::steady_now;

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

/// Every registered family's server core except EMSMDB's (which the options
/// above configure), made by its make_server at its keys' defaults, to be
/// served on the notifier's TCP and UDP addresses at the ports each core asks
/// for. `keys` holds their settings as long as the cores live.
/// `family_keys` (notifier --set) set keys of those families; a key no such
/// family declares, or a value not of its type, is an error (the reason).
result<std::vector<served_protocol>> other_registered_servers(
    const server_config& cfg, std::deque<engine::settings>& keys,
    const std::vector<std::pair<std::string, std::string>>& family_keys = {});

class notifier_server {
 public:
  /// `others`: more protocols' server cores to serve next to EMSMDB.
  notifier_server(boost::asio::io_context& io, server_config cfg, log_sink log,
                  std::vector<served_protocol> others = {});
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
  const server_host& host() const { return host_; }

 private:
  server_config cfg_;
  const emsmdb_server_core* emsmdb_;  // owned by host_
  server_host host_;
};

}  // namespace nudge::notifier
