#include "nudge/sim/client_sim_cli.hpp"

#include <filesystem>

#include "nudge/kernelnat/behaviour.hpp"
#include "nudge/kernelnat/kernel_run.hpp"
#include "nudge/kernelnat/stun_judge.hpp"
#include "nudge/kernelnat/testbed.hpp"
#include "nudge/cli/options.hpp"
#include "nudge/sim/scenario.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "nudge/sim/run_result.hpp"

#ifndef NUDGE_VERSION
#define NUDGE_VERSION "unknown"
#endif

namespace nudge::sim {

namespace {

constexpr const char* description = R"(client-sim: emulated Outlook-style clients against the nudge notifier.

Each client logs on to its own mailbox over DCE/RPC (EcDoConnectEx) and learns
about new mail in one of three ways, mixed with --mix:
  poll   an empty EcDoRpcExt2 every --poll-interval seconds, changed or not
  push   registers a UDP callback (EcRRegisterPushNotification), polls until the
         first ping arrives, then fetches only when a ping says so
  async  EcDoAsyncConnectEx, then EcDoAsyncWaitEx on a second TCP connection
         that the notifier holds and completes when something changes
Mail arrives as a Poisson process per mailbox (--events-per-client-hour; a
scenario may make it bursty or keep it to business hours, in either clock),
from each client's start until --duration; then --drain seconds pass with no
new mail so late fetches still count. The table on stdout gives wire bytes and
packets per client-hour, latency from event to fetch, and missed events, per
mode; --json writes the full result (schema nudge.result/1).

--clock real (default) drives a running `notifier` over loopback sockets and
injects mail through its control port; --clock virtual runs the same client
and notifier state machines in one process, in simulated time.
)";

constexpr const char* footer = R"(Examples:
  notifier --listen 127.0.0.1:7777 --udp 127.0.0.1:7778 --control 127.0.0.1:7779 &
  client-sim --clients 10000 --mix poll=0.3,push=0.4,async=0.3 --poll-interval 5 \
             --events-per-client-hour 60 --duration 60 --drain 15 --json run.json
  client-sim --clock virtual --clients 100000 --mix push=1 --duration 3600 --policy peer

Real runs only ever use loopback addresses (127.0.0.0/8). Large real runs are
split over worker processes automatically when one process would need more
file descriptors than its limit allows (poll: 1 per client, push and async: 2).

Captures: --pcap FILE writes the run as a pcap. In virtual time the clients'
side is synthesized (documentation addresses, simulated timestamps from
--pcap-epoch); with --clock real, libpcap records the notifier's ports on the
loopback interface (needs root or CAP_NET_RAW). See docs/captures.md.

Exit codes: 0 the run completed and no client failed (missed events are a
result, shown in the table); 1 the run could not be carried out (notifier
unreachable, a worker process died, the JSON file could not be written),
clients failed, or --pcap was given and no capture could be made (the table
and JSON are still written); 2 usage error.)";

duration seconds(double s) { return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s)); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// "127.0.0.1:7777" as a loopback IPv4 endpoint for a real run; empty on success.
std::string parse_real_endpoint(const std::string& flag, const std::string& text, protocol::ip_endpoint& out) {
  auto ep = cli::parse_endpoint(flag, text);
  if (!ep) return ep.error().message;
  if (!ep->is_loopback())
    return flag + " " + text + ": refusing a non-loopback address; real runs only talk to 127.0.0.0/8";
  if (ep->is_v6) return flag + " " + text + ": real runs need IPv4 loopback (127.0.0.0/8), not IPv6";
  out = *ep;
  return {};
}

/// "127.0.0.2-127.0.0.254" (or one address).
std::string parse_sources(const std::string& text, real_options& o) {
  protocol::loopback_range range;
  if (auto e = protocol::parse_loopback_range(text, range); !e.empty()) return "--sources " + text + ": " + e;
  o.source_first = range.first;
  o.source_count = range.count;
  return {};
}

}  // namespace

std::string parse_mix(std::string_view text, std::array<double, client::client_mode_count>& mix) {
  std::array<double, client::client_mode_count> m{};
  std::array<bool, client::client_mode_count> seen{};
  if (trim(text).empty()) return "--mix is empty; e.g. --mix poll=0.3,push=0.4,async=0.3";
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto eq = item.find('=');
    const std::string_view name = trim(item.substr(0, eq));
    const auto mode = client::parse_client_mode(name);
    if (!mode) return "--mix: unknown mode '" + std::string(name) + "' (the modes are poll, push, async)";
    const auto k = static_cast<std::size_t>(*mode);
    if (seen[k]) return "--mix: " + std::string(name) + " is given twice";
    seen[k] = true;
    double value = 1.0;  // a bare mode name means "all of this"
    if (eq != std::string_view::npos) {
      const std::string_view v = trim(item.substr(eq + 1));
      const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
      if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size() || !std::isfinite(value))
        return "--mix: '" + std::string(v) + "' is not a number (in " + std::string(item) + ")";
    }
    if (value < 0) return "--mix: " + std::string(name) + " is negative; fractions must be >= 0";
    m[k] = value;
  }
  double sum = 0;
  for (double v : m) sum += v;
  if (sum <= 0) return "--mix: the fractions add up to 0; at least one mode needs clients";
  mix = m;
  return {};
}

result<client_sim_options> parse_client_sim_options(int argc, const char* const* argv) {
  client_sim_options o;
  run_plan& p = o.plan;

  // A scenario file sets the plan first; flags and --set then override it.
  std::string scenario_path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--scenario" && i + 1 < argc) scenario_path = argv[i + 1];
    else if (a.rfind("--scenario=", 0) == 0) scenario_path = std::string(a.substr(11));
  }
  if (!scenario_path.empty()) {
    auto loaded = load_scenario(scenario_path);
    if (auto* e = std::get_if<scenario_error>(&loaded))
      return fail(e->what() + "\nRun 'client-sim --help' for the options; docs/scenarios.md for the file format.",
                  exit_usage);
    p = std::get<run_plan>(std::move(loaded));
  }
  std::vector<std::string> overrides;

  CLI::App app{description, "client-sim"};
  app.footer(footer);
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(34);

  std::string clock = "real";
  std::string mix = "poll=1,push=0,async=0";
  double poll_interval = to_seconds(p.poll_interval);
  double ramp_up = to_seconds(p.ramp_up), length = to_seconds(p.length), drain = to_seconds(p.drain);
  double keepalive = to_seconds(p.keepalive_interval), fallback = to_seconds(p.fallback_check_interval);
  bool pure_push = false;
  std::string notifier = o.real.notifier.to_string(), notifier_udp = o.real.notifier_udp.to_string(),
              control = o.real.control.to_string();
  std::string sources = "127.0.0.2-127.0.0.254";
  std::string policy(notifier::to_string(p.server.policy));
  double ping_resend = to_seconds(p.server.ping_resend), async_hold = to_seconds(p.server.async_hold);
  double link_delay_ms = std::chrono::duration<double, std::milli>(p.link.one_way_delay).count();
  bool version = false;
  std::string pcap_epoch = format_pcap_epoch(o.pcap.epoch);

  const char* run_group = "Run";
  const char* pop_group = "Clients";
  const char* push_group = "Push clients";
  const char* real_group = "Real clock (a running notifier)";
  const char* virt_group = "Virtual clock (in-process notifier)";
  const char* out_group = "Output";
  const char* pcap_group = "Capture (docs/captures.md)";

  app.add_option("--clock", clock, "real: sockets to a running notifier; virtual: simulated time, in-process")
      ->type_name("CLOCK")
      ->check(CLI::IsMember({"real", "virtual"}))
      ->group(run_group);
  app.add_option("--duration", length, "Seconds during which mail arrives (rates are per this length)")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->group(run_group);
  app.add_option("--ramp-up", ramp_up, "Seconds over which the clients start, evenly spread")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->group(run_group);
  app.add_option("--drain", drain, "Seconds after --duration with no new mail, so late fetches still count")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->group(run_group);
  auto* o_rate = app.add_option("--events-per-client-hour", p.events_per_client_hour,
                 "New-mail events per mailbox per hour (Poisson); 60 = one a minute")
      ->type_name("RATE")
      ->check(CLI::NonNegativeNumber)
      ->group(run_group);
  cli::add_seed_option(app, p.seed, "Seeds every random choice (modes, event times, jitter)")->group(run_group);

  app.add_option("--clients", p.clients, "Number of emulated clients, one mailbox each")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->group(pop_group);
  app.add_option("--scenario", scenario_path, "A scenario file (TOML, docs/scenarios.md); flags given with it override it")
      ->type_name("FILE")
      ->group(run_group);
  app.add_option("--set", overrides, "Override one scenario key, e.g. --set run.clients=500 --set nat[0].preset=symmetric")
      ->type_name("KEY=VALUE")
      ->group(run_group);
  auto* o_mix = app.add_option("--mix", mix, "Fractions of clients per mode, e.g. poll=0.3,push=0.4,async=0.3 (normalised)")
      ->type_name("MODE=FRACTION,...")
      ->group(pop_group);
  app.add_option("--poll-interval", poll_interval,
                 "Seconds between polls (poll clients; push clients until the first ping); 0 = the server's "
                 "pcmsPollsMax")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->group(pop_group);
  app.add_flag("--jitter", p.poll_jitter, "Wait U[1x, 2x] the interval between polls, as Outlook did")
      ->group(pop_group);

  app.add_flag("--cookie", p.send_cookie,
               "Send a reachability cookie to --notifier-udp after registering (needed by --policy verified)")
      ->group(push_group);
  app.add_option("--keepalive", keepalive, "Resend the cookie every S seconds to hold a NAT pinhole (0 = never)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->group(push_group);
  app.add_option("--fallback-check", fallback,
                 "Once pings work, still poll every S seconds; details no ping announced mean pings are lost: "
                 "fall back to polling (0 = never)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->group(push_group);
  app.add_flag("--pure-push", pure_push, "Trust the registration at once instead of polling until the first ping")
      ->group(push_group);

  auto* o_notifier =
      cli::add_endpoint_option(app, "--notifier", notifier, "EMSMDB's DCE/RPC endpoint (the notifier's --listen); unless given, where --control's SERVICES reply says")
          ->group(real_group);
  auto* o_udp = cli::add_endpoint_option(app, "--notifier-udp", notifier_udp,
                                         "EMSMDB's UDP endpoint (the notifier's --udp), for cookies; unless given, from SERVICES")
                    ->group(real_group);
  auto* o_control = cli::add_endpoint_option(app, "--control", control,
                                             "The notifier's control port (its --control): mail is injected there (EVENT@<family>, each client's own), SERVICES says where each protocol is served")
                        ->group(real_group);
  auto* o_workers = app.add_option("--workers", o.real.workers, "Worker threads in all; 0 = one per CPU")
      ->type_name("N")
                        ->group(real_group);
  auto* o_processes =
      app.add_option("--processes", o.real.processes,
                     "Worker processes; 0 = as few as the descriptor limit allows (one per ~18,000 sockets)")
      ->type_name("N")
          ->group(real_group);
  auto* o_sources = app.add_option("--sources", sources,
                                   "Loopback source addresses the clients bind to, FIRST-LAST (spreads ephemeral "
                                   "ports)")
      ->type_name("FIRST-LAST")
                        ->group(real_group);

  auto* o_policy = app.add_option("--policy", policy,
                                  "Where pings go: legacy (the registered SOCKADDR), peer (its port on the TCP "
                                  "peer's address), verified (where the cookie came from)")
      ->type_name("POLICY")
                       ->check(CLI::IsMember({"legacy", "peer", "verified"}))
                       ->group(virt_group);
  auto* o_polls_max = app.add_option("--polls-max-ms", p.server.polls_max_ms,
                                     "pcmsPollsMax the notifier returns: the poll interval clients adopt with "
                                     "--poll-interval 0")
      ->type_name("MS")
                          ->group(virt_group);
  auto* o_resend = app.add_option("--ping-resend", ping_resend, "Seconds before a ping is resent while unfetched")
      ->type_name("SECONDS")
                       ->check(CLI::PositiveNumber)
                       ->group(virt_group);
  auto* o_hold = app.add_option("--async-hold", async_hold, "Seconds the notifier holds an EcDoAsyncWaitEx")
      ->type_name("SECONDS")
                     ->check(CLI::PositiveNumber)
                     ->group(virt_group);
  auto* o_delay = app.add_option("--link-delay-ms", link_delay_ms, "One-way network delay, milliseconds")
      ->type_name("MS")
                      ->check(CLI::NonNegativeNumber)
                      ->group(virt_group);
  auto* o_loss = app.add_option("--udp-loss", p.link.udp_loss, "Probability that a datagram is lost")
      ->type_name("P")
                     ->check(CLI::Range(0.0, 1.0))
                     ->group(virt_group);

  cli::add_output_file_option(app, "--json", o.json_path,
                              "Write the result as JSON to FILE ('-' = stdout; the table then goes to stderr)")
      ->group(out_group);
  app.add_flag("--quiet", o.quiet, "No progress line and no warnings on stderr (errors still are)")->group(out_group);

  app.add_option("--pcap", o.pcap.path,
                 "Write the run's packets to FILE (pcap): virtual time synthesizes the clients' side, a real run "
                 "captures the notifier's ports on loopback with libpcap")
      ->type_name("FILE")
      ->group(pcap_group);
  auto* o_pcap_epoch =
      app.add_option("--pcap-epoch", pcap_epoch,
                     "Virtual clock: the date simulated time zero is stamped with (UTC, e.g. 2026-01-05T09:00:00Z, or "
                     "seconds since 1970)")
          ->type_name("WHEN")
          ->group(pcap_group);
  auto* o_pcap_clients = app.add_option("--pcap-clients", o.pcap.first_clients,
                                        "Virtual clock: capture only the first N clients (0 = all)")
                             ->type_name("N")
                             ->group(pcap_group);
  auto* o_pcap_sample = app.add_option("--pcap-sample", o.pcap.sample,
                                       "Virtual clock: capture a sample of the clients, each with this probability "
                                       "(drawn from --seed)")
                            ->type_name("FRACTION")
                            ->check(CLI::Range(0.0, 1.0))
                            ->group(pcap_group);
  auto* o_pcap_iface = app.add_option("--pcap-interface", o.pcap.interface,
                                      "Real clock: the interface to capture on")
                           ->type_name("IF")
                           ->group(pcap_group);
  app.add_flag("--version", version, "Print the version and exit")->group(out_group);
  std::string nat_describe, nat_judge;
  app.add_option("--nat-describe", nat_describe,
                 "Print what a NAT preset declares (RFC 4787 mapping, filtering, ports, timers), the verdicts the STUN "
                 "classifiers should give, and whether the Linux kernel can realise it; then exit")
      ->type_name("PRESET")
      ->group(out_group);
  app.add_option("--nat-judge", nat_judge,
                 "Build the preset as a kernel NAT in network namespaces (root), run Vovida stun and "
                 "turnutils_natdiscovery through it and compare their verdicts with --nat-describe's; then exit")
      ->type_name("PRESET")
      ->group(out_group);

  auto usage = [](std::string msg) { return fail(std::move(msg) + "\nRun 'client-sim --help' for the options.", exit_usage); };
  auto asked = [&o](client_sim_options::command c, std::string text) {
    o.cmd = c;
    o.text = std::move(text);
    return o;
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return asked(client_sim_options::command::help, app.help());
  } catch (const CLI::CallForAllHelp&) {
    return asked(client_sim_options::command::help, app.help("", CLI::AppFormatMode::All));
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }
  if (version) return asked(client_sim_options::command::version, std::string("client-sim ") + NUDGE_VERSION);
  for (const auto* name : {&nat_describe, &nat_judge}) {
    if (name->empty()) continue;
    const auto config = kernelnat::preset_config(*name);
    if (!config)
      return usage(fmt::format("unknown NAT preset \"{}\" (full-cone, restricted-cone, port-restricted-cone, "
                               "symmetric, linux-snat)",
                               *name));
    o.nat_preset = *name;
    if (name == &nat_describe) {
      std::string text = kernelnat::describe(*name, *config);
      if (!text.empty() && text.back() == '\n') text.pop_back();  // main() ends the line
      return asked(client_sim_options::command::nat_describe, std::move(text));
    }
    return asked(client_sim_options::command::nat_judge, {});
  }

  o.clock = clock == "virtual" ? clock_kind::virtual_time : clock_kind::real;
  if (o_mix->count() || scenario_path.empty()) {
    std::array<double, client::client_mode_count> shares{};
    if (auto e = parse_mix(mix, shares); !e.empty()) return usage(e);
    p.mix = emsmdb_mix(shares[0], shares[1], shares[2]);
  }
  p.poll_interval = seconds(poll_interval);
  p.ramp_up = seconds(ramp_up);
  p.length = seconds(length);
  p.drain = seconds(drain);
  p.keepalive_interval = seconds(keepalive);
  p.fallback_check_interval = seconds(fallback);
  p.poll_until_first_ping = !pure_push;
  // The flag states the hourly rate: a file's per_client_day or MMPP state rates no longer derive it.
  if (o_rate->count()) p.event_rate_as_given.given = event_rate_statement::form::per_client_hour;

  const std::pair<const char*, CLI::Option*> real_only[] = {{"--notifier", o_notifier}, {"--notifier-udp", o_udp},
                                                            {"--control", o_control},   {"--workers", o_workers},
                                                            {"--processes", o_processes}, {"--sources", o_sources}};
  const std::pair<const char*, CLI::Option*> virtual_only[] = {
      {"--policy", o_policy},   {"--polls-max-ms", o_polls_max}, {"--ping-resend", o_resend},
      {"--async-hold", o_hold}, {"--link-delay-ms", o_delay},    {"--udp-loss", o_loss}};

  if (o.clock == clock_kind::real) {
    for (const auto& [name, opt] : virtual_only)
      if (opt->count())
        return usage(std::string(name) +
                     " configures the in-process notifier of --clock virtual; for a real run, give it to the "
                     "notifier program");
    if (auto e = parse_real_endpoint("--notifier", notifier, o.real.notifier); !e.empty()) return usage(e);
    if (auto e = parse_real_endpoint("--notifier-udp", notifier_udp, o.real.notifier_udp); !e.empty()) return usage(e);
    // Stated, they win over where the notifier's SERVICES reply says EMSMDB is served.
    o.real.notifier_stated = o_notifier->count() > 0;
    o.real.notifier_udp_stated = o_udp->count() > 0;
    if (auto e = parse_real_endpoint("--control", control, o.real.control); !e.empty()) return usage(e);
    if (auto e = parse_sources(sources, o.real); !e.empty()) return usage(e);
    if (auto e = validate(o.real); !e.empty()) return usage(e);
  } else {
    for (const auto& [name, opt] : real_only)
      if (opt->count()) return usage(std::string(name) + " only applies to --clock real");
    p.server.policy = *notifier::parse_callback_policy(policy);
    p.server.ping_resend = seconds(ping_resend);
    p.server.async_hold = seconds(async_hold);
    p.link.one_way_delay = seconds(link_delay_ms / 1000.0);
  }
  // Capture flags: each belongs to one clock, and all need --pcap.
  {
    const std::pair<const char*, CLI::Option*> virtual_pcap[] = {
        {"--pcap-epoch", o_pcap_epoch}, {"--pcap-clients", o_pcap_clients}, {"--pcap-sample", o_pcap_sample}};
    for (const auto& [name, opt] : virtual_pcap) {
      if (!opt->count()) continue;
      if (o.pcap.path.empty()) return usage(std::string(name) + " needs --pcap FILE");
      if (o.clock == clock_kind::real)
        return usage(std::string(name) +
                     " only applies to --clock virtual (a real capture records every packet to the notifier's ports)");
    }
    if (o_pcap_iface->count()) {
      if (o.pcap.path.empty()) return usage("--pcap-interface needs --pcap FILE");
      if (o.clock == clock_kind::virtual_time) return usage("--pcap-interface only applies to --clock real");
      if (o.pcap.interface.empty()) return usage("--pcap-interface is empty");
    }
    if (o_pcap_epoch->count()) {
      const auto e = parse_pcap_epoch(pcap_epoch);
      if (!e) return usage("--pcap-epoch " + pcap_epoch + ": expected a UTC date and time such as 2026-01-05T09:00:00Z, or seconds since 1970");
      o.pcap.epoch = *e;
    }
    if (o_pcap_clients->count() && o.pcap.first_clients == 0)
      return usage("--pcap-clients 0 captures nobody; leave it out to capture every client");
    if (o_pcap_sample->count() && o.pcap.sample <= 0)
      return usage("--pcap-sample 0 captures nobody; give a fraction above 0");
  }
  if (auto e = apply_overrides(p, overrides)) return usage(e->what());
  // A real run cannot honour the link model, NAT or the in-process notifier's
  // settings: refused by key, never silently dropped (values at their defaults pass).
  if (o.clock == clock_kind::real && p.kernel_nat()) {
    // client-sim builds the NAT and starts the notifier itself: nothing to point at.
    const std::pair<const char*, CLI::Option*> testbed_given[] = {
        {"--notifier", o_notifier}, {"--notifier-udp", o_udp}, {"--control", o_control}, {"--sources", o_sources}};
    for (const auto& [name, opt] : testbed_given)
      if (opt->count())
        return usage(std::string(name) + ": a kernel NAT run (kernel = true) starts its own notifier in the testbed");
    if (!o.pcap.path.empty()) return usage("--pcap: not with a kernel NAT run (kernel = true)");
    if (auto e = kernelnat::kernel_plan_problem(p); !e.empty()) return usage(e);
  }
  if (o.clock == clock_kind::real)
    if (const auto refused = p.virtual_only_settings(); !refused.empty()) {
      std::string text;
      for (const auto& s : refused) text += (text.empty() ? "" : "\nclient-sim: ") + s.key + ": " + s.why;
      return usage(text);
    }
  if (auto e = p.validate(); !e.empty()) return usage(e);
  return o;
}

// ---- running -----------------------------------------------------------------------------------

namespace {

std::string rate(double bytes_per_s) {
  if (bytes_per_s >= 1e6) return fmt::format("{:.2f} MB/s", bytes_per_s / 1e6);
  if (bytes_per_s >= 1e3) return fmt::format("{:.1f} kB/s", bytes_per_s / 1e3);
  return fmt::format("{:.0f} B/s", bytes_per_s);
}

/// One line on stderr, rewritten in place; warnings scroll above it.
class progress_line {
 public:
  progress_line(std::ostream& err, bool live, bool quiet) : err_(err), live_(live), quiet_(quiet) {}

  void real(const real_progress& p) {
    if (!live_) return;
    const double t = to_seconds(p.elapsed);
    double bps = 0;
    if (have_last_ && t > last_t_) bps = static_cast<double>(p.modelled_wire_bytes - last_bytes_) / (t - last_t_);
    have_last_ = true;
    last_t_ = t;
    last_bytes_ = p.modelled_wire_bytes;
    std::string head = t < 0 ? std::string("[starting]") : fmt::format("[{:6.1f} s]", t);
    if (p.processes > 1) head += fmt::format(" {} procs", p.processes);
    // Counters the plan's families declare under these names, when one does.
    std::string counters;
    for (const char* name : {"polls", "fetches"})
      if (const auto v = p.counter(name)) counters += fmt::format("  {} {}", name, *v);
    // The kernel's figures come when connections close: live, only the model's rate exists.
    show(fmt::format("{} up {}/{} ({} failed)  events {}  fetched {}{}  {} (modelled wire)", head, p.clients_ready,
                     p.clients, p.clients_failed, p.events_generated, p.events_fetched, counters, rate(bps)));
  }

  void simulated(time_point now, const run_result& so_far) {
    if (!live_) return;
    const auto wall = std::chrono::steady_clock::now();
    if (wall - last_wall_ < std::chrono::milliseconds(100)) return;
    last_wall_ = wall;
    const auto t = so_far.total();
    std::uint64_t generated = 0;
    for (const auto& m : so_far.modes) generated += m.events_generated;
    show(fmt::format("[virtual {:.0f} s of {:.0f}] up {}/{} ({} failed)  events {}  fetched {}",
                     to_seconds(now.time_since_epoch()), to_seconds(so_far.plan.length + so_far.plan.drain),
                     t.clients_ready, so_far.plan.clients, t.clients_failed, generated, t.counter(protocol::emsmdb::counter::events_fetched)));
  }

  void message(std::string_view line) {
    if (quiet_) return;
    clear();
    err_ << "client-sim: " << line << '\n' << std::flush;
    if (!last_.empty()) show(last_);
  }

  void clear() {
    if (shown_) err_ << "\r\x1b[K" << std::flush;
    shown_ = false;
  }

 private:
  void show(std::string text) {
    err_ << "\r\x1b[K" << text << std::flush;
    shown_ = true;
    last_ = std::move(text);
  }

  std::ostream& err_;
  bool live_;
  bool quiet_;
  bool shown_ = false;
  std::string last_;
  bool have_last_ = false;
  double last_t_ = 0;
  std::uint64_t last_bytes_ = 0;
  std::chrono::steady_clock::time_point last_wall_{};
};

}  // namespace

int run_client_sim(const client_sim_options& o, std::ostream& out, std::ostream& err, bool live_progress) {
  progress_line line(err, live_progress && !o.quiet, o.quiet);
  run_result result;
  const bool capturing = !o.pcap.path.empty();
  bool capture_failed = false;  // --pcap was given and no (complete) file came of it
  std::string capture_report;   // one line for stderr after the run
  auto capture_error = [&](const std::string& text) {
    line.clear();
    err << "client-sim: " << text << '\n' << std::flush;
  };
  try {
    if (o.clock == clock_kind::real) {
      real_options ro = o.real;
      ro.progress = [&](const real_progress& p) { line.real(p); };
      ro.log = [&](std::string_view s) { line.message(s); };
      live_capture live;
      if (capturing) {
        ro.before_clients = [&](const std::vector<family_service>& services) {
          live_capture_options lo;
          lo.path = o.pcap.path;
          lo.interface = o.pcap.interface;
          std::vector<protocol::ip_endpoint> tcp, udp;
          for (const auto& s : services) {
            for (const auto& l : s.at.listeners) tcp.push_back(l.at);
            for (const auto& u : s.at.sockets) udp.push_back(u.at);
          }
          lo.filter = notifier_capture_filter(tcp, udp);
          if (auto e = live.start(lo); !e.empty()) {
            capture_failed = true;
            capture_error(e + "; the run continues without a capture (exit code 1 at the end)");
          }
        };
        ro.after_clients = [&] {
          if (!live.running()) return;
          const live_capture_stats s = live.stop();
          capture_report = fmt::format("pcap: {} packets on {} to {}", s.written, o.pcap.interface, o.pcap.path);
          // On Linux loopback the kernel hands libpcap both the outgoing and the
          // incoming copy of each packet (it keeps one), so ps_recv is about twice
          // the packets written there.
          if (s.have_pcap_stats)
            capture_report += fmt::format(" (libpcap: {} received{}, {} dropped by the kernel, {} by the interface)",
                                          s.received, o.pcap.interface == "lo" ? " counting both loopback copies" : "",
                                          s.dropped, s.if_dropped);
          if (s.dropped > 0 || s.if_dropped > 0) capture_report += "; the capture is incomplete";
          if (!s.error.empty()) {
            capture_failed = true;
            capture_report += "; " + s.error;
          }
        };
      }
      if (o.plan.kernel_nat()) {
        kernelnat::kernel_run_options ko;
        ko.notifier_program = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "notifier").string();
        auto r = kernelnat::run_through_kernel_nat(o.plan, ro, ko);
        if (!r) {
          line.clear();
          err << "client-sim: " << r.error().message << '\n';
          return r.error().exit_code;
        }
        result = std::move(*r);
      } else {
        result = run_real(o.plan, ro);
      }
    } else {
      virtual_options vo = o.virt;
      if (live_progress && !o.quiet) {
        vo.progress = [&](time_point now, const run_result& so_far) { line.simulated(now, so_far); };
        vo.progress_every = std::max<duration>(std::chrono::seconds(1), (o.plan.length + o.plan.drain) / 200);
      }
      std::optional<virtual_pcap_recorder> recorder;
      if (capturing) {
        recorder.emplace(virtual_pcap_options{o.pcap.path, o.pcap.epoch, o.pcap.first_clients, o.pcap.sample,
                                              o.plan.seed, o.plan.wire});
        if (auto e = recorder->open(); !e.empty()) {
          capture_error(e);
          return exit_failure;
        }
        vo.capture = &*recorder;
      }
      result = run_virtual(o.plan, vo);
      if (recorder) {
        const auto e = recorder->close();
        const auto& s = recorder->stats();
        capture_report = fmt::format("pcap: {} frames of {} of {} clients to {} (time zero {})", s.frames,
                                     s.clients_observed, s.clients_in_run, o.pcap.path, format_pcap_epoch(o.pcap.epoch));
        if (s.synthesis_errors > 0) {
          capture_failed = true;
          capture_report += fmt::format("; {} frames could not be synthesized (first: {})", s.synthesis_errors,
                                        s.first_error);
        }
        if (!e.empty()) {
          capture_failed = true;
          capture_report += "; " + e;
        }
      }
    }
  } catch (const std::exception& e) {
    line.clear();
    err << "client-sim: " << e.what() << '\n';
    return exit_failure;
  }
  line.clear();
  if (!capture_report.empty() && (!o.quiet || capture_failed)) err << "client-sim: " << capture_report << '\n';

  const bool json_to_stdout = o.json_path == "-";
  print_table(json_to_stdout ? err : out, result);
  if (!o.json_path.empty()) {
    const std::string text = to_json(result).dump(2);
    if (json_to_stdout) {
      out << text << '\n' << std::flush;
    } else {
      std::ofstream f(o.json_path);
      f << text << '\n';
      f.close();
      if (!f) {
        err << "client-sim: cannot write " << o.json_path << '\n';
        return exit_failure;
      }
    }
  }
  if (const auto failed = result.total().clients_failed; failed > 0) {
    if (!o.quiet) err << "client-sim: " << failed << " of " << o.plan.clients << " clients failed\n";
    return exit_failure;
  }
  if (capture_failed) return exit_failure;
  return exit_ok;
}

int run_nat_judge(const std::string& preset, std::ostream& out, std::ostream& err) {
  const auto config = kernelnat::preset_config(preset);
  if (!config) {
    err << "client-sim: unknown NAT preset \"" << preset << "\"\n";
    return exit_usage;
  }
  const auto verdict = kernelnat::realise(*config);
  if (!verdict.realisation) {
    err << "client-sim: " << preset << ": " << verdict.refusal.message() << '\n';
    return exit_usage;
  }
  if (auto why = kernelnat::classifiers_unavailable(); !why.empty()) {
    err << "client-sim: " << why << '\n';
    return exit_failure;
  }
  auto bed = kernelnat::testbed::create(*verdict.realisation);
  if (!bed) {
    err << "client-sim: " << bed.error().message << '\n';
    return exit_failure;
  }
  const auto measured = kernelnat::judge(**bed);
  (*bed)->tear_down();
  if (!measured) {
    err << "client-sim: " << measured.error().message << '\n';
    return exit_failure;
  }
  const auto declared = kernelnat::classify(*config);
  const bool stun_ok = measured->stun_verdict == declared.stun_verdict && measured->stun_exit == declared.stun_exit;
  const bool nd_ok = measured->natdiscovery_mapping == declared.natdiscovery_mapping &&
                     measured->natdiscovery_filtering == declared.natdiscovery_filtering;
  out << fmt::format("preset: {} (kernel: snat to 203.0.113.1{})\n", preset, verdict.realisation->snat_flags);
  out << fmt::format("stun declared: Primary: {} (exit {})\n", declared.stun_verdict, declared.stun_exit);
  out << fmt::format("stun measured: Primary: {} (exit {}) {}\n", measured->stun_verdict, measured->stun_exit,
                     stun_ok ? "agrees" : "DIFFERS");
  out << fmt::format("turnutils_natdiscovery declared: {} {}\n", declared.natdiscovery_mapping,
                     declared.natdiscovery_filtering);
  out << fmt::format("turnutils_natdiscovery measured: {} {} {}\n", measured->natdiscovery_mapping,
                     measured->natdiscovery_filtering, nd_ok ? "agrees" : "DIFFERS");
  return stun_ok && nd_ok ? exit_ok : exit_failure;
}

int client_sim_main(int argc, const char* const* argv) {
  const auto parsed = parse_client_sim_options(argc, argv);
  if (!parsed) {
    std::cerr << "client-sim: " << parsed.error().message << '\n';
    return parsed.error().exit_code;
  }
  if (parsed->cmd == client_sim_options::command::nat_judge) return run_nat_judge(parsed->nat_preset, std::cout, std::cerr);
  if (parsed->cmd != client_sim_options::command::run) {
    std::cout << parsed->text << '\n';
    return exit_ok;
  }
  return run_client_sim(*parsed, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1);
}

}  // namespace nudge::sim
