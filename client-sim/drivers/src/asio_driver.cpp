#include "nudge/sim/asio_driver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <istream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/live/asio_bridge.hpp"
#include "nudge/protocol/random.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "tcp_wire.hpp"

namespace nudge::sim {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;
using metrics::client_metrics;
using nlohmann::json;
using protocol::byte_buffer;
using protocol::ip_endpoint;

// ==== the real driver ===========================================================================

namespace {

bool usable_v4_loopback(const ip_endpoint& e) { return !e.is_v6 && e.is_loopback(); }

// Loopback, or a network of the kernel NAT testbed (real_options::testbed_networks).
bool usable(const real_options& o, const ip_endpoint& e) {
  if (usable_v4_loopback(e)) return true;
  if (e.is_v6) return false;
  for (const auto& [net, prefix] : o.testbed_networks) {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    if ((e.v4_host_order() & mask) == (net.v4_host_order() & mask)) return true;
  }
  return false;
}

}  // namespace

std::string validate(const real_options& o) {
  const std::pair<const char*, const ip_endpoint*> eps[] = {
      {"notifier", &o.notifier}, {"notifier UDP", &o.notifier_udp}, {"control", &o.control}};
  for (const auto& [name, ep] : eps) {
    if (!usable(o, *ep))
      return std::string(name) + " endpoint " + ep->to_string() +
             " is not IPv4 loopback: real runs only ever talk to 127.0.0.0/8";
    if (ep->port == 0) return std::string(name) + " endpoint needs a port";
  }
  if (!usable(o, o.source_first)) return "source addresses must be IPv4 loopback (127.0.0.0/8)";
  if (o.source_count == 0) return "the source address range is empty";
  const std::uint64_t last = std::uint64_t{o.source_first.v4_host_order()} + o.source_count - 1;
  if (last > 0xFFFFFFFFu || !usable(o, ip_endpoint::v4(static_cast<std::uint32_t>(last), 0)))
    return o.testbed_networks.empty() ? "the source address range runs past 127.255.255.255"
                                      : "the source address range leaves the testbed's networks";
  if (o.progress_every <= duration::zero()) return "progress interval must be positive";
  if (o.script)
    for (const auto& c : *o.script)
      if (c.start < duration::zero() || !std::is_sorted(c.events.begin(), c.events.end()))
        return "a scripted client starts before time zero or has unsorted events";
  return {};
}

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

std::string one_line(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

// ---- measured wire traffic ---------------------------------------------------------------------
// IP-layer bytes as a capture's ip.len counts them; loopback IPv4 carries no IP options.
constexpr std::size_t to_server = static_cast<std::size_t>(metrics::direction::to_server);
constexpr std::size_t to_client = static_cast<std::size_t>(metrics::direction::to_client);

measured_traffic::flow udp_datagram(std::size_t payload) {
  return {1, payload, payload + tcp_wire::ipv4_header_bytes + tcp_wire::udp_header_bytes};
}

/// What every client of one group (plan.mix[g]) is made from.
struct group_setup {
  const engine::family* family = nullptr;
  std::size_t mode = 0;                   // in the family's vocabulary
  const engine::settings* keys = nullptr;  // the family's, as the plan sets them
  engine::service_address server;         // where the notifier serves the family
  /// The family's counter c is real_progress::counters[progress_slot[c]].
  std::vector<std::size_t> progress_slot;
  std::string label;  // the group's label (or mode), for log lines
};

/// Everything a slice of clients (one process) needs to run.
struct run_frame {
  const run_plan& plan;
  const real_options& opts;
  const std::vector<std::size_t>& group_of;  // client -> plan.mix index
  const std::vector<group_setup>& groups;
  const std::vector<std::string>& counter_names;  // real_progress::counters' names
  time_point t0;          // time zero: the first client starts
  time_point events_end;  // t0 + length: no event is generated from here
  time_point end;         // t0 + length + drain: every session finishes
  time_point start_of(std::size_t global) const {
    if (opts.script) return t0 + (*opts.script)[global].start;
    return t0 + plan.ramp_up * static_cast<std::int64_t>(global) / static_cast<std::int64_t>(plan.clients);
  }
  asio::ip::address_v4 source_of(std::size_t global) const {
    return asio::ip::address_v4(
        static_cast<std::uint32_t>(opts.source_first.v4_host_order() + global % opts.source_count));
  }
};

/// Warnings from any thread, handed to opts.log on the caller's thread.
class log_sink {
 public:
  void warn(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
  }
  /// Client failures: the first few are worth a line each, the rest a count.
  void client_failed(std::size_t global, std::string_view mode, std::string_view why) {
    std::lock_guard lock(mu_);
    if (++failures_ <= max_detailed)
      lines_.push_back("client " + std::to_string(global) + " (" + std::string(mode) + ") failed: " + std::string(why));
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(lines_, {});
  }
  std::uint64_t failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }
  static constexpr std::uint64_t max_detailed = 5;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::uint64_t failures_ = 0;
};

/// A worker's figures for the progress line, published every publish_every.
class progress_cells {
 public:
  explicit progress_cells(std::size_t counters) : counters_(counters) {}
  void publish(std::uint64_t started, std::uint64_t ready, std::uint64_t failed, std::uint64_t fetched,
               std::uint64_t wire, const std::vector<std::uint64_t>& counters) {
    std::lock_guard lock(mu_);
    started_ = started;
    ready_ = ready;
    failed_ = failed;
    fetched_ = fetched;
    wire_ = wire;
    counters_ = counters;
  }
  /// Adds this worker's figures to `p` (whose counters are already named).
  void add_to(real_progress& p) const {
    std::lock_guard lock(mu_);
    p.clients_started += started_;
    p.clients_ready += ready_;
    p.clients_failed += failed_;
    p.events_fetched += fetched_;
    p.modelled_wire_bytes += wire_;
    for (std::size_t c = 0; c < counters_.size() && c < p.counters.size(); ++c) p.counters[c].second += counters_[c];
  }

 private:
  mutable std::mutex mu_;
  std::uint64_t started_ = 0, ready_ = 0, failed_ = 0, fetched_ = 0, wire_ = 0;
  std::vector<std::uint64_t> counters_;
};

/// A progress report with the plan's counter names, all figures zero.
real_progress empty_progress(const run_frame& f) {
  real_progress p;
  p.clients = f.plan.clients;
  for (const auto& name : f.counter_names) p.counters.emplace_back(name, 0);
  return p;
}

/// What one process measured, per client group (plan.mix index).
struct slice_result {
  explicit slice_result(std::size_t groups = 0)
      : clients(groups, 0), metrics(groups), measured(groups), generated(groups, 0) {}
  std::vector<std::size_t> clients;
  std::vector<client_metrics> metrics;
  std::vector<measured_traffic> measured;
  std::vector<std::uint64_t> generated;
  std::uint64_t failures = 0;

  slice_result& operator+=(const slice_result& o) {
    for (std::size_t g = 0; g < clients.size() && g < o.clients.size(); ++g) {
      clients[g] += o.clients[g];
      metrics[g] += o.metrics[g];
      measured[g] += o.measured[g];
      generated[g] += o.generated[g];
    }
    failures += o.failures;
    return *this;
  }
};

json flow_to_json(const measured_traffic::flow& f) { return json::array({f.packets, f.payload_bytes, f.wire_bytes}); }

measured_traffic::flow flow_from_json(const json& j) {
  return {j.at(0).get<std::uint64_t>(), j.at(1).get<std::uint64_t>(), j.at(2).get<std::uint64_t>()};
}

json measured_to_json(const measured_traffic& m) {
  return {{"connections", m.tcp_connections},
          {"unmeasured", m.unmeasured_connections},
          {"tcp", {flow_to_json(m.tcp[0]), flow_to_json(m.tcp[1])}},
          {"udp", {flow_to_json(m.udp[0]), flow_to_json(m.udp[1])}}};
}

measured_traffic measured_from_json(const json& j) {
  measured_traffic m;
  m.tcp_connections = j.at("connections").get<std::uint64_t>();
  m.unmeasured_connections = j.at("unmeasured").get<std::uint64_t>();
  for (std::size_t d = 0; d < 2; ++d) {
    m.tcp[d] = flow_from_json(j.at("tcp").at(d));
    m.udp[d] = flow_from_json(j.at("udp").at(d));
  }
  return m;
}

json slice_to_json(const slice_result& r) {
  json ms = json::array(), wire = json::array();
  for (const auto& m : r.metrics) ms.push_back(client_metrics_to_json(m));
  for (const auto& m : r.measured) wire.push_back(measured_to_json(m));
  return {{"clients", r.clients},   {"generated", r.generated}, {"failures", r.failures},
          {"metrics", std::move(ms)}, {"measured", std::move(wire)}};
}

slice_result slice_from_json(const json& j, std::size_t groups) {
  slice_result r(groups);
  const auto& ms = j.at("metrics");
  const auto& wire = j.at("measured");
  if (ms.size() != groups || wire.size() != groups || j.at("clients").size() != groups ||
      j.at("generated").size() != groups)
    throw std::out_of_range("slice result: wrong number of client groups");
  for (std::size_t k = 0; k < groups; ++k) {
    r.clients[k] = j.at("clients").at(k).get<std::size_t>();
    r.generated[k] = j.at("generated").at(k).get<std::uint64_t>();
    r.metrics[k] = client_metrics_from_json(ms[k]);
    r.measured[k] = measured_from_json(wire[k]);
  }
  r.failures = j.at("failures").get<std::uint64_t>();
  return r;
}

// Counters travel by position: every process names them alike (from the plan).
json progress_to_json(const real_progress& p) {
  json counters = json::array();
  for (const auto& c : p.counters) counters.push_back(c.second);
  return json::array({p.clients_started, p.clients_ready, p.clients_failed, p.events_generated, p.events_fetched,
                      p.modelled_wire_bytes, std::move(counters)});
}

void add_progress_json(real_progress& p, const json& j) {
  p.clients_started += j.at(0).get<std::uint64_t>();
  p.clients_ready += j.at(1).get<std::uint64_t>();
  p.clients_failed += j.at(2).get<std::uint64_t>();
  p.events_generated += j.at(3).get<std::uint64_t>();
  p.events_fetched += j.at(4).get<std::uint64_t>();
  p.modelled_wire_bytes += j.at(5).get<std::uint64_t>();
  const auto& counters = j.at(6);
  for (std::size_t c = 0; c < counters.size() && c < p.counters.size(); ++c)
    p.counters[c].second += counters[c].get<std::uint64_t>();
}

// ---- one worker thread: its clients, one io_context, one timer over a deadline heap ------------
// The client host proper: it runs client cores through the session contract
// (nudge/engine/session.hpp). A core asks for its connections (`connect`),
// UDP sockets (`bind_udp`) and, should it need them, listeners (`listen`);
// the worker opens each on the client's own source address and feeds the
// core what happens on them. What the wire really carried is measured from
// the kernel (TCP_INFO) as each connection closes.

class worker {
 public:
  worker(const run_frame& frame, log_sink& sink, const std::vector<std::size_t>& clients)
      : f_(frame),
        sink_(sink),
        timer_(io_),
        rbuf_(64 * 1024),
        metrics_(frame.groups.size()),
        measured_(frame.groups.size()),
        clients_(frame.groups.size(), 0),
        progress_(frame.counter_names.size()) {
    // Clients start in slot order (next_start_): a script's starts need not be.
    std::vector<std::size_t> order = clients;
    if (f_.opts.script)
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return f_.start_of(a) < f_.start_of(b); });
    for (const std::size_t i : order) {
      const std::size_t g = f_.group_of[i];
      slots_.emplace_back(static_cast<std::uint32_t>(slots_.size()), i, g, f_.start_of(i));
      ++clients_[g];
    }
  }

  void run() {
    next_publish_ = live::steady_now();
    arm(next_wakeup());
    io_.run();
  }

  const progress_cells& progress() const { return progress_; }
  const std::vector<client_metrics>& metrics() const { return metrics_; }
  const std::vector<measured_traffic>& measured() const { return measured_; }
  const std::vector<std::size_t>& clients() const { return clients_; }

 private:
  /// A TCP connection of a client: one the core dialled, or one accepted on its listener.
  struct link {
    link(asio::io_context& io, engine::connection_id c) : id(c), sock(io) {}
    engine::connection_id id;
    tcp::socket sock;
    std::deque<byte_buffer> queue;
    bool writing = false;
    bool accepted = false;  // on the client's own listener (measured with the listener's SYN-ACK)
  };
  struct datagram_socket {
    datagram_socket(asio::io_context& io, engine::socket_id i) : id(i), sock(io) {}
    engine::socket_id id;
    udp::socket sock;
  };
  struct listener {
    listener(asio::io_context& io, engine::listener_id i) : id(i), acceptor(io) {}
    engine::listener_id id;
    tcp::acceptor acceptor;
  };
  struct slot {
    slot(std::uint32_t idx, std::size_t g, std::size_t grp, time_point at)
        : index(idx), global(g), group(grp), start_at(at) {}
    std::uint32_t index;
    std::size_t global;
    std::size_t group;  // plan.mix index
    time_point start_at;
    std::unique_ptr<engine::session> core;
    // Whether the core has counted the client's start / failure (local_failure counts what it has not).
    bool counted_start = false;
    bool counted_failure = false;
    // Few per client; unique_ptr keeps the sockets in place for their handlers.
    std::vector<std::unique_ptr<link>> links;
    std::vector<std::unique_ptr<datagram_socket>> sockets;
    std::vector<std::unique_ptr<listener>> listeners;
    std::vector<engine::action> scratch;
    engine::connection_id next_accepted = 1;  // driver-picked ids never carry outgoing_bit
    std::string last_notice;
    bool started = false;
    bool dead = false;
    time_point scheduled = never;

    link* find_link(engine::connection_id c) {
      for (auto& l : links)
        if (l->id == c) return l.get();
      return nullptr;
    }
    datagram_socket* find_socket(engine::socket_id i) {
      for (auto& u : sockets)
        if (u->id == i) return u.get();
      return nullptr;
    }
  };
  struct deadline {
    time_point at;
    std::uint32_t slot;
    bool operator>(const deadline& o) const { return at > o.at; }
  };
  static constexpr duration publish_every = std::chrono::milliseconds(100);

  client_metrics& m(const slot& s) { return metrics_[s.group]; }
  measured_traffic& wire(const slot& s) { return measured_[s.group]; }

  /// Every call into a core goes through here: the worker alone counts into
  /// its groups' metrics, so what changed during the call is this client's doing.
  template <class Call>
  void into_core(slot& s, Call&& call) {
    const client_metrics& mm = m(s);
    const std::uint64_t started = mm.clients_started, failed = mm.clients_failed;
    call();
    s.counted_start = s.counted_start || mm.clients_started != started;
    s.counted_failure = s.counted_failure || mm.clients_failed != failed;
  }
  void feed(slot& s, time_point now, const engine::event& e) {
    into_core(s, [&] { s.core->handle(now, e); });
  }

  // ---- time ----
  time_point next_wakeup() const {
    time_point t = std::min(f_.end, next_publish_);
    if (next_start_ < slots_.size()) t = std::min(t, slots_[next_start_].start_at);
    if (!heap_.empty()) t = std::min(t, heap_.top().at);
    return t;
  }

  void arm(time_point at) {
    if (stopping_ || (timer_pending_ && at >= armed_)) return;
    armed_ = at;
    timer_pending_ = true;
    timer_.expires_at(live::to_steady(at));  // cancels a wait already in flight
    timer_.async_wait([this](const error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      timer_pending_ = false;
      armed_ = never;
      tick();
    });
  }

  void tick() {
    if (stopping_) return;
    const time_point now = live::steady_now();
    if (now >= f_.end) return finish(now);
    // Every client of this worker has failed (the notifier went away?): nothing left to measure.
    if (dead_ == slots_.size()) return finish(now);
    while (next_start_ < slots_.size() && slots_[next_start_].start_at <= now) begin(slots_[next_start_++], now);
    while (!heap_.empty() && heap_.top().at <= now) {
      const deadline d = heap_.top();
      heap_.pop();
      slot& s = slots_[d.slot];
      if (s.dead || !s.started || s.scheduled != d.at) continue;  // superseded
      s.scheduled = never;
      feed(s, now, engine::timer{});
      after_input(s, now);
    }
    if (now >= next_publish_) {
      publish();
      next_publish_ = now + publish_every;
    }
    arm(next_wakeup());
  }

  void publish() {
    std::uint64_t started = 0, ready = 0, failed = 0, fetched = 0, wire = 0;
    counter_sums_.assign(f_.counter_names.size(), 0);
    for (std::size_t g = 0; g < metrics_.size(); ++g) {
      const client_metrics& x = metrics_[g];
      started += x.clients_started;
      ready += x.clients_ready;
      failed += x.clients_failed;
      fetched += x.events_fetched();
      wire += x.traffic.total().wire_bytes;
      const auto& slots = f_.groups[g].progress_slot;
      for (std::size_t c = 0; c < slots.size(); ++c) counter_sums_[slots[c]] += x.counter(c);
    }
    progress_.publish(started, ready, failed, fetched, wire, counter_sums_);
  }

  void finish(time_point now) {
    stopping_ = true;
    for (auto& s : slots_) {
      if (s.started) s.core->finish(now);
      close(s);
    }
    timer_.cancel();
    publish();
    io_.stop();
  }

  // ---- a client's life ----
  /// The client's core, made by its family's factory (the registry), told
  /// where the notifier serves that family.
  std::unique_ptr<engine::session> make_core(slot& s) {
    const group_setup& g = f_.groups[s.group];
    engine::client_context ctx;
    ctx.client = s.global;
    ctx.mode = g.mode;
    ctx.seed = f_.plan.seed;
    ctx.mailbox = run_plan::user_dn(s.global);
    ctx.keys = g.keys;
    ctx.server = g.server;
    ctx.wire = f_.plan.wire;
    ctx.metrics = &m(s);
    return g.family->make_client(ctx);
  }

  void begin(slot& s, time_point now) {
    into_core(s, [&] { s.core = make_core(s); });
    s.started = true;
    into_core(s, [&] { s.core->start(now); });
    after_input(s, now);
  }

  /// A socket of the client's own could not be opened: the client counts as
  /// started (unless its core counted that already) and failed.
  void local_failure(slot& s, const std::string& why) {
    if (s.dead) return;
    if (!s.counted_start) ++m(s).clients_started;
    if (!s.counted_failure) ++m(s).clients_failed;
    s.counted_start = s.counted_failure = true;
    kill(s, why);
  }

  void connect(slot& s, const engine::connect& c) {
    const auto src = f_.source_of(s.global);
    auto l = std::make_unique<link>(io_, c.conn);
    link& lk = *l;
    s.links.push_back(std::move(l));
    error_code ec;
    lk.sock.open(tcp::v4(), ec);
    if (!ec) lk.sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) return refuse(s, c.conn, "TCP socket on " + src.to_string() + ": " + ec.message());
    if (!usable(f_.opts, c.to)) return refuse(s, c.conn, c.to.to_string() + " is not IPv4 loopback");
    const ip_endpoint to = c.to;
    lk.sock.async_connect(live::to_asio<tcp::endpoint>(to), [this, &s, &lk, to](const error_code& e) {
      if (stopping_ || s.dead) return;
      const time_point now = live::steady_now();
      if (e) {
        feed(s, now, engine::refused{lk.id, "connect to " + to.to_string() + ": " + e.message()});
        return after_input(s, now);
      }
      error_code ignored;
      lk.sock.set_option(tcp::no_delay(true), ignored);
      lk.sock.non_blocking(true, ignored);
      const auto local = lk.sock.local_endpoint(ignored);
      feed(s, now, engine::connected{lk.id, live::from_asio(local)});
      arm_read(s, lk);
      after_input(s, now);
    });
  }

  void refuse(slot& s, engine::connection_id c, std::string why) {
    feed(s, live::steady_now(), engine::refused{c, std::move(why)});
  }

  void bind_udp(slot& s, const engine::bind_udp& b) {
    const auto src = f_.source_of(s.global);
    auto u = std::make_unique<datagram_socket>(io_, b.socket);
    datagram_socket& ds = *u;
    s.sockets.push_back(std::move(u));
    error_code ec;
    ds.sock.open(udp::v4(), ec);
    if (!ec) ds.sock.bind(udp::endpoint(src, b.port), ec);
    udp::endpoint local;
    if (!ec) local = ds.sock.local_endpoint(ec);
    if (!ec) ds.sock.non_blocking(true, ec);
    if (ec) return local_failure(s, "UDP socket on " + src.to_string() + ": " + ec.message());
    feed(s, live::steady_now(), engine::udp_bound{b.socket, live::from_asio(local)});
    arm_datagram(s, ds);
  }

  void listen(slot& s, const engine::listen& l) {
    const auto src = f_.source_of(s.global);
    auto lst = std::make_unique<listener>(io_, l.listener);
    listener& ls = *lst;
    s.listeners.push_back(std::move(lst));
    error_code ec;
    const tcp::endpoint at(src, l.port);
    ls.acceptor.open(at.protocol(), ec);
    if (!ec) ls.acceptor.bind(at, ec);
    if (!ec) ls.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    tcp::endpoint local;
    if (!ec) local = ls.acceptor.local_endpoint(ec);
    if (ec) return local_failure(s, "listening on " + src.to_string() + ": " + ec.message());
    feed(s, live::steady_now(), engine::listening{l.listener, live::from_asio(local)});
    accept_next(s, ls);
  }

  void accept_next(slot& s, listener& ls) {
    ls.acceptor.async_accept([this, &s, &ls](const error_code& ec, tcp::socket sock) {
      if (stopping_ || s.dead || ec) return;
      const time_point now = live::steady_now();
      error_code ignored;
      const auto peer = sock.remote_endpoint(ignored);
      auto l = std::make_unique<link>(io_, s.next_accepted++);
      link& lk = *l;
      lk.sock = std::move(sock);
      lk.accepted = true;
      lk.sock.set_option(tcp::no_delay(true), ignored);
      lk.sock.non_blocking(true, ignored);
      s.links.push_back(std::move(l));
      feed(s, now, engine::accepted{ls.id, lk.id, live::from_asio(peer)});
      arm_read(s, lk);
      after_input(s, now);
      accept_next(s, ls);
    });
  }

  /// A failed client stops: its sockets close, its failure is reported once.
  void kill(slot& s, std::string_view why) {
    if (s.dead) return;
    s.dead = true;
    ++dead_;
    sink_.client_failed(s.global, f_.groups[s.group].label, why);
    close(s);
  }

  /// Measures, then closes. Every connection's TCP_INFO is read before any
  /// closes, so nothing the notifier does about one closing lands in another's
  /// count; datagrams still queued on the UDP sockets are read and counted.
  void close(slot& s) {
    error_code ignored;
    measured_traffic& w = wire(s);
    for (auto& l : s.links)
      if (l->sock.is_open() && !tcp_wire::add_connection(l->sock.native_handle(), w, l->accepted))
        ++w.unmeasured_connections;
    for (auto& u : s.sockets) {
      if (!u->sock.is_open()) continue;
      for (;;) {  // the socket is non-blocking since bind_udp
        udp::endpoint from;
        error_code e;
        const std::size_t n = u->sock.receive_from(asio::buffer(rbuf_), from, 0, e);
        if (e) break;
        w.udp[to_client] += udp_datagram(n);
      }
    }
    for (auto& l : s.links)
      if (l->sock.is_open()) l->sock.close(ignored);
    for (auto& u : s.sockets)
      if (u->sock.is_open()) u->sock.close(ignored);
    for (auto& ls : s.listeners)
      if (ls->acceptor.is_open()) ls->acceptor.close(ignored);
  }

  /// The core closed a connection: measured first, as at the end of the run.
  void close_link(slot& s, link& lk) {
    if (!lk.sock.is_open()) return;
    measured_traffic& w = wire(s);
    if (!tcp_wire::add_connection(lk.sock.native_handle(), w, lk.accepted)) ++w.unmeasured_connections;
    error_code ignored;
    lk.sock.close(ignored);
  }

  // ---- after every input: carry out the core's actions, re-arm its deadline ----
  void after_input(slot& s, time_point now) {
    if (s.dead) return;
    for (;;) {
      auto& acts = s.core->actions();
      if (acts.empty()) break;
      s.scratch.swap(acts);
      for (auto& a : s.scratch) {
        if (s.dead) break;
        std::visit(overloaded{
                       [&](engine::send& x) {
                         if (link* lk = s.find_link(x.conn); lk && lk->sock.is_open()) send_tcp(s, *lk, std::move(x.bytes));
                       },
                       [&](engine::send_datagram& x) {
                         // Only ever to loopback; a datagram that cannot go now is lost, as UDP may be.
                         datagram_socket* u = s.find_socket(x.socket);
                         if (!u || !u->sock.is_open() || !usable(f_.opts, x.to)) return;
                         error_code e;
                         const std::size_t n = u->sock.send_to(asio::buffer(x.bytes), live::to_asio<udp::endpoint>(x.to), 0, e);
                         if (!e) wire(s).udp[to_server] += udp_datagram(n);
                       },
                       [&](engine::close& x) {
                         if (link* lk = s.find_link(x.conn)) close_link(s, *lk);
                       },
                       [&](engine::notice& x) { s.last_notice = std::move(x.text); },
                       [&](engine::connect& x) { connect(s, x); },
                       [&](engine::bind_udp& x) { bind_udp(s, x); },
                       [&](engine::listen& x) { listen(s, x); },
                   },
                   a);
      }
      s.scratch.clear();
      if (s.dead) return;
    }
    if (const std::string_view why = s.core->failure(); !why.empty()) return kill(s, std::string(why));
    const time_point d = s.core->next_deadline();
    if (d != s.scheduled) {
      s.scheduled = d;
      if (d != never) {
        heap_.push({d, s.index});
        arm(std::max(d, now));
      }
    }
  }

  void send_tcp(slot& s, link& lk, byte_buffer bytes) {
    lk.queue.push_back(std::move(bytes));
    if (!lk.writing) write_next(s, lk);
  }

  void write_next(slot& s, link& lk) {
    if (lk.queue.empty()) {
      lk.writing = false;
      return;
    }
    lk.writing = true;
    // deque::push_back keeps references to the front valid while it is written.
    asio::async_write(lk.sock, asio::buffer(lk.queue.front()), [this, &s, &lk](const error_code& ec, std::size_t) {
      if (stopping_ || s.dead || !lk.sock.is_open()) return;  // the core closed it: never echoed
      if (ec) return closed(s, lk);
      lk.queue.pop_front();
      write_next(s, lk);
    });
  }

  void closed(slot& s, link& lk) {
    const time_point now = live::steady_now();
    feed(s, now, engine::closed{lk.id});
    close_link(s, lk);  // gone for the core (its close is never echoed): measured and closed now
    after_input(s, now);
  }

  void arm_read(slot& s, link& lk) {
    lk.sock.async_wait(tcp::socket::wait_read, [this, &s, &lk](const error_code& ec) {
      if (stopping_ || s.dead || !lk.sock.is_open()) return;
      if (ec) return closed(s, lk);
      const time_point now = live::steady_now();
      bool eof = false;
      for (;;) {
        error_code e;
        const std::size_t n = lk.sock.read_some(asio::buffer(rbuf_), e);
        if (e == asio::error::would_block || e == asio::error::try_again) break;
        if (e) {
          eof = true;
          break;
        }
        feed(s, now, engine::stream_bytes{lk.id, {rbuf_.data(), n}});
        if (n < rbuf_.size() || !s.core->failure().empty()) break;
      }
      if (eof && s.core->failure().empty()) {
        feed(s, now, engine::closed{lk.id});
        // The peer's FIN: the core forgets the connection, so the socket closes
        // here, not at the end of the run (a webhook subscriber takes a
        // connection per callback and would otherwise hold them all).
        close_link(s, lk);
      }
      after_input(s, now);
      if (!s.dead && lk.sock.is_open()) arm_read(s, lk);
    });
  }

  void arm_datagram(slot& s, datagram_socket& u) {
    u.sock.async_wait(udp::socket::wait_read, [this, &s, &u](const error_code& ec) {
      if (stopping_ || s.dead || ec) return;
      const time_point now = live::steady_now();
      for (int i = 0; i < 64; ++i) {
        udp::endpoint from;
        error_code e;
        const std::size_t n = u.sock.receive_from(asio::buffer(rbuf_), from, 0, e);
        if (e) break;  // would_block, or an ICMP error surfacing: nothing to deliver
        wire(s).udp[to_client] += udp_datagram(n);
        feed(s, now, engine::datagram{u.id, live::from_asio(from), {rbuf_.data(), n}});
      }
      after_input(s, now);
      if (!s.dead) arm_datagram(s, u);
    });
  }

  const run_frame& f_;
  log_sink& sink_;
  asio::io_context io_{1};
  asio::steady_timer timer_;
  std::vector<std::uint8_t> rbuf_;
  std::vector<client_metrics> metrics_;       // by group
  std::vector<measured_traffic> measured_;    // by group
  std::vector<std::size_t> clients_;          // by group
  std::vector<std::uint64_t> counter_sums_;   // publish()'s scratch
  std::deque<slot> slots_;
  std::priority_queue<deadline, std::vector<deadline>, std::greater<>> heap_;
  std::size_t next_start_ = 0;
  std::size_t dead_ = 0;
  time_point armed_ = never;
  time_point next_publish_{};
  bool timer_pending_ = false;
  bool stopping_ = false;
  progress_cells progress_;
};

// ---- the notifier's control port ---------------------------------------------------------------

std::string seconds_text(duration d) {
  std::ostringstream out;
  out << std::chrono::duration<double>(d).count() << " s";
  return out.str();
}

/// The control port did not answer in time.
struct control_timeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One connection to the notifier's control port where connecting, sending
/// and every awaited reply line must finish within `timeout`: a port that
/// accepts but never answers (a wedged notifier, some other program) fails
/// the call with a reason instead of hanging the run. Throws std::runtime_error.
class control_connection {
 public:
  control_connection(const ip_endpoint& at, duration timeout) : at_(at), timeout_(timeout), sock_(io_) {}

  /// An error (refused, unreachable, timed out) rather than a throw: callers
  /// word their own hint.
  error_code connect() {
    error_code result = asio::error::timed_out;
    sock_.async_connect(live::to_asio<tcp::endpoint>(at_), [&](const error_code& ec) { result = ec; });
    if (!finish_within()) return asio::error::timed_out;
    if (!result) sock_.set_option(tcp::no_delay(true), result);
    return result;
  }

  /// Sends `request` and reads `replies` lines into `out`; `what` names the
  /// request in the timeout's message ("SERVICES", "a batch of EVENT lines").
  void exchange(std::string_view request, std::size_t replies, std::vector<std::string>& out, std::string_view what) {
    out.clear();
    error_code failed;
    asio::async_write(sock_, asio::buffer(request), [&](const error_code& ec, std::size_t) { failed = ec; });
    if (!finish_within()) throw timed_out(what);
    if (failed) throw std::runtime_error(failed.message());
    while (out.size() < replies) {
      std::size_t line_end = 0;
      asio::async_read_until(sock_, in_, '\n', [&](const error_code& ec, std::size_t n) {
        failed = ec;
        line_end = n;
      });
      if (!finish_within()) throw timed_out(what);
      if (failed) throw std::runtime_error(failed == asio::error::eof ? "the control port closed the connection"
                                                                     : failed.message());
      std::string line(asio::buffers_begin(in_.data()), asio::buffers_begin(in_.data()) + line_end - 1);
      in_.consume(line_end);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      out.push_back(std::move(line));
    }
  }

  void close() {
    error_code ignored;
    sock_.close(ignored);
  }

 private:
  /// Runs the pending operation; false (and the socket closed) when it is not
  /// done within the timeout.
  bool finish_within() {
    io_.restart();
    io_.run_for(timeout_);
    if (io_.stopped()) return true;  // out of work: the handler ran
    close();
    io_.restart();
    io_.run();  // the cancelled handler
    return false;
  }

  control_timeout timed_out(std::string_view what) const {
    return control_timeout("the control port at " + at_.to_string() + " did not answer " + std::string(what) +
                              " within " + seconds_text(timeout_));
  }

  ip_endpoint at_;
  duration timeout_;
  asio::io_context io_;
  tcp::socket sock_;
  asio::streambuf in_;
};

// ---- mailbox events through the notifier's control port --------------------------------------

/// Each mailbox's events from the run's event_schedule, the one the virtual
/// driver draws from (Poisson, MMPP, business hours; seeded per client, so the
/// times do not depend on how clients are split over processes), mapped from
/// time zero onto the clock and sent to the notifier's control port when due.
class event_driver {
 public:
  event_driver(const run_frame& frame, log_sink& sink, const std::vector<std::size_t>& clients)
      : f_(frame), sink_(sink), stream_(frame.plan, clients), generated_(frame.groups.size(), 0) {
    if (f_.opts.script) {
      for (const std::size_t c : clients)
        for (const duration at : (*f_.opts.script)[c].events) scripted_.push_back({time_point{} + at, c});
      std::sort(scripted_.begin(), scripted_.end(), [](const event_stream::event& a, const event_stream::event& b) {
        return a.at != b.at ? a.at < b.at : a.client < b.client;
      });
    }
  }

  void run() {
    if (empty()) return;
    try {
      control_connection control(f_.opts.control, f_.opts.control_timeout);
      if (const error_code ec = control.connect()) throw std::runtime_error("cannot connect: " + ec.message());
      std::string out;
      std::vector<std::string> replies;
      std::vector<event_stream::event> batch;
      while (!empty() && !stop_.load(std::memory_order_relaxed)) {
        const time_point now = live::steady_now();
        out.clear();
        batch.clear();
        while (!empty() && on_clock(peek()) <= now && batch.size() < max_batch) {
          const auto e = pop();
          batch.push_back(e);
          // Named, so that only the client's own family's core learns of the mailbox.
          out += "EVENT@";
          out += f_.groups[f_.group_of[e.client]].family->name;
          out += ' ';
          out += run_plan::user_dn(e.client);
          out += '\n';
        }
        if (!batch.empty()) {
          control.exchange(out, batch.size(), replies, "a batch of EVENT lines");
          for (std::size_t k = 0; k < batch.size(); ++k) {  // answers come in order
            const auto& e = batch[k];
            const std::string& line = replies[k];
            if (line.rfind("OK", 0) == 0) {
              ++generated_[f_.group_of[e.client]];
              total_.fetch_add(1, std::memory_order_relaxed);
              if (f_.opts.on_event) f_.opts.on_event(e.client, e.at - time_point{});
            } else if (++refused_ <= 3) {
              sink_.warn("control port refused an event: " + one_line(line));
            }
          }
          if (batch.size() == max_batch) continue;  // behind schedule: catch up first
        }
        if (empty()) break;
        const time_point wake = std::min(on_clock(peek()), live::steady_now() + std::chrono::milliseconds(50));
        std::this_thread::sleep_until(live::to_steady(wake));
      }
    } catch (const std::exception& e) {
      sink_.warn(std::string("control port ") + f_.opts.control.to_string() + ": " + e.what() +
                 "; no further events are generated");
    }
  }

  void stop() { stop_.store(true, std::memory_order_relaxed); }
  std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }
  const std::vector<std::uint64_t>& generated() const { return generated_; }

 private:
  static constexpr std::size_t max_batch = 256;

  // The plan's event_schedule, or the script's events when there is a script.
  bool empty() const { return f_.opts.script ? next_scripted_ >= scripted_.size() : stream_.empty(); }
  event_stream::event peek() const { return f_.opts.script ? scripted_[next_scripted_] : stream_.peek(); }
  event_stream::event pop() { return f_.opts.script ? scripted_[next_scripted_++] : stream_.pop(); }

  // Schedule times are since time zero; the clock's time zero is t0.
  time_point on_clock(const event_stream::event& e) const { return f_.t0 + (e.at - time_point{}); }

  const run_frame& f_;
  log_sink& sink_;
  event_stream stream_;
  std::vector<event_stream::event> scripted_;  // the script's events, in time order
  std::size_t next_scripted_ = 0;
  std::vector<std::uint64_t> generated_;  // by group
  std::atomic<std::uint64_t> total_{0};
  std::atomic<bool> stop_{false};
  std::uint64_t refused_ = 0;
};

// ---- one process's slice ----------------------------------------------------------------------

using progress_fn = std::function<void(const real_progress&)>;
using log_fn = std::function<void(std::string_view)>;

std::size_t default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

slice_result run_slice(const run_frame& f, const std::vector<std::size_t>& clients, std::size_t threads,
                       const progress_fn& progress, const log_fn& log) {
  log_sink sink;
  threads = std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(1, clients.size()));
  std::vector<std::unique_ptr<worker>> workers;
  {
    std::vector<std::vector<std::size_t>> parts(threads);
    for (std::size_t k = 0; k < clients.size(); ++k) parts[k % threads].push_back(clients[k]);
    for (auto& p : parts) workers.push_back(std::make_unique<worker>(f, sink, p));
  }
  event_driver events(f, sink, clients);

  std::vector<std::exception_ptr> errors(workers.size());
  std::atomic<std::size_t> running{workers.size()};
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < workers.size(); ++w)
    pool.emplace_back([&, w] {
      try {
        if (f.opts.enter_client_network) f.opts.enter_client_network();
        workers[w]->run();
      } catch (...) {
        errors[w] = std::current_exception();
      }
      running.fetch_sub(1);
    });
  std::thread event_thread([&] { events.run(); });

  auto snapshot = [&] {
    real_progress p = empty_progress(f);
    p.elapsed = live::steady_now() - f.t0;
    for (const auto& w : workers) w->progress().add_to(p);
    p.events_generated = events.total();
    return p;
  };
  auto flush_logs = [&] {
    for (const auto& line : sink.take())
      if (log) log(line);
  };

  auto next_progress = std::chrono::steady_clock::now() + f.opts.progress_every;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    flush_logs();
    if (progress && std::chrono::steady_clock::now() >= next_progress) {
      progress(snapshot());
      next_progress += f.opts.progress_every;
    }
  }
  for (auto& t : pool) t.join();
  events.stop();
  event_thread.join();
  flush_logs();
  if (progress) progress(snapshot());
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);

  slice_result r(f.groups.size());
  for (const auto& w : workers)
    for (std::size_t g = 0; g < f.groups.size(); ++g) {
      r.clients[g] += w->clients()[g];
      r.metrics[g] += w->metrics()[g];
      r.measured[g] += w->measured()[g];
    }
  r.generated = events.generated();
  r.failures = sink.failures();
  return r;
}

// ---- worker processes ---------------------------------------------------------------------------

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the parent is gone: nothing left to tell
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

[[noreturn]] void child_main(const run_frame& f, std::size_t index, std::size_t count, std::size_t threads, int fd) {
  int code = 0;
  try {
    std::vector<std::size_t> mine;
    for (std::size_t i = index; i < f.plan.clients; i += count) mine.push_back(i);
    auto r = run_slice(
        f, mine, threads, [fd](const real_progress& p) { write_all(fd, "P " + progress_to_json(p).dump() + "\n"); },
        [fd](std::string_view line) { write_all(fd, "L " + one_line(line) + "\n"); });
    write_all(fd, "R " + slice_to_json(r).dump() + "\n");
  } catch (const std::exception& e) {
    write_all(fd, "E " + one_line(e.what()) + "\n");
    code = 1;
  } catch (...) {
    write_all(fd, "E unknown error\n");
    code = 1;
  }
  ::_exit(code);  // no atexit handlers, no flushing of the parent's stdio buffers
}

slice_result run_processes(const run_frame& f, std::size_t count, std::size_t threads) {
  struct child {
    pid_t pid = -1;
    int fd = -1;
    std::string buf;
    json progress;
    std::optional<slice_result> result;
    std::string error;
    bool open = true;
  };
  std::vector<child> children(count);
  std::fflush(nullptr);
  for (std::size_t k = 0; k < count; ++k) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      ::close(p[0]);
      ::close(p[1]);
      for (auto& c : children) {
        if (c.pid <= 0) continue;
        ::kill(c.pid, SIGTERM);
        ::waitpid(c.pid, nullptr, 0);
      }
      throw std::runtime_error(std::string("fork: ") + std::strerror(err));
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a worker never outlives its parent
      ::close(p[0]);
      for (std::size_t j = 0; j < k; ++j) ::close(children[j].fd);
      child_main(f, k, count, threads, p[1]);
    }
    ::close(p[1]);
    children[k].pid = pid;
    children[k].fd = p[0];
  }

  auto report = [&] {
    if (!f.opts.progress) return;
    real_progress p = empty_progress(f);
    p.elapsed = live::steady_now() - f.t0;
    p.processes = count;
    for (const auto& c : children)
      if (!c.progress.is_null()) add_progress_json(p, c.progress);
    f.opts.progress(p);
  };
  auto next_progress = std::chrono::steady_clock::now() + f.opts.progress_every;
  std::vector<pollfd> fds;
  char chunk[65536];
  for (;;) {
    fds.clear();
    for (const auto& c : children)
      if (c.open) fds.push_back({c.fd, POLLIN, 0});
    if (fds.empty()) break;
    const int ready = ::poll(fds.data(), fds.size(), 100);
    if (ready < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    for (auto& c : children) {
      if (!c.open) continue;
      const auto it = std::find_if(fds.begin(), fds.end(), [&](const pollfd& p) { return p.fd == c.fd; });
      if (it == fds.end() || !(it->revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(c.fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        c.open = false;
        ::close(c.fd);
        continue;
      }
      c.buf.append(chunk, static_cast<std::size_t>(n));
      std::size_t pos;
      while ((pos = c.buf.find('\n')) != std::string::npos) {
        const std::string line = c.buf.substr(0, pos);
        c.buf.erase(0, pos + 1);
        if (line.size() < 2) continue;
        const std::string_view body = std::string_view(line).substr(2);
        try {
          switch (line[0]) {
            case 'P': c.progress = json::parse(body); break;
            case 'L':
              if (f.opts.log) f.opts.log(body);
              break;
            case 'R': c.result = slice_from_json(json::parse(body), f.groups.size()); break;
            case 'E': c.error = std::string(body); break;
            default: break;
          }
        } catch (const std::exception& e) {
          c.error = std::string("unreadable report from the worker process: ") + e.what();
        }
      }
    }
    if (std::chrono::steady_clock::now() >= next_progress) {
      report();
      next_progress += f.opts.progress_every;
    }
  }
  report();

  slice_result total(f.groups.size());
  std::string failure;
  for (std::size_t k = 0; k < count; ++k) {
    auto& c = children[k];
    int status = 0;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (c.result && c.error.empty() && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      total += *c.result;
      continue;
    }
    if (failure.empty()) {
      failure = "worker process " + std::to_string(k) + " (pid " + std::to_string(c.pid) + ") failed: ";
      if (!c.error.empty()) failure += c.error;
      else if (WIFSIGNALED(status)) failure += std::string("killed by signal ") + std::to_string(WTERMSIG(status));
      else failure += "exit status " + std::to_string(WEXITSTATUS(status));
    }
  }
  if (!failure.empty()) throw std::runtime_error(failure);
  return total;
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::size_t fd_budget(const real_options& o) {
  if (o.max_fds_per_process) return o.max_fds_per_process;
  rlimit rl{};
  std::size_t limit = 1024;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = static_cast<std::size_t>(rl.rlim_cur);
  else if (rl.rlim_cur == RLIM_INFINITY) limit = 1u << 20;
  constexpr std::size_t reserve = 2000;  // stdio, epoll/eventfd/timerfd per thread, control, pipes, libraries
  return limit > 2 * reserve ? limit - reserve : limit / 2;
}

void check_reachable(const ip_endpoint& ep, const std::string& what, const std::string& hint) {
  asio::io_context io;
  tcp::socket s(io);
  error_code ec;
  s.connect(live::to_asio<tcp::endpoint>(ep), ec);
  if (ec)
    throw std::runtime_error("cannot reach the notifier's " + what + " at " + ep.to_string() + ": " + ec.message() +
                             " (" + hint + ")");
  s.close(ec);
}

// ---- where the notifier serves each family -------------------------------------------------------

/// The options' own addresses: --notifier and --notifier-udp name EMSMDB's
/// listener 0 (DCE/RPC) and socket 0 (pings).
constexpr std::string_view options_family = "emsmdb";

engine::service_address options_service(const real_options& o) {
  engine::service_address a;
  a.listeners.push_back({0, o.notifier});
  a.sockets.push_back({0, o.notifier_udp});
  return a;
}

void set_endpoint(std::vector<engine::service_address::named_endpoint>& eps, std::uint32_t id, const ip_endpoint& at) {
  for (auto& e : eps)
    if (e.id == id) {
      e.at = at;
      return;
    }
  eps.push_back({id, at});
}

engine::service_address service_from_json(const json& j) {
  engine::service_address a;
  const auto rows = [](const json& list, std::vector<engine::service_address::named_endpoint>& out) {
    for (const auto& row : list) {
      const auto at = ip_endpoint::parse(row.at("at").get<std::string>());
      if (!at) throw std::runtime_error("an endpoint that does not parse: " + row.at("at").get<std::string>());
      out.push_back({row.at("id").get<std::uint32_t>(), *at});
    }
  };
  rows(j.at("listeners"), a.listeners);
  rows(j.at("sockets"), a.sockets);
  return a;
}

/// The control port's SERVICES reply; nullopt, and `why`, when it gives none.
/// Throws when the port accepts but does not answer within `timeout`: that
/// is no notifier to run against.
std::optional<json> ask_services(const ip_endpoint& control, duration timeout, std::string& why) {
  control_connection conn(control, timeout);
  if (const error_code ec = conn.connect()) {
    why = "cannot reach the notifier's control port at " + control.to_string() + ": " + ec.message();
    return std::nullopt;
  }
  std::vector<std::string> reply_lines;
  try {
    conn.exchange("SERVICES\n", 1, reply_lines, "SERVICES");
  } catch (const control_timeout&) {
    throw;
  } catch (const std::exception& e) {
    why = "the notifier's control port at " + control.to_string() + " gave no SERVICES list (" + e.what() + ")";
    return std::nullopt;
  }
  conn.close();
  const std::string& line = reply_lines.front();
  try {
    json reply = json::parse(line);
    if (!reply.is_object()) throw std::runtime_error("not a JSON object");
    return reply;
  } catch (const std::exception& e) {
    why = "the notifier's control port at " + control.to_string() + " gave no SERVICES list (" +
          (line.empty() ? std::string(e.what()) : one_line(line)) + ")";
    return std::nullopt;
  }
}

/// Where the notifier serves each of `families`: its SERVICES reply, with the
/// options' stated addresses on top; without a reply, the options' family
/// still runs on the options' addresses (a notifier without --control), and
/// `no_reply` says why there was none.
std::vector<family_service> find_services(const std::vector<const engine::family*>& families, const real_options& o,
                                          std::string& no_reply) {
  const bool all_stated = o.notifier_stated && o.notifier_udp_stated;
  const bool ask = std::any_of(families.begin(), families.end(),
                               [&](const engine::family* f) { return f->name != options_family || !all_stated; });
  std::string why;
  std::optional<json> reply;
  if (ask) reply = ask_services(o.control, o.control_timeout, why);
  std::vector<family_service> out;
  for (const engine::family* f : families) {
    family_service s{f->name, {}};
    const bool from_options = f->name == options_family;
    if (reply && reply->contains(f->name)) {
      try {
        s.at = service_from_json(reply->at(f->name));
      } catch (const std::exception& e) {
        throw std::runtime_error("the notifier's SERVICES entry for " + f->name + " does not read: " + e.what());
      }
    } else if (from_options) {
      s.at = options_service(o);
      if (!reply) no_reply = why;
    } else if (reply) {
      std::string served;
      for (const auto& [name, where] : reply->items()) served += (served.empty() ? "" : ", ") + name;
      throw std::runtime_error("the notifier at " + o.control.to_string() + " does not serve " + f->name +
                               " (it serves " + (served.empty() ? std::string("nothing") : served) + ")");
    } else {
      throw std::runtime_error("cannot learn where the notifier serves " + f->name + ": " + why);
    }
    if (from_options) {
      if (o.notifier_stated) set_endpoint(s.at.listeners, 0, o.notifier);
      if (o.notifier_udp_stated) set_endpoint(s.at.sockets, 0, o.notifier_udp);
    }
    for (const auto* eps : {&s.at.listeners, &s.at.sockets})
      for (const auto& e : *eps)
        if (!usable(o, e.at) || e.at.port == 0)
          throw std::runtime_error("the notifier serves " + f->name + " on " + e.at.to_string() +
                                   ": real runs only ever talk to 127.0.0.0/8");
    out.push_back(std::move(s));
  }
  return out;
}

/// Sockets (connections, UDP sockets, listeners) a client of group `g` opens
/// when it starts: what the descriptor budget counts per client. A probe core
/// is made and started; it is sans-IO, so nothing opens.
std::size_t sockets_at_start(const group_setup& g, const run_plan& plan) {
  client_metrics scratch = engine::metrics_for(*g.family);
  engine::client_context ctx;
  ctx.mode = g.mode;
  ctx.seed = plan.seed;
  ctx.mailbox = run_plan::user_dn(0);
  ctx.keys = g.keys;
  ctx.server = g.server;
  ctx.wire = plan.wire;
  ctx.metrics = &scratch;
  const auto core = g.family->make_client(ctx);
  core->start(time_point{});
  std::size_t n = 0;
  for (const auto& a : core->actions())
    if (std::holds_alternative<engine::connect>(a) || std::holds_alternative<engine::bind_udp>(a) ||
        std::holds_alternative<engine::listen>(a))
      ++n;
  return std::max<std::size_t>(n, 1);
}

/// The plan's client groups, each with its family, mode and keys.
struct plan_setup {
  std::vector<const engine::family*> families;  // in order of first mention
  std::deque<engine::settings> keys;            // by family, then groups' own; stable addresses
  std::vector<std::size_t> family_of;           // by group: an index into families
  std::vector<group_setup> groups;
  std::vector<std::string> counter_names;
};

plan_setup set_up(const run_plan& plan) {
  protocols::register_all();
  plan_setup p;
  for (const auto& g : plan.mix) {
    const engine::family* f = engine::registry::instance().find(g.protocol);
    if (!f || !f->make_client) throw std::runtime_error("no client for protocol " + g.protocol + " is registered");
    auto at = std::find(p.families.begin(), p.families.end(), f);
    if (at == p.families.end()) {
      p.families.push_back(f);
      at = p.families.end() - 1;
    }
    p.family_of.push_back(static_cast<std::size_t>(at - p.families.begin()));
  }
  // Each family's keys as the plan sets them (its EMSMDB fields, family_keys);
  // a group with keys of its own gets its own copy (as the virtual driver does).
  for (const engine::family* f : p.families) p.keys.push_back(plan.settings_for(*f));
  for (std::size_t g = 0; g < plan.mix.size(); ++g) {
    const std::size_t k = p.family_of[g];
    const engine::family& f = *p.families[k];
    group_setup s;
    s.family = &f;
    s.mode = engine::index_of(f.words.modes, plan.mix[g].mode).value_or(0);
    if (plan.mix[g].keys.empty()) {
      s.keys = &p.keys[k];
    } else {
      p.keys.push_back(plan.settings_for(f, g));
      s.keys = &p.keys.back();
    }
    s.label = plan.mix[g].name();
    for (const auto& c : f.words.counters) {
      auto at = std::find(p.counter_names.begin(), p.counter_names.end(), c.name);
      if (at == p.counter_names.end()) at = p.counter_names.insert(p.counter_names.end(), c.name);
      s.progress_slot.push_back(static_cast<std::size_t>(at - p.counter_names.begin()));
    }
    p.groups.push_back(std::move(s));
  }
  return p;
}

}  // namespace

run_result run_real(const run_plan& plan, const real_options& opts) {
  if (auto e = plan.validate(); !e.empty()) throw std::runtime_error("invalid run plan: " + e);
  if (auto e = validate(opts); !e.empty()) throw std::runtime_error(e);
  if (!plan.nat_mix.empty())
    throw std::runtime_error("a NAT mix is modelled in virtual time only; real runs use plain loopback");
  plan_setup setup = set_up(plan);
  std::string no_services;
  const std::vector<family_service> services = find_services(setup.families, opts, no_services);
  for (std::size_t g = 0; g < setup.groups.size(); ++g) setup.groups[g].server = services[setup.family_of[g]].at;
  raise_fd_limit();

  if (opts.script && opts.script->size() != plan.clients)
    throw std::runtime_error("the script names " + std::to_string(opts.script->size()) + " clients, the plan " +
                             std::to_string(plan.clients));
  std::vector<std::size_t> group_of;
  if (opts.script) {
    for (const auto& c : *opts.script) {
      if (c.group >= plan.mix.size()) throw std::runtime_error("a scripted client names no group of the plan");
      group_of.push_back(c.group);
    }
  } else {
    group_of = plan.assign_groups();
  }
  const bool scripted_events =
      opts.script && std::any_of(opts.script->begin(), opts.script->end(), [](const scripted_client& c) {
        return !c.events.empty();
      });
  std::vector<std::size_t> sockets_per_client;
  for (const auto& g : setup.groups) sockets_per_client.push_back(sockets_at_start(g, plan));
  std::size_t fds = 0;
  for (const std::size_t g : group_of) fds += sockets_per_client[g];
  const std::size_t budget = std::max<std::size_t>(fd_budget(opts), 3);
  std::size_t processes = opts.processes ? opts.processes : (fds + budget - 1) / budget;
  processes = std::clamp<std::size_t>(processes, 1, plan.clients);

  for (const auto& s : services)
    for (const auto& l : s.at.listeners)
      check_reachable(l.at, s.family + " listener " + std::to_string(l.id),
                      no_services.empty() ? "is the notifier running?"
                                          : "is the notifier running? no SERVICES list either: " + no_services);
  if (opts.script ? scripted_events : plan.events_per_client_hour > 0)
    check_reachable(opts.control, "control port", "is `notifier --control " + opts.control.to_string() + "` running?");

  // The capture hook runs before time zero is fixed, so however long it takes
  // (opening a capture device), the clients still start start_delay later.
  if (opts.before_clients) opts.before_clients(services);
  struct after_guard {
    const std::function<void()>& fn;
    ~after_guard() {
      if (fn) fn();
    }
  } after{opts.after_clients};

  const auto wall_start = std::chrono::steady_clock::now();
  const time_point t0 = live::steady_now() + opts.start_delay;
  const run_frame frame{plan,
                        opts,
                        group_of,
                        setup.groups,
                        setup.counter_names,
                        t0,
                        t0 + plan.length,
                        t0 + plan.length + plan.drain};
  const std::size_t total_threads = opts.workers ? opts.workers : default_threads();
  const std::size_t threads = std::max<std::size_t>(1, (total_threads + processes - 1) / processes);

  slice_result s(plan.mix.size());
  if (processes == 1) {
    std::vector<std::size_t> all(plan.clients);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    s = run_slice(frame, all, threads, opts.progress, opts.log);
  } else {
    s = run_processes(frame, processes, threads);
  }
  if (s.failures > log_sink::max_detailed * processes && opts.log)
    opts.log(std::to_string(s.failures) + " client failures in all (the first are shown above)");
  std::uint64_t unmeasured = 0;
  for (const auto& m : s.measured) unmeasured += m.unmeasured_connections;
  if (unmeasured > 0 && opts.log)
    opts.log(std::to_string(unmeasured) + " TCP connections could not be measured (TCP_INFO without tcpi_bytes_sent "
             "needs Linux 4.19): the measured wire figures leave them out");

  run_result r;
  r.clock = "real";
  r.plan = plan;
  r.measured = plan.length;
  r.modes.resize(plan.mix.size());
  for (std::size_t g = 0; g < plan.mix.size(); ++g) {
    r.modes[g].protocol = plan.mix[g].protocol;
    r.modes[g].mode = plan.group_mode(g);
    r.modes[g].clients = s.clients[g];
    r.modes[g].metrics = std::move(s.metrics[g]);
    r.modes[g].measured = s.measured[g];
    r.modes[g].events_generated = s.generated[g];
  }
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace nudge::sim
