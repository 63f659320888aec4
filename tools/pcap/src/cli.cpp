#include "nudge/pcap/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nudge/pcap/capture_reader.hpp"
#include "nudge/pcap/report.hpp"

namespace nudge::pcap_tool {

result<pcap_options> parse_pcap_options(int argc, const char* const* argv) {
  pcap_options o;
  CLI::App app{"nudge-pcap: what the notifier's traffic in a capture cost, per client, per mode, per message kind",
               "nudge-pcap"};
  app.require_subcommand(0, 1);
  auto* analyse = app.add_subcommand("analyse", "analyse a pcap or pcapng capture");
  analyse->alias("analyze");
  std::string input;
  std::string json_path;
  std::uint16_t server_port = 0;
  std::uint16_t udp_port = 0;
  double fetch_window = 5.0;
  double clock_offset = 0.0;
  std::size_t max_flows = o.analysis.max_flows;
  analyse->add_option("capture", input, "pcap or pcapng file")->required();
  auto* json_opt = analyse->add_option("--json", json_path, "also write the analysis as JSON (schema nudge.pcap/1)");
  auto* sp = analyse->add_option("--server-port", server_port,
                                 "the notifier's TCP port (default: learned from bind_ack PDUs)")
                 ->check(CLI::Range(1, 65535));
  auto* up = analyse->add_option("--udp-port", udp_port,
                                 "the notifier's UDP port: any datagram of at most 16 bytes from it is a ping "
                                 "(default: learned from datagrams that match a registered context)")
                 ->check(CLI::Range(1, 65535));
  analyse->add_option("--fetch-window", fetch_window,
                      "seconds after a ping, an async-wait completion or a RopPending within which an EcDoRpcExt2 "
                      "counts as a fetch")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  auto* co = analyse->add_option("--clock-offset", clock_offset,
                                 "seconds to subtract from capture times to get the clock of the NewMail creation "
                                 "stamps (default: automatic)")
                ->check(CLI::Range(-1e10, 1e10));
  std::string group_by = "auto";
  analyse->add_option("--group-by", group_by,
                      "what a client is: ip (its connections and UDP socket by IP address), session (each EMSMDB "
                      "session with its async connection and UDP socket), auto (ip, unless an address holds "
                      "sessions at the same time)")
      ->check(CLI::IsMember({"auto", "ip", "session"}))
      ->capture_default_str();
  analyse->add_option("--family", o.analysis.family,
                      "the protocol family whose traffic to read (default: the first registered family that reads "
                      "captures, emsmdb)");
  analyse->add_option("--top", o.top, "clients listed in the table")->capture_default_str();
  analyse->add_option("--pings", o.pings, "pings listed in the table")->capture_default_str();
  analyse->add_option("--max-flows", max_flows, "flows tracked at most (memory bound)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 28));
  analyse->add_flag("--events", o.events_in_json, "list every NewMail event in the JSON");
  analyse->add_flag("-q,--quiet", o.quiet, "no table on stdout");

  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    o.help_text = app.help();
    o.cmd = pcap_options::command::help;
    return o;
  } catch (const CLI::CallForAllHelp&) {
    o.help_text = app.help("", CLI::AppFormatMode::All);
    o.cmd = pcap_options::command::help;
    return o;
  } catch (const CLI::ParseError& e) {
    return fail(e.what(), exit_usage);
  }
  if (!analyse->parsed()) {
    o.help_text = app.help("", CLI::AppFormatMode::All);
    o.cmd = pcap_options::command::help;
    return o;
  }
  o.cmd = pcap_options::command::analyse;
  o.input = input;
  if (*json_opt) o.json = json_path;
  if (*sp) o.analysis.server_port = server_port;
  if (*up) o.analysis.udp_port = udp_port;
  if (*co) {
    if (!std::isfinite(clock_offset)) return fail("--clock-offset: not a number", exit_usage);
    o.analysis.clock_offset_s = clock_offset;
  }
  o.analysis.fetch_window = std::chrono::duration_cast<duration>(std::chrono::duration<double>(fetch_window));
  o.analysis.max_flows = max_flows;
  if (!capture_family(o.analysis.family))
    return fail("--family " + o.analysis.family + ": no registered family of that name reads captures", exit_usage);
  o.analysis.group_by = group_by == "ip"        ? client_grouping::ip
                        : group_by == "session" ? client_grouping::session
                                                : client_grouping::automatic;
  return o;
}

int pcap_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  const auto parsed = parse_pcap_options(argc, argv);
  if (!parsed) {
    err << "nudge-pcap: " << parsed.error().message << "\n(try nudge-pcap analyse --help)\n";
    return parsed.error().exit_code;
  }
  const pcap_options& o = *parsed;
  if (o.cmd == pcap_options::command::help) {
    out << o.help_text;
    return exit_ok;
  }

  analyser an(o.analysis);
  const auto read = read_capture(o.input, an);
  if (!read) {
    err << "nudge-pcap: " << read.error().message << "\n";
    return exit_unreadable;
  }
  const read_status& st = *read;
  analysis a = an.finish();
  a.file = o.input.string();
  st.apply_to(a);
  if (!a.error.empty())
    err << "nudge-pcap: " << a.file << ": "
        << (a.error.find("truncated") != std::string::npos ? "truncated" : "unreadable") << " at packet "
        << a.truncated_at.value_or(0) << " (" << a.error << "); the " << st.records
        << " packets before it are analysed\n";
  if (!o.quiet) write_table(out, a, {o.top, o.pings});
  if (o.json) {
    std::ofstream f(*o.json);
    f << to_json(a, {o.events_in_json}).dump(2) << "\n";
    if (!f) {
      err << "nudge-pcap: cannot write " << o.json->string() << "\n";
      return exit_unreadable;
    }
  }
  return a.error.empty() ? exit_ok : exit_truncated;
}

}  // namespace nudge::pcap_tool
