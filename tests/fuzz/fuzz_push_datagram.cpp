// fuzz_push_datagram: what a client does with every datagram (push_context::matches)
// and what the notifier does with every datagram (decode_reachability_cookie).
// Input: byte 0 = length of the registered context (0..31; > 16 must be refused
// by assign), then the context, then the datagram.
#include <algorithm>
#include <cstdint>

#include "fuzz_common.hpp"
#include "nudge/protocol/push_datagram.hpp"

using namespace nudge::protocol;
using nudge::fuzz::same_bytes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t ctx_len = std::min<std::size_t>(data[0] % 32, size - 1);
  const bytes_view blob(data + 1, ctx_len);
  const bytes_view datagram(data + 1 + ctx_len, size - 1 - ctx_len);

  // ---- the client's side ----
  push_context ctx;
  const bool assigned = ctx.assign(blob);
  NUDGE_FUZZ_CHECK(assigned == (blob.size() <= max_push_context), "assign must refuse exactly the blobs over 16 bytes");
  NUDGE_FUZZ_CHECK(validate_push_context_size(blob.size()) == (assigned ? ec::success : ec::too_big),
                   "validate_push_context_size disagrees with assign");
  if (assigned) {
    NUDGE_FUZZ_CHECK(same_bytes(ctx.view(), blob), "the stored context differs from the blob");
    NUDGE_FUZZ_CHECK(ctx.matches(encode_push_datagram(ctx)), "a context does not match its own datagram");
  } else {
    NUDGE_FUZZ_CHECK(ctx.empty(), "a refused blob was stored");
  }
  // Reference: a datagram matches iff it is byte-for-byte the context.
  NUDGE_FUZZ_CHECK(ctx.matches(datagram) == same_bytes(ctx.view(), datagram), "matches() disagrees with equality");

  // ---- the notifier's side ----
  auto c = decode_reachability_cookie(datagram);
  if (c.complete()) {
    NUDGE_FUZZ_CHECK(c.consumed == datagram.size(), "a cookie decoded from part of the datagram");
    NUDGE_FUZZ_CHECK(c.value.context.size() <= max_push_context, "a cookie context over 16 bytes");
    byte_buffer again;
    encode_reachability_cookie(again, c.value.notification_handle, c.value.context);
    NUDGE_FUZZ_CHECK(same_bytes(again, datagram), "cookie round trip changed the bytes");
  } else {
    NUDGE_FUZZ_CHECK(c.malformed() && !c.reason.empty(), "a cookie is complete or malformed, with a reason");
  }
  // Every cookie a client can send is accepted, with its fields intact.
  if (assigned && datagram.size() >= 4) {
    const std::uint32_t handle = static_cast<std::uint32_t>(datagram[0] | (datagram[1] << 8) | (datagram[2] << 16)) |
                                 (static_cast<std::uint32_t>(datagram[3]) << 24);
    byte_buffer cookie;
    encode_reachability_cookie(cookie, handle, ctx.view());
    auto c2 = decode_reachability_cookie(cookie);
    NUDGE_FUZZ_CHECK(c2.complete(), "a client's cookie is refused");
    NUDGE_FUZZ_CHECK(c2.value.notification_handle == handle, "cookie handle changed");
    NUDGE_FUZZ_CHECK(ctx.matches(c2.value.context), "cookie context changed");
  }
  return 0;
}
