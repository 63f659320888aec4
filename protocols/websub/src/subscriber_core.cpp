#include "nudge/websub/subscriber_core.hpp"

#include <algorithm>
#include <charconv>
#include <variant>

#include "nudge/http/writer.hpp"
#include "nudge/websub/form.hpp"

namespace nudge::websub {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

std::string secret_of(std::uint64_t seed, std::size_t client) {
  static constexpr char digits[] = "0123456789abcdef";
  std::uint64_t z = seed * 0x9e3779b97f4a7c15ull + client + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  std::string s;
  for (int i = 0; i < 16; ++i, z >>= 4) s.push_back(digits[z & 15]);
  return s;
}

}  // namespace

subscriber_config subscriber_config_of(const engine::client_context& ctx) {
  subscriber_config c;
  for (const auto& l : ctx.server.listeners)
    if (l.id == 0) c.hub = l.at;
  c.mailbox = ctx.mailbox;
  c.callback_path = "/callback/" + std::to_string(ctx.client);
  if (ctx.keys) {
    const engine::settings& k = *ctx.keys;
    if (k.boolean("websub.signed")) c.secret = secret_of(ctx.seed, ctx.client);
    c.lease = k.span("websub.lease");
    c.renew_margin = k.span("websub.renew_margin");
    c.verify_timeout = k.span("websub.verify_timeout");
    c.resubscribe_after = k.span("websub.resubscribe_after");
    c.http_timeout = k.span("websub.http_timeout");
    c.limits.max_body_bytes = static_cast<std::size_t>(std::max<std::int64_t>(k.integer("websub.max_body"), 256));
  }
  c.wire = ctx.wire;
  c.observer = ctx.observer;
  return c;
}

std::unique_ptr<subscriber_core> make_subscriber(const engine::client_context& ctx) {
  return std::make_unique<subscriber_core>(subscriber_config_of(ctx), *ctx.metrics);
}

subscriber_core::subscriber_core(subscriber_config cfg, metrics::client_metrics& m) : cfg_(std::move(cfg)), m_(m) {
  m_.fit(delivery_path_count, counter_count);
  topic_ = topic_url(cfg_.hub, cfg_.mailbox);
}

void subscriber_core::start(time_point) {
  ++m_.clients_started;
  actions_.push_back(engine::listen{0, cfg_.callback_port});
}

void subscriber_core::count_ack(engine::connection_id conn, direction d, time_point at) {
  if (at == never) return;
  m_.traffic.add(message_kind::tcp_ack, d, cfg_.wire.pure_ack());
  if (cfg_.observer && !cfg_.wire.is_abstract()) cfg_.observer->pure_ack(at, conn, d);
}

void subscriber_core::handle(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::listening& l) {
                   if (l.listener != 0 || !callback_.empty()) return;
                   callback_ = "http://" + l.local.to_string() + cfg_.callback_path;
                   begin_subscribe(now, false);
                 },
                 [&](const engine::accepted& a) {
                   link l;
                   l.requests = std::make_unique<http::request_reader>(cfg_.limits);
                   l.mine.configure(cfg_.wire);
                   l.peers.configure(cfg_.wire);
                   l.deadline = now + cfg_.http_timeout;
                   links_.emplace(a.conn, std::move(l));
                   m_.add(counter::callbacks);
                   m_.add(counter::wakeups);
                   // The hub dials: its SYN and last ACK travel to the subscriber, the SYN-ACK back.
                   m_.traffic.add(message_kind::tcp_setup, direction::to_client, cfg_.wire.handshake_to_server());
                   m_.traffic.add(message_kind::tcp_setup, direction::to_server, cfg_.wire.handshake_to_client());
                 },
                 [&](const engine::connected& c) {
                   const auto it = links_.find(c.conn);
                   if (it == links_.end() || c.conn != request_conn_) return;
                   form f;
                   f.add("hub.mode", "subscribe");
                   f.add("hub.topic", topic_);
                   f.add("hub.callback", callback_);
                   f.add("hub.lease_seconds",
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(cfg_.lease).count()));
                   if (!cfg_.secret.empty()) f.add("hub.secret", cfg_.secret);
                   http::request req;
                   req.method = "POST";
                   req.target = "/hub";
                   req.headers.add("Host", cfg_.hub.to_string());
                   req.headers.add("Content-Type", "application/x-www-form-urlencoded");
                   req.body = encode_form(f);
                   http::set_content_length(req);
                   send_bytes(now, c.conn, it->second, http::serialize(req), message_kind::subscribe);
                 },
                 [&](const engine::refused& r) {
                   const auto it = links_.find(r.conn);
                   if (it == links_.end()) return;
                   links_.erase(it);  // nothing to tear down
                   if (r.conn == request_conn_) subscribe_failed(now);
                 },
                 [&](const engine::closed& c) {
                   const auto it = links_.find(c.conn);
                   if (it == links_.end()) return;
                   close_link(now, c.conn, false);
                   if (c.conn == request_conn_) subscribe_failed(now);
                 },
                 [&](const engine::stream_bytes& b) {
                   const auto it = links_.find(b.conn);
                   if (it == links_.end()) return;
                   if (it->second.outgoing) on_response_bytes(now, b.conn, it->second, b.bytes);
                   else on_callback_bytes(now, b.conn, it->second, b.bytes);
                 },
                 [&](const engine::timer&) {
                   if (cfg_.observer)
                     for (auto& [id, l] : links_) {
                       count_ack(id, direction::to_server, l.mine.flush(now));
                       count_ack(id, direction::to_client, l.peers.flush(now));
                     }
                   std::vector<engine::connection_id> late;
                   for (const auto& [id, l] : links_)
                     if (l.deadline <= now) late.push_back(id);
                   for (const auto id : late) {
                     close_link(now, id, true);
                     if (id == request_conn_) subscribe_failed(now);
                   }
                   if (verify_deadline_ <= now) {
                     verify_deadline_ = never;
                     awaiting_verification_ = false;
                     m_.add(counter::verify_failures);
                     if (lease_end_ == never) next_subscribe_ = now + cfg_.resubscribe_after;
                     else renew_at_ = std::min(lease_end_, now + cfg_.resubscribe_after);
                   }
                   if (lease_end_ <= now) {
                     lease_end_ = never;
                     renew_at_ = never;
                     m_.add(counter::leases_lost);
                     if (request_conn_ == 0 && !awaiting_verification_) begin_subscribe(now, false);
                   }
                   if (request_conn_ == 0 && !awaiting_verification_) {
                     if (renew_at_ <= now) begin_subscribe(now, true);
                     else if (next_subscribe_ <= now) begin_subscribe(now, false);
                   }
                 },
                 [&](const auto&) {},
             },
             e);
}

void subscriber_core::begin_subscribe(time_point now, bool renewal) {
  next_subscribe_ = never;
  renew_at_ = never;
  renewing_ = renewal && lease_end_ != never;
  m_.add(counter::subscriptions);
  if (renewing_) m_.add(counter::renewals);
  m_.add(counter::connections);
  m_.add(counter::wakeups);
  request_conn_ = engine::outgoing_bit | conns_made_++;
  awaiting_verification_ = true;
  verified_in_flight_ = false;
  link l;
  l.outgoing = true;
  l.responses = std::make_unique<http::response_reader>(cfg_.limits);
  l.mine.configure(cfg_.wire);
  l.peers.configure(cfg_.wire);
  l.deadline = now + cfg_.http_timeout;
  links_.emplace(request_conn_, std::move(l));
  m_.traffic.add(message_kind::tcp_setup, direction::to_server, cfg_.wire.handshake_to_server());
  m_.traffic.add(message_kind::tcp_setup, direction::to_client, cfg_.wire.handshake_to_client());
  actions_.push_back(engine::connect{request_conn_, cfg_.hub});
}

void subscriber_core::subscribe_failed(time_point now) {
  request_conn_ = 0;
  awaiting_verification_ = false;
  m_.add(counter::subscribe_errors);
  if (lease_end_ == never) next_subscribe_ = now + cfg_.resubscribe_after;
  else renew_at_ = std::min(lease_end_, now + cfg_.resubscribe_after);
}

void subscriber_core::send_bytes(time_point now, engine::connection_id conn, link& l, byte_buffer bytes, message_kind k) {
  m_.traffic.add(k, direction::to_server, cfg_.wire.tcp_message(bytes.size()));
  count_ack(conn, direction::to_server, l.mine.on_data_sent(now));
  count_ack(conn, direction::to_client, l.peers.on_data_received(now, cfg_.wire.delayed_ack));
  actions_.push_back(engine::send{conn, std::move(bytes)});
}

void subscriber_core::received(time_point now, link& l, std::size_t wire_size, message_kind k) {
  m_.traffic.add(k, direction::to_client, cfg_.wire.tcp_message(wire_size));
  (void)now;
  (void)l;
}

void subscriber_core::on_response_bytes(time_point now, engine::connection_id conn, link& l, bytes_view bytes) {
  l.responses->feed(bytes);
  for (;;) {
    auto d = l.responses->next();
    if (d.need_more()) return;
    count_ack(conn, direction::to_client, l.peers.on_data_sent(now));
    count_ack(conn, direction::to_server, l.mine.on_data_received(now, cfg_.wire.delayed_ack));
    if (d.malformed()) {
      close_link(now, conn, true);
      if (conn == request_conn_) subscribe_failed(now);
      return;
    }
    if (d.value.status >= 100 && d.value.status < 200) {
      received(now, l, d.consumed, message_kind::subscribe);
      continue;
    }
    const bool accepted = d.value.status == 202;
    received(now, l, d.consumed, accepted ? message_kind::subscribe : message_kind::http_error);
    close_link(now, conn, true);
    if (conn != request_conn_) return;
    request_conn_ = 0;
    if (!accepted) return subscribe_failed(now);
    if (verified_in_flight_) {
      awaiting_verification_ = false;  // the hub was quicker than its own 202
      return;
    }
    verify_deadline_ = now + cfg_.verify_timeout;
    return;
  }
}

void subscriber_core::on_callback_bytes(time_point now, engine::connection_id conn, link& l, bytes_view bytes) {
  l.requests->feed(bytes);
  for (;;) {
    auto d = l.requests->next();
    if (d.need_more()) return;
    count_ack(conn, direction::to_client, l.peers.on_data_sent(now));
    count_ack(conn, direction::to_server, l.mine.on_data_received(now, cfg_.wire.delayed_ack));
    if (d.malformed()) {
      received(now, l, l.requests->buffered(), message_kind::http_error);
      const int status = l.requests->refusal_status() ? l.requests->refusal_status() : 400;
      reply(now, conn, l, http::plain_response(status, d.reason), message_kind::http_error);
      close_link(now, conn, true);
      return;
    }
    answer(now, conn, l, d.value, d.consumed);
    if (links_.find(conn) == links_.end()) return;
  }
}

void subscriber_core::reply(time_point now, engine::connection_id conn, link& l, http::response r, message_kind k) {
  send_bytes(now, conn, l, http::serialize(r), k);
}

void subscriber_core::answer(time_point now, engine::connection_id conn, link& l, const http::request& req,
                             std::size_t wire_size) {
  const std::string_view target = req.target;
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  auto refuse = [&](int status, std::string_view why, message_kind k) {
    http::response r = http::plain_response(status, why);
    reply(now, conn, l, std::move(r), message_kind::http_error);
    (void)k;
  };
  if (path != cfg_.callback_path) {
    received(now, l, wire_size, message_kind::http_error);
    return refuse(404, "no such callback", message_kind::http_error);
  }
  if (req.method == "GET") {
    const auto f = decode_form(q == std::string_view::npos ? std::string_view{} : target.substr(q + 1));
    const auto mode = f.complete() ? f.value.find("hub.mode") : std::nullopt;
    const auto topic = f.complete() ? f.value.find("hub.topic") : std::nullopt;
    if (mode && *mode == "denied" && topic && *topic == topic_) {
      received(now, l, wire_size, message_kind::verify);
      m_.add(counter::denied);
      http::response r;
      r.headers.add("Content-Length", "0");
      reply(now, conn, l, std::move(r), message_kind::verify);
      if (awaiting_verification_) {
        verify_deadline_ = never;
        awaiting_verification_ = false;
        if (lease_end_ == never) next_subscribe_ = now + cfg_.resubscribe_after;
      }
      return;
    }
    const auto challenge = f.complete() ? f.value.find("hub.challenge") : std::nullopt;
    const bool expected = awaiting_verification_ && mode && *mode == "subscribe" && topic && *topic == topic_ && challenge;
    if (!expected) {
      received(now, l, wire_size, message_kind::verify);
      return refuse(404, "not a subscription this subscriber asked for", message_kind::verify);
    }
    received(now, l, wire_size, message_kind::verify);
    http::response r;
    r.headers.add("Content-Type", "text/plain");
    r.headers.add("Connection", "close");
    r.body = std::string(*challenge);
    http::set_content_length(r);
    reply(now, conn, l, std::move(r), message_kind::verify);
    m_.add(counter::verifications);
    duration lease = cfg_.lease;
    if (const auto text = f.value.find("hub.lease_seconds")) {
      std::int64_t seconds = 0;
      const auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
      if (ec == std::errc{} && p == text->data() + text->size() && seconds > 0) lease = std::chrono::seconds(seconds);
    }
    lease_end_ = now + lease;
    renew_at_ = std::max(lease_end_ - cfg_.renew_margin, now + lease / 2);
    verify_deadline_ = never;
    if (request_conn_ != 0) verified_in_flight_ = true;
    else awaiting_verification_ = false;
    if (!ready_) {
      ready_ = true;
      ++m_.clients_ready;
    }
    return;
  }
  if (req.method == "POST") {
    const auto sig = req.headers.find("X-Hub-Signature");
    const bool valid = cfg_.secret.empty() || (sig && signature_matches(*sig, cfg_.secret, req.body));
    received(now, l, wire_size, message_kind::content);
    http::response r;
    r.status = 204;
    r.reason = "No Content";
    r.headers.add("Connection", "close");
    reply(now, conn, l, std::move(r), message_kind::content);
    if (!valid) {
      m_.add(counter::bad_signatures);  // the spec: acknowledged, then ignored
      return;
    }
    m_.add(counter::received);
    if (const auto created = created_ms_of(req.body)) {
      const duration latency = std::max(duration::zero(), now - (time_point{} + std::chrono::milliseconds(*created)));
      m_.latency.record(latency);
      m_.latency_by_path[static_cast<std::size_t>(delivery_path::callback)].record(latency);
    }
    ++m_.events_by_path[static_cast<std::size_t>(delivery_path::callback)];
    return;
  }
  received(now, l, wire_size, message_kind::http_error);
  refuse(405, "a callback takes GET and POST", message_kind::http_error);
}

void subscriber_core::close_link(time_point now, engine::connection_id conn, bool by_us) {
  const auto it = links_.find(conn);
  if (it == links_.end()) return;
  link& l = it->second;
  count_ack(conn, direction::to_server, l.mine.flush(now));
  count_ack(conn, direction::to_client, l.peers.flush(now));
  // The closer's FIN, the other side's FIN (carrying its ACK), the closer's last ACK.
  const auto segment = cfg_.wire.pure_ack();
  const direction closer = by_us ? direction::to_server : direction::to_client;
  const direction other = by_us ? direction::to_client : direction::to_server;
  m_.traffic.add(message_kind::tcp_setup, closer, segment);
  m_.traffic.add(message_kind::tcp_setup, closer, segment);
  m_.traffic.add(message_kind::tcp_setup, other, segment);
  if (by_us) actions_.push_back(engine::close{conn, ""});
  links_.erase(it);
}

time_point subscriber_core::next_deadline() const {
  time_point t = std::min({next_subscribe_, verify_deadline_, lease_end_});
  if (request_conn_ == 0 && !awaiting_verification_) t = std::min(t, renew_at_);
  for (const auto& [id, l] : links_) {
    t = std::min(t, l.deadline);
    if (cfg_.observer) t = std::min({t, l.mine.pending_deadline(), l.peers.pending_deadline()});
  }
  return t;
}

void subscriber_core::finish(time_point) {
  for (auto& [id, l] : links_) {
    count_ack(id, direction::to_server, l.mine.flush(never));
    count_ack(id, direction::to_client, l.peers.flush(never));
  }
}

}  // namespace nudge::websub
