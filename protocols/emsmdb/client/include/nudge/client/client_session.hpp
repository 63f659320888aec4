#pragma once
// One emulated Outlook-style client, sans-IO. The driver connects its TCP
// channels (main: EMSMDB; async: AsyncEMSMDB, async mode only) and its UDP
// socket, then feeds it (now, bytes) and drains outputs. Modes:
//   poll  - empty EcDoRpcExt2 every interval (optionally 1x-2x jitter, as Outlook did);
//   push  - register a UDP callback, poll until the first datagram arrives, then
//           fetch on each datagram that matches the registered context;
//   async - EcDoAsyncConnectEx, then EcDoAsyncWaitEx and fetch in a loop.
// Datagrams that do not match the context are counted and ignored: a forged or
// random datagram never triggers a fetch and never stops the client.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nudge/emsmdb/family.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/latency_histogram.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::client {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;

enum class client_mode : std::uint8_t { poll, push, async };
inline constexpr std::size_t client_mode_count = 3;
std::string_view to_string(client_mode m);
std::optional<client_mode> parse_client_mode(std::string_view s);

enum class channel : std::uint8_t { main, async };

/// Polls never come closer together than this, whatever the server says.
inline constexpr duration min_poll_interval = std::chrono::milliseconds(100);

/// How a fetched event was signalled to the client.
enum class delivery_path : std::uint8_t { poll, push, async };
inline constexpr std::size_t delivery_path_count = 3;
std::string_view to_string(delivery_path p);

struct client_config {
  client_mode mode = client_mode::poll;
  std::string user_dn;
  /// 0: use the server's pcmsPollsMax.
  duration poll_interval = duration::zero();
  /// Wait U[1x, 2x] the interval between polls, as Outlook did.
  bool poll_jitter = false;
  /// Push: the blob to register (at most 16 bytes) and the SOCKADDR to register
  /// (the client's own UDP address as it sees it, private behind a NAT).
  protocol::push_context context;
  ip_endpoint callback_address;
  /// Push: send a reachability cookie to the notifier's UDP endpoint after
  /// registering (for the `verified` policy), and resend it every
  /// `keepalive_interval` (0: never) to hold a NAT pinhole open.
  bool send_cookie = false;
  ip_endpoint notifier_udp;
  duration keepalive_interval = duration::zero();
  /// Push: keep polling until the first matching datagram (MS-OXCNOTIF 3.2.5.4).
  /// False gives "pure push": trust the registration from the start.
  bool poll_until_first_ping = true;
  /// Push: once relying on pings, still check every this often (0: never). A
  /// check that finds details no ping announced means pings are not getting
  /// through: fall back to polling until a ping arrives again (what Outlook did
  /// behind NAT).
  duration fallback_check_interval = duration::zero();
  std::uint64_t seed = 1;
  metrics::wire_model wire;
  /// Settle each estimated pure ACK at its own time (a timer) instead of at the
  /// next send or receive: the same ACKs and counts, but reported in time order,
  /// which a capture needs.
  bool eager_acks = false;
};

/// The generic counters (nudge/metrics/client_metrics.hpp), indexed by the
/// EMSMDB family's enums (nudge/emsmdb/family.hpp).
using client_metrics = metrics::client_metrics;

struct tcp_send {
  channel ch;
  byte_buffer bytes;
};
struct udp_send {
  ip_endpoint to;
  byte_buffer bytes;
};
using output = std::variant<tcp_send, udp_send>;

/// An optional observer of what the client session estimates but never sends
/// itself: pure ACKs, on either side of its connections. Captures use it to
/// write those packets; counting does not depend on it.
struct session_tap {
  virtual ~session_tap() = default;
  virtual void pure_ack(time_point at, channel ch, metrics::direction d) = 0;
};

class client_session {
 public:
  client_session(client_config cfg, client_metrics& metrics);

  bool needs_async_channel() const { return cfg_.mode == client_mode::async; }
  bool needs_udp() const { return cfg_.mode == client_mode::push; }

  /// Channels are connected: count the handshakes and send the binds.
  void start(time_point now);
  void receive(time_point now, channel ch, bytes_view bytes);
  void receive_datagram(time_point now, const ip_endpoint& from, bytes_view bytes);
  void on_timer(time_point now);
  /// A channel was closed under the client: it stops, counted as failed.
  void channel_closed(time_point now, channel ch);
  /// End of run: settles the ACK estimate (pending ACKs are counted as sent).
  void finish(time_point now);

  time_point next_deadline() const;
  std::vector<output>& outputs() { return out_; }
  void set_tap(session_tap* tap) { tap_ = tap; }
  /// The callback address to register (push), when it is known only after
  /// construction (a driver bound the socket); set before the registration.
  void set_callback_address(const ip_endpoint& a) { cfg_.callback_address = a; }

  bool ready() const { return state_ == state::ready; }
  bool failed() const { return state_ == state::failed; }
  const std::string& failure() const { return failure_; }
  std::uint16_t session_index() const { return session_index_; }
  bool push_confirmed() const { return push_confirmed_; }
  bool polling() const { return next_poll_ != never; }
  const client_config& config() const { return cfg_; }

 private:
  enum class state : std::uint8_t { idle, binding, connecting, setting_up, ready, failed };
  enum class call_kind : std::uint8_t { none, bind, connect, register_push, poll, fetch, async_connect, async_wait };
  struct response_fragments {
    protocol::dcerpc::stub_reassembler reassembly{protocol::emsmdb::max_response_stub};
    std::size_t bytes = 0;  // PDU bytes of the fragments so far
  };
  struct channel_state {
    byte_buffer rx;
    std::uint32_t next_call_id = 1;
    std::uint32_t outstanding_call = 0;
    call_kind outstanding = call_kind::none;
    delivery_path reason = delivery_path::poll;  // why the outstanding fetch was sent
    time_point sent_at{};
    std::size_t request_bytes = 0;  // size of the outstanding request
    metrics::ack_tracker client_acks;  // pure ACKs the client sends
    metrics::ack_tracker server_acks;  // pure ACKs the server sends
    bool bound = false;
    bool open = false;
    /// Set only while a response arrives in fragments (a million clients
    /// should not each carry a reassembly buffer).
    std::unique_ptr<response_fragments> fragments;
  };

  void send_call(time_point now, channel ch, call_kind kind, std::uint16_t opnum, byte_buffer& pdu);
  void send_bind(time_point now, channel ch);
  void send_connect(time_point now);
  void send_register(time_point now);
  void send_ext2(time_point now, call_kind kind, delivery_path reason);
  void send_async_connect(time_point now);
  void send_async_wait(time_point now);
  void send_cookie(time_point now);
  void on_pdu(time_point now, channel ch, bytes_view pdu_bytes);
  /// One whole response (`other` null), or a bind_ack / fault / other PDU, or
  /// a malformed one (`malformed` says why): counted, then answered.
  void on_whole_pdu(time_point now, channel ch, std::uint32_t call_id, bytes_view stub, std::size_t size,
                    const protocol::dcerpc::pdu* other, std::string_view malformed = {});
  void on_response(time_point now, channel ch, call_kind kind, bytes_view stub, std::size_t response_bytes);
  void on_ext2_response(time_point now, call_kind kind, delivery_path reason, bytes_view stub,
                        std::size_t response_bytes);
  void became_ready(time_point now);
  void schedule_poll(time_point now);
  void maybe_send_fetch(time_point now);
  void fail(std::string why);
  void count(protocol::emsmdb::message_kind k, metrics::direction d, std::size_t bytes);
  void count_ack(metrics::direction d, time_point at, channel ch);
  channel_state& chan(channel c) { return channels_[static_cast<std::size_t>(c)]; }

  client_config cfg_;
  client_metrics& m_;
  rng rng_;
  state state_ = state::idle;
  std::string failure_;
  std::array<channel_state, 2> channels_;
  std::vector<output> out_;
  protocol::emsmdb::context_handle cxh_;
  byte_buffer ext2_template_;  // the session's empty EcDoRpcExt2, call_id 0
  protocol::emsmdb::context_handle acxh_;
  std::uint16_t session_index_ = 0;
  std::uint32_t notification_handle_ = 0;
  duration interval_ = duration::zero();
  time_point next_poll_ = never;
  time_point next_keepalive_ = never;
  bool registered_ = false;
  bool push_confirmed_ = false;   // a matching datagram arrived: rely on push
  bool async_active_ = false;
  bool fetch_wanted_ = false;
  delivery_path fetch_reason_ = delivery_path::push;
  bool wait_after_fetch_ = false;
  session_tap* tap_ = nullptr;
};

}  // namespace nudge::client
