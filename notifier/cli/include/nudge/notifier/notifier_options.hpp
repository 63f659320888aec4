#pragma once
// The notifier's command line, parsed into a plain struct. Pure: parsing never
// prints or exits; --help, --version and errors come back as values for main().
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nudge/notifier/notifier_core.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocol/result.hpp"

namespace nudge::notifier {

struct notifier_options {
  /// What main() does: run the notifier, or print `text` (help, version) and exit 0.
  enum class command { run, help, version };
  command cmd = command::run;
  std::string text;
  // endpoints
  ip_endpoint listen = ip_endpoint::v4(127, 0, 0, 1, 7777);  // DCE/RPC (TCP)
  ip_endpoint udp = ip_endpoint::v4(127, 0, 0, 1, 7778);     // pings out, cookies in
  std::optional<ip_endpoint> control;                         // text control port (off by default)
  // protocol timers
  std::uint32_t polls_max_ms = 60000;
  double ping_resend_s = 60;
  double async_hold_s = 300;
  // callback policy
  callback_policy policy = callback_policy::legacy;
  bool push = true;
  bool async = true;
  // safety
  bool allow_non_loopback = false;
  // event generator
  double events_per_mailbox_hour = 0;
  std::uint64_t seed = 1;
  /// `--set KEY=VALUE`: keys of the other registered protocols' servers
  /// (every family but EMSMDB, which the flags above configure), as given;
  /// checked against the registry when the servers are made.
  std::vector<std::pair<std::string, std::string>> family_keys;
  // output and run
  std::optional<double> duration_s;  // nullopt: until SIGINT/SIGTERM
  std::string stats_json;            // empty: none
  bool quiet = false;
};

/// The exit status of a command-line mistake.
inline constexpr int exit_usage = 2;

/// Parses argv (argv[0] is the program name): the options (command::help or
/// command::version with the text to print when asked), or the mistake,
/// with exit code exit_usage.
result<notifier_options> parse_notifier_options(int argc, const char* const* argv);

/// Every registered protocol: what it emulates, its client modes and its
/// keys with their defaults (`notifier --protocols`).
std::string protocols_text();

/// The driver's configuration for these options.
server_config to_server_config(const notifier_options& o);

}  // namespace nudge::notifier
