#pragma once
// The ActiveSync client core (a phone's Direct Push loop), sans-IO: Ping,
// held by the server; on Status 2 Sync the Inbox, then Ping again; on Status 1
// Ping again; on Status 5 adopt the server's bound. One keep-alive connection.
// The client's HTTP timeout is the heartbeat plus `slack` (NachoCore's 10 s):
// behind a NAT whose TCP idle timeout is shorter than the heartbeat the held
// connection dies silently and the client learns only when that timeout
// passes; it then closes, counts a lost Ping and reconnects.
//
// Heartbeat policies (client modes):
//  - fixed: always `heartbeat`;
//  - adaptive: AOSP Exchange's EasSyncService.runPingLoop (CyanogenMod/
//    android_packages_apps_Exchange, src/com/android/exchange/EasSyncService.java):
//    start at 470 s (8 min − 10 s); after each Status 1 the high-water mark
//    becomes max(mark, heartbeat) and, unless the heartbeat was ever dropped,
//    it grows by 180 s up to 1010 s (17 min − 10 s); after a loss (its watchdog
//    alarm or a reset), if the heartbeat is above both the minimum 290 s
//    (5 min − 10 s) and the high-water mark, it drops by 180 s (not below the
//    minimum) and never grows again.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nudge/activesync/family.hpp"
#include "nudge/activesync/messages.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/traffic.hpp"

namespace nudge::activesync {

struct heartbeat_policy {
  bool adaptive = false;
  duration fixed = std::chrono::seconds(480);
  duration start = std::chrono::seconds(470);
  duration minimum = std::chrono::seconds(290);
  duration maximum = std::chrono::seconds(1010);
  duration step = std::chrono::seconds(180);
};

struct client_config {
  engine::ip_endpoint server;
  device_identity device;
  std::string folder_id = "5";
  heartbeat_policy policy;
  duration slack = std::chrono::seconds(10);           // HTTP timeout = heartbeat + slack
  duration command_timeout = std::chrono::seconds(60);  // Sync
  duration retry_delay = std::chrono::seconds(30);      // after an error answer or a refused connect
  std::uint32_t window_size = 25;
  bool empty_ping = false;  // send an empty body when the heartbeat and folders are the cached ones
  metrics::wire_model wire;
  engine::transport_observer* observer = nullptr;
};

/// A device id for a mailbox: "Appl" and 11 hex digits, the same in every run and driver.
std::string device_id_of(std::string_view mailbox);

client_config client_config_of(const engine::client_context& ctx);

class client_core final : public engine::session {
 public:
  client_core(client_config cfg, metrics::client_metrics& m);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }
  void finish(time_point now) override;

  /// The heartbeat the next Ping asks for.
  duration heartbeat() const { return heartbeat_; }
  const client_config& config() const { return cfg_; }

 private:
  enum class phase : std::uint8_t { idle, connecting, awaiting_ping, awaiting_sync };
  using direction = metrics::direction;

  void begin_ping(time_point now);
  void begin_sync(time_point now);
  void send_request(time_point now);
  void open_connection(time_point now);
  void on_bytes(time_point now, bytes_view bytes);
  void on_answer(time_point now, const http::response& r, std::size_t wire_size);
  void on_ping_answer(time_point now, const ping_response& r);
  void on_lost_ping(time_point now);
  void error(time_point now, counter c);
  void close_connection(time_point now, bool by_us);
  void count_ack(direction d, time_point at);
  void set_heartbeat(duration d);
  void retry_later(time_point now) { next_request_ = now + cfg_.retry_delay; }

  client_config cfg_;
  metrics::client_metrics& m_;
  std::vector<engine::action> actions_;
  phase phase_ = phase::idle;
  time_point deadline_ = never;      // the request's timeout
  time_point next_request_ = never;  // a Ping to send when idle
  bool ready_ = false;

  duration heartbeat_{};
  duration high_water_{};
  bool dropped_ = false;
  bool after_loss_ = false;          // since a lost Ping, until the Sync that follows it
  bool cached_ = false;              // the server holds our heartbeat and folders
  std::string sync_key_ = "1";

  bool open_ = false;
  engine::connection_id conn_ = 0;
  std::uint64_t conns_made_ = 0;
  std::unique_ptr<http::response_reader> reader_;
  metrics::ack_tracker client_acks_, server_acks_;
  message_kind request_kind_ = message_kind::ping;
  byte_buffer request_;
  metrics::traffic_cell exchange_;  // this Ping's bytes so far (wasted if it brings nothing)
};

std::unique_ptr<client_core> make_client(const engine::client_context& ctx);

}  // namespace nudge::activesync
