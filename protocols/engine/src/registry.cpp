#include "nudge/engine/registry.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace nudge::engine {

namespace {

// Only programming errors reach here (an undeclared key, a family registered
// twice): the scenario reader has already checked every value's type.
[[noreturn]] void misuse(const std::string& what) { throw std::logic_error(what); }

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// "90", "90s", "250ms", "5min", "8h": a number and an optional unit (seconds by default).
std::optional<duration> parse_span(std::string_view s) {
  static constexpr std::pair<std::string_view, double> units[] = {
      {"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"min", 60e9}, {"s", 1e9}, {"h", 3600e9}, {"d", 86400e9}};
  double scale = 1e9;
  for (const auto& [unit, ns] : units)
    if (s.size() > unit.size() && s.ends_with(unit)) {
      scale = ns;
      s.remove_suffix(unit.size());
      break;
    }
  const auto v = parse_double(s);
  if (!v || !std::isfinite(*v)) return std::nullopt;
  return duration(static_cast<duration::rep>(std::llround(*v * scale)));
}

}  // namespace

void settings::set(std::string key, std::string value) {
  const auto at = std::lower_bound(entries_.begin(), entries_.end(), key,
                                   [](const auto& e, const std::string& k) { return e.first < k; });
  if (at != entries_.end() && at->first == key) at->second = std::move(value);
  else entries_.emplace(at, std::move(key), std::move(value));
}

const std::string& settings::text(std::string_view key) const {
  const auto at = std::lower_bound(entries_.begin(), entries_.end(), key,
                                   [](const auto& e, std::string_view k) { return e.first < k; });
  if (at == entries_.end() || at->first != key) misuse("settings: undeclared key " + std::string(key));
  return at->second;
}

bool settings::boolean(std::string_view key) const {
  const auto& v = text(key);
  if (v == "true") return true;
  if (v == "false") return false;
  misuse("settings: " + std::string(key) + " is not a boolean: " + v);
}

std::int64_t settings::integer(std::string_view key) const {
  const auto& v = text(key);
  std::int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || ptr != v.data() + v.size()) misuse("settings: " + std::string(key) + " is not an integer: " + v);
  return out;
}

double settings::number(std::string_view key) const {
  const auto& v = text(key);
  if (const auto d = parse_double(v)) return *d;
  misuse("settings: " + std::string(key) + " is not a number: " + v);
}

duration settings::span(std::string_view key) const {
  const auto& v = text(key);
  if (const auto d = parse_span(v)) return *d;
  misuse("settings: " + std::string(key) + " is not a duration: " + v);
}

std::optional<std::string> settings::assign(const family& f, std::string_view key, std::string value) {
  const auto spec = std::find_if(f.keys.begin(), f.keys.end(), [&](const key_spec& k) { return k.key == key; });
  if (spec == f.keys.end()) {
    std::string known;
    for (const auto& k : f.keys) known += (known.empty() ? "" : ", ") + k.key;
    return "the " + f.name + " protocol has no key \"" + std::string(key) + "\"" +
           (known.empty() ? std::string(" (it has none)") : " (it has: " + known + ")");
  }
  const auto expected = [&](std::string_view what) {
    return std::optional<std::string>(std::string(key) + " takes " + std::string(what) + ", not \"" + value + "\"");
  };
  switch (spec->kind) {
    case key_spec::type::boolean:
      if (value != "true" && value != "false") return expected("true or false");
      break;
    case key_spec::type::integer: {
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc{} || ptr != value.data() + value.size()) return expected("an integer");
      break;
    }
    case key_spec::type::number:
      if (const auto d = parse_double(value); !d || !std::isfinite(*d)) return expected("a number");
      break;
    case key_spec::type::duration:
      if (const auto d = parse_span(value); !d || d->count() < 0)
        return expected("a duration (90s, 250ms, 5min, 8h)");
      break;
    case key_spec::type::text:
      break;
  }
  set(std::string(key), std::move(value));
  return std::nullopt;
}

settings settings::defaults(const family& f) {
  settings s;
  for (const auto& k : f.keys) s.set(k.key, k.default_value);
  return s;
}

registry& registry::instance() {
  static registry r;
  return r;
}

void registry::add(family f) {
  if (find(f.name)) misuse("registry: family \"" + f.name + "\" registered twice");
  // Every family's traffic rows start with the transport's own (vocabulary's promise).
  if (f.words.kinds.size() > metrics::traffic_meter::max_kinds)
    misuse("registry: family \"" + f.name + "\" has more message kinds than a traffic meter holds");
  assert(f.words.kinds.size() >= 2 && f.words.kinds[0].name == "tcp_setup" && f.words.kinds[1].name == "tcp_ack");
  families_.push_back(std::move(f));
}

const family* registry::find(std::string_view name) const {
  for (const auto& f : families_)
    if (f.name == name) return &f;
  return nullptr;
}

metrics::client_metrics metrics_for(const family& f) {
  return metrics::client_metrics(f.words.paths.size(), f.words.counters.size());
}

std::optional<std::size_t> index_of(const std::vector<term>& terms, std::string_view name) {
  for (std::size_t i = 0; i < terms.size(); ++i)
    if (terms[i].name == name) return i;
  return std::nullopt;
}

}  // namespace nudge::engine
