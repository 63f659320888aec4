#pragma once
// The real-socket driver (the client host): runs a run_plan's client cores,
// whatever their protocol family, through the session contract
// (nudge/engine/session.hpp) and the registry's factories, against a live
// `notifier` over loopback TCP and UDP, and drives mailbox events through the
// notifier's control port. Same sessions, same event schedule (event_schedule:
// the same event times per mailbox for the same plan), same run_result as
// run_virtual. Settings only virtual time can honour (link delay, loss, NAT, the
// in-process notifier's [server] settings) are refused, not ignored.
//
//  * Where each family is served (engine::service_address: its server core's
//    listeners and UDP sockets) comes from the notifier's control port
//    (`SERVICES`, nudge/notifier/control_protocol.hpp), asked once at the start;
//    EMSMDB's may also be stated (--notifier, --notifier-udp), and are the
//    defaults when the control port does not answer.
//  * Each client opens the connections, UDP sockets and listeners its core asks
//    for, all bound to one source address from a loopback range (127.0.0.2,
//    127.0.0.3, ...) so ephemeral ports never run out. A UDP socket's bound
//    address is what the core learns as its callback address.
//  * Time is steady_clock mapped onto nudge::time_point through
//    time_since_epoch, as the notifier does, so event timestamps it stamps and
//    the clients' `now` are comparable (same machine).
//  * Worker threads each own a slice of clients, one io_context and one timer
//    over a min-heap of client deadlines. When the plan needs more descriptors
//    than one process may hold (counted from what each group's core opens when
//    it starts), the clients are split over forked worker processes that send
//    their metrics back over a pipe (exactly).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/run_result.hpp"

namespace nudge::sim {

/// A live view of a real run, summed over threads and processes.
struct real_progress {
  duration elapsed = duration::zero();  // since the run's time zero (negative before it)
  std::size_t clients = 0;              // in the plan
  std::size_t processes = 1;
  std::uint64_t clients_started = 0;    // connected and sent their binds
  std::uint64_t clients_ready = 0;
  std::uint64_t clients_failed = 0;
  std::uint64_t events_generated = 0;   // acknowledged by the notifier's control port
  std::uint64_t events_fetched = 0;      // on every delivery path
  /// The plan's families' counters by vocabulary name (summed over the
  /// families that declare a name), in order of first mention.
  std::vector<std::pair<std::string, std::uint64_t>> counters;
  /// Both directions, as the sessions' wire model counts them: the measured
  /// figures (kernel TCP_INFO) exist only once connections close.
  std::uint64_t modelled_wire_bytes = 0;

  /// The counter called `name`, if a family of the plan declares one.
  std::optional<std::uint64_t> counter(std::string_view name) const {
    for (const auto& [n, v] : counters)
      if (n == name) return v;
    return std::nullopt;
  }
};

/// One client of a scripted run (nudge-replay): which group of the plan it
/// belongs to, when it starts and when its mailbox changes, all since time zero.
struct scripted_client {
  std::size_t group = 0;          // an index into run_plan::mix
  duration start = duration::zero();
  std::vector<duration> events;   // sorted; each is one EVENT@<family> for the client's mailbox
};

/// Where the notifier serves one protocol family, as a real run addresses it.
struct family_service {
  std::string family;
  engine::service_address at;
};

struct real_options {
  /// The notifier's control port (TCP, text): mail is injected there, and its
  /// `SERVICES` reply says where every family is served.
  protocol::ip_endpoint control = protocol::ip_endpoint::v4(127, 0, 0, 1, 7779);
  /// How long the control port may take to answer: SERVICES at start (the
  /// run fails: "the control port at X did not answer SERVICES within N s"),
  /// each batch of EVENT@<family> lines during the run (events stop, with a
  /// warning). Each client's events name its family, so they reach only
  /// that family's core.
  duration control_timeout = std::chrono::seconds(10);
  /// EMSMDB's DCE/RPC (TCP, the core's listener 0) and ping (UDP, socket 0)
  /// endpoints. A stated one (--notifier, --notifier-udp) wins over the
  /// `SERVICES` reply; unstated, they are only used when the control port
  /// does not answer `SERVICES` (a notifier run without --control).
  /// Real traffic only ever goes to loopback: IPv4 127.0.0.0/8 is required.
  protocol::ip_endpoint notifier = protocol::ip_endpoint::v4(127, 0, 0, 1, 7777);
  protocol::ip_endpoint notifier_udp = protocol::ip_endpoint::v4(127, 0, 0, 1, 7778);
  bool notifier_stated = false;
  bool notifier_udp_stated = false;
  /// Worker threads in all, split evenly over the processes (at least one
  /// each); 0: one per CPU.
  std::size_t workers = 0;
  /// Worker processes; 0: as few as the descriptor budget allows (usually 1).
  std::size_t processes = 0;
  /// Descriptors one process may spend on client sockets; 0: the soft
  /// RLIMIT_NOFILE (raised to the hard limit first) minus a reserve of 2,000.
  std::size_t max_fds_per_process = 0;
  /// Client i binds its sockets to source_first + (i mod source_count), port 0.
  protocol::ip_endpoint source_first = protocol::ip_endpoint::v4(127, 0, 0, 2, 0);
  std::size_t source_count = 253;  // 127.0.0.2 .. 127.0.0.254
  /// Time zero is this long after run_real is called, so sockets and threads
  /// (and worker processes) are ready when the first client starts.
  duration start_delay = std::chrono::milliseconds(200);
  /// Called on the caller's thread about every `progress_every`.
  std::function<void(const real_progress&)> progress;
  duration progress_every = std::chrono::milliseconds(500);
  /// Warnings worth a line on stderr (first client failures, control-port trouble).
  std::function<void(std::string_view)> log;
  /// Called on the caller's thread once the notifier has been found reachable,
  /// with where it serves the plan's families, before any client socket opens
  /// (and before worker processes fork); after_clients once after every
  /// session has finished and every client socket has closed (also when the
  /// run throws). `client-sim --pcap` starts and stops a live capture of the
  /// notifier's ports here.
  std::function<void(const std::vector<family_service>&)> before_clients;
  std::function<void()> after_clients;
  /// Called on the event thread for every mailbox event the notifier's control
  /// port acknowledged: the client and the event's time in the run's
  /// event_schedule (since time zero; it was sent no earlier). Only events of
  /// clients run in this process: worker processes do not report them.
  std::function<void(std::size_t client, duration scheduled)> on_event;
  /// Besides loopback, the networks (address, prefix length) a run may talk
  /// to and bind in. Set only by the kernel NAT testbed (client-sim/kernelnat),
  /// whose addresses exist only inside the network namespaces it created.
  std::vector<std::pair<protocol::ip_endpoint, unsigned>> testbed_networks;
  /// Called first on every thread that opens client sockets (in every worker
  /// process); throws to fail the run. The kernel NAT testbed moves the thread
  /// into its LAN namespace here, while the control connection stays where
  /// run_real was called.
  std::function<void()> enter_client_network;
  /// A scripted run (nudge-replay rebuilding a capture's clients): when set,
  /// it holds one entry per client of the plan and decides each client's
  /// group, start and mailbox events instead of the plan's assignment, ramp
  /// and event_schedule. Everything else (cores, sockets, counting) is as in
  /// any real run. Must outlive run_real.
  const std::vector<scripted_client>* script = nullptr;
};

/// Empty when the options are usable, else a message (non-loopback endpoint, ...).
std::string validate(const real_options& opts);

/// Runs the plan against a live notifier. Throws std::runtime_error when the
/// run cannot be carried out (notifier unreachable, bad options, a worker
/// process died); client failures during the run are counted, not thrown.
run_result run_real(const run_plan& plan, const real_options& opts);

}  // namespace nudge::sim
