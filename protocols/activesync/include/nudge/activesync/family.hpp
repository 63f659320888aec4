#pragma once
// The ActiveSync Direct Push family's declaration for the registry
// (nudge/engine/registry.hpp): modes, message kinds, paths, counters and
// scenario keys (docs/activesync.md). The enums are the indexes the cores
// count with, in vocabulary order.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nudge/engine/registry.hpp"

namespace nudge::activesync {

inline constexpr std::string_view family_name = "activesync";

/// Client modes: the heartbeat policy.
enum class client_mode : std::uint8_t {
  fixed,     // always activesync.heartbeat
  adaptive,  // AOSP Exchange's EasSyncService: grow by a step after each heartbeat that survives, back off after a loss
  count_
};
inline constexpr std::size_t client_mode_count = static_cast<std::size_t>(client_mode::count_);

enum class message_kind : std::uint8_t {
  tcp_setup,     // SYN, SYN-ACK, ACK and the closing FIN/ACKs
  tcp_ack,       // pure ACKs (estimated)
  ping,          // Ping requests, and Ping answers other than Status 1 and 2 (3-8)
  ping_status1,  // Ping answers with Status 1 (the heartbeat passed, nothing changed)
  ping_status2,  // Ping answers with Status 2 (folders changed)
  sync,          // Sync requests and responses (the new message headers)
  http_error,    // 4xx/5xx answers
  count_
};
inline constexpr std::size_t message_kind_count = static_cast<std::size_t>(message_kind::count_);
std::string_view to_string(message_kind k);

/// Delivery paths: a change is announced by a Ping (Status 2) and fetched by Sync.
enum class delivery_path : std::uint8_t { ping, count_ };
inline constexpr std::size_t delivery_path_count = static_cast<std::size_t>(delivery_path::count_);

enum class counter : std::uint8_t {
  pings,             // Ping requests sent
  pings_expired,     // Status 1 answers
  pings_changes,     // Status 2 answers
  pings_refused,     // Status 3-8 answers
  wasted_polls,      // Pings that brought nothing: Status 1, and held Pings lost to a silent connection loss
  lost_pings,        // held Pings whose answer never came within HB + slack (a NAT dropped the connection)
  late_events,       // events fetched after a lost Ping (the change waited for the client's timeout)
  syncs,             // Sync requests sent
  messages,          // new message headers received (one per event)
  connections,       // TCP connections opened
  wakeups,           // times the client woke: an answer arrived or its timeout passed
  heartbeat_grows,   // adaptive: heartbeat lengthened after a heartbeat survived
  heartbeat_drops,   // adaptive: heartbeat shortened after a loss
  heartbeat_s,       // the heartbeat the client last asked for, in seconds (summed over the group's clients)
  http_errors,       // non-200 answers
  protocol_errors,   // unreadable answers, connections closed mid-request, refused connects
  count_
};
inline constexpr std::size_t counter_count = static_cast<std::size_t>(counter::count_);
std::string_view to_string(counter c);

engine::family family();

}  // namespace nudge::activesync
