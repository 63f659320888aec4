#include "nudge/notifier/notifier_options.hpp"

#include <cmath>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "nudge/cli/options.hpp"
#include "nudge/engine/registry.hpp"

#ifndef NUDGE_VERSION
#define NUDGE_VERSION "0.0.0"
#endif

namespace nudge::notifier {

namespace {

constexpr const char* description =
    "notifier: an emulator of Exchange's legacy new-mail notification machinery.\n"
    "\n"
    "Clients bind EMSMDB over DCE/RPC on --listen (TCP), log on with EcDoConnectEx and\n"
    "learn of new mail in one of three ways:\n"
    "  push   EcRRegisterPushNotification registers a 16-byte context and a callback\n"
    "         SOCKADDR; on new mail the notifier sends that context, alone, in a UDP\n"
    "         datagram (a 'ping') from --udp, and resends it every --ping-resend seconds\n"
    "         until the client fetches the details with EcDoRpcExt2;\n"
    "  async  EcDoAsyncConnectEx + EcDoAsyncWaitEx: a call the notifier holds until\n"
    "         mail arrives or --async-hold passes;\n"
    "  poll   EcDoRpcExt2 every pcmsPollsMax (--polls-max-ms), the fallback.\n"
    "New mail comes from the control port (--control) or the built-in Poisson\n"
    "generator (--events-per-mailbox-hour).";

constexpr const char* footer =
    "Control protocol (--control, newline-terminated text, one reply per line):\n"
    "  EVENT <user_dn>        new mail for that mailbox       -> OK <event_id>\n"
    "  EVENTS <n> <user_dn>   n new mails at once              -> OK <first_id> <last_id>\n"
    "  EVENT@<family> <user_dn>, EVENTS@<family> <n> <user_dn>\n"
    "                         the same for that protocol only (a name notifier\n"
    "                         --protocols lists, e.g. EVENT@emsmdb <user_dn>);\n"
    "                         without @<family>, events go to EMSMDB alone\n"
    "  STATS                  counters as one line of JSON\n"
    "  SERVICES               where each protocol listens, as one line of JSON\n"
    "  QUIT                   close this control connection    -> OK bye\n"
    "  anything else                                           -> ERR <reason>\n"
    "\n"
    "Other protocols: every other registered protocol (notifier --protocols lists them\n"
    "with their keys) is served too, each on its own ports, configured with --set.\n"
    "\n"
    "Safety: nudge sends real datagrams only to loopback (127.0.0.0/8, ::1) and listens\n"
    "only on loopback; --allow-non-loopback lifts both (the control port stays loopback).\n"
    "\n"
    "Examples:\n"
    "  notifier --control 127.0.0.1:7779\n"
    "  notifier --policy verified --events-per-mailbox-hour 12 --seed 7 --duration 600 \\\n"
    "           --stats-json run.json\n"
    "  printf 'EVENT /o=nudge/ou=First Administrative Group/cn=Recipients/cn=user1\\nSTATS\\n' \\\n"
    "    | nc -q1 127.0.0.1 7779\n"
    "See docs/notifier.md.";

std::optional<std::string> parse_endpoint(const std::string& flag, const std::string& text, ip_endpoint& out) {
  auto e = ip_endpoint::parse(text);
  if (!e)
    return flag + ": '" + text + "' is not an address:port (for example 127.0.0.1:7777 or [::1]:7777)";
  out = *e;
  return std::nullopt;
}

std::optional<std::string> require_loopback(const std::string& flag, const ip_endpoint& e, bool allowed) {
  if (allowed || e.is_loopback()) return std::nullopt;
  return flag + " " + e.to_string() +
         " is not a loopback address: the notifier listens on loopback only unless --allow-non-loopback is given";
}

/// Breaks an option's description into lines CLI11 indents under the description column.
std::string wrap(std::string_view text, std::size_t width = 46) {
  std::string out;
  std::size_t line = 0;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    if (line > 0 && line + 1 + word.size() > width) {
      out += '\n';
      line = 0;
    } else if (line > 0) {
      out += ' ';
      ++line;
    }
    out += word;
    line += word.size();
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
  }
  return out;
}

duration seconds_to_duration(double s) { return duration(static_cast<duration::rep>(std::llround(s * 1e9))); }

failure error(std::string message) { return fail(std::move(message), exit_usage); }

notifier_options asked(notifier_options::command c, std::string text) {
  notifier_options o;
  o.cmd = c;
  o.text = std::move(text);
  return o;
}

}  // namespace

result<notifier_options> parse_notifier_options(int argc, const char* const* argv) {
  notifier_options o;
  std::string listen = o.listen.to_string();
  std::string udp = o.udp.to_string();
  std::string control;
  std::string policy(to_string(o.policy));
  double per_hour = 0;
  double per_day = 0;
  double duration_s = 0;
  bool no_push = false;
  bool no_async = false;

  CLI::App app{description, "notifier"};
  app.set_version_flag("--version", std::string("notifier (nudge) ") + NUDGE_VERSION);
  app.footer(footer);
  app.get_formatter()->column_width(34);

  const std::string endpoints = "Endpoints";
  cli::add_endpoint_option(app, "--listen", listen,
                           wrap("TCP address:port serving DCE/RPC (EMSMDB and AsyncEMSMDB); port 0 picks a free one"))
      ->group(endpoints)
      ->capture_default_str();
  cli::add_endpoint_option(app, "--udp", udp,
                           wrap("UDP address:port the pings leave from and reachability cookies arrive at (clients "
                                "of the `verified` policy send their cookie here)"))
      ->group(endpoints)
      ->capture_default_str();
  cli::add_endpoint_option(app, "--control", control,
                           wrap("loopback TCP address:port of the text control port (EVENT, EVENTS, STATS, QUIT; see "
                                "below); off by default"))
      ->group(endpoints);

  const std::string timers = "Protocol timers";
  app.add_option("--polls-max-ms", o.polls_max_ms,
                 wrap("pcmsPollsMax returned by EcDoConnectEx: how often a client that has neither push nor async "
                      "polls with EcDoRpcExt2, in milliseconds"))
      ->group(timers)
      ->type_name("MS")
      ->capture_default_str();
  app.add_option("--ping-resend", o.ping_resend_s,
                 wrap("seconds between resends of a ping while the mailbox still holds unfetched details (a lost "
                      "datagram costs at most this much delay)"))
      ->group(timers)
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--async-hold", o.async_hold_s,
                 wrap("seconds an EcDoAsyncWaitEx is held, counted from the client's last EcDoRpcExt2, before it "
                      "completes with nothing pending"))
      ->group(timers)
      ->type_name("SECONDS")
      ->capture_default_str();

  const std::string callbacks = "Callback policy";
  app.add_option("--policy", policy,
                 "where a ping goes:\n"
                 "  legacy    the SOCKADDR the client registered,\n"
                 "            as Exchange did (breaks behind NAT)\n"
                 "  peer      the registered port on the address\n"
                 "            the TCP session came from\n"
                 "  verified  the source address of the client's\n"
                 "            reachability cookie (NUDGEVFY),\n"
                 "            once one arrived")
      ->group(callbacks)
      ->type_name("POLICY")
      ->capture_default_str();
  app.add_flag("--no-push", no_push,
               wrap("answer EcRRegisterPushNotification with ecNotSupported: clients fall back to async or polling"))
      ->group(callbacks);
  app.add_flag("--no-async", no_async,
               wrap("answer EcDoAsyncConnectEx with ecRejected: clients fall back to push or polling"))
      ->group(callbacks);

  const std::string safety = "Safety";
  app.add_flag("--allow-non-loopback", o.allow_non_loopback,
               wrap("allow listening on, and sending pings to, addresses outside 127.0.0.0/8 and ::1 (without it "
                    "such pings are refused and counted)"))
      ->group(safety);

  const std::string events = "Event generator";
  auto* hour = app.add_option("--events-per-mailbox-hour", per_hour,
                              wrap("new mails per mailbox per hour, a Poisson process for every mailbox the notifier "
                                   "knows (created by the first EcDoConnectEx naming it); off by default"))
                   ->group(events)
                   ->type_name("RATE");
  auto* day = app.add_option("--events-per-mailbox-day", per_day, wrap("the same rate, per mailbox per day"))
                  ->group(events)
                  ->type_name("RATE");
  hour->excludes(day);
  app.add_option("--seed", o.seed, wrap("seed of the generator's random numbers"))
      ->group(events)
      ->capture_default_str();

  const std::string others = "Other protocols";
  std::vector<std::string> sets;
  bool list_protocols = false;
  app.add_option("--set", sets,
                 wrap("KEY=VALUE: a key of another protocol's server, e.g. pollbus.policy=activity (repeatable; "
                      "--protocols lists the keys)"))
      ->group(others)
      ->type_name("KEY=VALUE");
  app.add_flag("--protocols", list_protocols, wrap("list the registered protocols, their modes and keys, and exit"))
      ->group(others);

  const std::string output_group = "Output";
  auto* dur = app.add_option("--duration", duration_s, wrap("stop after this many seconds (default: run until SIGINT "
                                                            "or SIGTERM)"))
                  ->group(output_group)
                  ->type_name("SECONDS");
  app.add_option("--stats-json", o.stats_json, wrap("at exit, write the final statistics to FILE as JSON"))
      ->group(output_group)
      ->type_name("FILE");
  app.add_flag("-q,--quiet", o.quiet, wrap("log warnings and errors only (the final summary line still prints)"))
      ->group(output_group);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return asked(notifier_options::command::help, app.help());
  } catch (const CLI::CallForAllHelp&) {
    return asked(notifier_options::command::help, app.help("", CLI::AppFormatMode::All));
  } catch (const CLI::CallForVersion& v) {
    return asked(notifier_options::command::version, v.what());
  } catch (const CLI::ParseError& e) {
    return error(e.what());
  }

  if (list_protocols) return asked(notifier_options::command::help, protocols_text());
  for (const auto& kv : sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return error("--set " + kv + ": expected KEY=VALUE, for example pollbus.policy=activity");
    o.family_keys.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }

  if (auto e = parse_endpoint("--listen", listen, o.listen)) return error(*e);
  if (auto e = parse_endpoint("--udp", udp, o.udp)) return error(*e);
  if (!control.empty()) {
    ip_endpoint c;
    if (auto e = parse_endpoint("--control", control, c)) return error(*e);
    if (!c.is_loopback())
      return error("--control " + c.to_string() +
                   " is not a loopback address: the control port has no authentication and stays on loopback");
    o.control = c;
  }
  if (auto e = require_loopback("--listen", o.listen, o.allow_non_loopback)) return error(*e);
  if (auto e = require_loopback("--udp", o.udp, o.allow_non_loopback)) return error(*e);

  auto p = parse_callback_policy(policy);
  if (!p) return error("--policy: unknown callback policy '" + policy + "' (expected legacy, peer or verified)");
  o.policy = *p;
  o.push = !no_push;
  o.async = !no_async;

  if (o.polls_max_ms == 0 || o.polls_max_ms > 86400000)
    return error("--polls-max-ms: must be from 1 to 86400000 milliseconds");
  if (!std::isfinite(per_hour) || per_hour < 0 || !std::isfinite(per_day) || per_day < 0)
    return error("--events-per-mailbox-hour/--events-per-mailbox-day: must not be negative");
  auto positive = [](double v) { return std::isfinite(v) && v > 0 && v <= 1e7; };
  if (!positive(o.ping_resend_s)) return error("--ping-resend: must be a number of seconds above 0");
  if (!positive(o.async_hold_s)) return error("--async-hold: must be a number of seconds above 0");
  if (dur->count() > 0) {
    if (!positive(duration_s)) return error("--duration: must be a number of seconds above 0");
    o.duration_s = duration_s;
  }
  o.events_per_mailbox_hour = day->count() > 0 ? per_day / 24.0 : per_hour;
  if (!std::isfinite(o.events_per_mailbox_hour) || o.events_per_mailbox_hour > 3.6e9)
    return error("--events-per-mailbox-hour: too large (at most 3600000000)");
  return o;
}

std::string protocols_text() {
  std::string out = "Protocols the notifier serves (the registry):\n";
  for (const engine::family& f : engine::registry::instance().families()) {
    out += fmt::format("\n{}: {}\n", f.name, f.doc);
    std::string modes;
    for (const auto& m : f.words.modes) modes += (modes.empty() ? "" : ", ") + m.name;
    out += fmt::format("  client modes: {}\n", modes.empty() ? "(none)" : modes);
    if (f.name == "emsmdb") {
      out += "  served as the options above configure it (--listen, --udp, --policy, ...)\n";
      continue;
    }
    if (f.keys.empty()) out += "  keys: none\n";
    for (const auto& k : f.keys)
      out += fmt::format("  --set {}={}\n      {}\n", k.key, k.default_value, k.doc);
  }
  return out;
}

server_config to_server_config(const notifier_options& o) {
  server_config c;
  c.core.polls_max_ms = o.polls_max_ms;
  c.core.ping_resend = seconds_to_duration(o.ping_resend_s);
  c.core.async_hold = seconds_to_duration(o.async_hold_s);
  c.core.policy = o.policy;
  c.core.push_enabled = o.push;
  c.core.async_enabled = o.async;
  c.core.allow_non_loopback = o.allow_non_loopback;
  c.tcp_listen = o.listen;
  c.udp_bind = o.udp;
  c.control = o.control;
  c.events_per_mailbox_hour = o.events_per_mailbox_hour;
  c.seed = o.seed;
  return c;
}

}  // namespace nudge::notifier
