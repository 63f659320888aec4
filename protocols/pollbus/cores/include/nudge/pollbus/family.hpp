#pragma once
// The polling bus family's declaration for the registry (nudge/engine/registry.hpp):
// its modes, message kinds, delivery paths, counters and scenario keys
// (docs/pollbus.md). The enums here are the indexes the bus cores count with;
// their order is the order of the vocabulary lists.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "nudge/engine/registry.hpp"

namespace nudge::pollbus {

/// What the family is called in scenarios ([[clients]] protocol = "pollbus") and results.
inline constexpr std::string_view family_name = "pollbus";

/// Client modes: the service the client polls. Each is its own web service on
/// the one server (think IIS virtual directories), each with its own rate
/// policy, so the three policies run side by side in one run.
enum class client_mode : std::uint8_t {
  poll,      // POST /Bus.asmx: the server's default service (key pollbus.policy)
  fixed,     // POST /fixed/Bus.asmx
  activity,  // POST /activity/Bus.asmx
  load,      // POST /load/Bus.asmx
  count_
};
inline constexpr std::size_t client_mode_count = static_cast<std::size_t>(client_mode::count_);

/// The server's rate policies (PollIntervalMessage).
enum class rate_policy : std::uint8_t { fixed, activity, load };
std::string_view to_string(rate_policy p);
std::optional<rate_policy> parse_rate_policy(std::string_view name);

/// The path a mode posts to ("/Bus.asmx", "/fixed/Bus.asmx", ...).
std::string_view mode_path(client_mode m);

/// Message kinds, counted per direction (traffic rows; tcp_setup and tcp_ack first).
enum class message_kind : std::uint8_t {
  tcp_setup,   // SYN, SYN-ACK, ACK and the closing FIN/ACKs
  tcp_ack,     // pure ACKs (estimated by ack_tracker)
  register_,   // a POST carrying a RegisterMessage, and its response
  poll,        // a POST carrying an EmptyMessage, and its response
  continue_,   // "HTTP/1.1 100 Continue" interim responses
  http_error,  // 4xx/5xx responses (and what the client had sent for them)
  count_
};
inline constexpr std::size_t message_kind_count = static_cast<std::size_t>(message_kind::count_);
std::string_view to_string(message_kind k);

/// Delivery paths: the bus has one, a message piggybacked on a poll response.
enum class delivery_path : std::uint8_t { poll, count_ };
inline constexpr std::size_t delivery_path_count = static_cast<std::size_t>(delivery_path::count_);

/// Per-client-group counters, in vocabulary order.
enum class counter : std::uint8_t {
  polls,             // POSTs sent (register or poll)
  wasted_polls,      // polls that carried nothing in either direction
  registrations,     // RegisterMessages sent
  re_registrations,  // times the client went back to registering (PollModeMessage Register, an error)
  interval_changes,  // PollIntervalMessages that changed the interval
  connections,       // TCP connections opened
  received_empty,    // messages received, by type
  received_poll_interval,
  received_poll_mode,
  received_chat,
  received_other,  // ImageData, Thumbsize, ImageNoChange (application payload)
  http_errors,     // non-200 final responses
  protocol_errors, // unreadable responses, connections lost mid-poll, refused connects
  count_
};
inline constexpr std::size_t counter_count = static_cast<std::size_t>(counter::count_);
std::string_view to_string(counter c);

/// The family as the registry holds it, factories included.
engine::family family();

}  // namespace nudge::pollbus
