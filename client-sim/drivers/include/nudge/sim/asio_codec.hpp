#pragma once
// Exact serialisation of client_metrics, so worker processes of the real
// driver can send their counters and latency histograms (raw bucket counts,
// sum, min, max) to the parent, which merges them with operator+= as if the
// clients had run in one process. Not a report format: see to_json(run_result).
#include <nlohmann/json.hpp>

#include "nudge/client/client_session.hpp"

namespace nudge::sim {

nlohmann::json client_metrics_to_json(const client::client_metrics& m);
/// Throws nlohmann::json::exception or std::out_of_range on malformed input.
client::client_metrics client_metrics_from_json(const nlohmann::json& j);

}  // namespace nudge::sim
