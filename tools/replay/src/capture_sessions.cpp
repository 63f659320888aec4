#include "nudge/replay/capture_sessions.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "nudge/capture_reader/capture_file.hpp"
#include "nudge/capture_reader/tcp_flows.hpp"
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

connection to_connection(const capture_reader::tcp_flow& f) {
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


}  // namespace

capture_sessions read_capture_sessions(const std::filesystem::path& path) {
  capture_sessions out;
  capture_summary& sum = out.summary;
  auto file = capture_reader::capture_file::open(path);
  if (!file) {
    out.error = "cannot read " + file.error().message;
    return out;
  }
  const int dlt = file->dlt();
  const std::string pcap_name = file->pcap_link_name();
  sum.link_type = pcap_name.empty() ? "DLT " + std::to_string(dlt) : pcap_name;

  // ---- pass over the packets: TCP flows (reassembled) and datagrams ----
  capture_reader::tcp_flows tcp;
  std::vector<datagram> datagrams;
  const auto st = file->read_all([&](const capture_reader::record& r) {
    ++sum.packets;
    capture_reader::packet p;
    if (capture_reader::decode_frame(dlt, r.frame, r.wire_length, r.ts, p) != capture_reader::frame_verdict::ok ||
        p.ip_version != 4) {
      ++sum.other_packets;
      return;
    }
    const ip_endpoint src = ip_endpoint::v4(p.src4, p.src_port), dst = ip_endpoint::v4(p.dst4, p.dst_port);
    if (p.protocol == capture_reader::ip_proto_udp) {
      ++sum.ipv4_udp;
      datagrams.push_back({p.ts, src, dst, byte_buffer(p.payload.begin(), p.payload.end())});
      return;
    }
    ++sum.ipv4_tcp;
    tcp.add(p, src, dst);
  });
  if (!st.error.empty()) {
    out.error = "reading " + path.string() + ": " + st.error;
    return out;
  }
  const auto& flows = tcp.flows();
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
