#include "nudge/notifier/notifier_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "nudge/notifier/control_protocol.hpp"
#include "nudge/notifier/event_generator.hpp"
#include "nudge/notifier/stats_report.hpp"

namespace nudge::notifier {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;

log_sink stderr_log(bool quiet) {
  return [quiet](log_level level, std::string_view text) {
    if (quiet && level == log_level::info) return;
    const char* tag = level == log_level::error ? "error: " : level == log_level::warning ? "warning: " : "";
    fmt::print(stderr, "notifier: {}{}\n", tag, text);
  };
}

time_point steady_now() {
  return time_point(std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

namespace {

std::chrono::steady_clock::time_point to_steady(time_point t) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
}

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

ip_endpoint from_asio(const asio::ip::address& a, std::uint16_t port) {
  if (a.is_v4()) return ip_endpoint::v4(a.to_v4().to_uint(), port);
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return ip_endpoint::v4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint(), port);
  ip_endpoint e;
  e.is_v6 = true;
  const auto b = v6.to_bytes();
  std::copy(b.begin(), b.end(), e.address.begin());
  e.port = port;
  return e;
}

template <class Endpoint>
ip_endpoint from_asio(const Endpoint& ep) {
  return from_asio(ep.address(), ep.port());
}

asio::ip::address to_asio(const ip_endpoint& e) {
  if (!e.is_v6) return asio::ip::address_v4(e.v4_host_order());
  asio::ip::address_v6::bytes_type b;
  std::copy(e.address.begin(), e.address.end(), b.begin());
  return asio::ip::address_v6(b);
}

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

constexpr std::size_t read_chunk = 64 * 1024;
constexpr int read_rounds = 4;           // chunks per wake-up before letting others run
constexpr int datagram_rounds = 256;     // datagrams per wake-up
constexpr std::size_t udp_batch = 256;   // datagrams per sendmmsg
constexpr std::size_t control_backlog = 4u << 20;  // stop reading a control peer that does not read its replies

}  // namespace

// ---- the driver ------------------------------------------------------------------------

struct notifier_server::impl {
  struct tcp_conn {
    explicit tcp_conn(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    connection_id id = 0;
    ip_endpoint peer;
    std::vector<byte_buffer> queued;  // waiting for the write in flight
    std::size_t queued_bytes = 0;
    std::vector<byte_buffer> in_flight;
    std::size_t in_flight_bytes = 0;
    bool writing = false;
    bool open = true;
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

  struct datagram {
    sock_address to;
    socklen_t to_len = 0;
    byte_buffer bytes;
  };

  impl(asio::io_context& io, server_config c, log_sink l)
      : cfg_(std::move(c)),
        log_(l ? std::move(l) : stderr_log(false)),
        core_(std::in_place, cfg_.core),
        generator_(cfg_.events_per_mailbox_hour, cfg_.seed),
        acceptor_(io),
        control_acceptor_(io),
        udp_(io),
        timer_(io),
        accept_retry_(io),
        control_retry_(io),
        udp_retry_(io),
        rx_(read_chunk) {}

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
    const tcp::endpoint ep(to_asio(at), at.port);
    a.open(ep.protocol(), ec);
    if (ec) return fmt::format("cannot open the {} socket: {}", what, ec.message());
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fmt::format("cannot listen on {} ({}): {}", at.to_string(), what, ec.message());
    return std::nullopt;
  }

  void set_udp_buffer(int option, int force_option, const char* name) {
    const int fd = udp_.native_handle();
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
    // The command line checks this too; the driver enforces it for every caller.
    for (const auto& [what, at] : {std::pair{"DCE/RPC", cfg_.tcp_listen}, std::pair{"UDP", cfg_.udp_bind}})
      if (!cfg_.core.allow_non_loopback && !at.is_loopback())
        return fail(fmt::format("refusing to bind the {} socket to {}: not a loopback address", what, at.to_string()));
    if (cfg_.control && !cfg_.control->is_loopback())
      return fail(fmt::format("refusing to bind the control port to {}: it stays on loopback", cfg_.control->to_string()));
    if (auto e = open_acceptor(acceptor_, cfg_.tcp_listen, "DCE/RPC")) return fail(std::move(*e));
    error_code ec;
    const auto tcp_local = acceptor_.local_endpoint(ec);
    if (ec) return fail(fmt::format("cannot read the DCE/RPC socket's address: {}", ec.message()));
    cfg_.core.tcp_port = tcp_local.port();
    core_.emplace(cfg_.core);  // bind_ack must name the port actually bound

    const udp::endpoint uep(to_asio(cfg_.udp_bind), cfg_.udp_bind.port);
    udp_.open(uep.protocol(), ec);
    if (!ec) udp_.bind(uep, ec);
    if (ec) return fail(fmt::format("cannot bind the UDP socket to {}: {}", cfg_.udp_bind.to_string(), ec.message()));
    udp_.non_blocking(true, ec);
    if (ec) return fail(fmt::format("cannot make the UDP socket non-blocking: {}", ec.message()));
    udp_is_v6_ = uep.address().is_v6();
    set_udp_buffer(SO_RCVBUF, SO_RCVBUFFORCE, "SO_RCVBUF");
    set_udp_buffer(SO_SNDBUF, SO_SNDBUFFORCE, "SO_SNDBUF");

    if (cfg_.control) {
      if (auto e = open_acceptor(control_acceptor_, *cfg_.control, "control")) return fail(std::move(*e));
    }

    started_at_ = steady_now();
    accept_next();
    wait_udp();
    if (control_acceptor_.is_open()) control_accept_next();
    log(log_level::info,
        fmt::format("serving DCE/RPC on tcp {}, pings from udp {}{}; policy {}, push {}, async {}{}",
                    tcp_endpoint().to_string(), udp_endpoint().to_string(),
                    control_endpoint() ? ", control on tcp " + control_endpoint()->to_string() : std::string(),
                    to_string(cfg_.core.policy), cfg_.core.push_enabled ? "on" : "off",
                    cfg_.core.async_enabled ? "on" : "off",
                    generator_.enabled()
                        ? fmt::format(", {:g} events per mailbox-hour (seed {})", cfg_.events_per_mailbox_hour, cfg_.seed)
                        : std::string()));
    return std::nullopt;
  }

  std::optional<std::string> fail(std::string why) {
    error_code ec;
    acceptor_.close(ec);
    control_acceptor_.close(ec);
    udp_.close(ec);
    stopping_ = true;
    return why;
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    error_code ec;
    acceptor_.close(ec);
    control_acceptor_.close(ec);
    udp_.close(ec);
    timer_.cancel();
    accept_retry_.cancel();
    control_retry_.cancel();
    udp_retry_.cancel();
    const time_point now = steady_now();
    for (auto& c : conns_) {
      if (!c) continue;
      c->open = false;
      c->sock.close(ec);
      core_->connection_closed(now, c->id);
    }
    conns_.clear();
    for (auto& [id, cc] : controls_) {
      cc->open = false;
      cc->sock.close(ec);
    }
    controls_.clear();
    udp_queue_.clear();
    core_->outputs().clear();
  }

  ip_endpoint tcp_endpoint() const {
    error_code ec;
    const auto ep = acceptor_.local_endpoint(ec);
    return ec ? cfg_.tcp_listen : from_asio(ep);
  }
  ip_endpoint udp_endpoint() const {
    error_code ec;
    const auto ep = udp_.local_endpoint(ec);
    return ec ? cfg_.udp_bind : from_asio(ep);
  }
  std::optional<ip_endpoint> control_endpoint() const {
    if (!cfg_.control) return std::nullopt;
    error_code ec;
    const auto ep = control_acceptor_.local_endpoint(ec);
    return ec ? *cfg_.control : from_asio(ep);
  }

  // ---- after every input: outputs, generator, timer ----
  void after_input(time_point now) {
    if (stopping_) {
      core_->outputs().clear();
      return;
    }
    if (generator_.enabled()) generator_.set_mailbox_count(now, core_->mailbox_count());
    drain(now);
    rearm_timer();
  }

  void drain(time_point now) {
    auto& outs = core_->outputs();
    while (!outs.empty()) {
      scratch_.swap(outs);
      for (auto& o : scratch_)
        std::visit(overloaded{
                       [&](tcp_send& s) { queue_tcp(now, s); },
                       [&](udp_send& u) { queue_udp(now, u); },
                       [&](close_connection& c) { core_closed(now, c); },
                       [&](notice& n) {
                         log_limited(notice_log_, log_level::warning, now, [&] { return std::move(n.text); });
                       },
                   },
                   o);
      scratch_.clear();
    }
    for (auto& c : kick_) start_write(c);
    kick_.clear();
    flush_udp();
  }

  // ---- the timer ----
  void rearm_timer() {
    if (stopping_) return;
    const time_point next = std::min(core_->next_deadline(), generator_.next_deadline());
    if (next == never) return;  // a wake-up already armed for later is harmless
    if (timer_armed_ && armed_for_ <= next) return;
    timer_armed_ = true;
    armed_for_ = next;
    const std::uint64_t generation = ++timer_generation_;
    timer_.expires_at(to_steady(next));
    timer_.async_wait([this, generation](const error_code& ec) {
      if (ec == asio::error::operation_aborted || generation != timer_generation_ || stopping_) return;
      timer_armed_ = false;
      on_timer();
    });
  }

  void on_timer() {
    const time_point now = steady_now();
    core_->on_timer(now);
    due_.clear();
    generator_.due(now, due_);
    for (mailbox_id mb : due_) core_->inject_event(now, mb);
    stats_.events_from_generator += due_.size();
    stats_.generator_backlog_dropped = generator_.dropped_backlog();
    after_input(now);
  }

  // ---- DCE/RPC connections ----
  void accept_next() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) { on_accept(ec, std::move(s)); });
  }

  void on_accept(const error_code& ec, tcp::socket s) {
    if (stopping_) return;
    const time_point now = steady_now();
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      ++stats_.accept_errors;
      log_limited(accept_log_, log_level::warning, now, [&] {
        return fmt::format("accepting a DCE/RPC connection failed: {}; retrying in {} ms", ec.message(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.accept_retry).count());
      });
      accept_retry_.expires_after(cfg_.accept_retry);
      accept_retry_.async_wait([this](const error_code& e) {
        if (!e && !stopping_) accept_next();
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
      accept_next();
      return;
    }
    auto c = std::make_shared<tcp_conn>(std::move(s));
    c->peer = from_asio(remote);
    c->id = core_->open_connection(now, c->peer);
    const std::uint32_t slot = connection_slot(c->id);
    if (slot >= conns_.size()) conns_.resize(std::max<std::size_t>(slot + 1, conns_.size() * 2));
    conns_[slot] = c;
    wait_tcp(c);
    after_input(now);
    accept_next();
  }

  void wait_tcp(const std::shared_ptr<tcp_conn>& c) {
    c->sock.async_wait(tcp::socket::wait_read, [this, c](const error_code& ec) { on_tcp_readable(c, ec); });
  }

  void on_tcp_readable(const std::shared_ptr<tcp_conn>& c, const error_code& wait_ec) {
    if (!c->open || stopping_) return;
    const time_point now = steady_now();
    if (wait_ec) {
      tcp_gone(c, now, wait_ec);
      return;
    }
    for (int round = 0; round < read_rounds; ++round) {
      error_code ec;
      const std::size_t n = c->sock.read_some(asio::buffer(rx_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) {
        tcp_gone(c, now, ec);
        return;
      }
      core_->receive(now, c->id, bytes_view(rx_.data(), n));
      after_input(now);  // the core may have closed this connection
      if (!c->open) return;
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
    after_input(now);
  }

  /// Connection ids are (generation << 32 | slot): the slot indexes conns_.
  std::shared_ptr<tcp_conn> find_conn(connection_id id) const {
    const std::uint32_t slot = connection_slot(id);
    if (slot >= conns_.size() || !conns_[slot] || conns_[slot]->id != id) return nullptr;
    return conns_[slot];
  }

  void drop_tcp(const std::shared_ptr<tcp_conn>& c, time_point now, bool tell_core) {
    if (!c->open) return;
    c->open = false;
    error_code ec;
    c->sock.close(ec);
    if (auto& held = conns_[connection_slot(c->id)]; held == c) held.reset();
    if (tell_core) core_->connection_closed(now, c->id);
  }

  void core_closed(time_point now, const close_connection& cc) {
    const auto c = find_conn(cc.conn);  // a copy keeps it alive through the reset
    if (!c) return;
    log_limited(close_log_, log_level::info, now, [&] { return "closed a connection: " + cc.reason; });
    drop_tcp(c, now, false);  // the core has forgotten it already
  }

  void queue_tcp(time_point now, tcp_send& s) {
    const auto c = find_conn(s.conn);
    if (!c) return;  // closed since the core produced it
    if (c->queued_bytes + c->in_flight_bytes + s.bytes.size() > cfg_.max_unsent_bytes_per_connection) {
      ++stats_.connections_not_reading;
      log_limited(close_log_, log_level::info, now, [&] {
        return fmt::format("closed the connection from {}: over {} bytes of responses unread",
                           c->peer.to_string(), cfg_.max_unsent_bytes_per_connection);
      });
      drop_tcp(c, now, true);
      return;
    }
    const bool idle = c->queued.empty() && !c->writing;
    c->queued_bytes += s.bytes.size();
    c->queued.push_back(std::move(s.bytes));
    if (idle) kick_.push_back(c);
  }

  /// One gathered write of everything queued; never two in flight on a socket.
  void start_write(const std::shared_ptr<tcp_conn>& c) {
    if (!c->open || c->writing || c->queued.empty()) return;
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
      if (ec) {
        const time_point now = steady_now();
        ++stats_.tcp_write_errors;
        log_limited(close_log_, log_level::info, now, [&] {
          return fmt::format("writing to {} failed: {}", c->peer.to_string(), ec.message());
        });
        drop_tcp(c, now, true);
        after_input(now);
        return;
      }
      start_write(c);
    });
  }

  // ---- UDP ----
  void queue_udp(time_point now, udp_send& u) {
    if (!cfg_.core.allow_non_loopback && !u.to.is_loopback()) {  // defence in depth: the core checks too
      ++stats_.udp_refused_non_loopback;
      log_limited(udp_log_, log_level::warning, now, [&] {
        return "refused to send a datagram to " + u.to.to_string() + ": not loopback (see --allow-non-loopback)";
      });
      return;
    }
    if (udp_queue_.size() >= cfg_.max_queued_datagrams) {
      ++stats_.udp_dropped_queue_full;
      return;
    }
    datagram d;
    if (!make_sockaddr(u.to, udp_is_v6_, d.to, d.to_len)) {
      ++stats_.udp_send_errors;
      log_limited(udp_log_, log_level::warning, now, [&] {
        return "cannot send to " + u.to.to_string() + " from the IPv4 socket " + udp_endpoint().to_string();
      });
      return;
    }
    d.bytes = std::move(u.bytes);
    udp_queue_.push_back(std::move(d));
  }

  /// Sends the queued datagrams, up to udp_batch per sendmmsg call.
  void flush_udp() {
    if (udp_waiting_ || !udp_.is_open()) return;
    const int fd = udp_.native_handle();
    while (!udp_queue_.empty()) {
      const std::size_t n = std::min(udp_queue_.size(), udp_batch);
      for (std::size_t i = 0; i < n; ++i) {
        datagram& d = udp_queue_[i];
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
        udp_queue_.erase(udp_queue_.begin(), udp_queue_.begin() + sent);
        continue;
      }
      const int err = sent < 0 ? errno : EIO;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {  // send buffer full: wait for room
        ++stats_.udp_send_blocked;
        udp_waiting_ = true;
        udp_.async_wait(udp::socket::wait_write, [this](const error_code& ec) {
          udp_waiting_ = false;
          if (ec || stopping_) return;
          flush_udp();
        });
        return;
      }
      // The error belongs to the first datagram of the batch: drop it, go on.
      ++stats_.udp_send_errors;
      const ip_endpoint to = destination_of(udp_queue_.front());
      log_limited(udp_log_, log_level::warning, steady_now(), [&] {
        return fmt::format("sending a datagram to {} failed: {}", to.to_string(), std::strerror(err));
      });
      udp_queue_.pop_front();
    }
  }

  static ip_endpoint destination_of(const datagram& d) {
    if (d.to.sa.sa_family == AF_INET) return ip_endpoint::v4(ntohl(d.to.v4.sin_addr.s_addr), ntohs(d.to.v4.sin_port));
    ip_endpoint e;
    e.is_v6 = true;
    std::memcpy(e.address.data(), d.to.v6.sin6_addr.s6_addr, 16);
    e.port = ntohs(d.to.v6.sin6_port);
    return e;
  }

  void wait_udp() {
    udp_.async_wait(udp::socket::wait_read, [this](const error_code& ec) { on_udp_readable(ec); });
  }

  void on_udp_readable(const error_code& wait_ec) {
    if (stopping_) return;
    const time_point now = steady_now();
    if (wait_ec) {
      if (wait_ec == asio::error::operation_aborted) return;
      ++stats_.udp_receive_errors;
      log_limited(udp_log_, log_level::warning, now,
                  [&] { return "waiting on the UDP socket failed: " + wait_ec.message(); });
      udp_retry_.expires_after(cfg_.accept_retry);
      udp_retry_.async_wait([this](const error_code& e) {
        if (!e && !stopping_) wait_udp();
      });
      return;
    }
    for (int round = 0; round < datagram_rounds; ++round) {
      udp::endpoint from;
      error_code ec;
      const std::size_t n = udp_.receive_from(asio::buffer(rx_), from, 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) {  // e.g. an ICMP error reported on the socket: count it, keep going
        ++stats_.udp_receive_errors;
        log_limited(udp_log_, log_level::info, now, [&] { return "UDP receive failed: " + ec.message(); });
        continue;
      }
      core_->receive_datagram(now, from_asio(from), bytes_view(rx_.data(), n));
    }
    after_input(now);
    wait_udp();
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
        after_input(now);
        return;
      }
      cc->lines.append(std::string_view(reinterpret_cast<const char*>(rx_.data()), n));
      run_control_lines(*cc, now);
      if (cc->queued.size() > control_backlog || n < rx_.size()) break;
    }
    if (peer_done) cc->finishing = true;
    after_input(now);  // pings for the injected events first, then the replies
    start_control_write(cc);
    settle_control(cc);
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
                       const mailbox_id mb = core_->mailbox(e.user_dn);
                       std::uint64_t first = 0;
                       std::uint64_t last = 0;
                       for (std::uint64_t i = 0; i < e.count; ++i) {
                         last = core_->inject_event(now, mb).id;
                         if (i == 0) first = last;
                       }
                       stats_.events_from_control += e.count;
                       if (e.batch)
                         control::append_ok_events(cc.queued, first, last);
                       else
                         control::append_ok_event(cc.queued, first);
                     },
                     [&](const control::query_stats&) {
                       cc.queued += dump_json(stats_json(*core_, stats_, now - started_at_), -1);
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

  // ---- state ----
  server_config cfg_;
  log_sink log_;
  std::optional<notifier_core> core_;
  event_generator generator_;
  driver_stats stats_;
  bool started_ = false;
  bool stopping_ = false;
  time_point started_at_{};

  tcp::acceptor acceptor_;
  tcp::acceptor control_acceptor_;
  udp::socket udp_;
  bool udp_is_v6_ = false;
  asio::steady_timer timer_;
  asio::steady_timer accept_retry_;
  asio::steady_timer control_retry_;
  asio::steady_timer udp_retry_;
  bool timer_armed_ = false;
  time_point armed_for_ = never;
  std::uint64_t timer_generation_ = 0;

  std::vector<std::shared_ptr<tcp_conn>> conns_;  // by connection_slot(id)
  std::unordered_map<std::uint64_t, std::shared_ptr<control_conn>> controls_;
  std::uint64_t next_control_id_ = 0;

  std::vector<std::uint8_t> rx_;  // one receive buffer for every socket (single thread)
  std::vector<output> scratch_;
  std::vector<std::shared_ptr<tcp_conn>> kick_;
  std::vector<asio::const_buffer> gather_;
  std::vector<mailbox_id> due_;
  std::deque<datagram> udp_queue_;
  bool udp_waiting_ = false;
  std::array<mmsghdr, udp_batch> mmsg_{};
  std::array<iovec, udp_batch> iov_{};

  log_limiter close_log_{10};
  log_limiter accept_log_{5};
  log_limiter udp_log_{5};
  log_limiter notice_log_{10};
};

// ---- the public face --------------------------------------------------------------------

notifier_server::notifier_server(asio::io_context& io, server_config cfg, log_sink log)
    : impl_(std::make_unique<impl>(io, std::move(cfg), std::move(log))) {}

notifier_server::~notifier_server() = default;

std::optional<std::string> notifier_server::start() { return impl_->start(); }
void notifier_server::stop() { impl_->stop(); }
bool notifier_server::stopped() const { return impl_->stopping_; }
ip_endpoint notifier_server::tcp_endpoint() const { return impl_->tcp_endpoint(); }
ip_endpoint notifier_server::udp_endpoint() const { return impl_->udp_endpoint(); }
std::optional<ip_endpoint> notifier_server::control_endpoint() const { return impl_->control_endpoint(); }
const notifier_core& notifier_server::core() const { return *impl_->core_; }
const driver_stats& notifier_server::stats() const { return impl_->stats_; }
time_point notifier_server::started_at() const { return impl_->started_at_; }

}  // namespace nudge::notifier
