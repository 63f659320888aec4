#pragma once
// Re-drives the client sessions of a capture against a live notifier, on
// loopback only, with Boost.Asio on one thread.
//
// Each captured client becomes a script of (offset, operation) per lane (its
// EMSMDB connection, its AsyncEMSMDB connection, its UDP socket). A replayed
// client opens fresh sockets (a TCP connection per captured connection, at the
// captured offset; a UDP socket when it registers or sends cookies) and sends
// each operation at its captured offset divided by the speed, but never before
// the previous call on that connection has been answered, as a real client
// would (an EcDoAsyncWaitEx stays outstanding until the notifier completes
// it). Requests are rewritten for the live session: fresh call ids per
// connection, the CXH / ACXH the live notifier returned, the replayed client's
// own UDP address as the callback SOCKADDR, the live hNotification in cookies.
//
// The live notifier has no mail unless some is injected: with `control` set,
// an EVENT for the client's mailbox is injected where the capture shows one
// arriving (an EcDoAsyncWaitEx completed with NotificationPending, a ping),
// so waits complete as they did. Without it a wait that was completed by mail
// in the capture stays outstanding; the replay ends `grace` after the last
// operation was due and reports such calls as pending at end.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/protocol/endpoint.hpp"
#include "nudge/replay/capture_sessions.hpp"

namespace nudge::replay {

/// A live view of a blind replay, for the periodic statistics line.
struct blind_progress {
  duration elapsed{};  // since the replay's time zero
  std::size_t clients = 0;
  std::uint64_t ops_sent = 0;
  std::uint64_t ops_answered = 0;
  std::uint64_t events_injected = 0;
};

struct replay_options {
  protocol::ip_endpoint notifier = protocol::ip_endpoint::v4(127, 0, 0, 1, 7777);
  protocol::ip_endpoint notifier_udp = protocol::ip_endpoint::v4(127, 0, 0, 1, 7778);
  /// The notifier's control port, to inject the capture's mail (optional).
  std::optional<protocol::ip_endpoint> control;
  /// Captured offsets are divided by this (2: twice as fast).
  double speed = 1.0;
  /// Send each operation as soon as the previous answer allows (no pacing).
  bool topspeed = false;
  /// How long after the last operation was due (and the last activity) the
  /// replay waits for outstanding answers before it stops.
  duration grace = std::chrono::seconds(5);
  /// IPv4 targets: client i binds its sockets to source_first + (i mod source_count).
  protocol::ip_endpoint source_first = protocol::ip_endpoint::v4(127, 0, 0, 2, 0);
  std::size_t source_count = 253;
  /// Time zero of the replay is this long after run_replay is called.
  duration start_delay = std::chrono::milliseconds(200);
  /// Replay only the first N clients of the capture (0: all).
  std::size_t max_clients = 0;
  /// Warnings (control port trouble, ...), on the replay's thread.
  std::function<void(std::string_view)> log;
  /// Called on the replay's thread every stats_every (and once at the end).
  std::function<void(const blind_progress&)> stats;
  duration stats_every = std::chrono::seconds(1);
};

/// --pps: the capture re-timed so that its operations, in capture order, are
/// due `pps` per second (tcpreplay's --pps); every other captured time (answers,
/// connection opens, pings) moves with the operations around it.
void retime_operations(capture_sessions& capture, double pps);
/// --limit: the capture cut after its first `n` operations in capture order
/// (0: no limit); clients left with none are dropped.
void limit_operations(capture_sessions& capture, std::size_t n);

/// Empty when usable, else why not: every target must be loopback
/// (127.0.0.0/8 or ::1), never the capture's own addresses.
std::string validate(const replay_options& o);

struct replayed_op {
  std::optional<duration> sent;      // offset from the replay's time zero; none: never sent
  std::optional<duration> answered;  // none: no answer (pending at end, or never sent)
  duration due{};                    // the captured offset, scaled
  bool fault = false;                // answered by a fault / bind_nak / an error return code
  std::string note;                  // why it was not sent or failed
};

struct client_replay {
  std::size_t capture_index = 0;     // into capture_sessions::clients
  std::vector<replayed_op> ops;      // ops[k] replays captured op k
  std::vector<std::size_t> send_order;  // captured op indices, in the order they were sent
  std::string failure;               // the client stopped (connection refused, closed, fault on connect)
  std::uint64_t pings_received = 0;
  std::uint64_t events_injected = 0;
};

struct replay_outcome {
  std::string error;                 // non-empty: the replay could not run at all
  std::vector<client_replay> clients;
  double wall_seconds = 0;
  std::uint64_t events_injected = 0;      // EVENT lines sent to the control port
  std::uint64_t events_acknowledged = 0;  // answered OK
};

/// Runs the replay; blocks until it ends. Never throws for network trouble:
/// an unreachable notifier is outcome.error, a client's trouble its failure.
replay_outcome run_replay(const capture_sessions& capture, const replay_options& options);

}  // namespace nudge::replay
