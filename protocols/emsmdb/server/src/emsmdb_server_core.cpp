#include "nudge/notifier/emsmdb_server_core.hpp"

#include <algorithm>
#include <string_view>
#include <type_traits>
#include <variant>

#include "nudge/emsmdb/family.hpp"
#include "nudge/metrics/traffic.hpp"

namespace nudge::notifier {

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

}  // namespace

emsmdb_server_core::emsmdb_server_core(emsmdb_server_config cfg) : cfg_(cfg), core_(cfg.core) {}

void emsmdb_server_core::start(time_point) {
  actions_.push_back(engine::listen{rpc_listener, cfg_.core.tcp_port});
  actions_.push_back(engine::bind_udp{ping_socket, cfg_.udp_port});
}

void emsmdb_server_core::handle(time_point now, const engine::event& e) {
  // The usual events first, without a visit: bytes and timers are nearly all of them.
  if (const auto* b = std::get_if<engine::stream_bytes>(&e)) {
    if (const connection_id id = core_id(b->conn)) core_.receive(now, id, b->bytes);
    return;
  }
  if (std::holds_alternative<engine::timer>(e)) return core_.on_timer(now);
  if (const auto* d = std::get_if<engine::datagram>(&e)) return core_.receive_datagram(now, d->from, d->bytes);
  handle_rare(now, e);
}

void emsmdb_server_core::handle_rare(time_point now, const engine::event& e) {
  std::visit(overloaded{
                 [&](const engine::accepted& a) {
                   const connection_id id = core_.open_connection(now, a.peer);
                   const std::uint32_t slot = connection_slot(id);
                   if (slot >= to_driver_.size()) to_driver_.resize(std::max<std::size_t>(slot + 1, to_driver_.size() * 2));
                   to_driver_[slot] = driver_name{id, a.conn};
                   set_core_id(a.conn, id);
                 },
                 [&](const engine::stream_bytes& b) {
                   if (const connection_id id = core_id(b.conn)) core_.receive(now, id, b.bytes);
                 },
                 [&](const engine::closed& c) {
                   const connection_id id = core_id(c.conn);
                   if (!id) return;
                   set_core_id(c.conn, 0);
                   to_driver_[connection_slot(id)] = driver_name{};
                   core_.connection_closed(now, id);
                 },
                 [&](const engine::datagram& d) { core_.receive_datagram(now, d.from, d.bytes); },
                 [&](const engine::timer&) { core_.on_timer(now); },
                 [&](const engine::listening& l) {
                   rpc_address_ = l.local;
                   core_.set_tcp_port(l.local.port);  // bind_ack names the port actually bound
                 },
                 [&](const engine::udp_bound& u) { ping_address_ = u.local; },
                 // The notifier never dials out.
                 [&](const engine::connected&) {},
                 [&](const engine::refused&) {},
             },
             e);
}

time_point emsmdb_server_core::next_deadline() const { return core_.next_deadline(); }

std::vector<engine::action>& emsmdb_server_core::actions() {
  translate_outputs();
  return actions_;
}

void emsmdb_server_core::translate_outputs() {
  auto& outs = core_.outputs();
  if (outs.empty()) return;
  actions_.reserve(actions_.size() + outs.size());
  auto driver_of = [&](connection_id id) -> const driver_name* {
    const std::uint32_t slot = connection_slot(id);
    if (slot >= to_driver_.size() || to_driver_[slot].core != id) return nullptr;
    return &to_driver_[slot];
  };
  for (auto& o : outs) {
    // Bytes on a connection are nearly every output: no visit for them.
    if (auto* s = std::get_if<tcp_send>(&o)) {
      if (const auto* d = driver_of(s->conn))
        actions_.push_back(engine::send{d->driver, std::move(s->bytes)});
      continue;
    }
    if (auto* u = std::get_if<udp_send>(&o)) {
      actions_.push_back(engine::send_datagram{ping_socket, u->to, std::move(u->bytes)});
      continue;
    }
    std::visit(overloaded{
                   [&](tcp_send& s) {
                     if (const auto* d = driver_of(s.conn)) actions_.push_back(engine::send{d->driver, std::move(s.bytes)});
                   },
                   [&](udp_send& u) {
                     actions_.push_back(engine::send_datagram{ping_socket, u.to, std::move(u.bytes)});
                   },
                   [&](close_connection& c) {
                     const auto* d = driver_of(c.conn);
                     if (!d) return;
                     const engine::connection_id driver = d->driver;
                     set_core_id(driver, 0);  // the core has forgotten it already
                     to_driver_[connection_slot(c.conn)] = driver_name{};
                     actions_.push_back(engine::close{driver, std::move(c.reason)});
                   },
                   [&](notice& n) { actions_.push_back(engine::notice{std::move(n.text)}); },
               },
               o);
  }
  outs.clear();
}

std::uint64_t emsmdb_server_core::inject_event(time_point now, std::string_view mailbox) {
  return core_.inject_event(now, core_.mailbox(mailbox)).id;
}

std::uint64_t emsmdb_server_core::inject_event(time_point now, mailbox_handle_t mailbox) {
  return core_.inject_event(now, mailbox).id;
}

connection_id emsmdb_server_core::sparse_core_id(engine::connection_id driver) const {
  const auto it = to_core_.find(driver);
  return it == to_core_.end() ? 0 : it->second;
}

void emsmdb_server_core::set_core_id(engine::connection_id driver, connection_id core) {
  if (driver < dense_ids) {
    if (driver >= to_core_dense_.size()) {
      if (!core) return;
      to_core_dense_.resize(std::max<std::size_t>(driver + 1, to_core_dense_.size() * 2), 0);
    }
    to_core_dense_[driver] = core;
  } else if (core) {
    to_core_[driver] = core;
  } else {
    to_core_.erase(driver);
  }
}

std::vector<std::pair<std::string, std::uint64_t>> emsmdb_server_core::stats() const {
  const notifier_stats& s = core_.stats();
  std::vector<std::pair<std::string, std::uint64_t>> out;
  out.emplace_back("open_connections", core_.open_connections());
  out.emplace_back("mailbox_count", core_.mailbox_count());
#define NUDGE_FIELD(name) out.emplace_back(#name, s.name)
  NUDGE_FIELD(connections_opened);
  NUDGE_FIELD(connections_closed);
  NUDGE_FIELD(connections_dropped_malformed);
  NUDGE_FIELD(pdus_received);
  NUDGE_FIELD(fragmented_requests);
  NUDGE_FIELD(fragmented_responses);
  NUDGE_FIELD(requests_too_large);
  NUDGE_FIELD(faults_sent);
  NUDGE_FIELD(binds_rejected);
  NUDGE_FIELD(sessions_opened);
  NUDGE_FIELD(sessions_disconnected);
  NUDGE_FIELD(registrations);
  NUDGE_FIELD(registrations_rejected);
  NUDGE_FIELD(datagrams_sent);
  NUDGE_FIELD(datagrams_resent);
  NUDGE_FIELD(datagrams_refused);
  NUDGE_FIELD(datagrams_unreachable);
  NUDGE_FIELD(datagrams_received);
  NUDGE_FIELD(cookies_accepted);
  NUDGE_FIELD(datagrams_ignored);
  NUDGE_FIELD(events_generated);
  NUDGE_FIELD(events_fetched);
  NUDGE_FIELD(events_dropped);
  NUDGE_FIELD(rpc_ext2_calls);
  NUDGE_FIELD(pending_sent);
  NUDGE_FIELD(async_waits);
  NUDGE_FIELD(async_waits_rejected);
  NUDGE_FIELD(async_timeouts);
  NUDGE_FIELD(async_completed);
#undef NUDGE_FIELD
  auto add_cell = [&](const std::string& prefix, const metrics::traffic_cell& c) {
    out.emplace_back(prefix + ".messages", c.messages);
    out.emplace_back(prefix + ".payload_bytes", c.payload_bytes);
    out.emplace_back(prefix + ".wire_bytes", c.wire_bytes);
    out.emplace_back(prefix + ".packets", c.packets);
  };
  for (std::size_t k = 0; k < protocol::emsmdb::message_kind_count; ++k) {
    const auto kind = static_cast<protocol::emsmdb::message_kind>(k);
    const std::string prefix = "traffic." + std::string(protocol::emsmdb::to_string(kind));
    add_cell(prefix + ".to_server", s.traffic.cell(kind, metrics::direction::to_server));
    add_cell(prefix + ".to_client", s.traffic.cell(kind, metrics::direction::to_client));
  }
  add_cell("traffic.total.to_server", s.traffic.total(metrics::direction::to_server));
  add_cell("traffic.total.to_client", s.traffic.total(metrics::direction::to_client));
  return out;
}

std::vector<engine::server_session::mailbox_backlog> emsmdb_server_core::backlog(std::size_t max,
                                                                                  bool& truncated) const {
  std::vector<mailbox_backlog> out;
  truncated = false;
  for (mailbox_id mb = 0; mb < core_.mailbox_count(); ++mb) {
    if (core_.events_pending(mb) == 0) continue;
    if (out.size() >= max) {
      truncated = true;
      break;
    }
    out.push_back({core_.mailbox_name(mb), core_.events_generated(mb), core_.events_fetched(mb),
                   core_.events_pending(mb)});
  }
  return out;
}

}  // namespace nudge::notifier
