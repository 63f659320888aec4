#include "nudge/pcap/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

namespace nudge::pcap_tool {

namespace {

using nlohmann::json;

double seconds_of(time_point t) { return to_seconds(t.time_since_epoch()); }

// A client's name: its address, with the EMSMDB connection's port when clients are sessions.
std::string client_name(const client_report& c) {
  return c.address.port != 0 ? c.address.to_string() : c.address.address_string();
}
std::string client_name(const analysis& a, std::uint32_t i) {
  return i < a.clients.size() ? client_name(a.clients[i]) : std::string();
}

std::string hex(bytes_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (auto v : b) {
    s += digits[v >> 4];
    s += digits[v & 0xF];
  }
  return s;
}

std::string si(std::uint64_t v) {
  if (v < 10'000) return std::to_string(v);
  if (v < 10'000'000) return fmt::format("{:.1f}k", static_cast<double>(v) / 1e3);
  if (v < 10'000'000'000ull) return fmt::format("{:.1f}M", static_cast<double>(v) / 1e6);
  return fmt::format("{:.1f}G", static_cast<double>(v) / 1e9);
}

std::string secs(double s) {
  if (s <= 0) return "0";
  if (s < 1e-3) return fmt::format("{:.0f}us", s * 1e6);
  if (s < 1) return fmt::format("{:.1f}ms", s * 1e3);
  return fmt::format("{:.2f}s", s);
}

std::string opt_secs(const latency_summary& l, double latency_summary::*field) {
  return l.count ? secs(l.*field) : "-";
}

json cell_json(const traffic_cell& c) {
  return {{"messages", c.messages}, {"payload_bytes", c.payload_bytes}, {"wire_bytes", c.wire_bytes}, {"packets", c.packets}};
}

// `all_kinds`: every kind, as nudge.result/1 has them (modes, total); otherwise only
// kinds with traffic (clients and flows: thousands of them).
json traffic_json(const kind_traffic& t, const traffic_cell& teardown, bool all_kinds,
                  const engine::capture_classifier& names) {
  json by_kind = json::object();
  for (std::size_t k = 0; k < std::min(names.kind_names().size(), metrics::traffic_meter::max_kinds); ++k) {
    const std::size_t kind = k;
    if (!all_kinds && t.meter.cell(kind, direction::to_server) == traffic_cell{} &&
        t.meter.cell(kind, direction::to_client) == traffic_cell{})
      continue;
    by_kind[std::string(names.kind_name(k))] = {{"to_server", cell_json(t.meter.cell(kind, direction::to_server))},
                                                      {"to_client", cell_json(t.meter.cell(kind, direction::to_client))}};
  }
  return {{"total", cell_json(t.total())},
          {"to_server", cell_json(t.total(direction::to_server))},
          {"to_client", cell_json(t.total(direction::to_client))},
          {"by_kind", by_kind},
          {"other", {{"to_server", cell_json(t.other[0])}, {"to_client", cell_json(t.other[1])}}},
          {"teardown", cell_json(teardown)}};
}

json latency_json(const latency_summary& l) {
  return {{"count", l.count}, {"mean_s", l.mean_s}, {"p50_s", l.p50_s}, {"p90_s", l.p90_s}, {"p99_s", l.p99_s}, {"max_s", l.max_s}};
}

json triggers_json(const std::array<std::uint64_t, fetch_trigger_count>& t) {
  json j = json::object();
  for (std::size_t i = 0; i < fetch_trigger_count; ++i) j[std::string(to_string(static_cast<fetch_trigger>(i)))] = t[i];
  return j;
}

json stream_json(const stream_stats& s) {
  return {{"pdus", s.pdus},
          {"malformed_pdus", s.malformed_pdus},
          {"gaps", s.gaps},
          {"retransmissions", s.retransmissions},
          {"reordered", s.reordered},
          {"partial_overlaps", s.partial_overlaps},
          {"truncated_segments", s.truncated_segments},
          {"resyncs", s.resyncs},
          {"unframed_segments", s.unframed_segments}};
}

// The family's counters by name; a dotted name ("fetches_by_trigger.ping") nests.
json counters_json(const std::vector<std::uint64_t>& values, const engine::capture_classifier& names) {
  json j = json::object();
  const auto list = names.counter_names();
  for (std::size_t i = 0; i < std::min(values.size(), list.size()); ++i) {
    json* at = &j;
    std::string_view name = list[i];
    for (std::size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.')) {
      at = &(*at)[std::string(name.substr(0, dot))];
      name.remove_prefix(dot + 1);
    }
    (*at)[std::string(name)] = values[i];
  }
  return j;
}

std::size_t mode_count(const analysis& a) { return std::min(a.names->mode_names().size(), max_modes); }

json mode_json(const mode_report& m, const engine::capture_classifier& names) {
  json latencies = json::object();
  for (std::size_t i = 0; i < std::min(m.latencies.size(), names.latency_names().size()); ++i)
    latencies[std::string(names.latency_names()[i])] = latency_json(latency_summary::of(m.latencies[i]));
  return {{"clients", m.clients},
          {"counters", counters_json(m.counters, names)},
          {"latencies", latencies},
          {"polls", m.polls},
          {"wasted_polls", m.wasted_polls},
          {"fetches", m.fetches},
          {"wasted_fetches", m.wasted_fetches},
          {"fetches_by_trigger", triggers_json(m.fetches_by_trigger)},
          {"pings", m.pings},
          {"pings_matched", m.pings_matched},
          {"pings_answered", m.pings_answered},
          {"keepalives", m.keepalives},
          {"registrations", m.registrations},
          {"async_connects", m.async_connects},
          {"async_waits", m.async_waits},
          {"async_notified", m.async_notified},
          {"pending_seen", m.pending_seen},
          {"dummies", m.dummies},
          {"faults", m.faults},
          {"events", m.events},
          {"latency",
           {{"ping_to_fetch", latency_json(latency_summary::of(m.ping_to_fetch))},
            {"async_to_fetch", latency_json(latency_summary::of(m.async_to_fetch))},
            {"event", latency_json(latency_summary::of(m.event_latency))}}},
          {"traffic", traffic_json(m.traffic, m.teardown, true, names)}};
}

template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

json to_json(const analysis& a, const json_options& opt) {
  const double t0 = a.first ? seconds_of(*a.first) : 0.0;
  json j;
  j["schema"] = "nudge.pcap/1";
  j["capture"] = {{"file", a.file},
                  {"format", a.format},
                  {"link_type", a.link_type},
                  {"packets", a.packets},
                  {"ip_bytes", a.ip_bytes},
                  {"first_s", a.first ? json(seconds_of(*a.first)) : json(nullptr)},
                  {"last_s", a.last ? json(seconds_of(*a.last)) : json(nullptr)},
                  {"duration_s", a.first && a.last ? to_seconds(*a.last - *a.first) : 0.0},
                  {"complete", a.error.empty()},
                  {"error", a.error.empty() ? json(nullptr) : json(a.error)},
                  {"truncated_at", optional_json(a.truncated_at)},
                  {"read_seconds", a.read_seconds},
                  {"packets_per_second", a.read_seconds > 0 ? static_cast<double>(a.packets) / a.read_seconds : 0.0}};
  json tcp_ep = json::array(), udp_ep = json::array();
  for (const auto& e : a.notifier_tcp) tcp_ep.push_back(e.to_string());
  for (const auto& e : a.notifier_udp) udp_ep.push_back(e.to_string());
  j["notifier"] = {{"tcp", tcp_ep},
                   {"udp", udp_ep},
                   {"tcp_from", a.server_port_given ? "--server-port" : "bind_ack"},
                   {"udp_from", a.udp_port_given ? "--udp-port" : "registered contexts"}};
  j["options"] = {{"fetch_window_s", a.fetch_window_s}};
  const auto& s = a.skipped;
  j["skipped"] = {{"short_link", s.short_link},         {"not_ip", s.not_ip},
                  {"bad_ip", s.bad_ip},                 {"ip_fragments", s.ip_fragments},
                  {"other_protocol", s.other_protocol}, {"bad_l4", s.bad_l4},
                  {"unrelated_tcp", s.unrelated_tcp},   {"unrelated_udp", s.unrelated_udp},
                  {"flow_table_full", s.flow_table_full}, {"total", s.total()}};
  j["grouping"] = a.grouping;
  j["tcp"] = stream_json(a.stream);
  j["tcp"]["flows"] = a.tcp_flows;
  j["udp_flows"] = a.udp_flows;
  j["event_clock"] = {{"basis", a.clock_basis},
                      {"offset_s", a.clock_offset_s},
                      {"negative_latencies", a.negative_latencies}};

  json modes = json::object();
  for (std::size_t m = 0; m < mode_count(a); ++m)
    if (a.modes[m].clients) modes[std::string(a.names->mode_name(m))] = mode_json(a.modes[m], *a.names);
  j["modes"] = modes;
  j["total"] = mode_json(a.total, *a.names);

  json clients = json::array();
  for (const client_report& c : a.clients) {
    json latencies = json::object(), facts = json::object();
    for (std::size_t i = 0; i < std::min(c.latencies.size(), a.names->latency_names().size()); ++i)
      latencies[std::string(a.names->latency_names()[i])] = latency_json(c.latencies[i]);
    for (std::size_t i = 0; i < std::min(c.facts.size(), a.names->fact_names().size()); ++i)
      facts[std::string(a.names->fact_names()[i])] = optional_json(c.facts[i]);
    json flows = json::array();
    for (const flow_report& f : c.flows) {
      flows.push_back({{"transport", f.tcp ? "tcp" : "udp"},
                       {"client", f.client.to_string()},
                       {"server", f.server.to_string()},
                       {"interface", f.interface},
                       {"packets", f.packets},
                       {"first_s", seconds_of(f.first)},
                       {"last_s", seconds_of(f.last)},
                       {"saw_syn", f.saw_syn},
                       {"saw_close", f.saw_close},
                       {"stream", stream_json(f.stream)},
                       {"traffic", traffic_json(f.traffic, f.teardown, false, *a.names)}});
    }
    clients.push_back({{"address", client_name(c)},
                       {"mode", a.names->mode_name(static_cast<std::size_t>(c.mode))},
                       {"poll_interval_s", optional_json(c.poll_interval_s)},
                       {"poll_gaps", c.poll_gaps},
                       {"polls_max_ms", optional_json(c.polls_max_ms)},
                       {"session_index", optional_json(c.session_index)},
                       {"counters", counters_json(c.counters, *a.names)},
                       {"facts", facts},
                       {"latencies", latencies},
                       {"polls", c.polls},
                       {"wasted_polls", c.wasted_polls},
                       {"fetches", c.fetches},
                       {"wasted_fetches", c.wasted_fetches},
                       {"fetches_by_trigger", triggers_json(c.fetches_by_trigger)},
                       {"pings", c.pings},
                       {"pings_matched", c.pings_matched},
                       {"pings_answered", c.pings_answered},
                       {"keepalives", c.keepalives},
                       {"registrations", c.registrations},
                       {"async_connects", c.async_connects},
                       {"async_waits", c.async_waits},
                       {"async_notified", c.async_notified},
                       {"pending_seen", c.pending_seen},
                       {"dummies", c.dummies},
                       {"faults", c.faults},
                       {"events", c.events},
                       {"ping_to_fetch", latency_json(c.ping_to_fetch)},
                       {"event_latency", latency_json(c.event_latency)},
                       {"traffic", traffic_json(c.traffic, c.teardown, false, *a.names)},
                       {"flows", flows}});
  }
  j["clients"] = clients;

  json pings = json::array();
  for (const ping_record& p : a.pings) {
    pings.push_back({{"t_s", seconds_of(p.at)},
                     {"client", client_name(a, p.client)},
                     {"from", p.from.to_string()},
                     {"to", p.to.to_string()},
                     {"payload_hex", hex(bytes_view(p.payload))},
                     {"matched", p.matched},
                     {"fetch_t_s", p.fetch_at ? json(seconds_of(*p.fetch_at)) : json(nullptr)},
                     {"latency_s", p.fetch_at ? json(to_seconds(*p.fetch_at - p.at)) : json(nullptr)},
                     {"fetch_call_id", p.fetch_at ? json(p.fetch_call_id) : json(nullptr)}});
  }
  j["pings"] = pings;
  if (opt.events) {
    json events = json::array();
    for (const event_record& e : a.events)
      events.push_back({{"id", e.id},
                        {"client", client_name(a, e.client)},
                        {"seen_s", seconds_of(e.seen)},
                        {"created_us", optional_json(e.created_us)},
                        {"latency_s", optional_json(e.latency_s)},
                        {"path", a.names->path_name(e.path)}});
    j["events"] = events;
  }
  (void)t0;
  return j;
}

void write_table(std::ostream& out, const analysis& a, const table_options& opt) {
  std::string o;
  auto line = [&](const std::string& s) {
    o += s;
    o += '\n';
  };
  const double t0 = a.first ? seconds_of(*a.first) : 0.0;
  const double span = a.first && a.last ? to_seconds(*a.last - *a.first) : 0.0;
  line(fmt::format("capture   {} ({}, {}): {} packets, {} IP bytes over {}", a.file, a.format, a.link_type, a.packets,
                   a.ip_bytes, secs(span)));
  if (a.read_seconds > 0)
    line(fmt::format("read      {:.3f} s, {:.2f} M packets/s", a.read_seconds,
                     static_cast<double>(a.packets) / a.read_seconds / 1e6));
  if (!a.error.empty())
    line(fmt::format("WARNING   capture {} at record {}: {} (everything before it is counted)",
                     a.error.find("truncated") != std::string::npos ? "truncated" : "unreadable",
                     a.truncated_at.value_or(0), a.error));
  std::string tcp_ep, udp_ep;
  for (const auto& e : a.notifier_tcp) tcp_ep += (tcp_ep.empty() ? "" : ", ") + e.to_string();
  for (const auto& e : a.notifier_udp) udp_ep += (udp_ep.empty() ? "" : ", ") + e.to_string();
  line(fmt::format("notifier  tcp {} ({}); udp {} ({})", tcp_ep.empty() ? "none found" : tcp_ep,
                   a.server_port_given ? "--server-port" : "answered binds", udp_ep.empty() ? "none seen" : udp_ep,
                   a.udp_port_given ? "--udp-port" : "sent registered contexts"));
  const auto& s = a.skipped;
  line(fmt::format("skipped   {} packets: {} not IP, {} other IP protocols, {} fragments, {} bad IP/TCP/UDP headers, "
                   "{} short frames, {} unrelated TCP, {} unrelated UDP{}",
                   s.total(), s.not_ip, s.other_protocol, s.ip_fragments, s.bad_ip + s.bad_l4, s.short_link,
                   s.unrelated_tcp, s.unrelated_udp,
                   s.flow_table_full ? fmt::format(", {} beyond the flow table", s.flow_table_full) : std::string()));
  const auto& st = a.stream;
  line(fmt::format("tcp       {} flows, {} PDUs; {} malformed PDUs, {} gaps, {} late (reordered) segments, {} "
                   "retransmitted segments, {} partial overlaps, {} cut by snaplen, {} resyncs, {} unframed segments; "
                   "{} udp flows",
                   a.tcp_flows, st.pdus, st.malformed_pdus, st.gaps, st.reordered, st.retransmissions,
                   st.partial_overlaps, st.truncated_segments, st.resyncs, st.unframed_segments, a.udp_flows));
  line("");

  // ---- per mode --------------------------------------------------------------------------
  line("Totals per mode (client view: up = to the notifier, down = to the client)");
  line(fmt::format("{:<6} {:>7} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}", "mode", "clients",
                   "packets", "wire B", "payload B", "polls", "fetches", "pings", "waits", "events", "ping>fetch",
                   "event p50"));
  auto mode_row = [&](const std::string& name, const mode_report& m) {
    const auto t = m.traffic.total();
    const auto ptf = latency_summary::of(m.ping_to_fetch);
    const auto ev = latency_summary::of(m.event_latency);
    line(fmt::format("{:<6} {:>7} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}", name, m.clients,
                     si(t.packets), si(t.wire_bytes), si(t.payload_bytes), m.polls, m.fetches, m.pings, m.async_waits,
                     m.events, opt_secs(ptf, &latency_summary::p50_s), opt_secs(ev, &latency_summary::p50_s)));
  };
  for (std::size_t m = 0; m < mode_count(a); ++m)
    if (a.modes[m].clients) mode_row(std::string(a.names->mode_name(m)), a.modes[m]);
  mode_row("total", a.total);
  line("");

  // ---- the family's counters, when some are not among the fixed columns' fields -------------
  {
    const auto names = a.names->counter_names();
    if (std::any_of(names.begin(), names.end(), [](std::string_view n) { return !is_fixed_field(n); })) {
      line(fmt::format("Counters per mode ({})", a.names->family()));
      std::string head = fmt::format("{:<6}", "mode");
      for (std::string_view name : names) head += fmt::format(" {:>14}", name);
      line(head);
      auto row = [&](const std::string& name, const mode_report& m) {
        std::string r = fmt::format("{:<6}", name);
        for (std::size_t i = 0; i < names.size(); ++i) r += fmt::format(" {:>14}", i < m.counters.size() ? m.counters[i] : 0);
        line(r);
      };
      for (std::size_t m = 0; m < mode_count(a); ++m)
        if (a.modes[m].clients) row(std::string(a.names->mode_name(m)), a.modes[m]);
      row("total", a.total);
      line("");
    }
  }

  // ---- per kind --------------------------------------------------------------------------
  line("Per message kind: packets / wire bytes (both directions), per mode");
  std::string head = fmt::format("{:<13}", "kind");
  for (std::size_t m = 0; m < mode_count(a); ++m)
    if (a.modes[m].clients) head += fmt::format(" {:>17}", a.names->mode_name(m));
  head += fmt::format(" {:>17} {:>13} {:>13}", "total", "up pkts/B", "down pkts/B");
  line(head);
  auto kind_row = [&](const std::string& name, auto&& cell_of) {
    std::string row = fmt::format("{:<13}", name);
    for (std::size_t m = 0; m < mode_count(a); ++m) {
      if (!a.modes[m].clients) continue;
      traffic_cell c = cell_of(a.modes[m], direction::to_server);
      c += cell_of(a.modes[m], direction::to_client);
      row += fmt::format(" {:>17}", fmt::format("{} / {}", si(c.packets), si(c.wire_bytes)));
    }
    const traffic_cell up = cell_of(a.total, direction::to_server);
    const traffic_cell down = cell_of(a.total, direction::to_client);
    traffic_cell both = up;
    both += down;
    row += fmt::format(" {:>17} {:>13} {:>13}", fmt::format("{} / {}", si(both.packets), si(both.wire_bytes)),
                       fmt::format("{}/{}", si(up.packets), si(up.wire_bytes)),
                       fmt::format("{}/{}", si(down.packets), si(down.wire_bytes)));
    if (both.packets || both.messages) line(row);
  };
  for (std::size_t k = 0; k < std::min(a.names->kind_names().size(), metrics::traffic_meter::max_kinds); ++k) {
    const std::size_t kind = k;
    kind_row(std::string(a.names->kind_name(k)),
             [kind](const mode_report& m, direction d) { return m.traffic.meter.cell(kind, d); });
  }
  kind_row("other", [](const mode_report& m, direction d) { return m.traffic.other[static_cast<std::size_t>(d)]; });
  if (a.total.teardown.packets)
    line(fmt::format("(tcp_setup includes the teardown: FIN, RST and ACKs of FINs, {} packets / {} wire bytes; "
                     "nudge's own counters leave teardown out)",
                     a.total.teardown.packets, a.total.teardown.wire_bytes));
  line("");

  // ---- top clients -------------------------------------------------------------------------
  std::vector<std::size_t> order(a.clients.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return a.clients[x].traffic.total().wire_bytes > a.clients[y].traffic.total().wire_bytes;
  });
  const std::size_t shown = std::min(opt.top_clients, order.size());
  line(fmt::format("Top {} of {} clients by wire bytes (a client is {})", shown, a.clients.size(),
                   a.grouping == "session" ? "an EMSMDB session: its connections and UDP socket"
                                           : "an IP address: its connections and UDP socket"));
  const std::size_t w = a.grouping == "session" ? 22 : 16;
  line(fmt::format("{:<{}} {:<5} {:>5} {:>8} {:>10} {:>7} {:>9} {:>7} {:>9} {:>10} {:>7} {:>10}", "client", w, "mode",
                   "flows", "packets", "wire B", "polls", "interval", "fetches", "pings", "ping>fetch", "events",
                   "event p50"));
  for (std::size_t i = 0; i < shown; ++i) {
    const client_report& c = a.clients[order[i]];
    const auto t = c.traffic.total();
    line(fmt::format("{:<{}} {:<5} {:>5} {:>8} {:>10} {:>7} {:>9} {:>7} {:>9} {:>10} {:>7} {:>10}",
                     client_name(c), w, a.names->mode_name(static_cast<std::size_t>(c.mode)), c.flows.size(), si(t.packets), si(t.wire_bytes),
                     c.polls, c.poll_interval_s ? secs(*c.poll_interval_s) : "-", c.fetches,
                     fmt::format("{}/{}", c.pings_answered, c.pings), opt_secs(c.ping_to_fetch, &latency_summary::p50_s),
                     c.events, opt_secs(c.event_latency, &latency_summary::p50_s)));
  }
  line("");

  // ---- pings ---------------------------------------------------------------------------------
  if (!a.pings.empty()) {
    const std::size_t n = std::min(opt.pings, a.pings.size());
    line(fmt::format("Pings: {} (first {} listed; t relative to the first packet)", a.pings.size(), n));
    line(fmt::format("{:>10} {:<22} {:<22} {:>4} {:<7} {:>12}", "t", "from", "to", "len", "matched", "fetch after"));
    for (std::size_t i = 0; i < n; ++i) {
      const ping_record& p = a.pings[i];
      line(fmt::format("{:>10.4f} {:<22} {:<22} {:>4} {:<7} {:>12}", seconds_of(p.at) - t0, p.from.to_string(),
                       p.to.to_string(), p.payload.size(), p.matched ? "yes" : "no",
                       p.fetch_at ? secs(to_seconds(*p.fetch_at - p.at)) : "no fetch"));
    }
    line("");
  }

  // ---- event clock ----------------------------------------------------------------------------
  if (a.total.events) {
    const auto ev = latency_summary::of(a.total.event_latency);
    line(fmt::format("Events: {} NewMail details; latency p50 {} p90 {} p99 {} max {} (creation stamp -> response seen)",
                     a.total.events, opt_secs(ev, &latency_summary::p50_s), opt_secs(ev, &latency_summary::p90_s),
                     opt_secs(ev, &latency_summary::p99_s), opt_secs(ev, &latency_summary::max_s)));
    std::string basis;
    if (a.clock_basis == "given") basis = fmt::format("run clock = capture time - {} s (--clock-offset)", a.clock_offset_s);
    else if (a.clock_basis == "same") basis = "creation stamps are in the capture's clock";
    else if (a.clock_basis == "whole-second start")
      basis = fmt::format("assumed: run clock zero = {:.0f} s, the capture's first whole second (nudge's pcap writer); "
                          "use --clock-offset otherwise",
                          a.clock_offset_s);
    else if (a.clock_basis == "fastest event")
      basis = fmt::format("estimated: the fastest event taken as instantaneous (offset {:.6f} s); the stamps are in "
                          "another clock than the capture (a real-time run stamps CLOCK_MONOTONIC), so these are "
                          "latencies relative to the fastest; give --clock-offset if you know it",
                          a.clock_offset_s);
    else basis = "no creation stamps (not nudge's IPM.Note.t<hex> message class)";
    line("          clock: " + basis);
    if (a.negative_latencies)
      line(fmt::format("          {} events appear fetched before their creation: the clocks do not match",
                       a.negative_latencies));
  }
  out << o;
}

}  // namespace nudge::pcap_tool
