#include "nudge/pcap/analyser.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "flat_index.hpp"
#include "nudge/emsmdb/capture_classifier.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "nudge/protocols/registrations.hpp"

namespace nudge::pcap_tool {

namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;
namespace rop = protocol::rop;
// The EMSMDB family's rules for a PDU on its own (sender, interface, kind, mode).
using emsmdb_rules = protocol::emsmdb::capture_classifier;

using namespace std::chrono_literals;
using detail::flat_index;
using detail::mix64;

std::string_view to_string(fetch_trigger t) {
  switch (t) {
    case fetch_trigger::ping: return "ping";
    case fetch_trigger::async_wait: return "async_wait";
    case fetch_trigger::pending: return "pending";
  }
  return "?";
}

stream_stats& stream_stats::operator+=(const stream_stats& o) {
  pdus += o.pdus;
  malformed_pdus += o.malformed_pdus;
  gaps += o.gaps;
  retransmissions += o.retransmissions;
  reordered += o.reordered;
  partial_overlaps += o.partial_overlaps;
  truncated_segments += o.truncated_segments;
  resyncs += o.resyncs;
  unframed_segments += o.unframed_segments;
  return *this;
}

latency_summary latency_summary::of(const metrics::latency_histogram& h) {
  latency_summary s;
  s.count = h.count();
  if (s.count == 0) return s;
  s.mean_s = to_seconds(h.mean());
  s.p50_s = to_seconds(h.quantile(0.5));
  s.p90_s = to_seconds(h.quantile(0.9));
  s.p99_s = to_seconds(h.quantile(0.99));
  s.max_s = to_seconds(h.max());
  return s;
}

latency_summary latency_summary::of_samples(std::vector<std::int64_t>& ns) {
  latency_summary s;
  s.count = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (auto v : ns) sum += static_cast<double>(v);
  // Nearest rank: the smallest sample with at least q of the samples at or below it.
  auto rank = [&](double q) {
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ns.size())));
    return static_cast<double>(ns[std::min(ns.size() - 1, k == 0 ? 0 : k - 1)]) / 1e9;
  };
  s.mean_s = sum / static_cast<double>(ns.size()) / 1e9;
  s.p50_s = rank(0.5);
  s.p90_s = rank(0.9);
  s.p99_s = rank(0.99);
  s.max_s = static_cast<double>(ns.back()) / 1e9;
  return s;
}

mode_report& mode_report::operator+=(const mode_report& o) {
  clients += o.clients;
  traffic += o.traffic;
  teardown += o.teardown;
  polls += o.polls;
  wasted_polls += o.wasted_polls;
  fetches += o.fetches;
  wasted_fetches += o.wasted_fetches;
  for (std::size_t i = 0; i < fetch_trigger_count; ++i) fetches_by_trigger[i] += o.fetches_by_trigger[i];
  pings += o.pings;
  pings_matched += o.pings_matched;
  pings_answered += o.pings_answered;
  keepalives += o.keepalives;
  registrations += o.registrations;
  async_connects += o.async_connects;
  async_waits += o.async_waits;
  async_notified += o.async_notified;
  pending_seen += o.pending_seen;
  dummies += o.dummies;
  faults += o.faults;
  events += o.events;
  ping_to_fetch += o.ping_to_fetch;
  async_to_fetch += o.async_to_fetch;
  event_latency += o.event_latency;
  return *this;
}

namespace {

constexpr std::uint32_t npos = 0xFFFFFFFFu;
constexpr std::size_t kind_count = protocol::emsmdb::message_kind_count;
constexpr std::uint8_t slot_other = static_cast<std::uint8_t>(kind_count);  // cells index for "other"
constexpr std::uint8_t slot(message_kind k) { return static_cast<std::uint8_t>(k); }

inline std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

// A host: an IPv4 address (upper half zero) or an interned IPv6 address (bit 32 set).
using host_key = std::uint64_t;
constexpr host_key v6_bit = std::uint64_t{1} << 32;

struct flow_key {
  host_key lo_host = 0;
  host_key hi_host = 0;
  std::uint64_t ports_proto = 0;  // lo port << 24 | hi port << 8 | protocol
  std::uint64_t hash() const {
    return mix64(lo_host * 0x9E3779B97F4A7C15ull ^ (hi_host << 17 | hi_host >> 47) ^ ports_proto * 0xC2B2AE3D27D4EB4Full);
  }
  friend bool operator==(const flow_key&, const flow_key&) = default;
};

struct v6_key {
  std::uint64_t a = 0, b = 0;
  std::uint64_t hash() const { return mix64(a ^ (b * 0x9E3779B97F4A7C15ull)); }
  friend bool operator==(const v6_key&, const v6_key&) = default;
};

struct host_index_key {
  host_key host = 0;
  std::uint64_t hash() const { return mix64(host); }
  friend bool operator==(const host_index_key&, const host_index_key&) = default;
};

struct context_key {
  std::uint64_t a = 0, b = 0;
  std::uint64_t len = 0;
  static context_key of(bytes_view v) {
    context_key k;
    std::uint8_t buf[16] = {};
    if (!v.empty()) std::memcpy(buf, v.data(), std::min<std::size_t>(v.size(), 16));
    std::memcpy(&k.a, buf, 8);
    std::memcpy(&k.b, buf + 8, 8);
    k.len = v.size();
    return k;
  }
  std::uint64_t hash() const { return mix64(a ^ (b * 0x9E3779B97F4A7C15ull) ^ (len << 56)); }
  friend bool operator==(const context_key&, const context_key&) = default;
};

// An NDR context handle (attributes + GUID): links an AsyncEMSMDB connection to the
// EMSMDB session whose EcDoAsyncConnectEx returned it.
struct handle_key {
  std::uint64_t a = 0, b = 0;
  std::uint64_t attributes = 0;
  static handle_key of(const emsmdb::context_handle& h) {
    handle_key k;
    std::memcpy(&k.a, h.uuid.bytes.data(), 8);
    std::memcpy(&k.b, h.uuid.bytes.data() + 8, 8);
    k.attributes = h.attributes;
    return k;
  }
  std::uint64_t hash() const { return mix64(a ^ (b * 0x9E3779B97F4A7C15ull) ^ (attributes << 32)); }
  friend bool operator==(const handle_key&, const handle_key&) = default;
};

enum class flow_state : std::uint8_t { fresh, rpc, foreign };
using bound_iface = emsmdb_rules::interface;

// Control packets of a TCP flow, per side, kept for every flow (even before it is
// known to carry the notifier's DCE/RPC): setup, teardown, pure ACKs, unframed data.
enum pre_slot : std::uint8_t { pre_setup, pre_teardown, pre_ack, pre_other, pre_count };

struct tcp_side {
  std::uint32_t isn = 0;
  std::uint32_t fin_seq = 0;
  bool syn = false;
  bool fin = false;
  bool fin_acked = false;  // this side acknowledged the peer's FIN
};

struct flow_rec {
  flow_key key;
  std::array<std::uint16_t, 2> port{};
  std::uint8_t proto = 0;
  flow_state state = flow_state::fresh;
  bound_iface bound = bound_iface::unknown;
  std::int8_t client_side = -1;
  bool syn_ack_seen = false;
  bool handshake_done = false;
  bool closed = false;
  bool server_noted = false;
  std::uint32_t client = npos;
  std::uint32_t detail = npos;
  std::uint32_t unframed_segments = 0;
  std::uint64_t packets = 0;
  time_point first{};
  time_point last{};
  std::array<tcp_side, 2> tcp{};
  std::array<std::array<traffic_cell, 2>, pre_count> pre{};
};

struct half_stream {
  std::uint32_t next_seq = 0;
  bool seq_known = false;
  bool hunting = true;           // the next segment must begin a PDU
  std::uint32_t pend_packets = 0;  // segments whose first new byte lies in the PDU in progress
  std::uint64_t pend_overhead = 0;  // their IP + TCP header bytes
  std::uint8_t last_slot = slot_other;
  bool framed = false;           // framed a PDU before (a later restart is a resync)
  bool gap_known = false;        // the last gap: bytes [gap_from, gap_to) were never seen
  std::uint32_t gap_from = 0;
  std::uint32_t gap_to = 0;
  /// Cuts the stream into PDUs; holds the PDU in progress only when it spans segments.
  dcerpc::stream_framer framer{dcerpc::stream_framer::max_frag_length, dcerpc::stream_framer::header_rule::lenient};
};

struct call_entry {
  std::uint32_t call_id = 0;
  std::uint16_t opnum = 0;
  std::uint8_t slot = slot_other;
  std::uint8_t path = 0;
  bool used = false;
};

struct flow_detail {
  std::array<half_stream, 2> half;
  std::array<std::array<traffic_cell, 2>, kind_count + 1> cells{};  // [slot][side]
  std::array<call_entry, 8> calls{};
  std::uint8_t next_call = 0;
  stream_stats stats;
};

// One client session: an EMSMDB connection with its AsyncEMSMDB connection and
// UDP socket (or, for datagrams that name no session, a host). The report groups
// sessions by IP address, or shows them one by one (analyser_options::group_by).
struct client_rec {
  host_key host = 0;
  bool host_fallback = false;  // made for a host's datagrams, not for a connection
  std::optional<handle_key> orphan_acxh;  // an async connection whose EcDoAsyncConnectEx came later
  bool registered = false;
  bool async_connected = false;
  bool waited = false;
  // The fetch trigger: armed by a ping, an async-wait completion or a RopPending.
  bool armed = false;
  fetch_trigger reason = fetch_trigger::ping;
  std::uint8_t path = 0;
  time_point t0{};
  time_point deadline{};
  std::uint32_t ping_head = npos;  // pings waiting for their fetch (linked through ping_rec::next)
  std::uint32_t ping_tail = npos;
  // Polls.
  bool polled = false;
  time_point last_poll{};
  std::int64_t min_gap_ns = 0;
  std::optional<std::uint16_t> session_index;
  std::optional<std::uint32_t> polls_max_ms;
  // Counters.
  std::uint64_t polls = 0, wasted_polls = 0, fetches = 0, wasted_fetches = 0;
  std::array<std::uint64_t, fetch_trigger_count> by_trigger{};
  std::uint64_t pings = 0, pings_matched = 0, pings_answered = 0, keepalives = 0;
  std::uint64_t registrations = 0, async_connects = 0, async_waits = 0, async_notified = 0, pending_seen = 0;
  std::uint64_t dummies = 0, faults = 0, events = 0;
};

struct registration {
  std::uint32_t client = npos;
  protocol::push_context context;
  std::optional<ip_endpoint> callback;
  std::uint32_t next_same = npos;  // an older registration of the same context
};

struct ping_rec {
  ping_record r;
  std::uint32_t next = npos;
};

struct gap_sample {
  std::uint32_t client;
  std::int64_t gap_ns;
};

struct fetch_sample {
  std::uint32_t client;
  fetch_trigger trigger;
  std::int64_t latency_ns;
};

struct raw_event {
  std::uint64_t id;
  std::uint32_t client;
  std::uint8_t path;
  time_point seen;
  std::int64_t created_us;  // -1: no stamp
};

constexpr std::uint8_t path_poll = 0, path_push = 1, path_async = 2;

__extension__ typedef __int128 wide_int;  // exact arithmetic on stamps from any capture

// Capture timestamps are kept within +-2^62 ns (+-146 years around 1970) so that
// any difference of two of them, plus a fetch window, fits int64 nanoseconds.
constexpr std::int64_t ts_limit = (std::int64_t{1} << 62) - 1;
time_point clamp_ts(time_point t) {
  return time_point(duration(std::clamp<std::int64_t>(t.time_since_epoch().count(), -ts_limit, ts_limit)));
}


}  // namespace


// =====================================================================================
struct analyser::impl {
  analyser_options opt;
  std::uint64_t packets = 0;
  std::uint64_t ip_bytes = 0;
  std::optional<time_point> first;
  std::optional<time_point> last;
  skip_counts skipped;

  flat_index<flow_key> flow_index;
  std::vector<flow_rec> flows;
  std::vector<flow_detail> details;
  flat_index<v6_key> v6_index;
  std::vector<std::array<std::uint8_t, 16>> v6_hosts;
  flat_index<host_index_key> client_index;  // host -> its fallback session
  std::vector<client_rec> clients;          // sessions
  flat_index<handle_key> acxh_index;        // ACXH -> the session that received it
  flat_index<host_index_key> host_session_index;  // host -> its latest EMSMDB session
  flat_index<context_key> reg_index;
  std::vector<registration> regs;
  std::vector<ping_rec> pings;
  std::vector<gap_sample> gaps;
  std::vector<fetch_sample> fetch_samples;
  std::vector<raw_event> events;
  std::vector<std::pair<host_key, std::uint16_t>> notifier_tcp;  // in order of discovery
  flat_index<host_index_key> notifier_tcp_index;  // key: host, mixed with the port
  flat_index<host_index_key> notifier_host_index;
  std::vector<std::pair<host_key, std::uint16_t>> notifier_udp;
  std::optional<std::uint16_t> learned_udp_port;

  /// The family whose captures are read: names its kinds and modes, says where
  /// a message can begin. Today the registry's one family with a classifier.
  const engine::capture_classifier* classifier = registered_classifier();

  explicit impl(analyser_options o) : opt(std::move(o)) {}

  static const engine::capture_classifier* registered_classifier() {
    protocols::register_all();
    for (const engine::family& f : engine::registry::instance().families())
      if (f.capture) return f.capture;
    return nullptr;
  }

  // ---- hosts and endpoints -----------------------------------------------------------
  host_key intern_v6(const std::uint8_t* a) {
    v6_key k;
    std::memcpy(&k.a, a, 8);
    std::memcpy(&k.b, a + 8, 8);
    bool inserted = false;
    const std::uint32_t id = v6_index.find_or_insert(k, static_cast<std::uint32_t>(v6_hosts.size()), inserted);
    if (inserted) {
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), a, 16);
      v6_hosts.push_back(bytes);
    }
    return v6_bit | id;
  }
  host_key src_host(const packet& p) { return p.ip_version == 6 && p.src6 ? intern_v6(p.src6) : host_key{p.src4}; }
  host_key dst_host(const packet& p) { return p.ip_version == 6 && p.dst6 ? intern_v6(p.dst6) : host_key{p.dst4}; }

  ip_endpoint endpoint_of(host_key h, std::uint16_t port) const {
    ip_endpoint e;
    if (h & v6_bit) {
      const auto id = static_cast<std::uint32_t>(h);
      if (id < v6_hosts.size()) e.address = v6_hosts[id];
      e.is_v6 = true;
    } else {
      const auto a = static_cast<std::uint32_t>(h);
      e.address[0] = static_cast<std::uint8_t>(a >> 24);
      e.address[1] = static_cast<std::uint8_t>(a >> 16);
      e.address[2] = static_cast<std::uint8_t>(a >> 8);
      e.address[3] = static_cast<std::uint8_t>(a);
    }
    e.port = port;
    return e;
  }

  // Hosts use 33 bits of host_key: the port goes above them.
  static host_index_key endpoint_key(host_key h, std::uint16_t port) { return {h | (std::uint64_t{port} << 40)}; }
  bool is_notifier_host(host_key h) const { return notifier_host_index.find(host_index_key{h}) != npos; }
  bool is_notifier_tcp(host_key h, std::uint16_t port) const {
    if (opt.server_port) return port == *opt.server_port;
    return notifier_tcp_index.find(endpoint_key(h, port)) != npos;
  }
  void note_notifier_tcp(host_key h, std::uint16_t port) {
    bool inserted = false;
    notifier_tcp_index.find_or_insert(endpoint_key(h, port), static_cast<std::uint32_t>(notifier_tcp.size()), inserted);
    if (inserted) notifier_tcp.emplace_back(h, port);
    notifier_host_index.find_or_insert(host_index_key{h}, 0, inserted);
  }
  void note_notifier_udp(host_key h, std::uint16_t port) {
    if (std::find(notifier_udp.begin(), notifier_udp.end(), std::pair{h, port}) == notifier_udp.end())
      notifier_udp.emplace_back(h, port);
    if (!learned_udp_port) learned_udp_port = port;
  }

  /// The session for datagrams of host `h` that name no session.
  std::uint32_t client_for(host_key h) {
    bool inserted = false;
    const std::uint32_t ci =
        client_index.find_or_insert(host_index_key{h}, static_cast<std::uint32_t>(clients.size()), inserted);
    if (inserted) {
      clients.emplace_back();
      clients.back().host = h;
      clients.back().host_fallback = true;
    }
    return ci;
  }

  /// The session of a TCP flow, made when first needed: each EMSMDB connection is one.
  std::uint32_t session_of(flow_rec& f) {
    if (f.client == npos) {
      f.client = static_cast<std::uint32_t>(clients.size());
      clients.emplace_back();
      clients.back().host = side_host(f, f.client_side < 0 ? 0 : f.client_side);
      if (f.bound != bound_iface::async_emsmdb) host_session_index.assign(host_index_key{clients.back().host}, f.client);
    }
    return f.client;
  }

  /// For a datagram that names no session: the latest EMSMDB session of the host,
  /// else the host's fallback session.
  std::uint32_t session_on_host(host_key h) {
    const std::uint32_t ci = host_session_index.find(host_index_key{h});
    return ci != npos ? ci : client_for(h);
  }

  // ---- flows ---------------------------------------------------------------------------
  /// Where a packet's flow is: its key, hash and side, computed once (and early,
  /// to prefetch), and the flow's index once known.
  struct flow_hint {
    bool keyed = false;
    int side = 0;  // 0 when the packet's source is the flow's lower endpoint
    host_key sh = 0;
    host_key dh = 0;
    flow_key key;
    std::uint64_t hash = 0;
    std::uint32_t flow = npos;
  };

  void make_hint(const packet& p, flow_hint& h) {
    h.sh = src_host(p);
    h.dh = dst_host(p);
    const bool src_low = h.sh < h.dh || (h.sh == h.dh && p.src_port <= p.dst_port);
    h.side = src_low ? 0 : 1;
    h.key.lo_host = src_low ? h.sh : h.dh;
    h.key.hi_host = src_low ? h.dh : h.sh;
    const std::uint16_t lo_port = src_low ? p.src_port : p.dst_port;
    const std::uint16_t hi_port = src_low ? p.dst_port : p.src_port;
    h.key.ports_proto = (std::uint64_t{lo_port} << 24) | (std::uint64_t{hi_port} << 8) | p.protocol;
    h.hash = h.key.hash();
    h.flow = npos;
    h.keyed = true;
  }

  /// The flow of `p` (created if new, npos if the table is full).
  std::uint32_t flow_for(const packet& p, flow_hint& h) {
    if (h.flow != npos) return h.flow;
    const flow_key& k = h.key;
    std::uint32_t fi = flat_index<flow_key>::npos;
    if (flows.size() >= opt.max_flows) {
      fi = flow_index.find(k, h.hash);
      if (fi == flat_index<flow_key>::npos) ++skipped.flow_table_full;
      return h.flow = fi;
    }
    bool inserted = false;
    fi = flow_index.find_or_insert(k, h.hash, static_cast<std::uint32_t>(flows.size()), inserted);
    if (inserted) {
      const std::uint16_t lo_port = static_cast<std::uint16_t>(k.ports_proto >> 24);
      const std::uint16_t hi_port = static_cast<std::uint16_t>(k.ports_proto >> 8);
      flow_rec& f = flows.emplace_back();
      f.key = k;
      f.port = {lo_port, hi_port};
      f.proto = p.protocol;
      f.first = p.ts;
      if (p.protocol == ip_proto_tcp) {
        // A known notifier endpoint tells the roles before any SYN or PDU does.
        const bool lo_server = is_notifier_tcp(k.lo_host, lo_port);
        const bool hi_server = is_notifier_tcp(k.hi_host, hi_port);
        if (lo_server != hi_server) f.client_side = lo_server ? 1 : 0;
      }
    }
    return h.flow = fi;
  }

  flow_detail& detail_of(flow_rec& f) {
    if (f.detail == npos) {
      f.detail = static_cast<std::uint32_t>(details.size());
      flow_detail& d = details.emplace_back();
      for (int s = 0; s < 2; ++s)
        if (f.tcp[s].syn) {
          d.half[s].next_seq = f.tcp[s].isn + 1;
          d.half[s].seq_known = true;
        }
    }
    return details[f.detail];
  }

  host_key side_host(const flow_rec& f, int side) const { return side == 0 ? f.key.lo_host : f.key.hi_host; }

  // ---- entry ---------------------------------------------------------------------------
  void handle(const packet& p, flow_hint& h) {
    ip_bytes += p.ip_bytes;
    if (!first) first = p.ts;
    last = p.ts;
    if (p.protocol != ip_proto_tcp && p.protocol != ip_proto_udp) {
      ++skipped.other_protocol;
      return;
    }
    if (!h.keyed) make_hint(p, h);
    if (p.protocol == ip_proto_tcp) return on_tcp(p, h);
    return on_udp(p, h);
  }

  void on_skipped(frame_verdict v) {
    switch (v) {
      case frame_verdict::ok: break;
      case frame_verdict::short_link: ++skipped.short_link; break;
      case frame_verdict::not_ip: ++skipped.not_ip; break;
      case frame_verdict::bad_ip: ++skipped.bad_ip; break;
      case frame_verdict::ip_fragment: ++skipped.ip_fragments; break;
      case frame_verdict::other_protocol: ++skipped.other_protocol; break;
      case frame_verdict::bad_l4: ++skipped.bad_l4; break;
    }
  }

  // ---- TCP -----------------------------------------------------------------------------
  void on_tcp(const packet& p, flow_hint& hint) {
    if (opt.server_port && p.src_port != *opt.server_port && p.dst_port != *opt.server_port) {
      ++skipped.unrelated_tcp;
      return;
    }
    const int side = hint.side;
    const std::uint32_t fi = flow_for(p, hint);
    if (fi == flat_index<flow_key>::npos) return;
    flow_rec& f = flows[fi];
    ++f.packets;
    f.last = p.ts;
    if (f.state == flow_state::foreign) {
      // Not the notifier's DCE/RPC: counted, not parsed. (Skipped in the report unless
      // --server-port says the flow is the notifier's, then its bytes are "other".)
      f.pre[pre_other][side] += traffic_cell{0, p.payload_length, p.ip_bytes, 1};
      return;
    }

    const std::uint8_t flags = p.tcp_flags;
    const traffic_cell bare{0, 0, p.ip_bytes, 1};
    tcp_side& me = f.tcp[side];
    const tcp_side& peer = f.tcp[1 - side];

    if (flags & tcp_flag::rst) {
      f.pre[pre_teardown][side] += bare;
      f.closed = true;
      return;
    }
    if (flags & tcp_flag::syn) {
      traffic_cell c = bare;
      if (!(flags & tcp_flag::ack)) {
        if (!me.syn) c.messages = 1;  // a connection set up: one message, as nudge's wire model counts it
        if (f.client_side < 0) f.client_side = static_cast<std::int8_t>(side);
      } else {
        f.syn_ack_seen = true;
        if (f.client_side < 0) f.client_side = static_cast<std::int8_t>(1 - side);
      }
      me.syn = true;
      me.isn = p.seq;
      f.pre[pre_setup][side] += c;
      if (f.detail != npos) {
        half_stream& h = details[f.detail].half[side];
        if (!h.seq_known) {
          h.next_seq = p.seq + 1;
          h.seq_known = true;
        }
      }
      return;
    }
    bool handshake_ack = false;
    if (!f.handshake_done && side == f.client_side && f.syn_ack_seen) {
      // The client's first packet after the SYN-ACK: the handshake's ACK (alone, or riding on data).
      f.handshake_done = true;
      handshake_ack = p.payload_length == 0 && !(flags & tcp_flag::fin) && peer.syn && p.ack == peer.isn + 1;
    }

    if (p.payload_length == 0) {
      if (flags & tcp_flag::fin) {
        me.fin = true;
        me.fin_seq = p.seq;
        f.closed = true;
        f.pre[pre_teardown][side] += bare;
        return;
      }
      if (handshake_ack) {
        f.pre[pre_setup][side] += bare;
        return;
      }
      if (peer.fin && !me.fin_acked && p.ack == peer.fin_seq + 1) {
        me.fin_acked = true;
        f.pre[pre_teardown][side] += bare;
        return;
      }
      f.pre[pre_ack][side] += bare;
      return;
    }

    if (flags & tcp_flag::fin) {
      me.fin = true;
      me.fin_seq = p.seq + p.payload_length;
      f.closed = true;
    }
    if (f.detail == npos) {
      // The first data: does it look like the notifier's DCE/RPC?
      if (!dcerpc::plausible_common_header(p.payload)) {
        f.pre[pre_other][side] += traffic_cell{0, p.payload_length, p.ip_bytes, 1};
        if (++f.unframed_segments >= 4) f.state = flow_state::foreign;
        return;
      }
    }
    flow_detail& d = detail_of(f);
    process_data(f, d, side, p);
  }

  void lose_partial(flow_detail& d, int side) {
    half_stream& h = d.half[side];
    if (h.framer.pending() != 0 || h.pend_packets != 0) {
      const std::uint64_t n = h.framer.pending();
      d.cells[slot_other][side] += traffic_cell{0, n, n + h.pend_overhead, h.pend_packets};
    }
    h.framer.clear();
    h.pend_packets = 0;
    h.pend_overhead = 0;
  }

  void process_data(flow_rec& f, flow_detail& d, int side, const packet& p) {
    half_stream& h = d.half[side];
    const std::uint32_t len = p.payload_length;
    if (!h.seq_known) {
      h.next_seq = p.seq;
      h.seq_known = true;
    }
    const auto delta = static_cast<std::int32_t>(p.seq - h.next_seq);
    std::uint32_t skip = 0;
    if (delta > 0) {
      // Bytes before this segment are missing (lost in the capture or reordered):
      // drop the PDU in progress and look for a PDU start again.
      ++d.stats.gaps;
      lose_partial(d, side);
      h.hunting = true;
      h.gap_known = true;
      h.gap_from = h.next_seq;
      h.gap_to = p.seq;
      h.next_seq = p.seq;
    } else if (delta < 0) {
      const auto behind = static_cast<std::uint64_t>(-static_cast<std::int64_t>(delta));
      if (behind >= len) {
        if (h.gap_known && static_cast<std::int32_t>(p.seq - h.gap_from) >= 0 &&
            static_cast<std::int32_t>(p.seq - h.gap_to) < 0) {
          // Bytes a gap skipped, arriving late: real payload, but framing has moved on.
          ++d.stats.reordered;
          d.cells[slot_other][side] += traffic_cell{0, len, p.ip_bytes, 1};
          return;
        }
        ++d.stats.retransmissions;
        d.cells[h.last_slot][side] += traffic_cell{0, 0, p.ip_bytes, 1};
        return;
      }
      skip = static_cast<std::uint32_t>(behind);
      ++d.stats.partial_overlaps;
    }
    const std::uint32_t fresh = len - skip;
    h.next_seq += fresh;
    const std::uint64_t overhead = p.ip_bytes >= fresh ? p.ip_bytes - fresh : 0;
    if (p.payload.size() < len) {
      ++d.stats.truncated_segments;
      lose_partial(d, side);
      h.hunting = true;
      d.cells[slot_other][side] += traffic_cell{0, fresh, p.ip_bytes, 1};
      return;
    }
    bytes_view data = p.payload.subspan(skip, fresh);
    if (h.hunting) {
      if (!classifier->begins_message(data)) {
        ++d.stats.unframed_segments;
        d.cells[slot_other][side] += traffic_cell{0, fresh, p.ip_bytes, 1};
        if (f.state != flow_state::rpc && ++f.unframed_segments >= 4) f.state = flow_state::foreign;
        return;
      }
      if (h.framed) ++d.stats.resyncs;
      h.hunting = false;
    }
    ++h.pend_packets;
    h.pend_overhead += overhead;
    feed(f, d, side, data, p.ts);
  }

  void malformed(flow_detail& d, int side, std::size_t dropped) {
    half_stream& h = d.half[side];
    ++d.stats.malformed_pdus;
    const std::uint64_t n = dropped;
    d.cells[slot_other][side] += traffic_cell{0, n, n + h.pend_overhead, h.pend_packets};
    h.framer.clear();
    h.pend_packets = 0;
    h.pend_overhead = 0;
    h.hunting = true;
  }

  void feed(flow_rec& f, flow_detail& d, int side, bytes_view data, time_point ts) {
    half_stream& h = d.half[side];
    h.framer.append(data);  // whole PDUs are framed straight from the segment
    while (true) {
      const auto pdu = h.framer.next();
      if (pdu.outcome == dcerpc::stream_framer::status::need_more) return;
      if (pdu.outcome == dcerpc::stream_framer::status::malformed) return malformed(d, side, h.framer.pending());
      complete(f, d, side, pdu.pdu, ts);
    }
  }

  // ---- PDUs ----------------------------------------------------------------------------
  static call_entry* find_call(flow_detail& d, std::uint32_t call_id) {
    for (auto& c : d.calls)
      if (c.used && c.call_id == call_id) return &c;
    return nullptr;
  }
  static void remember_call(flow_detail& d, std::uint32_t call_id, std::uint16_t opnum, std::uint8_t s,
                            std::uint8_t path) {
    call_entry* e = find_call(d, call_id);
    if (!e) {
      e = &d.calls[d.next_call];
      d.next_call = static_cast<std::uint8_t>((d.next_call + 1) % d.calls.size());
    }
    *e = call_entry{call_id, opnum, s, path, true};
  }

  void complete(flow_rec& f, flow_detail& d, int side, bytes_view pdu, time_point ts) {
    half_stream& h = d.half[side];
    ++d.stats.pdus;
    f.state = flow_state::rpc;
    const std::uint8_t ptype = pdu[2];
    const std::uint8_t pflags = pdu[3];
    const std::uint16_t auth = le16(pdu.data() + 10);
    const std::uint32_t call_id = le32(pdu.data() + 12);
    if (f.client_side < 0) {
      f.client_side = static_cast<std::int8_t>(emsmdb_rules::sent_by_client(ptype) ? side : 1 - side);
    }
    const bool from_client = side == f.client_side;
    if (!from_client && !f.server_noted) {
      f.server_noted = true;
      note_notifier_tcp(side_host(f, side), f.port[side]);
    }
    const bool single = (pflags & (dcerpc::pfc::first_frag | dcerpc::pfc::last_frag)) ==
                        (dcerpc::pfc::first_frag | dcerpc::pfc::last_frag);

    const auto by_type = emsmdb_rules::kind_of_pdu_type(ptype);
    std::uint8_t s = by_type ? slot(*by_type) : slot_other;
    switch (ptype) {
      case 11:  // bind
      case 14:  // alter_context
        if (from_client) {
          const bound_iface b = emsmdb_rules::interface_of_bind(pdu);
          if (b != bound_iface::unknown) f.bound = b;
        }
        break;
      case 13:  // bind_nak
        ++clients[session_of(f)].faults;  // (session_of runs before the vector is indexed)
        break;
      case 3: {  // fault
        ++clients[session_of(f)].faults;
        if (call_entry* e = find_call(d, call_id)) e->used = false;
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
        s = classify_request(f, opnum, stub, decodable, ts, call_id, (pflags & dcerpc::pfc::first_frag) != 0, path);
        remember_call(d, call_id, opnum, s, path);
        break;
      }
      case 2: {  // response
        call_entry* e = find_call(d, call_id);
        if (!e) break;
        s = e->slot;
        const call_entry call = *e;
        if (pflags & dcerpc::pfc::last_frag) e->used = false;
        if (!from_client && single && auth == 0 && pdu.size() >= dcerpc::response_header_size)
          on_response(session_of(f), call, pdu.subspan(dcerpc::response_header_size), ts);
        break;
      }
      default: break;  // shutdown, cancel, orphaned: no nudge kind
    }
    d.cells[s][side] += traffic_cell{1, pdu.size(), pdu.size() + h.pend_overhead, h.pend_packets};
    h.pend_packets = 0;
    h.pend_overhead = 0;
    h.last_slot = s;
    h.framed = true;
  }

  std::uint8_t classify_request(flow_rec& f, std::uint16_t opnum, bytes_view stub, bool decodable, time_point ts,
                                std::uint32_t call_id, bool first_fragment, std::uint8_t& path) {
    if (f.bound == bound_iface::other) return slot_other;
    if (f.bound == bound_iface::async_emsmdb || (f.bound == bound_iface::unknown && opnum == 0)) {
      // AsyncEMSMDB has one method; EMSMDB's opnum 0 (EcDoConnect) is long obsolete.
      if (opnum != protocol::opnum::do_async_wait_ex) return slot_other;
      if (f.client == npos) {
        // The wait's ACXH names the session whose EcDoAsyncConnectEx returned it.
        std::optional<handle_key> acxh;
        if (decodable)
          if (auto w = emsmdb::decode_async_wait_request(stub); w.complete()) acxh = handle_key::of(w.value.acxh);
        const std::uint32_t owner = acxh ? acxh_index.find(*acxh) : npos;
        if (owner != npos) {
          f.client = owner;
        } else {
          session_of(f);
          if (acxh) clients[f.client].orphan_acxh = acxh;
        }
      }
      client_rec& c = clients[f.client];
      if (first_fragment) {
        c.waited = true;
        ++c.async_waits;
      }
      return slot(message_kind::async_wait);
    }
    const std::uint32_t ci = session_of(f);
    client_rec& c = clients[ci];
    switch (opnum) {
      case protocol::opnum::register_push_notification:
        if (first_fragment) {
          c.registered = true;
          ++c.registrations;
        }
        if (decodable) {
          auto r = emsmdb::decode_register_push_request(stub);
          if (r.complete() && r.value.context.size() <= protocol::max_push_context) {
            std::optional<ip_endpoint> cb;
            if (auto a = protocol::decode_windows_sockaddr(r.value.callback_address); a.complete()) cb = a.value;
            add_registration(ci, r.value.context, cb);
          }
        }
        return slot(message_kind::register_push);
      case protocol::opnum::dummy_rpc:
        if (first_fragment) ++c.dummies;
        return slot(message_kind::dummy);
      case protocol::opnum::do_connect_ex: return slot(message_kind::connect);
      case protocol::opnum::do_disconnect: return slot(message_kind::connect);  // as the notifier counts it
      case protocol::opnum::do_async_connect_ex:
        if (first_fragment) {
          c.async_connected = true;
          ++c.async_connects;
        }
        return slot(message_kind::async_connect);
      case protocol::opnum::do_rpc_ext2: {
        if (!first_fragment) return c.armed ? slot(message_kind::fetch) : slot(message_kind::poll);
        if (c.armed && ts > c.deadline) expire(c);
        if (c.armed) {
          ++c.fetches;
          ++c.by_trigger[static_cast<std::size_t>(c.reason)];
          fetch_samples.push_back({ci, c.reason, (ts - c.t0).count()});
          for (std::uint32_t pi = c.ping_head; pi != npos; pi = pings[pi].next) {
            pings[pi].r.fetch_at = ts;
            pings[pi].r.fetch_call_id = call_id;
            ++c.pings_answered;
          }
          c.ping_head = c.ping_tail = npos;
          path = c.path;
          c.armed = false;
          return slot(message_kind::fetch);
        }
        ++c.polls;
        if (c.polled) {
          const std::int64_t gap = (ts - c.last_poll).count();
          gaps.push_back({ci, gap});
          if (gap > 0 && (c.min_gap_ns == 0 || gap < c.min_gap_ns)) c.min_gap_ns = gap;
        }
        c.polled = true;
        c.last_poll = ts;
        path = path_poll;
        return slot(message_kind::poll);
      }
      default: return slot_other;
    }
  }

  void expire(client_rec& c) {
    c.armed = false;
    c.ping_head = c.ping_tail = npos;  // those pings stay without a fetch
  }

  void arm(client_rec& c, fetch_trigger why, std::uint8_t path, time_point ts) {
    if (c.armed && ts > c.deadline) expire(c);
    if (c.armed) return;  // the earliest trigger stands
    c.armed = true;
    c.reason = why;
    c.path = path;
    c.t0 = ts;
    c.deadline = ts + opt.fetch_window;
    // "Before the next poll timer": once the client's polling rhythm is known, a
    // trigger does not outlive the next poll's earliest time (but lasts at least 1 s,
    // so a fetch right after its trigger is never taken for a poll).
    if (c.polled && c.min_gap_ns > 0) {
      // Timestamps are clamped to +-2^62 ns and gaps are differences of them: no overflow here.
      const time_point next_poll = c.last_poll + duration(std::min(c.min_gap_ns, std::int64_t{1} << 62));
      if (next_poll > ts) c.deadline = std::min(c.deadline, std::max(next_poll, ts + std::chrono::seconds(1)));
    }
  }

  struct rop_collector final : rop::rop_visitor {
    impl& self;
    std::uint32_t client;
    std::uint8_t path;
    time_point seen;
    std::optional<std::uint16_t> session;
    std::size_t found = 0;
    bool pending = false;
    rop_collector(impl& s, std::uint32_t c, std::uint8_t p, time_point t, std::optional<std::uint16_t> idx)
        : self(s), client(c), path(p), seen(t), session(idx) {}
    void on_new_mail(const rop::new_mail_notification& n) override {
      ++found;
      const std::int64_t us = to_micros(n.event.created_at);
      self.events.push_back({n.event.id, client, path, seen, us == 0 ? -1 : us});
    }
    void on_pending(std::uint16_t idx) override {
      if (!session || *session == idx) pending = true;
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
    client_rec& c = clients[ci];
    if (call.slot == slot(message_kind::poll) || call.slot == slot(message_kind::fetch)) {
      if (empty_ext2_response(stub)) {  // the common case, without the full NDR decode
        ++(call.slot == slot(message_kind::poll) ? c.wasted_polls : c.wasted_fetches);
        return;
      }
      auto r = emsmdb::decode_rpc_ext2_response(stub);
      if (!r.complete() || r.value.return_code != protocol::ec::success) return;
      rop_collector col(*this, ci, call.path, ts, c.session_index);
      (void)rop::decode_response(r.value.rgb_out, col);  // what decoded before a malformed ROP still counts
      if (!col.pending) pending_after_rop_size(r.value.rgb_out, col);
      c.events += col.found;
      if (col.found == 0) ++(call.slot == slot(message_kind::poll) ? c.wasted_polls : c.wasted_fetches);
      if (col.pending) {
        ++c.pending_seen;
        arm(c, fetch_trigger::pending, call.path, ts);
      }
    } else if (call.slot == slot(message_kind::async_wait)) {
      auto r = emsmdb::decode_async_wait_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success &&
          (r.value.flags_out & protocol::notification_pending)) {
        ++c.async_notified;
        arm(c, fetch_trigger::async_wait, path_async, ts);
      }
    } else if (call.slot == slot(message_kind::async_connect)) {
      auto r = emsmdb::decode_async_connect_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success && !r.value.acxh.is_null())
        acxh_index.assign(handle_key::of(r.value.acxh), ci);
    } else if (call.slot == slot(message_kind::connect)) {
      auto r = emsmdb::decode_connect_ex_response(stub);
      if (r.complete() && r.value.return_code == protocol::ec::success) {
        c.session_index = r.value.session_index;
        c.polls_max_ms = r.value.polls_max_ms;
      }
    }
  }

  // ---- registrations -------------------------------------------------------------------
  void add_registration(std::uint32_t ci, bytes_view context, const std::optional<ip_endpoint>& cb) {
    const context_key k = context_key::of(context);
    const std::uint32_t head = reg_index.find(k);
    // The same client registering the same context again (a reconnect): update it.
    for (std::uint32_t r = head, hops = 0; r != npos && hops < 64; r = regs[r].next_same, ++hops)
      if (regs[r].client == ci) {
        regs[r].callback = cb;
        return;
      }
    registration& reg = regs.emplace_back();
    reg.client = ci;
    reg.context.assign(context);
    reg.callback = cb;
    reg.next_same = head;
    reg_index.assign(k, static_cast<std::uint32_t>(regs.size() - 1));
  }

  /// The registration a datagram with payload `context` sent to (host, port) answers:
  /// the one whose callback address is that endpoint, else one of a client on that
  /// host, else the latest one of that context. npos if none.
  std::uint32_t find_registration(bytes_view context, host_key host, std::uint16_t port) const {
    const std::uint32_t head = reg_index.find(context_key::of(context));
    if (head == npos) return npos;
    const ip_endpoint to = endpoint_of(host, port);
    std::uint32_t on_host = npos;
    for (std::uint32_t r = head, hops = 0; r != npos && hops < 64; r = regs[r].next_same, ++hops) {
      if (regs[r].callback && *regs[r].callback == to) return r;
      if (on_host == npos && clients[regs[r].client].host == host) on_host = r;
    }
    return on_host != npos ? on_host : head;
  }

  // ---- UDP -----------------------------------------------------------------------------
  void on_udp(const packet& p, flow_hint& hint) {
    if (p.payload.size() < p.payload_length) {
      ++skipped.unrelated_udp;  // cut by the snaplen: cannot be compared with a context
      return;
    }
    const bytes_view pl = p.payload;
    const host_key sh = hint.sh;
    const host_key dh = hint.dh;
    constexpr std::size_t cookie_header = protocol::cookie_magic.size() + 4;
    if (pl.size() >= cookie_header && pl.size() <= cookie_header + protocol::max_push_context &&
        std::memcmp(pl.data(), protocol::cookie_magic.data(), protocol::cookie_magic.size()) == 0) {
      const bytes_view ctx = pl.subspan(cookie_header);
      const std::uint32_t r = find_registration(ctx, sh, p.src_port);
      const std::uint32_t ci = r != npos ? regs[r].client : session_on_host(sh);
      note_notifier_udp(dh, p.dst_port);
      count_datagram(p, hint, ci, /*client_is_src=*/true, message_kind::keepalive);
      ++clients[ci].keepalives;
      return;
    }
    if (pl.size() > protocol::max_push_context) {
      ++skipped.unrelated_udp;
      return;
    }
    const bool from_port = opt.udp_port ? p.src_port == *opt.udp_port
                                        : (learned_udp_port && p.src_port == *learned_udp_port && is_notifier_host(sh));
    const bool from_host = is_notifier_host(sh);
    std::uint32_t r = npos;
    if (from_host || from_port) r = find_registration(pl, dh, p.dst_port);
    std::uint32_t ci = npos;
    if (r != npos) {
      ci = regs[r].client;
      note_notifier_udp(sh, p.src_port);
    } else if (from_port) {
      ci = session_on_host(dh);
    } else {
      ++skipped.unrelated_udp;
      return;
    }
    count_datagram(p, hint, ci, /*client_is_src=*/false, message_kind::ping);
    client_rec& c = clients[ci];
    ++c.pings;
    if (r != npos) ++c.pings_matched;
    const auto pi = static_cast<std::uint32_t>(pings.size());
    ping_rec& pr = pings.emplace_back();
    pr.r.at = p.ts;
    pr.r.client = ci;
    pr.r.from = endpoint_of(sh, p.src_port);
    pr.r.to = endpoint_of(dh, p.dst_port);
    pr.r.payload.assign(pl);
    pr.r.matched = r != npos;
    // A datagram that matches nothing the client registered is ignored by it (forged or stale).
    if (r != npos || !c.registered) {
      arm(c, fetch_trigger::ping, path_push, p.ts);
      if (c.armed) {
        if (c.ping_tail == npos) c.ping_head = pi;
        else pings[c.ping_tail].next = pi;
        c.ping_tail = pi;
      }
    }
  }

  void count_datagram(const packet& p, flow_hint& hint, std::uint32_t ci, bool client_is_src, message_kind k) {
    const int side = hint.side;
    const std::uint32_t fi = flow_for(p, hint);
    if (fi == flat_index<flow_key>::npos) return;
    flow_rec& f = flows[fi];
    if (f.client == npos) {
      f.client = ci;
      f.client_side = static_cast<std::int8_t>(client_is_src ? side : 1 - side);
      f.state = flow_state::rpc;
    }
    ++f.packets;
    f.last = p.ts;
    flow_detail& d = detail_of(f);
    d.cells[slot(k)][side] += traffic_cell{1, p.payload_length, p.ip_bytes, 1};
  }

  // ---- the prefetch pipeline ----------------------------------------------------------
  // Frames wait in a small ring before they are analysed, so the memory their
  // processing will touch (flow index slot, flow record, stream state, client) is
  // requested a few frames ahead: with thousands of clients that state lives in
  // L3 or DRAM, and waiting for it one packet at a time is most of the cost.
  static constexpr std::size_t ring_size = 16;
  static constexpr std::uint64_t age_flow = 6;    // look the flow up, prefetch its record
  static constexpr std::uint64_t age_detail = 11;  // prefetch its stream state and client
  struct queued {
    frame_verdict verdict = frame_verdict::ok;
    time_point ts{};
    packet p;
    flow_hint hint;
    std::vector<std::uint8_t> bytes;  // a copy of the frame: libpcap reuses its buffer
  };
  std::array<queued, ring_size> ring;
  std::uint64_t ring_in = 0;
  std::uint64_t ring_out = 0;

  void enqueue(int dlt, time_point ts, bytes_view frame, std::uint32_t wire) {
    ts = clamp_ts(ts);
    queued& q = ring[ring_in % ring_size];
    q.bytes.assign(frame.begin(), frame.end());
    q.ts = ts;
    q.hint = flow_hint{};
    q.verdict = decode_frame(dlt, q.bytes, wire, ts, q.p);
    if (q.verdict == frame_verdict::ok && (q.p.protocol == ip_proto_tcp || q.p.protocol == ip_proto_udp)) {
      make_hint(q.p, q.hint);
      flow_index.prefetch(q.hint.hash);
    }
    const std::uint64_t newest = ring_in++;
    if (newest >= ring_out + age_flow) prefetch_flow(ring[(newest - age_flow) % ring_size]);
    if (newest >= ring_out + age_detail) prefetch_detail(ring[(newest - age_detail) % ring_size]);
    if (ring_in - ring_out == ring_size) process_oldest();
  }

  void prefetch_flow(queued& q) {
    if (!q.hint.keyed) return;
    const std::uint32_t fi = flow_index.find(q.hint.key, q.hint.hash);
    if (fi == flat_index<flow_key>::npos) return;
    q.hint.flow = fi;
    const auto* f = reinterpret_cast<const char*>(&flows[fi]);
    __builtin_prefetch(f);
    __builtin_prefetch(f + 64);
    __builtin_prefetch(&flows[fi].pre[pre_ack][static_cast<std::size_t>(q.hint.side)]);
  }

  void prefetch_detail(const queued& q) {
    if (q.hint.flow == npos) return;
    const flow_rec& f = flows[q.hint.flow];
    if (f.detail != npos) {
      const flow_detail& d = details[f.detail];
      __builtin_prefetch(&d.half[static_cast<std::size_t>(q.hint.side)]);
      __builtin_prefetch(&d.calls);
    }
    if (f.client != npos) __builtin_prefetch(&clients[f.client]);
  }

  void process_oldest() {
    queued& q = ring[ring_out++ % ring_size];
    if (q.verdict == frame_verdict::ok) {
      handle(q.p, q.hint);
    } else {
      if (!first) first = q.ts;
      last = q.ts;
      on_skipped(q.verdict);
    }
  }

  void flush() {
    while (ring_out < ring_in) process_oldest();
  }

  analysis finish() const;
};

// =====================================================================================
namespace {

double median_seconds(std::vector<std::int64_t>& v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double mid = n % 2 ? static_cast<double>(v[n / 2])
                           : (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2.0;
  return mid / 1e9;
}

/// Reorders `v` so the items of each client are together, in client order and,
/// within a client, in their original order (a counting sort: linear).
template <class T, class ClientOf>
void group_by_client(std::vector<T>& v, std::size_t clients, ClientOf client_of) {
  std::vector<std::size_t> start(clients + 1, 0);
  for (const T& x : v) ++start[client_of(x) + 1];
  for (std::size_t i = 1; i <= clients; ++i) start[i] += start[i - 1];
  std::vector<T> out(v.size());
  for (const T& x : v) out[start[client_of(x)]++] = x;
  v = std::move(out);
}

client_mode mode_of(const client_rec& c) {
  return emsmdb_rules::mode_of(c.async_connected || c.waited, c.registered);
}

}  // namespace

analysis analyser::impl::finish() const {
  analysis a;
  a.names = classifier;
  a.packets = packets;
  a.ip_bytes = ip_bytes;
  a.first = first;
  a.last = last;
  a.skipped = skipped;
  a.server_port_given = opt.server_port.has_value();
  a.udp_port_given = opt.udp_port.has_value();
  a.fetch_window_s = to_seconds(opt.fetch_window);
  for (const auto& [h, port] : notifier_tcp) a.notifier_tcp.push_back(endpoint_of(h, port));
  for (const auto& [h, port] : notifier_udp) a.notifier_udp.push_back(endpoint_of(h, port));

  // Sessions, in local copies: flows to the notifier that carried no PDU (opened,
  // then nothing) get a session of their own here.
  std::vector<client_rec> cls = clients;
  struct span {
    bool main = false;  // has an EMSMDB (not AsyncEMSMDB) connection
    time_point first{}, last{};
    std::optional<ip_endpoint> endpoint;  // its client endpoint
  };
  std::vector<span> spans(cls.size());
  std::vector<std::vector<flow_report>> flows_of(cls.size());
  for (const flow_rec& f : flows) {
    const bool tcp = f.proto == ip_proto_tcp;
    if (tcp) {
      bool include = f.state == flow_state::rpc;
      if (!include && f.client_side >= 0) {
        const int server = 1 - f.client_side;
        include = is_notifier_tcp(server == 0 ? f.key.lo_host : f.key.hi_host, f.port[static_cast<std::size_t>(server)]);
      }
      if (!include) {
        a.skipped.unrelated_tcp += f.packets;
        continue;
      }
    }
    const int cs = f.client_side < 0 ? 0 : f.client_side;
    const host_key client_host = cs == 0 ? f.key.lo_host : f.key.hi_host;
    const host_key server_host = cs == 0 ? f.key.hi_host : f.key.lo_host;
    std::uint32_t ci = f.client;
    if (ci == npos) {
      ci = static_cast<std::uint32_t>(cls.size());
      cls.emplace_back();
      cls.back().host = client_host;
    }
    if (ci >= flows_of.size()) {
      flows_of.resize(ci + 1);
      spans.resize(ci + 1);
    }

    flow_report r;
    r.tcp = tcp;
    r.client = endpoint_of(client_host, f.port[static_cast<std::size_t>(cs)]);
    r.server = endpoint_of(server_host, f.port[static_cast<std::size_t>(1 - cs)]);
    if (!tcp) r.interface = "udp";
    else r.interface = emsmdb_rules::name(f.bound);
    r.packets = f.packets;
    r.first = f.first;
    r.last = f.last;
    r.saw_syn = f.tcp[0].syn || f.tcp[1].syn;
    r.saw_close = f.closed;
    for (int s = 0; s < 2; ++s) {
      const auto si = static_cast<std::size_t>(s);
      const direction dir = s == cs ? direction::to_server : direction::to_client;
      const auto di = static_cast<std::size_t>(dir);
      traffic_cell setup = f.pre[pre_setup][si];
      setup += f.pre[pre_teardown][si];
      r.traffic.meter.add(message_kind::tcp_setup, dir, setup);
      r.teardown += f.pre[pre_teardown][si];
      r.traffic.meter.add(message_kind::tcp_ack, dir, f.pre[pre_ack][si]);
      r.traffic.other[di] += f.pre[pre_other][si];
      if (f.detail != npos) {
        const flow_detail& d = details[f.detail];
        for (std::size_t k = 0; k < kind_count; ++k)
          r.traffic.meter.add(static_cast<message_kind>(k), dir, d.cells[k][si]);
        r.traffic.other[di] += d.cells[slot_other][si];
        // A PDU still incomplete when the capture ends: its segments count as "other".
        const half_stream& h = d.half[si];
        if (h.pend_packets != 0 || h.framer.pending() != 0)
          r.traffic.other[di] +=
              traffic_cell{0, h.framer.pending(), h.framer.pending() + h.pend_overhead, h.pend_packets};
      }
    }
    if (f.detail != npos) r.stream = details[f.detail].stats;
    if (tcp) {
      ++a.tcp_flows;
      a.stream += r.stream;
      if (f.bound != bound_iface::async_emsmdb) {
        span& sp = spans[ci];
        if (!sp.main) {
          sp.main = true;
          sp.first = f.first;
          sp.last = f.last;
          sp.endpoint = r.client;
        } else {
          sp.first = std::min(sp.first, f.first);
          sp.last = std::max(sp.last, f.last);
        }
      }
    } else {
      ++a.udp_flows;
    }
    flows_of[ci].push_back(std::move(r));
  }
  flows_of.resize(cls.size());
  spans.resize(cls.size());
  if (opt.server_port) {
    // With --server-port every flow's server side is a notifier endpoint: list them.
    std::set<ip_endpoint> seen(a.notifier_tcp.begin(), a.notifier_tcp.end());
    for (const auto& fl : flows_of)
      for (const auto& r : fl)
        if (r.tcp && seen.insert(r.server).second) a.notifier_tcp.push_back(r.server);
  }

  // ---- sessions -> clients ------------------------------------------------------------
  // An async connection whose EcDoAsyncConnectEx came later in the capture joins
  // that session; a host's datagrams that named no session join the host's only
  // EMSMDB session, if it has exactly one.
  const std::size_t n = cls.size();
  std::vector<std::uint32_t> root(n);
  for (std::size_t i = 0; i < n; ++i) {
    root[i] = static_cast<std::uint32_t>(i);
    if (cls[i].orphan_acxh) {
      const std::uint32_t owner = acxh_index.find(*cls[i].orphan_acxh);
      if (owner != npos && owner < n && !cls[owner].orphan_acxh) root[i] = owner;
    }
  }
  {
    flat_index<host_index_key> only;  // host -> its only main session (npos - 1: several)
    std::vector<std::uint32_t> only_value;
    for (std::size_t i = 0; i < n; ++i) {
      if (root[i] != i || !spans[i].main) continue;
      bool inserted = false;
      const std::uint32_t slot_i =
          only.find_or_insert(host_index_key{cls[i].host}, static_cast<std::uint32_t>(only_value.size()), inserted);
      if (inserted) only_value.push_back(static_cast<std::uint32_t>(i));
      else only_value[slot_i] = npos;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!cls[i].host_fallback) continue;
      const std::uint32_t slot_i = only.find(host_index_key{cls[i].host});
      if (slot_i != npos && only_value[slot_i] != npos) root[i] = only_value[slot_i];
    }
  }

  // Group by IP address, unless one address holds EMSMDB sessions at the same time
  // (nudge's virtual runs put thousands of clients on one address): then by session.
  bool by_session = opt.group_by == client_grouping::session;
  if (opt.group_by == client_grouping::automatic) {
    std::vector<std::uint32_t> mains;
    for (std::size_t i = 0; i < n; ++i)
      if (root[i] == i && spans[i].main) mains.push_back(static_cast<std::uint32_t>(i));
    std::sort(mains.begin(), mains.end(), [&](std::uint32_t x, std::uint32_t y) {
      return cls[x].host != cls[y].host ? cls[x].host < cls[y].host : spans[x].first < spans[y].first;
    });
    for (std::size_t k = 1; k < mains.size() && !by_session; ++k) {
      const std::uint32_t x = mains[k - 1], y = mains[k];
      if (cls[x].host == cls[y].host && spans[y].first <= spans[x].last) by_session = true;
    }
  }
  a.grouping = by_session ? "session" : "ip";

  std::vector<std::uint32_t> group_of(n, npos);
  {
    flat_index<host_index_key> by_host;
    std::vector<std::uint32_t> first_of_root(n, npos);
    std::uint32_t groups = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t rt = root[i];
      std::uint32_t g = npos;
      if (by_session) {
        if (first_of_root[rt] == npos) first_of_root[rt] = groups++;
        g = first_of_root[rt];
      } else {
        bool inserted = false;
        g = by_host.find_or_insert(host_index_key{cls[rt].host}, groups, inserted);
        if (inserted) ++groups;
      }
      group_of[i] = g;
    }
    a.clients.resize(groups);
  }

  // ---- clients --------------------------------------------------------------------------
  std::vector<bool> named(a.clients.size(), false);
  for (std::size_t i = 0; i < n; ++i) {
    const client_rec& c = cls[i];
    client_report& r = a.clients[group_of[i]];
    if (!named[group_of[i]]) {
      named[group_of[i]] = true;
      r.address = endpoint_of(c.host, 0);
      r.mode = mode_of(c);
    }
    if (by_session && spans[root[i]].endpoint) r.address = *spans[root[i]].endpoint;
    const client_mode m = mode_of(c);
    if (static_cast<int>(m) > static_cast<int>(r.mode)) r.mode = m;  // async > push > poll
    for (auto& f : flows_of[i]) {
      r.traffic += f.traffic;
      r.teardown += f.teardown;
      r.flows.push_back(std::move(f));
    }
    r.polls += c.polls;
    r.wasted_polls += c.wasted_polls;
    r.fetches += c.fetches;
    r.wasted_fetches += c.wasted_fetches;
    for (std::size_t t = 0; t < fetch_trigger_count; ++t) r.fetches_by_trigger[t] += c.by_trigger[t];
    r.pings += c.pings;
    r.pings_matched += c.pings_matched;
    r.pings_answered += c.pings_answered;
    r.keepalives += c.keepalives;
    r.registrations += c.registrations;
    r.async_connects += c.async_connects;
    r.async_waits += c.async_waits;
    r.async_notified += c.async_notified;
    r.pending_seen += c.pending_seen;
    r.dummies += c.dummies;
    r.faults += c.faults;
    r.events += c.events;
    if (!r.polls_max_ms) r.polls_max_ms = c.polls_max_ms;
    if (!r.session_index) r.session_index = c.session_index;
  }
  const std::size_t groups = a.clients.size();

  // Polling interval: the median gap between consecutive polls of a client.
  {
    std::vector<gap_sample> g = gaps;
    for (auto& x : g) x.client = group_of[x.client];
    group_by_client(g, groups, [](const gap_sample& x) { return x.client; });
    std::vector<std::int64_t> v;
    for (std::size_t i = 0; i < g.size();) {
      std::size_t j = i;
      v.clear();
      while (j < g.size() && g[j].client == g[i].client) v.push_back(g[j++].gap_ns);
      client_report& r = a.clients[g[i].client];
      r.poll_gaps = v.size();
      r.poll_interval_s = median_seconds(v);
      i = j;
    }
  }

  // Trigger -> fetch latency, per client (pings) and per mode (pings, async waits).
  {
    std::vector<fetch_sample> fs = fetch_samples;
    for (auto& x : fs) x.client = group_of[x.client];
    group_by_client(fs, groups, [](const fetch_sample& x) { return x.client; });
    std::vector<std::int64_t> samples;
    for (std::size_t i = 0; i < fs.size();) {
      std::size_t j = i;
      samples.clear();
      client_report& r = a.clients[fs[i].client];
      mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
      for (; j < fs.size() && fs[j].client == fs[i].client; ++j) {
        const std::int64_t ns = std::max<std::int64_t>(fs[j].latency_ns, 0);
        if (fs[j].trigger == fetch_trigger::ping) {
          samples.push_back(ns);
          m.ping_to_fetch.record(duration(ns));
        } else if (fs[j].trigger == fetch_trigger::async_wait) {
          m.async_to_fetch.record(duration(ns));
        }
      }
      r.ping_to_fetch = latency_summary::of_samples(samples);
      i = j;
    }
  }

  // Event latency: the clock the creation stamps use.
  {
    bool any = false;
    bool same_clock = true;
    wide_int min_d = 0;  // the smallest (capture time - creation stamp), in ns
    for (const raw_event& e : events) {
      if (e.created_us < 0) continue;
      const wide_int d = static_cast<wide_int>(e.seen.time_since_epoch().count()) - static_cast<wide_int>(e.created_us) * 1000;
      if (!any || d < min_d) min_d = d;
      any = true;
      if (d < -wide_int{1'000'000'000} || d > wide_int{86'400} * 1'000'000'000) same_clock = false;
    }
    std::int64_t offset_ns = 0;
    if (opt.clock_offset_s) {
      a.clock_offset_s = std::clamp(*opt.clock_offset_s, -1e10, 1e10);  // within three centuries: int64 ns
      a.clock_basis = "given";
      offset_ns = static_cast<std::int64_t>(std::llround(a.clock_offset_s * 1e9));
    } else if (!any) {
      a.clock_basis = "none";
    } else if (same_clock) {
      a.clock_basis = "same";
    } else {
      // nudge's pcap writer puts a virtual run's time zero at a whole second of the epoch.
      a.clock_basis = "whole-second start";
      a.clock_offset_s = first ? std::floor(to_seconds(first->time_since_epoch())) : 0.0;
      offset_ns = static_cast<std::int64_t>(std::llround(std::clamp(a.clock_offset_s, -1e10, 1e10) * 1e9));
      if (min_d - offset_ns < 0) {
        // Some event would be fetched before it was created: not that clock either (a
        // real-time run stamps CLOCK_MONOTONIC). Take the fastest event as instantaneous.
        a.clock_basis = "fastest event";
        offset_ns = static_cast<std::int64_t>(
            std::clamp<wide_int>(min_d, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()));
        a.clock_offset_s = static_cast<double>(offset_ns) / 1e9;
      }
    }
    std::vector<std::size_t> order(events.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    group_by_client(order, groups, [&](std::size_t x) { return group_of[events[x].client]; });
    a.events.resize(events.size());
    std::vector<std::int64_t> samples;
    for (std::size_t i = 0; i < order.size();) {
      std::size_t j = i;
      const std::uint32_t ci = group_of[events[order[i]].client];
      samples.clear();
      client_report& r = a.clients[ci];
      mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
      for (; j < order.size() && group_of[events[order[j]].client] == ci; ++j) {
        const raw_event& e = events[order[j]];
        event_record& out = a.events[order[j]];
        out.id = e.id;
        out.client = ci;
        out.seen = e.seen;
        out.path = e.path;
        if (e.created_us >= 0) {
          out.created_us = e.created_us;
          const wide_int wide = static_cast<wide_int>(e.seen.time_since_epoch().count()) - offset_ns -
                                static_cast<wide_int>(e.created_us) * 1000;
          const std::int64_t lat = static_cast<std::int64_t>(
              std::clamp<wide_int>(wide, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()));
          out.latency_s = static_cast<double>(lat) / 1e9;
          if (lat < 0) {
            ++a.negative_latencies;
          } else {
            samples.push_back(lat);
            m.event_latency.record(duration(lat));
          }
        }
      }
      r.event_latency = latency_summary::of_samples(samples);
      i = j;
    }
  }

  // Pings, with the client index of the report.
  a.pings.reserve(pings.size());
  for (const ping_rec& p : pings) {
    a.pings.push_back(p.r);
    a.pings.back().client = group_of[p.r.client];
  }

  // ---- modes ----------------------------------------------------------------------------
  for (const client_report& r : a.clients) {
    mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
    ++m.clients;
    m.traffic += r.traffic;
    m.teardown += r.teardown;
    m.polls += r.polls;
    m.wasted_polls += r.wasted_polls;
    m.fetches += r.fetches;
    m.wasted_fetches += r.wasted_fetches;
    for (std::size_t i = 0; i < fetch_trigger_count; ++i) m.fetches_by_trigger[i] += r.fetches_by_trigger[i];
    m.pings += r.pings;
    m.pings_matched += r.pings_matched;
    m.pings_answered += r.pings_answered;
    m.keepalives += r.keepalives;
    m.registrations += r.registrations;
    m.async_connects += r.async_connects;
    m.async_waits += r.async_waits;
    m.async_notified += r.async_notified;
    m.pending_seen += r.pending_seen;
    m.dummies += r.dummies;
    m.faults += r.faults;
    m.events += r.events;
  }
  for (const mode_report& m : a.modes) a.total += m;
  return a;
}

// =====================================================================================
analyser::analyser(analyser_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
analyser::~analyser() = default;
analyser::analyser(analyser&&) noexcept = default;
analyser& analyser::operator=(analyser&&) noexcept = default;

void analyser::on_frame(int dlt, time_point ts, bytes_view frame, std::uint32_t wire_length) {
  ++impl_->packets;
  impl_->enqueue(dlt, ts, frame, wire_length);
}

void analyser::on_packet(const packet& p) {
  impl_->flush();
  ++impl_->packets;
  impl::flow_hint h;
  packet q = p;
  q.ts = clamp_ts(p.ts);
  impl_->handle(q, h);
}

void analyser::on_skipped(frame_verdict why) {
  impl_->flush();
  ++impl_->packets;
  impl_->on_skipped(why);
}

analysis analyser::finish() {
  impl_->flush();
  return impl_->finish();
}

}  // namespace nudge::pcap_tool
