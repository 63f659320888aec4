#pragma once
// The rgbIn / rgbOut payload of EcDoRpcExt2: an 8-byte RPC_HEADER_EXT, then a
// ROP buffer (RopSize u16 counting itself and the ROPs, the ROPs, then the
// server object handle table). nudge's polls carry no ROPs; responses carry
// RopNotify (0x2A, NewMail) and RopPending (0x6E) at the end of the ROP list.
//
// Measurement hook: the NewMail details carry the event id as the MID's
// global counter and the event's creation time (microseconds of the run's
// clock) as 16 hex digits after "IPM.Note.t", a fixed-length message class, so
// every NewMail costs the same bytes and latency can be measured end to end.
#include <cstdint>
#include <optional>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/decode.hpp"

namespace nudge::protocol::rop {

inline constexpr std::size_t rpc_header_ext_size = 8;
namespace header_flags {
inline constexpr std::uint16_t compressed = 0x1;
inline constexpr std::uint16_t xor_magic = 0x2;
inline constexpr std::uint16_t last = 0x4;
}  // namespace header_flags

inline constexpr std::uint8_t rop_notify_id = 0x2A;
inline constexpr std::uint8_t rop_pending_id = 0x6E;
inline constexpr std::uint16_t notification_new_mail = 0x8002;  // fnevNewMail | M flag

/// What nudge calls an event: something changed in a mailbox.
struct event_stamp {
  std::uint64_t id = 0;  // unique per run
  time_point created_at{};
  friend bool operator==(const event_stamp&, const event_stamp&) = default;
};

struct new_mail_notification {
  std::uint32_t notification_handle = 0;
  std::uint8_t logon_id = 0;
  std::uint64_t folder_id = 0;
  event_stamp event;
  std::uint32_t message_flags = 0;
};

/// Encoded size of one RopNotify NewMail (fixed, see the header comment).
std::size_t new_mail_size();
/// RPC_HEADER_EXT + RopSize + RopPending sizes, for packing decisions.
inline constexpr std::size_t rop_pending_size = 3;
inline constexpr std::size_t empty_buffer_size = rpc_header_ext_size + 2;

/// rgbIn of an empty poll: header + RopSize = 2.
void encode_empty_request(byte_buffer& out);

/// rgbOut when pcbOut is 8 or 9 (MS-OXCRPC allows pcbOut down to 8): the
/// RPC_HEADER_EXT alone, Size 0, no room for a ROP buffer. decode_response
/// reads it as zero ROPs.
void encode_header_only_response(byte_buffer& out);

/// rgbOut: header, RopSize, the notifications, an optional RopPending.
/// `notifications` is any range of new_mail_notification.
class response_builder {
 public:
  explicit response_builder(byte_buffer& out);
  void add(const new_mail_notification& n);
  void add_pending(std::uint16_t session_index);
  /// Patches RopSize and the header sizes; returns total bytes written.
  std::size_t finish();

 private:
  byte_buffer& out_;
  std::size_t start_;
};

/// One decoded ROP response, as a callback target.
struct rop_visitor {
  virtual ~rop_visitor() = default;
  virtual void on_new_mail(const new_mail_notification& n) = 0;
  virtual void on_pending(std::uint16_t session_index) = 0;
};

/// Walks rgbOut (a header-only rgbOut is zero ROPs). Malformed on a bad header, a RopSize beyond the buffer, an
/// unknown ROP id or an unsupported notification type (their length is unknowable).
decoded<std::size_t> decode_response(bytes_view rgb_out, rop_visitor& visitor);

/// Checks rgbIn's header and returns the ROP list (without RopSize). Compressed
/// or obfuscated buffers are refused: nudge advertises NoCompression|NoXorMagic.
decoded<bytes_view> decode_request(bytes_view rgb_in);

}  // namespace nudge::protocol::rop
