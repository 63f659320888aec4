#pragma once
// The notifier's statistics as JSON (the control port's STATS reply and
// --stats-json) and as the one-line summary printed at exit.
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "nudge/notifier/notifier_core.hpp"
#include "nudge/notifier/notifier_server.hpp"

namespace nudge::notifier {

/// Every notifier_stats field by name, plus open connections, mailbox count,
/// traffic per kind and direction, the driver's counters, and up to
/// `max_mailboxes` mailboxes with pending events (dn, generated, fetched, pending).
nlohmann::json stats_json(const notifier_core& core, const driver_stats& driver, duration uptime,
                          std::size_t max_mailboxes = 100);

/// Serialises without throwing: invalid UTF-8 (DNs come from the network) is replaced.
std::string dump_json(const nlohmann::json& j, int indent = -1);

/// "notifier: 12 connections, 10 sessions, ..." (no trailing newline).
std::string summary_line(const notifier_core& core, const driver_stats& driver, duration uptime);

}  // namespace nudge::notifier
