#include "nudge/sim/run_result.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <stdexcept>

namespace nudge::sim {

using client::client_metrics;
using client::client_mode;
using metrics::direction;
using protocol::emsmdb::message_kind;
using nlohmann::json;

client_metrics run_result::total() const {
  client_metrics t;
  for (const auto& m : modes) t += m.metrics;
  return t;
}

std::optional<measured_traffic> run_result::measured_total() const {
  std::optional<measured_traffic> t;
  for (const auto& m : modes)
    if (m.measured) {
      if (!t) t.emplace();
      *t += *m.measured;
    }
  return t;
}

namespace {

double hours(duration d) { return to_seconds(d) / 3600.0; }

double per_client_hour(double value, std::size_t clients, duration measured) {
  const double ch = static_cast<double>(clients) * hours(measured);
  return ch > 0 ? value / ch : 0.0;
}

json cell_json(const metrics::traffic_cell& c) {
  return {{"messages", c.messages}, {"payload_bytes", c.payload_bytes}, {"wire_bytes", c.wire_bytes}, {"packets", c.packets}};
}

json latency_json(const metrics::latency_histogram& h) {
  auto s = [](duration d) { return to_seconds(d); };
  return {{"count", h.count()},         {"mean_s", s(h.mean())},          {"p50_s", s(h.quantile(0.5))},
          {"p90_s", s(h.quantile(0.9))}, {"p99_s", s(h.quantile(0.99))},  {"p999_s", s(h.quantile(0.999))},
          {"max_s", s(h.max())}};
}

// The histogram's non-empty buckets as [upper edge in seconds, count], for CDF charts (nudge-report).
json latency_buckets_json(const metrics::latency_histogram& h) {
  json a = json::array();
  for (const auto& [edge_ns, count] : h.buckets()) a.push_back({static_cast<double>(edge_ns) / 1e9, count});
  return a;
}

json flow_json(const measured_traffic::flow& f, const char* packets_name) {
  return {{packets_name, f.packets}, {"payload_bytes", f.payload_bytes}, {"wire_bytes", f.wire_bytes}};
}

double percent_of(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

// The measured totals beside the model's (metrics.traffic), with their difference.
json measured_json(const measured_traffic& mt, const metrics::traffic_cell& model, std::size_t clients,
                   duration measured) {
  const auto t = mt.total();
  const double byte_gap = static_cast<double>(model.wire_bytes) - static_cast<double>(t.wire_bytes);
  const double packet_gap = static_cast<double>(model.packets) - static_cast<double>(t.packets);
  return {
      {"source", measured_traffic_source},
      {"teardown", "excluded"},
      {"wire_bytes", t.wire_bytes},
      {"packets", t.packets},
      {"payload_bytes", t.payload_bytes},
      {"per_client_hour",
       {{"wire_bytes", per_client_hour(static_cast<double>(t.wire_bytes), clients, measured)},
        {"packets", per_client_hour(static_cast<double>(t.packets), clients, measured)},
        {"payload_bytes", per_client_hour(static_cast<double>(t.payload_bytes), clients, measured)}}},
      {"tcp",
       {{"connections", mt.tcp_connections},
        {"unmeasured_connections", mt.unmeasured_connections},
        {"to_server", flow_json(mt.tcp[0], "segments")},
        {"to_client", flow_json(mt.tcp[1], "segments")}}},
      {"udp", {{"to_server", flow_json(mt.udp[0], "datagrams")}, {"to_client", flow_json(mt.udp[1], "datagrams")}}},
      {"model_minus_measured",
       {{"wire_bytes", byte_gap},
        {"packets", packet_gap},
        {"wire_bytes_percent", percent_of(byte_gap, static_cast<double>(t.wire_bytes))},
        {"packets_percent", percent_of(packet_gap, static_cast<double>(t.packets))}}},
  };
}

// The family whose names a block uses (every plan group's family is registered: run_plan::validate).
const engine::vocabulary& words_of(std::string_view protocol) {
  static const engine::vocabulary none;
  const auto* f = protocol_family(protocol);
  return f ? f->words : none;
}

json metrics_json(const client_metrics& m, const engine::vocabulary& words, std::size_t clients,
                  std::uint64_t generated, duration measured, const std::optional<measured_traffic>& measured_wire) {
  const auto t = m.traffic.total();
  json by_kind = json::object();
  for (std::size_t k = 0; k < words.kinds.size(); ++k) {
    const auto& up = m.traffic.cell(k, direction::to_server);
    const auto& down = m.traffic.cell(k, direction::to_client);
    if (up.packets == 0 && down.packets == 0 && up.messages == 0 && down.messages == 0) continue;
    by_kind[words.kinds[k].name] = {{"to_server", cell_json(up)}, {"to_client", cell_json(down)}};
  }
  json by_path = json::object();
  json latency_by_path = json::object();
  for (std::size_t p = 0; p < words.paths.size(); ++p) {
    const auto& name = words.paths[p].name;
    by_path[name] = m.events_on(p);
    if (p < m.latency_by_path.size() && m.latency_by_path[p].count())
      latency_by_path[name] = latency_json(m.latency_by_path[p]);
  }
  const std::uint64_t fetched = m.events_fetched();
  const std::uint64_t missed = generated > fetched ? generated - fetched : 0;
  json block = {
      {"clients", clients},
      {"clients_ready", m.clients_ready},
      {"clients_failed", m.clients_failed},
      {"events", {{"generated", generated}, {"fetched", fetched}, {"missed", missed}, {"by_path", by_path}}},
      {"latency", latency_json(m.latency)},
      {"latency_buckets", latency_buckets_json(m.latency)},
      {"latency_by_path", latency_by_path},
      {"traffic",
       {{"source", "wire model"},
        {"total", cell_json(t)},
        {"per_client_hour",
         {{"payload_bytes", per_client_hour(static_cast<double>(t.payload_bytes), clients, measured)},
          {"wire_bytes", per_client_hour(static_cast<double>(t.wire_bytes), clients, measured)},
          {"packets", per_client_hour(static_cast<double>(t.packets), clients, measured)},
          {"messages", per_client_hour(static_cast<double>(t.messages), clients, measured)}}},
        {"by_kind", by_kind}}},
  };
  // The family's counters, each under its own name.
  for (std::size_t c = 0; c < words.counters.size(); ++c) block[words.counters[c].name] = m.counter(c);
  // The seed article's "unnecessary" traffic, for families that poll.
  if (const auto wasted = engine::index_of(words.counters, "wasted_polls"))
    block["unnecessary"] = {
        {"polls", m.counter(*wasted)},
        {"bytes", m.wasted_poll_traffic.wire_bytes},
        {"packets", m.wasted_poll_traffic.packets},
        {"bytes_per_client_hour", per_client_hour(static_cast<double>(m.wasted_poll_traffic.wire_bytes), clients, measured)},
        {"packets_per_client_hour", per_client_hour(static_cast<double>(m.wasted_poll_traffic.packets), clients, measured)},
        {"bytes_per_hour_all_clients", static_cast<double>(m.wasted_poll_traffic.wire_bytes) / hours(measured)},
        {"packets_per_hour_all_clients", static_cast<double>(m.wasted_poll_traffic.packets) / hours(measured)}};
  if (measured_wire) block["measured"] = measured_json(*measured_wire, t, clients, measured);
  return block;
}

json names_json(const std::vector<engine::term>& terms) {
  json a = json::array();
  for (const auto& t : terms) a.push_back(t.name);
  return a;
}

// Per family in the plan: the names its blocks use, in index order (nudge-report reads these).
json vocabulary_json(const run_plan& p) {
  json v = json::object();
  for (const auto& g : p.mix) {
    if (v.contains(g.protocol)) continue;
    const auto& w = words_of(g.protocol);
    v[g.protocol] = {{"modes", names_json(w.modes)},
                     {"kinds", names_json(w.kinds)},
                     {"paths", names_json(w.paths)},
                     {"counters", names_json(w.counters)}};
    if (!w.table.empty()) {
      json rows = json::array();
      for (const auto& r : w.table) rows.push_back({{"label", r.label}, {"counters", r.counters}});
      v[g.protocol]["table"] = std::move(rows);
    }
  }
  return v;
}

// A group's key in the result's `modes` and timeline: its mode's name, or
// "protocol/mode" when two families in the plan share that mode name.
std::string group_key(const run_plan& p, std::size_t g) {
  const auto& group = p.mix[g];
  if (!group.label.empty()) return group.label;  // run_plan::validate keeps labels unique
  for (std::size_t h = 0; h < p.mix.size(); ++h)
    if (h != g && p.mix[h].mode == group.mode) return group.protocol + "/" + group.mode;
  return group.mode;
}

}  // namespace

const mode_result* run_result::of(client_mode mode) const {
  const auto g = plan.group_of(mode);
  return g && *g < modes.size() ? &modes[*g] : nullptr;
}

double run_result::wire_bytes_per_client_hour(client_mode m) const {
  const auto* group = of(m);
  if (!group) return 0.0;
  const auto& r = *group;
  if (!r.measured) return modelled_wire_bytes_per_client_hour(m);
  return per_client_hour(static_cast<double>(r.measured->total().wire_bytes), r.clients, measured);
}

double run_result::modelled_wire_bytes_per_client_hour(client_mode m) const {
  const auto* group = of(m);
  if (!group) return 0.0;
  const auto& r = *group;
  return per_client_hour(static_cast<double>(r.metrics.traffic.total().wire_bytes), r.clients, measured);
}

json to_json(const run_result& r) {
  const auto& p = r.plan;
  json plan = {
      {"clients", p.clients},
      {"mix",
       [&] {
         json mix = json::object();  // the EMSMDB shares by mode, as [mix] states them
         for (const auto& g : p.mix)
           if (g.protocol == "emsmdb") mix[g.mode] = g.share;
         return mix;
       }()},
      {"client_groups",
       [&] {
         json a = json::array();
         for (const auto& g : p.mix) {
           json entry = {{"protocol", g.protocol}, {"mode", g.mode}, {"share", g.share}};
           if (!g.label.empty()) entry["label"] = g.label;
           if (!g.keys.empty()) {
             json set = json::object();
             for (const auto& [key, value] : g.keys) set[key] = value;
             entry["set"] = std::move(set);
           }
           a.push_back(std::move(entry));
         }
         return a;
       }()},
      {"poll_interval_s", to_seconds(p.poll_interval)},
      {"poll_jitter", p.poll_jitter},
      {"events_per_client_hour", p.events_per_client_hour},
      {"ramp_up_s", to_seconds(p.ramp_up)},
      {"length_s", to_seconds(p.length)},
      {"drain_s", to_seconds(p.drain)},
      {"seed", p.seed},
      {"context_size", p.context_size},
      {"poll_until_first_ping", p.poll_until_first_ping},
      {"send_cookie", p.send_cookie},
      {"keepalive_s", to_seconds(p.keepalive_interval)},
      {"fallback_check_s", to_seconds(p.fallback_check_interval)},
      {"link",
       {{"one_way_delay_s", to_seconds(p.link.one_way_delay)},
        {"jitter_s", to_seconds(p.link.jitter)},
        {"udp_loss", p.link.udp_loss},
        {"rate_bps", p.link.rate_bps}}},
      {"nat_mix",
       [&] {
         nlohmann::json a = nlohmann::json::array();
         for (const auto& n : p.nat_mix) {
           nlohmann::json e = {{"preset", n.preset}, {"fraction", n.fraction}, {"udp_timeout_s", to_seconds(n.udp_timeout)},
                               {"clients_per_device", n.clients_per_device}};
           if (n.tcp_timeout != duration::zero()) e["tcp_timeout_s"] = to_seconds(n.tcp_timeout);  // added only when set
           if (n.kernel) e["kernel"] = true;  // only when asked: other results stay as they were
           a.push_back(std::move(e));
         }
         return a;
       }()},
      {"server",
       {{"policy", std::string(notifier::to_string(p.server.policy))},
        {"polls_max_ms", p.server.polls_max_ms},
        {"ping_resend_s", to_seconds(p.server.ping_resend)},
        {"async_hold_s", to_seconds(p.server.async_hold)}}},
      {"wire",
       {{"ip_header", p.wire.ip_header},
        {"tcp_header", p.wire.tcp_header},
        {"tcp_options", p.wire.tcp_options},
        {"syn_options", p.wire.syn_options},
        {"quick_acks", p.wire.quick_acks},
        {"udp_header", p.wire.udp_header},
        {"mss", p.wire.mss},
        {"abstract_message_bytes", p.wire.abstract_message_bytes},
        {"delayed_ack_s", to_seconds(p.wire.delayed_ack)},
        {"idle_quick_ack_s", to_seconds(p.wire.idle_quick_ack)}}},
  };
  json modes = json::object();
  std::uint64_t generated = 0;
  for (std::size_t g = 0; g < r.modes.size(); ++g) {
    const auto& m = r.modes[g];
    generated += m.events_generated;
    if (m.clients == 0) continue;
    json block = metrics_json(m.metrics, words_of(m.protocol), m.clients, m.events_generated, r.measured, m.measured);
    block["protocol"] = m.protocol;
    if (g < p.mix.size() && !p.mix[g].label.empty()) block["mode"] = p.mix[g].mode;  // the key is its label
    modes[g < p.mix.size() ? group_key(p, g) : std::string(client::to_string(m.mode))] = std::move(block);
  }
  // Totals add counters, paths and kinds index by index: named when one family
  // ran; a run that mixes families names only the rows every family shares.
  bool one_family = true;
  for (const auto& g : p.mix) one_family = one_family && g.protocol == p.mix.front().protocol;
  const auto& first_words = words_of(p.mix.empty() ? std::string("emsmdb") : p.mix.front().protocol);
  engine::vocabulary shared_words;
  shared_words.kinds.assign(first_words.kinds.begin(), first_words.kinds.begin() + std::min<std::size_t>(2, first_words.kinds.size()));
  const auto& total_words = one_family ? first_words : shared_words;
  json out = {{"schema", "nudge.result/1"},
              {"clock", r.clock},
              {"plan", plan},
              {"measured_s", to_seconds(r.measured)},
              {"wall_s", r.wall_seconds},
              {"simulated_events", r.simulated_events},
              {"network",
               {{"datagrams_nat_filtered", r.network.nat_filtered},
                {"datagrams_no_route", r.network.no_route},
                {"datagrams_lost", r.network.lost}}},
              {"modes", modes},
              {"total", metrics_json(r.total(), total_words, r.plan.clients, generated, r.measured, r.measured_total())},
              {"vocabulary", vocabulary_json(p)}};
  if (!p.report_thresholds.empty()) out["plan"]["report"] = {{"thresholds", p.report_thresholds}};
  if (!p.family_keys.empty()) {
    json keys = json::object();
    for (const auto& [key, value] : p.family_keys) keys[key] = value;
    out["plan"]["family_keys"] = std::move(keys);
  }
  if (!r.timeline.empty()) {
    // Per interval (not cumulative): wire bytes and packets each mode sent and received in it.
    json intervals = json::array();
    run_result::timeline_sample prev;
    for (const auto& s : r.timeline) {
      json bytes = json::object(), packets = json::object();
      for (std::size_t k = 0; k < r.modes.size() && k < p.mix.size(); ++k) {
        if (r.modes[k].clients == 0) continue;
        const auto name = group_key(p, k);
        const auto at = [k](const std::vector<std::uint64_t>& v) { return k < v.size() ? v[k] : std::uint64_t{0}; };
        bytes[name] = at(s.wire_bytes) - at(prev.wire_bytes);
        packets[name] = at(s.packets) - at(prev.packets);
      }
      intervals.push_back(
          {{"from_s", to_seconds(prev.at)}, {"to_s", to_seconds(s.at)}, {"wire_bytes", bytes}, {"packets", packets}});
      prev = s;
    }
    out["timeline"] = {{"excludes", "tcp_ack"}, {"intervals", std::move(intervals)}};
  }
  if (!r.groups.empty()) {
    json groups = json::array();
    for (const auto& g : r.groups) {
      if (g.clients == 0) continue;
      json block = metrics_json(g.metrics, words_of(g.protocol), g.clients, g.events_generated, r.measured, std::nullopt);
      block["mode"] = std::string(client::to_string(g.mode));
      block["protocol"] = g.protocol;
      block["nat"] = g.nat;
      groups.push_back(std::move(block));
    }
    out["groups"] = std::move(groups);
  }
  if (r.server) {
    const auto& s = *r.server;
    out["server"] = {{"connections_opened", s.connections_opened},
                     {"connections_dropped_malformed", s.connections_dropped_malformed},
                     {"sessions_opened", s.sessions_opened},
                     {"registrations", s.registrations},
                     {"registrations_rejected", s.registrations_rejected},
                     {"faults_sent", s.faults_sent},
                     {"datagrams_sent", s.datagrams_sent},
                     {"datagrams_resent", s.datagrams_resent},
                     {"datagrams_refused", s.datagrams_refused},
                     {"datagrams_unreachable", s.datagrams_unreachable},
                     {"datagrams_received", s.datagrams_received},
                     {"cookies_accepted", s.cookies_accepted},
                     {"datagrams_ignored", s.datagrams_ignored},
                     {"events_generated", s.events_generated},
                     {"events_fetched", s.events_fetched},
                     {"events_dropped", s.events_dropped},
                     {"rpc_ext2_calls", s.rpc_ext2_calls},
                     {"pending_sent", s.pending_sent},
                     {"async_waits", s.async_waits},
                     {"async_waits_rejected", s.async_waits_rejected},
                     {"async_timeouts", s.async_timeouts},
                     {"async_completed", s.async_completed}};
  }
  return out;
}

void print_table(std::ostream& out, const run_result& r) {
  struct column {
    std::string name;
    std::size_t clients;
    const client_metrics* m;
    client_metrics owned;
    std::uint64_t generated;
    std::optional<measured_traffic> measured;
    const engine::vocabulary* words;  // null: the total of a run that mixes families
  };
  std::vector<column> cols;
  std::uint64_t generated = 0;
  bool one_family = true;
  for (const auto& g : r.plan.mix) one_family = one_family && g.protocol == r.plan.mix.front().protocol;
  for (std::size_t g = 0; g < r.modes.size(); ++g) {
    const auto& m = r.modes[g];
    generated += m.events_generated;
    if (m.clients)
      cols.push_back({g < r.plan.mix.size() ? group_key(r.plan, g) : std::string(client::to_string(m.mode)), m.clients,
                      &m.metrics, {}, m.events_generated, m.measured, &words_of(m.protocol)});
  }
  // Counters add index by index: the total has them only when one family ran.
  const engine::vocabulary* total_words =
      one_family ? &words_of(r.plan.mix.empty() ? std::string("emsmdb") : r.plan.mix.front().protocol) : nullptr;
  cols.push_back({"all", r.plan.clients, nullptr, r.total(), generated, r.measured_total(), total_words});
  const bool measured = std::all_of(cols.begin(), cols.end(), [](const column& c) { return c.measured.has_value(); });
  for (auto& c : cols)
    if (!c.m) c.m = &c.owned;

  fmt::print(out, "nudge result ({} clock): {} clients, {:.0f} s measured + {:.0f} s drain, seed {}\n", r.clock,
             r.plan.clients, to_seconds(r.measured), to_seconds(r.plan.drain), r.plan.seed);
  fmt::print(out, "{:<38}", "");
  // A column is 14 wide, or wider when its label needs it, so labels never run together.
  auto width = [](const column& c) { return std::max<std::size_t>(14, c.name.size() + 2); };
  for (auto& c : cols) fmt::print(out, "{:>{}}", c.name, width(c));
  fmt::print(out, "\n");
  auto row = [&](const char* label, auto value) {
    fmt::print(out, "{:<38}", label);
    for (auto& c : cols) fmt::print(out, "{:>{}}", value(c), width(c));
    fmt::print(out, "\n");
  };
  auto pch = [&](const column& c, std::uint64_t v) {
    return fmt::format("{:.1f}", per_client_hour(static_cast<double>(v), c.clients, r.measured));
  };
  auto secs = [](duration d) { return fmt::format("{:.3f}", to_seconds(d)); };
  row("clients", [](const column& c) { return std::to_string(c.clients); });
  if (measured) {
    row("wire bytes / client-hour (measured)", [&](const column& c) { return pch(c, c.measured->total().wire_bytes); });
    row("packets / client-hour (measured)", [&](const column& c) { return pch(c, c.measured->total().packets); });
  }
  const char* model_tag = measured ? " (model)" : "";
  row(fmt::format("wire bytes / client-hour{}", model_tag).c_str(),
      [&](const column& c) { return pch(c, c.m->traffic.total().wire_bytes); });
  row(fmt::format("packets / client-hour{}", model_tag).c_str(),
      [&](const column& c) { return pch(c, c.m->traffic.total().packets); });
  if (measured)
    row("wire bytes: model - measured", [&](const column& c) {
      const double model = static_cast<double>(c.m->traffic.total().wire_bytes);
      const double wire = static_cast<double>(c.measured->total().wire_bytes);
      return fmt::format("{:+.1f}%", percent_of(model - wire, wire));
    });
  row("payload bytes / client-hour", [&](const column& c) { return pch(c, c.m->traffic.total().payload_bytes); });
  // The families' counter rows (their vocabulary's table), each family's in
  // plan order; a column of another family shows "-".
  std::vector<const engine::vocabulary*> families;
  for (const auto& c : cols)
    if (c.words && std::find(families.begin(), families.end(), c.words) == families.end()) families.push_back(c.words);
  for (const engine::vocabulary* words : families) {
    std::vector<engine::table_row> rows = words->table;
    if (rows.empty())
      for (const auto& t : words->counters) rows.push_back({t.name, {t.name}});
    for (const auto& tr : rows) {
      row(tr.label.c_str(), [&](const column& c) {
        if (c.words != words) return std::string("-");
        std::string cell;
        for (const auto& name : tr.counters) {
          if (!cell.empty()) cell += '/';
          const auto i = engine::index_of(words->counters, name);
          cell += i ? std::to_string(c.m->counter(*i)) : std::string("-");
        }
        return cell;
      });
      if (std::find(tr.counters.begin(), tr.counters.end(), "wasted_polls") != tr.counters.end()) {
        row("unnecessary bytes / client-hour", [&](const column& c) { return c.words == words ? pch(c, c.m->wasted_poll_traffic.wire_bytes) : std::string("-"); });
        row("unnecessary packets / client-hour", [&](const column& c) { return c.words == words ? pch(c, c.m->wasted_poll_traffic.packets) : std::string("-"); });
      }
    }
  }
  row("events generated", [](const column& c) { return std::to_string(c.generated); });
  row("events fetched", [](const column& c) { return std::to_string(c.m->events_fetched()); });
  row("events missed", [](const column& c) {
    return std::to_string(c.generated > c.m->events_fetched() ? c.generated - c.m->events_fetched() : 0);
  });
  row("latency p50 (s)", [&](const column& c) { return secs(c.m->latency.quantile(0.5)); });
  row("latency p90 (s)", [&](const column& c) { return secs(c.m->latency.quantile(0.9)); });
  row("latency p99 (s)", [&](const column& c) { return secs(c.m->latency.quantile(0.99)); });
  row("latency p99.9 (s)", [&](const column& c) { return secs(c.m->latency.quantile(0.999)); });
  row("latency max (s)", [&](const column& c) { return secs(c.m->latency.max()); });
  row("clients failed", [](const column& c) { return std::to_string(c.m->clients_failed); });
  if (measured)
    fmt::print(out, "measured = {} (TCP segments and options from each connection's TCP_INFO, teardown excluded); "
                    "model = payload + IPv4/TCP/UDP headers, handshakes and estimated pure ACKs (docs/measurements.md)\n",
               measured_traffic_source);
  else
    fmt::print(out, "wire bytes = payload + IPv4/TCP/UDP headers, handshakes and estimated pure ACKs: the wire model "
                    "(docs/measurements.md)\n");
  if (r.groups.empty()) return;
  fmt::print(out, "\nby mode and NAT: events fetched by path, missed, latency p50 by path (s)\n");
  fmt::print(out, "{:<6} {:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>12}\n", "mode", "nat", "clients",
             "events", "by push", "by poll", "by async", "missed", "p50 push", "p50 poll", "wire B/c-h");
  auto p50 = [](const client_metrics& m, client::delivery_path p) {
    const auto i = static_cast<std::size_t>(p);
    if (i >= m.latency_by_path.size()) return std::string("-");
    const auto& h = m.latency_by_path[i];
    return h.count() ? fmt::format("{:.3f}", to_seconds(h.quantile(0.5))) : std::string("-");
  };
  for (const auto& g : r.groups) {
    if (g.clients == 0) continue;
    const auto& m = g.metrics;
    fmt::print(out, "{:<6} {:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>12.1f}\n", client::to_string(g.mode),
               g.nat, g.clients, g.events_generated, m.events_on(1), m.events_on(0), m.events_on(2),
               g.events_missed(), p50(m, client::delivery_path::push), p50(m, client::delivery_path::poll),
               per_client_hour(static_cast<double>(m.traffic.total().wire_bytes), g.clients, r.measured));
  }
}

// ---- exact client_metrics: the real driver's worker processes -> parent -------------------------

namespace {

struct counter_field {
  const char* name;
  std::uint64_t client_metrics::*member;
};
constexpr counter_field counter_fields[] = {
    {"clients_started", &client_metrics::clients_started},
    {"clients_ready", &client_metrics::clients_ready},
    {"clients_failed", &client_metrics::clients_failed},
};
// A new field in client_metrics must be added to this codec, or worker
// processes would silently drop it: this fails to compile until it is.
static_assert(sizeof(client_metrics) == sizeof(metrics::traffic_meter) + sizeof(metrics::latency_histogram) +
                                            3 * sizeof(std::vector<std::uint64_t>) +  // per-path latencies and events, counters
                                            std::size(counter_fields) * sizeof(std::uint64_t) +
                                            sizeof(metrics::traffic_cell),  // wasted_poll_traffic
              "client_metrics changed: update counter_fields / the exact codec in run_result.cpp");

json cell_to_json(const metrics::traffic_cell& c) {
  return json::array({c.messages, c.payload_bytes, c.wire_bytes, c.packets});
}

metrics::traffic_cell cell_from_json(const json& j) {
  return {j.at(0).get<std::uint64_t>(), j.at(1).get<std::uint64_t>(), j.at(2).get<std::uint64_t>(),
          j.at(3).get<std::uint64_t>()};
}

json histogram_to_json(const metrics::latency_histogram& h) {
  json buckets = json::array();
  for (const auto& [index, n] : h.raw_buckets()) buckets.push_back({index, n});
  return {{"buckets", std::move(buckets)}, {"sum", h.sum_ns()}, {"min", h.min().count()}, {"max", h.max().count()}};
}

metrics::latency_histogram histogram_from_json(const json& j) {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;
  for (const auto& b : j.at("buckets")) buckets.emplace_back(b.at(0).get<std::uint32_t>(), b.at(1).get<std::uint64_t>());
  return metrics::latency_histogram::from_raw(buckets, j.at("sum").get<double>(), j.at("min").get<std::int64_t>(),
                                              j.at("max").get<std::int64_t>());
}

}  // namespace

json client_metrics_to_json(const client_metrics& m) {
  json traffic = json::array();
  for (std::size_t k = 0; k < metrics::traffic_meter::max_kinds; ++k)
    for (std::size_t d = 0; d < 2; ++d) {
      const auto& c = m.traffic.cell(k, static_cast<metrics::direction>(d));
      if (c == metrics::traffic_cell{}) continue;
      traffic.push_back({k, d, cell_to_json(c)});
    }
  json by_path = json::array();
  for (const auto& h : m.latency_by_path) by_path.push_back(histogram_to_json(h));
  json counters = json::object();
  for (const auto& f : counter_fields) counters[f.name] = m.*f.member;
  counters["family"] = m.counters;
  return {{"traffic", std::move(traffic)},
          {"latency", histogram_to_json(m.latency)},
          {"latency_by_path", std::move(by_path)},
          {"events_by_path", m.events_by_path},
          {"counters", std::move(counters)},
          {"wasted_poll_traffic", cell_to_json(m.wasted_poll_traffic)}};
}

client_metrics client_metrics_from_json(const json& j) {
  client_metrics m;
  for (const auto& row : j.at("traffic")) {
    const auto k = row.at(0).get<std::size_t>();
    const auto d = row.at(1).get<std::size_t>();
    if (k >= metrics::traffic_meter::max_kinds || d >= 2) throw std::out_of_range("client_metrics: bad traffic cell");
    m.traffic.cell(k, static_cast<metrics::direction>(d)) = cell_from_json(row.at(2));
  }
  m.latency = histogram_from_json(j.at("latency"));
  const auto& by_path = j.at("latency_by_path");
  const auto& events = j.at("events_by_path");
  if (by_path.size() != events.size()) throw std::out_of_range("client_metrics: wrong number of delivery paths");
  m.fit(by_path.size(), 0);
  for (std::size_t p = 0; p < by_path.size(); ++p) {
    m.latency_by_path[p] = histogram_from_json(by_path[p]);
    m.events_by_path[p] = events[p].get<std::uint64_t>();
  }
  const auto& counters = j.at("counters");
  for (const auto& f : counter_fields) m.*f.member = counters.at(f.name).get<std::uint64_t>();
  m.counters = counters.at("family").get<std::vector<std::uint64_t>>();
  m.wasted_poll_traffic = cell_from_json(j.at("wasted_poll_traffic"));
  return m;
}

}  // namespace nudge::sim
