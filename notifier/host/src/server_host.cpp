#include "nudge/notifier/server_host.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "nudge/live/asio_bridge.hpp"
#include "nudge/notifier/control_protocol.hpp"
#include "nudge/notifier/event_generator.hpp"

namespace nudge::notifier {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;
using live::from_asio;
using live::steady_now;
using protocol::byte_buffer;
using protocol::bytes_view;

log_sink stderr_log(bool quiet) {
  return [quiet](log_level level, std::string_view text) {
    if (quiet && level == log_level::info) return;
    const char* tag = level == log_level::error ? "error: " : level == log_level::warning ? "warning: " : "";
    fmt::print(stderr, "notifier: {}{}\n", tag, text);
  };
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

bool is_v4_mapped(const ip_endpoint& e) {
  static constexpr std::array<std::uint8_t, 12> prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return e.is_v6 && std::equal(prefix.begin(), prefix.end(), e.address.begin());
}

union sock_address {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

/// The destination in the family of the socket that sends to it; false when
/// it cannot be reached from that socket (an IPv6 address from an IPv4 socket).
bool make_sockaddr(const ip_endpoint& e, bool socket_is_v6, sock_address& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  if (!socket_is_v6) {
    std::uint32_t host = 0;
    if (!e.is_v6) {
      host = e.v4_host_order();
    } else if (is_v4_mapped(e)) {
      host = (std::uint32_t{e.address[12]} << 24) | (std::uint32_t{e.address[13]} << 16) |
             (std::uint32_t{e.address[14]} << 8) | e.address[15];
    } else {
      return false;
    }
    out.v4.sin_family = AF_INET;
    out.v4.sin_port = htons(e.port);
    out.v4.sin_addr.s_addr = htonl(host);
    len = sizeof(sockaddr_in);
    return true;
  }
  out.v6.sin6_family = AF_INET6;
  out.v6.sin6_port = htons(e.port);
  if (e.is_v6) {
    std::memcpy(out.v6.sin6_addr.s6_addr, e.address.data(), 16);
  } else {
    out.v6.sin6_addr.s6_addr[10] = 0xff;
    out.v6.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(out.v6.sin6_addr.s6_addr + 12, e.address.data(), 4);
  }
  len = sizeof(sockaddr_in6);
  return true;
}

/// At most `per_second` lines a second per kind of message; the next line
/// that gets through says how many were suppressed in between.
class log_limiter {
 public:
  explicit log_limiter(unsigned per_second) : per_second_(per_second) {}
  bool allow(time_point now, std::uint64_t& suppressed_before) {
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= per_second_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    suppressed_before = std::exchange(suppressed_, 0);
    return true;
  }

 private:
  unsigned per_second_;
  unsigned used_ = 0;
  time_point window_start_{};
  std::uint64_t suppressed_ = 0;
};

/// Puts `value` at the dotted `name` ("traffic.ping.to_client.messages") in `j`.
void set_dotted(nlohmann::json& j, std::string_view name, std::uint64_t value) {
  nlohmann::json* at = &j;
  for (std::size_t dot; (dot = name.find('.')) != std::string_view::npos; name.remove_prefix(dot + 1))
    at = &(*at)[std::string(name.substr(0, dot))];
  (*at)[std::string(name)] = value;
}

constexpr std::size_t read_chunk = 64 * 1024;
constexpr int read_rounds = 4;           // chunks per wake-up before letting others run
// A connection the core closed with its last answer still unwritten: how long
// the answer may take to leave and the peer to finish sending, at most.
constexpr auto close_linger = std::chrono::seconds(2);
constexpr int datagram_rounds = 256;     // datagrams per wake-up
constexpr std::size_t udp_batch = 256;   // datagrams per sendmmsg
constexpr std::size_t control_backlog = 4u << 20;  // stop reading a control peer that does not read its replies

}  // namespace

// ---- the host ------------------------------------------------------------------------

struct server_host::impl {
  struct served;

  struct listener {
    listener(asio::io_context& io, engine::listener_id i) : id(i), acceptor(io), retry(io) {}
    engine::listener_id id;
    tcp::acceptor acceptor;
    asio::steady_timer retry;
  };

  struct datagram_out {
    sock_address to;
    socklen_t to_len = 0;
    byte_buffer bytes;
  };

  struct udp_socket {
    udp_socket(asio::io_context& io, engine::socket_id i) : id(i), sock(io), retry(io) {}
    engine::socket_id id;
    udp::socket sock;
    asio::steady_timer retry;
    bool is_v6 = false;
    std::deque<datagram_out> queue;
    bool waiting = false;  // for send-buffer room
  };

  struct tcp_conn {
    explicit tcp_conn(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    engine::connection_id id = 0;
    std::size_t owner = 0;  // index into served_
    ip_endpoint peer;
    std::vector<byte_buffer> queued;  // waiting for the write in flight
    std::size_t queued_bytes = 0;
    std::vector<byte_buffer> in_flight;
    std::size_t in_flight_bytes = 0;
    bool writing = false;
    bool open = true;
    // The core closed it with bytes still to write: they go out first, then a
    // FIN; what the peer still sends is read and dropped until its FIN or the linger.
    bool closing = false;
    bool peer_done = false;  // while closing: the peer's FIN arrived
    std::unique_ptr<asio::steady_timer> linger;
    // A connection the core opened (`connect`, webhooks): its id is the core's, kept in outgoing_.
    bool outgoing = false;
    bool connecting = false;  // until the connect completes: writes wait
  };

  struct served {
    served(served_protocol p, double rate, std::uint64_t seed)
        : name(std::move(p.name)),
          core(std::move(p.core)),
          tcp_address(p.tcp_address),
          udp_address(p.udp_address),
          description(std::move(p.description)),
          generator(rate, seed) {}
    std::string name;
    std::unique_ptr<engine::server_session> core;
    ip_endpoint tcp_address;
    ip_endpoint udp_address;
    std::string description;
    event_generator generator;
    std::vector<std::unique_ptr<listener>> listeners;
    std::vector<std::unique_ptr<udp_socket>> sockets;
    std::vector<engine::action> scratch;
    time_point deadline = never;  // the core's, as last read
  };

  struct control_conn {
    explicit control_conn(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    std::uint64_t id = 0;
    control::line_reader lines;
    std::string queued;
    std::string in_flight;
    bool writing = false;
    bool open = true;
    bool finishing = false;  // QUIT or EOF: send what is queued, then close
    bool read_waiting = false;
  };

  impl(asio::io_context& io, host_config c, std::vector<served_protocol> protocols, log_sink l)
      : io_(io),
        cfg_(std::move(c)),
        log_(l ? std::move(l) : stderr_log(false)),
        control_acceptor_(io),
        timer_(io),
        control_retry_(io),
        rx_(read_chunk) {
    served_.reserve(protocols.size());
    for (std::size_t i = 0; i < protocols.size(); ++i)
      served_.push_back(std::make_unique<served>(std::move(protocols[i]), cfg_.events_per_mailbox_hour, cfg_.seed + i));
  }

  ~impl() { stop(); }

  // ---- logging ----
  void log(log_level level, std::string_view text) { log_(level, text); }

  template <class MakeText>
  void log_limited(log_limiter& limiter, log_level level, time_point now, MakeText&& make) {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(now, suppressed)) {
      ++stats_.log_lines_suppressed;
      return;
    }
    std::string text = make();
    if (suppressed > 0) text += fmt::format(" ({} similar messages suppressed)", suppressed);
    log_(level, text);
  }

  // ---- start / stop ----
  std::optional<std::string> open_acceptor(tcp::acceptor& a, const ip_endpoint& at, std::string_view what) {
    error_code ec;
    const auto ep = live::to_asio<tcp::endpoint>(at);
    a.open(ep.protocol(), ec);
    if (ec) return fmt::format("cannot open the {} socket: {}", what, ec.message());
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fmt::format("cannot listen on {} ({}): {}", at.to_string(), what, ec.message());
    return std::nullopt;
  }

  void set_udp_buffer(udp::socket& s, int option, int force_option, const char* name) {
    const int fd = s.native_handle();
    const int want = cfg_.udp_buffer_bytes;
    // SO_*BUFFORCE passes net.core.[rw]mem_max with CAP_NET_ADMIN; without it the plain option is capped.
    if (::setsockopt(fd, SOL_SOCKET, force_option, &want, sizeof want) != 0)
      (void)::setsockopt(fd, SOL_SOCKET, option, &want, sizeof want);
    int got = 0;
    socklen_t len = sizeof got;
    if (::getsockopt(fd, SOL_SOCKET, option, &got, &len) == 0 && got < want)  // Linux reports twice the request
      log(log_level::info, fmt::format("UDP {} is {} bytes, below the {} asked for (raise net.core.{}_max)", name, got,
                                       want, option == SO_RCVBUF ? "rmem" : "wmem"));
  }

  std::optional<std::string> start() {
    if (started_) return std::string("the server was already started");
    started_ = true;
    if (cfg_.control && !cfg_.control->is_loopback())
      return fail(fmt::format("refusing to bind the control port to {}: it stays on loopback", cfg_.control->to_string()));
    started_at_ = steady_now();
    for (std::size_t i = 0; i < served_.size(); ++i) {
      served& s = *served_[i];
      s.core->start(started_at_);
      // The first actions are the core's sockets: any that cannot open fails the start.
      if (auto e = carry_out(i, started_at_, true)) return fail(std::move(*e));
    }
    if (cfg_.control) {
      if (auto e = open_acceptor(control_acceptor_, *cfg_.control, "control")) return fail(std::move(*e));
      control_accept_next();
    }
    for (const auto& s : served_) {
      std::string where;
      for (const auto& l : s->listeners) where += (where.empty() ? "tcp " : ", tcp ") + bound(*l).to_string();
      for (const auto& u : s->sockets) where += (where.empty() ? "udp " : ", udp ") + bound(*u).to_string();
      log(log_level::info,
          fmt::format("serving {} on {}{}{}", s->name, where, s->description,
                      s->generator.enabled() ? fmt::format(", {:g} events per mailbox-hour (seed {})",
                                                           cfg_.events_per_mailbox_hour, cfg_.seed)
                                             : std::string()));
    }
    if (auto c = control_endpoint()) log(log_level::info, "control on tcp " + c->to_string());
    for (std::size_t i = 0; i < served_.size(); ++i) after_input(i, started_at_);
    return std::nullopt;
  }

  std::string fail(std::string why) {
    stop();
    return why;
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    error_code ec;
    control_acceptor_.close(ec);
    timer_.cancel();
    control_retry_.cancel();
    for (auto& s : served_) {
      for (auto& l : s->listeners) {
        l->acceptor.close(ec);
        l->retry.cancel();
      }
      for (auto& u : s->sockets) {
        u->sock.close(ec);
        u->retry.cancel();
        u->queue.clear();
      }
      s->core->actions().clear();
    }
    for (auto& c : conns_)
      if (c) {
        c->open = false;
        c->sock.close(ec);
      }
    conns_.clear();
    for (auto& [key, c] : outgoing_) {
      c->open = false;
      c->sock.close(ec);
    }
    outgoing_.clear();
    for (auto& [id, cc] : controls_) {
      cc->open = false;
      cc->sock.close(ec);
    }
    controls_.clear();
  }

  static ip_endpoint bound(const listener& l) {
    error_code ec;
    const auto ep = l.acceptor.local_endpoint(ec);
    return ec ? ip_endpoint{} : from_asio(ep);
  }
  static ip_endpoint bound(const udp_socket& u) {
    error_code ec;
    const auto ep = u.sock.local_endpoint(ec);
    return ec ? ip_endpoint{} : from_asio(ep);
  }
  std::optional<ip_endpoint> control_endpoint() const {
    if (!cfg_.control) return std::nullopt;
    error_code ec;
    const auto ep = control_acceptor_.local_endpoint(ec);
    return ec ? *cfg_.control : from_asio(ep);
  }

  // ---- after every input: actions, generator, timer ----
  void after_input(std::size_t index, time_point now) {
    served& s = *served_[index];
    if (stopping_) {
      s.core->actions().clear();
      return;
    }
    (void)carry_out(index, now, false);
    if (s.generator.enabled()) s.generator.set_mailbox_count(now, s.core->mailbox_count());
    s.deadline = s.core->next_deadline();
    rearm_timer();
  }

  /// Carries out the core's actions until it produces no more. At start
  /// (`starting`), a listener or socket that cannot open is the error returned.
  std::optional<std::string> carry_out(std::size_t index, time_point now, bool starting) {
    served& s = *served_[index];
    std::optional<std::string> error;
    for (;;) {
      auto& acts = s.core->actions();
      if (acts.empty()) break;
      s.scratch.swap(acts);
      for (auto& a : s.scratch) {
        std::visit(overloaded{
                       [&](engine::send& m) { queue_tcp(index, now, m); },
                       [&](engine::send_datagram& d) { queue_udp(s, now, d); },
                       [&](engine::close& c) { core_closed(index, now, c); },
                       [&](engine::notice& n) {
                         log_limited(notice_log_, log_level::warning, now, [&] { return std::move(n.text); });
                       },
                       [&](engine::listen& l) {
                         auto e = open_listener(index, now, l);
                         if (e && !error) error = std::move(e);
                       },
                       [&](engine::bind_udp& b) {
                         auto e = open_udp(index, now, b);
                         if (e && !error) error = std::move(e);
                       },
                       [&](engine::connect& c) { open_connection(index, now, c); },
                   },
                   a);
      }
      s.scratch.clear();
      if (error && starting) return error;
    }
    for (auto& c : kick_) start_write(c);
    kick_.clear();
    for (auto& u : s.sockets) flush_udp(*u);
    if (error) log(log_level::error, *error);
    return error;
  }

  std::optional<std::string> open_listener(std::size_t index, time_point now, const engine::listen& l) {
    served& s = *served_[index];
    ip_endpoint at = s.tcp_address;
    at.port = l.port;
    if (!cfg_.allow_non_loopback && !at.is_loopback())
      return fmt::format("refusing to bind the {} listener to {}: not a loopback address", s.name, at.to_string());
    auto lst = std::make_unique<listener>(io_, l.listener);
    if (auto e = open_acceptor(lst->acceptor, at, s.name)) return e;
    listener& ref = *lst;
    s.listeners.push_back(std::move(lst));
    s.core->handle(now, engine::listening{l.listener, bound(ref)});
    accept_next(index, ref);
    return std::nullopt;
  }

  std::optional<std::string> open_udp(std::size_t index, time_point now, const engine::bind_udp& b) {
    served& s = *served_[index];
    ip_endpoint at = s.udp_address;
    at.port = b.port;
    if (!cfg_.allow_non_loopback && !at.is_loopback())
      return fmt::format("refusing to bind the {} UDP socket to {}: not a loopback address", s.name, at.to_string());
    auto u = std::make_unique<udp_socket>(io_, b.socket);
    error_code ec;
    const auto uep = live::to_asio<udp::endpoint>(at);
    u->sock.open(uep.protocol(), ec);
    if (!ec) u->sock.bind(uep, ec);
    if (ec) return fmt::format("cannot bind the UDP socket to {} ({}): {}", at.to_string(), s.name, ec.message());
    u->sock.non_blocking(true, ec);
    if (ec) return fmt::format("cannot make the {} UDP socket non-blocking: {}", s.name, ec.message());
    u->is_v6 = uep.address().is_v6();
    set_udp_buffer(u->sock, SO_RCVBUF, SO_RCVBUFFORCE, "SO_RCVBUF");
    set_udp_buffer(u->sock, SO_SNDBUF, SO_SNDBUFFORCE, "SO_SNDBUF");
    udp_socket& ref = *u;
    s.sockets.push_back(std::move(u));
    s.core->handle(now, engine::udp_bound{b.socket, bound(ref)});
    wait_udp(index, ref);
    return std::nullopt;
  }

  // ---- the timer: every core's deadline and every generator's ----
  void rearm_timer() {
    if (stopping_) return;
    time_point next = never;
    for (const auto& s : served_) next = std::min({next, s->deadline, s->generator.next_deadline()});
    if (next == never) return;  // a wake-up already armed for later is harmless
    if (timer_armed_ && armed_for_ <= next) return;
    timer_armed_ = true;
    armed_for_ = next;
    const std::uint64_t generation = ++timer_generation_;
    timer_.expires_at(live::to_steady(next));
    timer_.async_wait([this, generation](const error_code& ec) {
      if (ec == asio::error::operation_aborted || generation != timer_generation_ || stopping_) return;
      timer_armed_ = false;
      on_timer();
    });
  }

  void on_timer() {
    const time_point now = steady_now();
    for (std::size_t i = 0; i < served_.size(); ++i) {
      served& s = *served_[i];
      if (s.core->next_deadline() <= now) s.core->handle(now, engine::timer{});
      if (s.generator.enabled()) {
        due_.clear();
        s.generator.due(now, due_);
        for (mailbox_id mb : due_) s.core->inject_event(now, s.core->mailbox_name(mb));
        stats_.events_from_generator += due_.size();
      }
      after_input(i, now);
    }
    stats_.generator_backlog_dropped = 0;
    for (const auto& s : served_) stats_.generator_backlog_dropped += s->generator.dropped_backlog();
  }

  // ---- TCP connections ----
  void accept_next(std::size_t index, listener& l) {
    l.acceptor.async_accept([this, index, &l](const error_code& ec, tcp::socket s) { on_accept(index, l, ec, std::move(s)); });
  }

  void on_accept(std::size_t index, listener& l, const error_code& ec, tcp::socket s) {
    if (stopping_) return;
    const time_point now = steady_now();
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      ++stats_.accept_errors;
      log_limited(accept_log_, log_level::warning, now, [&] {
        return fmt::format("accepting a {} connection failed: {}; retrying in {} ms", served_[index]->name,
                           ec.message(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.accept_retry).count());
      });
      l.retry.expires_after(cfg_.accept_retry);
      l.retry.async_wait([this, index, &l](const error_code& e) {
        if (!e && !stopping_) accept_next(index, l);
      });
      return;
    }
    error_code opt_ec;
    s.set_option(tcp::no_delay(true), opt_ec);
    error_code nb_ec;
    s.non_blocking(true, nb_ec);
    error_code peer_ec;
    const auto remote = s.remote_endpoint(peer_ec);
    if (nb_ec || peer_ec) {  // gone already, or unusable without blocking the loop
      s.close(opt_ec);
      accept_next(index, l);
      return;
    }
    auto c = std::make_shared<tcp_conn>(std::move(s));
    c->peer = from_asio(remote);
    c->owner = index;
    std::uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(conns_.size());
      conns_.emplace_back();
      generations_.push_back(0);
    }
    // Ids are (generation << 32 | slot), never with outgoing_bit: slots are reused, stale ids never match.
    c->id = (std::uint64_t{++generations_[slot] & 0x7FFFFFFFu} << 32) | slot;
    conns_[slot] = c;
    served_[index]->core->handle(now, engine::accepted{l.id, c->id, c->peer});
    wait_tcp(c);
    after_input(index, now);
    accept_next(index, l);
  }

  void wait_tcp(const std::shared_ptr<tcp_conn>& c) {
    c->sock.async_wait(tcp::socket::wait_read, [this, c](const error_code& ec) { on_tcp_readable(c, ec); });
  }

  void on_tcp_readable(const std::shared_ptr<tcp_conn>& c, const error_code& wait_ec) {
    if (!c->open || stopping_) return;
    const time_point now = steady_now();
    if (wait_ec) {
      if (c->closing) return drop_tcp(c, now, false);
      tcp_gone(c, now, wait_ec);
      return;
    }
    if (c->closing) return drain_closing(c, now);
    engine::server_session& core = *served_[c->owner]->core;
    for (int round = 0; round < read_rounds; ++round) {
      error_code ec;
      const std::size_t n = c->sock.read_some(asio::buffer(rx_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) {
        tcp_gone(c, now, ec);
        return;
      }
      core.handle(now, engine::stream_bytes{c->id, bytes_view(rx_.data(), n)});
      after_input(c->owner, now);  // the core may have closed this connection
      if (!c->open) return;
      if (c->closing) return drain_closing(c, now);
      if (n < rx_.size()) break;  // most likely drained; the wait reports more
    }
    wait_tcp(c);
  }

  /// The peer closed or the socket failed.
  void tcp_gone(const std::shared_ptr<tcp_conn>& c, time_point now, const error_code& ec) {
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
      ++stats_.tcp_read_errors;
      log_limited(close_log_, log_level::info, now,
                  [&] { return fmt::format("connection from {} failed: {}", c->peer.to_string(), ec.message()); });
    }
    drop_tcp(c, now, true);
    after_input(c->owner, now);
  }

  /// A core's `connect` (a hub calling a subscriber back): refused at once
  /// outside loopback unless allowed (the one policy the cores also apply),
  /// else answered by `connected` or `refused` when the connect completes.
  void open_connection(std::size_t index, time_point now, const engine::connect& cc) {
    served& s = *served_[index];
    if (!cfg_.allow_non_loopback && !cc.to.is_loopback()) {
      ++stats_.tcp_refused_non_loopback;
      log_limited(notice_log_, log_level::warning, now, [&] {
        return "refused to connect to " + cc.to.to_string() + ": not loopback (see --allow-non-loopback)";
      });
      s.core->handle(now, engine::refused{cc.conn, "not a loopback address (see --allow-non-loopback)"});
      return;
    }
    ++stats_.tcp_connects;
    auto c = std::make_shared<tcp_conn>(tcp::socket(io_));
    c->id = cc.conn;
    c->owner = index;
    c->peer = cc.to;
    c->outgoing = true;
    c->connecting = true;
    outgoing_[{index, cc.conn}] = c;
    c->sock.async_connect(live::to_asio<tcp::endpoint>(cc.to), [this, c](const error_code& ec) {
      if (!c->open || stopping_) return;
      const time_point at = steady_now();
      c->connecting = false;
      engine::server_session& core = *served_[c->owner]->core;
      if (ec) {
        ++stats_.tcp_connect_failures;
        c->open = false;
        outgoing_.erase({c->owner, c->id});
        core.handle(at, engine::refused{c->id, "connect to " + c->peer.to_string() + ": " + ec.message()});
        return after_input(c->owner, at);
      }
      error_code ignored;
      c->sock.set_option(tcp::no_delay(true), ignored);
      c->sock.non_blocking(true, ignored);
      const auto local = c->sock.local_endpoint(ignored);
      core.handle(at, engine::connected{c->id, from_asio(local)});
      wait_tcp(c);
      start_write(c);  // what the core queued while connecting
      after_input(c->owner, at);
    });
  }

  std::shared_ptr<tcp_conn> find_conn(std::size_t owner, engine::connection_id id) const {
    if (engine::is_outgoing(id)) {
      const auto it = outgoing_.find({owner, id});
      return it == outgoing_.end() ? nullptr : it->second;
    }
    const auto slot = static_cast<std::uint32_t>(id & 0xFFFFFFFFu);
    if (slot >= conns_.size() || !conns_[slot] || conns_[slot]->id != id) return nullptr;
    return conns_[slot];
  }

  /// A closing connection's reads: dropped until the peer's FIN (or an error).
  void drain_closing(const std::shared_ptr<tcp_conn>& c, time_point now) {
    for (int round = 0; round < read_rounds; ++round) {
      error_code ec;
      c->sock.read_some(asio::buffer(rx_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_tcp(c);
      if (ec) {
        // The peer's FIN: closed once the answer is out (an error: nothing more will be read).
        c->peer_done = true;
        if (ec != asio::error::eof || (!c->writing && c->queued.empty())) drop_tcp(c, now, false);
        return;
      }
    }
    wait_tcp(c);
  }

  /// The core closed `c` while its answer is still queued or being written:
  /// it is written first (a refusal's 4xx must reach the peer), then the
  /// connection closes; the linger bounds how long that may take.
  void close_after_writes(const std::shared_ptr<tcp_conn>& c) {
    c->closing = true;
    c->linger = std::make_unique<asio::steady_timer>(io_);
    c->linger->expires_after(close_linger);
    c->linger->async_wait([this, c](const error_code& ec) {
      if (!ec && !stopping_) drop_tcp(c, steady_now(), false);
    });
  }

  void drop_tcp(const std::shared_ptr<tcp_conn>& c, time_point now, bool tell_core) {
    if (!c->open) return;
    c->open = false;
    error_code ec;
    if (c->linger) c->linger->cancel();
    c->sock.close(ec);
    if (c->outgoing) {
      if (const auto it = outgoing_.find({c->owner, c->id}); it != outgoing_.end() && it->second == c) outgoing_.erase(it);
    } else if (auto& held = conns_[static_cast<std::uint32_t>(c->id & 0xFFFFFFFFu)]; held == c) {
      held.reset();
      free_slots_.push_back(static_cast<std::uint32_t>(c->id & 0xFFFFFFFFu));
    }
    if (tell_core) served_[c->owner]->core->handle(now, engine::closed{c->id});
  }

  void core_closed(std::size_t owner, time_point now, const engine::close& cc) {
    const auto c = find_conn(owner, cc.conn);  // a copy keeps it alive through the reset
    if (!c) return;
    if (!cc.reason.empty())
      log_limited(close_log_, log_level::info, now, [&] { return "closed a connection: " + cc.reason; });
    if (c->closing) return;
    if (c->writing || !c->queued.empty()) return close_after_writes(c);  // start_write is kicked after the batch
    drop_tcp(c, now, false);  // the core has forgotten it already
  }

  void queue_tcp(std::size_t owner, time_point now, engine::send& s) {
    const auto c = find_conn(owner, s.conn);
    if (!c || c->closing) return;  // closed since the core produced it
    if (c->queued_bytes + c->in_flight_bytes + s.bytes.size() > cfg_.max_unsent_bytes_per_connection) {
      ++stats_.connections_not_reading;
      log_limited(close_log_, log_level::info, now, [&] {
        return fmt::format("closed the connection from {}: over {} bytes of responses unread",
                           c->peer.to_string(), cfg_.max_unsent_bytes_per_connection);
      });
      drop_tcp(c, now, true);  // its close is carried out after this batch (after_input loops)
      return;
    }
    const bool idle = c->queued.empty() && !c->writing;
    c->queued_bytes += s.bytes.size();
    c->queued.push_back(std::move(s.bytes));
    if (idle) kick_.push_back(c);
  }

  /// One gathered write of everything queued; never two in flight on a socket.
  void start_write(const std::shared_ptr<tcp_conn>& c) {
    if (!c->open || c->connecting || c->writing || c->queued.empty()) return;
    c->in_flight.swap(c->queued);
    c->in_flight_bytes = std::exchange(c->queued_bytes, 0);
    gather_.clear();
    for (const auto& b : c->in_flight) gather_.emplace_back(asio::buffer(b));
    c->writing = true;
    asio::async_write(c->sock, gather_, [this, c](const error_code& ec, std::size_t) {
      c->writing = false;
      c->in_flight.clear();
      c->in_flight_bytes = 0;
      if (!c->open || stopping_) return;
      if (ec && c->closing) return drop_tcp(c, steady_now(), false);
      if (ec) {
        const time_point now = steady_now();
        ++stats_.tcp_write_errors;
        log_limited(close_log_, log_level::info, now, [&] {
          return fmt::format("writing to {} failed: {}", c->peer.to_string(), ec.message());
        });
        drop_tcp(c, now, true);
        after_input(c->owner, now);
        return;
      }
      if (c->closing && c->queued.empty()) {
        error_code ignored;
        c->sock.shutdown(tcp::socket::shutdown_send, ignored);  // the FIN; the peer's ends it
        if (c->peer_done) drop_tcp(c, steady_now(), false);
        return;
      }
      start_write(c);
    });
  }

  // ---- UDP ----
  static udp_socket* find_socket(served& s, engine::socket_id id) {
    for (auto& u : s.sockets)
      if (u->id == id) return u.get();
    return nullptr;
  }

  void queue_udp(served& s, time_point now, engine::send_datagram& d) {
    if (!cfg_.allow_non_loopback && !d.to.is_loopback()) {  // defence in depth: the cores check too
      ++stats_.udp_refused_non_loopback;
      log_limited(udp_log_, log_level::warning, now, [&] {
        return "refused to send a datagram to " + d.to.to_string() + ": not loopback (see --allow-non-loopback)";
      });
      return;
    }
    udp_socket* u = find_socket(s, d.socket);
    if (!u) {
      ++stats_.udp_send_errors;
      return;
    }
    if (u->queue.size() >= cfg_.max_queued_datagrams) {
      ++stats_.udp_dropped_queue_full;
      return;
    }
    datagram_out out;
    if (!make_sockaddr(d.to, u->is_v6, out.to, out.to_len)) {
      ++stats_.udp_send_errors;
      log_limited(udp_log_, log_level::warning, now, [&] {
        return "cannot send to " + d.to.to_string() + " from the IPv4 socket " + bound(*u).to_string();
      });
      return;
    }
    out.bytes = std::move(d.bytes);
    u->queue.push_back(std::move(out));
  }

  /// Sends the queued datagrams, up to udp_batch per sendmmsg call.
  void flush_udp(udp_socket& u) {
    if (u.waiting || !u.sock.is_open()) return;
    const int fd = u.sock.native_handle();
    while (!u.queue.empty()) {
      const std::size_t n = std::min(u.queue.size(), udp_batch);
      for (std::size_t i = 0; i < n; ++i) {
        datagram_out& d = u.queue[i];
        iov_[i].iov_base = d.bytes.data();
        iov_[i].iov_len = d.bytes.size();
        mmsg_[i] = mmsghdr{};
        mmsg_[i].msg_hdr.msg_name = &d.to.sa;
        mmsg_[i].msg_hdr.msg_namelen = d.to_len;
        mmsg_[i].msg_hdr.msg_iov = &iov_[i];
        mmsg_[i].msg_hdr.msg_iovlen = 1;
      }
      ++stats_.udp_send_calls;
      const int sent = ::sendmmsg(fd, mmsg_.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
      if (sent > 0) {
        stats_.udp_datagrams_sent += static_cast<std::uint64_t>(sent);
        u.queue.erase(u.queue.begin(), u.queue.begin() + sent);
        continue;
      }
      const int err = sent < 0 ? errno : EIO;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {  // send buffer full: wait for room
        ++stats_.udp_send_blocked;
        u.waiting = true;
        u.sock.async_wait(udp::socket::wait_write, [this, &u](const error_code& ec) {
          u.waiting = false;
          if (ec || stopping_) return;
          flush_udp(u);
        });
        return;
      }
      // The error belongs to the first datagram of the batch: drop it, go on.
      ++stats_.udp_send_errors;
      const ip_endpoint to = destination_of(u.queue.front());
      log_limited(udp_log_, log_level::warning, steady_now(), [&] {
        return fmt::format("sending a datagram to {} failed: {}", to.to_string(), std::strerror(err));
      });
      u.queue.pop_front();
    }
  }

  static ip_endpoint destination_of(const datagram_out& d) {
    if (d.to.sa.sa_family == AF_INET) return ip_endpoint::v4(ntohl(d.to.v4.sin_addr.s_addr), ntohs(d.to.v4.sin_port));
    ip_endpoint e;
    e.is_v6 = true;
    std::memcpy(e.address.data(), d.to.v6.sin6_addr.s6_addr, 16);
    e.port = ntohs(d.to.v6.sin6_port);
    return e;
  }

  void wait_udp(std::size_t index, udp_socket& u) {
    u.sock.async_wait(udp::socket::wait_read,
                      [this, index, &u](const error_code& ec) { on_udp_readable(index, u, ec); });
  }

  void on_udp_readable(std::size_t index, udp_socket& u, const error_code& wait_ec) {
    if (stopping_) return;
    const time_point now = steady_now();
    if (wait_ec) {
      if (wait_ec == asio::error::operation_aborted) return;
      ++stats_.udp_receive_errors;
      log_limited(udp_log_, log_level::warning, now,
                  [&] { return "waiting on the UDP socket failed: " + wait_ec.message(); });
      u.retry.expires_after(cfg_.accept_retry);
      u.retry.async_wait([this, index, &u](const error_code& e) {
        if (!e && !stopping_) wait_udp(index, u);
      });
      return;
    }
    engine::server_session& core = *served_[index]->core;
    for (int round = 0; round < datagram_rounds; ++round) {
      udp::endpoint from;
      error_code ec;
      const std::size_t n = u.sock.receive_from(asio::buffer(rx_), from, 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) {  // e.g. an ICMP error reported on the socket: count it, keep going
        ++stats_.udp_receive_errors;
        log_limited(udp_log_, log_level::info, now, [&] { return "UDP receive failed: " + ec.message(); });
        continue;
      }
      core.handle(now, engine::datagram{u.id, from_asio(from), bytes_view(rx_.data(), n)});
    }
    after_input(index, now);
    wait_udp(index, u);
  }

  // ---- the control port ----
  void control_accept_next() {
    control_acceptor_.async_accept(
        [this](const error_code& ec, tcp::socket s) { on_control_accept(ec, std::move(s)); });
  }

  void on_control_accept(const error_code& ec, tcp::socket s) {
    if (stopping_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      ++stats_.accept_errors;
      log_limited(accept_log_, log_level::warning, steady_now(), [&] {
        return fmt::format("accepting a control connection failed: {}; retrying", ec.message());
      });
      control_retry_.expires_after(cfg_.accept_retry);
      control_retry_.async_wait([this](const error_code& e) {
        if (!e && !stopping_) control_accept_next();
      });
      return;
    }
    error_code nb_ec;
    s.non_blocking(true, nb_ec);
    if (nb_ec) {
      s.close(nb_ec);
      control_accept_next();
      return;
    }
    error_code opt_ec;
    s.set_option(tcp::no_delay(true), opt_ec);
    auto cc = std::make_shared<control_conn>(std::move(s));
    cc->id = ++next_control_id_;
    controls_.emplace(cc->id, cc);
    ++stats_.control_connections;
    wait_control(cc);
    control_accept_next();
  }

  void wait_control(const std::shared_ptr<control_conn>& cc) {
    cc->read_waiting = true;
    cc->sock.async_wait(tcp::socket::wait_read, [this, cc](const error_code& ec) { on_control_readable(cc, ec); });
  }

  void on_control_readable(const std::shared_ptr<control_conn>& cc, const error_code& wait_ec) {
    cc->read_waiting = false;
    if (!cc->open || stopping_) return;
    if (wait_ec) {
      close_control(cc);
      return;
    }
    const time_point now = steady_now();
    bool peer_done = false;
    for (int round = 0; round < read_rounds && !cc->finishing; ++round) {
      error_code ec;
      const std::size_t n = cc->sock.read_some(asio::buffer(rx_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec == asio::error::eof) {  // half-closed: answer what came, then close
        peer_done = true;
        break;
      }
      if (ec) {
        close_control(cc);
        after_every_input(now);
        return;
      }
      cc->lines.append(std::string_view(reinterpret_cast<const char*>(rx_.data()), n));
      run_control_lines(*cc, now);
      if (cc->queued.size() > control_backlog || n < rx_.size()) break;
    }
    if (peer_done) cc->finishing = true;
    after_every_input(now);  // pings for the injected events first, then the replies
    start_control_write(cc);
    settle_control(cc);
  }

  void after_every_input(time_point now) {
    for (std::size_t i = 0; i < served_.size(); ++i) after_input(i, now);
  }

  /// Reads again, pauses (replies piling up) or closes (finished and flushed).
  void settle_control(const std::shared_ptr<control_conn>& cc) {
    if (!cc->open) return;
    if (cc->finishing) {
      if (!cc->writing && cc->queued.empty()) close_control(cc);
      return;
    }
    if (cc->queued.size() + cc->in_flight.size() > control_backlog) return;  // resumed as replies drain
    if (!cc->read_waiting) wait_control(cc);
  }

  /// The core a control-port event goes to: the one `family` names (case
  /// blind), or the first served core when it names none, so that a mailbox
  /// only ever exists in the family whose clients watch it. nullopt, and
  /// `why`, when no core fits.
  std::optional<std::size_t> core_for(std::string_view family, std::string& why) const {
    if (served_.empty()) {
      why = "no protocol is served";
      return std::nullopt;
    }
    if (family.empty()) return 0;
    const auto same = [](std::string_view a, std::string_view b) {
      return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
             });
    };
    std::string names;
    for (std::size_t p = 0; p < served_.size(); ++p) {
      if (same(served_[p]->name, family)) return p;
      names += (names.empty() ? "" : ", ") + served_[p]->name;
    }
    why = fmt::format("no family '{}' is served here (serving {})", control::printable_excerpt(family), names);
    return std::nullopt;
  }

  void run_control_lines(control_conn& cc, time_point now) {
    std::string_view line;
    while (!cc.finishing) {
      const auto st = cc.lines.next(line);
      if (st == control::line_reader::status::none) break;
      ++stats_.control_commands;
      if (st == control::line_reader::status::too_long) {
        ++stats_.control_errors;
        control::append_error(cc.queued, fmt::format("line longer than {} bytes", control::max_line));
        continue;
      }
      std::visit(overloaded{
                     [&](const control::inject_events& e) {
                       std::string why;
                       const auto p = core_for(e.family, why);
                       if (!p) {
                         ++stats_.control_errors;
                         control::append_error(cc.queued, why);
                         return;
                       }
                       std::uint64_t first = 0;
                       std::uint64_t last = 0;
                       for (std::uint64_t i = 0; i < e.count; ++i) {
                         last = served_[*p]->core->inject_event(now, e.user_dn);
                         if (i == 0) first = last;
                       }
                       stats_.events_from_control += e.count;
                       if (e.batch)
                         control::append_ok_events(cc.queued, first, last);
                       else
                         control::append_ok_event(cc.queued, first);
                     },
                     [&](const control::query_stats&) {
                       cc.queued += dump_json(stats_json(now, 100), -1);
                       cc.queued += '\n';
                     },
                     [&](const control::query_services&) {
                       cc.queued += dump_json(services_json(), -1);
                       cc.queued += '\n';
                     },
                     [&](const control::quit&) {
                       cc.queued += "OK bye\n";
                       cc.finishing = true;
                     },
                     [&](const control::bad_request& b) {
                       ++stats_.control_errors;
                       control::append_error(cc.queued, b.reason);
                     },
                 },
                 control::parse_line(line));
    }
  }

  void start_control_write(const std::shared_ptr<control_conn>& cc) {
    if (!cc->open || cc->writing || cc->queued.empty()) return;
    cc->in_flight.swap(cc->queued);
    cc->queued.clear();
    cc->writing = true;
    asio::async_write(cc->sock, asio::buffer(cc->in_flight), [this, cc](const error_code& ec, std::size_t) {
      cc->writing = false;
      cc->in_flight.clear();
      if (!cc->open || stopping_) return;
      if (ec) {
        close_control(cc);
        return;
      }
      start_control_write(cc);
      settle_control(cc);
    });
  }

  void close_control(const std::shared_ptr<control_conn>& cc) {
    if (!cc->open) return;
    cc->open = false;
    error_code ec;
    cc->sock.close(ec);
    controls_.erase(cc->id);
  }

  // ---- STATS ----
  engine::service_address service(std::size_t i) const {
    engine::service_address a;
    for (const auto& l : served_.at(i)->listeners)
      if (l->acceptor.is_open()) a.listeners.push_back({l->id, bound(*l)});
    for (const auto& u : served_.at(i)->sockets)
      if (u->sock.is_open()) a.sockets.push_back({u->id, bound(*u)});
    return a;
  }

  nlohmann::json services_json() const {
    const auto rows = [](const std::vector<engine::service_address::named_endpoint>& eps) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : eps) out.push_back({{"id", e.id}, {"at", e.at.to_string()}});
      return out;
    };
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t i = 0; i < served_.size(); ++i) {
      const auto a = service(i);
      j[served_[i]->name] = {{"listeners", rows(a.listeners)}, {"sockets", rows(a.sockets)}};
    }
    return j;
  }

  nlohmann::json stats_json(time_point now, std::size_t max_mailboxes) const {
    nlohmann::json j = nlohmann::json::object();
    j["uptime_s"] = to_seconds(now - started_at_);
    nlohmann::json pending = nlohmann::json::array();
    bool truncated = false;
    for (const auto& s : served_) {
      nlohmann::json& block = served_.size() == 1 ? j : j["protocols"][s->name];
      const auto counters = s->core->stats();
      for (const auto& [name, value] : counters) set_dotted(block, name, value);
      // The first core's counters stay at the top level too (as EVENT replies
      // with its id), so readers of a one-family STATS read a several-family one.
      if (served_.size() > 1 && s == served_.front())
        for (const auto& [name, value] : counters) set_dotted(j, name, value);
      bool cut = false;
      for (auto& b : s->core->backlog(max_mailboxes - std::min(max_mailboxes, pending.size()), cut)) {
        nlohmann::json row = {{"dn", std::move(b.mailbox)},
                              {"generated", b.generated},
                              {"fetched", b.fetched},
                              {"pending", b.pending}};
        if (served_.size() > 1) row["protocol"] = s->name;
        pending.push_back(std::move(row));
      }
      truncated = truncated || cut;
    }
    nlohmann::json drv;
#define NUDGE_FIELD(name) drv[#name] = stats_.name
    NUDGE_FIELD(accept_errors);
    NUDGE_FIELD(tcp_read_errors);
    NUDGE_FIELD(tcp_write_errors);
    NUDGE_FIELD(connections_not_reading);
    NUDGE_FIELD(udp_send_calls);
    NUDGE_FIELD(udp_datagrams_sent);
    NUDGE_FIELD(udp_send_errors);
    NUDGE_FIELD(udp_send_blocked);
    NUDGE_FIELD(udp_dropped_queue_full);
    NUDGE_FIELD(udp_refused_non_loopback);
    NUDGE_FIELD(tcp_connects);
    NUDGE_FIELD(tcp_connect_failures);
    NUDGE_FIELD(tcp_refused_non_loopback);
    NUDGE_FIELD(udp_receive_errors);
    NUDGE_FIELD(control_connections);
    NUDGE_FIELD(control_commands);
    NUDGE_FIELD(control_errors);
    NUDGE_FIELD(events_from_control);
    NUDGE_FIELD(events_from_generator);
    NUDGE_FIELD(generator_backlog_dropped);
    NUDGE_FIELD(log_lines_suppressed);
#undef NUDGE_FIELD
    j["driver"] = std::move(drv);
    j["pending_mailboxes"] = std::move(pending);
    j["pending_mailboxes_truncated"] = truncated;
    return j;
  }

  // ---- state ----
  asio::io_context& io_;
  host_config cfg_;
  log_sink log_;
  std::vector<std::unique_ptr<served>> served_;
  driver_stats stats_;
  bool started_ = false;
  bool stopping_ = false;
  time_point started_at_{};

  tcp::acceptor control_acceptor_;
  asio::steady_timer timer_;
  asio::steady_timer control_retry_;
  bool timer_armed_ = false;
  time_point armed_for_ = never;
  std::uint64_t timer_generation_ = 0;

  std::vector<std::shared_ptr<tcp_conn>> conns_;  // by slot (the id's low 32 bits)
  // Connections the cores opened, by (core index, the core's id).
  std::map<std::pair<std::size_t, engine::connection_id>, std::shared_ptr<tcp_conn>> outgoing_;
  std::vector<std::uint32_t> generations_;       // by slot
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::uint64_t, std::shared_ptr<control_conn>> controls_;
  std::uint64_t next_control_id_ = 0;

  std::vector<std::uint8_t> rx_;  // one receive buffer for every socket (single thread)
  std::vector<std::shared_ptr<tcp_conn>> kick_;
  std::vector<asio::const_buffer> gather_;
  std::vector<mailbox_id> due_;
  std::array<mmsghdr, udp_batch> mmsg_{};
  std::array<iovec, udp_batch> iov_{};

  log_limiter close_log_{10};
  log_limiter accept_log_{5};
  log_limiter udp_log_{5};
  log_limiter notice_log_{10};
};

// ---- the public face --------------------------------------------------------------------

server_host::server_host(asio::io_context& io, host_config cfg, std::vector<served_protocol> served, log_sink log)
    : impl_(std::make_unique<impl>(io, std::move(cfg), std::move(served), std::move(log))) {}

server_host::~server_host() = default;

std::optional<std::string> server_host::start() { return impl_->start(); }
void server_host::stop() { impl_->stop(); }
bool server_host::stopped() const { return impl_->stopping_; }
std::size_t server_host::protocol_count() const { return impl_->served_.size(); }
const std::string& server_host::protocol_name(std::size_t i) const { return impl_->served_.at(i)->name; }
const engine::server_session& server_host::core(std::size_t i) const { return *impl_->served_.at(i)->core; }

std::optional<ip_endpoint> server_host::listener_endpoint(std::size_t i, engine::listener_id id) const {
  if (i >= impl_->served_.size()) return std::nullopt;
  for (const auto& l : impl_->served_[i]->listeners)
    if (l->id == id && l->acceptor.is_open()) return impl::bound(*l);
  return std::nullopt;
}

std::optional<ip_endpoint> server_host::socket_endpoint(std::size_t i, engine::socket_id id) const {
  if (i >= impl_->served_.size()) return std::nullopt;
  for (const auto& u : impl_->served_[i]->sockets)
    if (u->id == id && u->sock.is_open()) return impl::bound(*u);
  return std::nullopt;
}

std::optional<ip_endpoint> server_host::control_endpoint() const { return impl_->control_endpoint(); }
engine::service_address server_host::service(std::size_t i) const { return impl_->service(i); }
nlohmann::json server_host::services_json() const { return impl_->services_json(); }
const driver_stats& server_host::stats() const { return impl_->stats_; }
time_point server_host::started_at() const { return impl_->started_at_; }
nlohmann::json server_host::stats_json(time_point now, std::size_t max_mailboxes) const {
  return impl_->stats_json(now, max_mailboxes);
}

}  // namespace nudge::notifier
