#include "nudge/activesync/family.hpp"

#include <memory>
#include <string>

#include "nudge/activesync/capture_classifier.hpp"
#include "nudge/activesync/client_core.hpp"
#include "nudge/activesync/server_core.hpp"

namespace nudge::activesync {

std::string_view to_string(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "tcp_setup";
    case message_kind::tcp_ack: return "tcp_ack";
    case message_kind::ping: return "ping";
    case message_kind::ping_status1: return "ping_status1";
    case message_kind::ping_status2: return "ping_status2";
    case message_kind::sync: return "sync";
    case message_kind::http_error: return "http_error";
    case message_kind::count_: break;
  }
  return "?";
}

std::string_view to_string(counter c) {
  switch (c) {
    case counter::pings: return "pings";
    case counter::pings_expired: return "pings_expired";
    case counter::pings_changes: return "pings_changes";
    case counter::pings_refused: return "pings_refused";
    case counter::wasted_polls: return "wasted_polls";
    case counter::lost_pings: return "lost_pings";
    case counter::late_events: return "late_events";
    case counter::syncs: return "syncs";
    case counter::messages: return "messages";
    case counter::connections: return "connections";
    case counter::wakeups: return "wakeups";
    case counter::heartbeat_grows: return "heartbeat_grows";
    case counter::heartbeat_drops: return "heartbeat_drops";
    case counter::heartbeat_s: return "heartbeat_s";
    case counter::http_errors: return "http_errors";
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
    case message_kind::ping: return "Ping requests, and Ping answers with Status 3-8";
    case message_kind::ping_status1: return "Ping answers with Status 1: the heartbeat passed with no change";
    case message_kind::ping_status2: return "Ping answers with Status 2: folders changed";
    case message_kind::sync: return "Sync requests and their answers (the new message headers)";
    case message_kind::http_error: return "4xx/5xx answers";
    case message_kind::count_: break;
  }
  return "";
}

std::string_view counter_doc(counter c) {
  switch (c) {
    case counter::pings: return "Ping requests sent";
    case counter::pings_expired: return "Ping answers with Status 1 (heartbeat passed)";
    case counter::pings_changes: return "Ping answers with Status 2 (changes)";
    case counter::pings_refused: return "Ping answers with Status 3-8";
    case counter::wasted_polls: return "Pings that brought nothing: Status 1, and Pings lost to a silent connection loss";
    case counter::lost_pings: return "held Pings with no answer within heartbeat + slack (a NAT dropped the connection)";
    case counter::late_events: return "events fetched after a lost Ping (they waited for the client's timeout)";
    case counter::syncs: return "Sync requests sent";
    case counter::messages: return "new message headers received (events)";
    case counter::connections: return "TCP connections opened";
    case counter::wakeups: return "times the client woke: an answer arrived or its timeout passed";
    case counter::heartbeat_grows: return "adaptive: heartbeat lengthened after a heartbeat survived";
    case counter::heartbeat_drops: return "adaptive: heartbeat shortened after a loss";
    case counter::heartbeat_s: return "the heartbeat each client asks for now, seconds, summed over the group";
    case counter::http_errors: return "non-200 answers";
    case counter::protocol_errors: return "unreadable answers, connections lost mid-request, refused connects, timeouts";
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
  f.doc = "Exchange ActiveSync Direct Push: a held HTTP Ping (WBXML) answered on change or heartbeat (seed article 000)";
  f.words.modes = {{"fixed", "a fixed heartbeat (activesync.heartbeat)"},
                   {"adaptive", "AOSP Exchange's heartbeat: grow 3 min after each that survives, drop after a loss"}};
  for (std::size_t k = 0; k < message_kind_count; ++k) {
    const auto kind = static_cast<message_kind>(k);
    f.words.kinds.push_back({std::string(to_string(kind)), std::string(kind_doc(kind))});
  }
  f.words.paths = {{"ping", "announced by a Ping (Status 2), fetched by Sync"}};
  for (std::size_t c = 0; c < counter_count; ++c) {
    const auto ctr = static_cast<counter>(c);
    f.words.counters.push_back({std::string(to_string(ctr)), std::string(counter_doc(ctr))});
  }
  f.words.table = {{"pings", {"pings"}},
                   {"pings that brought nothing", {"wasted_polls"}},
                   {"status 1 / status 2 / refused", {"pings_expired", "pings_changes", "pings_refused"}},
                   {"lost pings / late events", {"lost_pings", "late_events"}},
                   {"syncs / messages", {"syncs", "messages"}},
                   {"connections / wakeups", {"connections", "wakeups"}},
                   {"heartbeat grows / drops", {"heartbeat_grows", "heartbeat_drops"}},
                   {"HTTP / protocol errors", {"http_errors", "protocol_errors"}}};
  f.keys = {
      {"activesync.heartbeat", type::duration, "480s", "fixed: the HeartbeatInterval every Ping asks for"},
      {"activesync.adaptive_start", type::duration, "470s", "adaptive: the first heartbeat (AOSP: 8 min - 10 s)"},
      {"activesync.adaptive_min", type::duration, "290s", "adaptive: the shortest heartbeat (AOSP: 5 min - 10 s)"},
      {"activesync.adaptive_max", type::duration, "1010s", "adaptive: the longest heartbeat (AOSP: 17 min - 10 s)"},
      {"activesync.adaptive_step", type::duration, "180s", "adaptive: the grow and drop step (AOSP: 3 min)"},
      {"activesync.slack", type::duration, "10s", "the client's HTTP timeout is the heartbeat plus this (NachoCore)"},
      {"activesync.retry_delay", type::duration, "30s", "the client waits this long after an error answer or a refused connect"},
      {"activesync.empty_ping", type::boolean, "false", "send an empty Ping body when the server holds the heartbeat and folders"},
      {"activesync.folder", type::text, "5", "the Inbox's folder id: the folder pinged, synced and where events land"},
      {"activesync.device_type", type::text, "iPhone", "the DeviceType clients send"},
      {"activesync.user_agent", type::text, "Apple-iPhone5C1/1202.466", "the User-Agent clients send"},
      {"activesync.protocol_version", type::text, "14.1", "the MS-ASProtocolVersion clients send"},
      {"activesync.host", type::text, "", "the Host field clients send; empty: the server's address"},
      {"activesync.port", type::integer, "0", "the server's TCP port (0: any)"},
      {"activesync.min_heartbeat", type::duration, "60s", "the server's shortest HeartbeatInterval (Exchange 2007/2010 default)"},
      {"activesync.max_heartbeat", type::duration, "3540s", "the server's longest HeartbeatInterval (Exchange 2007/2010 default)"},
      {"activesync.max_folders", type::integer, "200", "the most folders one Ping may watch (Status 6 beyond)"},
      {"activesync.idle_timeout", type::duration, "120s", "the server closes keep-alive connections idle (nothing held) this long"},
      {"activesync.max_pending", type::integer, "1000", "new messages kept per user before new events drop"},
  };
  f.make_client = [](const engine::client_context& ctx) -> std::unique_ptr<engine::session> { return make_client(ctx); };
  f.make_server = [](const engine::server_context& ctx) -> std::unique_ptr<engine::server_session> {
    return std::make_unique<server_core>(ctx.keys ? server_config_of(*ctx.keys) : server_config{});
  };
  f.capture = &activesync_capture_classifier();
  return f;
}

}  // namespace nudge::activesync
