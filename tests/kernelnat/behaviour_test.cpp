// What each NAT preset declares and whether the kernel can realise it
// (client-sim/kernelnat/behaviour.hpp), without root: the classifier verdicts
// a preset predicts are those shared/reference/nat.md section 2 recorded for
// the kernel configuration of the same behaviour, the refusals name the
// behaviour Linux lacks, and the plan checks refuse what the testbed cannot do.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "nudge/kernelnat/behaviour.hpp"
#include "nudge/kernelnat/kernel_run.hpp"
#include "nudge/kernelnat/testbed.hpp"
#include "nudge/sim/client_sim_cli.hpp"
#include "nudge/sim/scenario.hpp"

using namespace nudge;
using namespace nudge::kernelnat;

namespace {

netsim::nat_config preset(const char* name) {
  auto c = preset_config(name);
  EXPECT_TRUE(c) << name;
  return c.value_or(netsim::nat_config{});
}

TEST(kernelnat_behaviour, classifier_verdicts_follow_mapping_filtering_and_ports) {
  // nat.md section 2, the Vovida and coturn verdicts per router configuration.
  const auto linux_default = classify(preset("linux-snat"));
  EXPECT_EQ(linux_default.stun_verdict, "Independent Mapping, Port Dependent Filter, preserves ports, no hairpin");
  EXPECT_EQ(linux_default.stun_exit, 23);
  EXPECT_EQ(linux_default.natdiscovery_mapping, "NAT with Endpoint Independent Mapping!");
  EXPECT_EQ(linux_default.natdiscovery_filtering, "NAT with Address and Port Dependent Filtering!");
  EXPECT_EQ(linux_default.rfc3489_name, "port-restricted cone");

  const auto sym = classify(preset("symmetric"));
  EXPECT_EQ(sym.stun_verdict, "Dependent Mapping, random port, no hairpin");
  EXPECT_EQ(sym.stun_exit, 24);
  EXPECT_EQ(sym.natdiscovery_mapping, "NAT with Address and Port Dependent Mapping!");

  const auto full = classify(preset("full-cone"));
  EXPECT_EQ(full.stun_verdict, "Independent Mapping, Independent Filter, preserves ports, no hairpin");
  EXPECT_EQ(full.stun_exit, 19);
  EXPECT_EQ(full.natdiscovery_filtering, "NAT with Endpoint Independent Filtering!");

  const auto restricted = classify(preset("restricted-cone"));
  EXPECT_EQ(restricted.stun_verdict, "Independent Mapping, Address Dependent Filter, preserves ports, no hairpin");
  EXPECT_EQ(restricted.stun_exit, 21);
  EXPECT_EQ(restricted.natdiscovery_filtering, "NAT with Address Dependent Filtering!");

  auto hairpin = preset("port-restricted-cone");
  hairpin.hairpinning = true;
  EXPECT_EQ(classify(hairpin).stun_exit, 0x07);
  EXPECT_NE(classify(hairpin).stun_verdict.find("will hairpin"), std::string::npos);
}

TEST(kernelnat_behaviour, the_kernel_realises_port_preserving_and_random_snat_with_apdf) {
  const auto linux_snat = realise(preset("linux-snat"));
  ASSERT_TRUE(linux_snat.realisation) << linux_snat.refusal.message();
  EXPECT_EQ(linux_snat.realisation->snat_flags, "");
  EXPECT_TRUE(linux_snat.realisation->notes.empty()) << "linux-snat is the kernel as measured";

  const auto sym = realise(preset("symmetric"));
  ASSERT_TRUE(sym.realisation) << sym.refusal.message();
  EXPECT_EQ(sym.realisation->snat_flags, " random");

  const auto prc = realise(preset("port-restricted-cone"));
  ASSERT_TRUE(prc.realisation) << prc.refusal.message();
  EXPECT_EQ(prc.realisation->notes.size(), 2u) << "the collision fallback and the null bindings differ";

  // The timers become the router's per-namespace sysctls.
  const auto short_timer = realise(*preset_config("linux-snat", std::chrono::seconds(3)));
  ASSERT_TRUE(short_timer.realisation);
  bool udp = false, stream = false;
  for (const auto& [k, v] : short_timer.realisation->sysctls) {
    if (k == "net.netfilter.nf_conntrack_udp_timeout") udp = v == "3";
    if (k == "net.netfilter.nf_conntrack_udp_timeout_stream") stream = v == "3";
  }
  EXPECT_TRUE(udp && stream);
  // A [[nat]] entry's tcp_timeout (a 5-minute gateway) becomes conntrack's established timer.
  const auto five_minutes = realise(*preset_config("linux-snat", duration::zero(), std::chrono::minutes(5)));
  ASSERT_TRUE(five_minutes.realisation);
  bool tcp = false;
  for (const auto& [k, v] : five_minutes.realisation->sysctls)
    if (k == "net.netfilter.nf_conntrack_tcp_timeout_established") tcp = v == "300";
  EXPECT_TRUE(tcp);
}

TEST(kernelnat_behaviour, what_only_the_model_can_do_is_refused_with_the_reason) {
  const auto full = realise(preset("full-cone"));
  ASSERT_FALSE(full.realisation);
  EXPECT_NE(full.refusal.message().find("endpoint-independent filtering"), std::string::npos) << full.refusal.message();
  const auto restricted = realise(preset("restricted-cone"));
  ASSERT_FALSE(restricted.realisation);
  EXPECT_NE(restricted.refusal.message().find("address-dependent filtering"), std::string::npos);

  auto c = preset("linux-snat");
  c.mapping = netsim::mapping_behavior::address_dependent;
  c.hairpinning = true;
  c.inbound_refreshes = false;
  c.udp_mapping_timeout = std::chrono::milliseconds(1500);
  const auto many = realise(c);
  ASSERT_FALSE(many.realisation);
  EXPECT_EQ(many.refusal.reasons.size(), 4u) << many.refusal.message();

  auto eim_random = preset("linux-snat");
  eim_random.allocation = netsim::port_allocation::random;
  EXPECT_FALSE(realise(eim_random).realisation) << "random ports make Linux's mapping 5-tuple dependent";
}

TEST(kernelnat_behaviour, describe_says_what_is_declared_and_what_the_kernel_does) {
  const std::string text = describe("linux-snat", preset("linux-snat"));
  EXPECT_NE(text.find("mapping: endpoint-independent"), std::string::npos) << text;
  EXPECT_NE(text.find("filtering: address-and-port-dependent"), std::string::npos);
  EXPECT_NE(text.find("exit 23"), std::string::npos);
  EXPECT_NE(text.find("kernel: realisable"), std::string::npos);
  EXPECT_NE(describe("full-cone", preset("full-cone")).find("kernel: refused"), std::string::npos);

  const char* argv[] = {"client-sim", "--nat-describe", "symmetric"};
  const auto o = sim::parse_client_sim_options(3, argv);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->cmd, sim::client_sim_options::command::nat_describe);
  EXPECT_NE(o->text.find("Dependent Mapping, random port"), std::string::npos);
  const char* bad[] = {"client-sim", "--nat-describe", "cone-of-silence"};
  const auto b = sim::parse_client_sim_options(3, bad);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().exit_code, sim::exit_usage);
}

sim::run_plan kernel_plan(const char* preset_name) {
  sim::run_plan p;
  p.nat_mix = {sim::nat_share{}};
  p.nat_mix[0].preset = preset_name;
  p.nat_mix[0].kernel = true;
  return p;
}

TEST(kernelnat_behaviour, a_plan_the_testbed_cannot_build_is_refused) {
  EXPECT_EQ(kernel_plan_problem(kernel_plan("linux-snat")), "");
  EXPECT_NE(kernel_plan_problem(kernel_plan("full-cone")).find("endpoint-independent filtering"), std::string::npos);
  auto shared = kernel_plan("linux-snat");
  shared.nat_mix[0].clients_per_device = 4;
  EXPECT_NE(kernel_plan_problem(shared).find("clients_per_device"), std::string::npos);
  auto two = kernel_plan("linux-snat");
  two.nat_mix.push_back(two.nat_mix[0]);
  EXPECT_NE(kernel_plan_problem(two).find("exactly one"), std::string::npos);

  // With a kernel NAT the [server] settings and the NAT are honoured by a real run.
  auto honoured = kernel_plan("linux-snat");
  honoured.server.policy = notifier::callback_policy::peer;
  EXPECT_TRUE(honoured.virtual_only_settings().empty());
  auto modelled = honoured;
  modelled.nat_mix[0].kernel = false;
  EXPECT_FALSE(modelled.virtual_only_settings().empty());

  // The run starts its own notifier in the testbed: pointing at another one is a mistake.
  const char* elsewhere[] = {"client-sim", "--set", "nat[0].preset=linux-snat", "--set", "nat[0].kernel=true",
                             "--notifier", "127.0.0.1:7777"};
  const auto e = sim::parse_client_sim_options(7, elsewhere);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("starts its own notifier"), std::string::npos) << e.error().message;
  const char* ok[] = {"client-sim", "--set", "nat[0].preset=linux-snat", "--set", "nat[0].kernel=true",
                      "--set", "server.policy=peer"};
  const auto accepted = sim::parse_client_sim_options(7, ok);
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->plan.server.policy, notifier::callback_policy::peer);

  const char* argv[] = {"client-sim", "--set", "nat[0].preset=restricted-cone", "--set", "nat[0].kernel=true"};
  const auto o = sim::parse_client_sim_options(5, argv);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().exit_code, sim::exit_usage);
  EXPECT_NE(o.error().message.find("address-dependent filtering"), std::string::npos) << o.error().message;
}

TEST(kernelnat_behaviour, the_kernel_key_reads_and_writes_in_scenarios) {
  const auto read = sim::parse_scenario("[[nat]]\npreset = \"symmetric\"\nkernel = true\n");
  const auto* plan = std::get_if<sim::run_plan>(&read);
  ASSERT_NE(plan, nullptr) << std::get<sim::scenario_error>(read).what();
  ASSERT_EQ(plan->nat_mix.size(), 1u);
  EXPECT_TRUE(plan->nat_mix[0].kernel);
  EXPECT_TRUE(plan->kernel_nat());
  const auto bad = sim::parse_scenario("[[nat]]\npreset = \"symmetric\"\nkernel = \"yes\"\n");
  EXPECT_TRUE(std::holds_alternative<sim::scenario_error>(bad));
}

TEST(kernelnat_behaviour, without_root_the_testbed_says_it_needs_root) {
  // A child drops to nobody: the reason must say root, not fail somewhere in `ip`.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && ::setuid(65534) != 0) ::_exit(3);
    const std::string why = testbed_unavailable();
    ::_exit(why.find("needs root") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
