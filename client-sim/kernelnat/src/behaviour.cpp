#include "nudge/kernelnat/behaviour.hpp"

#include <chrono>

#include <fmt/format.h>

namespace nudge::kernelnat {

using netsim::filtering_behavior;
using netsim::mapping_behavior;
using netsim::port_allocation;

namespace {

std::optional<std::int64_t> whole_seconds(duration d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  if (s < std::chrono::seconds(1) || s != d) return std::nullopt;
  return s.count();
}

std::string seconds_text(duration d) { return fmt::format("{:g} s", to_seconds(d)); }

}  // namespace

std::string kernel_refusal::message() const {
  std::string out = "the Linux kernel cannot realise this NAT (only the model can): ";
  for (std::size_t i = 0; i < reasons.size(); ++i) out += (i ? "; " : "") + reasons[i];
  return out;
}

kernel_verdict realise(const netsim::nat_config& c) {
  kernel_verdict v;
  auto& why = v.refusal.reasons;
  kernel_realisation r;

  if (c.mapping == mapping_behavior::endpoint_independent) {
    if (c.allocation != port_allocation::preserving)
      why.push_back(fmt::format("endpoint-independent mapping with {} ports: `snat to` keeps the port whenever it is "
                                "free, and `random` makes the mapping address-and-port-dependent",
                                to_string(c.allocation)));
  } else if (c.mapping == mapping_behavior::address_and_port_dependent) {
    if (c.allocation == port_allocation::random)
      r.snat_flags = " random";
    else
      why.push_back(fmt::format("address-and-port-dependent mapping with {} ports: Linux gives a new mapping per "
                                "remote only with `snat ... random`, whose ports are random",
                                to_string(c.allocation)));
  } else {
    why.push_back("address-dependent mapping: nf_nat maps per internal endpoint (EIM) or, with `random`, per "
                  "5-tuple (APDM), never per remote address");
  }
  if (c.filtering != filtering_behavior::address_and_port_dependent)
    why.push_back(fmt::format("{} filtering: conntrack admits an inbound datagram only when it matches a flow's "
                              "reply tuple (address-and-port-dependent); nat.md emulates the cones with a DNAT to "
                              "one host, which is no NAT for many clients",
                              to_string(c.filtering)));
  if (c.hairpinning) why.push_back("hairpinning: a plain SNAT rule does not loop LAN traffic to the public address back");
  if (!c.inbound_refreshes)
    why.push_back("no inbound refresh: conntrack restarts a flow's timer on packets in either direction");
  if (c.established_after != std::chrono::seconds(2))
    why.push_back(fmt::format("established after {}: conntrack's \"stream\" timer starts after traffic both ways "
                              "for 2 s, fixed in the kernel",
                              seconds_text(c.established_after)));
  if (c.tcp_stale == netsim::tcp_stale_segment::reset)
    why.push_back("answering stale TCP segments with a RST: the router drops them");

  const std::pair<const char*, duration> timers[] = {
      {"net.netfilter.nf_conntrack_udp_timeout", c.udp_mapping_timeout},
      {"net.netfilter.nf_conntrack_udp_timeout_stream", c.udp_timeout_established},
      {"net.netfilter.nf_conntrack_tcp_timeout_established", c.tcp_established_timeout},
      {"net.netfilter.nf_conntrack_tcp_timeout_syn_sent", c.tcp_transitory_timeout},
      {"net.netfilter.nf_conntrack_tcp_timeout_fin_wait", c.tcp_transitory_timeout},
      {"net.netfilter.nf_conntrack_tcp_timeout_close_wait", c.tcp_transitory_timeout},
      {"net.netfilter.nf_conntrack_tcp_timeout_last_ack", c.tcp_transitory_timeout},
      {"net.netfilter.nf_conntrack_tcp_timeout_time_wait", c.tcp_transitory_timeout},
  };
  for (const auto& [name, d] : timers) {
    if (auto s = whole_seconds(d))
      r.sysctls.emplace_back(name, std::to_string(*s));
    else
      why.push_back(fmt::format("{} = {}: conntrack timeouts are whole seconds, at least 1", name, seconds_text(d)));
  }
  r.sysctls.emplace_back("net.netfilter.nf_conntrack_tcp_loose", c.tcp_midstream_pickup ? "1" : "0");

  if (c.allocation == port_allocation::preserving && c.collision_fallback != port_allocation::random)
    r.notes.push_back(fmt::format("on a port clash the kernel draws a random port where the preset takes the {} one; "
                                  "the testbed's clients share one LAN address, so their ports never clash",
                                  c.collision_fallback == port_allocation::sequential ? "next free" : "same"));
  if (!c.null_bindings)
    r.notes.push_back("the kernel keeps a conntrack entry for every unsolicited inbound datagram (nat.md b2), which "
                      "the preset does not model: a later mapping from that remote's first contact may then lose its "
                      "port (linux-snat models it)");

  if (why.empty()) v.realisation = std::move(r);
  return v;
}

expected_classification classify(const netsim::nat_config& c) {
  expected_classification e;
  const bool eim = c.mapping == mapping_behavior::endpoint_independent;
  const bool preserves = c.allocation == port_allocation::preserving;
  int code = 0;
  if (eim) {
    switch (c.filtering) {
      case filtering_behavior::endpoint_independent:
        e.stun_verdict = "Independent Mapping, Independent Filter";
        e.rfc3489_name = "full cone";
        code = 0x02;
        break;
      case filtering_behavior::address_dependent:
        e.stun_verdict = "Independent Mapping, Address Dependent Filter";
        e.rfc3489_name = "restricted cone";
        code = 0x04;
        break;
      case filtering_behavior::address_and_port_dependent:
        e.stun_verdict = "Independent Mapping, Port Dependent Filter";
        e.rfc3489_name = "port-restricted cone";
        code = 0x06;
        break;
    }
  } else {
    e.stun_verdict = "Dependent Mapping";
    e.rfc3489_name = "symmetric";
    code = 0x08;
  }
  e.stun_verdict += preserves ? ", preserves ports" : ", random port";
  e.stun_verdict += c.hairpinning ? ", will hairpin" : ", no hairpin";
  if (preserves) code |= 0x01;
  if (!c.hairpinning) code |= 0x10;
  e.stun_exit = code;

  auto words = [](auto behaviour) {
    switch (static_cast<int>(behaviour)) {
      case 0: return std::string("Endpoint Independent");
      case 1: return std::string("Address Dependent");
      default: return std::string("Address and Port Dependent");
    }
  };
  e.natdiscovery_mapping = "NAT with " + words(c.mapping) + " Mapping!";
  e.natdiscovery_filtering = "NAT with " + words(c.filtering) + " Filtering!";
  return e;
}

std::optional<netsim::nat_config> preset_config(std::string_view name, duration udp_timeout, duration tcp_timeout) {
  // The public address is the testbed router's (testbed.hpp); the model ignores it here.
  auto c = netsim::preset(name, protocol::ip_endpoint::v4(203, 0, 113, 1, 0));
  if (c && udp_timeout > duration::zero()) c->udp_mapping_timeout = c->udp_timeout_established = udp_timeout;
  if (c && tcp_timeout > duration::zero()) c->tcp_established_timeout = tcp_timeout;
  return c;
}

std::string describe(std::string_view preset_name, const netsim::nat_config& c) {
  std::string o = fmt::format("preset: {}\n", preset_name);
  o += fmt::format("mapping: {} ({})\n", to_string(c.mapping), short_name(c.mapping));
  o += fmt::format("filtering: {} ({})\n", to_string(c.filtering), short_name(c.filtering));
  o += fmt::format("ports: {}", to_string(c.allocation));
  if (c.allocation == port_allocation::preserving) o += fmt::format(", {} on a clash", to_string(c.collision_fallback));
  o += fmt::format("\nhairpinning: {}\n", c.hairpinning ? "yes" : "no");
  o += fmt::format("udp timeout: {} unreplied, {} established (after {}), inbound refresh {}\n",
                   seconds_text(c.udp_mapping_timeout), seconds_text(c.udp_timeout_established),
                   seconds_text(c.established_after), c.inbound_refreshes ? "yes" : "no");
  o += fmt::format("tcp timeout: {} established, {} transitory\n", seconds_text(c.tcp_established_timeout),
                   seconds_text(c.tcp_transitory_timeout));
  const auto e = classify(c);
  o += fmt::format("rfc3489 name: {}\n", e.rfc3489_name);
  o += fmt::format("stun (Vovida, RFC 3489): Primary: {} (exit {})\n", e.stun_verdict, e.stun_exit);
  o += fmt::format("turnutils_natdiscovery -m -f (RFC 5780): {} {}\n", e.natdiscovery_mapping, e.natdiscovery_filtering);
  const auto v = realise(c);
  if (v.realisation) {
    o += fmt::format("kernel: realisable: nft `snat to 203.0.113.1{}`, forward policy drop except established/related\n",
                     v.realisation->snat_flags);
    for (const auto& [k, val] : v.realisation->sysctls) o += fmt::format("kernel sysctl: {}={}\n", k, val);
    for (const auto& n : v.realisation->notes) o += fmt::format("kernel note: {}\n", n);
  } else {
    for (const auto& r : v.refusal.reasons) o += fmt::format("kernel: refused: {}\n", r);
  }
  return o;
}

}  // namespace nudge::kernelnat
