#pragma once
// A real run through a kernel NAT: the plan's one [[nat]] entry with
// `kernel = true` is built as a testbed (testbed.hpp) for its preset; the
// `notifier` program runs in the wan namespace with the plan's [server]
// settings (its control port on the wan namespace's loopback), the clients'
// sockets open in the LAN namespace on 10.0.0.2, and everything between them
// crosses the router's SNAT, filter and conntrack timers. run_real does the
// running; this only builds the world around it and takes it down again.
//
// The result is run_real's, with the plan as given, one (mode, NAT) group per
// mode, and the router's drops as the virtual driver names them:
// network.nat_filtered = UDP that reached the router's own address (no
// mapping, expired, or filtered), network.no_route = datagrams for a private
// address the router's filter dropped (nat.md a1; the model routes them nowhere).
#include <functional>
#include <string>
#include <string_view>

#include "nudge/kernelnat/behaviour.hpp"
#include "nudge/protocol/result.hpp"
#include "nudge/sim/asio_driver.hpp"
#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/run_result.hpp"

namespace nudge::kernelnat {

struct kernel_run_options {
  /// The notifier program to start in the wan namespace.
  std::string notifier_program;
  /// Where the notifier's output goes.
  std::string notifier_log = "/dev/null";
};

/// Empty when the plan's NAT can be built in the kernel, else why not, in
/// words for a user (more than one [[nat]] entry, a shared device, a refused
/// preset with its reasons, a [server] setting the notifier program lacks).
std::string kernel_plan_problem(const sim::run_plan& plan);

/// Runs the plan. `real` gives the worker and progress settings; its
/// endpoints and source addresses are the testbed's. Errors: not root, a
/// refused plan (exit code 2), the testbed or notifier not starting, run_real
/// failing. The testbed is gone when this returns, whatever happened.
result<sim::run_result> run_through_kernel_nat(const sim::run_plan& plan, sim::real_options real,
                                               const kernel_run_options& options);

}  // namespace nudge::kernelnat
