#pragma once
// The notifier's protocol engine, sans-IO: it owns every EMSMDB and
// AsyncEMSMDB session, mailbox queues and timers, takes (now, bytes) from a
// driver and leaves outputs (TCP bytes, datagrams, closes, notices) in a queue
// the driver drains. It never touches a socket or reads a clock, so the Asio
// driver and the virtual-time driver run exactly this code.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "nudge/emsmdb/family.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"

namespace nudge::notifier {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;

/// Where a ping goes.
enum class callback_policy {
  legacy,    // the SOCKADDR the client registered, as Exchange did (breaks behind NAT)
  peer,      // the registered port on the address the TCP session came from
  verified,  // the source of the client's reachability cookie, once it arrived
};
std::string_view to_string(callback_policy p);
std::optional<callback_policy> parse_callback_policy(std::string_view s);

struct notifier_config {
  std::uint32_t polls_max_ms = 60000;            // pcmsPollsMax returned by EcDoConnectEx
  duration ping_resend = std::chrono::seconds(60);  // resend while details stay unfetched
  duration async_hold = std::chrono::minutes(5);    // EcDoAsyncWaitEx hold
  callback_policy policy = callback_policy::legacy;
  bool push_enabled = true;   // EcRRegisterPushNotification answers ecNotSupported when false
  bool async_enabled = true;  // EcDoAsyncConnectEx answers ecRejected when false
  /// Real traffic may only go to loopback: datagrams to any other address are
  /// refused and counted unless this is set (the virtual driver sets it: its
  /// addresses never reach a socket).
  bool allow_non_loopback = false;
  std::uint16_t tcp_port = 0;  // shown in bind_ack's secondary address
  std::size_t max_pending_per_mailbox = 100000;
  metrics::wire_model wire;
};

/// Identifies a connection: (generation << 32) | slot. The slot (low 32 bits) is
/// dense and reused, so drivers may index their own tables with it.
using connection_id = std::uint64_t;
inline std::uint32_t connection_slot(std::uint64_t id) { return static_cast<std::uint32_t>(id & 0xFFFFFFFFu); }
using mailbox_id = std::uint32_t;

struct tcp_send {
  connection_id conn;
  byte_buffer bytes;
};
struct udp_send {
  ip_endpoint to;
  byte_buffer bytes;
};
struct close_connection {
  connection_id conn;
  std::string reason;
};
struct notice {
  std::string text;
};
using output = std::variant<tcp_send, udp_send, close_connection, notice>;

struct notifier_stats {
  std::uint64_t connections_opened = 0;
  std::uint64_t connections_closed = 0;  // by the peer or the core
  std::uint64_t connections_dropped_malformed = 0;
  std::uint64_t pdus_received = 0;  // fragments count one each
  std::uint64_t fragmented_requests = 0;  // requests that came in more than one fragment
  std::uint64_t fragmented_responses = 0;  // responses cut to the client's max_recv_frag
  std::uint64_t requests_too_large = 0;  // reassembly refused: stub over emsmdb::max_request_stub
  std::uint64_t faults_sent = 0;
  std::uint64_t binds_rejected = 0;
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_disconnected = 0;  // by EcDoDisconnect
  std::uint64_t registrations = 0;
  std::uint64_t registrations_rejected = 0;
  std::uint64_t datagrams_sent = 0;  // first pings and resends
  std::uint64_t datagrams_resent = 0;
  std::uint64_t datagrams_refused = 0;       // target outside loopback and not allowed
  std::uint64_t datagrams_unreachable = 0;   // `verified` policy, no cookie yet
  std::uint64_t datagrams_received = 0;
  std::uint64_t cookies_accepted = 0;
  std::uint64_t datagrams_ignored = 0;  // anything that is not a valid cookie
  std::uint64_t events_generated = 0;
  std::uint64_t events_fetched = 0;
  std::uint64_t events_dropped = 0;  // mailbox queue full
  std::uint64_t rpc_ext2_calls = 0;
  std::uint64_t pending_sent = 0;  // responses that carried RopPending
  std::uint64_t async_waits = 0;
  std::uint64_t async_waits_rejected = 0;
  std::uint64_t async_timeouts = 0;
  std::uint64_t async_completed = 0;
  metrics::traffic_meter traffic;  // as the server encodes/decodes it (no pure-ACK estimate)
};

class notifier_core {
 public:
  explicit notifier_core(notifier_config cfg);

  // ---- inputs from the driver ----
  connection_id open_connection(time_point now, const ip_endpoint& peer);
  void receive(time_point now, connection_id conn, bytes_view bytes);
  void connection_closed(time_point now, connection_id conn);
  void receive_datagram(time_point now, const ip_endpoint& from, bytes_view bytes);
  void on_timer(time_point now);

  // ---- workload ----
  /// Finds or creates the mailbox a user DN logs on to.
  mailbox_id mailbox(std::string_view user_dn);
  /// "Something changed": queues NewMail details and signals the sessions.
  protocol::rop::event_stamp inject_event(time_point now, mailbox_id mb);
  std::size_t mailbox_count() const { return mailboxes_.size(); }
  const std::string& mailbox_name(mailbox_id mb) const { return mailboxes_[mb].name; }
  std::uint64_t events_generated(mailbox_id mb) const { return mailboxes_[mb].generated; }
  std::uint64_t events_fetched(mailbox_id mb) const { return mailboxes_[mb].fetched; }
  std::size_t events_pending(mailbox_id mb) const { return mailboxes_[mb].pending.size(); }

  // ---- outputs ----
  time_point next_deadline();
  /// Outputs produced since the last call; the driver moves them out and clears.
  std::vector<output>& outputs() { return out_; }

  const notifier_stats& stats() const { return stats_; }
  const notifier_config& config() const { return cfg_; }
  /// The port bind_ack names as the secondary address: the one a driver
  /// actually bound when the configuration asked for any (0).
  void set_tcp_port(std::uint16_t port) { cfg_.tcp_port = port; }
  std::size_t open_connections() const { return open_connections_; }
  /// Stub bytes held for requests still arriving in fragments, over all
  /// connections (each at most emsmdb::max_request_stub).
  std::size_t reassembly_bytes_held() const;

 private:
  enum class interface_kind : std::uint8_t { none, emsmdb, async_emsmdb };
  struct request_fragments {
    /// The request in progress, joined up to emsmdb::max_request_stub.
    protocol::dcerpc::stub_reassembler reassembly{protocol::emsmdb::max_request_stub};
    std::size_t bytes = 0;  // PDU bytes of its fragments so far (for the traffic counters)
    /// A call refused as too large: its remaining fragments are skipped, not held.
    bool skipping = false;
    std::uint32_t skipping_call_id = 0;
  };
  struct connection {
    bool live = false;
    std::uint32_t generation = 0;
    ip_endpoint peer;
    protocol::dcerpc::stream_framer rx;  // received bytes, cut into PDUs
    interface_kind bound = interface_kind::none;
    std::uint16_t context_id = 0;
    /// What bind negotiated: responses longer than this go out in fragments.
    std::uint16_t max_xmit_frag = protocol::dcerpc::default_max_frag;
    std::vector<std::uint32_t> sessions;  // sessions created on this connection
    /// Set only while a request arrives in fragments or the rest of a refused
    /// one is skipped (most connections never need it).
    std::unique_ptr<request_fragments> fragments;
  };
  struct session {
    bool live = false;
    std::uint32_t generation = 0;
    mailbox_id mb = 0;
    connection_id conn = 0;
    // push registration
    bool registered = false;
    protocol::push_context context;
    ip_endpoint registered_target;  // as decoded from the SOCKADDR
    ip_endpoint verified_target;
    bool verified = false;
    bool refusal_reported = false;
    time_point resend_at = never;
    // async
    bool has_async = false;
    bool wait_held = false;
    connection_id wait_conn = 0;
    std::uint32_t wait_call_id = 0;
    std::uint16_t wait_context_id = 0;
    time_point wait_deadline = never;
    time_point last_ext2{};
  };
  struct mailbox_state {
    std::string name;
    std::deque<protocol::rop::event_stamp> pending;
    std::vector<std::uint32_t> sessions;
    std::uint64_t generated = 0;
    std::uint64_t fetched = 0;
  };
  enum class timer_kind : std::uint8_t { resend, wait_timeout };
  struct timer_entry {
    time_point at;
    std::uint32_t session;
    timer_kind kind;
    bool operator>(const timer_entry& o) const { return at > o.at; }
  };

  void process_pdu(time_point now, connection_id id, connection& c, const protocol::dcerpc::pdu& p, std::size_t size);
  void handle_bind(connection_id id, connection& c, const protocol::dcerpc::bind_pdu& b);
  void handle_request(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r,
                      const metrics::traffic_cell& rx);
  void handle_request_fragment(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r,
                               std::size_t size);
  void do_connect(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r);
  void do_disconnect(connection_id id, connection& c, const protocol::dcerpc::request_pdu& r);
  void do_register(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r);
  void do_rpc_ext2(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r,
                   const metrics::traffic_cell& rx);
  void do_async_connect(connection_id id, connection& c, const protocol::dcerpc::request_pdu& r);
  void do_async_wait(time_point now, connection_id id, connection& c, const protocol::dcerpc::request_pdu& r);
  void send_fault(connection_id id, const connection& c, std::uint32_t call_id, std::uint32_t status);
  void send_pdu(connection_id id, byte_buffer bytes, protocol::emsmdb::message_kind kind);
  void complete_wait(session& s, std::uint32_t flags_out, std::uint32_t rc);
  void send_ping(time_point now, std::uint32_t index, bool resend);
  void close_session(std::uint32_t index);
  void drop_connection(connection_id id, std::string reason);
  void arm(time_point at, std::uint32_t session, timer_kind kind);

  connection* find_connection(connection_id id);
  session* find_session(const protocol::emsmdb::context_handle& h, bool async_handle);
  protocol::emsmdb::context_handle make_handle(std::uint32_t index, bool async_handle) const;

  notifier_config cfg_;
  notifier_stats stats_;
  std::vector<output> out_;
  // Connection ids are (generation << 32 | slot): slots are reused, stale ids never match.
  std::vector<connection> connections_;
  std::vector<std::uint32_t> free_connections_;
  std::size_t open_connections_ = 0;
  std::vector<session> sessions_;
  std::vector<std::uint32_t> free_sessions_;
  std::vector<mailbox_state> mailboxes_;
  // Transparent: looked up by string_view.
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, mailbox_id, name_hash, std::equal_to<>> mailbox_index_;
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<>> timers_;
  std::uint64_t next_event_id_ = 1;
};

}  // namespace nudge::notifier
