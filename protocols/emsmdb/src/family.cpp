#include "nudge/emsmdb/family.hpp"

#include <string>
#include <utility>

namespace nudge::protocol::emsmdb {

std::string_view to_string(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "tcp_setup";
    case message_kind::tcp_ack: return "tcp_ack";
    case message_kind::bind: return "bind";
    case message_kind::connect: return "connect";
    case message_kind::register_push: return "register";
    case message_kind::poll: return "poll";
    case message_kind::fetch: return "fetch";
    case message_kind::dummy: return "dummy";
    case message_kind::async_connect: return "async_connect";
    case message_kind::async_wait: return "async_wait";
    case message_kind::ping: return "ping";
    case message_kind::keepalive: return "keepalive";
    case message_kind::fault: return "fault";
    case message_kind::count_: break;
  }
  return "?";
}

std::string_view to_string(counter c) {
  switch (c) {
    case counter::polls: return "polls";
    case counter::wasted_polls: return "wasted_polls";
    case counter::fetches: return "fetches";
    case counter::wasted_fetches: return "wasted_fetches";
    case counter::events_fetched: return "events_fetched";
    case counter::pings_received: return "pings_received";
    case counter::pings_matched: return "pings_matched";
    case counter::datagrams_ignored: return "datagrams_ignored";
    case counter::pending_seen: return "pending_seen";
    case counter::async_waits: return "async_waits";
    case counter::async_notified: return "async_notified";
    case counter::async_timeouts: return "async_timeouts";
    case counter::fallbacks_to_polling: return "fallbacks_to_polling";
    case counter::protocol_errors: return "protocol_errors";
    case counter::count_: break;
  }
  return "?";
}

namespace {

std::string_view kind_doc(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "TCP handshakes and teardowns (SYN, SYN-ACK, ACK, FIN/ACKs)";
    case message_kind::tcp_ack: return "pure ACKs (estimated from the delayed-ACK model)";
    case message_kind::bind: return "DCE/RPC bind and bind_ack";
    case message_kind::connect: return "EcDoConnectEx (and EcDoDisconnect)";
    case message_kind::register_push: return "EcRRegisterPushNotification";
    case message_kind::poll: return "EcDoRpcExt2 sent on the poll timer";
    case message_kind::fetch: return "EcDoRpcExt2 sent because a ping, a wait or RopPending said so";
    case message_kind::dummy: return "EcDummyRpc";
    case message_kind::async_connect: return "EcDoAsyncConnectEx";
    case message_kind::async_wait: return "EcDoAsyncWaitEx";
    case message_kind::ping: return "the UDP push datagram carrying the registered context";
    case message_kind::keepalive: return "client datagrams holding a NAT pinhole open or proving reachability";
    case message_kind::fault: return "fault and bind_nak PDUs";
    case message_kind::count_: break;
  }
  return "";
}

std::string_view counter_doc(counter c) {
  switch (c) {
    case counter::polls: return "EcDoRpcExt2 calls sent on the poll timer";
    case counter::wasted_polls: return "polls that found nothing";
    case counter::fetches: return "EcDoRpcExt2 calls sent because a ping, a wait or RopPending said so";
    case counter::wasted_fetches: return "fetches that found nothing";
    case counter::events_fetched: return "events whose details the clients fetched";
    case counter::pings_received: return "UDP datagrams received";
    case counter::pings_matched: return "datagrams that matched the registered context";
    case counter::datagrams_ignored: return "datagrams that did not match the registered context";
    case counter::pending_seen: return "RopPending seen for the client's own session";
    case counter::async_waits: return "EcDoAsyncWaitEx calls sent";
    case counter::async_notified: return "waits that completed with a notification";
    case counter::async_timeouts: return "waits that the server's hold ended";
    case counter::fallbacks_to_polling: return "push clients that went back to polling";
    case counter::protocol_errors: return "malformed or unexpected responses";
    case counter::count_: break;
  }
  return "";
}

}  // namespace

engine::family family() {
  using engine::key_spec;
  using type = key_spec::type;
  engine::family f;
  f.name = std::string(family_name);
  f.doc = "Exchange 4.0-2003 EMSMDB over DCE/RPC: polling, UDP push notification, async wait (seed article 001)";
  f.words.modes = {{"poll", "an empty EcDoRpcExt2 on a timer"},
                   {"push", "register a UDP callback, fetch on each matching datagram (poll until the first)"},
                   {"async", "EcDoAsyncConnectEx, then EcDoAsyncWaitEx and fetch in a loop"}};
  for (std::size_t k = 0; k < message_kind_count; ++k) {
    const auto kind = static_cast<message_kind>(k);
    f.words.kinds.push_back({std::string(to_string(kind)), std::string(kind_doc(kind))});
  }
  f.words.paths = {{"poll", "found by a poll"},
                   {"push", "announced by a UDP push datagram"},
                   {"async", "announced by a completed EcDoAsyncWaitEx"}};
  for (std::size_t c = 0; c < counter_count; ++c) {
    const auto ctr = static_cast<counter>(c);
    f.words.counters.push_back({std::string(to_string(ctr)), std::string(counter_doc(ctr))});
  }
  // client-sim's table, as it always read.
  f.words.table = {{"polls", {"polls"}},
                   {"polls that found nothing", {"wasted_polls"}},
                   {"fetches", {"fetches"}},
                   {"pings matched / ignored", {"pings_matched", "datagrams_ignored"}}};
  // The keys as run_plan and notifier_config default them (docs/scenarios.md).
  f.keys = {
      {"poll.interval", type::duration, "60s", "between polls; 0 = the server's polls_max_ms"},
      {"poll.jitter", type::boolean, "false", "wait U[1x, 2x] the interval between polls, as Outlook did"},
      {"push.context_size", type::integer, "8", "bytes of the registered context (more is ecTooBig)"},
      {"push.poll_until_first_ping", type::boolean, "true", "poll until the first matching datagram; false: pure push"},
      {"push.cookie", type::boolean, "false", "send a reachability cookie after registering (verified policy)"},
      {"push.keepalive", type::duration, "0s", "resend the cookie this often to hold a NAT pinhole (0 = never)"},
      {"push.fallback_check", type::duration, "0s", "once relying on pings, still check this often (0 = never)"},
      {"server.policy", type::text, "legacy", "where pings go: legacy, peer or verified"},
      {"server.polls_max_ms", type::integer, "60000", "pcmsPollsMax returned by EcDoConnectEx"},
      {"server.ping_resend", type::duration, "60s", "resend a ping while its details stay unfetched"},
      {"server.async_hold", type::duration, "5min", "how long the notifier holds an EcDoAsyncWaitEx"},
      {"server.push_enabled", type::boolean, "true", "false: EcRRegisterPushNotification answers ecNotSupported"},
      {"server.async_enabled", type::boolean, "true", "false: EcDoAsyncConnectEx answers ecRejected"},
      {"server.max_pending_per_mailbox", type::integer, "100000", "queued events per mailbox before new ones drop"},
  };
  return f;
}

}  // namespace nudge::protocol::emsmdb
