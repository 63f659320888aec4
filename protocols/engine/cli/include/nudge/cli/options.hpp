#pragma once
// Options the programs' command lines share, so that an endpoint, a seed or an
// output file looks (and parses) the same in client-sim, notifier, nudge-pcap,
// nudge-replay and nudge-report. Each adds the CLI11 option with its type name;
// the caller chains what is its own (group, default shown, checks).
#include <cstdint>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/result.hpp"

namespace nudge::cli {

/// An ADDR:PORT option, read as text; parse_endpoint() makes it an endpoint
/// once CLI11 has run (so the message can name the flag and what was given).
CLI::Option* add_endpoint_option(CLI::App& app, const std::string& name, std::string& text, const std::string& help);

/// "127.0.0.1:7777" or "[::1]:7777" with a non-zero port; else the failure
/// "<flag> <text>: expected ADDRESS:PORT, e.g. 127.0.0.1:7777".
result<protocol::ip_endpoint> parse_endpoint(std::string_view flag, const std::string& text);

/// A seed option (type name N) for the run's random choices.
CLI::Option* add_seed_option(CLI::App& app, std::uint64_t& seed, const std::string& help);

/// A file to write (type name FILE); what '-' means is the program's to say.
template <class Path>
CLI::Option* add_output_file_option(CLI::App& app, const std::string& name, Path& path, const std::string& help) {
  return app.add_option(name, path, help)->type_name("FILE");
}

}  // namespace nudge::cli
