#pragma once
// What one empty poll costs on the wire, from the encoders rather than from a
// run: the EcDoRpcExt2 request a polling client sends (RPC_HEADER_EXT and an
// empty ROP buffer in rgbIn) and the response the notifier gives when nothing is
// queued (an empty ROP buffer in rgbOut), each encoded as a DCE/RPC PDU by
// nudge_protocol and carried in TCP segments with the wire model's headers.
// The closed form (seed_model.hpp) takes its message sizes from here, so that
// comparing it with the simulation checks both.
#include <cstdint>

#include "nudge/metrics/traffic.hpp"
#include "nudge/model/seed_model.hpp"

namespace nudge::model {

struct empty_poll_sizes {
  std::uint64_t request_pdu = 0;   // DCE/RPC bytes (84 with nudge's encoders)
  std::uint64_t response_pdu = 0;  // (100)
  metrics::traffic_cell request;   // as the wire model counts it: bytes with headers, packets
  metrics::traffic_cell response;
};

/// The empty poll encoded now, counted with `wire` (abstract or faithful).
empty_poll_sizes empty_poll_on_the_wire(const metrics::wire_model& wire);

/// `in` with the request and response bytes and TSDUs of one empty poll on `wire`.
seed_inputs with_empty_poll_sizes(seed_inputs in, const metrics::wire_model& wire);

}  // namespace nudge::model
