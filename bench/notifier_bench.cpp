// nudge_bench_notifier: the notifier's Asio driver on real loopback sockets, in-process,
// each figure beside a raw-socket baseline measured in the same run.
//
//   ping fan-out   1,000 push sessions (raw emsmdb_client connections) register callbacks on
//                  16 receiving UDP sockets owned here; a round injects `per` events into
//                  every mailbox through the control port ("EVENTS <per> <dn>" lines) and
//                  waits until every ping (8-byte datagram) has been drained (recvmmsg, own
//                  thread). Baseline: one UDP socket sendmmsg-ing the same count of 8-byte
//                  datagrams in batches of 64 to the same 16 sockets, round robin.
//   fetch          1 and 16 client connections doing EcDoRpcExt2 polls back to back
//                  (84-byte request, 100-byte response; with 16, one request outstanding per
//                  connection). Baseline: a raw epoll server thread answering each complete
//                  84 bytes with 100 bytes, driven by the same client loop.
//
// Rates are items per second of wall-clock time (best over repetitions); after the run one
// line per pair gives notifier / baseline. Every address is 127.0.0.1; every wait is bounded.
//
//   build/release/bin/nudge_bench_notifier
#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>

#include "notifier_test_client.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/rop.hpp"

namespace {

using namespace nudge;
using namespace nudge::protocol;
using namespace std::chrono_literals;
using test::fd_holder;
using test::loopback_sockaddr;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t fan_sessions = 1000;
constexpr std::size_t receivers = 16;
constexpr std::size_t ping_bytes = 8;
constexpr std::size_t mmsg_batch = 64;
constexpr std::size_t fetch_connections = 16;
constexpr std::size_t request_bytes = 84;
constexpr std::size_t response_bytes = 100;
constexpr auto io_timeout = 5s;  // any single socket wait

const ip_endpoint loopback_any = ip_endpoint::v4(127, 0, 0, 1, 0);

void set_timeouts(int fd) {
  timeval tv{};
  tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(io_timeout).count();
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

ip_endpoint local_endpoint(int fd) {
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  return ip_endpoint::v4(ntohl(bound.sin_addr.s_addr), ntohs(bound.sin_port));
}

/// A blocking loopback TCP connection; every call bounded by SO_RCVTIMEO/SO_SNDTIMEO.
class raw_conn {
 public:
  explicit raw_conn(const ip_endpoint& to) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (!to.is_loopback() || fd_.get() < 0) return;  // never leaves the machine
    set_timeouts(fd_.get());
    const int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const sockaddr_in sa = loopback_sockaddr(to);
    ok_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  }
  bool ok() const { return ok_; }
  int fd() const { return fd_.get(); }

  bool send_all(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t done = 0; done < n;) {
      const ssize_t k = ::send(fd_.get(), p + done, n - done, MSG_NOSIGNAL);
      if (k <= 0) return false;
      done += static_cast<std::size_t>(k);
    }
    return true;
  }
  bool send_all(bytes_view b) { return send_all(b.data(), b.size()); }

  bool recv_exact(void* data, std::size_t n) {
    auto* p = static_cast<std::uint8_t*>(data);
    for (std::size_t done = 0; done < n;) {
      const ssize_t k = ::recv(fd_.get(), p + done, n - done, 0);
      if (k <= 0) return false;
      done += static_cast<std::size_t>(k);
    }
    return true;
  }

  std::optional<byte_buffer> read_pdu() {
    byte_buffer pdu(dcerpc::common_header_size);
    if (!recv_exact(pdu.data(), pdu.size())) return std::nullopt;
    const auto frag = static_cast<std::size_t>(pdu[8] | (pdu[9] << 8));
    if (frag < pdu.size()) return std::nullopt;
    pdu.resize(frag);
    if (!recv_exact(pdu.data() + dcerpc::common_header_size, frag - dcerpc::common_header_size)) return std::nullopt;
    return pdu;
  }

  /// Reads until `lines` newlines have arrived; false on timeout/EOF, or if `no_err` and a
  /// reply line starts with "ERR".
  bool read_lines(std::size_t lines, bool& saw_err) {
    std::array<char, 65536> buf;
    char prev = '\n';
    while (lines > 0) {
      const ssize_t k = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (k <= 0) return false;
      for (std::size_t i = 0; i < static_cast<std::size_t>(k); ++i) {
        if (prev == '\n' && buf[i] == 'E') saw_err = true;
        if (buf[i] == '\n') --lines;
        prev = buf[i];
      }
    }
    return true;
  }

 private:
  fd_holder fd_;
  bool ok_ = false;
};

/// Bind + EcDoConnectEx on a raw connection; the context handle.
std::optional<emsmdb::context_handle> log_on(raw_conn& c, std::string_view dn) {
  dcerpc::bind_pdu b;
  b.call_id = 1;
  b.contexts.push_back({0, emsmdb_syntax(), {ndr_syntax()}});
  byte_buffer out;
  dcerpc::encode(out, b);
  if (!c.send_all(out) || !c.read_pdu()) return std::nullopt;
  emsmdb::connect_ex_request req;
  req.user_dn = dn;
  out.clear();
  dcerpc::encode_request(out, 2, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
  if (!c.send_all(out)) return std::nullopt;
  auto raw = c.read_pdu();
  if (!raw) return std::nullopt;
  auto d = dcerpc::decode_pdu(*raw);
  const auto* rsp = d.complete() ? std::get_if<dcerpc::response_pdu>(&d.value) : nullptr;
  if (rsp == nullptr) return std::nullopt;
  auto cr = emsmdb::decode_connect_ex_response(rsp->stub);
  if (!cr.complete() || cr.value.return_code != ec::success) return std::nullopt;
  return cr.value.cxh;
}

byte_buffer poll_request(const emsmdb::context_handle& cxh) {
  byte_buffer out;
  emsmdb::encode_empty_poll_request(out, 3, cxh);
  return out;
}

// ---- the receiving UDP sockets and their drain thread -----------------------------------------

class ping_sink {
 public:
  ping_sink() {
    for (auto& s : socks_) {
      s = fd_holder(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
      const int big = 4 << 20;
      ::setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
      const sockaddr_in sa = loopback_sockaddr(loopback_any);
      ::bind(s.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
      endpoints_.push_back(local_endpoint(s.get()));
    }
  }
  ~ping_sink() { stop(); }

  const std::vector<ip_endpoint>& endpoints() const { return endpoints_; }
  std::uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  std::uint64_t wrong_size() const { return wrong_size_.load(std::memory_order_relaxed); }

  bool start() {
    ep_ = fd_holder(::epoll_create1(0));
    if (ep_.get() < 0) return false;
    for (std::size_t i = 0; i < socks_.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, socks_[i].get(), &ev) != 0) return false;
    }
    thread_ = std::thread([this] { run(); });
    return true;
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  /// Sleeps until `target` datagrams have arrived in total, or nothing arrived for `quiet`
  /// (lost datagrams), or `limit` passed.
  bool wait_for(std::uint64_t target, std::chrono::milliseconds quiet = 200ms, std::chrono::seconds limit = 10s) {
    want_.store(target);
    const auto deadline = clock_type::now() + limit;
    auto last_progress = clock_type::now();
    std::uint64_t seen = received();
    std::unique_lock lk(mu_);
    while (true) {
      if (cv_.wait_for(lk, 20ms, [&] { return received() >= target; })) return true;
      const auto now = clock_type::now();
      if (const auto r = received(); r != seen) {
        seen = r;
        last_progress = now;
      }
      if (now - last_progress > quiet || now > deadline) return false;
    }
  }

 private:
  void run() {
    std::array<std::array<std::uint8_t, 64>, mmsg_batch> bufs{};
    std::array<iovec, mmsg_batch> iov{};
    std::array<mmsghdr, mmsg_batch> msgs{};
    for (std::size_t i = 0; i < mmsg_batch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    std::array<epoll_event, receivers> events{};
    while (!stop_.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(ep_.get(), events.data(), static_cast<int>(events.size()), 50);
      for (int e = 0; e < n; ++e) {
        const int fd = socks_[events[static_cast<std::size_t>(e)].data.u64].get();
        for (int rounds = 0; rounds < 64; ++rounds) {  // bounded per wake-up, fair to the others
          const int got = ::recvmmsg(fd, msgs.data(), static_cast<unsigned>(mmsg_batch), MSG_DONTWAIT, nullptr);
          if (got <= 0) break;
          std::uint64_t bad = 0;
          for (int i = 0; i < got; ++i)
            if (msgs[static_cast<std::size_t>(i)].msg_len != ping_bytes) ++bad;
          if (bad != 0) wrong_size_.fetch_add(bad, std::memory_order_relaxed);
          received_.fetch_add(static_cast<std::uint64_t>(got), std::memory_order_relaxed);
          if (got < static_cast<int>(mmsg_batch)) break;
        }
      }
      if (n > 0 && received() >= want_.load(std::memory_order_relaxed)) {
        std::lock_guard lk(mu_);
        cv_.notify_one();
      }
    }
  }

  std::array<fd_holder, receivers> socks_;
  std::vector<ip_endpoint> endpoints_;
  fd_holder ep_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> wrong_size_{0};
  std::atomic<std::uint64_t> want_{~std::uint64_t{0}};
  std::mutex mu_;
  std::condition_variable cv_;
};

// ---- the raw epoll server ------------------------------------------------------------------

class raw_epoll_server {
 public:
  explicit raw_epoll_server(byte_buffer response) : response_(std::move(response)) {}
  ~raw_epoll_server() { stop(); }

  bool start() {
    listen_ = fd_holder(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    const sockaddr_in sa = loopback_sockaddr(loopback_any);
    if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return false;
    if (::listen(listen_.get(), 64) != 0) return false;
    endpoint_ = local_endpoint(listen_.get());
    ep_ = fd_holder(::epoll_create1(0));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_.get();
    if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) != 0) return false;
    thread_ = std::thread([this] { run(); });
    return true;
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  const ip_endpoint& endpoint() const { return endpoint_; }

 private:
  struct conn {
    fd_holder fd;
    std::size_t carry = 0;  // bytes of an incomplete request
  };

  void run() {
    std::array<epoll_event, 64> events{};
    std::array<std::uint8_t, 4096> buf{};
    std::vector<std::uint8_t> out;
    while (!stop_.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(ep_.get(), events.data(), static_cast<int>(events.size()), 50);
      for (int e = 0; e < n; ++e) {
        const int fd = events[static_cast<std::size_t>(e)].data.fd;
        if (fd == listen_.get()) {
          for (int k = 0; k < 64; ++k) {
            const int c = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK);
            if (c < 0) break;
            const int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = c;
            ::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c, &ev);
            conns_[c].fd = fd_holder(c);
          }
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        const ssize_t got = ::recv(fd, buf.data(), buf.size(), 0);
        if (got <= 0) {
          if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
            conns_.erase(it);
          }
          continue;
        }
        const std::size_t total = it->second.carry + static_cast<std::size_t>(got);
        const std::size_t complete = total / request_bytes;
        it->second.carry = total % request_bytes;
        if (complete == 0) continue;
        out.clear();
        for (std::size_t i = 0; i < complete; ++i) out.insert(out.end(), response_.begin(), response_.end());
        std::size_t done = 0;
        for (int tries = 0; tries < 1000 && done < out.size(); ++tries) {  // one request per connection: fits at once
          const ssize_t k = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
          if (k > 0) done += static_cast<std::size_t>(k);
          else if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        }
      }
    }
  }

  byte_buffer response_;
  fd_holder listen_;
  fd_holder ep_;
  ip_endpoint endpoint_;
  std::map<int, conn> conns_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// ---- the environment every benchmark shares ----------------------------------------------------

struct fetch_client {
  std::unique_ptr<raw_conn> conn;
  byte_buffer request;
};

struct bench_env {
  boost::asio::io_context io;
  std::unique_ptr<notifier::notifier_server> server;
  std::thread io_thread;
  ip_endpoint tcp, control;
  ping_sink sink;
  std::vector<std::unique_ptr<test::emsmdb_client>> sessions;
  std::unique_ptr<raw_conn> ctl;
  std::vector<fetch_client> notifier_fetch;  // logged on to the notifier
  std::unique_ptr<raw_epoll_server> raw_server;
  std::vector<fetch_client> raw_fetch;  // connected to the raw epoll server
  fd_holder raw_sender;
  std::uint64_t pings_expected = 0;  // every datagram either side has sent so far

  std::string fan_dn(std::size_t i) const { return "/o=nudge/ou=bench/cn=fan" + std::to_string(i); }

  std::optional<std::string> setup() {
    notifier::server_config cfg;
    cfg.tcp_listen = loopback_any;
    cfg.udp_bind = loopback_any;
    cfg.control = loopback_any;
    cfg.core.ping_resend = std::chrono::hours(1);  // only first pings during the run
    cfg.core.max_pending_per_mailbox = 10'000'000;
    server = std::make_unique<notifier::notifier_server>(io, cfg, notifier::stderr_log(true));
    if (auto error = server->start()) return "notifier start: " + *error;
    tcp = server->tcp_endpoint();
    control = *server->control_endpoint();
    io_thread = std::thread([this] { io.run(); });
    if (!sink.start()) return "receiving sockets: epoll";

    // 1,000 push sessions, session i pinging receiver i % 16 with an 8-byte context.
    sessions.reserve(fan_sessions);
    for (std::size_t i = 0; i < fan_sessions; ++i) {
      auto c = std::make_unique<test::emsmdb_client>(tcp);
      if (!c->socket().connected() || !c->bind()) return "session " + std::to_string(i) + ": bind";
      byte_buffer keeper;
      auto connected = c->connect(fan_dn(i), keeper);
      if (!connected || connected->return_code != ec::success) return "session " + std::to_string(i) + ": connect";
      char ctx[16];
      std::snprintf(ctx, sizeof ctx, "ctx%05zu", i);
      const auto reg = c->register_push(connected->cxh, as_bytes(std::string_view(ctx, ping_bytes)),
                                        sink.endpoints()[i % receivers]);
      if (!reg || reg->return_code != ec::success) return "session " + std::to_string(i) + ": register";
      sessions.push_back(std::move(c));
    }
    ctl = std::make_unique<raw_conn>(control);
    if (!ctl->ok()) return "control connect";

    // Fetch clients on the notifier; the first response is the raw server's reply.
    byte_buffer response;
    for (std::size_t i = 0; i < fetch_connections; ++i) {
      fetch_client f{std::make_unique<raw_conn>(tcp), {}};
      if (!f.conn->ok()) return "fetch connect";
      const auto cxh = log_on(*f.conn, "/o=nudge/ou=bench/cn=fetch" + std::to_string(i));
      if (!cxh) return "fetch log on";
      f.request = poll_request(*cxh);
      if (f.request.size() != request_bytes) return "poll request is " + std::to_string(f.request.size()) + " bytes";
      if (!f.conn->send_all(f.request)) return "fetch send";
      auto rsp = f.conn->read_pdu();
      if (!rsp || rsp->size() != response_bytes) return "poll response is not " + std::to_string(response_bytes) + " bytes";
      if (i == 0) response = *rsp;
      notifier_fetch.push_back(std::move(f));
    }
    raw_server = std::make_unique<raw_epoll_server>(response);
    if (!raw_server->start()) return "raw epoll server start";
    for (std::size_t i = 0; i < fetch_connections; ++i) {
      fetch_client f{std::make_unique<raw_conn>(raw_server->endpoint()), notifier_fetch[i].request};
      if (!f.conn->ok()) return "raw fetch connect";
      raw_fetch.push_back(std::move(f));
    }

    raw_sender = fd_holder(::socket(AF_INET, SOCK_DGRAM, 0));
    const int big = 4 << 20;
    ::setsockopt(raw_sender.get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    set_timeouts(raw_sender.get());
    const sockaddr_in sa = loopback_sockaddr(loopback_any);
    if (::bind(raw_sender.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return "raw sender bind";
    return std::nullopt;
  }

  /// A few core figures from STATS, for the record.
  void print_stats() {
    if (!ctl || !ctl->send_all("STATS\n", 6)) return;
    std::string line;
    char c = 0;
    for (std::size_t i = 0; i < (16u << 20) && ctl->recv_exact(&c, 1) && c != '\n'; ++i) line += c;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) return;
    std::printf("notifier STATS: events_generated %s, datagrams_sent %s, sendmmsg calls %s, udp_send_blocked %s, "
                "udp_dropped_queue_full %s, rpc_ext2_calls %s\n",
                j.value("/events_generated"_json_pointer, nlohmann::json()).dump().c_str(),
                j.value("/datagrams_sent"_json_pointer, nlohmann::json()).dump().c_str(),
                j.value("/driver/udp_send_calls"_json_pointer, nlohmann::json()).dump().c_str(),
                j.value("/driver/udp_send_blocked"_json_pointer, nlohmann::json()).dump().c_str(),
                j.value("/driver/udp_dropped_queue_full"_json_pointer, nlohmann::json()).dump().c_str(),
                j.value("/rpc_ext2_calls"_json_pointer, nlohmann::json()).dump().c_str());
  }

  void teardown() {
    raw_fetch.clear();
    if (raw_server) raw_server->stop();
    sink.stop();
    if (server) boost::asio::post(io, [this] { server->stop(); });
    if (io_thread.joinable()) io_thread.join();
  }
};

bench_env* env = nullptr;

// ---- ping fan-out ---------------------------------------------------------------------------

void finish_fanout(benchmark::State& st, std::uint64_t delivered, std::uint64_t lost) {
  st.SetItemsProcessed(static_cast<std::int64_t>(delivered));
  st.counters["lost"] = static_cast<double>(lost);
  st.counters["pings_per_round"] = static_cast<double>(static_cast<std::size_t>(st.range(0)) * fan_sessions);
}

void notifier_fanout(benchmark::State& st) {
  const auto per = static_cast<std::size_t>(st.range(0));
  std::string batch;
  for (std::size_t i = 0; i < fan_sessions; ++i) batch += "EVENTS " + std::to_string(per) + " " + env->fan_dn(i) + "\n";
  const std::uint64_t start = env->sink.received();
  std::uint64_t lost = 0;
  for (auto _ : st) {
    env->pings_expected += per * fan_sessions;
    bool err = false;
    if (!env->ctl->send_all(batch.data(), batch.size()) || !env->ctl->read_lines(fan_sessions, err) || err) {
      st.SkipWithError("control port: no reply or ERR");
      break;
    }
    if (!env->sink.wait_for(env->pings_expected)) lost = env->pings_expected - env->sink.received();
  }
  finish_fanout(st, env->sink.received() - start, lost);
}

void raw_sendmmsg_fanout(benchmark::State& st) {
  const std::size_t count = static_cast<std::size_t>(st.range(0)) * fan_sessions;
  const auto& eps = env->sink.endpoints();
  std::vector<sockaddr_in> to;
  for (const auto& e : eps) {
    if (!e.is_loopback()) {
      st.SkipWithError("non-loopback receiver");
      return;
    }
    to.push_back(loopback_sockaddr(e));
  }
  std::array<std::array<std::uint8_t, ping_bytes>, mmsg_batch> payload{};
  std::array<iovec, mmsg_batch> iov{};
  std::array<mmsghdr, mmsg_batch> msgs{};
  for (std::size_t i = 0; i < mmsg_batch; ++i) {
    std::memcpy(payload[i].data(), "ctx00000", ping_bytes);
    iov[i] = {payload[i].data(), ping_bytes};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }
  const std::uint64_t start = env->sink.received();
  std::uint64_t lost = 0;
  std::size_t rr = 0;
  for (auto _ : st) {
    env->pings_expected += count;
    bool failed = false;
    for (std::size_t sent = 0; sent < count && !failed;) {
      const std::size_t n = std::min(mmsg_batch, count - sent);
      for (std::size_t i = 0; i < n; ++i) msgs[i].msg_hdr.msg_name = &to[(rr + i) % receivers];
      std::size_t done = 0;
      for (int tries = 0; tries < 1000 && done < n; ++tries) {  // a short count means the buffer is full: retry
        const int k = ::sendmmsg(env->raw_sender.get(), msgs.data() + done, static_cast<unsigned>(n - done), 0);
        if (k < 0) break;
        done += static_cast<std::size_t>(k);
      }
      if (done < n) failed = true;
      rr = (rr + n) % receivers;
      sent += n;
    }
    if (failed) {
      st.SkipWithError("sendmmsg failed");
      break;
    }
    if (!env->sink.wait_for(env->pings_expected)) lost = env->pings_expected - env->sink.received();
  }
  finish_fanout(st, env->sink.received() - start, lost);
}

// ---- fetch round trips ---------------------------------------------------------------------

void fetch_loop(benchmark::State& st, std::vector<fetch_client>& clients) {
  const auto n = static_cast<std::size_t>(st.range(0));
  std::array<std::uint8_t, response_bytes> rsp{};
  for (auto _ : st) {
    bool ok = true;
    for (std::size_t i = 0; i < n && ok; ++i) ok = clients[i].conn->send_all(clients[i].request);
    for (std::size_t i = 0; i < n && ok; ++i) ok = clients[i].conn->recv_exact(rsp.data(), rsp.size());
    if (!ok) {
      st.SkipWithError("a round trip failed or timed out");
      break;
    }
    benchmark::DoNotOptimize(rsp);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(n));
}

// ---- reporting ---------------------------------------------------------------------------------

/// Keeps every run's items per second (wall clock, best over repetitions), then prints normally.
class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  explicit collecting_reporter(OutputOptions options) : ConsoleReporter(options) {}
  std::map<std::string, double> rate;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      auto c = r.counters.find("items_per_second");
      if (c == r.counters.end()) continue;
      auto [it, fresh] = rate.emplace(r.benchmark_name(), c->second.value);
      if (!fresh) it->second = std::max(it->second, c->second.value);
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  bool color = isatty(fileno(stdout)) != 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--benchmark_color=false" || a == "--benchmark_color=no" || a == "--benchmark_color=0") color = false;
    if (a == "--benchmark_color=true" || a == "--benchmark_color=yes" || a == "--benchmark_color=1") color = true;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  bench_env e;
  env = &e;
  const auto setup_started = clock_type::now();
  if (auto error = e.setup()) {
    std::fprintf(stderr, "nudge_bench_notifier: setup failed: %s\n", error->c_str());
    e.teardown();
    return 1;
  }
  std::printf("setup: %zu push sessions on %zu receiving sockets, %zu fetch sessions, in %.0f ms\n", fan_sessions,
              receivers, fetch_connections,
              std::chrono::duration<double, std::milli>(clock_type::now() - setup_started).count());

  using benchmark::RegisterBenchmark;
  const auto us = benchmark::kMicrosecond;
  for (long per : {1L, 8L}) {
    RegisterBenchmark("fanout/notifier/events_per_mailbox", notifier_fanout)->Arg(per)->UseRealTime()->Unit(us);
    RegisterBenchmark("fanout/raw_sendmmsg/events_per_mailbox", raw_sendmmsg_fanout)->Arg(per)->UseRealTime()->Unit(us);
  }
  for (long n : {1L, static_cast<long>(fetch_connections)}) {
    RegisterBenchmark("fetch/notifier/connections", [](benchmark::State& st) { fetch_loop(st, env->notifier_fetch); })
        ->Arg(n)->UseRealTime()->Unit(us);
    RegisterBenchmark("fetch/raw_epoll/connections", [](benchmark::State& st) { fetch_loop(st, env->raw_fetch); })
        ->Arg(n)->UseRealTime()->Unit(us);
  }

  collecting_reporter reporter(color ? benchmark::ConsoleReporter::OO_ColorTabular
                                     : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);

  // Late datagrams settle, then the totals.
  e.sink.wait_for(e.pings_expected, 200ms, std::chrono::seconds(2));
  std::printf("\npings: %llu sent by both sides, %llu received, %llu of the wrong size\n",
              static_cast<unsigned long long>(e.pings_expected), static_cast<unsigned long long>(e.sink.received()),
              static_cast<unsigned long long>(e.sink.wrong_size()));
  e.print_stats();

  const auto& r = reporter.rate;
  auto line = [&](const char* what, const char* base_label, const std::string& mine, const std::string& base,
                  const std::string& note) {
    auto m = r.find(mine);
    auto b = r.find(base);
    if (m == r.end() || b == r.end() || b->second <= 0) return;
    std::printf("%s: notifier %.0f/s, %s %.0f/s, ratio %.3f  (%s)\n", what, m->second, base_label, b->second,
                m->second / b->second, note.c_str());
  };
  std::printf("\n");
  for (const char* per : {"1", "8"})
    line("ping fan-out", "raw sendmmsg", std::string("fanout/notifier/events_per_mailbox/") + per + "/real_time",
         std::string("fanout/raw_sendmmsg/events_per_mailbox/") + per + "/real_time",
         std::string(per) + " event(s) per mailbox per round, " + std::to_string(fan_sessions) + " sessions");
  for (const std::string n : {"1", "16"})
    line("fetch round trips", "raw epoll", "fetch/notifier/connections/" + n + "/real_time",
         "fetch/raw_epoll/connections/" + n + "/real_time", n + " connection(s)");

  benchmark::Shutdown();
  e.teardown();
  return 0;
}
