#include "nudge/pcap/analyser.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "flat_index.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/protocols/registrations.hpp"

namespace nudge::pcap_tool {

using namespace std::chrono_literals;
using detail::flat_index;
using detail::mix64;
using engine::capture_flow;
using engine::capture_none;

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
  if (counters.size() < o.counters.size()) counters.resize(o.counters.size());
  for (std::size_t i = 0; i < o.counters.size(); ++i) counters[i] += o.counters[i];
  if (latencies.size() < o.latencies.size()) latencies.resize(o.latencies.size());
  for (std::size_t i = 0; i < o.latencies.size(); ++i) latencies[i] += o.latencies[i];
  ping_to_fetch += o.ping_to_fetch;
  async_to_fetch += o.async_to_fetch;
  event_latency += o.event_latency;
  return *this;
}

namespace {

constexpr std::uint32_t npos = 0xFFFFFFFFu;
// Traffic rows: every family's kinds start with the transport's (registry.hpp).
constexpr std::uint8_t kind_tcp_setup = 0;
constexpr std::uint8_t kind_tcp_ack = 1;
constexpr std::size_t kind_rows = metrics::traffic_meter::max_kinds;
constexpr std::uint8_t slot_other = static_cast<std::uint8_t>(kind_rows);  // cells index for "other"
constexpr std::uint8_t slot_of(std::uint32_t kind) { return kind < kind_rows ? static_cast<std::uint8_t>(kind) : slot_other; }

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

enum class flow_state : std::uint8_t { fresh, framed, foreign };

// Control packets of a TCP flow, per side, kept for every flow (even before it is
// known to carry the family's protocol): setup, teardown, pure ACKs, unframed data.
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
  capture_flow cf;  // hosts, ports, roles and session, shared with the family's reader
  std::uint8_t proto = 0;
  flow_state state = flow_state::fresh;
  bool syn_ack_seen = false;
  bool handshake_done = false;
  bool closed = false;
  bool superseded = false;  // a later connection on the same addresses and ports took its place
  bool server_noted = false;
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
  bool hunting = true;           // the next segment must begin a message
  std::uint32_t pend_packets = 0;  // segments whose first new byte lies in the message in progress
  std::uint64_t pend_overhead = 0;  // their IP + TCP header bytes
  std::uint8_t last_slot = slot_other;
  bool framed = false;           // framed a message before (a later restart is a resync)
  bool gap_known = false;        // the last gap: bytes [gap_from, gap_to) were never seen
  std::uint32_t gap_from = 0;
  std::uint32_t gap_to = 0;
};

struct flow_detail {
  std::array<half_stream, 2> half;
  std::array<std::array<traffic_cell, 2>, kind_rows + 1> cells{};  // [slot][side]
  stream_stats stats;
};

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
  std::vector<std::pair<host_key, std::uint16_t>> notifier_tcp;  // in order of discovery
  flat_index<host_index_key> notifier_tcp_index;  // key: host, mixed with the port
  flat_index<host_index_key> notifier_host_index;
  std::vector<std::pair<host_key, std::uint16_t>> notifier_udp;

  /// The family whose captures are read: names its kinds, modes and counters,
  /// says where a message can begin, and reads the messages (reader).
  /// analyser_options::family, by default the first registered family that reads captures.
  const engine::capture_classifier* classifier = capture_family(opt.family);
  std::unique_ptr<engine::capture_reader> reader;
  std::size_t kind_count = 0;

  explicit impl(analyser_options o) : opt(std::move(o)) {
    engine::capture_reading_options ro;
    ro.udp_port = opt.udp_port;
    ro.fetch_window = opt.fetch_window;
    if (classifier) reader = classifier->make_reader(ro);
    kind_count = classifier ? std::min(classifier->kind_names().size(), kind_rows) : 0;
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
    if (h.flow != npos && !flows[h.flow].superseded) return h.flow = reopened(p, h, h.flow);
    const flow_key& k = h.key;
    std::uint32_t fi = flat_index<flow_key>::npos;
    if (flows.size() >= opt.max_flows) {
      fi = flow_index.find(k, h.hash);
      if (fi == flat_index<flow_key>::npos) ++skipped.flow_table_full;
      return h.flow = fi;
    }
    bool inserted = false;
    fi = flow_index.find_or_insert(k, h.hash, static_cast<std::uint32_t>(flows.size()), inserted);
    if (inserted) add_flow(p, k, fi);
    return h.flow = reopened(p, h, fi);
  }

  void add_flow(const packet& p, const flow_key& k, std::uint32_t fi) {
    const std::uint16_t lo_port = static_cast<std::uint16_t>(k.ports_proto >> 24);
    const std::uint16_t hi_port = static_cast<std::uint16_t>(k.ports_proto >> 8);
    flow_rec& f = flows.emplace_back();
    f.key = k;
    f.cf.id = fi;
    f.cf.host = {k.lo_host, k.hi_host};
    f.cf.port = {lo_port, hi_port};
    f.proto = p.protocol;
    f.first = p.ts;
    if (p.protocol == ip_proto_tcp) {
      // A known notifier endpoint tells the roles before any SYN or PDU does.
      const bool lo_server = is_notifier_tcp(k.lo_host, lo_port);
      const bool hi_server = is_notifier_tcp(k.hi_host, hi_port);
      if (lo_server != hi_server) f.cf.client_side = lo_server ? 1 : 0;
    }
  }

  // A SYN (without ACK) on a TCP flow that was closed (FIN or RST) opens a new
  // connection on the same addresses and ports (a client that connects per
  // request reuses its ports): a flow of its own from here on.
  std::uint32_t reopened(const packet& p, const flow_hint& h, std::uint32_t fi) {
    if (p.protocol != ip_proto_tcp || (p.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) != tcp_flag::syn) return fi;
    if (!flows[fi].closed || flows.size() >= opt.max_flows) return fi;
    flows[fi].superseded = true;
    const auto next = static_cast<std::uint32_t>(flows.size());
    flow_index.assign(h.key, next);
    add_flow(p, h.key, next);
    return next;
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
      // Not the family's protocol: counted, not parsed. (Skipped in the report unless
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
        if (f.cf.client_side < 0) f.cf.client_side = static_cast<std::int8_t>(side);
      } else {
        f.syn_ack_seen = true;
        if (f.cf.client_side < 0) f.cf.client_side = static_cast<std::int8_t>(1 - side);
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
    if (!f.handshake_done && side == f.cf.client_side && f.syn_ack_seen) {
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
      // The first data: does it look like the family's protocol?
      if (!reader || !classifier->begins_message(p.payload)) {
        f.pre[pre_other][side] += traffic_cell{0, p.payload_length, p.ip_bytes, 1};
        if (++f.unframed_segments >= 4) f.state = flow_state::foreign;
        return;
      }
    }
    flow_detail& d = detail_of(f);
    process_data(f, d, side, p);
  }

  void lose_partial(flow_rec& f, flow_detail& d, int side) {
    half_stream& h = d.half[side];
    const std::size_t held = reader->pending(f.cf, side);
    if (held != 0 || h.pend_packets != 0) {
      const std::uint64_t n = held;
      d.cells[slot_other][side] += traffic_cell{0, n, n + h.pend_overhead, h.pend_packets};
    }
    reader->drop_pending(f.cf, side);
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
      // drop the message in progress and look for a message start again.
      ++d.stats.gaps;
      lose_partial(f, d, side);
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
      lose_partial(f, d, side);
      h.hunting = true;
      d.cells[slot_other][side] += traffic_cell{0, fresh, p.ip_bytes, 1};
      return;
    }
    bytes_view data = p.payload.subspan(skip, fresh);
    if (h.hunting) {
      if (!classifier->begins_message(data)) {
        ++d.stats.unframed_segments;
        d.cells[slot_other][side] += traffic_cell{0, fresh, p.ip_bytes, 1};
        if (f.state != flow_state::framed && ++f.unframed_segments >= 4) f.state = flow_state::foreign;
        return;
      }
      if (h.framed) ++d.stats.resyncs;
      h.hunting = false;
    }
    ++h.pend_packets;
    h.pend_overhead += overhead;
    stream_sink sink{*this, f, d, side};
    reader->on_stream(f.cf, side, data, p.ts, sink);
  }

  /// Counts what the family framed in a half-stream: the segments and header
  /// bytes since the last message go to the message that completes.
  struct stream_sink final : engine::capture_stream_sink {
    impl& self;
    flow_rec& f;
    flow_detail& d;
    int side;
    stream_sink(impl& s, flow_rec& fl, flow_detail& dt, int sd) : self(s), f(fl), d(dt), side(sd) {}

    void message(std::uint32_t kind, std::size_t bytes) override {
      half_stream& h = d.half[side];
      ++d.stats.pdus;
      f.state = flow_state::framed;
      if (side != f.cf.client_side && f.cf.client_side >= 0 && !f.server_noted) {
        f.server_noted = true;
        self.note_notifier_tcp(self.side_host(f, side), f.cf.port[static_cast<std::size_t>(side)]);
      }
      const std::uint8_t s = slot_of(kind);
      d.cells[s][side] += traffic_cell{1, bytes, bytes + h.pend_overhead, h.pend_packets};
      h.pend_packets = 0;
      h.pend_overhead = 0;
      h.last_slot = s;
      h.framed = true;
    }

    void malformed(std::size_t dropped) override {
      half_stream& h = d.half[side];
      ++d.stats.malformed_pdus;
      const std::uint64_t n = dropped;
      d.cells[slot_other][side] += traffic_cell{0, n, n + h.pend_overhead, h.pend_packets};
      h.pend_packets = 0;
      h.pend_overhead = 0;
      h.hunting = true;
    }
  };

  // ---- UDP -----------------------------------------------------------------------------
  void on_udp(const packet& p, flow_hint& hint) {
    if (!reader || p.payload.size() < p.payload_length) {
      ++skipped.unrelated_udp;  // cut by the snaplen: cannot be read whole
      return;
    }
    engine::capture_datagram dg;
    dg.at = p.ts;
    dg.src_host = hint.sh;
    dg.dst_host = hint.dh;
    dg.src = endpoint_of(hint.sh, p.src_port);
    dg.dst = endpoint_of(hint.dh, p.dst_port);
    dg.payload = p.payload;
    dg.src_serves = is_notifier_host(hint.sh);
    const engine::datagram_verdict v = reader->on_datagram(dg);
    if (!v.related) {
      ++skipped.unrelated_udp;
      return;
    }
    if (v.server_known) {
      if (v.client_is_src) note_notifier_udp(hint.dh, p.dst_port);
      else note_notifier_udp(hint.sh, p.src_port);
    }
    const int side = hint.side;
    const std::uint32_t fi = flow_for(p, hint);
    if (fi == flat_index<flow_key>::npos) return;
    flow_rec& f = flows[fi];
    if (f.cf.session == npos) {
      f.cf.session = v.session;
      f.cf.client_side = static_cast<std::int8_t>(v.client_is_src ? side : 1 - side);
      f.state = flow_state::framed;
    }
    ++f.packets;
    f.last = p.ts;
    flow_detail& d = detail_of(f);
    d.cells[slot_of(v.kind)][side] += traffic_cell{1, p.payload_length, p.ip_bytes, 1};
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
    if (f.detail != npos) __builtin_prefetch(&details[f.detail].half[static_cast<std::size_t>(q.hint.side)]);
    if (reader) reader->prefetch(f.cf, q.hint.side);
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

/// nudge.pcap/1's fixed per-client fields: each is the family's counter of the
/// same name, when the family counts one (the EMSMDB family counts them all).
struct fixed_field {
  std::string_view name;
  std::uint64_t client_report::*client;
  std::uint64_t mode_report::*mode;
};
#define NUDGE_FIXED(f) fixed_field{#f, &client_report::f, &mode_report::f}
constexpr std::array fixed_fields = {
    NUDGE_FIXED(polls),          NUDGE_FIXED(wasted_polls),  NUDGE_FIXED(fetches),      NUDGE_FIXED(wasted_fetches),
    NUDGE_FIXED(pings),          NUDGE_FIXED(pings_matched), NUDGE_FIXED(pings_answered), NUDGE_FIXED(keepalives),
    NUDGE_FIXED(registrations),  NUDGE_FIXED(async_connects), NUDGE_FIXED(async_waits), NUDGE_FIXED(async_notified),
    NUDGE_FIXED(pending_seen),   NUDGE_FIXED(dummies),       NUDGE_FIXED(faults),       NUDGE_FIXED(events)};
#undef NUDGE_FIXED

std::uint32_t index_in(std::span<const std::string_view> names, std::string_view name) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<std::uint32_t>(i);
  return npos;
}

}  // namespace

const engine::capture_classifier* capture_family(std::string_view name) {
  protocols::register_all();
  for (const engine::family& f : engine::registry::instance().families())
    if ((name.empty() || f.name == name) && f.capture && f.capture->make_reader({})) return f.capture;
  return nullptr;
}

bool is_fixed_field(std::string_view counter_name) {
  for (const fixed_field& f : fixed_fields)
    if (f.name == counter_name) return true;
  for (std::size_t t = 0; t < fetch_trigger_count; ++t)
    if (counter_name == "fetches_by_trigger." + std::string(to_string(static_cast<fetch_trigger>(t)))) return true;
  return false;
}

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

  engine::capture_findings found = reader ? reader->findings() : engine::capture_findings{};
  const std::size_t counter_count = classifier ? classifier->counter_names().size() : 0;
  const std::size_t fact_count = classifier ? classifier->fact_names().size() : 0;
  const std::size_t latency_count = classifier ? classifier->latency_names().size() : 0;
  const std::size_t mode_count = classifier ? std::min(classifier->mode_names().size(), max_modes) : 1;

  // Sessions: the family's, and one more for each flow to the server that it tied
  // to none (opened, then nothing).
  std::vector<engine::capture_session>& cls = found.sessions;
  struct span {
    bool main = false;  // has a primary (not side-channel) connection
    time_point first{}, last{};
    std::optional<ip_endpoint> endpoint;  // its client endpoint
  };
  std::vector<span> spans(cls.size());
  std::vector<std::vector<flow_report>> flows_of(cls.size());
  for (const flow_rec& f : flows) {
    const bool tcp = f.proto == ip_proto_tcp;
    if (tcp) {
      bool include = f.state == flow_state::framed;
      if (!include && f.cf.client_side >= 0) {
        const int server = 1 - f.cf.client_side;
        include = is_notifier_tcp(server == 0 ? f.key.lo_host : f.key.hi_host, f.cf.port[static_cast<std::size_t>(server)]);
      }
      if (!include) {
        a.skipped.unrelated_tcp += f.packets;
        continue;
      }
    }
    const int cs = f.cf.client_side < 0 ? 0 : f.cf.client_side;
    const host_key client_host = cs == 0 ? f.key.lo_host : f.key.hi_host;
    const host_key server_host = cs == 0 ? f.key.hi_host : f.key.lo_host;
    std::uint32_t ci = f.cf.session;
    if (ci == npos || ci >= cls.size()) {
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
    r.client = endpoint_of(client_host, f.cf.port[static_cast<std::size_t>(cs)]);
    r.server = endpoint_of(server_host, f.cf.port[static_cast<std::size_t>(1 - cs)]);
    if (!tcp) r.interface = "udp";
    else r.interface = reader ? std::string(reader->flow_label(f.cf)) : "unknown";
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
      r.traffic.meter.add(kind_tcp_setup, dir, setup);
      r.teardown += f.pre[pre_teardown][si];
      r.traffic.meter.add(kind_tcp_ack, dir, f.pre[pre_ack][si]);
      r.traffic.other[di] += f.pre[pre_other][si];
      if (f.detail != npos) {
        const flow_detail& d = details[f.detail];
        for (std::size_t k = 0; k < kind_rows; ++k) {
          if (k < kind_count) r.traffic.meter.add(k, dir, d.cells[k][si]);
          else r.traffic.other[di] += d.cells[k][si];
        }
        r.traffic.other[di] += d.cells[slot_other][si];
        // A message still incomplete when the capture ends: its segments count as "other".
        const half_stream& h = d.half[si];
        const std::uint64_t held = tcp && reader ? reader->pending(f.cf, s) : 0;
        if (h.pend_packets != 0 || held != 0)
          r.traffic.other[di] += traffic_cell{0, held, held + h.pend_overhead, h.pend_packets};
      }
    }
    if (f.detail != npos) r.stream = details[f.detail].stats;
    if (tcp) {
      ++a.tcp_flows;
      a.stream += r.stream;
      if (!reader || reader->primary_flow(f.cf)) {
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
    // With --server-port every flow's server side is a server endpoint: list them.
    std::set<ip_endpoint> seen(a.notifier_tcp.begin(), a.notifier_tcp.end());
    for (const auto& fl : flows_of)
      for (const auto& r : fl)
        if (r.tcp && seen.insert(r.server).second) a.notifier_tcp.push_back(r.server);
  }

  // ---- sessions -> clients ------------------------------------------------------------
  // A session the family says belongs to another joins it; a host's fallback
  // session (datagrams that named no session) joins the host's only primary
  // session, if it has exactly one.
  const std::size_t n = cls.size();
  std::vector<std::uint32_t> root(n);
  for (std::size_t i = 0; i < n; ++i)
    root[i] = cls[i].joins < n && cls[cls[i].joins].joins == capture_none ? cls[i].joins : static_cast<std::uint32_t>(i);
  {
    flat_index<host_index_key> only;  // host -> its only main session (npos: several)
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

  // Group by IP address, unless one address holds main sessions at the same time
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
  auto mode_index = [&](const engine::capture_session& c) {
    return std::min<std::size_t>(c.mode, mode_count - 1);
  };
  std::vector<bool> named(a.clients.size(), false);
  for (std::size_t i = 0; i < n; ++i) {
    const engine::capture_session& c = cls[i];
    client_report& r = a.clients[group_of[i]];
    if (!named[group_of[i]]) {
      named[group_of[i]] = true;
      r.address = endpoint_of(c.host, 0);
      r.mode = static_cast<client_mode>(mode_index(c));
      r.counters.assign(counter_count, 0);
      r.facts.assign(fact_count, std::nullopt);
      r.latencies.assign(latency_count, latency_summary{});
    }
    if (by_session && spans[root[i]].endpoint) r.address = *spans[root[i]].endpoint;
    const std::size_t m = mode_index(c);
    if (m > static_cast<std::size_t>(r.mode)) r.mode = static_cast<client_mode>(m);  // the family's order: last wins
    for (auto& f : flows_of[i]) {
      r.traffic += f.traffic;
      r.teardown += f.teardown;
      r.flows.push_back(std::move(f));
    }
    for (std::size_t k = 0; k < std::min(counter_count, c.counters.size()); ++k) r.counters[k] += c.counters[k];
    for (std::size_t k = 0; k < std::min(fact_count, c.facts.size()); ++k)
      if (!r.facts[k]) r.facts[k] = c.facts[k];
  }
  const std::size_t groups = a.clients.size();

  // The fixed fields of nudge.pcap/1, from the counters of the same names.
  if (classifier) {
    const auto names = classifier->counter_names();
    std::array<std::uint32_t, fixed_fields.size()> at{};
    for (std::size_t k = 0; k < fixed_fields.size(); ++k) at[k] = index_in(names, fixed_fields[k].name);
    std::array<std::uint32_t, fetch_trigger_count> by_trigger{};
    for (std::size_t t = 0; t < fetch_trigger_count; ++t)
      by_trigger[t] = index_in(names, "fetches_by_trigger." + std::string(to_string(static_cast<fetch_trigger>(t))));
    const std::uint32_t polls_max = index_in(classifier->fact_names(), "polls_max_ms");
    const std::uint32_t session_index = index_in(classifier->fact_names(), "session_index");
    for (client_report& r : a.clients) {
      for (std::size_t k = 0; k < fixed_fields.size(); ++k)
        if (at[k] != npos) r.*fixed_fields[k].client = r.counters[at[k]];
      for (std::size_t t = 0; t < fetch_trigger_count; ++t)
        if (by_trigger[t] != npos) r.fetches_by_trigger[t] = r.counters[by_trigger[t]];
      if (polls_max != npos && r.facts[polls_max]) r.polls_max_ms = static_cast<std::uint32_t>(*r.facts[polls_max]);
      if (session_index != npos && r.facts[session_index])
        r.session_index = static_cast<std::uint16_t>(*r.facts[session_index]);
    }
  }

  // Polling interval: the median gap between consecutive polls of a client.
  {
    std::vector<engine::capture_sample> g = std::move(found.poll_gaps);
    for (auto& x : g) x.session = group_of[x.session];
    group_by_client(g, groups, [](const engine::capture_sample& x) { return x.session; });
    std::vector<std::int64_t> v;
    for (std::size_t i = 0; i < g.size();) {
      std::size_t j = i;
      v.clear();
      while (j < g.size() && g[j].session == g[i].session) v.push_back(g[j++].ns);
      client_report& r = a.clients[g[i].session];
      r.poll_gaps = v.size();
      r.poll_interval_s = median_seconds(v);
      i = j;
    }
  }

  // Trigger -> reaction latency, per client (exact) and per mode (histograms).
  for (mode_report& m : a.modes) m.latencies.assign(latency_count, metrics::latency_histogram{});
  a.total.latencies.assign(latency_count, metrics::latency_histogram{});
  {
    const std::uint32_t ping_to_fetch = classifier ? index_in(classifier->latency_names(), "ping_to_fetch") : npos;
    const std::uint32_t async_to_fetch = classifier ? index_in(classifier->latency_names(), "async_to_fetch") : npos;
    std::vector<engine::capture_sample> fs = std::move(found.latencies);
    for (auto& x : fs) x.session = group_of[x.session];
    group_by_client(fs, groups, [](const engine::capture_sample& x) { return x.session; });
    std::vector<std::vector<std::int64_t>> samples(latency_count);
    for (std::size_t i = 0; i < fs.size();) {
      std::size_t j = i;
      for (auto& s : samples) s.clear();
      client_report& r = a.clients[fs[i].session];
      mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
      for (; j < fs.size() && fs[j].session == fs[i].session; ++j) {
        if (fs[j].what >= latency_count) continue;
        const std::int64_t ns = std::max<std::int64_t>(fs[j].ns, 0);
        samples[fs[j].what].push_back(ns);
        m.latencies[fs[j].what].record(duration(ns));
        if (fs[j].what == ping_to_fetch) m.ping_to_fetch.record(duration(ns));
        if (fs[j].what == async_to_fetch) m.async_to_fetch.record(duration(ns));
      }
      for (std::size_t k = 0; k < latency_count; ++k) r.latencies[k] = latency_summary::of_samples(samples[k]);
      if (ping_to_fetch != npos) r.ping_to_fetch = r.latencies[ping_to_fetch];
      i = j;
    }
  }

  // Event latency: the clock the creation stamps use.
  {
    const std::vector<engine::capture_event>& events = found.events;
    bool any = false;
    bool same_clock = true;
    wide_int min_d = 0;  // the smallest (capture time - creation stamp), in ns
    for (const engine::capture_event& e : events) {
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
    group_by_client(order, groups, [&](std::size_t x) { return group_of[events[x].session]; });
    a.events.resize(events.size());
    std::vector<std::int64_t> samples;
    for (std::size_t i = 0; i < order.size();) {
      std::size_t j = i;
      const std::uint32_t ci = group_of[events[order[i]].session];
      samples.clear();
      client_report& r = a.clients[ci];
      mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
      for (; j < order.size() && group_of[events[order[j]].session] == ci; ++j) {
        const engine::capture_event& e = events[order[j]];
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

  // Wakeups (pings), with the client index of the report.
  a.pings.reserve(found.wakeups.size());
  for (engine::capture_wakeup& w : found.wakeups) {
    ping_record& p = a.pings.emplace_back();
    p.at = w.at;
    p.client = group_of[w.session];
    p.from = w.from;
    p.to = w.to;
    p.payload = std::move(w.payload);
    p.matched = w.matched;
    p.fetch_at = w.answered_at;
    p.fetch_call_id = w.answer_id;
  }

  // ---- modes ----------------------------------------------------------------------------
  for (mode_report& m : a.modes) m.counters.assign(counter_count, 0);
  a.total.counters.assign(counter_count, 0);
  for (const client_report& r : a.clients) {
    mode_report& m = a.modes[static_cast<std::size_t>(r.mode)];
    ++m.clients;
    m.traffic += r.traffic;
    m.teardown += r.teardown;
    for (std::size_t k = 0; k < counter_count; ++k) m.counters[k] += r.counters[k];
    for (const fixed_field& f : fixed_fields) m.*f.mode += r.*f.client;
    for (std::size_t i = 0; i < fetch_trigger_count; ++i) m.fetches_by_trigger[i] += r.fetches_by_trigger[i];
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
