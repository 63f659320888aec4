#include "nudge/pollbus/client_core.hpp"

#include <algorithm>
#include <variant>

#include "nudge/http/writer.hpp"
#include "nudge/pollbus/bus_time.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace nudge::pollbus {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

guid agent_id_of(std::string_view mailbox) {
  const std::uint64_t a = fnv1a(mailbox, 1469598103934665603ull);
  const std::uint64_t b = fnv1a(mailbox, a ^ 0x9e3779b97f4a7c15ull);
  guid g{};
  for (int i = 0; i < 8; ++i) {
    g[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(a >> (56 - 8 * i));
    g[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(b >> (56 - 8 * i));
  }
  g[6] = static_cast<std::uint8_t>((g[6] & 0x0f) | 0x40);  // version 4
  g[8] = static_cast<std::uint8_t>((g[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return g;
}

client_config client_config_of(const engine::client_context& ctx) {
  client_config c;
  const engine::settings& k = *ctx.keys;
  for (const auto& l : ctx.server.listeners)
    if (l.id == 0) c.server = l.at;
  c.host = k.text("pollbus.host");
  if (c.host.empty()) c.host = c.server.to_string();
  const auto mode = ctx.mode < client_mode_count ? static_cast<client_mode>(ctx.mode) : client_mode::poll;
  c.path = std::string(mode_path(mode));
  c.enc = k.text("pollbus.encoding") == "json" ? encoding::json : encoding::soap;
  c.keep_alive = k.boolean("pollbus.keep_alive");
  c.expect_continue = k.boolean("pollbus.expect_continue");
  c.initial_interval = k.span("pollbus.client_interval");
  c.agent_id = agent_id_of(ctx.mailbox);
  std::string number = std::to_string(ctx.client);
  c.computer_name = "PC-" + std::string(number.size() < 6 ? 6 - number.size() : 0, '0') + number;
  c.user_info = ctx.mailbox;
  c.wire = ctx.wire;
  c.observer = ctx.observer;
  return c;
}

std::unique_ptr<client_core> make_client(const engine::client_context& ctx) {
  return std::make_unique<client_core>(client_config_of(ctx), *ctx.metrics);
}

client_core::client_core(client_config cfg, metrics::client_metrics& m)
    : cfg_(std::move(cfg)), m_(m), interval_(cfg_.initial_interval) {
  m_.fit(delivery_path_count, counter_count);
  if (cfg_.host.empty()) cfg_.host = cfg_.server.to_string();
}

void client_core::start(time_point now) {
  ++m_.clients_started;
  begin_poll(now);
}

void client_core::count_ack(direction d, time_point at) {
  if (at == never) return;
  m_.traffic.add(message_kind::tcp_ack, d, cfg_.wire.pure_ack());
  if (cfg_.observer && !cfg_.wire.is_abstract()) cfg_.observer->pure_ack(at, conn_, d);
}

void client_core::begin_poll(time_point now) {
  message msg;
  msg.agent_id = cfg_.agent_id;
  msg.timestamp_ms = timestamp_of(now);
  request_empty_ = false;
  if (mode_ == poll_mode::register_agent) {
    msg.type = message_type::register_agent;
    msg.computer_name = cfg_.computer_name;
    msg.user_info = cfg_.user_info;
    request_kind_ = message_kind::register_;
    m_.add(counter::registrations);
  } else if (!outbox_.empty()) {
    msg = std::move(outbox_.front());
    outbox_.erase(outbox_.begin());
    msg.agent_id = cfg_.agent_id;
    request_kind_ = message_kind::poll;
  } else {
    msg.type = message_type::empty;
    request_kind_ = message_kind::poll;
    request_empty_ = true;
  }
  request_options o;
  o.host = cfg_.host;
  o.path = cfg_.path;
  o.expect_continue = cfg_.expect_continue;
  o.keep_alive = cfg_.keep_alive;
  const http::request req = poll_request(msg, cfg_.enc, o);
  if (cfg_.expect_continue) {
    head_ = http::serialize_head(req);
    body_.assign(req.body.begin(), req.body.end());
  } else {
    head_ = http::serialize(req);
    body_.clear();
  }
  m_.add(counter::polls);
  exchange_ = {};
  next_poll_ = never;
  if (open_) return send_request(now);
  conn_ = engine::outgoing_bit | conns_made_++;
  open_ = true;
  reader_ = std::make_unique<http::response_reader>();
  client_acks_ = {};
  server_acks_ = {};
  client_acks_.configure(cfg_.wire);
  server_acks_.configure(cfg_.wire);
  m_.add(counter::connections);
  m_.traffic.add(message_kind::tcp_setup, direction::to_server, cfg_.wire.handshake_to_server());
  m_.traffic.add(message_kind::tcp_setup, direction::to_client, cfg_.wire.handshake_to_client());
  phase_ = phase::connecting;
  phase_deadline_ = now + cfg_.response_timeout;
  actions_.push_back(engine::connect{conn_, cfg_.server});
}

void client_core::send_bytes(time_point now, byte_buffer bytes, message_kind k, metrics::traffic_cell* wasted) {
  const auto cell = cfg_.wire.tcp_message(bytes.size());
  m_.traffic.add(k, direction::to_server, cell);
  if (wasted) *wasted += cell;
  count_ack(direction::to_server, client_acks_.on_data_sent(now));
  count_ack(direction::to_client, server_acks_.on_data_received(now, cfg_.wire.delayed_ack));
  actions_.push_back(engine::send{conn_, std::move(bytes)});
}

void client_core::send_request(time_point now) {
  send_bytes(now, std::move(head_), request_kind_, &exchange_);
  head_.clear();
  if (!body_.empty()) {
    phase_ = phase::awaiting_continue;
    phase_deadline_ = now + cfg_.continue_timeout;
  } else {
    phase_ = phase::awaiting_response;
    phase_deadline_ = now + cfg_.response_timeout;
  }
}

void client_core::handle(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::connected& c) {
                   if (c.conn == conn_ && phase_ == phase::connecting) send_request(now);
                 },
                 [&](const engine::refused& r) {
                   if (r.conn != conn_) return;
                   open_ = false;  // nothing to tear down
                   error(now, counter::protocol_errors, "connect refused");
                 },
                 [&](const engine::closed& c) {
                   if (c.conn != conn_ || !open_) return;
                   close_connection(now, false);
                   if (phase_ != phase::idle) error(now, counter::protocol_errors, "connection lost mid-poll");
                 },
                 [&](const engine::stream_bytes& b) {
                   if (b.conn == conn_ && open_) on_bytes(now, b.bytes);
                 },
                 [&](const engine::timer&) {
                   if (cfg_.observer && open_) {
                     count_ack(direction::to_server, client_acks_.flush(now));
                     count_ack(direction::to_client, server_acks_.flush(now));
                   }
                   if (phase_ != phase::idle && phase_deadline_ <= now) {
                     if (phase_ == phase::awaiting_continue) {
                       // .NET gives up waiting for 100 Continue and sends the body anyway.
                       send_bytes(now, std::move(body_), request_kind_, &exchange_);
                       body_.clear();
                       phase_ = phase::awaiting_response;
                       phase_deadline_ = now + cfg_.response_timeout;
                     } else {
                       error(now, counter::protocol_errors, "no response");
                     }
                   }
                   if (phase_ == phase::idle && next_poll_ <= now) begin_poll(now);
                 },
                 [&](const auto&) {},
             },
             e);
}

void client_core::on_bytes(time_point now, bytes_view bytes) {
  reader_->feed(bytes);
  for (;;) {
    auto d = reader_->next();
    if (d.need_more()) return;
    if (d.malformed()) return error(now, counter::protocol_errors, d.reason);
    count_ack(direction::to_client, server_acks_.on_data_sent(now));
    count_ack(direction::to_server, client_acks_.on_data_received(now, cfg_.wire.delayed_ack));
    if (d.value.status == 100) {
      const auto cell = cfg_.wire.tcp_message(d.consumed);
      m_.traffic.add(message_kind::continue_, direction::to_client, cell);
      exchange_ += cell;
      if (phase_ == phase::awaiting_continue) {
        send_bytes(now, std::move(body_), request_kind_, &exchange_);
        body_.clear();
        phase_ = phase::awaiting_response;
        phase_deadline_ = now + cfg_.response_timeout;
      }
      continue;
    }
    if (phase_ == phase::idle) return error(now, counter::protocol_errors, "a response nobody asked for");
    return on_final(now, d.value, d.consumed);
  }
}

void client_core::on_final(time_point now, const http::response& r, std::size_t wire_size) {
  const bool ok_status = r.status == 200;
  const auto cell = cfg_.wire.tcp_message(wire_size);
  m_.traffic.add(ok_status ? request_kind_ : message_kind::http_error, direction::to_client, cell);
  exchange_ += cell;
  if (!ok_status) return error(now, counter::http_errors, "HTTP error status");
  auto messages = read_poll_response(r);
  if (!messages.complete()) return error(now, counter::protocol_errors, messages.reason);
  if (request_empty_ && messages.value.empty()) {
    m_.add(counter::wasted_polls);
    m_.wasted_poll_traffic += exchange_;
  }
  phase_ = phase::idle;
  phase_deadline_ = never;
  process(now, messages.value);
  schedule_next(now);
  if (!cfg_.keep_alive || !r.keep_alive) close_connection(now, true);
}

void client_core::process(time_point now, const std::vector<message>& messages) {
  bool told_to_register = false;
  for (const auto& m : messages) {
    switch (m.type) {
      case message_type::poll_interval: {
        m_.add(counter::received_poll_interval);
        const duration d = std::chrono::milliseconds(std::max(m.interval_ms, 1));
        if (d != interval_) {
          interval_ = d;
          m_.add(counter::interval_changes);
        }
        break;
      }
      case message_type::poll_mode:
        m_.add(counter::received_poll_mode);
        if (m.mode == poll_mode::register_agent) {
          told_to_register = true;
          if (mode_ == poll_mode::poll) m_.add(counter::re_registrations);
          mode_ = poll_mode::register_agent;
        } else {
          mode_ = poll_mode::poll;
        }
        break;
      case message_type::chat: {
        m_.add(counter::received_chat);
        const duration latency = std::max(duration::zero(), now - time_of_timestamp(m.timestamp_ms));
        m_.latency.record(latency);
        m_.latency_by_path[static_cast<std::size_t>(delivery_path::poll)].record(latency);
        ++m_.events_by_path[static_cast<std::size_t>(delivery_path::poll)];
        break;
      }
      case message_type::empty: m_.add(counter::received_empty); break;
      default: m_.add(counter::received_other); break;
    }
  }
  if (request_kind_ == message_kind::register_ && !told_to_register) {
    mode_ = poll_mode::poll;
    if (!ready_) {
      ready_ = true;
      ++m_.clients_ready;
    }
  }
}

void client_core::error(time_point now, counter c, std::string_view why) {
  (void)why;
  m_.add(c);
  if (mode_ == poll_mode::poll) m_.add(counter::re_registrations);
  mode_ = poll_mode::register_agent;  // the seed's catch block
  phase_ = phase::idle;
  phase_deadline_ = never;
  head_.clear();
  body_.clear();
  close_connection(now, true);
  schedule_next(now);
}

void client_core::close_connection(time_point now, bool by_us) {
  if (!open_) return;
  // A pure ACK already due went out before the FIN; one still delayed rides on it.
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
  const time_point t = phase_ == phase::idle ? next_poll_ : phase_deadline_;
  if (!cfg_.observer || !open_) return t;
  return std::min({t, client_acks_.pending_deadline(), server_acks_.pending_deadline()});
}

void client_core::finish(time_point) {
  count_ack(direction::to_server, client_acks_.flush(never));
  count_ack(direction::to_client, server_acks_.flush(never));
}

}  // namespace nudge::pollbus
