// fuzz_notifier_session: end to end through notifier_core, no sockets. The input
// is a script (read with FuzzedDataProvider, see session_ops.hpp): arbitrary TCP
// chunks and well-formed (optionally split or corrupted) PDUs on a few
// connections, datagrams, events and timer calls with increasing time. Handles
// the core hands out are learned from its responses, so the scripts reach
// registration, polls, pings, async waits and their timers.
//
// Fatal (abort): memory errors, UB, an output that the project's own decoders
// refuse, on_timer leaving an expired deadline, a datagram to a forbidden address,
// and the protocol limits: a successful EcDoRpcExt2's rgbOut within the client's
// pcbOut (MS-OXCRPC 3.1.4.2), every PDU within max_xmit_frag (the binds here
// negotiate 5840).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "session_ops.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::notifier;
using nudge::fuzz::notifier_op;

namespace {

enum class call_kind : std::uint8_t { connect, register_push, rpc_ext2, async_connect, async_wait, disconnect, other };

struct call_info {
  call_kind kind;
  std::uint16_t opnum = 0;
  std::uint32_t max_out = 0;
  byte_buffer context;  // register: what was registered
};

struct conn_slot {
  connection_id id = 0;
  bool open = true;
  std::uint16_t context_id = 0;
  std::uint16_t max_recv_frag = dcerpc::default_max_frag;  // max_xmit_frag of the last bind_ack
  /// Responses arriving in fragments, joined as a client would.
  std::shared_ptr<dcerpc::stub_reassembler> responses =
      std::make_shared<dcerpc::stub_reassembler>(emsmdb::max_response_stub);
};

struct registration {
  std::uint32_t handle = 0;
  byte_buffer context;
};

ip_endpoint peer_of(std::uint8_t kind, std::uint16_t port) {
  switch (kind) {
    case 0: return ip_endpoint::v4(127, 0, 0, 1, port);
    case 1: return *ip_endpoint::parse("[::1]:" + std::to_string(port));
    case 2: return ip_endpoint::v4(10, 1, 2, 3, port);
    default: return ip_endpoint::v4(192, 168, 1, 5, port);
  }
}

class harness {
 public:
  explicit harness(FuzzedDataProvider& p) : p_(p), core_(make_config(p)) {
    const auto n = p_.ConsumeIntegralInRange<std::uint8_t>(1, 4);
    for (std::uint8_t i = 0; i < n; ++i) open();
  }

  void run() {
    std::size_t steps = 0;
    while (p_.remaining_bytes() > 0 && steps++ < fuzz::max_steps) {
      step(static_cast<notifier_op>(
          p_.ConsumeIntegralInRange<std::uint8_t>(0, static_cast<std::uint8_t>(notifier_op::count_) - 1)));
      drain();
      const time_point next = core_.next_deadline();
      NUDGE_FUZZ_CHECK(next == never || next > last_timer_, "on_timer left an expired deadline behind");
    }
    // Peer closes everything at the end: the core must release every session cleanly.
    for (auto& c : conns_)
      if (c.open) core_.connection_closed(now_, c.id);
    drain();
    NUDGE_FUZZ_CHECK(core_.open_connections() == 0, "connections left open after every peer closed");
    const auto& st = core_.stats();
    NUDGE_FUZZ_TRACE("end: sessions %llu registrations %llu pings %llu (resent %llu) cookies %llu waits %llu "
                     "timeouts %llu fetched %llu faults %llu dropped %llu\n",
                     static_cast<unsigned long long>(st.sessions_opened),
                     static_cast<unsigned long long>(st.registrations),
                     static_cast<unsigned long long>(st.datagrams_sent),
                     static_cast<unsigned long long>(st.datagrams_resent),
                     static_cast<unsigned long long>(st.cookies_accepted),
                     static_cast<unsigned long long>(st.async_waits),
                     static_cast<unsigned long long>(st.async_timeouts),
                     static_cast<unsigned long long>(st.events_fetched),
                     static_cast<unsigned long long>(st.faults_sent),
                     static_cast<unsigned long long>(st.connections_dropped_malformed));
  }

 private:
  static notifier_config make_config(FuzzedDataProvider& p) {
    notifier_config cfg;
    cfg.policy = static_cast<callback_policy>(p.ConsumeIntegralInRange<std::uint8_t>(0, 2));
    cfg.push_enabled = !p.ConsumeBool();
    cfg.async_enabled = !p.ConsumeBool();
    cfg.allow_non_loopback = p.ConsumeBool();
    cfg.polls_max_ms = p.ConsumeIntegral<std::uint32_t>();
    cfg.ping_resend = std::chrono::milliseconds(p.ConsumeIntegralInRange<std::uint32_t>(1, 600000));
    cfg.async_hold = std::chrono::milliseconds(p.ConsumeIntegralInRange<std::uint32_t>(1, 600000));
    cfg.max_pending_per_mailbox = p.ConsumeIntegralInRange<std::uint32_t>(1, 4096);
    cfg.tcp_port = 7777;
    return cfg;
  }

  void open() {
    if (conns_.size() >= fuzz::max_connections) return;
    const auto kind = p_.ConsumeIntegralInRange<std::uint8_t>(0, 3);
    conn_slot s;
    s.id = core_.open_connection(now_, peer_of(kind, static_cast<std::uint16_t>(40000 + conns_.size())));
    conns_.push_back(s);
  }

  conn_slot& slot() { return conns_[p_.ConsumeIntegralInRange<std::size_t>(0, conns_.size() - 1)]; }

  byte_buffer blob(std::size_t max) {
    const auto n = p_.ConsumeIntegralInRange<std::size_t>(0, max);
    return p_.ConsumeBytes<std::uint8_t>(n);
  }

  emsmdb::context_handle handle(const std::vector<emsmdb::context_handle>& known) {
    if (!p_.ConsumeBool()) {
      if (known.empty()) return {};
      return known[p_.ConsumeIntegralInRange<std::size_t>(0, known.size() - 1)];
    }
    emsmdb::context_handle h;
    auto raw = p_.ConsumeBytes<std::uint8_t>(20);
    raw.resize(20);
    h.attributes = raw[0] | (raw[1] << 8) | (raw[2] << 16) | (std::uint32_t{raw[3]} << 24);
    std::copy(raw.begin() + 4, raw.end(), h.uuid.bytes.begin());
    return h;
  }

  std::uint16_t ctx(const conn_slot& s) {
    return p_.ConsumeBool() ? p_.ConsumeIntegralInRange<std::uint16_t>(0, 3) : s.context_id;
  }

  /// Delivers a PDU whole, split in two, with one byte corrupted, a byte at a
  /// time, or re-cut into request fragments.
  void feed(conn_slot& s, byte_buffer bytes) {
    switch (p_.ConsumeIntegralInRange<std::uint8_t>(0, fuzz::feed_modes - 1)) {
      case 0: core_.receive(now_, s.id, bytes); break;
      case 1: {
        const auto cut = p_.ConsumeIntegralInRange<std::size_t>(0, bytes.size());
        core_.receive(now_, s.id, bytes_view(bytes).first(cut));
        drain();
        core_.receive(now_, s.id, bytes_view(bytes).subspan(cut));
        break;
      }
      case 2: {
        if (!bytes.empty()) {
          const byte_buffer original = bytes;
          const auto pos = p_.ConsumeIntegralInRange<std::size_t>(0, bytes.size() - 1);
          bytes[pos] ^= p_.ConsumeIntegralInRange<std::uint8_t>(1, 255);
          forget_if_changed(s, original, bytes);
        }
        core_.receive(now_, s.id, bytes);
        break;
      }
      case 3:
        for (std::size_t i = 0; i < bytes.size(); ++i) core_.receive(now_, s.id, bytes_view(bytes).subspan(i, 1));
        break;
      default: {
        const auto max_frag = p_.ConsumeIntegralInRange<std::size_t>(32, 255);
        auto d = dcerpc::decode_pdu(bytes);
        const auto* r = d.complete() ? std::get_if<dcerpc::request_pdu>(&d.value) : nullptr;
        if (!r) {
          core_.receive(now_, s.id, bytes);
          break;
        }
        byte_buffer cut;
        dcerpc::encode_request_fragments(cut, r->call_id, r->context_id, r->opnum, r->stub, max_frag);
        for (std::size_t used = 0; used < cut.size();) {
          const auto h = dcerpc::decode_common_header(bytes_view(cut).subspan(used));
          core_.receive(now_, s.id, bytes_view(cut).subspan(used, h.value.frag_length));
          used += h.value.frag_length;
          drain();
        }
        break;
      }
    }
  }

  /// A corrupted request may now be another call (opnum, call id, stub): its answer is not checked.
  void forget_if_changed(const conn_slot& s, bytes_view original, bytes_view bytes) {
    if (!last_call_) return;
    auto d0 = dcerpc::decode_pdu(original);
    auto d = dcerpc::decode_pdu(bytes);
    const auto* r0 = d0.complete() ? std::get_if<dcerpc::request_pdu>(&d0.value) : nullptr;
    const auto* r = d.complete() ? std::get_if<dcerpc::request_pdu>(&d.value) : nullptr;
    if (r && r0 && r->call_id == r0->call_id && r->opnum == r0->opnum && fuzz::same_bytes(r->stub, r0->stub)) return;
    calls_.erase({s.id, *last_call_});
    if (r) calls_.erase({s.id, r->call_id});
  }

  template <class StubWriter>
  void call(conn_slot& s, std::uint16_t opnum, call_info info, StubWriter&& write_stub) {
    const std::uint16_t context_id = ctx(s);
    const std::uint32_t call_id = next_call_++;
    byte_buffer pdu;
    dcerpc::encode_request(pdu, call_id, context_id, opnum, write_stub);
    info.opnum = opnum;
    calls_[{s.id, call_id}] = std::move(info);
    last_call_ = call_id;
    feed(s, std::move(pdu));
    last_call_.reset();
  }

  void step(notifier_op op) {
    NUDGE_FUZZ_TRACE("op %d\n", static_cast<int>(op));
    switch (op) {
      case notifier_op::raw_chunk: {
        conn_slot& s = slot();
        core_.receive(now_, s.id, blob(fuzz::max_raw));
        break;
      }
      case notifier_op::bind: {
        conn_slot& s = slot();
        const auto iface = p_.ConsumeIntegralInRange<std::uint8_t>(0, 2);
        const bool ndr_missing = p_.ConsumeBool();
        dcerpc::bind_pdu b;
        b.call_id = next_call_++;
        dcerpc::presentation_context pc;
        pc.context_id = p_.ConsumeIntegralInRange<std::uint16_t>(0, 3);
        pc.abstract_syntax = iface == 0 ? emsmdb_syntax() : iface == 1 ? async_emsmdb_syntax() : ndr_syntax();
        if (!ndr_missing) pc.transfer_syntaxes.push_back(ndr_syntax());
        b.contexts.push_back(pc);
        if (p_.ConsumeBool()) {
          pc.context_id = static_cast<std::uint16_t>(pc.context_id + 1);
          pc.abstract_syntax = iface == 1 ? emsmdb_syntax() : async_emsmdb_syntax();
          pc.transfer_syntaxes = {ndr_syntax()};
          b.contexts.push_back(pc);
        }
        if (p_.ConsumeBool()) b.max_recv_frag = p_.ConsumeIntegralInRange<std::uint16_t>(1000, 5840);
        s.context_id = b.contexts.front().context_id;
        byte_buffer pdu;
        dcerpc::encode(pdu, b);
        feed(s, std::move(pdu));
        break;
      }
      case notifier_op::connect: {
        conn_slot& s = slot();
        const auto choice = p_.ConsumeIntegralInRange<std::uint8_t>(0, 4);
        std::string dn = "/o=nudge/ou=fuzz/cn=user" + std::to_string(choice);
        if (choice == 4) {
          auto raw = blob(64);
          dn.assign(raw.begin(), raw.end());
        }
        emsmdb::connect_ex_request req;
        req.user_dn = dn;
        call(s, opnum::do_connect_ex, {call_kind::connect}, [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::register_push: {
        conn_slot& s = slot();
        emsmdb::register_push_request req;
        req.cxh = handle(cxhs_);
        const byte_buffer context = blob(20);
        req.context = context;
        byte_buffer sa;
        const auto sa_choice = p_.ConsumeIntegralInRange<std::uint8_t>(0, 4);
        if (sa_choice < 4) {
          const auto port = p_.ConsumeIntegral<std::uint16_t>();
          ip_endpoint ep = sa_choice == 0   ? ip_endpoint::v4(127, 0, 0, 1, port)
                           : sa_choice == 1 ? *ip_endpoint::parse("[::1]:1")
                           : sa_choice == 2 ? ip_endpoint::v4(10, 0, 0, 7, port)
                                            : *ip_endpoint::parse("[::ffff:127.0.0.2]:1");
          ep.port = port;
          sa = windows_sockaddr(ep);
        } else {
          sa = blob(32);
        }
        req.callback_address = sa;
        call_info info{call_kind::register_push};
        info.context = context;
        call(s, opnum::register_push_notification, std::move(info), [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::rpc_ext2: {
        conn_slot& s = slot();
        emsmdb::rpc_ext2_request req;
        req.cxh = handle(cxhs_);
        byte_buffer rgb_in;
        if (p_.ConsumeBool())
          rgb_in = blob(64);
        else
          rop::encode_empty_request(rgb_in);
        req.rgb_in = rgb_in;
        switch (p_.ConsumeIntegralInRange<std::uint8_t>(0, 2)) {
          case 0: req.max_out = 0x8008; break;
          case 1: req.max_out = p_.ConsumeIntegralInRange<std::uint32_t>(0, 300); break;
          default: req.max_out = p_.ConsumeIntegral<std::uint32_t>(); break;
        }
        call_info info{call_kind::rpc_ext2};
        info.max_out = req.max_out;
        call(s, opnum::do_rpc_ext2, std::move(info), [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::async_connect: {
        conn_slot& s = slot();
        const emsmdb::async_connect_request req{handle(cxhs_)};
        call(s, opnum::do_async_connect_ex, {call_kind::async_connect}, [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::async_wait: {
        conn_slot& s = slot();
        emsmdb::async_wait_request req;
        req.acxh = handle(acxhs_);
        req.flags_in = p_.ConsumeIntegral<std::uint8_t>();
        call(s, opnum::do_async_wait_ex, {call_kind::async_wait}, [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::other_call: {
        conn_slot& s = slot();
        const auto op_number = p_.ConsumeIntegralInRange<std::uint16_t>(0, 20);
        const byte_buffer stub = blob(64);
        call(s, op_number, {call_kind::other}, [&](byte_writer& w) { w.bytes(stub); });
        break;
      }
      case notifier_op::datagram: {
        const ip_endpoint from = peer_of(p_.ConsumeIntegralInRange<std::uint8_t>(0, 2), 50000);
        byte_buffer d;
        if (p_.ConsumeBool() && !regs_.empty()) {
          const registration& r = regs_[p_.ConsumeIntegralInRange<std::size_t>(0, regs_.size() - 1)];
          encode_reachability_cookie(d, r.handle, r.context);
        } else {
          d = blob(64);
        }
        core_.receive_datagram(now_, from, d);
        break;
      }
      case notifier_op::inject_event: {
        if (core_.mailbox_count() == 0) core_.mailbox("/o=nudge/ou=fuzz/cn=user0");
        const auto mb = p_.ConsumeIntegralInRange<std::uint32_t>(0, static_cast<std::uint32_t>(core_.mailbox_count() - 1));
        const auto n = p_.ConsumeIntegralInRange<std::uint8_t>(1, 255);
        for (std::uint8_t i = 0; i < n; ++i) {
          const auto before = core_.events_pending(mb);
          const auto ev = core_.inject_event(now_, mb);
          NUDGE_FUZZ_CHECK(ev.created_at == now_, "an event stamped with another time");
          NUDGE_FUZZ_CHECK(core_.events_pending(mb) <= core_.config().max_pending_per_mailbox, "queue over its bound");
          NUDGE_FUZZ_CHECK(core_.events_pending(mb) >= before, "inject_event removed events");
        }
        break;
      }
      case notifier_op::timer: {
        now_ += std::chrono::milliseconds(p_.ConsumeIntegralInRange<std::uint32_t>(0, 600000));
        core_.on_timer(now_);
        last_timer_ = now_;
        break;
      }
      case notifier_op::open_connection: open(); break;
      case notifier_op::peer_close: {
        conn_slot& s = slot();
        core_.connection_closed(now_, s.id);  // twice is harmless: the core ignores unknown ids
        s.open = false;
        break;
      }
      case notifier_op::disconnect: {
        conn_slot& s = slot();
        const emsmdb::disconnect_request req{handle(cxhs_)};
        call(s, opnum::do_disconnect, {call_kind::disconnect}, [&](byte_writer& w) { emsmdb::encode(w, req); });
        break;
      }
      case notifier_op::count_: break;
    }
  }

  void on_response(connection_id conn, const dcerpc::response_pdu& r) {
    auto it = calls_.find({conn, r.call_id});
    if (it == calls_.end()) return;  // a call sent as raw bytes
    const call_info info = std::move(it->second);
    calls_.erase(it);
    switch (info.kind) {
      case call_kind::connect: {
        auto d = emsmdb::decode_connect_ex_response(r.stub);
        NUDGE_FUZZ_CHECK(d.complete(), "the core's EcDoConnectEx response does not decode");
        if (d.value.return_code == ec::success && cxhs_.size() < 32) cxhs_.push_back(d.value.cxh);
        NUDGE_FUZZ_TRACE("  connect rc %#x, %zu handles known\n", d.value.return_code, cxhs_.size());
        break;
      }
      case call_kind::register_push: {
        auto d = emsmdb::decode_register_push_response(r.stub);
        NUDGE_FUZZ_CHECK(d.complete(), "the core's EcRRegisterPushNotification response does not decode");
        NUDGE_FUZZ_CHECK(d.value.return_code != ec::success || info.context.size() <= max_push_context,
                         "a context over 16 bytes was accepted");
        if (d.value.return_code == ec::success && regs_.size() < 32)
          regs_.push_back({d.value.notification_handle, info.context});
        NUDGE_FUZZ_TRACE("  register rc %#x\n", d.value.return_code);
        break;
      }
      case call_kind::rpc_ext2: {
        auto d = emsmdb::decode_rpc_ext2_response(r.stub);
        NUDGE_FUZZ_CHECK(d.complete(), "the core's EcDoRpcExt2 response does not decode");
        struct counter : rop::rop_visitor {
          std::size_t mails = 0;
          void on_new_mail(const rop::new_mail_notification&) override { ++mails; }
          void on_pending(std::uint16_t) override {}
        } v;
        if (d.value.return_code != ec::success) {
          NUDGE_FUZZ_CHECK(d.value.rgb_out.empty(), "a failed EcDoRpcExt2 returned an rgbOut");
        } else {
          auto rops = rop::decode_response(d.value.rgb_out, v);
          NUDGE_FUZZ_CHECK(rops.complete(), "the core's rgbOut does not decode");
        }
        NUDGE_FUZZ_TRACE("  ext2 rc %#x, pcbOut %u, rgbOut %zu bytes, %zu NewMail\n", d.value.return_code, info.max_out,
                         d.value.rgb_out.size(), v.mails);
        if (d.value.return_code == ec::success)
          NUDGE_FUZZ_CHECK(d.value.rgb_out.size() <= std::min<std::uint32_t>(info.max_out, 0x8008),
                           "EcDoRpcExt2 rgbOut larger than the client's pcbOut");
        // MS-OXCRPC 3.1.4.2: pcbOut over 0x40000 is a fault, under 8 ecRpcFailed.
        NUDGE_FUZZ_CHECK(info.max_out <= emsmdb::max_pcb_out, "pcbOut above 0x40000 answered instead of faulted");
        if (info.max_out < emsmdb::min_pcb_out)
          NUDGE_FUZZ_CHECK(d.value.return_code != ec::success, "pcbOut below 8 answered with success");
        break;
      }
      case call_kind::async_connect: {
        auto d = emsmdb::decode_async_connect_response(r.stub);
        NUDGE_FUZZ_CHECK(d.complete(), "the core's EcDoAsyncConnectEx response does not decode");
        if (d.value.return_code == ec::success && acxhs_.size() < 32) acxhs_.push_back(d.value.acxh);
        NUDGE_FUZZ_TRACE("  async connect rc %#x\n", d.value.return_code);
        break;
      }
      case call_kind::async_wait:
        NUDGE_FUZZ_CHECK(emsmdb::decode_async_wait_response(r.stub).complete(),
                         "the core's EcDoAsyncWaitEx response does not decode");
        break;
      case call_kind::disconnect: {
        auto d = emsmdb::decode_disconnect_response(r.stub);
        NUDGE_FUZZ_CHECK(d.complete(), "the core's EcDoDisconnect response does not decode");
        NUDGE_FUZZ_CHECK(d.value.cxh.is_null(), "EcDoDisconnect returned a live handle");
        break;
      }
      case call_kind::other:
        if (info.opnum == opnum::dummy_rpc)
          NUDGE_FUZZ_CHECK(emsmdb::decode_dummy_response(r.stub).complete(), "the core's EcDummyRpc response");
        break;
    }
  }

  void drain() {
    for (auto& o : core_.outputs()) {
      if (auto* t = std::get_if<tcp_send>(&o)) {
        NUDGE_FUZZ_TRACE("  tcp_send conn %llu: %zu bytes, %s\n", static_cast<unsigned long long>(t->conn),
                         t->bytes.size(), t->bytes.size() > 2 ? dcerpc::packet_type_name(t->bytes[2]) : "?");
        NUDGE_FUZZ_CHECK(std::any_of(conns_.begin(), conns_.end(), [&](const conn_slot& s) { return s.id == t->conn; }),
                         "output on a connection never opened");
        conn_slot* owner = nullptr;
        for (auto& s : conns_)
          if (s.id == t->conn) owner = &s;
        // One send may hold several fragments of a response: each must decode,
        // fit the client's max_recv_frag, and the whole must join.
        for (std::size_t used = 0; used < t->bytes.size();) {
          auto d = dcerpc::decode_pdu(bytes_view(t->bytes).subspan(used));
          NUDGE_FUZZ_CHECK(d.complete(), "the core sent a PDU its own decoder refuses");
          used += d.consumed;
          NUDGE_FUZZ_CHECK(d.consumed <= std::min<std::size_t>(owner ? owner->max_recv_frag : dcerpc::default_max_frag,
                                                               dcerpc::default_max_frag),
                           "a PDU larger than the negotiated max_xmit_frag");
          NUDGE_FUZZ_CHECK(std::holds_alternative<dcerpc::response_pdu>(d.value) ||
                               std::holds_alternative<dcerpc::bind_ack_pdu>(d.value) ||
                               std::holds_alternative<dcerpc::bind_nak_pdu>(d.value) ||
                               std::holds_alternative<dcerpc::fault_pdu>(d.value),
                           "the core sent a PDU type a server never sends");
          if (auto* ack = std::get_if<dcerpc::bind_ack_pdu>(&d.value); ack && owner)
            owner->max_recv_frag = ack->max_xmit_frag;  // what the core promised to keep to
          auto* r = std::get_if<dcerpc::response_pdu>(&d.value);
          if (!r || !owner) continue;
          auto joined = owner->responses->add(r->call_id, r->context_id, r->pfc_flags, r->stub);
          NUDGE_FUZZ_CHECK(joined.outcome == dcerpc::stub_reassembler::status::whole ||
                               joined.outcome == dcerpc::stub_reassembler::status::need_more,
                           "the core's response fragments do not join");
          if (joined.outcome != dcerpc::stub_reassembler::status::whole) continue;
          dcerpc::response_pdu whole = *r;
          whole.stub = joined.stub();
          on_response(t->conn, whole);
        }
      } else if (auto* u = std::get_if<udp_send>(&o)) {
        NUDGE_FUZZ_TRACE("  udp_send to %s: %zu bytes\n", u->to.to_string().c_str(), u->bytes.size());
        NUDGE_FUZZ_CHECK(u->bytes.size() <= max_push_context, "a ping larger than 16 bytes");
        NUDGE_FUZZ_CHECK(core_.config().allow_non_loopback || u->to.is_loopback(), "a ping outside loopback");
      } else if (auto* c = std::get_if<close_connection>(&o)) {
        NUDGE_FUZZ_TRACE("  close conn %llu: %s\n", static_cast<unsigned long long>(c->conn), c->reason.c_str());
        for (auto& s : conns_)
          if (s.id == c->conn) s.open = false;
        NUDGE_FUZZ_CHECK(!c->reason.empty(), "a close without a reason");
      }
    }
    core_.outputs().clear();
    // The core answers every call at once except a held EcDoAsyncWaitEx: forget the
    // rest, so a later raw PDU reusing a call id cannot be mistaken for one of them.
    std::erase_if(calls_, [&](const auto& kv) {
      return kv.second.kind != call_kind::async_wait && !(last_call_ && kv.first.second == *last_call_);
    });
  }

  FuzzedDataProvider& p_;
  notifier_core core_;
  time_point now_ = time_point(std::chrono::seconds(1000));
  time_point last_timer_{};
  std::vector<conn_slot> conns_;
  std::uint32_t next_call_ = 1;
  std::optional<std::uint32_t> last_call_;  // the call being fed
  std::map<std::pair<connection_id, std::uint32_t>, call_info> calls_;
  std::vector<emsmdb::context_handle> cxhs_;
  std::vector<emsmdb::context_handle> acxhs_;
  std::vector<registration> regs_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider p(data, size);
  harness h(p);
  h.run();
  return 0;
}
