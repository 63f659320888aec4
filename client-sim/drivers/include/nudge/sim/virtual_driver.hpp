#pragma once
// The discrete-event driver: runs the same protocol cores as the Asio driver,
// created through the registry's factories and driven only through the session
// contract (nudge/engine/session.hpp), in virtual time, in one thread, on a
// virtual network (src/virtual_network.hpp). Time jumps from event to event;
// every random choice comes from the plan's seed, so (plan, seed) gives
// byte-identical results.
#include <cstddef>
#include <functional>

#include "nudge/client/client_session.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/run_result.hpp"

namespace nudge::sim {

/// An observer of what the observed clients send and receive, at the client's
/// side of the (virtual) network: what a capture on the client host would
/// show. `client-sim --pcap` turns it into frames (client-sim/capture/).
///
/// Addresses (documentation ranges; they never reach a socket):
///   notifier            192.0.2.1:7777 (TCP), 192.0.2.1:7778 (UDP)
///   a direct client i   198.18.h.x: TCP main port 20000 + (i mod 20000), async
///                       40000 + (i mod 20000), UDP 20000 + (i mod 20000); 20,000
///                       clients per host address from 198.18.0.2 on
///   behind a NAT        its private address 10.0.0.2 + i (TCP 20000 / 40000,
///                       UDP 50000); the notifier sees the NAT's 100.64.x.y
///
/// A connection is named by the client's index and its ordinal among the
/// client's connections as a `client::channel` (its first: main, its second:
/// async).
///
/// Calls come in non-decreasing time order, with one exception: pure ACKs
/// settled by the end of the run (between `finishing` and `finished`) carry
/// their own times, up to the delayed-ACK time past the end, in client order.
/// Observing never changes a run's counts: observed clients settle their ACK
/// estimates eagerly (client_config::eager_acks), which counts the same ACKs.
class virtual_capture {
 public:
  virtual ~virtual_capture() = default;
  /// Asked once per client before the run: observe this one? `f` is the
  /// client's family (its capture classifier says how its sends split into
  /// messages and whether its closes count a teardown).
  virtual bool observe(std::size_t client, const engine::family& f) = 0;
  /// An observed client opened a TCP channel (counted as SYN, SYN-ACK, ACK).
  virtual void tcp_open(time_point at, std::size_t client, client::channel ch, const protocol::ip_endpoint& local,
                        const protocol::ip_endpoint& server) = 0;
  /// Bytes on an open channel: to_server at their send time, to_client at arrival.
  virtual void tcp_data(time_point at, std::size_t client, client::channel ch, metrics::direction d,
                        protocol::bytes_view bytes) = 0;
  /// An observed client's connection closed: by the client (to_server) or by
  /// the server (to_client), at the moment the client closed it or learned
  /// that it was closed (after the client's own last ACKs).
  virtual void tcp_close(time_point /*at*/, std::size_t /*client*/, client::channel /*ch*/, metrics::direction /*closer*/) {}
  /// A pure ACK the client's estimate says was sent (to_server: by the client).
  virtual void pure_ack(time_point at, std::size_t client, client::channel ch, metrics::direction d) = 0;
  /// A datagram the client sent (at its send time) or received (at arrival).
  virtual void datagram(time_point at, std::size_t client, const protocol::ip_endpoint& from,
                        const protocol::ip_endpoint& to, protocol::bytes_view payload) = 0;
  /// The run reached its end: the sessions settle their pending ACKs now.
  virtual void finishing(time_point) {}
  virtual void finished(time_point) {}
};

struct virtual_options {
  /// Called about every `progress_every` of simulated time (for a progress line).
  std::function<void(time_point now, const run_result& so_far)> progress;
  duration progress_every = std::chrono::minutes(10);
  /// Optional observer (a pcap writer); must outlive the run.
  virtual_capture* capture = nullptr;
  /// Called for every mailbox event as it is generated: the client and the
  /// simulated time (event_schedule's time for it; a test compares drivers with it).
  std::function<void(std::size_t client, time_point at)> on_event;
  /// When set, receives at the end the virtual network's connection records (in
  /// use or free): bounded by the connections open at once, whatever the number
  /// ever opened (a test checks it).
  std::size_t* connection_records = nullptr;
};

run_result run_virtual(const run_plan& plan, const virtual_options& opts = {});

}  // namespace nudge::sim
