#include "nudge/client/emsmdb_client_core.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <variant>

#include "nudge/protocol/random.hpp"

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
  why_dead_ = "client not started: " + why;
  ++m_.clients_started;
  ++m_.clients_failed;
  for (channel ch : {channel::main, channel::async})
    if (up_ & (ch == channel::main ? main_up : async_up)) actions_.push_back(engine::close{connection_of(ch), why});
  actions_.push_back(engine::notice{"client not started: " + why});
}

std::string_view emsmdb_client_core::failure() const {
  if (dead_) return why_dead_;
  if (session_.failed()) {
    const std::string_view why = session_.failure();
    return why.empty() ? std::string_view{"the session failed"} : why;
  }
  return {};
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
  // The usual events first, without a visit: bytes and timers are nearly all of them.
  client_session& s = session_;
  if (const auto* b = std::get_if<engine::stream_bytes>(&e)) {
    if (auto ch = channel_of(b->conn)) s.receive(now, *ch, b->bytes);
  } else if (std::holds_alternative<engine::timer>(e)) {
    s.on_timer(now);
  } else if (const auto* d = std::get_if<engine::datagram>(&e)) {
    s.receive_datagram(now, d->from, d->bytes);
  } else if (const auto* c = std::get_if<engine::closed>(&e)) {
    if (auto ch = channel_of(c->conn)) s.channel_closed(now, *ch);
  }
  // connected / udp_bound again, accepted, listening: nothing to do.
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

// ---- the factory ------------------------------------------------------------

std::uint64_t client_seed(std::uint64_t run_seed, std::size_t client) {
  std::uint64_t s = run_seed * 0x9E3779B97F4A7C15ull + client;
  return splitmix64(s);
}

protocol::push_context push_context_for(std::uint64_t run_seed, std::size_t client, std::size_t size) {
  std::array<std::uint8_t, protocol::max_push_context> bytes{};
  const std::size_t n = std::min(size, bytes.size());
  std::uint64_t state = run_seed ^ (0xC0FFEEull + client);
  for (std::size_t k = 0; k < n; ++k) bytes[k] = static_cast<std::uint8_t>(splitmix64(state));
  // The client's index in the first bytes keeps contexts unique per client.
  for (std::size_t k = 0; k < std::min<std::size_t>(n, 4); ++k) bytes[k] = static_cast<std::uint8_t>(client >> (8 * k));
  protocol::push_context c;
  c.assign({bytes.data(), n});
  return c;
}

client_config client_config_of(const engine::client_context& ctx) {
  const engine::settings& k = *ctx.keys;
  client_config c;
  c.mode = static_cast<client_mode>(ctx.mode);
  c.user_dn = ctx.mailbox;
  c.poll_interval = k.span("poll.interval");
  c.poll_jitter = k.boolean("poll.jitter");
  c.context = push_context_for(ctx.seed, ctx.client, static_cast<std::size_t>(k.integer("push.context_size")));
  c.send_cookie = k.boolean("push.cookie");
  c.keepalive_interval = k.span("push.keepalive");
  c.fallback_check_interval = k.span("push.fallback_check");
  c.poll_until_first_ping = k.boolean("push.poll_until_first_ping");
  c.seed = client_seed(ctx.seed, ctx.client);
  c.wire = ctx.wire;
  for (const auto& s : ctx.server.sockets)
    if (s.id == 0) c.notifier_udp = s.at;
  // An observed client settles its ACK estimate eagerly: the same counts, in time order.
  c.eager_acks = ctx.observer != nullptr;
  return c;
}

std::unique_ptr<emsmdb_client_core> make_emsmdb_client(const engine::client_context& ctx) {
  engine::ip_endpoint server;
  for (const auto& l : ctx.server.listeners)
    if (l.id == 0) server = l.at;
  auto core = std::make_unique<emsmdb_client_core>(client_config_of(ctx), *ctx.metrics, server);
  if (ctx.observer) core->set_observer(ctx.observer);
  return core;
}

}  // namespace nudge::client
