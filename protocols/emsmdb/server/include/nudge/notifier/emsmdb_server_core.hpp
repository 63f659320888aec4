#pragma once
// The EMSMDB notifier on the session contract (nudge/engine/session.hpp): a
// thin adapter that lets any driver run notifier_core through
// engine::server_session. It asks for one TCP listener (DCE/RPC) and one UDP
// socket (pings out, reachability cookies in) at start, maps the driver's
// connection ids onto the core's, and turns the core's outputs into actions.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/clock.hpp"

namespace nudge::notifier {

struct emsmdb_server_config {
  notifier_config core;  // core.tcp_port: the DCE/RPC port to listen on (0: the driver picks)
  std::uint16_t udp_port = 0;  // the ping socket's port (0: the driver picks)
};

class emsmdb_server_core final : public engine::server_session {
 public:
  /// The ids this core names its sockets by in `listen` and `bind_udp`.
  static constexpr engine::listener_id rpc_listener = 0;
  static constexpr engine::socket_id ping_socket = 0;

  explicit emsmdb_server_core(emsmdb_server_config cfg);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override;

  std::uint64_t inject_event(time_point now, std::string_view mailbox) override;
  mailbox_handle_t mailbox_handle(std::string_view mailbox) override { return core_.mailbox(mailbox); }
  std::uint64_t inject_event(time_point now, mailbox_handle_t mailbox) override;
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override;
  std::vector<mailbox_backlog> backlog(std::size_t max, bool& truncated) const override;
  std::size_t mailbox_count() const override { return core_.mailbox_count(); }
  std::string_view mailbox_name(std::size_t index) const override {
    return core_.mailbox_name(static_cast<mailbox_id>(index));
  }

  /// The protocol engine itself, for EMSMDB-specific reports and tests.
  const notifier_core& core() const { return core_; }
  notifier_core& core() { return core_; }
  /// Where the DCE/RPC listener and the ping socket ended up (port 0 until
  /// `listening` / `udp_bound` arrived).
  const ip_endpoint& rpc_address() const { return rpc_address_; }
  const ip_endpoint& ping_address() const { return ping_address_; }

 private:
  /// Connections opened and closed, listeners: not bytes, timers or datagrams.
  [[gnu::noinline]] void handle_rare(time_point now, const engine::event& e);
  /// Moves the core's outputs into actions_, renaming connections.
  void translate_outputs();
  /// The core's id for driver id `driver` (0: none), and setting it (0 forgets).
  connection_id core_id(engine::connection_id driver) const {
    if (driver < dense_ids) return driver < to_core_dense_.size() ? to_core_dense_[driver] : 0;
    return sparse_core_id(driver);
  }
  connection_id sparse_core_id(engine::connection_id driver) const;
  void set_core_id(engine::connection_id driver, connection_id core);

  emsmdb_server_config cfg_;
  // next_deadline() prunes stale timers as it looks: logically const.
  mutable notifier_core core_;
  std::vector<engine::action> actions_;
  // Driver id -> core id for accepted connections; the reverse by the core's
  // dense slot, so the hot path (requests, responses, pings) does no hashing.
  // A driver that numbers connections densely (the virtual one) is served by
  // a vector; sparse ids (a live host's generation|slot) by the map.
  static constexpr engine::connection_id dense_ids = engine::connection_id{1} << 22;
  std::vector<connection_id> to_core_dense_;  // by driver id < dense_ids; 0: none
  std::unordered_map<engine::connection_id, connection_id> to_core_;
  struct driver_name {
    connection_id core = 0;
    engine::connection_id driver = 0;
  };
  std::vector<driver_name> to_driver_;  // by connection_slot(core id)
  ip_endpoint rpc_address_;
  ip_endpoint ping_address_;
};

}  // namespace nudge::notifier
