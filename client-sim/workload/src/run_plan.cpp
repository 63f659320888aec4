#include "nudge/sim/run_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "nudge/client/emsmdb_client_core.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/netsim/nat.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::sim {

using client::client_mode;

namespace {
// Exact counts per share (largest remainder), then a seeded shuffle so every
// share is spread over the ramp-up without changing the counts.
std::vector<std::size_t> apportion(std::size_t n, const std::vector<double>& shares, std::uint64_t seed) {
  const double sum = std::accumulate(shares.begin(), shares.end(), 0.0);
  std::vector<std::size_t> counts(shares.size());
  std::vector<double> remainders(shares.size());
  std::size_t assigned = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    const double exact = sum > 0 ? static_cast<double>(n) * shares[k] / sum : 0.0;
    counts[k] = static_cast<std::size_t>(std::floor(exact));
    remainders[k] = exact - std::floor(exact);
    assigned += counts[k];
  }
  while (assigned < n) {
    const auto k = static_cast<std::size_t>(std::max_element(remainders.begin(), remainders.end()) - remainders.begin());
    ++counts[k];
    remainders[k] = -1;
    ++assigned;
  }
  std::vector<std::size_t> out;
  out.reserve(n);
  for (std::size_t k = 0; k < counts.size(); ++k) out.insert(out.end(), counts[k], k);
  rng r(seed);
  for (std::size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[r.next() % i]);
  return out;
}
}  // namespace

std::string nat_share::label() const {
  std::string l = preset;
  if (udp_timeout > duration::zero())
    l += "/" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(udp_timeout).count()) + "s";
  if (tcp_timeout > duration::zero())
    l += "/tcp" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(tcp_timeout).count()) + "s";
  if (clients_per_device > 1 && preset != "none") l += " x" + std::to_string(clients_per_device);
  return l;
}

bool run_plan::kernel_nat() const {
  for (const auto& n : nat_mix)
    if (n.kernel) return true;
  return false;
}

const engine::family* protocol_family(std::string_view name) {
  protocols::register_all();  // idempotent; programs call it first thing too
  return engine::registry::instance().find(name);
}

std::vector<client_group> emsmdb_mix(double poll, double push, double async) {
  return {{"emsmdb", "poll", poll}, {"emsmdb", "push", push}, {"emsmdb", "async", async}};
}

std::vector<std::size_t> run_plan::assign_groups() const {
  std::vector<double> shares;
  for (const auto& g : mix) shares.push_back(g.share);
  return apportion(clients, shares, seed ^ 0x6D6F646573ull);
}

std::vector<client_mode> run_plan::assign_modes() const {
  const auto groups = assign_groups();
  std::vector<client_mode> modes(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i) modes[i] = group_mode(groups[i]);
  return modes;
}

client_mode run_plan::group_mode(std::size_t g) const {
  // EMSMDB's modes; another family's group reads as poll here (its mode is by name: mix[g].mode).
  return client::parse_client_mode(mix.at(g).mode).value_or(client_mode::poll);
}

std::optional<std::size_t> run_plan::group_of(client_mode mode) const {
  for (std::size_t g = 0; g < mix.size(); ++g)
    if (mix[g].protocol == "emsmdb" && mix[g].mode == client::to_string(mode)) return g;
  return std::nullopt;
}

std::vector<std::size_t> run_plan::assign_nat_groups() const {
  if (nat_mix.empty()) return std::vector<std::size_t>(clients, 0);
  std::vector<double> shares;
  for (const auto& s : nat_mix) shares.push_back(s.fraction);
  return apportion(clients, shares, seed ^ 0x4E41547373ull);
}

std::string run_plan::user_dn(std::size_t i) {
  // What "%07zu" would print, without snprintf: the virtual driver names a
  // client's mailbox on every event.
  static constexpr std::string_view prefix =
      "/o=nudge/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=user";
  char digits[24];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + i % 10);
    i /= 10;
  } while (i != 0);
  while (n < 7) digits[n++] = '0';
  std::string dn;
  dn.reserve(prefix.size() + n);
  dn.append(prefix);
  while (n > 0) dn.push_back(digits[--n]);
  return dn;
}

protocol::push_context run_plan::context_for(std::size_t i) const {
  return client::push_context_for(seed, i, context_size);
}

client::client_config run_plan::client_config_for(std::size_t i, client_mode mode) const {
  client::client_config c;
  c.mode = mode;
  c.user_dn = user_dn(i);
  c.poll_interval = poll_interval;
  c.poll_jitter = poll_jitter;
  c.context = context_for(i);
  c.send_cookie = send_cookie;
  c.keepalive_interval = keepalive_interval;
  c.fallback_check_interval = fallback_check_interval;
  c.poll_until_first_ping = poll_until_first_ping;
  c.seed = client::client_seed(seed, i);
  c.wire = wire;
  return c;
}

engine::settings run_plan::family_settings() const {
  // Durations in nanoseconds, so they read back exactly.
  const auto span = [](duration d) { return std::to_string(d.count()) + "ns"; };
  const auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  engine::settings s;
  s.set("poll.interval", span(poll_interval));
  s.set("poll.jitter", flag(poll_jitter));
  s.set("push.context_size", std::to_string(context_size));
  s.set("push.poll_until_first_ping", flag(poll_until_first_ping));
  s.set("push.cookie", flag(send_cookie));
  s.set("push.keepalive", span(keepalive_interval));
  s.set("push.fallback_check", span(fallback_check_interval));
  s.set("server.policy", std::string(notifier::to_string(server.policy)));
  s.set("server.polls_max_ms", std::to_string(server.polls_max_ms));
  s.set("server.ping_resend", span(server.ping_resend));
  s.set("server.async_hold", span(server.async_hold));
  s.set("server.push_enabled", flag(server.push_enabled));
  s.set("server.async_enabled", flag(server.async_enabled));
  s.set("server.max_pending_per_mailbox", std::to_string(server.max_pending_per_mailbox));
  return s;
}

void run_plan::set_family_key(std::string key, std::string value) {
  const auto at = std::lower_bound(family_keys.begin(), family_keys.end(), key,
                                   [](const auto& e, const std::string& k) { return e.first < k; });
  if (at != family_keys.end() && at->first == key) at->second = std::move(value);
  else family_keys.emplace(at, std::move(key), std::move(value));
}

engine::settings run_plan::settings_for(const engine::family& f, std::optional<std::size_t> group) const {
  engine::settings k = engine::settings::defaults(f);
  const auto declared = [&](const std::string& key) {
    return std::any_of(f.keys.begin(), f.keys.end(), [&](const engine::key_spec& d) { return d.key == key; });
  };
  const engine::settings planned = family_settings();  // a named copy: entries() refers into it
  for (const auto& entry : planned.entries())
    if (declared(entry.first)) k.set(entry.first, entry.second);
  for (const auto& entry : family_keys)
    if (declared(entry.first)) k.set(entry.first, entry.second);
  if (group && *group < mix.size())
    for (const auto& entry : mix[*group].keys)
      if (declared(entry.first)) k.set(entry.first, entry.second);
  return k;
}

std::string run_plan::validate() const {
  if (clients == 0) return "clients must be at least 1";
  if (mix.empty()) return "mix fractions must not all be zero (no client groups)";
  double total_share = 0;
  for (std::size_t g = 0; g < mix.size(); ++g) {
    const auto& group = mix[g];
    if (group.share < 0 || !std::isfinite(group.share)) return "mix fractions must be non-negative numbers";
    total_share += group.share;
    const auto* family = protocol_family(group.protocol);
    if (!family) return "client group " + std::to_string(g) + ": unknown protocol \"" + group.protocol + "\"";
    if (!engine::index_of(family->words.modes, group.mode))
      return "client group " + std::to_string(g) + ": " + group.protocol + " has no mode \"" + group.mode + "\"";
    for (std::size_t h = 0; h < g; ++h) {
      if (mix[h].protocol == group.protocol && mix[h].name() == group.name())
        return "client groups " + std::to_string(h) + " and " + std::to_string(g) + " are both " + group.protocol +
               " " + group.mode + " (give one share per mode, or a label to each)";
      if (!group.label.empty() && mix[h].name() == group.label)
        return "client groups " + std::to_string(h) + " and " + std::to_string(g) + " are both called \"" +
               group.label + "\"";
    }
    for (const auto& entry : group.keys) {
      const std::string& key = entry.first;  // not a structured binding: clang's C++20 cannot capture one
      if (std::none_of(family->keys.begin(), family->keys.end(), [&](const engine::key_spec& k) { return k.key == key; }))
        return "client group " + std::to_string(g) + ": " + group.protocol + " has no key \"" + key + "\"";
    }
  }
  for (const auto& [key, value] : family_keys) {
    bool declared = false;
    for (const auto& f : engine::registry::instance().families())
      for (const auto& k : f.keys) declared = declared || k.key == key;
    if (!declared) return "no registered family has the key \"" + key + "\"";
  }
  if (total_share <= 0) return "mix fractions must not all be zero";
  if (poll_interval < duration::zero()) return "poll interval must not be negative";
  if (events_per_client_hour < 0 || !std::isfinite(events_per_client_hour)) return "event rate must be >= 0";
  if (auto e = event_process.validate(); !e.empty()) return e;
  if (length <= duration::zero()) return "duration must be positive";
  if (link.rate_bps < 0 || !std::isfinite(link.rate_bps)) return "link rate must be a non-negative number of bits per second";
  if (ramp_up < duration::zero() || drain < duration::zero()) return "ramp-up and drain must not be negative";
  if (context_size > protocol::max_push_context) return "context size is at most 16 bytes (ecTooBig beyond)";
  if (keepalive_interval < duration::zero() || fallback_check_interval < duration::zero())
    return "keepalive and fallback-check intervals must not be negative";
  double nat_sum = 0;
  for (const auto& s : nat_mix) {
    if (s.fraction < 0 || !std::isfinite(s.fraction)) return "NAT mix fractions must be non-negative numbers";
    if (s.udp_timeout < duration::zero()) return "NAT UDP timeout must not be negative";
    if (s.tcp_timeout < duration::zero()) return "NAT TCP timeout must not be negative";
    if (s.clients_per_device < 1) return "NAT clients_per_device must be at least 1";
    if (s.preset != "none" && !netsim::preset(s.preset, protocol::ip_endpoint::v4(192, 0, 2, 99, 0)))
      return "unknown NAT preset '" + s.preset + "' (none, full-cone, restricted-cone, port-restricted-cone, symmetric, linux-snat)";
    nat_sum += s.fraction;
  }
  if (!nat_mix.empty() && nat_sum <= 0) return "NAT mix fractions must not all be zero";
  return {};
}

std::vector<virtual_only_setting> run_plan::virtual_only_settings() const {
  std::vector<virtual_only_setting> out;
  const run_plan defaults;
  const link_model& dl = defaults.link;
  constexpr const char* loopback = "applies only to --clock virtual; a real run's network is the loopback interface";
  if (link.one_way_delay != dl.one_way_delay) out.push_back({"network.one_way_delay", loopback});
  if (link.jitter != dl.jitter) out.push_back({"network.jitter", loopback});
  if (link.udp_loss != dl.udp_loss) out.push_back({"network.udp_loss", loopback});
  if (link.rate_bps != dl.rate_bps) out.push_back({"network.rate", loopback});
  if (kernel_nat()) return out;  // the kernel NAT testbed builds the NAT and starts the notifier with [server]
  if (!nat_mix.empty())
    out.push_back({"nat", "applies only to --clock virtual; a real run's clients reach the notifier over loopback, with "
                          "no NAT between them"});

  // The real notifier is its own program: client-sim cannot configure it, so a
  // [server] setting would only be written into the result, untrue.
  const notifier::notifier_config& ds = defaults.server;
  auto seconds = [](duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", to_seconds(d));
    return std::string(buf);
  };
  auto refuse = [&](const char* key, const std::string& notifier_flag) {
    out.push_back({key, "configures the in-process notifier of --clock virtual; for a real run, " +
                            (notifier_flag.empty() ? std::string("the notifier program has no such setting")
                                                   : "start the notifier with " + notifier_flag)});
  };
  if (server.policy != ds.policy) refuse("server.policy", "--policy " + std::string(notifier::to_string(server.policy)));
  if (server.polls_max_ms != ds.polls_max_ms) refuse("server.polls_max_ms", "--polls-max-ms " + std::to_string(server.polls_max_ms));
  if (server.ping_resend != ds.ping_resend) refuse("server.ping_resend", "--ping-resend " + seconds(server.ping_resend));
  if (server.async_hold != ds.async_hold) refuse("server.async_hold", "--async-hold " + seconds(server.async_hold));
  if (server.push_enabled != ds.push_enabled) refuse("server.push_enabled", "--no-push");
  if (server.async_enabled != ds.async_enabled) refuse("server.async_enabled", "--no-async");
  if (server.max_pending_per_mailbox != ds.max_pending_per_mailbox) refuse("server.max_pending_per_mailbox", "");
  return out;
}

}  // namespace nudge::sim
