#pragma once
// The nudge-pcap command line: `nudge-pcap analyse FILE [options]` (alias `analyze`).
#include <cstddef>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nudge/pcap/analyser.hpp"
#include "nudge/protocol/result.hpp"

namespace nudge::pcap_tool {

struct pcap_options {
  enum class command { analyse, help };
  command cmd = command::help;
  std::string help_text;  // command::help: what to print
  std::filesystem::path input;
  std::optional<std::filesystem::path> json;
  analyser_options analysis;
  std::size_t top = 20;
  std::size_t pings = 20;
  bool events_in_json = false;
  bool quiet = false;  // no table on stdout
};

/// Exit statuses of pcap_main.
inline constexpr int exit_ok = 0;
inline constexpr int exit_unreadable = 1;  // the capture could not be opened, or the JSON not written
inline constexpr int exit_usage = 2;
inline constexpr int exit_truncated = 3;   // the capture broke off: partial results were reported

/// Parses argv (argv[0] is the program name): the options (command::help with
/// the help text when asked), or the usage error (exit code exit_usage).
result<pcap_options> parse_pcap_options(int argc, const char* const* argv);

int pcap_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace nudge::pcap_tool
