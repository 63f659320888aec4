#pragma once
// The op codes and value ranges the two session targets read with
// FuzzedDataProvider, shared with make_corpus so its seeds are meaningful scripts.
#include <cstddef>
#include <cstdint>

namespace nudge::fuzz {

// ---- fuzz_notifier_session ---------------------------------------------------------
enum class notifier_op : std::uint8_t {
  raw_chunk,        // slot, blob(max_raw): arbitrary TCP bytes
  bind,             // slot, iface(0..2), ndr_missing(bool), context_id(0..3), second_context(bool),
                    // small_max_recv_frag(bool)[, u16 in 1000..5840], feed
  connect,          // slot, dn_choice(0..4)[, blob(64)], ctx, feed
  register_push,    // slot, handle, context blob(20), sockaddr_choice(0..4)[, port u16 | blob(32)], ctx, feed
  rpc_ext2,         // slot, handle, raw_rgb_in(bool)[, blob(64)], max_out_choice(0..2)[, u32], ctx, feed
  async_connect,    // slot, handle, ctx, feed
  async_wait,       // slot, async handle, flags(u8), ctx, feed
  other_call,       // slot, opnum(0..20), blob(64), ctx, feed
  datagram,         // from(0..2), cookie(bool)[, registration | blob(64)]
  inject_event,     // mailbox, count(1..255)
  timer,            // advance ms (0..600000)
  open_connection,  // peer kind (0..3)
  peer_close,       // slot
  disconnect,       // slot, handle, ctx, feed
  count_
};
inline constexpr std::size_t max_raw = 512;
/// feed() modes: 0 whole, 1 split in two, 2 one byte corrupted, 3 a byte at a
/// time, 4 re-cut into DCE/RPC fragments of max_frag_choice(32..255) bytes.
inline constexpr std::uint8_t feed_modes = 5;
inline constexpr std::size_t max_connections = 8;
inline constexpr std::size_t max_steps = 512;

// ---- fuzz_client_session ---------------------------------------------------------------
enum class client_op : std::uint8_t {
  raw_bytes,  // channel(bool), blob(max_raw)
  reply,      // channel(bool), wrong_call_id(bool), then per outstanding call kind (see the target), feed
  fault,      // channel(bool), status(u32)
  datagram,   // matching(bool)[ | blob(32)]
  timer,      // advance ms (0..600000)
  close,      // channel(bool); only when a second bool is also true (closing ends the session)
  count_
};

}  // namespace nudge::fuzz
