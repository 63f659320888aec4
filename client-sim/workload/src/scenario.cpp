#include "nudge/sim/scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <toml++/toml.h>

#include "nudge/engine/registry.hpp"
#include "nudge/netsim/nat.hpp"
#include "nudge/protocols/registrations.hpp"

namespace nudge::sim {

using namespace std::chrono_literals;

// ---- durations and times of day ----------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

constexpr double max_duration_ns = 9.0e18;

std::optional<double> unit_ns(std::string_view u) {
  static constexpr std::pair<std::string_view, double> units[] = {
      {"ns", 1.0},        {"us", 1e3},        {"\xC2\xB5s", 1e3}, {"ms", 1e6},      {"s", 1e9},
      {"sec", 1e9},       {"secs", 1e9},      {"second", 1e9},    {"seconds", 1e9}, {"m", 60e9},
      {"min", 60e9},      {"mins", 60e9},     {"minute", 60e9},   {"minutes", 60e9}, {"h", 3600e9},
      {"hr", 3600e9},     {"hrs", 3600e9},    {"hour", 3600e9},   {"hours", 3600e9}, {"d", 86400e9},
      {"day", 86400e9},   {"days", 86400e9}};
  for (const auto& [name, ns] : units)
    if (u == name) return ns;
  return std::nullopt;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  double total = 0;
  std::size_t components = 0;
  bool unitless = false;
  while (!s.empty()) {
    std::size_t n = 0;
    while (n < s.size() && (is_digit(s[n]) || s[n] == '.')) ++n;
    if (n == 0) return std::nullopt;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, value);
    if (ec != std::errc{} || ptr != s.data() + n) return std::nullopt;
    s = trim(s.substr(n));
    std::size_t u = 0;
    while (u < s.size() && !is_digit(s[u]) && s[u] != '.' && s[u] != ' ' && s[u] != '\t') ++u;
    const std::string_view unit = s.substr(0, u);
    s = trim(s.substr(u));
    ++components;
    if (unit.empty()) {
      unitless = true;
      total += value * 1e9;
    } else {
      const auto ns = unit_ns(unit);
      if (!ns) return std::nullopt;
      total += value * *ns;
    }
  }
  if (unitless && components > 1) return std::nullopt;  // "1h 30": ambiguous
  if (!(total <= max_duration_ns)) return std::nullopt;
  return duration(static_cast<std::int64_t>(std::llround(total)));
}

std::string format_duration(duration d) {
  if (d == duration::zero()) return "0s";
  const std::int64_t ns = d.count();
  static constexpr std::pair<std::int64_t, const char*> units[] = {
      {3'600'000'000'000, "h"}, {60'000'000'000, "min"}, {1'000'000'000, "s"}, {1'000'000, "ms"}, {1'000, "us"}};
  for (const auto& [size, name] : units)
    if (ns % size == 0) return fmt::format("{}{}", ns / size, name);
  return fmt::format("{}ns", ns);
}

std::optional<duration> parse_time_of_day(std::string_view text) {
  const std::string_view s = trim(text);
  int h = 0, m = 0;
  double sec = 0;
  std::size_t i = 0;
  auto number = [&](int& out, std::size_t max_digits) {
    std::size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < max_digits) out = out * 10 + (s[i++] - '0');
    return i > start;
  };
  if (!number(h, 2) || i >= s.size() || s[i] != ':') return std::nullopt;
  ++i;
  const std::size_t minute_start = i;
  if (!number(m, 2) || i - minute_start != 2) return std::nullopt;
  if (i < s.size()) {
    if (s[i] != ':') return std::nullopt;
    ++i;
    const auto [ptr, ec] = std::from_chars(s.data() + i, s.data() + s.size(), sec);
    if (ec != std::errc{} || ptr != s.data() + s.size() || !is_digit(s[i]) || (s.size() - i >= 2 && !is_digit(s[i + 1])))
      return std::nullopt;
  }
  if (m > 59 || sec < 0 || sec >= 60) return std::nullopt;
  if (h > 24 || (h == 24 && (m != 0 || sec != 0))) return std::nullopt;
  return std::chrono::hours(h) + std::chrono::minutes(m) +
         duration(static_cast<std::int64_t>(std::llround(sec * 1e9)));
}

std::string format_time_of_day(duration d) {
  const auto h = std::chrono::duration_cast<std::chrono::hours>(d);
  const auto m = std::chrono::duration_cast<std::chrono::minutes>(d - h);
  const duration rest = d - h - m;
  if (rest == duration::zero()) return fmt::format("{:02}:{:02}", h.count(), m.count());
  if (rest % 1s == duration::zero())
    return fmt::format("{:02}:{:02}:{:02}", h.count(), m.count(), std::chrono::duration_cast<std::chrono::seconds>(rest).count());
  return fmt::format("{:02}:{:02}:{:012.9f}", h.count(), m.count(), to_seconds(rest));
}

std::string scenario_error::what() const {
  std::string out = source.empty() ? std::string("<scenario>") : source;
  if (line) {
    out += fmt::format(":{}", line);
    if (column) out += fmt::format(":{}", column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

// ---- values --------------------------------------------------------------------------------

namespace {

struct failure {
  std::string message;
  std::string key;                     // empty: the key being set
  toml::source_position position{};    // line 0: the key's position
};
using outcome = std::optional<failure>;
outcome fail(std::string message) { return failure{std::move(message), {}, {}}; }

std::string describe(const toml::node& n) {
  if (auto* s = n.as_string()) return fmt::format("string \"{}\"", s->get());
  if (auto* i = n.as_integer()) return fmt::format("integer {}", i->get());
  if (auto* f = n.as_floating_point()) return fmt::format("number {}", f->get());
  if (auto* b = n.as_boolean()) return fmt::format("boolean {}", b->get());
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  if (n.is_time()) return "a time of day";
  if (n.is_date()) return "a date";
  if (n.is_date_time()) return "a date-time";
  return "something else";
}

outcome expected(std::string_view what, const toml::node& n) { return fail(fmt::format("expected {}, got {}", what, describe(n))); }

outcome get_number(const toml::node& n, double& out, double lo, double hi, std::string_view what, bool allow_inf = false) {
  double v;
  if (auto* i = n.as_integer()) v = static_cast<double>(i->get());
  else if (auto* f = n.as_floating_point()) v = f->get();
  else return expected(what, n);
  if (std::isnan(v) || (std::isinf(v) && !allow_inf) || v < lo || v > hi) return expected(what, n);
  out = v;
  return {};
}

outcome get_uint(const toml::node& n, std::uint64_t& out, std::uint64_t lo, std::uint64_t hi, std::string_view what) {
  std::int64_t v;
  if (auto* i = n.as_integer()) v = i->get();
  else if (auto* f = n.as_floating_point(); f && std::floor(f->get()) == f->get() && std::abs(f->get()) < 9e18)
    v = static_cast<std::int64_t>(f->get());
  else return expected(what, n);
  if (v < 0 || static_cast<std::uint64_t>(v) < lo || static_cast<std::uint64_t>(v) > hi) return expected(what, n);
  out = static_cast<std::uint64_t>(v);
  return {};
}

template <class T>
outcome get_int_as(const toml::node& n, T& out, std::uint64_t lo, std::uint64_t hi, std::string_view what) {
  std::uint64_t v = 0;
  if (auto e = get_uint(n, v, lo, hi, what)) return e;
  out = static_cast<T>(v);
  return {};
}

outcome get_bool(const toml::node& n, bool& out) {
  if (auto* b = n.as_boolean()) {
    out = b->get();
    return {};
  }
  return expected("true or false", n);
}

outcome get_string(const toml::node& n, std::string& out, std::string_view what) {
  if (auto* s = n.as_string()) {
    out = s->get();
    return {};
  }
  return expected(what, n);
}

constexpr std::string_view duration_what = "a duration (seconds, or a string such as \"8h\", \"90s\", \"5min\", \"250ms\")";

outcome get_duration(const toml::node& n, duration& out, bool positive = false) {
  duration d;
  if (n.is_integer() || n.is_floating_point()) {
    const double s = n.is_integer() ? static_cast<double>(n.as_integer()->get()) : n.as_floating_point()->get();
    if (!std::isfinite(s) || std::abs(s) * 1e9 > max_duration_ns) return expected(duration_what, n);
    d = duration(static_cast<std::int64_t>(std::llround(s * 1e9)));
  } else if (auto* str = n.as_string()) {
    auto parsed = parse_duration(str->get());
    if (!parsed) return expected(duration_what, n);
    d = *parsed;
  } else {
    return expected(duration_what, n);
  }
  if (d < duration::zero()) return fail(fmt::format("must not be negative, got {}", describe(n)));
  if (positive && d == duration::zero()) return fail(fmt::format("must be positive, got {}", describe(n)));
  out = d;
  return {};
}

constexpr std::string_view time_what = "a time of day (\"09:00\", \"17:30:00\" or 09:00:00)";

outcome get_time_of_day(const toml::node& n, duration& out, bool allow_24) {
  duration d;
  if (auto* t = n.as_time()) {
    const toml::time v = t->get();
    d = std::chrono::hours(v.hour) + std::chrono::minutes(v.minute) + std::chrono::seconds(v.second) +
        duration(v.nanosecond);
  } else if (auto* s = n.as_string()) {
    auto parsed = parse_time_of_day(s->get());
    if (!parsed) return expected(time_what, n);
    d = *parsed;
  } else {
    return expected(time_what, n);
  }
  if (d >= 24h && !allow_24) return fail(fmt::format("must be before 24:00, got {}", describe(n)));
  out = d;
  return {};
}

// ---- the keys ----------------------------------------------------------------------------

// ---- other families' keys (key_spec: docs/architecture.md) --------------------------------------

// The declared key `key` of any registered family other than EMSMDB (whose
// keys are run_plan's own fields), or null.
const engine::key_spec* family_key_spec(std::string_view key) {
  for (const auto& f : engine::registry::instance().families()) {
    if (f.name == "emsmdb") continue;
    for (const auto& k : f.keys)
      if (k.key == key) return &k;
  }
  return nullptr;
}

// A family key's value as its settings text, checked against its declared type.
outcome family_key_text(engine::key_spec::type kind, const toml::node& v, std::string& out) {
  using type = engine::key_spec::type;
  switch (kind) {
    case type::boolean: {
      bool b = false;
      if (auto e = get_bool(v, b)) return e;
      out = b ? "true" : "false";
      return {};
    }
    case type::integer:
      if (auto* i = v.as_integer()) {
        out = std::to_string(i->get());
        return {};
      }
      return expected("an integer", v);
    case type::number: {
      double d = 0;
      if (auto e = get_number(v, d, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max(), "a number"))
        return e;
      out = fmt::format("{}", d);
      return {};
    }
    case type::duration: {
      duration d{};
      if (auto e = get_duration(v, d)) return e;
      out = format_duration(d);
      return {};
    }
    case type::text: return get_string(v, out, "a string");
  }
  return fail("unknown key type");
}

// A [[clients]] entry's `set = {...}`: its own values of family keys (nested
// tables flatten: {pollbus = {encoding = "json"}} is "pollbus.encoding").
outcome set_group_keys(client_group& g, const toml::node& v, const std::string& prefix) {
  const auto* t = v.as_table();
  if (!t) return expected("a table of family keys, e.g. {\"pollbus.encoding\" = \"json\"}", v);
  for (auto&& [k, value] : *t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (value.is_table()) {
      if (auto e = set_group_keys(g, value, key)) return e;
      continue;
    }
    const auto* spec = family_key_spec(key);
    const auto* emsmdb = protocol_family("emsmdb");
    if (!spec && emsmdb)
      for (const auto& s : emsmdb->keys)
        if (s.key == key) spec = &s;
    if (!spec) return failure{"no registered family has this key", "set." + key, k.source().begin};
    std::string text;
    if (auto e = family_key_text(spec->kind, value, text)) {
      e->key = "set." + key;
      return e;
    }
    // Sorted by key, as run_plan::family_keys, so a plan reads back equal.
    const auto at = std::lower_bound(g.keys.begin(), g.keys.end(), key,
                                     [](const auto& e, const std::string& name) { return e.first < name; });
    if (at != g.keys.end() && at->first == key) at->second = std::move(text);
    else g.keys.emplace(at, key, std::move(text));
  }
  return {};
}

using setter = std::function<outcome(run_plan&, const toml::node&)>;

struct key_def {
  scenario_key doc;
  int phase;  // -1 presets that other keys refine; 0 most keys; 1 the event rates (they depend on business hours and the MMPP shape)
  setter set;
};

constexpr std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
constexpr double inf = std::numeric_limits<double>::infinity();

outcome set_nat_field(nat_share& s, std::string_view field, const toml::node& v) {
  if (field == "preset") {
    std::string name;
    if (auto e = get_string(v, name, "a NAT preset name")) return e;
    if (name != "none" && !netsim::preset(name, protocol::ip_endpoint::v4(192, 0, 2, 99, 0)))
      return fail(fmt::format("unknown NAT preset \"{}\" (none, full-cone, restricted-cone, port-restricted-cone, "
                              "symmetric, linux-snat)",
                              name));
    s.preset = name;
    return {};
  }
  if (field == "fraction") return get_number(v, s.fraction, 0, inf, "a non-negative number");
  if (field == "udp_timeout") return get_duration(v, s.udp_timeout);
  if (field == "tcp_timeout") return get_duration(v, s.tcp_timeout);
  if (field == "clients_per_device")
    return get_int_as(v, s.clients_per_device, 1, std::numeric_limits<std::uint32_t>::max(), "an integer >= 1");
  if (field == "kernel") return get_bool(v, s.kernel);
  return fail("unknown key (a [[nat]] entry has preset, fraction, udp_timeout, tcp_timeout, clients_per_device, kernel)");
}

outcome set_nat_array(run_plan& p, const toml::node& v) {
  const auto* arr = v.as_array();
  if (!arr) return expected("an array of tables ([[nat]] entries)", v);
  std::vector<nat_share> mix;
  std::size_t index = 0;
  for (const auto& item : *arr) {
    const auto* t = item.as_table();
    if (!t) {
      failure f{fmt::format("expected a table (preset, fraction, udp_timeout, tcp_timeout, clients_per_device, kernel), got {}", describe(item)),
                fmt::format("nat[{}]", index), item.source().begin};
      return f;
    }
    nat_share s;
    for (auto&& [k, field] : *t) {
      if (auto e = set_nat_field(s, k.str(), field)) {
        e->key = fmt::format("nat[{}].{}", index, k.str());
        e->position = k.source().begin;
        return e;
      }
    }
    mix.push_back(std::move(s));
    ++index;
  }
  p.nat_mix = std::move(mix);
  return {};
}

// The EMSMDB group of `mode` gets `share`; a plan without one gains it, so
// the legacy [mix] keys keep working on any plan.
void set_emsmdb_share(run_plan& p, client::client_mode mode, double share) {
  if (const auto g = p.group_of(mode)) p.mix[*g].share = share;
  else p.mix.push_back({"emsmdb", std::string(client::to_string(mode)), share});
}

outcome set_client_field(client_group& g, std::string_view field, const toml::node& v) {
  if (field == "protocol") {
    if (auto e = get_string(v, g.protocol, "a protocol family name")) return e;
    if (!protocol_family(g.protocol)) return fail(fmt::format("unknown protocol \"{}\"", g.protocol));
    return {};
  }
  if (field == "mode") return get_string(v, g.mode, "a mode name");
  if (field == "share") return get_number(v, g.share, 0, inf, "a non-negative number");
  if (field == "label") return get_string(v, g.label, "a name for the group in results");
  if (field == "set") return set_group_keys(g, v, "");
  return fail("unknown key (a [[clients]] entry has protocol, mode, share, label, set)");
}

// [[clients]]: the whole list of client groups, in order (run_plan::validate
// checks each names a registered protocol and one of its modes).
outcome set_clients_array(run_plan& p, const toml::node& v) {
  const auto* arr = v.as_array();
  if (!arr) return expected("an array of tables ([[clients]] entries)", v);
  std::vector<client_group> groups;
  std::size_t index = 0;
  for (const auto& item : *arr) {
    const auto* t = item.as_table();
    if (!t) {
      failure f{fmt::format("expected a table (protocol, mode, share), got {}", describe(item)),
                fmt::format("clients[{}]", index), item.source().begin};
      return f;
    }
    client_group g;
    g.share = 1.0;  // an entry without a share counts as one share
    for (auto&& [k, field] : *t) {
      if (auto e = set_client_field(g, k.str(), field)) {
        e->key = fmt::format("clients[{}].{}", index, k.str());
        e->position = k.source().begin;
        return e;
      }
    }
    if (!t->contains("mode")) {
      failure f{"a [[clients]] entry needs a mode", fmt::format("clients[{}]", index), item.source().begin};
      return f;
    }
    groups.push_back(std::move(g));
    ++index;
  }
  p.mix = std::move(groups);
  return {};
}

using rate_form = event_rate_statement::form;

// The first state rate of a list: the other one starts as the plan's (so one
// alone keeps the other; both together replace both, in either order).
void state_rates_from_plan(run_plan& p) {
  auto& given = p.event_rate_as_given;
  if (given.given == rate_form::mmpp_state_rates) return;
  given.given = rate_form::mmpp_state_rates;
  given.high_per_client_hour = p.event_process.mmpp.high_rate(p.events_per_client_hour);
  given.low_per_client_hour = p.event_process.mmpp.low_rate(p.events_per_client_hour);
}

// Derived keys, resolved after every other key of a file or a --set list: the
// hourly mean (and the MMPP's burst ratio) from the rate as stated.
outcome resolve_derived(run_plan& p) {
  auto& given = p.event_rate_as_given;
  switch (given.given) {
    case rate_form::per_client_hour: break;
    case rate_form::per_client_day:
      p.events_per_client_hour = given.per_client_day / p.event_process.active_hours_per_day();
      break;
    case rate_form::mmpp_state_rates: {
      const double high = given.high_per_client_hour, low = given.low_per_client_hour;
      if (!(high > 0)) return failure{"must be positive", "events.mmpp.high_per_client_hour", {}};
      if (low > high)
        return failure{fmt::format("must not exceed high_per_client_hour ({})", high), "events.mmpp.low_per_client_hour", {}};
      p.events_per_client_hour = p.event_process.mmpp.set_rates(high, low);
      // A Poisson process has no states: what the rates stated is now its mean.
      if (p.event_process.kind != event_process_kind::mmpp) given.given = rate_form::per_client_hour;
      break;
    }
  }
  return {};
}

}  // namespace

bool apply_wire_preset(metrics::wire_model& w, std::string_view name) {
  const metrics::wire_model defaults;
  if (name == "windows") {
    w.tcp_options = defaults.tcp_options;
    w.syn_options = defaults.syn_options;
    w.delayed_ack = defaults.delayed_ack;
    w.quick_acks = defaults.quick_acks;
    w.idle_quick_ack = defaults.idle_quick_ack;
    return true;
  }
  if (name == "linux") {
    w.tcp_options = 12;  // timestamps (NOP NOP TS) on every segment
    w.syn_options = 20;  // MSS, SACK-permitted + timestamps, window scale
    w.delayed_ack = std::chrono::milliseconds(40);  // TCP_DELACK_MIN: what an interactive exchange on lo sees
    w.quick_acks = 1;  // quick-ACK mode at connection start: the bind and bind_ack are ACKed at once
    w.idle_quick_ack = std::chrono::milliseconds(200);  // and again after a gap over the RTO (TCP_RTO_MIN)
    return true;
  }
  return false;
}

namespace {

std::vector<key_def> make_keys() {
  std::vector<key_def> k;
  auto add = [&](std::string_view key, std::string_view type, std::string_view help, std::string_view example,
                 setter set, int phase = 0) { k.push_back({{key, type, help, example}, phase, std::move(set)}); };
  auto dur = [](duration run_plan::*field, bool positive = false) {
    return [field, positive](run_plan& p, const toml::node& v) { return get_duration(v, p.*field, positive); };
  };
  auto flag = [](bool run_plan::*field) {
    return [field](run_plan& p, const toml::node& v) { return get_bool(v, p.*field); };
  };

  // [run]
  add("run.clients", "integer >= 1", "emulated clients, one mailbox each", "500", [](run_plan& p, const toml::node& v) {
    return get_int_as(v, p.clients, 1, u32_max, "an integer >= 1");
  });
  add("run.seed", "integer >= 0", "seeds every random choice (modes, event times, jitter, NAT ports)", "42",
      [](run_plan& p, const toml::node& v) -> outcome {
        if (auto* s = v.as_string()) {  // the full 64-bit range, as a string of digits
          std::uint64_t seed = 0;
          const std::string& t = s->get();
          const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), seed);
          if (ec != std::errc{} || ptr != t.data() + t.size() || t.empty()) return expected("an integer >= 0", v);
          p.seed = seed;
          return {};
        }
        return get_uint(v, p.seed, 0, std::numeric_limits<std::uint64_t>::max(), "an integer >= 0");
      });
  add("run.duration", "duration > 0", "how long mail arrives; per-hour rates are per this length", "\"2h\"",
      dur(&run_plan::length, true));
  add("run.ramp_up", "duration", "clients start evenly spread over this", "\"90s\"", dur(&run_plan::ramp_up));
  add("run.drain", "duration", "after the run, no new mail, so late fetches still count", "\"2min\"",
      dur(&run_plan::drain));

  // [mix]: the EMSMDB groups' shares (the short form of [[clients]]).
  static constexpr std::string_view mix_keys[] = {"mix.poll", "mix.push", "mix.async"};
  for (std::size_t m = 0; m < client::client_mode_count; ++m) {
    add(mix_keys[m], "number >= 0", "share of clients in this mode (normalised; in a file, modes not given are 0)", "0.25",
        [m](run_plan& p, const toml::node& v) -> outcome {
          double share = 0;
          if (auto e = get_number(v, share, 0, inf, "a non-negative number")) return e;
          set_emsmdb_share(p, static_cast<client::client_mode>(m), share);
          return {};
        });
  }
  add("clients", "array of tables", "client groups ([[clients]] entries: protocol, mode, share); replaces [mix]",
      "[{protocol=\"emsmdb\", mode=\"push\", share=0.4}]", set_clients_array);

  // [poll]
  add("poll.interval", "duration", "between polls (poll clients; push clients until the first ping); 0 = the server's "
      "polls_max_ms", "\"30s\"", dur(&run_plan::poll_interval));
  add("poll.jitter", "boolean", "wait U[1x, 2x] the interval between polls, as Outlook did", "true",
      flag(&run_plan::poll_jitter));

  // [push]
  add("push.context_size", "integer 0..16", "bytes of the registered context (more is ecTooBig)", "16",
      [](run_plan& p, const toml::node& v) {
        return get_int_as(v, p.context_size, 0, protocol::max_push_context, "an integer from 0 to 16");
      });
  add("push.poll_until_first_ping", "boolean", "poll until the first matching datagram (MS-OXCNOTIF); false: pure push",
      "false", flag(&run_plan::poll_until_first_ping));
  add("push.cookie", "boolean", "send a reachability cookie to the notifier after registering (verified policy)",
      "true", flag(&run_plan::send_cookie));
  add("push.keepalive", "duration", "resend the cookie this often to hold a NAT pinhole (0 = never)", "\"25s\"",
      dur(&run_plan::keepalive_interval));
  add("push.fallback_check", "duration", "once relying on pings, still check this often; fall back to polling when a "
      "check finds unannounced mail (0 = never)", "\"2min\"", dur(&run_plan::fallback_check_interval));

  // [events]
  add("events.process", "\"poisson\" | \"mmpp\"", "how events arrive: a constant rate, or bursty (two-state MMPP)",
      "\"mmpp\"", [](run_plan& p, const toml::node& v) -> outcome {
        std::string s;
        if (auto e = get_string(v, s, "\"poisson\" or \"mmpp\"")) return e;
        auto kind = parse_event_process_kind(s);
        if (!kind) return expected("\"poisson\" or \"mmpp\"", v);
        p.event_process.kind = *kind;
        return {};
      });
  // The rate keys (phase 1) state the rate; the derived ones (per_client_day, the
  // MMPP's state rates) are resolved into per_client_hour by resolve_derived
  // once every other key is in, whatever the order they came in.
  add("events.per_client_hour", "number >= 0", "mean events per mailbox per hour (per business hour when business "
      "hours are on)", "12.5", [](run_plan& p, const toml::node& v) -> outcome {
        if (auto e = get_number(v, p.events_per_client_hour, 0, inf, "a non-negative number")) return e;
        p.event_rate_as_given.given = rate_form::per_client_hour;
        return {};
      }, 1);
  add("events.per_client_day", "number >= 0", "mean events per mailbox per day (a day's active hours: the business "
      "window, or 24 h); derives per_client_hour", "50", [](run_plan& p, const toml::node& v) -> outcome {
        double per_day;
        if (auto e = get_number(v, per_day, 0, inf, "a non-negative number")) return e;
        p.event_rate_as_given.given = rate_form::per_client_day;
        p.event_rate_as_given.per_client_day = per_day;
        return {};
      }, 1);
  add("events.business_hours.enabled", "boolean", "events only within business hours (setting any other "
      "business_hours key turns this on)", "true", [](run_plan& p, const toml::node& v) {
        return get_bool(v, p.event_process.hours.enabled);
      });
  add("events.business_hours.start", "time of day", "start of the business window", "\"08:30\"",
      [](run_plan& p, const toml::node& v) { return get_time_of_day(v, p.event_process.hours.start, false); });
  add("events.business_hours.end", "time of day", "end of the window (exclusive; before start: across midnight)",
      "\"18:00\"", [](run_plan& p, const toml::node& v) { return get_time_of_day(v, p.event_process.hours.end, true); });
  add("events.business_hours.run_starts_at", "time of day", "time of day at the start of the run (\"24h\" days; "
      "default: the window's start)", "\"07:00\"", [](run_plan& p, const toml::node& v) -> outcome {
        duration d;
        if (auto e = get_time_of_day(v, d, false)) return e;
        p.event_process.hours.run_starts_at = d;
        return {};
      });
  add("events.business_hours.day", "\"24h\" | \"business\"", "a 24-hour day with nights, or a day that is just the "
      "business hours", "\"business\"", [](run_plan& p, const toml::node& v) -> outcome {
        std::string s;
        if (auto e = get_string(v, s, "\"24h\" or \"business\"")) return e;
        auto d = parse_day_kind(s);
        if (!d) return expected("\"24h\" or \"business\"", v);
        p.event_process.hours.day = *d;
        return {};
      });
  add("events.mmpp.burst_ratio", "number >= 1 or inf", "high rate / low rate (inf: silent between bursts); keeps the "
      "mean", "4", [](run_plan& p, const toml::node& v) -> outcome {
        if (auto e = get_number(v, p.event_process.mmpp.burst_ratio, 1, inf, "a number >= 1 (or inf)", true)) return e;
        // A ratio replaces state rates given before (a file or an earlier --set list): the mean stays.
        if (p.event_rate_as_given.given == rate_form::mmpp_state_rates)
          p.event_rate_as_given.given = rate_form::per_client_hour;
        return {};
      }, 1);
  add("events.mmpp.high_mean", "duration > 0", "mean time in the high (busy) state", "\"5min\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.event_process.mmpp.high_mean, true); });
  add("events.mmpp.low_mean", "duration > 0", "mean time in the low (quiet) state", "\"1h\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.event_process.mmpp.low_mean, true); });
  add("events.mmpp.high_per_client_hour", "number > 0", "rate in the high state; with low_per_client_hour derives "
      "the mean and burst ratio (the override keeps the low rate)", "100", [](run_plan& p, const toml::node& v) -> outcome {
        double high;
        if (auto e = get_number(v, high, 0, inf, "a positive number")) return e;
        state_rates_from_plan(p);
        p.event_rate_as_given.high_per_client_hour = high;
        return {};
      }, 1);
  add("events.mmpp.low_per_client_hour", "number >= 0", "rate in the low state (the override keeps the high rate)",
      "0.5", [](run_plan& p, const toml::node& v) -> outcome {
        double low;
        if (auto e = get_number(v, low, 0, inf, "a non-negative number")) return e;
        state_rates_from_plan(p);
        p.event_rate_as_given.low_per_client_hour = low;
        return {};
      }, 1);

  // [server]
  add("server.policy", "\"legacy\" | \"peer\" | \"verified\"", "where pings go: the registered SOCKADDR, the TCP "
      "peer's address, or the cookie's source", "\"verified\"", [](run_plan& p, const toml::node& v) -> outcome {
        std::string s;
        if (auto e = get_string(v, s, "\"legacy\", \"peer\" or \"verified\"")) return e;
        auto policy = notifier::parse_callback_policy(s);
        if (!policy) return expected("\"legacy\", \"peer\" or \"verified\"", v);
        p.server.policy = *policy;
        return {};
      });
  add("server.polls_max_ms", "integer", "pcmsPollsMax returned by EcDoConnectEx", "30000",
      [](run_plan& p, const toml::node& v) {
        return get_int_as(v, p.server.polls_max_ms, 0, u32_max, "an integer from 0 to 4294967295");
      });
  add("server.ping_resend", "duration", "resend a ping while its details stay unfetched", "\"30s\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.server.ping_resend); });
  add("server.async_hold", "duration", "how long the notifier holds an EcDoAsyncWaitEx", "\"2min\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.server.async_hold); });
  add("server.push_enabled", "boolean", "false: EcRRegisterPushNotification answers ecNotSupported", "false",
      [](run_plan& p, const toml::node& v) { return get_bool(v, p.server.push_enabled); });
  add("server.async_enabled", "boolean", "false: EcDoAsyncConnectEx answers ecRejected", "false",
      [](run_plan& p, const toml::node& v) { return get_bool(v, p.server.async_enabled); });
  add("server.max_pending_per_mailbox", "integer >= 1", "queued events per mailbox before new ones are dropped", "500",
      [](run_plan& p, const toml::node& v) {
        return get_int_as(v, p.server.max_pending_per_mailbox, 1, std::numeric_limits<std::uint32_t>::max(),
                          "an integer >= 1");
      });

  // [network]
  add("network.one_way_delay", "duration", "one-way delay between each client and the notifier", "\"20ms\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.link.one_way_delay); });
  add("network.jitter", "duration", "uniform extra delay in [0, jitter] (TCP keeps order)", "\"5ms\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.link.jitter); });
  add("network.udp_loss", "number 0..1", "probability that a datagram is lost", "0.01",
      [](run_plan& p, const toml::node& v) { return get_number(v, p.link.udp_loss, 0, 1, "a probability from 0 to 1"); });
  add("network.rate", "number >= 0", "each client's access link rate in bits per second, each way (0: unlimited)",
      "64000", [](run_plan& p, const toml::node& v) {
        return get_number(v, p.link.rate_bps, 0, std::numeric_limits<double>::infinity(), "a non-negative number");
      });

  // [wire]
  add("wire.profile", "\"faithful\" | \"abstract\"", "real message sizes with headers and ACKs, or every message "
      "abstract_message_bytes in one TSDU (the seed article's arithmetic)", "\"abstract\"",
      [](run_plan& p, const toml::node& v) -> outcome {
        std::string s;
        if (auto e = get_string(v, s, "\"faithful\" or \"abstract\"")) return e;
        if (s == "faithful") p.wire.abstract_message_bytes = 0;
        else if (s == "abstract") {
          if (p.wire.abstract_message_bytes == 0) p.wire.abstract_message_bytes = 100;
        } else {
          return expected("\"faithful\" or \"abstract\"", v);
        }
        return {};
      });
  // Applied before the other wire keys of a file (phase -1), which refine it.
  add("wire.preset", "\"windows\" | \"linux\"", "sets the TCP options and ACK behaviour of the peers: windows "
      "(the default: no options on data segments, 12 on SYN, 200 ms delayed ACK) or linux (as on Linux loopback: "
      "12 bytes of timestamps on every segment, 20 on SYN, 40 ms delayed ACK, the first data each end receives "
      "ACKed at once, and data after 200 ms of quiet unless the receiver is interactive)", "\"linux\"",
      [](run_plan& p, const toml::node& v) -> outcome {
        std::string s;
        if (auto e = get_string(v, s, "\"windows\" or \"linux\"")) return e;
        if (!apply_wire_preset(p.wire, s)) return expected("\"windows\" or \"linux\"", v);
        return {};
      },
      -1);
  add("wire.abstract_message_bytes", "integer >= 0", "abstract profile: bytes per message (default 100); setting it "
      "selects the abstract profile, 0 the faithful one", "200", [](run_plan& p, const toml::node& v) {
        return get_int_as(v, p.wire.abstract_message_bytes, 0, u32_max, "an integer >= 0");
      });
  add("wire.ip_header", "integer 20..60", "IPv4 header bytes", "24",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.ip_header, 20, 60, "an integer from 20 to 60"); });
  add("wire.tcp_header", "integer 20..60", "TCP header bytes (without options)", "24",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.tcp_header, 20, 60, "an integer from 20 to 60"); });
  add("wire.tcp_options", "integer 0..40", "TCP option bytes on every segment (12: Linux timestamps)", "12",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.tcp_options, 0, 40, "an integer from 0 to 40"); });
  add("wire.syn_options", "integer 0..40", "TCP option bytes on SYN and SYN-ACK", "20",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.syn_options, 0, 40, "an integer from 0 to 40"); });
  add("wire.udp_header", "integer 8..64", "UDP header bytes", "16",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.udp_header, 8, 64, "an integer from 8 to 64"); });
  add("wire.mss", "integer 1..65495", "TCP maximum segment size", "536",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.mss, 1, 65495, "an integer from 1 to 65495"); });
  add("wire.delayed_ack", "duration", "delayed-ACK time of the pure-ACK estimate", "\"40ms\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.wire.delayed_ack); });
  add("wire.quick_acks", "integer 0..16", "data segments each end of a new connection ACKs at once (Linux's quick-ACK "
      "mode; 0: Windows)", "1",
      [](run_plan& p, const toml::node& v) { return get_int_as(v, p.wire.quick_acks, 0, 16, "an integer from 0 to 16"); });
  add("wire.idle_quick_ack", "duration", "data arriving this long after the previous data is ACKed at once unless the "
      "receiver last answered within the ACK delay (Linux: its RTO, 200 ms on loopback; 0: Windows, never)", "\"200ms\"",
      [](run_plan& p, const toml::node& v) { return get_duration(v, p.wire.idle_quick_ack); });

  // [[nat]]
  add("nat", "array of tables", "who sits behind which NAT ([[nat]] entries: preset, fraction, udp_timeout, tcp_timeout, clients_per_device, kernel)",
      "[{preset=\"symmetric\", fraction=1}]", set_nat_array);
  add("nat.N.preset", "string", "none, full-cone, restricted-cone, port-restricted-cone, symmetric, linux-snat",
      "\"linux-snat\"", nullptr);
  add("nat.N.fraction", "number >= 0", "share of the clients behind this kind of NAT (normalised)", "0.5", nullptr);
  add("nat.N.udp_timeout", "duration", "UDP mapping timeout (0: the preset's own)", "\"60s\"", nullptr);
  add("nat.N.tcp_timeout", "duration", "TCP established idle timeout (0: the preset's own)", "\"5min\"", nullptr);
  add("nat.N.kernel", "boolean", "--clock real: build this NAT in the Linux kernel, in network namespaces (root; "
      "docs/kernel-nat.md)", "true", nullptr);
  add("nat.N.clients_per_device", "integer >= 1", "clients behind each device of this kind, sharing its public "
      "address (1: one device per client)", "4", nullptr);

  // Every other registered family's keys ([pollbus] encoding = "json"), kept as text in run_plan::family_keys.
  protocols::register_all();
  static std::deque<std::string> names;  // the key table holds views
  for (const auto& f : engine::registry::instance().families()) {
    if (f.name == "emsmdb") continue;
    for (const auto& spec : f.keys) {
      if (std::any_of(k.begin(), k.end(), [&](const key_def& d) { return d.doc.key == spec.key; })) continue;
      const std::string& key = names.emplace_back(spec.key);
      const std::string& doc = names.emplace_back(spec.doc);
      static constexpr std::string_view type_names[] = {"boolean", "integer", "number", "duration", "string"};
      const std::string& example = names.emplace_back(spec.kind == engine::key_spec::type::text ||
                                                              spec.kind == engine::key_spec::type::duration
                                                          ? "\"" + spec.default_value + "\""
                                                          : spec.default_value);
      add(key, type_names[static_cast<std::size_t>(spec.kind)], doc, example,
          [key = spec.key, kind = spec.kind](run_plan& p, const toml::node& v) -> outcome {
            std::string text;
            if (auto e = family_key_text(kind, v, text)) return e;
            p.set_family_key(key, std::move(text));
            return {};
          });
    }
  }
  return k;
}

const std::vector<key_def>& keys() {
  static const std::vector<key_def> k = make_keys();
  return k;
}

// [report] thresholds = ["...", ...]: what nudge-report checks on this scenario's
// result (docs/report.md). Not a run setting, so not among keys() / scenario_keys().
const key_def report_thresholds_key{
    {"report.thresholds", "array of strings", "thresholds nudge-report checks on the result (docs/report.md)",
     "[\"push.missed == 0\"]"},
    0, [](run_plan& p, const toml::node& v) -> outcome {
      const auto* arr = v.as_array();
      if (!arr) return expected("an array of strings (threshold expressions, docs/report.md)", v);
      std::vector<std::string> out;
      for (const auto& item : *arr) {
        if (!item.is_string()) return failure{fmt::format("expected a string, got {}", describe(item)), {}, item.source().begin};
        out.push_back(item.as_string()->get());
      }
      p.report_thresholds = std::move(out);
      return {};
    }};

const key_def* find_key(std::string_view path) {
  for (const auto& k : keys())
    if (k.doc.key == path && k.set) return &k;
  if (path == report_thresholds_key.doc.key) return &report_thresholds_key;
  return nullptr;
}

bool is_table_prefix(std::string_view path) {
  if (path == "report") return true;
  for (const auto& k : keys())
    if (k.doc.key.size() > path.size() && k.doc.key.substr(0, path.size()) == path && k.doc.key[path.size()] == '.')
      return true;
  return false;
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

std::string_view last_part(std::string_view k) {
  const auto dot = k.rfind('.');
  return dot == std::string_view::npos ? k : k.substr(dot + 1);
}

std::string unknown_key_message(std::string_view path) {
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& k : keys()) {
    if (!k.set && k.doc.key.substr(0, 4) != "nat.") continue;
    std::size_t d = edit_distance(path, k.doc.key);
    if (last_part(path) == last_part(k.doc.key)) d = std::min<std::size_t>(d, 1);  // right key, wrong table
    if (d < best_distance) best_distance = d, best = k.doc.key;
  }
  if (!best.empty() && best_distance <= std::max<std::size_t>(2, path.size() / 4))
    return fmt::format("unknown key (did you mean '{}'?)", best);
  return "unknown key (docs/scenarios.md lists the keys)";
}

// ---- loading ---------------------------------------------------------------------------------

struct leaf {
  std::string path;
  const toml::node* value;
  toml::source_position at;
  const key_def* def;
};

scenario_error make_error(std::string_view source, const toml::source_position& at, std::string key, std::string message) {
  return {std::string(source), at.line, at.column, std::move(key), std::move(message)};
}

std::optional<scenario_error> collect(const toml::table& t, const std::string& prefix, std::string_view source,
                                      std::vector<leaf>& out) {
  for (auto&& [k, v] : t) {
    const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const key_def* def = find_key(path)) {
      out.push_back({path, &v, k.source().begin, def});
    } else if (v.is_table() && is_table_prefix(path)) {
      if (auto e = collect(*v.as_table(), path, source, out)) return e;
    } else if (is_table_prefix(path)) {
      return make_error(source, k.source().begin, path,
                        fmt::format("expected a table ([{}]), got {}", path, describe(v)));
    } else {
      return make_error(source, k.source().begin, path, unknown_key_message(path));
    }
  }
  return std::nullopt;
}

const toml::node* at_path(const toml::table& root, std::string_view path) {
  return root.at_path(path).node();
}

toml::source_position key_position(const std::vector<leaf>& leaves, std::string_view path) {
  for (const auto& l : leaves)
    if (l.path == path) return l.at;
  return {};
}

std::optional<scenario_error> apply_leaf(run_plan& plan, const leaf& l, std::string_view source) {
  if (auto f = l.def->set(plan, *l.value)) {
    return make_error(source, f->position.line ? f->position : l.at, f->key.empty() ? l.path : f->key, f->message);
  }
  return std::nullopt;
}

// [[clients]] states every group; [mix] states the EMSMDB shares: one file says one or the other.
bool has_clients_and_mix(const toml::table& root) {
  return root.contains("clients") && root.contains("mix");
}

// Whole-plan checks (run_plan::validate) have no single key; point at the table they concern when the file has it.
std::optional<scenario_error> check_plan(const run_plan& plan, std::string_view source, const toml::table& root) {
  const std::string e = plan.validate();
  if (e.empty()) return std::nullopt;
  scenario_error err{std::string(source), 0, 0, {}, "invalid plan: " + e};
  static constexpr std::pair<std::string_view, std::string_view> concerns[] = {
      {"NAT", "nat"}, {"mix fractions", "mix"}, {"client group", "clients"}, {"business hours", "events.business_hours"}, {"MMPP", "events.mmpp"}};
  for (const auto& [words, key] : concerns) {
    if (e.find(words) == std::string::npos) continue;
    err.key = key;
    if (const auto* n = root.at_path(key).node()) {
      err.line = n->source().begin.line;
      err.column = n->source().begin.column;
    }
    break;
  }
  return err;
}

}  // namespace

scenario_result parse_scenario(std::string_view text, std::string_view source, const run_plan& base) {
  toml::table root;
  try {
    root = toml::parse(text, std::string(source));
  } catch (const toml::parse_error& e) {
    return scenario_error{std::string(source), e.source().begin.line, e.source().begin.column, {},
                          std::string(e.description())};
  }
  std::vector<leaf> leaves;
  if (auto e = collect(root, "", source, leaves)) return *e;
  auto has = [&](std::string_view path) { return std::any_of(leaves.begin(), leaves.end(), [&](const leaf& l) { return l.path == path; }); };
  auto conflict = [&](std::string_view key, std::string message) {
    return make_error(source, key_position(leaves, key), std::string(key), std::move(message));
  };

  run_plan plan = base;
  // A [mix] table lists the modes in use: the others are 0.
  if (const auto* mix = at_path(root, "mix"); mix && mix->is_table())
    for (auto& g : plan.mix)
      if (g.protocol == "emsmdb") g.share = 0;
  if (has_clients_and_mix(root))
    return conflict("clients", "give [[clients]] or [mix], not both");
  // A [events.business_hours] table turns business hours on (unless it says enabled = false).
  if (const auto* bh = at_path(root, "events.business_hours"); bh && bh->is_table()) plan.event_process.hours.enabled = true;

  if (has("events.per_client_hour") && has("events.per_client_day"))
    return conflict("events.per_client_day", "give events.per_client_hour or events.per_client_day, not both");
  const bool high = has("events.mmpp.high_per_client_hour"), low = has("events.mmpp.low_per_client_hour");
  if (high != low)
    return conflict(high ? "events.mmpp.high_per_client_hour" : "events.mmpp.low_per_client_hour",
                    "give the MMPP's high_per_client_hour and low_per_client_hour together (or per_client_hour/day "
                    "and burst_ratio)");
  if (high) {
    for (std::string_view other : {"events.per_client_hour", "events.per_client_day", "events.mmpp.burst_ratio"})
      if (has(other))
        return conflict(other, "the MMPP's high_per_client_hour and low_per_client_hour already set the mean rate and "
                               "burst ratio");
  }
  if (const auto* prof = at_path(root, "wire.profile"); prof && prof->is_string() && prof->as_string()->get() == "faithful") {
    if (const auto* bytes = at_path(root, "wire.abstract_message_bytes");
        bytes && !(bytes->is_integer() && bytes->as_integer()->get() == 0))
      return conflict("wire.abstract_message_bytes", "only the abstract profile has a message size (wire.profile is "
                                                     "\"faithful\")");
  }

  // Every setting first, then the rate keys, then what derives from them.
  std::stable_sort(leaves.begin(), leaves.end(), [](const leaf& a, const leaf& b) { return a.def->phase < b.def->phase; });
  auto derive = [&]() -> std::optional<scenario_error> {
    if (auto f = resolve_derived(plan)) return make_error(source, key_position(leaves, f->key), f->key, f->message);
    return std::nullopt;
  };
  bool derived = false;
  for (const auto& l : leaves) {
    if (l.def->phase > 0 && !derived) {
      if (auto e = derive()) return *e;
      derived = true;
    }
    if (auto e = apply_leaf(plan, l, source)) return *e;
  }
  if (auto e = derive()) return *e;
  if (const auto* mm = at_path(root, "events.mmpp"); mm && mm->is_table() && plan.event_process.kind != event_process_kind::mmpp)
    return make_error(source, mm->source().begin, "events.mmpp",
                      "MMPP parameters given, but events.process is not \"mmpp\" (add process = \"mmpp\" to [events])");
  if (auto e = check_plan(plan, source, root)) return *e;
  return plan;
}

scenario_result parse_scenario(std::string_view text, std::string_view source) {
  return parse_scenario(text, source, run_plan{});
}

scenario_result load_scenario(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return scenario_error{path.string(), 0, 0, {}, "cannot open the scenario file"};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_scenario(text.str(), path.string());
}

// ---- overrides ---------------------------------------------------------------------------------

namespace {

constexpr std::string_view override_source = "--set";

// "nat[2].preset" -> "nat.2.preset"
std::string normalise_key(std::string_view key) {
  std::string out;
  for (char c : trim(key)) {
    if (c == '[') out += '.';
    else if (c != ']') out += c;
  }
  return out;
}

// A value as a scenario file would give it; a bare word that is not TOML is a string.
struct parsed_value {
  toml::table holder;
  const toml::node* node = nullptr;
};
void parse_value(std::string_view text, parsed_value& out) {
  const std::string_view v = trim(text);
  try {
    out.holder = toml::parse("v = " + std::string(v));
    if (out.holder.size() == 1 && out.holder.contains("v")) {
      out.node = out.holder.get("v");
      return;
    }
  } catch (const toml::parse_error&) {
  }
  out.holder = toml::table{};
  out.holder.insert("v", std::string(v));
  out.node = out.holder.get("v");
}

std::optional<scenario_error> override_error(std::string key, std::string message) {
  return scenario_error{std::string(override_source), 0, 0, std::move(key), std::move(message)};
}

// One KEY=VALUE of a --set list, parsed and checked against the key table.
struct set_item {
  std::string key;      // normalised: nat[0].preset -> nat.0.preset
  parsed_value value;
  const key_def* def;   // null for nat.N.field
};

std::optional<scenario_error> parse_assignment(std::string_view text, set_item& out) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) return override_error(std::string(trim(text)), "expected KEY=VALUE, e.g. run.clients=500");
  out.key = normalise_key(text.substr(0, eq));
  if (out.key.empty()) return override_error(out.key, "expected KEY=VALUE, e.g. run.clients=500");
  parse_value(text.substr(eq + 1), out.value);
  out.def = nullptr;
  if (out.key.size() > 4 && out.key.substr(0, 4) == "nat.") return std::nullopt;
  out.def = find_key(out.key);
  if (!out.def) return override_error(out.key, unknown_key_message(out.key));
  return std::nullopt;
}

// Applies one assignment to `plan` without the whole-plan check.
std::optional<scenario_error> apply_assignment(run_plan& plan, const set_item& a) {
  const std::string& key = a.key;
  if (a.def) {
    if (auto f = a.def->set(plan, *a.value.node)) return override_error(f->key.empty() ? key : f->key, f->message);
    return std::nullopt;
  }
  // NAT entries by index: nat.N.field
  const std::string_view rest = std::string_view(key).substr(4);
  const auto dot = rest.find('.');
  std::size_t index = 0;
  const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + (dot == std::string_view::npos ? rest.size() : dot), index);
  if (ec != std::errc{} || dot == std::string_view::npos || ptr != rest.data() + dot)
    return override_error(key, "a NAT entry is nat[N].preset, nat[N].fraction, nat[N].udp_timeout, nat[N].tcp_timeout, nat[N].clients_per_device or nat[N].kernel");
  if (index > plan.nat_mix.size())
    return override_error(key, fmt::format("there are {} NAT entries: N may be 0..{} ({} appends one)",
                                           plan.nat_mix.size(), plan.nat_mix.size(), plan.nat_mix.size()));
  nat_share share = index < plan.nat_mix.size() ? plan.nat_mix[index] : nat_share{};
  if (auto f = set_nat_field(share, rest.substr(dot + 1), *a.value.node)) return override_error(key, f->message);
  if (index < plan.nat_mix.size()) plan.nat_mix[index] = share;
  else plan.nat_mix.push_back(share);
  return std::nullopt;
}

// Keys that state the same thing two ways, refused in one list as in one file
// (which one wins would otherwise depend on the order they were typed in).
std::optional<scenario_error> list_conflicts(const std::deque<set_item>& list) {
  auto given = [&](std::string_view key) {
    return std::any_of(list.begin(), list.end(), [&](const set_item& a) { return a.key == key; });
  };
  if (given("events.per_client_hour") && given("events.per_client_day"))
    return override_error("events.per_client_day", "give events.per_client_hour or events.per_client_day, not both");
  for (std::string_view rate : {"events.mmpp.high_per_client_hour", "events.mmpp.low_per_client_hour"}) {
    if (!given(rate)) continue;
    for (std::string_view other : {"events.per_client_hour", "events.per_client_day", "events.mmpp.burst_ratio"})
      if (given(other))
        return override_error(std::string(other), fmt::format("{} already sets the mean rate and burst ratio (with the "
                                                              "other state's rate)", rate));
  }
  // wire.profile reads abstract_message_bytes: both in one list must agree.
  const auto profile = std::find_if(list.begin(), list.end(), [](const set_item& a) { return a.key == "wire.profile"; });
  const auto bytes =
      std::find_if(list.begin(), list.end(), [](const set_item& a) { return a.key == "wire.abstract_message_bytes"; });
  if (profile != list.end() && bytes != list.end() && profile->value.node->is_string()) {
    const bool faithful = profile->value.node->as_string()->get() == "faithful";
    const bool zero = bytes->value.node->is_integer() && bytes->value.node->as_integer()->get() == 0;
    if (faithful != zero)
      return override_error("wire.abstract_message_bytes",
                            faithful ? "only the abstract profile has a message size (wire.profile is \"faithful\")"
                                     : "0 selects the faithful profile, but wire.profile is \"abstract\"");
  }
  return std::nullopt;
}

}  // namespace

std::optional<scenario_error> apply_override(run_plan& plan, std::string_view assignment) {
  return apply_overrides(plan, {std::string(assignment)});
}

// Order-free: every setting of the list first (in the order given: a key given
// twice keeps its last value), then the rate keys, then the derived values, so
// `per_client_day=80 business_hours.end=19:00` and the reverse give one plan.
std::optional<scenario_error> apply_overrides(run_plan& plan, const std::vector<std::string>& assignments) {
  std::deque<set_item> list;  // stable addresses: parsed values point into their own tables
  for (const auto& text : assignments)
    if (auto e = parse_assignment(text, list.emplace_back())) return e;
  if (auto e = list_conflicts(list)) return e;

  run_plan work = plan;
  // Setting a business_hours key turns business hours on, unless the list itself says `enabled`.
  auto is = [&](auto pred) { return std::any_of(list.begin(), list.end(), pred); };
  if (is([](const set_item& a) { return a.key.rfind("events.business_hours.", 0) == 0; }) &&
      !is([](const set_item& a) { return a.key == "events.business_hours.enabled"; }))
    work.event_process.hours.enabled = true;

  auto phase = [](const set_item& a) { return a.def ? a.def->phase : 0; };
  int first_phase = 0, last_phase = 1;  // every phase a key of the table has, in order
  for (const auto& k : keys()) first_phase = std::min(first_phase, k.phase), last_phase = std::max(last_phase, k.phase);
  for (int p = first_phase; p <= last_phase; ++p) {
    if (auto f = resolve_derived(work)) return override_error(f->key, f->message);
    for (const auto& a : list)
      if (phase(a) == p)
        if (auto e = apply_assignment(work, a)) return e;
  }
  if (auto f = resolve_derived(work)) return override_error(f->key, f->message);

  const auto mmpp_key = std::find_if(list.rbegin(), list.rend(), [](const set_item& a) { return a.key.rfind("events.mmpp.", 0) == 0; });
  if (mmpp_key != list.rend() && work.event_process.kind != event_process_kind::mmpp)
    return override_error(mmpp_key->key, "MMPP parameters given, but events.process is not \"mmpp\" (add "
                                         "--set events.process=mmpp)");
  if (auto e = work.validate(); !e.empty()) return override_error({}, "invalid plan: " + e);
  plan = std::move(work);
  return std::nullopt;
}

// ---- writing -------------------------------------------------------------------------------------

namespace {

std::string toml_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A family key's text as a TOML value (strings and durations quoted).
std::string family_key_toml(const std::string& key, const std::string& value) {
  const engine::key_spec* spec = family_key_spec(key);
  if (!spec)
    if (const auto* emsmdb = protocol_family("emsmdb"))
      for (const auto& s : emsmdb->keys)
        if (s.key == key) spec = &s;
  if (!spec || spec->kind == engine::key_spec::type::text || spec->kind == engine::key_spec::type::duration)
    return toml_string(value);
  return value;
}

}  // namespace

std::string to_toml(const run_plan& p) {
  std::string o;
  auto line = [&](std::string_view key, const std::string& value) { o += fmt::format("{} = {}\n", key, value); };
  auto dur = [](duration d) { return toml_string(format_duration(d)); };
  auto boolean = [](bool b) { return std::string(b ? "true" : "false"); };

  o += "# nudge scenario (docs/scenarios.md)\n\n[run]\n";
  line("clients", std::to_string(p.clients));
  line("seed", p.seed <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ? std::to_string(p.seed)
                                                                                              : toml_string(std::to_string(p.seed)));
  line("duration", dur(p.length));
  line("ramp_up", dur(p.ramp_up));
  line("drain", dur(p.drain));

  const auto legacy = emsmdb_mix(0, 0, 0);
  const bool as_mix = p.mix.size() == legacy.size() &&
                      std::equal(p.mix.begin(), p.mix.end(), legacy.begin(), [](const auto& a, const auto& b) {
                        return a.protocol == b.protocol && a.mode == b.mode;
                      });
  if (as_mix) {
    o += "\n[mix]\n";
    for (const auto& g : p.mix) line(g.mode, toml_number(g.share));
  } else {
    for (const auto& g : p.mix) {
      o += "\n[[clients]]\n";
      line("protocol", toml_string(g.protocol));
      line("mode", toml_string(g.mode));
      line("share", toml_number(g.share));
      if (!g.label.empty()) line("label", toml_string(g.label));
      if (!g.keys.empty()) {
        std::string set = "{";
        for (const auto& [key, value] : g.keys)
          set += fmt::format("{}{} = {}", set.size() > 1 ? ", " : " ", toml_string(key), family_key_toml(key, value));
        line("set", set + " }");
      }
    }
  }
  std::string section;  // family_keys are sorted: one table per section
  for (const auto& [key, value] : p.family_keys) {
    const auto dot = key.rfind('.');
    if (key.substr(0, dot) != section) {
      section = key.substr(0, dot);
      o += fmt::format("\n[{}]\n", section);
    }
    line(key.substr(dot + 1), family_key_toml(key, value));
  }

  o += "\n[poll]\n";
  line("interval", dur(p.poll_interval));
  line("jitter", boolean(p.poll_jitter));

  o += "\n[push]\n";
  line("context_size", std::to_string(p.context_size));
  line("poll_until_first_ping", boolean(p.poll_until_first_ping));
  line("cookie", boolean(p.send_cookie));
  line("keepalive", dur(p.keepalive_interval));
  line("fallback_check", dur(p.fallback_check_interval));

  const auto& ev = p.event_process;
  o += "\n[events]\n";
  line("process", toml_string(to_string(ev.kind)));
  // The rate as it was stated: a derived rate keeps deriving when what it depends on changes.
  const auto& rate = p.event_rate_as_given;
  const bool state_rates = rate.given == event_rate_statement::form::mmpp_state_rates && ev.kind == event_process_kind::mmpp;
  if (rate.given == event_rate_statement::form::per_client_day)
    line("per_client_day", toml_number(rate.per_client_day) + "  # " + toml_number(p.events_per_client_hour) + " per client-hour");
  else if (!state_rates)
    line("per_client_hour", toml_number(p.events_per_client_hour));
  if (ev.hours.enabled) {
    o += "\n[events.business_hours]\n";
    line("enabled", "true");
    line("start", toml_string(format_time_of_day(ev.hours.start)));
    line("end", toml_string(format_time_of_day(ev.hours.end)));
    if (ev.hours.run_starts_at) line("run_starts_at", toml_string(format_time_of_day(*ev.hours.run_starts_at)));
    line("day", toml_string(to_string(ev.hours.day)));
  }
  if (ev.kind == event_process_kind::mmpp) {
    o += "\n[events.mmpp]\n";
    if (state_rates) {
      line("high_per_client_hour", toml_number(rate.high_per_client_hour));
      line("low_per_client_hour", toml_number(rate.low_per_client_hour));
    } else {
      line("burst_ratio", toml_number(ev.mmpp.burst_ratio));
    }
    line("high_mean", dur(ev.mmpp.high_mean));
    line("low_mean", dur(ev.mmpp.low_mean));
  }

  o += "\n[server]\n";
  line("policy", toml_string(notifier::to_string(p.server.policy)));
  line("polls_max_ms", std::to_string(p.server.polls_max_ms));
  line("ping_resend", dur(p.server.ping_resend));
  line("async_hold", dur(p.server.async_hold));
  line("push_enabled", boolean(p.server.push_enabled));
  line("async_enabled", boolean(p.server.async_enabled));
  line("max_pending_per_mailbox", std::to_string(p.server.max_pending_per_mailbox));

  o += "\n[network]\n";
  line("one_way_delay", dur(p.link.one_way_delay));
  line("jitter", dur(p.link.jitter));
  line("udp_loss", toml_number(p.link.udp_loss));
  line("rate", toml_number(p.link.rate_bps));

  o += "\n[wire]\n";
  line("profile", toml_string(p.wire.is_abstract() ? "abstract" : "faithful"));
  if (p.wire.is_abstract()) line("abstract_message_bytes", std::to_string(p.wire.abstract_message_bytes));
  line("ip_header", std::to_string(p.wire.ip_header));
  line("tcp_header", std::to_string(p.wire.tcp_header));
  line("tcp_options", std::to_string(p.wire.tcp_options));
  line("syn_options", std::to_string(p.wire.syn_options));
  line("udp_header", std::to_string(p.wire.udp_header));
  line("mss", std::to_string(p.wire.mss));
  line("delayed_ack", dur(p.wire.delayed_ack));
  line("quick_acks", std::to_string(p.wire.quick_acks));
  if (p.wire.idle_quick_ack != duration::zero()) line("idle_quick_ack", dur(p.wire.idle_quick_ack));

  for (const auto& n : p.nat_mix) {
    o += "\n[[nat]]\n";
    line("preset", toml_string(n.preset));
    line("fraction", toml_number(n.fraction));
    line("udp_timeout", dur(n.udp_timeout));
    if (n.tcp_timeout != duration::zero()) line("tcp_timeout", dur(n.tcp_timeout));
    if (n.clients_per_device != 1) line("clients_per_device", std::to_string(n.clients_per_device));
    if (n.kernel) line("kernel", "true");
  }
  if (!p.report_thresholds.empty()) {
    o += "\n[report]\nthresholds = [\n";
    for (const auto& t : p.report_thresholds) o += "  " + toml_string(t) + ",\n";
    o += "]\n";
  }
  return o;
}

const std::vector<scenario_key>& scenario_keys() {
  static const std::vector<scenario_key> docs = [] {
    std::vector<scenario_key> out;
    for (const auto& k : keys()) out.push_back(k.doc);
    return out;
  }();
  return docs;
}

}  // namespace nudge::sim
