#pragma once
// Properties of an analysis that hold for any input: shared by fuzz_pcap_reader
// and fuzz_classifier.
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/report.hpp"

namespace nudge::fuzz {

/// `render`: also build the table and the JSON (slow under the sanitizers, so the
/// targets do it for a share of the inputs).
inline void check_analysis(const pcap_tool::analysis& a, bool render) {
  std::uint64_t in_flows = 0;
  for (const auto& c : a.clients) {
    std::uint64_t client_packets = 0;
    for (const auto& f : c.flows) {
      NUDGE_FUZZ_CHECK(f.traffic.total().packets == f.packets, "a flow's packets are not all in its kinds");
      client_packets += f.packets;
    }
    NUDGE_FUZZ_CHECK(c.traffic.total().packets == client_packets, "a client's traffic is not the sum of its flows");
    NUDGE_FUZZ_CHECK(c.pings_answered <= c.pings, "more pings answered than received");
    NUDGE_FUZZ_CHECK(c.pings_matched <= c.pings, "more pings matched than received");
    in_flows += client_packets;
  }
  NUDGE_FUZZ_CHECK(in_flows + a.skipped.total() == a.packets, "a packet counted twice or not at all");
  NUDGE_FUZZ_CHECK(a.total.traffic.total().packets == in_flows, "mode totals differ from the clients' sum");
  std::uint64_t clients = 0;
  for (const auto& m : a.modes) clients += m.clients;
  NUDGE_FUZZ_CHECK(clients == a.clients.size(), "a client in no mode or in two");
  for (const auto& p : a.pings) {
    NUDGE_FUZZ_CHECK(p.client < a.clients.size(), "a ping of no client");
    NUDGE_FUZZ_CHECK(p.payload.size() <= 16, "a ping longer than a context");
  }
  for (const auto& e : a.events) NUDGE_FUZZ_CHECK(e.client < a.clients.size(), "an event of no client");
  // Both outputs must render whatever the analysis holds.
  if (!render) return;
  std::ostringstream table;
  pcap_tool::write_table(table, a, {5, 5});
  const std::string json = pcap_tool::to_json(a, {true}).dump();
  NUDGE_FUZZ_CHECK(!json.empty(), "no JSON");
}

}  // namespace nudge::fuzz
