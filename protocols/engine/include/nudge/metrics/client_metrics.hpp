#pragma once
// Counters shared by a group of clients (one per client group of a run), so a
// million clients cost a few histograms, not a million. Protocol-neutral: the
// family's vocabulary (nudge/engine/registry.hpp) names the traffic rows, the
// delivery paths and the counters; a family's cores index them with their own
// enums (e.g. protocol::emsmdb::counter). Sized once when the group is set up;
// counting afterwards never allocates. Merging is exact.
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "nudge/metrics/latency_histogram.hpp"
#include "nudge/metrics/traffic.hpp"

namespace nudge::metrics {

struct client_metrics {
  traffic_meter traffic;                               // rows: the family's kinds
  latency_histogram latency;                           // event creation -> its details fetched
  std::vector<latency_histogram> latency_by_path;      // [path]: the family's delivery paths
  std::vector<std::uint64_t> events_by_path;           // [path]
  std::vector<std::uint64_t> counters;                 // [counter]: the family's counters
  std::uint64_t clients_started = 0;
  std::uint64_t clients_ready = 0;  // connected (and set up as the mode needs)
  std::uint64_t clients_failed = 0;
  /// Request + response of the polls that found nothing (pure ACKs excluded):
  /// the seed article's "unnecessary" traffic, for families that poll.
  traffic_cell wasted_poll_traffic;

  client_metrics() = default;
  client_metrics(std::size_t paths, std::size_t counter_count) { fit(paths, counter_count); }

  /// Grows the per-path lists and the counters to at least these sizes (new
  /// entries zero). A no-op once sized: cores call it when they are created.
  void fit(std::size_t paths, std::size_t counter_count);

  /// Counting: adds `n` to counter `c` (sized by fit; unchecked, it is the hot path).
  void add(std::size_t c, std::uint64_t n = 1) { counters[c] += n; }
  template <typename Counter>
    requires std::is_enum_v<Counter>
  void add(Counter c, std::uint64_t n = 1) {
    add(static_cast<std::size_t>(c), n);
  }
  /// Reading: zero for a counter this group never sized (another family's, or no clients).
  std::uint64_t counter(std::size_t c) const { return c < counters.size() ? counters[c] : 0; }
  template <typename Counter>
    requires std::is_enum_v<Counter>
  std::uint64_t counter(Counter c) const {
    return counter(static_cast<std::size_t>(c));
  }
  std::uint64_t events_on(std::size_t path) const { return path < events_by_path.size() ? events_by_path[path] : 0; }

  /// Exact: every cell, bucket and counter adds; lists grow to the longer.
  client_metrics& operator+=(const client_metrics& o);
};

}  // namespace nudge::metrics
