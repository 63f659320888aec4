#include "nudge/websub/hub_core.hpp"

#include <algorithm>
#include <charconv>
#include <variant>

#include "nudge/http/writer.hpp"

namespace nudge::websub {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

std::int64_t ms_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

http::response empty_response(int status, bool keep_alive) {
  http::response r;
  r.status = status;
  r.reason = std::string(http::reason_phrase(status));
  if (!keep_alive) r.headers.add("Connection", "close");
  r.headers.add("Content-Length", "0");
  r.keep_alive = keep_alive;
  return r;
}

bool is_form(const http::request& req) {
  const auto type = req.headers.find("Content-Type");
  if (!type) return true;  // curl and the spec's examples name it; a bare body is read the same way
  constexpr std::string_view want = "application/x-www-form-urlencoded";
  return type->size() >= want.size() && http::iequals(type->substr(0, want.size()), want);
}

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

hub_config hub_config_of(const engine::settings& k) {
  hub_config c;
  c.port = static_cast<std::uint16_t>(k.integer("websub.port"));
  c.min_lease = k.span("websub.min_lease");
  c.max_lease = std::max(k.span("websub.max_lease"), c.min_lease);
  c.retry_attempts = static_cast<std::uint32_t>(std::clamp<std::int64_t>(k.integer("websub.retry_attempts"), 1, 64));
  c.retry_base = k.span("websub.retry_base");
  c.http_timeout = k.span("websub.http_timeout");
  c.max_subscriptions = static_cast<std::size_t>(std::max<std::int64_t>(k.integer("websub.max_subscriptions"), 0));
  c.max_outgoing = static_cast<std::size_t>(std::max<std::int64_t>(k.integer("websub.max_outgoing"), 1));
  c.limits.max_body_bytes = static_cast<std::size_t>(std::max<std::int64_t>(k.integer("websub.max_body"), 256));
  return c;
}

hub_core::hub_core(hub_config cfg) : cfg_(std::move(cfg)) {}

void hub_core::start(time_point) { actions_.push_back(engine::listen{0, cfg_.port}); }

std::size_t hub_core::active_subscriptions() const {
  std::size_t n = 0;
  for (const auto& [id, s] : subs_) n += s.active ? 1 : 0;
  return n;
}

void hub_core::arm(time_point at, timer_kind k, std::uint64_t id) { timers_.push({at, timer_seq_++, k, id}); }

time_point hub_core::next_deadline() const {
  // Stale entries only make the driver call early; the timer skips them.
  return timers_.empty() ? never : timers_.top().at;
}

void hub_core::handle(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::listening& l) {
                   if (l.listener != 0) return;
                   hub_at_ = l.local;
                   hub_url_ = "http://" + l.local.to_string() + "/hub";
                 },
                 [&](const engine::accepted& a) {
                   if (in_.size() >= cfg_.max_connections) {
                     ++n_.connections_refused;
                     actions_.push_back(engine::close{a.conn, "too many connections"});
                     return;
                   }
                   ++n_.connections;
                   auto& c = in_.try_emplace(a.conn, inbound{http::request_reader(cfg_.limits), never}).first->second;
                   c.idle_deadline = now + cfg_.http_timeout;
                   arm(c.idle_deadline, timer_kind::idle, a.conn);
                 },
                 [&](const engine::connected& c) {
                   const auto it = out_.find(c.conn);
                   if (it == out_.end()) return;
                   it->second.connected = true;
                   actions_.push_back(engine::send{c.conn, std::move(it->second.request)});
                   it->second.request.clear();
                 },
                 [&](const engine::refused& r) {
                   const auto it = out_.find(r.conn);
                   if (it == out_.end()) return;
                   ++n_.unreachable;
                   it->second.connected = false;  // nothing to close
                   outbound_done(now, r.conn, 0, {}, false);
                 },
                 [&](const engine::stream_bytes& b) {
                   if (engine::is_outgoing(b.conn)) on_response_bytes(now, b.conn, b.bytes);
                   else on_request_bytes(now, b.conn, b.bytes);
                 },
                 [&](const engine::closed& c) {
                   if (!engine::is_outgoing(c.conn)) {
                     in_.erase(c.conn);
                     return;
                   }
                   const auto it = out_.find(c.conn);
                   if (it == out_.end()) return;
                   it->second.connected = false;  // the peer closed it: nothing left to close
                   it->second.reader->feed_eof();
                   const auto d = it->second.reader->next();
                   if (d.complete()) outbound_done(now, c.conn, d.value.status, d.value.body, false);
                   else outbound_done(now, c.conn, 0, {}, false);
                 },
                 [&](const engine::timer&) { on_timer(now); },
                 [&](const auto&) {},
             },
             e);
  flush_dials();
}

void hub_core::flush_dials() {
  for (auto& c : dials_) actions_.push_back(c);
  dials_.clear();
}

void hub_core::on_timer(time_point now) {
  while (!timers_.empty() && timers_.top().at <= now) {
    const timer_entry t = timers_.top();
    timers_.pop();
    switch (t.kind) {
      case timer_kind::idle: {
        const auto it = in_.find(t.id);
        if (it == in_.end() || it->second.idle_deadline != t.at) break;  // stale
        ++n_.idle_closes;
        drop_inbound(t.id, "");
        break;
      }
      case timer_kind::outgoing: {
        const auto it = out_.find(t.id);
        if (it == out_.end() || it->second.deadline != t.at) break;
        ++n_.timeouts;
        outbound_done(now, t.id, 0, {}, true);
        break;
      }
      case timer_kind::lease: {
        const auto it = subs_.find(t.id);
        if (it == subs_.end() || !it->second.active || it->second.lease_end != t.at) break;  // renewed or gone
        ++n_.leases_expired;
        remove_subscription(t.id);
        break;
      }
      case timer_kind::retry: {
        const auto it = waiting_.find(t.id);
        if (it == waiting_.end()) break;
        delivery d = std::move(it->second);
        waiting_.erase(it);
        ++n_.retries;
        attempt_delivery(now, std::move(d));
        break;
      }
    }
  }
}

void hub_core::drop_inbound(engine::connection_id conn, std::string reason) {
  actions_.push_back(engine::close{conn, std::move(reason)});
  in_.erase(conn);
}

void hub_core::on_request_bytes(time_point now, engine::connection_id conn, bytes_view bytes) {
  const auto it = in_.find(conn);
  if (it == in_.end()) return;
  inbound& c = it->second;
  c.reader.feed(bytes);
  if (c.reader.take_continue()) {
    const auto line = http::continue_line();
    actions_.push_back(engine::send{conn, byte_buffer(line.begin(), line.end())});
  }
  for (;;) {
    auto d = c.reader.next();
    if (d.need_more()) break;
    if (d.malformed()) {
      ++n_.bad_requests;
      const int status = c.reader.refusal_status() ? c.reader.refusal_status() : 400;
      actions_.push_back(engine::send{conn, http::serialize(http::plain_response(status, d.reason))});
      drop_inbound(conn, std::string(d.reason));
      return;
    }
    ++n_.requests;
    const http::response r = answer(now, d.value);
    actions_.push_back(engine::send{conn, http::serialize(r)});
    if (!r.keep_alive) {
      // A refusal: the answer goes out, then the close (the host writes before closing).
      drop_inbound(conn, "");
      return;
    }
    c.idle_deadline = now + cfg_.http_timeout;
    arm(c.idle_deadline, timer_kind::idle, conn);
  }
}

http::response hub_core::refuse(int status, std::string_view why) {
  if (status >= 400 && status < 500 && status != 404) ++n_.bad_requests;
  return http::plain_response(status, why);
}

http::response hub_core::answer(time_point now, const http::request& req) {
  const std::string_view target = req.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.substr(0, topic_prefix.size()) == topic_prefix) {
    if (req.method != "GET" && req.method != "HEAD") return refuse(405, "topics are read with GET");
    return topic_page(req);
  }
  if (path != "/hub" && path != "/") {
    ++n_.not_found;
    return http::plain_response(404, "no such resource; the hub is at /hub");
  }
  if (req.method != "POST") return refuse(405, "the hub takes POST");
  if (!is_form(req)) return refuse(415, "the hub reads application/x-www-form-urlencoded");
  const auto f = decode_form(req.body);
  if (!f.complete()) return refuse(400, f.reason);
  const auto mode = f.value.find("hub.mode");
  if (!mode) return refuse(400, "hub.mode is required");
  http::response r;
  if (*mode == "subscribe") r = subscribe(now, f.value, true);
  else if (*mode == "unsubscribe") r = subscribe(now, f.value, false);
  else if (*mode == "publish") r = publish(now, f.value);
  else return refuse(400, "hub.mode must be subscribe, unsubscribe or publish");
  if (r.status < 300) {
    r.keep_alive = req.keep_alive;
    if (!req.keep_alive) r.headers.set("Connection", "close");
  }
  return r;
}

http::response hub_core::topic_page(const http::request& req) {
  const auto mb = mailbox_of_topic("http://" + hub_at_.to_string() + req.target.substr(0, req.target.find('?')));
  if (!mb) return refuse(400, "a bad topic path");
  const auto it = mailbox_by_name_.find(*mb);
  if (it == mailbox_by_name_.end()) {
    ++n_.not_found;
    return http::plain_response(404, "no such topic");
  }
  const mailbox& box = mailboxes_[it->second];
  http::response r;
  r.headers.add("Content-Type", "application/json");
  r.headers.add("Link", "<" + hub_url_ + ">; rel=\"hub\", <" + topic_url(hub_at_, box.name) + ">; rel=\"self\"");
  r.body = "{\"mailbox\":\"" + percent_encode(box.name) + "\",\"events\":" + std::to_string(box.generated) + "}\n";
  if (req.method == "HEAD") r.body.clear();
  http::set_content_length(r);
  r.keep_alive = req.keep_alive;
  if (!req.keep_alive) r.headers.set("Connection", "close");
  return r;
}

http::response hub_core::subscribe(time_point now, const form& f, bool subscribing) {
  ++(subscribing ? n_.subscribe_requests : n_.unsubscribe_requests);
  const auto topic = f.find("hub.topic");
  const auto callback = f.find("hub.callback");
  if (!topic || !callback) return refuse(400, "hub.topic and hub.callback are required");
  const auto mb = mailbox_of_topic(*topic);
  if (!mb) {
    ++n_.not_found;
    return http::plain_response(404, "no such topic on this hub (topics are /topics/<mailbox>)");
  }
  const auto cb = parse_http_url(*callback);
  if (!cb.complete()) return refuse(400, cb.reason);
  if (!cfg_.allow_non_loopback && !cb.value.at.is_loopback()) {
    ++n_.refused_callbacks;
    actions_.push_back(engine::notice{"refused to verify the callback " + to_string(cb.value) +
                                      ": only loopback destinations are allowed; --allow-non-loopback lifts this"});
    return refuse(403, "the hub only calls back loopback addresses");
  }
  duration lease = cfg_.max_lease;
  if (const auto text = f.find("hub.lease_seconds"); text && subscribing) {
    std::uint64_t seconds = 0;
    const auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
    if (text->empty() || ec != std::errc{} || p != text->data() + text->size())
      return refuse(400, "hub.lease_seconds must be a whole number");
    const auto max_seconds = std::chrono::duration_cast<std::chrono::seconds>(cfg_.max_lease).count();
    lease = std::chrono::seconds(std::min<std::uint64_t>(seconds, static_cast<std::uint64_t>(max_seconds)));
    lease = std::clamp(lease, cfg_.min_lease, cfg_.max_lease);
  }
  std::string secret(f.find("hub.secret").value_or(std::string_view{}));
  if (secret.size() > cfg_.max_secret_bytes) return refuse(400, "hub.secret must be under 200 bytes");
  const std::string key = *mb + '\n' + to_string(cb.value);
  auto it = sub_by_key_.find(key);
  if (!subscribing && it == sub_by_key_.end()) {
    ++n_.not_found;
    return http::plain_response(404, "no such subscription");
  }
  if (out_.size() >= cfg_.max_outgoing) {
    ++n_.over_capacity;
    return http::plain_response(429, "the hub is busy verifying; try later");
  }
  if (it == sub_by_key_.end()) {
    if (subs_.size() >= cfg_.max_subscriptions) {
      ++n_.over_capacity;
      return http::plain_response(429, "the hub holds as many subscriptions as it may");
    }
    const std::uint64_t id = next_sub_++;
    subscription s;
    s.mailbox = mailbox_index(*mb);
    s.topic = std::string(*topic);
    s.callback = cb.value;
    subs_.emplace(id, std::move(s));
    mailboxes_[subs_[id].mailbox].subs.push_back(id);
    it = sub_by_key_.emplace(key, id).first;
  }
  // The 202 goes out before the verification's connection opens (the
  // response is pushed by the caller first; the dial waits for the next call).
  verify(now, it->second, subscribing, lease, std::move(secret));
  return empty_response(202, true);
}

http::response hub_core::publish(time_point now, const form& f) {
  ++n_.publish_requests;
  auto urls = f.all("hub.url");
  for (const auto t : f.all("hub.topic")) urls.push_back(t);
  if (urls.empty()) return refuse(400, "hub.url is required");
  std::vector<std::string> boxes;
  for (const auto u : urls) {
    auto mb = mailbox_of_topic(u);
    if (!mb) return refuse(400, "hub.url names no topic of this hub (topics are /topics/<mailbox>)");
    boxes.push_back(std::move(*mb));
  }
  for (const auto& b : boxes) inject_event(now, b);
  return empty_response(204, true);
}

std::string hub_core::next_challenge() {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (int k = 0; k < 2; ++k) {
    std::uint64_t v = splitmix(challenge_state_);
    for (int i = 0; i < 16; ++i, v >>= 4) s.push_back(digits[v & 15]);
  }
  return s;
}

void hub_core::verify(time_point now, std::uint64_t sub, bool subscribing, duration lease, std::string secret) {
  const subscription& s = subs_.at(sub);
  outbound o;
  o.what = purpose::verify;
  o.sub = sub;
  o.subscribing = subscribing;
  o.challenge = next_challenge();
  o.lease = lease;
  o.secret = std::move(secret);
  form q;
  q.add("hub.mode", subscribing ? "subscribe" : "unsubscribe");
  q.add("hub.topic", s.topic);
  q.add("hub.challenge", o.challenge);
  if (subscribing)
    q.add("hub.lease_seconds", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(lease).count()));
  http::request req;
  req.method = "GET";
  req.target = s.callback.path + (s.callback.path.find('?') == std::string::npos ? "?" : "&") + encode_form(q);
  req.headers.add("Host", s.callback.authority);
  req.headers.add("Connection", "close");
  o.request = http::serialize(req);
  ++n_.verifications_sent;
  dial(now, s.callback, std::move(o));
}

void hub_core::attempt_delivery(time_point now, delivery d) {
  const auto it = subs_.find(d.sub);
  if (it == subs_.end() || !it->second.active) return;  // gone meanwhile: nothing to deliver to
  if (out_.size() >= cfg_.max_outgoing) {
    ++d.attempt;  // counted as a failed attempt: the hub is over its connection budget
    return delivery_failed(now, std::move(d));
  }
  const subscription& s = it->second;
  ++d.attempt;
  http::request req;
  req.method = "POST";
  req.target = s.callback.path;
  req.headers.add("Host", s.callback.authority);
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Link", "<" + hub_url_ + ">; rel=\"hub\", <" + s.topic + ">; rel=\"self\"");
  if (!s.secret.empty()) req.headers.add("X-Hub-Signature", signature_header(s.secret, d.body));
  req.headers.add("Connection", "close");
  req.body = d.body;
  http::set_content_length(req);
  outbound o;
  o.what = purpose::deliver;
  o.sub = d.sub;
  o.request = http::serialize(req);
  o.d = std::move(d);
  ++n_.deliveries_sent;
  dial(now, s.callback, std::move(o));
}

engine::connection_id hub_core::dial(time_point now, const http_url& to, outbound o) {
  const engine::connection_id conn = engine::outgoing_bit | next_out_++;
  o.reader = std::make_unique<http::response_reader>(cfg_.limits);
  o.deadline = now + cfg_.http_timeout;
  arm(o.deadline, timer_kind::outgoing, conn);
  out_.emplace(conn, std::move(o));
  if (!cfg_.allow_non_loopback && !to.at.is_loopback()) {
    // Never reached (subscribe refuses such callbacks); kept so no path dials out.
    ++n_.refused_callbacks;
    outbound_done(now, conn, 0, {}, false);
    return conn;
  }
  dials_.push_back(engine::connect{conn, to.at});
  return conn;
}

void hub_core::on_response_bytes(time_point now, engine::connection_id conn, bytes_view bytes) {
  const auto it = out_.find(conn);
  if (it == out_.end()) return;
  it->second.reader->feed(bytes);
  for (;;) {
    const auto d = it->second.reader->next();
    if (d.need_more()) return;
    if (d.malformed()) return outbound_done(now, conn, 0, {}, true);
    if (d.value.status >= 100 && d.value.status < 200) continue;  // interim
    return outbound_done(now, conn, d.value.status, d.value.body, true);
  }
}

void hub_core::outbound_done(time_point now, engine::connection_id conn, int status, std::string_view body,
                             bool close_it) {
  const auto it = out_.find(conn);
  if (it == out_.end()) return;
  outbound o = std::move(it->second);
  out_.erase(it);
  if (close_it && o.connected) actions_.push_back(engine::close{conn, ""});
  const bool ok = status >= 200 && status < 300;
  if (o.what == purpose::verify) {
    const auto s = subs_.find(o.sub);
    if (s == subs_.end()) return;
    if (ok && body == o.challenge) {
      ++n_.verifications_ok;
      if (!o.subscribing) {
        ++n_.unsubscribed;
        return remove_subscription(o.sub);
      }
      s->second.active = true;
      s->second.secret = std::move(o.secret);
      s->second.lease_end = now + o.lease;
      arm(s->second.lease_end, timer_kind::lease, o.sub);
      return;
    }
    ++n_.verifications_failed;
    if (o.subscribing && !s->second.active) remove_subscription(o.sub);  // a new one never verified
    return;
  }
  if (ok) {
    ++n_.deliveries_ok;
    return;
  }
  if (status == 410) {
    ++n_.gone;
    return remove_subscription(o.sub);
  }
  delivery_failed(now, std::move(o.d));
}

void hub_core::delivery_failed(time_point now, delivery d) {
  ++n_.deliveries_failed;
  if (d.attempt >= cfg_.retry_attempts) {
    ++n_.deliveries_abandoned;
    return;
  }
  const auto shift = std::min<std::uint32_t>(d.attempt - 1, 30);
  const duration delay = cfg_.retry_base * (std::int64_t{1} << shift);
  const std::uint64_t id = next_waiting_++;
  waiting_.emplace(id, std::move(d));
  arm(now + delay, timer_kind::retry, id);
}

void hub_core::remove_subscription(std::uint64_t id) {
  const auto it = subs_.find(id);
  if (it == subs_.end()) return;
  auto& list = mailboxes_[it->second.mailbox].subs;
  list.erase(std::remove(list.begin(), list.end(), id), list.end());
  sub_by_key_.erase(mailboxes_[it->second.mailbox].name + '\n' + to_string(it->second.callback));
  subs_.erase(it);
}

std::uint32_t hub_core::mailbox_index(std::string_view name) {
  const auto it = mailbox_by_name_.find(std::string(name));
  if (it != mailbox_by_name_.end()) return it->second;
  const auto index = static_cast<std::uint32_t>(mailboxes_.size());
  mailboxes_.push_back(mailbox{std::string(name), {}, 0});
  mailbox_by_name_.emplace(std::string(name), index);
  return index;
}

hub_core::mailbox_handle_t hub_core::mailbox_handle(std::string_view name) { return mailbox_index(name); }

std::uint64_t hub_core::inject_event(time_point now, std::string_view name) {
  return inject_event(now, mailbox_handle(name));
}

std::uint64_t hub_core::inject_event(time_point now, mailbox_handle_t handle) {
  const std::uint64_t id = ++n_.events_generated;
  ++mailboxes_[handle].generated;
  bool any = false;
  // A copy: a delivery that fails at once may not change the list, but stays safe if it does.
  const std::vector<std::uint64_t> subs = mailboxes_[handle].subs;
  for (const std::uint64_t sid : subs) {
    const auto it = subs_.find(sid);
    if (it == subs_.end() || !it->second.active) continue;
    any = true;
    delivery d;
    d.sub = sid;
    d.body = event_body(it->second.topic, id, ms_of(now));
    attempt_delivery(now, std::move(d));
  }
  if (!any) ++n_.events_without_subscribers;
  flush_dials();
  return id;
}

std::vector<std::pair<std::string, std::uint64_t>> hub_core::stats() const {
  return {{"connections", n_.connections},
          {"connections_refused", n_.connections_refused},
          {"open_connections", in_.size()},
          {"open_callbacks", out_.size()},
          {"idle_closes", n_.idle_closes},
          {"requests", n_.requests},
          {"bad_requests", n_.bad_requests},
          {"not_found", n_.not_found},
          {"subscribe_requests", n_.subscribe_requests},
          {"unsubscribe_requests", n_.unsubscribe_requests},
          {"publish_requests", n_.publish_requests},
          {"refused_callbacks", n_.refused_callbacks},
          {"over_capacity", n_.over_capacity},
          {"subscriptions", subs_.size()},
          {"subscriptions_active", active_subscriptions()},
          {"verifications_sent", n_.verifications_sent},
          {"verifications_ok", n_.verifications_ok},
          {"verifications_failed", n_.verifications_failed},
          {"unreachable", n_.unreachable},
          {"timeouts", n_.timeouts},
          {"deliveries_sent", n_.deliveries_sent},
          {"deliveries_ok", n_.deliveries_ok},
          {"deliveries_failed", n_.deliveries_failed},
          {"deliveries_abandoned", n_.deliveries_abandoned},
          {"deliveries_waiting", waiting_.size()},
          {"retries", n_.retries},
          {"gone", n_.gone},
          {"leases_expired", n_.leases_expired},
          {"unsubscribed", n_.unsubscribed},
          {"events_generated", n_.events_generated},
          {"events_without_subscribers", n_.events_without_subscribers}};
}

}  // namespace nudge::websub
