#pragma once
// Connection-oriented DCE/RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2), as sent over
// ncacn_ip_tcp: bind, bind_ack, bind_nak, request, response, fault.
// No authentication (auth_length 0). Requests and responses may come in several
// fragments (PFC_FIRST_FRAG .. PFC_LAST_FRAG): the decoder returns each fragment
// with its flags, `stub_reassembler` joins them up to a bound, and the fragment
// encoders cut a long stub at the negotiated max_xmit_frag.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"
#include "nudge/protocol/identifiers.hpp"

namespace nudge::protocol::dcerpc {

inline constexpr std::size_t common_header_size = 16;
inline constexpr std::size_t request_header_size = 24;
inline constexpr std::size_t response_header_size = 24;
inline constexpr std::size_t fault_size = 32;
inline constexpr std::uint16_t default_max_frag = 5840;
/// C706 12.6.3.1 MustRecvFragSize: every implementation receives fragments of
/// this size, so a peer that offers less cannot be spoken to.
inline constexpr std::uint16_t must_recv_frag_size = 1432;
inline constexpr std::size_t call_id_offset = 12;  // in the common header

enum class packet_type : std::uint8_t {
  request = 0,
  response = 2,
  fault = 3,
  bind = 11,
  bind_ack = 12,
  bind_nak = 13,
};

namespace pfc {
inline constexpr std::uint8_t first_frag = 0x01;
inline constexpr std::uint8_t last_frag = 0x02;
inline constexpr std::uint8_t single_frag = first_frag | last_frag;
inline constexpr std::uint8_t did_not_execute = 0x20;
inline constexpr std::uint8_t object_uuid = 0x80;
}  // namespace pfc

struct presentation_context {
  std::uint16_t context_id = 0;
  syntax_id abstract_syntax;
  std::vector<syntax_id> transfer_syntaxes;
};

struct bind_pdu {
  std::uint32_t call_id = 0;
  std::uint16_t max_xmit_frag = default_max_frag;
  std::uint16_t max_recv_frag = default_max_frag;
  std::uint32_t assoc_group_id = 0;
  std::vector<presentation_context> contexts;
};

struct bind_result {
  std::uint16_t result = 0;  // 0 acceptance, 2 provider rejection
  std::uint16_t reason = 0;
  syntax_id transfer_syntax;
};

struct bind_ack_pdu {
  std::uint32_t call_id = 0;
  std::uint16_t max_xmit_frag = default_max_frag;
  std::uint16_t max_recv_frag = default_max_frag;
  std::uint32_t assoc_group_id = 0;
  std::string secondary_address;  // the server's port as text, e.g. "7777"
  std::vector<bind_result> results;
};

struct bind_nak_pdu {
  std::uint32_t call_id = 0;
  std::uint16_t reject_reason = 0;
};

/// A request (or one fragment of it: see pfc_flags); `stub` views the input
/// buffer it was decoded from.
struct request_pdu {
  std::uint32_t call_id = 0;
  std::uint32_t alloc_hint = 0;
  std::uint16_t context_id = 0;
  std::uint16_t opnum = 0;
  bytes_view stub;
  std::uint8_t pfc_flags = pfc::single_frag;
  bool first_fragment() const { return (pfc_flags & pfc::first_frag) != 0; }
  bool last_fragment() const { return (pfc_flags & pfc::last_frag) != 0; }
};

struct response_pdu {
  std::uint32_t call_id = 0;
  std::uint32_t alloc_hint = 0;
  std::uint16_t context_id = 0;
  bytes_view stub;
  std::uint8_t pfc_flags = pfc::single_frag;
  bool first_fragment() const { return (pfc_flags & pfc::first_frag) != 0; }
  bool last_fragment() const { return (pfc_flags & pfc::last_frag) != 0; }
};

struct fault_pdu {
  std::uint32_t call_id = 0;
  std::uint16_t context_id = 0;
  std::uint32_t status = 0;
};

using pdu = std::variant<bind_pdu, bind_ack_pdu, bind_nak_pdu, request_pdu, response_pdu, fault_pdu>;

/// The 16-byte common header, decoded alone (what a stream framer needs).
struct common_header {
  std::uint8_t rpc_vers = 5;
  std::uint8_t rpc_vers_minor = 0;
  std::uint8_t ptype = 0;
  std::uint8_t pfc_flags = 0;
  std::uint32_t drep = 0x10;
  std::uint16_t frag_length = 0;
  std::uint16_t auth_length = 0;
  std::uint32_t call_id = 0;
};

decoded<common_header> decode_common_header(bytes_view in);

/// A plausible connection-oriented common header at the front of `in` (at
/// least 16 bytes): version 5.0 or 5.1, little-endian data representation, a
/// connection-oriented PDU type and a frag_length covering that type's fixed
/// header. Looser than decode_common_header: what a capture reader accepts as
/// the start of a PDU on a stream it joins midway.
bool plausible_common_header(bytes_view in);

/// Cuts a TCP byte stream into whole PDUs by their frag_length, holding at most
/// one incomplete PDU (so at most `max_pdu` bytes). Bytes are borrowed, not
/// copied, while they hold whole PDUs: after `append(bytes)`, call `next()`
/// until it says need_more (or malformed, or the caller stops using the
/// framer) before `bytes` go away; only a PDU's incomplete tail is copied.
class stream_framer {
 public:
  /// strict: decode_common_header's rules (version 5.0, frag_length >= 16),
  /// what a peer speaking to nudge must send; lenient: plausible_common_header.
  enum class header_rule : std::uint8_t { strict, lenient };
  enum class status : std::uint8_t { complete, need_more, malformed };
  struct frame {
    status outcome = status::need_more;
    bytes_view pdu;           // the whole PDU when complete; valid until the next call
    std::string_view reason;  // static text when malformed
  };
  static constexpr std::size_t max_frag_length = 0xFFFF;

  stream_framer() = default;
  explicit stream_framer(std::size_t max_pdu, header_rule rule = header_rule::strict)
      : max_pdu_(static_cast<std::uint32_t>(std::min(max_pdu, max_frag_length))), rule_(rule) {}

  /// Adds received bytes (borrowed: see the class comment).
  void append(bytes_view bytes) {
    if (borrowed_.empty() && reason_ == nullptr) {
      borrowed_ = bytes;  // the usual case, inline: nothing waits before them
      return;
    }
    append_more(bytes);
  }
  /// The next whole PDU, need_more, or malformed (the stream cannot be framed
  /// any further: every later call says malformed again until clear()).
  frame next() {
    // Everything appended was framed: need more, inline (every receive ends so).
    if (borrowed_.empty() && held_.empty() && reason_ == nullptr) return {};
    return next_pdu();
  }
  /// Bytes appended but not yet returned in a PDU: an incomplete PDU after
  /// need_more, everything unframed after malformed.
  std::size_t pending() const { return held_.size() - held_returned_ + borrowed_.size(); }
  std::size_t max_pdu() const { return max_pdu_; }
  /// Forgets everything appended (and a malformed stream), freeing the buffer.
  void clear();

 private:
  void append_more(bytes_view bytes);
  frame next_pdu();
  /// frag_length of the header at the front of `in` (16 bytes at least), or 0 when refused.
  std::size_t check_header(bytes_view in);
  frame refuse(std::string_view reason);
  /// Moves up to `want` bytes from the front of borrowed_ to the end of held_.
  void hold(std::size_t want);

  // Packed small: a framer lives in every connection of a core.
  bytes_view borrowed_;             // appended bytes after held_, not yet framed
  byte_buffer held_;                // the start of an incomplete PDU (front of the stream)
  const char* reason_ = nullptr;    // why the stream was refused (static text); null while framing
  std::uint32_t max_pdu_ = max_frag_length;
  std::uint16_t held_returned_ = 0;  // the front of held_ is a PDU returned by the last next()
  header_rule rule_ = header_rule::strict;
};


/// Decodes one PDU from the front of a TCP byte stream: need_more until the
/// whole fragment is present; `consumed` is frag_length when complete.
decoded<pdu> decode_pdu(bytes_view in);

// Encoders append one whole PDU to `out` and return its size.
std::size_t encode(byte_buffer& out, const bind_pdu& p);
std::size_t encode(byte_buffer& out, const bind_ack_pdu& p);
std::size_t encode(byte_buffer& out, const bind_nak_pdu& p);
std::size_t encode(byte_buffer& out, const request_pdu& p);
std::size_t encode(byte_buffer& out, const response_pdu& p);
std::size_t encode(byte_buffer& out, const fault_pdu& p);

/// Appends a request whose stub is produced in place by `write_stub(byte_writer&)`,
/// avoiding a temporary buffer on the hot path.
template <class StubWriter>
std::size_t encode_request(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id, std::uint16_t opnum,
                           StubWriter&& write_stub);
template <class StubWriter>
std::size_t encode_response(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                            StubWriter&& write_stub);

// ---- implementation of the in-place encoders ------------------------------
namespace detail {
void write_common_header(byte_writer& w, packet_type type, std::uint32_t call_id);
void finish_pdu(byte_buffer& out, std::size_t pdu_start, std::size_t alloc_hint_pos);
}  // namespace detail

template <class StubWriter>
std::size_t encode_request(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id, std::uint16_t opnum,
                           StubWriter&& write_stub) {
  const std::size_t start = out.size();
  out.reserve(start + 128);  // most PDUs fit: one allocation
  byte_writer w(out);
  detail::write_common_header(w, packet_type::request, call_id);
  const std::size_t hint_pos = out.size();
  w.u32(0);
  w.u16(context_id);
  w.u16(opnum);
  byte_writer stub(out);  // NDR alignment is relative to the stub start
  write_stub(stub);
  detail::finish_pdu(out, start, hint_pos);
  return out.size() - start;
}

template <class StubWriter>
std::size_t encode_response(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                            StubWriter&& write_stub) {
  const std::size_t start = out.size();
  out.reserve(start + 128);
  byte_writer w(out);
  detail::write_common_header(w, packet_type::response, call_id);
  const std::size_t hint_pos = out.size();
  w.u32(0);
  w.u16(context_id);
  w.u8(0);  // cancel_count
  w.u8(0);  // reserved
  byte_writer stub(out);
  write_stub(stub);
  detail::finish_pdu(out, start, hint_pos);
  return out.size() - start;
}

const char* packet_type_name(std::uint8_t ptype);

// ---- fragmentation (C706 12.6.4.3 / 12.6.3.1) ------------------------------

/// Largest stub a fragment of `max_frag` bytes carries: what is left after the
/// 24-byte request/response header, rounded down to 8 bytes so every fragment
/// but the last keeps the stub's NDR alignment (0 when max_frag is too small).
std::size_t fragment_stub_capacity(std::size_t max_frag);

/// Appends `stub` as request fragments of at most `max_frag` bytes each (one
/// single-fragment PDU when it fits); alloc_hint is the stub bytes from that
/// fragment on. Returns the number of fragments. `max_frag` must leave room
/// for at least 8 stub bytes.
std::size_t encode_request_fragments(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                                     std::uint16_t opnum, bytes_view stub, std::size_t max_frag);
/// The same for a response.
std::size_t encode_response_fragments(byte_buffer& out, std::uint32_t call_id, std::uint16_t context_id,
                                      bytes_view stub, std::size_t max_frag);

/// Joins the fragments of one call on one connection, keeping at most
/// `max_stub` bytes: a call whose stub grows past it is refused as too_large
/// and its buffer freed, so a peer cannot make the receiver hold more.
/// C706 connections without PFC_CONC_MPX carry one call at a time: a first
/// fragment while a call is open, or a middle/last fragment of another call,
/// is out_of_sequence.
class stub_reassembler {
 public:
  enum class status { whole, need_more, too_large, out_of_sequence };
  struct result {
    status outcome = status::need_more;
    std::string_view reason;  // static text when refused
    bytes_view single;        // a single fragment's own stub (not copied)
    byte_buffer joined;       // the fragments' stubs, joined
    bool multi_fragment = false;
    /// The call's whole stub when outcome is whole.
    bytes_view stub() const { return multi_fragment ? bytes_view(joined) : single; }
  };

  explicit stub_reassembler(std::size_t max_stub) : max_stub_(max_stub) {}

  /// `call_tag` is whatever else must stay the same across the fragments of a
  /// call (the opnum and context id of a request, the context id of a response).
  result add(std::uint32_t call_id, std::uint32_t call_tag, std::uint8_t pfc_flags, bytes_view stub);

  bool in_progress() const { return open_; }
  std::uint32_t call_id() const { return call_id_; }
  std::size_t buffered() const { return joined_.size(); }
  std::size_t max_stub() const { return max_stub_; }
  /// Forgets the open call (if any) and frees its buffer.
  void reset();

 private:
  std::size_t max_stub_;
  bool open_ = false;
  std::uint32_t call_id_ = 0;
  std::uint32_t call_tag_ = 0;
  byte_buffer joined_;
};

}  // namespace nudge::protocol::dcerpc
