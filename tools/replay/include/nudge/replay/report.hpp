#pragma once
// What a replay did, compared with the capture: per client, the operations
// captured (in capture order) and replayed (in the order they were sent),
// whether they match, and the pacing error of each request: |actual send
// offset - scaled captured offset|, summarised as p50 / p99 / max, per client
// and overall. Text for people, JSON (schema "nudge.replay/1") for tools.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/replayer.hpp"

namespace nudge::replay {

struct pacing_summary {
  std::size_t count = 0;  // requests measured (none in --topspeed: nothing is paced)
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
};
/// Nearest-rank percentiles of `errors_ms` (consumed).
pacing_summary summarize_pacing(std::vector<double> errors_ms);

struct client_report {
  std::string user_dn;
  std::string mode;
  std::vector<std::string> captured;  // operation names, in capture order
  std::vector<std::string> replayed;  // operation names, in the order they were sent
  /// Every captured operation was sent, lane by lane in the captured order,
  /// and none was answered with a fault the capture did not have.
  bool match = false;
  /// As match, except that a lane may stop short behind a call the live
  /// notifier never answered (an EcDoAsyncWaitEx held for want of mail).
  bool consistent = false;
  std::size_t ops_captured = 0;
  std::size_t ops_sent = 0;
  std::size_t blocked = 0;                  // never sent: behind a pending call, or the client failed
  std::size_t pending_at_end = 0;           // sent, never answered
  std::size_t captured_pending_at_end = 0;  // unanswered in the capture as well
  std::size_t faults = 0;                   // answered with a fault or an error code
  std::string failure;
  std::vector<std::string> problems;        // the first few differences, readable
  pacing_summary pacing;
  std::uint64_t pings_received = 0;
  std::uint64_t events_injected = 0;
  /// Per captured operation, in capture order: what became of it.
  struct op_line {
    std::string name;
    double captured_s = 0;                   // captured offset
    std::optional<double> captured_answer_s;
    double due_s = 0;                        // scaled captured offset
    std::optional<double> sent_s;            // actual offset
    std::optional<double> answered_s;
    std::string note;
  };
  std::vector<op_line> timeline;
};

struct replay_report {
  std::string capture;
  replay_options options;
  capture_summary summary;
  std::size_t clients_in_capture = 0;
  std::vector<client_report> clients;
  std::size_t matched = 0;
  std::size_t consistent = 0;  // including matched
  std::size_t failed = 0;
  std::size_t ops_captured = 0, ops_sent = 0, blocked = 0, pending_at_end = 0, captured_pending_at_end = 0, faults = 0;
  std::uint64_t events_injected = 0, events_acknowledged = 0, pings_received = 0;
  pacing_summary pacing;
  double wall_seconds = 0;
  /// Every client replayed consistently and none failed (the exit status).
  bool ok() const { return !clients.empty() && consistent == clients.size() && failed == 0; }
};

replay_report make_report(const std::string& capture_path, const capture_sessions& capture,
                          const replay_outcome& outcome, const replay_options& options);

nlohmann::json to_json(const replay_report& r);
/// A summary; with `verbose` (or for clients that do not match) each client's
/// sequences too.
void print_report(std::ostream& out, const replay_report& r, bool verbose);

}  // namespace nudge::replay
