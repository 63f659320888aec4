#pragma once
// The notifier's command line, parsed into a plain struct. Pure: parsing never
// prints or exits; --help, --version and errors come back as values for main().
#include <cstdint>
#include <optional>
#include <string>

#include "nudge/notifier/notifier_core.hpp"
#include "nudge/notifier/notifier_server.hpp"

namespace nudge::notifier {

struct notifier_options {
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
  // output and run
  std::optional<double> duration_s;  // nullopt: until SIGINT/SIGTERM
  std::string stats_json;            // empty: none
  bool quiet = false;
};

struct parse_result {
  enum class action { run, help, version, error };
  action what = action::run;
  notifier_options options;  // meaningful when what == run
  std::string text;          // the help or version text, or the error message
  int exit_code() const { return what == action::error ? 2 : 0; }
};

parse_result parse_notifier_options(int argc, const char* const* argv);

/// The driver's configuration for these options.
server_config to_server_config(const notifier_options& o);

}  // namespace nudge::notifier
