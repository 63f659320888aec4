#pragma once
// The `nudge-replay` command line: parsing (pure: help and version come back
// as options to act on, usage errors as a result's failure) and the run that follows.
//
// Exit codes: 0 every client replayed without divergence (reacting) or
// consistently with the capture (blind: client_report::consistent) and none
// failed; 1 the replay could not run (the capture cannot be read or holds no
// client, the notifier is unreachable, the JSON file cannot be written) or some
// client diverged, differs or failed; 2 usage error (bad flag or value, a
// non-loopback target).
#include <iosfwd>
#include <string>

#include "nudge/protocol/result.hpp"
#include "nudge/replay/react.hpp"
#include "nudge/replay/replayer.hpp"

namespace nudge::replay {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

struct replay_cli_options {
  enum class action { run, help, version };
  action what = action::run;
  std::string text;  // help / version: what to print
  std::string capture;
  /// Blind: re-send the captured EMSMDB calls as they were (replay); else rebuild and react (react).
  bool blind = false;
  replay_options replay;
  react_options react;
  double pps = 0;          // blind: operations per second, instead of the captured pacing
  std::size_t limit = 0;   // blind: only the capture's first N operations
  std::size_t loops = 1;   // replay the capture this many times, one after another
  double stats_every_s = 1;  // the live statistics line on stderr (0: none)
  std::string json_path;  // "-": stdout (the text report then goes to stderr)
  bool verbose = false;
  bool quiet = false;     // no text report (errors still are)
  bool dry_run = false;   // only list what the capture holds
};

/// The options, or a usage error (exit code exit_usage) with its message.
result<replay_cli_options> parse_replay_options(int argc, const char* const* argv);

/// Reads the capture, replays it, reports. Returns the exit code.
int run_replay_cli(const replay_cli_options& o, std::ostream& out, std::ostream& err);

int replay_main(int argc, const char* const* argv);

}  // namespace nudge::replay
