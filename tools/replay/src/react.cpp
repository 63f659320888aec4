#include "nudge/replay/react.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <stdexcept>
#include <tuple>

#include "nudge/capture_reader/capture_file.hpp"
#include "nudge/capture_reader/packet.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/capture_reader.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_plan.hpp"

namespace nudge::replay {

namespace {

using protocol::ip_endpoint;

duration from_seconds(double s) { return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s)); }

/// A flow as both directions name it.
using flow_key = std::tuple<bool, ip_endpoint, ip_endpoint>;  // tcp, lower end, higher end
flow_key key_of(bool tcp, const ip_endpoint& a, const ip_endpoint& b) {
  return a < b ? flow_key{tcp, a, b} : flow_key{tcp, b, a};
}

ip_endpoint endpoint_of(const capture_reader::packet& p, bool source) {
  if (p.ip_version == 6) {
    ip_endpoint e;
    e.is_v6 = true;
    std::copy_n(source ? p.src6 : p.dst6, 16, e.address.begin());
    e.port = source ? p.src_port : p.dst_port;
    return e;
  }
  return ip_endpoint::v4(source ? p.src4 : p.dst4, source ? p.src_port : p.dst_port);
}

/// What a payload no family read looks like.
std::string payload_guess(protocol::bytes_view b) {
  if (b.size() >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03 && b[2] <= 0x04) return "TLS (encrypted payload)";
  if (b.empty()) return "no payload seen";
  return "unknown protocol";
}

/// Second pass: every flow no family claimed, and every frame that is not TCP/UDP over IP.
void name_unclaimed(const std::filesystem::path& path, const std::set<flow_key>& claimed, replay_plan& plan) {
  auto file = capture_reader::capture_file::open(path);
  if (!file) return;
  const int dlt = file->dlt();
  struct unclaimed {
    ip_endpoint first_src, first_dst;
    bool tcp = true;
    std::uint64_t packets = 0;
    std::string guess;
  };
  std::map<flow_key, unclaimed> flows;
  std::map<std::string, std::uint64_t> other;
  file->read_all([&](const capture_reader::record& r) {
    capture_reader::packet p;
    const auto v = capture_reader::decode_frame(dlt, r.frame, r.wire_length, r.ts, p);
    if (v != capture_reader::frame_verdict::ok) {
      ++other[std::string("not replayable (") + std::string(capture_reader::to_string(v)) + ")"];
      return;
    }
    const bool tcp = p.protocol == capture_reader::ip_proto_tcp;
    const ip_endpoint src = endpoint_of(p, true), dst = endpoint_of(p, false);
    const flow_key k = key_of(tcp, src, dst);
    if (claimed.count(k)) return;
    auto [it, fresh] = flows.try_emplace(k);
    if (fresh) {
      it->second.first_src = src;
      it->second.first_dst = dst;
      it->second.tcp = tcp;
    }
    ++it->second.packets;
    if (it->second.guess.empty() && !p.payload.empty()) it->second.guess = payload_guess(p.payload);
  });
  std::vector<unreplayable> named;
  for (const auto& [k, f] : flows) {
    plan.skipped_packets += f.packets;
    ++plan.skipped_flows;
    named.push_back({fmt::format("{} {} -> {}: {}", f.tcp ? "tcp" : "udp", f.first_src.to_string(),
                                 f.first_dst.to_string(), f.guess.empty() ? "no payload seen" : f.guess),
                     f.packets});
  }
  for (const auto& [what, n] : other) {
    plan.skipped_packets += n;
    named.push_back({what, n});
  }
  std::stable_sort(named.begin(), named.end(), [](const unreplayable& a, const unreplayable& b) { return a.packets > b.packets; });
  constexpr std::size_t shown = 20;
  if (named.size() > shown) {
    std::uint64_t rest = 0;
    for (std::size_t i = shown; i < named.size(); ++i) rest += named[i].packets;
    const std::size_t more = named.size() - shown;
    named.resize(shown);
    named.push_back({fmt::format("{} more flows or reasons", more), rest});
  }
  plan.skipped = std::move(named);
}

std::uint64_t value_of(const counter_values& v, std::string_view name, bool& found) {
  for (const auto& [n, x] : v)
    if (n == name) {
      found = true;
      return x;
    }
  found = false;
  return 0;
}

std::uint64_t distance(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : b - a; }

/// The rebuild's duration keys, divided by the multiplier (timers scale with the capture's times).
std::string scaled_key(const engine::family& f, const std::string& key, const std::string& value, double multiplier) {
  if (multiplier == 1.0) return value;
  for (const auto& k : f.keys)
    if (k.key == key && k.kind == engine::key_spec::type::duration) {
      engine::settings s = engine::settings::defaults(f);
      if (s.assign(f, key, value)) return value;  // does not read: left as it was
      const auto ms = std::llround(static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(s.span(key)).count()) /
                                   1000.0 / multiplier);
      return ms == 0 && s.span(key) == duration::zero() ? value : std::to_string(std::max<long long>(ms, 1)) + "ms";
    }
  return value;
}

}  // namespace

replay_plan read_replay_plan(const std::filesystem::path& path) {
  protocols::register_all();
  replay_plan plan;
  std::set<flow_key> claimed;
  std::optional<time_point> zero, last;
  struct found_client {
    planned_client c;
    time_point first, last;
    std::vector<time_point> events;
  };
  std::vector<found_client> found;
  bool read_any = false;
  for (const engine::family& f : engine::registry::instance().families()) {
    if (!f.capture || !f.make_client) continue;
    if (!f.capture->make_reader(engine::capture_reading_options{})) continue;
    pcap_tool::analyser_options ao;
    ao.family = f.name;
    pcap_tool::analyser an(ao);
    const auto status = pcap_tool::read_capture(path, an);
    if (!status) {
      plan.error = status.error().message;
      return plan;
    }
    pcap_tool::analysis a = an.finish();
    status->apply_to(a);
    read_any = true;
    plan.format = a.format;
    plan.link_type = a.link_type;
    plan.packets = a.packets;
    const engine::capture_classifier& cls = *f.capture;
    const auto counter_names = cls.counter_names();
    std::vector<std::vector<time_point>> events(a.clients.size());
    for (const auto& e : a.events) {
      if (e.client >= events.size()) continue;
      // When the event was created, where the stamp tells it (and makes sense); else when it was seen.
      time_point at = e.seen;
      if (e.latency_s && *e.latency_s >= 0) at = e.seen - from_seconds(*e.latency_s);
      events[e.client].push_back(at);
    }
    for (std::size_t i = 0; i < a.clients.size(); ++i) {
      const auto& r = a.clients[i];
      for (const auto& fl : r.flows) claimed.insert(key_of(fl.tcp, fl.client, fl.server));
      const bool active = std::any_of(r.counters.begin(), r.counters.end(), [](std::uint64_t x) { return x != 0; });
      if (!active || r.flows.empty()) continue;  // opened, then nothing of the family: claimed, not a client
      engine::captured_client_view view;
      view.mode = static_cast<std::uint32_t>(r.mode);
      view.counters = r.counters;
      view.facts = r.facts;
      if (r.poll_interval_s) view.poll_gap = from_seconds(*r.poll_interval_s);
      const auto rebuild = cls.rebuild_client(view);
      found_client fc;
      fc.c.family = f.name;
      fc.c.mode = rebuild ? rebuild->mode : std::string(cls.mode_name(static_cast<std::size_t>(r.mode)));
      if (rebuild) fc.c.keys = rebuild->keys;
      if (!engine::index_of(f.words.modes, fc.c.mode)) fc.c.mode = f.words.modes.empty() ? "" : f.words.modes[0].name;
      fc.c.captured_address = r.address;
      for (std::size_t k = 0; k < counter_names.size() && k < r.counters.size(); ++k)
        fc.c.captured.emplace_back(std::string(counter_names[k]), r.counters[k]);
      fc.c.poll_interval_s = r.poll_interval_s;
      fc.first = r.flows.front().first;
      fc.last = r.flows.front().last;
      for (const auto& fl : r.flows) {
        fc.first = std::min(fc.first, fl.first);
        fc.last = std::max(fc.last, fl.last);
      }
      fc.events = std::move(events[i]);
      std::sort(fc.events.begin(), fc.events.end());
      zero = zero ? std::min(*zero, fc.first) : fc.first;
      last = last ? std::max(*last, fc.last) : fc.last;
      found.push_back(std::move(fc));
    }
  }
  if (!read_any) {
    plan.error = "no registered family reads captures";
    return plan;
  }
  std::stable_sort(found.begin(), found.end(), [](const found_client& x, const found_client& y) { return x.first < y.first; });
  if (zero) {
    plan.time_zero = *zero;
    plan.span = *last - *zero;
  }
  // A key the capture could not show for one client (its interval, when the
  // first ping came before its second poll) is what the capture shows for
  // the other clients of its family and mode: the most common value.
  for (auto& fc : found) {
    std::map<std::string, std::map<std::string, std::size_t>> seen;  // key -> value -> clients
    for (const auto& other : found)
      if (other.c.family == fc.c.family && other.c.mode == fc.c.mode)
        for (const auto& [k, v] : other.c.keys) ++seen[k][v];
    for (const auto& entry : seen) {
      const std::string& k = entry.first;  // not a structured binding: clang refuses to capture one
      const auto& values = entry.second;
      const bool has = std::any_of(fc.c.keys.begin(), fc.c.keys.end(), [&](const auto& kv) { return kv.first == k; });
      if (has) continue;
      const auto best = std::max_element(values.begin(), values.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
      fc.c.keys.emplace_back(k, best->first);
    }
  }
  for (auto& fc : found) {
    fc.c.start = fc.first - plan.time_zero;
    // An event stamped before the capture began is injected at time zero.
    for (const time_point e : fc.events) fc.c.events.push_back(std::max(e - plan.time_zero, duration::zero()));
    plan.clients.push_back(std::move(fc.c));
  }
  name_unclaimed(path, claimed, plan);
  return plan;
}

client_outcome compare_client(const planned_client& planned, const counter_values& live, std::uint64_t events_fetched,
                              bool failed, std::uint64_t tolerance) {
  client_outcome o;
  o.failed = failed;
  o.live = live;
  o.events_fetched = events_fetched;
  for (const auto& [name, captured] : planned.captured) {
    bool found = false;
    const std::uint64_t v = value_of(live, name, found);
    if (found && distance(v, captured) > tolerance) o.divergences.push_back({name, captured, v});
  }
  const std::uint64_t captured_events = planned.events.size();
  if (distance(events_fetched, captured_events) > tolerance)
    o.divergences.push_back({"events_fetched", captured_events, events_fetched});
  for (const auto& [name, v] : live) {
    bool found = false;
    value_of(planned.captured, name, found);
    if (!found && v != 0) o.live_only.emplace_back(name, v);
  }
  return o;
}

react_outcome run_reacting(const replay_plan& plan, const react_options& o) {
  react_outcome out;
  protocols::register_all();
  if (!(o.multiplier > 0) || !std::isfinite(o.multiplier)) {
    out.error = "the multiplier must be a positive number";
    return out;
  }
  std::size_t n = plan.clients.size();
  if (o.max_clients) n = std::min(n, o.max_clients);
  if (n == 0) {
    out.error = "the capture holds no client any registered family can rebuild";
    return out;
  }
  const auto scale = [&](duration d) {
    return duration(static_cast<duration::rep>(std::llround(static_cast<double>(d.count()) / o.multiplier)));
  };

  // One client group per captured client: its family, mode and keys, and counters of its own.
  sim::run_plan p;
  p.clients = n;
  p.mix.clear();
  p.events_per_client_hour = 0;  // the script's events, not the plan's
  std::vector<sim::scripted_client> script(n);
  duration end{};
  for (std::size_t i = 0; i < n; ++i) {
    const planned_client& c = plan.clients[i];
    const engine::family* f = sim::protocol_family(c.family);
    if (!f) {
      out.error = "no family " + c.family;
      return out;
    }
    std::vector<std::pair<std::string, std::string>> keys;
    for (const auto& [k, v] : c.keys) keys.emplace_back(k, scaled_key(*f, k, v, o.multiplier));
    std::sort(keys.begin(), keys.end());
    p.mix.emplace_back(c.family, c.mode, 1.0, "c" + std::to_string(i), std::move(keys));
    script[i].group = i;
    script[i].start = scale(c.start);
    for (const duration e : c.events) script[i].events.push_back(scale(e));
    end = std::max(end, script[i].start);
    if (!script[i].events.empty()) end = std::max(end, script[i].events.back());
  }
  p.length = std::max(scale(plan.span), end) + std::chrono::milliseconds(1);
  p.drain = o.grace;
  if (auto e = p.validate(); !e.empty()) {
    out.error = "the rebuilt plan is not valid: " + e;
    return out;
  }

  sim::real_options ro;
  ro.control = o.control;
  ro.script = &script;
  ro.workers = o.workers;
  ro.processes = 1;
  ro.source_first = o.source_first;
  ro.source_count = o.source_count;
  ro.log = o.log;
  if (o.stats) {
    ro.progress = o.stats;
    ro.progress_every = o.stats_every;
  }
  std::vector<std::uint64_t> injected(n, 0);
  ro.on_event = [&](std::size_t client, duration) {
    if (client < n) ++injected[client];
  };
  if (auto e = sim::validate(ro); !e.empty()) {
    out.error = e;
    return out;
  }
  sim::run_result r;
  try {
    r = sim::run_real(p, ro);
  } catch (const std::exception& e) {
    out.error = e.what();
    return out;
  }
  out.wall_seconds = r.wall_seconds;
  for (std::size_t i = 0; i < n && i < r.modes.size(); ++i) {
    const engine::family* f = sim::protocol_family(plan.clients[i].family);
    const auto& m = r.modes[i].metrics;
    counter_values live;
    for (std::size_t c = 0; c < f->words.counters.size(); ++c) live.emplace_back(f->words.counters[c].name, m.counter(c));
    client_outcome co = compare_client(plan.clients[i], live, m.events_fetched(), m.clients_failed != 0, o.tolerance);
    co.index = i;
    co.events_injected = injected[i];
    out.events_injected += injected[i];
    if (co.failed || !co.divergences.empty()) ++out.diverged;
    out.clients.push_back(std::move(co));
  }
  return out;
}

namespace {

std::string counters_text(const counter_values& v) {
  std::string s;
  for (const auto& [n, x] : v) {
    if (x == 0) continue;
    s += (s.empty() ? "" : " ") + n + "=" + std::to_string(x);
  }
  return s.empty() ? "(all zero)" : s;
}

}  // namespace

void print_react_report(std::ostream& out, const replay_plan& plan, const react_outcome& r, bool verbose) {
  out << fmt::format("reacting replay: {} clients rebuilt, {} diverged, {} events injected, {:.2f} s\n",
                     r.clients.size(), r.diverged, r.events_injected, r.wall_seconds);
  if (plan.skipped_packets)
    out << fmt::format("not replayed: {} packets in {} flows no family reads\n", plan.skipped_packets, plan.skipped_flows);
  for (const auto& s : plan.skipped) out << fmt::format("  {} packets: {}\n", s.packets, s.what);
  // Overall: the divergences by counter.
  std::map<std::string, std::pair<std::size_t, std::int64_t>> by_counter;  // clients, live - captured summed
  for (const auto& c : r.clients)
    for (const auto& d : c.divergences) {
      auto& [clients, delta] = by_counter[d.counter];
      ++clients;
      delta += static_cast<std::int64_t>(d.live) - static_cast<std::int64_t>(d.captured);
    }
  for (const auto& [name, v] : by_counter)
    out << fmt::format("  {}: differs for {} clients ({:+} in all, live - captured)\n", name, v.first, v.second);
  for (const auto& c : r.clients) {
    const planned_client& p = plan.clients[c.index];
    const bool same = c.divergences.empty() && !c.failed;
    if (same && !verbose) continue;
    out << fmt::format("client {} ({} {}, captured at {}, start {:.3f} s, {} events){}\n", c.index, p.family, p.mode,
                       p.captured_address.to_string(), to_seconds(p.start), p.events.size(),
                       c.failed ? ": FAILED" : same ? ": as captured" : ": DIVERGED");
    for (const auto& d : c.divergences)
      out << fmt::format("    {}: captured {}, live {}\n", d.counter, d.captured, d.live);
    if (!c.live_only.empty()) out << "    live only: " << counters_text(c.live_only) << '\n';
    if (verbose) {
      out << "    captured: " << counters_text(p.captured) << '\n';
      out << "    live:     " << counters_text(c.live) << '\n';
    }
  }
}

nlohmann::json react_to_json(const std::string& capture, const replay_plan& plan, const react_outcome& r,
                             const react_options& o) {
  using nlohmann::json;
  auto obj = [](const counter_values& v) {
    json j = json::object();
    for (const auto& [n, x] : v) j[n] = x;
    return j;
  };
  json clients = json::array();
  for (const auto& c : r.clients) {
    const planned_client& p = plan.clients[c.index];
    json keys = json::object();
    for (const auto& [k, v] : p.keys) keys[k] = v;
    json div = json::array();
    for (const auto& d : c.divergences) div.push_back({{"counter", d.counter}, {"captured", d.captured}, {"live", d.live}});
    clients.push_back({{"family", p.family},
                       {"mode", p.mode},
                       {"keys", keys},
                       {"captured_address", p.captured_address.to_string()},
                       {"start_s", to_seconds(p.start)},
                       {"events_captured", p.events.size()},
                       {"events_injected", c.events_injected},
                       {"events_fetched", c.events_fetched},
                       {"failed", c.failed},
                       {"captured", obj(p.captured)},
                       {"live", obj(c.live)},
                       {"live_only", obj(c.live_only)},
                       {"divergences", div}});
  }
  json skipped = json::array();
  for (const auto& s : plan.skipped) skipped.push_back({{"what", s.what}, {"packets", s.packets}});
  return {{"schema", "nudge.replay.react/1"},
          {"capture", capture},
          {"format", plan.format},
          {"link_type", plan.link_type},
          {"packets", plan.packets},
          {"span_s", to_seconds(plan.span)},
          {"multiplier", o.multiplier},
          {"tolerance", o.tolerance},
          {"control", o.control.to_string()},
          {"clients", clients},
          {"diverged", r.diverged},
          {"events_injected", r.events_injected},
          {"wall_seconds", r.wall_seconds},
          {"not_replayed", {{"packets", plan.skipped_packets}, {"flows", plan.skipped_flows}, {"named", skipped}}},
          {"ok", r.ok()}};
}

}  // namespace nudge::replay
