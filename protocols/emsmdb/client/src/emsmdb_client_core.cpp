#include "nudge/client/emsmdb_client_core.hpp"

#include <string>
#include <utility>
#include <variant>

namespace nudge::client {

emsmdb_client_core::emsmdb_client_core(client_config cfg, client_metrics& metrics, engine::ip_endpoint server)
    : session_(std::move(cfg), metrics), m_(metrics), server_(server) {}

std::optional<channel> emsmdb_client_core::channel_of(engine::connection_id c) {
  if (c == main_connection) return channel::main;
  if (c == async_connection) return channel::async;
  return std::nullopt;
}

void emsmdb_client_core::set_observer(engine::transport_observer* o) {
  tap_ = o ? std::make_unique<forward_acks>(o) : nullptr;
  session_.set_tap(tap_.get());
}

void emsmdb_client_core::start(time_point) {
  needed_ = main_up;
  actions_.push_back(engine::connect{main_connection, server_});
  if (session_.needs_async_channel()) {
    needed_ |= async_up;
    actions_.push_back(engine::connect{async_connection, server_});
  }
  if (session_.needs_udp()) {
    needed_ |= udp_up;
    actions_.push_back(engine::bind_udp{push_socket, 0});
  }
}

void emsmdb_client_core::begin(time_point now) {
  started_ = true;
  session_.start(now);
  collect();
}

void emsmdb_client_core::give_up(std::string why) {
  if (dead_ || started_) return;
  dead_ = true;
  ++m_.clients_started;
  ++m_.clients_failed;
  for (channel ch : {channel::main, channel::async})
    if (up_ & (ch == channel::main ? main_up : async_up)) actions_.push_back(engine::close{connection_of(ch), why});
  actions_.push_back(engine::notice{"client not started: " + why});
}

void emsmdb_client_core::handle(time_point now, const engine::event& e) {
  if (dead_) return;
  if (!started_) {
    if (auto* c = std::get_if<engine::connected>(&e)) {
      if (auto ch = channel_of(c->conn)) up_ |= *ch == channel::main ? main_up : async_up;
    } else if (auto* u = std::get_if<engine::udp_bound>(&e)) {
      if (u->socket == push_socket) {
        session_.set_callback_address(u->local);
        up_ |= udp_up;
      }
    } else if (auto* r = std::get_if<engine::refused>(&e)) {
      return give_up("connect to " + server_.to_string() + ": " + r->reason);
    } else if (std::holds_alternative<engine::closed>(e)) {
      return give_up("the notifier closed a connection before the client started");
    }
    if ((up_ & needed_) == needed_) begin(now);
    return;
  }
  client_session& s = session_;
  std::visit(
      [&](const auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, engine::stream_bytes>) {
          if (auto ch = channel_of(ev.conn)) s.receive(now, *ch, ev.bytes);
        } else if constexpr (std::is_same_v<T, engine::datagram>) {
          s.receive_datagram(now, ev.from, ev.bytes);
        } else if constexpr (std::is_same_v<T, engine::timer>) {
          s.on_timer(now);
        } else if constexpr (std::is_same_v<T, engine::closed>) {
          if (auto ch = channel_of(ev.conn)) s.channel_closed(now, *ch);
        }
        // connected / udp_bound again, accepted, listening: nothing to do.
      },
      e);
  collect();
}

void emsmdb_client_core::collect() {
  for (auto& o : session_.outputs()) {
    if (auto* t = std::get_if<tcp_send>(&o))
      actions_.push_back(engine::send{connection_of(t->ch), std::move(t->bytes)});
    else if (auto* u = std::get_if<udp_send>(&o))
      actions_.push_back(engine::send_datagram{push_socket, u->to, std::move(u->bytes)});
  }
  session_.outputs().clear();
}

time_point emsmdb_client_core::next_deadline() const { return started_ ? session_.next_deadline() : never; }

void emsmdb_client_core::finish(time_point now) {
  if (started_) session_.finish(now);
}

}  // namespace nudge::client
