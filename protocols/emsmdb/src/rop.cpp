#include "nudge/protocol/rop.hpp"

#include <cstring>

namespace nudge::protocol::rop {

namespace {

inline constexpr char message_class_prefix[] = "IPM.Note.t";  // then 16 hex digits of creation time (µs)
inline constexpr std::size_t message_class_prefix_len = sizeof(message_class_prefix) - 1;
inline constexpr std::size_t message_class_len = message_class_prefix_len + 16;
inline constexpr std::uint16_t mid_replica = 1;

void write_header(byte_writer& w, std::uint16_t size) {
  w.u16(0);  // Version
  w.u16(header_flags::last);
  w.u16(size);  // Size (bytes after the header)
  w.u16(size);  // SizeActual (same: never compressed)
}

// Shared by both directions: validates the header and returns the payload after it.
decoded<bytes_view> read_header(bytes_view in) {
  using result = decoded<bytes_view>;
  byte_reader r(in);
  const std::uint16_t version = r.u16();
  const std::uint16_t flags = r.u16();
  const std::uint16_t size = r.u16();
  const std::uint16_t size_actual = r.u16();
  if (!r.ok()) return result::bad("RPC_HEADER_EXT truncated");
  if (version != 0) return result::bad("RPC_HEADER_EXT version is not 0");
  if (flags & (header_flags::compressed | header_flags::xor_magic))
    return result::bad("compressed or obfuscated ROP buffers are not supported");
  if (!(flags & header_flags::last)) return result::bad("chained RPC_HEADER_EXT buffers are not supported");
  if (size != size_actual) return result::bad("RPC_HEADER_EXT Size differs from SizeActual");
  if (size > r.remaining()) return result::bad("RPC_HEADER_EXT Size runs past the buffer");
  return result::ok(r.bytes(size), rpc_header_ext_size + size);
}

}  // namespace

std::size_t new_mail_size() { return 1 + 4 + 1 + 2 + 8 + 8 + 4 + 1 + message_class_len + 1; }

void encode_empty_request(byte_buffer& out) {
  byte_writer w(out);
  write_header(w, 2);
  w.u16(2);  // RopSize: no ROPs, no handle table
}

void encode_header_only_response(byte_buffer& out) {
  byte_writer w(out);
  write_header(w, 0);
}

response_builder::response_builder(byte_buffer& out) : out_(out), start_(out.size()) {
  byte_writer w(out_);
  write_header(w, 0);
  w.u16(0);  // RopSize, patched in finish()
}

void response_builder::add(const new_mail_notification& n) {
  byte_writer w(out_);
  w.u8(rop_notify_id);
  w.u32(n.notification_handle);
  w.u8(n.logon_id);
  w.u16(notification_new_mail);
  w.u64(n.folder_id);
  // MID: 2-byte replica id, then the 6-byte global counter big-endian (MS-OXCDATA 2.2.1.2).
  w.u16(mid_replica);
  for (int shift = 40; shift >= 0; shift -= 8) w.u8(static_cast<std::uint8_t>(n.event.id >> shift));
  w.u32(n.message_flags);
  w.u8(0);  // UnicodeFlag: MessageClass is 8-bit
  char cls[message_class_len + 1];
  std::memcpy(cls, message_class_prefix, message_class_prefix_len);
  const auto micros = static_cast<std::uint64_t>(to_micros(n.event.created_at));
  for (std::size_t i = 0; i < 16; ++i) cls[message_class_prefix_len + i] = "0123456789abcdef"[(micros >> (60 - 4 * i)) & 0xF];
  cls[message_class_len] = 0;
  w.bytes(as_bytes(std::string_view(cls, message_class_len + 1)));  // with the NUL
}

void response_builder::add_pending(std::uint16_t session_index) {
  byte_writer w(out_);
  w.u8(rop_pending_id);
  w.u16(session_index);
}

std::size_t response_builder::finish() {
  byte_writer w(out_);
  const auto rop_size = static_cast<std::uint16_t>(out_.size() - (start_ + rpc_header_ext_size));
  w.patch_u16(start_ + 4, rop_size);
  w.patch_u16(start_ + 6, rop_size);
  w.patch_u16(start_ + rpc_header_ext_size, rop_size);  // RopSize counts itself and the ROPs
  return out_.size() - start_;
}

decoded<bytes_view> decode_request(bytes_view rgb_in) {
  using result = decoded<bytes_view>;
  auto h = read_header(rgb_in);
  if (!h.complete()) return h;
  byte_reader r(h.value);
  const std::uint16_t rop_size = r.u16();
  if (!r.ok() || rop_size < 2) return result::bad("RopSize smaller than itself");
  if (rop_size > h.value.size()) return result::bad("RopSize runs past the buffer");
  if ((h.value.size() - rop_size) % 4 != 0) return result::bad("handle table is not a whole number of u32s");
  return result::ok(h.value.subspan(2, rop_size - 2u), h.consumed);
}

decoded<std::size_t> decode_response(bytes_view rgb_out, rop_visitor& visitor) {
  using result = decoded<std::size_t>;
  auto h = read_header(rgb_out);
  if (!h.complete()) return result::bad(h.reason);
  if (h.value.empty()) return result::ok(0, h.consumed);  // header only: pcbOut left no room for ROPs
  byte_reader outer(h.value);
  const std::uint16_t rop_size = outer.u16();
  if (!outer.ok() || rop_size < 2) return result::bad("RopSize smaller than itself");
  if (rop_size > h.value.size()) return result::bad("RopSize runs past the buffer");
  byte_reader r(h.value.subspan(2, rop_size - 2u));
  std::size_t rops = 0;
  while (r.remaining() > 0) {
    const std::uint8_t id = r.u8();
    if (id == rop_pending_id) {
      const std::uint16_t session_index = r.u16();
      if (!r.ok()) return result::bad("RopPending truncated");
      visitor.on_pending(session_index);
    } else if (id == rop_notify_id) {
      new_mail_notification n;
      n.notification_handle = r.u32();
      n.logon_id = r.u8();
      const std::uint16_t type = r.u16();
      if (!r.ok()) return result::bad("RopNotify truncated");
      if (type != notification_new_mail) return result::bad("RopNotify of a type other than NewMail");
      n.folder_id = r.u64();
      const std::uint16_t replica = r.u16();
      (void)replica;
      std::uint64_t counter = 0;
      for (int i = 0; i < 6; ++i) counter = (counter << 8) | r.u8();
      n.event.id = counter;
      n.message_flags = r.u32();
      const std::uint8_t unicode = r.u8();
      if (!r.ok()) return result::bad("RopNotify NewMail truncated");
      if (unicode != 0) return result::bad("Unicode MessageClass is not supported");
      // MessageClass: NUL-terminated, bounded by the ROP list.
      std::size_t len = 0;
      std::string_view cls;
      {
        byte_reader probe = r;
        while (probe.remaining() > 0 && probe.u8() != 0) ++len;
        if (!probe.ok() || probe.offset() == r.offset() + len) return result::bad("MessageClass not terminated");
        auto b = r.bytes(len + 1);
        cls = std::string_view(reinterpret_cast<const char*>(b.data()), len);
      }
      if (cls.size() == message_class_len && cls.substr(0, message_class_prefix_len) == message_class_prefix) {
        std::uint64_t micros = 0;
        bool hex_ok = true;
        for (char c : cls.substr(message_class_prefix_len)) {
          int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
          if (v < 0) hex_ok = false;
          micros = (micros << 4) | static_cast<std::uint64_t>(v < 0 ? 0 : v);
        }
        // Only stamps the clock can hold (int64 ns): a larger value would overflow the conversion.
        constexpr auto max_micros = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(nudge::duration::max()).count());
        if (hex_ok && micros <= max_micros) n.event.created_at = time_point(std::chrono::microseconds(micros));
      }
      visitor.on_new_mail(n);
    } else {
      return result::bad("unknown ROP id in response");
    }
    ++rops;
  }
  if (!r.ok()) return result::bad("ROP list truncated");
  return result::ok(rops, h.consumed);
}

}  // namespace nudge::protocol::rop
