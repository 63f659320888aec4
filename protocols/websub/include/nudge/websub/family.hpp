#pragma once
// The WebSub family's declaration for the registry (nudge/engine/registry.hpp):
// its mode, message kinds, delivery path, counters and scenario keys
// (docs/websub.md). The enums are the indexes the cores count with; their
// order is the order of the vocabulary lists.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nudge/engine/registry.hpp"

namespace nudge::websub {

/// What the family is called in scenarios ([[clients]] protocol = "websub") and results.
inline constexpr std::string_view family_name = "websub";

/// Client modes: one, a subscriber that listens for the hub's callbacks.
enum class client_mode : std::uint8_t { subscriber, count_ };

/// Message kinds, counted per direction (traffic rows; tcp_setup and tcp_ack first).
/// to_server is always the subscriber's side sending, to_client the hub's,
/// whoever opened the connection.
enum class message_kind : std::uint8_t {
  tcp_setup,   // SYN, SYN-ACK, ACK and the closing FIN/ACKs, either side dialling
  tcp_ack,     // pure ACKs (estimated by ack_tracker)
  subscribe,   // the subscriber's POST hub.mode=subscribe|unsubscribe and the hub's 202
  verify,      // the hub's GET to the callback (verification of intent) and its answer
  content,     // the hub's POST of new content to the callback and its answer
  publish,     // POST hub.mode=publish and the hub's 204 (publishers, never a subscriber)
  http_error,  // 4xx/5xx responses, either way
  count_
};
inline constexpr std::size_t message_kind_count = static_cast<std::size_t>(message_kind::count_);
std::string_view to_string(message_kind k);

/// Delivery paths: content arrives by the hub's callback, or not at all.
enum class delivery_path : std::uint8_t { callback, count_ };
inline constexpr std::size_t delivery_path_count = static_cast<std::size_t>(delivery_path::count_);

/// Per-client-group counters, in vocabulary order.
enum class counter : std::uint8_t {
  subscriptions,     // subscribe requests sent (renewals included)
  renewals,          // of those, renewals of a lease still running
  verifications,     // verification GETs answered with the challenge
  verify_failures,   // subscribe requests the hub took (202) and never verified in time
  subscribe_errors,  // subscribe requests refused, unanswered or not 202
  received,          // content POSTs with a valid signature (events)
  bad_signatures,    // content POSTs whose X-Hub-Signature did not match
  denied,            // hub.mode=denied callbacks
  connections,       // connections the subscriber opened (to the hub)
  callbacks,         // connections the hub opened to the subscriber's callback
  wakeups,           // exchanges that woke the subscriber: its own requests and every callback
  leases_lost,       // leases that ran out before a renewal was verified
  count_
};
inline constexpr std::size_t counter_count = static_cast<std::size_t>(counter::count_);
std::string_view to_string(counter c);

/// The family as the registry holds it, factories included.
engine::family family();

}  // namespace nudge::websub
