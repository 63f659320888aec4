#include "nudge/client/client_session.hpp"

#include <memory>

#include "nudge/emsmdb/family.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::client {

using namespace protocol;
using metrics::direction;
using emsmdb::message_kind;
using ctr = emsmdb::counter;

std::string_view to_string(client_mode m) {
  switch (m) {
    case client_mode::poll: return "poll";
    case client_mode::push: return "push";
    case client_mode::async: return "async";
  }
  return "?";
}

std::optional<client_mode> parse_client_mode(std::string_view s) {
  if (s == "poll") return client_mode::poll;
  if (s == "push") return client_mode::push;
  if (s == "async") return client_mode::async;
  return std::nullopt;
}

std::string_view to_string(delivery_path p) {
  switch (p) {
    case delivery_path::poll: return "poll";
    case delivery_path::push: return "push";
    case delivery_path::async: return "async";
  }
  return "?";
}

namespace {
message_kind kind_of(int k) {
  // Mirrors client_session::call_kind.
  static constexpr message_kind table[] = {message_kind::fault,         message_kind::bind,  message_kind::connect,
                                           message_kind::register_push, message_kind::poll,  message_kind::fetch,
                                           message_kind::async_connect, message_kind::async_wait};
  return table[k];
}
}  // namespace

client_session::client_session(client_config cfg, client_metrics& metrics)
    : cfg_(std::move(cfg)), m_(metrics), rng_(cfg_.seed) {
  m_.fit(delivery_path_count, emsmdb::counter_count);
}

void client_session::count(message_kind k, direction d, std::size_t bytes) {
  m_.traffic.add(k, d, cfg_.wire.tcp_message(bytes));
}

void client_session::count_ack(direction d, time_point at, channel ch) {
  if (at == never) return;
  m_.traffic.add(message_kind::tcp_ack, d, cfg_.wire.pure_ack());
  if (tap_ && !cfg_.wire.is_abstract()) tap_->pure_ack(at, ch, d);
}

void client_session::fail(std::string why) {
  if (state_ == state::failed) return;
  state_ = state::failed;
  failure_ = std::move(why);
  ++m_.clients_failed;
  next_poll_ = never;
  next_keepalive_ = never;
}

// ---- sending --------------------------------------------------------------------------------

void client_session::send_call(time_point now, channel ch, call_kind kind, std::uint16_t, byte_buffer& pdu) {
  channel_state& c = chan(ch);
  c.outstanding = kind;
  c.sent_at = now;
  c.request_bytes = pdu.size();
  count(kind_of(static_cast<int>(kind)), direction::to_server, pdu.size());
  count_ack(direction::to_server, c.client_acks.on_data_sent(now), ch);
  count_ack(direction::to_client, c.server_acks.on_data_received(now, cfg_.wire.delayed_ack), ch);
  out_.push_back(tcp_send{ch, std::move(pdu)});
}

void client_session::start(time_point now) {
  ++m_.clients_started;
  state_ = state::binding;
  chan(channel::main).open = true;
  if (needs_async_channel()) chan(channel::async).open = true;
  for (channel ch : {channel::main, channel::async}) {
    if (!chan(ch).open) continue;
    // Quick ACKs at connection start only: EMSMDB's measured wire matches without
    // wire.idle_quick_ack (its polls never answer a reply within the ACK delay).
    chan(ch).client_acks.set_quick_acks(cfg_.wire.quick_acks);
    chan(ch).server_acks.set_quick_acks(cfg_.wire.quick_acks);
    m_.traffic.add(message_kind::tcp_setup, direction::to_server, cfg_.wire.handshake_to_server());
    m_.traffic.add(message_kind::tcp_setup, direction::to_client, cfg_.wire.handshake_to_client());
    send_bind(now, ch);
  }
}

void client_session::send_bind(time_point now, channel ch) {
  dcerpc::bind_pdu b;
  b.call_id = chan(ch).next_call_id++;
  dcerpc::presentation_context ctx;
  ctx.abstract_syntax = ch == channel::main ? emsmdb_syntax() : async_emsmdb_syntax();
  ctx.transfer_syntaxes.push_back(ndr_syntax());
  b.contexts.push_back(std::move(ctx));
  byte_buffer pdu;
  dcerpc::encode(pdu, b);
  chan(ch).outstanding_call = b.call_id;
  send_call(now, ch, call_kind::bind, 0, pdu);
}

void client_session::send_connect(time_point now) {
  emsmdb::connect_ex_request req;
  req.user_dn = cfg_.user_dn;
  byte_buffer pdu;
  const std::uint32_t id = chan(channel::main).next_call_id++;
  dcerpc::encode_request(pdu, id, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
  chan(channel::main).outstanding_call = id;
  send_call(now, channel::main, call_kind::connect, opnum::do_connect_ex, pdu);
}

void client_session::send_register(time_point now) {
  byte_buffer sockaddr = windows_sockaddr(cfg_.callback_address);
  emsmdb::register_push_request req;
  req.cxh = cxh_;
  req.context = cfg_.context.view();
  req.callback_address = sockaddr;
  byte_buffer pdu;
  const std::uint32_t id = chan(channel::main).next_call_id++;
  dcerpc::encode_request(pdu, id, 0, opnum::register_push_notification,
                         [&](byte_writer& w) { emsmdb::encode(w, req); });
  chan(channel::main).outstanding_call = id;
  send_call(now, channel::main, call_kind::register_push, opnum::register_push_notification, pdu);
}

void client_session::send_ext2(time_point now, call_kind kind, delivery_path reason) {
  channel_state& c = chan(channel::main);
  const std::uint32_t id = c.next_call_id++;
  // Every empty EcDoRpcExt2 of a session is the same PDU but for its call_id:
  // encode it once, then copy and patch (polling is the hot path of a big run).
  if (ext2_template_.empty()) emsmdb::encode_empty_poll_request(ext2_template_, 0, cxh_);
  byte_buffer pdu = ext2_template_;
  for (int i = 0; i < 4; ++i) pdu[dcerpc::call_id_offset + i] = static_cast<std::uint8_t>(id >> (8 * i));
  c.outstanding_call = id;
  c.reason = reason;
  m_.add(kind == call_kind::poll ? ctr::polls : ctr::fetches);
  send_call(now, channel::main, kind, opnum::do_rpc_ext2, pdu);
}

void client_session::send_async_connect(time_point now) {
  byte_buffer pdu;
  const std::uint32_t id = chan(channel::main).next_call_id++;
  dcerpc::encode_request(pdu, id, 0, opnum::do_async_connect_ex,
                         [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_request{cxh_}); });
  chan(channel::main).outstanding_call = id;
  send_call(now, channel::main, call_kind::async_connect, opnum::do_async_connect_ex, pdu);
}

void client_session::send_async_wait(time_point now) {
  channel_state& c = chan(channel::async);
  if (!c.bound || c.outstanding != call_kind::none) return;  // sent when the bind completes
  byte_buffer pdu;
  const std::uint32_t id = c.next_call_id++;
  dcerpc::encode_request(pdu, id, 0, opnum::do_async_wait_ex,
                         [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_request{acxh_, 0}); });
  c.outstanding_call = id;
  m_.add(ctr::async_waits);
  send_call(now, channel::async, call_kind::async_wait, opnum::do_async_wait_ex, pdu);
}

void client_session::send_cookie(time_point now) {
  byte_buffer d;
  encode_reachability_cookie(d, notification_handle_, cfg_.context.view());
  m_.traffic.add(message_kind::keepalive, direction::to_server, cfg_.wire.udp_message(d.size()));
  out_.push_back(udp_send{cfg_.notifier_udp, std::move(d)});
  next_keepalive_ = cfg_.keepalive_interval > duration::zero() ? now + cfg_.keepalive_interval : never;
}

// ---- receiving ------------------------------------------------------------------------------

void client_session::receive(time_point now, channel ch, bytes_view bytes) {
  if (state_ == state::failed) return;
  channel_state& c = chan(ch);
  c.rx.append(bytes);  // borrowed: framed in place, only an incomplete tail is kept
  while (state_ != state::failed) {
    const auto f = c.rx.next();
    if (f.outcome == dcerpc::stream_framer::status::need_more) return;
    if (f.outcome == dcerpc::stream_framer::status::malformed) {
      m_.add(ctr::protocol_errors);
      fail(std::string("malformed PDU from the notifier: ") + std::string(f.reason));
      break;
    }
    on_pdu(now, ch, f.pdu);
  }
  c.rx.clear();  // failed: nothing more is read
}

void client_session::on_pdu(time_point now, channel ch, bytes_view bytes) {
  channel_state& c = chan(ch);
  auto d = dcerpc::decode_pdu(bytes);
  if (!d.complete()) return on_whole_pdu(now, ch, 0, {}, bytes.size(), nullptr, d.reason);
  auto* r = std::get_if<dcerpc::response_pdu>(&d.value);
  if (!r) return on_whole_pdu(now, ch, 0, {}, bytes.size(), &d.value);
  if (r->pfc_flags == dcerpc::pfc::single_frag && !c.fragments) return on_whole_pdu(now, ch, r->call_id, r->stub, bytes.size(), nullptr);
  // A response the notifier cut to our max_recv_frag: counted and answered
  // once, when its last fragment is in. The state lives only while it does.
  if (!c.fragments) c.fragments = std::make_unique<response_fragments>();
  c.fragments->bytes += bytes.size();
  auto joined = c.fragments->reassembly.add(r->call_id, r->context_id, r->pfc_flags, r->stub);
  if (joined.outcome == dcerpc::stub_reassembler::status::need_more) return;
  const std::size_t total = c.fragments->bytes;
  c.fragments.reset();
  if (joined.outcome != dcerpc::stub_reassembler::status::whole) {
    m_.add(ctr::protocol_errors);
    return fail(std::string("bad response fragments from the notifier: ") + std::string(joined.reason));
  }
  on_whole_pdu(now, ch, r->call_id, joined.stub(), total, nullptr);
}

void client_session::on_whole_pdu(time_point now, channel ch, std::uint32_t call_id, bytes_view stub,
                                  std::size_t size, const dcerpc::pdu* other, std::string_view malformed) {
  channel_state& c = chan(ch);
  const call_kind kind = c.outstanding;
  count(kind_of(static_cast<int>(kind == call_kind::none ? call_kind::none : kind)), direction::to_client, size);
  count_ack(direction::to_client, c.server_acks.on_data_sent(now), ch);
  count_ack(direction::to_server, c.client_acks.on_data_received(now, cfg_.wire.delayed_ack), ch);
  if (!malformed.empty()) {
    m_.add(ctr::protocol_errors);
    return fail(std::string("malformed PDU from the notifier: ") + std::string(malformed));
  }
  if (other) {
    if (auto* a = std::get_if<dcerpc::bind_ack_pdu>(other)) {
      call_id = a->call_id;
      if (a->results.empty() || a->results.front().result != 0) {
        m_.add(ctr::protocol_errors);
        return fail("the notifier rejected the bind");
      }
    } else if (auto* f = std::get_if<dcerpc::fault_pdu>(other)) {
      m_.add(ctr::protocol_errors);
      return fail("the notifier answered with fault status " + std::to_string(f->status));
    } else {
      m_.add(ctr::protocol_errors);
      return fail("unexpected PDU type from the notifier");
    }
  }
  if (kind == call_kind::none || call_id != c.outstanding_call) {
    m_.add(ctr::protocol_errors);
    return fail("response for a call that is not outstanding");
  }
  c.outstanding = call_kind::none;
  on_response(now, ch, kind, stub, size);
}

void client_session::on_response(time_point now, channel ch, call_kind kind, bytes_view stub,
                                 std::size_t response_bytes) {
  switch (kind) {
    case call_kind::bind:
      chan(ch).bound = true;
      if (ch == channel::main) {
        state_ = state::connecting;
        send_connect(now);
      } else if (async_active_) {
        send_async_wait(now);
      }
      return;
    case call_kind::connect: {
      auto d = emsmdb::decode_connect_ex_response(stub);
      if (!d.complete() || d.value.return_code != ec::success) {
        m_.add(ctr::protocol_errors);
        return fail("EcDoConnectEx failed");
      }
      cxh_ = d.value.cxh;
      session_index_ = d.value.session_index;
      interval_ = cfg_.poll_interval > duration::zero() ? cfg_.poll_interval
                                                        : duration(std::chrono::milliseconds(d.value.polls_max_ms));
      // A zero pcmsPollsMax would make the client poll in a tight loop.
      interval_ = std::max<duration>(interval_, min_poll_interval);
      state_ = state::setting_up;
      if (cfg_.mode == client_mode::push) return send_register(now);
      if (cfg_.mode == client_mode::async) return send_async_connect(now);
      became_ready(now);
      return schedule_poll(now);
    }
    case call_kind::register_push: {
      auto d = emsmdb::decode_register_push_response(stub);
      became_ready(now);
      if (d.complete() && d.value.return_code == ec::success) {
        registered_ = true;
        notification_handle_ = d.value.notification_handle;
        if (cfg_.send_cookie) send_cookie(now);
        if (cfg_.poll_until_first_ping) schedule_poll(now);
        else push_confirmed_ = true, next_poll_ = cfg_.fallback_check_interval > duration::zero()
                                                      ? now + cfg_.fallback_check_interval
                                                      : never;
      } else {
        schedule_poll(now);  // no push: a client falls back to polling
      }
      return maybe_send_fetch(now);
    }
    case call_kind::async_connect: {
      auto d = emsmdb::decode_async_connect_response(stub);
      became_ready(now);
      if (d.complete() && d.value.return_code == ec::success) {
        acxh_ = d.value.acxh;
        async_active_ = true;
        send_async_wait(now);
      } else {
        schedule_poll(now);  // MS-OXCNOTIF: no async, fall back (push is not configured here: poll)
      }
      return;
    }
    case call_kind::async_wait: {
      auto d = emsmdb::decode_async_wait_response(stub);
      if (!d.complete() || d.value.return_code != ec::success) {
        async_active_ = false;
        m_.add(ctr::protocol_errors);
        return schedule_poll(now);
      }
      if (d.value.flags_out & notification_pending) {
        m_.add(ctr::async_notified);
        fetch_wanted_ = true;
        fetch_reason_ = delivery_path::async;
        wait_after_fetch_ = true;
        return maybe_send_fetch(now);
      }
      m_.add(ctr::async_timeouts);
      return send_async_wait(now);
    }
    case call_kind::poll:
    case call_kind::fetch:
      return on_ext2_response(now, kind, chan(channel::main).reason, stub, response_bytes);
    case call_kind::none:
      return;
  }
}

namespace {
struct fetch_collector : rop::rop_visitor {
  std::uint16_t session_index;
  time_point now;
  client_metrics& m;
  delivery_path path;
  std::size_t found = 0;
  bool pending = false;
  fetch_collector(std::uint16_t s, time_point t, client_metrics& mm, delivery_path p)
      : session_index(s), now(t), m(mm), path(p) {}
  void on_new_mail(const rop::new_mail_notification& n) override {
    ++found;
    m.add(ctr::events_fetched);
    ++m.events_by_path[static_cast<std::size_t>(path)];
    const duration latency = now - n.event.created_at;
    m.latency.record(latency);
    m.latency_by_path[static_cast<std::size_t>(path)].record(latency);
  }
  void on_pending(std::uint16_t idx) override {
    // Only our own session's RopPending asks us to fetch again (MS-OXCNOTIF 3.2.5.5.3).
    if (idx == session_index) pending = true;
  }
};
}  // namespace

void client_session::on_ext2_response(time_point now, call_kind kind, delivery_path reason, bytes_view stub,
                                      std::size_t response_bytes) {
  auto d = emsmdb::decode_rpc_ext2_response(stub);
  if (!d.complete() || d.value.return_code != ec::success) {
    m_.add(ctr::protocol_errors);
    return fail("EcDoRpcExt2 failed");
  }
  fetch_collector collector(session_index_, now, m_, reason);
  auto r = rop::decode_response(d.value.rgb_out, collector);
  if (!r.complete()) {
    m_.add(ctr::protocol_errors);
    return fail(std::string("bad ROP buffer: ") + std::string(r.reason));
  }
  if (collector.found == 0) m_.add(kind == call_kind::poll ? ctr::wasted_polls : ctr::wasted_fetches);
  if (collector.found == 0 && kind == call_kind::poll) {
    m_.wasted_poll_traffic += cfg_.wire.tcp_message(chan(channel::main).request_bytes);
    m_.wasted_poll_traffic += cfg_.wire.tcp_message(response_bytes);
  }
  if (collector.pending) {
    m_.add(ctr::pending_seen);
    fetch_wanted_ = true;
    fetch_reason_ = reason;
  }
  // A liveness check that found details no ping announced: pings are not arriving.
  if (cfg_.mode == client_mode::push && kind == call_kind::poll && push_confirmed_ && collector.found > 0 &&
      cfg_.fallback_check_interval > duration::zero()) {
    push_confirmed_ = false;
    m_.add(ctr::fallbacks_to_polling);
  }
  if (kind == call_kind::poll) schedule_poll(now);
  maybe_send_fetch(now);
  if (!fetch_wanted_ && wait_after_fetch_ && chan(channel::main).outstanding == call_kind::none) {
    wait_after_fetch_ = false;
    send_async_wait(now);
  }
}

void client_session::receive_datagram(time_point now, const ip_endpoint&, bytes_view bytes) {
  m_.traffic.add(message_kind::ping, direction::to_client, cfg_.wire.udp_message(bytes.size()));
  m_.add(ctr::pings_received);
  if (state_ == state::failed || !registered_ || !cfg_.context.matches(bytes)) {
    m_.add(ctr::datagrams_ignored);  // forged, stale or random: never a reason to fetch
    return;
  }
  m_.add(ctr::pings_matched);
  if (!push_confirmed_) {
    push_confirmed_ = true;  // push works: stop polling (or go back to liveness checks)
    next_poll_ = cfg_.fallback_check_interval > duration::zero() ? now + cfg_.fallback_check_interval : never;
  }
  fetch_wanted_ = true;
  fetch_reason_ = delivery_path::push;
  maybe_send_fetch(now);
}

void client_session::maybe_send_fetch(time_point now) {
  if (!fetch_wanted_ || state_ == state::failed || chan(channel::main).outstanding != call_kind::none) return;
  fetch_wanted_ = false;
  send_ext2(now, call_kind::fetch, fetch_reason_);
}

void client_session::became_ready(time_point) {
  if (state_ == state::ready) return;
  state_ = state::ready;
  ++m_.clients_ready;
}

void client_session::schedule_poll(time_point now) {
  if (cfg_.mode == client_mode::push && push_confirmed_) {
    next_poll_ = cfg_.fallback_check_interval > duration::zero() ? now + cfg_.fallback_check_interval : never;
    return;
  }
  if (cfg_.mode == client_mode::async && async_active_) {
    next_poll_ = never;
    return;
  }
  const duration wait = cfg_.poll_jitter ? rng_.between(interval_, 2 * interval_) : interval_;
  next_poll_ = now + wait;
}

// ---- time ------------------------------------------------------------------------------------

time_point client_session::next_deadline() const {
  time_point t = std::min(next_poll_, next_keepalive_);
  if (cfg_.eager_acks)
    for (const auto& c : channels_) t = std::min({t, c.client_acks.pending_deadline(), c.server_acks.pending_deadline()});
  return t;
}

void client_session::on_timer(time_point now) {
  if (cfg_.eager_acks)
    for (channel ch : {channel::main, channel::async}) {
      count_ack(direction::to_server, chan(ch).client_acks.flush(now), ch);
      count_ack(direction::to_client, chan(ch).server_acks.flush(now), ch);
    }
  if (state_ == state::failed) return;
  if (next_keepalive_ <= now) send_cookie(now);
  if (next_poll_ <= now) {
    if (chan(channel::main).outstanding == call_kind::none) {
      next_poll_ = never;  // re-armed when the response arrives
      send_ext2(now, call_kind::poll, delivery_path::poll);
    } else {
      schedule_poll(now);  // a call is in flight and will bring any details along
    }
  }
}

void client_session::channel_closed(time_point, channel ch) {
  chan(ch).open = false;
  fail(ch == channel::main ? "the notifier closed the EMSMDB connection" : "the notifier closed the async connection");
}

void client_session::finish(time_point) {
  for (channel ch : {channel::main, channel::async}) {
    count_ack(direction::to_server, chan(ch).client_acks.flush(never), ch);
    count_ack(direction::to_client, chan(ch).server_acks.flush(never), ch);
  }
}

}  // namespace nudge::client
