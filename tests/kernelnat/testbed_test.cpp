// The kernel NAT testbed (client-sim/kernelnat/testbed.hpp) as root: it builds
// its three namespaces, the router reaches nothing but its two links, and it
// leaves no namespace, nftables table or conntrack entry behind, also when its
// owner is killed (the guardian tears down). Then the STUN classifiers judge
// each realisable preset through it: Vovida `stun` and coturn's
// `turnutils_natdiscovery` must classify the kernel's NAT as the preset
// declares. Skipped without root or the tools; failed under NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "nudge/kernelnat/behaviour.hpp"
#include "nudge/kernelnat/stun_judge.hpp"
#include "nudge/kernelnat/testbed.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

using namespace nudge;
using namespace nudge::kernelnat;
using test_support::run_shell;

namespace {

bool netns_exists(const std::string& name) {
  const std::string list = run_shell("ip netns list 2>/dev/null");
  return list.find(name + " ") != std::string::npos || list.find(name + "\n") != std::string::npos;
}

/// What the host (the test's own namespace) holds that a testbed must never touch.
struct host_state {
  std::string nft_tables;
  std::string conntrack_testbed_entries;  // entries with the testbed's addresses
  friend bool operator==(const host_state&, const host_state&) = default;
};
host_state host_now() {
  return {run_shell("nft list tables 2>&1"),
          run_shell("conntrack -L 2>/dev/null | grep -E '10\\.0\\.0\\.|203\\.0\\.113\\.' || true")};
}

kernel_realisation realisation_of(const char* preset) { return *realise(*preset_config(preset)).realisation; }

class kernelnat_testbed : public ::testing::Test {
 protected:
  void SetUp() override {
    NUDGE_REQUIRE(::geteuid() == 0, "root, to build network namespaces");
    NUDGE_REQUIRE(testbed_unavailable().empty(), testbed_unavailable());
    NUDGE_REQUIRE(test_support::have_program("conntrack"), "conntrack (Debian package conntrack)");
  }
};

TEST_F(kernelnat_testbed, builds_an_isolated_router_and_leaves_nothing_behind) {
  const host_state before = host_now();
  std::string lan, rtr, wan;
  {
    auto bed = testbed::create(realisation_of("linux-snat"));
    ASSERT_TRUE(bed) << bed.error().message;
    const testbed& t = **bed;
    lan = t.netns(zone::lan), rtr = t.netns(zone::router), wan = t.netns(zone::wan);
    for (const auto& n : {lan, rtr, wan}) EXPECT_TRUE(netns_exists(n)) << n;

    // The router: its two links and their subnets, nothing else, no default route.
    const std::string routes = t.run(zone::router, {"ip", "-4", "route", "show", "table", "all"}).text;
    EXPECT_EQ(routes.find("default"), std::string::npos) << routes;
    for (const char* r : {"10.0.0.0/24 dev rtr-lan", "203.0.113.0/24 dev rtr-wan"})
      EXPECT_NE(routes.find(r), std::string::npos) << routes;
    const std::string main_routes = t.run(zone::router, {"ip", "-4", "route", "show"}).text;
    EXPECT_EQ(main_routes, "10.0.0.0/24 dev rtr-lan proto kernel scope link src 10.0.0.1 \n"
                           "203.0.113.0/24 dev rtr-wan proto kernel scope link src 203.0.113.1 \n");
    const std::string links = t.run(zone::router, {"ip", "-o", "link", "show"}).text;
    std::size_t link_count = 0;
    for (char c : links) link_count += c == '\n';
    EXPECT_EQ(link_count, 3u) << "lo, rtr-lan, rtr-wan only:\n" << links;
    // An address outside the testbed has no route from the router.
    EXPECT_NE(t.run(zone::router, {"ip", "route", "get", "192.0.2.1"}).exit_code, 0);
    EXPECT_NE(t.run(zone::lan, {"ip", "route", "get", "127.0.0.1"}).text.find("dev lo"), std::string::npos);

    // The NAT works: a datagram from the LAN crosses the router (a conntrack entry
    // with its translation), and its ruleset is there.
    EXPECT_EQ(t.run(zone::lan, {"bash", "-c", "echo probe > /dev/udp/203.0.113.2/9"}).exit_code, 0);
    EXPECT_NE(t.run(zone::router, {"nft", "list", "table", "ip", "nudge"}).text.find("snat to 203.0.113.1"),
              std::string::npos);
    const std::string flows = t.run(zone::router, {"conntrack", "-L", "-p", "udp"}).text;
    EXPECT_NE(flows.find("src=10.0.0.2 dst=203.0.113.2"), std::string::npos) << flows;
    EXPECT_NE(flows.find("dst=203.0.113.1"), std::string::npos) << "not translated to the public address:\n" << flows;
    EXPECT_EQ(host_now(), before) << "the host's nftables or conntrack changed";
  }
  for (const auto& n : {lan, rtr, wan}) EXPECT_FALSE(netns_exists(n)) << n << " left behind";
  EXPECT_EQ(host_now(), before);
}

TEST_F(kernelnat_testbed, the_guardian_tears_down_when_its_owner_is_killed) {
  int names[2];
  ASSERT_EQ(::pipe(names), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(names[0]);
    auto bed = testbed::create(realisation_of("symmetric"));
    if (!bed) ::_exit(2);
    const std::string n = (*bed)->name() + "\n";
    if (::write(names[1], n.data(), n.size()) < 0) ::_exit(3);
    ::raise(SIGKILL);  // no destructor, no atexit: only the guardian can clean up
  }
  ::close(names[1]);
  char buf[128] = {};
  const ssize_t got = ::read(names[0], buf, sizeof buf - 1);
  ::close(names[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_GT(got, 1) << "the child could not build a testbed";
  const std::string name(buf, static_cast<std::size_t>(got - 1));
  // The guardian works asynchronously; give it up to 10 s (it takes milliseconds).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !netns_exists(name + "-lan") && !netns_exists(name + "-rtr") && !netns_exists(name + "-wan");
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << name << " outlived its owner";
}

class kernelnat_stun : public kernelnat_testbed, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    kernelnat_testbed::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    NUDGE_REQUIRE(classifiers_unavailable().empty(), classifiers_unavailable());
  }
};

TEST_P(kernelnat_stun, both_classifiers_agree_with_the_declared_behaviour) {
  const auto config = *preset_config(GetParam());
  const auto declared = classify(config);
  auto bed = testbed::create(*realise(config).realisation);
  ASSERT_TRUE(bed) << bed.error().message;
  const auto measured = judge(**bed);
  ASSERT_TRUE(measured) << measured.error().message;
  EXPECT_EQ(measured->stun_verdict, declared.stun_verdict) << measured->stun_output;
  EXPECT_EQ(measured->stun_exit, declared.stun_exit) << measured->stun_output;
  EXPECT_EQ(measured->natdiscovery_mapping, declared.natdiscovery_mapping) << measured->natdiscovery_output;
  EXPECT_EQ(measured->natdiscovery_filtering, declared.natdiscovery_filtering) << measured->natdiscovery_output;
  std::printf("%s: stun \"%s\" exit %d; turnutils_natdiscovery \"%s\" \"%s\"\n", GetParam(),
              measured->stun_verdict.c_str(), measured->stun_exit, measured->natdiscovery_mapping.c_str(),
              measured->natdiscovery_filtering.c_str());
}

INSTANTIATE_TEST_SUITE_P(realisable_presets, kernelnat_stun,
                         ::testing::Values("linux-snat", "port-restricted-cone", "symmetric"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
