// fuzz_client_session: notifier responses into a client_session after start().
// The input is a script (FuzzedDataProvider, see session_ops.hpp): arbitrary
// bytes on either channel, well-formed replies to the call the client has
// outstanding (with fuzzed fields, wrong call ids, split or corrupted), faults,
// datagrams and timer calls with increasing time.
//
// Fatal (abort): memory errors, UB, a client output that the project's own
// decoders refuse, output from a session that had already failed, and a
// deadline not after now once on_timer(now) ran (a driver would spin).
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/client/client_session.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/rop.hpp"
#include "session_ops.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::client;
using nudge::fuzz::client_op;

namespace {

inline constexpr std::uint16_t bind_marker = 0xFFFF;  // "opnum" of a bind

struct last_call {
  bool any = false;
  std::uint32_t call_id = 0;
  std::uint16_t opnum = 0;
};

emsmdb::context_handle fixed_handle(std::uint8_t marker) {
  emsmdb::context_handle h;
  for (std::size_t i = 0; i < 16; ++i) h.uuid.bytes[i] = static_cast<std::uint8_t>(marker + i);
  return h;
}

class harness {
 public:
  explicit harness(FuzzedDataProvider& p) : p_(p), session_(make_config(p), metrics_) {
    session_.start(now_);
    drain(false);
  }

  void run() {
    std::size_t steps = 0;
    while (p_.remaining_bytes() > 0 && steps++ < fuzz::max_steps) {
      const bool was_failed = session_.failed();
      step(static_cast<client_op>(
          p_.ConsumeIntegralInRange<std::uint8_t>(0, static_cast<std::uint8_t>(client_op::count_) - 1)));
      drain(was_failed);
    }
    session_.finish(now_);
    NUDGE_FUZZ_TRACE("end: ready %d failed %d (%s) polls %llu fetches %llu events %llu pings matched %llu\n",
                     session_.ready(), session_.failed(), session_.failure().c_str(),
                     static_cast<unsigned long long>(metrics_.counter(nudge::protocol::emsmdb::counter::polls)), static_cast<unsigned long long>(metrics_.counter(nudge::protocol::emsmdb::counter::fetches)),
                     static_cast<unsigned long long>(metrics_.counter(nudge::protocol::emsmdb::counter::events_fetched)),
                     static_cast<unsigned long long>(metrics_.counter(nudge::protocol::emsmdb::counter::pings_matched)));
    NUDGE_FUZZ_CHECK(metrics_.clients_started == 1, "start() counted once");
    NUDGE_FUZZ_CHECK(metrics_.clients_failed == (session_.failed() ? 1u : 0u), "failures counted once");
    NUDGE_FUZZ_CHECK(metrics_.counter(nudge::protocol::emsmdb::counter::pings_matched) + metrics_.counter(nudge::protocol::emsmdb::counter::datagrams_ignored) == metrics_.counter(nudge::protocol::emsmdb::counter::pings_received),
                     "every datagram is either matched or ignored");
  }

 private:
  static client_config make_config(FuzzedDataProvider& p) {
    client_config cfg;
    cfg.mode = static_cast<client_mode>(p.ConsumeIntegralInRange<std::uint8_t>(0, 2));
    cfg.user_dn = "/o=nudge/ou=fuzz/cn=user0";
    cfg.poll_interval = std::chrono::milliseconds(p.ConsumeIntegralInRange<std::uint32_t>(0, 120000));
    cfg.poll_jitter = p.ConsumeBool();
    const auto n = p.ConsumeIntegralInRange<std::size_t>(0, max_push_context);
    const auto blob = p.ConsumeBytes<std::uint8_t>(n);
    cfg.context.assign(blob);
    cfg.callback_address = ip_endpoint::v4(127, 0, 0, 1, 50000);
    cfg.send_cookie = p.ConsumeBool();
    cfg.notifier_udp = ip_endpoint::v4(127, 0, 0, 1, 7778);
    cfg.keepalive_interval = std::chrono::milliseconds(p.ConsumeIntegralInRange<std::uint32_t>(0, 60000));
    cfg.poll_until_first_ping = !p.ConsumeBool();
    cfg.fallback_check_interval = std::chrono::milliseconds(p.ConsumeIntegralInRange<std::uint32_t>(0, 60000));
    cfg.seed = p.ConsumeIntegral<std::uint64_t>();
    NUDGE_FUZZ_TRACE("config: mode %d poll_interval %lld ms jitter %d context %zu B cookie %d keepalive %lld ms "
                     "poll_until_first_ping %d fallback %lld ms\n",
                     static_cast<int>(cfg.mode),
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.poll_interval).count()),
                     cfg.poll_jitter, cfg.context.size(), cfg.send_cookie,
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.keepalive_interval).count()),
                     cfg.poll_until_first_ping,
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.fallback_check_interval).count()));
    return cfg;
  }

  channel pick_channel() { return p_.ConsumeBool() ? channel::async : channel::main; }

  byte_buffer blob(std::size_t max) {
    const auto n = p_.ConsumeIntegralInRange<std::size_t>(0, max);
    return p_.ConsumeBytes<std::uint8_t>(n);
  }

  std::uint32_t rc() { return p_.ConsumeBool() ? ec::rpc_failed : ec::success; }

  void feed(channel ch, byte_buffer bytes) {
    switch (p_.ConsumeIntegralInRange<std::uint8_t>(0, 3)) {
      case 0: session_.receive(now_, ch, bytes); break;
      case 1: {
        const auto cut = p_.ConsumeIntegralInRange<std::size_t>(0, bytes.size());
        session_.receive(now_, ch, bytes_view(bytes).first(cut));
        session_.receive(now_, ch, bytes_view(bytes).subspan(cut));
        break;
      }
      case 2: {
        if (!bytes.empty()) {
          const auto pos = p_.ConsumeIntegralInRange<std::size_t>(0, bytes.size() - 1);
          bytes[pos] ^= p_.ConsumeIntegralInRange<std::uint8_t>(1, 255);
        }
        session_.receive(now_, ch, bytes);
        break;
      }
      default:
        for (std::size_t i = 0; i < bytes.size(); ++i) session_.receive(now_, ch, bytes_view(bytes).subspan(i, 1));
        break;
    }
  }

  template <class StubWriter>
  byte_buffer response(std::uint32_t call_id, StubWriter&& write_stub) {
    byte_buffer pdu;
    dcerpc::encode_response(pdu, call_id, 0, write_stub);
    return pdu;
  }

  byte_buffer reply_to(const last_call& c, std::uint32_t call_id) {
    if (c.opnum == bind_marker) {
      dcerpc::bind_ack_pdu ack;
      ack.call_id = call_id;
      ack.secondary_address = "7777";
      if (!p_.ConsumeBool()) {
        dcerpc::bind_result res;
        res.result = p_.ConsumeBool() ? 2 : 0;
        res.transfer_syntax = ndr_syntax();
        ack.results.push_back(res);
      }
      byte_buffer pdu;
      dcerpc::encode(pdu, ack);
      return pdu;
    }
    switch (c.opnum) {
      case opnum::do_connect_ex: {
        emsmdb::connect_ex_response rsp;
        rsp.cxh = fixed_handle(0x10);
        rsp.polls_max_ms = p_.ConsumeIntegralInRange<std::uint32_t>(0, 120000);
        session_index_ = p_.ConsumeIntegralInRange<std::uint16_t>(0, 3);
        rsp.session_index = session_index_;
        rsp.dn_prefix = "/o=nudge";
        rsp.display_name = "user0";
        rsp.return_code = rc();
        NUDGE_FUZZ_TRACE("  reply connect: pcmsPollsMax %u ms, rc %#x\n", rsp.polls_max_ms, rsp.return_code);
        return response(call_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      }
      case opnum::register_push_notification: {
        emsmdb::register_push_response rsp;
        rsp.notification_handle = p_.ConsumeIntegral<std::uint32_t>();
        rsp.return_code = rc();
        return response(call_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      }
      case opnum::do_rpc_ext2: {
        emsmdb::rpc_ext2_response rsp;
        rsp.return_code = rc();
        byte_buffer rgb_out;
        if (p_.ConsumeBool()) {
          rgb_out = blob(64);
        } else {
          rop::response_builder b(rgb_out);
          const auto n = p_.ConsumeIntegralInRange<std::uint8_t>(0, 12);
          for (std::uint8_t i = 0; i < n; ++i) {
            rop::new_mail_notification m;
            m.event.id = next_event_++;
            const auto age = std::chrono::milliseconds(p_.ConsumeIntegralInRange<std::uint32_t>(0, 600000));
            m.event.created_at = now_ - std::min<duration>(age, now_.time_since_epoch());
            b.add(m);
          }
          if (p_.ConsumeBool())
            b.add_pending(p_.ConsumeBool() ? session_index_ : p_.ConsumeIntegralInRange<std::uint16_t>(0, 3));
          b.finish();
        }
        rsp.rgb_out = rgb_out;
        return response(call_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      }
      case opnum::do_async_connect_ex: {
        emsmdb::async_connect_response rsp;
        rsp.acxh = fixed_handle(0xA0);
        rsp.return_code = rc();
        return response(call_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      }
      case opnum::do_async_wait_ex: {
        emsmdb::async_wait_response rsp;
        rsp.flags_out = p_.ConsumeBool() ? notification_pending : 0;
        rsp.return_code = p_.ConsumeBool() ? ec::rejected : ec::success;
        return response(call_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
      }
      default:
        return response(call_id, [](byte_writer& w) { emsmdb::encode_dummy_response(w, 0); });
    }
  }

  void step(client_op op) {
    NUDGE_FUZZ_TRACE("op %d\n", static_cast<int>(op));
    switch (op) {
      case client_op::raw_bytes: {
        const channel ch = pick_channel();
        session_.receive(now_, ch, blob(fuzz::max_raw));
        break;
      }
      case client_op::reply: {
        const channel ch = pick_channel();
        const last_call& c = last_[static_cast<std::size_t>(ch)];
        const std::uint32_t call_id = c.call_id + (p_.ConsumeBool() ? 1u : 0u);
        if (!c.any) break;
        feed(ch, reply_to(c, call_id));
        break;
      }
      case client_op::fault: {
        const channel ch = pick_channel();
        byte_buffer pdu;
        dcerpc::encode(pdu, dcerpc::fault_pdu{last_[static_cast<std::size_t>(ch)].call_id, 0,
                                              p_.ConsumeIntegral<std::uint32_t>()});
        session_.receive(now_, ch, pdu);
        break;
      }
      case client_op::datagram: {
        const byte_buffer d =
            p_.ConsumeBool() ? byte_buffer(session_.config().context.view().begin(), session_.config().context.view().end())
                             : blob(32);
        session_.receive_datagram(now_, ip_endpoint::v4(127, 0, 0, 1, 7778), d);
        break;
      }
      case client_op::timer: {
        now_ += std::chrono::milliseconds(p_.ConsumeIntegralInRange<std::uint32_t>(0, 600000));
        NUDGE_FUZZ_TRACE("  timer at %.3f s\n", to_seconds(now_.time_since_epoch()));
        session_.on_timer(now_);
        NUDGE_FUZZ_CHECK(session_.failed() || session_.next_deadline() > now_,
                         "client deadline not after now once on_timer(now) ran (a driver would spin)");
        break;
      }
      case client_op::close: {
        const channel ch = pick_channel();
        if (p_.ConsumeBool()) session_.channel_closed(now_, ch);
        break;
      }
      case client_op::count_: break;
    }
  }

  void drain(bool was_failed) {
    auto& out = session_.outputs();
    NUDGE_FUZZ_CHECK(!was_failed || out.empty(), "a failed session produced output");
    for (auto& o : out) {
      if (auto* t = std::get_if<client::tcp_send>(&o)) {
        auto d = dcerpc::decode_pdu(t->bytes);
        NUDGE_FUZZ_CHECK(d.complete(), "the client sent a PDU its own decoder refuses");
        NUDGE_FUZZ_CHECK(d.consumed == t->bytes.size(), "the client sent a PDU with a wrong frag_length");
        last_call& c = last_[static_cast<std::size_t>(t->ch)];
        NUDGE_FUZZ_TRACE("  tcp_send ch %d: %zu bytes, %s opnum %d\n", static_cast<int>(t->ch), t->bytes.size(),
                         dcerpc::packet_type_name(t->bytes[2]),
                         t->bytes[2] == 0 ? t->bytes[22] | (t->bytes[23] << 8) : -1);
        if (auto* b = std::get_if<dcerpc::bind_pdu>(&d.value)) {
          c = {true, b->call_id, bind_marker};
        } else if (auto* r = std::get_if<dcerpc::request_pdu>(&d.value)) {
          c = {true, r->call_id, r->opnum};
          NUDGE_FUZZ_CHECK(t->ch == channel::main || r->opnum == opnum::do_async_wait_ex,
                           "an EMSMDB call on the async channel");
          if (r->opnum == opnum::do_rpc_ext2) {
            auto e = emsmdb::decode_rpc_ext2_request(r->stub);
            NUDGE_FUZZ_CHECK(e.complete(), "the client's EcDoRpcExt2 request does not decode");
            NUDGE_FUZZ_CHECK(rop::decode_request(e.value.rgb_in).complete(), "the client's rgbIn does not decode");
          }
        } else {
          NUDGE_FUZZ_CHECK(false, "the client sent a PDU type a client never sends");
        }
      } else if (auto* u = std::get_if<client::udp_send>(&o)) {
        NUDGE_FUZZ_TRACE("  udp_send %zu bytes\n", u->bytes.size());
        auto c = decode_reachability_cookie(u->bytes);
        NUDGE_FUZZ_CHECK(c.complete(), "the client's cookie does not decode");
        NUDGE_FUZZ_CHECK(session_.config().context.matches(c.value.context), "the cookie carries another context");
        NUDGE_FUZZ_CHECK(u->to == session_.config().notifier_udp, "a cookie sent elsewhere");
      }
    }
    out.clear();
  }

  FuzzedDataProvider& p_;
  client_metrics metrics_;
  client_session session_;
  time_point now_ = time_point(std::chrono::seconds(1000));
  std::array<last_call, 2> last_{};
  std::uint16_t session_index_ = 0;
  std::uint64_t next_event_ = 1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider p(data, size);
  harness h(p);
  h.run();
  return 0;
}
