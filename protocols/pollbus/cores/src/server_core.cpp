#include "nudge/pollbus/server_core.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
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

std::size_t policy_index(rate_policy p) { return static_cast<std::size_t>(p); }

/// The service a request path names: "/Bus.asmx" (nullopt policy: the
/// default), "/fixed/Bus.asmx", ...; false when it names none.
bool service_of(std::string_view path, rate_policy fallback, rate_policy& out) {
  constexpr std::string_view leaf = "/bus.asmx";
  if (path.size() < leaf.size() || !http::iequals(path.substr(path.size() - leaf.size()), leaf)) return false;
  const std::string_view dir = path.substr(0, path.size() - leaf.size());
  if (dir.empty()) {
    out = fallback;
    return true;
  }
  if (dir.front() != '/') return false;
  const auto p = parse_rate_policy(dir.substr(1));
  if (!p) return false;
  out = *p;
  return true;
}

}  // namespace

std::size_t server_core::guid_hash::operator()(const guid& g) const {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (auto b : g) h = (h ^ b) * 1099511628211ull;
  return static_cast<std::size_t>(h);
}

server_config server_config_of(const engine::settings& k) {
  server_config c;
  c.port = static_cast<std::uint16_t>(k.integer("pollbus.port"));
  c.default_policy = parse_rate_policy(k.text("pollbus.policy")).value_or(c.default_policy);
  c.slow_interval = k.span("pollbus.interval");
  c.fast_interval = k.span("pollbus.fast_interval");
  c.quiet_period = k.span("pollbus.quiet_period");
  c.load_budget = k.number("pollbus.load_budget");
  c.max_interval = k.span("pollbus.max_interval");
  c.load_hold = k.span("pollbus.load_hold");
  c.idle_timeout = k.span("pollbus.idle_timeout");
  c.max_queue = static_cast<std::size_t>(k.integer("pollbus.max_queue"));
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
                   auto& c = conns_.try_emplace(a.conn, connection{http::request_reader(cfg_.limits), never}).first->second;
                   c.idle_deadline = now + cfg_.idle_timeout;
                   idle_.push({c.idle_deadline, a.conn});
                 },
                 [&](const engine::stream_bytes& b) { on_bytes(now, b.conn, b.bytes); },
                 [&](const engine::closed& c) { conns_.erase(c.conn); },
                 [&](const engine::timer&) {
                   while (!idle_.empty() && idle_.top().first <= now) {
                     const auto [at, conn] = idle_.top();
                     idle_.pop();
                     const auto it = conns_.find(conn);
                     if (it == conns_.end() || it->second.idle_deadline != at) continue;  // stale
                     ++n_.idle_closes;
                     drop(conn, "");
                   }
                 },
                 [&](const auto&) {},
             },
             e);
}

time_point server_core::next_deadline() const {
  // Stale entries only make the driver call early; the timer skips them.
  return idle_.empty() ? never : idle_.top().first;
}

void server_core::drop(engine::connection_id conn, std::string reason) {
  actions_.push_back(engine::close{conn, std::move(reason)});
  conns_.erase(conn);
}

void server_core::on_bytes(time_point now, engine::connection_id conn, bytes_view bytes) {
  const auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  connection& c = it->second;
  c.reader.feed(bytes);
  if (c.reader.take_continue()) {
    const auto line = http::continue_line();
    actions_.push_back(engine::send{conn, byte_buffer(line.begin(), line.end())});
  }
  for (;;) {
    auto d = c.reader.next();
    if (d.need_more()) break;
    if (d.malformed()) {
      // The reader stays refused: answer what it says and close.
      ++n_.bad_requests;
      const int status = c.reader.refusal_status() ? c.reader.refusal_status() : 400;
      actions_.push_back(engine::send{conn, http::serialize(http::plain_response(status, d.reason))});
      drop(conn, std::string(d.reason));
      return;
    }
    ++n_.requests;
    http::response r = answer(now, d.value);
    actions_.push_back(engine::send{conn, http::serialize(r)});
    // After `Connection: close` the client closes once it has read the answer
    // (and the idle timeout closes it otherwise): the answer is never cut off
    // by a close that overtakes it.
    c.idle_deadline = now + cfg_.idle_timeout;
    idle_.push({c.idle_deadline, conn});
  }
}

http::response server_core::answer(time_point now, http::request& req) {
  // Route by virtual directory, then hand the bus binding the service's own path.
  const auto q = req.target.find('?');
  const std::string path(std::string_view(req.target).substr(0, q));
  rate_policy policy = cfg_.default_policy;
  if (service_of(path, cfg_.default_policy, policy))
    req.target = std::string(service_path) + (q == std::string::npos ? "" : req.target.substr(q));
  else
    req.target = "/not-a-service";  // the binding answers 404
  response_options o;
  o.keep_alive = req.keep_alive;
  const auto call = read_bus_request(req);
  if (call.malformed()) {
    ++n_.bad_requests;
    return refusal_response(req, call.reason, o);
  }
  switch (call.value.what) {
    case bus_call::kind::poll: {
      const auto out = poll(now, policy, call.value.msg);
      return poll_response(out, call.value.enc, o);
    }
    case bus_call::kind::wsdl: ++n_.wsdl; break;
    case bus_call::kind::not_found: ++n_.not_found; break;
    default: ++n_.bad_requests; break;
  }
  return route_response(call.value, req, o, path);
}

duration server_core::load_interval() const {
  const double room = cfg_.load_budget - other_rate_;
  if (load_agents_ == 0) return cfg_.slow_interval;
  if (room <= 0) return cfg_.max_interval;
  const double seconds = std::ceil(static_cast<double>(load_agents_) / room);
  const auto wanted = std::chrono::duration_cast<duration>(std::chrono::duration<double>(seconds));
  return std::clamp(std::max(wanted, cfg_.slow_interval), cfg_.slow_interval, cfg_.max_interval);
}

duration server_core::desired_interval(time_point now, const agent& a) const {
  switch (a.policy) {
    case rate_policy::fixed: return cfg_.slow_interval;
    case rate_policy::activity:
      return a.last_traffic != never && now - a.last_traffic < cfg_.quiet_period ? cfg_.fast_interval
                                                                                 : cfg_.slow_interval;
    case rate_policy::load: return load_interval();
  }
  return cfg_.slow_interval;
}

bool server_core::must_tell(time_point now, agent& a, duration wanted) const {
  if (a.policy != rate_policy::load || wanted > a.told) return wanted != a.told;
  if (wanted == a.told) {
    a.shorter_wanted_since = never;
    return false;
  }
  if (a.shorter_wanted_since == never) a.shorter_wanted_since = now;
  return now - a.shorter_wanted_since >= cfg_.load_hold;
}

void server_core::tell_interval(agent& a, duration d, const guid& id, time_point now, std::vector<message>& out) {
  if (a.policy != rate_policy::load) {
    other_rate_ -= a.expected_rate;
    a.expected_rate = 1.0 / std::max(to_seconds(d), 0.001);
    other_rate_ += a.expected_rate;
  }
  a.told = d;
  a.shorter_wanted_since = never;
  message m;
  m.type = message_type::poll_interval;
  m.agent_id = id;
  m.timestamp_ms = timestamp_of(now);
  m.interval_ms = static_cast<std::int32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  out.push_back(std::move(m));
  ++n_.interval_messages;
}

std::vector<message> server_core::poll(time_point now, rate_policy policy, const message& in) {
  std::vector<message> out;
  ++n_.polls;
  ++n_.polls_by_policy[policy_index(policy)];
  auto it = agents_.find(in.agent_id);
  const bool registering = in.type == message_type::register_agent;
  if (!registering && it == agents_.end()) {
    ++n_.unknown_agents;
    message m;
    m.type = message_type::poll_mode;
    m.agent_id = in.agent_id;
    m.timestamp_ms = timestamp_of(now);
    m.mode = poll_mode::register_agent;
    out.push_back(std::move(m));
    return out;
  }
  if (registering) {
    ++n_.registrations;
    if (it == agents_.end()) it = agents_.emplace(in.agent_id, agent{}).first;
    agent& a = it->second;
    // A re-registration may move the agent to another service: take it out of its old policy's sums.
    if (a.counted_load) --load_agents_;
    other_rate_ -= a.expected_rate;
    a.expected_rate = 0;
    a.policy = policy;
    a.counted_load = policy == rate_policy::load;
    if (a.counted_load) ++load_agents_;
    a.told = duration{};
    a.mailbox = mailbox_index(in.user_info);
  }
  agent& a = it->second;
  bool traffic = false;
  if (in.type != message_type::empty && !registering) {
    ++n_.messages_from_agents;  // the agent's own message, taken from its request
    traffic = true;
  }
  while (!a.queue.empty()) {
    out.push_back(std::move(a.queue.front()));
    a.queue.pop_front();
    traffic = true;
  }
  mailbox& box = mailboxes_[a.mailbox];
  for (const auto& ev : box.events) {
    message m;
    m.type = message_type::chat;
    m.agent_id = in.agent_id;
    m.timestamp_ms = timestamp_of(ev.created);  // the event's creation: latency is end to end
    m.text = "changed";
    out.push_back(std::move(m));
  }
  if (!box.events.empty()) traffic = true;
  box.fetched += box.events.size();
  n_.events_fetched += box.events.size();
  box.events.clear();
  if (traffic) a.last_traffic = now;
  const duration d = desired_interval(now, a);
  if (registering || must_tell(now, a, d)) tell_interval(a, d, in.agent_id, now, out);
  return out;
}

std::uint32_t server_core::mailbox_index(std::string_view name) {
  const auto it = mailbox_by_name_.find(std::string(name));
  if (it != mailbox_by_name_.end()) return it->second;
  const auto index = static_cast<std::uint32_t>(mailboxes_.size());
  mailboxes_.push_back(mailbox{std::string(name), {}, 0, 0});
  mailbox_by_name_.emplace(std::string(name), index);
  return index;
}

server_core::mailbox_handle_t server_core::mailbox_handle(std::string_view name) { return mailbox_index(name); }

std::uint64_t server_core::inject_event(time_point now, std::string_view name) {
  return inject_event(now, mailbox_handle(name));
}

std::uint64_t server_core::inject_event(time_point now, mailbox_handle_t handle) {
  mailbox& box = mailboxes_[handle];
  const std::uint64_t id = ++n_.events_generated;
  ++box.generated;
  if (box.events.size() >= cfg_.max_queue) {
    ++n_.events_dropped;
    return id;
  }
  box.events.push_back({now, id});
  return id;
}

bool server_core::queue_to_agent(const guid& id, message m) {
  const auto it = agents_.find(id);
  if (it == agents_.end()) return false;
  it->second.queue.push_back(std::move(m));
  return true;
}

std::vector<std::pair<std::string, std::uint64_t>> server_core::stats() const {
  return {{"connections", n_.connections},
          {"connections_refused", n_.connections_refused},
          {"open_connections", conns_.size()},
          {"idle_closes", n_.idle_closes},
          {"requests", n_.requests},
          {"polls", n_.polls},
          {"polls_by_policy.fixed", n_.polls_by_policy[0]},
          {"polls_by_policy.activity", n_.polls_by_policy[1]},
          {"polls_by_policy.load", n_.polls_by_policy[2]},
          {"registrations", n_.registrations},
          {"agents", agents_.size()},
          {"unknown_agents", n_.unknown_agents},
          {"interval_messages", n_.interval_messages},
          {"messages_from_agents", n_.messages_from_agents},
          {"bad_requests", n_.bad_requests},
          {"not_found", n_.not_found},
          {"wsdl", n_.wsdl},
          {"events_generated", n_.events_generated},
          {"events_fetched", n_.events_fetched},
          {"events_dropped", n_.events_dropped}};
}

std::vector<server_core::mailbox_backlog> server_core::backlog(std::size_t max, bool& truncated) const {
  std::vector<mailbox_backlog> out;
  truncated = false;
  for (const auto& b : mailboxes_) {
    if (b.events.empty()) continue;
    if (out.size() == max) {
      truncated = true;
      break;
    }
    out.push_back({b.name, b.generated, b.fetched, b.events.size()});
  }
  return out;
}

}  // namespace nudge::pollbus
