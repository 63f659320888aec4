// fuzz_emsmdb_stubs: the first byte selects one of the 13 NDR stub decoders
// (every request and response of EMSMDB opnums 1, 4, 6, 10, 11, 14 and AsyncEMSMDB
// opnum 0); the rest is the stub. A stub that decodes is re-encoded and decoded
// again: the fields must survive the round trip.
#include <cstdint>

#include "fuzz_common.hpp"
#include "nudge/protocol/emsmdb.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::emsmdb;
using nudge::fuzz::same_bytes;

namespace {

enum selector : std::uint8_t {
  connect_ex_request_sel,
  connect_ex_response_sel,
  register_push_request_sel,
  register_push_response_sel,
  dummy_response_sel,
  rpc_ext2_request_sel,
  rpc_ext2_response_sel,
  async_connect_request_sel,
  async_connect_response_sel,
  async_wait_request_sel,
  async_wait_response_sel,
  disconnect_request_sel,
  disconnect_response_sel,
  selector_count
};

template <class T, class Encode, class Decode, class Same>
void round_trip(bytes_view stub, Decode decode, Encode encode_fn, Same same) {
  auto d = decode(stub);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    return;
  }
  NUDGE_FUZZ_CHECK(d.consumed <= stub.size(), "consumed beyond the stub");
  byte_buffer again;
  byte_writer w(again);
  encode_fn(w, d.value);
  auto d2 = decode(bytes_view(again));
  NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded stub does not decode");
  NUDGE_FUZZ_CHECK(d2.consumed == again.size(), "a re-encoded stub leaves bytes unread");
  NUDGE_FUZZ_CHECK(same(d.value, d2.value), "fields changed across encode/decode");
  byte_buffer third;
  byte_writer w3(third);
  encode_fn(w3, d2.value);
  NUDGE_FUZZ_CHECK(third == again, "re-encoding a re-decoded stub gives other bytes");
}

auto enc = [](byte_writer& w, const auto& v) { encode(w, v); };

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto sel = static_cast<selector>(data[0] % selector_count);
  const bytes_view stub(data + 1, size - 1);

  switch (sel) {
    case connect_ex_request_sel:
      round_trip<connect_ex_request>(stub, decode_connect_ex_request, enc,
                                     [](const connect_ex_request& a, const connect_ex_request& b) {
                                       return a.user_dn == b.user_dn && a.flags == b.flags &&
                                              a.connection_mode == b.connection_mode && a.limit == b.limit &&
                                              a.code_page == b.code_page && a.lcid_string == b.lcid_string &&
                                              a.lcid_sort == b.lcid_sort && a.icxr_link == b.icxr_link &&
                                              a.can_convert_code_pages == b.can_convert_code_pages &&
                                              a.client_version == b.client_version && a.timestamp == b.timestamp &&
                                              same_bytes(a.aux_in, b.aux_in) && a.max_aux_out == b.max_aux_out;
                                     });
      break;
    case connect_ex_response_sel:
      round_trip<connect_ex_response>(stub, decode_connect_ex_response, enc,
                                      [](const connect_ex_response& a, const connect_ex_response& b) {
                                        return a.cxh == b.cxh && a.polls_max_ms == b.polls_max_ms &&
                                               a.retry_count == b.retry_count &&
                                               a.retry_delay_ms == b.retry_delay_ms &&
                                               a.session_index == b.session_index && a.dn_prefix == b.dn_prefix &&
                                               a.display_name == b.display_name &&
                                               a.server_version == b.server_version &&
                                               a.best_version == b.best_version && a.timestamp == b.timestamp &&
                                               a.return_code == b.return_code;
                                      });
      break;
    case register_push_request_sel:
      round_trip<register_push_request>(stub, decode_register_push_request, enc,
                                        [](const register_push_request& a, const register_push_request& b) {
                                          return a.cxh == b.cxh && a.irpc == b.irpc &&
                                                 same_bytes(a.context, b.context) &&
                                                 a.advise_bits == b.advise_bits &&
                                                 same_bytes(a.callback_address, b.callback_address);
                                        });
      break;
    case register_push_response_sel:
      round_trip<register_push_response>(stub, decode_register_push_response, enc,
                                         [](const register_push_response& a, const register_push_response& b) {
                                           return a.cxh == b.cxh && a.notification_handle == b.notification_handle &&
                                                  a.return_code == b.return_code;
                                         });
      break;
    case dummy_response_sel:
      round_trip<std::uint32_t>(
          stub, decode_dummy_response, [](byte_writer& w, std::uint32_t rc) { encode_dummy_response(w, rc); },
          [](std::uint32_t a, std::uint32_t b) { return a == b; });
      break;
    case rpc_ext2_request_sel:
      round_trip<rpc_ext2_request>(stub, decode_rpc_ext2_request, enc,
                                   [](const rpc_ext2_request& a, const rpc_ext2_request& b) {
                                     return a.cxh == b.cxh && a.flags == b.flags && same_bytes(a.rgb_in, b.rgb_in) &&
                                            a.max_out == b.max_out && same_bytes(a.aux_in, b.aux_in) &&
                                            a.max_aux_out == b.max_aux_out;
                                   });
      break;
    case rpc_ext2_response_sel:
      round_trip<rpc_ext2_response>(stub, decode_rpc_ext2_response, enc,
                                    [](const rpc_ext2_response& a, const rpc_ext2_response& b) {
                                      return a.cxh == b.cxh && a.flags == b.flags &&
                                             same_bytes(a.rgb_out, b.rgb_out) && same_bytes(a.aux_out, b.aux_out) &&
                                             a.trans_time_ms == b.trans_time_ms && a.return_code == b.return_code;
                                    });
      break;
    case async_connect_request_sel:
      round_trip<async_connect_request>(
          stub, decode_async_connect_request, enc,
          [](const async_connect_request& a, const async_connect_request& b) { return a.cxh == b.cxh; });
      break;
    case async_connect_response_sel:
      round_trip<async_connect_response>(stub, decode_async_connect_response, enc,
                                         [](const async_connect_response& a, const async_connect_response& b) {
                                           return a.acxh == b.acxh && a.return_code == b.return_code;
                                         });
      break;
    case async_wait_request_sel:
      round_trip<async_wait_request>(stub, decode_async_wait_request, enc,
                                     [](const async_wait_request& a, const async_wait_request& b) {
                                       return a.acxh == b.acxh && a.flags_in == b.flags_in;
                                     });
      break;
    case async_wait_response_sel:
      round_trip<async_wait_response>(stub, decode_async_wait_response, enc,
                                      [](const async_wait_response& a, const async_wait_response& b) {
                                        return a.flags_out == b.flags_out && a.return_code == b.return_code;
                                      });
      break;
    case disconnect_request_sel:
      round_trip<disconnect_request>(stub, decode_disconnect_request, enc,
                                     [](const disconnect_request& a, const disconnect_request& b) { return a.cxh == b.cxh; });
      break;
    case disconnect_response_sel:
      round_trip<disconnect_response>(stub, decode_disconnect_response, enc,
                                      [](const disconnect_response& a, const disconnect_response& b) {
                                        return a.cxh == b.cxh && a.return_code == b.return_code;
                                      });
      break;
    case selector_count:
      break;
  }
  return 0;
}
