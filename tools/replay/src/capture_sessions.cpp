#include "nudge/replay/capture_sessions.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/push_datagram.hpp"

namespace nudge::replay {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;
namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;

std::string_view to_string(lane l) {
  switch (l) {
    case lane::main: return "main";
    case lane::async: return "async";
    case lane::udp: return "udp";
  }
  return "?";
}

std::string op_name(op_kind k, lane l, std::uint16_t opnum) {
  switch (k) {
    case op_kind::bind: return l == lane::async ? "bind(AsyncEMSMDB)" : "bind(EMSMDB)";
    case op_kind::connect: return "EcDoConnectEx";
    case op_kind::register_push: return "EcRRegisterPushNotification";
    case op_kind::rpc_ext2: return "EcDoRpcExt2";
    case op_kind::dummy: return "EcDummyRpc";
    case op_kind::async_connect: return "EcDoAsyncConnectEx";
    case op_kind::async_wait: return "EcDoAsyncWaitEx";
    case op_kind::other: return (l == lane::async ? "AsyncEMSMDB opnum " : "opnum ") + std::to_string(opnum);
    case op_kind::cookie: return "cookie";
  }
  return "?";
}

std::vector<std::size_t> captured_client::lane_ops(lane l) const {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < ops.size(); ++k)
    if (ops[k].on == l) out.push_back(k);
  return out;
}

namespace {

// ---- packets -------------------------------------------------------------------------------

struct packet {
  time_point t;  // absolute
  ip_endpoint src, dst;
  std::uint8_t proto = 0;  // 6 or 17
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;  // TCP flags
  bytes_view payload;
};

constexpr std::uint8_t tcp_fin = 0x01, tcp_syn = 0x02, tcp_rst = 0x04, tcp_ack = 0x10;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

/// The IPv4 packet inside a frame of this link type (empty if none).
bytes_view ip_of(int dlt, bytes_view f) {
  auto ethertype_payload = [](bytes_view rest, std::uint16_t type) -> bytes_view {
    while ((type == 0x8100 || type == 0x88A8) && rest.size() >= 4) {  // VLAN tags
      type = be16(rest.data() + 2);
      rest = rest.subspan(4);
    }
    return type == 0x0800 ? rest : bytes_view{};
  };
  switch (dlt) {
    case DLT_EN10MB:
      if (f.size() < 14) return {};
      return ethertype_payload(f.subspan(14), be16(f.data() + 12));
    case DLT_LINUX_SLL:
      if (f.size() < 16) return {};
      return ethertype_payload(f.subspan(16), be16(f.data() + 14));
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
      if (f.size() < 20) return {};
      return ethertype_payload(f.subspan(20), be16(f.data()));
#endif
    case DLT_NULL:
    case DLT_LOOP: {
      if (f.size() < 4) return {};
      const std::uint32_t fam_le = std::uint32_t{f[0]} | std::uint32_t{f[1]} << 8 | std::uint32_t{f[2]} << 16 |
                                   std::uint32_t{f[3]} << 24;
      const std::uint32_t fam_be = be32(f.data());
      return (fam_le == 2 || fam_be == 2) ? f.subspan(4) : bytes_view{};
    }
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
#endif
      return (!f.empty() && (f[0] >> 4) == 4) ? f : bytes_view{};
    default:
      // DLT_RAW's value differs between platforms (12 or 14) in some files.
      if ((dlt == 12 || dlt == 14 || dlt == 101) && !f.empty() && (f[0] >> 4) == 4) return f;
      return {};
  }
}

bool parse_ip(bytes_view ip, packet& p) {
  if (ip.size() < 20 || (ip[0] >> 4) != 4) return false;
  const std::size_t ihl = std::size_t{ip[0] & 0x0Fu} * 4;
  const std::size_t total = be16(ip.data() + 2);
  if (ihl < 20 || total < ihl || ip.size() < ihl) return false;
  if ((be16(ip.data() + 6) & 0x3FFF) != 0) return false;  // a fragment: not reassembled
  const bytes_view l4 = ip.subspan(ihl, std::min(total, ip.size()) - ihl);
  p.proto = ip[9];
  const std::uint32_t src = be32(ip.data() + 12), dst = be32(ip.data() + 16);
  if (p.proto == 6) {
    if (l4.size() < 20) return false;
    const std::size_t off = static_cast<std::size_t>(l4[12] >> 4) * 4;
    if (off < 20 || l4.size() < off) return false;
    p.src = ip_endpoint::v4(src, be16(l4.data()));
    p.dst = ip_endpoint::v4(dst, be16(l4.data() + 2));
    p.seq = be32(l4.data() + 4);
    p.flags = l4[13];
    p.payload = l4.subspan(off);
    return true;
  }
  if (p.proto == 17) {
    if (l4.size() < 8) return false;
    p.src = ip_endpoint::v4(src, be16(l4.data()));
    p.dst = ip_endpoint::v4(dst, be16(l4.data() + 2));
    const std::size_t len = be16(l4.data() + 4);
    p.payload = l4.subspan(8, std::min(l4.size(), std::max<std::size_t>(len, 8)) - 8);
    return true;
  }
  return false;
}

// ---- TCP reassembly and DCE/RPC framing ----------------------------------------------------

struct pdu_event {
  int dir = 0;  // 0: from flow.a, 1: from flow.b
  time_point t;
  byte_buffer bytes;
};

struct tcp_half {
  bool have_next = false;
  std::uint32_t next = 0;
  std::map<std::uint32_t, std::pair<byte_buffer, time_point>> later;  // out of order, by sequence number
  dcerpc::stream_framer framer;  // bytes not yet cut into PDUs
  time_point buf_start{};        // arrival of the first of them
  bool broken = false;           // not DCE/RPC: stop framing
};

struct tcp_flow {
  ip_endpoint a, b;  // a: the first packet's sender
  std::optional<int> client_dir;  // who sent the SYN
  time_point opened{};
  bool syn_seen = false;
  bool closed = false;  // FIN or RST seen
  bool not_dcerpc = false;
  std::array<tcp_half, 2> half;
  std::vector<pdu_event> pdus;
};

void append(tcp_flow& f, int dir, time_point t, bytes_view data) {
  tcp_half& h = f.half[static_cast<std::size_t>(dir)];
  if (h.broken || data.empty()) return;
  if (h.framer.pending() == 0) h.buf_start = t;
  h.next += static_cast<std::uint32_t>(data.size());
  h.framer.append(data);
  while (true) {
    const auto p = h.framer.next();
    if (p.outcome == dcerpc::stream_framer::status::need_more) return;
    if (p.outcome == dcerpc::stream_framer::status::malformed) {
      h.broken = true;
      h.framer.clear();
      f.not_dcerpc = true;
      return;
    }
    f.pdus.push_back({dir, h.buf_start, byte_buffer(p.pdu.begin(), p.pdu.end())});
    h.buf_start = t;  // what follows in this segment arrived now
  }
}

void add_segment(tcp_flow& f, int dir, time_point t, std::uint32_t seq, bytes_view data) {
  tcp_half& h = f.half[static_cast<std::size_t>(dir)];
  if (data.empty()) return;
  if (!h.have_next) {  // no SYN seen: start where the capture starts
    h.have_next = true;
    h.next = seq;
  }
  const auto ahead = static_cast<std::int32_t>(seq - h.next);
  if (ahead > 0) {
    h.later.try_emplace(seq, byte_buffer(data.begin(), data.end()), t);
    return;
  }
  const auto skip = static_cast<std::size_t>(-static_cast<std::int64_t>(ahead));
  if (skip >= data.size()) return;  // a retransmission of what we have
  append(f, dir, t, data.subspan(skip));
  // Segments that arrived early may now continue the stream.
  for (bool progressed = true; progressed && !h.later.empty();) {
    progressed = false;
    for (auto it = h.later.begin(); it != h.later.end(); ++it) {
      const auto a = static_cast<std::int32_t>(it->first - h.next);
      if (a > 0) continue;
      auto [bytes, when] = std::move(it->second);
      const std::uint32_t s = it->first;
      h.later.erase(it);
      const auto k = static_cast<std::size_t>(h.next - s);
      if (k < bytes.size()) append(f, dir, when, bytes_view(bytes).subspan(k));
      progressed = true;
      break;
    }
  }
}

struct flow_key {
  ip_endpoint lo, hi;
  friend bool operator==(const flow_key&, const flow_key&) = default;
};
struct flow_key_hash {
  std::size_t operator()(const flow_key& k) const noexcept {
    protocol::ip_endpoint_hash h;
    return h(k.lo) * 31 ^ h(k.hi);
  }
};
flow_key key_of(const ip_endpoint& x, const ip_endpoint& y) { return x < y ? flow_key{x, y} : flow_key{y, x}; }

struct datagram {
  time_point t;
  ip_endpoint src, dst;
  byte_buffer payload;
};

// ---- calls on a connection -----------------------------------------------------------------

enum class iface : std::uint8_t { unknown, emsmdb, async_emsmdb };

struct call {
  time_point sent;
  std::uint8_t ptype = 0;
  std::uint32_t call_id = 0;
  std::uint16_t opnum = 0;
  byte_buffer request;
  std::optional<time_point> answered;
  bool fault = false;
  byte_buffer response;
};

struct connection {
  ip_endpoint client, server;
  time_point opened;
  iface bound = iface::unknown;
  std::vector<call> calls;
  std::size_t client_index = SIZE_MAX;  // set when claimed by a client
};

connection to_connection(const tcp_flow& f) {
  connection c;
  // The client sent the SYN; without one, the side that sent the first request or bind.
  int client_dir = f.client_dir.value_or(-1);
  if (client_dir < 0) {
    for (const auto& p : f.pdus) {
      const std::uint8_t ptype = p.bytes[2];
      if (ptype == 0 || ptype == 11 || ptype == 14) {
        client_dir = p.dir;
        break;
      }
      if (ptype == 2 || ptype == 3 || ptype == 12 || ptype == 13) {
        client_dir = 1 - p.dir;
        break;
      }
    }
  }
  if (client_dir < 0) client_dir = 0;
  c.client = client_dir == 0 ? f.a : f.b;
  c.server = client_dir == 0 ? f.b : f.a;
  c.opened = f.opened;
  for (const auto& p : f.pdus) {
    const auto hd = dcerpc::decode_common_header(p.bytes);
    if (!hd.complete()) continue;
    const std::uint8_t ptype = hd.value.ptype;
    if (p.dir == client_dir) {
      if (ptype != 0 && ptype != 11) continue;  // alter_context, auth3, ...: not replayed
      call k;
      k.sent = p.t;
      k.ptype = ptype;
      k.call_id = hd.value.call_id;
      k.request = p.bytes;
      if (ptype == 0 && p.bytes.size() >= dcerpc::request_header_size)
        k.opnum = static_cast<std::uint16_t>(p.bytes[22] | p.bytes[23] << 8);
      if (ptype == 11 && c.bound == iface::unknown) {
        const auto d = dcerpc::decode_pdu(p.bytes);
        if (const auto* b = d.complete() ? std::get_if<dcerpc::bind_pdu>(&d.value) : nullptr; b && !b->contexts.empty()) {
          const auto& syntax = b->contexts.front().abstract_syntax;
          if (syntax.uuid == protocol::emsmdb_syntax().uuid) c.bound = iface::emsmdb;
          else if (syntax.uuid == protocol::async_emsmdb_syntax().uuid) c.bound = iface::async_emsmdb;
        }
      }
      c.calls.push_back(std::move(k));
    } else if (ptype == 2 || ptype == 3 || ptype == 12 || ptype == 13) {
      // The earliest unanswered call with this id (bind_nak carries the bind's).
      for (auto& k : c.calls) {
        if (k.answered || k.call_id != hd.value.call_id) continue;
        if ((ptype == 12 || ptype == 13) != (k.ptype == 11)) continue;
        k.answered = p.t;
        k.fault = ptype == 3 || ptype == 13;
        k.response = p.bytes;
        break;
      }
    }
  }
  return c;
}

op_kind kind_of(iface i, const call& k) {
  if (k.ptype == 11) return op_kind::bind;
  if (i == iface::async_emsmdb) return k.opnum == protocol::opnum::do_async_wait_ex ? op_kind::async_wait : op_kind::other;
  switch (k.opnum) {
    case protocol::opnum::do_connect_ex: return op_kind::connect;
    case protocol::opnum::register_push_notification: return op_kind::register_push;
    case protocol::opnum::do_rpc_ext2: return op_kind::rpc_ext2;
    case protocol::opnum::dummy_rpc: return op_kind::dummy;
    case protocol::opnum::do_async_connect_ex: return op_kind::async_connect;
    default: return op_kind::other;
  }
}

/// The stub of a request or response PDU (empty when it is not one).
bytes_view stub_of(const byte_buffer& pdu) {
  const auto d = dcerpc::decode_pdu(pdu);
  if (!d.complete()) return {};
  if (const auto* r = std::get_if<dcerpc::request_pdu>(&d.value)) return r->stub;
  if (const auto* r = std::get_if<dcerpc::response_pdu>(&d.value)) return r->stub;
  return {};
}

std::string link_name(int dlt) {
  const char* n = pcap_datalink_val_to_name(dlt);
  return n ? n : "DLT " + std::to_string(dlt);
}

}  // namespace

capture_sessions read_capture_sessions(const std::filesystem::path& path) {
  capture_sessions out;
  capture_summary& sum = out.summary;
  char err[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap, decltype(&pcap_close)> in(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err), &pcap_close);
  if (!in) {
    out.error = "cannot read " + path.string() + ": " + err;
    return out;
  }
  const int dlt = pcap_datalink(in.get());
  sum.link_type = link_name(dlt);

  // ---- pass over the packets: TCP flows (reassembled) and datagrams ----
  std::vector<std::unique_ptr<tcp_flow>> flows;  // every flow, in order of first packet
  std::unordered_map<flow_key, std::size_t, flow_key_hash> live;  // key -> index of its current flow
  std::vector<datagram> datagrams;
  pcap_pkthdr* h = nullptr;
  const std::uint8_t* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(in.get(), &h, &data)) == 1) {
    ++sum.packets;
    packet p;
    p.t = time_point(std::chrono::seconds(h->ts.tv_sec) + std::chrono::nanoseconds(h->ts.tv_usec));
    if (!parse_ip(ip_of(dlt, {data, h->caplen}), p)) {
      ++sum.other_packets;
      continue;
    }
    if (p.proto == 17) {
      ++sum.ipv4_udp;
      datagrams.push_back({p.t, p.src, p.dst, byte_buffer(p.payload.begin(), p.payload.end())});
      continue;
    }
    ++sum.ipv4_tcp;
    const flow_key key = key_of(p.src, p.dst);
    const bool syn_only = (p.flags & tcp_syn) && !(p.flags & tcp_ack);
    auto it = live.find(key);
    // A new SYN on a pair that closed (or already had its SYN) starts a new connection.
    if (it != live.end() && syn_only) {
      const tcp_flow& old = *flows[it->second];
      if (old.closed || old.syn_seen) it = live.end();
    }
    if (it == live.end()) {
      auto f = std::make_unique<tcp_flow>();
      f->a = p.src;
      f->b = p.dst;
      f->opened = p.t;
      flows.push_back(std::move(f));
      it = live.insert_or_assign(key, flows.size() - 1).first;
    }
    tcp_flow& f = *flows[it->second];
    const int dir = p.src == f.a ? 0 : 1;
    if (p.flags & tcp_syn) {
      tcp_half& half = f.half[static_cast<std::size_t>(dir)];
      if (!half.have_next) {
        half.have_next = true;
        half.next = p.seq + 1;
      }
      if (syn_only) {
        f.client_dir = dir;
        f.syn_seen = true;
        f.opened = p.t;
      }
    }
    if (p.flags & (tcp_fin | tcp_rst)) f.closed = true;
    add_segment(f, dir, p.t, (p.flags & tcp_syn) ? p.seq + 1 : p.seq, p.payload);
  }
  if (rc == PCAP_ERROR) {
    out.error = "reading " + path.string() + ": " + pcap_geterr(in.get());
    return out;
  }
  sum.tcp_connections = flows.size();

  // ---- connections with DCE/RPC calls ----
  std::vector<connection> conns;
  for (const auto& f : flows) {
    if (f->pdus.empty()) continue;
    if (f->not_dcerpc && f->pdus.empty()) continue;
    ++sum.dcerpc_connections;
    sum.pdus += f->pdus.size();
    conns.push_back(to_connection(*f));
  }

  // ---- clients: one per EMSMDB connection with an EcDoConnectEx ----
  struct client_keys {
    std::optional<emsmdb::context_handle> acxh;
    std::optional<std::uint32_t> notification_handle;
    byte_buffer context;
    std::vector<time_point> op_times;
  };
  std::vector<captured_client> clients;
  std::vector<client_keys> keys;
  std::vector<std::vector<std::pair<time_point, captured_op>>> timed;  // per client, absolute times
  auto add_calls = [&](std::size_t ci, const connection& c, lane l) {
    const iface i = l == lane::async ? iface::async_emsmdb : iface::emsmdb;
    for (const auto& k : c.calls) {
      captured_op op;
      op.kind = kind_of(i, k);
      op.on = l;
      op.opnum = k.opnum;
      op.request = k.request;
      op.answer_fault = k.fault;
      if (k.answered) op.answered = *k.answered - time_point{};  // absolute for now, made relative below
      if (op.kind == op_kind::async_wait && k.answered && !k.fault) {
        const auto d = emsmdb::decode_async_wait_response(stub_of(k.response));
        if (d.complete()) op.async_flags = d.value.flags_out;
      }
      timed[ci].push_back({k.sent, std::move(op)});
    }
  };
  for (auto& c : conns) {
    if (c.bound != iface::emsmdb) continue;
    const auto connect = std::find_if(c.calls.begin(), c.calls.end(), [](const call& k) {
      return k.ptype == 0 && k.opnum == protocol::opnum::do_connect_ex;
    });
    if (connect == c.calls.end()) {
      sum.skipped.push_back("EMSMDB connection " + c.client.to_string() + " -> " + c.server.to_string() +
                            ": no EcDoConnectEx");
      continue;
    }
    const auto req = emsmdb::decode_connect_ex_request(stub_of(connect->request));
    if (!req.complete()) {
      sum.skipped.push_back("EMSMDB connection " + c.client.to_string() + ": undecodable EcDoConnectEx");
      continue;
    }
    captured_client cl;
    cl.user_dn = std::string(req.value.user_dn);
    cl.main_endpoint = c.client;
    cl.main_open = c.opened - time_point{};
    client_keys ck;
    for (const auto& k : c.calls) {
      if (k.ptype != 0 || !k.answered || k.fault) continue;
      if (k.opnum == protocol::opnum::do_async_connect_ex) {
        const auto d = emsmdb::decode_async_connect_response(stub_of(k.response));
        if (d.complete() && d.value.return_code == protocol::ec::success) ck.acxh = d.value.acxh;
      } else if (k.opnum == protocol::opnum::register_push_notification) {
        const auto rq = emsmdb::decode_register_push_request(stub_of(k.request));
        const auto d = emsmdb::decode_register_push_response(stub_of(k.response));
        if (rq.complete()) ck.context.assign(rq.value.context.begin(), rq.value.context.end());
        if (d.complete() && d.value.return_code == protocol::ec::success) ck.notification_handle = d.value.notification_handle;
        cl.uses_udp = true;
      }
    }
    c.client_index = clients.size();
    clients.push_back(std::move(cl));
    keys.push_back(std::move(ck));
    timed.emplace_back();
    add_calls(clients.size() - 1, c, lane::main);
  }
  // AsyncEMSMDB connections, by the ACXH of their first wait.
  for (auto& c : conns) {
    if (c.bound != iface::async_emsmdb) continue;
    std::optional<emsmdb::context_handle> acxh;
    for (const auto& k : c.calls) {
      if (k.ptype != 0 || k.opnum != protocol::opnum::do_async_wait_ex) continue;
      const auto d = emsmdb::decode_async_wait_request(stub_of(k.request));
      if (d.complete()) acxh = d.value.acxh;
      break;
    }
    std::size_t owner = SIZE_MAX;
    for (std::size_t i = 0; acxh && i < keys.size(); ++i)
      if (keys[i].acxh == acxh && !clients[i].async_open) owner = i;
    if (owner == SIZE_MAX) {
      sum.skipped.push_back("AsyncEMSMDB connection " + c.client.to_string() +
                            (acxh ? ": its ACXH was returned to no client in the capture" : ": no EcDoAsyncWaitEx"));
      continue;
    }
    clients[owner].async_open = c.opened - time_point{};
    add_calls(owner, c, lane::async);
  }
  for (auto& c : conns)
    if (c.bound == iface::unknown)
      sum.skipped.push_back("connection " + c.client.to_string() + " -> " + c.server.to_string() +
                            ": no bind in the capture (it started after the connection opened?)");
  // Datagrams: cookies from clients, pings to them.
  for (const auto& d : datagrams) {
    const auto cookie = protocol::decode_reachability_cookie(d.payload);
    if (cookie.complete()) {
      std::size_t owner = SIZE_MAX;
      for (std::size_t i = 0; i < keys.size() && owner == SIZE_MAX; ++i)
        if (keys[i].notification_handle == cookie.value.notification_handle &&
            std::equal(keys[i].context.begin(), keys[i].context.end(), cookie.value.context.begin(),
                       cookie.value.context.end()))
          owner = i;
      if (owner == SIZE_MAX) {
        sum.skipped.push_back("cookie from " + d.src.to_string() + ": its hNotification matches no registration");
        continue;
      }
      captured_op op;
      op.kind = op_kind::cookie;
      op.on = lane::udp;
      op.request = d.payload;
      timed[owner].push_back({d.t, std::move(op)});
      clients[owner].uses_udp = true;
      continue;
    }
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (!keys[i].context.empty() && keys[i].context == d.payload) {
        clients[i].pings.push_back(d.t - time_point{});
        break;
      }
  }

  // ---- time zero, offsets, order ----
  std::optional<time_point> zero;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const time_point open = time_point{} + clients[i].main_open;
    zero = zero ? std::min(*zero, open) : open;
    for (const auto& [t, op] : timed[i]) zero = std::min(*zero, t);
  }
  if (!zero) return out;
  sum.time_zero = *zero;
  const duration z = zero->time_since_epoch();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto& cl = clients[i];
    std::stable_sort(timed[i].begin(), timed[i].end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& [t, op] : timed[i]) {
      op.sent = t - *zero;
      if (op.answered) *op.answered -= z;
      sum.span = std::max(sum.span, op.sent);
      cl.ops.push_back(std::move(op));
    }
    cl.main_open -= z;
    if (cl.async_open) *cl.async_open -= z;
    for (auto& p : cl.pings) p -= z;
    bool async = false, push = false;
    for (const auto& op : cl.ops) {
      async = async || op.kind == op_kind::async_connect;
      push = push || op.kind == op_kind::register_push;
    }
    cl.mode = async ? "async" : push ? "push" : "poll";
  }
  // In order of their first packet.
  std::vector<std::size_t> order(clients.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return clients[x].main_open < clients[y].main_open; });
  for (const std::size_t i : order) out.clients.push_back(std::move(clients[i]));
  return out;
}

}  // namespace nudge::replay
