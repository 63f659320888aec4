// make_corpus: writes the seed corpora of the fuzz targets, every seed produced
// by the project's real encoders, so seeds follow the wire format when it changes.
//   nudge_fuzz_make_corpus <dir>   ->  <dir>/<target>/<seed-name>
// The committed tests/fuzz/corpus was produced by this program (a few KB);
// .ci/fuzz.sh also runs it into its temporary corpus directories.
//
// The session targets read a script with FuzzedDataProvider: the *_script
// classes below mirror, call by call, what the targets consume (session_ops.hpp).
// Check a seed with: NUDGE_FUZZ_TRACE=1 build/fuzz/fuzz/fuzz_notifier_session <seed>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "session_ops.hpp"

using namespace nudge;
using namespace nudge::protocol;
using nudge::fuzz::client_op;
using nudge::fuzz::fdp_writer;
using nudge::fuzz::notifier_op;
namespace fs = std::filesystem;

namespace {

fs::path g_root;
std::size_t g_files = 0, g_bytes = 0;

void write_seed(const std::string& target, const std::string& name, const byte_buffer& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ++g_files;
  g_bytes += bytes.size();
}

emsmdb::context_handle sample_handle() {
  emsmdb::context_handle h;
  for (std::size_t i = 0; i < 16; ++i) h.uuid.bytes[i] = static_cast<std::uint8_t>(0x30 + i);
  return h;
}

const std::string user_dn = "/o=nudge/ou=fuzz/cn=user0";

template <class Stub>
byte_buffer stub_of(const Stub& s) {
  byte_buffer b;
  byte_writer w(b);
  emsmdb::encode(w, s);
  return b;
}

byte_buffer empty_rgb_in() {
  byte_buffer b;
  rop::encode_empty_request(b);
  return b;
}

byte_buffer rgb_out_with(std::size_t mails, bool pending) {
  byte_buffer b;
  rop::response_builder rb(b);
  for (std::size_t i = 0; i < mails; ++i) {
    rop::new_mail_notification n;
    n.notification_handle = 1;
    n.folder_id = 0x0001000000000001ull;
    n.event = {i + 1, time_point(std::chrono::microseconds(1000000 + i))};
    rb.add(n);
  }
  if (pending) rb.add_pending(0);
  rb.finish();
  return b;
}

// ---- stateless decoders ---------------------------------------------------------------

void dcerpc_seeds() {
  const std::string t = "fuzz_dcerpc_pdu";
  for (int iface = 0; iface < 2; ++iface) {
    dcerpc::bind_pdu b;
    b.call_id = 1;
    dcerpc::presentation_context pc;
    pc.abstract_syntax = iface == 0 ? emsmdb_syntax() : async_emsmdb_syntax();
    pc.transfer_syntaxes.push_back(ndr_syntax());
    b.contexts.push_back(pc);
    byte_buffer out;
    dcerpc::encode(out, b);
    write_seed(t, iface == 0 ? "bind-emsmdb" : "bind-async", out);
  }
  {
    dcerpc::bind_ack_pdu a;
    a.call_id = 1;
    a.secondary_address = "7777";
    dcerpc::bind_result r;
    r.transfer_syntax = ndr_syntax();
    a.results.push_back(r);
    byte_buffer out;
    dcerpc::encode(out, a);
    write_seed(t, "bind-ack", out);
  }
  {
    byte_buffer out;
    dcerpc::encode(out, dcerpc::bind_nak_pdu{1, 4});
    write_seed(t, "bind-nak", out);
  }
  {
    emsmdb::rpc_ext2_request req;
    req.cxh = sample_handle();
    const byte_buffer rgb_in = empty_rgb_in();
    req.rgb_in = rgb_in;
    byte_buffer out;
    dcerpc::encode_request(out, 3, 0, opnum::do_rpc_ext2, [&](byte_writer& w) { emsmdb::encode(w, req); });
    write_seed(t, "poll-request", out);  // 84 bytes
  }
  for (std::size_t mails : {0u, 2u}) {
    emsmdb::rpc_ext2_response rsp;
    rsp.cxh = sample_handle();
    const byte_buffer rgb_out = rgb_out_with(mails, mails > 0);
    rsp.rgb_out = rgb_out;
    byte_buffer out;
    dcerpc::encode_response(out, 3, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
    write_seed(t, mails == 0 ? "poll-response" : "newmail-response", out);  // 100 bytes / more
  }
  {
    byte_buffer out;
    dcerpc::encode(out, dcerpc::fault_pdu{3, 0, fault_status::op_rng_error});
    write_seed(t, "fault", out);
  }
  {
    emsmdb::connect_ex_request req;
    req.user_dn = user_dn;
    byte_buffer out;
    dcerpc::encode_request(out, 2, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
    write_seed(t, "connect-request", out);
  }
  {  // an EcDoRpcExt2 poll in three 48-byte fragments, and a response in two
    byte_buffer rgb_in = empty_rgb_in();
    emsmdb::rpc_ext2_request req;
    req.cxh = sample_handle();
    req.rgb_in = rgb_in;
    const byte_buffer stub = stub_of(req);
    byte_buffer out;
    dcerpc::encode_request_fragments(out, 4, 0, opnum::do_rpc_ext2, stub, 48);
    const auto first = dcerpc::decode_common_header(out).value.frag_length;
    write_seed(t, "request-first-fragment", byte_buffer(out.begin(), out.begin() + first));
    write_seed(t, "request-last-fragment", byte_buffer(out.end() - (24 + 12), out.end()));
    byte_buffer rsp;
    dcerpc::encode_response_fragments(rsp, 4, 0, stub, 64);
    write_seed(t, "response-first-fragment",
               byte_buffer(rsp.begin(), rsp.begin() + dcerpc::decode_common_header(rsp).value.frag_length));
  }
  {  // EcDoDisconnect
    byte_buffer out;
    dcerpc::encode_request(out, 5, 0, opnum::do_disconnect,
                           [](byte_writer& w) { emsmdb::encode(w, emsmdb::disconnect_request{sample_handle()}); });
    write_seed(t, "disconnect-request", out);
  }
}

// fuzz_dcerpc_stream: byte 0 picks the rule (bit 0: lenient) and the limit
// (bit 1: none, else 16 + 4 * byte 1); byte 2 counts the cut sizes that follow;
// then the stream: a client's bind, poll and disconnect back to back.
void stream_seeds() {
  const std::string t = "fuzz_dcerpc_stream";
  byte_buffer stream;
  dcerpc::bind_pdu b;
  b.call_id = 1;
  dcerpc::presentation_context pc;
  pc.abstract_syntax = emsmdb_syntax();
  pc.transfer_syntaxes.push_back(ndr_syntax());
  b.contexts.push_back(pc);
  dcerpc::encode(stream, b);
  emsmdb::rpc_ext2_request req;
  req.cxh = sample_handle();
  const byte_buffer rgb_in = empty_rgb_in();
  req.rgb_in = rgb_in;
  dcerpc::encode_request(stream, 3, 0, opnum::do_rpc_ext2, [&](byte_writer& w) { emsmdb::encode(w, req); });
  dcerpc::encode_request(stream, 5, 0, opnum::do_disconnect,
                         [](byte_writer& w) { emsmdb::encode(w, emsmdb::disconnect_request{sample_handle()}); });
  auto put = [&](const std::string& name, byte_buffer head) {
    head.insert(head.end(), stream.begin(), stream.end());
    write_seed(t, name, head);
  };
  put("strict-whole", {2, 0, 0});
  put("strict-cut", {2, 0, 4, 0, 6, 15, 39});       // pieces of 1, 7, 16 and 40 bytes
  put("lenient-cut", {3, 0, 2, 22, 60});
  put("limit-80", {0, 16, 1, 9});                   // the 84-byte poll is over the limit
}

void emsmdb_seeds() {
  const std::string t = "fuzz_emsmdb_stubs";
  auto put = [&](std::uint8_t sel, const std::string& name, const byte_buffer& stub) {
    byte_buffer b{sel};
    b.insert(b.end(), stub.begin(), stub.end());
    write_seed(t, name, b);
  };
  emsmdb::connect_ex_request cq;
  cq.user_dn = user_dn;
  put(0, "connect-request", stub_of(cq));
  emsmdb::connect_ex_response cr;
  cr.cxh = sample_handle();
  cr.dn_prefix = "/o=nudge/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)";
  cr.display_name = "user0";
  put(1, "connect-response", stub_of(cr));
  const byte_buffer ctx = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const byte_buffer sa = windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 50000));
  emsmdb::register_push_request rq;
  rq.cxh = sample_handle();
  rq.context = ctx;
  rq.callback_address = sa;
  put(2, "register-request", stub_of(rq));
  put(3, "register-response", stub_of(emsmdb::register_push_response{sample_handle(), 0x01000000, 0}));
  {
    byte_buffer b;
    byte_writer w(b);
    emsmdb::encode_dummy_response(w, 0);
    put(4, "dummy-response", b);
  }
  const byte_buffer rgb_in = empty_rgb_in();
  emsmdb::rpc_ext2_request eq;
  eq.cxh = sample_handle();
  eq.rgb_in = rgb_in;
  put(5, "ext2-request", stub_of(eq));
  const byte_buffer rgb_out = rgb_out_with(1, true);
  emsmdb::rpc_ext2_response er;
  er.cxh = sample_handle();
  er.rgb_out = rgb_out;
  put(6, "ext2-response", stub_of(er));
  put(7, "async-connect-request", stub_of(emsmdb::async_connect_request{sample_handle()}));
  put(8, "async-connect-response", stub_of(emsmdb::async_connect_response{sample_handle(), 0}));
  put(9, "async-wait-request", stub_of(emsmdb::async_wait_request{sample_handle(), 0}));
  put(10, "async-wait-response", stub_of(emsmdb::async_wait_response{notification_pending, 0}));
  put(11, "disconnect-request", stub_of(emsmdb::disconnect_request{sample_handle()}));
  put(12, "disconnect-response", stub_of(emsmdb::disconnect_response{{}, 0}));
}

void rop_seeds() {
  const std::string t = "fuzz_rop_buffer";
  write_seed(t, "empty-request", empty_rgb_in());
  write_seed(t, "empty-response", rgb_out_with(0, false));
  write_seed(t, "newmail2-pending", rgb_out_with(2, true));
}

void sockaddr_seeds() {
  const std::string t = "fuzz_sockaddr";
  write_seed(t, "v4", windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 50000)));
  write_seed(t, "v6", windows_sockaddr(*ip_endpoint::parse("[::1]:50000")));
}

void push_seeds() {
  const std::string t = "fuzz_push_datagram";
  const byte_buffer ctx = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  byte_buffer ping{16};
  ping.insert(ping.end(), ctx.begin(), ctx.end());
  ping.insert(ping.end(), ctx.begin(), ctx.end());
  write_seed(t, "ping-match", ping);
  byte_buffer cookie{4, 0xAA, 0xBB, 0xCC, 0xDD};
  byte_buffer c;
  encode_reachability_cookie(c, 0x01000000, byte_buffer{0xAA, 0xBB, 0xCC, 0xDD});
  cookie.insert(cookie.end(), c.begin(), c.end());
  write_seed(t, "cookie", cookie);
}

// ---- fuzz_notifier_session ---------------------------------------------------------------

class notifier_script {
 public:
  struct config {
    std::uint8_t policy = 0;  // legacy, peer, verified
    std::uint32_t ping_resend_ms = 60000;
    std::uint32_t async_hold_ms = 300000;
    std::vector<std::uint8_t> peers{0};  // peer kinds of the initial connections
  };
  explicit notifier_script(const config& c) : conns_(c.peers.size()) {
    w_.integral<std::uint8_t>(0, 2, c.policy);
    w_.boolean(false);  // push enabled
    w_.boolean(false);  // async enabled
    w_.boolean(false);  // loopback only
    w_.integral<std::uint32_t>(0, 0xFFFFFFFF, 60000);
    w_.integral<std::uint32_t>(1, 600000, c.ping_resend_ms);
    w_.integral<std::uint32_t>(1, 600000, c.async_hold_ms);
    w_.integral<std::uint32_t>(1, 4096, 100);
    w_.integral<std::uint8_t>(1, 4, static_cast<std::uint8_t>(c.peers.size()));
    for (auto k : c.peers) w_.integral<std::uint8_t>(0, 3, k);
  }
  void bind(std::size_t s, std::uint8_t iface, std::uint16_t context_id = 0, std::uint16_t small_frag = 0) {
    op(notifier_op::bind);
    slot(s);
    w_.integral<std::uint8_t>(0, 2, iface);
    w_.boolean(false);  // NDR offered
    w_.integral<std::uint16_t>(0, 3, context_id);
    w_.boolean(false);  // one context
    w_.boolean(small_frag != 0);  // max_recv_frag below 5840
    if (small_frag != 0) w_.integral<std::uint16_t>(1000, 5840, small_frag);
    feed(0);
  }
  void connect(std::size_t s, std::uint8_t user = 0) {
    op(notifier_op::connect);
    slot(s);
    w_.integral<std::uint8_t>(0, 4, user);
    ctx();
    feed(0);
    if (user == 0) mailboxes_ = std::max<std::size_t>(mailboxes_, 1);
    ++cxhs_;
  }
  void register_push(std::size_t s, const byte_buffer& context, std::uint16_t port, std::uint8_t split = 0) {
    op(notifier_op::register_push);
    slot(s);
    known(cxhs_ - 1, cxhs_);
    w_.blob(context, 20);
    w_.integral<std::uint8_t>(0, 4, 0);  // 127.0.0.1
    w_.integral<std::uint16_t>(0, 0xFFFF, port);
    ctx();
    feed(split);
    ++regs_;
  }
  void rpc_ext2(std::size_t s, std::uint8_t split = 0) {
    op(notifier_op::rpc_ext2);
    slot(s);
    known(cxhs_ - 1, cxhs_);
    w_.boolean(false);  // a real empty rgbIn
    w_.integral<std::uint8_t>(0, 2, 0);  // pcbOut 0x8008
    ctx();
    feed(split);
  }
  void async_connect(std::size_t s) {
    op(notifier_op::async_connect);
    slot(s);
    known(cxhs_ - 1, cxhs_);
    ctx();
    feed(0);
    ++acxhs_;
  }
  void async_wait(std::size_t s) {
    op(notifier_op::async_wait);
    slot(s);
    known(acxhs_ - 1, acxhs_);
    w_.integral<std::uint8_t>(0, 255, 0);
    ctx();
    feed(0);
  }
  void dummy(std::size_t s) {
    op(notifier_op::other_call);
    slot(s);
    w_.integral<std::uint16_t>(0, 20, opnum::dummy_rpc);
    w_.blob({}, 64);
    ctx();
    feed(0);
  }
  void cookie(std::uint8_t from = 0) {
    op(notifier_op::datagram);
    w_.integral<std::uint8_t>(0, 2, from);
    w_.boolean(true);
    if (regs_ > 0) w_.integral<std::size_t>(0, regs_ - 1, regs_ - 1);
  }
  void inject(std::uint8_t n) {
    op(notifier_op::inject_event);
    mailboxes_ = std::max<std::size_t>(mailboxes_, 1);
    w_.integral<std::uint32_t>(0, static_cast<std::uint32_t>(mailboxes_ - 1), 0);
    w_.integral<std::uint8_t>(1, 255, n);
  }
  void timer(std::uint32_t ms) {
    op(notifier_op::timer);
    w_.integral<std::uint32_t>(0, 600000, ms);
  }
  void raw(std::size_t s, const byte_buffer& bytes) {
    op(notifier_op::raw_chunk);
    slot(s);
    w_.blob(bytes, fuzz::max_raw);
  }
  void peer_close(std::size_t s) {
    op(notifier_op::peer_close);
    slot(s);
  }
  void disconnect(std::size_t s) {
    op(notifier_op::disconnect);
    slot(s);
    known(cxhs_ - 1, cxhs_);
    ctx();
    feed(0);
  }
  byte_buffer finish() const { return w_.finish(); }

 private:
  void op(notifier_op o) {
    w_.integral<std::uint8_t>(0, static_cast<std::uint8_t>(notifier_op::count_) - 1, static_cast<std::uint8_t>(o));
  }
  void slot(std::size_t s) { w_.integral<std::size_t>(0, conns_ - 1, s); }
  void known(std::size_t idx, std::size_t count) {
    w_.boolean(false);  // a handle the core handed out
    if (count > 0) w_.integral<std::size_t>(0, count - 1, idx);
  }
  void ctx() { w_.boolean(false); }  // the bound context id
  /// 0 whole; 1 split in the middle; 3 a byte at a time; 4 in 48-byte fragments.
  void feed(std::uint8_t mode) {
    w_.integral<std::uint8_t>(0, fuzz::feed_modes - 1, mode);
    // The target reads the cut in [0, PDU size]: one byte for the PDUs split here (< 256 bytes).
    if (mode == 1) w_.integral<std::size_t>(0, 255, 20);
    if (mode == 4) w_.integral<std::size_t>(32, 255, 48);
  }
  fdp_writer w_;
  std::size_t conns_;
  std::size_t cxhs_ = 0, acxhs_ = 0, regs_ = 0, mailboxes_ = 0;
};

void notifier_seeds() {
  const std::string t = "fuzz_notifier_session";
  const byte_buffer ctx = {0xC0, 0xFF, 0xEE, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D};
  {  // poll: bind, connect, empty poll, events, fetch with RopPending-free details, poll again
    notifier_script s({});
    s.bind(0, 0);
    s.connect(0);
    s.rpc_ext2(0);
    s.inject(3);
    s.rpc_ext2(0, 3);
    s.dummy(0);
    s.timer(60000);
    s.rpc_ext2(0);
    s.peer_close(0);
    write_seed(t, "poll-session", s.finish());
  }
  {  // push (legacy policy): register, events -> ping, resend timer, fetch
    notifier_script s({});
    s.bind(0, 0);
    s.connect(0);
    s.register_push(0, ctx, 50000, 1);
    s.inject(2);
    s.timer(61000);
    s.rpc_ext2(0);
    s.inject(1);
    s.timer(1000);
    write_seed(t, "push-session", s.finish());
  }
  {  // push (verified policy): the cookie makes the ping possible
    notifier_script::config c;
    c.policy = 2;
    notifier_script s(c);
    s.bind(0, 0);
    s.connect(0);
    s.register_push(0, ctx, 50000);
    s.inject(1);
    s.cookie();
    s.inject(1);
    s.rpc_ext2(0);
    write_seed(t, "push-verified-session", s.finish());
  }
  {  // async: two connections, wait held then completed by an event, then a wait that times out
    notifier_script::config c;
    c.peers = {0, 0};
    c.async_hold_ms = 1000;
    notifier_script s(c);
    s.bind(0, 0);
    s.bind(1, 1);
    s.connect(0);
    s.async_connect(0);
    s.async_wait(1);
    s.inject(1);
    s.rpc_ext2(0);
    s.async_wait(1);
    s.timer(2000);
    s.async_wait(1);
    s.peer_close(1);
    write_seed(t, "async-session", s.finish());
  }
  {  // fragments and disconnect: a small max_recv_frag, requests in 48-byte fragments, a
     // fetch whose response comes back in fragments, then EcDoDisconnect and a call on the dead handle
    notifier_script s({});
    s.bind(0, 0, 0, 1432);
    s.connect(0);
    s.rpc_ext2(0, 4);
    s.inject(200);
    s.rpc_ext2(0, 4);
    s.disconnect(0);
    s.rpc_ext2(0);
    s.disconnect(0);
    write_seed(t, "fragments-and-disconnect", s.finish());
  }
  {  // raw bytes: a bind and a connect as one chunk, then a truncated PDU header
    byte_buffer stream;
    dcerpc::bind_pdu b;
    b.call_id = 1;
    dcerpc::presentation_context pc;
    pc.abstract_syntax = emsmdb_syntax();
    pc.transfer_syntaxes.push_back(ndr_syntax());
    b.contexts.push_back(pc);
    dcerpc::encode(stream, b);
    emsmdb::connect_ex_request req;
    req.user_dn = user_dn;
    dcerpc::encode_request(stream, 2, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
    notifier_script s({});
    s.raw(0, stream);
    s.raw(0, byte_buffer(stream.begin(), stream.begin() + 10));
    write_seed(t, "raw-stream", s.finish());
  }
}

// ---- fuzz_client_session ------------------------------------------------------------------

class client_script {
 public:
  struct config {
    std::uint8_t mode = 0;  // poll, push, async
    std::uint32_t poll_interval_ms = 0;
    byte_buffer context;
    bool send_cookie = false;
    std::uint32_t keepalive_ms = 0;
  };
  explicit client_script(const config& c) {
    w_.integral<std::uint8_t>(0, 2, c.mode);
    w_.integral<std::uint32_t>(0, 120000, c.poll_interval_ms);
    w_.boolean(false);  // no jitter
    w_.blob(c.context, max_push_context);
    w_.boolean(c.send_cookie);
    w_.integral<std::uint32_t>(0, 60000, c.keepalive_ms);
    w_.boolean(false);  // poll until the first ping
    w_.integral<std::uint32_t>(0, 60000, 0);
    w_.integral<std::uint64_t>(0, ~std::uint64_t{0}, 1);  // seed
  }
  void reply_bind(bool async_channel) {
    reply(async_channel);
    w_.boolean(false);  // one result
    w_.boolean(false);  // accepted
    feed();
  }
  void reply_connect(std::uint32_t polls_max_ms) {
    reply(false);
    w_.integral<std::uint32_t>(0, 120000, polls_max_ms);
    w_.integral<std::uint16_t>(0, 3, 0);  // session index
    w_.boolean(false);                    // success
    feed();
  }
  void reply_register(std::uint32_t handle) {
    reply(false);
    w_.integral<std::uint32_t>(0, 0xFFFFFFFF, handle);
    w_.boolean(false);
    feed();
  }
  void reply_ext2(std::uint8_t mails, bool pending) {
    reply(false);
    w_.boolean(false);  // success
    w_.boolean(false);  // built rgbOut
    w_.integral<std::uint8_t>(0, 12, mails);
    for (std::uint8_t i = 0; i < mails; ++i) w_.integral<std::uint32_t>(0, 600000, 250u * (i + 1));
    w_.boolean(pending);
    if (pending) w_.boolean(true);  // our own session index
    feed();
  }
  void reply_async_connect() {
    reply(false);
    w_.boolean(false);
    feed();
  }
  void reply_async_wait(bool notified) {
    reply(true);
    w_.boolean(notified);
    w_.boolean(false);
    feed();
  }
  void datagram(bool matching) {
    op(client_op::datagram);
    w_.boolean(matching);
    if (!matching) w_.blob(byte_buffer{1, 2, 3}, 32);
  }
  void timer(std::uint32_t ms) {
    op(client_op::timer);
    w_.integral<std::uint32_t>(0, 600000, ms);
  }
  byte_buffer finish() const { return w_.finish(); }

 private:
  void op(client_op o) {
    w_.integral<std::uint8_t>(0, static_cast<std::uint8_t>(client_op::count_) - 1, static_cast<std::uint8_t>(o));
  }
  void reply(bool async_channel) {
    op(client_op::reply);
    w_.boolean(async_channel);
    w_.boolean(false);  // the outstanding call id
  }
  void feed() { w_.integral<std::uint8_t>(0, 3, 0); }
  fdp_writer w_;
};

void client_seeds() {
  const std::string t = "fuzz_client_session";
  const byte_buffer ctx = {0xC0, 0xFF, 0xEE, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D};
  {
    client_script s({});
    s.reply_bind(false);
    s.reply_connect(60000);
    s.timer(60000);
    s.reply_ext2(2, true);
    s.reply_ext2(1, false);
    s.timer(60000);
    s.reply_ext2(0, false);
    write_seed(t, "poll-client", s.finish());
  }
  {
    client_script::config c;
    c.mode = 1;
    c.context = ctx;
    c.send_cookie = true;
    c.keepalive_ms = 30000;
    client_script s(c);
    s.reply_bind(false);
    s.reply_connect(60000);
    s.reply_register(0x01000000);
    s.datagram(true);
    s.reply_ext2(1, false);
    s.datagram(false);
    s.timer(30000);
    s.timer(30000);
    write_seed(t, "push-client", s.finish());
  }
  {
    client_script::config c;
    c.mode = 2;
    client_script s(c);
    s.reply_bind(false);
    s.reply_bind(true);
    s.reply_connect(60000);
    s.reply_async_connect();
    s.reply_async_wait(true);
    s.reply_ext2(1, false);
    s.reply_async_wait(false);
    write_seed(t, "async-client", s.finish());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  dcerpc_seeds();
  stream_seeds();
  emsmdb_seeds();
  rop_seeds();
  sockaddr_seeds();
  push_seeds();
  notifier_seeds();
  client_seeds();
  std::printf("wrote %zu seeds, %zu bytes, under %s\n", g_files, g_bytes, g_root.c_str());
  return 0;
}
