#pragma once
// A kernel NAT testbed: three network namespaces and two veth pairs,
//
//    <name>-lan                 <name>-rtr (SNAT + stateful filter)           <name>-wan
//    10.0.0.2/24  lan0 <=veth=> rtr-lan 10.0.0.1 | rtr-wan 203.0.113.1 <=veth=> wan0 203.0.113.2/24, .3/24
//    default via 10.0.0.1                                               10.0.0.0/8 via 203.0.113.1
//
// as shared/reference/nat.md section 1 measured it. The router's nftables
// ruleset and conntrack sysctls come from a kernel_realisation (behaviour.hpp).
// The router has routes to its two links only, and nothing else: no packet can
// leave the namespaces the testbed created (the wan side's route to 10/8 is the
// nat.md worst case, so a push to a private address meets the router's filter).
//
// Names are unique per testbed (`nudge-kn-<pid>-<n>`), so parallel runs do not
// collide. Teardown runs on every exit path: a guardian process (/bin/sh,
// started before the first namespace, ignoring SIGINT/SIGTERM/SIGHUP) waits on
// a pipe from this process and, when it closes (the destructor, a normal exit,
// an exception, Ctrl-C, a crash, SIGKILL), kills every process left in the
// namespaces and deletes them; deleting a namespace deletes its veths, nftables
// tables and conntrack entries. The destructor waits for it.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` (iproute2) and `nft`.
// Create it while the process is single-threaded, in the namespace it started
// in (the guardian is forked).
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/kernelnat/behaviour.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/result.hpp"

namespace nudge::kernelnat {

/// The testbed's fixed addresses (inside its own namespaces only).
inline const protocol::ip_endpoint lan_host = protocol::ip_endpoint::v4(10, 0, 0, 2, 0);
inline const protocol::ip_endpoint router_lan = protocol::ip_endpoint::v4(10, 0, 0, 1, 0);
inline const protocol::ip_endpoint router_public = protocol::ip_endpoint::v4(203, 0, 113, 1, 0);
inline const protocol::ip_endpoint server_primary = protocol::ip_endpoint::v4(203, 0, 113, 2, 0);
inline const protocol::ip_endpoint server_alternate = protocol::ip_endpoint::v4(203, 0, 113, 3, 0);

/// The prefix of every testbed's namespace names.
inline constexpr std::string_view name_prefix = "nudge-kn-";

enum class zone { lan, router, wan };

/// What a program printed (stdout and stderr together) and its exit status
/// (-1: it could not be started or was killed by a signal).
struct program_output {
  int exit_code = -1;
  std::string text;
};

/// Runs argv[0] (searched on PATH) to completion, `input` on its stdin.
program_output run_program(const std::vector<std::string>& argv, std::string_view input = {});

/// Empty when this process may build a testbed, else why not (not root, `ip`
/// or `nft` missing), worded for a user.
std::string testbed_unavailable();

/// The router's packet counters (nft), read on demand.
struct router_counters {
  std::uint64_t forward_dropped = 0;  // inbound to a LAN address that matched no flow (a push to a private address)
  std::uint64_t input_udp_dropped = 0;  // UDP to the router's own addresses: no mapping, or filtered
};

class testbed {
 public:
  /// Builds the namespaces and the router for `realisation`. The error says
  /// which step failed (everything built so far is removed).
  static result<std::unique_ptr<testbed>> create(const kernel_realisation& realisation);
  ~testbed();
  testbed(const testbed&) = delete;
  testbed& operator=(const testbed&) = delete;

  /// "nudge-kn-<pid>-<n>"; the namespaces are <name>-lan, -rtr, -wan.
  const std::string& name() const { return name_; }
  std::string netns(zone z) const;

  /// Moves the calling thread into zone `z`'s network namespace. Empty on success.
  std::string enter(zone z) const;

  /// Runs a program inside a zone (`ip netns exec`) to completion.
  program_output run(zone z, const std::vector<std::string>& argv, std::string_view input = {}) const;
  /// Starts a program inside a zone in the background; its pid, or the error.
  /// The testbed's teardown kills it if it is still running.
  result<pid_t> spawn(zone z, const std::vector<std::string>& argv, const std::string& log_path = "/dev/null") const;

  /// Loads the router's ruleset for another realisation and flushes conntrack.
  std::string reconfigure(const kernel_realisation& realisation) const;
  /// Empties the router's conntrack table and zeroes its counters.
  std::string reset_router() const;
  router_counters counters() const;

  /// Removes everything now (the destructor does it otherwise); idempotent.
  void tear_down();

 private:
  testbed(std::string name, pid_t guardian, int guardian_pipe);
  std::string build(const kernel_realisation& realisation);

  std::string name_;
  pid_t guardian_ = -1;
  int guardian_pipe_ = -1;
};

/// The nftables ruleset the router loads for `realisation`.
std::string router_ruleset(const kernel_realisation& realisation);

/// Saves the calling thread's network namespace and returns to it on
/// destruction (after testbed::enter).
class netns_return {
 public:
  netns_return();
  ~netns_return();
  netns_return(const netns_return&) = delete;
  netns_return& operator=(const netns_return&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace nudge::kernelnat
