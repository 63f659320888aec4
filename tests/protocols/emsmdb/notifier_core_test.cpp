// The notifier core driven by hand, in test-controlled time: each test plays
// a client byte for byte and checks what the core answers and when.
#include <gtest/gtest.h>

#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/sockaddr.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::notifier;
using namespace std::chrono_literals;

namespace {

class scripted_client {
 public:
  scripted_client(notifier_core& core, ip_endpoint peer, bool async_iface = false,
                  std::uint16_t max_recv_frag = dcerpc::default_max_frag)
      : core_(core), conn_(core.open_connection(time_point{}, peer)) {
    dcerpc::bind_pdu b;
    b.call_id = next_call_++;
    b.max_recv_frag = max_recv_frag;
    dcerpc::presentation_context ctx;
    ctx.abstract_syntax = async_iface ? async_emsmdb_syntax() : emsmdb_syntax();
    ctx.transfer_syntaxes.push_back(ndr_syntax());
    b.contexts.push_back(ctx);
    byte_buffer pdu;
    dcerpc::encode(pdu, b);
    send_raw(time_point{}, pdu);
    auto ack = take_pdu();
    EXPECT_TRUE(std::holds_alternative<dcerpc::bind_ack_pdu>(ack));
    if (auto* a = std::get_if<dcerpc::bind_ack_pdu>(&ack)) negotiated_max_xmit = a->max_xmit_frag;
  }

  std::uint16_t negotiated_max_xmit = 0;
  std::uint32_t next_call_id() const { return next_call_; }
  std::uint32_t take_call_id() { return next_call_++; }

  /// Everything the core sent this connection, as raw bytes (all fragments).
  byte_buffer take_bytes() {
    byte_buffer all;
    auto& outs = core_.outputs();
    for (auto it = outs.begin(); it != outs.end();) {
      if (auto* t = std::get_if<tcp_send>(&*it); t && t->conn == conn_) {
        all.insert(all.end(), t->bytes.begin(), t->bytes.end());
        it = outs.erase(it);
      } else {
        ++it;
      }
    }
    return all;
  }

  connection_id conn() const { return conn_; }

  void send_raw(time_point now, const byte_buffer& bytes) { core_.receive(now, conn_, bytes); }

  template <class Stub>
  void call(time_point now, std::uint16_t op, const Stub& s) {
    byte_buffer pdu;
    dcerpc::encode_request(pdu, next_call_++, 0, op, [&](byte_writer& w) { emsmdb::encode(w, s); });
    send_raw(now, pdu);
  }

  /// The next TCP PDU the core sent to this connection (leaves others in place).
  dcerpc::pdu take_pdu() {
    auto& outs = core_.outputs();
    for (auto it = outs.begin(); it != outs.end(); ++it) {
      if (auto* t = std::get_if<tcp_send>(&*it); t && t->conn == conn_) {
        last_ = std::move(t->bytes);
        outs.erase(it);
        auto d = dcerpc::decode_pdu(last_);
        EXPECT_TRUE(d.complete()) << d.reason;
        return d.value;
      }
    }
    ADD_FAILURE() << "no PDU for this connection";
    return {};
  }
  bool has_pdu() const {
    for (auto& o : core_.outputs())
      if (auto* t = std::get_if<tcp_send>(&o); t && t->conn == conn_) return true;
    return false;
  }
  bytes_view take_stub() {
    auto p = take_pdu();
    auto* r = std::get_if<dcerpc::response_pdu>(&p);
    EXPECT_NE(r, nullptr) << "expected a response";
    return r ? r->stub : bytes_view{};
  }

  emsmdb::context_handle connect(time_point now, const std::string& dn) {
    emsmdb::connect_ex_request req;
    req.user_dn = dn;
    call(now, opnum::do_connect_ex, req);
    auto d = emsmdb::decode_connect_ex_response(take_stub());
    EXPECT_TRUE(d.complete());
    EXPECT_EQ(d.value.return_code, 0u);
    polls_max = d.value.polls_max_ms;
    return d.value.cxh;
  }

  emsmdb::register_push_response register_push(time_point now, const emsmdb::context_handle& cxh,
                                                const byte_buffer& ctx, const byte_buffer& sockaddr) {
    call(now, opnum::register_push_notification, emsmdb::register_push_request{cxh, 0, ctx, 0xFFFFFFFF, sockaddr});
    auto d = emsmdb::decode_register_push_response(take_stub());
    EXPECT_TRUE(d.complete());
    return d.value;
  }

  struct fetch_result : rop::rop_visitor {
    std::vector<rop::new_mail_notification> mails;
    int pending = 0;
    void on_new_mail(const rop::new_mail_notification& n) override { mails.push_back(n); }
    void on_pending(std::uint16_t) override { ++pending; }
  };
  fetch_result fetch(time_point now, const emsmdb::context_handle& cxh, std::uint32_t max_out = 0x8008) {
    byte_buffer rgb_in;
    rop::encode_empty_request(rgb_in);
    emsmdb::rpc_ext2_request req;
    req.cxh = cxh;
    req.rgb_in = rgb_in;
    req.max_out = max_out;
    call(now, opnum::do_rpc_ext2, req);
    auto d = emsmdb::decode_rpc_ext2_response(take_stub());
    EXPECT_TRUE(d.complete());
    EXPECT_EQ(d.value.return_code, 0u);
    fetch_result r;
    EXPECT_TRUE(rop::decode_response(d.value.rgb_out, r).complete());
    return r;
  }

  std::uint32_t polls_max = 0;

 private:
  notifier_core& core_;
  connection_id conn_;
  std::uint32_t next_call_ = 1;
  byte_buffer last_;
};

std::vector<udp_send> take_datagrams(notifier_core& core) {
  std::vector<udp_send> out;
  auto& outs = core.outputs();
  for (auto it = outs.begin(); it != outs.end();) {
    if (auto* u = std::get_if<udp_send>(&*it)) {
      out.push_back(std::move(*u));
      it = outs.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

const ip_endpoint client_ep = ip_endpoint::v4(127, 0, 0, 2, 50000);
const ip_endpoint callback_ep = ip_endpoint::v4(127, 0, 0, 2, 2500);
const byte_buffer ctx8 = {'n', 'u', 'd', 'g', 'e', 0, 0, 1};
const std::string dn = "/o=nudge/ou=x/cn=Recipients/cn=alice";

}  // namespace

TEST(notifier_core, connect_returns_configured_polls_max) {
  notifier_config cfg;
  notifier_core core(cfg);
  scripted_client c(core, client_ep);
  c.connect(time_point{}, dn);
  EXPECT_EQ(c.polls_max, 60000u);  // Exchange's default
  notifier_config fast;
  fast.polls_max_ms = 5000;
  notifier_core core2(fast);
  scripted_client c2(core2, client_ep);
  c2.connect(time_point{}, dn);
  EXPECT_EQ(c2.polls_max, 5000u);
}

TEST(notifier_core, unknown_opnum_gives_a_fault_and_the_connection_lives) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  byte_buffer pdu;
  dcerpc::encode(pdu, dcerpc::request_pdu{9, 0, 0, 12, {}});
  c.send_raw(time_point{}, pdu);
  auto f = c.take_pdu();
  ASSERT_TRUE(std::holds_alternative<dcerpc::fault_pdu>(f));
  EXPECT_EQ(std::get<dcerpc::fault_pdu>(f).status, fault_status::op_rng_error);
  EXPECT_EQ(std::get<dcerpc::fault_pdu>(f).call_id, 9u);
  c.connect(time_point{}, dn);  // still serving
  EXPECT_EQ(core.open_connections(), 1u);
}

TEST(notifier_core, bad_stub_gives_bad_stub_data_fault) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  byte_buffer pdu;
  const byte_buffer junk = {1, 2, 3};
  dcerpc::encode(pdu, dcerpc::request_pdu{4, 0, 0, opnum::do_rpc_ext2, junk});
  c.send_raw(time_point{}, pdu);
  auto f = c.take_pdu();
  ASSERT_TRUE(std::holds_alternative<dcerpc::fault_pdu>(f));
  EXPECT_EQ(std::get<dcerpc::fault_pdu>(f).status, fault_status::bad_stub_data);
}

TEST(notifier_core, malformed_pdu_closes_only_that_connection) {
  notifier_core core({});
  scripted_client good(core, client_ep);
  auto cxh = good.connect(time_point{}, dn);
  scripted_client bad(core, ip_endpoint::v4(127, 0, 0, 3, 50001));
  byte_buffer garbage = {5, 0, 99, 3, 0x10, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  bad.send_raw(time_point{}, garbage);
  bool closed = false;
  for (auto& o : core.outputs())
    if (auto* c = std::get_if<close_connection>(&o)) closed = c->conn == bad.conn();
  EXPECT_TRUE(closed);
  EXPECT_EQ(core.stats().connections_dropped_malformed, 1u);
  core.outputs().clear();
  EXPECT_TRUE(good.fetch(time_point{}, cxh).mails.empty());
}

TEST(notifier_core, pdu_split_byte_by_byte_is_reassembled) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  emsmdb::connect_ex_request req;
  req.user_dn = dn;
  byte_buffer pdu;
  dcerpc::encode_request(pdu, 77, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
  for (std::uint8_t b : pdu) {
    EXPECT_FALSE(c.has_pdu());
    c.send_raw(time_point{}, byte_buffer{b});
  }
  auto p = c.take_pdu();
  ASSERT_TRUE(std::holds_alternative<dcerpc::response_pdu>(p));
  EXPECT_EQ(std::get<dcerpc::response_pdu>(p).call_id, 77u);
}

TEST(notifier_core, context_over_16_bytes_gives_ec_too_big) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  auto r = c.register_push(time_point{}, cxh, byte_buffer(17, 1), windows_sockaddr(callback_ep));
  EXPECT_EQ(r.return_code, ec::too_big);
  r = c.register_push(time_point{}, cxh, byte_buffer(16, 1), windows_sockaddr(callback_ep));
  EXPECT_EQ(r.return_code, ec::success);
}

TEST(notifier_core, wrong_sockaddr_size_or_family_gives_ec_invalid_param) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  auto sa = windows_sockaddr(callback_ep);
  sa.push_back(0);
  EXPECT_EQ(c.register_push(time_point{}, cxh, ctx8, sa).return_code, ec::invalid_param);
  sa = windows_sockaddr(callback_ep);
  sa[0] = 10;  // Linux AF_INET6
  EXPECT_EQ(c.register_push(time_point{}, cxh, ctx8, sa).return_code, ec::invalid_param);
  EXPECT_EQ(core.stats().registrations_rejected, 2u);
}

TEST(notifier_core, ping_is_exactly_the_context_and_resends_every_60s_until_fetched) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  ASSERT_EQ(c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(callback_ep)).return_code, 0u);
  const time_point t0 = time_point{} + 10s;
  core.inject_event(t0, core.mailbox(dn));
  auto d = take_datagrams(core);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, callback_ep);
  EXPECT_EQ(d[0].bytes, ctx8);
  EXPECT_EQ(core.next_deadline(), t0 + 60s);
  core.on_timer(t0 + 59s);
  EXPECT_TRUE(take_datagrams(core).empty());
  core.on_timer(t0 + 60s);
  EXPECT_EQ(take_datagrams(core).size(), 1u);  // resend: details still unfetched
  core.on_timer(t0 + 120s);
  EXPECT_EQ(take_datagrams(core).size(), 1u);
  EXPECT_EQ(core.stats().datagrams_resent, 2u);
  auto f = c.fetch(t0 + 125s, cxh);
  ASSERT_EQ(f.mails.size(), 1u);
  EXPECT_EQ(f.mails[0].event.created_at, t0);
  core.on_timer(t0 + 180s);
  core.on_timer(t0 + 600s);
  EXPECT_TRUE(take_datagrams(core).empty());  // fetched: no more resends
  EXPECT_EQ(core.next_deadline(), never);
}

TEST(notifier_core, resend_interval_is_configurable) {
  notifier_config cfg;
  cfg.ping_resend = 15s;
  notifier_core core(cfg);
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(callback_ep));
  core.inject_event(time_point{}, core.mailbox(dn));
  take_datagrams(core);
  EXPECT_EQ(core.next_deadline(), time_point{} + 15s);
}

TEST(notifier_core, legacy_policy_refuses_non_loopback_callback) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(ip_endpoint::v4(10, 0, 0, 2, 2500)));
  core.inject_event(time_point{}, core.mailbox(dn));
  EXPECT_TRUE(take_datagrams(core).empty());
  EXPECT_EQ(core.stats().datagrams_refused, 1u);
  bool told = false;
  for (auto& o : core.outputs())
    if (auto* n = std::get_if<notice>(&o)) told = n->text.find(protocol::ip_endpoint::v4(10, 0, 0, 2, 2500).to_string()) != std::string::npos;
  EXPECT_TRUE(told);
}

TEST(notifier_core, peer_policy_uses_the_tcp_source_address) {
  notifier_config cfg;
  cfg.policy = callback_policy::peer;
  notifier_core core(cfg);
  scripted_client c(core, ip_endpoint::v4(127, 0, 0, 9, 50000));
  auto cxh = c.connect(time_point{}, dn);
  c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(ip_endpoint::v4(10, 0, 0, 2, 2500)));
  core.inject_event(time_point{}, core.mailbox(dn));
  auto d = take_datagrams(core);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, ip_endpoint::v4(127, 0, 0, 9, 2500));
}

TEST(notifier_core, verified_policy_waits_for_the_cookie_and_uses_its_source) {
  notifier_config cfg;
  cfg.policy = callback_policy::verified;
  notifier_core core(cfg);
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  auto reg = c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(callback_ep));
  core.inject_event(time_point{}, core.mailbox(dn));
  EXPECT_TRUE(take_datagrams(core).empty());
  EXPECT_EQ(core.stats().datagrams_unreachable, 1u);
  byte_buffer forged;
  encode_reachability_cookie(forged, reg.notification_handle, byte_buffer{1, 2, 3});
  core.receive_datagram(time_point{}, ip_endpoint::v4(127, 0, 0, 66, 1), forged);
  EXPECT_EQ(core.stats().cookies_accepted, 0u);
  byte_buffer cookie;
  encode_reachability_cookie(cookie, reg.notification_handle, ctx8);
  const ip_endpoint mapped = ip_endpoint::v4(127, 0, 0, 5, 61000);
  core.receive_datagram(time_point{}, mapped, cookie);
  EXPECT_EQ(core.stats().cookies_accepted, 1u);
  core.inject_event(time_point{} + 1s, core.mailbox(dn));
  auto d = take_datagrams(core);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, mapped);
}

TEST(notifier_core, details_beyond_pcb_out_leave_a_rop_pending) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  for (int i = 0; i < 5; ++i) core.inject_event(time_point{}, core.mailbox(dn));
  const auto room = static_cast<std::uint32_t>(rop::empty_buffer_size + rop::rop_pending_size + 2 * rop::new_mail_size());
  auto f = c.fetch(time_point{}, cxh, room);
  EXPECT_EQ(f.mails.size(), 2u);
  EXPECT_EQ(f.pending, 1);
  f = c.fetch(time_point{}, cxh);
  EXPECT_EQ(f.mails.size(), 3u);
  EXPECT_EQ(f.pending, 0);
  EXPECT_EQ(core.stats().events_fetched, 5u);
}

TEST(notifier_core, async_wait_held_until_event_then_completes_pending) {
  notifier_core core({});
  scripted_client main(core, client_ep);
  auto cxh = main.connect(time_point{}, dn);
  main.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  auto ac = emsmdb::decode_async_connect_response(main.take_stub());
  ASSERT_EQ(ac.value.return_code, 0u);
  scripted_client async(core, ip_endpoint::v4(127, 0, 0, 2, 50001), true);
  async.call(time_point{}, opnum::do_async_wait_ex, emsmdb::async_wait_request{ac.value.acxh, 0});
  EXPECT_FALSE(async.has_pdu());  // held
  core.inject_event(time_point{} + 30s, core.mailbox(dn));
  auto w = emsmdb::decode_async_wait_response(async.take_stub());
  EXPECT_EQ(w.value.flags_out, notification_pending);
  EXPECT_EQ(w.value.return_code, 0u);
}

TEST(notifier_core, async_wait_times_out_after_5_minutes_and_second_wait_is_rejected) {
  notifier_core core({});
  scripted_client main(core, client_ep);
  auto cxh = main.connect(time_point{}, dn);
  main.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  auto acxh = emsmdb::decode_async_connect_response(main.take_stub()).value.acxh;
  scripted_client async(core, ip_endpoint::v4(127, 0, 0, 2, 50001), true);
  const time_point t0 = time_point{} + 1s;
  async.call(t0, opnum::do_async_wait_ex, emsmdb::async_wait_request{acxh, 0});
  async.call(t0 + 1s, opnum::do_async_wait_ex, emsmdb::async_wait_request{acxh, 0});
  auto second = emsmdb::decode_async_wait_response(async.take_stub());
  EXPECT_EQ(second.value.return_code, ec::rejected);
  EXPECT_EQ(core.next_deadline(), t0 + 5min);
  core.on_timer(t0 + 5min - 1ms);
  EXPECT_FALSE(async.has_pdu());
  core.on_timer(t0 + 5min);
  auto first = emsmdb::decode_async_wait_response(async.take_stub());
  EXPECT_EQ(first.value.flags_out, 0u);  // timeout: nothing pending
  EXPECT_EQ(first.value.return_code, 0u);
  EXPECT_EQ(core.stats().async_timeouts, 1u);
}

TEST(notifier_core, ext2_activity_extends_the_async_hold) {
  notifier_core core({});
  scripted_client main(core, client_ep);
  auto cxh = main.connect(time_point{}, dn);
  main.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  auto acxh = emsmdb::decode_async_connect_response(main.take_stub()).value.acxh;
  scripted_client async(core, ip_endpoint::v4(127, 0, 0, 2, 50001), true);
  async.call(time_point{}, opnum::do_async_wait_ex, emsmdb::async_wait_request{acxh, 0});
  main.fetch(time_point{} + 4min, cxh);
  core.on_timer(time_point{} + 5min);
  EXPECT_FALSE(async.has_pdu());
  EXPECT_EQ(core.next_deadline(), time_point{} + 9min);
}

TEST(notifier_core, invalid_async_handle_completes_at_once_with_pending) {
  notifier_core core({});
  scripted_client async(core, client_ep, true);
  async.call(time_point{}, opnum::do_async_wait_ex, emsmdb::async_wait_request{{}, 0});
  auto w = emsmdb::decode_async_wait_response(async.take_stub());
  EXPECT_EQ(w.value.flags_out, notification_pending);
}

TEST(notifier_core, async_disabled_rejects_async_connect) {
  notifier_config cfg;
  cfg.async_enabled = false;
  notifier_core core(cfg);
  scripted_client main(core, client_ep);
  auto cxh = main.connect(time_point{}, dn);
  main.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  EXPECT_EQ(emsmdb::decode_async_connect_response(main.take_stub()).value.return_code, ec::rejected);
}

TEST(notifier_core, closing_the_connection_stops_pings) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(callback_ep));
  core.connection_closed(time_point{}, c.conn());
  core.inject_event(time_point{}, core.mailbox(dn));
  EXPECT_TRUE(take_datagrams(core).empty());
  EXPECT_EQ(core.next_deadline(), never);
}

TEST(notifier_core, tiny_pcb_out_never_overflows_the_output_buffer) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  for (int i = 0; i < 2000; ++i) core.inject_event(time_point{}, core.mailbox(dn));
  for (std::uint32_t max_out : {10u, 11u, 12u, 13u, 100u}) {
    auto f = c.fetch(time_point{}, cxh, max_out);
    EXPECT_LE(rop::empty_buffer_size + f.mails.size() * rop::new_mail_size() + (f.pending ? 3u : 0u), max_out) << max_out;
  }
  auto all = c.fetch(time_point{}, cxh);
  EXPECT_LE(all.mails.size() * rop::new_mail_size(), 5840u);  // one PDU within max_xmit_frag
  EXPECT_EQ(all.pending, 1);
}

// ---- hostile-input classes: EcDoDisconnect, fragments, pcbOut bounds, resends ----

namespace {

template <class Stub>
byte_buffer stub_bytes(const Stub& s) {
  byte_buffer out;
  byte_writer w(out);
  emsmdb::encode(w, s);
  return out;
}

byte_buffer empty_rgb_in() {
  byte_buffer rgb_in;
  rop::encode_empty_request(rgb_in);
  return rgb_in;
}

emsmdb::rpc_ext2_request ext2_request(const emsmdb::context_handle& cxh, const byte_buffer& rgb_in,
                                      std::uint32_t max_out) {
  emsmdb::rpc_ext2_request req;
  req.cxh = cxh;
  req.rgb_in = rgb_in;
  req.max_out = max_out;
  return req;
}

std::uint32_t fault_status_of(const dcerpc::pdu& p) {
  auto* f = std::get_if<dcerpc::fault_pdu>(&p);
  EXPECT_NE(f, nullptr) << "expected a fault";
  return f ? f->status : 0;
}

}  // namespace

TEST(notifier_core, disconnect_ends_the_session_and_its_handle_then_gets_context_mismatch) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  ASSERT_EQ(c.register_push(time_point{}, cxh, ctx8, windows_sockaddr(callback_ep)).return_code, 0u);

  c.call(time_point{}, opnum::do_disconnect, emsmdb::disconnect_request{cxh});
  auto rsp = emsmdb::decode_disconnect_response(c.take_stub());
  ASSERT_TRUE(rsp.complete()) << rsp.reason;
  EXPECT_TRUE(rsp.value.cxh.is_null());  // the handle comes back zeroed
  EXPECT_EQ(rsp.value.return_code, ec::success);
  EXPECT_EQ(core.stats().sessions_disconnected, 1u);

  // Every call on the closed handle is refused by the runtime, not answered by a method.
  const byte_buffer rgb_in = empty_rgb_in();
  c.call(time_point{}, opnum::do_rpc_ext2, ext2_request(cxh, rgb_in, 0x8008));
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::context_mismatch);
  c.call(time_point{}, opnum::register_push_notification,
         emsmdb::register_push_request{cxh, 0, ctx8, 0xFFFFFFFF, windows_sockaddr(callback_ep)});
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::context_mismatch);
  c.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::context_mismatch);
  c.call(time_point{}, opnum::do_disconnect, emsmdb::disconnect_request{cxh});
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::context_mismatch);

  // Its push registration went with it: mail brings no ping and arms no timer.
  core.inject_event(time_point{}, core.mailbox(dn));
  EXPECT_TRUE(take_datagrams(core).empty());
  EXPECT_EQ(core.next_deadline(), never);
  // The connection itself lives on and can log on again.
  EXPECT_EQ(core.open_connections(), 1u);
  auto again = c.connect(time_point{}, dn);
  EXPECT_FALSE(again == cxh);
  EXPECT_EQ(c.fetch(time_point{}, again).mails.size(), 1u);
}

TEST(notifier_core, disconnect_of_an_unknown_handle_is_a_context_mismatch_and_truncated_stub_bad_data) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  c.call(time_point{}, opnum::do_disconnect, emsmdb::disconnect_request{});
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::context_mismatch);
  byte_buffer pdu;
  const byte_buffer short_stub(12, 0);
  dcerpc::encode(pdu, dcerpc::request_pdu{c.take_call_id(), 0, 0, opnum::do_disconnect, short_stub});
  c.send_raw(time_point{}, pdu);
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::bad_stub_data);
}

TEST(notifier_core, a_disconnected_slot_reused_elsewhere_survives_the_first_connection_closing) {
  notifier_core core({});
  scripted_client a(core, client_ep);
  auto old_cxh = a.connect(time_point{}, dn);
  a.call(time_point{}, opnum::do_disconnect, emsmdb::disconnect_request{old_cxh});
  a.take_stub();
  scripted_client b(core, ip_endpoint::v4(127, 0, 0, 3, 50001));
  auto cxh = b.connect(time_point{}, dn);  // may reuse the freed session slot
  core.connection_closed(time_point{}, a.conn());
  core.inject_event(time_point{}, core.mailbox(dn));
  EXPECT_EQ(b.fetch(time_point{}, cxh).mails.size(), 1u);
}

TEST(notifier_core, disconnect_completes_a_held_async_wait) {
  notifier_core core({});
  scripted_client main(core, client_ep);
  auto cxh = main.connect(time_point{}, dn);
  main.call(time_point{}, opnum::do_async_connect_ex, emsmdb::async_connect_request{cxh});
  auto acxh = emsmdb::decode_async_connect_response(main.take_stub()).value.acxh;
  scripted_client async(core, ip_endpoint::v4(127, 0, 0, 2, 50001), true);
  async.call(time_point{}, opnum::do_async_wait_ex, emsmdb::async_wait_request{acxh, 0});
  EXPECT_FALSE(async.has_pdu());
  main.call(time_point{} + 1s, opnum::do_disconnect, emsmdb::disconnect_request{cxh});
  EXPECT_EQ(emsmdb::decode_disconnect_response(main.take_stub()).value.return_code, ec::success);
  auto w = emsmdb::decode_async_wait_response(async.take_stub());
  ASSERT_TRUE(w.complete());
  EXPECT_EQ(w.value.flags_out, 0u);
  EXPECT_EQ(w.value.return_code, ec::rejected);
  EXPECT_EQ(core.next_deadline(), never);  // no hold timer left behind
}

TEST(notifier_core, a_request_in_three_fragments_gets_one_correct_response) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  const auto ev = core.inject_event(time_point{}, core.mailbox(dn));
  core.outputs().clear();
  const byte_buffer rgb_in = empty_rgb_in();
  const byte_buffer stub = stub_bytes(ext2_request(cxh, rgb_in, 0x8008));
  // 48-byte fragments carry 24 stub bytes each: the 60-byte stub takes three.
  byte_buffer pdus;
  const std::uint32_t call_id = c.take_call_id();
  ASSERT_EQ(dcerpc::encode_request_fragments(pdus, call_id, 0, opnum::do_rpc_ext2, stub, 48), 3u);
  std::vector<byte_buffer> fragments;
  for (std::size_t used = 0; used < pdus.size();) {
    auto h = dcerpc::decode_common_header(bytes_view(pdus).subspan(used));
    ASSERT_TRUE(h.complete());
    fragments.emplace_back(pdus.begin() + static_cast<std::ptrdiff_t>(used),
                           pdus.begin() + static_cast<std::ptrdiff_t>(used + h.value.frag_length));
    used += h.value.frag_length;
  }
  ASSERT_EQ(fragments.size(), 3u);
  c.send_raw(time_point{}, fragments[0]);
  c.send_raw(time_point{}, fragments[1]);
  EXPECT_FALSE(c.has_pdu());  // nothing until the last fragment
  EXPECT_EQ(core.reassembly_bytes_held(), 48u);
  c.send_raw(time_point{}, fragments[2]);
  auto p = c.take_pdu();
  auto* r = std::get_if<dcerpc::response_pdu>(&p);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->call_id, call_id);
  EXPECT_FALSE(c.has_pdu());  // exactly one answer
  auto d = emsmdb::decode_rpc_ext2_response(r->stub);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.return_code, ec::success);
  scripted_client::fetch_result mails;
  ASSERT_TRUE(rop::decode_response(d.value.rgb_out, mails).complete());
  ASSERT_EQ(mails.mails.size(), 1u);
  EXPECT_EQ(mails.mails[0].event.id, ev.id);
  EXPECT_EQ(core.stats().fragmented_requests, 1u);
  EXPECT_EQ(core.reassembly_bytes_held(), 0u);
  EXPECT_EQ(core.open_connections(), 1u);
}

TEST(notifier_core, fragments_out_of_sequence_are_a_protocol_error_that_closes_the_connection) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  byte_buffer pdu;
  dcerpc::encode(pdu, dcerpc::request_pdu{5, 0, 0, opnum::do_rpc_ext2, byte_buffer(16, 0)});
  pdu[3] = dcerpc::pfc::last_frag;  // a last fragment with no first
  c.send_raw(time_point{}, pdu);
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::proto_error);
  bool closed = false;
  for (auto& o : core.outputs())
    if (auto* cl = std::get_if<close_connection>(&o)) closed = cl->conn == c.conn();
  EXPECT_TRUE(closed);
  EXPECT_EQ(core.open_connections(), 0u);
}

TEST(notifier_core, reassembly_past_the_bound_gets_a_fault_and_holds_no_more) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  const std::uint32_t call_id = c.take_call_id();
  const byte_buffer chunk(60000, 0xAB);  // one fragment's stub, within frag_length's 16 bits
  auto fragment = [&](std::uint8_t flags) {
    byte_buffer pdu;
    dcerpc::encode(pdu, dcerpc::request_pdu{call_id, 0, 0, opnum::do_rpc_ext2, chunk});
    pdu[3] = flags;
    return pdu;
  };
  std::size_t sent = 0;
  c.send_raw(time_point{}, fragment(dcerpc::pfc::first_frag));
  sent += chunk.size();
  while (sent + chunk.size() <= emsmdb::max_request_stub) {
    c.send_raw(time_point{}, fragment(0));
    sent += chunk.size();
    EXPECT_FALSE(c.has_pdu());
    EXPECT_LE(core.reassembly_bytes_held(), emsmdb::max_request_stub);
  }
  c.send_raw(time_point{}, fragment(0));  // past the bound
  EXPECT_EQ(fault_status_of(c.take_pdu()), fault_status::remote_no_memory);
  EXPECT_EQ(core.reassembly_bytes_held(), 0u);
  EXPECT_EQ(core.stats().requests_too_large, 1u);
  // The rest of that call is dropped as it comes: no answer, nothing held.
  for (int i = 0; i < 10; ++i) c.send_raw(time_point{}, fragment(0));
  c.send_raw(time_point{}, fragment(dcerpc::pfc::last_frag));
  EXPECT_FALSE(c.has_pdu());
  EXPECT_EQ(core.reassembly_bytes_held(), 0u);
  // And the connection still serves the next call.
  EXPECT_EQ(core.open_connections(), 1u);
  auto cxh = c.connect(time_point{}, dn);
  EXPECT_TRUE(c.fetch(time_point{}, cxh).mails.empty());
}

TEST(notifier_core, a_long_response_is_fragmented_at_the_negotiated_max_recv_frag) {
  notifier_core core({});
  scripted_client c(core, client_ep, false, dcerpc::must_recv_frag_size);
  EXPECT_EQ(c.negotiated_max_xmit, dcerpc::must_recv_frag_size);
  auto cxh = c.connect(time_point{}, dn);
  for (int i = 0; i < 200; ++i) core.inject_event(time_point{}, core.mailbox(dn));
  core.outputs().clear();
  const byte_buffer rgb_in = empty_rgb_in();
  const std::uint32_t call_id = c.next_call_id();
  c.call(time_point{}, opnum::do_rpc_ext2, ext2_request(cxh, rgb_in, 0x8008));
  const byte_buffer bytes = c.take_bytes();
  dcerpc::stub_reassembler joiner(emsmdb::max_response_stub);
  dcerpc::stub_reassembler::result joined;
  std::size_t fragments = 0;
  for (std::size_t used = 0; used < bytes.size();) {
    auto d = dcerpc::decode_pdu(bytes_view(bytes).subspan(used));
    ASSERT_TRUE(d.complete()) << d.reason;
    EXPECT_LE(d.consumed, dcerpc::must_recv_frag_size);  // every fragment within the client's limit
    auto& r = std::get<dcerpc::response_pdu>(d.value);
    EXPECT_EQ(r.call_id, call_id);
    joined = joiner.add(r.call_id, r.context_id, r.pfc_flags, r.stub);
    used += d.consumed;
    ++fragments;
  }
  EXPECT_GT(fragments, 1u);
  ASSERT_EQ(joined.outcome, dcerpc::stub_reassembler::status::whole);
  auto d = emsmdb::decode_rpc_ext2_response(joined.stub());
  ASSERT_TRUE(d.complete()) << d.reason;
  scripted_client::fetch_result mails;
  ASSERT_TRUE(rop::decode_response(d.value.rgb_out, mails).complete());
  EXPECT_GT(mails.mails.size(), 40u);  // what one default-size response holds
  EXPECT_EQ(mails.pending, 1);
  EXPECT_EQ(core.stats().fragmented_responses, 1u);
  EXPECT_EQ(core.stats().events_fetched, mails.mails.size());
}

TEST(notifier_core, a_bind_offering_less_than_must_recv_frag_size_is_refused) {
  notifier_core core({});
  const connection_id conn = core.open_connection(time_point{}, client_ep);
  dcerpc::bind_pdu b;
  b.call_id = 1;
  b.max_recv_frag = dcerpc::must_recv_frag_size - 1;
  dcerpc::presentation_context ctx;
  ctx.abstract_syntax = emsmdb_syntax();
  ctx.transfer_syntaxes.push_back(ndr_syntax());
  b.contexts.push_back(ctx);
  byte_buffer pdu;
  dcerpc::encode(pdu, b);
  core.receive(time_point{}, conn, pdu);
  ASSERT_EQ(core.outputs().size(), 1u);
  auto d = dcerpc::decode_pdu(std::get<tcp_send>(core.outputs()[0]).bytes);
  ASSERT_TRUE(d.complete());
  EXPECT_TRUE(std::holds_alternative<dcerpc::bind_nak_pdu>(d.value));
  EXPECT_EQ(core.stats().binds_rejected, 1u);
}

TEST(notifier_core, pcb_out_bounds_follow_ms_oxcrpc) {
  notifier_core core({});
  scripted_client c(core, client_ep);
  auto cxh = c.connect(time_point{}, dn);
  core.inject_event(time_point{}, core.mailbox(dn));
  const byte_buffer rgb_in = empty_rgb_in();
  auto ext2 = [&](std::uint32_t max_out) {
    c.call(time_point{}, opnum::do_rpc_ext2, ext2_request(cxh, rgb_in, max_out));
    return c.take_pdu();
  };
  auto response_of = [](const dcerpc::pdu& p) {
    auto* r = std::get_if<dcerpc::response_pdu>(&p);
    EXPECT_NE(r, nullptr) << "expected a response";
    auto d = emsmdb::decode_rpc_ext2_response(r ? r->stub : bytes_view{});
    EXPECT_TRUE(d.complete()) << d.reason;
    return d.value;
  };
  // 7: below the minimum, ecRpcFailed and no rgbOut.
  auto p7 = ext2(7);
  auto r7 = response_of(p7);
  EXPECT_EQ(r7.return_code, ec::rpc_failed);
  EXPECT_TRUE(r7.rgb_out.empty());
  // 8: accepted; only RPC_HEADER_EXT fits, the mail stays queued.
  auto p8 = ext2(8);
  auto r8 = response_of(p8);
  EXPECT_EQ(r8.return_code, ec::success);
  EXPECT_EQ(r8.rgb_out.size(), 8u);
  EXPECT_EQ(core.events_pending(core.mailbox(dn)), 1u);
  // 0x40000: the maximum, accepted, the mail delivered.
  auto pmax = ext2(0x40000);
  auto rmax = response_of(pmax);
  EXPECT_EQ(rmax.return_code, ec::success);
  scripted_client::fetch_result mails;
  ASSERT_TRUE(rop::decode_response(rmax.rgb_out, mails).complete());
  EXPECT_EQ(mails.mails.size(), 1u);
  // 0x40001: RPC_X_BAD_STUB_DATA, as a fault.
  EXPECT_EQ(fault_status_of(ext2(0x40001)), fault_status::bad_stub_data);
  EXPECT_EQ(core.open_connections(), 1u);
}

TEST(notifier_core, resend_timers_keep_running_while_a_small_pcb_out_leaves_details_queued) {
  notifier_core core({});
  scripted_client a(core, client_ep);
  scripted_client b(core, ip_endpoint::v4(127, 0, 0, 3, 50001));
  auto cxh_a = a.connect(time_point{}, dn);
  auto cxh_b = b.connect(time_point{}, dn);  // a second session on the same mailbox
  ASSERT_EQ(a.register_push(time_point{}, cxh_a, ctx8, windows_sockaddr(callback_ep)).return_code, 0u);
  ASSERT_EQ(b.register_push(time_point{}, cxh_b, ctx8, windows_sockaddr(ip_endpoint::v4(127, 0, 0, 3, 2500)))
                .return_code,
            0u);
  const time_point t0 = time_point{} + 1s;
  core.inject_event(t0, core.mailbox(dn));
  EXPECT_EQ(take_datagrams(core).size(), 2u);
  EXPECT_EQ(core.next_deadline(), t0 + 60s);
  // pcbOut 8 (header only), 10 (empty ROP buffer) and 12 (no room for RopPending):
  // nothing is fetched, so both sessions must still be reminded.
  for (std::uint32_t max_out : {8u, 10u, 12u}) {
    auto f = a.fetch(t0 + 1s, cxh_a, max_out);
    EXPECT_TRUE(f.mails.empty()) << max_out;
    EXPECT_EQ(core.next_deadline(), t0 + 60s) << max_out;
  }
  core.on_timer(t0 + 60s);
  EXPECT_EQ(take_datagrams(core).size(), 2u);  // both resent
  EXPECT_EQ(core.stats().datagrams_resent, 2u);
  // Once fetched, the reminders stop.
  EXPECT_EQ(a.fetch(t0 + 61s, cxh_a).mails.size(), 1u);
  EXPECT_EQ(core.next_deadline(), never);
}
