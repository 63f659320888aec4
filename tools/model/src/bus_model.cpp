#include "nudge/model/bus_model.hpp"

#include <cmath>
#include <vector>

#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace nudge::model {

bus_poll_sizes bus_poll_on_the_wire(const bus_inputs& in) {
  // Any agent and time: GUIDs and TimeStamps have fixed widths.
  pollbus::message empty;
  empty.type = pollbus::message_type::empty;
  empty.timestamp_ms = pollbus::dotnet_ms(2009, 8, 26, 10);
  pollbus::request_options o;
  o.host = in.host;
  o.path = in.path;
  o.expect_continue = in.expect_continue;
  o.keep_alive = in.keep_alive;
  const http::request req = pollbus::poll_request(empty, in.enc, o);
  pollbus::response_options ro;
  ro.keep_alive = in.keep_alive;
  pollbus::message chat;
  chat.type = pollbus::message_type::chat;
  chat.timestamp_ms = empty.timestamp_ms;
  chat.text = "changed";  // what the server core writes
  const std::vector<pollbus::message> one{chat};

  bus_poll_sizes s;
  const auto& w = in.wire;
  if (in.expect_continue) {
    s.request_head = http::serialize_head(req).size();
    s.request_body = req.body.size();
    s.continue_bytes = http::continue_line().size();
    s.to_server += w.tcp_message(s.request_head);
    s.to_server += w.tcp_message(s.request_body);
    s.to_client += w.tcp_message(s.continue_bytes);
  } else {
    s.request_head = http::serialize(req).size();
    s.to_server += w.tcp_message(s.request_head);
  }
  s.response = http::serialize(pollbus::poll_response({}, in.enc, ro)).size();
  s.event_extra = http::serialize(pollbus::poll_response(one, in.enc, ro)).size() - s.response;
  s.to_client += w.tcp_message(s.response);
  if (in.keep_alive) {
    s.to_server += w.pure_ack();
  } else {
    s.to_server += w.handshake_to_server();
    s.to_client += w.handshake_to_client();
    s.to_server += w.pure_ack();  // the client's FIN (carrying the response's ACK)
    s.to_server += w.pure_ack();  // its ACK of the server's FIN
    s.to_client += w.pure_ack();  // the server's FIN
  }
  return s;
}

bus_hour bus_per_client_hour(const bus_inputs& in) {
  const bus_poll_sizes s = bus_poll_on_the_wire(in);
  bus_hour h;
  const double interval_s = to_seconds(in.interval);
  h.polls = 3600.0 / interval_s;
  h.wire_bytes_to_server = h.polls * static_cast<double>(s.to_server.wire_bytes);
  h.packets_to_server = h.polls * static_cast<double>(s.to_server.packets);
  h.wire_bytes_to_client = h.polls * static_cast<double>(s.to_client.wire_bytes) +
                           in.events_per_client_hour * static_cast<double>(s.event_extra);
  h.packets_to_client = h.polls * static_cast<double>(s.to_client.packets);
  // Poisson events: a poll finds nothing with probability exp(-rate * interval).
  h.wasted_polls = h.polls * std::exp(-in.events_per_client_hour / 3600.0 * interval_s);
  h.mean_latency_s = interval_s / 2;
  return h;
}

}  // namespace nudge::model
