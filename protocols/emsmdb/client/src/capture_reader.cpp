// The EMSMDB family's reading of a capture (engine::capture_reader): every rule
// of docs/pcap-tool.md that needs DCE/RPC or EMSMDB. Per TCP flow it frames
// DCE/RPC PDUs, learns the bound interface, pairs requests with responses by
// call id and decodes the few stubs that matter (EcDoConnectEx, register push,
// EcDoRpcExt2 responses for RopNotify/RopPending, async connect and wait); per
// session it tells polls from fetches (a fetch follows a ping, an async-wait
// completion or a RopPending within the fetch window, before the poll timer is
// due); per datagram it matches pings and keepalives to registered contexts.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "nudge/emsmdb/capture_classifier.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::protocol::emsmdb {

namespace {

using engine::capture_flow;
using engine::capture_host;
using engine::capture_none;
namespace rop = protocol::rop;
using rules = capture_classifier;
using bound_iface = rules::interface;

constexpr std::uint32_t npos = capture_none;
constexpr std::uint32_t kind(message_kind k) { return static_cast<std::uint32_t>(k); }

inline std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// The counters, facts, latencies and paths, in the order the lists below name them.
enum ctr : std::uint8_t {
  c_polls, c_wasted_polls, c_fetches, c_wasted_fetches, c_by_ping, c_by_async_wait, c_by_pending, c_pings,
  c_pings_matched, c_pings_answered, c_keepalives, c_registrations, c_async_connects, c_async_waits,
  c_async_notified, c_pending_seen, c_dummies, c_faults, c_events, c_count
};
constexpr std::array<std::string_view, c_count> counter_list = {
    "polls", "wasted_polls", "fetches", "wasted_fetches", "fetches_by_trigger.ping",
    "fetches_by_trigger.async_wait", "fetches_by_trigger.pending", "pings", "pings_matched", "pings_answered",
    "keepalives", "registrations", "async_connects", "async_waits", "async_notified", "pending_seen", "dummies",
    "faults", "events"};
enum fact : std::uint8_t { f_polls_max_ms, f_session_index, f_count };
constexpr std::array<std::string_view, f_count> fact_list = {"polls_max_ms", "session_index"};
constexpr std::array<std::string_view, 2> latency_list = {"ping_to_fetch", "async_to_fetch"};
constexpr std::array<std::string_view, 3> path_list = {"poll", "push", "async"};

/// What made a client fetch: the reason an EcDoRpcExt2 is a fetch.
enum class trigger : std::uint8_t { ping, async_wait, pending };
constexpr std::uint8_t path_poll = 0, path_push = 1, path_async = 2;

struct context_key {
  std::uint64_t a = 0, b = 0, len = 0;
  static context_key of(bytes_view v) {
    context_key k;
    std::uint8_t buf[16] = {};
    if (!v.empty()) std::memcpy(buf, v.data(), std::min<std::size_t>(v.size(), 16));
    std::memcpy(&k.a, buf, 8);
    std::memcpy(&k.b, buf + 8, 8);
    k.len = v.size();
    return k;
  }
  friend bool operator==(const context_key&, const context_key&) = default;
};
struct context_hash {
  std::size_t operator()(const context_key& k) const { return mix64(k.a ^ (k.b * 0x9E3779B97F4A7C15ull) ^ (k.len << 56)); }
};

// An NDR context handle (attributes + GUID): links an AsyncEMSMDB connection to the
// EMSMDB session whose EcDoAsyncConnectEx returned it.
struct handle_key {
  std::uint64_t a = 0, b = 0, attributes = 0;
  static handle_key of(const context_handle& h) {
    handle_key k;
    std::memcpy(&k.a, h.uuid.bytes.data(), 8);
    std::memcpy(&k.b, h.uuid.bytes.data() + 8, 8);
    k.attributes = h.attributes;
    return k;
  }
  friend bool operator==(const handle_key&, const handle_key&) = default;
};
struct handle_hash {
  std::size_t operator()(const handle_key& k) const { return mix64(k.a ^ (k.b * 0x9E3779B97F4A7C15ull) ^ (k.attributes << 32)); }
};

struct call_entry {
  std::uint32_t call_id = 0;
  std::uint16_t opnum = 0;
  std::uint32_t kind = npos;
  std::uint8_t path = 0;
  bool used = false;
};

struct flow_state {
  bound_iface bound = bound_iface::unknown;
  std::array<call_entry, 8> calls{};
  std::uint8_t next_call = 0;
  /// Cuts each direction into PDUs; holds the PDU in progress only when it spans segments.
  std::array<dcerpc::stream_framer, 2> framer{
      dcerpc::stream_framer{dcerpc::stream_framer::max_frag_length, dcerpc::stream_framer::header_rule::lenient},
      dcerpc::stream_framer{dcerpc::stream_framer::max_frag_length, dcerpc::stream_framer::header_rule::lenient}};
};

// One client session: an EMSMDB connection with its AsyncEMSMDB connection and
// UDP socket (or, for datagrams that name no session, a host).
struct session_rec {
  capture_host host = 0;
  bool host_fallback = false;
  std::optional<handle_key> orphan_acxh;  // an async connection whose EcDoAsyncConnectEx came later
  bool registered = false;
  bool async_connected = false;
  bool waited = false;
  // The fetch trigger: armed by a ping, an async-wait completion or a RopPending.
  bool armed = false;
  trigger reason = trigger::ping;
  std::uint8_t path = 0;
  time_point t0{};
  time_point deadline{};
  std::uint32_t ping_head = npos;  // pings waiting for their fetch (linked through ping_rec::next)
  std::uint32_t ping_tail = npos;
  bool polled = false;
  time_point last_poll{};
  std::int64_t min_gap_ns = 0;
  std::optional<std::uint16_t> session_index;
  std::optional<std::uint32_t> polls_max_ms;
  std::array<std::uint64_t, c_count> n{};
};

struct registration {
  std::uint32_t session = npos;
  push_context context;
  std::optional<ip_endpoint> callback;
  std::uint32_t next_same = npos;  // an older registration of the same context
};

struct ping_rec {
  engine::capture_wakeup w;
  std::uint32_t next = npos;
};

class reader final : public engine::capture_reader {
 public:
  explicit reader(const engine::capture_reading_options& o) : opt_(o) {}

  // ---- streams -------------------------------------------------------------------------
  void on_stream(capture_flow& f, int side, bytes_view data, time_point ts, engine::capture_stream_sink& out) override {
    flow_state& st = state_of(f);
    auto& framer = st.framer[static_cast<std::size_t>(side)];
    framer.append(data);  // whole PDUs are framed straight from the segment
    while (true) {
      const auto pdu = framer.next();
      if (pdu.outcome == dcerpc::stream_framer::status::need_more) return;
      if (pdu.outcome == dcerpc::stream_framer::status::malformed) {
        const std::size_t dropped = framer.pending();
        framer.clear();
        return out.malformed(dropped);
      }
      out.message(complete(f, st, side, pdu.pdu, ts), pdu.pdu.size());
    }
  }

  std::size_t pending(const capture_flow& f, int side) const override {
    const flow_state* st = find_state(f);
    return st ? st->framer[static_cast<std::size_t>(side)].pending() : 0;
  }

  void drop_pending(const capture_flow& f, int side) override {
    if (f.id < state_index_.size() && state_index_[f.id] != npos)
      states_[state_index_[f.id]].framer[static_cast<std::size_t>(side)].clear();
  }

  std::string_view flow_label(const capture_flow& f) const override {
    const flow_state* st = find_state(f);
    return rules::name(st ? st->bound : bound_iface::unknown);
  }

  bool primary_flow(const capture_flow& f) const override {
    const flow_state* st = find_state(f);
    return !st || st->bound != bound_iface::async_emsmdb;
  }

  void prefetch(const capture_flow& f, int /*side*/) const override {
    if (const flow_state* st = find_state(f)) __builtin_prefetch(&st->calls);
    if (f.session != npos) __builtin_prefetch(&sessions_[f.session]);
  }

  // ---- datagrams -----------------------------------------------------------------------
  engine::datagram_verdict on_datagram(const engine::capture_datagram& d) override {
    engine::datagram_verdict v;
    const bytes_view pl = d.payload;
    constexpr std::size_t cookie_header = cookie_magic.size() + 4;
    if (pl.size() >= cookie_header && pl.size() <= cookie_header + max_push_context &&
        std::memcmp(pl.data(), cookie_magic.data(), cookie_magic.size()) == 0) {
      const bytes_view ctx = pl.subspan(cookie_header);
      const std::uint32_t r = find_registration(ctx, d.src_host, d.src);
      const std::uint32_t ci = r != npos ? regs_[r].session : session_on_host(d.src_host);
      if (!learned_udp_port_) learned_udp_port_ = d.dst.port;
      ++sessions_[ci].n[c_keepalives];
      return {true, kind(message_kind::keepalive), ci, /*client_is_src=*/true, /*server_known=*/true};
    }
    if (pl.size() > max_push_context) return v;
    const bool from_port = opt_.udp_port ? d.src.port == *opt_.udp_port
                                         : (learned_udp_port_ && d.src.port == *learned_udp_port_ && d.src_serves);
    std::uint32_t r = npos;
    if (d.src_serves || from_port) r = find_registration(pl, d.dst_host, d.dst);
    std::uint32_t ci = npos;
    if (r != npos) {
      ci = regs_[r].session;
      if (!learned_udp_port_) learned_udp_port_ = d.src.port;
    } else if (from_port) {
      ci = session_on_host(d.dst_host);
    } else {
      return v;
    }
    session_rec& c = sessions_[ci];
    ++c.n[c_pings];
    if (r != npos) ++c.n[c_pings_matched];
    const auto pi = static_cast<std::uint32_t>(pings_.size());
    ping_rec& pr = pings_.emplace_back();
    pr.w.at = d.at;
    pr.w.session = ci;
    pr.w.from = d.src;
    pr.w.to = d.dst;
    pr.w.payload.assign(pl.begin(), pl.end());
    pr.w.matched = r != npos;
    // A datagram that matches nothing the client registered is ignored by it (forged or stale).
    if (r != npos || !c.registered) {
      arm(c, trigger::ping, path_push, d.at);
      if (c.armed) {
        if (c.ping_tail == npos) c.ping_head = pi;
        else pings_[c.ping_tail].next = pi;
        c.ping_tail = pi;
      }
    }
    return {true, kind(message_kind::ping), ci, /*client_is_src=*/false, /*server_known=*/r != npos};
  }

  engine::capture_findings findings() const override;

 private:
  const flow_state* find_state(const capture_flow& f) const {
    return f.id < state_index_.size() && state_index_[f.id] != npos ? &states_[state_index_[f.id]] : nullptr;
  }
  flow_state& state_of(const capture_flow& f) {
    if (f.id >= state_index_.size()) state_index_.resize(std::max<std::size_t>(f.id + 1, state_index_.size() * 2), npos);
    if (state_index_[f.id] == npos) {
      state_index_[f.id] = static_cast<std::uint32_t>(states_.size());
      states_.emplace_back();
    }
    return states_[state_index_[f.id]];
  }

  // ---- sessions --------------------------------------------------------------------------
  /// The session for datagrams of host `h` that name no session.
  std::uint32_t fallback_for(capture_host h) {
    const auto [it, inserted] = fallback_.try_emplace(h, static_cast<std::uint32_t>(sessions_.size()));
    if (inserted) {
      sessions_.emplace_back();
      sessions_.back().host = h;
      sessions_.back().host_fallback = true;
    }
    return it->second;
  }

  /// The session of a TCP flow, made when first needed: each EMSMDB connection is one.
  std::uint32_t session_of(capture_flow& f, const flow_state& st) {
    if (f.session == npos) {
      f.session = static_cast<std::uint32_t>(sessions_.size());
      sessions_.emplace_back();
      sessions_.back().host = f.host[f.client_side < 0 ? 0 : static_cast<std::size_t>(f.client_side)];
      if (st.bound != bound_iface::async_emsmdb) latest_on_host_[sessions_.back().host] = f.session;
    }
    return f.session;
  }

  /// For a datagram that names no session: the latest EMSMDB session of the host,
  /// else the host's fallback session.
  std::uint32_t session_on_host(capture_host h) {
    const auto it = latest_on_host_.find(h);
    return it != latest_on_host_.end() ? it->second : fallback_for(h);
  }

  // ---- PDUs ----------------------------------------------------------------------------
  static call_entry* find_call(flow_state& st, std::uint32_t call_id) {
    for (auto& c : st.calls)
      if (c.used && c.call_id == call_id) return &c;
    return nullptr;
  }
  static void remember_call(flow_state& st, std::uint32_t call_id, std::uint16_t opnum, std::uint32_t k,
                            std::uint8_t path) {
    call_entry* e = find_call(st, call_id);
    if (!e) {
      e = &st.calls[st.next_call];
      st.next_call = static_cast<std::uint8_t>((st.next_call + 1) % st.calls.size());
    }
    *e = call_entry{call_id, opnum, k, path, true};
  }

  /// A whole PDU from `side`: its kind, after what it tells about the session.
  std::uint32_t complete(capture_flow& f, flow_state& st, int side, bytes_view pdu, time_point ts) {
    const std::uint8_t ptype = pdu[2];
    const std::uint8_t pflags = pdu[3];
    const std::uint16_t auth = le16(pdu.data() + 10);
    const std::uint32_t call_id = le32(pdu.data() + 12);
    if (f.client_side < 0) f.client_side = static_cast<std::int8_t>(rules::sent_by_client(ptype) ? side : 1 - side);
    const bool from_client = side == f.client_side;
    const bool single = (pflags & (dcerpc::pfc::first_frag | dcerpc::pfc::last_frag)) ==
                        (dcerpc::pfc::first_frag | dcerpc::pfc::last_frag);

    const auto by_type = rules::kind_of_pdu_type(ptype);
    std::uint32_t k = by_type ? kind(*by_type) : npos;
    switch (ptype) {
      case 11:  // bind
      case 14:  // alter_context
        if (from_client) {
          const bound_iface b = rules::interface_of_bind(pdu);
          if (b != bound_iface::unknown) st.bound = b;
        }
        break;
      case 13:  // bind_nak
        ++sessions_[session_of(f, st)].n[c_faults];  // (session_of runs before the vector is indexed)
        break;
      case 3: {  // fault
        ++sessions_[session_of(f, st)].n[c_faults];
        if (call_entry* e = find_call(st, call_id)) e->used = false;
        break;
      }
      case 0: {  // request
        if (!from_client) break;
        const std::uint16_t opnum = le16(pdu.data() + 22);
        std::size_t begin = dcerpc::request_header_size + ((pflags & dcerpc::pfc::object_uuid) ? 16 : 0);
        std::size_t end = pdu.size() - (auth ? 8u + auth : 0u);
        const bool decodable = single && auth == 0 && begin <= end;
        const bytes_view stub = decodable ? pdu.subspan(begin, end - begin) : bytes_view{};
        std::uint8_t path = path_poll;
        k = classify_request(f, st, opnum, stub, decodable, ts, call_id, (pflags & dcerpc::pfc::first_frag) != 0, path);
        remember_call(st, call_id, opnum, k, path);
        break;
      }
      case 2: {  // response
        call_entry* e = find_call(st, call_id);
        if (!e) break;
        k = e->kind;
        const call_entry call = *e;
        if (pflags & dcerpc::pfc::last_frag) e->used = false;
        if (!from_client && single && auth == 0 && pdu.size() >= dcerpc::response_header_size)
          on_response(session_of(f, st), call, pdu.subspan(dcerpc::response_header_size), ts);
        break;
      }
      default: break;  // shutdown, cancel, orphaned: no nudge kind
    }
    return k;
  }

  std::uint32_t classify_request(capture_flow& f, flow_state& st, std::uint16_t opnum, bytes_view stub,
                                 bool decodable, time_point ts, std::uint32_t call_id, bool first_fragment,
                                 std::uint8_t& path) {
    if (st.bound == bound_iface::other) return npos;
    if (st.bound == bound_iface::async_emsmdb || (st.bound == bound_iface::unknown && opnum == 0)) {
      // AsyncEMSMDB has one method; EMSMDB's opnum 0 (EcDoConnect) is long obsolete.
      if (opnum != protocol::opnum::do_async_wait_ex) return npos;
      if (f.session == npos) {
        // The wait's ACXH names the session whose EcDoAsyncConnectEx returned it.
        std::optional<handle_key> acxh;
        if (decodable)
          if (auto w = decode_async_wait_request(stub); w.complete()) acxh = handle_key::of(w.value.acxh);
        const auto owner = acxh ? acxh_.find(*acxh) : acxh_.end();
        if (owner != acxh_.end()) {
          f.session = owner->second;
        } else {
          session_of(f, st);
          if (acxh) sessions_[f.session].orphan_acxh = acxh;
        }
      }
      session_rec& c = sessions_[f.session];
      if (first_fragment) {
        c.waited = true;
        ++c.n[c_async_waits];
      }
      return kind(message_kind::async_wait);
    }
    const std::uint32_t ci = session_of(f, st);
    session_rec& c = sessions_[ci];
    switch (opnum) {
      case protocol::opnum::register_push_notification:
        if (first_fragment) {
          c.registered = true;
          ++c.n[c_registrations];
        }
        if (decodable) {
          auto r = decode_register_push_request(stub);
          if (r.complete() && r.value.context.size() <= max_push_context) {
            std::optional<ip_endpoint> cb;
            if (auto a = protocol::decode_windows_sockaddr(r.value.callback_address); a.complete()) cb = a.value;
            add_registration(ci, r.value.context, cb);
          }
        }
        return kind(message_kind::register_push);
      case protocol::opnum::dummy_rpc:
        if (first_fragment) ++c.n[c_dummies];
        return kind(message_kind::dummy);
      case protocol::opnum::do_connect_ex: return kind(message_kind::connect);
      case protocol::opnum::do_disconnect: return kind(message_kind::connect);  // as the notifier counts it
      case protocol::opnum::do_async_connect_ex:
        if (first_fragment) {
          c.async_connected = true;
          ++c.n[c_async_connects];
        }
        return kind(message_kind::async_connect);
      case protocol::opnum::do_rpc_ext2: {
        if (!first_fragment) return c.armed ? kind(message_kind::fetch) : kind(message_kind::poll);
        if (c.armed && ts > c.deadline) expire(c);
        if (c.armed) {
          ++c.n[c_fetches];
          ++c.n[c_by_ping + static_cast<std::size_t>(c.reason)];
          if (c.reason != trigger::pending)
            latencies_.push_back({ci, c.reason == trigger::ping ? 0u : 1u, (ts - c.t0).count()});
          for (std::uint32_t pi = c.ping_head; pi != npos; pi = pings_[pi].next) {
            pings_[pi].w.answered_at = ts;
            pings_[pi].w.answer_id = call_id;
            ++c.n[c_pings_answered];
          }
          c.ping_head = c.ping_tail = npos;
          path = c.path;
          c.armed = false;
          return kind(message_kind::fetch);
        }
        ++c.n[c_polls];
        if (c.polled) {
          const std::int64_t gap = (ts - c.last_poll).count();
          gaps_.push_back({ci, 0, gap});
          if (gap > 0 && (c.min_gap_ns == 0 || gap < c.min_gap_ns)) c.min_gap_ns = gap;
        }
        c.polled = true;
        c.last_poll = ts;
        path = path_poll;
        return kind(message_kind::poll);
      }
      default: return npos;
    }
  }

  static void expire(session_rec& c) {
    c.armed = false;
    c.ping_head = c.ping_tail = npos;  // those pings stay without a fetch
  }

  void arm(session_rec& c, trigger why, std::uint8_t path, time_point ts) {
    if (c.armed && ts > c.deadline) expire(c);
    if (c.armed) return;  // the earliest trigger stands
    c.armed = true;
    c.reason = why;
    c.path = path;
    c.t0 = ts;
    c.deadline = ts + opt_.fetch_window;
    // "Before the next poll timer": once the client's polling rhythm is known, a
    // trigger does not outlive the next poll's earliest time (but lasts at least 1 s,
    // so a fetch right after its trigger is never taken for a poll).
    if (c.polled && c.min_gap_ns > 0) {
      // The analyser clamps timestamps to +-2^62 ns and gaps are differences of them: no overflow here.
      const time_point next_poll = c.last_poll + duration(std::min(c.min_gap_ns, std::int64_t{1} << 62));
      if (next_poll > ts) c.deadline = std::min(c.deadline, std::max(next_poll, ts + std::chrono::seconds(1)));
    }
  }

  struct rop_collector final : rop::rop_visitor {
    reader& self;
    std::uint32_t session;
    std::uint8_t path;
    time_point seen;
    std::optional<std::uint16_t> index;
    std::size_t found = 0;
    bool pending = false;
    rop_collector(reader& s, std::uint32_t c, std::uint8_t p, time_point t, std::optional<std::uint16_t> idx)
        : self(s), session(c), path(p), seen(t), index(idx) {}
    void on_new_mail(const rop::new_mail_notification& n) override {
      ++found;
      const std::int64_t us = to_micros(n.event.created_at);
      self.events_.push_back({n.event.id, session, path, seen, us == 0 ? -1 : us});
    }
    void on_pending(std::uint16_t idx) override {
      if (!index || *index == idx) pending = true;
    }
  };

  // A RopPending appended after RopSize instead of inside the ROP list (the shared
  // reference capture does this; nudge's Lua dissector accepts it with a note).
  static void pending_after_rop_size(bytes_view rgb_out, rop_collector& col) {
    if (rgb_out.size() < rop::rpc_header_ext_size + 2) return;
    const std::size_t size = le16(rgb_out.data() + 4);
    if (size > rgb_out.size() - rop::rpc_header_ext_size) return;
    const bytes_view payload = rgb_out.subspan(rop::rpc_header_ext_size, size);
    const std::size_t rop_size = le16(payload.data());
    if (rop_size < 2 || rop_size > payload.size()) return;
    const bytes_view rest = payload.subspan(rop_size);
    if (rest.size() == rop::rop_pending_size && rest[0] == rop::rop_pending_id) col.on_pending(le16(rest.data() + 1));
  }

  // An EcDoRpcExt2 response stub whose rgbOut is an empty ROP buffer (RopSize 2, no
  // handles) and whose return value is 0: the layout nudge and Exchange send for a
  // poll that found nothing. cxh (20), pulFlags (4), rgbOut max_count/offset/actual
  // (12), then rgbOut: RPC_HEADER_EXT (8) + RopSize (2); the stub ends with the return value.
  static bool empty_ext2_response(bytes_view stub) {
    constexpr std::size_t rgb = 36;
    if (stub.size() < rgb + 10 + 4) return false;
    const std::uint8_t* d = stub.data();
    return le32(d + 32) == 10 && le16(d + rgb) == 0 && le16(d + rgb + 2) == rop::header_flags::last &&
           le16(d + rgb + 4) == 2 && le16(d + rgb + 6) == 2 && le16(d + rgb + 8) == 2 &&
           le32(d + stub.size() - 4) == protocol::ec::success;
  }

  void on_response(std::uint32_t ci, const call_entry& call, bytes_view stub, time_point ts) {
    session_rec& c = sessions_[ci];
    if (call.kind == kind(message_kind::poll) || call.kind == kind(message_kind::fetch)) {
      const bool poll = call.kind == kind(message_kind::poll);
      if (empty_ext2_response(stub)) {  // the common case, without the full NDR decode
        ++c.n[poll ? c_wasted_polls : c_wasted_fetches];
        return;
      }
      auto r = decode_rpc_ext2_response(stub);
      if (!r.complete() || r.value.return_code != protocol::ec::success) return;
      rop_collector col(*this, ci, call.path, ts, c.session_index);
      (void)rop::decode_response(r.value.rgb_out, col);  // what decoded before a malformed ROP still counts
      if (!col.pending) pending_after_rop_size(r.value.rgb_out, col);
      c.n[c_events] += col.found;
      if (col.found == 0) ++c.n[poll ? c_wasted_polls : c_wasted_fetches];
      if (col.pending) {
        ++c.n[c_pending_seen];
        arm(c, trigger::pending, call.path, ts);
      }
    } else if (call.kind == kind(message_kind::async_wait)) {
      auto r = decode_async_wait_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success &&
          (r.value.flags_out & protocol::notification_pending)) {
        ++c.n[c_async_notified];
        arm(c, trigger::async_wait, path_async, ts);
      }
    } else if (call.kind == kind(message_kind::async_connect)) {
      auto r = decode_async_connect_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success && !r.value.acxh.is_null())
        acxh_[handle_key::of(r.value.acxh)] = ci;
    } else if (call.kind == kind(message_kind::connect)) {
      auto r = decode_connect_ex_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success) {
        c.session_index = r.value.session_index;
        c.polls_max_ms = r.value.polls_max_ms;
      }
    }
  }

  // ---- registrations -------------------------------------------------------------------
  void add_registration(std::uint32_t ci, bytes_view context, const std::optional<ip_endpoint>& cb) {
    const context_key k = context_key::of(context);
    const auto it = reg_index_.find(k);
    const std::uint32_t head = it != reg_index_.end() ? it->second : npos;
    // The same client registering the same context again (a reconnect): update it.
    for (std::uint32_t r = head, hops = 0; r != npos && hops < 64; r = regs_[r].next_same, ++hops)
      if (regs_[r].session == ci) {
        regs_[r].callback = cb;
        return;
      }
    registration& reg = regs_.emplace_back();
    reg.session = ci;
    reg.context.assign(context);
    reg.callback = cb;
    reg.next_same = head;
    reg_index_[k] = static_cast<std::uint32_t>(regs_.size() - 1);
  }

  /// The registration a datagram with payload `context` sent to `to` (on host
  /// `host`) answers: the one whose callback address is that endpoint, else one of
  /// a client on that host, else the latest one of that context. npos if none.
  std::uint32_t find_registration(bytes_view context, capture_host host, const ip_endpoint& to) const {
    const auto it = reg_index_.find(context_key::of(context));
    if (it == reg_index_.end()) return npos;
    const std::uint32_t head = it->second;
    std::uint32_t on_host = npos;
    for (std::uint32_t r = head, hops = 0; r != npos && hops < 64; r = regs_[r].next_same, ++hops) {
      if (regs_[r].callback && *regs_[r].callback == to) return r;
      if (on_host == npos && sessions_[regs_[r].session].host == host) on_host = r;
    }
    return on_host != npos ? on_host : head;
  }

  engine::capture_reading_options opt_;
  std::vector<std::uint32_t> state_index_;  // flow id -> states_ (npos: the flow carried no PDU yet)
  std::vector<flow_state> states_;
  std::vector<session_rec> sessions_;
  std::unordered_map<capture_host, std::uint32_t> fallback_;        // host -> its fallback session
  std::unordered_map<capture_host, std::uint32_t> latest_on_host_;  // host -> its latest EMSMDB session
  std::unordered_map<handle_key, std::uint32_t, handle_hash> acxh_;  // ACXH -> the session that received it
  std::unordered_map<context_key, std::uint32_t, context_hash> reg_index_;
  std::vector<registration> regs_;
  std::vector<ping_rec> pings_;
  std::vector<engine::capture_sample> gaps_;
  std::vector<engine::capture_sample> latencies_;
  std::vector<engine::capture_event> events_;
  std::optional<std::uint16_t> learned_udp_port_;
};

engine::capture_findings reader::findings() const {
  engine::capture_findings out;
  const std::size_t n = sessions_.size();
  out.sessions.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const session_rec& c = sessions_[i];
    engine::capture_session& s = out.sessions.emplace_back();
    s.host = c.host;
    s.host_fallback = c.host_fallback;
    if (c.orphan_acxh) {
      // An async connection whose EcDoAsyncConnectEx came later in the capture joins that session.
      const auto it = acxh_.find(*c.orphan_acxh);
      if (it != acxh_.end() && it->second < n && !sessions_[it->second].orphan_acxh) s.joins = it->second;
    }
    s.mode = static_cast<std::uint32_t>(rules::mode_of(c.async_connected || c.waited, c.registered));
    s.counters.assign(c.n.begin(), c.n.end());
    s.facts.resize(f_count);
    if (c.polls_max_ms) s.facts[f_polls_max_ms] = *c.polls_max_ms;
    if (c.session_index) s.facts[f_session_index] = *c.session_index;
  }
  out.latencies = latencies_;
  out.poll_gaps = gaps_;
  out.events = events_;
  out.wakeups.reserve(pings_.size());
  for (const ping_rec& p : pings_) out.wakeups.push_back(p.w);
  return out;
}

}  // namespace

std::span<const std::string_view> capture_classifier::counter_names() const { return counter_list; }
std::span<const std::string_view> capture_classifier::fact_names() const { return fact_list; }
std::span<const std::string_view> capture_classifier::latency_names() const { return latency_list; }
std::span<const std::string_view> capture_classifier::path_names() const { return path_list; }

std::unique_ptr<engine::capture_reader> capture_classifier::make_reader(
    const engine::capture_reading_options& options) const {
  return std::make_unique<reader>(options);
}

std::optional<engine::client_rebuild> capture_classifier::rebuild_client(const engine::captured_client_view& c) const {
  engine::client_rebuild r;
  r.mode = std::string(mode_name(c.mode));
  if (c.poll_gap) {
    const auto gap_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*c.poll_gap).count();
    const std::optional<std::int64_t> polls_max = f_polls_max_ms < c.facts.size() ? c.facts[f_polls_max_ms] : std::nullopt;
    // A client that polls at the server's pcmsPollsMax adopts whatever the live server sets.
    const bool servers = polls_max && *polls_max > 0 && std::abs(gap_ms - *polls_max) * 10 <= *polls_max;
    r.keys.emplace_back("poll.interval", servers ? std::string("0") : std::to_string(std::max<std::int64_t>(gap_ms, 1)) + "ms");
  }
  if (c_keepalives < c.counters.size() && c.counters[c_keepalives] > 0) r.keys.emplace_back("push.cookie", "true");
  return r;
}

}  // namespace nudge::protocol::emsmdb
