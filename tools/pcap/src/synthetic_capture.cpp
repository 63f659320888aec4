#include "nudge/pcap/synthetic_capture.hpp"

#include <queue>
#include <vector>

#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/emsmdb/family.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/random.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::pcap_tool {

namespace {

using namespace std::chrono_literals;
using metrics::direction;
using protocol::emsmdb::message_kind;
using protocol::byte_buffer;
using protocol::byte_writer;
using protocol::ip_endpoint;
namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;
namespace rop = protocol::rop;

enum class mode : std::uint8_t { poll, push, async };

constexpr duration rtt = 500us;           // request -> response
constexpr duration reaction = 1ms;        // ping / wait completion -> fetch
constexpr duration delayed_ack = 200ms;

// Builds endpoints without nudge_protocol's .cpp (ip_endpoint::v4 is out of line).
ip_endpoint ep4(std::uint32_t addr, std::uint16_t port) {
  ip_endpoint e;
  e.address[0] = static_cast<std::uint8_t>(addr >> 24);
  e.address[1] = static_cast<std::uint8_t>(addr >> 16);
  e.address[2] = static_cast<std::uint8_t>(addr >> 8);
  e.address[3] = static_cast<std::uint8_t>(addr);
  e.port = port;
  return e;
}

struct conn {
  ip_endpoint client;
  bool open = false;
  std::uint32_t next_call = 1;
  std::array<time_point, 2> last_sent{};  // [0] client, [1] server
};

struct client {
  mode m = mode::poll;
  std::uint32_t index = 0;
  conn main;
  conn async;
  ip_endpoint udp;
  protocol::push_context context;
  emsmdb::context_handle cxh;
  emsmdb::context_handle acxh;
  std::uint16_t session_index = 0;
  bool confirmed = false;  // push: a ping arrived, polling stopped
  std::uint32_t wait_call = 0;
  std::vector<std::pair<std::uint64_t, time_point>> queued;  // events not fetched yet
};

enum class action : std::uint8_t { start, poll, event, ack_client, ack_server };

struct task {
  time_point at;
  std::uint64_t seq;
  std::uint32_t client;
  action what;
  bool async_conn;
  time_point scheduled;
  friend bool operator>(const task& a, const task& b) { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
};

class generator {
 public:
  generator(capture::frame_sink& sink, const synth_options& o) : opt_(o), syn_(sink), rng_(o.seed) {}

  synth_result run() {
    const std::size_t n = opt_.clients;
    clients_.resize(n);
    const auto n_poll = static_cast<std::size_t>(static_cast<double>(n) * opt_.poll_share + 0.5);
    const auto n_push = std::min(n - n_poll, static_cast<std::size_t>(static_cast<double>(n) * opt_.push_share + 0.5));
    for (std::size_t i = 0; i < n; ++i) {
      client& c = clients_[i];
      c.index = static_cast<std::uint32_t>(i);
      c.m = i < n_poll ? mode::poll : i < n_poll + n_push ? mode::push : mode::async;
      const std::uint32_t host = 0x0A000000u + 0x100u + static_cast<std::uint32_t>(i);  // 10.0.1.0 onwards
      c.main.client = ep4(host, 50000);
      c.async.client = ep4(host, 50001);
      c.udp = ep4(host, 2500);
      std::array<std::uint8_t, 12> ctx{'n', 'u', 'd', 'g', 'e'};
      for (int b = 0; b < 4; ++b) ctx[5 + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(i >> (8 * b));
      c.context.assign(ctx);
      for (std::size_t b = 0; b < 16; ++b) c.cxh.uuid.bytes[b] = static_cast<std::uint8_t>((i * 31 + b) & 0xFF);
      c.acxh = c.cxh;
      c.acxh.uuid.bytes[0] ^= 0xA5;
      c.session_index = static_cast<std::uint16_t>(i);
      ++out_.modes[static_cast<std::size_t>(c.m)].clients;
      // Starts spread over the first poll interval.
      push({time_point{} + duration(static_cast<std::int64_t>(rng_.uniform() * static_cast<double>(opt_.poll_interval.count()))),
            0, c.index, action::start, false, {}});
    }
    while (!queue_.empty() && out_.error.empty()) {
      const task t = queue_.top();
      queue_.pop();
      if (syn_.totals().frames >= opt_.target_frames || t.at - time_point{} > opt_.max_length) break;
      now_ = t.at;
      client& c = clients_[t.client];
      switch (t.what) {
        case action::start: start(c); break;
        case action::poll: poll(c); break;
        case action::event: event(c); break;
        case action::ack_client: ack(c, t.async_conn, true, t.scheduled); break;
        case action::ack_server: ack(c, t.async_conn, false, t.scheduled); break;
      }
    }
    if (opt_.close_at_end && out_.error.empty())
      for (auto& c : clients_)
        for (conn* k : {&c.main, &c.async})
          if (k->open) {
            check(syn_.tcp_close(stamp(now_), k->client, server_), "tcp_close");
            k->open = false;
          }
    out_.frames = syn_.totals().frames;
    out_.length = last_ - time_point{};
    return out_;
  }

 private:
  // Frames leave in time order: an exchange that overlaps the next task's time pushes it on a little.
  time_point stamp(time_point want) {
    last_ = std::max(want, last_ + 1us);
    return last_;
  }

  void push(task t) {
    t.seq = seq_++;
    queue_.push(t);
  }
  void check(capture::capture_error e, const char* what) {
    if (e != capture::capture_error::none && out_.error.empty())
      out_.error = std::string(what) + ": " + std::string(capture::to_string(e));
  }
  synth_mode_counts& counts(const client& c) { return out_.modes[static_cast<std::size_t>(c.m)]; }

  void count_tcp(const client& c, message_kind k, direction d, std::size_t bytes) {
    counts(c).traffic.add(k, d, wire_.tcp_message(bytes));
  }

  // One PDU on a connection; the receiver's ACK comes back 200 ms later unless it sends first.
  void send(client& c, bool async_conn, bool from_client, message_kind k, const byte_buffer& pdu, time_point want) {
    conn& k_ = async_conn ? c.async : c.main;
    const time_point at = stamp(want);
    if (from_client) check(syn_.tcp_data(at, k_.client, server_, pdu), "tcp_data");
    else check(syn_.tcp_data(at, server_, k_.client, pdu), "tcp_data");
    count_tcp(c, k, from_client ? direction::to_server : direction::to_client, pdu.size());
    k_.last_sent[from_client ? 0 : 1] = at;
    push({at + delayed_ack, 0, c.index, from_client ? action::ack_server : action::ack_client, async_conn, at});
  }

  void ack(client& c, bool async_conn, bool from_client, time_point scheduled) {
    conn& k = async_conn ? c.async : c.main;
    if (!k.open || k.last_sent[from_client ? 0 : 1] > scheduled) return;  // data carried the ACK
    if (k.last_sent[from_client ? 1 : 0] > scheduled) return;  // a later receipt re-armed the timer
    const time_point at = stamp(now_);
    if (from_client) check(syn_.tcp_pure_ack(at, k.client, server_), "ack");
    else check(syn_.tcp_pure_ack(at, server_, k.client), "ack");
    counts(c).traffic.add(message_kind::tcp_ack, from_client ? direction::to_server : direction::to_client,
                          wire_.pure_ack());
    k.last_sent[from_client ? 0 : 1] = at;
  }

  void open(client& c, conn& k, time_point at) {
    check(syn_.tcp_open(stamp(at), k.client, server_), "tcp_open");
    k.open = true;
    counts(c).traffic.add(message_kind::tcp_setup, direction::to_server, wire_.handshake_to_server());
    counts(c).traffic.add(message_kind::tcp_setup, direction::to_client, wire_.handshake_to_client());
  }

  byte_buffer bind_pdu(std::uint32_t call, const protocol::syntax_id& s) {
    dcerpc::bind_pdu b;
    b.call_id = call;
    dcerpc::presentation_context ctx;
    ctx.abstract_syntax = s;
    ctx.transfer_syntaxes.push_back(protocol::ndr_syntax());
    b.contexts.push_back(ctx);
    byte_buffer out;
    dcerpc::encode(out, b);
    return out;
  }
  byte_buffer bind_ack_pdu(std::uint32_t call) {
    dcerpc::bind_ack_pdu a;
    a.call_id = call;
    a.assoc_group_id = 0x1234;
    a.secondary_address = "7777";
    dcerpc::bind_result r;
    r.transfer_syntax = protocol::ndr_syntax();
    a.results.push_back(r);
    byte_buffer out;
    dcerpc::encode(out, a);
    return out;
  }

  // bind + bind_ack on a connection, from `at`; returns the time after.
  time_point bind(client& c, bool async_conn, time_point at) {
    conn& k = async_conn ? c.async : c.main;
    const std::uint32_t call = k.next_call++;
    send(c, async_conn, true, message_kind::bind,
         bind_pdu(call, async_conn ? protocol::async_emsmdb_syntax() : protocol::emsmdb_syntax()), at);
    send(c, async_conn, false, message_kind::bind, bind_ack_pdu(call), at + rtt);
    return at + 2 * rtt;
  }

  void start(client& c) {
    time_point t = now_;
    open(c, c.main, t);
    t = bind(c, false, t);
    {
      const std::string dn = "/o=nudge/ou=synthetic/cn=Recipients/cn=user" + std::to_string(c.index);
      emsmdb::connect_ex_request req;
      req.user_dn = dn;  // a view: `dn` outlives the encode
      byte_buffer pdu;
      const std::uint32_t call = c.main.next_call++;
      dcerpc::encode_request(pdu, call, 0, protocol::opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
      send(c, false, true, message_kind::connect, pdu, t);
      emsmdb::connect_ex_response rsp;
      rsp.cxh = c.cxh;
      rsp.polls_max_ms = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(opt_.poll_interval).count());
      rsp.session_index = c.session_index;
      rsp.dn_prefix = "/o=nudge/ou=synthetic";
      rsp.display_name = "user";
      byte_buffer r;
      dcerpc::encode_response(r, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      send(c, false, false, message_kind::connect, r, t + rtt);
      t += 2 * rtt;
    }
    if (c.m == mode::push) {
      const byte_buffer sa = protocol::windows_sockaddr(c.udp);
      emsmdb::register_push_request req;
      req.cxh = c.cxh;
      req.context = c.context.view();
      req.callback_address = sa;
      byte_buffer pdu;
      const std::uint32_t call = c.main.next_call++;
      dcerpc::encode_request(pdu, call, 0, protocol::opnum::register_push_notification,
                             [&](byte_writer& w) { emsmdb::encode(w, req); });
      send(c, false, true, message_kind::register_push, pdu, t);
      emsmdb::register_push_response rsp;
      rsp.cxh = c.cxh;
      rsp.notification_handle = 0x100 + c.index;
      byte_buffer r;
      dcerpc::encode_response(r, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      send(c, false, false, message_kind::register_push, r, t + rtt);
      ++counts(c).registrations;
      t += 2 * rtt;
    }
    if (c.m == mode::async) {
      byte_buffer pdu;
      const std::uint32_t call = c.main.next_call++;
      dcerpc::encode_request(pdu, call, 0, protocol::opnum::do_async_connect_ex,
                             [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_request{c.cxh}); });
      send(c, false, true, message_kind::async_connect, pdu, t);
      byte_buffer r;
      dcerpc::encode_response(r, call, 0, [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_response{c.acxh, 0}); });
      send(c, false, false, message_kind::async_connect, r, t + rtt);
      t += 2 * rtt;
      open(c, c.async, t);
      t = bind(c, true, t);
      send_wait(c, t);
    } else {
      push({t + opt_.poll_interval, 0, c.index, action::poll, false, {}});
    }
    schedule_event(c, t);
  }

  void send_wait(client& c, time_point at) {
    byte_buffer pdu;
    c.wait_call = c.async.next_call++;
    dcerpc::encode_request(pdu, c.wait_call, 0, protocol::opnum::do_async_wait_ex,
                           [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_request{c.acxh, 0}); });
    send(c, true, true, message_kind::async_wait, pdu, at);
    ++counts(c).async_waits;
  }

  void schedule_event(client& c, time_point after) {
    if (opt_.events_per_client_hour <= 0) return;
    const duration mean = std::chrono::duration_cast<duration>(std::chrono::duration<double>(3600.0 / opt_.events_per_client_hour));
    push({after + rng_.exponential(mean), 0, c.index, action::event, false, {}});
  }

  // EcDoRpcExt2 request + response carrying the queued events; returns the time after.
  time_point ext2(client& c, message_kind k, time_point at) {
    byte_buffer pdu;
    const std::uint32_t call = c.main.next_call++;
    emsmdb::encode_empty_poll_request(pdu, call, c.cxh);
    send(c, false, true, k, pdu, at);
    byte_buffer rgb_out;
    rop::response_builder b(rgb_out);
    std::size_t sent = 0;
    for (const auto& [id, created] : c.queued) {
      if (sent == 60) break;  // stay far below max_xmit_frag
      rop::new_mail_notification n;
      n.notification_handle = 0x100 + c.index;
      n.folder_id = 0x0001000000000001ull;
      n.event = {id, created};
      b.add(n);
      ++sent;
    }
    c.queued.erase(c.queued.begin(), c.queued.begin() + static_cast<std::ptrdiff_t>(sent));
    if (!c.queued.empty()) b.add_pending(c.session_index);
    b.finish();
    emsmdb::rpc_ext2_response rsp;
    rsp.cxh = c.cxh;
    rsp.rgb_out = rgb_out;
    byte_buffer r;
    dcerpc::encode_response(r, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
    send(c, false, false, k, r, at + rtt);
    counts(c).events += sent;
    if (k == message_kind::poll) ++counts(c).polls;
    else ++counts(c).fetches;
    time_point t = at + 2 * rtt;
    if (!c.queued.empty()) t = ext2(c, message_kind::fetch, t + reaction);  // RopPending: fetch the rest
    return t;
  }

  void poll(client& c) {
    if (c.m == mode::push && c.confirmed) return;  // relies on pings now
    ext2(c, message_kind::poll, now_);
    push({now_ + opt_.poll_interval, 0, c.index, action::poll, false, {}});
  }

  void event(client& c) {
    c.queued.emplace_back(next_event_++, now_);
    if (c.m == mode::push) {
      check(syn_.udp(stamp(now_), server_udp_, c.udp, c.context.view()), "udp");
      counts(c).traffic.add(message_kind::ping, direction::to_client, wire_.udp_message(c.context.size()));
      ++counts(c).pings;
      c.confirmed = true;
      ext2(c, message_kind::fetch, now_ + reaction);
    } else if (c.m == mode::async) {
      byte_buffer r;
      dcerpc::encode_response(r, c.wait_call, 0, [&](byte_writer& w) {
        emsmdb::encode(w, emsmdb::async_wait_response{protocol::notification_pending, 0});
      });
      send(c, true, false, message_kind::async_wait, r, now_);
      ++counts(c).async_notified;
      const time_point t = ext2(c, message_kind::fetch, now_ + reaction);
      send_wait(c, t);
    }
    schedule_event(c, now_);
  }

  synth_options opt_;
  capture::frame_synthesizer syn_;
  rng rng_;
  metrics::wire_model wire_;
  std::vector<client> clients_;
  std::priority_queue<task, std::vector<task>, std::greater<>> queue_;
  std::uint64_t seq_ = 0;
  std::uint64_t next_event_ = 1;
  time_point now_{};
  time_point last_{};
  ip_endpoint server_ = ep4(0x0A000001u, 7777);      // 10.0.0.1
  ip_endpoint server_udp_ = ep4(0x0A000001u, 7778);
  synth_result out_;
};

}  // namespace

synth_result synthesize(capture::frame_sink& sink, const synth_options& opt) { return generator(sink, opt).run(); }

synth_result write_synthetic_capture(const std::filesystem::path& path, const synth_options& opt) {
  capture::pcap_file_writer w;
  if (w.open(path, std::chrono::seconds(1700000000)) != capture::capture_error::none) {
    synth_result r;
    r.error = "cannot create " + path.string() + ": " + w.error_text();
    return r;
  }
  synth_result r = synthesize(w, opt);
  if (w.close() != capture::capture_error::none && r.error.empty()) r.error = "pcap close: " + w.error_text();
  return r;
}

}  // namespace nudge::pcap_tool
