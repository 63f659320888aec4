#include "nudge/protocol/dcerpc.hpp"

#include <algorithm>

namespace nudge::protocol::dcerpc {

namespace {

void write_syntax(byte_writer& w, const syntax_id& s) {
  w.bytes(s.uuid.bytes);
  w.u16(s.major);
  w.u16(s.minor);
}

syntax_id read_syntax(byte_reader& r) {
  syntax_id s;
  auto b = r.bytes(16);
  if (b.size() == 16) std::copy(b.begin(), b.end(), s.uuid.bytes.begin());
  s.major = r.u16();
  s.minor = r.u16();
  return s;
}

void set_frag_length(byte_buffer& out, std::size_t start) {
  const auto len = static_cast<std::uint16_t>(out.size() - start);
  out[start + 8] = static_cast<std::uint8_t>(len);
  out[start + 9] = static_cast<std::uint8_t>(len >> 8);
}

}  // namespace

namespace detail {

void write_common_header(byte_writer& w, packet_type type, std::uint32_t call_id) {
  w.u8(5);  // rpc_vers
  w.u8(0);  // rpc_vers_minor
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(pfc::first_frag | pfc::last_frag);
  w.u32(0x10);  // drep: little-endian integers, ASCII, IEEE floats
  w.u16(0);     // frag_length, patched when the PDU is complete
  w.u16(0);     // auth_length
  w.u32(call_id);
}

void finish_pdu(byte_buffer& out, std::size_t pdu_start, std::size_t alloc_hint_pos) {
  const auto stub_len = static_cast<std::uint32_t>(out.size() - (alloc_hint_pos + 8));
  for (int i = 0; i < 4; ++i) out[alloc_hint_pos + i] = static_cast<std::uint8_t>(stub_len >> (8 * i));
  set_frag_length(out, pdu_start);
}

}  // namespace detail

decoded<common_header> decode_common_header(bytes_view in) {
  using result = decoded<common_header>;
  if (in.size() < common_header_size) return result::more("incomplete DCE/RPC common header");
  byte_reader r(in);
  common_header h;
  h.rpc_vers = r.u8();
  h.rpc_vers_minor = r.u8();
  h.ptype = r.u8();
  h.pfc_flags = r.u8();
  h.drep = r.u32();
  h.frag_length = r.u16();
  h.auth_length = r.u16();
  h.call_id = r.u32();
  if (h.rpc_vers != 5 || h.rpc_vers_minor != 0) return result::bad("not DCE/RPC version 5.0");
  if ((h.drep & 0xF0) != 0x10) return result::bad("big-endian data representation is not supported");
  if (h.frag_length < common_header_size) return result::bad("frag_length smaller than the common header");
  return result::ok(h, common_header_size);
}

bool plausible_common_header(bytes_view in) {
  if (in.size() < common_header_size) return false;
  const std::uint8_t* d = in.data();
  if (d[0] != 5 || d[1] > 1) return false;
  const std::uint8_t ptype = d[2];
  if (ptype > 19 || (ptype >= 4 && ptype <= 10)) return false;  // 4..10 are connectionless types
  if ((d[4] & 0xF0) != 0x10) return false;
  const auto frag = static_cast<std::uint16_t>(d[8] | (d[9] << 8));
  const auto auth = static_cast<std::uint16_t>(d[10] | (d[11] << 8));
  std::size_t min = common_header_size;
  if (ptype == 0 || ptype == 2) min = request_header_size;
  if (ptype == 3) min = fault_size;
  if (auth != 0) min += 8 + auth;
  return frag >= min;
}

// ---- stream_framer ----------------------------------------------------------------------

void stream_framer::append_more(bytes_view bytes) {
  if (reason_ || bytes.empty()) return;
  if (borrowed_.empty()) {
    borrowed_ = bytes;
    return;
  }
  // Appended again before next() drained the last bytes: hold both (in order).
  hold(borrowed_.size());
  held_.insert(held_.end(), bytes.begin(), bytes.end());
}

void stream_framer::hold(std::size_t want) {
  const std::size_t take = std::min(want, borrowed_.size());
  held_.insert(held_.end(), borrowed_.begin(), borrowed_.begin() + static_cast<std::ptrdiff_t>(take));
  borrowed_ = borrowed_.subspan(take);
}

std::size_t stream_framer::check_header(bytes_view in) {
  std::size_t frag = 0;
  if (rule_ == header_rule::strict) {
    // What decode_common_header accepts, read in place; it says why when not.
    const auto length = static_cast<std::size_t>(in[8] | (in[9] << 8));
    if (in[0] == 5 && in[1] == 0 && (in[4] & 0xF0) == 0x10 && length >= common_header_size) {
      frag = length;
    } else {
      const auto hd = decode_common_header(in);
      if (hd.malformed()) {
        refuse(hd.reason);
        return 0;
      }
      frag = hd.value.frag_length;
    }
  } else {
    if (!plausible_common_header(in)) {
      refuse("no plausible DCE/RPC common header");
      return 0;
    }
    frag = static_cast<std::size_t>(in[8] | (in[9] << 8));
  }
  if (frag > max_pdu_) {
    refuse("PDU longer than the receiver's limit");
    return 0;
  }
  return frag;
}

stream_framer::frame stream_framer::refuse(std::string_view reason) {
  reason_ = reason.data();  // static text, as every decoder's reason
  return {status::malformed, {}, reason};
}

stream_framer::frame stream_framer::next_pdu() {
  if (reason_) return {status::malformed, {}, reason_};
  if (held_returned_ != 0) {
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(held_returned_));
    held_returned_ = 0;
  }
  if (!held_.empty()) {
    // An incomplete PDU is held: complete it from the borrowed bytes.
    if (held_.size() < common_header_size) hold(common_header_size - held_.size());
    if (held_.size() < common_header_size) return {};
    const std::size_t frag = check_header(held_);
    if (frag == 0) return {status::malformed, {}, reason_};
    if (held_.size() < frag) hold(frag - held_.size());
    if (held_.size() < frag) return {};
    held_returned_ = static_cast<std::uint16_t>(frag);
    return {status::complete, bytes_view(held_).first(frag), {}};
  }
  // At a PDU boundary (the usual case): frame straight from the borrowed bytes.
  if (borrowed_.size() >= common_header_size) {
    const std::size_t frag = check_header(borrowed_);
    if (frag == 0) return {status::malformed, {}, reason_};
    if (borrowed_.size() >= frag) {
      const bytes_view whole = borrowed_.first(frag);
      borrowed_ = borrowed_.subspan(frag);
      return {status::complete, whole, {}};
    }
  }
  if (!borrowed_.empty()) hold(borrowed_.size());  // an incomplete PDU: the caller's bytes may go away now
  return {};
}

void stream_framer::clear() {
  reason_ = nullptr;
  held_returned_ = 0;
  held_ = byte_buffer{};
  borrowed_ = {};
}

decoded<pdu> decode_pdu(bytes_view in) {
  using result = decoded<pdu>;
  auto hd = decode_common_header(in);
  if (!hd.complete()) return hd.need_more() ? result::more(hd.reason) : result::bad(hd.reason);
  const common_header& h = hd.value;
  if (in.size() < h.frag_length) return result::more("incomplete PDU (frag_length beyond the bytes received)");
  if (h.auth_length != 0) return result::bad("authenticated PDUs are not supported");

  bytes_view body = in.subspan(common_header_size, h.frag_length - common_header_size);
  byte_reader r(body);
  const auto type = static_cast<packet_type>(h.ptype);

  switch (type) {
    case packet_type::request: {
      if (body.size() < request_header_size - common_header_size) return result::bad("request shorter than its header");
      request_pdu p;
      p.call_id = h.call_id;
      p.pfc_flags = h.pfc_flags;
      p.alloc_hint = r.u32();
      p.context_id = r.u16();
      p.opnum = r.u16();
      if (h.pfc_flags & pfc::object_uuid) r.skip(16);
      if (!r.ok()) return result::bad("request object UUID truncated");
      p.stub = r.bytes(r.remaining());
      return result::ok(p, h.frag_length);
    }
    case packet_type::response: {
      if (body.size() < response_header_size - common_header_size) return result::bad("response shorter than its header");
      response_pdu p;
      p.call_id = h.call_id;
      p.pfc_flags = h.pfc_flags;
      p.alloc_hint = r.u32();
      p.context_id = r.u16();
      r.skip(2);  // cancel_count, reserved
      p.stub = r.bytes(r.remaining());
      return result::ok(p, h.frag_length);
    }
    case packet_type::fault: {
      fault_pdu p;
      p.call_id = h.call_id;
      r.u32();  // alloc_hint
      p.context_id = r.u16();
      r.skip(2);  // cancel_count, flags
      p.status = r.u32();
      if (!r.ok()) return result::bad("fault shorter than 32 bytes");
      return result::ok(p, h.frag_length);
    }
    case packet_type::bind: {
      bind_pdu p;
      p.call_id = h.call_id;
      p.max_xmit_frag = r.u16();
      p.max_recv_frag = r.u16();
      p.assoc_group_id = r.u32();
      const std::uint8_t n_contexts = r.u8();
      r.skip(3);
      if (!r.ok()) return result::bad("bind shorter than its header");
      for (std::uint8_t i = 0; i < n_contexts; ++i) {
        presentation_context c;
        c.context_id = r.u16();
        const std::uint8_t n_syntaxes = r.u8();
        r.skip(1);
        c.abstract_syntax = read_syntax(r);
        for (std::uint8_t j = 0; j < n_syntaxes && r.ok(); ++j) c.transfer_syntaxes.push_back(read_syntax(r));
        if (!r.ok()) return result::bad("bind context list runs past frag_length");
        p.contexts.push_back(std::move(c));
      }
      return result::ok(std::move(p), h.frag_length);
    }
    case packet_type::bind_ack: {
      bind_ack_pdu p;
      p.call_id = h.call_id;
      p.max_xmit_frag = r.u16();
      p.max_recv_frag = r.u16();
      p.assoc_group_id = r.u32();
      const std::uint16_t sec_len = r.u16();
      auto sec = r.bytes(sec_len);
      if (!r.ok()) return result::bad("bind_ack secondary address runs past frag_length");
      p.secondary_address.assign(sec.begin(), sec.end());
      if (!p.secondary_address.empty() && p.secondary_address.back() == '\0') p.secondary_address.pop_back();
      // Padding aligns the result list to 4 bytes relative to the PDU start.
      r.skip((4 - (common_header_size + r.offset()) % 4) % 4);
      const std::uint8_t n_results = r.u8();
      r.skip(3);
      for (std::uint8_t i = 0; i < n_results && r.ok(); ++i) {
        bind_result b;
        b.result = r.u16();
        b.reason = r.u16();
        b.transfer_syntax = read_syntax(r);
        p.results.push_back(b);
      }
      if (!r.ok()) return result::bad("bind_ack result list runs past frag_length");
      return result::ok(std::move(p), h.frag_length);
    }
    case packet_type::bind_nak: {
      bind_nak_pdu p;
      p.call_id = h.call_id;
      p.reject_reason = r.u16();
      if (!r.ok()) return result::bad("bind_nak shorter than its reason");
      return result::ok(p, h.frag_length);
    }
  }
  return result::bad("unknown or unsupported DCE/RPC packet type");
}

std::size_t encode(byte_buffer& out, const bind_pdu& p) {
  const std::size_t start = out.size();
  byte_writer w(out);
  detail::write_common_header(w, packet_type::bind, p.call_id);
  w.u16(p.max_xmit_frag);
  w.u16(p.max_recv_frag);
  w.u32(p.assoc_group_id);
  w.u8(static_cast<std::uint8_t>(p.contexts.size()));
  w.zeros(3);
  for (const auto& c : p.contexts) {
    w.u16(c.context_id);
    w.u8(static_cast<std::uint8_t>(c.transfer_syntaxes.size()));
    w.u8(0);
    write_syntax(w, c.abstract_syntax);
    for (const auto& t : c.transfer_syntaxes) write_syntax(w, t);
  }
  set_frag_length(out, start);
  return out.size() - start;
}

std::size_t encode(byte_buffer& out, const bind_ack_pdu& p) {
  const std::size_t start = out.size();
  byte_writer w(out);
  detail::write_common_header(w, packet_type::bind_ack, p.call_id);
  w.u16(p.max_xmit_frag);
  w.u16(p.max_recv_frag);
  w.u32(p.assoc_group_id);
  w.u16(static_cast<std::uint16_t>(p.secondary_address.size() + 1));
  w.bytes(as_bytes(p.secondary_address));
  w.u8(0);
  w.align(4);
  w.u8(static_cast<std::uint8_t>(p.results.size()));
  w.zeros(3);
  for (const auto& b : p.results) {
    w.u16(b.result);
    w.u16(b.reason);
    write_syntax(w, b.transfer_syntax);
  }
  set_frag_length(out, start);
  return out.size() - start;
}

std::size_t encode(byte_buffer& out, const bind_nak_pdu& p) {
  const std::size_t start = out.size();
  byte_writer w(out);
  detail::write_common_header(w, packet_type::bind_nak, p.call_id);
  w.u16(p.reject_reason);
  w.u8(1);  // n_protocols
  w.u8(5);  // rpc_vers
  w.u8(0);  // rpc_vers_minor
  set_frag_length(out, start);
  return out.size() - start;
}

std::size_t encode(byte_buffer& out, const request_pdu& p) {
  return encode_request(out, p.call_id, p.context_id, p.opnum, [&](byte_writer& w) { w.bytes(p.stub); });
}

std::size_t encode(byte_buffer& out, const response_pdu& p) {
  return encode_response(out, p.call_id, p.context_id, [&](byte_writer& w) { w.bytes(p.stub); });
}

std::size_t encode(byte_buffer& out, const fault_pdu& p) {
  const std::size_t start = out.size();
  byte_writer w(out);
  detail::write_common_header(w, packet_type::fault, p.call_id);
  out[start + 3] = pfc::first_frag | pfc::last_frag | pfc::did_not_execute;
  w.u32(0);  // alloc_hint
  w.u16(p.context_id);
  w.u8(0);  // cancel_count
  w.u8(0);  // flags
  w.u32(p.status);
  w.u32(0);  // reserved
  set_frag_length(out, start);
  return out.size() - start;
}

namespace {

// Writes the fragments of one call; `write_fields` adds what follows alloc_hint
// in the type's header (context id and opnum, or context id and cancel count).
template <class HeaderFields>
std::size_t encode_fragments(byte_buffer& out, packet_type type, std::uint32_t call_id, bytes_view stub,
                             std::size_t max_frag, HeaderFields&& write_fields) {
  const std::size_t capacity = fragment_stub_capacity(max_frag);
  std::size_t offset = 0;
  std::size_t fragments = 0;
  do {
    const std::size_t chunk = capacity == 0 ? stub.size() - offset : std::min(capacity, stub.size() - offset);
    const std::size_t start = out.size();
    byte_writer w(out);
    detail::write_common_header(w, type, call_id);
    std::uint8_t flags = 0;
    if (offset == 0) flags |= pfc::first_frag;
    if (offset + chunk == stub.size()) flags |= pfc::last_frag;
    out[start + 3] = flags;
    w.u32(static_cast<std::uint32_t>(stub.size() - offset));  // alloc_hint: what is still to come
    write_fields(w);
    w.bytes(stub.subspan(offset, chunk));
    set_frag_length(out, start);
    offset += chunk;
    ++fragments;
  } while (offset < stub.size());
  return fragments;
}

}  // namespace

std::size_t fragment_stub_capacity(std::size_t max_frag) {
  if (max_frag < request_header_size + 8) return 0;
  return (max_frag - request_header_size) / 8 * 8;
}

std::size_t encode_request_fragments(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                                     std::uint16_t opnum, bytes_view stub, std::size_t max_frag) {
  return encode_fragments(out, packet_type::request, call_id, stub, max_frag, [&](byte_writer& w) {
    w.u16(context_id);
    w.u16(opnum);
  });
}

std::size_t encode_response_fragments(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                                      bytes_view stub, std::size_t max_frag) {
  return encode_fragments(out, packet_type::response, call_id, stub, max_frag, [&](byte_writer& w) {
    w.u16(context_id);
    w.u8(0);  // cancel_count
    w.u8(0);  // reserved
  });
}

void stub_reassembler::reset() {
  open_ = false;
  joined_ = byte_buffer{};  // give the memory back, not just the size
}

stub_reassembler::result stub_reassembler::add(std::uint32_t call_id, std::uint32_t call_tag, std::uint8_t pfc_flags,
                                               bytes_view stub) {
  result r;
  const bool first = (pfc_flags & pfc::first_frag) != 0;
  const bool last = (pfc_flags & pfc::last_frag) != 0;
  auto refuse = [&](status why, std::string_view reason) {
    reset();
    r.outcome = why;
    r.reason = reason;
    return std::move(r);
  };
  if (first) {
    if (open_) return refuse(status::out_of_sequence, "a new call began before the previous one's last fragment");
    if (stub.size() > max_stub_) return refuse(status::too_large, "call stub larger than the reassembly bound");
    if (last) {  // the usual case: nothing to copy
      r.outcome = status::whole;
      r.single = stub;
      return r;
    }
    open_ = true;
    call_id_ = call_id;
    call_tag_ = call_tag;
    joined_.assign(stub.begin(), stub.end());
    return r;
  }
  if (!open_) return refuse(status::out_of_sequence, "a fragment without PFC_FIRST_FRAG and no call open");
  if (call_id != call_id_ || call_tag != call_tag_)
    return refuse(status::out_of_sequence, "a fragment of another call while one is open");
  if (stub.size() > max_stub_ - joined_.size())
    return refuse(status::too_large, "call stub larger than the reassembly bound");
  joined_.insert(joined_.end(), stub.begin(), stub.end());
  if (!last) return r;
  open_ = false;
  r.outcome = status::whole;
  r.joined = std::move(joined_);
  r.multi_fragment = true;
  joined_ = byte_buffer{};
  return r;
}

const char* packet_type_name(std::uint8_t ptype) {
  switch (ptype) {
    case 0: return "request";
    case 2: return "response";
    case 3: return "fault";
    case 11: return "bind";
    case 12: return "bind_ack";
    case 13: return "bind_nak";
    default: return "unknown";
  }
}

}  // namespace nudge::protocol::dcerpc
