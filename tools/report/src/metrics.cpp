#include "nudge/report/metrics.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace nudge::report {

std::string_view to_string(dimension d) {
  switch (d) {
    case dimension::none: return "a plain number";
    case dimension::time: return "a time";
    case dimension::bytes: return "bytes";
  }
  return "?";
}

namespace {

std::vector<metric_info> make_mode_metrics() {
  std::vector<metric_info> m;
  auto add = [&](std::string name, std::string json, dimension d, std::string help) {
    m.push_back({std::move(name), std::move(json), d, std::move(help), std::nullopt, false});
  };
  const auto none = dimension::none, bytes = dimension::bytes, time = dimension::time;
  // Traffic per client-hour (per measured hour, docs/measurements.md).
  add("wire_bytes_per_client_hour", "traffic.per_client_hour.wire_bytes", bytes,
      "IP-layer bytes, both directions, per client per measured hour (real runs: measured, else the wire model)");
  add("packets_per_client_hour", "traffic.per_client_hour.packets", none, "packets, both directions, per client-hour");
  add("payload_bytes_per_client_hour", "traffic.per_client_hour.payload_bytes", bytes,
      "DCE/RPC PDU and datagram payload bytes per client-hour");
  add("messages_per_client_hour", "traffic.per_client_hour.messages", none, "messages per client-hour");
  add("wire_bytes", "traffic.total.wire_bytes", bytes,
      "IP-layer bytes of the whole run (with the drain; real runs: measured)");
  add("packets", "traffic.total.packets", none, "packets of the whole run");
  add("payload_bytes", "traffic.total.payload_bytes", bytes, "payload bytes of the whole run");
  add("messages", "traffic.total.messages", none, "messages of the whole run");
  // The seed article's "unnecessary" traffic: polls that found nothing.
  add("unnecessary_bytes_per_client_hour", "unnecessary.bytes_per_client_hour", bytes,
      "wire bytes of polls that found nothing (request + response), per client-hour");
  add("unnecessary_packets_per_client_hour", "unnecessary.packets_per_client_hour", none,
      "packets of polls that found nothing, per client-hour");
  add("unnecessary_bytes", "unnecessary.bytes", bytes, "wire bytes of polls that found nothing, whole run");
  add("unnecessary_packets", "unnecessary.packets", none, "packets of polls that found nothing, whole run");
  add("unnecessary_bytes_per_hour", "unnecessary.bytes_per_hour_all_clients", bytes,
      "wire bytes of polls that found nothing per measured hour, all the mode's clients together");
  add("unnecessary_packets_per_hour", "unnecessary.packets_per_hour_all_clients", none,
      "packets of polls that found nothing per measured hour, all clients");
  // Events.
  add("generated", "events.generated", none, "events generated for the mode's mailboxes");
  add("fetched", "events.fetched", none, "events whose details a client fetched");
  add("missed", "events.missed", none, "generated - fetched, after the drain");
  for (const char* p : {"poll", "push", "async"})
    add(std::string("fetched_by_") + p, std::string("events.by_path.") + p, none,
        std::string("events fetched because of ") + (std::string(p) == "poll" ? "the poll timer" :
                                                       std::string(p) == "push" ? "a matching datagram" : "an async wait"));
  // Counters.
  static constexpr std::pair<const char*, const char*> counters[] = {
      {"clients", "clients in the mode (or group)"},
      {"clients_ready", "clients that connected (and registered)"},
      {"clients_failed", "clients that failed"},
      {"polls", "poll-timer EcDoRpcExt2 calls"},
      {"wasted_polls", "polls that found nothing"},
      {"fetches", "EcDoRpcExt2 calls made because a ping, a wait or RopPending said so"},
      {"wasted_fetches", "fetches that found nothing"},
      {"pings_received", "datagrams received"},
      {"pings_matched", "datagrams that matched the registered context"},
      {"datagrams_ignored", "datagrams that did not match (forged, stale, random)"},
      {"pending_seen", "RopPending seen"},
      {"async_waits", "EcDoAsyncWaitEx calls"},
      {"async_notified", "async waits completed with a notification"},
      {"async_timeouts", "async waits that timed out"},
      {"fallbacks_to_polling", "push clients that fell back to polling"},
      {"protocol_errors", "protocol errors"},
  };
  for (const auto& [name, help] : counters) add(name, name, none, help);
  // Latency, event created -> details fetched (seconds).
  static constexpr std::pair<const char*, const char*> stats[] = {
      {"p50", "p50_s"}, {"p90", "p90_s"}, {"p99", "p99_s"}, {"p999", "p999_s"}, {"max", "max_s"}, {"mean", "mean_s"}};
  add("latency.count", "latency.count", none, "events with a latency (= fetched)");
  for (const auto& [stat, field] : stats) {
    add(std::string("latency.") + stat, std::string("latency.") + field, time,
        std::string("event-to-fetch latency, ") + stat + " (seconds; no data when no event was fetched)");
    m.back().needs_latency_count = true;
  }
  for (const char* p : {"poll", "push", "async"}) {
    add(std::string("latency.") + p + ".count", std::string("latency_by_path.") + p + ".count", none,
        std::string("events fetched by ") + p);
    m.back().if_absent = 0.0;
    for (const auto& [stat, field] : stats) {
      add(std::string("latency.") + p + "." + stat, std::string("latency_by_path.") + p + "." + field, time,
          std::string("latency of the events fetched by ") + p + ", " + stat);
      m.back().needs_latency_count = true;
    }
  }
  // Traffic per message kind (docs/measurements.md "Message kinds").
  static constexpr const char* kinds[] = {"tcp_setup", "tcp_ack", "bind",  "connect",   "register", "poll", "fetch",
                                          "dummy",     "async_connect", "async_wait", "ping", "keepalive", "fault"};
  static constexpr std::pair<const char*, dimension> fields[] = {
      {"messages", dimension::none}, {"payload_bytes", dimension::bytes}, {"wire_bytes", dimension::bytes},
      {"packets", dimension::none}};
  for (const char* k : kinds) {
    for (const auto& [f, d] : fields) {
      add(std::string("kind.") + k + "." + f, std::string("traffic.by_kind.") + k + ".*." + f, d,
          std::string(f) + " of " + k + " messages, both directions, whole run");
      m.back().if_absent = 0.0;
      for (const char* dir : {"to_server", "to_client"}) {
        add(std::string("kind.") + k + "." + dir + "." + f, std::string("traffic.by_kind.") + k + "." + dir + "." + f, d,
            std::string(f) + " of " + k + " messages " + dir + ", whole run");
        m.back().if_absent = 0.0;
      }
    }
  }
  return m;
}

std::vector<metric_info> make_run_metrics() {
  return {
      {"measured", "measured_s", dimension::time, "the run length per-hour rates are based on (without the drain)", {}, false},
      {"wall_time", "wall_s", dimension::time, "wall-clock time the run took", {}, false},
      {"simulated_events", "simulated_events", dimension::none, "virtual driver: events processed", {}, false},
      {"clients", "plan.clients", dimension::none, "clients in the run", {}, false},
      {"datagrams_nat_filtered", "network.datagrams_nat_filtered", dimension::none,
       "virtual driver: datagrams a NAT did not let through", 0.0, false},
      {"datagrams_no_route", "network.datagrams_no_route", dimension::none,
       "virtual driver: datagrams addressed to a private address from outside", 0.0, false},
      {"datagrams_lost", "network.datagrams_lost", dimension::none, "virtual driver: datagrams lost on the link", 0.0,
       false},
  };
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Sums `leaf` over every child of `node` (the "*" of a path).
std::optional<double> walk(const nlohmann::json& node, std::string_view path) {
  if (path.empty()) {
    if (node.is_number()) return node.get<double>();
    return std::nullopt;
  }
  const auto dot = path.find('.');
  const std::string_view head = path.substr(0, dot);
  const std::string_view rest = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  if (!node.is_object()) return std::nullopt;
  if (head == "*") {
    std::optional<double> sum;
    for (const auto& [k, child] : node.items()) {
      if (auto v = walk(child, rest)) sum = sum.value_or(0.0) + *v;
    }
    return sum;
  }
  const auto it = node.find(std::string(head));
  if (it == node.end()) return std::nullopt;
  return walk(*it, rest);
}

}  // namespace

const std::vector<metric_info>& mode_metrics() {
  static const std::vector<metric_info> m = make_mode_metrics();
  return m;
}

const std::vector<metric_info>& run_metrics() {
  static const std::vector<metric_info> m = make_run_metrics();
  return m;
}

const metric_info* find_mode_metric(std::string_view name) {
  for (const auto& m : mode_metrics())
    if (m.name == name) return &m;
  return nullptr;
}

const metric_info* find_run_metric(std::string_view name) {
  for (const auto& m : run_metrics())
    if (m.name == name) return &m;
  return nullptr;
}

std::string closest_metric(std::string_view name, bool run_metric) {
  const auto& list = run_metric ? run_metrics() : mode_metrics();
  std::string_view best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& m : list) {
    const std::size_t d = edit_distance(name, m.name);
    if (d < best_d) best_d = d, best = m.name;
  }
  if (best.empty() || best_d > std::max<std::size_t>(2, name.size() / 4)) return {};
  return std::string(best);
}

namespace {

// Real runs measure their wire traffic (docs/measurements.md): where a block has
// a `measured` block, the figures that say "wire", and packets, come from it;
// traffic.* stays the wire model's.
std::optional<std::string_view> measured_path(std::string_view json_path) {
  static constexpr std::pair<std::string_view, std::string_view> paths[] = {
      {"traffic.per_client_hour.wire_bytes", "measured.per_client_hour.wire_bytes"},
      {"traffic.per_client_hour.packets", "measured.per_client_hour.packets"},
      {"traffic.total.wire_bytes", "measured.wire_bytes"},
      {"traffic.total.packets", "measured.packets"},
  };
  for (const auto& [model, measured] : paths)
    if (json_path == model) return measured;
  return std::nullopt;
}

}  // namespace

bool has_measured_wire(const nlohmann::json& block) { return block.is_object() && block.contains("measured"); }

std::optional<double> lookup(const nlohmann::json& block, const metric_info& m) {
  if (const auto path = measured_path(m.json); path && has_measured_wire(block))
    if (auto v = walk(block, std::string(*path))) return v;
  if (m.needs_latency_count) {
    // latency.p99 -> latency.count; latency_by_path.push.p99_s -> latency_by_path.push.count
    const auto dot = m.json.rfind('.');
    const auto count = walk(block, m.json.substr(0, dot) + ".count");
    if (!count || *count <= 0) return std::nullopt;
  }
  if (auto v = walk(block, m.json)) return v;
  return m.if_absent;
}

const std::vector<std::string>& mode_names() {
  static const std::vector<std::string> names = {"poll", "push", "async"};
  return names;
}

}  // namespace nudge::report
