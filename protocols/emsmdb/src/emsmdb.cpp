#include "nudge/protocol/emsmdb.hpp"

#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/rop.hpp"

namespace nudge::protocol::emsmdb {

namespace {

inline constexpr std::uint32_t max_string = 1024;  // longer DNs are refused as malformed

void write_handle(byte_writer& w, const context_handle& h) {
  w.u32(h.attributes);
  w.bytes(h.uuid.bytes);
}

context_handle read_handle(byte_reader& r) {
  context_handle h;
  r.align(4);
  h.attributes = r.u32();
  auto b = r.bytes(16);
  if (b.size() == 16) std::copy(b.begin(), b.end(), h.uuid.bytes.begin());
  return h;
}

std::uint32_t read_u32(byte_reader& r) {
  r.align(4);
  return r.u32();
}
std::uint16_t read_u16(byte_reader& r) {
  r.align(2);
  return r.u16();
}

// [string] char*: conformant varying string, max_count/offset/actual_count, NUL included.
void write_string(byte_writer& w, std::string_view s) {
  w.align(4);
  const auto n = static_cast<std::uint32_t>(s.size() + 1);
  w.u32(n);
  w.u32(0);
  w.u32(n);
  w.bytes(as_bytes(s));
  w.u8(0);
}

bool read_string(byte_reader& r, std::string_view& out) {
  r.align(4);
  const std::uint32_t max_count = r.u32();
  const std::uint32_t offset = r.u32();
  const std::uint32_t actual = r.u32();
  if (!r.ok() || offset != 0 || actual == 0 || actual > max_count || actual > max_string) return false;
  auto b = r.bytes(actual);
  if (!r.ok() || b.back() != 0) return false;
  out = std::string_view(reinterpret_cast<const char*>(b.data()), actual - 1);
  return true;
}

// [size_is(n)] byte[]: conformant array, max_count then bytes.
void write_conformant(byte_writer& w, bytes_view b) {
  w.align(4);
  w.u32(static_cast<std::uint32_t>(b.size()));
  w.bytes(b);
}
bool read_conformant(byte_reader& r, bytes_view& out, std::uint32_t limit) {
  r.align(4);
  const std::uint32_t n = r.u32();
  if (!r.ok() || n > limit || n > r.remaining()) return false;
  out = r.bytes(n);
  return r.ok();
}

// [size_is, length_is] byte[]: conformant varying array.
void write_conformant_varying(byte_writer& w, bytes_view b) {
  w.align(4);
  const auto n = static_cast<std::uint32_t>(b.size());
  w.u32(n);
  w.u32(0);
  w.u32(n);
  w.bytes(b);
}
bool read_conformant_varying(byte_reader& r, bytes_view& out, std::uint32_t limit) {
  r.align(4);
  const std::uint32_t max_count = r.u32();
  const std::uint32_t offset = r.u32();
  const std::uint32_t actual = r.u32();
  if (!r.ok() || offset != 0 || actual > max_count || actual > limit || actual > r.remaining()) return false;
  out = r.bytes(actual);
  return r.ok();
}

template <class T>
decoded<T> finish(byte_reader& r, T v, std::string_view what) {
  if (!r.ok()) return decoded<T>::bad(what);
  return decoded<T>::ok(std::move(v), r.offset());
}

}  // namespace

// ---- EcDoConnectEx ------------------------------------------------------------
void encode(byte_writer& w, const connect_ex_request& s) {
  write_string(w, s.user_dn);
  w.align(4);
  w.u32(s.flags);
  w.u32(s.connection_mode);
  w.u32(s.limit);
  w.u32(s.code_page);
  w.u32(s.lcid_string);
  w.u32(s.lcid_sort);
  w.u32(s.icxr_link);
  w.u16(s.can_convert_code_pages);
  for (auto v : s.client_version) w.u16(v);
  w.align(4);
  w.u32(s.timestamp);
  write_conformant(w, s.aux_in);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(s.aux_in.size()));
  w.u32(s.max_aux_out);
}

decoded<connect_ex_request> decode_connect_ex_request(bytes_view stub) {
  byte_reader r(stub);
  connect_ex_request s;
  if (!read_string(r, s.user_dn)) return decoded<connect_ex_request>::bad("EcDoConnectEx: bad szUserDN string");
  s.flags = read_u32(r);
  s.connection_mode = r.u32();
  s.limit = r.u32();
  s.code_page = r.u32();
  s.lcid_string = r.u32();
  s.lcid_sort = r.u32();
  s.icxr_link = r.u32();
  s.can_convert_code_pages = r.u16();
  for (auto& v : s.client_version) v = r.u16();
  s.timestamp = read_u32(r);
  if (!read_conformant(r, s.aux_in, max_aux)) return decoded<connect_ex_request>::bad("EcDoConnectEx: bad rgbAuxIn");
  const std::uint32_t cb_aux_in = read_u32(r);
  s.max_aux_out = r.u32();
  if (r.ok() && cb_aux_in != s.aux_in.size())
    return decoded<connect_ex_request>::bad("EcDoConnectEx: cbAuxIn differs from rgbAuxIn's size");
  return finish(r, s, "EcDoConnectEx request truncated");
}

void encode(byte_writer& w, const connect_ex_response& s) {
  write_handle(w, s.cxh);
  w.u32(s.polls_max_ms);
  w.u32(s.retry_count);
  w.u32(s.retry_delay_ms);
  w.u16(s.session_index);
  w.align(4);
  w.u32(0x00020000);  // referent id of szDNPrefix (unique pointer)
  write_string(w, s.dn_prefix);
  w.align(4);
  w.u32(0x00020004);  // referent id of szDisplayName
  write_string(w, s.display_name);
  w.align(2);
  for (auto v : s.server_version) w.u16(v);
  for (auto v : s.best_version) w.u16(v);
  w.align(4);
  w.u32(s.timestamp);
  write_conformant_varying(w, {});  // rgbAuxOut: empty
  w.align(4);
  w.u32(0);  // pcbAuxOut
  w.u32(s.return_code);
}

decoded<connect_ex_response> decode_connect_ex_response(bytes_view stub) {
  using result = decoded<connect_ex_response>;
  byte_reader r(stub);
  connect_ex_response s;
  s.cxh = read_handle(r);
  s.polls_max_ms = read_u32(r);
  s.retry_count = r.u32();
  s.retry_delay_ms = r.u32();
  s.session_index = r.u16();
  if (read_u32(r) == 0 || !read_string(r, s.dn_prefix)) return result::bad("EcDoConnectEx: bad szDNPrefix");
  if (read_u32(r) == 0 || !read_string(r, s.display_name)) return result::bad("EcDoConnectEx: bad szDisplayName");
  r.align(2);
  for (auto& v : s.server_version) v = r.u16();
  for (auto& v : s.best_version) v = r.u16();
  s.timestamp = read_u32(r);
  bytes_view aux;
  if (!read_conformant_varying(r, aux, max_aux)) return result::bad("EcDoConnectEx: bad rgbAuxOut");
  read_u32(r);  // pcbAuxOut
  s.return_code = r.u32();
  return finish(r, s, "EcDoConnectEx response truncated");
}

// ---- EcDoDisconnect ----------------------------------------------------------------
void encode(byte_writer& w, const disconnect_request& s) { write_handle(w, s.cxh); }

decoded<disconnect_request> decode_disconnect_request(bytes_view stub) {
  byte_reader r(stub);
  disconnect_request s;
  s.cxh = read_handle(r);
  return finish(r, s, "EcDoDisconnect request truncated");
}

void encode(byte_writer& w, const disconnect_response& s) {
  write_handle(w, s.cxh);
  w.u32(s.return_code);
}

decoded<disconnect_response> decode_disconnect_response(bytes_view stub) {
  byte_reader r(stub);
  disconnect_response s;
  s.cxh = read_handle(r);
  s.return_code = r.u32();
  return finish(r, s, "EcDoDisconnect response truncated");
}

// ---- EcRRegisterPushNotification ---------------------------------------------
void encode(byte_writer& w, const register_push_request& s) {
  write_handle(w, s.cxh);
  w.u32(s.irpc);
  write_conformant(w, s.context);
  w.align(2);
  w.u16(static_cast<std::uint16_t>(s.context.size()));
  w.align(4);
  w.u32(s.advise_bits);
  write_conformant(w, s.callback_address);
  w.align(2);
  w.u16(static_cast<std::uint16_t>(s.callback_address.size()));
}

decoded<register_push_request> decode_register_push_request(bytes_view stub) {
  using result = decoded<register_push_request>;
  byte_reader r(stub);
  register_push_request s;
  s.cxh = read_handle(r);
  s.irpc = read_u32(r);
  // Sizes up to 64 KiB are structurally valid; the server applies the 16-byte rule.
  if (!read_conformant(r, s.context, 0xFFFF)) return result::bad("EcRRegisterPushNotification: bad rgbContext");
  const std::uint16_t cb_context = read_u16(r);
  s.advise_bits = read_u32(r);
  if (!read_conformant(r, s.callback_address, 0xFFFF))
    return result::bad("EcRRegisterPushNotification: bad rgbCallbackAddress");
  const std::uint16_t cb_address = read_u16(r);
  if (!r.ok()) return result::bad("EcRRegisterPushNotification request truncated");
  if (cb_context != s.context.size()) return result::bad("EcRRegisterPushNotification: cbContext differs from rgbContext");
  if (cb_address != s.callback_address.size())
    return result::bad("EcRRegisterPushNotification: cbCallbackAddress differs from rgbCallbackAddress");
  return result::ok(s, r.offset());
}

void encode(byte_writer& w, const register_push_response& s) {
  write_handle(w, s.cxh);
  w.u32(s.notification_handle);
  w.u32(s.return_code);
}

decoded<register_push_response> decode_register_push_response(bytes_view stub) {
  byte_reader r(stub);
  register_push_response s;
  s.cxh = read_handle(r);
  s.notification_handle = r.u32();
  s.return_code = r.u32();
  return finish(r, s, "EcRRegisterPushNotification response truncated");
}

// ---- EcDummyRpc ------------------------------------------------------------------
void encode_dummy_response(byte_writer& w, std::uint32_t return_code) { w.u32(return_code); }

decoded<std::uint32_t> decode_dummy_response(bytes_view stub) {
  byte_reader r(stub);
  std::uint32_t rc = r.u32();
  return finish(r, rc, "EcDummyRpc response truncated");
}

// ---- EcDoRpcExt2 -----------------------------------------------------------------
void encode(byte_writer& w, const rpc_ext2_request& s) {
  write_handle(w, s.cxh);
  w.u32(s.flags);
  write_conformant(w, s.rgb_in);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(s.rgb_in.size()));
  w.u32(s.max_out);
  write_conformant(w, s.aux_in);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(s.aux_in.size()));
  w.u32(s.max_aux_out);
}

decoded<rpc_ext2_request> decode_rpc_ext2_request(bytes_view stub) {
  using result = decoded<rpc_ext2_request>;
  byte_reader r(stub);
  rpc_ext2_request s;
  s.cxh = read_handle(r);
  s.flags = read_u32(r);
  if (!read_conformant(r, s.rgb_in, max_rgb_in)) return result::bad("EcDoRpcExt2: bad rgbIn");
  const std::uint32_t cb_in = read_u32(r);
  s.max_out = r.u32();
  if (!read_conformant(r, s.aux_in, max_aux)) return result::bad("EcDoRpcExt2: bad rgbAuxIn");
  const std::uint32_t cb_aux_in = read_u32(r);
  s.max_aux_out = r.u32();
  if (!r.ok()) return result::bad("EcDoRpcExt2 request truncated");
  if (cb_in != s.rgb_in.size()) return result::bad("EcDoRpcExt2: cbIn differs from rgbIn's size");
  if (cb_aux_in != s.aux_in.size()) return result::bad("EcDoRpcExt2: cbAuxIn differs from rgbAuxIn's size");
  return result::ok(s, r.offset());
}

void encode(byte_writer& w, const rpc_ext2_response& s) {
  write_handle(w, s.cxh);
  w.u32(s.flags);
  write_conformant_varying(w, s.rgb_out);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(s.rgb_out.size()));
  write_conformant_varying(w, s.aux_out);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(s.aux_out.size()));
  w.u32(s.trans_time_ms);
  w.u32(s.return_code);
}

decoded<rpc_ext2_response> decode_rpc_ext2_response(bytes_view stub) {
  using result = decoded<rpc_ext2_response>;
  byte_reader r(stub);
  rpc_ext2_response s;
  s.cxh = read_handle(r);
  s.flags = read_u32(r);
  if (!read_conformant_varying(r, s.rgb_out, 0x100000)) return result::bad("EcDoRpcExt2: bad rgbOut");
  const std::uint32_t cb_out = read_u32(r);
  if (!read_conformant_varying(r, s.aux_out, max_aux)) return result::bad("EcDoRpcExt2: bad rgbAuxOut");
  read_u32(r);  // pcbAuxOut
  s.trans_time_ms = r.u32();
  s.return_code = r.u32();
  if (!r.ok()) return result::bad("EcDoRpcExt2 response truncated");
  if (cb_out != s.rgb_out.size()) return result::bad("EcDoRpcExt2: pcbOut differs from rgbOut's length");
  return result::ok(s, r.offset());
}

// ---- EcDoAsyncConnectEx / EcDoAsyncWaitEx ------------------------------------------
void encode(byte_writer& w, const async_connect_request& s) { write_handle(w, s.cxh); }
decoded<async_connect_request> decode_async_connect_request(bytes_view stub) {
  byte_reader r(stub);
  async_connect_request s;
  s.cxh = read_handle(r);
  return finish(r, s, "EcDoAsyncConnectEx request truncated");
}
void encode(byte_writer& w, const async_connect_response& s) {
  write_handle(w, s.acxh);
  w.u32(s.return_code);
}
decoded<async_connect_response> decode_async_connect_response(bytes_view stub) {
  byte_reader r(stub);
  async_connect_response s;
  s.acxh = read_handle(r);
  s.return_code = r.u32();
  return finish(r, s, "EcDoAsyncConnectEx response truncated");
}
void encode(byte_writer& w, const async_wait_request& s) {
  write_handle(w, s.acxh);
  w.u32(s.flags_in);
}
decoded<async_wait_request> decode_async_wait_request(bytes_view stub) {
  byte_reader r(stub);
  async_wait_request s;
  s.acxh = read_handle(r);
  s.flags_in = r.u32();
  return finish(r, s, "EcDoAsyncWaitEx request truncated");
}
void encode(byte_writer& w, const async_wait_response& s) {
  w.u32(s.flags_out);
  w.u32(s.return_code);
}
decoded<async_wait_response> decode_async_wait_response(bytes_view stub) {
  byte_reader r(stub);
  async_wait_response s;
  s.flags_out = r.u32();
  s.return_code = r.u32();
  return finish(r, s, "EcDoAsyncWaitEx response truncated");
}

// ---- the empty poll ------------------------------------------------------------------------
void encode_empty_poll(byte_writer& w, const context_handle& cxh) {
  byte_buffer rgb_in;
  rop::encode_empty_request(rgb_in);
  rpc_ext2_request req;
  req.cxh = cxh;
  req.rgb_in = rgb_in;
  encode(w, req);
}

std::size_t encode_empty_poll_request(byte_buffer& out, std::uint32_t call_id, const context_handle& cxh) {
  return dcerpc::encode_request(out, call_id, 0, opnum::do_rpc_ext2, [&](byte_writer& w) { encode_empty_poll(w, cxh); });
}

}  // namespace nudge::protocol::emsmdb
