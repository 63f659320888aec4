#include "nudge/activesync/client_core.hpp"

#include <algorithm>
#include <cstdio>
#include <variant>

#include "nudge/http/writer.hpp"

namespace nudge::activesync {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

std::uint64_t seconds_of(duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

}  // namespace

std::string device_id_of(std::string_view mailbox) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : mailbox) h = (h ^ c) * 1099511628211ull;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%011llX", static_cast<unsigned long long>(h & 0xFFFFFFFFFFFull));
  return "Appl" + std::string(buf);
}

client_config client_config_of(const engine::client_context& ctx) {
  client_config c;
  const engine::settings& k = *ctx.keys;
  for (const auto& l : ctx.server.listeners)
    if (l.id == 0) c.server = l.at;
  c.device.host = k.text("activesync.host");
  if (c.device.host.empty()) c.device.host = c.server.to_string();
  c.device.user = std::string(user_of_mailbox(ctx.mailbox));
  c.device.device_id = device_id_of(ctx.mailbox);
  c.device.device_type = k.text("activesync.device_type");
  c.device.user_agent = k.text("activesync.user_agent");
  c.device.protocol_version = k.text("activesync.protocol_version");
  c.folder_id = k.text("activesync.folder");
  c.policy.adaptive = ctx.mode == static_cast<std::size_t>(client_mode::adaptive);
  c.policy.fixed = k.span("activesync.heartbeat");
  c.policy.start = k.span("activesync.adaptive_start");
  c.policy.minimum = k.span("activesync.adaptive_min");
  c.policy.maximum = k.span("activesync.adaptive_max");
  c.policy.step = k.span("activesync.adaptive_step");
  c.slack = k.span("activesync.slack");
  c.retry_delay = k.span("activesync.retry_delay");
  c.empty_ping = k.boolean("activesync.empty_ping");
  c.wire = ctx.wire;
  c.observer = ctx.observer;
  return c;
}

std::unique_ptr<client_core> make_client(const engine::client_context& ctx) {
  return std::make_unique<client_core>(client_config_of(ctx), *ctx.metrics);
}

client_core::client_core(client_config cfg, metrics::client_metrics& m) : cfg_(std::move(cfg)), m_(m) {
  m_.fit(delivery_path_count, counter_count);
}

void client_core::set_heartbeat(duration d) {
  // The counter holds the group's sum of current heartbeats: add the difference (mod 2^64).
  m_.add(counter::heartbeat_s, seconds_of(d) - seconds_of(heartbeat_));
  heartbeat_ = d;
}

void client_core::start(time_point now) {
  ++m_.clients_started;
  set_heartbeat(cfg_.policy.adaptive ? cfg_.policy.start : cfg_.policy.fixed);
  begin_ping(now);
}

void client_core::count_ack(direction d, time_point at) {
  if (at == never) return;
  m_.traffic.add(message_kind::tcp_ack, d, cfg_.wire.pure_ack());
  if (cfg_.observer && !cfg_.wire.is_abstract()) cfg_.observer->pure_ack(at, conn_, d);
}

void client_core::begin_ping(time_point now) {
  ping_request p;
  if (!(cfg_.empty_ping && cached_)) {
    p.heartbeat_s = static_cast<std::uint32_t>(seconds_of(heartbeat_));
    p.has_folders = true;
    p.folders.push_back({cfg_.folder_id, "Email"});
  }
  const byte_buffer body = p.heartbeat_s ? encode(p) : byte_buffer{};
  request_ = http::serialize(command_request("Ping", cfg_.device, body));
  request_kind_ = message_kind::ping;
  m_.add(counter::pings);
  exchange_ = {};
  next_request_ = never;
  if (open_) return send_request(now);
  open_connection(now);
}

void client_core::begin_sync(time_point now) {
  sync_request s;
  s.sync_key = sync_key_;
  s.collection_id = cfg_.folder_id;
  s.window_size = cfg_.window_size;
  request_ = http::serialize(command_request("Sync", cfg_.device, encode(s)));
  request_kind_ = message_kind::sync;
  m_.add(counter::syncs);
  next_request_ = never;
  if (open_) return send_request(now);
  open_connection(now);
}

void client_core::open_connection(time_point now) {
  conn_ = engine::outgoing_bit | conns_made_++;
  open_ = true;
  reader_ = std::make_unique<http::response_reader>();
  client_acks_ = {};
  server_acks_ = {};
  client_acks_.configure(cfg_.wire);
  server_acks_.configure(cfg_.wire);
  m_.add(counter::connections);
  const auto up = cfg_.wire.handshake_to_server(), down = cfg_.wire.handshake_to_client();
  m_.traffic.add(message_kind::tcp_setup, direction::to_server, up);
  m_.traffic.add(message_kind::tcp_setup, direction::to_client, down);
  if (after_loss_) {  // the reconnect is part of what the loss cost
    m_.wasted_poll_traffic += up;
    m_.wasted_poll_traffic += down;
  }
  phase_ = phase::connecting;
  deadline_ = now + cfg_.command_timeout;
  actions_.push_back(engine::connect{conn_, cfg_.server});
}

void client_core::send_request(time_point now) {
  const auto cell = cfg_.wire.tcp_message(request_.size());
  m_.traffic.add(request_kind_, direction::to_server, cell);
  if (request_kind_ == message_kind::ping) exchange_ += cell;
  count_ack(direction::to_server, client_acks_.on_data_sent(now));
  count_ack(direction::to_client, server_acks_.on_data_received(now, cfg_.wire.delayed_ack));
  actions_.push_back(engine::send{conn_, std::move(request_)});
  request_.clear();
  if (request_kind_ == message_kind::ping) {
    phase_ = phase::awaiting_ping;
    deadline_ = now + heartbeat_ + cfg_.slack;
  } else {
    phase_ = phase::awaiting_sync;
    deadline_ = now + cfg_.command_timeout;
  }
}

void client_core::handle(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::connected& c) {
                   if (c.conn == conn_ && phase_ == phase::connecting) send_request(now);
                 },
                 [&](const engine::refused& r) {
                   if (r.conn != conn_) return;
                   open_ = false;
                   error(now, counter::protocol_errors);
                 },
                 [&](const engine::closed& c) {
                   if (c.conn != conn_ || !open_) return;
                   close_connection(now, false);
                   // A reset held Ping is what AOSP takes for a NAT failure; anything else is an error.
                   if (phase_ == phase::awaiting_ping) on_lost_ping(now);
                   else if (phase_ != phase::idle) error(now, counter::protocol_errors);
                 },
                 [&](const engine::stream_bytes& b) {
                   if (b.conn == conn_ && open_) on_bytes(now, b.bytes);
                 },
                 [&](const engine::timer&) {
                   if (cfg_.observer && open_) {
                     count_ack(direction::to_server, client_acks_.flush(now));
                     count_ack(direction::to_client, server_acks_.flush(now));
                   }
                   if (phase_ != phase::idle && deadline_ <= now) {
                     if (phase_ == phase::awaiting_ping) {
                       close_connection(now, true);
                       on_lost_ping(now);
                     } else {
                       error(now, counter::protocol_errors);
                     }
                   }
                   if (phase_ == phase::idle && next_request_ <= now) begin_ping(now);
                 },
                 [&](const auto&) {},
             },
             e);
}

void client_core::on_lost_ping(time_point now) {
  m_.add(counter::lost_pings);
  m_.add(counter::wasted_polls);
  m_.add(counter::wakeups);
  m_.wasted_poll_traffic += exchange_;
  if (cfg_.policy.adaptive && heartbeat_ > cfg_.policy.minimum && heartbeat_ > high_water_) {
    set_heartbeat(std::max(heartbeat_ - cfg_.policy.step, cfg_.policy.minimum));
    dropped_ = true;
    m_.add(counter::heartbeat_drops);
  }
  after_loss_ = true;
  phase_ = phase::idle;
  deadline_ = never;
  begin_ping(now);  // reconnect at once, as a device does
}

void client_core::on_bytes(time_point now, bytes_view bytes) {
  reader_->feed(bytes);
  for (;;) {
    auto d = reader_->next();
    if (d.need_more()) return;
    if (d.malformed()) return error(now, counter::protocol_errors);
    count_ack(direction::to_client, server_acks_.on_data_sent(now));
    count_ack(direction::to_server, client_acks_.on_data_received(now, cfg_.wire.delayed_ack));
    if (d.value.status == 100) continue;
    if (phase_ != phase::awaiting_ping && phase_ != phase::awaiting_sync)
      return error(now, counter::protocol_errors);
    on_answer(now, d.value, d.consumed);
    if (!open_) return;
  }
}

void client_core::on_answer(time_point now, const http::response& r, std::size_t wire_size) {
  const auto cell = cfg_.wire.tcp_message(wire_size);
  m_.add(counter::wakeups);
  const bool was_ping = phase_ == phase::awaiting_ping;
  phase_ = phase::idle;
  deadline_ = never;
  if (r.status != 200) {
    m_.traffic.add(message_kind::http_error, direction::to_client, cell);
    return error(now, counter::http_errors);
  }
  const bool keep = r.keep_alive;
  if (was_ping) {
    auto p = decode_ping_response(protocol::as_bytes(r.body));
    if (!p.complete()) {
      m_.traffic.add(message_kind::ping, direction::to_client, cell);
      return error(now, counter::protocol_errors);
    }
    const message_kind k = p.value.status == ping_status::expired   ? message_kind::ping_status1
                           : p.value.status == ping_status::changes ? message_kind::ping_status2
                                                                    : message_kind::ping;
    m_.traffic.add(k, direction::to_client, cell);
    exchange_ += cell;
    if (!keep) close_connection(now, true);
    on_ping_answer(now, p.value);
    return;
  }
  m_.traffic.add(message_kind::sync, direction::to_client, cell);
  auto s = decode_sync_response(protocol::as_bytes(r.body));
  if (!s.complete()) return error(now, counter::protocol_errors);
  if (!s.value.sync_key.empty()) sync_key_ = s.value.sync_key;
  for (const message_header& h : s.value.adds) {
    m_.add(counter::messages);
    const auto created = time_of_date_received(h.date_received);
    if (!created) continue;
    const duration latency = std::max(duration::zero(), now - *created);
    m_.latency.record(latency);
    m_.latency_by_path[static_cast<std::size_t>(delivery_path::ping)].record(latency);
    ++m_.events_by_path[static_cast<std::size_t>(delivery_path::ping)];
    if (after_loss_) m_.add(counter::late_events);
  }
  if (!keep) close_connection(now, true);
  if (s.value.more_available) return begin_sync(now);
  after_loss_ = false;
  begin_ping(now);
}

void client_core::on_ping_answer(time_point now, const ping_response& r) {
  if (!ready_) {
    ready_ = true;
    ++m_.clients_ready;
  }
  switch (r.status) {
    case ping_status::expired:
      m_.add(counter::pings_expired);
      m_.add(counter::wasted_polls);
      m_.wasted_poll_traffic += exchange_;
      cached_ = true;
      after_loss_ = false;
      if (cfg_.policy.adaptive) {
        high_water_ = std::max(high_water_, heartbeat_);
        if (heartbeat_ < cfg_.policy.maximum && !dropped_) {
          set_heartbeat(std::min(heartbeat_ + cfg_.policy.step, cfg_.policy.maximum));
          m_.add(counter::heartbeat_grows);
          cached_ = false;  // a new heartbeat goes in the body
        }
      }
      return begin_ping(now);
    case ping_status::changes:
      m_.add(counter::pings_changes);
      cached_ = true;
      return begin_sync(now);
    case ping_status::heartbeat_out_of_range:
      m_.add(counter::pings_refused);
      cached_ = false;
      if (r.heartbeat_s && *r.heartbeat_s > 0) set_heartbeat(std::chrono::seconds(*r.heartbeat_s));
      return begin_ping(now);
    default:
      m_.add(counter::pings_refused);
      cached_ = false;
      retry_later(now);
      return;
  }
}

void client_core::error(time_point now, counter c) {
  m_.add(c);
  phase_ = phase::idle;
  deadline_ = never;
  request_.clear();
  cached_ = false;
  close_connection(now, true);
  retry_later(now);
}

void client_core::close_connection(time_point now, bool by_us) {
  if (!open_) return;
  count_ack(direction::to_server, client_acks_.flush(now));
  count_ack(direction::to_client, server_acks_.flush(now));
  // The closer's FIN, the other side's FIN (carrying its ACK), the closer's last ACK.
  const auto segment = cfg_.wire.pure_ack();
  const direction closer = by_us ? direction::to_server : direction::to_client;
  const direction other = by_us ? direction::to_client : direction::to_server;
  m_.traffic.add(message_kind::tcp_setup, closer, segment);
  m_.traffic.add(message_kind::tcp_setup, closer, segment);
  m_.traffic.add(message_kind::tcp_setup, other, segment);
  if (by_us) actions_.push_back(engine::close{conn_, ""});
  open_ = false;
  reader_.reset();
  client_acks_ = {};
  server_acks_ = {};
}

time_point client_core::next_deadline() const {
  const time_point t = phase_ == phase::idle ? next_request_ : deadline_;
  if (!cfg_.observer || !open_) return t;
  return std::min({t, client_acks_.pending_deadline(), server_acks_.pending_deadline()});
}

void client_core::finish(time_point) {
  count_ack(direction::to_server, client_acks_.flush(never));
  count_ack(direction::to_client, server_acks_.flush(never));
}

}  // namespace nudge::activesync
