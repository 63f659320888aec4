#include "nudge/activesync/server_core.hpp"

#include <algorithm>
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

// A deadline entry for a held Ping (device index) rather than an idle connection.
constexpr std::uint64_t held_tag = std::uint64_t{1} << 63;

std::uint32_t seconds_of(duration d) {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

}  // namespace

server_config server_config_of(const engine::settings& k) {
  server_config c;
  c.port = static_cast<std::uint16_t>(k.integer("activesync.port"));
  c.min_heartbeat = k.span("activesync.min_heartbeat");
  c.max_heartbeat = k.span("activesync.max_heartbeat");
  c.max_folders = static_cast<std::uint32_t>(std::max<std::int64_t>(1, k.integer("activesync.max_folders")));
  c.inbox_id = k.text("activesync.folder");
  c.idle_timeout = k.span("activesync.idle_timeout");
  c.max_pending = static_cast<std::size_t>(std::max<std::int64_t>(1, k.integer("activesync.max_pending")));
  return c;
}

server_core::server_core(server_config cfg) : cfg_(std::move(cfg)) {}

void server_core::start(time_point) { actions_.push_back(engine::listen{0, cfg_.port}); }

void server_core::handle(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::accepted& a) {
                   if (conns_.size() >= cfg_.max_connections) {
                     ++n_.connections_refused;
                     actions_.push_back(engine::close{a.conn, "too many connections"});
                     return;
                   }
                   ++n_.connections;
                   auto& c = conns_.try_emplace(a.conn, connection{http::request_reader(cfg_.limits)}).first->second;
                   arm_idle(now, a.conn, c);
                 },
                 [&](const engine::stream_bytes& b) { on_bytes(now, b.conn, b.bytes); },
                 [&](const engine::closed& c) {
                   const auto it = conns_.find(c.conn);
                   if (it == conns_.end()) return;
                   if (it->second.holding != none) devices_[it->second.holding].holding = false;
                   conns_.erase(it);
                 },
                 [&](const engine::timer&) {
                   while (!deadlines_.empty() && deadlines_.top().first <= now) {
                     const auto [at, what] = deadlines_.top();
                     deadlines_.pop();
                     if (what & held_tag) {
                       const auto dev = static_cast<std::uint32_t>(what & ~held_tag);
                       if (dev >= devices_.size() || !devices_[dev].holding || devices_[dev].held_until != at) continue;
                       release(now, dev, ping_response{ping_status::expired, {}, {}, {}});
                       continue;
                     }
                     const auto it = conns_.find(what);
                     if (it == conns_.end() || it->second.idle_deadline != at || it->second.holding != none) continue;
                     ++n_.idle_closes;
                     drop(what, "");
                   }
                 },
                 [&](const auto&) {},
             },
             e);
}

time_point server_core::next_deadline() const { return deadlines_.empty() ? never : deadlines_.top().first; }

std::size_t server_core::held_pings() const {
  std::size_t n = 0;
  for (const device& d : devices_) n += d.holding ? 1 : 0;
  return n;
}

void server_core::arm_idle(time_point now, engine::connection_id conn, connection& c) {
  c.idle_deadline = now + cfg_.idle_timeout;
  deadlines_.push({c.idle_deadline, conn});
}

void server_core::drop(engine::connection_id conn, std::string reason) {
  const auto it = conns_.find(conn);
  if (it != conns_.end() && it->second.holding != none) devices_[it->second.holding].holding = false;
  actions_.push_back(engine::close{conn, std::move(reason)});
  conns_.erase(conn);
}

void server_core::on_bytes(time_point now, engine::connection_id conn, bytes_view bytes) {
  const auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  it->second.reader.feed(bytes);
  if (it->second.reader.take_continue()) {
    const auto line = http::continue_line();
    actions_.push_back(engine::send{conn, byte_buffer(line.begin(), line.end())});
  }
  for (;;) {
    // answer() may drop the connection: look it up again each time.
    const auto again = conns_.find(conn);
    if (again == conns_.end()) return;
    connection& c = again->second;
    auto d = c.reader.next();
    if (d.need_more()) return;
    if (d.malformed()) {
      ++n_.bad_requests;
      const int status = c.reader.refusal_status() ? c.reader.refusal_status() : 400;
      actions_.push_back(engine::send{conn, http::serialize(http::plain_response(status, d.reason))});
      drop(conn, std::string(d.reason));
      return;
    }
    ++n_.requests;
    // A request on a connection that holds a Ping: that Ping ends first (HTTP answers in order).
    if (c.holding != none) {
      ++n_.superseded;
      release(now, c.holding, ping_response{ping_status::expired, {}, {}, {}});
    }
    answer(now, conn, c, d.value);
  }
}

void server_core::respond(time_point now, engine::connection_id conn, connection& c, const http::response& r) {
  actions_.push_back(engine::send{conn, http::serialize(r)});
  c.keep_alive = r.keep_alive;
  arm_idle(now, conn, c);
}

void server_core::answer(time_point now, engine::connection_id conn, connection& c, http::request& req) {
  auto call = read_command_request(req);
  if (call.malformed()) {
    const bool missing = call.reason == not_found_reason;
    ++(missing ? n_.not_found : n_.bad_requests);
    respond(now, conn, c, error_response(missing ? 404 : 400, now, req.keep_alive));
    return;
  }
  const std::uint32_t u = user_index(call.value.user);
  const std::uint32_t dev = device_index(u, call.value.device_id);
  if (call.value.cmd == "Ping") {
    c.keep_alive = req.keep_alive;
    ping(now, conn, c, dev, call.value.body);
    return;
  }
  if (call.value.cmd == "Sync") {
    const byte_buffer body = sync(now, dev, call.value.body);
    if (body.empty()) {
      ++n_.bad_requests;
      respond(now, conn, c, error_response(400, now, req.keep_alive));
      return;
    }
    respond(now, conn, c, wbxml_response(body, now, req.keep_alive));
    return;
  }
  ++n_.unknown_commands;
  respond(now, conn, c, error_response(400, now, req.keep_alive));
}

void server_core::ping(time_point now, engine::connection_id conn, connection& c, std::uint32_t dev,
                       std::string_view body) {
  ++n_.pings;
  device& d = devices_[dev];
  auto answer_now = [&](const ping_response& r) {
    ++n_.status[static_cast<int>(r.status)];
    respond(now, conn, c, wbxml_response(encode(r), now, c.keep_alive));
  };
  // A device's new Ping ends its older held one (on another connection).
  if (d.holding) {
    ++n_.superseded;
    release(now, dev, ping_response{ping_status::expired, {}, {}, {}});
  }
  if (body.empty()) {
    ++n_.empty_pings;
    if (!d.heartbeat_s || d.folders.empty()) return answer_now({ping_status::missing_parameters, {}, {}, {}});
  } else {
    auto r = decode_ping_request(protocol::as_bytes(body));
    if (!r.complete()) return answer_now({ping_status::syntax_error, {}, {}, {}});
    const ping_request& p = r.value;
    if (!p.heartbeat_s && !p.has_folders) return answer_now({ping_status::missing_parameters, {}, {}, {}});
    for (const ping_folder& f : p.folders)
      if (f.id.empty() || f.folder_class.empty()) return answer_now({ping_status::missing_parameters, {}, {}, {}});
    if (p.has_folders && p.folders.empty()) return answer_now({ping_status::missing_parameters, {}, {}, {}});
    if (p.folders.size() > cfg_.max_folders)
      return answer_now({ping_status::too_many_folders, {}, {}, cfg_.max_folders});
    if (p.heartbeat_s) {
      const duration hb = std::chrono::seconds(*p.heartbeat_s);
      if (hb < cfg_.min_heartbeat) return answer_now({ping_status::heartbeat_out_of_range, {}, seconds_of(cfg_.min_heartbeat), {}});
      if (hb > cfg_.max_heartbeat) return answer_now({ping_status::heartbeat_out_of_range, {}, seconds_of(cfg_.max_heartbeat), {}});
      d.heartbeat_s = *p.heartbeat_s;
    }
    if (p.has_folders) d.folders = p.folders;
    if (!d.heartbeat_s || d.folders.empty()) return answer_now({ping_status::missing_parameters, {}, {}, {}});
  }
  // A change already waiting answers at once.
  if (!users_[d.user].pending.empty() && watches_inbox(d)) return answer_now({ping_status::changes, {cfg_.inbox_id}, {}, {}});
  ++n_.held;
  d.holding = true;
  d.held_conn = conn;
  d.held_until = now + std::chrono::seconds(*d.heartbeat_s);
  c.holding = dev;
  deadlines_.push({d.held_until, held_tag | dev});
}

void server_core::release(time_point now, std::uint32_t dev, const ping_response& r) {
  device& d = devices_[dev];
  d.holding = false;
  const auto it = conns_.find(d.held_conn);
  if (it == conns_.end()) return;
  connection& c = it->second;
  c.holding = none;
  ++n_.status[static_cast<int>(r.status)];
  respond(now, d.held_conn, c, wbxml_response(encode(r), now, c.keep_alive));
}

bool server_core::watches_inbox(const device& d) const {
  return std::any_of(d.folders.begin(), d.folders.end(), [&](const ping_folder& f) { return f.id == cfg_.inbox_id; });
}

byte_buffer server_core::sync(time_point now, std::uint32_t dev, std::string_view body) {
  (void)now;
  auto r = decode_sync_request(protocol::as_bytes(body));
  if (!r.complete()) return {};
  ++n_.syncs;
  device& d = devices_[dev];
  user& u = users_[d.user];
  sync_response out;
  out.collection_id = r.value.collection_id;
  out.sync_key = std::to_string(++d.sync_key);
  if (r.value.collection_id == cfg_.inbox_id) {
    while (!u.pending.empty() && out.adds.size() < r.value.window_size) {
      const pending_message m = u.pending.front();
      u.pending.pop_front();
      message_header h;
      h.server_id = cfg_.inbox_id + ":" + std::to_string(u.next_item++);
      h.to = "\"" + u.name + "\" <" + u.name + "@example.com>";
      h.display_to = u.name;
      h.from = "\"Nudge Event\" <events@example.com>";
      h.subject = "Something changed #" + std::to_string(m.id);
      h.thread_topic = h.subject;
      h.date_received = date_received_of(m.created);
      out.adds.push_back(std::move(h));
      ++u.fetched;
      ++n_.messages_sent;
    }
    out.more_available = !u.pending.empty();
  }
  return encode(out);
}

std::uint32_t server_core::user_index(std::string_view mailbox) {
  const std::string_view name = user_of_mailbox(mailbox);
  const auto it = user_by_name_.find(std::string(name));
  if (it != user_by_name_.end()) return it->second;
  const auto index = static_cast<std::uint32_t>(users_.size());
  users_.push_back(user{std::string(name), {}, 0, 0, 1, {}});
  user_by_name_.emplace(std::string(name), index);
  return index;
}

std::uint32_t server_core::device_index(std::uint32_t u, std::string_view id) {
  std::string key = std::to_string(u) + "/" + std::string(id);
  const auto it = device_by_key_.find(key);
  if (it != device_by_key_.end()) return it->second;
  const auto index = static_cast<std::uint32_t>(devices_.size());
  device d;
  d.user = u;
  d.id = std::string(id);
  devices_.push_back(std::move(d));
  users_[u].devices.push_back(index);
  device_by_key_.emplace(std::move(key), index);
  return index;
}

server_core::mailbox_handle_t server_core::mailbox_handle(std::string_view name) { return user_index(name); }

std::uint64_t server_core::inject_event(time_point now, std::string_view name) {
  return inject_event(now, mailbox_handle(name));
}

std::uint64_t server_core::inject_event(time_point now, mailbox_handle_t handle) {
  user& u = users_[handle];
  const std::uint64_t id = ++n_.events_generated;
  ++u.generated;
  if (u.pending.size() >= cfg_.max_pending) {
    ++n_.events_dropped;
    return id;
  }
  u.pending.push_back({now, id});
  for (const std::uint32_t dev : u.devices)
    if (devices_[dev].holding && watches_inbox(devices_[dev]))
      release(now, dev, ping_response{ping_status::changes, {cfg_.inbox_id}, {}, {}});
  return id;
}

std::vector<std::pair<std::string, std::uint64_t>> server_core::stats() const {
  std::vector<std::pair<std::string, std::uint64_t>> s = {{"connections", n_.connections},
                                                          {"connections_refused", n_.connections_refused},
                                                          {"open_connections", conns_.size()},
                                                          {"idle_closes", n_.idle_closes},
                                                          {"requests", n_.requests},
                                                          {"pings", n_.pings},
                                                          {"empty_pings", n_.empty_pings},
                                                          {"held", n_.held},
                                                          {"held_now", held_pings()},
                                                          {"superseded", n_.superseded},
                                                          {"syncs", n_.syncs},
                                                          {"messages_sent", n_.messages_sent},
                                                          {"bad_requests", n_.bad_requests},
                                                          {"not_found", n_.not_found},
                                                          {"unknown_commands", n_.unknown_commands},
                                                          {"devices", devices_.size()},
                                                          {"events_generated", n_.events_generated},
                                                          {"events_fetched", n_.messages_sent},
                                                          {"events_dropped", n_.events_dropped}};
  for (int st = 1; st <= 8; ++st) s.push_back({"ping_status." + std::to_string(st), n_.status[st]});
  return s;
}

std::vector<server_core::mailbox_backlog> server_core::backlog(std::size_t max, bool& truncated) const {
  std::vector<mailbox_backlog> out;
  truncated = false;
  for (const user& u : users_) {
    if (u.pending.empty()) continue;
    if (out.size() == max) {
      truncated = true;
      break;
    }
    out.push_back({u.name, u.generated, u.fetched, u.pending.size()});
  }
  return out;
}

}  // namespace nudge::activesync
