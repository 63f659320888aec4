#pragma once
// The numbers a run produces, defined once (docs/measurements.md) and written
// as JSON (schema "nudge.result/1") and as a readable table.
#include <array>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nudge/client/client_session.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/sim/run_plan.hpp"

namespace nudge::sim {

/// What went over the wire in a real run, per mode, from the kernel and the
/// sockets rather than the wire model (docs/measurements.md, "Measured wire
/// traffic"). TCP: each connection's TCP_INFO read just before the client
/// starts its teardown (teardown is counted in neither model nor measurement);
/// UDP: the datagrams the client's socket sent and received. IP-layer bytes.
struct measured_traffic {
  struct flow {
    std::uint64_t packets = 0;        // TCP segments (SYN, data, pure ACKs) or UDP datagrams
    std::uint64_t payload_bytes = 0;  // TCP payload / datagram payload
    std::uint64_t wire_bytes = 0;     // IP-layer bytes: payload + IP, TCP/UDP headers and TCP options
    flow& operator+=(const flow& o) {
      packets += o.packets;
      payload_bytes += o.payload_bytes;
      wire_bytes += o.wire_bytes;
      return *this;
    }
    friend bool operator==(const flow&, const flow&) = default;
  };
  std::uint64_t tcp_connections = 0;  // connections whose TCP_INFO was read
  std::uint64_t unmeasured_connections = 0;  // connections TCP_INFO could not describe: missing from the figures
  std::array<flow, 2> tcp{};          // [metrics::direction]: to_server, to_client
  std::array<flow, 2> udp{};

  flow total() const {
    flow t;
    for (const auto& f : tcp) t += f;
    for (const auto& f : udp) t += f;
    return t;
  }
  measured_traffic& operator+=(const measured_traffic& o) {
    tcp_connections += o.tcp_connections;
    unmeasured_connections += o.unmeasured_connections;
    for (std::size_t d = 0; d < 2; ++d) {
      tcp[d] += o.tcp[d];
      udp[d] += o.udp[d];
    }
    return *this;
  }
  friend bool operator==(const measured_traffic&, const measured_traffic&) = default;
};
/// What the JSON's measured blocks name as their source.
inline constexpr const char* measured_traffic_source = "kernel tcp_info + socket counts";

struct mode_result {
  client::client_mode mode = client::client_mode::poll;
  std::size_t clients = 0;
  client::client_metrics metrics;
  std::uint64_t events_generated = 0;  // for this mode's mailboxes, during the run
  /// Real runs: the measured wire traffic (metrics.traffic stays the model's).
  std::optional<measured_traffic> measured;
  std::uint64_t events_missed() const {
    return events_generated > metrics.counter(protocol::emsmdb::counter::events_fetched) ? events_generated - metrics.counter(protocol::emsmdb::counter::events_fetched) : 0;
  }
};

/// One (mode, NAT) cell: what NAT did to each signalling path.
struct group_result {
  client::client_mode mode = client::client_mode::poll;
  std::string nat = "none";
  std::size_t clients = 0;
  client::client_metrics metrics;
  std::uint64_t events_generated = 0;
  std::uint64_t events_missed() const {
    return events_generated > metrics.counter(protocol::emsmdb::counter::events_fetched) ? events_generated - metrics.counter(protocol::emsmdb::counter::events_fetched) : 0;
  }
};

struct run_result {
  std::string clock;  // "virtual" or "real"
  run_plan plan;
  std::array<mode_result, client::client_mode_count> modes;
  /// Per (mode, NAT group), when the plan has a NAT mix; empty otherwise.
  std::vector<group_result> groups;
  std::optional<notifier::notifier_stats> server;  // when the driver hosts the notifier core
  duration measured = duration::zero();  // run length that per-hour rates are based on (length, not drain)
  double wall_seconds = 0;
  std::uint64_t simulated_events = 0;  // virtual driver: events processed
  /// Virtual driver: datagrams the network did not deliver, and why.
  struct network_drops {
    std::uint64_t nat_filtered = 0;  // no mapping, expired, or filtered by the NAT
    std::uint64_t no_route = 0;      // addressed to a private address from outside
    std::uint64_t lost = 0;          // link loss
  } network;
  /// Virtual driver: "traffic over the day". Cumulative wire bytes and packets
  /// per mode at regular points of simulated time, the last at the end of the
  /// drain. Estimated pure ACKs (tcp_ack) are left out: they are counted when a
  /// session settles them, not at their own time, so they cannot be placed in
  /// an interval. Empty from the real-socket driver.
  struct timeline_sample {
    duration at = duration::zero();  // since the start of the run
    std::array<std::uint64_t, client::client_mode_count> wire_bytes{};
    std::array<std::uint64_t, client::client_mode_count> packets{};
  };
  std::vector<timeline_sample> timeline;

  /// Totals over all modes.
  client::client_metrics total() const;
  /// Measured traffic over all modes; nullopt unless the run measured it (real runs).
  std::optional<measured_traffic> measured_total() const;
  /// The bytes per client-hour of one mode (wire bytes, both directions):
  /// measured when the run measured them, else the wire model's.
  double wire_bytes_per_client_hour(client::client_mode m) const;
  /// The wire model's figure, whatever the run measured.
  double modelled_wire_bytes_per_client_hour(client::client_mode m) const;
};

nlohmann::json to_json(const run_result& r);
/// Human-readable table: one block per mode, then totals.
void print_table(std::ostream& out, const run_result& r);

}  // namespace nudge::sim
