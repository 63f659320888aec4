#include "nudge/notifier/stats_report.hpp"

#include <fmt/format.h>

namespace nudge::notifier {

namespace {

nlohmann::json cell_json(const metrics::traffic_cell& c) {
  return {{"messages", c.messages}, {"payload_bytes", c.payload_bytes}, {"wire_bytes", c.wire_bytes},
          {"packets", c.packets}};
}

nlohmann::json traffic_json(const metrics::traffic_meter& t) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t k = 0; k < protocol::emsmdb::message_kind_count; ++k) {
    const auto kind = static_cast<protocol::emsmdb::message_kind>(k);
    j[std::string(protocol::emsmdb::to_string(kind))] = {{"to_server", cell_json(t.cell(kind, metrics::direction::to_server))},
                                                {"to_client", cell_json(t.cell(kind, metrics::direction::to_client))}};
  }
  j["total"] = {{"to_server", cell_json(t.total(metrics::direction::to_server))},
                {"to_client", cell_json(t.total(metrics::direction::to_client))}};
  return j;
}

}  // namespace

nlohmann::json stats_json(const notifier_core& core, const driver_stats& d, duration uptime,
                          std::size_t max_mailboxes) {
  const notifier_stats& s = core.stats();
  nlohmann::json j;
  j["uptime_s"] = to_seconds(uptime);
  j["open_connections"] = core.open_connections();
  j["mailbox_count"] = core.mailbox_count();
#define NUDGE_FIELD(name) j[#name] = s.name
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
  j["traffic"] = traffic_json(s.traffic);

  nlohmann::json drv;
#define NUDGE_FIELD(name) drv[#name] = d.name
  NUDGE_FIELD(accept_errors);
  NUDGE_FIELD(tcp_read_errors);
  NUDGE_FIELD(tcp_write_errors);
  NUDGE_FIELD(connections_not_reading);
  NUDGE_FIELD(udp_send_calls);
  NUDGE_FIELD(udp_datagrams_sent);
  NUDGE_FIELD(udp_send_errors);
  NUDGE_FIELD(udp_send_blocked);
  NUDGE_FIELD(udp_dropped_queue_full);
  NUDGE_FIELD(udp_refused_non_loopback);
  NUDGE_FIELD(udp_receive_errors);
  NUDGE_FIELD(control_connections);
  NUDGE_FIELD(control_commands);
  NUDGE_FIELD(control_errors);
  NUDGE_FIELD(events_from_control);
  NUDGE_FIELD(events_from_generator);
  NUDGE_FIELD(generator_backlog_dropped);
  NUDGE_FIELD(log_lines_suppressed);
#undef NUDGE_FIELD
  j["driver"] = std::move(drv);

  nlohmann::json pending = nlohmann::json::array();
  bool truncated = false;
  for (mailbox_id mb = 0; mb < core.mailbox_count(); ++mb) {
    if (core.events_pending(mb) == 0) continue;
    if (pending.size() >= max_mailboxes) {
      truncated = true;
      break;
    }
    pending.push_back({{"dn", core.mailbox_name(mb)},
                       {"generated", core.events_generated(mb)},
                       {"fetched", core.events_fetched(mb)},
                       {"pending", core.events_pending(mb)}});
  }
  j["pending_mailboxes"] = std::move(pending);
  j["pending_mailboxes_truncated"] = truncated;
  return j;
}

std::string dump_json(const nlohmann::json& j, int indent) {
  // DNs come from the network: replace invalid UTF-8 instead of throwing.
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string summary_line(const notifier_core& core, const driver_stats& d, duration uptime) {
  const notifier_stats& s = core.stats();
  return fmt::format(
      "notifier: {:.1f} s, {} connections ({} dropped malformed), {} sessions, {} registrations ({} rejected), "
      "pings {} sent ({} resent, {} refused, {} unreachable, {} send errors), events {} generated / {} fetched "
      "({} dropped), {} faults, {} cookies",
      to_seconds(uptime), s.connections_opened, s.connections_dropped_malformed, s.sessions_opened, s.registrations,
      s.registrations_rejected, s.datagrams_sent, s.datagrams_resent, s.datagrams_refused + d.udp_refused_non_loopback,
      s.datagrams_unreachable, d.udp_send_errors + d.udp_dropped_queue_full, s.events_generated, s.events_fetched,
      s.events_dropped, s.faults_sent, s.cookies_accepted);
}

}  // namespace nudge::notifier
