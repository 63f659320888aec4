#pragma once
// The STUN classifiers as judges of a kernel NAT: coturn's `turnserver` serves
// STUN on both server addresses of the testbed's wan side (it answers RFC 3489
// CHANGE-REQUESTs as well as RFC 5780's), and Vovida `stun` (Debian
// stun-client) and coturn's `turnutils_natdiscovery -m -f` run in the LAN
// namespace against it, through the router. What they print is compared with
// what the preset declares (behaviour.hpp, classify()).
#include <string>

#include "nudge/kernelnat/testbed.hpp"
#include "nudge/protocol/result.hpp"

namespace nudge::kernelnat {

struct classifier_verdicts {
  std::string stun_verdict;  // the text after "Primary: "
  int stun_exit = -1;
  std::string natdiscovery_mapping;    // "NAT with ... Mapping!" ("" when absent)
  std::string natdiscovery_filtering;  // "NAT with ... Filtering!"
  std::string stun_output, natdiscovery_output;  // everything they printed
};

/// Empty when `stun`, `turnutils_natdiscovery` and `turnserver` are on PATH, else which is missing.
std::string classifiers_unavailable();

/// Starts turnserver in the testbed's wan zone, runs both classifiers from the
/// LAN zone (the router's conntrack flushed before each), stops it.
result<classifier_verdicts> judge(const testbed& t);

/// The "Primary: ..." verdict of Vovida stun's output, "NAT with ...!" lines of natdiscovery's.
std::string parse_stun_verdict(const std::string& output);
std::string parse_natdiscovery_line(const std::string& output, const std::string& ending);

}  // namespace nudge::kernelnat
