#pragma once
// The EMSMDB notifier's one-line summary printed at exit. (The statistics as
// JSON, for STATS and --stats-json, are the server host's: server_host::stats_json.)
#include <string>

#include "nudge/notifier/notifier_core.hpp"
#include "nudge/notifier/server_host.hpp"

namespace nudge::notifier {

/// "notifier: 12 connections, 10 sessions, ..." (no trailing newline).
std::string summary_line(const notifier_core& core, const driver_stats& driver, duration uptime);

}  // namespace nudge::notifier
