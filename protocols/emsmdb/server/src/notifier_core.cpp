#include "nudge/notifier/notifier_core.hpp"

#include <algorithm>
#include <utility>

#include "nudge/protocol/sockaddr.hpp"

namespace nudge::notifier {

using namespace protocol;
using metrics::direction;
using protocol::emsmdb::message_kind;

namespace {
// rgbOut per response is capped at what one default-size fragment holds (a
// response PDU is 24 header + 64 stub around rgbOut + rgbOut + up to 3 pad
// bytes), the rest waiting behind RopPending: with the usual negotiation every
// response is one fragment, and a client that negotiated a smaller
// max_recv_frag gets the same response cut into fragments.
constexpr std::size_t max_rgb_out_per_pdu = dcerpc::default_max_frag - 24 - 64 - 3;
// C706 p_reject_reason_t local_limit_exceeded, for a bind we cannot honour.
constexpr std::uint16_t reject_local_limit_exceeded = 2;
constexpr std::uint8_t session_marker = 0x5E;
constexpr std::uint8_t async_marker = 0xA5;

std::uint32_t notification_handle_of(std::uint32_t index, std::uint32_t generation) {
  return ((generation & 0xFFu) << 24) | (index & 0xFFFFFFu);
}

message_kind kind_of_opnum(bool async_iface, std::uint16_t op) {
  if (async_iface) return message_kind::async_wait;
  switch (op) {
    case opnum::do_connect_ex: return message_kind::connect;
    case opnum::do_disconnect: return message_kind::connect;  // session setup and teardown share a kind
    case opnum::register_push_notification: return message_kind::register_push;
    case opnum::dummy_rpc: return message_kind::dummy;
    case opnum::do_async_connect_ex: return message_kind::async_connect;
    case opnum::do_rpc_ext2: return message_kind::poll;
    default: return message_kind::fault;
  }
}
}  // namespace

std::string_view to_string(callback_policy p) {
  switch (p) {
    case callback_policy::legacy: return "legacy";
    case callback_policy::peer: return "peer";
    case callback_policy::verified: return "verified";
  }
  return "?";
}

std::optional<callback_policy> parse_callback_policy(std::string_view s) {
  if (s == "legacy") return callback_policy::legacy;
  if (s == "peer") return callback_policy::peer;
  if (s == "verified") return callback_policy::verified;
  return std::nullopt;
}

notifier_core::notifier_core(notifier_config cfg) : cfg_(std::move(cfg)) {}

// ---- connections -------------------------------------------------------------------

notifier_core::connection* notifier_core::find_connection(connection_id id) {
  const auto slot = static_cast<std::size_t>(id & 0xFFFFFFFFu);
  if (slot >= connections_.size()) return nullptr;
  connection& c = connections_[slot];
  return c.live && c.generation == (id >> 32) ? &c : nullptr;
}

connection_id notifier_core::open_connection(time_point, const ip_endpoint& peer) {
  std::uint32_t slot;
  if (!free_connections_.empty()) {
    slot = free_connections_.back();
    free_connections_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(connections_.size());
    connections_.emplace_back();
  }
  connection& c = connections_[slot];
  const std::uint32_t gen = c.generation + 1;
  c = connection{};
  c.generation = gen;
  c.live = true;
  c.peer = peer;
  ++open_connections_;
  const connection_id id = (connection_id{gen} << 32) | slot;
  ++stats_.connections_opened;
  stats_.traffic.add(message_kind::tcp_setup, direction::to_server, cfg_.wire.handshake_to_server());
  stats_.traffic.add(message_kind::tcp_setup, direction::to_client, cfg_.wire.handshake_to_client());
  return id;
}

void notifier_core::connection_closed(time_point, connection_id id) {
  connection* c = find_connection(id);
  if (!c) return;
  for (std::uint32_t s : c->sessions) close_session(s);
  // A wait held on this (async) connection can no longer be answered.
  for (auto& s : sessions_)
    if (s.live && s.wait_held && s.wait_conn == id) {
      s.wait_held = false;
      s.wait_deadline = never;
    }
  c->live = false;
  c->rx.clear();
  c->fragments.reset();
  c->sessions = {};
  free_connections_.push_back(static_cast<std::uint32_t>(id & 0xFFFFFFFFu));
  --open_connections_;
  ++stats_.connections_closed;
}

std::size_t notifier_core::reassembly_bytes_held() const {
  std::size_t held = 0;
  for (const connection& c : connections_)
    if (c.live && c.fragments) held += c.fragments->reassembly.buffered();
  return held;
}

void notifier_core::drop_connection(connection_id id, std::string reason) {
  out_.push_back(close_connection{id, std::move(reason)});
  connection_closed(time_point{}, id);
}

void notifier_core::receive(time_point now, connection_id id, bytes_view bytes) {
  connection* first = find_connection(id);
  if (!first) return;
  first->rx.append(bytes);  // borrowed: framed in place, only an incomplete tail is kept
  while (true) {
    connection* cp = find_connection(id);  // a PDU may close the connection
    if (!cp) return;
    connection& c = *cp;
    const auto f = c.rx.next();
    if (f.outcome == dcerpc::stream_framer::status::need_more) return;
    if (f.outcome == dcerpc::stream_framer::status::malformed) {
      ++stats_.connections_dropped_malformed;
      drop_connection(id, "malformed DCE/RPC PDU from " + c.peer.to_string() + ": " + std::string(f.reason));
      return;
    }
    auto d = dcerpc::decode_pdu(f.pdu);
    if (d.malformed()) {
      ++stats_.connections_dropped_malformed;
      drop_connection(id, "malformed DCE/RPC PDU from " + c.peer.to_string() + ": " + std::string(d.reason));
      return;
    }
    ++stats_.pdus_received;
    process_pdu(now, id, c, d.value, d.consumed);
  }
}

void notifier_core::process_pdu(time_point now, connection_id id, connection& c, const dcerpc::pdu& p,
                                std::size_t size) {
  const auto rx = cfg_.wire.tcp_message(size);
  if (auto* b = std::get_if<dcerpc::bind_pdu>(&p)) {
    stats_.traffic.add(message_kind::bind, direction::to_server, rx);
    handle_bind(id, c, *b);
  } else if (auto* r = std::get_if<dcerpc::request_pdu>(&p)) {
    if (r->pfc_flags == dcerpc::pfc::single_frag && !c.fragments)
      handle_request(now, id, c, *r, rx);  // the usual case: nothing to join
    else
      handle_request_fragment(now, id, c, *r, size);
  } else {
    // A client has no business sending responses, faults or acks to a server.
    drop_connection(id, "unexpected DCE/RPC packet type from a client");
  }
}

void notifier_core::handle_request_fragment(time_point now, connection_id id, connection& c,
                                            const dcerpc::request_pdu& r, std::size_t size) {
  if (!c.fragments) c.fragments = std::make_unique<request_fragments>();
  request_fragments& f = *c.fragments;
  if (f.skipping) {
    // The rest of a call already refused as too large: dropped as it comes, never held.
    if (r.call_id == f.skipping_call_id && !r.first_fragment()) {
      stats_.traffic.add(message_kind::fault, direction::to_server, cfg_.wire.tcp_message(size));
      if (r.last_fragment()) c.fragments.reset();
      return;
    }
    f.skipping = false;
  }
  const std::uint32_t tag = (std::uint32_t{r.opnum} << 16) | r.context_id;
  auto joined = f.reassembly.add(r.call_id, tag, r.pfc_flags, r.stub);
  f.bytes += size;
  using status = dcerpc::stub_reassembler::status;
  switch (joined.outcome) {
    case status::need_more: return;
    case status::whole: {
      const auto rx = cfg_.wire.tcp_message(f.bytes);
      c.fragments.reset();
      if (joined.multi_fragment) ++stats_.fragmented_requests;
      dcerpc::request_pdu whole = r;
      whole.stub = joined.stub();
      whole.pfc_flags = dcerpc::pfc::single_frag;
      return handle_request(now, id, c, whole, rx);
    }
    case status::too_large: {
      // Bounded memory: the call is answered now and its later fragments skipped.
      ++stats_.requests_too_large;
      stats_.traffic.add(message_kind::fault, direction::to_server, cfg_.wire.tcp_message(f.bytes));
      f.bytes = 0;
      if (r.last_fragment()) {
        c.fragments.reset();
      } else {
        f.skipping = true;
        f.skipping_call_id = r.call_id;
      }
      return send_fault(id, c, r.call_id, fault_status::remote_no_memory);
    }
    case status::out_of_sequence: {
      // C706: one call at a time on a connection without PFC_CONC_MPX; a
      // fragment out of order is a protocol error, and the connection ends.
      ++stats_.connections_dropped_malformed;
      send_fault(id, c, r.call_id, fault_status::proto_error);
      return drop_connection(id, "DCE/RPC fragments out of sequence from " + c.peer.to_string() + ": " +
                                     std::string(joined.reason));
    }
  }
}

void notifier_core::send_pdu(connection_id id, byte_buffer bytes, message_kind kind) {
  // A response longer than the client can receive goes out in fragments of the
  // negotiated size (C706 12.6.4.3); bind_ack and fault PDUs are always shorter.
  if (const connection* c = find_connection(id); c && bytes.size() > c->max_xmit_frag) {
    auto d = dcerpc::decode_pdu(bytes);
    if (auto* rsp = d.complete() ? std::get_if<dcerpc::response_pdu>(&d.value) : nullptr) {
      byte_buffer cut;
      cut.reserve(bytes.size() + (bytes.size() / 1024 + 1) * dcerpc::response_header_size);
      dcerpc::encode_response_fragments(cut, rsp->call_id, rsp->context_id, rsp->stub, c->max_xmit_frag);
      ++stats_.fragmented_responses;
      bytes = std::move(cut);
    }
  }
  stats_.traffic.add(kind, direction::to_client, cfg_.wire.tcp_message(bytes.size()));
  out_.push_back(tcp_send{id, std::move(bytes)});
}

void notifier_core::handle_bind(connection_id id, connection& c, const dcerpc::bind_pdu& b) {
  dcerpc::bind_ack_pdu ack;
  ack.call_id = b.call_id;
  if (b.max_recv_frag < dcerpc::must_recv_frag_size) {
    // C706 12.6.3.1: every implementation receives 1432-byte fragments; a client
    // that offers less cannot be answered within its limit.
    ++stats_.binds_rejected;
    byte_buffer out;
    dcerpc::encode(out, dcerpc::bind_nak_pdu{b.call_id, reject_local_limit_exceeded});
    return send_pdu(id, std::move(out), message_kind::fault);
  }
  ack.max_xmit_frag = std::min<std::uint16_t>(b.max_recv_frag, dcerpc::default_max_frag);
  ack.max_recv_frag = std::min<std::uint16_t>(b.max_xmit_frag, dcerpc::default_max_frag);
  c.max_xmit_frag = ack.max_xmit_frag;
  ack.assoc_group_id = 0x53F0 + static_cast<std::uint32_t>(id & 0xFFFF);
  ack.secondary_address = std::to_string(cfg_.tcp_port);
  bool accepted = false;
  for (const auto& ctx : b.contexts) {
    dcerpc::bind_result res;
    const bool ndr = std::find(ctx.transfer_syntaxes.begin(), ctx.transfer_syntaxes.end(), ndr_syntax()) !=
                     ctx.transfer_syntaxes.end();
    interface_kind kind = interface_kind::none;
    if (ctx.abstract_syntax == emsmdb_syntax()) kind = interface_kind::emsmdb;
    if (ctx.abstract_syntax == async_emsmdb_syntax()) kind = interface_kind::async_emsmdb;
    if (kind != interface_kind::none && ndr && !accepted) {
      res.result = 0;
      res.transfer_syntax = ndr_syntax();
      c.bound = kind;
      c.context_id = ctx.context_id;
      accepted = true;
    } else {
      res.result = 2;                                         // provider rejection
      res.reason = kind == interface_kind::none ? 1 : 2;      // abstract / transfer syntax not supported
    }
    ack.results.push_back(res);
  }
  if (!accepted) ++stats_.binds_rejected;
  byte_buffer out;
  dcerpc::encode(out, ack);
  send_pdu(id, std::move(out), message_kind::bind);
}

void notifier_core::send_fault(connection_id id, const connection& c, std::uint32_t call_id, std::uint32_t status) {
  ++stats_.faults_sent;
  byte_buffer out;
  dcerpc::encode(out, dcerpc::fault_pdu{call_id, c.context_id, status});
  send_pdu(id, std::move(out), message_kind::fault);
}

void notifier_core::handle_request(time_point now, connection_id id, connection& c, const dcerpc::request_pdu& r,
                                   const metrics::traffic_cell& rx) {
  const bool async_iface = c.bound == interface_kind::async_emsmdb;
  // EcDoRpcExt2 is counted once its response shows whether it was a poll or a fetch.
  if (async_iface || r.opnum != opnum::do_rpc_ext2 || c.bound == interface_kind::none)
    stats_.traffic.add(c.bound == interface_kind::none ? message_kind::fault : kind_of_opnum(async_iface, r.opnum),
                       direction::to_server, rx);
  if (c.bound == interface_kind::none || r.context_id != c.context_id) {
    send_fault(id, c, r.call_id, fault_status::unk_if);
    return;
  }
  if (async_iface) {
    if (r.opnum == opnum::do_async_wait_ex) return do_async_wait(now, id, c, r);
    return send_fault(id, c, r.call_id, fault_status::op_rng_error);
  }
  switch (r.opnum) {
    case opnum::do_connect_ex: return do_connect(now, id, c, r);
    case opnum::do_disconnect: return do_disconnect(id, c, r);
    case opnum::register_push_notification: return do_register(now, id, c, r);
    case opnum::do_rpc_ext2: return do_rpc_ext2(now, id, c, r, rx);
    case opnum::do_async_connect_ex: return do_async_connect(id, c, r);
    case opnum::dummy_rpc: {
      byte_buffer out;
      dcerpc::encode_response(out, r.call_id, c.context_id, [](byte_writer& w) { emsmdb::encode_dummy_response(w, 0); });
      return send_pdu(id, std::move(out), message_kind::dummy);
    }
    default: return send_fault(id, c, r.call_id, fault_status::op_rng_error);
  }
}

// ---- sessions ------------------------------------------------------------------------

emsmdb::context_handle notifier_core::make_handle(std::uint32_t index, bool async_handle) const {
  emsmdb::context_handle h;
  const std::uint32_t gen = sessions_[index].generation;
  for (int i = 0; i < 4; ++i) {
    h.uuid.bytes[i] = static_cast<std::uint8_t>(index >> (8 * i));
    h.uuid.bytes[4 + i] = static_cast<std::uint8_t>(gen >> (8 * i));
  }
  h.uuid.bytes[8] = async_handle ? async_marker : session_marker;
  for (int i = 9; i < 16; ++i) h.uuid.bytes[i] = static_cast<std::uint8_t>(0x40 + i);
  return h;
}

notifier_core::session* notifier_core::find_session(const emsmdb::context_handle& h, bool async_handle) {
  std::uint32_t index = 0;
  for (int i = 0; i < 4; ++i) index |= std::uint32_t{h.uuid.bytes[i]} << (8 * i);
  if (index >= sessions_.size() || !sessions_[index].live) return nullptr;
  if (!(make_handle(index, async_handle) == h)) return nullptr;
  if (async_handle && !sessions_[index].has_async) return nullptr;
  return &sessions_[index];
}

mailbox_id notifier_core::mailbox(std::string_view user_dn) {
  auto it = mailbox_index_.find(user_dn);  // no copy: the workload names a mailbox per event
  if (it != mailbox_index_.end()) return it->second;
  const auto id = static_cast<mailbox_id>(mailboxes_.size());
  mailboxes_.push_back(mailbox_state{std::string(user_dn), {}, {}, 0, 0});
  mailbox_index_.emplace(std::string(user_dn), id);
  return id;
}

void notifier_core::do_connect(time_point now, connection_id id, connection& c, const dcerpc::request_pdu& r) {
  auto d = emsmdb::decode_connect_ex_request(r.stub);
  if (!d.complete()) return send_fault(id, c, r.call_id, fault_status::bad_stub_data);
  std::uint32_t index;
  if (!free_sessions_.empty()) {
    index = free_sessions_.back();
    free_sessions_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(sessions_.size());
    sessions_.emplace_back();
  }
  session& s = sessions_[index];
  const std::uint32_t gen = s.generation + 1;
  s = session{};
  s.generation = gen;
  s.live = true;
  s.conn = id;
  s.mb = mailbox(d.value.user_dn);
  s.last_ext2 = now;
  mailboxes_[s.mb].sessions.push_back(index);
  c.sessions.push_back(index);
  ++stats_.sessions_opened;

  emsmdb::connect_ex_response rsp;
  rsp.cxh = make_handle(index, false);
  rsp.polls_max_ms = cfg_.polls_max_ms;
  rsp.session_index = static_cast<std::uint16_t>(index & 0xFFFF);
  rsp.dn_prefix = "/o=nudge/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)";
  const std::string_view dn = d.value.user_dn;
  const auto cn = dn.rfind("cn=");
  rsp.display_name = cn == std::string_view::npos ? dn : dn.substr(cn + 3);
  rsp.timestamp = d.value.timestamp;
  byte_buffer out;
  dcerpc::encode_response(out, r.call_id, c.context_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
  send_pdu(id, std::move(out), message_kind::connect);
}

void notifier_core::do_disconnect(connection_id id, connection& c, const dcerpc::request_pdu& r) {
  auto d = emsmdb::decode_disconnect_request(r.stub);
  if (!d.complete()) return send_fault(id, c, r.call_id, fault_status::bad_stub_data);
  session* s = find_session(d.value.cxh, false);
  if (!s) return send_fault(id, c, r.call_id, fault_status::context_mismatch);
  const auto index = static_cast<std::uint32_t>(s - sessions_.data());
  // A wait held on the session's async handle ends with it: that handle is gone too.
  if (s->wait_held) complete_wait(*s, 0, ec::rejected);
  // The session leaves the connection that created it, so that connection's
  // close cannot end whichever session reuses the slot.
  if (connection* owner = find_connection(s->conn)) {
    auto& list = owner->sessions;
    list.erase(std::remove(list.begin(), list.end(), index), list.end());
  }
  close_session(index);
  ++stats_.sessions_disconnected;
  // MS-OXCRPC 3.1.4.3: the handle comes back zeroed, with ecNone.
  emsmdb::disconnect_response rsp;
  rsp.return_code = ec::success;
  byte_buffer out;
  dcerpc::encode_response(out, r.call_id, c.context_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
  send_pdu(id, std::move(out), message_kind::connect);
}

void notifier_core::close_session(std::uint32_t index) {
  session& s = sessions_[index];
  if (!s.live) return;
  auto& list = mailboxes_[s.mb].sessions;
  list.erase(std::remove(list.begin(), list.end(), index), list.end());
  s.live = false;
  s.resend_at = never;
  s.wait_deadline = never;
  ++s.generation;
  free_sessions_.push_back(index);
}

void notifier_core::do_register(time_point now, connection_id id, connection& c, const dcerpc::request_pdu& r) {
  auto d = emsmdb::decode_register_push_request(r.stub);
  if (!d.complete()) return send_fault(id, c, r.call_id, fault_status::bad_stub_data);
  session* s = find_session(d.value.cxh, false);
  // An unknown or disconnected handle gets the RPC runtime's answer, before any method runs.
  if (!s) return send_fault(id, c, r.call_id, fault_status::context_mismatch);
  emsmdb::register_push_response rsp;
  rsp.cxh = d.value.cxh;
  if (!cfg_.push_enabled) {
    rsp.return_code = ec::not_supported;
  } else if (validate_push_context_size(d.value.context.size()) != ec::success) {
    rsp.return_code = ec::too_big;  // MS-OXCRPC: cbContext > 0x10
  } else if (auto sa = decode_windows_sockaddr(d.value.callback_address); !sa.complete()) {
    rsp.return_code = ec::invalid_param;  // unknown family or size not matching it
  } else {
    s->registered = true;
    s->context.assign(d.value.context);
    s->registered_target = sa.value;
    s->verified = false;
    s->refusal_reported = false;
    const auto index = static_cast<std::uint32_t>(s - sessions_.data());
    rsp.notification_handle = notification_handle_of(index, s->generation);
    ++stats_.registrations;
  }
  if (rsp.return_code != ec::success) ++stats_.registrations_rejected;
  byte_buffer out;
  dcerpc::encode_response(out, r.call_id, c.context_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
  send_pdu(id, std::move(out), message_kind::register_push);
  // Details may already be waiting (events before registration): say so, after
  // the response, so the client knows its context before the ping can arrive.
  if (rsp.return_code == ec::success && !mailboxes_[s->mb].pending.empty())
    send_ping(now, static_cast<std::uint32_t>(s - sessions_.data()), false);
}

void notifier_core::do_rpc_ext2(time_point now, connection_id id, connection& c, const dcerpc::request_pdu& r,
                                const metrics::traffic_cell& rx) {
  auto d = emsmdb::decode_rpc_ext2_request(r.stub);
  // MS-OXCRPC 3.1.4.2: "If the value in the pcbOut parameter on input is larger
  // than 0x00040000, the server MUST fail with the RPC status code of
  // RPC_X_BAD_STUB_DATA" (nudge advertises no ultra-large buffers).
  std::uint32_t fault = 0;
  session* s = nullptr;
  if (!d.complete() || d.value.max_out > emsmdb::max_pcb_out) fault = fault_status::bad_stub_data;
  else if (s = find_session(d.value.cxh, false); !s) fault = fault_status::context_mismatch;
  if (fault != 0) {
    stats_.traffic.add(message_kind::poll, direction::to_server, rx);
    return send_fault(id, c, r.call_id, fault);
  }
  ++stats_.rpc_ext2_calls;
  emsmdb::rpc_ext2_response rsp;
  rsp.cxh = d.value.cxh;
  byte_buffer rgb_out;
  auto rops = rop::decode_request(d.value.rgb_in);
  std::size_t delivered = 0;
  if (!rops.complete()) {
    rsp.return_code = ec::rpc_failed;
  } else if (d.value.max_out < emsmdb::min_pcb_out) {
    // MS-OXCRPC 3.1.4.2: "If the value in the pcbOut parameter on input is less
    // than 0x00000008, the server SHOULD fail with error code ecRpcFailed".
    rsp.return_code = ec::rpc_failed;
  } else {
    // ROPs other than notifications are not emulated: the ROP list is accepted and ignored.
    s->last_ext2 = now;
    if (s->wait_held) {
      s->wait_deadline = now + cfg_.async_hold;
      arm(s->wait_deadline, static_cast<std::uint32_t>(s - sessions_.data()), timer_kind::wait_timeout);
    }
    auto& mb = mailboxes_[s->mb];
    const std::size_t budget = std::min<std::size_t>(d.value.max_out, max_rgb_out_per_pdu);
    if (budget < rop::empty_buffer_size) {
      // pcbOut 8 or 9: room for RPC_HEADER_EXT but not for a RopSize; the
      // details stay queued (and their pings keep coming).
      rop::encode_header_only_response(rgb_out);
    } else {
      constexpr std::size_t overhead = rop::empty_buffer_size + rop::rop_pending_size;
      const std::size_t fit = budget > overhead ? (budget - overhead) / rop::new_mail_size() : 0;
      rop::response_builder b(rgb_out);
      while (!mb.pending.empty() && delivered < fit) {
        rop::new_mail_notification n;
        n.notification_handle = 1;
        n.folder_id = 0x0100000000000001ull;  // the Inbox: replica 1, counter 1 (MS-OXCDATA 2.2.1.1), as u64 LE
        n.event = mb.pending.front();
        mb.pending.pop_front();
        b.add(n);
        ++delivered;
      }
      if (!mb.pending.empty()) {
        // More waits: say so when RopPending fits. Either way the pings keep
        // their resend timers until the details are fetched.
        if (budget >= overhead) {
          b.add_pending(static_cast<std::uint16_t>(static_cast<std::uint32_t>(s - sessions_.data()) & 0xFFFF));
          ++stats_.pending_sent;
        }
      } else {
        // Everything fetched: no more resends for this mailbox's sessions.
        for (std::uint32_t idx : mb.sessions) sessions_[idx].resend_at = never;
      }
      b.finish();
    }
    mb.fetched += delivered;
    stats_.events_fetched += delivered;
  }
  // A failed call returns no rgbOut (*pcbOut = 0).
  rsp.rgb_out = rgb_out;
  byte_buffer out;
  dcerpc::encode_response(out, r.call_id, c.context_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
  // Server-side view: an EcDoRpcExt2 that carried details is a fetch, one that did not is a poll.
  const auto kind = delivered > 0 ? message_kind::fetch : message_kind::poll;
  stats_.traffic.add(kind, direction::to_server, rx);
  send_pdu(id, std::move(out), kind);
}

void notifier_core::do_async_connect(connection_id id, connection& c, const dcerpc::request_pdu& r) {
  auto d = emsmdb::decode_async_connect_request(r.stub);
  if (!d.complete()) return send_fault(id, c, r.call_id, fault_status::bad_stub_data);
  session* s = find_session(d.value.cxh, false);
  if (!s) return send_fault(id, c, r.call_id, fault_status::context_mismatch);
  emsmdb::async_connect_response rsp;
  if (!cfg_.async_enabled) {
    rsp.return_code = ec::rejected;
  } else {
    s->has_async = true;
    rsp.acxh = make_handle(static_cast<std::uint32_t>(s - sessions_.data()), true);
  }
  byte_buffer out;
  dcerpc::encode_response(out, r.call_id, c.context_id, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
  send_pdu(id, std::move(out), message_kind::async_connect);
}

void notifier_core::do_async_wait(time_point now, connection_id id, connection& c, const dcerpc::request_pdu& r) {
  auto d = emsmdb::decode_async_wait_request(r.stub);
  if (!d.complete()) return send_fault(id, c, r.call_id, fault_status::bad_stub_data);
  ++stats_.async_waits;
  auto respond_now = [&](std::uint32_t flags_out, std::uint32_t rc) {
    byte_buffer out;
    dcerpc::encode_response(out, r.call_id, c.context_id,
                            [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_response{flags_out, rc}); });
    send_pdu(id, std::move(out), message_kind::async_wait);
  };
  session* s = find_session(d.value.acxh, true);
  if (!s) return respond_now(notification_pending, 0);  // MS-OXCRPC: invalid acxh completes at once
  if (s->wait_held) {
    ++stats_.async_waits_rejected;
    return respond_now(0, ec::rejected);  // a second concurrent wait
  }
  if (!mailboxes_[s->mb].pending.empty()) {
    ++stats_.async_completed;
    return respond_now(notification_pending, 0);
  }
  s->wait_held = true;
  s->wait_conn = id;
  s->wait_call_id = r.call_id;
  s->wait_context_id = c.context_id;
  // The hold counts from the client's last activity, but each wait gets a full hold.
  s->wait_deadline = std::max(now, s->last_ext2) + cfg_.async_hold;
  arm(s->wait_deadline, static_cast<std::uint32_t>(s - sessions_.data()), timer_kind::wait_timeout);
}

void notifier_core::complete_wait(session& s, std::uint32_t flags_out, std::uint32_t rc) {
  if (!s.wait_held) return;
  s.wait_held = false;
  s.wait_deadline = never;
  if (!find_connection(s.wait_conn)) return;
  byte_buffer out;
  dcerpc::encode_response(out, s.wait_call_id, s.wait_context_id,
                          [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_response{flags_out, rc}); });
  send_pdu(s.wait_conn, std::move(out), message_kind::async_wait);
}

// ---- events and pings ------------------------------------------------------------------

rop::event_stamp notifier_core::inject_event(time_point now, mailbox_id mb_id) {
  rop::event_stamp ev{next_event_id_++, now};
  auto& mb = mailboxes_[mb_id];
  ++mb.generated;
  ++stats_.events_generated;
  if (mb.pending.size() >= cfg_.max_pending_per_mailbox) {
    ++stats_.events_dropped;
    return ev;
  }
  mb.pending.push_back(ev);
  for (std::uint32_t idx : mb.sessions) {
    session& s = sessions_[idx];
    if (s.registered) send_ping(now, idx, false);
    if (s.wait_held) {
      ++stats_.async_completed;
      complete_wait(s, notification_pending, 0);
    }
  }
  return ev;
}

void notifier_core::send_ping(time_point now, std::uint32_t index, bool resend) {
  session& s = sessions_[index];
  ip_endpoint target;
  switch (cfg_.policy) {
    case callback_policy::legacy: target = s.registered_target; break;
    case callback_policy::peer: {
      const connection* c = find_connection(s.conn);
      if (!c) return;
      target = c->peer;
      target.port = s.registered_target.port;
      break;
    }
    case callback_policy::verified:
      if (!s.verified) {
        ++stats_.datagrams_unreachable;
        return;
      }
      target = s.verified_target;
      break;
  }
  if (!cfg_.allow_non_loopback && !target.is_loopback()) {
    ++stats_.datagrams_refused;
    if (!s.refusal_reported) {
      s.refusal_reported = true;
      out_.push_back(notice{"refused to send a ping to " + target.to_string() + " (mailbox " + mailboxes_[s.mb].name +
                            "): only loopback destinations are allowed; --allow-non-loopback lifts this"});
    }
    return;
  }
  const bytes_view payload = encode_push_datagram(s.context);
  stats_.traffic.add(message_kind::ping, direction::to_client, cfg_.wire.udp_message(payload.size()));
  out_.push_back(udp_send{target, byte_buffer(payload.begin(), payload.end())});
  ++stats_.datagrams_sent;
  if (resend) ++stats_.datagrams_resent;
  s.resend_at = now + cfg_.ping_resend;
  arm(s.resend_at, index, timer_kind::resend);
}

void notifier_core::receive_datagram(time_point, const ip_endpoint& from, bytes_view bytes) {
  ++stats_.datagrams_received;
  stats_.traffic.add(message_kind::keepalive, direction::to_server, cfg_.wire.udp_message(bytes.size()));
  auto d = decode_reachability_cookie(bytes);
  if (!d.complete()) {
    ++stats_.datagrams_ignored;
    return;
  }
  const std::uint32_t index = d.value.notification_handle & 0xFFFFFFu;
  if (index >= sessions_.size() || !sessions_[index].live || !sessions_[index].registered ||
      notification_handle_of(index, sessions_[index].generation) != d.value.notification_handle ||
      !sessions_[index].context.matches(d.value.context)) {
    ++stats_.datagrams_ignored;
    return;
  }
  session& s = sessions_[index];
  s.verified = true;
  s.verified_target = from;
  ++stats_.cookies_accepted;
}

// ---- timers --------------------------------------------------------------------------------

void notifier_core::arm(time_point at, std::uint32_t session_index, timer_kind kind) {
  timers_.push(timer_entry{at, session_index, kind});
}

time_point notifier_core::next_deadline() {
  while (!timers_.empty()) {
    const timer_entry& t = timers_.top();
    const session& s = sessions_[t.session];
    const time_point current = t.kind == timer_kind::resend ? s.resend_at : s.wait_deadline;
    if (s.live && current == t.at) return t.at;
    timers_.pop();  // stale: re-armed, cancelled or the session is gone
  }
  return never;
}

void notifier_core::on_timer(time_point now) {
  while (next_deadline() <= now) {
    const timer_entry t = timers_.top();
    timers_.pop();
    session& s = sessions_[t.session];
    if (t.kind == timer_kind::resend) {
      s.resend_at = never;
      if (!mailboxes_[s.mb].pending.empty() && s.registered) send_ping(now, t.session, true);
    } else {
      ++stats_.async_timeouts;
      complete_wait(s, 0, 0);
    }
  }
}

}  // namespace nudge::notifier
