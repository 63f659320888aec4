// fuzz_classifier: nudge-pcap's analyser fed a script of synthetic packets
// straight through its per-packet entry points (analyser::on_packet, and
// on_frame with raw IP frames, which goes through the prefetch pipeline).
// Four clients (IPv4 or IPv6), main and async connections to one of two
// notifier endpoints, UDP pings and cookies; TCP segments in order,
// replayed, ahead of the stream or anywhere; payloads from a palette of real
// PDUs (binds, EMSMDB and AsyncEMSMDB calls and responses, RopNotify and
// RopPending, faults), concatenated or cut, or raw bytes; timestamps that may
// run backwards. Whatever the script: no crash, every packet counted exactly
// once, and the report renders. The input is read as bytes (zeros once it ends):
//   op: bits 0-1 what (0 TCP packet, 1 UDP packet, 2 TCP frame, 3 odd frame),
//       bit 4 cut the payload, bit 5 append a second PDU, bit 6 explicit TCP flags,
//       bit 7 time runs backwards
//   then: endpoint selector, time step, and per kind the fields below.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "pcap_fuzz_checks.hpp"

using namespace nudge;
using namespace nudge::pcap_tool;
using namespace nudge::capture_reader;  // link types and packets
using protocol::byte_buffer;
using protocol::byte_writer;
namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;
namespace rop = protocol::rop;

namespace {

constexpr std::size_t clients = 4;

class cursor {
 public:
  cursor(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  std::uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  bool done() const { return pos_ >= n_; }
  protocol::bytes_view bytes(std::size_t n) {
    n = std::min(n, n_ - std::min(pos_, n_));
    protocol::bytes_view v(d_ + pos_, n);
    pos_ += n;
    return v;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

std::array<std::uint8_t, 8> context_of(std::size_t c) { return {'f', 'u', 'z', 'z', 0, 0, 0, static_cast<std::uint8_t>(c)}; }

ip_endpoint client_ep(std::size_t c, bool v6, std::uint16_t port) {
  ip_endpoint e;
  if (v6) {
    e.is_v6 = true;
    e.address = {0x20, 0x01, 0x0d, 0xb8};
    e.address[15] = static_cast<std::uint8_t>(2 + c);
  } else {
    e.address = {10, 0, 1, static_cast<std::uint8_t>(2 + c)};
  }
  e.port = port;
  return e;
}

// The PDUs client `c` and the notifier exchange.
std::vector<byte_buffer> make_palette(std::size_t c) {
  std::vector<byte_buffer> p;
  const emsmdb::context_handle cxh{0, protocol::guid::parse("11111111-2222-3333-4444-555555555555")};
  const emsmdb::context_handle acxh{0, protocol::guid::parse("66666666-7777-8888-9999-aaaaaaaaaaaa")};
  auto add = [&](auto&& fill) {
    byte_buffer b;
    fill(b);
    p.push_back(std::move(b));
  };
  for (bool async : {false, true})
    add([&](byte_buffer& b) {
      dcerpc::bind_pdu bind;
      bind.call_id = 1;
      dcerpc::presentation_context ctx;
      ctx.abstract_syntax = async ? protocol::async_emsmdb_syntax() : protocol::emsmdb_syntax();
      ctx.transfer_syntaxes.push_back(protocol::ndr_syntax());
      bind.contexts.push_back(ctx);
      dcerpc::encode(b, bind);
    });
  add([&](byte_buffer& b) {
    dcerpc::bind_ack_pdu a;
    a.call_id = 1;
    a.secondary_address = "7777";
    a.results.push_back({});
    dcerpc::encode(b, a);
  });
  add([&](byte_buffer& b) {
    emsmdb::connect_ex_request r;
    r.user_dn = "/o=fuzz/cn=u";
    dcerpc::encode_request(b, 2, 0, protocol::opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, r); });
  });
  add([&](byte_buffer& b) {
    emsmdb::connect_ex_response r;
    r.cxh = cxh;
    r.session_index = static_cast<std::uint16_t>(c);
    dcerpc::encode_response(b, 2, 0, [&](byte_writer& w) { emsmdb::encode(w, r); });
  });
  add([&](byte_buffer& b) {
    const auto ctx = context_of(c);
    const byte_buffer sa = protocol::windows_sockaddr(client_ep(c, false, 2500));
    emsmdb::register_push_request r;
    r.cxh = cxh;
    r.context = ctx;
    r.callback_address = sa;
    dcerpc::encode_request(b, 3, 0, protocol::opnum::register_push_notification,
                           [&](byte_writer& w) { emsmdb::encode(w, r); });
  });
  add([&](byte_buffer& b) {
    emsmdb::register_push_response r;
    r.cxh = cxh;
    dcerpc::encode_response(b, 3, 0, [&](byte_writer& w) { emsmdb::encode(w, r); });
  });
  add([&](byte_buffer& b) {
    byte_buffer in;
    rop::encode_empty_request(in);
    emsmdb::rpc_ext2_request r;
    r.cxh = cxh;
    r.rgb_in = in;
    dcerpc::encode_request(b, 4, 0, protocol::opnum::do_rpc_ext2, [&](byte_writer& w) { emsmdb::encode(w, r); });
  });
  for (int variant = 0; variant < 3; ++variant)
    add([&](byte_buffer& b) {
      byte_buffer out;
      rop::response_builder rb(out);
      if (variant >= 1) {
        for (std::uint64_t id = 1; id <= 2; ++id) {
          rop::new_mail_notification n;
          n.event = {id + 10 * c, time_point(std::chrono::seconds(id))};
          rb.add(n);
        }
        rb.add_pending(static_cast<std::uint16_t>(variant == 1 ? c : c + 1));
      }
      rb.finish();
      emsmdb::rpc_ext2_response r;
      r.cxh = cxh;
      r.rgb_out = out;
      dcerpc::encode_response(b, 4, 0, [&](byte_writer& w) { emsmdb::encode(w, r); });
    });
  add([&](byte_buffer& b) {
    dcerpc::encode_request(b, 5, 0, protocol::opnum::do_async_connect_ex,
                           [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_request{cxh}); });
  });
  add([&](byte_buffer& b) {
    dcerpc::encode_response(b, 5, 0, [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_response{acxh, 0}); });
  });
  add([&](byte_buffer& b) {
    dcerpc::encode_request(b, 2, 0, protocol::opnum::do_async_wait_ex,
                           [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_request{acxh, 0}); });
  });
  for (std::uint32_t flags : {protocol::notification_pending, 0u})
    add([&](byte_buffer& b) {
      dcerpc::encode_response(b, 2, 0, [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_response{flags, 0}); });
    });
  add([&](byte_buffer& b) { dcerpc::encode_request(b, 6, 0, protocol::opnum::dummy_rpc, [](byte_writer&) {}); });
  add([&](byte_buffer& b) { dcerpc::encode_response(b, 6, 0, [](byte_writer& w) { emsmdb::encode_dummy_response(w, 0); }); });
  add([&](byte_buffer& b) {
    dcerpc::fault_pdu f;
    f.call_id = 4;
    dcerpc::encode(b, f);
  });
  add([&](byte_buffer& b) {
    dcerpc::bind_nak_pdu n;
    n.call_id = 1;
    dcerpc::encode(b, n);
  });
  return p;
}

const std::vector<byte_buffer>& palette(std::size_t c) {
  static const std::array<std::vector<byte_buffer>, clients> all = {make_palette(0), make_palette(1), make_palette(2),
                                                                     make_palette(3)};
  return all[c];
}

void put16(byte_buffer& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(byte_buffer& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// A raw IP packet (DLT_RAW) carrying `p`'s TCP segment.
byte_buffer raw_frame(const packet& p, const ip_endpoint& src, const ip_endpoint& dst) {
  byte_buffer f;
  const std::size_t l4 = 20 + p.payload.size();
  if (!src.is_v6) {
    f.assign(20, 0);
    f[0] = 0x45;
    put16(f, 2, static_cast<std::uint16_t>(20 + l4));
    f[8] = 64;
    f[9] = ip_proto_tcp;
    std::copy(src.address.begin(), src.address.begin() + 4, f.begin() + 12);
    std::copy(dst.address.begin(), dst.address.begin() + 4, f.begin() + 16);
  } else {
    f.assign(40, 0);
    f[0] = 0x60;
    put16(f, 4, static_cast<std::uint16_t>(l4));
    f[6] = ip_proto_tcp;
    f[7] = 64;
    std::copy(src.address.begin(), src.address.end(), f.begin() + 8);
    std::copy(dst.address.begin(), dst.address.end(), f.begin() + 24);
  }
  const std::size_t t = f.size();
  f.resize(t + 20);
  put16(f, t, p.src_port);
  put16(f, t + 2, p.dst_port);
  put32(f, t + 4, p.seq);
  put32(f, t + 8, p.ack);
  f[t + 12] = 0x50;
  f[t + 13] = p.tcp_flags;
  put16(f, t + 14, 1026);
  f.insert(f.end(), p.payload.begin(), p.payload.end());
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cursor in(data, size);
  analyser_options opt;
  const std::uint8_t o = in.u8();
  if (o & 1) opt.server_port = 7777;
  if (o & 2) opt.udp_port = 7778;
  opt.fetch_window = std::chrono::milliseconds(1 + (o >> 2) * 100);
  opt.max_flows = (o & 0x80) ? 3 : std::size_t{1} << 20;
  analyser a(opt);

  // Sequence numbers per (client, connection, direction): what a tidy sender sends next.
  std::array<std::array<std::array<std::uint32_t, 2>, 2>, clients> next{};
  for (std::size_t c = 0; c < clients; ++c)
    for (std::size_t k = 0; k < 2; ++k) next[c][k] = {static_cast<std::uint32_t>(1000 * (c + 1) + 100 * k), 0xFFFFFF00u};
  std::int64_t t_ms = 1'700'000'000'000;
  int ops = 0;
  while (!in.done() && ops++ < 512) {
    const std::uint8_t op = in.u8();
    const std::uint8_t sel = in.u8();
    const std::uint8_t step = in.u8();
    t_ms += (op & 0x80) ? -static_cast<std::int64_t>(step) : static_cast<std::int64_t>(step) * 25;
    const time_point ts{std::chrono::milliseconds(t_ms)};
    const std::size_t c = sel & 3;
    const bool from_client = (sel & 4) != 0;
    const bool v6 = (sel & 8) != 0;
    const int server_sel = (sel >> 4) & 3;
    const std::size_t conn = (sel >> 6) & 1;

    ip_endpoint server;
    server.is_v6 = v6;
    if (v6) {
      server.address = {0x20, 0x01, 0x0d, 0xb8};
      server.address[15] = server_sel == 2 ? 9 : 1;
    } else {
      server.address = {10, 0, 0, static_cast<std::uint8_t>(server_sel == 2 ? 9 : 1)};
    }
    const std::uint8_t what = op & 3;

    if (what == 3) {  // an odd frame: random bytes under some link type, or a refused frame
      static constexpr int dlts[] = {dlt_null, dlt_en10mb, dlt_raw, dlt_loop, dlt_linux_sll, dlt_ipv4, dlt_ipv6,
                                     dlt_linux_sll2, 105};
      const int dlt = dlts[in.u8() % std::size(dlts)];
      const auto bytes = in.bytes(in.u8() % 96);
      if (sel & 0x80) a.on_skipped(static_cast<frame_verdict>(1 + sel % 6));
      else a.on_frame(dlt, ts, bytes, static_cast<std::uint32_t>(bytes.size() + (sel & 0x40 ? 100 : 0)));
      continue;
    }

    byte_buffer payload;
    const std::uint8_t choice = in.u8();
    const auto& pal = palette(c);
    if (choice < 2 * pal.size()) {
      payload = pal[choice % pal.size()];
      if (payload.size() >= 16) payload[12] = static_cast<std::uint8_t>(in.u8() % 8);  // call_id
      if (op & 0x20) {
        const auto& more = pal[in.u8() % pal.size()];
        payload.insert(payload.end(), more.begin(), more.end());
      }
    } else if (choice < 0xC0) {
      const auto raw = in.bytes(in.u8() % 64);
      payload.assign(raw.begin(), raw.end());
    }  // else: no payload (a pure ACK, a SYN, a FIN)
    if ((op & 0x10) && !payload.empty()) payload.resize(in.u8() % (payload.size() + 1));

    if (what == 1) {  // UDP: a ping, a cookie or anything
      std::vector<std::uint8_t> body;
      const std::uint8_t u = in.u8();
      const auto ctx = context_of(u & 0x10 ? (c + 1) % clients : c);
      if ((u & 3) == 0) body.assign(ctx.begin(), ctx.end());
      else if ((u & 3) == 1) protocol::encode_reachability_cookie(body, 7, ctx);
      else body = payload;
      const ip_endpoint cl = client_ep(c, v6, 2500);
      ip_endpoint srv = server;
      srv.port = (u & 4) ? static_cast<std::uint16_t>(40000 + u) : 7778;
      const bool towards_client = (u & 8) == 0;
      packet p;
      p.ts = ts;
      p.ip_version = v6 ? 6 : 4;
      p.protocol = ip_proto_udp;
      const ip_endpoint& s = towards_client ? srv : cl;
      const ip_endpoint& d = towards_client ? cl : srv;
      if (v6) {
        p.src6 = s.address.data();
        p.dst6 = d.address.data();
      } else {
        p.src4 = s.v4_host_order();
        p.dst4 = d.v4_host_order();
      }
      p.src_port = s.port;
      p.dst_port = d.port;
      p.payload = body;
      p.payload_length = static_cast<std::uint32_t>(body.size() + (u & 0x20 ? 5 : 0));  // snaplen-cut when bigger
      p.ip_bytes = static_cast<std::uint32_t>((v6 ? 48 : 28) + p.payload_length);
      a.on_packet(p);
      continue;
    }

    // TCP
    const ip_endpoint cl = client_ep(c, v6, static_cast<std::uint16_t>(50000 + conn));
    ip_endpoint srv = server;
    srv.port = server_sel == 1 ? 135 : server_sel == 3 ? static_cast<std::uint16_t>(8000 + sel) : 7777;
    std::uint8_t flags = tcp_flag::ack | (payload.empty() ? 0 : tcp_flag::psh);
    if (op & 0x40) flags = in.u8();
    std::uint32_t& mine = next[c][conn][from_client ? 0 : 1];
    const std::uint32_t peer = next[c][conn][from_client ? 1 : 0];
    std::uint32_t seq = mine;
    switch (in.u8() % 4) {
      case 0: break;
      case 1: seq = mine - static_cast<std::uint32_t>(payload.size()); break;  // a replay
      case 2: seq = mine + in.u8(); break;                                     // ahead: a gap
      default: seq = in.u32(); break;
    }
    mine = seq + static_cast<std::uint32_t>(payload.size()) + ((flags & (tcp_flag::syn | tcp_flag::fin)) ? 1 : 0);
    packet p;
    p.ts = ts;
    p.ip_version = v6 ? 6 : 4;
    p.protocol = ip_proto_tcp;
    const ip_endpoint& s = from_client ? cl : srv;
    const ip_endpoint& d = from_client ? srv : cl;
    if (v6) {
      p.src6 = s.address.data();
      p.dst6 = d.address.data();
    } else {
      p.src4 = s.v4_host_order();
      p.dst4 = d.v4_host_order();
    }
    p.src_port = s.port;
    p.dst_port = d.port;
    p.seq = seq;
    p.ack = peer;
    p.tcp_flags = flags;
    p.payload = payload;
    p.payload_length = static_cast<std::uint32_t>(payload.size());
    p.ip_bytes = static_cast<std::uint32_t>((v6 ? 60 : 40) + payload.size());
    if (what == 2) {
      const byte_buffer f = raw_frame(p, s, d);
      a.on_frame(dlt_raw, ts, f, static_cast<std::uint32_t>(f.size()));
    } else {
      a.on_packet(p);
    }
    if (ops == 64) nudge::fuzz::check_analysis(a.finish(), false);  // finish() midway; analysis goes on
  }
  const analysis r = a.finish();
  nudge::fuzz::check_analysis(r, size % 4 == 0);
  // NUDGE_FUZZ_TRACE=1: what the script amounted to (to check that the seeds do what they say).
  for (const auto& c : r.clients)
    NUDGE_FUZZ_TRACE("client %s %s: flows %zu polls %llu fetches %llu pings %llu/%llu waits %llu events %llu\n",
                     c.address.address_string().c_str(), std::string(to_string(c.mode)).c_str(), c.flows.size(),
                     static_cast<unsigned long long>(c.polls), static_cast<unsigned long long>(c.fetches),
                     static_cast<unsigned long long>(c.pings_answered), static_cast<unsigned long long>(c.pings),
                     static_cast<unsigned long long>(c.async_waits), static_cast<unsigned long long>(c.events));
  NUDGE_FUZZ_TRACE("packets %llu skipped %llu pdus %llu gaps %llu retransmissions %llu malformed %llu\n",
                   static_cast<unsigned long long>(r.packets), static_cast<unsigned long long>(r.skipped.total()),
                   static_cast<unsigned long long>(r.stream.pdus), static_cast<unsigned long long>(r.stream.gaps),
                   static_cast<unsigned long long>(r.stream.retransmissions),
                   static_cast<unsigned long long>(r.stream.malformed_pdus));
  return 0;
}
