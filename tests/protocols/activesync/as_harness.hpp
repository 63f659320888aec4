#pragma once
// A tiny in-memory network for the ActiveSync cores in test-controlled time (as
// tests/protocols/pollbus/bus_harness.hpp):
// one server core, any number of client cores and raw "peer" connections the test
// writes bytes into itself. Every segment takes `one_way` to arrive; TCP keeps
// order (a close arrives after the bytes sent before it).
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "nudge/engine/session.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/activesync/client_core.hpp"
#include "nudge/activesync/family.hpp"
#include "nudge/activesync/server_core.hpp"

namespace nudge::activesync::testing {

using namespace std::chrono_literals;

class as_harness {
 public:
  static constexpr std::size_t server_node = static_cast<std::size_t>(-1);

  explicit as_harness(server_config cfg = {}, duration one_way = 1ms) : one_way_(one_way) { restart_server(cfg); }

  /// A fresh server core at the same address (a restarted server): every
  /// connection to the old one is lost.
  void restart_server(server_config cfg) {
    std::vector<std::pair<std::size_t, engine::connection_id>> lost;
    for (const auto& [sid, l] : links_)
      if (l.open && l.client != peer_client) lost.push_back({l.client, l.client_conn});
    links_.clear();
    server_ = std::make_unique<server_core>(cfg);
    server_->start(now_);
    collect_server();
    for (const auto& [c, conn] : lost) deliver_client(c, engine::closed{conn});
  }

  /// A client for `mailbox` with the given heartbeat policy; it starts at `start` (default: now).
  client_core& add_client(std::string mailbox, heartbeat_policy policy = {}, client_config cfg = {},
                          std::optional<time_point> start = std::nullopt) {
    cfg.server = engine::ip_endpoint::v4(10, 0, 0, 1, 443);
    cfg.device.host = "mail.example.com";
    cfg.device.user = mailbox;
    cfg.device.device_id = device_id_of(mailbox);
    cfg.policy = policy;
    metrics_.push_back(std::make_unique<metrics::client_metrics>());
    clients_.push_back(std::make_unique<client_core>(cfg, *metrics_.back()));
    started_.push_back(false);
    start_at_.push_back(start.value_or(now_));
    return *clients_.back();
  }
  /// "Something changed" in `mailbox`, and whatever the server sends for it.
  void inject(std::string_view mailbox) {
    server_->inject_event(now_, mailbox);
    collect_server();
  }
  /// From now on the server's bytes to client connections vanish (a NAT that forgot them).
  void blackhole(bool on) { blackhole_ = on; }
  client_core& client(std::size_t i) { return *clients_[i]; }
  metrics::client_metrics& metrics(std::size_t i) { return *metrics_[i]; }
  server_core& server() { return *server_; }
  time_point now() const { return now_; }

  /// A raw connection to the server, for hostile or hand-made requests.
  engine::connection_id open_peer() {
    const engine::connection_id sid = next_sid_++;
    links_[sid] = {peer_client, 0, true};
    server_->handle(now_, engine::accepted{0, sid, engine::ip_endpoint::v4(10, 0, 0, 99, 4000)});
    collect_server();
    peer_bytes_[sid];
    return sid;
  }
  void peer_send(engine::connection_id sid, std::string_view bytes) {
    push(now_ + one_way_, server_node, sid, engine::stream_bytes{sid, {}}, byte_buffer(bytes.begin(), bytes.end()));
  }
  /// What the server sent a peer connection so far, and whether it closed it.
  const std::string& peer_received(engine::connection_id sid) { return peer_bytes_[sid]; }
  bool peer_closed(engine::connection_id sid) const { return !links_.at(sid).open; }

  /// Runs every event and deadline up to `until`.
  void run_until(time_point until) {
    for (;;) {
      time_point t = queue_.empty() ? never : std::get<0>(queue_.top());
      std::size_t who = server_node;
      bool is_timer = false;
      if (server_->next_deadline() < t) t = server_->next_deadline(), is_timer = true, who = server_node;
      for (std::size_t i = 0; i < clients_.size(); ++i) {
        const time_point d = started_[i] ? clients_[i]->next_deadline() : start_at_[i];
        if (d < t) t = d, is_timer = true, who = i;
      }
      if (t > until || t == never) break;
      now_ = std::max(now_, t);
      if (is_timer) {
        if (who == server_node) {
          server_->handle(now_, engine::timer{});
          collect_server();
        } else if (!started_[who]) {
          started_[who] = true;
          clients_[who]->start(now_);
          collect_client(who);
        } else {
          clients_[who]->handle(now_, engine::timer{});
          collect_client(who);
        }
        continue;
      }
      auto [at, seq, target, conn, ev, bytes] = queue_.top();
      queue_.pop();
      if (auto* s = std::get_if<engine::stream_bytes>(&ev)) s->bytes = bytes;
      if (target == server_node) {
        const auto it = links_.find(conn);
        if (it == links_.end()) continue;  // a connection of a server that restarted
        if (std::holds_alternative<engine::closed>(ev)) it->second.open = false;
        server_->handle(now_, ev);
        collect_server();
      } else {
        deliver_client(target, ev);
      }
    }
    now_ = std::max(now_, until);
  }
  void run_for(duration d) { run_until(now_ + d); }

 private:
  static constexpr std::size_t peer_client = static_cast<std::size_t>(-2);
  struct link_state {
    std::size_t client;
    engine::connection_id client_conn;
    bool open;
  };
  using item = std::tuple<time_point, std::uint64_t, std::size_t, engine::connection_id, engine::event, byte_buffer>;
  struct later {
    bool operator()(const item& a, const item& b) const {
      return std::tie(std::get<0>(a), std::get<1>(a)) > std::tie(std::get<0>(b), std::get<1>(b));
    }
  };

  void push(time_point at, std::size_t target, engine::connection_id conn, engine::event ev, byte_buffer bytes = {}) {
    queue_.emplace(at, seq_++, target, conn, std::move(ev), std::move(bytes));
  }

  void deliver_client(std::size_t c, const engine::event& ev) {
    clients_[c]->handle(now_, ev);
    collect_client(c);
  }

  std::optional<engine::connection_id> server_conn_of(std::size_t c, engine::connection_id conn) const {
    for (const auto& [sid, l] : links_)
      if (l.client == c && l.client_conn == conn && l.open) return sid;
    return std::nullopt;
  }

  void collect_client(std::size_t c) {
    auto acts = std::move(clients_[c]->actions());
    clients_[c]->actions().clear();
    for (auto& a : acts) {
      if (auto* k = std::get_if<engine::connect>(&a)) {
        const engine::connection_id sid = next_sid_++;
        links_[sid] = {c, k->conn, true};
        server_->handle(now_, engine::accepted{0, sid, engine::ip_endpoint::v4(10, 1, 0, 1, 5000)});
        collect_server();
        push(now_, c, k->conn, engine::connected{k->conn, engine::ip_endpoint::v4(192, 168, 0, 2, 5000)});
      } else if (auto* s = std::get_if<engine::send>(&a)) {
        if (const auto sid = server_conn_of(c, s->conn))
          push(now_ + one_way_, server_node, *sid, engine::stream_bytes{*sid, {}}, std::move(s->bytes));
      } else if (auto* x = std::get_if<engine::close>(&a)) {
        if (const auto sid = server_conn_of(c, x->conn)) {
          links_[*sid].open = false;
          push(now_ + one_way_, server_node, *sid, engine::closed{*sid});
        }
      }
    }
  }

  void collect_server() {
    auto acts = std::move(server_->actions());
    server_->actions().clear();
    for (auto& a : acts) {
      if (auto* s = std::get_if<engine::send>(&a)) {
        const auto it = links_.find(s->conn);
        if (it == links_.end() || !it->second.open) continue;
        if (it->second.client == peer_client) {
          peer_bytes_[s->conn].append(s->bytes.begin(), s->bytes.end());
          continue;
        }
        if (blackhole_) continue;
        const auto conn = it->second.client_conn;
        push(now_ + one_way_, it->second.client, conn, engine::stream_bytes{conn, {}}, std::move(s->bytes));
      } else if (auto* x = std::get_if<engine::close>(&a)) {
        const auto it = links_.find(x->conn);
        if (it == links_.end() || !it->second.open) continue;
        it->second.open = false;
        if (it->second.client != peer_client)
          push(now_ + one_way_, it->second.client, it->second.client_conn, engine::closed{it->second.client_conn});
      }
    }
  }

  duration one_way_;
  bool blackhole_ = false;
  time_point now_{};
  std::uint64_t seq_ = 0;
  engine::connection_id next_sid_ = 1;
  std::unique_ptr<server_core> server_;
  std::vector<std::unique_ptr<client_core>> clients_;
  std::vector<std::unique_ptr<metrics::client_metrics>> metrics_;
  std::vector<bool> started_;
  std::vector<time_point> start_at_;
  std::map<engine::connection_id, link_state> links_;
  std::map<engine::connection_id, std::string> peer_bytes_;
  std::priority_queue<item, std::vector<item>, later> queue_;
};

}  // namespace nudge::activesync::testing
