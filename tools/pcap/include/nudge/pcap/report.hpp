#pragma once
// The analysis as a readable table and as JSON (schema nudge.pcap/1, see
// docs/pcap-tool.md).
#include <cstddef>
#include <ostream>

#include <nlohmann/json_fwd.hpp>

#include "nudge/pcap/analyser.hpp"

namespace nudge::pcap_tool {

struct table_options {
  std::size_t top_clients = 20;  // clients listed, by wire bytes
  std::size_t pings = 20;        // pings listed (first N)
};

void write_table(std::ostream& out, const analysis& a, const table_options& opt = {});

struct json_options {
  bool events = false;  // list every NewMail event (can be long)
};

nlohmann::json to_json(const analysis& a, const json_options& opt = {});

}  // namespace nudge::pcap_tool
