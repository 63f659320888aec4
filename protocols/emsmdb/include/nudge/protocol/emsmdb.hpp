#pragma once
// NDR stubs of EMSMDB v0.81 (opnums 1, 4, 6, 10, 11, 14) and AsyncEMSMDB v0.1
// (opnum 0), in MS-OXCRPC parameter order. Decoded structures hold views into
// the stub they came from; the caller keeps that buffer alive while using them.
#include <array>
#include <cstdint>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"
#include "nudge/protocol/identifiers.hpp"

namespace nudge::protocol::emsmdb {

/// The 20-byte NDR context handle (CXH / ACXH): attributes + GUID.
struct context_handle {
  std::uint32_t attributes = 0;
  guid uuid;
  friend bool operator==(const context_handle&, const context_handle&) = default;
  bool is_null() const { return *this == context_handle{}; }
};

// ---- opnum 10: EcDoConnectEx ------------------------------------------------
struct connect_ex_request {
  std::string_view user_dn;  // szUserDN without the terminating NUL
  std::uint32_t flags = 0;
  std::uint32_t connection_mode = 0;
  std::uint32_t limit = 0;
  std::uint32_t code_page = 1252;
  std::uint32_t lcid_string = 1033;
  std::uint32_t lcid_sort = 1033;
  std::uint32_t icxr_link = 0xFFFFFFFF;
  std::uint16_t can_convert_code_pages = 1;
  std::array<std::uint16_t, 3> client_version{12, 0, 4518};  // Outlook 2007-ish
  std::uint32_t timestamp = 0;
  bytes_view aux_in;
  std::uint32_t max_aux_out = 0x1008;
};
struct connect_ex_response {
  context_handle cxh;
  std::uint32_t polls_max_ms = 60000;  // pcmsPollsMax
  std::uint32_t retry_count = 6;
  std::uint32_t retry_delay_ms = 10000;
  std::uint16_t session_index = 0;  // picxr
  std::string_view dn_prefix;
  std::string_view display_name;
  std::array<std::uint16_t, 3> server_version{8, 0, 685};  // Exchange 2007 RTM build
  std::array<std::uint16_t, 3> best_version{12, 0, 4518};
  std::uint32_t timestamp = 0;
  std::uint32_t return_code = 0;
};

// ---- opnum 1: EcDoDisconnect ([OXCRPC] 3.1.4.3) -------------------------------
// [in,out,ref] CXH *pcxh: the request carries the session handle; the response
// returns it zeroed (the handle is closed) and the long return value.
struct disconnect_request {
  context_handle cxh;
};
struct disconnect_response {
  context_handle cxh;  // all zero: the server closed it
  std::uint32_t return_code = 0;
};

// ---- opnum 4: EcRRegisterPushNotification ----------------------------------
struct register_push_request {
  context_handle cxh;
  std::uint32_t irpc = 0;
  bytes_view context;  // rgbContext (cbContext bytes)
  std::uint32_t advise_bits = 0xFFFFFFFF;
  bytes_view callback_address;  // rgbCallbackAddress: a Windows SOCKADDR
};
struct register_push_response {
  context_handle cxh;
  std::uint32_t notification_handle = 0;
  std::uint32_t return_code = 0;
};

// ---- opnum 6: EcDummyRpc -----------------------------------------------------
// Request stub is empty; the response is the 4-byte return value.

// ---- opnum 11: EcDoRpcExt2 ---------------------------------------------------
namespace rpc_flags {
inline constexpr std::uint32_t no_compression = 0x1;
inline constexpr std::uint32_t no_xor_magic = 0x2;
inline constexpr std::uint32_t chain = 0x4;
}  // namespace rpc_flags

struct rpc_ext2_request {
  context_handle cxh;
  std::uint32_t flags = rpc_flags::no_compression | rpc_flags::no_xor_magic;
  bytes_view rgb_in;  // RPC_HEADER_EXT + ROP buffer
  std::uint32_t max_out = 0x8008;
  bytes_view aux_in;
  std::uint32_t max_aux_out = 0x1008;
};
struct rpc_ext2_response {
  context_handle cxh;
  std::uint32_t flags = 0;
  bytes_view rgb_out;
  bytes_view aux_out;
  std::uint32_t trans_time_ms = 0;
  std::uint32_t return_code = 0;
};

// ---- opnum 14: EcDoAsyncConnectEx --------------------------------------------
struct async_connect_request {
  context_handle cxh;
};
struct async_connect_response {
  context_handle acxh;
  std::uint32_t return_code = 0;
};

// ---- AsyncEMSMDB opnum 0: EcDoAsyncWaitEx ------------------------------------
struct async_wait_request {
  context_handle acxh;
  std::uint32_t flags_in = 0;
};
struct async_wait_response {
  std::uint32_t flags_out = 0;  // notification_pending (0x1) or 0 on timeout
  std::uint32_t return_code = 0;
};

// Encoders write the stub only (wrap with dcerpc::encode_request/encode_response).
void encode(byte_writer& w, const connect_ex_request& s);
void encode(byte_writer& w, const connect_ex_response& s);
void encode(byte_writer& w, const disconnect_request& s);
void encode(byte_writer& w, const disconnect_response& s);
void encode(byte_writer& w, const register_push_request& s);
void encode(byte_writer& w, const register_push_response& s);
void encode_dummy_response(byte_writer& w, std::uint32_t return_code);
void encode(byte_writer& w, const rpc_ext2_request& s);
/// The empty EcDoRpcExt2 a poll sends (RPC_HEADER_EXT with an empty ROP list,
/// default pcbOut): its stub, and the whole DCE/RPC request PDU appended to `out`.
void encode_empty_poll(byte_writer& w, const context_handle& cxh);
std::size_t encode_empty_poll_request(byte_buffer& out, std::uint32_t call_id, const context_handle& cxh);
void encode(byte_writer& w, const rpc_ext2_response& s);
void encode(byte_writer& w, const async_connect_request& s);
void encode(byte_writer& w, const async_connect_response& s);
void encode(byte_writer& w, const async_wait_request& s);
void encode(byte_writer& w, const async_wait_response& s);

// Decoders take a whole stub (never need_more: the PDU framer already has it all).
decoded<connect_ex_request> decode_connect_ex_request(bytes_view stub);
decoded<connect_ex_response> decode_connect_ex_response(bytes_view stub);
decoded<disconnect_request> decode_disconnect_request(bytes_view stub);
decoded<disconnect_response> decode_disconnect_response(bytes_view stub);
/// Structure only: context > 16 bytes and a bad SOCKADDR decode fine here; the
/// server answers them with ecTooBig / ecInvalidParam as MS-OXCRPC requires.
decoded<register_push_request> decode_register_push_request(bytes_view stub);
decoded<register_push_response> decode_register_push_response(bytes_view stub);
decoded<std::uint32_t> decode_dummy_response(bytes_view stub);
decoded<rpc_ext2_request> decode_rpc_ext2_request(bytes_view stub);
decoded<rpc_ext2_response> decode_rpc_ext2_response(bytes_view stub);
decoded<async_connect_request> decode_async_connect_request(bytes_view stub);
decoded<async_connect_response> decode_async_connect_response(bytes_view stub);
decoded<async_wait_request> decode_async_wait_request(bytes_view stub);
decoded<async_wait_response> decode_async_wait_response(bytes_view stub);

/// Size limits from MS-OXCRPC 3.1.4.2.
inline constexpr std::uint32_t max_rgb_in = 0x40000;
inline constexpr std::uint32_t max_aux = 0x1008;
/// pcbOut on input: below 8 the server SHOULD fail with ecRpcFailed, above
/// 0x40000 it MUST fail with RPC_X_BAD_STUB_DATA (no ultra-large buffers here).
inline constexpr std::uint32_t min_pcb_out = 0x8;
inline constexpr std::uint32_t max_pcb_out = 0x40000;
/// The largest stub any EMSMDB request can have: EcDoRpcExt2 with rgbIn and
/// rgbAuxIn at their limits, plus its fixed fields and NDR padding (under 64
/// bytes). A receiver reassembling fragments never needs to hold more.
inline constexpr std::uint32_t max_request_stub = max_rgb_in + max_aux + 64;
/// The largest stub an EMSMDB response can have: EcDoRpcExt2 with rgbOut and
/// rgbAuxOut at their limits, plus its fixed fields (under 64 bytes).
inline constexpr std::uint32_t max_response_stub = max_pcb_out + max_aux + 64;

}  // namespace nudge::protocol::emsmdb
