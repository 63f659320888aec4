#include "nudge/replay/replayer.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <memory>

#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::replay {

using protocol::byte_buffer;
using protocol::byte_writer;
using protocol::bytes_view;
using protocol::ip_endpoint;
namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;

std::string validate(const replay_options& o) {
  const std::pair<const char*, const ip_endpoint*> targets[] = {{"--notifier", &o.notifier},
                                                                {"--notifier-udp", &o.notifier_udp}};
  for (const auto& [name, ep] : targets) {
    if (!ep->is_loopback())
      return std::string(name) + " " + ep->to_string() +
             ": refusing a non-loopback target; a replay only ever talks to 127.0.0.0/8 or ::1";
    if (ep->port == 0) return std::string(name) + " needs a port";
  }
  if (o.control) {
    if (!o.control->is_loopback())
      return "--control " + o.control->to_string() + ": refusing a non-loopback target (127.0.0.0/8 or ::1 only)";
    if (o.control->port == 0) return "--control needs a port";
  }
  if (!o.topspeed && !(o.speed > 0)) return "the speed must be above 0";
  if (o.grace < duration::zero()) return "the grace period must not be negative";
  if (!o.source_first.is_v6) {
    if (!o.source_first.is_loopback()) return "source addresses must be loopback (127.0.0.0/8)";
    if (o.source_count == 0) return "the source address range is empty";
    if (((std::uint64_t{o.source_first.v4_host_order()} + o.source_count - 1) >> 24) != 127)
      return "the source address range runs past 127.255.255.255";
  }
  return {};
}

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

asio::ip::address to_address(const ip_endpoint& e) {
  if (!e.is_v6) return asio::ip::address_v4(e.v4_host_order());
  asio::ip::address_v6::bytes_type b{};
  std::copy(e.address.begin(), e.address.end(), b.begin());
  return asio::ip::address_v6(b);
}

ip_endpoint from_asio(const asio::ip::address& a, std::uint16_t port) {
  if (a.is_v4()) return ip_endpoint::v4(a.to_v4().to_uint(), port);
  ip_endpoint r;
  r.is_v6 = true;
  const auto b = a.to_v6().to_bytes();
  std::copy(b.begin(), b.end(), r.address.begin());
  r.port = port;
  return r;
}

bool needs_cxh(op_kind k) {
  return k == op_kind::register_push || k == op_kind::rpc_ext2 || k == op_kind::async_connect;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

struct tcp_lane {
  explicit tcp_lane(asio::io_context& io) : sock(io), timer(io), rbuf(16 * 1024) {}
  tcp::socket sock;
  asio::steady_timer timer;
  std::vector<std::size_t> ops;  // captured op indices
  std::size_t next = 0;
  std::optional<duration> open_at;  // scaled; none: the lane is not used
  bool opening = false;
  bool open = false;
  bool dead = false;
  std::optional<std::size_t> outstanding;
  std::uint32_t outstanding_id = 0;
  std::uint32_t next_call_id = 1;
  dcerpc::stream_framer rx;  // the notifier's bytes, cut into PDUs
  std::vector<std::uint8_t> rbuf;
  std::deque<byte_buffer> wq;
  bool writing = false;
};

struct udp_lane {
  explicit udp_lane(asio::io_context& io) : sock(io), timer(io) {}
  udp::socket sock;
  asio::steady_timer timer;
  std::vector<std::size_t> ops;
  std::size_t next = 0;
  std::optional<ip_endpoint> local;
  std::array<std::uint8_t, 2048> rbuf{};
  udp::endpoint from;
};

struct injection {
  duration due{};  // scaled
  std::optional<std::size_t> after_sent;      // inject only once this op was sent
  std::optional<std::size_t> after_answered;  // ... or answered
  bool done = false;
};

struct client_state {
  client_state(asio::io_context& io, const captured_client& c, client_replay& o, std::size_t i)
      : cap(c), out(o), index(i), main(io), async(io), dgram(io), inj_timer(io) {}
  const captured_client& cap;
  client_replay& out;
  std::size_t index;
  tcp_lane main, async;
  udp_lane dgram;
  asio::steady_timer inj_timer;
  std::optional<emsmdb::context_handle> cxh, acxh;
  std::optional<std::uint32_t> notification_handle;
  std::vector<injection> injections;
  bool failed = false;
  tcp_lane& tcp_of(lane l) { return l == lane::async ? async : main; }
};

class engine {
 public:
  engine(const capture_sessions& cap, const replay_options& o, replay_outcome& out)
      : cap_(cap), o_(o), out_(out), check_timer_(io_), stats_timer_(io_), control_(io_) {}

  void run() {
    const auto wall = steady::now();
    if (!reachable(o_.notifier, "the notifier's DCE/RPC port")) return;
    if (o_.control && !reachable(*o_.control, "the notifier's control port")) return;
    raise_fd_limit();
    std::size_t n = cap_.clients.size();
    if (o_.max_clients) n = std::min(n, o_.max_clients);
    out_.clients.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const captured_client& c = cap_.clients[i];
      client_replay& r = out_.clients[i];
      r.capture_index = i;
      r.ops.resize(c.ops.size());
      auto st = std::make_unique<client_state>(io_, c, r, i);
      for (std::size_t k = 0; k < c.ops.size(); ++k) {
        r.ops[k].due = scaled(c.ops[k].sent);
        last_due_ = std::max(last_due_, r.ops[k].due);
      }
      st->main.ops = c.lane_ops(lane::main);
      st->async.ops = c.lane_ops(lane::async);
      st->dgram.ops = c.lane_ops(lane::udp);
      st->main.open_at = scaled(c.main_open);
      if (c.async_open) st->async.open_at = scaled(*c.async_open);
      if (o_.control) plan_injections(*st);
      clients_.push_back(std::move(st));
    }
    start_ = steady::now() + std::chrono::duration_cast<steady::duration>(o_.start_delay);
    last_activity_ = start_;
    if (o_.control) connect_control();
    for (auto& c : clients_) {
      if (c->cap.uses_udp) open_udp(*c);
      schedule_open(*c, c->main);
      if (c->async.open_at) schedule_open(*c, c->async);
      check_injections(*c);
    }
    arm_check();
    if (o_.stats) arm_stats();
    io_.run();
    if (o_.stats) o_.stats(progress());
    finish_notes();
    out_.wall_seconds = std::chrono::duration<double>(steady::now() - wall).count();
  }

 private:
  // ---- time ----
  duration scaled(duration d) const {
    if (o_.topspeed) return duration::zero();
    return duration(static_cast<duration::rep>(static_cast<double>(d.count()) / o_.speed));
  }
  steady::time_point at(duration offset) const {
    return start_ + std::chrono::duration_cast<steady::duration>(offset);
  }
  duration now_offset() const { return std::chrono::duration_cast<duration>(steady::now() - start_); }
  void activity() { last_activity_ = steady::now(); }

  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  bool reachable(const ip_endpoint& ep, const char* what) {
    asio::io_context io;
    tcp::socket s(io);
    error_code ec;
    s.connect(tcp::endpoint(to_address(ep), ep.port), ec);
    if (ec) {
      out_.error = std::string("cannot reach ") + what + " at " + ep.to_string() + ": " + ec.message();
      return false;
    }
    s.close(ec);
    return true;
  }

  static void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
  }

  asio::ip::address source_of(const client_state& c) const {
    if (o_.notifier.is_v6) return asio::ip::address_v6::loopback();
    return asio::ip::address_v4(
        static_cast<std::uint32_t>(o_.source_first.v4_host_order() + c.index % o_.source_count));
  }

  // ---- failure ----
  void fail(client_state& c, const std::string& why) {
    if (c.failed) return;
    c.failed = true;
    c.out.failure = why;
    error_code ignored;
    for (tcp_lane* l : {&c.main, &c.async}) {
      l->timer.cancel();
      if (l->sock.is_open()) l->sock.close(ignored);
    }
    c.dgram.timer.cancel();
    if (c.dgram.sock.is_open()) c.dgram.sock.close(ignored);
    c.inj_timer.cancel();
    activity();
  }

  // ---- TCP lanes ----
  void schedule_open(client_state& c, tcp_lane& l) {
    l.opening = true;
    l.timer.expires_at(at(*l.open_at));
    l.timer.async_wait([this, &c, &l](const error_code& ec) {
      if (ec || stopping_ || c.failed) return;
      connect(c, l);
    });
  }

  void connect(client_state& c, tcp_lane& l) {
    error_code ec;
    const tcp::endpoint target(to_address(o_.notifier), o_.notifier.port);
    l.sock.open(target.protocol(), ec);
    if (!ec) l.sock.bind(tcp::endpoint(source_of(c), 0), ec);
    if (ec) return fail(c, "TCP socket: " + ec.message());
    l.sock.async_connect(target, [this, &c, &l](const error_code& e) {
      if (stopping_ || c.failed) return;
      l.opening = false;
      if (e) return fail(c, "connect to " + o_.notifier.to_string() + ": " + e.message());
      error_code ignored;
      l.sock.set_option(tcp::no_delay(true), ignored);
      l.open = true;
      read(c, l);
      pump(c, l);
    });
  }

  void pump(client_state& c, tcp_lane& l) {
    if (stopping_ || c.failed || l.dead || !l.open || l.outstanding || l.next >= l.ops.size()) return;
    const std::size_t k = l.ops[l.next];
    const captured_op& op = c.cap.ops[k];
    if (needs_cxh(op.kind) && !c.cxh) return;          // pumped again when EcDoConnectEx is answered
    if (op.kind == op_kind::async_wait && !c.acxh) return;  // ... when EcDoAsyncConnectEx is
    if (op.kind == op_kind::register_push && !c.dgram.local && c.cap.uses_udp) return;
    const auto due = at(c.out.ops[k].due);
    if (!o_.topspeed && steady::now() < due) {
      l.timer.expires_at(due);
      l.timer.async_wait([this, &c, &l](const error_code& ec) {
        if (!ec) pump(c, l);
      });
      return;
    }
    const std::uint32_t id = l.next_call_id++;
    byte_buffer pdu = encode(c, op, id);
    l.outstanding = k;
    l.outstanding_id = id;
    ++l.next;
    c.out.ops[k].sent = now_offset();
    c.out.send_order.push_back(k);
    ++ops_sent_;
    activity();
    write(c, l, std::move(pdu));
    check_injections(c);
  }

  /// The captured request, rewritten for the live session.
  byte_buffer encode(const client_state& c, const captured_op& op, std::uint32_t call_id) const {
    byte_buffer pdu;
    if (op.kind == op_kind::bind) {
      pdu = op.request;
      for (std::size_t i = 0; i < 4; ++i) pdu[dcerpc::call_id_offset + i] = static_cast<std::uint8_t>(call_id >> (8 * i));
      return pdu;
    }
    const auto d = dcerpc::decode_pdu(op.request);
    const auto* rq = d.complete() ? std::get_if<dcerpc::request_pdu>(&d.value) : nullptr;
    if (!rq) {  // cannot happen for what read_capture_sessions keeps; send it as it was
      pdu = op.request;
      for (std::size_t i = 0; i < 4; ++i) pdu[dcerpc::call_id_offset + i] = static_cast<std::uint8_t>(call_id >> (8 * i));
      return pdu;
    }
    byte_buffer stub;
    byte_writer w(stub);
    bool rewritten = false;
    switch (op.kind) {
      case op_kind::register_push: {
        auto s = emsmdb::decode_register_push_request(rq->stub);
        if (!s.complete()) break;
        s.value.cxh = *c.cxh;
        byte_buffer sockaddr;
        if (c.dgram.local) {
          sockaddr = protocol::windows_sockaddr(*c.dgram.local);
          s.value.callback_address = sockaddr;
        }
        emsmdb::encode(w, s.value);
        rewritten = true;
        break;
      }
      case op_kind::rpc_ext2: {
        auto s = emsmdb::decode_rpc_ext2_request(rq->stub);
        if (!s.complete()) break;
        s.value.cxh = *c.cxh;
        emsmdb::encode(w, s.value);
        rewritten = true;
        break;
      }
      case op_kind::async_connect: {
        auto s = emsmdb::decode_async_connect_request(rq->stub);
        if (!s.complete()) break;
        s.value.cxh = *c.cxh;
        emsmdb::encode(w, s.value);
        rewritten = true;
        break;
      }
      case op_kind::async_wait: {
        auto s = emsmdb::decode_async_wait_request(rq->stub);
        if (!s.complete()) break;
        s.value.acxh = *c.acxh;
        emsmdb::encode(w, s.value);
        rewritten = true;
        break;
      }
      default: break;
    }
    if (!rewritten) stub.assign(rq->stub.begin(), rq->stub.end());
    dcerpc::encode_request(pdu, call_id, rq->context_id, rq->opnum, [&](byte_writer& sw) { sw.bytes(stub); });
    return pdu;
  }

  void write(client_state& c, tcp_lane& l, byte_buffer bytes) {
    l.wq.push_back(std::move(bytes));
    if (!l.writing) write_next(c, l);
  }

  void write_next(client_state& c, tcp_lane& l) {
    if (l.wq.empty()) {
      l.writing = false;
      return;
    }
    l.writing = true;
    asio::async_write(l.sock, asio::buffer(l.wq.front()), [this, &c, &l](const error_code& ec, std::size_t) {
      if (stopping_ || c.failed) return;
      if (ec) return lane_lost(c, l, "write: " + ec.message());
      l.wq.pop_front();
      write_next(c, l);
    });
  }

  void read(client_state& c, tcp_lane& l) {
    l.sock.async_read_some(asio::buffer(l.rbuf), [this, &c, &l](const error_code& ec, std::size_t n) {
      if (stopping_ || c.failed) return;
      if (ec) return lane_lost(c, l, ec == asio::error::eof ? "the notifier closed the connection" : ec.message());
      l.rx.append(bytes_view(l.rbuf).first(n));  // borrowed until next() says need_more
      while (!c.failed) {
        const auto f = l.rx.next();
        if (f.outcome == dcerpc::stream_framer::status::need_more) break;
        if (f.outcome == dcerpc::stream_framer::status::malformed)
          return lane_lost(c, l, "malformed PDU from the notifier");
        answer(c, l, f.pdu);
      }
      if (c.failed) return;
      read(c, l);
    });
  }

  void lane_lost(client_state& c, tcp_lane& l, const std::string& why) {
    l.dead = true;
    fail(c, std::string(to_string(&l == &c.async ? lane::async : lane::main)) + " connection: " + why);
  }

  void answer(client_state& c, tcp_lane& l, bytes_view pdu) {
    const auto hd = dcerpc::decode_common_header(pdu);
    if (!l.outstanding || hd.value.call_id != l.outstanding_id) {
      log("client " + std::to_string(c.index) + ": an answer for call " + std::to_string(hd.value.call_id) +
          ", which is not outstanding; ignored");
      return;
    }
    const std::size_t k = *l.outstanding;
    l.outstanding.reset();
    replayed_op& r = c.out.ops[k];
    r.answered = now_offset();
    ++ops_answered_;
    activity();
    const captured_op& op = c.cap.ops[k];
    const auto d = dcerpc::decode_pdu(pdu);
    auto fault = [&](std::string why) {
      r.fault = true;
      r.note = std::move(why);
    };
    if (!d.complete()) {
      fault("undecodable answer: " + std::string(d.reason));
    } else if (const auto* ack = std::get_if<dcerpc::bind_ack_pdu>(&d.value)) {
      if (ack->results.empty() || ack->results.front().result != 0) fault("bind rejected");
    } else if (std::get_if<dcerpc::bind_nak_pdu>(&d.value)) {
      fault("bind_nak");
    } else if (const auto* f = std::get_if<dcerpc::fault_pdu>(&d.value)) {
      fault("fault status " + hex32(f->status));
    } else if (const auto* resp = std::get_if<dcerpc::response_pdu>(&d.value)) {
      switch (op.kind) {
        case op_kind::connect: {
          const auto s = emsmdb::decode_connect_ex_response(resp->stub);
          if (!s.complete()) fault("undecodable EcDoConnectEx response");
          else if (s.value.return_code != protocol::ec::success) fault("EcDoConnectEx returned " + hex32(s.value.return_code));
          else c.cxh = s.value.cxh;
          break;
        }
        case op_kind::register_push: {
          const auto s = emsmdb::decode_register_push_response(resp->stub);
          if (!s.complete()) fault("undecodable EcRRegisterPushNotification response");
          else if (s.value.return_code != protocol::ec::success) fault("EcRRegisterPushNotification returned " + hex32(s.value.return_code));
          else c.notification_handle = s.value.notification_handle;
          break;
        }
        case op_kind::async_connect: {
          const auto s = emsmdb::decode_async_connect_response(resp->stub);
          if (!s.complete()) fault("undecodable EcDoAsyncConnectEx response");
          else if (s.value.return_code != protocol::ec::success) fault("EcDoAsyncConnectEx returned " + hex32(s.value.return_code));
          else c.acxh = s.value.acxh;
          break;
        }
        case op_kind::async_wait: {
          const auto s = emsmdb::decode_async_wait_response(resp->stub);
          if (!s.complete()) fault("undecodable EcDoAsyncWaitEx response");
          else if (s.value.return_code != protocol::ec::success) fault("EcDoAsyncWaitEx returned " + hex32(s.value.return_code));
          break;
        }
        case op_kind::rpc_ext2: {
          const auto s = emsmdb::decode_rpc_ext2_response(resp->stub);
          if (!s.complete()) fault("undecodable EcDoRpcExt2 response");
          else if (s.value.return_code != protocol::ec::success) fault("EcDoRpcExt2 returned " + hex32(s.value.return_code));
          break;
        }
        default: break;
      }
    }
    // Without a bind or a session nothing else on this client can work.
    if (r.fault && !op.answer_fault && (op.kind == op_kind::bind || op.kind == op_kind::connect))
      return fail(c, op.name() + ": " + r.note);
    pump(c, c.main);
    pump(c, c.async);
    pump_udp(c);
    check_injections(c);
  }

  // ---- UDP ----
  void open_udp(client_state& c) {
    udp_lane& u = c.dgram;
    error_code ec;
    const udp::endpoint target(to_address(o_.notifier_udp), o_.notifier_udp.port);
    u.sock.open(target.protocol(), ec);
    if (!ec) u.sock.bind(udp::endpoint(source_of(c), 0), ec);
    udp::endpoint local;
    if (!ec) local = u.sock.local_endpoint(ec);
    if (ec) return fail(c, "UDP socket: " + ec.message());
    u.local = from_asio(local.address(), local.port());
    receive(c);
  }

  void receive(client_state& c) {
    c.dgram.sock.async_receive_from(asio::buffer(c.dgram.rbuf), c.dgram.from,
                                    [this, &c](const error_code& ec, std::size_t) {
                                      if (stopping_ || c.failed) return;
                                      if (!ec) ++c.out.pings_received;
                                      if (ec == asio::error::operation_aborted) return;
                                      receive(c);  // ICMP errors surface here too: keep listening
                                    });
  }

  void pump_udp(client_state& c) {
    udp_lane& u = c.dgram;
    while (!stopping_ && !c.failed && u.local && u.next < u.ops.size() && c.notification_handle) {
      const std::size_t k = u.ops[u.next];
      const auto due = at(c.out.ops[k].due);
      if (!o_.topspeed && steady::now() < due) {
        u.timer.expires_at(due);
        u.timer.async_wait([this, &c](const error_code& ec) {
          if (!ec) pump_udp(c);
        });
        return;
      }
      const captured_op& op = c.cap.ops[k];
      const auto cookie = protocol::decode_reachability_cookie(op.request);
      byte_buffer payload;
      protocol::encode_reachability_cookie(payload, *c.notification_handle,
                                           cookie.complete() ? cookie.value.context : bytes_view{});
      error_code ec;
      u.sock.send_to(asio::buffer(payload), udp::endpoint(to_address(o_.notifier_udp), o_.notifier_udp.port), 0, ec);
      c.out.ops[k].sent = now_offset();
      ++ops_sent_;
      if (ec) {
        c.out.ops[k].fault = true;
        c.out.ops[k].note = "send: " + ec.message();
      }
      c.out.send_order.push_back(k);
      ++u.next;
      activity();
    }
  }

  // ---- mail injection through the control port ----
  void plan_injections(client_state& c) {
    std::optional<std::size_t> reg;
    for (std::size_t k = 0; k < c.cap.ops.size(); ++k) {
      const captured_op& op = c.cap.ops[k];
      if (op.kind == op_kind::register_push && !reg) reg = k;
      if (op.kind == op_kind::async_wait && op.answered && !op.answer_fault &&
          (op.async_flags & protocol::notification_pending))
        c.injections.push_back({scaled(*op.answered), k, std::nullopt});
    }
    for (const duration p : c.cap.pings) c.injections.push_back({scaled(p), std::nullopt, reg});
  }

  void check_injections(client_state& c) {
    if (!o_.control || c.failed || stopping_) return;
    std::optional<steady::time_point> next;
    for (auto& inj : c.injections) {
      if (inj.done) continue;
      if (inj.after_sent && !c.out.ops[*inj.after_sent].sent) continue;
      if (inj.after_answered && !c.out.ops[*inj.after_answered].answered) continue;
      const auto due = at(inj.due);
      if (o_.topspeed || steady::now() >= due) {
        inj.done = true;
        inject(c);
        continue;
      }
      next = next ? std::min(*next, due) : due;
    }
    if (next) {
      c.inj_timer.expires_at(*next);
      c.inj_timer.async_wait([this, &c](const error_code& ec) {
        if (!ec) check_injections(c);
      });
    }
  }

  void inject(client_state& c) {
    control_out_ += "EVENT " + c.cap.user_dn + "\n";
    ++c.out.events_injected;
    ++out_.events_injected;
    ++control_expected_;
    activity();
    flush_control();
  }

  void connect_control() {
    control_.async_connect(tcp::endpoint(to_address(*o_.control), o_.control->port), [this](const error_code& ec) {
      if (stopping_) return;
      if (ec) {
        log("control port " + o_.control->to_string() + ": " + ec.message() + "; no mail is injected");
        control_dead_ = true;
        return;
      }
      error_code ignored;
      control_.set_option(tcp::no_delay(true), ignored);
      control_open_ = true;
      read_control();
      flush_control();
    });
  }

  void flush_control() {
    if (!control_open_ || control_dead_ || control_writing_ || control_out_.empty()) return;
    control_writing_ = true;
    control_sending_ = std::move(control_out_);
    control_out_.clear();
    asio::async_write(control_, asio::buffer(control_sending_), [this](const error_code& ec, std::size_t) {
      control_writing_ = false;
      if (stopping_) return;
      if (ec) {
        log("control port: " + ec.message() + "; no further mail is injected");
        control_dead_ = true;
        return;
      }
      flush_control();
    });
  }

  void read_control() {
    control_.async_read_some(asio::buffer(control_rbuf_), [this](const error_code& ec, std::size_t n) {
      if (stopping_ || ec) return;
      control_in_.append(control_rbuf_.data(), n);
      std::size_t pos;
      while ((pos = control_in_.find('\n')) != std::string::npos) {
        const std::string line = control_in_.substr(0, pos);
        control_in_.erase(0, pos + 1);
        ++control_answered_;
        if (line.rfind("OK", 0) == 0) ++out_.events_acknowledged;
        else if (++control_refused_ <= 3) log("control port refused an event: " + line);
      }
      read_control();
    });
  }

  // ---- statistics ----
  blind_progress progress() const {
    blind_progress p;
    p.elapsed = now_offset();
    p.clients = clients_.size();
    p.ops_sent = ops_sent_;
    p.ops_answered = ops_answered_;
    p.events_injected = out_.events_injected;
    return p;
  }

  void arm_stats() {
    stats_timer_.expires_after(std::chrono::duration_cast<steady::duration>(o_.stats_every));
    stats_timer_.async_wait([this](const error_code& ec) {
      if (ec || stopping_) return;
      o_.stats(progress());
      arm_stats();
    });
  }

  // ---- the end ----
  bool settled(const client_state& c) const {
    if (c.failed) return true;
    for (const tcp_lane* l : {&c.main, &c.async}) {
      if (l->next < l->ops.size()) return false;
      // A call still outstanding is fine if it was in the capture too.
      if (l->outstanding && c.cap.ops[*l->outstanding].answered) return false;
    }
    if (c.dgram.next < c.dgram.ops.size()) return false;
    for (const auto& inj : c.injections)
      if (!inj.done) return false;
    return true;
  }

  void arm_check() {
    check_timer_.expires_after(std::chrono::milliseconds(50));
    check_timer_.async_wait([this](const error_code& ec) {
      if (ec || stopping_) return;
      const auto now = steady::now();
      bool all = true;
      for (const auto& c : clients_)
        if (!settled(*c)) {
          all = false;
          break;
        }
      const auto grace = std::chrono::duration_cast<steady::duration>(o_.grace);
      const bool quiet = now >= at(last_due_) + grace && now >= last_activity_ + grace;
      const bool control_done = control_dead_ || control_answered_ >= control_expected_;
      if ((all && control_done) || quiet)
        return stop();
      arm_check();
    });
  }

  void stop() {
    stopping_ = true;
    error_code ignored;
    check_timer_.cancel();
    stats_timer_.cancel();
    for (auto& c : clients_) {
      for (tcp_lane* l : {&c->main, &c->async}) {
        l->timer.cancel();
        if (l->sock.is_open()) l->sock.close(ignored);
      }
      c->dgram.timer.cancel();
      if (c->dgram.sock.is_open()) c->dgram.sock.close(ignored);
      c->inj_timer.cancel();
    }
    if (control_.is_open()) control_.close(ignored);
    io_.stop();
  }

  void finish_notes() {
    for (auto& c : clients_) {
      for (tcp_lane* l : {&c->main, &c->async}) {
        for (std::size_t j = 0; j < l->ops.size(); ++j) {
          const std::size_t k = l->ops[j];
          replayed_op& r = c->out.ops[k];
          if (r.sent && !r.answered && r.note.empty()) r.note = "pending at end";
          if (r.sent) continue;
          if (c->failed) r.note = "not sent: the client failed";
          else if (l->outstanding) r.note = "not sent: blocked behind " + c->cap.ops[*l->outstanding].name() + " (pending at end)";
          else r.note = "not sent: the replay ended first";
        }
      }
      for (const std::size_t k : c->dgram.ops) {
        replayed_op& r = c->out.ops[k];
        if (!r.sent && r.note.empty())
          r.note = c->failed ? "not sent: the client failed"
                             : !c->notification_handle ? "not sent: no hNotification from the live notifier"
                                                       : "not sent: the replay ended first";
      }
    }
  }

  const capture_sessions& cap_;
  const replay_options& o_;
  replay_outcome& out_;
  asio::io_context io_{1};
  asio::steady_timer check_timer_;
  asio::steady_timer stats_timer_;
  std::uint64_t ops_sent_ = 0, ops_answered_ = 0;
  std::vector<std::unique_ptr<client_state>> clients_;
  steady::time_point start_{};
  steady::time_point last_activity_{};
  duration last_due_{};
  bool stopping_ = false;
  // control port
  tcp::socket control_;
  bool control_open_ = false;
  bool control_dead_ = false;
  bool control_writing_ = false;
  std::string control_out_, control_sending_, control_in_;
  std::array<char, 4096> control_rbuf_{};
  std::uint64_t control_expected_ = 0;
  std::uint64_t control_answered_ = 0;
  std::uint64_t control_refused_ = 0;
};

}  // namespace

void retime_operations(capture_sessions& capture, double pps) {
  if (!(pps > 0)) return;
  // Every operation in capture order (ties: client order, then its own order): the r-th is due at r / pps.
  struct at {
    duration sent;
    std::size_t client, op;
  };
  std::vector<at> order;
  for (std::size_t i = 0; i < capture.clients.size(); ++i)
    for (std::size_t k = 0; k < capture.clients[i].ops.size(); ++k) order.push_back({capture.clients[i].ops[k].sent, i, k});
  if (order.empty()) return;
  std::stable_sort(order.begin(), order.end(), [](const at& x, const at& y) { return x.sent < y.sent; });
  const auto slot = [&](std::size_t r) {
    return std::chrono::duration_cast<duration>(std::chrono::duration<double>(static_cast<double>(r) / pps));
  };
  std::vector<duration> old;
  for (const auto& o : order) old.push_back(o.sent);
  // Any other captured time moves with the operations around it: linear between
  // two operations' times, shifted before the first and after the last.
  const auto warp = [&](duration t) {
    const auto hi = static_cast<std::size_t>(std::lower_bound(old.begin(), old.end(), t) - old.begin());
    if (hi == 0) return std::max(duration::zero(), slot(0) - (old.front() - t));
    if (hi == old.size()) return slot(old.size() - 1) + (t - old.back());
    const std::size_t lo = hi - 1;
    const double span = static_cast<double>((old[hi] - old[lo]).count());
    const double frac = span > 0 ? static_cast<double>((t - old[lo]).count()) / span : 0.0;
    return slot(lo) + std::chrono::duration_cast<duration>((slot(hi) - slot(lo)) * frac);
  };
  for (auto& c : capture.clients) {
    c.main_open = warp(c.main_open);
    if (c.async_open) c.async_open = warp(*c.async_open);
    for (auto& op : c.ops)
      if (op.answered) op.answered = warp(*op.answered);
    for (auto& p : c.pings) p = warp(p);
  }
  for (std::size_t r = 0; r < order.size(); ++r) {
    captured_op& op = capture.clients[order[r].client].ops[order[r].op];
    op.sent = slot(r);
    if (op.answered) op.answered = std::max(*op.answered, op.sent);
  }
  for (auto& c : capture.clients) {
    const auto lane_first = [&](lane l) -> std::optional<duration> {
      for (const auto& op : c.ops)
        if (op.on == l) return op.sent;
      return std::nullopt;
    };
    if (auto f = lane_first(lane::main)) c.main_open = std::min(c.main_open, *f);
    if (c.async_open)
      if (auto f = lane_first(lane::async)) c.async_open = std::min(*c.async_open, *f);
  }
  capture.summary.span = std::max(warp(capture.summary.span), slot(order.size() - 1));
}

void limit_operations(capture_sessions& capture, std::size_t n) {
  if (n == 0) return;
  std::vector<duration> all;
  for (const auto& c : capture.clients)
    for (const auto& op : c.ops) all.push_back(op.sent);
  if (all.size() <= n) return;
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n - 1), all.end());
  const duration cutoff = all[n - 1];
  // Ties at the cutoff: as many as fit, in client order.
  std::size_t at_cutoff = n - static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [&](duration d) { return d < cutoff; }));
  for (auto& c : capture.clients) {
    std::vector<captured_op> ops;
    for (auto& op : c.ops) {
      if (op.sent > cutoff) break;  // a client's operations are in capture order
      if (op.sent == cutoff) {
        if (at_cutoff == 0) break;
        --at_cutoff;
      }
      ops.push_back(std::move(op));
    }
    c.ops = std::move(ops);
    std::erase_if(c.pings, [&](duration p) { return p > cutoff; });
  }
  std::erase_if(capture.clients, [](const captured_client& c) { return c.ops.empty(); });
  capture.summary.span = std::min(capture.summary.span, cutoff);
}

replay_outcome run_replay(const capture_sessions& capture, const replay_options& options) {
  replay_outcome out;
  if (auto e = validate(options); !e.empty()) {
    out.error = e;
    return out;
  }
  engine(capture, options, out).run();
  return out;
}

}  // namespace nudge::replay
