#include "nudge/replay/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nudge/cli/options.hpp"
#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/react.hpp"
#include "nudge/replay/report.hpp"

#ifndef NUDGE_VERSION
#define NUDGE_VERSION "unknown"
#endif

namespace nudge::replay {

namespace {

constexpr const char* description = R"(nudge-replay: replays the client sessions of a capture against a live notifier.

Reacting (the default). Reads a pcap or pcapng file once per registered protocol
family that reads captures (emsmdb, pollbus, ...), finds each client and rebuilds
it as a client core of its family with the plan the capture shows: when it
started, its mode, its poll interval, and when its mailbox changed. The real
driver runs those cores on loopback sockets against the live notifier, and
injects each mailbox change through the control port (EVENT@family) at its
captured time (divided by --multiplier). The cores react to what the live server
does: a client fetches on a live ping, completes a held wait when the live server
answers it, adopts the interval the live server sets, falls back to polling when
the live server refuses push. The report sets each client's live counters beside
the captured ones of the same name and names every divergence (polls, fetches,
pings, events fetched) beyond --tolerance, per client and overall.

Blind (--blind, EMSMDB only). Re-sends each captured DCE/RPC call as it was, on
fresh sockets, with the live session's context handles and call ids, at the
captured pacing (--multiplier, --pps, --topspeed); reports operations replayed vs
captured and the pacing error. Still useful to load a notifier with a capture's
exact call sequence, and to compare with tcpreplay (bench/replay_topspeed.sh).

Foreign captures (other addresses and ports, pcapng, Linux cooked, Ethernet) need
no mapping: replayed clients talk only to the loopback endpoints the notifier
serves (its control port's SERVICES list; blind: --notifier), from loopback
sources (--sources); nothing is ever sent to a captured address. Traffic no
family reads (TLS, unknown protocols, non-IP frames) is counted and named.
)";

constexpr const char* footer = R"(Pacing, as tcpreplay's:
  --multiplier X   captured times divided by X (both modes; reacting: starts, events
                   and the duration keys of the rebuild, e.g. a poll interval)
  --pps N          blind: N operations per second in capture order
  --topspeed       blind: each call as soon as the previous answer allows
  --loop N         the whole replay N times, one after another
  --limit N        blind: only the capture's first N operations
  --stats S        a statistics line on stderr every S seconds (0: none)

Examples:
  notifier --listen 127.0.0.1:7777 --udp 127.0.0.1:7778 --control 127.0.0.1:7779 &
  nudge-replay captures/virtual-mixed-10.pcap --control 127.0.0.1:7779
  nudge-replay captures/virtual-mixed-10.pcap --multiplier 4 --verbose
  nudge-replay run.pcapng --json replay.json              # a foreign capture, any family
  nudge-replay run.pcap --blind --topspeed --loop 3 --control 127.0.0.1:7779
  nudge-replay run.pcap --dry-run

Exit codes: 0 every client replayed without divergence (blind: consistently) and
none failed; 1 the replay could not run, or a client diverged or failed; 2 usage error.)";

/// A loopback endpoint: nudge-replay never talks to a capture's own addresses.
result<protocol::ip_endpoint> parse_target(const std::string& flag, const std::string& text) {
  auto ep = cli::parse_endpoint(flag, text);
  if (ep && !ep->is_loopback())
    return fail(flag + " " + text + ": refusing a non-loopback target; a replay only talks to 127.0.0.0/8 or ::1",
                exit_usage);
  return ep;
}

std::string parse_sources(const std::string& text, replay_options& o) {
  protocol::loopback_range range;
  if (auto e = protocol::parse_loopback_range(text, range); !e.empty()) return "--sources " + text + ": " + e;
  o.source_first = range.first;
  o.source_count = range.count;
  return {};
}

}  // namespace

result<replay_cli_options> parse_replay_options(int argc, const char* const* argv) {
  replay_cli_options o;
  CLI::App app{description, "nudge-replay"};
  app.footer(footer);
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(30);

  std::string notifier = o.replay.notifier.to_string(), notifier_udp = o.replay.notifier_udp.to_string(), control;
  std::string sources = "127.0.0.2-127.0.0.254";
  double grace = 0;
  bool version = false;
  app.add_option("capture", o.capture, "The capture to replay (pcap or pcapng)")->type_name("FILE");
  cli::add_endpoint_option(app, "--notifier", notifier, "Blind: the live notifier's DCE/RPC endpoint (loopback)");
  cli::add_endpoint_option(app, "--notifier-udp", notifier_udp, "Blind: its UDP endpoint, where cookies go (loopback)");
  auto* o_control = cli::add_endpoint_option(app, "--control", control,
                                             "The notifier's control port: where the capture's mailbox changes are "
                                             "injected (EVENT@family) and, reacting, where SERVICES says where each "
                                             "family is served (reacting default 127.0.0.1:7779)");
  app.add_flag("--blind", o.blind, "Re-send the captured EMSMDB calls as they were instead of rebuilding reacting clients");
  double multiplier = 1;
  auto* o_speed = app.add_option("--multiplier,--speed", multiplier, "Replay this many times faster than captured")
                      ->type_name("X")
                      ->check(CLI::PositiveNumber);
  auto* o_top = app.add_flag("--topspeed", o.replay.topspeed,
                             "Blind: no pacing, each call as soon as the previous answer allows");
  auto* o_pps = app.add_option("--pps", o.pps, "Blind: N operations per second, in capture order")
                    ->type_name("N")
                    ->check(CLI::PositiveNumber);
  app.add_option("--loop", o.loops, "Replay the capture N times, one after another")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  auto* o_limit = app.add_option("--limit", o.limit, "Blind: only the capture's first N operations")
                      ->type_name("N")
                      ->check(CLI::PositiveNumber);
  app.add_option("--stats", o.stats_every_s, "A statistics line on stderr every SECONDS (0: none)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tolerance", o.react.tolerance,
                 "Reacting: counts may differ by N before it is a divergence (a timer cut at the capture's edges)")
      ->type_name("N");
  auto* o_grace = app.add_option("--grace", grace,
                 "Seconds the replay goes on after the capture's last packet, for late answers "
                 "(default 0.5; blind: after the last operation was due, default 5)")
      ->default_str("0.5 (blind: 5)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sources", sources, "Loopback source addresses for the replayed clients' sockets, FIRST-LAST")
      ->type_name("FIRST-LAST");
  app.add_option("--clients", o.replay.max_clients, "Replay only the first N clients of the capture (0 = all)")
      ->type_name("N");
  cli::add_output_file_option(app, "--json", o.json_path, "Write the report as JSON to FILE ('-' = stdout)");
  app.add_flag("--verbose", o.verbose, "Show every client (reacting: its captured and live counters; blind: its operations), not only those that differ");
  app.add_flag("--quiet", o.quiet, "No text report (errors still go to stderr)");
  app.add_flag("--dry-run", o.dry_run, "Only list the clients found in the capture (and what is not replayed); send nothing");
  app.add_flag("--version", version, "Print the version and exit");

  auto usage = [&](std::string msg) -> result<replay_cli_options> {
    return fail(std::move(msg) + "\nRun 'nudge-replay --help' for the options.", exit_usage);
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.what = replay_cli_options::action::help;
    o.text = app.help();
    return o;
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }
  if (version) {
    o.what = replay_cli_options::action::version;
    o.text = std::string("nudge-replay ") + NUDGE_VERSION;
    return o;
  }
  if (o.capture.empty()) return usage("no capture given: nudge-replay FILE");
  if (o_speed->count() && o_top->count()) return usage("--multiplier and --topspeed exclude each other");
  if (o_pps->count() && (o_top->count() || o_speed->count()))
    return usage("--pps replaces the captured pacing: it excludes --multiplier and --topspeed");
  if (!o.blind && (o_top->count() || o_pps->count() || o_limit->count()))
    return usage("--topspeed, --pps and --limit pace captured packets: they need --blind (a reacting replay keeps "
                 "the protocol's own timers; use --multiplier)");
  o.replay.speed = multiplier;
  o.react.multiplier = multiplier;
  const auto n = parse_target("--notifier", notifier);
  if (!n) return usage(n.error().message);
  o.replay.notifier = *n;
  const auto nu = parse_target("--notifier-udp", notifier_udp);
  if (!nu) return usage(nu.error().message);
  o.replay.notifier_udp = *nu;
  if (o_control->count()) {
    const auto c = parse_target("--control", control);
    if (!c) return usage(c.error().message);
    o.replay.control = *c;
    o.react.control = *c;
  }
  if (auto e = parse_sources(sources, o.replay); !e.empty()) return usage(e);
  o.react.source_first = o.replay.source_first;
  o.react.source_count = o.replay.source_count;
  o.react.max_clients = o.replay.max_clients;
  if (o_grace->count()) {
    o.replay.grace = std::chrono::duration_cast<duration>(std::chrono::duration<double>(grace));
    o.react.grace = o.replay.grace;
  }
  if (auto e = validate(o.replay); !e.empty()) return usage(e);
  return o;
}

namespace {

/// Writes `text` to the --json destination; false when the file cannot be written.
bool write_json(const replay_cli_options& o, const std::string& text, std::ostream& out, std::ostream& err) {
  if (o.json_path == "-") {
    out << text << '\n';
    return true;
  }
  std::ofstream f(o.json_path);
  f << text << '\n';
  f.close();
  if (!f) {
    err << "nudge-replay: cannot write " << o.json_path << '\n';
    return false;
  }
  return true;
}

std::string loop_tag(const replay_cli_options& o, std::size_t pass) {
  return o.loops > 1 ? fmt::format("[loop {}/{}] ", pass + 1, o.loops) : std::string();
}

int run_blind(const replay_cli_options& o, std::ostream& out, std::ostream& err) {
  capture_sessions cap = read_capture_sessions(o.capture);
  if (!cap.error.empty()) {
    err << "nudge-replay: " << cap.error << '\n';
    return exit_failure;
  }
  retime_operations(cap, o.pps);
  limit_operations(cap, o.limit);
  if (o.dry_run) {
    out << fmt::format("{}: {} packets ({}), {} DCE/RPC connections, {} clients over {:.3f} s\n", o.capture,
                       cap.summary.packets, cap.summary.link_type, cap.summary.dcerpc_connections, cap.clients.size(),
                       to_seconds(cap.summary.span));
    for (const auto& s : cap.summary.skipped) out << "  skipped: " << s << '\n';
    for (const auto& c : cap.clients) {
      out << fmt::format("{} [{}] from {}: {} operations", c.user_dn, c.mode, c.main_endpoint.to_string(),
                         c.ops.size());
      if (!c.pings.empty()) out << fmt::format(", {} pings", c.pings.size());
      out << '\n';
    }
    return cap.clients.empty() ? exit_failure : exit_ok;
  }
  if (cap.clients.empty()) {
    err << "nudge-replay: " << o.capture << " holds no client session to replay";
    for (const auto& s : cap.summary.skipped) err << "\n  skipped: " << s;
    err << '\n';
    return exit_failure;
  }
  const bool json_to_stdout = o.json_path == "-";
  nlohmann::json passes = nlohmann::json::array();
  bool all_ok = true;
  for (std::size_t pass = 0; pass < o.loops; ++pass) {
    replay_options ro = o.replay;
    if (o.pps > 0) ro.speed = 1;  // the re-timed capture is the pacing
    const std::string tag = loop_tag(o, pass);
    ro.log = [&](std::string_view line) {
      if (!o.quiet) err << "nudge-replay: " << tag << line << '\n';
    };
    if (o.stats_every_s > 0) {
      ro.stats_every = std::chrono::duration_cast<duration>(std::chrono::duration<double>(o.stats_every_s));
      ro.stats = [&](const blind_progress& p) {
        const double s = std::max(to_seconds(p.elapsed), 1e-9);
        err << fmt::format("nudge-replay: {}{:8.2f} s  {} clients  {} sent ({:.0f}/s)  {} answered  {} events\n", tag,
                           to_seconds(p.elapsed), p.clients, p.ops_sent, static_cast<double>(p.ops_sent) / s,
                           p.ops_answered, p.events_injected);
      };
    }
    const replay_outcome outcome = run_replay(cap, ro);
    if (!outcome.error.empty()) {
      err << "nudge-replay: " << outcome.error << '\n';
      return exit_failure;
    }
    const replay_report report = make_report(o.capture, cap, outcome, o.replay);
    if (!o.quiet) {
      std::ostream& text = json_to_stdout ? err : out;
      if (!tag.empty()) text << tag << '\n';
      print_report(text, report, o.verbose);
      text << fmt::format("sessions replayed: {} in {:.3f} s ({:.1f} per second)\n", report.clients.size(),
                          report.wall_seconds,
                          report.wall_seconds > 0 ? static_cast<double>(report.clients.size()) / report.wall_seconds : 0.0);
    }
    passes.push_back(to_json(report));
    all_ok = all_ok && report.ok();
  }
  if (!o.json_path.empty() && !write_json(o, (o.loops == 1 ? passes[0] : passes).dump(2), out, err))
    return exit_failure;
  return all_ok ? exit_ok : exit_failure;
}

int run_react(const replay_cli_options& o, std::ostream& out, std::ostream& err) {
  const replay_plan plan = read_replay_plan(o.capture);
  if (!plan.error.empty()) {
    err << "nudge-replay: " << plan.error << '\n';
    return exit_failure;
  }
  if (o.dry_run) {
    out << fmt::format("{}: {} packets ({}, {}), {} clients over {:.3f} s\n", o.capture, plan.packets, plan.format,
                       plan.link_type, plan.clients.size(), to_seconds(plan.span));
    for (const auto& c : plan.clients) {
      out << fmt::format("{} {} from {}: start {:.3f} s, {} events", c.family, c.mode, c.captured_address.to_string(),
                         to_seconds(c.start), c.events.size());
      for (const auto& [k, v] : c.keys) out << fmt::format(", {}={}", k, v);
      out << '\n';
    }
    if (plan.skipped_packets)
      out << fmt::format("not replayed: {} packets in {} flows no family reads\n", plan.skipped_packets,
                         plan.skipped_flows);
    for (const auto& s : plan.skipped) out << fmt::format("  {} packets: {}\n", s.packets, s.what);
    return plan.clients.empty() ? exit_failure : exit_ok;
  }
  if (plan.clients.empty()) {
    err << "nudge-replay: " << o.capture << " holds no client any registered family can rebuild\n";
    for (const auto& s : plan.skipped) err << "  not replayed, " << s.packets << " packets: " << s.what << '\n';
    return exit_failure;
  }
  const bool json_to_stdout = o.json_path == "-";
  nlohmann::json passes = nlohmann::json::array();
  bool all_ok = true;
  for (std::size_t pass = 0; pass < o.loops; ++pass) {
    react_options ro = o.react;
    const std::string tag = loop_tag(o, pass);
    ro.log = [&](std::string_view line) {
      if (!o.quiet) err << "nudge-replay: " << tag << line << '\n';
    };
    if (o.stats_every_s > 0) {
      ro.stats_every = std::chrono::duration_cast<duration>(std::chrono::duration<double>(o.stats_every_s));
      ro.stats = [&](const sim::real_progress& p) {
        std::string counters;
        for (const auto& [name, v] : p.counters)
          if (v != 0 && counters.size() < 120) counters += fmt::format("  {}={}", name, v);
        err << fmt::format("nudge-replay: {}{:8.2f} s  {}/{} clients started  {} failed  {} events injected  {} fetched{}\n",
                           tag, to_seconds(p.elapsed), p.clients_started, p.clients, p.clients_failed,
                           p.events_generated, p.events_fetched, counters);
      };
    }
    const react_outcome r = run_reacting(plan, ro);
    if (!r.error.empty()) {
      err << "nudge-replay: " << r.error << '\n';
      return exit_failure;
    }
    if (!o.quiet) {
      std::ostream& text = json_to_stdout ? err : out;
      text << tag;
      print_react_report(text, plan, r, o.verbose);
    }
    passes.push_back(react_to_json(o.capture, plan, r, ro));
    all_ok = all_ok && r.ok();
  }
  if (!o.json_path.empty() && !write_json(o, (o.loops == 1 ? passes[0] : passes).dump(2), out, err))
    return exit_failure;
  return all_ok ? exit_ok : exit_failure;
}

}  // namespace

int run_replay_cli(const replay_cli_options& o, std::ostream& out, std::ostream& err) {
  return o.blind ? run_blind(o, out, err) : run_react(o, out, err);
}

int replay_main(int argc, const char* const* argv) {
  const auto parsed = parse_replay_options(argc, argv);
  if (!parsed) {
    std::cerr << "nudge-replay: " << parsed.error().message << '\n';
    return parsed.error().exit_code;
  }
  if (parsed->what != replay_cli_options::action::run) {
    std::cout << parsed->text << '\n';
    return exit_ok;
  }
  return run_replay_cli(*parsed, std::cout, std::cerr);
}

}  // namespace nudge::replay
