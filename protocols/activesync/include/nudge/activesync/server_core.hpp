#pragma once
// The ActiveSync server core (Exchange's Direct Push), sans-IO on the session
// contract. It answers `POST /Microsoft-Server-ActiveSync?Cmd=Ping|Sync&...`:
//  - Ping: holds the request until a watched folder of the user changes
//    (Status 2 with the folders) or the heartbeat passes (Status 1). A
//    HeartbeatInterval outside [min_heartbeat, max_heartbeat] gets Status 5
//    with the bound, more than max_folders folders Status 6 with MaxFolders,
//    a body without HeartbeatInterval and Folders (or a Folder without Id or
//    Class) Status 3, a body that does not read Status 4. An empty body reuses
//    the heartbeat and folders the device sent last ([MS-ASCMD] 3.1.5.8); with
//    nothing cached it is Status 3. A change already pending answers at once.
//    A device's new Ping ends its older held one (Status 1).
//  - Sync: the user's new message headers (one per event) in the Inbox.
// Events (inject_event(mailbox): the mailbox is the user) land in the user's
// Inbox (folder id `inbox_id`). Bad HTTP gets its 4xx and a close; bad
// parameters HTTP 400; no other client notices.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nudge/activesync/messages.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/reader.hpp"

namespace nudge::activesync {

struct server_config {
  std::uint16_t port = 0;
  duration min_heartbeat = std::chrono::seconds(60);    // Exchange 2007/2010's defaults
  duration max_heartbeat = std::chrono::seconds(3540);
  std::uint32_t max_folders = 200;
  std::string inbox_id = "5";
  /// Keep-alive connections idle this long (no request held) are closed (IIS's connectionTimeout).
  duration idle_timeout = std::chrono::seconds(120);
  std::size_t max_pending = 1000;  // new messages kept per user; more are dropped
  http::limits limits{8 * 1024, 64 * 1024};
  std::size_t max_connections = 1 << 20;
};

server_config server_config_of(const engine::settings& keys);

class server_core final : public engine::server_session {
 public:
  explicit server_core(server_config cfg);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }

  std::uint64_t inject_event(time_point now, std::string_view mailbox) override;
  mailbox_handle_t mailbox_handle(std::string_view mailbox) override;
  std::uint64_t inject_event(time_point now, mailbox_handle_t mailbox) override;
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override;
  std::size_t mailbox_count() const override { return users_.size(); }
  std::string_view mailbox_name(std::size_t index) const override { return users_[index].name; }
  std::vector<mailbox_backlog> backlog(std::size_t max, bool& truncated) const override;

  std::size_t open_connections() const { return conns_.size(); }
  std::size_t held_pings() const;

 private:
  struct connection {
    http::request_reader reader;
    time_point idle_deadline = never;
    bool keep_alive = true;
    std::uint32_t holding = none;  // the device whose Ping this connection holds
  };
  struct pending_message {
    time_point created;
    std::uint64_t id;
  };
  struct user {
    std::string name;
    std::deque<pending_message> pending;
    std::uint64_t generated = 0, fetched = 0, next_item = 1;
    std::vector<std::uint32_t> devices;
  };
  struct device {
    std::uint32_t user = 0;
    std::string id;
    std::optional<std::uint32_t> heartbeat_s;  // cached from the last Ping
    std::vector<ping_folder> folders;
    engine::connection_id held_conn = 0;
    bool holding = false;
    time_point held_until = never;
    std::uint64_t sync_key = 0;
  };
  static constexpr std::uint32_t none = 0xFFFFFFFFu;

  void on_bytes(time_point now, engine::connection_id conn, bytes_view bytes);
  void drop(engine::connection_id conn, std::string reason);
  void answer(time_point now, engine::connection_id conn, connection& c, http::request& req);
  void ping(time_point now, engine::connection_id conn, connection& c, std::uint32_t dev, std::string_view body);
  byte_buffer sync(time_point now, std::uint32_t dev, std::string_view body);
  void respond(time_point now, engine::connection_id conn, connection& c, const http::response& r);
  void release(time_point now, std::uint32_t dev, const ping_response& r);
  bool watches_inbox(const device& d) const;
  std::uint32_t user_index(std::string_view name);
  std::uint32_t device_index(std::uint32_t user, std::string_view id);
  void arm_idle(time_point now, engine::connection_id conn, connection& c);

  server_config cfg_;
  std::vector<engine::action> actions_;
  std::unordered_map<engine::connection_id, connection> conns_;
  using deadline_entry = std::pair<time_point, std::uint64_t>;  // idle: conn id; held: device | held_tag
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines_;
  std::vector<user> users_;
  std::unordered_map<std::string, std::uint32_t> user_by_name_;
  std::vector<device> devices_;
  std::unordered_map<std::string, std::uint32_t> device_by_key_;

  struct counts {
    std::uint64_t connections = 0, connections_refused = 0, requests = 0, pings = 0, empty_pings = 0, held = 0,
                  status[9] = {}, superseded = 0, syncs = 0, messages_sent = 0, bad_requests = 0, not_found = 0,
                  unknown_commands = 0, events_generated = 0, events_dropped = 0, idle_closes = 0;
  } n_;
};

}  // namespace nudge::activesync
