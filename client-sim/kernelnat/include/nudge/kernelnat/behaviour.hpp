#pragma once
// What a NAT preset declares, in the vocabulary of RFC 4787 and of the two STUN
// classifiers that judge it (Vovida `stun`, RFC 3489; coturn's
// `turnutils_natdiscovery`, RFC 5780), and whether the Linux kernel can realise
// it in the testbed (testbed.hpp). Pure: no root, no processes.
//
// Linux nf_nat realises endpoint-independent mapping with port preservation
// (`snat to`), address-and-port-dependent mapping with random ports (`snat to
// ... random`), address-and-port-dependent filtering (conntrack admits only a
// flow's reply tuple), timers refreshed both ways, and per-namespace timeouts.
// It has no endpoint-independent or address-dependent filtering, no
// address-dependent mapping, no sequential allocation and no hairpinning with a
// plain SNAT rule (shared/reference/nat.md, sections 2, 3, 5): presets that need
// them are refused, with the reason.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/netsim/nat.hpp"

namespace nudge::kernelnat {

/// How the testbed's router realises a nat_config.
struct kernel_realisation {
  /// The nft statement's tail after `snat to <public address>`: "" or " random".
  std::string snat_flags;
  /// Per-namespace sysctls in the router (name, value), e.g. net.netfilter.nf_conntrack_udp_timeout=5.
  std::vector<std::pair<std::string, std::string>> sysctls;
  /// Where the kernel does something the config does not say, harmlessly for the
  /// testbed (one LAN address, so no port clashes): one line each.
  std::vector<std::string> notes;
};

/// Why the kernel cannot realise a config: every reason, one line each.
struct kernel_refusal {
  std::vector<std::string> reasons;
  std::string message() const;  // "the kernel cannot realise ...: reason; reason"
};

/// The realisation, or the refusal.
struct kernel_verdict {
  std::optional<kernel_realisation> realisation;
  kernel_refusal refusal;
};
kernel_verdict realise(const netsim::nat_config& config);

/// What the classifiers should say about a NAT of this config.
struct expected_classification {
  /// Vovida `stun`: the text after "Primary: " (e.g. "Independent Mapping, Port
  /// Dependent Filter, preserves ports, no hairpin") and its exit code (23).
  std::string stun_verdict;
  int stun_exit = 0;
  /// coturn `turnutils_natdiscovery -m -f`: its two "NAT with ...!" lines.
  std::string natdiscovery_mapping;    // "NAT with Endpoint Independent Mapping!"
  std::string natdiscovery_filtering;  // "NAT with Address and Port Dependent Filtering!"
  std::string rfc3489_name;            // "port-restricted cone"
};
expected_classification classify(const netsim::nat_config& config);

/// A preset by name with a [[nat]] entry's udp_timeout applied (zero: the
/// preset's own), as the virtual driver builds it; nullopt for an unknown name.
std::optional<netsim::nat_config> preset_config(std::string_view name, duration udp_timeout = duration::zero(),
                                               duration tcp_timeout = duration::zero());

/// `client-sim --nat-describe PRESET`: the declared behaviour, the classifiers'
/// expected verdicts and the kernel's realisation or refusal, as text.
std::string describe(std::string_view preset_name, const netsim::nat_config& config);

}  // namespace nudge::kernelnat
