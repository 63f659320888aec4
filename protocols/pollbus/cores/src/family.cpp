#include "nudge/pollbus/family.hpp"

#include <memory>
#include <string>
#include <utility>

#include "nudge/pollbus/capture_classifier.hpp"
#include "nudge/pollbus/client_core.hpp"
#include "nudge/pollbus/server_core.hpp"

namespace nudge::pollbus {

std::string_view to_string(rate_policy p) {
  switch (p) {
    case rate_policy::fixed: return "fixed";
    case rate_policy::activity: return "activity";
    case rate_policy::load: return "load";
  }
  return "?";
}

std::optional<rate_policy> parse_rate_policy(std::string_view name) {
  for (auto p : {rate_policy::fixed, rate_policy::activity, rate_policy::load})
    if (name == to_string(p)) return p;
  return std::nullopt;
}

std::string_view mode_path(client_mode m) {
  switch (m) {
    case client_mode::fixed: return "/fixed/Bus.asmx";
    case client_mode::activity: return "/activity/Bus.asmx";
    case client_mode::load: return "/load/Bus.asmx";
    default: return "/Bus.asmx";
  }
}

std::string_view to_string(message_kind k) {
  switch (k) {
    case message_kind::tcp_setup: return "tcp_setup";
    case message_kind::tcp_ack: return "tcp_ack";
    case message_kind::register_: return "register";
    case message_kind::poll: return "poll";
    case message_kind::continue_: return "continue";
    case message_kind::http_error: return "http_error";
    case message_kind::count_: break;
  }
  return "?";
}

std::string_view to_string(counter c) {
  switch (c) {
    case counter::polls: return "polls";
    case counter::wasted_polls: return "wasted_polls";
    case counter::registrations: return "registrations";
    case counter::re_registrations: return "re_registrations";
    case counter::interval_changes: return "interval_changes";
    case counter::connections: return "connections";
    case counter::received_empty: return "received_empty";
    case counter::received_poll_interval: return "received_poll_interval";
    case counter::received_poll_mode: return "received_poll_mode";
    case counter::received_chat: return "received_chat";
    case counter::received_other: return "received_other";
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
    case message_kind::register_: return "POST carrying a RegisterMessage, and its response";
    case message_kind::poll: return "POST carrying an EmptyMessage (or the client's own message), and its response";
    case message_kind::continue_: return "HTTP/1.1 100 Continue interim responses";
    case message_kind::http_error: return "4xx/5xx responses";
    case message_kind::count_: break;
  }
  return "";
}

std::string_view counter_doc(counter c) {
  switch (c) {
    case counter::polls: return "POSTs sent (registrations included)";
    case counter::wasted_polls: return "polls that carried nothing in either direction";
    case counter::registrations: return "RegisterMessages sent";
    case counter::re_registrations: return "times a polling client went back to registering";
    case counter::interval_changes: return "PollIntervalMessages that changed the interval";
    case counter::connections: return "TCP connections opened";
    case counter::received_empty: return "EmptyMessages received";
    case counter::received_poll_interval: return "PollIntervalMessages received";
    case counter::received_poll_mode: return "PollModeMessages received";
    case counter::received_chat: return "ChatMessages received (events)";
    case counter::received_other: return "ImageData, Thumbsize and ImageNoChange messages received";
    case counter::http_errors: return "non-200 final responses";
    case counter::protocol_errors: return "unreadable responses, lost connections, refused connects, timeouts";
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
  f.doc = "an ASP.NET polling message bus: List<BaseMessage> Poll(BaseMessage) over HTTP, SOAP or JSON (seed article 003)";
  f.words.modes = {{"poll", "polls /Bus.asmx (the server's pollbus.policy)"},
                   {"fixed", "polls /fixed/Bus.asmx (a fixed interval)"},
                   {"activity", "polls /activity/Bus.asmx (fast after traffic, slow after a quiet period)"},
                   {"load", "polls /load/Bus.asmx (intervals lengthened to keep the server within its budget)"}};
  for (std::size_t k = 0; k < message_kind_count; ++k) {
    const auto kind = static_cast<message_kind>(k);
    f.words.kinds.push_back({std::string(to_string(kind)), std::string(kind_doc(kind))});
  }
  f.words.paths = {{"poll", "piggybacked on a poll response"}};
  for (std::size_t c = 0; c < counter_count; ++c) {
    const auto ctr = static_cast<counter>(c);
    f.words.counters.push_back({std::string(to_string(ctr)), std::string(counter_doc(ctr))});
  }
  f.words.table = {{"polls", {"polls"}},
                   {"polls that carried nothing", {"wasted_polls"}},
                   {"registrations / re-registrations", {"registrations", "re_registrations"}},
                   {"interval changes", {"interval_changes"}},
                   {"connections", {"connections"}},
                   {"HTTP / protocol errors", {"http_errors", "protocol_errors"}}};
  f.keys = {
      {"pollbus.encoding", type::text, "soap", "soap (SOAP 1.1 as .NET writes it) or json"},
      {"pollbus.keep_alive", type::boolean, "true", "reuse one connection; false: one connection per poll"},
      {"pollbus.expect_continue", type::boolean, "true", "send Expect: 100-continue and the body after 100 Continue (.NET's default)"},
      {"pollbus.client_interval", type::duration, "15s", "the client's interval until the server sets one"},
      {"pollbus.host", type::text, "", "the Host field clients send; empty: the server's address"},
      {"pollbus.port", type::integer, "0", "the server's TCP port (0: any)"},
      {"pollbus.policy", type::text, "fixed", "the rate policy of /Bus.asmx: fixed, activity or load"},
      {"pollbus.interval", type::duration, "15s", "the fixed interval; activity's slow one; load's shortest"},
      {"pollbus.fast_interval", type::duration, "2s", "activity: the interval after traffic"},
      {"pollbus.quiet_period", type::duration, "60s", "activity: back to the slow interval after this long without traffic"},
      {"pollbus.load_budget", type::number, "100", "load: the server's polls per second budget"},
      {"pollbus.max_interval", type::duration, "10min", "load: the longest interval it gives"},
      {"pollbus.load_hold", type::duration, "2min",
       "load: a shorter interval is told only after it has been wanted this long (a longer one at once)"},
      {"pollbus.idle_timeout", type::duration, "120s", "the server closes keep-alive connections idle this long"},
      {"pollbus.max_queue", type::integer, "1000", "queued events per mailbox before new ones drop"},
  };
  f.make_client = [](const engine::client_context& ctx) -> std::unique_ptr<engine::session> { return make_client(ctx); };
  f.make_server = [](const engine::server_context& ctx) -> std::unique_ptr<engine::server_session> {
    return std::make_unique<server_core>(ctx.keys ? server_config_of(*ctx.keys) : server_config{});
  };
  f.capture = &pollbus_capture_classifier();
  return f;
}

}  // namespace nudge::pollbus
