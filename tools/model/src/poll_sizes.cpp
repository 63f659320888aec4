#include "nudge/model/poll_sizes.hpp"

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/rop.hpp"

namespace nudge::model {

using namespace nudge::protocol;

empty_poll_sizes empty_poll_on_the_wire(const metrics::wire_model& wire) {
  // Any session's handle: sizes do not depend on its value.
  const emsmdb::context_handle cxh{0, guid::parse("11111111-2222-3333-4444-555555555555")};

  byte_buffer request;
  emsmdb::encode_empty_poll_request(request, 1, cxh);

  byte_buffer rgb_out;
  rop::response_builder(rgb_out).finish();  // no NewMail, no RopPending: nothing was queued
  emsmdb::rpc_ext2_response rsp;
  rsp.cxh = cxh;
  rsp.rgb_out = rgb_out;
  byte_buffer response;
  dcerpc::encode_response(response, 1, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });

  empty_poll_sizes s;
  s.request_pdu = request.size();
  s.response_pdu = response.size();
  s.request = wire.tcp_message(s.request_pdu);
  s.response = wire.tcp_message(s.response_pdu);
  return s;
}

seed_inputs with_empty_poll_sizes(seed_inputs in, const metrics::wire_model& wire) {
  const empty_poll_sizes s = empty_poll_on_the_wire(wire);
  in.request_bytes = static_cast<double>(s.request.wire_bytes);
  in.response_bytes = static_cast<double>(s.response.wire_bytes);
  in.request_tsdus = static_cast<double>(s.request.packets);
  in.response_tsdus = static_cast<double>(s.response.packets);
  return in;
}

}  // namespace nudge::model
