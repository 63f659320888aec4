#include "nudge/metrics/client_metrics.hpp"

#include <algorithm>

namespace nudge::metrics {

void client_metrics::fit(std::size_t paths, std::size_t counter_count) {
  if (latency_by_path.size() < paths) latency_by_path.resize(paths);
  if (events_by_path.size() < paths) events_by_path.resize(paths, 0);
  if (counters.size() < counter_count) counters.resize(counter_count, 0);
}

client_metrics& client_metrics::operator+=(const client_metrics& o) {
  fit(std::max(o.latency_by_path.size(), o.events_by_path.size()), o.counters.size());
  traffic += o.traffic;
  latency += o.latency;
  for (std::size_t p = 0; p < o.latency_by_path.size(); ++p) latency_by_path[p] += o.latency_by_path[p];
  for (std::size_t p = 0; p < o.events_by_path.size(); ++p) events_by_path[p] += o.events_by_path[p];
  for (std::size_t c = 0; c < o.counters.size(); ++c) counters[c] += o.counters[c];
  clients_started += o.clients_started;
  clients_ready += o.clients_ready;
  clients_failed += o.clients_failed;
  wasted_poll_traffic += o.wasted_poll_traffic;
  return *this;
}

}  // namespace nudge::metrics
