#include "nudge/report/metrics.hpp"

#include <algorithm>
#include <deque>
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

constexpr std::pair<const char*, const char*> latency_stats[] = {
    {"p50", "p50_s"}, {"p90", "p90_s"}, {"p99", "p99_s"}, {"p999", "p999_s"}, {"max", "max_s"}, {"mean", "mean_s"}};

std::deque<metric_info> make_mode_metrics() {
  std::deque<metric_info> m;
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
  // Counters every result has; the family's own counters, its delivery paths
  // and its message kinds come from the results read (learn_names).
  static constexpr std::pair<const char*, const char*> counters[] = {
      {"clients", "clients in the mode (or group)"},
      {"clients_ready", "clients that connected (and registered)"},
      {"clients_failed", "clients that failed"},
  };
  for (const auto& [name, help] : counters) add(name, name, none, help);
  // Latency, event created -> details fetched (seconds).
  const auto& stats = latency_stats;
  add("latency.count", "latency.count", none, "events with a latency (= fetched)");
  for (const auto& [stat, field] : stats) {
    add(std::string("latency.") + stat, std::string("latency.") + field, time,
        std::string("event-to-fetch latency, ") + stat + " (seconds; no data when no event was fetched)");
    m.back().needs_latency_count = true;
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

namespace {

// The catalogue grows as results name new modes, paths, kinds and counters; a
// deque, so the metric_info a parsed threshold points at never moves.
std::deque<metric_info>& catalogue() {
  static std::deque<metric_info> m = make_mode_metrics();
  return m;
}

struct known_names {
  std::vector<std::string> modes, kinds, paths, counters;
  bool kinds_on_trust = false;  // an input without a vocabulary block was read
};
known_names& known() {
  static known_names n;
  return n;
}

void add_metric(std::string name, std::string json, dimension d, std::string help, std::optional<double> if_absent,
                bool needs_count = false) {
  catalogue().push_back({std::move(name), std::move(json), d, std::move(help), if_absent, needs_count});
}

void learn_path(const std::string& p) {
  add_metric("fetched_by_" + p, "events.by_path." + p, dimension::none, "events fetched because of the " + p + " path",
             std::nullopt);
  add_metric("latency." + p + ".count", "latency_by_path." + p + ".count", dimension::none, "events fetched by " + p,
             0.0);
  for (const auto& [stat, field] : latency_stats)
    add_metric("latency." + p + "." + stat, "latency_by_path." + p + "." + field, dimension::time,
               "latency of the events fetched by " + p + ", " + stat, std::nullopt, true);
}

void learn_kind(const std::string& k) {
  static constexpr std::pair<const char*, dimension> fields[] = {
      {"messages", dimension::none}, {"payload_bytes", dimension::bytes}, {"wire_bytes", dimension::bytes},
      {"packets", dimension::none}};
  for (const auto& [f, d] : fields) {
    add_metric("kind." + k + "." + f, "traffic.by_kind." + k + ".*." + f, d,
               std::string(f) + " of " + k + " messages, both directions, whole run", 0.0);
    for (const char* dir : {"to_server", "to_client"})
      add_metric("kind." + k + "." + dir + "." + f, "traffic.by_kind." + k + "." + dir + "." + f, d,
                 std::string(f) + " of " + k + " messages " + dir + ", whole run", 0.0);
  }
}

void learn_counter(const std::string& c, const std::string& family) {
  add_metric(c, c, dimension::none, "a counter of the " + family + " clients (its vocabulary)", std::nullopt);
}

// Adds a name not seen before; `on_new` extends the catalogue for it.
template <typename OnNew>
void learn(std::vector<std::string>& list, const std::string& name, OnNew on_new) {
  if (std::find(list.begin(), list.end(), name) != list.end()) return;
  list.push_back(name);
  on_new(name);
}

template <typename Json>
void learn_from_block(const Json& block) {
  auto& n = known();
  if (!block.is_object()) return;
  if (const auto ev = block.find("events"); ev != block.end() && ev->is_object())
    if (const auto by_path = ev->find("by_path"); by_path != ev->end() && by_path->is_object())
      for (const auto& p : by_path->items()) learn(n.paths, p.key(), learn_path);
  if (const auto tr = block.find("traffic"); tr != block.end() && tr->is_object())
    if (const auto by_kind = tr->find("by_kind"); by_kind != tr->end() && by_kind->is_object())
      for (const auto& k : by_kind->items()) learn(n.kinds, k.key(), learn_kind);
  // Plain numbers that no metric names yet are the block's counters.
  for (const auto& c : block.items())
    if (c.value().is_number() && !find_mode_metric(c.key()))
      learn(n.counters, c.key(), [](const std::string& name) { learn_counter(name, "run's"); });
}

template <typename Json>
void learn_from_keys(const Json& result) {
  // Older results have no vocabulary block: the names are the keys they hold,
  // in their order. A kind without traffic is left out of every block, so
  // such a result cannot name all its kinds: kind metrics are then taken on trust.
  auto& n = known();
  n.kinds_on_trust = true;
  if (const auto modes = result.find("modes"); modes != result.end() && modes->is_object())
    for (const auto& m : modes->items()) {
      learn(n.modes, m.key(), [](const std::string&) {});
      learn_from_block(m.value());
    }
  if (const auto total = result.find("total"); total != result.end()) learn_from_block(*total);
}

}  // namespace

void learn_names(const nlohmann::json& result) {
  const auto vocabulary = result.find("vocabulary");
  if (vocabulary == result.end() || !vocabulary->is_object()) return learn_from_keys(result);
  auto& n = known();
  auto names = [](const nlohmann::json& family, const char* list) {
    std::vector<std::string> out;
    if (const auto it = family.find(list); it != family.end() && it->is_array())
      for (const auto& name : *it)
        if (name.is_string()) out.push_back(name.get<std::string>());
    return out;
  };
  for (const auto& entry : vocabulary->items()) {
    const auto& family = entry.key();
    const auto& words = entry.value();
    if (!words.is_object()) continue;
    for (const auto& m : names(words, "modes")) learn(n.modes, m, [](const std::string&) {});
    for (const auto& p : names(words, "paths")) learn(n.paths, p, learn_path);
    for (const auto& k : names(words, "kinds")) learn(n.kinds, k, learn_kind);
    for (const auto& c : names(words, "counters"))
      learn(n.counters, c, [&family](const std::string& name) { learn_counter(name, family); });
  }
  // Groups named otherwise than by their mode: labelled ones, in the plan's
  // order, then "protocol/mode" keys (two families sharing a mode name).
  if (const auto plan = result.find("plan"); plan != result.end() && plan->is_object())
    if (const auto groups = plan->find("client_groups"); groups != plan->end() && groups->is_array())
      for (const auto& g : *groups)
        if (const auto label = g.find("label"); label != g.end() && label->is_string())
          learn(n.modes, label->get<std::string>(), [](const std::string&) {});
  if (const auto modes = result.find("modes"); modes != result.end() && modes->is_object())
    for (const auto& m : modes->items()) learn(n.modes, m.key(), [](const std::string&) {});
}

void learn_names_in_file_order(const nlohmann::ordered_json& result) {
  if (result.contains("vocabulary")) return;  // learn_names reads it
  learn_from_keys(result);
}

const std::deque<metric_info>& mode_metrics() { return catalogue(); }

const std::vector<metric_info>& run_metrics() {
  static const std::vector<metric_info> m = make_run_metrics();
  return m;
}

const metric_info* find_mode_metric(std::string_view name) {
  for (const auto& m : mode_metrics())
    if (m.name == name) return &m;
  // kind.KIND.FIELD of a kind no input showed, when an input could not list its kinds.
  if (known().kinds_on_trust && name.starts_with("kind.")) {
    const auto kind = name.substr(5, name.find('.', 5) == std::string_view::npos ? std::string_view::npos
                                                                                  : name.find('.', 5) - 5);
    if (!kind.empty() && kind.find('.') == std::string_view::npos &&
        std::find(known().kinds.begin(), known().kinds.end(), kind) == known().kinds.end()) {
      learn(known().kinds, std::string(kind), learn_kind);
      return find_mode_metric(name);
    }
  }
  return nullptr;
}

const metric_info* find_run_metric(std::string_view name) {
  for (const auto& m : run_metrics())
    if (m.name == name) return &m;
  return nullptr;
}

std::string closest_metric(std::string_view name, bool run_metric) {
  std::string_view best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  auto consider = [&](const metric_info& m) {
    const std::size_t d = edit_distance(name, m.name);
    if (d < best_d) best_d = d, best = m.name;
  };
  if (run_metric)
    for (const auto& m : run_metrics()) consider(m);
  else
    for (const auto& m : mode_metrics()) consider(m);
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

const std::vector<std::string>& mode_names() { return known().modes; }

}  // namespace nudge::report
