#pragma once
// The reacting replay (nudge-replay's default): each client of a capture, of
// any registered family that reads captures, is rebuilt as a client core of
// its family with the plan the capture shows (when it started, its mode, its
// poll interval: engine::capture_classifier::rebuild_client; the times its
// mailbox changed: the events it fetched), and run by the real driver
// (nudge/sim/asio_driver.hpp, a scripted run) against a live notifier on
// loopback. The cores react to what the live server does (fetch on a live
// ping, complete a held wait, adopt the interval the server sets); the
// replayer writes no protocol logic of its own. Afterwards each client's live
// counters are set beside the captured ones of the same name, and what
// differs is a divergence.
//
// A capture made elsewhere needs no mapping: the rebuilt cores address the
// live notifier where its control port (`SERVICES`) says it serves each
// family, from loopback sources; nothing is ever sent to a captured address.
// Flows no family reads (encrypted, unknown protocols) are counted and named.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/sim/asio_driver.hpp"

namespace nudge::replay {

using counter_values = std::vector<std::pair<std::string, std::uint64_t>>;

/// A captured client, as a client core will be rebuilt from it.
struct planned_client {
  std::string family;
  std::string mode;  // a mode of the family's vocabulary
  /// Client keys that make the core behave as the captured client did (poll interval, ...).
  std::vector<std::pair<std::string, std::string>> keys;
  protocol::ip_endpoint captured_address;  // as captured: named in reports, never sent to
  duration start{};                        // its first packet, since the capture's time zero
  std::vector<duration> events;            // when its mailbox changed (estimated), since time zero
  counter_values captured;                 // the family reader's counters for it, by name
  std::optional<double> poll_interval_s;   // the median gap between its polls
};

/// Traffic of a capture that no family reads: counted and named, never dropped silently.
struct unreplayable {
  std::string what;  // "tcp 10.1.2.3:51234 -> 10.9.9.9:443: TLS (encrypted payload)", "not IP: ..."
  std::uint64_t packets = 0;
};

struct replay_plan {
  std::string error;  // non-empty: the capture could not be read
  std::string format, link_type;
  std::uint64_t packets = 0;
  time_point time_zero{};  // capture time of the first planned client's first packet
  duration span{};         // time zero to the last packet of a planned client
  std::vector<planned_client> clients;  // in order of their first packet
  std::vector<unreplayable> skipped;    // the first few flows and reasons, by packets
  std::uint64_t skipped_packets = 0;
  std::size_t skipped_flows = 0;
};

/// Reads `path` once per registered family that reads captures.
replay_plan read_replay_plan(const std::filesystem::path& path);

struct react_options {
  /// The live notifier's control port: where events go and SERVICES says where each family is served.
  protocol::ip_endpoint control = protocol::ip_endpoint::v4(127, 0, 0, 1, 7779);
  /// Captured times (starts, events) and the duration keys of a rebuild are divided by this.
  double multiplier = 1.0;
  /// How long the live run goes on after the capture's span (scaled), so late
  /// answers land; short, or timers would fire more often than captured.
  duration grace = std::chrono::milliseconds(500);
  /// Counts may differ by this much before it is a divergence: a timer's
  /// cycle cut at the capture's edges gives one poll more or less.
  std::uint64_t tolerance = 1;
  std::size_t max_clients = 0;  // 0: all
  protocol::ip_endpoint source_first = protocol::ip_endpoint::v4(127, 0, 0, 2, 0);
  std::size_t source_count = 253;
  std::size_t workers = 1;
  std::function<void(std::string_view)> log;
  std::function<void(const sim::real_progress&)> stats;
  duration stats_every = std::chrono::seconds(1);
};

/// One counter that differs between the capture and the live run.
struct divergence {
  std::string counter;
  std::uint64_t captured = 0;
  std::uint64_t live = 0;
};

struct client_outcome {
  std::size_t index = 0;  // into replay_plan::clients
  bool failed = false;
  std::uint64_t events_injected = 0;
  std::uint64_t events_fetched = 0;
  counter_values live;                  // the family's counters, by name
  std::vector<divergence> divergences;  // shared counters (and events fetched) beyond the tolerance
  counter_values live_only;             // non-zero live counters the capture cannot show (e.g. fallbacks_to_polling)
};

struct react_outcome {
  std::string error;  // non-empty: the replay could not run
  std::vector<client_outcome> clients;
  std::uint64_t events_injected = 0;
  double wall_seconds = 0;
  std::size_t diverged = 0;  // clients with a divergence or a failure
  bool ok() const { return error.empty() && !clients.empty() && diverged == 0; }
};

/// The plan's clients as the real driver's scripted run, then the comparison.
react_outcome run_reacting(const replay_plan& plan, const react_options& options);

/// Compares one client's live counters with the captured ones (pure).
client_outcome compare_client(const planned_client& planned, const counter_values& live, std::uint64_t events_fetched,
                              bool failed, std::uint64_t tolerance);

void print_react_report(std::ostream& out, const replay_plan& plan, const react_outcome& outcome, bool verbose);
nlohmann::json react_to_json(const std::string& capture, const replay_plan& plan, const react_outcome& outcome,
                             const react_options& options);

}  // namespace nudge::replay
