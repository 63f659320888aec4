#include "nudge/replay/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nudge/cli/options.hpp"
#include "nudge/replay/capture_sessions.hpp"
#include "nudge/replay/report.hpp"

#ifndef NUDGE_VERSION
#define NUDGE_VERSION "unknown"
#endif

namespace nudge::replay {

namespace {

constexpr const char* description = R"(nudge-replay: re-drives the client sessions of a capture against a live notifier.

Reads a pcap or pcapng file (libpcap), reassembles its TCP streams, decodes the
DCE/RPC calls and finds each client: its EMSMDB connection (bind, EcDoConnectEx,
registration, polls and fetches), its AsyncEMSMDB connection, its UDP cookies.
Each client is replayed on fresh sockets with the captured pacing (or --speed
times faster, or --topspeed), one call at a time per connection, with the live
session's context handles, call ids and its own callback address. The report
compares, per client, the operations replayed with those captured, and gives
the pacing error |actual send offset - scaled captured offset| (p50, p99, max).

Targets must be loopback (127.0.0.0/8 or ::1): never the capture's addresses.
The live notifier has no mail unless --control is given, in which case an EVENT
is injected wherever the capture shows mail arriving (an async wait completed
with NotificationPending, a ping). Without it, a wait the capture saw completed
stays held and what follows it on that connection is reported as blocked.
)";

constexpr const char* footer = R"(Examples:
  notifier --listen 127.0.0.1:7777 --udp 127.0.0.1:7778 --control 127.0.0.1:7779 &
  nudge-replay captures/virtual-mixed-10.pcap --speed 4 --control 127.0.0.1:7779
  nudge-replay run.pcap --topspeed --json replay.json
  nudge-replay run.pcap --dry-run

Exit codes: 0 every client replayed consistently and none failed; 1 the replay
could not run, or a client differs or failed; 2 usage error.)";

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
  double grace = to_seconds(o.replay.grace);
  bool version = false;
  app.add_option("capture", o.capture, "The capture to replay (pcap or pcapng)")->type_name("FILE");
  cli::add_endpoint_option(app, "--notifier", notifier, "The live notifier's DCE/RPC endpoint (loopback)");
  cli::add_endpoint_option(app, "--notifier-udp", notifier_udp, "Its UDP endpoint, where cookies go (loopback)");
  auto* o_control = cli::add_endpoint_option(app, "--control", control,
                                             "Its control port: inject the capture's mail there (EVENT per completed "
                                             "async wait and per ping), so waits complete as captured");
  auto* o_speed = app.add_option("--speed", o.replay.speed, "Replay this many times faster than captured")
                      ->type_name("X")
                      ->check(CLI::PositiveNumber);
  auto* o_top = app.add_flag("--topspeed", o.replay.topspeed,
                             "No pacing: each call as soon as the previous answer allows");
  app.add_option("--grace", grace,
                 "Seconds to wait for outstanding answers after the last operation was due")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sources", sources, "Loopback source addresses for the replayed clients' sockets, FIRST-LAST")
      ->type_name("FIRST-LAST");
  app.add_option("--clients", o.replay.max_clients, "Replay only the first N clients of the capture (0 = all)")
      ->type_name("N");
  cli::add_output_file_option(app, "--json", o.json_path, "Write the report as JSON to FILE ('-' = stdout)");
  app.add_flag("--verbose", o.verbose, "Show every client's operations, not only those that differ");
  app.add_flag("--quiet", o.quiet, "No text report (errors still go to stderr)");
  app.add_flag("--dry-run", o.dry_run, "Only list the clients found in the capture; send nothing");
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
  if (o_speed->count() && o_top->count()) return usage("--speed and --topspeed exclude each other");
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
  }
  if (auto e = parse_sources(sources, o.replay); !e.empty()) return usage(e);
  o.replay.grace = std::chrono::duration_cast<duration>(std::chrono::duration<double>(grace));
  if (auto e = validate(o.replay); !e.empty()) return usage(e);
  return o;
}

int run_replay_cli(const replay_cli_options& o, std::ostream& out, std::ostream& err) {
  const capture_sessions cap = read_capture_sessions(o.capture);
  if (!cap.error.empty()) {
    err << "nudge-replay: " << cap.error << '\n';
    return exit_failure;
  }
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
  replay_options ro = o.replay;
  ro.log = [&](std::string_view line) {
    if (!o.quiet) err << "nudge-replay: " << line << '\n';
  };
  const replay_outcome outcome = run_replay(cap, ro);
  if (!outcome.error.empty()) {
    err << "nudge-replay: " << outcome.error << '\n';
    return exit_failure;
  }
  const replay_report report = make_report(o.capture, cap, outcome, o.replay);
  const bool json_to_stdout = o.json_path == "-";
  if (!o.quiet) print_report(json_to_stdout ? err : out, report, o.verbose);
  if (!o.json_path.empty()) {
    const std::string text = to_json(report).dump(2);
    if (json_to_stdout) {
      out << text << '\n';
    } else {
      std::ofstream f(o.json_path);
      f << text << '\n';
      f.close();
      if (!f) {
        err << "nudge-replay: cannot write " << o.json_path << '\n';
        return exit_failure;
      }
    }
  }
  return report.ok() ? exit_ok : exit_failure;
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
