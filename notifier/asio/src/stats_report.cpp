#include "nudge/notifier/stats_report.hpp"

#include <fmt/format.h>

namespace nudge::notifier {

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
