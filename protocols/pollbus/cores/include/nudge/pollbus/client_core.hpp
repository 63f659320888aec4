#pragma once
// The bus's client core on the session contract: the seed's WinForm client,
// sans-IO. Its state machine is the seed's PollModeOptions: it starts in
// Register (sends a RegisterMessage naming its mailbox in UserInfo), polls
// with EmptyMessages once registered, and goes back to Register when the
// server says so (PollModeMessage Register: a restarted server forgot it) or
// on any error (the seed's catch block). It starts at one poll per
// `initial_interval` (about 15 s) and adopts every PollIntervalMessage.
//
// Each poll is one HTTP POST (nudge/pollbus/http_binding.hpp), SOAP or JSON;
// with `Expect: 100-continue` (.NET's default) the head goes first and the
// body follows the server's `100 Continue`. With keep-alive the connection
// is reused; without, each poll opens a connection and closes it after the
// response (the TCP setup and teardown are counted per poll).
//
// Counting (client_metrics, indexed by nudge/pollbus/family.hpp): every
// segment's bytes per traffic kind with the wire model's headers, handshakes,
// teardowns and pure-ACK estimates; the latency of each ChatMessage as
// now − its TimeStamp; polls that carried nothing either way as wasted.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/pollbus/codec.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/pollbus/messages.hpp"
#include "nudge/protocol/byte_io.hpp"

namespace nudge::pollbus {

using protocol::byte_buffer;
using protocol::bytes_view;

struct client_config {
  engine::ip_endpoint server;
  std::string host;                // the Host field; empty: the server's address
  std::string path = "/Bus.asmx";  // the service polled
  encoding enc = encoding::soap;
  bool keep_alive = true;
  bool expect_continue = true;
  duration initial_interval = std::chrono::seconds(15);
  /// .NET sends the body anyway if no 100 Continue came within this.
  duration continue_timeout = std::chrono::milliseconds(350);
  /// SoapHttpClientProtocol.Timeout's default: a poll without an answer is an error.
  duration response_timeout = std::chrono::seconds(100);
  guid agent_id{};
  std::string computer_name;
  std::string user_info;  // the mailbox
  metrics::wire_model wire;
  /// Optional (captures): told each estimated pure ACK in time order; the
  /// core then settles pending ACKs at their deadlines (the same ACKs, counted
  /// the same, but reported when they are sent).
  engine::transport_observer* observer = nullptr;
};

/// AgentId of a mailbox: a version-4-shaped GUID derived from its name, so
/// the same mailbox is the same agent in every run and driver.
guid agent_id_of(std::string_view mailbox);

/// A client's configuration from the family's keys and its context.
client_config client_config_of(const engine::client_context& ctx);

class client_core final : public engine::session {
 public:
  client_core(client_config cfg, metrics::client_metrics& m);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }
  void finish(time_point now) override;

  poll_mode mode() const { return mode_; }
  duration interval() const { return interval_; }
  const client_config& config() const { return cfg_; }
  /// A message to send on the next poll instead of an EmptyMessage (the
  /// seed's PostMessage); it is taken when the poll goes out.
  void post(message m) { outbox_.push_back(std::move(m)); }

 private:
  enum class phase : std::uint8_t { idle, connecting, awaiting_continue, awaiting_response };
  using direction = metrics::direction;

  void begin_poll(time_point now);
  void send_request(time_point now);
  void send_bytes(time_point now, byte_buffer bytes, message_kind k, metrics::traffic_cell* wasted);
  void on_bytes(time_point now, bytes_view bytes);
  void on_final(time_point now, const http::response& r, std::size_t wire_size);
  void process(time_point now, const std::vector<message>& messages);
  void error(time_point now, counter c, std::string_view why);
  void close_connection(time_point now, bool by_us);
  void count_ack(direction d, time_point at);
  void schedule_next(time_point now) { next_poll_ = now + interval_; }

  client_config cfg_;
  metrics::client_metrics& m_;
  std::vector<engine::action> actions_;
  poll_mode mode_ = poll_mode::register_agent;
  phase phase_ = phase::idle;
  duration interval_;
  time_point next_poll_ = never;
  time_point phase_deadline_ = never;  // continue or response timeout
  bool ready_ = false;                 // registered once (clients_ready)

  // The connection (at most one at a time).
  bool open_ = false;
  engine::connection_id conn_ = 0;
  std::uint64_t conns_made_ = 0;
  std::unique_ptr<http::response_reader> reader_;
  metrics::ack_tracker client_acks_, server_acks_;  // ACKs the client / the server owes

  // The poll in flight.
  message_kind request_kind_ = message_kind::poll;
  bool request_empty_ = false;  // an EmptyMessage (a poll that may be wasted)
  byte_buffer head_, body_;
  metrics::traffic_cell exchange_;  // its bytes so far (wasted_poll_traffic if it found nothing)
  std::vector<message> outbox_;
};

/// The family's client factory (engine::family::make_client).
std::unique_ptr<client_core> make_client(const engine::client_context& ctx);

}  // namespace nudge::pollbus
