#pragma once
// The UDP "ping": its payload is exactly the rgbContext the client registered,
// no header, no length (MS-OXCRPC 3.1.4.5). At most 16 bytes.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"
#include "nudge/protocol/identifiers.hpp"

namespace nudge::protocol {

inline constexpr std::size_t max_push_context = 16;

/// A registered context, stored inline (no allocation per registration).
class push_context {
 public:
  push_context() = default;
  /// Fails (returns false) when the blob is longer than 16 bytes: ecTooBig.
  bool assign(bytes_view blob) {
    if (blob.size() > max_push_context) return false;
    size_ = static_cast<std::uint8_t>(blob.size());
    std::copy(blob.begin(), blob.end(), bytes_.begin());
    return true;
  }
  bytes_view view() const { return {bytes_.data(), size_}; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// What a client does with every datagram: compare it with its blob.
  bool matches(bytes_view datagram) const {
    return datagram.size() == size_ && std::equal(datagram.begin(), datagram.end(), bytes_.begin());
  }

 private:
  std::array<std::uint8_t, max_push_context> bytes_{};
  std::uint8_t size_ = 0;
};

/// The status the server returns for a context of this size.
inline std::uint32_t validate_push_context_size(std::size_t size) {
  return size > max_push_context ? ec::too_big : ec::success;
}

/// The datagram's payload for a registration: the context itself.
inline bytes_view encode_push_datagram(const push_context& ctx) { return ctx.view(); }

}  // namespace nudge::protocol

namespace nudge::protocol {

// ---- nudge's reachability cookie (an extension, not Exchange's) ---------------
// Under the `verified` callback policy a client proves that its UDP socket can
// be reached by sending, from that socket to the notifier's UDP port:
//   "NUDGEVFY" | u32 hNotification (little-endian) | the registered context.
// The notifier then pushes to the source address it saw, which is the NAT's
// mapping, and the outbound packet opened the pinhole. Re-sent as a keepalive.
inline constexpr std::string_view cookie_magic = "NUDGEVFY";

struct reachability_cookie {
  std::uint32_t notification_handle = 0;
  bytes_view context;
};

inline void encode_reachability_cookie(byte_buffer& out, std::uint32_t notification_handle, bytes_view context) {
  byte_writer w(out);
  w.bytes(as_bytes(cookie_magic));
  w.u32(notification_handle);
  w.bytes(context);
}

/// Malformed for anything that is not a cookie (wrong magic, short, context > 16).
inline decoded<reachability_cookie> decode_reachability_cookie(bytes_view in) {
  using result = decoded<reachability_cookie>;
  byte_reader r(in);
  auto magic = r.bytes(cookie_magic.size());
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), cookie_magic.begin())) return result::bad("not a nudge cookie");
  reachability_cookie c;
  c.notification_handle = r.u32();
  if (!r.ok()) return result::bad("cookie truncated");
  if (r.remaining() > max_push_context) return result::bad("cookie context longer than 16 bytes");
  c.context = r.bytes(r.remaining());
  return result::ok(c, in.size());
}

}  // namespace nudge::protocol
