#pragma once
// The EMSMDB family's declaration for the registry (nudge/engine/registry.hpp):
// its modes, message kinds, delivery paths, counters and scenario keys. The
// enums here are the indexes the EMSMDB cores count with; their order is the
// order of the vocabulary lists, so `kind` k is traffic row k and `counter` c
// is client_metrics::counters[c].
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nudge/engine/registry.hpp"

namespace nudge::protocol::emsmdb {

/// What the family is called in scenarios ([[clients]] protocol = "emsmdb") and results.
inline constexpr std::string_view family_name = "emsmdb";

/// Message kinds, counted per direction (traffic rows; tcp_setup and tcp_ack first, as every family's).
enum class message_kind : std::uint8_t {
  tcp_setup,      // SYN, SYN-ACK, ACK and the closing FIN/ACKs
  tcp_ack,        // pure ACKs (estimated by ack_tracker)
  bind,           // bind / bind_ack
  connect,        // EcDoConnectEx
  register_push,  // EcRRegisterPushNotification
  poll,           // EcDoRpcExt2 sent on the poll timer
  fetch,          // EcDoRpcExt2 sent because a ping, wait or RopPending said so
  dummy,          // EcDummyRpc
  async_connect,  // EcDoAsyncConnectEx
  async_wait,     // EcDoAsyncWaitEx
  ping,           // the UDP datagram carrying the context
  keepalive,      // client UDP datagrams that hold a NAT pinhole open or prove reachability
  fault,          // fault and bind_nak PDUs
  count_
};
inline constexpr std::size_t message_kind_count = static_cast<std::size_t>(message_kind::count_);
std::string_view to_string(message_kind k);

/// Per-client-group counters (client_metrics::counters), in vocabulary order.
enum class counter : std::uint8_t {
  polls,
  wasted_polls,          // polls that found nothing
  fetches,
  wasted_fetches,        // fetches that found nothing
  events_fetched,
  pings_received,
  pings_matched,
  datagrams_ignored,     // did not match the registered context
  pending_seen,          // RopPending for this session
  async_waits,
  async_notified,
  async_timeouts,
  fallbacks_to_polling,
  protocol_errors,
  count_
};
inline constexpr std::size_t counter_count = static_cast<std::size_t>(counter::count_);
std::string_view to_string(counter c);

/// The family as the registry holds it. The client and server factories are
/// left empty here; the drivers' adapters fill them.
engine::family family();

}  // namespace nudge::protocol::emsmdb
