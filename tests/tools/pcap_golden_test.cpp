// nudge-pcap on nudge's golden captures (captures/, made by client-sim in
// virtual time): the analysis of each file equals the counts of the run that
// made it. The run is not pasted in: the test reads the command captures/README.md
// records for the file, runs it (in process, --json instead of --pcap) and
// compares the analyser's figures per mode with the run's own: clients,
// messages, payload and wire bytes, packets, polls, fetches and NewMail events.
// (tests/pcap/golden_capture_test.cpp checks that the same command rewrites the
// file byte for byte.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/sim/client_sim_cli.hpp"
#include "pcap_tool_support.hpp"

#ifndef NUDGE_SOURCE_DIR
#error "NUDGE_SOURCE_DIR must name the source tree"
#endif

namespace nudge::pcap_tool::test {
namespace {

namespace fs = std::filesystem;

const fs::path captures_dir = fs::path(NUDGE_SOURCE_DIR) / "captures";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The words of a shell command line: blanks separate, '...' quotes (all the README uses).
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string w;
  bool in_word = false, quoted = false;
  for (const char c : line) {
    if (quoted) {
      if (c == '\'') quoted = false;
      else w += c;
    } else if (c == '\'') {
      quoted = in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(w);
      w.clear();
      in_word = false;
    } else {
      w += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(w);
  return words;
}

/// The client-sim command captures/README.md gives for `file` (the indented
/// `client-sim ... --pcap captures/<file>` line), as words.
std::vector<std::string> recorded_command(const std::string& file) {
  std::istringstream readme(slurp(captures_dir / "README.md"));
  const std::string tail = "--pcap captures/" + file;
  for (std::string line; std::getline(readme, line);) {
    const auto start = line.find("client-sim ");
    if (start == std::string::npos || line.rfind("    ", 0) != 0) continue;
    if (line.size() < tail.size() || line.compare(line.size() - tail.size(), tail.size(), tail) != 0) continue;
    return shell_words(line.substr(start));
  }
  return {};
}

/// Runs the recorded command with --json in place of --pcap; the run's result (nudge.result/1).
std::optional<nlohmann::json> rerun(const std::string& file) {
  std::vector<std::string> args = recorded_command(file);
  if (args.size() < 3 || args[args.size() - 2] != "--pcap") {
    ADD_FAILURE() << "captures/README.md gives no `client-sim ... --pcap captures/" << file << "` command";
    return std::nullopt;
  }
  const fs::path json_path = scratch_dir() / ("golden_" + file + ".json");
  args.resize(args.size() - 2);
  args.insert(args.end(), {"--quiet", "--json", json_path.string()});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = sim::parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
  if (!parsed) {
    ADD_FAILURE() << "the recorded command does not parse: " << parsed.error().message;
    return std::nullopt;
  }
  if (parsed.value().clock != sim::clock_kind::virtual_time) {
    ADD_FAILURE() << "the recorded command of " << file << " is not a virtual-time run";
    return std::nullopt;
  }
  std::ostringstream table, err;
  if (sim::run_client_sim(parsed.value(), table, err, false) != sim::exit_ok) {
    ADD_FAILURE() << "the recorded command failed: " << err.str();
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(slurp(json_path), nullptr, false);
  fs::remove(json_path);
  if (j.is_discarded()) {
    ADD_FAILURE() << "client-sim wrote no readable JSON";
    return std::nullopt;
  }
  return j;
}

traffic_cell cell_of(const nlohmann::json& c) {
  return {c.at("messages").get<std::uint64_t>(), c.at("payload_bytes").get<std::uint64_t>(),
          c.at("wire_bytes").get<std::uint64_t>(), c.at("packets").get<std::uint64_t>()};
}

/// The analysis of captures/<file> (grouped as `grouping` says) equals the run's counts.
void expect_capture_is_the_run(const std::string& file, const std::string& grouping) {
  const fs::path path = captures_dir / file;
  ASSERT_TRUE(fs::exists(path)) << path << " is part of the source tree";
  const auto run = rerun(file);
  ASSERT_TRUE(run.has_value());
  const analysis a = analyse_file(path);
  EXPECT_EQ(a.grouping, grouping);
  EXPECT_EQ(a.skipped.total(), 0u);

  std::uint64_t clients = 0, packets = 0;
  for (std::size_t i = 0; i < client_mode_count; ++i) {
    const auto mode = static_cast<client_mode>(i);
    SCOPED_TRACE(std::string(to_string(mode)));
    const mode_report& m = a.modes[i];
    const auto& modes = run->at("modes");
    if (!modes.contains(std::string(to_string(mode)))) {
      EXPECT_EQ(m.clients, 0u) << "the capture shows clients of a mode the run did not have";
      continue;
    }
    const auto& r = modes.at(std::string(to_string(mode)));
    EXPECT_EQ(m.clients, r.at("clients").get<std::uint64_t>());
    EXPECT_EQ(m.traffic.total(), cell_of(r.at("traffic").at("total")));
    EXPECT_EQ(m.polls, r.at("polls").get<std::uint64_t>());
    EXPECT_EQ(m.fetches, r.at("fetches").get<std::uint64_t>());
    EXPECT_EQ(m.events, r.at("events").at("fetched").get<std::uint64_t>());
    clients += m.clients;
    packets += m.traffic.total().packets;
  }
  EXPECT_EQ(clients, run->at("plan").at("clients").get<std::uint64_t>());
  EXPECT_EQ(packets, a.packets);
  expect_every_packet_accounted(a);
}

TEST(PcapGolden, ReadmeCommandsAreFound) {
  // The parser the tests rely on, on a line in the README's form.
  EXPECT_EQ(shell_words("client-sim --set 'nat[0].preset=port-restricted-cone' --seed 1"),
            (std::vector<std::string>{"client-sim", "--set", "nat[0].preset=port-restricted-cone", "--seed", "1"}));
  for (const char* f : {"virtual-mixed-10.pcap", "virtual-nat-push.pcap"}) {
    const auto words = recorded_command(f);
    ASSERT_GE(words.size(), 4u) << f;
    EXPECT_EQ(words.front(), "client-sim");
    EXPECT_EQ(words.back(), std::string("captures/") + f);
  }
}

TEST(PcapGolden, VirtualMixedTenIsItsRun) {
  expect_capture_is_the_run("virtual-mixed-10.pcap", "session");
}

TEST(PcapGolden, VirtualNatPushIsItsRun) {
  expect_capture_is_the_run("virtual-nat-push.pcap", "ip");
}

// The same mixed capture grouped by address: the ten sessions share 198.18.0.2,
// so one client holds every flow, and nothing else changes.
TEST(PcapGolden, GroupingByAddressMergesSessions) {
  const auto path = captures_dir / "virtual-mixed-10.pcap";
  ASSERT_TRUE(fs::exists(path)) << path << " is part of the source tree";
  analyser_options o;
  o.group_by = client_grouping::ip;
  const analysis by_ip = analyse_file(path, o);
  o.group_by = client_grouping::session;
  const analysis by_session = analyse_file(path, o);
  ASSERT_EQ(by_ip.clients.size(), 1u);
  EXPECT_EQ(by_ip.clients[0].mode, client_mode::async);  // the strongest mode among its sessions
  ASSERT_EQ(by_session.clients.size(), 10u);
  std::size_t session_flows = 0;
  for (const auto& c : by_session.clients) session_flows += c.flows.size();
  EXPECT_EQ(by_ip.clients[0].flows.size(), session_flows);
  EXPECT_NE(by_session.clients[0].address.port, 0);  // named by the EMSMDB connection
  EXPECT_EQ(by_ip.total.traffic.total(), by_session.total.traffic.total());
  EXPECT_GT(by_session.total.fetches, 0u);
  EXPECT_EQ(by_ip.total.fetches, by_session.total.fetches);
  // Pings and fetches are matched per session either way.
  EXPECT_GT(by_session.total.pings_answered, 0u);
  EXPECT_EQ(by_ip.total.pings_answered, by_session.total.pings_answered);
}

}  // namespace
}  // namespace nudge::pcap_tool::test
