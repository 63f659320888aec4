// The golden captures in captures/ were made by client-sim in virtual time:
// regenerating each with the command captures/README.md gives for it yields
// the same bytes (a virtual run with a capture is deterministic: same plan,
// seed and epoch, same file). When a change alters them on purpose, regenerate
// with that command and say why in the commit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/sim/client_sim_cli.hpp"

#ifndef NUDGE_SOURCE_DIR
#error "NUDGE_SOURCE_DIR must name the source tree"
#endif

namespace {

namespace fs = std::filesystem;

struct golden {
  const char* file;  // under captures/
  std::vector<std::string> args;  // after `client-sim`, without --pcap
};

const std::vector<golden>& goldens() {
  static const std::vector<golden> g = {
      {"virtual-mixed-10.pcap",
       {"--clock", "virtual", "--clients", "10", "--mix", "poll=1,push=1,async=1", "--poll-interval", "5",
        "--events-per-client-hour", "60", "--duration", "60", "--drain", "10", "--seed", "3"}},
      {"virtual-nat-push.pcap",
       {"--clock", "virtual", "--clients", "6", "--mix", "push=1", "--set", "nat[0].preset=port-restricted-cone",
        "--policy", "verified", "--cookie", "--keepalive", "20", "--poll-interval", "5", "--events-per-client-hour",
        "60", "--duration", "90", "--drain", "10", "--seed", "1"}},
  };
  return g;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The command line as captures/README.md shows it (shell-quoted where needed).
std::string command_line(const golden& g) {
  std::string cmd = "client-sim";
  for (const auto& a : g.args) {
    const bool quote = a.find_first_of("[]*?' ") != std::string::npos;
    cmd += quote ? " '" + a + "'" : " " + a;
  }
  return cmd + " --pcap captures/" + g.file;
}

class GoldenCapture : public ::testing::TestWithParam<std::size_t> {};

TEST_P(GoldenCapture, RegeneratesByteForByte) {
  const golden& g = goldens()[GetParam()];
  const fs::path source = NUDGE_SOURCE_DIR;
  const fs::path file = source / "captures" / g.file;
  ASSERT_TRUE(fs::exists(file)) << file;
  EXPECT_LT(fs::file_size(file), 100u * 1024u) << "golden captures stay small";
  const std::string readme = slurp(source / "captures" / "README.md");
  EXPECT_NE(readme.find(command_line(g)), std::string::npos)
      << "captures/README.md must give the exact command:\n  " << command_line(g);

  const fs::path out = fs::temp_directory_path() / ("nudge_golden_" + std::to_string(::getpid()) + "_" + g.file);
  std::vector<std::string> args = g.args;
  args.insert(args.begin(), "client-sim");
  args.insert(args.end(), {"--quiet", "--pcap", out.string()});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = nudge::sim::parse_client_sim_options(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(parsed) << parsed.error().message;
  std::ostringstream table, err;
  ASSERT_EQ(nudge::sim::run_client_sim(parsed.value(), table, err, false), nudge::sim::exit_ok) << err.str();
  const std::string made = slurp(out);
  const std::string want = slurp(file);
  fs::remove(out);
  ASSERT_EQ(made.size(), want.size()) << g.file << " changed size: regenerate it (captures/README.md) if intended";
  EXPECT_TRUE(made == want) << g.file << " changed: regenerate it (captures/README.md) if intended";
}

INSTANTIATE_TEST_SUITE_P(Captures, GoldenCapture, ::testing::Range<std::size_t>(0, 2),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           std::string n = goldens()[p.param].file;
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
