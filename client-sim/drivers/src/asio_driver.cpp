#include "nudge/sim/asio_driver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
#include <optional>
#include <queue>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "nudge/protocol/random.hpp"
#include "nudge/sim/asio_codec.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "tcp_wire.hpp"

namespace nudge::sim {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;
using client::channel;
using client::client_metrics;
using client::client_mode;
using client::client_session;
using nlohmann::json;
using protocol::byte_buffer;
using protocol::ip_endpoint;

template <typename T>
using mode_array = std::array<T, client::client_mode_count>;

// ==== exact client_metrics codec ===============================================================

namespace {

struct counter_field {
  const char* name;
  std::uint64_t client_metrics::*member;
};
constexpr counter_field counter_fields[] = {
    {"clients_started", &client_metrics::clients_started},
    {"clients_ready", &client_metrics::clients_ready},
    {"clients_failed", &client_metrics::clients_failed},
};
// A new field in client_metrics must be added to this codec, or worker
// processes would silently drop it: this fails to compile until it is.
static_assert(sizeof(client_metrics) == sizeof(metrics::traffic_meter) + sizeof(metrics::latency_histogram) +
                                            3 * sizeof(std::vector<std::uint64_t>) +  // per-path latencies and events, counters
                                            std::size(counter_fields) * sizeof(std::uint64_t) +
                                            sizeof(metrics::traffic_cell),  // wasted_poll_traffic
              "client_metrics changed: update counter_fields / the codec in asio_driver.cpp");

json cell_to_json(const metrics::traffic_cell& c) {
  return json::array({c.messages, c.payload_bytes, c.wire_bytes, c.packets});
}

metrics::traffic_cell cell_from_json(const json& j) {
  return {j.at(0).get<std::uint64_t>(), j.at(1).get<std::uint64_t>(), j.at(2).get<std::uint64_t>(),
          j.at(3).get<std::uint64_t>()};
}

json histogram_to_json(const metrics::latency_histogram& h) {
  json buckets = json::array();
  for (const auto& [index, n] : h.raw_buckets()) buckets.push_back({index, n});
  return {{"buckets", std::move(buckets)}, {"sum", h.sum_ns()}, {"min", h.min().count()}, {"max", h.max().count()}};
}

metrics::latency_histogram histogram_from_json(const json& j) {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;
  for (const auto& b : j.at("buckets")) buckets.emplace_back(b.at(0).get<std::uint32_t>(), b.at(1).get<std::uint64_t>());
  return metrics::latency_histogram::from_raw(buckets, j.at("sum").get<double>(), j.at("min").get<std::int64_t>(),
                                              j.at("max").get<std::int64_t>());
}

}  // namespace

json client_metrics_to_json(const client_metrics& m) {
  json traffic = json::array();
  for (std::size_t k = 0; k < metrics::traffic_meter::max_kinds; ++k)
    for (std::size_t d = 0; d < 2; ++d) {
      const auto& c = m.traffic.cell(k, static_cast<metrics::direction>(d));
      if (c == metrics::traffic_cell{}) continue;
      traffic.push_back({k, d, cell_to_json(c)});
    }
  json by_path = json::array();
  for (const auto& h : m.latency_by_path) by_path.push_back(histogram_to_json(h));
  json counters = json::object();
  for (const auto& f : counter_fields) counters[f.name] = m.*f.member;
  counters["family"] = m.counters;
  return {{"traffic", std::move(traffic)},
          {"latency", histogram_to_json(m.latency)},
          {"latency_by_path", std::move(by_path)},
          {"events_by_path", m.events_by_path},
          {"counters", std::move(counters)},
          {"wasted_poll_traffic", cell_to_json(m.wasted_poll_traffic)}};
}

client_metrics client_metrics_from_json(const json& j) {
  client_metrics m;
  for (const auto& row : j.at("traffic")) {
    const auto k = row.at(0).get<std::size_t>();
    const auto d = row.at(1).get<std::size_t>();
    if (k >= metrics::traffic_meter::max_kinds || d >= 2) throw std::out_of_range("client_metrics: bad traffic cell");
    m.traffic.cell(k, static_cast<metrics::direction>(d)) = cell_from_json(row.at(2));
  }
  m.latency = histogram_from_json(j.at("latency"));
  const auto& by_path = j.at("latency_by_path");
  const auto& events = j.at("events_by_path");
  if (by_path.size() != events.size()) throw std::out_of_range("client_metrics: wrong number of delivery paths");
  m.fit(by_path.size(), 0);
  for (std::size_t p = 0; p < by_path.size(); ++p) {
    m.latency_by_path[p] = histogram_from_json(by_path[p]);
    m.events_by_path[p] = events[p].get<std::uint64_t>();
  }
  const auto& counters = j.at("counters");
  for (const auto& f : counter_fields) m.*f.member = counters.at(f.name).get<std::uint64_t>();
  m.counters = counters.at("family").get<std::vector<std::uint64_t>>();
  m.wasted_poll_traffic = cell_from_json(j.at("wasted_poll_traffic"));
  return m;
}

// ==== the real driver ===========================================================================

std::size_t fds_per_client(client_mode m) {
  switch (m) {
    case client_mode::poll: return 1;
    case client_mode::push: return 2;   // main TCP + UDP
    case client_mode::async: return 2;  // main TCP + async TCP
  }
  return 2;
}

namespace {

bool usable_v4_loopback(const ip_endpoint& e) { return !e.is_v6 && e.is_loopback(); }

}  // namespace

std::string validate(const real_options& o) {
  const std::pair<const char*, const ip_endpoint*> eps[] = {
      {"notifier", &o.notifier}, {"notifier UDP", &o.notifier_udp}, {"control", &o.control}};
  for (const auto& [name, ep] : eps) {
    if (!usable_v4_loopback(*ep))
      return std::string(name) + " endpoint " + ep->to_string() +
             " is not IPv4 loopback: real runs only ever talk to 127.0.0.0/8";
    if (ep->port == 0) return std::string(name) + " endpoint needs a port";
  }
  if (!usable_v4_loopback(o.source_first)) return "source addresses must be IPv4 loopback (127.0.0.0/8)";
  if (o.source_count == 0) return "the source address range is empty";
  const std::uint64_t last = std::uint64_t{o.source_first.v4_host_order()} + o.source_count - 1;
  if ((last >> 24) != 127) return "the source address range runs past 127.255.255.255";
  if (o.progress_every <= duration::zero()) return "progress interval must be positive";
  return {};
}

namespace {

time_point clock_now() {
  return time_point(
      std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

std::chrono::steady_clock::time_point to_steady(time_point t) {
  if (t == never) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
}

asio::ip::address_v4 v4_address(const ip_endpoint& e) { return asio::ip::address_v4(e.v4_host_order()); }
tcp::endpoint to_tcp(const ip_endpoint& e) { return {v4_address(e), e.port}; }
udp::endpoint to_udp(const ip_endpoint& e) { return {v4_address(e), e.port}; }
ip_endpoint from_udp(const udp::endpoint& e) {
  if (e.address().is_v4()) return ip_endpoint::v4(e.address().to_v4().to_uint(), e.port());
  ip_endpoint r;
  r.is_v6 = true;
  const auto b = e.address().to_v6().to_bytes();
  std::copy(b.begin(), b.end(), r.address.begin());
  r.port = e.port();
  return r;
}

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

/// Everything a slice of clients (one process) needs to run.
struct run_frame {
  const run_plan& plan;
  const real_options& opts;
  const std::vector<client_mode>& modes;
  time_point t0;          // time zero: the first client starts
  time_point events_end;  // t0 + length: no event is generated from here
  time_point end;         // t0 + length + drain: every session finishes
  time_point start_of(std::size_t global) const {
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
  void client_failed(std::size_t global, client_mode m, std::string_view why) {
    std::lock_guard lock(mu_);
    if (++failures_ <= max_detailed)
      lines_.push_back("client " + std::to_string(global) + " (" + std::string(client::to_string(m)) +
                       ") failed: " + std::string(why));
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

struct progress_cells {
  std::atomic<std::uint64_t> started{0}, ready{0}, failed{0}, fetched{0}, polls{0}, fetches{0}, wire{0};
};

/// What one process measured.
struct slice_result {
  mode_array<std::size_t> clients{};
  mode_array<client_metrics> metrics;
  mode_array<measured_traffic> measured;
  mode_array<std::uint64_t> generated{};
  std::uint64_t failures = 0;

  slice_result& operator+=(const slice_result& o) {
    for (std::size_t k = 0; k < client::client_mode_count; ++k) {
      clients[k] += o.clients[k];
      metrics[k] += o.metrics[k];
      measured[k] += o.measured[k];
      generated[k] += o.generated[k];
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

slice_result slice_from_json(const json& j) {
  slice_result r;
  const auto& ms = j.at("metrics");
  const auto& wire = j.at("measured");
  if (ms.size() != client::client_mode_count || wire.size() != client::client_mode_count)
    throw std::out_of_range("slice result: wrong number of modes");
  for (std::size_t k = 0; k < client::client_mode_count; ++k) {
    r.clients[k] = j.at("clients").at(k).get<std::size_t>();
    r.generated[k] = j.at("generated").at(k).get<std::uint64_t>();
    r.metrics[k] = client_metrics_from_json(ms[k]);
    r.measured[k] = measured_from_json(wire[k]);
  }
  r.failures = j.at("failures").get<std::uint64_t>();
  return r;
}

json progress_to_json(const real_progress& p) {
  return json::array({p.clients_started, p.clients_ready, p.clients_failed, p.events_generated, p.events_fetched,
                      p.polls, p.fetches, p.modelled_wire_bytes});
}

void add_progress_json(real_progress& p, const json& j) {
  p.clients_started += j.at(0).get<std::uint64_t>();
  p.clients_ready += j.at(1).get<std::uint64_t>();
  p.clients_failed += j.at(2).get<std::uint64_t>();
  p.events_generated += j.at(3).get<std::uint64_t>();
  p.events_fetched += j.at(4).get<std::uint64_t>();
  p.polls += j.at(5).get<std::uint64_t>();
  p.fetches += j.at(6).get<std::uint64_t>();
  p.modelled_wire_bytes += j.at(7).get<std::uint64_t>();
}

// ---- one worker thread: its clients, one io_context, one timer over a deadline heap ------------

class worker {
 public:
  worker(const run_frame& frame, log_sink& sink, const std::vector<std::size_t>& clients)
      : f_(frame), sink_(sink), timer_(io_), rbuf_(64 * 1024) {
    for (const std::size_t g : clients) {
      const client_mode m = f_.modes[g];
      slots_.emplace_back(io_, static_cast<std::uint32_t>(slots_.size()), g, m, f_.start_of(g));
      ++clients_[static_cast<std::size_t>(m)];
    }
  }

  void run() {
    next_publish_ = clock_now();
    arm(next_wakeup());
    io_.run();
  }

  const progress_cells& progress() const { return progress_; }
  const mode_array<client_metrics>& metrics() const { return metrics_; }
  const mode_array<measured_traffic>& measured() const { return measured_; }
  const mode_array<std::size_t>& clients() const { return clients_; }

 private:
  struct slot {
    slot(asio::io_context& io, std::uint32_t idx, std::size_t g, client_mode m, time_point at)
        : index(idx), global(g), mode(m), start_at(at), main(io), async(io), dgram(io) {}
    std::uint32_t index;
    std::size_t global;
    client_mode mode;
    time_point start_at;
    std::optional<client_session> session;
    tcp::socket main;
    tcp::socket async;
    udp::socket dgram;
    std::array<std::deque<byte_buffer>, 2> queue;
    std::array<bool, 2> writing{};
    int connecting = 0;
    bool started = false;
    bool dead = false;
    time_point scheduled = never;
    tcp::socket& sock(channel ch) { return ch == channel::main ? main : async; }
  };
  struct deadline {
    time_point at;
    std::uint32_t slot;
    bool operator>(const deadline& o) const { return at > o.at; }
  };
  static constexpr duration publish_every = std::chrono::milliseconds(100);

  client_metrics& m(const slot& s) { return metrics_[static_cast<std::size_t>(s.mode)]; }
  measured_traffic& wire(const slot& s) { return measured_[static_cast<std::size_t>(s.mode)]; }

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
    timer_.expires_at(to_steady(at));  // cancels a wait already in flight
    timer_.async_wait([this](const error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      timer_pending_ = false;
      armed_ = never;
      tick();
    });
  }

  void tick() {
    if (stopping_) return;
    const time_point now = clock_now();
    if (now >= f_.end) return finish(now);
    // Every client of this worker has failed (the notifier went away?): nothing left to measure.
    if (dead_ == slots_.size()) return finish(now);
    while (next_start_ < slots_.size() && slots_[next_start_].start_at <= now) begin(slots_[next_start_++]);
    while (!heap_.empty() && heap_.top().at <= now) {
      const deadline d = heap_.top();
      heap_.pop();
      slot& s = slots_[d.slot];
      if (s.dead || !s.started || s.scheduled != d.at) continue;  // superseded
      s.scheduled = never;
      s.session->on_timer(now);
      after_input(s, now);
    }
    if (now >= next_publish_) {
      publish();
      next_publish_ = now + publish_every;
    }
    arm(next_wakeup());
  }

  void publish() {
    client_metrics t;
    for (const auto& x : metrics_) t += x;
    progress_.started.store(t.clients_started, std::memory_order_relaxed);
    progress_.ready.store(t.clients_ready, std::memory_order_relaxed);
    progress_.failed.store(t.clients_failed, std::memory_order_relaxed);
    progress_.fetched.store(t.counter(protocol::emsmdb::counter::events_fetched), std::memory_order_relaxed);
    progress_.polls.store(t.counter(protocol::emsmdb::counter::polls), std::memory_order_relaxed);
    progress_.fetches.store(t.counter(protocol::emsmdb::counter::fetches), std::memory_order_relaxed);
    progress_.wire.store(t.traffic.total().wire_bytes, std::memory_order_relaxed);
  }

  void finish(time_point now) {
    stopping_ = true;
    for (auto& s : slots_) {
      if (s.started) s.session->finish(now);
      close(s);
    }
    timer_.cancel();
    publish();
    io_.stop();
  }

  // ---- a client's life ----
  void begin(slot& s) {
    auto cfg = f_.plan.client_config_for(s.global, s.mode);
    cfg.notifier_udp = f_.opts.notifier_udp;
    const auto src = f_.source_of(s.global);
    error_code ec;
    if (s.mode == client_mode::push) {
      s.dgram.open(udp::v4(), ec);
      if (!ec) s.dgram.bind(udp::endpoint(src, 0), ec);
      udp::endpoint local;
      if (!ec) local = s.dgram.local_endpoint(ec);
      if (!ec) s.dgram.non_blocking(true, ec);
      if (ec) return connect_failed(s, "UDP socket on " + src.to_string() + ": " + ec.message());
      cfg.callback_address = from_udp(local);
    }
    s.session.emplace(std::move(cfg), m(s));
    connect(s, channel::main, src);
    if (!s.dead && s.session->needs_async_channel()) connect(s, channel::async, src);
  }

  void connect(slot& s, channel ch, const asio::ip::address_v4& src) {
    tcp::socket& sock = s.sock(ch);
    error_code ec;
    sock.open(tcp::v4(), ec);
    if (!ec) sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) return connect_failed(s, "TCP socket on " + src.to_string() + ": " + ec.message());
    ++s.connecting;
    sock.async_connect(to_tcp(f_.opts.notifier), [this, &s, ch](const error_code& e) {
      if (stopping_ || s.dead) return;
      if (e) return connect_failed(s, "connect to " + f_.opts.notifier.to_string() + ": " + e.message());
      error_code ignored;
      s.sock(ch).set_option(tcp::no_delay(true), ignored);
      s.sock(ch).non_blocking(true, ignored);
      if (--s.connecting == 0) connected(s);
    });
  }

  void connect_failed(slot& s, const std::string& why) {
    if (s.dead) return;
    ++m(s).clients_started;
    ++m(s).clients_failed;
    kill(s, why);
  }

  void connected(slot& s) {
    const time_point now = clock_now();
    s.started = true;
    s.session->start(now);
    arm_read(s, channel::main);
    if (s.session->needs_async_channel()) arm_read(s, channel::async);
    if (s.session->needs_udp()) arm_datagram(s);
    after_input(s, now);
  }

  /// A failed client stops: its sockets close, its failure is reported once.
  void kill(slot& s, std::string_view why) {
    if (s.dead) return;
    s.dead = true;
    ++dead_;
    sink_.client_failed(s.global, s.mode, why);
    close(s);
  }

  /// Measures, then closes. Both connections' TCP_INFO is read before either
  /// closes, so nothing the notifier does about one closing lands in the other's
  /// count; datagrams still queued on the UDP socket are read and counted.
  void close(slot& s) {
    error_code ignored;
    measured_traffic& w = wire(s);
    for (tcp::socket* sock : {&s.main, &s.async})
      if (sock->is_open() && !tcp_wire::add_connection(sock->native_handle(), w)) ++w.unmeasured_connections;
    if (s.dgram.is_open()) {
      for (;;) {  // the socket is non-blocking since begin()
        udp::endpoint from;
        error_code e;
        const std::size_t n = s.dgram.receive_from(asio::buffer(rbuf_), from, 0, e);
        if (e) break;
        w.udp[to_client] += udp_datagram(n);
      }
    }
    if (s.main.is_open()) s.main.close(ignored);
    if (s.async.is_open()) s.async.close(ignored);
    if (s.dgram.is_open()) s.dgram.close(ignored);
  }

  // ---- after every input: send what the session wants sent, re-arm its deadline ----
  void after_input(slot& s, time_point now) {
    auto& outs = s.session->outputs();
    for (auto& o : outs) {
      if (auto* t = std::get_if<client::tcp_send>(&o)) {
        send_tcp(s, t->ch, std::move(t->bytes));
      } else if (auto* u = std::get_if<client::udp_send>(&o)) {
        // Only ever to loopback; a datagram that cannot go now is lost, as UDP may be.
        if (!s.dgram.is_open() || !usable_v4_loopback(u->to)) continue;
        error_code e;
        const std::size_t n = s.dgram.send_to(asio::buffer(u->bytes), to_udp(u->to), 0, e);
        if (!e) wire(s).udp[to_server] += udp_datagram(n);
      }
    }
    outs.clear();
    if (s.session->failed()) return kill(s, s.session->failure());
    const time_point d = s.session->next_deadline();
    if (d != s.scheduled) {
      s.scheduled = d;
      if (d != never) {
        heap_.push({d, s.index});
        arm(std::max(d, now));
      }
    }
  }

  void send_tcp(slot& s, channel ch, byte_buffer bytes) {
    const auto c = static_cast<std::size_t>(ch);
    s.queue[c].push_back(std::move(bytes));
    if (!s.writing[c]) write_next(s, ch);
  }

  void write_next(slot& s, channel ch) {
    const auto c = static_cast<std::size_t>(ch);
    if (s.queue[c].empty()) {
      s.writing[c] = false;
      return;
    }
    s.writing[c] = true;
    // deque::push_back keeps references to the front valid while it is written.
    asio::async_write(s.sock(ch), asio::buffer(s.queue[c].front()), [this, &s, ch](const error_code& ec, std::size_t) {
      if (stopping_ || s.dead) return;
      if (ec) return closed(s, ch);
      s.queue[static_cast<std::size_t>(ch)].pop_front();
      write_next(s, ch);
    });
  }

  void closed(slot& s, channel ch) {
    const time_point now = clock_now();
    s.session->channel_closed(now, ch);
    after_input(s, now);
  }

  void arm_read(slot& s, channel ch) {
    s.sock(ch).async_wait(tcp::socket::wait_read, [this, &s, ch](const error_code& ec) {
      if (stopping_ || s.dead) return;
      if (ec) return closed(s, ch);
      const time_point now = clock_now();
      bool eof = false;
      for (;;) {
        error_code e;
        const std::size_t n = s.sock(ch).read_some(asio::buffer(rbuf_), e);
        if (e == asio::error::would_block || e == asio::error::try_again) break;
        if (e) {
          eof = true;
          break;
        }
        s.session->receive(now, ch, {rbuf_.data(), n});
        if (n < rbuf_.size() || s.session->failed()) break;
      }
      if (eof && !s.session->failed()) s.session->channel_closed(now, ch);
      after_input(s, now);
      if (!s.dead) arm_read(s, ch);
    });
  }

  void arm_datagram(slot& s) {
    s.dgram.async_wait(udp::socket::wait_read, [this, &s](const error_code& ec) {
      if (stopping_ || s.dead || ec) return;
      const time_point now = clock_now();
      for (int i = 0; i < 64; ++i) {
        udp::endpoint from;
        error_code e;
        const std::size_t n = s.dgram.receive_from(asio::buffer(rbuf_), from, 0, e);
        if (e) break;  // would_block, or an ICMP error surfacing: nothing to deliver
        wire(s).udp[to_client] += udp_datagram(n);
        s.session->receive_datagram(now, from_udp(from), {rbuf_.data(), n});
      }
      after_input(s, now);
      if (!s.dead) arm_datagram(s);
    });
  }

  const run_frame& f_;
  log_sink& sink_;
  asio::io_context io_{1};
  asio::steady_timer timer_;
  std::vector<std::uint8_t> rbuf_;
  mode_array<client_metrics> metrics_;
  mode_array<measured_traffic> measured_;
  mode_array<std::size_t> clients_{};
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

// ---- mailbox events through the notifier's control port --------------------------------------

/// Each mailbox's events from the run's event_schedule, the one the virtual
/// driver draws from (Poisson, MMPP, business hours; seeded per client, so the
/// times do not depend on how clients are split over processes), mapped from
/// time zero onto the clock and sent to the notifier's control port when due.
class event_driver {
 public:
  event_driver(const run_frame& frame, log_sink& sink, const std::vector<std::size_t>& clients)
      : f_(frame), sink_(sink), stream_(frame.plan, clients) {}

  void run() {
    if (stream_.empty()) return;
    try {
      asio::io_context io;
      tcp::socket sock(io);
      sock.connect(to_tcp(f_.opts.control));
      sock.set_option(tcp::no_delay(true));
      asio::streambuf in;
      std::istream lines(&in);
      std::string out, line;
      std::vector<event_stream::event> batch;
      while (!stream_.empty() && !stop_.load(std::memory_order_relaxed)) {
        const time_point now = clock_now();
        out.clear();
        batch.clear();
        while (!stream_.empty() && on_clock(stream_.peek()) <= now && batch.size() < max_batch) {
          const auto e = stream_.pop();
          batch.push_back(e);
          out += "EVENT ";
          out += run_plan::user_dn(e.client);
          out += '\n';
        }
        if (!batch.empty()) {
          asio::write(sock, asio::buffer(out));
          for (const auto& e : batch) {  // answers come in order
            asio::read_until(sock, in, '\n');
            std::getline(lines, line);
            if (line.rfind("OK", 0) == 0) {
              ++generated_[static_cast<std::size_t>(f_.modes[e.client])];
              total_.fetch_add(1, std::memory_order_relaxed);
              if (f_.opts.on_event) f_.opts.on_event(e.client, e.at - time_point{});
            } else if (++refused_ <= 3) {
              sink_.warn("control port refused an event: " + one_line(line));
            }
          }
          if (batch.size() == max_batch) continue;  // behind schedule: catch up first
        }
        if (stream_.empty()) break;
        const time_point wake = std::min(on_clock(stream_.peek()), clock_now() + std::chrono::milliseconds(50));
        std::this_thread::sleep_until(to_steady(wake));
      }
    } catch (const std::exception& e) {
      sink_.warn(std::string("control port ") + f_.opts.control.to_string() + ": " + e.what() +
                 "; no further events are generated");
    }
  }

  void stop() { stop_.store(true, std::memory_order_relaxed); }
  std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }
  const mode_array<std::uint64_t>& generated() const { return generated_; }

 private:
  static constexpr std::size_t max_batch = 256;

  // Schedule times are since time zero; the clock's time zero is t0.
  time_point on_clock(const event_stream::event& e) const { return f_.t0 + (e.at - time_point{}); }

  const run_frame& f_;
  log_sink& sink_;
  event_stream stream_;
  mode_array<std::uint64_t> generated_{};
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
        workers[w]->run();
      } catch (...) {
        errors[w] = std::current_exception();
      }
      running.fetch_sub(1);
    });
  std::thread event_thread([&] { events.run(); });

  auto snapshot = [&] {
    real_progress p;
    p.elapsed = clock_now() - f.t0;
    p.clients = f.plan.clients;
    for (const auto& w : workers) {
      const auto& c = w->progress();
      p.clients_started += c.started.load(std::memory_order_relaxed);
      p.clients_ready += c.ready.load(std::memory_order_relaxed);
      p.clients_failed += c.failed.load(std::memory_order_relaxed);
      p.events_fetched += c.fetched.load(std::memory_order_relaxed);
      p.polls += c.polls.load(std::memory_order_relaxed);
      p.fetches += c.fetches.load(std::memory_order_relaxed);
      p.modelled_wire_bytes += c.wire.load(std::memory_order_relaxed);
    }
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

  slice_result r;
  for (const auto& w : workers)
    for (std::size_t k = 0; k < client::client_mode_count; ++k) {
      r.clients[k] += w->clients()[k];
      r.metrics[k] += w->metrics()[k];
      r.measured[k] += w->measured()[k];
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
    real_progress p;
    p.elapsed = clock_now() - f.t0;
    p.clients = f.plan.clients;
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
            case 'R': c.result = slice_from_json(json::parse(body)); break;
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

  slice_result total;
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

void check_reachable(const ip_endpoint& ep, const char* what, const char* flag) {
  asio::io_context io;
  tcp::socket s(io);
  error_code ec;
  s.connect(to_tcp(ep), ec);
  if (ec)
    throw std::runtime_error(std::string("cannot reach the notifier's ") + what + " at " + ep.to_string() + ": " +
                             ec.message() + " (is `notifier " + flag + " " + ep.to_string() + "` running?)");
  s.close(ec);
}

}  // namespace

run_result run_real(const run_plan& plan, const real_options& opts) {
  if (auto e = plan.validate(); !e.empty()) throw std::runtime_error("invalid run plan: " + e);
  if (auto e = validate(opts); !e.empty()) throw std::runtime_error(e);
  if (!plan.nat_mix.empty())
    throw std::runtime_error("a NAT mix is modelled in virtual time only; real runs use plain loopback");
  raise_fd_limit();

  const std::vector<client_mode> modes = plan.assign_modes();
  std::size_t fds = 0;
  for (const auto m : modes) fds += fds_per_client(m);
  const std::size_t budget = std::max<std::size_t>(fd_budget(opts), 3);
  std::size_t processes = opts.processes ? opts.processes : (fds + budget - 1) / budget;
  processes = std::clamp<std::size_t>(processes, 1, plan.clients);

  check_reachable(opts.notifier, "DCE/RPC port", "--listen");
  if (plan.events_per_client_hour > 0) check_reachable(opts.control, "control port", "--control");

  // The capture hook runs before time zero is fixed, so however long it takes
  // (opening a capture device), the clients still start start_delay later.
  if (opts.before_clients) opts.before_clients();
  struct after_guard {
    const std::function<void()>& fn;
    ~after_guard() {
      if (fn) fn();
    }
  } after{opts.after_clients};

  const auto wall_start = std::chrono::steady_clock::now();
  const time_point t0 = clock_now() + opts.start_delay;
  const run_frame frame{plan, opts, modes, t0, t0 + plan.length, t0 + plan.length + plan.drain};
  const std::size_t total_threads = opts.workers ? opts.workers : default_threads();
  const std::size_t threads = std::max<std::size_t>(1, (total_threads + processes - 1) / processes);

  slice_result s;
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
  for (std::size_t k = 0; k < client::client_mode_count; ++k) {
    r.modes[k].mode = static_cast<client_mode>(k);
    r.modes[k].clients = s.clients[k];
    r.modes[k].metrics = std::move(s.metrics[k]);
    r.modes[k].measured = s.measured[k];
    r.modes[k].events_generated = s.generated[k];
  }
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace nudge::sim
