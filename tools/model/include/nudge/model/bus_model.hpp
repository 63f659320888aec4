#pragma once
// The closed form of the polling bus (seed 003) at a fixed interval: what one
// client costs per hour on the wire, from the bus's own encoders (the HTTP
// binding, SOAP or JSON) and the wire model, beside the simulation
// (docs/pollbus.md). Per poll:
//  - to the server: the POST (head and body as two segments with
//    Expect: 100-continue, one without) and the pure ACK of the response
//    (delayed: the next request is seconds away);
//  - to the client: the 100 Continue (when expected) and the response;
//  - without keep-alive, the handshake and the client's close (its FIN and
//    last ACK; the server's FIN) instead of that pure ACK.
// Each event adds its ChatMessage to one response (events rarer than polls).
#include <cstdint>
#include <string>

#include "nudge/metrics/traffic.hpp"
#include "nudge/pollbus/codec.hpp"
#include "nudge/protocol/clock.hpp"

namespace nudge::model {

struct bus_inputs {
  pollbus::encoding enc = pollbus::encoding::soap;
  bool keep_alive = true;
  bool expect_continue = true;
  std::string host = "127.0.0.1";
  std::string path = "/Bus.asmx";
  duration interval = std::chrono::seconds(15);
  double events_per_client_hour = 0;
  metrics::wire_model wire;
};

struct bus_poll_sizes {
  std::uint64_t request_head = 0, request_body = 0;  // the POST's bytes (the head alone with Expect)
  std::uint64_t continue_bytes = 0;                  // 0 without Expect
  std::uint64_t response = 0;                        // an empty PollResult
  std::uint64_t event_extra = 0;                     // one ChatMessage more in a response
  metrics::traffic_cell to_server, to_client;        // one empty poll on the wire, transport included
};

struct bus_hour {
  double polls = 0;
  double wire_bytes_to_server = 0, wire_bytes_to_client = 0;
  double packets_to_server = 0, packets_to_client = 0;
  double wire_bytes() const { return wire_bytes_to_server + wire_bytes_to_client; }
  double packets() const { return packets_to_server + packets_to_client; }
  /// Polls that found nothing, and their share of the bytes.
  double wasted_polls = 0;
  double mean_latency_s = 0;  // half the interval: an event waits for the next poll
};

bus_poll_sizes bus_poll_on_the_wire(const bus_inputs& in);
bus_hour bus_per_client_hour(const bus_inputs& in);

}  // namespace nudge::model
